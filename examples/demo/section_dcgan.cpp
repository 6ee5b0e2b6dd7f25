// The demo's DCGAN section: the 28x28 DCGAN of include/genai/models/gan/dcgan.hpp at half
// width (ngf = ndf = 32, so it learns within the demo's budget), trained as pytorch/examples'
// dcgan (one D step, one G step, Adam(2e-4, betas (0.5, 0.999)), non-saturating loss);
// writes samples, a latent walk, the generator's weights and (with a classifier) FID.
#include <cmath>
#include <cstdio>

#include "demo.hpp"

#include <genai/io/image.hpp>
#include <genai/io/safetensors.hpp>
#include <genai/models/gan/dcgan.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace section_dcgan {  // a named namespace: the demo's files are compiled as one unit

/// Spherical interpolation between rows of a and b (P, nz), `steps` points each: (P * steps, nz).
Tensor slerp_rows(const Tensor& a, const Tensor& b, int64_t steps) {
  const int64_t P = a.size(0), nz = a.size(1);
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>(), out;
  out.reserve(static_cast<size_t>(P * steps * nz));
  for (int64_t p = 0; p < P; ++p) {
    const double* x = va.data() + p * nz;
    const double* y = vb.data() + p * nz;
    double dot = 0, nx = 0, ny = 0;
    for (int64_t k = 0; k < nz; ++k) dot += x[k] * y[k], nx += x[k] * x[k], ny += y[k] * y[k];
    const double omega = std::acos(std::clamp(dot / std::sqrt(nx * ny), -1.0, 1.0));
    for (int64_t s = 0; s < steps; ++s) {
      const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
      const double wa = omega < 1e-6 ? 1 - t : std::sin((1 - t) * omega) / std::sin(omega);
      const double wb = omega < 1e-6 ? t : std::sin(t * omega) / std::sin(omega);
      for (int64_t k = 0; k < nz; ++k) out.push_back(wa * x[k] + wb * y[k]);
    }
  }
  return tensor(out, {P * steps, nz}, a.dtype());
}

void run(demo::Context& ctx, demo::SectionReport& rep) {
  const demo::Data& d = ctx.data;
  models::DCGANConfig cfg{.latent_dim = 64, .ngf = 32, .ndf = 32, .channels = 1, .image_size = 28};
  models::DCGANGenerator G(cfg);
  models::DCGANDiscriminator D(cfg);
  optim::Adam optG(G.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  optim::Adam optD(D.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 20);
  Generator noise(ctx.opt.seed + 21);
  const int64_t B = 64;
  std::vector<double> xs, d_losses, g_losses;
  G.train();
  D.train();
  const int64_t steps = demo::run_steps(ctx, "DCGAN", ctx.steps(3 * 938, 10), [&](int64_t i) {
    Tensor real = io::normalize_to_neg_one_to_one(batches.next(B));  // (B, 1, 28, 28) in [-1, 1]
    models::GANStepStats s = models::gan_train_step(G, D, optG, optD, real, randn({B, cfg.latent_dim}, kFloat32, noise));
    xs.push_back(static_cast<double>(i + 1));
    d_losses.push_back(s.d_loss);
    g_losses.push_back(s.g_loss);
    return demo::fmt("D=%.3f G=%.3f", s.d_loss, s.g_loss);
  });
  rep.curve("discriminator loss", xs, d_losses);
  rep.curve("generator loss", xs, g_losses);

  G.eval();
  NoGradGuard ng;
  Generator sample_gen(ctx.opt.seed + 22);
  auto to01 = [](const Tensor& t) { return io::unnormalize_to_zero_to_one(t); };
  ctx.save_png("dcgan_samples.png", io::make_grid(to01(G.sample(64, sample_gen)), 8));
  Tensor za = randn({6, cfg.latent_dim}, kFloat32, sample_gen), zb = randn({6, cfg.latent_dim}, kFloat32, sample_gen);
  ctx.save_png("dcgan_latent_walk.png", io::make_grid(to01(G.forward(slerp_rows(za, zb, 10))), 10));
  // the generator alone, as the dcgan example writes it (fmnist_eval --generator scores it)
  io::save_safetensors(ctx.path("dcgan_generator.safetensors"), G.state_dict(),
                       {{"model", "DCGANGenerator"},
                        {"latent_dim", std::to_string(cfg.latent_dim)},
                        {"ngf", std::to_string(cfg.ngf)},
                        {"channels", "1"},
                        {"image_size", "28"},
                        {"step", std::to_string(steps)}});

  const int64_t n_samples = ctx.opt.quick ? 200 : ctx.opt.fid_samples;
  TensorList parts;
  for (int64_t i = 0; i < n_samples; i += 500) parts.push_back(to01(G.sample(std::min<int64_t>(500, n_samples - i), sample_gen)));
  std::optional<demo::Score> sc = ctx.score(cat(parts, 0));

  rep.text(demo::fmt(
      "A DCGAN (Radford et al. 2016; `models::DCGANGenerator` / `models::DCGANDiscriminator`, the 28x28 layout at "
      "half width: ngf = ndf = 32, 64-d noise; %lld + %lld parameters) trained as pytorch/examples' dcgan: per batch "
      "of %lld images one discriminator step and one generator step, Adam (lr 2e-4, betas 0.5, 0.999), the "
      "non-saturating loss; %lld steps (%.1f epochs). Samples use the generator in eval mode. The full program is "
      "`dcgan` (full width, more epochs).",
      static_cast<long long>(G.num_parameters()), static_cast<long long>(D.num_parameters()), static_cast<long long>(B),
      static_cast<long long>(steps), steps * static_cast<double>(B) / d.train_images.size(0)));
  auto tail_mean = [](const std::vector<double>& v) {
    const size_t k = std::min<size_t>(50, v.size());
    double s = 0;
    for (size_t i = v.size() - k; i < v.size(); ++i) s += v[i];
    return k ? s / static_cast<double>(k) : NAN;
  };
  std::vector<std::vector<std::string>> t{{"", "value"},
                                          {"discriminator loss, last 50 steps", demo::fmt("%.3f", tail_mean(d_losses))},
                                          {"generator loss, last 50 steps", demo::fmt("%.3f", tail_mean(g_losses))}};
  if (sc) {
    t.push_back({demo::fmt("FID of %lld samples", static_cast<long long>(sc->n)), demo::fmt("%.2f", sc->fid)});
    t.push_back({"classifier score", demo::fmt("%.2f", sc->score)});
  }
  rep.table(t);
  rep.image("dcgan_samples.png", "64 samples");
  rep.image("dcgan_latent_walk.png", "Latent walk: each row decodes 10 points on the great circle between two noise vectors");
  if (sc) rep.number("FID", demo::fmt("%.2f", sc->fid));
  rep.number("steps", std::to_string(steps));
  std::printf("DCGAN: %lld steps%s\n", static_cast<long long>(steps),
              sc ? demo::fmt(", FID %.2f, score %.2f", sc->fid, sc->score).c_str() : "");
}

demo::RegisterSection reg({.key = "dcgan", .title = "DCGAN", .order = 30, .budget_share = 0.6, .run = run});

}  // namespace section_dcgan
