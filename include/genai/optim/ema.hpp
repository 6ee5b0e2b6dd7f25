// genai/optim/ema.hpp: an exponential moving average of parameters, as the
// torch_ema package (fadel/pytorch_ema) and the LitEma of latent-diffusion keep
// one for sampling with averaged weights (DDPM, Stable Diffusion, ...).
//
//   optim::ExponentialMovingAverage ema(model->parameters(), 0.9999);
//   for (...) { ...; opt.step(); ema.update(); }
//   ema.store();   ema.copy_to();   sample(model);   ema.restore();
//
// update(), after each optimizer step, with n = the number of updates so far
// (counting this one):
//   decay_n = min(decay, (1 + n) / (10 + n))     if use_num_updates (the warmup)
//   decay_n = decay                              otherwise
//   shadow = shadow - (1 - decay_n) (shadow - param)
// The warmup lets the average follow the fast early changes of the weights: the
// effective decay is 2/11, 3/12, 4/13, ... until it reaches `decay`
// (torch_ema's default, use_num_updates=True; LitEma's as well).
// The shadow parameters start as copies of the parameters and have their dtypes.
//
// State dict: "shadow.<i>" (the averages, parameter order), "decay" and
// "num_updates" (0-d float64; num_updates is -1 without the warmup).
#pragma once

#include <algorithm>
#include <vector>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

class ExponentialMovingAverage {
 public:
  ExponentialMovingAverage(std::vector<Tensor> params, double decay = 0.9999, bool use_num_updates = true)
      : params_(std::move(params)), decay_(decay), num_updates_(use_num_updates ? 0 : -1) {
    GENAI_CHECK(decay >= 0.0 && decay <= 1.0, "ExponentialMovingAverage: decay must be between 0 and 1, got ", decay);
    NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); ++i) {
      GENAI_CHECK(params_[i].defined() && is_floating(params_[i].dtype()), "ExponentialMovingAverage: parameter ", i,
                  " is undefined or not floating-point");
      shadow_.push_back(params_[i].detach().clone());
    }
  }

  /// Folds the current parameters into the average.
  void update() { update(params_); }
  void update(const std::vector<Tensor>& params) {
    check_params(params, "update");
    double decay = decay_;
    if (num_updates_ >= 0) {
      num_updates_ += 1;
      const double n = static_cast<double>(num_updates_);
      decay = std::min(decay, (1 + n) / (10 + n));
    }
    const double one_minus_decay = 1.0 - decay;
    NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor p = genai::detail::contig(genai::detail::as_dtype(params[i].detach(), shadow_[i].dtype()));
      dispatch_float(shadow_[i].dtype(), "ExponentialMovingAverage", [&](auto tag) {
        using T = typename decltype(tag)::type;
        T* s = shadow_[i].data_ptr<T>();
        const T* x = p.data_ptr<T>();
        const T c = static_cast<T>(one_minus_decay);
        parallel_for(0, p.numel(), detail::kOptimGrain, [&](int64_t b, int64_t e) {
          GENAI_OPTIM_SIMD
          for (int64_t j = b; j < e; ++j)
            s[j] = s[j] - c * (s[j] - x[j]);  // s_param.sub_((s_param - param) * (1 - decay))
        });
      });
    }
  }

  /// Copies the averages into the parameters (for evaluation or sampling).
  void copy_to() { copy_to(params_); }
  void copy_to(const std::vector<Tensor>& params) {
    check_params(params, "copy_to");
    NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor p = params[i];
      p.copy_(shadow_[i]);
    }
  }

  /// Saves copies of the parameters, to be put back by restore().
  void store() { store(params_); }
  void store(const std::vector<Tensor>& params) {
    NoGradGuard ng;
    stored_.clear();
    for (const auto& p : params) stored_.push_back(p.detach().clone());
  }
  /// Puts back the parameters saved by store().
  void restore() { restore(params_); }
  void restore(const std::vector<Tensor>& params) {
    GENAI_CHECK(!stored_.empty() || params.empty(),
                "ExponentialMovingAverage.restore: no parameters were stored; "
                "hint: call store() before copy_to()");
    GENAI_CHECK(stored_.size() == params.size(), "ExponentialMovingAverage.restore: ", stored_.size(),
                " parameters were stored but ", params.size(), " are given");
    NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor p = params[i];
      GENAI_CHECK(p.shape() == stored_[i].shape(), "ExponentialMovingAverage.restore: parameter ", i, " has shape ",
                  shape_str(p.shape()), " but the stored one has shape ", shape_str(stored_[i].shape()));
      p.copy_(stored_[i]);
    }
  }

  const std::vector<Tensor>& shadow_params() const { return shadow_; }
  double decay() const { return decay_; }
  /// Updates so far (-1 when the warmup is off).
  int64_t num_updates() const { return num_updates_; }

  io::TensorMap state_dict() const {
    io::TensorMap out;
    out["decay"] = scalar_tensor(decay_, kFloat64);
    out["num_updates"] = scalar_tensor(static_cast<double>(num_updates_), kFloat64);
    for (size_t i = 0; i < shadow_.size(); ++i) out["shadow." + std::to_string(i)] = shadow_[i].detach();
    return out;
  }

  void load_state_dict(const io::TensorMap& sd) {
    const char* what = "ExponentialMovingAverage.load_state_dict: ";
    auto get = [&](const std::string& k) -> const Tensor& {
      auto it = sd.find(k);
      GENAI_CHECK(it != sd.end() && it->second.defined(), what, "missing entry '", k, "'");
      return it->second;
    };
    std::vector<Tensor> shadow;
    for (size_t i = 0; i < shadow_.size(); ++i) {
      const Tensor& t = get("shadow." + std::to_string(i));
      GENAI_CHECK(t.shape() == shadow_[i].shape(), what, "'shadow.", i, "' has shape ", shape_str(t.shape()),
                  " but parameter ", i, " has shape ", shape_str(shadow_[i].shape()));
      Tensor c = genai::detail::make_tensor(t.shape(), shadow_[i].dtype());
      kernels::copy_into(c, t);
      shadow.push_back(c);
    }
    GENAI_CHECK(sd.size() == shadow_.size() + 2, what, "the state dict has ", sd.size(), " entries but ",
                shadow_.size() + 2, " were expected (", shadow_.size(), " shadow parameters, decay, num_updates)");
    const Tensor &d = get("decay"), &n = get("num_updates");
    GENAI_CHECK(d.numel() == 1 && n.numel() == 1, what, "'decay' and 'num_updates' must hold one value each");
    decay_ = d.item<double>();
    num_updates_ = static_cast<int64_t>(n.item<double>());
    shadow_ = std::move(shadow);
  }

 private:
  void check_params(const std::vector<Tensor>& params, const char* op) const {
    GENAI_CHECK(params.size() == shadow_.size(), "ExponentialMovingAverage.", op, ": ", params.size(),
                " parameters given but the average has ", shadow_.size());
    for (size_t i = 0; i < params.size(); ++i)
      GENAI_CHECK(params[i].defined() && params[i].shape() == shadow_[i].shape(), "ExponentialMovingAverage.", op,
                  ": parameter ", i, " has shape ", params[i].defined() ? shape_str(params[i].shape()) : "undefined",
                  " but its average has shape ", shape_str(shadow_[i].shape()));
  }

  std::vector<Tensor> params_;
  std::vector<Tensor> shadow_;
  std::vector<Tensor> stored_;
  double decay_;
  int64_t num_updates_;
};

}  // namespace optim
}  // namespace genai
