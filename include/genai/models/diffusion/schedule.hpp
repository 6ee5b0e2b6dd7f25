// genai/models/diffusion/schedule.hpp: the Gaussian diffusion process of DDPM (Ho, Jain &
// Abbeel, "Denoising Diffusion Probabilistic Models", 2020): noise schedules, the forward
// process q(x_t | x_0), the training targets and their losses, the posterior
// q(x_{t-1} | x_t, x_0), and the Gaussian KL / discretized likelihood terms of the
// variational bound.
//
//   diffusion::NoiseSchedule sched({.num_timesteps = 1000, .schedule = diffusion::BetaSchedule::Linear});
//   Tensor t = randint(0, 1000, {B});                       // int64 timesteps (B)
//   Tensor noise = randn_like(x0);
//   Tensor x_t = sched.q_sample(x0, t, noise);              // sqrt(abar_t) x0 + sqrt(1 - abar_t) noise
//   Tensor loss = diffusion::diffusion_loss(model_out, x0, noise, t, sched, {.prediction = Prediction::Epsilon});
//
// Schedules (betas beta_1..beta_T, stored 0-based: betas[t] for t = 0..T-1):
//   Linear: linspace(beta_start, beta_end, T) (DDPM: 1e-4 .. 0.02 at T = 1000).
//   Cosine: abar(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) pi / 2)^2, betas[t] =
//           min(1 - abar(t + 1) / abar(t), max_beta) (Nichol & Dhariwal, "Improved Denoising
//           Diffusion Probabilistic Models", 2021; s = 0.008, max_beta = 0.999).
// Every coefficient is computed in double precision (as improved-diffusion's numpy arrays)
// and converted to the tensors' dtype when gathered for a batch of timesteps.
//
// Targets (what the network predicts): Epsilon (the noise, DDPM), X0 (the clean image) or V
// (v = sqrt(abar) eps - sqrt(1 - abar) x0; Salimans & Ho, "Progressive Distillation", 2022).
// predict_x0 / predict_eps convert any of them back, given x_t.
//
// Loss weighting (per sample; the loss is the batch mean of weight(t) * mean((out - target)^2)):
//   Constant: weight 1 (L_simple of DDPM for Epsilon).
//   MinSNR:   the eps-equivalent weight min(snr, gamma) / snr (Hang et al., "Efficient Diffusion
//             Training via Min-SNR Weighting Strategy", 2023), converted to the target: x0-MSE
//             = eps-MSE / snr and v-MSE = eps-MSE (snr + 1) / snr, so the weight on the target's
//             MSE is min(snr, gamma) / snr (Epsilon), min(snr, gamma) (X0), min(snr, gamma) / (snr + 1) (V).
//   P2:       the eps-equivalent weight 1 / (k + snr)^gamma (Choi et al., "Perception Prioritized
//             Training of Diffusion Models", 2022; k = 1, gamma = 1), converted the same way.
// snr(t) = abar_t / (1 - abar_t).
//
// Reference followed: openai/improved-diffusion's gaussian_diffusion.py (names of the
// coefficient arrays, the clipped posterior log-variance, the KL and discretized Gaussian
// log-likelihood). Difference: the discretized likelihood uses the exact normal CDF (erf),
// not improved-diffusion's tanh approximation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "genai/ops/loss.hpp"
#include "genai/tensor.hpp"

