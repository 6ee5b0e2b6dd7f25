// genai/optim/lbfgs.hpp: L-BFGS (Nocedal 1980; Liu & Nocedal 1989) with an
// optional strong-Wolfe line search, a line-by-line port of torch.optim.LBFGS of
// PyTorch 1.13 (itself after minFunc and torch7's optim.lbfgs / lswolfe.lua).
//
//   optim::LBFGS opt(params, {.line_search_fn = "strong_wolfe"});
//   for (int i = 0; i < 20; ++i)
//     opt.step([&] {
//       opt.zero_grad();
//       Tensor loss = compute_loss();
//       loss.backward();
//       return loss;
//     });
//
// step(closure) runs up to max_iter L-BFGS iterations (max_eval closure calls)
// and returns the loss of its first closure call. The closure zeroes the
// gradients, computes the loss and calls backward itself; step calls it with grad
// enabled and does everything else under NoGradGuard. All parameters are seen as
// one flat vector (of N elements); they must share a dtype, and there is one
// parameter group (as torch).
//
// The state lives in the state of parameter 0 (as torch), so the state dict holds:
//   "state.0.func_evals", "state.0.n_iter", "state.0.t", "state.0.H_diag",
//   "state.0.prev_loss", "state.0.ro.<k>"                 float64 0-d
//   "state.0.d", "state.0.prev_flat_grad",
//   "state.0.old_dirs.<k>", "state.0.old_stps.<k>"        (N,) in the parameters' dtype
// with k = 0 .. (history length - 1), oldest first. Hyperparameters are group
// options: lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
// and line_search_fn (0 = none, 1 = "strong_wolfe").
//
// Numerics: torch keeps the scalars of the two-loop recursion (ys, ro, H_diag,
// al, be) and the first step size as 0-d tensors of the parameters' dtype; we
// round them to that dtype the same way, so float32 runs follow torch's float32
// runs. Dot products accumulate in double, serially (deterministic). Inside the
// line search scalars are doubles (torch mixes float32 tensors and Python floats).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

struct LBFGSOptions {
  double lr = 1.0;
  int64_t max_iter = 20;
  int64_t max_eval = -1;  // -1: max_iter * 5 / 4
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  int64_t history_size = 100;
  std::string line_search_fn = "";  // "" (fixed step lr) or "strong_wolfe"

  Options to_map() const {
    GENAI_CHECK(line_search_fn.empty() || line_search_fn == "strong_wolfe",
                "LBFGS: only 'strong_wolfe' is supported as line_search_fn, got '", line_search_fn, "'");
    GENAI_CHECK(max_iter >= 1, "LBFGS: max_iter must be >= 1, got ", max_iter);
    return {{"lr", lr},
            {"max_iter", static_cast<double>(max_iter)},
            {"max_eval", static_cast<double>(max_eval < 0 ? max_iter * 5 / 4 : max_eval)},
            {"tolerance_grad", tolerance_grad},
            {"tolerance_change", tolerance_change},
            {"history_size", static_cast<double>(history_size)},
            {"line_search_fn", line_search_fn.empty() ? 0.0 : 1.0}};
  }
};

