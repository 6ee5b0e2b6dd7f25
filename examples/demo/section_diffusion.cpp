// The demo's diffusion section: a small DDPM U-Net (include/genai/models/diffusion/, base 16
// instead of the reference's 32, so it learns something within the demo's budget) trained on
// the noise-prediction loss with an EMA of its weights; samples with DDIM (20 steps, eta 0),
// the denoising trajectory of a few samples, and (with a classifier) FID.
#include <cstdio>

#include "demo.hpp"

#include <genai/io/image.hpp>
#include <genai/models/diffusion/diffusion.hpp>
#include <genai/optim/adam.hpp>
#include <genai/optim/ema.hpp>

using namespace genai;

namespace section_diffusion {  // a named namespace: the demo's files are compiled as one unit
namespace D = genai::models::diffusion;

void run(demo::Context& ctx, demo::SectionReport& rep) {
  const demo::Data& d = ctx.data;
  D::UNetConfig cfg;  // the reference layout at half width
  cfg.base_channels = 16;
  cfg.time_dim = 64;
  D::UNet net(cfg);
  D::NoiseSchedule sched;  // linear betas 1e-4 .. 0.02, T = 1000
  optim::Adam opt(net.parameters(), {.lr = 1e-3});
  optim::ExponentialMovingAverage ema(net.parameters(), 0.995);
  demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 40);
  Generator gen(ctx.opt.seed + 41);
  const int64_t B = 64;
  std::vector<double> xs, losses;
  net.train();
  const int64_t steps = demo::run_steps(ctx, "diffusion", ctx.steps(20000, 5), [&](int64_t i) {
    Tensor x0 = io::normalize_to_neg_one_to_one(batches.next(B));  // (B, 1, 28, 28) in [-1, 1]
    const double loss = D::train_step(net, opt, sched, x0, Tensor(), {.grad_clip = 1.0}, gen);
    ema.update();
    xs.push_back(static_cast<double>(i + 1));
    losses.push_back(loss);
    return demo::fmt("loss=%.4f", loss);
  });
  rep.curve("noise-prediction MSE (training batch)", xs, losses);
  rep.ylabel = "MSE";

  // sample with the averaged weights: DDIM, 20 steps, eta 0
  ema.copy_to();
  net.eval();
  Generator sample_gen(ctx.opt.seed + 42);
  const D::DenoiseFn f = D::unet_denoiser(net);
  const int64_t S = 20;
  const double t0 = demo::now_seconds();
  D::SampleResult r = D::sample(f, sched, {64, 1, 28, 28},
                                {.steps = S, .trajectory_frames = 10, .progress = true, .desc = "DDIM"}, sample_gen);
  const double per_image = demo::seconds_since(t0) / 64.0;
  auto to01 = [](const Tensor& t) { return io::unnormalize_to_zero_to_one(clamp(t, -1.0, 1.0)); };
  ctx.save_png("diffusion_samples.png", io::make_grid(to01(r.images), 8));
  TensorList strip;  // 6 samples, 10 frames each, from noise (left) to image (right)
  for (int64_t i = 0; i < 6; ++i)
    for (const Tensor& fr : r.trajectory) strip.push_back(fr[i]);
  ctx.save_png("diffusion_trajectory.png", io::make_grid(to01(stack(strip, 0)), 10));

  const int64_t n_samples = ctx.opt.quick ? 100 : std::min<int64_t>(ctx.opt.fid_samples, 1000);
  TensorList parts;
  for (int64_t i = 0; i < n_samples; i += 250)
    parts.push_back(to01(D::sample(f, sched, {std::min<int64_t>(250, n_samples - i), 1, 28, 28},
                                   {.steps = S, .progress = true, .desc = "DDIM (FID samples)"}, sample_gen)
                             .images));
  std::optional<demo::Score> sc = ctx.score(cat(parts, 0));

  rep.text(demo::fmt(
      "A denoising diffusion model (Ho et al. 2020; `models::diffusion::UNet`, the `ddpm_unet` reference layout at "
      "half width: base 16 channels, multipliers 1, 2, attention at 7x7, GroupNorm, sinusoidal time embedding; %lld "
      "parameters) trained to predict the noise of x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t uniform over T = "
      "1000 steps of linear betas: batches of %lld, Adam (lr 1e-3), an exponential moving average of the weights "
      "(decay 0.995) for sampling; %lld steps (%.2f epochs). Samples: DDIM (Song et al. 2021) with %lld steps, eta 0, "
      "%.3f s per image. The full program is `diffusion` (reference width, DDPM / DDIM, inversion, bits/dim).",
      static_cast<long long>(net.num_parameters()), static_cast<long long>(B), static_cast<long long>(steps),
      steps * static_cast<double>(B) / d.train_images.size(0), static_cast<long long>(S), per_image));
  auto tail_mean = [](const std::vector<double>& v) {
    const size_t k = std::min<size_t>(50, v.size());
    double s = 0;
    for (size_t i = v.size() - k; i < v.size(); ++i) s += v[i];
    return k ? s / static_cast<double>(k) : NAN;
  };
  std::vector<std::vector<std::string>> t{{"", "value"},
                                          {"training loss, last 50 steps", demo::fmt("%.4f", tail_mean(losses))},
                                          {"DDIM seconds per image", demo::fmt("%.3f", per_image)}};
  if (sc) {
    t.push_back({demo::fmt("FID of %lld samples (DDIM %lld steps)", static_cast<long long>(sc->n),
                           static_cast<long long>(S)),
                 demo::fmt("%.2f", sc->fid)});
    t.push_back({"classifier score", demo::fmt("%.2f", sc->score)});
  }
  rep.table(t);
  rep.image("diffusion_samples.png", "64 samples (DDIM, 20 steps, EMA weights)");
  rep.image("diffusion_trajectory.png", "Denoising: each row is one sample, from pure noise (left) to the image (right)");
  if (sc) rep.number("FID", demo::fmt("%.2f", sc->fid));
  rep.number("steps", std::to_string(steps));
  std::printf("diffusion: %lld steps%s\n", static_cast<long long>(steps),
              sc ? demo::fmt(", FID %.2f, score %.2f", sc->fid, sc->score).c_str() : "");
}

demo::RegisterSection reg({.key = "diffusion", .title = "Denoising diffusion (DDPM / DDIM)", .order = 50,
                           .budget_share = 0.3, .run = run});

}  // namespace section_diffusion
