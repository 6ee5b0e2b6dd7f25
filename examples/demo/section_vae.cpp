// The demo's VAE section: the MLP VAE of include/genai/models/vae/vae.hpp (784 -> 400 ->
// 20, pytorch/examples' model) trained with Adam on the negative ELBO; writes samples,
// reconstructions and a latent walk, the test -ELBO and (with a classifier) FID.
#include <cstdio>

#include "demo.hpp"

#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/vae/vae.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace section_vae {  // a named namespace: the demo's files are compiled as one unit

void run(demo::Context& ctx, demo::SectionReport& rep) {
  const demo::Data& d = ctx.data;
  models::VAE vae;  // 784 -> 400 -> 20 (x2) -> 400 -> 784, Bernoulli decoder
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 10);
  Generator noise(ctx.opt.seed + 11);
  std::vector<double> xs, losses;
  vae.train();
  const int64_t steps = demo::run_steps(ctx, "VAE", ctx.steps(20 * 469, 20), [&](int64_t i) {
    Tensor x = batches.next(128);  // (128, 1, 28, 28)
    opt.zero_grad();
    Tensor loss = vae.loss(x, vae.forward(x, noise)).loss;  // -ELBO, nats per image
    loss.backward();
    opt.step();
    xs.push_back(static_cast<double>(i + 1));
    losses.push_back(loss.item<double>());
    return demo::fmt("-ELBO=%.1f", losses.back());
  });
  rep.curve("-ELBO per image (training batch, nats)", xs, losses);
  rep.ylabel = "nats per image";

  vae.eval();
  NoGradGuard ng;
  // test -ELBO with one posterior sample per image
  Generator eval_noise(ctx.opt.seed + 12);
  const int64_t n_test = std::min<int64_t>(d.test_images.size(0), 5000);
  double test_loss = 0;
  for (int64_t i = 0; i < n_test; i += 500) {
    Tensor x = d.test_images.narrow(0, i, std::min<int64_t>(500, n_test - i));
    test_loss += vae.loss(x, vae.forward(x, eval_noise), "sum").loss.item<double>();
  }
  test_loss /= static_cast<double>(n_test);

  // pictures: samples, reconstructions (originals above), latent walk between test images
  Generator sample_gen(ctx.opt.seed + 13);
  const Shape img{-1, 1, 28, 28};
  ctx.save_png("vae_samples.png", io::make_grid(reshape(vae.sample(64, sample_gen), img), 8));
  Tensor x16 = d.test_images.narrow(0, 0, 16);
  Tensor r16 = reshape(vae.reconstruct(x16), img);
  ctx.save_png("vae_reconstructions.png",
               io::make_grid(cat({x16.narrow(0, 0, 8), r16.narrow(0, 0, 8), x16.narrow(0, 8, 8), r16.narrow(0, 8, 8)}, 0), 8));
  Tensor walk = vae.interpolate(d.test_images.narrow(0, 16, 6), d.test_images.narrow(0, 22, 6), 10);  // (60, 784)
  ctx.save_png("vae_latent_walk.png", io::make_grid(reshape(walk, img), 10));
  io::Checkpoint ck;  // scored by: fmnist_eval --generator vae_checkpoint.safetensors
  ck.model() = vae.state_dict();
  ck.strings["model"] = "mlp";
  ck.ints["step"] = steps;
  ck.save(ctx.path("vae_checkpoint.safetensors"));

  const int64_t n_samples = ctx.opt.quick ? 200 : ctx.opt.fid_samples;
  std::optional<demo::Score> sc = ctx.score(reshape(vae.sample(n_samples, sample_gen), img));

  rep.text(demo::fmt(
      "A variational autoencoder (Kingma & Welling 2014; `models::VAE`, the MLP of pytorch/examples: 784 -> 400 -> "
      "20-d latent -> 400 -> 784, %lld parameters) trained with Adam (lr 1e-3) on the negative ELBO for %lld steps "
      "of 128 images (%.1f epochs). Samples are decoder means of z ~ N(0, I): blurry by nature (the Bernoulli "
      "decoder averages over plausible images); the full program is `vae`.",
      static_cast<long long>(vae.num_parameters()), static_cast<long long>(steps), steps * 128.0 / d.train_images.size(0)));
  std::vector<std::vector<std::string>> t{{"", "value"},
                                          {"training -ELBO, last 50 steps (nats/image)", "-"},
                                          {demo::fmt("test -ELBO, %lld images (nats/image)", static_cast<long long>(n_test)),
                                           demo::fmt("%.2f", test_loss)}};
  double tail = 0;
  const size_t k = std::min<size_t>(50, losses.size());
  for (size_t i = losses.size() - k; i < losses.size(); ++i) tail += losses[i];
  if (k) t[1][1] = demo::fmt("%.2f", tail / static_cast<double>(k));
  if (sc) {
    t.push_back({demo::fmt("FID of %lld samples", static_cast<long long>(sc->n)), demo::fmt("%.2f", sc->fid)});
    t.push_back({"classifier score", demo::fmt("%.2f", sc->score)});
  }
  rep.table(t);
  rep.image("vae_samples.png", "64 samples");
  rep.image("vae_reconstructions.png", "Reconstructions: rows 1 and 3 are test images, rows 2 and 4 their reconstructions");
  rep.image("vae_latent_walk.png",
            "Latent walk: each row decodes 10 points on the line between the latent codes of two test images");
  rep.number("test -ELBO", demo::fmt("%.1f nats", test_loss));
  if (sc) rep.number("FID", demo::fmt("%.2f", sc->fid));
  std::printf("VAE: %lld steps, test -ELBO %.2f nats%s\n", static_cast<long long>(steps), test_loss,
              sc ? demo::fmt(", FID %.2f, score %.2f", sc->fid, sc->score).c_str() : "");
}

demo::RegisterSection reg({.key = "vae", .title = "Variational autoencoder (VAE)", .order = 20, .budget_share = 0.25, .run = run});

}  // namespace section_vae
