// genai/models/transformer/sampling.hpp: choosing the next token from a vector of
// logits, shared by every decoder (GPT's generate.hpp, T5's t5.hpp): repetition
// penalty, temperature, top-k, top-p and greedy, in Hugging Face's logits-processor
// order (the semantics are described in generate.hpp). Kept apart from generate.hpp
// so that models other than GPT do not compile GPT's KV-cache decoder.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "genai/core/rng.hpp"

namespace genai {
namespace models {

struct SamplingOptions {
  double temperature = 1.0;          // divides the logits; <= 0 means greedy
  int64_t top_k = 0;                 // keep the k most likely tokens; 0: all
  double top_p = 1.0;                // nucleus: keep the smallest set with probability >= top_p; 1: all
  double repetition_penalty = 1.0;   // > 1 discourages tokens already in the sequence; 1: off
  bool greedy = false;               // argmax (after the repetition penalty)
};

/// Applies the repetition penalty, temperature, top-k and top-p to `logits` (V)
/// in place (removed tokens become -inf). Greedy options leave them after the penalty.
inline void process_logits(std::vector<double>& logits, const std::vector<int64_t>& history, const SamplingOptions& o) {
  const int64_t V = static_cast<int64_t>(logits.size());
  GENAI_CHECK(o.repetition_penalty > 0, "generate: repetition_penalty must be positive, got ", o.repetition_penalty);
  GENAI_CHECK(o.top_p > 0 && o.top_p <= 1, "generate: top_p must be in (0, 1], got ", o.top_p);
  GENAI_CHECK(o.top_k >= 0, "generate: top_k must be >= 0, got ", o.top_k);
  if (o.repetition_penalty != 1.0) {
    std::vector<char> seen(static_cast<size_t>(V), 0);
    for (int64_t t : history)
      if (t >= 0 && t < V) seen[static_cast<size_t>(t)] = 1;
    for (int64_t i = 0; i < V; ++i)
      if (seen[static_cast<size_t>(i)]) {
        double& l = logits[static_cast<size_t>(i)];
        l = l < 0 ? l * o.repetition_penalty : l / o.repetition_penalty;
      }
  }
  if (o.greedy || o.temperature <= 0) return;
  if (o.temperature != 1.0)
    for (double& l : logits) l /= o.temperature;
  const double ninf = -std::numeric_limits<double>::infinity();
  if (o.top_k > 0 && o.top_k < V) {
    std::vector<double> tmp = logits;
    std::nth_element(tmp.begin(), tmp.begin() + (o.top_k - 1), tmp.end(), std::greater<double>());
    const double kth = tmp[static_cast<size_t>(o.top_k - 1)];
    for (double& l : logits)
      if (l < kth) l = ninf;
  }
  if (o.top_p < 1.0) {
    std::vector<int64_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return logits[static_cast<size_t>(a)] < logits[static_cast<size_t>(b)]; });
    const double mx = logits[static_cast<size_t>(idx.back())];
    double z = 0;
    for (double l : logits) z += std::exp(l - mx);
    double cum = 0;
    for (int64_t j = 0; j + 1 < V; ++j) {  // the largest always stays
      double& l = logits[static_cast<size_t>(idx[static_cast<size_t>(j)])];
      cum += std::exp(l - mx) / z;
      if (cum > 1.0 - o.top_p) break;
      l = ninf;
    }
  }
}

/// The next token from `logits` (V): greedy or one draw after process_logits.
inline int64_t sample_next(std::vector<double> logits, const std::vector<int64_t>& history, const SamplingOptions& o,
                           Generator& gen) {
  GENAI_CHECK(!logits.empty(), "sample_next: empty logits");
  process_logits(logits, history, o);
  if (o.greedy || o.temperature <= 0)
    return static_cast<int64_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const double mx = *std::max_element(logits.begin(), logits.end());
  GENAI_CHECK(std::isfinite(mx), "sample_next: no finite logit to sample from (NaN or all -inf)");
  double z = 0;
  for (double& l : logits) z += (l = std::exp(l - mx));
  const double u = gen.uniform() * z;
  double cum = 0;
  int64_t last = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] <= 0) continue;
    last = static_cast<int64_t>(i);
    cum += logits[i];
    if (u < cum) return last;
  }
  return last;  // rounding: the last token with nonzero probability
}

}  // namespace models
}  // namespace genai