namespace genai {
namespace models {
namespace diffusion {

enum class BetaSchedule { Linear, Cosine };
enum class Prediction { Epsilon, X0, V };
enum class LossWeighting { Constant, MinSNR, P2 };
/// The reverse process variance of DDPM's ancestral sampler: sigma_t^2 = beta_t ("fixed large")
/// or beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) ("fixed small", the posterior's).
enum class PosteriorVariance { Beta, BetaTilde };

/// "linear" / "cosine".
inline BetaSchedule parse_beta_schedule(std::string_view s) {
  if (s == "linear") return BetaSchedule::Linear;
  if (s == "cosine") return BetaSchedule::Cosine;
  GENAI_FAIL("parse_beta_schedule: unknown schedule '", s, "'; expected 'linear' or 'cosine'");
}
/// "eps" / "epsilon", "x0" / "sample", "v".
inline Prediction parse_prediction(std::string_view s) {
  if (s == "eps" || s == "epsilon") return Prediction::Epsilon;
  if (s == "x0" || s == "sample") return Prediction::X0;
  if (s == "v" || s == "v_prediction") return Prediction::V;
  GENAI_FAIL("parse_prediction: unknown prediction target '", s, "'; expected 'eps', 'x0' or 'v'");
}
inline std::string prediction_name(Prediction p) {
  return p == Prediction::Epsilon ? "eps" : p == Prediction::X0 ? "x0" : "v";
}
/// "constant" / "none", "min-snr", "p2".
inline LossWeighting parse_loss_weighting(std::string_view s) {
  if (s == "constant" || s == "none") return LossWeighting::Constant;
  if (s == "min-snr" || s == "minsnr" || s == "min_snr") return LossWeighting::MinSNR;
  if (s == "p2") return LossWeighting::P2;
  GENAI_FAIL("parse_loss_weighting: unknown loss weighting '", s, "'; expected 'constant', 'min-snr' or 'p2'");
}
/// "beta" / "fixed-large", "beta-tilde" / "fixed-small".
inline PosteriorVariance parse_posterior_variance(std::string_view s) {
  if (s == "beta" || s == "fixed-large" || s == "fixed_large") return PosteriorVariance::Beta;
  if (s == "beta-tilde" || s == "fixed-small" || s == "fixed_small") return PosteriorVariance::BetaTilde;
  GENAI_FAIL("parse_posterior_variance: unknown variance '", s, "'; expected 'beta' or 'beta-tilde'");
}

struct ScheduleConfig {
  int64_t num_timesteps = 1000;                 // T
  BetaSchedule schedule = BetaSchedule::Linear;
  double beta_start = 1e-4;                     // Linear: beta_1
  double beta_end = 0.02;                       // Linear: beta_T
  double cosine_s = 0.008;                      // Cosine: offset s
  double max_beta = 0.999;                      // Cosine: clip of the betas
};

/// The betas of a schedule (T values, 0-based).
inline std::vector<double> make_betas(const ScheduleConfig& c) {
  const int64_t T = c.num_timesteps;
  GENAI_CHECK(T >= 1, "make_betas: num_timesteps must be >= 1, got ", T);
  std::vector<double> b(static_cast<size_t>(T));
  if (c.schedule == BetaSchedule::Linear) {
    GENAI_CHECK(c.beta_start > 0 && c.beta_end < 1 && c.beta_start <= c.beta_end, "make_betas: linear betas need 0 < ",
                "beta_start <= beta_end < 1, got ", c.beta_start, " and ", c.beta_end);
    for (int64_t i = 0; i < T; ++i)  // np.linspace(beta_start, beta_end, T)
      b[static_cast<size_t>(i)] =
          T == 1 ? c.beta_start : c.beta_start + (c.beta_end - c.beta_start) * static_cast<double>(i) / static_cast<double>(T - 1);
  } else {
    GENAI_CHECK(c.cosine_s >= 0 && c.max_beta > 0 && c.max_beta < 1, "make_betas: cosine schedule needs s >= 0 and ",
                "0 < max_beta < 1, got s = ", c.cosine_s, ", max_beta = ", c.max_beta);
    const double pi = 3.14159265358979323846;
    auto f = [&](double t) {
      const double a = std::cos((t / static_cast<double>(T) + c.cosine_s) / (1 + c.cosine_s) * pi / 2);
      return a * a;
    };
    for (int64_t i = 0; i < T; ++i)
      b[static_cast<size_t>(i)] =
          std::min(1.0 - f(static_cast<double>(i + 1)) / f(static_cast<double>(i)), c.max_beta);
  }
  return b;
}

/// The coefficients of the diffusion process for one beta schedule (all length T, index t = 0..T-1).
class NoiseSchedule {
 public:
  explicit NoiseSchedule(const ScheduleConfig& c = {}) : NoiseSchedule(make_betas(c)) { config_ = c; }
  explicit NoiseSchedule(std::vector<double> betas_in) : betas(std::move(betas_in)) {
    const size_t T = betas.size();
    GENAI_CHECK(T >= 1, "NoiseSchedule: no betas given");
    for (size_t i = 0; i < T; ++i)
      GENAI_CHECK(betas[i] > 0 && betas[i] <= 1, "NoiseSchedule: betas must be in (0, 1], got betas[", i, "] = ",
                  betas[i]);
    config_.num_timesteps = static_cast<int64_t>(T);
    alphas_cumprod.resize(T);
    double a = 1.0;
    for (size_t i = 0; i < T; ++i) alphas_cumprod[i] = a *= (1.0 - betas[i]);
    alphas_cumprod_prev.assign(T, 1.0);
    for (size_t i = 1; i < T; ++i) alphas_cumprod_prev[i] = alphas_cumprod[i - 1];
    posterior_variance.resize(T);
    posterior_log_variance_clipped.resize(T);
    posterior_mean_coef1.resize(T);
    posterior_mean_coef2.resize(T);
    for (size_t i = 0; i < T; ++i) {
      const double ab = alphas_cumprod[i], abp = alphas_cumprod_prev[i];
      posterior_variance[i] = betas[i] * (1.0 - abp) / (1.0 - ab);                    // beta~_t
      posterior_mean_coef1[i] = betas[i] * std::sqrt(abp) / (1.0 - ab);                // on x0
      posterior_mean_coef2[i] = (1.0 - abp) * std::sqrt(1.0 - betas[i]) / (1.0 - ab);  // on x_t
    }
    // log of beta~, with beta~_0 (= 0) replaced by beta~_1, as improved-diffusion
    for (size_t i = 0; i < T; ++i)
      posterior_log_variance_clipped[i] = std::log(i == 0 && T > 1 ? posterior_variance[1] : posterior_variance[i]);
  }

