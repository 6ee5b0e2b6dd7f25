// genai/optim/sgd.hpp: stochastic gradient descent with momentum, dampening,
// Nesterov momentum and L2 weight decay (torch.optim.SGD, PyTorch 1.13).
//
// Per parameter, with g its gradient (negated when maximize):
//   g = g + weight_decay * p                       if weight_decay != 0
//   b = g (first step)  or  b = momentum * b + (1 - dampening) * g     if momentum != 0
//   g = g + momentum * b  (nesterov)  or  g = b
//   p = p - lr * g
// Note PyTorch's (and so our) momentum form: v = mu v + g, p -= lr v, not
// Sutskever's v = mu v + lr g. State: "momentum_buffer" (only when momentum != 0).
// Differences from PyTorch: none in the update; lr is required, as torch (NaN
// means "not given" and is refused).
#pragma once

#include <limits>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

struct SGDOptions {
  double lr = std::numeric_limits<double>::quiet_NaN();  // required
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;

  Options to_map() const {
    return {{"lr", lr},
            {"momentum", momentum},
            {"dampening", dampening},
            {"weight_decay", weight_decay},
            {"nesterov", nesterov ? 1.0 : 0.0},
            {"maximize", maximize ? 1.0 : 0.0}};
  }
};

namespace detail {

/// One fused SGD pass over n elements; `first` creates the momentum buffer (b = g);
/// buf is null when momentum is 0.
template <class T>
inline void sgd_update(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double dampening,
                       double weight_decay, bool nesterov, bool maximize, bool first) {
  const T wd = static_cast<T>(weight_decay), mu = static_cast<T>(momentum);
  const T one_minus_damp = static_cast<T>(1.0 - dampening), neg_lr = static_cast<T>(-lr);
  const T sign = maximize ? T(-1) : T(1);  // exact: -g
  auto run = [&](auto use_wd, auto use_mom, auto nest, auto fst) {
    parallel_for(0, n, kOptimGrain, [&](int64_t b, int64_t e) {
      GENAI_OPTIM_SIMD
      for (int64_t i = b; i < e; ++i) {
        const T pi = p[i];
        T d = g[i] * sign;
        if constexpr (decltype(use_wd)::value) d = d + wd * pi;  // d_p = d_p.add(param, alpha=weight_decay)
        if constexpr (decltype(use_mom)::value) {
          T bi;
          if constexpr (decltype(fst)::value)
            bi = d;  // buf = torch.clone(d_p)
          else
            bi = buf[i] * mu + one_minus_damp * d;  // buf.mul_(momentum).add_(d_p, alpha=1-dampening)
          buf[i] = bi;
          if constexpr (decltype(nest)::value)
            d = d + mu * bi;  // d_p = d_p.add(buf, alpha=momentum)
          else
            d = bi;
        }
        p[i] = pi + neg_lr * d;  // param.add_(d_p, alpha=-lr)
      }
    });
  };
  if (!buf)
    with_flags([&](auto use_wd) { run(use_wd, std::false_type{}, std::false_type{}, std::false_type{}); },
               weight_decay != 0.0);
  else
    with_flags([&](auto use_wd, auto nest, auto fst) { run(use_wd, std::true_type{}, nest, fst); }, weight_decay != 0.0,
               nesterov, first);
}

}  // namespace detail

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options)
      : SGD(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options) : Optimizer("SGD", options.to_map()) {
    init_groups(std::move(groups));
  }

  Tensor step(const Closure& closure = nullptr) override {
    Tensor loss = run_closure(closure);
    NoGradGuard ng;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const ParamGroup& g = groups_[gi];
      const double lr = g.lr(), momentum = g.get("momentum"), dampening = g.get("dampening");
      const double wd = g.get("weight_decay");
      const bool nesterov = g.flag("nesterov"), maximize = g.flag("maximize");
      for (size_t i = 0; i < g.params.size(); ++i) {
        detail::FusedParam fp(g.params[i], "SGD");
        if (!fp.grad.defined()) continue;
        ParamState& st = state_[gi][i];
        Tensor buf;
        bool first = false;
        if (momentum != 0.0) {
          auto it = st.tensors.find("momentum_buffer");
          first = it == st.tensors.end();
          if (first) it = st.tensors.emplace("momentum_buffer", detail::state_buffer(fp.data)).first;
          buf = it->second;
        }
        dispatch_float(fp.data.dtype(), "SGD", [&](auto tag) {
          using T = typename decltype(tag)::type;
          detail::sgd_update<T>(fp.data.data_ptr<T>(), fp.grad.data_ptr<T>(),
                                buf.defined() ? buf.data_ptr<T>() : nullptr, fp.data.numel(), lr, momentum, dampening,
                                wd, nesterov, maximize, first);
        });
        fp.commit();
      }
    }
    return loss;
  }

 protected:
  void check_group(const ParamGroup& g, size_t index) const override {
    GENAI_CHECK(!std::isnan(g.get("lr")), "SGD: parameter group ", index,
                " has no learning rate; hint: lr is required, e.g. SGD(params, {.lr = 0.1})");
    Optimizer::check_group(g, index);
    check_option(g, index, "momentum", g.get("momentum") >= 0.0, "momentum >= 0");
    check_option(g, index, "weight_decay", g.get("weight_decay") >= 0.0, "weight_decay >= 0");
    GENAI_CHECK(!g.flag("nesterov") || (g.get("momentum") > 0.0 && g.get("dampening") == 0.0),
                "SGD: Nesterov momentum requires a momentum and zero dampening (parameter group ", index, ": momentum ",
                g.get("momentum"), ", dampening ", g.get("dampening"), ")");
  }
};

}  // namespace optim
}  // namespace genai
