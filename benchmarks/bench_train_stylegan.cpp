// StyleGAN2 training steps (docs/stylegan.md), next to PyTorch's in
// benchmarks/pytorch/bench_stylegan.py (loaded by bench_torch.py):
//
//   train_step/stylegan     the default 32x32 configuration of models::StyleGANConfig (z = w = 128,
//                           8 mapping layers, channels 64, 64, 32, 16 at 4, 8, 16, 32, 1 channel) on a
//                           random 32 x 1 x 32 x 32 batch in [-1, 1]: one iteration of
//                           models::stylegan_train_step (G step with style mixing, D step, fresh
//                           noise inputs), Adam(0.0025, betas (0, 0.99)), no R1 (a step % 16 != 0)
//   train_step/stylegan_r1  the same iteration on a regularization step (lazy R1: the D step also
//                           differentiates the input gradient, i.e. double backward through D)
//
// The lazy schedule runs 15 plain iterations and one R1 iteration out of 16, so the mean
// iteration is (15 plain + 1 r1) / 16. Counters: images/s. Wall time (UseRealTime) and process
// CPU time are reported. One untimed iteration runs first (optimizer state, buffers), as
// bench_torch.py's warm-up; pass --benchmark_min_time=10 or more for several iterations.
#include <benchmark/benchmark.h>

#include <genai/models/gan/stylegan.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace {

void run_stylegan(benchmark::State& state, bool r1) {
  manual_seed(0);
  models::StyleGANConfig cfg;  // the default (docs/stylegan.md)
  models::StyleGANGenerator G(cfg);
  models::StyleGANDiscriminator D(cfg);
  optim::Adam optG(G.parameters(), {.lr = 0.0025, .betas = {0.0, 0.99}, .eps = 1e-8});
  optim::Adam optD(D.parameters(), {.lr = 0.0025, .betas = {0.0, 0.99}, .eps = 1e-8});
  constexpr int64_t B = 32;
  Tensor real = add(mul(rand({B, 1, 32, 32}), 2.0), -1.0);
  const int64_t step = r1 ? 0 : 1;  // R1 on steps divisible by 16
  auto it = [&] {
    return models::stylegan_train_step(G, D, optG, optD, real, randn({B, 128}), randn({B, 128}), step, {},
                                       randn({B, 128}), randn({B, 128}));
  };
  it();  // warm up
  for (auto _ : state) {
    models::StyleGANStepStats st = it();
    benchmark::DoNotOptimize(st.d_loss);
  }
  state.counters["images/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_train_stylegan(benchmark::State& state) { run_stylegan(state, false); }
void BM_train_stylegan_r1(benchmark::State& state) { run_stylegan(state, true); }
BENCHMARK(BM_train_stylegan)
    ->Name("train_step/stylegan")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_train_stylegan_r1)
    ->Name("train_step/stylegan_r1")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
