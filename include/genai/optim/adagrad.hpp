// genai/optim/adagrad.hpp: Adagrad (Duchi, Hazan & Singer, 2011), as
// torch.optim.Adagrad of PyTorch 1.13 (dense gradients).
//
// Per parameter, at step t = 1, 2, ... with g its gradient (negated when maximize):
//   g = g + weight_decay * p                       if weight_decay != 0
//   clr = lr / (1 + (t - 1) lr_decay)
//   s = s + g^2                                    (s starts at initial_accumulator_value)
//   p = p - clr g / (sqrt(s) + eps)
// State: "step" (scalar) and "sum", created for every parameter when its group is
// added (as torch's constructor does), not on the first update.
// Differences from PyTorch: a group's own initial_accumulator_value is used (torch
// uses the constructor's for every group); groups added later get their state too
// (torch 1.13 does not initialize it and fails at the next step).
#pragma once

#include <algorithm>
#include <cmath>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
  bool maximize = false;

  Options to_map() const {
    return {{"lr", lr},
            {"lr_decay", lr_decay},
            {"weight_decay", weight_decay},
            {"initial_accumulator_value", initial_accumulator_value},
            {"eps", eps},
            {"maximize", maximize ? 1.0 : 0.0}};
  }
};

namespace detail {

/// One fused Adagrad pass over n elements (clr: the decayed lr of this step).
template <class T>
inline void adagrad_update(T* p, const T* g, T* sum, int64_t n, double clr, double eps, double weight_decay,
                           bool maximize) {
  const T e = static_cast<T>(eps), wd = static_cast<T>(weight_decay), neg_clr = static_cast<T>(-clr);
  const T sign = maximize ? T(-1) : T(1);  // exact: -g
  with_flags(
      [&](auto use_wd) {
        parallel_for(0, n, kOptimGrain, [&](int64_t b, int64_t end) {
          alignas(64) T gbuf[kOptimTile], den[kOptimTile];
          for (int64_t t0 = b; t0 < end; t0 += kOptimTile) {
            const int64_t len = std::min(kOptimTile, end - t0);
            T* pt = p + t0;
            const T* gt = g + t0;
            T* st = sum + t0;
            GENAI_OPTIM_SIMD
            for (int64_t i = 0; i < len; ++i) {
              T gi = gt[i] * sign;
              if constexpr (decltype(use_wd)::value)
                gi = gi + wd * pt[i];               // grad = grad.add(param, alpha=weight_decay)
              const T si = st[i] + T(1) * gi * gi;  // state_sum.addcmul_(grad, grad, value=1)
              st[i] = si;
              gbuf[i] = gi;
              den[i] = si;
            }
            sqrt_inplace(den, len);  // state_sum.sqrt()
            // std = state_sum.sqrt().add_(eps);  param.addcdiv_(grad, std, value=-clr)
            GENAI_OPTIM_SIMD
            for (int64_t i = 0; i < len; ++i) pt[i] = pt[i] + neg_clr * gbuf[i] / (den[i] + e);
          }
        });
      },
      weight_decay != 0.0);
}

}  // namespace detail

class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options = {})
      : Adagrad(std::vector<ParamGroup>{ParamGroup(std::move(params))}, options) {}
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& options = {}) : Optimizer("Adagrad", options.to_map()) {
    init_groups(std::move(groups));
  }

  Tensor step(const Closure& closure = nullptr) override {
    Tensor loss = run_closure(closure);
    NoGradGuard ng;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const ParamGroup& g = groups_[gi];
      const double lr = g.lr(), lr_decay = g.get("lr_decay"), eps = g.get("eps"), wd = g.get("weight_decay");
      const bool maximize = g.flag("maximize");
      for (size_t i = 0; i < g.params.size(); ++i) {
        detail::FusedParam fp(g.params[i], "Adagrad");
        if (!fp.grad.defined()) continue;
        ParamState& st = state_[gi][i];
        if (st.empty()) init_state(gi, i);
        const double step = (st.scalars["step"] += 1.0);
        const double clr = lr / (1.0 + (step - 1.0) * lr_decay);
        Tensor sum = st.tensors.at("sum");
        dispatch_float(fp.data.dtype(), "Adagrad", [&](auto tag) {
          using T = typename decltype(tag)::type;
          detail::adagrad_update<T>(fp.data.data_ptr<T>(), fp.grad.data_ptr<T>(), sum.data_ptr<T>(), fp.data.numel(),
                                    clr, eps, wd, maximize);
        });
        fp.commit();
      }
    }
    return loss;
  }

 protected:
  void check_group(const ParamGroup& g, size_t index) const override {
    Optimizer::check_group(g, index);
    check_option(g, index, "lr_decay", g.get("lr_decay") >= 0.0, "lr_decay >= 0");
    check_option(g, index, "weight_decay", g.get("weight_decay") >= 0.0, "weight_decay >= 0");
    check_option(g, index, "initial_accumulator_value", g.get("initial_accumulator_value") >= 0.0,
                 "initial_accumulator_value >= 0");
    check_option(g, index, "eps", g.get("eps") >= 0.0, "eps >= 0");
  }
  void on_group_added(size_t group) override {
    for (size_t i = 0; i < groups_[group].params.size(); ++i) init_state(group, i);
  }

 private:
  void init_state(size_t g, size_t i) {
    ParamState& st = state_[g][i];
    st.scalars["step"] = 0.0;
    st.tensors["sum"] = detail::state_buffer(groups_[g].params[i], groups_[g].get("initial_accumulator_value"));
  }
};

}  // namespace optim
}  // namespace genai
