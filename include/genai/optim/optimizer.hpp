// genai/optim/optimizer.hpp: optim::Optimizer, the base of every optimizer (as
// torch.optim.Optimizer), its parameter groups and per-parameter state, and the
// flat state-dict scheme that lets optimizer state live in a safetensors file.
//
// Parameter groups. An optimizer holds a list of ParamGroup, each a list of
// parameters (leaf tensors that require grad) and its hyperparameters by torch's
// names ("lr", "momentum", "weight_decay", ...; Adam's betas are "beta1" and
// "beta2"; booleans such as "nesterov" are 0 or 1). A group that omits an option
// takes the optimizer's default, as torch's add_param_group does:
//
//   optim::AdamW opt({{decay_params, {{"weight_decay", 0.1}}},
//                     {no_decay_params, {{"weight_decay", 0.0}}}},
//                    {.lr = 6e-4, .betas = {0.9, 0.95}});
//   for (...) {
//     opt.zero_grad();
//     loss = model.forward(x); loss.backward();
//     opt.step();
//   }
//
// Updates run under NoGradGuard as fused loops over each parameter's raw data
// (one pass per parameter, no temporaries, parallel_for over large tensors), and
// bump the parameter's version counter, as an in-place torch op does.
//
// State dict scheme (optimizer.state_dict() / load_state_dict(), an io::TensorMap
// that io::save_safetensors writes as it is). Parameters are numbered 0, 1, ...
// in group order, as torch numbers them:
//   "param_groups.<g>.params"    int64 (n_g,)  the indices of group g's parameters
//   "param_groups.<g>.<option>"  float64 0-d   every hyperparameter of group g ("lr", ...)
//   "state.<i>.<scalar>"         float64 0-d   scalar state of parameter i ("step")
//   "state.<i>.<buffer>"         the parameter's dtype and shape: "exp_avg", "exp_avg_sq",
//                                "max_exp_avg_sq", "momentum_buffer", "square_avg",
//                                "grad_avg", "sum" (LBFGS: see lbfgs.hpp)
// state_dict() returns tensors that share memory with the optimizer's state (as
// torch's does): save or clone them before the next step. load_state_dict()
// copies, casts buffers to the parameter's dtype (as torch), replaces the saved
// hyperparameters of each group (options it does not mention are kept), and
// checks everything (group count and sizes, indices, buffer shapes) before it
// changes anything.
//
// Differences from PyTorch: zero_grad() defaults to set_to_none = true (torch
// 2.x's default; 1.13's is false); hyperparameters are doubles in a map rather
// than a Python dict; options a group names that the optimizer does not know are
// rejected (torch silently keeps them), except the ones LR schedulers add
// ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum").
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "genai/io/safetensors.hpp"
#include "genai/tensor.hpp"

// Asks the compiler to vectorize the next loop (its iterations are independent)
// when OpenMP is on; the fused update loops use it so that -O2 builds vectorize too.
#if defined(_OPENMP)
#define GENAI_OPTIM_SIMD _Pragma("omp simd")
#else
#define GENAI_OPTIM_SIMD
#endif

namespace genai {
namespace optim {

/// Re-evaluates the model: zeroes the gradients, computes the loss, calls
/// backward, returns the loss (as the closure passed to torch's step).
using Closure = std::function<Tensor()>;

/// Hyperparameters by torch's names; booleans are 0 or 1.
using Options = std::map<std::string, double>;

/// A list of parameters and the hyperparameters they share (lr among them).
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;  // missing entries take the optimizer's defaults when the group is added

  ParamGroup() = default;
  ParamGroup(std::vector<Tensor> p, Options o = {}) : params(std::move(p)), options(std::move(o)) {}  // NOLINT

