// VAE and DCGAN training steps (REFERENCE_MODELS.md), next to PyTorch's in
// benchmarks/pytorch/bench_torch.py:
//
//   train_step/vae     the MLP VAE 784 -> 400 -> (mu, logvar) 20 -> 400 -> 784 on a random
//                      128 x 784 batch in [0, 1]: encode, reparameterize (fresh noise), decode,
//                      BCE-with-logits summed + KL, backward, Adam 1e-3
//   train_step/dcgan   the 28x28 DCGAN (nz 100, ngf = ndf = 64, batch norm, no conv bias) on a
//                      random 64 x 1 x 28 x 28 batch in [-1, 1]: one D step (real + detached
//                      fake, BCE-with-logits) then one G step (fresh noise); Adam 2e-4,
//                      betas (0.5, 0.999)  (models::gan_train_step)
//
// FLOP conventions (one FMA = 2 FLOP), GEMM-like work only, backward = 2x forward:
//   vae:   forward 2 B (784 400 + 400 40 + 20 400 + 400 784), x3 for forward + backward.
//   dcgan: per image, G forward = 2 (100 256 49 + 49 256 128 16 + 196 128 16) and
//          D forward = 2 (196 64 16 + 49 128 64 16 + 128 49); an iteration runs G forward,
//          D forward 3 times (real, fake, fake for G), and the backward of each except the
//          G-step's D weights (counted anyway, as PyTorch computes them): 3 G + 9 D forwards.
// Counters: FLOP/s and images/s. Wall time (UseRealTime) and process CPU time are reported.
// One untimed step runs first (optimizer state, buffers), as bench_torch.py's warm-up; a
// dcgan iteration takes seconds, so pass --benchmark_min_time=20 or more for several.
#include <benchmark/benchmark.h>

#include <genai/models/gan/dcgan.hpp>
#include <genai/models/vae/vae.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace {

void BM_train_vae(benchmark::State& state) {
  manual_seed(0);
  models::VAE model;  // the reference configuration
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  constexpr int64_t B = 128;
  Tensor x = rand({B, 784});
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = model.loss(x, model.forward(x), "sum").loss;
    loss.backward();
    opt.step();
    return loss;
  };
  step();  // warm up (optimizer state, buffers), as bench_torch.py does
  for (auto _ : state) benchmark::DoNotOptimize(step().raw_data());
  const double fwd = 2.0 * B * (784 * 400 + 400 * 40 + 20 * 400 + 400 * 784);
  state.counters["FLOP/s"] = benchmark::Counter(3 * fwd, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_vae)->Name("train_step/vae")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_train_dcgan(benchmark::State& state) {
  manual_seed(0);
  models::DCGANGenerator G;  // nz 100, ngf 64, 28x28
  models::DCGANDiscriminator D;
  optim::Adam optG(G.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  optim::Adam optD(D.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  constexpr int64_t B = 64;
  Tensor real = add(mul(rand({B, 1, 28, 28}), 2.0), -1.0);
  models::gan_train_step(G, D, optG, optD, real, randn({B, 100}));  // warm up
  for (auto _ : state) {
    models::GANStepStats st = models::gan_train_step(G, D, optG, optD, real, randn({B, 100}));
    benchmark::DoNotOptimize(st.d_loss);
  }
  const double g_fwd = 2.0 * (100.0 * 256 * 49 + 49.0 * 256 * 128 * 16 + 196.0 * 128 * 16);
  const double d_fwd = 2.0 * (196.0 * 64 * 16 + 49.0 * 128 * 64 * 16 + 128.0 * 49);
  state.counters["FLOP/s"] =
      benchmark::Counter(B * (3 * g_fwd + 9 * d_fwd), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_dcgan)->Name("train_step/dcgan")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
