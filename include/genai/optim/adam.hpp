// genai/optim/adam.hpp: Adam (Kingma & Ba, 2015) with L2 weight decay and the
// AMSGrad variant, and AdamW (Loshchilov & Hutter, 2019: decoupled weight decay),
// as torch.optim.Adam / torch.optim.AdamW of PyTorch 1.13 (the single-tensor,
// non-capturable path).
//
// Per parameter, at step t = 1, 2, ... with g its gradient (negated when maximize):
//   Adam:  g = g + weight_decay * p                       (L2, folded into g)
//   AdamW: p = p * (1 - lr * weight_decay)                (decoupled, before the moments)
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g^2
//   v_max = max(v_max, v); use v_max for v                (amsgrad)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// eps is added after the bias correction of sqrt(v), as torch (not eps-hat).
// State: "step" (scalar), "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (amsgrad),
// created on a parameter's first update.
// Differences from PyTorch: none in the update (torch keeps step as a float32
// tensor; we keep a double, equal for fewer than 2^24 steps).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

struct AdamOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 penalty; AdamW: decoupled decay
  bool amsgrad = false;
  bool maximize = false;

  Options to_map() const {
    return {{"lr", lr},
            {"beta1", betas[0]},
            {"beta2", betas[1]},
            {"eps", eps},
            {"weight_decay", weight_decay},
            {"amsgrad", amsgrad ? 1.0 : 0.0},
            {"maximize", maximize ? 1.0 : 0.0}};
  }
};

/// AdamW's options: Adam's, with weight_decay = 1e-2 by default (as torch).
struct AdamWOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: p *= 1 - lr * weight_decay
  bool amsgrad = false;
  bool maximize = false;

  Options to_map() const { return AdamOptions{lr, betas, eps, weight_decay, amsgrad, maximize}.to_map(); }
};

namespace detail {

/// One fused Adam/AdamW pass over n elements (scalars precomputed per step as
/// torch does); vmax is null without amsgrad.
template <class T>
inline void adam_update(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, double beta1, double beta2, double eps,
                        double l2, double decoupled_factor, double step_size, double bias_correction2_sqrt,
                        bool maximize) {
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T c1 = static_cast<T>(1.0 - beta1), c2 = static_cast<T>(1.0 - beta2);
  const T wd = static_cast<T>(l2), dec = static_cast<T>(decoupled_factor), e = static_cast<T>(eps);
  const T bc2s = static_cast<T>(bias_correction2_sqrt), neg_step = static_cast<T>(-step_size);
  const T sign = maximize ? T(-1) : T(1);  // exact: -g
  with_flags(
      [&](auto use_l2, auto use_dec) {
        parallel_for(0, n, kOptimGrain, [&](int64_t b, int64_t end) {
          alignas(64) T den[kOptimTile];
          for (int64_t t0 = b; t0 < end; t0 += kOptimTile) {
            const int64_t len = std::min(kOptimTile, end - t0);
            T* pt = p + t0;
            const T* gt = g + t0;
            T* mt = m + t0;
            T* vt = v + t0;
            GENAI_OPTIM_SIMD
            for (int64_t i = 0; i < len; ++i) {
              T gi = gt[i] * sign;
              T pi = pt[i];
              if constexpr (decltype(use_l2)::value) gi = gi + wd * pi;  // grad = grad.add(param, alpha=weight_decay)
              if constexpr (decltype(use_dec)::value) pt[i] = pi * dec;  // param.mul_(1 - lr * weight_decay)
              const T mi = mt[i] * b1 + c1 * gi;       // exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
              const T vi = vt[i] * b2 + c2 * gi * gi;  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
              mt[i] = mi;
              vt[i] = vi;
              den[i] = vi;
            }
            if (vmax) {
              T* xt = vmax + t0;
              GENAI_OPTIM_SIMD
              for (int64_t i = 0; i < len; ++i) {
                const T vi = den[i];
                // torch.maximum(max_exp_avg_sq, exp_avg_sq), where a NaN wins
                const T mx = (vi != vi || xt[i] < vi) ? vi : xt[i];
                xt[i] = mx;
                den[i] = mx;
              }
            }
            sqrt_inplace(den, len);  // v.sqrt()
            // denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
            // param.addcdiv_(exp_avg, denom, value=-step_size)
            GENAI_OPTIM_SIMD
            for (int64_t i = 0; i < len; ++i) pt[i] = pt[i] + neg_step * mt[i] / (den[i] / bc2s + e);
          }
        });
      },
      l2 != 0.0, decoupled_factor != 1.0);
}

}  // namespace detail