  bool has(const std::string& key) const { return options.count(key) != 0; }
  /// The option `key`; throws naming the key when the group has none.
  double get(const std::string& key) const {
    auto it = options.find(key);
    GENAI_CHECK(it != options.end(), "optimizer: parameter group has no option '", key,
                "'; hint: the optimizer does not use it, or a state dict without it was loaded");
    return it->second;
  }
  bool flag(const std::string& key) const { return get(key) != 0.0; }
  void set(const std::string& key, double v) { options[key] = v; }
  double lr() const { return get("lr"); }
  void set_lr(double v) { options["lr"] = v; }
};

/// What an optimizer keeps for one parameter: scalars (torch's state['step'])
/// and buffers (exp_avg, momentum_buffer, ...), created on its first update.
struct ParamState {
  std::map<std::string, double> scalars;
  std::map<std::string, Tensor> tensors;
  bool empty() const { return scalars.empty() && tensors.empty(); }
  void clear() {
    scalars.clear();
    tensors.clear();
  }
};

namespace detail {

/// Elements per parallel chunk of the fused update loops (each element is ~10 flops).
constexpr int64_t kOptimGrain = int64_t(1) << 15;
/// Elements per tile of the loops that take a square root: a tile is updated in
/// two short loops around one vectorized sqrt, while it stays in L1.
constexpr int64_t kOptimTile = 256;

/// Option names the LR schedulers store in parameter groups.
inline bool is_scheduler_option(const std::string& k) {
  return k == "initial_lr" || k == "max_lr" || k == "min_lr" || k == "max_momentum" || k == "base_momentum";
}

/// Calls f(std::bool_constant<b>...) for the runtime flags b..., so that a fused
/// loop is compiled once per combination with its options' branches removed (a
/// select on a runtime flag is a branch in the loop, which keeps it from
/// vectorizing: the untaken arithmetic might trap).
template <class F>
inline void with_flags(F&& f) {
  f();
}
template <class F, class... Rest>
inline void with_flags(F&& f, bool first, Rest... rest) {
  if (first)
    with_flags([&](auto... c) { f(std::true_type{}, c...); }, rest...);
  else
    with_flags([&](auto... c) { f(std::false_type{}, c...); }, rest...);
}

/// x = sqrt(x) over n contiguous elements with the CPU's vector square root:
/// correctly rounded, so the same bits as std::sqrt (a loop calling std::sqrt is
/// not vectorized, as it may set errno; Eigen's float sqrt is an approximation
/// under its default EIGEN_FAST_MATH).
inline void sqrt_inplace(float* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_sqrt_ps(_mm512_loadu_ps(x + i)));
#endif
#if defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#endif
#if defined(__SSE2__)
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vsqrtq_f32(vld1q_f32(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}
inline void sqrt_inplace(double* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _mm512_sqrt_pd(_mm512_loadu_pd(x + i)));
#endif
#if defined(__AVX__)
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
#endif
#if defined(__SSE2__)
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
  for (; i + 2 <= n; i += 2) vst1q_f64(x + i, vsqrtq_f64(vld1q_f64(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}

/// A parameter opened for a fused in-place update: `data` is contiguous (the
/// parameter itself, or a staging copy that commit() writes back), `grad` is the
/// detached, contiguous gradient in the parameter's dtype (undefined if none).
struct FusedParam {
  Tensor param, data, grad;

  FusedParam(const Tensor& p, const char* op) : param(p) {
    data = p.is_contiguous() ? p.detach() : genai::detail::contig(p.detach());
    Tensor g = p.grad();
    if (g.defined()) {
      GENAI_CHECK(g.shape() == p.shape(), op, ": gradient of shape ", shape_str(g.shape()),
                  " does not match its parameter of shape ", shape_str(p.shape()));
      grad = genai::detail::contig(genai::detail::as_dtype(g.detach(), p.dtype()));
    }
  }
  /// Writes a staged copy back and bumps the parameter's version.
  void commit() {
    if (!data.is_alias_of(param)) kernels::copy_into(param, data);
    param.storage()->bump_version();
  }
};

/// A new contiguous state buffer shaped like p, filled with v.
inline Tensor state_buffer(const Tensor& p, double v = 0.0) { return full(p.shape(), v, p.dtype()); }

/// Parses the decimal index that starts `s` at `pos`, up to the next '.'; false if malformed.
inline bool parse_index(const std::string& s, size_t pos, int64_t& idx, size_t& next) {
  size_t dot = s.find('.', pos);
  if (dot == std::string::npos || dot == pos || dot - pos > 12) return false;
  idx = 0;
  for (size_t i = pos; i < dot; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    idx = idx * 10 + (s[i] - '0');
  }
  next = dot + 1;
  return next < s.size();
}

}  // namespace detail

/// The base of every optimizer: parameter groups, per-parameter state, zero_grad,
/// and state save/load. Derived classes implement step().
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "SGD", "Adam", ...
  const std::string& name() const { return name_; }
  /// The options a group gets for what it does not specify.
  const Options& defaults() const { return defaults_; }
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  /// Performs one update. With a closure, calls it first (with grad enabled) and
  /// returns its loss; otherwise returns an undefined tensor.
  virtual Tensor step(const Closure& closure = nullptr) = 0;

  /// Adds a group; options it omits take the defaults. A parameter may belong to one group only.
  void add_param_group(ParamGroup group) {
    const size_t gi = groups_.size();
    for (const auto& [k, v] : group.options)
      GENAI_CHECK(defaults_.count(k) || detail::is_scheduler_option(k), name_, ": parameter group ", gi,
                  " has unknown option '", k, "'; hint: known options are ", known_options());
    for (const auto& [k, v] : defaults_)
      if (!group.has(k)) group.options[k] = v;
    std::set<const TensorImpl*> seen;
    for (const auto& g : groups_)
      for (const auto& p : g.params) seen.insert(p.impl());
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& p = group.params[i];
      GENAI_CHECK(p.defined(), name_, ": parameter ", i, " of group ", gi, " is an undefined tensor");
      GENAI_CHECK(p.is_leaf(), name_, ": can't optimize a non-leaf tensor (parameter ", i, " of group ", gi, ", shape ",
                  shape_str(p.shape()), "); hint: optimize the leaf it was computed from, or detach() it");
      GENAI_CHECK(is_floating(p.dtype()), name_, ": parameter ", i, " of group ", gi, " has dtype ",
                  dtype_name(p.dtype()), "; only float32 and float64 tensors can be optimized");
      GENAI_CHECK(seen.insert(p.impl()).second, name_, ": parameter ", i, " of group ", gi, " (shape ",
                  shape_str(p.shape()), ") appears in more than one parameter group, or twice in one");
    }
    check_group(group, gi);
    groups_.push_back(std::move(group));
    state_.emplace_back(groups_.back().params.size());
    on_group_added(gi);
  }

  /// Clears the gradients (set_to_none) or zeroes them in place.
  void zero_grad(bool set_to_none = true) {
    for (auto& g : groups_)
      for (auto& p : g.params) {
        Tensor gr = p.grad();
        if (!gr.defined()) continue;
        if (set_to_none) {
          p.set_grad(Tensor());
          continue;
        }
        NoGradGuard ng;
        if (gr.requires_grad()) {  // a gradient with a graph (create_graph): cut it first, as torch
          gr = gr.detach();
          p.set_grad(gr);
        }
        gr.zero_();
      }
  }

  /// The state of parameter `index` of group `group`.
  ParamState& state(size_t group, size_t index) {
    GENAI_CHECK(group < state_.size() && index < state_[group].size(), name_, ": no parameter ", index, " in group ",
                group);
    return state_[group][index];
  }
  const ParamState& state(size_t group, size_t index) const {
    return const_cast<Optimizer*>(this)->state(group, index);
  }
  /// The state of a parameter, looked up by identity.
  ParamState& state(const Tensor& param) {
    for (size_t g = 0; g < groups_.size(); ++g)
      for (size_t i = 0; i < groups_[g].params.size(); ++i)
        if (groups_[g].params[i].impl() == param.impl()) return state_[g][i];
    GENAI_FAIL(name_, ": the tensor of shape ", shape_str(param.shape()), " is not a parameter of this optimizer");
  }

  /// The optimizer's state and hyperparameters as flat named tensors (see the header comment).
  io::TensorMap state_dict() const {
    io::TensorMap out;
    int64_t index = 0;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const std::string gp = "param_groups." + std::to_string(g) + ".";
      std::vector<int64_t> ids;
      for (size_t i = 0; i < groups_[g].params.size(); ++i) {
        const ParamState& st = state_[g][i];
        const std::string sp = "state." + std::to_string(index) + ".";
        for (const auto& [k, v] : st.scalars) out[sp + k] = scalar_tensor(v, kFloat64);
        for (const auto& [k, t] : st.tensors) out[sp + k] = t.detach();
        ids.push_back(index++);
      }
      out[gp + "params"] = tensor(ids, {static_cast<int64_t>(ids.size())});
      for (const auto& [k, v] : groups_[g].options) out[gp + k] = scalar_tensor(v, kFloat64);
    }
    return out;
  }

