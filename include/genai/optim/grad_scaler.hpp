// genai/optim/grad_scaler.hpp: optim::GradScaler, loss scaling with skipped steps on
// non-finite gradients (as torch.cuda.amp.GradScaler, PyTorch 1.13), and
// optim::grads_finite.
//
//   optim::GradScaler scaler;                    // init_scale 65536, x2 every 2000 clean steps
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = model.forward(x);
//     scaler.scale(loss).backward();             // gradients of loss * scale
//     scaler.unscale_(opt);                      // optional: true gradients, e.g. to clip them
//     optim::clip_grad_norm_(params, 1.0);
//     bool stepped = scaler.step(opt);           // skipped if any gradient is inf/nan
//     scaler.update();                           // scale x0.5 after a skip, x2 after growth_interval clean steps
//   }
//
// genai trains in float32/float64 (bfloat16 is used only for inference weights, in
// models/transformer/kv_cache.hpp), so loss scaling is not needed against fp16
// underflow; the skip-step half is useful on its own: a batch that makes a
// gradient overflow or NaN is skipped instead of corrupting the weights and the
// optimizer's moments. GradScaler(.init_scale = 1, .growth_factor = 1,
// .backoff_factor = 1) gives skip-step without scaling.
//
// Semantics as torch: scale(loss) = loss * scale (the scale is a float32 value);
// unscale_(opt) multiplies every gradient of opt's parameters in place by
// 1/scale (computed in float32, as torch) and records whether any was non-finite;
// step(opt) unscales if not done yet and runs opt.step() unless a non-finite
// gradient was found; update() multiplies the scale by backoff_factor if any
// optimizer found one since the last update (and restarts the growth count), else
// counts a clean step and multiplies it by growth_factor after growth_interval
// clean steps in a row (if the result stays finite). unscale_ twice, step twice,
// or update without a step in between throw, with torch's messages.
// Differences from PyTorch: step() returns whether the optimizer stepped (torch
// returns the optimizer's return value, None on a skip); a closure is refused when
// enabled, as torch; state_dict() is an io::TensorMap of 0-d float64 tensors with
// torch's keys ("scale", "growth_factor", "backoff_factor", "growth_interval",
// "_growth_tracker").
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genai/autograd/anomaly.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

/// True when every gradient of `params` is finite (parameters without a gradient are skipped).
inline bool grads_finite(const std::vector<Tensor>& params) {
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (g.defined() && !autograd::all_finite(g)) return false;
  }
  return true;
}

/// True when every gradient of the optimizer's parameters is finite.
inline bool grads_finite(const Optimizer& opt) {
  for (const ParamGroup& g : opt.param_groups())
    if (!grads_finite(g.params)) return false;
  return true;
}

struct GradScalerOptions {
  double init_scale = 65536.0;     // 2^16, torch's default
  double growth_factor = 2.0;      // scale *= growth_factor after growth_interval clean steps
  double backoff_factor = 0.5;     // scale *= backoff_factor after a skipped step
  int64_t growth_interval = 2000;  // clean steps in a row before the scale grows
  bool enabled = true;             // false: scale() and unscale_() do nothing, step() is opt.step()
};

class GradScaler {
 public:
  explicit GradScaler(const GradScalerOptions& o = {})
      : scale_(to_f32(o.init_scale)), growth_factor_(o.growth_factor), backoff_factor_(o.backoff_factor),
        growth_interval_(o.growth_interval), enabled_(o.enabled) {
    GENAI_CHECK(std::isfinite(o.init_scale) && o.init_scale > 0, "GradScaler: init_scale must be finite and > 0, got ",
                o.init_scale);
    GENAI_CHECK(o.growth_factor >= 1.0, "GradScaler: growth_factor should be >= 1, got ", o.growth_factor);
    GENAI_CHECK(o.backoff_factor > 0.0 && o.backoff_factor <= 1.0, "GradScaler: backoff_factor should be in (0, 1], got ",
                o.backoff_factor);
    GENAI_CHECK(o.growth_interval > 0, "GradScaler: growth_interval should be a positive integer, got ",
                o.growth_interval);
  }

