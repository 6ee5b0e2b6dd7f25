// genai/models/diffusion/sampling.hpp: sampling from a trained diffusion model, deterministic
// DDIM inversion, classifier-free guidance, and the variational bound in bits per dimension.
//
//   diffusion::DenoiseFn f = diffusion::unet_denoiser(net);              // or with labels + guidance
//   diffusion::SampleResult r = diffusion::sample(f, sched, {64, 1, 28, 28},
//       {.sampler = diffusion::Sampler::DDIM, .steps = 50, .eta = 0.0, .progress = true});
//   Tensor noise = diffusion::ddim_invert(f, sched, images, {.steps = 50});   // image -> noise
//   Tensor bpd = diffusion::variational_bound(f, sched, images, {}).total_bpd;  // (N) bits/dim
//
// Samplers (x_T ~ N(0, I); images in [-1, 1]):
//   DDPM ancestral (Ho et al. 2020, Algorithm 2), all T steps: x0^ = predict_x0 (clamped to
//     [-1, 1] with clip_denoised), x_{t-1} = mu~_t(x0^, x_t) + sigma_t z (no noise at t = 0), with
//     sigma_t^2 = beta_t (PosteriorVariance::Beta) or beta~_t (BetaTilde).
//   DDIM (Song, Meng & Ermon, "Denoising Diffusion Implicit Models", 2021, eq. 12) on S of the T
//     timesteps, tau_i = floor(i T / S), i = 0..S-1 (= range(0, T, T / S) when S divides T);
//     from tau_i to tau_{i-1} (abar = 1 after tau_0):
//       x0^ = predict_x0, eps^ = predict_eps (with clip_denoised: x0^ clamped and eps^ recomputed
//       from it), sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev),
//       x_prev = sqrt(abar_prev) x0^ + sqrt(1 - abar_prev - sigma^2) eps^ + sigma z.
//     eta = 0 is deterministic (the probability-flow ODE's first-order solver), eta = 1 has
//     DDPM's variance beta~ on the coarse grid.
//   DDIM inversion (Dhariwal & Nichol 2021, appendix; diffusers' DDIMInverseScheduler): the eta = 0
//     update run forwards, from the image (abar = 1) through tau_0 < ... < tau_{S-1}:
//       eps^ = eps(x, tau_i) evaluated at the current, less noisy point; x0^ = (x - sqrt(1 -
//       abar_prev) eps^) / sqrt(abar_prev); x = sqrt(abar_tau_i) x0^ + sqrt(1 - abar_tau_i) eps^.
//     The sampler evaluates eps at the noisier point, so the round trip is approximate; with
//     fixed_point_iters > 0 each step re-evaluates eps at its own result (fixed-point iteration of
//     the exact inverse; Pan et al., "Effective Real Image Editing with Accelerated Iterative
//     Diffusion Inversion", 2023), which makes it close to exact. Decode with DDIM, eta = 0, the
//     same steps and clip_denoised = false.
//
// Classifier-free guidance (Ho & Salimans, 2022): out = out_uncond + s (out_cond - out_uncond),
// both in one batch of 2N (s = 1: conditional only; s = 0: unconditional).
//
// Variational bound (Ho et al. 2020 eq. 5; improved-diffusion's calc_bpd_loop): per image,
//   L = KL(q(x_T | x0) || N(0, I)) + sum_{t >= 1} KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))
//       - log p(x0 | x1) (the discretized Gaussian decoder),
// each term averaged over the dimensions and divided by log 2 (bits/dim), with the fixed reverse
// variance of the DDPM sampler and one draw of x_t per term. t_stride > 1 evaluates every
// t_stride-th term and counts it t_stride times (an estimate, for speed).
//
// Noise: every draw comes from `gen` in a fixed order (x_T, then one z per noisy step), unless
// options.x_T and options.noise supply it (tests replay a Python reference this way).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genai/models/diffusion/schedule.hpp"
#include "genai/models/diffusion/unet.hpp"
#include "genai/train/progress.hpp"

