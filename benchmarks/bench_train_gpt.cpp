// GPT benchmarks (REFERENCE_MODELS.md), next to PyTorch's in benchmarks/pytorch/bench_torch.py:
//
//   train_step/char_gpt               one AdamW(1e-3) step of the char_gpt reference model:
//                                     token emb 65 x 128 + learned positions 64 x 128, 4 pre-LN
//                                     blocks (4 heads, fused qkv, MLP 128 -> 512 GELU -> 128, all
//                                     Linear with bias), final LayerNorm, tied head 128 -> 65;
//                                     12 x 64 random ids, cross-entropy (models/transformer/gpt.hpp)
//   train_step/gpt2_decode_token      GPT-2 small shape (124M parameters: 12 blocks, d = 768, 12 heads,
//                                     vocab 50257, 1024 positions, head tied), random float32 weights,
//                                     no grad: a 16-token prompt is prefilled (not timed), then 32
//                                     tokens are decoded greedily with the KV cache (GPTDecoder);
//                                     the reported time is per generated token
//   train_step/gpt2_decode_token_bf16 the same with bfloat16 weight copies (genai only)
//   train_step/gpt2_prefill_16        the 16-token prefill alone (float32)
//
// Counters: tokens/s for the training step (B T per step); for decoding, GB/s of weight
// traffic (the float32 or bf16 bytes of the 2-d weights read per token: decoding one
// token reads every weight once, so this is the number to hold against the machine's
// memory bandwidth, genai_peak's STREAM figure).
#include <benchmark/benchmark.h>

#include <chrono>

#include <genai/genai.hpp>
#include <genai/models/transformer/generate.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/kv_cache.hpp>

using namespace genai;

namespace {

void BM_train_char_gpt(benchmark::State& state) {
  manual_seed(0);
  models::GPT model(models::GPTConfig::char_gpt(65));
  optim::AdamW opt(model.parameters(), {.lr = 1e-3});
  Tensor x = randint(0, 65, {12, 64}), y = randint(0, 65, {12, 64});
  for (auto _ : state) {
    Tensor loss = models::GPT::loss(model.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["tokens/s"] = benchmark::Counter(12.0 * 64.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_char_gpt)->Name("train_step/char_gpt")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

/// One GPT-2 small model with random weights, shared by the decode benchmarks.
models::GPT& gpt2_small() {
  static models::GPT* m = [] {
    Generator g(0);
    auto* p = new models::GPT(models::GPTConfig::gpt2(), g);
    p->eval();
    return p;
  }();
  return *m;
}

/// Bytes of 2-d weights read per decoded token (the projections and the tied head).
double weight_bytes(const models::GPT& m, double bytes_per_weight) {
  double n = 0;
  for (auto& [name, p] : m.named_parameters())
    if (p.dim() == 2 && name.find("wpe") == std::string::npos) n += static_cast<double>(p.numel());
  return n * bytes_per_weight;
}

void decode(benchmark::State& state, bool bf16) {
  models::GPT& m = gpt2_small();
  models::GPTDecoder dec(m, {.bf16 = bf16});
  Generator g(1);
  std::vector<int64_t> prompt;
  for (int i = 0; i < 16; ++i) prompt.push_back(static_cast<int64_t>(g.below(50257)));
  models::KVCache cache = dec.new_cache(1);
  constexpr int kNew = 32;
  for (auto _ : state) {
    cache.reset();
    Tensor lg = dec.forward({prompt}, cache);  // prefill: not timed
    const float* p = lg.data_ptr<const float>();
    int64_t tok = static_cast<int64_t>(std::max_element(p, p + 50257) - p);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kNew; ++i) {
      lg = dec.forward({{tok}}, cache);
      p = lg.data_ptr<const float>();
      tok = static_cast<int64_t>(std::max_element(p, p + 50257) - p);  // greedy
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(dt / kNew);  // per generated token
    benchmark::DoNotOptimize(tok);
  }
  state.counters["GB/s"] = benchmark::Counter(weight_bytes(m, bf16 ? 2.0 : 4.0) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
void BM_gpt2_decode_token(benchmark::State& state) { decode(state, false); }
void BM_gpt2_decode_token_bf16(benchmark::State& state) { decode(state, true); }
BENCHMARK(BM_gpt2_decode_token)->Name("train_step/gpt2_decode_token")->Unit(benchmark::kMillisecond)->UseManualTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_gpt2_decode_token_bf16)->Name("train_step/gpt2_decode_token_bf16")->Unit(benchmark::kMillisecond)
    ->UseManualTime()->MeasureProcessCPUTime();

void BM_gpt2_prefill(benchmark::State& state) {
  models::GPT& m = gpt2_small();
  models::GPTDecoder dec(m);
  Generator g(1);
  std::vector<int64_t> prompt;
  for (int i = 0; i < 16; ++i) prompt.push_back(static_cast<int64_t>(g.below(50257)));
  models::KVCache cache = dec.new_cache(1);
  for (auto _ : state) {
    cache.reset();
    Tensor lg = dec.forward({prompt}, cache);
    benchmark::DoNotOptimize(lg.raw_data());
  }
}
BENCHMARK(BM_gpt2_prefill)->Name("train_step/gpt2_prefill_16")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