namespace detail {

// ---- flat vectors: 1-d contiguous float32/float64 tensors --------------------------

/// v rounded to dtype d (as a 0-d tensor of that dtype would hold it).
inline double round_to(Dtype d, double v) { return d == kFloat32 ? static_cast<double>(static_cast<float>(v)) : v; }

inline double flat_dot(const Tensor& a, const Tensor& b) {
  return dispatch_float(a.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.data_ptr<T>();
    const T* y = b.data_ptr<T>();
    double s = 0;
    for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(x[i]) * static_cast<double>(y[i]);
    return s;
  });
}
inline double flat_max_abs(const Tensor& a) {
  return dispatch_float(a.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.data_ptr<T>();
    double m = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      double v = std::abs(static_cast<double>(x[i]));
      if (!(v <= m)) m = v;  // NaN propagates, as torch's max
    }
    return m;
  });
}
inline double flat_sum_abs(const Tensor& a) {
  return dispatch_float(a.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = a.data_ptr<T>();
    double s = 0;
    for (int64_t i = 0; i < a.numel(); ++i) s += std::abs(static_cast<double>(x[i]));
    return s;
  });
}
/// y += a * x  (torch: y.add_(x, alpha=a)).
inline void flat_axpy(const Tensor& y, double a, const Tensor& x) {
  dispatch_float(y.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = y.data_ptr<T>();
    const T* px = x.data_ptr<T>();
    const T ta = static_cast<T>(a);
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = py[i] + ta * px[i];
  });
}
/// a * x, a new vector (torch: x.mul(a)).
inline Tensor flat_scale(const Tensor& x, double a) {
  Tensor out = empty_like(x);
  dispatch_float(x.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data_ptr<T>();
    T* po = out.data_ptr<T>();
    const T ta = static_cast<T>(a);
    for (int64_t i = 0; i < x.numel(); ++i) po[i] = px[i] * ta;
  });
  return out;
}
/// a - b, a new vector.
inline Tensor flat_sub(const Tensor& a, const Tensor& b) {
  Tensor out = empty_like(a);
  dispatch_float(a.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = a.data_ptr<T>();
    const T* pb = b.data_ptr<T>();
    T* po = out.data_ptr<T>();
    for (int64_t i = 0; i < a.numel(); ++i) po[i] = pa[i] - pb[i];
  });
  return out;
}
inline Tensor flat_neg(const Tensor& a) {
  Tensor out = empty_like(a);
  dispatch_float(a.dtype(), "LBFGS", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = a.data_ptr<T>();
    T* po = out.data_ptr<T>();
    for (int64_t i = 0; i < a.numel(); ++i) po[i] = -pa[i];
  });
  return out;
}
inline Tensor flat_clone(const Tensor& a) {
  Tensor out = empty_like(a);
  if (a.numel()) std::memcpy(out.raw_data(), a.raw_data(), static_cast<size_t>(a.numel()) * a.element_size());
  return out;
}

// ---- the line search (torch/optim/lbfgs.py) ----------------------------------------

/// Minimizer of the cubic interpolating (x1, f1, g1) and (x2, f2, g2), clamped to
/// `bounds` (default: [min(x1, x2), max(x1, x2)]); the middle of the bounds when
/// the cubic has no minimizer. As torch's _cubic_interpolate.
inline double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                                std::optional<std::pair<double, double>> bounds = std::nullopt) {
  double xmin_bound, xmax_bound;
  if (bounds) {
    xmin_bound = bounds->first;
    xmax_bound = bounds->second;
  } else if (x1 <= x2) {
    xmin_bound = x1;
    xmax_bound = x2;
  } else {
    xmin_bound = x2;
    xmax_bound = x1;
  }
  // d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2);  d2 = sqrt(d1^2 - g1 g2)
  // min_pos = x2 - (x2 - x1) ((g2 + d2 - d1) / (g2 - g1 + 2 d2))
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0) {
    const double d2 = std::sqrt(d2_square);
    double min_pos;
    if (x1 <= x2)
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return std::min(std::max(min_pos, xmin_bound), xmax_bound);
  }
  return (xmin_bound + xmax_bound) / 2.;
}

/// The loss and flat gradient at x + t d (x and d are the caller's).
using DirectionalObjective = std::function<std::pair<double, Tensor>(double t)>;

struct LineSearchResult {
  double f;            // loss at the accepted step
  Tensor g;            // flat gradient there
  double t;            // the accepted step
  int64_t func_evals;  // objective evaluations used
};

