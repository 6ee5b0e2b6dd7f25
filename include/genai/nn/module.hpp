// genai/nn/module.hpp: nn::Module, the base of every layer and model (as torch.nn.Module).
//
// A module owns named parameters (tensors that require grad), named buffers
// (state such as BatchNorm's running statistics) and named child modules, all in
// registration order. Names nest with dots, so a model's state dict has keys like
// `encoder.layers.0.weight`, the same keys a PyTorch model of the same structure
// has: its safetensors weights load with load_state_dict.
//
// Modules are held by std::shared_ptr (as libtorch's module holders):
//
//   struct MLP : nn::Module {
//     std::shared_ptr<nn::Linear> fc1, fc2;
//     MLP() {
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 400));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(400, 10));
//     }
//     Tensor forward(const Tensor& x) { return fc2->forward(relu(fc1->forward(x))); }
//   };
//
// Forward signatures differ between modules (an LSTM returns its states), so the
// base class has none; single-input modules derive from nn::UnaryModule, which is
// what Sequential chains.
//
// Differences from PyTorch: parameters are registered explicitly (no attribute
// magic); load_state_dict copies values into the existing tensors, so handles a
// module keeps to its parameters stay valid.
#pragma once

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "genai/io/safetensors.hpp"
#include "genai/tensor.hpp"

namespace genai {
namespace nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The module's type name, for printing ("Linear", "Conv2d", ...).
  virtual std::string type_name() const { return "Module"; }
  /// One-line description of the module's configuration ("in_features=4, ...").
  virtual std::string extra_repr() const { return ""; }

  // ---- registration -----------------------------------------------------------

  /// Registers a parameter; it is made a leaf that requires grad (unless told not to).
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true) {
    check_new_name(name);
    GENAI_CHECK(t.defined(), "register_parameter: parameter '", name, "' is undefined");
    if (!t.is_leaf()) t = t.detach();
    t.requires_grad_(requires_grad);
    params_.emplace_back(name, std::move(t));
    return params_.back().second;
  }

  /// Registers a buffer (state that is not trained); `persistent` buffers are in the state dict.
  Tensor& register_buffer(const std::string& name, Tensor t, bool persistent = true) {
    check_new_name(name);
    buffers_.emplace_back(name, std::move(t));
    if (!persistent) non_persistent_.push_back(name);
    return buffers_.back().second;
  }

  /// Registers a child module and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_new_name(name);
    GENAI_CHECK(m != nullptr, "register_module: module '", name, "' is null");
    children_.emplace_back(name, std::static_pointer_cast<Module>(m));
    return m;
  }

  // ---- access -----------------------------------------------------------------

  /// Parameters with their dotted names, in registration order (children after own).
  NamedTensors named_parameters(bool recurse = true) const {
    NamedTensors out;
    collect(out, "", recurse, /*params=*/true, /*only_persistent=*/false);
    return out;
  }
  std::vector<Tensor> parameters(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
    return out;
  }
  NamedTensors named_buffers(bool recurse = true) const {
    NamedTensors out;
    collect(out, "", recurse, /*params=*/false, /*only_persistent=*/false);
    return out;
  }
  std::vector<Tensor> buffers(bool recurse = true) const {
    std::vector<Tensor> out;
    for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
    return out;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  /// This module and every descendant, with dotted names ("" for this one).
  std::vector<std::pair<std::string, const Module*>> named_modules() const {
    std::vector<std::pair<std::string, const Module*>> out{{"", this}};
    for (auto& [n, c] : children_)
      for (auto& [cn, cm] : c->named_modules()) out.emplace_back(cn.empty() ? n : n + "." + cn, cm);
    return out;
  }
  /// Total number of parameter elements.
  int64_t num_parameters() const {
    int64_t n = 0;
    for (auto& p : parameters()) n += p.numel();
    return n;
  }

  // ---- modes ------------------------------------------------------------------

  /// Training mode (dropout active, batch norm uses batch statistics) for this module and its children.
  virtual void train(bool on = true) {
    training_ = on;
    for (auto& [n, c] : children_) c->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Clears (set_to_none) or zeroes the gradients of every parameter.
  void zero_grad(bool set_to_none = true) {
    for (auto& p : parameters()) {
      if (set_to_none || !p.grad().defined()) {
        p.set_grad(Tensor());
      } else {
        NoGradGuard ng;
        Tensor g = p.grad();
        g.zero_();
      }
    }
  }

  /// Converts every parameter and floating buffer to dtype d, in place (handles stay valid).
  void to(Dtype d) {
    NoGradGuard ng;
    auto convert = [d](Tensor& t) {
      if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == d) return;
      Tensor c = t.to(d).contiguous();
      TensorImpl* im = t.impl();
      im->storage = c.storage();
      im->strides = c.strides();
      im->offset = c.offset();
      im->dtype = d;
      im->is_contiguous = true;
      im->grad = Tensor();
    };
    for (auto& [n, p] : params_) convert(p);
    for (auto& [n, b] : buffers_) convert(b);
    for (auto& [n, c] : children_) c->to(d);
  }

  // ---- state dict -------------------------------------------------------------

  /// Parameters and persistent buffers by dotted name (sharing storage with the module).
  io::TensorMap state_dict() const {
    NamedTensors all;
    collect(all, "", true, true, false);
    collect(all, "", true, false, true);
    io::TensorMap out;
    for (auto& [n, t] : all) out.emplace(n, t.detach());
    return out;
  }

  /// Copies values from `sd` into the module's tensors. With `strict`, every
  /// missing, unexpected or mis-shaped entry is named in one error; without it,
  /// matching entries are loaded and the rest reported through the return value.
  struct LoadResult {
    std::vector<std::string> missing, unexpected, mismatched;
  };
  LoadResult load_state_dict(const io::TensorMap& sd, bool strict = true) {
    NamedTensors all;
    collect(all, "", true, true, false);
    collect(all, "", true, false, true);
    LoadResult r;
    std::vector<std::string> own;
    for (auto& [n, t] : all) {
      own.push_back(n);
      auto it = sd.find(n);
      if (it == sd.end()) {
        r.missing.push_back(n);
      } else if (it->second.shape() != t.shape()) {
        r.mismatched.push_back(n + ": checkpoint " + shape_str(it->second.shape()) + " vs model " + shape_str(t.shape()));
      }
    }
    std::sort(own.begin(), own.end());
    for (auto& [n, t] : sd)
      if (!std::binary_search(own.begin(), own.end(), n)) r.unexpected.push_back(n);
    if (strict && (!r.missing.empty() || !r.unexpected.empty() || !r.mismatched.empty())) {
      std::ostringstream os;
      os << "load_state_dict: error(s) loading state dict for " << type_name() << ":";
      auto list = [&](const char* what, const std::vector<std::string>& v) {
        if (v.empty()) return;
        os << "\n  " << what << " (" << v.size() << "):";
        for (auto& s : v) os << "\n    " << s;
      };
      list("missing keys", r.missing);
      list("unexpected keys", r.unexpected);
      list("size mismatch", r.mismatched);
      GENAI_FAIL(os.str());
    }
    NoGradGuard ng;
    for (auto& [n, t] : all) {
      auto it = sd.find(n);
      if (it == sd.end() || it->second.shape() != t.shape()) continue;
      Tensor dst = t;
      dst.copy_(it->second);
    }
    return r;
  }

  /// A multi-line description of the module tree, as printing a torch module.
  std::string repr(int indent = 0) const {
    std::ostringstream os;
    os << type_name() << "(" << extra_repr();
    if (!children_.empty()) {
      os << "\n";
      for (auto& [n, c] : children_)
        os << std::string(static_cast<size_t>(indent + 2), ' ') << "(" << n << "): " << c->repr(indent + 2) << "\n";
      os << std::string(static_cast<size_t>(indent), ' ');
    }
    os << ")";
    return os.str();
  }

 protected:
  bool training_ = true;

 private:
  void check_new_name(const std::string& name) const {
    GENAI_CHECK(!name.empty() && name.find('.') == std::string::npos, "module: invalid name '", name,
                "' (names must be non-empty and contain no '.')");
    auto taken = [&](const auto& v) {
      return std::any_of(v.begin(), v.end(), [&](const auto& p) { return p.first == name; });
    };
    GENAI_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "module: the name '", name,
                "' is already registered in ", type_name());
  }
  void collect(NamedTensors& out, const std::string& prefix, bool recurse, bool params, bool only_persistent) const {
    if (params) {
      for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
    } else {
      for (auto& [n, t] : buffers_) {
        if (only_persistent && std::find(non_persistent_.begin(), non_persistent_.end(), n) != non_persistent_.end())
          continue;
        if (t.defined()) out.emplace_back(prefix + n, t);
      }
    }
    if (recurse)
      for (auto& [n, c] : children_) c->collect(out, prefix + n + ".", true, params, only_persistent);
  }
  NamedTensors params_, buffers_;
  std::vector<std::string> non_persistent_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

