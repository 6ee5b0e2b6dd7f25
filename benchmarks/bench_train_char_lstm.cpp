// LSTM benchmarks (REFERENCE_MODELS.md), next to PyTorch's in benchmarks/pytorch/bench_torch.py:
//
//   train_step/char_lstm           one TBPTT optimizer step of the char_lstm reference model:
//                                  Embedding(65 -> 64), 2-layer LSTM hidden 256, Linear(256 -> 65);
//                                  32 sequences x 64 steps of random ids, state carried (detached)
//                                  from the previous step; cross-entropy, clip_grad_norm_(1.0),
//                                  Adam 2e-3 (models/rnn/char_lstm.hpp train_step)
//   kernel/lstm/forward            nn::LSTM(256, 256, batch_first) on (32, 64, 256), no graph
//   kernel/lstm/forward_backward   the same with autograd: out.sum().backward() (dx and the weights)
//
// FLOP conventions (one FMA = 2 FLOP), GEMMs only: an LSTM layer's forward is
// 2 T B 4H (I + H); its backward twice that (dX / dh and dW). train_step counts
// forward + backward of both layers and of the head (2 T B H V each way x 3).
// Counters: FLOP/s for the kernels, tokens/s (B T per step) for the train step.
#include <benchmark/benchmark.h>

#include <genai/genai.hpp>
#include <genai/models/rnn/char_lstm.hpp>

using namespace genai;

namespace {

constexpr int64_t kB = 32, kT = 64, kH = 256;

void BM_train_char_lstm(benchmark::State& state) {
  manual_seed(0);
  models::rnn::CharLSTM model;
  optim::Adam opt(model.parameters(), {.lr = 2e-3});
  Tensor x = randint(0, 65, {kB, kT}), y = randint(0, 65, {kB, kT});
  models::rnn::LSTMState st;
  for (auto _ : state) {
    double loss = models::rnn::train_step(model, opt, x, y, st, 1.0);
    benchmark::DoNotOptimize(loss);
  }
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(kB * kT), benchmark::Counter::kIsIterationInvariantRate);
  // layer 0: I = 64, layer 1: I = 256; head 256 -> 65
  const double fwd = 2.0 * kT * kB * 4 * kH * ((64 + kH) + (kH + kH)) + 2.0 * kT * kB * kH * 65;
  state.counters["FLOP/s"] = benchmark::Counter(3 * fwd, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_char_lstm)->Name("train_step/char_lstm")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

const double kLstmFwdFlop = 2.0 * kT * kB * 4 * kH * (kH + kH);

void BM_lstm_forward(benchmark::State& state) {
  manual_seed(0);
  nn::LSTM lstm(kH, kH, {.batch_first = true});
  Tensor x = randn({kB, kT, kH});
  NoGradGuard ng;
  for (auto _ : state) {
    nn::RNNOutput r = lstm.forward(x);
    benchmark::DoNotOptimize(r.output.raw_data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(kLstmFwdFlop, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_lstm_forward)->Name("kernel/lstm/forward")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_lstm_forward_backward(benchmark::State& state) {
  manual_seed(0);
  nn::LSTM lstm(kH, kH, {.batch_first = true});
  Tensor x = randn({kB, kT, kH}).requires_grad_();
  for (auto _ : state) {
    nn::RNNOutput r = lstm.forward(x);
    r.output.sum().backward();
  }
  state.counters["FLOP/s"] = benchmark::Counter(3 * kLstmFwdFlop, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_lstm_forward_backward)->Name("kernel/lstm/forward_backward")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