/// Line search for a step satisfying the strong Wolfe conditions along d from a
/// point with loss f, flat gradient g and directional derivative gtd = g.d,
/// starting from step t. As torch's _strong_wolfe (ported from lswolfe.lua).
inline LineSearchResult strong_wolfe(const DirectionalObjective& obj_func, double t, const Tensor& d, double f,
                                     const Tensor& g_in, double gtd, double c1 = 1e-4, double c2 = 0.9,
                                     double tolerance_change = 1e-9, int64_t max_ls = 25) {
  const Dtype dt = d.dtype();
  const double d_norm = flat_max_abs(d);
  Tensor g = flat_clone(g_in);
  // evaluate objective and gradient using initial step
  double f_new;
  Tensor g_new;
  std::tie(f_new, g_new) = obj_func(t);
  int64_t ls_func_evals = 1;
  double gtd_new = round_to(dt, flat_dot(g_new, d));

  // bracket an interval containing a point satisfying the Wolfe criteria
  double t_prev = 0, f_prev = f, gtd_prev = gtd;
  Tensor g_prev = g;
  bool done = false;
  int64_t ls_iter = 0;
  std::vector<double> bracket, bracket_f, bracket_gtd;
  std::vector<Tensor> bracket_g;
  while (ls_iter < max_ls) {
    // check conditions
    if (f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev)) {
      bracket = {t_prev, t};
      bracket_f = {f_prev, f_new};
      bracket_g = {g_prev, flat_clone(g_new)};
      bracket_gtd = {gtd_prev, gtd_new};
      break;
    }
    if (std::abs(gtd_new) <= -c2 * gtd) {
      bracket = {t};
      bracket_f = {f_new};
      bracket_g = {g_new};
      done = true;
      break;
    }
    if (gtd_new >= 0) {
      bracket = {t_prev, t};
      bracket_f = {f_prev, f_new};
      bracket_g = {g_prev, flat_clone(g_new)};
      bracket_gtd = {gtd_prev, gtd_new};
      break;
    }
    // interpolate
    const double min_step = t + 0.01 * (t - t_prev);
    const double max_step = t * 10;
    const double tmp = t;
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, std::make_pair(min_step, max_step));
    // next step
    t_prev = tmp;
    f_prev = f_new;
    g_prev = flat_clone(g_new);
    gtd_prev = gtd_new;
    std::tie(f_new, g_new) = obj_func(t);
    ls_func_evals += 1;
    gtd_new = round_to(dt, flat_dot(g_new, d));
    ls_iter += 1;
  }
  // reached max number of iterations?
  if (ls_iter == max_ls) {
    bracket = {0, t};
    bracket_f = {f, f_new};
    bracket_g = {g, g_new};
    bracket_gtd = {gtd, gtd_new};  // unused: the zoom below does not run
  }

  // zoom phase: we now have a point satisfying the criteria, or a bracket around
  // it; refine the bracket until we find the exact point satisfying the criteria
  bool insuf_progress = false;
  // find high and low points in bracket
  size_t low_pos = 0, high_pos = 1;
  if (!(bracket_f[0] <= bracket_f.back())) std::swap(low_pos, high_pos);
  while (!done && ls_iter < max_ls) {
    // line-search bracket is so small
    if (std::abs(bracket[1] - bracket[0]) * d_norm < tolerance_change) break;
    // compute new trial value
    t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]);
    // test that we are making sufficient progress: if t is too close to the
    // boundary, mark insufficient progress, and if we made insufficient progress
    // in the last step, or t is at a boundary, move t 0.1 * len(bracket) away
    // from the nearest boundary point
    const double bmax = std::max(bracket[0], bracket[1]), bmin = std::min(bracket[0], bracket[1]);
    const double eps = 0.1 * (bmax - bmin);
    if (std::min(bmax - t, t - bmin) < eps) {
      // interpolation close to boundary
      if (insuf_progress || t >= bmax || t <= bmin) {
        // evaluate at 0.1 away from boundary
        if (std::abs(t - bmax) < std::abs(t - bmin))
          t = bmax - eps;
        else
          t = bmin + eps;
        insuf_progress = false;
      } else {
        insuf_progress = true;
      }
    } else {
      insuf_progress = false;
    }
    // evaluate new point
    std::tie(f_new, g_new) = obj_func(t);
    ls_func_evals += 1;
    gtd_new = round_to(dt, flat_dot(g_new, d));
    ls_iter += 1;

    if (f_new > (f + c1 * t * gtd) || f_new >= bracket_f[low_pos]) {
      // Armijo condition not satisfied or not lower than lowest point
      bracket[high_pos] = t;
      bracket_f[high_pos] = f_new;
      bracket_g[high_pos] = flat_clone(g_new);
      bracket_gtd[high_pos] = gtd_new;
      if (bracket_f[0] <= bracket_f[1]) {
        low_pos = 0;
        high_pos = 1;
      } else {
        low_pos = 1;
        high_pos = 0;
      }
    } else {
      if (std::abs(gtd_new) <= -c2 * gtd) {
        // Wolfe conditions satisfied
        done = true;
      } else if (gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0) {
        // old high becomes new low
        bracket[high_pos] = bracket[low_pos];
        bracket_f[high_pos] = bracket_f[low_pos];
        bracket_g[high_pos] = bracket_g[low_pos];
        bracket_gtd[high_pos] = bracket_gtd[low_pos];
      }
      // new point becomes new low
      bracket[low_pos] = t;
      bracket_f[low_pos] = f_new;
      bracket_g[low_pos] = flat_clone(g_new);
      bracket_gtd[low_pos] = gtd_new;
    }
  }
  return {bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals};
}

}  // namespace detail

