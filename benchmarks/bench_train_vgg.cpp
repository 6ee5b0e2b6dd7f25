// The style-transfer step (REFERENCE_MODELS.md `vgg_style`), next to PyTorch's in
// benchmarks/pytorch/bench_vgg.py:
//
//   train_step/vgg_style   VGG-19 features up to relu4_1 (conv3x3 64, 64, pool, 128, 128, pool,
//                          256 x4, pool, 512) with average pooling and frozen (random) weights;
//                          one 1 x 3 x 256 x 256 image being optimized; loss = MSE of its relu4_1
//                          features against a target + MSE of their Gram matrix against a target
//                          Gram; backward to the image only; Adam 0.02 on the image.
//
// FLOP conventions (one FMA = 2 FLOP), convolutions only: forward = sum over the 9 convs of
// 2 H W C_in C_out 9; the backward computes input gradients only (frozen weights), another
// forward's worth: 2x forward in all. Counters: FLOP/s. Wall time (UseRealTime) and process
// CPU time are reported. One untimed step runs first (Adam state, buffers).
#include <benchmark/benchmark.h>

#include <genai/models/vision/style_transfer.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace {

void BM_train_vgg_style(benchmark::State& state) {
  manual_seed(0);
  auto net = models::random_vgg_features({.depth = 19, .pooling = models::VGGPooling::Average, .width = 64,
                                          .last_layer = "relu4_1"},
                                         0);
  constexpr int64_t S = 256;
  Tensor target_f, target_g;
  {
    NoGradGuard ng;
    target_f = net->forward(rand({1, 3, S, S}));  // (1, 512, 32, 32)
    target_g = models::gram_matrix(target_f);     // (1, 512, 512)
  }
  Tensor img = rand({1, 3, S, S}).requires_grad_();
  optim::Adam opt({img}, {.lr = 0.02});
  auto step = [&] {
    opt.zero_grad();
    Tensor f = net->forward(img);
    Tensor loss = add(mse_loss(f, target_f), mse_loss(models::gram_matrix(f), target_g));
    loss.backward();
    opt.step();
    return loss;
  };
  step();  // warm up
  for (auto _ : state) benchmark::DoNotOptimize(step().raw_data());
  // (spatial size, C_in, C_out) of the 9 convolutions
  const double convs[9][3] = {{256, 3, 64},   {256, 64, 64},  {128, 64, 128}, {128, 128, 128}, {64, 128, 256},
                              {64, 256, 256}, {64, 256, 256}, {64, 256, 256},  {32, 256, 512}};
  double fwd = 0;
  for (const auto& c : convs) fwd += 2.0 * c[0] * c[0] * c[1] * c[2] * 9;
  state.counters["FLOP/s"] = benchmark::Counter(2 * fwd, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_vgg_style)->Name("train_step/vgg_style")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