/// Adam, and AdamW when constructed with decoupled = true (see class AdamW).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {})
      : Adam(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {}) : Adam("Adam", false, options.to_map()) {
    init_groups(std::move(groups));
  }

  Tensor step(const Closure& closure = nullptr) override {
    Tensor loss = run_closure(closure);
    NoGradGuard ng;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const ParamGroup& g = groups_[gi];
      const double lr = g.lr(), beta1 = g.get("beta1"), beta2 = g.get("beta2"), eps = g.get("eps");
      const double wd = g.get("weight_decay");
      const bool amsgrad = g.flag("amsgrad"), maximize = g.flag("maximize");
      for (size_t i = 0; i < g.params.size(); ++i) {
        detail::FusedParam fp(g.params[i], name_.c_str());
        if (!fp.grad.defined()) continue;
        ParamState& st = state_[gi][i];
        if (st.empty()) {
          st.scalars["step"] = 0.0;
          st.tensors["exp_avg"] = detail::state_buffer(fp.data);
          st.tensors["exp_avg_sq"] = detail::state_buffer(fp.data);
        }
        if (amsgrad && !st.tensors.count("max_exp_avg_sq"))
          st.tensors["max_exp_avg_sq"] = detail::state_buffer(fp.data);
        const double step = (st.scalars["step"] += 1.0);
        const double bias_correction1 = 1.0 - std::pow(beta1, step);
        const double bias_correction2 = 1.0 - std::pow(beta2, step);
        const double step_size = lr / bias_correction1;
        const double bias_correction2_sqrt = std::sqrt(bias_correction2);
        Tensor m = st.tensors.at("exp_avg"), v = st.tensors.at("exp_avg_sq");
        Tensor vmax = amsgrad ? st.tensors.at("max_exp_avg_sq") : Tensor();
        dispatch_float(fp.data.dtype(), name_.c_str(), [&](auto tag) {
          using T = typename decltype(tag)::type;
          detail::adam_update<T>(fp.data.data_ptr<T>(), fp.grad.data_ptr<T>(), m.data_ptr<T>(), v.data_ptr<T>(),
                                 vmax.defined() ? vmax.data_ptr<T>() : nullptr, fp.data.numel(), beta1, beta2, eps,
                                 decoupled_ ? 0.0 : wd, decoupled_ ? 1.0 - lr * wd : 1.0, step_size,
                                 bias_correction2_sqrt, maximize);
        });
        fp.commit();
      }
    }
    return loss;
  }

 protected:
  Adam(const char* name, bool decoupled, Options defaults)
      : Optimizer(name, std::move(defaults)), decoupled_(decoupled) {}

  void check_group(const ParamGroup& g, size_t index) const override {
    Optimizer::check_group(g, index);
    check_option(g, index, "eps", g.get("eps") >= 0.0, "eps >= 0");
    check_option(g, index, "beta1", g.get("beta1") >= 0.0 && g.get("beta1") < 1.0, "0 <= beta1 < 1");
    check_option(g, index, "beta2", g.get("beta2") >= 0.0 && g.get("beta2") < 1.0, "0 <= beta2 < 1");
    check_option(g, index, "weight_decay", g.get("weight_decay") >= 0.0, "weight_decay >= 0");
  }

  bool decoupled_;
};

/// AdamW: Adam with decoupled weight decay, p *= 1 - lr * weight_decay before the update.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {})
      : AdamW(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {}) : Adam("AdamW", true, options.to_map()) {
    init_groups(std::move(groups));
  }
};

}  // namespace optim
}  // namespace genai