class LBFGS : public Optimizer {
 public:
  LBFGS(std::vector<Tensor> params, const LBFGSOptions& options = {}) : Optimizer("LBFGS", options.to_map()) {
    init_groups({ParamGroup(std::move(params))});
  }

  /// Runs up to max_iter iterations; returns the loss of the first closure call.
  Tensor step(const Closure& closure = nullptr) override {
    GENAI_CHECK(closure != nullptr,
                "LBFGS: step needs a closure that zeroes the gradients, computes the loss, "
                "calls backward and returns the loss");
    NoGradGuard ng;
    const ParamGroup& group = groups_[0];
    const double lr = group.lr();
    const int64_t max_iter = static_cast<int64_t>(group.get("max_iter"));
    const int64_t max_eval = static_cast<int64_t>(group.get("max_eval"));
    const double tolerance_grad = group.get("tolerance_grad");
    const double tolerance_change = group.get("tolerance_change");
    const size_t history_size = static_cast<size_t>(group.get("history_size"));
    const bool strong_wolfe = group.flag("line_search_fn");
    const Dtype dt = group.params[0].dtype();
    auto rnd = [dt](double v) { return detail::round_to(dt, v); };

    // NOTE: LBFGS has only global state, kept as the state of the first param (as torch)
    ParamState& state = state_[0][0];
    state.scalars.emplace("func_evals", 0.0);
    state.scalars.emplace("n_iter", 0.0);

    auto eval_loss = [&](Tensor* keep) {
      Tensor l = run_closure(closure);
      GENAI_CHECK(l.defined() && l.numel() == 1, "LBFGS: the closure must return the loss as a one-element tensor",
                  l.defined() ? ", got shape " + shape_str(l.shape()) : std::string(", got an undefined tensor"));
      if (keep) *keep = l;
      return l.item<double>();
    };

    // evaluate initial f(x) and df/dx
    Tensor orig_loss;
    double loss = eval_loss(&orig_loss);
    int64_t current_evals = 1;
    state.scalars["func_evals"] += 1;

    Tensor flat_grad = gather_flat_grad();
    bool opt_cond = detail::flat_max_abs(flat_grad) <= rnd(tolerance_grad);
    // optimal condition
    if (opt_cond) return orig_loss;

    // tensors cached in state
    Tensor d = get_tensor(state, "d"), prev_flat_grad = get_tensor(state, "prev_flat_grad");
    double t = get_scalar(state, "t", 0.0), H_diag = get_scalar(state, "H_diag", 1.0);
    double prev_loss = get_scalar(state, "prev_loss", 0.0);
    std::vector<Tensor> old_dirs, old_stps;
    std::vector<double> ro;
    for (size_t k = 0;; ++k) {
      auto it = state.tensors.find("old_dirs." + std::to_string(k));
      if (it == state.tensors.end()) break;
      old_dirs.push_back(it->second);
      old_stps.push_back(state.tensors.at("old_stps." + std::to_string(k)));
      ro.push_back(state.scalars.at("ro." + std::to_string(k)));
    }

    int64_t n_iter = 0;
    // optimize for a max of max_iter iterations
    while (n_iter < max_iter) {
      // keep track of nb of iterations
      n_iter += 1;
      const double state_n_iter = (state.scalars["n_iter"] += 1);

      // ---- compute gradient descent direction
      if (state_n_iter == 1) {
        d = detail::flat_neg(flat_grad);
        old_dirs.clear();
        old_stps.clear();
        ro.clear();
        H_diag = 1;
      } else {
        GENAI_CHECK(d.defined() && prev_flat_grad.defined(),
                    "LBFGS: the loaded state has n_iter > 0 but no "
                    "direction 'd' / 'prev_flat_grad'; hint: the state dict is incomplete");
        // do lbfgs update (update memory)
        Tensor y = detail::flat_sub(flat_grad, prev_flat_grad);
        Tensor s = detail::flat_scale(d, t);
        const double ys = rnd(detail::flat_dot(y, s));  // y*s
        if (ys > 1e-10) {
          // updating memory
          if (old_dirs.size() == history_size) {
            // shift history by one (limited-memory)
            old_dirs.erase(old_dirs.begin());
            old_stps.erase(old_stps.begin());
            ro.erase(ro.begin());
          }
          // store new direction/step
          old_dirs.push_back(y);
          old_stps.push_back(s);
          ro.push_back(rnd(1. / ys));
          // update scale of initial Hessian approximation
          H_diag = rnd(ys / rnd(detail::flat_dot(y, y)));  // (y*y)
        }
        // compute the approximate (L-BFGS) inverse Hessian multiplied by the gradient
        const size_t num_old = old_dirs.size();
        std::vector<double> al(num_old);
        // iteration in L-BFGS loop collapsed to use just one buffer
        Tensor q = detail::flat_neg(flat_grad);
        for (size_t i = num_old; i-- > 0;) {
          al[i] = rnd(rnd(detail::flat_dot(old_stps[i], q)) * ro[i]);
          detail::flat_axpy(q, -al[i], old_dirs[i]);
        }
        // multiply by initial Hessian; r/d is the final direction
        d = detail::flat_scale(q, H_diag);
        for (size_t i = 0; i < num_old; ++i) {
          const double be_i = rnd(rnd(detail::flat_dot(old_dirs[i], d)) * ro[i]);
          detail::flat_axpy(d, rnd(al[i] - be_i), old_stps[i]);
        }
      }
      if (!prev_flat_grad.defined())
        prev_flat_grad = detail::flat_clone(flat_grad);
      else
        kernels::copy_into(prev_flat_grad, flat_grad);
      prev_loss = loss;

      // ---- compute step length
      // reset initial guess for step size
      if (state_n_iter == 1) {
        const double inv = rnd(1. / rnd(detail::flat_sum_abs(flat_grad)));
        t = inv < 1. ? rnd(inv * rnd(lr)) : 1. * lr;  // min(1., 1. / flat_grad.abs().sum()) * lr
      } else {
        t = lr;
      }
      // directional derivative
      const double gtd = rnd(detail::flat_dot(flat_grad, d));  // g * d
      // directional derivative is below tolerance
      if (gtd > -tolerance_change) break;

      // optional line search: user function
      int64_t ls_func_evals = 0;
      if (strong_wolfe) {
        std::vector<Tensor> x_init = clone_params();
        auto obj_func = [&](double tt) -> std::pair<double, Tensor> {  // _directional_evaluate
          add_grad(tt, d);
          double l = eval_loss(nullptr);
          Tensor fg = gather_flat_grad();
          set_params(x_init);
          return {l, fg};
        };
        detail::LineSearchResult r = detail::strong_wolfe(obj_func, t, d, loss, flat_grad, gtd);
        loss = r.f;
        flat_grad = r.g;
        t = r.t;
        ls_func_evals = r.func_evals;
        add_grad(t, d);
        opt_cond = detail::flat_max_abs(flat_grad) <= rnd(tolerance_grad);
      } else {
        // no line search, simply move with fixed-step
        add_grad(t, d);
        if (n_iter != max_iter) {
          // re-evaluate function only if not in last iteration (in a stochastic
          // setting there is no use re-evaluating it here)
          loss = eval_loss(nullptr);
          flat_grad = gather_flat_grad();
          opt_cond = detail::flat_max_abs(flat_grad) <= rnd(tolerance_grad);
          ls_func_evals = 1;
        }
      }
      // update func eval
      current_evals += ls_func_evals;
      state.scalars["func_evals"] += static_cast<double>(ls_func_evals);

      // ---- check conditions
      if (n_iter == max_iter) break;
      if (current_evals >= max_eval) break;
      // optimal condition
      if (opt_cond) break;
      // lack of progress
      if (detail::flat_max_abs(detail::flat_scale(d, t)) <= rnd(tolerance_change)) break;
      if (std::abs(loss - prev_loss) < tolerance_change) break;
    }

    state.tensors["d"] = d;
    state.scalars["t"] = t;
    for (auto it = state.tensors.begin(); it != state.tensors.end();)
      it = it->first.rfind("old_", 0) == 0 ? state.tensors.erase(it) : std::next(it);
    for (auto it = state.scalars.begin(); it != state.scalars.end();)
      it = it->first.rfind("ro.", 0) == 0 ? state.scalars.erase(it) : std::next(it);
    for (size_t k = 0; k < old_dirs.size(); ++k) {
      state.tensors["old_dirs." + std::to_string(k)] = old_dirs[k];
      state.tensors["old_stps." + std::to_string(k)] = old_stps[k];
      state.scalars["ro." + std::to_string(k)] = ro[k];
    }
    state.scalars["H_diag"] = H_diag;
    state.tensors["prev_flat_grad"] = prev_flat_grad;
    state.scalars["prev_loss"] = prev_loss;
    return orig_loss;
  }