/// A module with one tensor in and one tensor out: what Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

/// Runs its children in order (as torch.nn.Sequential); children are named "0", "1", ...
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> mods) {
    for (auto& m : mods) push_back(m);
  }
  std::string type_name() const override { return "Sequential"; }
  /// Appends a module (named by its index).
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(layers_.size()), m);
    layers_.push_back(std::static_pointer_cast<UnaryModule>(m));
    return m;
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x;
    for (auto& m : layers_) h = m->forward(h);
    return h;
  }
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const { return layers_.at(i); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

/// A list of modules registered as "0", "1", ... (as torch.nn.ModuleList).
template <class M = Module>
class ModuleList : public Module {
 public:
  std::string type_name() const override { return "ModuleList"; }
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<M>& operator[](size_t i) const { return items_.at(i); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

/// For its lifetime, turns off requires_grad of the given parameters that had it on, and
/// turns it back on when the scope ends, exceptions included: a GAN's discriminator while
/// the generator's loss backpropagates through it (its weights get no gradient).
///
///   { nn::FreezeParameters frozen(D.parameters()); g_loss(D.forward(G.forward(z))).backward(); }
class FreezeParameters {
 public:
  explicit FreezeParameters(const std::vector<Tensor>& params) {
    for (const Tensor& p : params)
      if (p.requires_grad()) {
        Tensor t = p;
        t.requires_grad_(false);
        frozen_.push_back(t);
      }
  }
  ~FreezeParameters() {
    for (Tensor& p : frozen_) p.requires_grad_(true);
  }
  FreezeParameters(const FreezeParameters&) = delete;
  FreezeParameters& operator=(const FreezeParameters&) = delete;

 private:
  std::vector<Tensor> frozen_;
};

}  // namespace nn
}  // namespace genai