  int64_t num_timesteps() const { return static_cast<int64_t>(betas.size()); }
  const ScheduleConfig& config() const { return config_; }
  /// snr(t) = abar_t / (1 - abar_t).
  double snr(int64_t t) const {
    const double a = alphas_cumprod[index(t)];
    return a / (1.0 - a);
  }
  /// log sigma_t^2 of the reverse process with a fixed variance: log beta~_t (clipped at t = 0) for
  /// BetaTilde; for Beta, log beta_t except at t = 0 where beta~_1 is used (as improved-diffusion).
  double model_log_variance(PosteriorVariance v, int64_t t) const {
    const size_t i = index(t);
    if (v == PosteriorVariance::BetaTilde) return posterior_log_variance_clipped[i];
    return std::log(i == 0 && betas.size() > 1 ? posterior_variance[1] : betas[i]);
  }

  /// values[t_i] for each timestep t_i of t (N), as a tensor (N, 1, ..., 1) of `ndim` dims and dtype d.
  Tensor gather(const std::vector<double>& values, const Tensor& t, Dtype d, int64_t ndim) const {
    std::vector<int64_t> ts = timesteps_of(t);
    std::vector<double> v(ts.size());
    for (size_t i = 0; i < ts.size(); ++i) v[i] = values[index(ts[i])];
    Shape s(static_cast<size_t>(std::max<int64_t>(ndim, 1)), 1);
    s[0] = static_cast<int64_t>(ts.size());
    return from_vector(v, s, d);
  }
  /// f(t_i) for each timestep, as gather().
  template <class F>
  Tensor gather_fn(F f, const Tensor& t, Dtype d, int64_t ndim) const {
    std::vector<int64_t> ts = timesteps_of(t);
    std::vector<double> v(ts.size());
    for (size_t i = 0; i < ts.size(); ++i) v[i] = f(index(ts[i]));
    Shape s(static_cast<size_t>(std::max<int64_t>(ndim, 1)), 1);
    s[0] = static_cast<int64_t>(ts.size());
    return from_vector(v, s, d);
  }

