// genai/optim/rmsprop.hpp: RMSprop (Hinton's lecture 6e; centered form after
// Graves 2013), as torch.optim.RMSprop of PyTorch 1.13.
//
// Per parameter, with g its gradient (negated when maximize):
//   g = g + weight_decay * p                       if weight_decay != 0
//   s = alpha s + (1 - alpha) g^2
//   centered: a = alpha a + (1 - alpha) g;  avg = sqrt(s - a^2) + eps
//   else:                                   avg = sqrt(s) + eps
//   momentum > 0: b = momentum b + g / avg;  p = p - lr b
//   else:         p = p - lr g / avg
// eps is added outside the square root, as torch. State: "step" (scalar),
// "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered).
// Differences from PyTorch: a momentum buffer or grad average that a later change
// of the group's options asks for is created then (torch raises a KeyError).
#pragma once

#include <algorithm>
#include <cmath>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;

  Options to_map() const {
    return {{"lr", lr},
            {"alpha", alpha},
            {"eps", eps},
            {"weight_decay", weight_decay},
            {"momentum", momentum},
            {"centered", centered ? 1.0 : 0.0},
            {"maximize", maximize ? 1.0 : 0.0}};
  }
};

namespace detail {

/// One fused RMSprop pass over n elements; ga (centered) and buf (momentum) may be null.
template <class T>
inline void rmsprop_update(T* p, const T* g, T* sq, T* ga, T* buf, int64_t n, double lr, double alpha, double eps,
                           double weight_decay, double momentum, bool maximize) {
  const T a = static_cast<T>(alpha), c = static_cast<T>(1.0 - alpha), e = static_cast<T>(eps);
  const T wd = static_cast<T>(weight_decay), mu = static_cast<T>(momentum), neg_lr = static_cast<T>(-lr);
  const T sign = maximize ? T(-1) : T(1);  // exact: -g
  with_flags(
      [&](auto use_wd) {
        parallel_for(0, n, kOptimGrain, [&](int64_t b, int64_t end) {
          alignas(64) T gbuf[kOptimTile], den[kOptimTile];
          for (int64_t t0 = b; t0 < end; t0 += kOptimTile) {
            const int64_t len = std::min(kOptimTile, end - t0);
            T* pt = p + t0;
            const T* gt = g + t0;
            T* st = sq + t0;
            GENAI_OPTIM_SIMD
            for (int64_t i = 0; i < len; ++i) {
              T gi = gt[i] * sign;
              if constexpr (decltype(use_wd)::value)
                gi = gi + wd * pt[i];                // grad = grad.add(param, alpha=weight_decay)
              const T si = st[i] * a + c * gi * gi;  // square_avg.mul_(alpha).addcmul_(grad, grad, value=1-alpha)
              st[i] = si;
              gbuf[i] = gi;
              den[i] = si;
            }
            if (ga) {
              T* at = ga + t0;
              GENAI_OPTIM_SIMD
              for (int64_t i = 0; i < len; ++i) {
                const T gai = at[i] * a + c * gbuf[i];  // grad_avg.mul_(alpha).add_(grad, alpha=1-alpha)
                at[i] = gai;
                den[i] = den[i] + T(-1) * gai * gai;  // square_avg.addcmul(grad_avg, grad_avg, value=-1)
              }
            }
            sqrt_inplace(den, len);  // .sqrt_()
            if (buf) {
              T* bt = buf + t0;
              GENAI_OPTIM_SIMD
              for (int64_t i = 0; i < len; ++i) {
                const T bi = bt[i] * mu + gbuf[i] / (den[i] + e);  // buf.mul_(momentum).addcdiv_(grad, avg), avg += eps
                bt[i] = bi;
                pt[i] = pt[i] + neg_lr * bi;  // param.add_(buf, alpha=-lr)
              }
            } else {
              GENAI_OPTIM_SIMD
              for (int64_t i = 0; i < len; ++i)
                pt[i] = pt[i] + neg_lr * gbuf[i] / (den[i] + e);  // param.addcdiv_(grad, avg, value=-lr), avg += eps
            }
          }
        });
      },
      weight_decay != 0.0);
}

}  // namespace detail

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = {})
      : RMSprop(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& options = {}) : Optimizer("RMSprop", options.to_map()) {
    init_groups(std::move(groups));
  }

  Tensor step(const Closure& closure = nullptr) override {
    Tensor loss = run_closure(closure);
    NoGradGuard ng;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const ParamGroup& g = groups_[gi];
      const double lr = g.lr(), alpha = g.get("alpha"), eps = g.get("eps"), wd = g.get("weight_decay");
      const double momentum = g.get("momentum");
      const bool centered = g.flag("centered"), maximize = g.flag("maximize");
      for (size_t i = 0; i < g.params.size(); ++i) {
        detail::FusedParam fp(g.params[i], "RMSprop");
        if (!fp.grad.defined()) continue;
        ParamState& st = state_[gi][i];
        if (st.empty()) {
          st.scalars["step"] = 0.0;
          st.tensors["square_avg"] = detail::state_buffer(fp.data);
        }
        if (momentum > 0.0 && !st.tensors.count("momentum_buffer"))
          st.tensors["momentum_buffer"] = detail::state_buffer(fp.data);
        if (centered && !st.tensors.count("grad_avg")) st.tensors["grad_avg"] = detail::state_buffer(fp.data);
        st.scalars["step"] += 1.0;
        Tensor sq = st.tensors.at("square_avg");
        Tensor ga = centered ? st.tensors.at("grad_avg") : Tensor();
        Tensor buf = momentum > 0.0 ? st.tensors.at("momentum_buffer") : Tensor();
        dispatch_float(fp.data.dtype(), "RMSprop", [&](auto tag) {
          using T = typename decltype(tag)::type;
          detail::rmsprop_update<T>(
              fp.data.data_ptr<T>(), fp.grad.data_ptr<T>(), sq.data_ptr<T>(), ga.defined() ? ga.data_ptr<T>() : nullptr,
              buf.defined() ? buf.data_ptr<T>() : nullptr, fp.data.numel(), lr, alpha, eps, wd, momentum, maximize);
        });
        fp.commit();
      }
    }
    return loss;
  }

 protected:
  void check_group(const ParamGroup& g, size_t index) const override {
    Optimizer::check_group(g, index);
    check_option(g, index, "eps", g.get("eps") >= 0.0, "eps >= 0");
    check_option(g, index, "momentum", g.get("momentum") >= 0.0, "momentum >= 0");
    check_option(g, index, "weight_decay", g.get("weight_decay") >= 0.0, "weight_decay >= 0");
    check_option(g, index, "alpha", g.get("alpha") >= 0.0, "alpha >= 0");
  }
};

}  // namespace optim
}  // namespace genai
