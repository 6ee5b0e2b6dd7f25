// T5 benchmark, next to PyTorch's in benchmarks/pytorch/bench_t5.py:
//
//   train_step/t5_mini   one AdamW(1e-3) step of a T5 v1.0 of BERT-mini size
//                        (models/transformer/t5.hpp): 4 encoder + 4 decoder blocks,
//                        d_model 256, 4 heads of d_kv 64, d_ff 1024, relu, relative
//                        position bias (32 buckets, max distance 128), vocabulary 32128
//                        (T5's), tied head with the d_model^-0.5 rescale, no dropout;
//                        batch 32, source length 128, target length 128, random ids
//                        (no padding), cross-entropy over all target tokens
//
// Counter: target tokens/s (B T per step).
#include <benchmark/benchmark.h>

#include <genai/genai.hpp>
#include <genai/models/transformer/t5.hpp>

using namespace genai;

namespace {

void BM_train_t5_mini(benchmark::State& state) {
  manual_seed(0);
  models::T5Config cfg{.vocab_size = 32128, .d_model = 256, .d_kv = 64, .d_ff = 1024, .num_layers = 4,
                       .num_decoder_layers = 4, .num_heads = 4, .dropout_rate = 0.0, .feed_forward_proj = "relu"};
  models::T5ForConditionalGeneration model(cfg);
  optim::AdamW opt(model.parameters(), {.lr = 1e-3});
  constexpr int64_t B = 32, S = 128, T = 128;
  Tensor src = randint(2, cfg.vocab_size, {B, S}), labels = randint(2, cfg.vocab_size, {B, T});
  Tensor dec_in = model.shift_right(labels);
  for (auto _ : state) {
    Tensor loss = models::T5ForConditionalGeneration::loss(model.forward(src, Tensor(), dec_in), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_t5_mini)->Name("train_step/t5_mini")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