  /// Total number of parameter elements (the length of the flat vectors).
  int64_t numel() const {
    int64_t n = 0;
    for (const auto& p : groups_[0].params) n += p.numel();
    return n;
  }

 protected:
  void check_group(const ParamGroup& g, size_t index) const override {
    GENAI_CHECK(index == 0, "LBFGS doesn't support per-parameter options (parameter groups)");
    Optimizer::check_group(g, index);
    for (const auto& p : g.params)
      GENAI_CHECK(p.dtype() == g.params[0].dtype(), "LBFGS: all parameters must have one dtype, got ",
                  dtype_name(g.params[0].dtype()), " and ", dtype_name(p.dtype()));
    check_option(g, index, "history_size", g.get("history_size") >= 1, "history_size >= 1");
    check_option(g, index, "max_iter", g.get("max_iter") >= 1, "max_iter >= 1");
  }
  bool is_scalar_state(const std::string& name) const override {
    return name == "func_evals" || name == "n_iter" || name == "t" || name == "H_diag" || name == "prev_loss" ||
           name.rfind("ro.", 0) == 0;
  }
  void check_state_tensor(const std::string& name, const Tensor& t, const Tensor&,
                          const std::string& key) const override {
    GENAI_CHECK(
        name == "d" || name == "prev_flat_grad" || name.rfind("old_dirs.", 0) == 0 || name.rfind("old_stps.", 0) == 0,
        "LBFGS.load_state_dict: unexpected state entry '", key, "'");
    GENAI_CHECK(t.dim() == 1 && t.numel() == numel(), "LBFGS.load_state_dict: '", key, "' has shape ",
                shape_str(t.shape()), " but the parameters have ", numel(), " elements in all");
  }