  /// loss * scale (recorded, so backward gives scaled gradients); loss itself when disabled.
  Tensor scale(const Tensor& loss) const {
    if (!enabled_) return loss;
    GENAI_CHECK(loss.defined() && is_floating(loss.dtype()), "GradScaler.scale: expected a floating-point loss tensor");
    return mul(loss, scale_);
  }

  /// Divides the gradients of opt's parameters by the scale, in place, and notes
  /// whether any was inf/nan. At most once per optimizer between update() calls.
  void unscale_(Optimizer& opt) {
    if (!enabled_) return;
    OptState& st = states_[&opt];
    GENAI_CHECK(st.stage != Stage::Unscaled,
                "GradScaler: unscale_() has already been called on this optimizer since the last update().");
    GENAI_CHECK(st.stage != Stage::Stepped, "GradScaler: unscale_() is being called after step().");
    const double inv = static_cast<double>(1.0f / static_cast<float>(scale_));  // as torch: float32 reciprocal
    NoGradGuard ng;
    bool found = false;
    for (ParamGroup& g : opt.param_groups())
      for (Tensor& p : g.params) {
        Tensor gr = p.grad();
        if (!gr.defined()) continue;
        if (gr.requires_grad() || !gr.is_contiguous()) {  // a gradient with a graph, or a strided one: own copy
          gr = genai::detail::contig(gr.detach().clone());
          p.set_grad(gr);
        }
        found = unscale_tensor(gr, inv) || found;
      }
    st.found_inf = found;
    st.stage = Stage::Unscaled;
  }

  /// Unscales (if unscale_ was not called) and runs opt.step() unless a gradient
  /// was inf/nan; returns whether the optimizer stepped.
  bool step(Optimizer& opt, const Closure& closure = nullptr) {
    if (!enabled_) {
      opt.step(closure);
      return true;
    }
    GENAI_CHECK(!closure, "GradScaler: Closure use is not currently supported if GradScaler is enabled.");
    OptState& st = states_[&opt];
    GENAI_CHECK(st.stage != Stage::Stepped, "GradScaler: step() has already been called since the last update().");
    if (st.stage == Stage::Ready) unscale_(opt);
    OptState& s2 = states_[&opt];
    const bool run = !s2.found_inf;
    if (run) opt.step();
    s2.stage = Stage::Stepped;
    last_step_skipped_ = !run;
    return run;
  }

  /// Updates the scale from the steps since the last update (or sets it to new_scale).
  void update(std::optional<double> new_scale = std::nullopt) {
    if (!enabled_) return;
    if (new_scale) {
      GENAI_CHECK(std::isfinite(*new_scale) && *new_scale > 0, "GradScaler.update: new_scale must be finite and > 0, "
                  "got ", *new_scale);
      scale_ = to_f32(*new_scale);
    } else {
      GENAI_CHECK(!states_.empty(), "GradScaler: No inf checks were recorded prior to update.");
      bool found = false;
      for (const auto& [o, st] : states_) found = found || st.found_inf;
      if (found) {  // as torch's _amp_update_scale_
        scale_ = to_f32(scale_ * backoff_factor_);
        growth_tracker_ = 0;
      } else if (++growth_tracker_ == growth_interval_) {
        const double grown = to_f32(scale_ * growth_factor_);
        if (std::isfinite(grown)) scale_ = grown;
        growth_tracker_ = 0;
      }
    }
    states_.clear();
  }

