// The demo's StyleGAN section: the default StyleGAN2 of include/genai/models/gan/stylegan.hpp
// (32x32, Fashion-MNIST padded with the background value), trained with
// models::stylegan_train_step (non-saturating loss, style mixing, lazy R1) and an EMA
// generator for the section's short budget; writes samples with and without truncation, a
// style-mixing grid and (with a classifier) FID of the central 28x28 crops.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <genai/io/image.hpp>
#include <genai/models/gan/stylegan.hpp>
#include <genai/optim/adam.hpp>

#include "demo.hpp"

using namespace genai;

namespace section_stylegan {  // a named namespace: the demo's files are compiled as one unit

/// (B, 1, 28, 28) in [0, 1] -> (B, 1, 32, 32) in [-1, 1], padded with -1 (the background).
Tensor pad_to_32(const Tensor& x01) {
  Tensor x = contiguous(io::normalize_to_neg_one_to_one(x01));
  const int64_t P = x.size(0) * x.size(1);
  Tensor y = full({x.size(0), x.size(1), 32, 32}, -1.0);
  const float* s = x.data_ptr<const float>();
  float* d = y.data_ptr<float>();
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < 28; ++i)
      std::copy(s + (p * 28 + i) * 28, s + (p * 28 + i + 1) * 28, d + (p * 32 + i + 2) * 32 + 2);
  return y;
}

Tensor to01(const Tensor& img) { return io::unnormalize_to_zero_to_one(clamp(img, -1.0, 1.0)); }