 private:
  static Tensor get_tensor(const ParamState& st, const std::string& k) {
    auto it = st.tensors.find(k);
    return it == st.tensors.end() ? Tensor() : it->second;
  }
  static double get_scalar(const ParamState& st, const std::string& k, double def) {
    auto it = st.scalars.find(k);
    return it == st.scalars.end() ? def : it->second;
  }

  /// The gradients of all parameters as one vector (zeros for parameters without one).
  Tensor gather_flat_grad() const {
    const auto& ps = groups_[0].params;
    Tensor flat = zeros({numel()}, ps[0].dtype());
    int64_t off = 0;
    for (const auto& p : ps) {
      Tensor g = p.grad();
      if (g.defined()) {
        GENAI_CHECK(g.shape() == p.shape(), "LBFGS: gradient of shape ", shape_str(g.shape()),
                    " does not match its parameter of shape ", shape_str(p.shape()));
        Tensor dst = genai::detail::make_view(flat, p.shape(), contiguous_strides(p.shape()), off);
        kernels::copy_into(dst, genai::detail::as_dtype(g.detach(), p.dtype()));
      }
      off += p.numel();
    }
    return flat;
  }
  /// p += step_size * update[slice of p], for every parameter.
  void add_grad(double step_size, const Tensor& update) {
    int64_t off = 0;
    for (const auto& p : groups_[0].params) {
      detail::FusedParam fp(p, "LBFGS");
      Tensor u = genai::detail::make_view(update, {p.numel()}, {1}, update.offset() + off);
      Tensor flat = genai::detail::make_view(fp.data, {p.numel()}, {1}, fp.data.offset());
      detail::flat_axpy(flat, step_size, u);
      fp.commit();
      off += p.numel();
    }
  }
  std::vector<Tensor> clone_params() const {
    std::vector<Tensor> out;
    for (const auto& p : groups_[0].params) out.push_back(p.detach().clone());
    return out;
  }
  void set_params(const std::vector<Tensor>& xs) {
    const auto& ps = groups_[0].params;
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      p.copy_(xs[i]);
    }
  }
};

}  // namespace optim
}  // namespace genai