  /// The current scale (a float32 value, as torch's).
  double get_scale() const { return enabled_ ? scale_ : 1.0; }
  double get_growth_factor() const { return growth_factor_; }
  void set_growth_factor(double v) { growth_factor_ = v; }
  double get_backoff_factor() const { return backoff_factor_; }
  void set_backoff_factor(double v) { backoff_factor_ = v; }
  int64_t get_growth_interval() const { return growth_interval_; }
  void set_growth_interval(int64_t v) { growth_interval_ = v; }
  /// Clean steps since the scale last changed.
  int64_t growth_tracker() const { return growth_tracker_; }
  bool is_enabled() const { return enabled_; }
  /// Whether the last step() skipped the optimizer step.
  bool last_step_skipped() const { return last_step_skipped_; }

  /// {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"} as
  /// 0-d float64 tensors (empty when disabled, as torch).
  io::TensorMap state_dict() const {
    io::TensorMap m;
    if (!enabled_) return m;
    m["scale"] = scalar_tensor(scale_, kFloat64);
    m["growth_factor"] = scalar_tensor(growth_factor_, kFloat64);
    m["backoff_factor"] = scalar_tensor(backoff_factor_, kFloat64);
    m["growth_interval"] = scalar_tensor(static_cast<double>(growth_interval_), kFloat64);
    m["_growth_tracker"] = scalar_tensor(static_cast<double>(growth_tracker_), kFloat64);
    return m;
  }
  void load_state_dict(const io::TensorMap& m) {
    GENAI_CHECK(enabled_, "GradScaler.load_state_dict: the scaler is disabled");
    GENAI_CHECK(!m.empty(), "GradScaler.load_state_dict: The source state dict is empty, possibly because it was "
                "saved from a disabled instance of GradScaler.");
    auto get = [&m](const char* k) {
      auto it = m.find(k);
      GENAI_CHECK(it != m.end() && it->second.defined() && it->second.numel() == 1,
                  "GradScaler.load_state_dict: missing or malformed entry '", k, "'");
      return it->second.item<double>();
    };
    const double s = get("scale"), gf = get("growth_factor"), bf = get("backoff_factor");
    const double gi = get("growth_interval"), gt = get("_growth_tracker");
    GENAI_CHECK(std::isfinite(s) && s > 0 && gf >= 1 && bf > 0 && bf <= 1 && gi >= 1 && gt >= 0 && gt < gi,
                "GradScaler.load_state_dict: invalid values (scale ", s, ", growth_factor ", gf, ", backoff_factor ",
                bf, ", growth_interval ", gi, ", _growth_tracker ", gt, ")");
    scale_ = to_f32(s);
    growth_factor_ = gf;
    backoff_factor_ = bf;
    growth_interval_ = static_cast<int64_t>(gi);
    growth_tracker_ = static_cast<int64_t>(gt);
  }

 private:
  enum class Stage { Ready, Unscaled, Stepped };
  struct OptState {
    Stage stage = Stage::Ready;
    bool found_inf = false;
  };

  static double to_f32(double v) { return static_cast<double>(static_cast<float>(v)); }

  /// g *= inv in place (contiguous g); true if any value of g was inf/nan.
  template <class T>
  static bool unscale_loop(T* p, int64_t n, T inv) {
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) {
      const T v = p[i];
      bad = bad || !std::isfinite(v);
      p[i] = v * inv;
    }
    return bad;
  }
  static bool unscale_tensor(Tensor& g, double inv) {
    bool bad;
    if (g.dtype() == kFloat32)
      bad = unscale_loop(g.data_ptr<float>(), g.numel(), static_cast<float>(inv));
    else
      bad = unscale_loop(g.data_ptr<double>(), g.numel(), inv);
    g.storage()->bump_version();
    return bad;
  }

  double scale_;
  double growth_factor_, backoff_factor_;
  int64_t growth_interval_;
  int64_t growth_tracker_ = 0;
  bool enabled_;
  bool last_step_skipped_ = false;
  std::map<const Optimizer*, OptState> states_;
};

}  // namespace optim
}  // namespace genai
