// genai/models/transformer/generate.hpp: text generation with a GPT: sampling
// (temperature, top-k, top-p, repetition penalty), greedy decoding, stop tokens
// and stop sequences, batched prompts of different lengths, streaming callbacks,
// all on GPTDecoder's KV cache (kv_cache.hpp).
//
//   models::GPTDecoder dec(gpt);
//   Generator gen(42);                                   // seeded: the same text every run
//   models::GenerationOptions o{.max_new_tokens = 100, .sampling = {.temperature = 0.8, .top_k = 200}};
//   auto out = models::generate(dec, {prompt_ids}, o, gen, [&](int64_t seq, int64_t tok) {
//     std::cout << tokenizer.decode({tok}) << std::flush;   // streaming
//     return true;                                         // false stops this sequence
//   });
//
// Semantics follow Hugging Face's generate() logits processors, in its order:
// repetition penalty (CTRL, Keskar et al. 2019: a logit of a token already in the
// sequence, prompt included, is divided by the penalty if positive, multiplied if
// negative), then temperature, top-k (tokens below the k-th largest logit are
// removed; ties at the k-th are kept), top-p (nucleus, Holtzman et al. 2020: in
// ascending order, tokens whose cumulative probability is <= 1 - top_p are removed,
// the most likely token always stays), then one draw from the softmax with the
// given Generator. Greedy is the argmax after the repetition penalty (first index
// on ties, as torch.argmax); temperature 0 means greedy too.
//
// Context longer than block_size: as nanoGPT's generate, the model sees the last
// block_size tokens; once a sequence no longer fits in the cache, its cache is
// refilled with its last block_size tokens at every step (exact, but each such
// step costs a prefill of block_size tokens).
//
// Differences from Hugging Face: random draws come from genai's Generator, not
// torch's; sequences of a batch are independent (no padding, no attention mask),
// so a batched generation equals generating every prompt alone with the same
// draws order (sequences draw in index order at each step).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "genai/core/rng.hpp"
#include "genai/models/transformer/kv_cache.hpp"
#include "genai/models/transformer/sampling.hpp"

namespace genai {
namespace models {

struct GenerationOptions {
  int64_t max_new_tokens = 100;
  SamplingOptions sampling = {};
  std::vector<int64_t> stop_tokens = {};                  // a sequence ends after generating one of these (e.g. eot)
  std::vector<std::vector<int64_t>> stop_sequences = {};  // ... or when its generated tokens end with one of these
};

/// Why a sequence stopped.
enum class FinishReason { Length, StopToken, StopSequence, Callback };

struct GenerationResult {
  std::vector<std::vector<int64_t>> tokens;  // the generated tokens of each prompt (stop tokens included)
  std::vector<FinishReason> finish;
};

/// Called after each generated token with (sequence index, token); return false to stop that sequence.
using TokenCallback = std::function<bool(int64_t, int64_t)>;

/// Generates up to max_new_tokens for every prompt (each non-empty), in lockstep on one KV cache.
inline GenerationResult generate(const GPTDecoder& dec, const std::vector<std::vector<int64_t>>& prompts,
                                 const GenerationOptions& o, Generator& gen = default_generator(),
                                 const TokenCallback& on_token = {}) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  GENAI_CHECK(B >= 1, "generate: no prompts");
  GENAI_CHECK(o.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ", o.max_new_tokens);
  for (int64_t b = 0; b < B; ++b)
    GENAI_CHECK(!prompts[static_cast<size_t>(b)].empty(), "generate: prompt ", b,
                " is empty; hint: start from a token such as <|endoftext|> (GPT-2) or a newline (char models)");
  const int64_t block = dec.config().block_size, V = dec.config().vocab_size;
  KVCache cache = dec.new_cache(B);
  std::vector<std::vector<int64_t>> seq = prompts;  // prompt + generated
  GenerationResult res;
  res.tokens.resize(static_cast<size_t>(B));
  res.finish.assign(static_cast<size_t>(B), FinishReason::Length);
  std::vector<char> active(static_cast<size_t>(B), o.max_new_tokens > 0);
  // first step: the prompts (their last block_size tokens)
  std::vector<std::vector<int64_t>> feed(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = seq[static_cast<size_t>(b)];
    const size_t start = p.size() > static_cast<size_t>(block) ? p.size() - static_cast<size_t>(block) : 0;
    feed[static_cast<size_t>(b)].assign(p.begin() + static_cast<std::ptrdiff_t>(start), p.end());
  }
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    bool any = false;
    for (int64_t b = 0; b < B; ++b) {
      if (!active[static_cast<size_t>(b)]) feed[static_cast<size_t>(b)].clear();
      any = any || active[static_cast<size_t>(b)];
    }
    if (!any) break;
    Tensor logits = dec.forward(feed, cache).to(kFloat64);  // (B, V)
    const double* pl = logits.data_ptr<const double>();
    for (int64_t b = 0; b < B; ++b) {
      auto& f = feed[static_cast<size_t>(b)];
      f.clear();
      if (!active[static_cast<size_t>(b)]) continue;
      std::vector<double> row(pl + b * V, pl + (b + 1) * V);
      const int64_t tok = sample_next(std::move(row), seq[static_cast<size_t>(b)], o.sampling, gen);
      seq[static_cast<size_t>(b)].push_back(tok);
      auto& out = res.tokens[static_cast<size_t>(b)];
      out.push_back(tok);
      bool stop = false;
      if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), tok) != o.stop_tokens.end()) {
        res.finish[static_cast<size_t>(b)] = FinishReason::StopToken;
        stop = true;
      }
      for (const auto& s : o.stop_sequences)
        if (!stop && !s.empty() && out.size() >= s.size() && std::equal(s.rbegin(), s.rend(), out.rbegin())) {
          res.finish[static_cast<size_t>(b)] = FinishReason::StopSequence;
          stop = true;
        }
      if (on_token && !on_token(b, tok) && !stop) {
        res.finish[static_cast<size_t>(b)] = FinishReason::Callback;
        stop = true;
      }
      if (stop || step + 1 == o.max_new_tokens) {
        active[static_cast<size_t>(b)] = 0;
        continue;
      }
      // next input: the new token, or (cache full) the last block_size tokens afresh
      if (cache.length(b) < cache.max_len) {
        f.push_back(tok);
      } else {
        cache.reset(b);
        const auto& sq = seq[static_cast<size_t>(b)];
        f.assign(sq.end() - block, sq.end());
      }
    }
  }
  return res;
}

}  // namespace models
}  // namespace genai
