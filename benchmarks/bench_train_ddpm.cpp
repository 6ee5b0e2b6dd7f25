// Diffusion benchmarks (REFERENCE_MODELS.md), next to PyTorch's in benchmarks/pytorch/bench_torch.py:
//
//   train_step/ddpm_unet       one optimizer step of the ddpm_unet reference U-Net
//                              (models/diffusion/unet.hpp defaults, 598k parameters) on 64 random
//                              1x28x28 images in [-1, 1]: t ~ U{0..999}, linear betas 1e-4..0.02,
//                              x_t = q_sample(x0, t, eps), MSE on eps, Adam 2e-4
//                              (models/diffusion/diffusion.hpp train_step)
//   sample/ddpm_unet_denoise   one sampler step: the U-Net's forward (no graph) on 64 images plus
//                              the DDIM update; x 1000 for a DDPM sample, x S for DDIM with S steps
//
// FLOP conventions (one FMA = 2 FLOP): convolutions, transposed convolutions and the attention's
// 1x1 convs and products, counted per image in forward (~185 MFLOP); a training step is 3x
// forward. Counters: FLOP/s and images/s.
#include <benchmark/benchmark.h>

#include <genai/models/diffusion/diffusion.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
namespace D = genai::models::diffusion;

namespace {

constexpr int64_t kB = 64;

/// Forward FLOPs per image of the reference U-Net (c = 32, 28x28).
double unet_forward_flop() {
  auto conv = [](double ci, double co, double k, double hw) { return 2.0 * ci * co * k * k * hw; };
  const double c = 32, r28 = 28 * 28, r14 = 14 * 14, r7 = 7 * 7;
  auto res = [&](double ci, double co, double hw) {
    return conv(ci, co, 3, hw) + conv(co, co, 3, hw) + (ci != co ? conv(ci, co, 1, hw) : 0.0);
  };
  double f = conv(1, c, 3, r28);
  f += res(c, c, r28) + conv(c, c, 3, r14);                      // level 0, downsample to 14
  f += res(c, 2 * c, r14) + conv(2 * c, 2 * c, 3, r7);           // level 1, downsample to 7
  f += 2 * res(2 * c, 2 * c, r7);                                // middle
  f += conv(2 * c, 6 * c, 1, r7) + conv(2 * c, 2 * c, 1, r7) + 2 * 2.0 * r7 * r7 * 2 * c;  // attention
  f += conv(2 * c, 2 * c, 4, r7) + res(4 * c, 2 * c, r14);       // up to 14 (ConvT counted on its input)
  f += conv(2 * c, c, 4, r14) + res(2 * c, c, r28);              // up to 28
  f += conv(c, 1, 3, r28);
  return f;
}

void BM_train_ddpm_unet(benchmark::State& state) {
  manual_seed(0);
  D::UNet net;
  D::NoiseSchedule sched;
  optim::Adam opt(net.parameters(), {.lr = 2e-4});
  Tensor x0 = add(mul(rand({kB, 1, 28, 28}), 2.0), -1.0);
  for (auto _ : state) {
    double loss = D::train_step(net, opt, sched, x0);
    benchmark::DoNotOptimize(loss);
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(kB), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] =
      benchmark::Counter(3 * kB * unet_forward_flop(), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_ddpm_unet)->Name("train_step/ddpm_unet")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_ddpm_denoise_step(benchmark::State& state) {
  manual_seed(0);
  D::UNet net;
  for (auto& p : net.parameters()) {  // non-zero weights (zero_init leaves some at 0)
    NoGradGuard ng;
    Tensor q = p;
    q.copy_(mul(randn(p.shape()), 0.02));
  }
  net.eval();
  D::NoiseSchedule sched;
  Tensor x = randn({kB, 1, 28, 28});
  Tensor t = full({kB}, 500.0, kInt64);
  NoGradGuard ng;
  for (auto _ : state) {
    Tensor out = net.forward(x, t);
    Tensor y = D::ddim_step(sched, D::Prediction::Epsilon, out, x, 500, 480, 0.0, Tensor());
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(kB), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(kB * unet_forward_flop(), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ddpm_denoise_step)->Name("sample/ddpm_unet_denoise")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
