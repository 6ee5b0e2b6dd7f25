// RealNVP training step (REFERENCE_MODELS.md), next to PyTorch's in benchmarks/pytorch/bench_torch.py:
//
//   train_step/realnvp   8 affine couplings on 784-d with alternating even/odd masks; each s,t
//                        net Linear(784, 512) ReLU Linear(512, 512) ReLU Linear(512, 1568) split
//                        into s (tanh, masked) and t (masked); a random 128 x 784 batch in [0, 1);
//                        NLL under N(0, I) with the log-determinant (mean over the batch), backward,
//                        Adam 1e-3 (models::flow::RealNVP, the reference configuration by default)
//
// FLOP convention (one FMA = 2 FLOP), GEMM work only, backward = 2x forward:
//   forward 2 B 8 (784 512 + 512 512 + 512 1568), x3 for forward + backward (the input
//   gradient of the first layer is needed: the input of coupling i > 0 depends on parameters).
// Counters: FLOP/s and images/s. Wall time (UseRealTime) and process CPU time are reported.
#include <benchmark/benchmark.h>

#include <genai/models/flow/realnvp.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace {

void BM_train_realnvp(benchmark::State& state) {
  manual_seed(0);
  auto body = std::make_shared<models::flow::RealNVP>();  // the reference configuration
  models::flow::Flow model(body, {784});                   // N(0, I) base, no preprocessing
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  constexpr int64_t B = 128;
  Tensor x = rand({B, 784});
  for (auto _ : state) {
    opt.zero_grad();
    Tensor loss = model.nll(x);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.raw_data());
  }
  const double fwd = 2.0 * B * 8 * (784 * 512 + 512 * 512 + 512 * 1568);
  state.counters["FLOP/s"] = benchmark::Counter(3 * fwd, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["images/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_realnvp)->Name("train_step/realnvp")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