  /// Restores what state_dict() saved (from an optimizer of the same type over
  /// parameters of the same shapes, grouped the same way).
  void load_state_dict(const io::TensorMap& sd) {
    const std::string what = name_ + ".load_state_dict: ";
    std::vector<std::pair<size_t, size_t>> where;  // flat index -> (group, index)
    for (size_t g = 0; g < groups_.size(); ++g)
      for (size_t i = 0; i < groups_[g].params.size(); ++i) where.emplace_back(g, i);

    std::vector<Options> new_options(groups_.size());
    std::vector<bool> group_seen(groups_.size(), false);
    std::vector<std::vector<ParamState>> new_state(groups_.size());
    for (size_t g = 0; g < groups_.size(); ++g) new_state[g].resize(groups_[g].params.size());

    for (const auto& [key, t] : sd) {
      GENAI_CHECK(t.defined(), what, "entry '", key, "' is an undefined tensor");
      int64_t idx = 0;
      size_t rest = 0;
      if (key.rfind("param_groups.", 0) == 0) {
        GENAI_CHECK(detail::parse_index(key, 13, idx, rest), what, "malformed key '", key,
                    "'; expected param_groups.<group>.<option>");
        GENAI_CHECK(idx < static_cast<int64_t>(groups_.size()), what, "the state dict has parameter group ", idx,
                    " but the optimizer has ", groups_.size(), " group(s)");
        const std::string opt = key.substr(rest);
        group_seen[static_cast<size_t>(idx)] = true;
        if (opt == "params") {
          const size_t want = groups_[static_cast<size_t>(idx)].params.size();
          GENAI_CHECK(t.dim() == 1 && static_cast<size_t>(t.numel()) == want, what, "parameter group ", idx, " has ",
                      t.numel(), " parameter(s) in the state dict but ", want,
                      " in the optimizer; hint: build the optimizer over the same parameters, grouped the same way");
          continue;
        }
        GENAI_CHECK(t.numel() == 1, what, "option '", key, "' must hold one value, got shape ", shape_str(t.shape()));
        new_options[static_cast<size_t>(idx)][opt] = t.item<double>();
      } else if (key.rfind("state.", 0) == 0) {
        GENAI_CHECK(detail::parse_index(key, 6, idx, rest), what, "malformed key '", key,
                    "'; expected state.<param>.<name>");
        GENAI_CHECK(idx < static_cast<int64_t>(where.size()), what, "state for parameter ", idx,
                    " but the optimizer has ", where.size(), " parameter(s)");
        const std::string name = key.substr(rest);
        auto [g, i] = where[static_cast<size_t>(idx)];
        const Tensor& p = groups_[g].params[i];
        if (is_scalar_state(name)) {
          GENAI_CHECK(t.numel() == 1, what, "scalar state '", key, "' must hold one value, got shape ",
                      shape_str(t.shape()));
          new_state[g][i].scalars[name] = t.item<double>();
        } else {
          GENAI_CHECK(is_floating(t.dtype()), what, "state buffer '", key, "' has dtype ", dtype_name(t.dtype()));
          check_state_tensor(name, t, p, key);
          Tensor c = genai::detail::make_tensor(t.shape(), p.dtype());
          kernels::copy_into(c, t);
          new_state[g][i].tensors[name] = c;
        }
      } else {
        GENAI_FAIL(what, "unexpected key '", key,
                   "'; hint: optimizer state dicts hold only 'state.*' and "
                   "'param_groups.*' entries (is this a model state dict?)");
      }
    }
    for (size_t g = 0; g < groups_.size(); ++g)
      GENAI_CHECK(group_seen[g], what, "the state dict has no entries for parameter group ", g, " (the optimizer has ",
                  groups_.size(), "); hint: it was saved from an optimizer with fewer groups");
    // everything checked: commit
    for (size_t g = 0; g < groups_.size(); ++g)
      for (auto& [k, v] : new_options[g]) groups_[g].options[k] = v;
    state_ = std::move(new_state);
  }