void run(demo::Context& ctx, demo::SectionReport& rep) {
  const demo::Data& d = ctx.data;
  models::StyleGANConfig cfg;  // the default: z = w = 128, channels 64, 64, 32, 16
  models::StyleGANGenerator G(cfg), G_ema(cfg);
  models::StyleGANDiscriminator D(cfg);
  G_ema.load_state_dict(G.state_dict());
  G_ema.eval();
  const double c = 16.0 / 17.0;  // lazy R1 every 16 steps: D's Adam at lr c, beta2^c
  optim::Adam optG(G.parameters(), {.lr = 0.0025, .betas = {0.0, 0.99}, .eps = 1e-8});
  optim::Adam optD(D.parameters(), {.lr = 0.0025 * c, .betas = {0.0, std::pow(0.99, c)}, .eps = 1e-8});
  demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 60);
  Generator noise(ctx.opt.seed + 61);
  const int64_t B = 16;
  std::vector<double> xs, d_losses, g_losses;
  const int64_t steps = demo::run_steps(ctx, "StyleGAN", ctx.steps(20000, 4), [&](int64_t i) {
    Tensor real = pad_to_32(batches.next(B));  // (B, 1, 32, 32)
    auto z = [&] { return randn({B, cfg.z_dim}, kFloat32, noise); };
    models::StyleGANStepStats s = models::stylegan_train_step(G, D, optG, optD, real, z(), z(), i, {}, z(), z(), noise);
    const double ema_nimg = std::min(10000.0 * B / 32.0, 0.05 * double(B) * double(i + 1));  // ramped half-life
    models::stylegan_ema_update(G_ema, G, std::pow(0.5, double(B) / ema_nimg));
    xs.push_back(static_cast<double>(i + 1));
    d_losses.push_back(s.d_loss);
    g_losses.push_back(s.g_loss);
    return demo::fmt("D=%.3f G=%.3f", s.d_loss, s.g_loss);
  });
  rep.curve("discriminator loss", xs, d_losses);
  rep.curve("generator loss", xs, g_losses);

  NoGradGuard ng;
  Generator sample_gen(ctx.opt.seed + 62);
  Tensor z64 = randn({64, cfg.z_dim}, kFloat32, sample_gen);
  ctx.save_png("stylegan_samples.png",
               io::make_grid(to01(G_ema.forward(z64, 1.0, -1, models::NoiseMode::Random, sample_gen)), 8));
  ctx.save_png("stylegan_truncated.png",
               io::make_grid(to01(G_ema.forward(z64, 0.7, -1, models::NoiseMode::Random, sample_gen)), 8));
  // style mixing: coarse styles (ws[0:3], the 4x4 and 8x8 layers) from each row's source, fine from each column's
  const int64_t R = 4, C = 6, nws = G_ema.num_ws(), cut = 3;
  Tensor ws_r = G_ema.mapping->forward(randn({R, cfg.z_dim}, kFloat32, sample_gen));
  Tensor ws_c = G_ema.mapping->forward(randn({C, cfg.z_dim}, kFloat32, sample_gen));
  const models::NoiseMode nm = models::NoiseMode::Const;
  Tensor img_r = G_ema.synthesis->forward(ws_r, nm), img_c = G_ema.synthesis->forward(ws_c, nm);
  TensorList cells{full({1, 1, 32, 32}, -1.0), img_c};
  for (int64_t r = 0; r < R; ++r) {
    Tensor coarse = expand(narrow(ws_r, 0, r, 1), {C, nws, cfg.w_dim});
    cells.push_back(narrow(img_r, 0, r, 1));
    cells.push_back(G_ema.synthesis->forward(cat({narrow(coarse, 1, 0, cut), narrow(ws_c, 1, cut, nws - cut)}, 1), nm));
  }
  ctx.save_png("stylegan_mixing.png", io::make_grid(to01(cat(cells, 0)), C + 1));

  const int64_t n_samples = ctx.opt.quick ? 200 : ctx.opt.fid_samples;
  TensorList parts;
  for (int64_t i = 0; i < n_samples; i += 500) {
    Tensor img = G_ema.forward(randn({std::min<int64_t>(500, n_samples - i), cfg.z_dim}, kFloat32, sample_gen), 1.0, -1,
                               models::NoiseMode::Random, sample_gen);
    parts.push_back(to01(narrow(narrow(img, 2, 2, 28), 3, 2, 28)));  // the central 28 x 28
  }
  std::optional<demo::Score> sc = ctx.score(cat(parts, 0));

  rep.text(demo::fmt(
      "A StyleGAN2 (Karras et al. 2020; `models::StyleGANGenerator` / `models::StyleGANDiscriminator`: 8-layer "
      "mapping network, modulated and demodulated convolutions, noise inputs, skip generator, residual "
      "discriminator with minibatch stddev; %lld + %lld parameters) on Fashion-MNIST padded to 32x32, trained as "
      "stylegan2-ada-pytorch's StyleGAN2Loss: non-saturating loss, style mixing (0.9), lazy R1 (gamma 0.01, every "
      "16 steps), Adam (0.0025, betas 0, 0.99), an EMA generator; %lld steps of %lld images (%.2f epochs). "
      "StyleGAN needs far more steps than the demo's budget: the full program is `stylegan train`.",
      static_cast<long long>(G.num_parameters()), static_cast<long long>(D.num_parameters()),
      static_cast<long long>(steps), static_cast<long long>(B),
      steps * static_cast<double>(B) / d.train_images.size(0)));
  std::vector<std::vector<std::string>> t{{"", "value"}};
  if (!d_losses.empty()) {
    t.push_back({"discriminator loss, last step", demo::fmt("%.3f", d_losses.back())});
    t.push_back({"generator loss, last step", demo::fmt("%.3f", g_losses.back())});
  }
  if (sc) {
    t.push_back({demo::fmt("FID of %lld samples (EMA generator, psi 1)", static_cast<long long>(sc->n)),
                 demo::fmt("%.2f", sc->fid)});
    t.push_back({"classifier score", demo::fmt("%.2f", sc->score)});
  }
  rep.table(t);
  rep.image("stylegan_samples.png", "64 samples of the EMA generator (truncation psi 1)");
  rep.image("stylegan_truncated.png", "The same z with the truncation trick, psi 0.7 (toward the average w)");
  rep.image("stylegan_mixing.png",
            "Style mixing: the top row and left column are sources; each cell takes the coarse styles (4x4, 8x8) "
            "from its row and the fine ones (16x16, 32x32) from its column");
  if (sc) rep.number("FID", demo::fmt("%.2f", sc->fid));
  rep.number("steps", std::to_string(steps));
  std::printf("StyleGAN: %lld steps%s\n", static_cast<long long>(steps),
              sc ? demo::fmt(", FID %.2f, score %.2f", sc->fid, sc->score).c_str() : "");
}

demo::RegisterSection reg({.key = "stylegan", .title = "StyleGAN2", .order = 32, .budget_share = 0.1, .run = run});

}  // namespace section_stylegan
