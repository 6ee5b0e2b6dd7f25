// The demo's normalizing-flow section (include/genai/models/flow/): a Glow on the 2-D
// two-moons density (a quarter of the budget; density heat map and samples), then the MLP
// RealNVP (the reference structure at width 256) on the images after the logit transform
// (samples at temperature 0.7, test bits/dim).
#include <cstdio>

#include "demo.hpp"

#include <genai/io/image.hpp>
#include <genai/models/flow/glow.hpp>
#include <genai/models/flow/realnvp.hpp>
#include <genai/models/flow/toy2d.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace section_flow {  // a named namespace: the demo's files are compiled as one unit
namespace flow = genai::models::flow;

void run(demo::Context& ctx, demo::SectionReport& rep) {
  const demo::Data& d = ctx.data;
  std::vector<double> xs, losses;

  // 1. Glow on two moons: fresh points every step
  demo::Context toy_ctx = ctx;
  toy_ctx.section_seconds = 0.25 * ctx.section_seconds;
  manual_seed(ctx.opt.seed + 60);
  flow::Flow toy(std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {2}, .n_steps = 8, .hidden = 64}), {2});
  optim::Adam toy_opt(toy.parameters(), {.lr = 3e-3});
  Generator toy_gen(ctx.opt.seed + 61);
  double toy_nll = 0;
  const int64_t toy_steps = demo::run_steps(toy_ctx, "flow (moons)", ctx.steps(3000, 5), [&](int64_t) {
    toy_opt.zero_grad();
    Tensor loss = toy.nll(flow::toy_sample("moons", 256, toy_gen));
    loss.backward();
    toy_opt.step();
    toy_nll = loss.item<double>();
    return demo::fmt("nll=%.3f", toy_nll);
  });
  {
    NoGradGuard ng;
    toy.eval();
    Generator g(ctx.opt.seed + 62);
    Tensor real = flow::scatter_image(flow::toy_sample("moons", 20000, g), -4, 4, 160);
    Tensor dens = flow::density_image(toy, -4, 4, 160);
    Tensor samp = flow::scatter_image(toy.sample(20000, 1.0, g), -4, 4, 160);
    Tensor bar = ones({3, 160, 4});
    ctx.save_png("flow_moons.png", cat({real, bar, dens, bar, samp}, 2));
    toy_nll = toy.nll(flow::toy_sample("moons", 4000, g)).item<double>();
  }

  // 2. RealNVP on the images
  demo::Context img_ctx = ctx;
  img_ctx.section_seconds = 0.75 * ctx.section_seconds;
  manual_seed(ctx.opt.seed + 63);
  flow::Flow model(std::make_shared<flow::RealNVP>(flow::RealNVPConfig{.dim = 784, .hidden = 256}), {784},
                   std::make_shared<flow::LogitTransform>(0.05));
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 64);
  Generator deq(ctx.opt.seed + 65);
  const int64_t steps = demo::run_steps(img_ctx, "flow (RealNVP)", ctx.steps(20 * 469, 5), [&](int64_t i) {
    Tensor x = reshape(batches.next(128), {-1, 784});
    opt.zero_grad();
    Tensor loss = model.nll(model.dequantize(x, deq));
    loss.backward();
    opt.step();
    xs.push_back(static_cast<double>(i + 1));
    losses.push_back(model.nll_to_bits_per_dim(loss.item<double>()));
    return demo::fmt("bpd=%.3f", losses.back());
  });
  rep.curve("bits/dim (training batch)", xs, losses);
  rep.ylabel = "bits per dimension";

  model.eval();
  NoGradGuard ng;
  const int64_t n_test = std::min<int64_t>(d.test_images.size(0), ctx.opt.quick ? 200 : 2000);
  Generator eval_gen(ctx.opt.seed + 66);
  double bpd = 0;
  for (int64_t i = 0; i < n_test; i += 500) {
    Tensor x = reshape(d.test_images.narrow(0, i, std::min<int64_t>(500, n_test - i)), {-1, 784});
    bpd += sum(model.bits_per_dim(x, eval_gen)).item<double>();
  }
  bpd /= static_cast<double>(n_test);
  Generator sample_gen(ctx.opt.seed + 67);
  Tensor samples = clamp(reshape(model.sample(64, 0.5, sample_gen), {-1, 1, 28, 28}), 0.0, 1.0);
  ctx.save_png("flow_samples.png", io::make_grid(samples, 8));

  rep.text(demo::fmt(
      "Normalizing flows compute exact log-likelihoods through invertible layers (`genai/models/flow`). First a "
      "Glow on vectors (8 steps of ActNorm, LU-parameterized invertible linear map and affine coupling) fitted to "
      "the two-moons density for %lld steps: held-out NLL %.3f nats per point. Then RealNVP (Dinh et al. 2017; 8 "
      "affine couplings with alternating masks on the 784 pixels, MLP conditioners of width 256, %lld parameters) "
      "trained for %lld steps of 128 dequantized images after the logit transform. The full program is `flow`.",
      static_cast<long long>(toy_steps), toy_nll, static_cast<long long>(model.num_parameters()),
      static_cast<long long>(steps)));
  rep.table({{"", "value"},
             {"two moons: held-out NLL (nats/point)", demo::fmt("%.3f", toy_nll)},
             {demo::fmt("RealNVP: test bits/dim, %lld images", static_cast<long long>(n_test)), demo::fmt("%.3f", bpd)}});
  rep.image("flow_moons.png", "Two moons: data (left), the Glow's density (middle), 20000 samples (right)");
  rep.image("flow_samples.png", "RealNVP: 64 samples at temperature 0.5");
  rep.number("test bits/dim", demo::fmt("%.3f", bpd));
  std::printf("flow: moons NLL %.3f nats (%lld steps); RealNVP %lld steps, test bits/dim %.3f\n", toy_nll,
              static_cast<long long>(toy_steps), static_cast<long long>(steps), bpd);
}

demo::RegisterSection reg({.key = "flow", .title = "Normalizing flows (Glow, RealNVP)", .order = 45,
                           .budget_share = 0.2, .run = run});

}  // namespace section_flow