 protected:
  Optimizer(std::string name, Options defaults) : name_(std::move(name)), defaults_(std::move(defaults)) {}

  /// Adds the groups given to a constructor (called by derived constructors, so
  /// that the virtual checks run); refuses an empty parameter list, as torch.
  void init_groups(std::vector<ParamGroup> groups) {
    size_t n = 0;
    for (const auto& g : groups) n += g.params.size();
    GENAI_CHECK(n > 0, name_, ": optimizer got an empty parameter list; hint: pass model->parameters()");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  /// Range checks of a group's options (as torch's constructors), after defaults are filled in.
  virtual void check_group(const ParamGroup& g, size_t index) const {
    check_option(g, index, "lr", g.get("lr") >= 0.0 && !std::isnan(g.get("lr")), "a learning rate >= 0");
  }
  /// Called once a group is added (optimizers with eager state initialize it here).
  virtual void on_group_added(size_t /*group*/) {}
  /// Whether state entry `name` is a scalar (saved as a 0-d float64) rather than a buffer.
  virtual bool is_scalar_state(const std::string& name) const { return name == "step"; }
  /// Checks a loaded state buffer (by default: it must have its parameter's shape).
  virtual void check_state_tensor(const std::string& /*name*/, const Tensor& t, const Tensor& param,
                                  const std::string& key) const {
    GENAI_CHECK(t.shape() == param.shape(), name_, ".load_state_dict: state buffer '", key, "' has shape ",
                shape_str(t.shape()), " but its parameter has shape ", shape_str(param.shape()));
  }

  void check_option(const ParamGroup& g, size_t index, const char* key, bool ok, const char* expected) const {
    GENAI_CHECK(ok, name_, ": invalid ", key, " ", g.get(key), " in parameter group ", index, "; expected ", expected);
  }

  /// Runs the closure (if any) with grad enabled and returns its loss.
  Tensor run_closure(const Closure& closure) const {
    if (!closure) return Tensor();
    EnableGradGuard eg;
    return closure();
  }

  std::string known_options() const {
    std::string s;
    for (const auto& [k, v] : defaults_) s += (s.empty() ? "" : ", ") + k;
    return s;
  }

  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // parallel to groups_[g].params
};

}  // namespace optim
}  // namespace genai