  /// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise: a sample of q(x_t | x0). x0, noise (N, ...), t (N).
  Tensor q_sample(const Tensor& x0, const Tensor& t, const Tensor& noise) const {
    check_batch(x0, t, "q_sample");
    GENAI_CHECK(noise.defined() && noise.shape() == x0.shape(), "q_sample: noise ",
                noise.defined() ? shape_str(noise.shape()) : std::string("(undefined)"), " must have x0's shape ",
                shape_str(x0.shape()));
    Tensor a = coef(t, x0, [&](size_t i) { return std::sqrt(alphas_cumprod[i]); });
    Tensor s = coef(t, x0, [&](size_t i) { return std::sqrt(1.0 - alphas_cumprod[i]); });
    return add(mul(a, x0), mul(s, noise));
  }

  /// What a network trained for `p` should output for (x0, noise, t).
  Tensor target(Prediction p, const Tensor& x0, const Tensor& noise, const Tensor& t) const {
    if (p == Prediction::Epsilon) return noise;
    if (p == Prediction::X0) return x0;
    check_batch(x0, t, "target");
    Tensor a = coef(t, x0, [&](size_t i) { return std::sqrt(alphas_cumprod[i]); });
    Tensor s = coef(t, x0, [&](size_t i) { return std::sqrt(1.0 - alphas_cumprod[i]); });
    return sub(mul(a, noise), mul(s, x0));  // v = sqrt(abar) eps - sqrt(1 - abar) x0
  }

  /// The clean image implied by a network output `out` (of kind p) at x_t.
  Tensor predict_x0(Prediction p, const Tensor& x_t, const Tensor& t, const Tensor& out) const {
    check_batch(x_t, t, "predict_x0");
    if (p == Prediction::X0) return out;
    if (p == Prediction::Epsilon) {  // x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
      Tensor a = coef(t, x_t, [&](size_t i) { return 1.0 / std::sqrt(alphas_cumprod[i]); });
      Tensor s = coef(t, x_t, [&](size_t i) { return std::sqrt(1.0 / alphas_cumprod[i] - 1.0); });
      return sub(mul(a, x_t), mul(s, out));
    }
    // x0 = sqrt(abar) x_t - sqrt(1 - abar) v
    Tensor a = coef(t, x_t, [&](size_t i) { return std::sqrt(alphas_cumprod[i]); });
    Tensor s = coef(t, x_t, [&](size_t i) { return std::sqrt(1.0 - alphas_cumprod[i]); });
    return sub(mul(a, x_t), mul(s, out));
  }
  /// The noise implied by a network output `out` (of kind p) at x_t.
  Tensor predict_eps(Prediction p, const Tensor& x_t, const Tensor& t, const Tensor& out) const {
    check_batch(x_t, t, "predict_eps");
    if (p == Prediction::Epsilon) return out;
    if (p == Prediction::X0) {  // eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)
      Tensor a = coef(t, x_t, [&](size_t i) { return 1.0 / std::sqrt(1.0 - alphas_cumprod[i]); });
      Tensor s = coef(t, x_t, [&](size_t i) { return std::sqrt(alphas_cumprod[i] / (1.0 - alphas_cumprod[i])); });
      return sub(mul(a, x_t), mul(s, out));
    }
    // eps = sqrt(1 - abar) x_t + sqrt(abar) v
    Tensor a = coef(t, x_t, [&](size_t i) { return std::sqrt(1.0 - alphas_cumprod[i]); });
    Tensor s = coef(t, x_t, [&](size_t i) { return std::sqrt(alphas_cumprod[i]); });
    return add(mul(a, x_t), mul(s, out));
  }
  /// The mean of the posterior q(x_{t-1} | x_t, x0): coef1_t x0 + coef2_t x_t.
  Tensor posterior_mean(const Tensor& x0, const Tensor& x_t, const Tensor& t) const {
    check_batch(x_t, t, "posterior_mean");
    Tensor c1 = coef(t, x_t, [&](size_t i) { return posterior_mean_coef1[i]; });
    Tensor c2 = coef(t, x_t, [&](size_t i) { return posterior_mean_coef2[i]; });
    return add(mul(c1, x0), mul(c2, x_t));
  }

