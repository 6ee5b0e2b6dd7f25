// BERT benchmark, next to PyTorch's in benchmarks/pytorch/bench_bert.py:
//
//   train_step/bert_mini   one AdamW(1e-4, weight decay 0.01 off biases / LayerNorm) step of
//                          BERT-mini masked language modelling (models/transformer/bert.hpp):
//                          vocab 30522 (BERT's WordPiece vocabulary), 4 post-LN layers, hidden
//                          256, 4 heads, intermediate 1024 (GELU), 128 positions, 2 token types,
//                          MLM head with the decoder tied to the word embedding; batch 32 x 128
//                          random ids, no padding, dropout 0, 15% of the positions labelled
//                          (the rest -100); logits over the full vocabulary at every position,
//                          as Hugging Face's BertForMaskedLM computes them.
//
// Counter: tokens/s (B T per step).
#include <benchmark/benchmark.h>

#include <genai/genai.hpp>
#include <genai/models/transformer/bert.hpp>

using namespace genai;

namespace {

void BM_train_bert_mini(benchmark::State& state) {
  manual_seed(0);
  models::BertConfig cfg = models::BertConfig::bert_mini(30522);
  cfg.max_position_embeddings = 128;
  cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0;
  Generator g(0);
  models::BertForMaskedLM model(cfg, g);
  optim::AdamW opt(model.param_groups(0.01), {.lr = 1e-4, .weight_decay = 0.01});
  const int64_t B = 32, T = 128;
  Tensor x = randint(0, cfg.vocab_size, {B, T}, kInt64, g);
  Tensor labels = x.clone();
  {
    int64_t* p = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < B * T; ++i)
      if (g.uniform() >= 0.15) p[i] = -100;
  }
  for (auto _ : state) {
    Tensor loss = models::BertForMaskedLM::loss(model.forward(x), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_train_bert_mini)->Name("train_step/bert_mini")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
