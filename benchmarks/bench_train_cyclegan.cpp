// CycleGAN training step, next to PyTorch's in benchmarks/pytorch/bench_cyclegan.py
// (registered by bench_torch.py):
//
//   train_step/cyclegan   the Fashion-MNIST default of include/genai/models/gan/cyclegan.hpp
//                         (1 x 28 x 28, ngf = ndf = 16, 4 residual blocks, 2-layer PatchGAN)
//                         on random batches of 1 image per domain in [-1, 1] (the paper's
//                         batch size): one CycleGAN::train_step (G step with LSGAN + cycle +
//                         identity losses, then the D_A and D_B steps; Adam 2e-4, betas
//                         (0.5, 0.999)); pools of size 0, as the PyTorch script.
//
// FLOP convention (one FMA = 2 FLOP), conv work only, backward = 2x forward: an iteration
// runs the generators 6 times (fake, rec and idt for each direction) with backward, and the
// discriminators 6 times (2 in the G step with input backward, 4 in the D step), counted as
// 6 x 3 G forwards + 6 x 3 D forwards. Wall time (UseRealTime) and process CPU time are reported.
#include <benchmark/benchmark.h>

#include <genai/models/gan/cyclegan.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace {

/// MACs of one forward of the conv stack at batch 1 (square images of side s).
double cyclegan_g_macs(const models::CycleGANConfig& c, int64_t s) {
  double m = double(s) * s * c.input_nc * c.ngf * 49;  // 7x7 stem
  int64_t ch = c.ngf, side = s;
  for (int64_t i = 0; i < c.n_downsampling; ++i, ch *= 2) {
    side /= 2;
    m += double(side) * side * ch * 2 * ch * 9;
  }
  m += c.n_blocks * 2.0 * side * side * ch * ch * 9;
  for (int64_t i = 0; i < c.n_downsampling; ++i, ch /= 2) {
    m += double(side) * side * ch * (ch / 2) * 9;  // transposed conv: 9 taps per input pixel
    side *= 2;
  }
  return m + double(s) * s * c.ngf * c.output_nc * 49;
}

double cyclegan_d_macs(const models::CycleGANConfig& c, int64_t s) {
  double m = 0;
  int64_t in = c.input_nc, out = c.ndf, side = s;
  for (int64_t n = 0; n < c.n_layers_d; ++n) {  // stride-2 4x4 convs
    side = (side + 2 - 4) / 2 + 1;
    m += double(side) * side * in * out * 16;
    in = out;
    out = c.ndf * std::min<int64_t>(int64_t(2) << n, 8);
  }
  side = side - 1;  // 4x4 stride 1 pad 1
  m += double(side) * side * in * out * 16;
  side = side - 1;
  return m + double(side) * side * out * 16;
}

void BM_train_cyclegan(benchmark::State& state) {
  manual_seed(0);
  const models::CycleGANConfig cfg = models::CycleGANConfig::fashion_mnist();
  models::CycleGAN gan(cfg, {}, /*pool_size=*/0);
  optim::Adam opt_G(gan.generator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  optim::Adam opt_D(gan.discriminator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
  constexpr int64_t B = 1, S = 28;
  Tensor a = add(mul(rand({B, 1, S, S}), 2.0), -1.0), b = add(mul(rand({B, 1, S, S}), 2.0), -1.0);
  gan.train_step(opt_G, opt_D, a, b);  // warm up (optimizer state, buffers), as bench_torch.py does
  for (auto _ : state) {
    models::CycleGANStepStats st = gan.train_step(opt_G, opt_D, a, b);
    benchmark::DoNotOptimize(st.G);
  }
  const double flop = 2.0 * B * (18 * cyclegan_g_macs(cfg, S) + 18 * cyclegan_d_macs(cfg, S));
  state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] = benchmark::Counter(2 * B, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_cyclegan)->Name("train_step/cyclegan")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