  /// The per-sample loss weight on the target's MSE (see the header), (N) in double.
  std::vector<double> loss_weights(LossWeighting w, Prediction p, const Tensor& t, double gamma, double k = 1.0) const {
    std::vector<int64_t> ts = timesteps_of(t);
    std::vector<double> out(ts.size(), 1.0);
    if (w == LossWeighting::Constant) return out;
    for (size_t i = 0; i < ts.size(); ++i) {
      const double s = snr(ts[i]);
      const double w_eps = w == LossWeighting::MinSNR ? std::min(s, gamma) / s : 1.0 / std::pow(k + s, gamma);
      // eps-MSE = snr * x0-MSE = snr / (snr + 1) * v-MSE
      out[i] = p == Prediction::Epsilon ? w_eps : p == Prediction::X0 ? w_eps * s : w_eps * s / (s + 1.0);
    }
    return out;
  }

  /// The timesteps of t (N) (any dtype holding integers), range-checked.
  std::vector<int64_t> timesteps_of(const Tensor& t) const {
    GENAI_CHECK(t.defined() && t.dim() <= 1, "diffusion: timesteps must be a 1-d tensor (N), got ",
                t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
    std::vector<double> v = t.to_vector<double>();
    std::vector<int64_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      out[i] = static_cast<int64_t>(std::llround(v[i]));
      GENAI_CHECK(out[i] >= 0 && out[i] < num_timesteps(), "diffusion: timestep ", v[i], " is outside [0, ",
                  num_timesteps(), ")");
    }
    return out;
  }

  std::vector<double> betas;                           // beta_t
  std::vector<double> alphas_cumprod;                  // abar_t = prod_{s <= t} (1 - beta_s)
  std::vector<double> alphas_cumprod_prev;             // abar_{t-1}, 1 at t = 0
  std::vector<double> posterior_variance;              // beta~_t
  std::vector<double> posterior_log_variance_clipped;  // log beta~_t (t = 0: log beta~_1)
  std::vector<double> posterior_mean_coef1;            // on x0
  std::vector<double> posterior_mean_coef2;            // on x_t

 private:
  size_t index(int64_t t) const {
    GENAI_CHECK(t >= 0 && t < num_timesteps(), "diffusion: timestep ", t, " is outside [0, ", num_timesteps(), ")");
    return static_cast<size_t>(t);
  }
  void check_batch(const Tensor& x, const Tensor& t, const char* op) const {
    GENAI_CHECK(x.defined() && x.dim() >= 1 && x.is_floating_point(), op, ": x must be a floating-point batch (N, ...), got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    GENAI_CHECK(t.defined() && t.dim() == 1 && t.size(0) == x.size(0), op, ": timesteps ",
                t.defined() ? shape_str(t.shape()) : std::string("(undefined)"), " must be (N) with N = ", x.size(0),
                " (the batch of x ", shape_str(x.shape()), ")");
  }
  template <class F>
  Tensor coef(const Tensor& t, const Tensor& like, F f) const {
    return gather_fn([&](size_t i) { return f(i); }, t, like.dtype(), like.dim());
  }