namespace genai {
namespace models {
namespace diffusion {

/// A network as the samplers see it: its output (in its Prediction parameterization) for
/// x_t (N, ...) at the int64 timesteps t (N).
using DenoiseFn = std::function<Tensor(const Tensor& x_t, const Tensor& t)>;
/// Supplies the standard normal draw for sampler step `step` (0-based) with the given shape.
using NoiseFn = std::function<Tensor(int64_t step, const Shape& shape)>;

/// The U-Net as a DenoiseFn. labels (N) int64 for a class-conditional model (undefined: the null
/// class); guidance != 1 applies classifier-free guidance with scale `guidance`.
inline DenoiseFn unet_denoiser(UNet& model, Tensor labels = Tensor(), double guidance = 1.0) {
  GENAI_CHECK(!labels.defined() || model.class_conditional(),
              "unet_denoiser: labels given to an unconditional model; hint: set UNetConfig.num_classes");
  GENAI_CHECK(guidance == 1.0 || labels.defined(), "unet_denoiser: guidance ", guidance, " needs labels");
  return [&model, labels, guidance](const Tensor& x, const Tensor& t) -> Tensor {
    if (!labels.defined()) return model.forward(x, t);
    GENAI_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "unet_denoiser: labels ", shape_str(labels.shape()),
                " do not match the batch ", shape_str(x.shape()));
    if (guidance == 1.0) return model.forward(x, t, labels);
    const int64_t N = x.size(0);
    Tensor y2 = cat({labels, full({N}, static_cast<double>(model.null_class()), kInt64)});
    Tensor out = model.forward(cat({x, x}), cat({t, t}), y2);  // (2N, ...): conditional, then unconditional
    Tensor oc = narrow(out, 0, 0, N), ou = narrow(out, 0, N, N);
    return add(ou, mul(sub(oc, ou), guidance));  // out_u + s (out_c - out_u)
  };
}

enum class Sampler { DDPM, DDIM };
/// "ddpm" / "ddim".
inline Sampler parse_sampler(std::string_view s) {
  if (s == "ddpm") return Sampler::DDPM;
  if (s == "ddim") return Sampler::DDIM;
  GENAI_FAIL("parse_sampler: unknown sampler '", s, "'; expected 'ddpm' or 'ddim'");
}

/// DDIM's timesteps: tau_i = floor(i T / S), i = 0..S-1 (increasing).
inline std::vector<int64_t> ddim_timesteps(int64_t num_timesteps, int64_t steps) {
  GENAI_CHECK(steps >= 1 && steps <= num_timesteps, "ddim_timesteps: steps must be in [1, T = ", num_timesteps,
              "], got ", steps);
  std::vector<int64_t> ts(static_cast<size_t>(steps));
  for (int64_t i = 0; i < steps; ++i) ts[static_cast<size_t>(i)] = i * num_timesteps / steps;
  return ts;
}

namespace detail {
inline Tensor timesteps_like(const Tensor& x, int64_t t) { return full({x.size(0)}, static_cast<double>(t), kInt64); }
}  // namespace detail

/// One DDPM ancestral step from x_t to x_{t-1}, given the network output at (x_t, t) and the
/// standard normal draw `noise` (ignored at t = 0; may be undefined there).
inline Tensor ddpm_step(const NoiseSchedule& s, Prediction p, const Tensor& model_out, const Tensor& x_t, int64_t t,
                        PosteriorVariance var, const Tensor& noise, bool clip_denoised = true) {
  Tensor tt = detail::timesteps_like(x_t, t);
  Tensor x0 = s.predict_x0(p, x_t, tt, model_out);
  if (clip_denoised) x0 = clamp(x0, -1.0, 1.0);
  Tensor mean = s.posterior_mean(x0, x_t, tt);  // mu~_t(x0^, x_t)
  if (t == 0) return mean;
  GENAI_CHECK(noise.defined() && noise.shape() == x_t.shape(), "ddpm_step: noise must have x_t's shape ",
              shape_str(x_t.shape()));
  return add(mean, mul(noise, std::exp(0.5 * s.model_log_variance(var, t))));  // + sigma_t z
}

/// One DDIM step from timestep t to t_prev (t_prev = -1: the clean image, abar = 1), given the
/// network output at (x_t, t) and, when eta > 0, the standard normal draw `noise`.
inline Tensor ddim_step(const NoiseSchedule& s, Prediction p, const Tensor& model_out, const Tensor& x_t, int64_t t,
                        int64_t t_prev, double eta, const Tensor& noise, bool clip_denoised = false) {
  GENAI_CHECK(t_prev < t && t_prev >= -1, "ddim_step: t_prev (", t_prev, ") must be in [-1, t = ", t, ")");
  GENAI_CHECK(eta >= 0, "ddim_step: eta must be >= 0, got ", eta);
  Tensor tt = detail::timesteps_like(x_t, t);
  const double a_t = s.alphas_cumprod[static_cast<size_t>(t)];
  const double a_prev = t_prev >= 0 ? s.alphas_cumprod[static_cast<size_t>(t_prev)] : 1.0;
  Tensor x0 = s.predict_x0(p, x_t, tt, model_out);
  Tensor eps;
  if (clip_denoised) {
    x0 = clamp(x0, -1.0, 1.0);
    eps = mul(sub(x_t, mul(x0, std::sqrt(a_t))), 1.0 / std::sqrt(1.0 - a_t));  // eps consistent with x0^
  } else {
    eps = s.predict_eps(p, x_t, tt, model_out);
  }
  const double sigma = eta * std::sqrt((1.0 - a_prev) / (1.0 - a_t)) * std::sqrt(1.0 - a_t / a_prev);
  const double dir = std::sqrt(std::max(0.0, 1.0 - a_prev - sigma * sigma));
  Tensor x = add(mul(x0, std::sqrt(a_prev)), mul(eps, dir));
  if (sigma > 0) {
    GENAI_CHECK(noise.defined() && noise.shape() == x_t.shape(), "ddim_step: eta > 0 needs noise of x_t's shape ",
                shape_str(x_t.shape()));
    x = add(x, mul(noise, sigma));
  }
  return x;
}

struct SampleOptions {
  Sampler sampler = Sampler::DDIM;
  int64_t steps = 50;               // DDIM: number of steps S (1..T); DDPM always runs all T steps
  double eta = 0.0;                 // DDIM: 0 deterministic, 1 DDPM-like
  Prediction prediction = Prediction::Epsilon;
  PosteriorVariance variance = PosteriorVariance::BetaTilde;  // DDPM: sigma_t^2
  bool clip_denoised = true;        // clamp the predicted x0 to [-1, 1] at every step
  int64_t trajectory_frames = 0;    // > 1: keep this many x_t, evenly spaced from x_T to the result
  bool progress = false;            // a progress bar over the steps (stderr)
  std::string desc = "sampling";    // the bar's label
  Tensor x_T{};                     // the starting noise (default: drawn from gen, of `dtype`)
  Dtype dtype = kFloat32;           // the dtype of the drawn noise (the model's)
  NoiseFn noise{};                  // the per-step draws (default: from gen)
};

struct SampleResult {
  Tensor images;                      // (N, C, H, W), not clamped
  std::vector<Tensor> trajectory;     // trajectory_frames tensors (N, C, H, W), x_T first
  std::vector<int64_t> trajectory_t;  // the timestep of each frame (-1: the final image)
};

/// Samples images of `shape` (N, C, H, W) from the model (runs without autograd).
inline SampleResult sample(const DenoiseFn& model, const NoiseSchedule& s, const Shape& shape,
                           const SampleOptions& o = {}, Generator& gen = default_generator()) {
  GENAI_CHECK(shape.size() >= 2 && shape[0] >= 1, "sample: shape must be (N, ...) with N >= 1, got ", shape_str(shape));
  NoGradGuard ng;
  const int64_t T = s.num_timesteps();
  std::vector<int64_t> ts;  // visited timesteps, increasing
  if (o.sampler == Sampler::DDPM) {
    for (int64_t t = 0; t < T; ++t) ts.push_back(t);
  } else {
    ts = ddim_timesteps(T, o.steps);
  }
  const int64_t n = static_cast<int64_t>(ts.size());
  Tensor x;
  if (o.x_T.defined()) {
    GENAI_CHECK(o.x_T.shape() == shape, "sample: x_T ", shape_str(o.x_T.shape()), " must have shape ", shape_str(shape));
    x = o.x_T;
  } else {
    x = randn(shape, o.dtype, gen);
  }
  SampleResult r;
  std::vector<int64_t> frame_at;  // step counts (0 = x_T, n = final) at which to keep a frame
  if (o.trajectory_frames > 1)
    for (int64_t k = 0; k < o.trajectory_frames; ++k) frame_at.push_back((k * n + (o.trajectory_frames - 1) / 2) / (o.trajectory_frames - 1));
  size_t next_frame = 0;
  auto keep = [&](int64_t done, int64_t t) {
    while (next_frame < frame_at.size() && frame_at[next_frame] == done) {
      r.trajectory.push_back(x.clone());
      r.trajectory_t.push_back(t);
      ++next_frame;
    }
  };
  keep(0, ts.back());
  std::unique_ptr<train::ProgressBar> bar;
  if (o.progress) bar = std::make_unique<train::ProgressBar>(n, train::ProgressOptions{.desc = o.desc});
  for (int64_t i = n - 1, step = 0; i >= 0; --i, ++step) {
    const int64_t t = ts[static_cast<size_t>(i)];
    Tensor out = model(x, detail::timesteps_like(x, t));
    GENAI_CHECK(out.defined() && out.shape() == x.shape(), "sample: the model returned ",
                out.defined() ? shape_str(out.shape()) : std::string("(undefined)"), " for x_t ", shape_str(x.shape()));
    const bool noisy = o.sampler == Sampler::DDPM ? t > 0 : (o.eta > 0 && i > 0);
    Tensor z;
    if (noisy) z = o.noise ? o.noise(step, x.shape()) : randn(x.shape(), x.dtype(), gen);
    if (o.sampler == Sampler::DDPM) {
      x = ddpm_step(s, o.prediction, out, x, t, o.variance, z, o.clip_denoised);
    } else {
      x = ddim_step(s, o.prediction, out, x, t, i > 0 ? ts[static_cast<size_t>(i - 1)] : -1, o.eta, z, o.clip_denoised);
    }
    keep(step + 1, i > 0 ? ts[static_cast<size_t>(i - 1)] : -1);
    if (bar) bar->update();
  }
  if (bar) bar->close();
  r.images = x;
  return r;
}

struct InversionOptions {
  int64_t steps = 50;                 // S, as the DDIM sampler's
  Prediction prediction = Prediction::Epsilon;
  int64_t fixed_point_iters = 0;      // extra evaluations per step (0: plain DDIM inversion)
  bool progress = false;
  std::string desc = "inverting";
};

/// Deterministic DDIM inversion: images x0 (N, C, H, W) in [-1, 1] -> the x_T that DDIM (eta = 0,
/// the same steps, clip_denoised = false) maps back to (approximately) x0.
inline Tensor ddim_invert(const DenoiseFn& model, const NoiseSchedule& s, const Tensor& x0,
                          const InversionOptions& o = {}) {
  GENAI_CHECK(x0.defined() && x0.dim() >= 2 && x0.is_floating_point(), "ddim_invert: x0 must be a float batch (N, ...)");
  GENAI_CHECK(o.fixed_point_iters >= 0, "ddim_invert: fixed_point_iters must be >= 0");
  NoGradGuard ng;
  const std::vector<int64_t> ts = ddim_timesteps(s.num_timesteps(), o.steps);
  std::unique_ptr<train::ProgressBar> bar;
  if (o.progress) bar = std::make_unique<train::ProgressBar>(o.steps, train::ProgressOptions{.desc = o.desc});
  Tensor x = x0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t t = ts[i];
    const double a_prev = i > 0 ? s.alphas_cumprod[static_cast<size_t>(ts[i - 1])] : 1.0;
    const double a_t = s.alphas_cumprod[static_cast<size_t>(t)];
    Tensor tt = detail::timesteps_like(x, t);
    Tensor guess = x;  // where eps is evaluated: the current point, then the step's own result
    Tensor next;
    for (int64_t it = 0; it <= o.fixed_point_iters; ++it) {
      Tensor eps = s.predict_eps(o.prediction, guess, tt, model(guess, tt));
      Tensor x0h = mul(sub(x, mul(eps, std::sqrt(1.0 - a_prev))), 1.0 / std::sqrt(a_prev));
      next = add(mul(x0h, std::sqrt(a_t)), mul(eps, std::sqrt(1.0 - a_t)));
      guess = next;
    }
    x = next;
    if (bar) bar->update();
  }
  if (bar) bar->close();
  return x;
}

struct VLBOptions {
  Prediction prediction = Prediction::Epsilon;
  PosteriorVariance variance = PosteriorVariance::BetaTilde;  // the reverse process' fixed variance
  bool clip_denoised = true;
  int64_t t_stride = 1;   // evaluate every t_stride-th KL term (weighted), 1: all (exact bound)
  bool progress = false;
  NoiseFn noise{};        // the draw of x_t for term k (k = 0, 1, ... in evaluation order T-1 .. 0)
};

struct VLBResult {
  Tensor total_bpd;  // (N) the bound in bits/dim: prior + sum of the terms
  Tensor prior_bpd;  // (N) KL(q(x_T | x0) || N(0, I))
  Tensor terms_bpd;  // (N) sum over t of L_{t-1} (t >= 1) and L_0 (the decoder)
  Tensor decoder_bpd;  // (N) -log p(x0 | x1) / (D log 2), included in terms_bpd
};

/// The variational bound on -log p(x0) in bits/dim for images x0 (N, C, H, W) in [-1, 1].
inline VLBResult variational_bound(const DenoiseFn& model, const NoiseSchedule& s, const Tensor& x0,
                                   const VLBOptions& o = {}, Generator& gen = default_generator()) {
  GENAI_CHECK(x0.defined() && x0.dim() >= 2 && x0.is_floating_point(),
              "variational_bound: x0 must be a float batch (N, ...)");
  GENAI_CHECK(o.t_stride >= 1, "variational_bound: t_stride must be >= 1, got ", o.t_stride);
  NoGradGuard ng;
  const int64_t N = x0.size(0), T = s.num_timesteps();
  const double inv_log2 = 1.0 / std::log(2.0);
  auto per_sample = [&](const Tensor& e) { return mul(mean(reshape(e, {N, -1}), {1}), inv_log2); };  // (N) bits/dim
  std::vector<int64_t> eval_t;  // T-1 .. 1 (strided), then 0
  std::vector<double> weight;
  for (int64_t t = T - 1; t >= 1; t -= o.t_stride) {
    eval_t.push_back(t);
    weight.push_back(static_cast<double>(std::min<int64_t>(o.t_stride, t)));
  }
  eval_t.push_back(0);
  weight.push_back(1.0);
  std::unique_ptr<train::ProgressBar> bar;
  if (o.progress) bar = std::make_unique<train::ProgressBar>(static_cast<int64_t>(eval_t.size()),
                                                             train::ProgressOptions{.desc = "bits/dim"});
  Tensor terms = zeros({N}, x0.dtype()), decoder;
  for (size_t k = 0; k < eval_t.size(); ++k) {
    const int64_t t = eval_t[k];
    Tensor tt = detail::timesteps_like(x0, t);
    Tensor z = o.noise ? o.noise(static_cast<int64_t>(k), x0.shape()) : randn(x0.shape(), x0.dtype(), gen);
    Tensor x_t = s.q_sample(x0, tt, z);
    Tensor out = model(x_t, tt);
    Tensor x0h = s.predict_x0(o.prediction, x_t, tt, out);
    if (o.clip_denoised) x0h = clamp(x0h, -1.0, 1.0);
    Tensor model_mean = s.posterior_mean(x0h, x_t, tt);
    const double model_logvar = s.model_log_variance(o.variance, t);
    Tensor term;
    if (t == 0) {  // L_0 = -log p(x0 | x1), discretized Gaussian decoder
      Tensor log_scales = full(x0.shape(), 0.5 * model_logvar, x0.dtype());
      term = per_sample(neg(discretized_gaussian_log_likelihood(x0, model_mean, log_scales)));
      decoder = term;
    } else {  // L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))
      Tensor true_mean = s.posterior_mean(x0, x_t, tt);
      Tensor lv1 = full({1}, s.posterior_log_variance_clipped[static_cast<size_t>(t)], x0.dtype());
      Tensor lv2 = full({1}, model_logvar, x0.dtype());
      term = per_sample(normal_kl(true_mean, lv1, model_mean, lv2));
    }
    terms = add(terms, mul(term, weight[k]));
    if (bar) bar->update();
  }
  if (bar) bar->close();
  // L_T = KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1))
  const double aT = s.alphas_cumprod[static_cast<size_t>(T - 1)];
  Tensor prior = per_sample(normal_kl(mul(x0, std::sqrt(aT)), full({1}, std::log(1.0 - aT), x0.dtype()),
                                      zeros_like(x0), zeros({1}, x0.dtype())));
  return {add(prior, terms), prior, terms, decoder};
}

}  // namespace diffusion
}  // namespace models
}  // namespace genai