  ScheduleConfig config_;
};

struct LossOptions {
  Prediction prediction = Prediction::Epsilon;
  LossWeighting weighting = LossWeighting::Constant;
  double snr_gamma = 5.0;  // MinSNR: gamma; P2: gamma is p2_gamma
  double p2_gamma = 1.0;   // P2: exponent
  double p2_k = 1.0;       // P2: offset
};

/// The training loss: the batch mean of weight(t_i) * mean over pixels of (out_i - target_i)^2.
/// model_out, x0, noise (N, ...); t (N). With Constant weighting this is F.mse_loss(out, target).
inline Tensor diffusion_loss(const Tensor& model_out, const Tensor& x0, const Tensor& noise, const Tensor& t,
                             const NoiseSchedule& sched, const LossOptions& o = {}) {
  GENAI_CHECK(model_out.defined() && x0.defined() && model_out.shape() == x0.shape(), "diffusion_loss: model output ",
              model_out.defined() ? shape_str(model_out.shape()) : std::string("(undefined)"), " must have x0's shape ",
              x0.defined() ? shape_str(x0.shape()) : std::string("(undefined)"));
  Tensor target = sched.target(o.prediction, x0, noise, t);
  if (o.weighting == LossWeighting::Constant) return mse_loss(model_out, target);
  const double gamma = o.weighting == LossWeighting::MinSNR ? o.snr_gamma : o.p2_gamma;
  std::vector<double> w = sched.loss_weights(o.weighting, o.prediction, t, gamma, o.p2_k);
  const int64_t N = x0.size(0);
  Tensor per = mean(reshape(square(sub(model_out, target)), {N, -1}), {1});  // (N)
  return mean(mul(per, from_vector(w, {N}, x0.dtype())));
}

// ---- terms of the variational bound (improved-diffusion's losses.py) ------------------------

/// KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats; the log-variances
/// broadcast (tensors or (N, 1, ...)).
inline Tensor normal_kl(const Tensor& mean1, const Tensor& logvar1, const Tensor& mean2, const Tensor& logvar2) {
  // 0.5 (-1 + logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2))
  Tensor t = add(sub(logvar2, logvar1), exp(sub(logvar1, logvar2)));
  t = add(t, mul(square(sub(mean1, mean2)), exp(neg(logvar2))));
  return mul(add(t, -1.0), 0.5);
}

/// log p(x) of images x in [-1, 1] with 256 levels under N(means, exp(2 log_scales)) discretized to
/// bins of width 2/255 (the edge bins extend to -inf / +inf), elementwise, in nats (DDPM's L_0).
inline Tensor discretized_gaussian_log_likelihood(const Tensor& x, const Tensor& means, const Tensor& log_scales) {
  GENAI_CHECK(x.defined() && means.defined() && x.shape() == means.shape(),
              "discretized_gaussian_log_likelihood: x and means must have the same shape");
  Tensor centered = sub(x, means);
  Tensor inv_stdv = exp(neg(log_scales));
  const double half_bin = 1.0 / 255.0, rsqrt2 = 0.70710678118654752440;
  auto cdf = [&](const Tensor& z) { return mul(add(erf(mul(z, rsqrt2)), 1.0), 0.5); };  // Phi(z)
  Tensor cdf_plus = cdf(mul(inv_stdv, add(centered, half_bin)));
  Tensor cdf_min = cdf(mul(inv_stdv, add(centered, -half_bin)));
  Tensor log_cdf_plus = log(clamp_min(cdf_plus, 1e-12));
  Tensor log_one_minus_cdf_min = log(clamp_min(sub(ones_like(cdf_min), cdf_min), 1e-12));
  Tensor log_cdf_delta = log(clamp_min(sub(cdf_plus, cdf_min), 1e-12));
  return where(lt(x, -0.999), log_cdf_plus, where(gt(x, 0.999), log_one_minus_cdf_min, log_cdf_delta));
}

}  // namespace diffusion
}  // namespace models
}  // namespace genai
