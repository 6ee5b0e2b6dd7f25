// genai/models/rnn/sampling.hpp: drawing a token from a row of logits with
// temperature, top-k and top-p (nucleus) truncation, as Hugging Face's
// TemperatureLogitsWarper / TopKLogitsWarper / TopPLogitsWarper applied in that
// order (A. Holtzman et al., "The curious case of neural text degeneration", 2020,
// for top-p). temperature 0 means greedy (argmax).
//
// Differences from Hugging Face: top-p keeps the smallest set of most likely
// tokens whose probability reaches top_p (at least one token), computed in
// double; draws come from a genai::Generator.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "genai/tensor.hpp"

namespace genai {
namespace models {
namespace rnn {

struct SampleOptions {
  double temperature = 1.0;  // logits / temperature; 0: greedy
  int64_t top_k = 0;         // keep the k most likely tokens; 0: all
  double top_p = 1.0;        // keep the most likely tokens up to cumulative probability top_p; 1: all
};

/// The probabilities after temperature, top-k and top-p (0 for removed tokens).
inline std::vector<double> sampling_probs(const std::vector<double>& logits, const SampleOptions& o) {
  const int64_t n = static_cast<int64_t>(logits.size());
  GENAI_CHECK(n > 0, "sample: empty logits");
  GENAI_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), "sample: temperature must be >= 0, got ",
              o.temperature);
  GENAI_CHECK(o.top_k >= 0, "sample: top_k must be >= 0, got ", o.top_k);
  GENAI_CHECK(o.top_p > 0 && o.top_p <= 1, "sample: top_p must be in (0, 1], got ", o.top_p);
  std::vector<double> p(static_cast<size_t>(n), 0.0);
  if (o.temperature == 0) {
    p[static_cast<size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())] = 1.0;
    return p;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, n) : n;
  const double mx = logits[static_cast<size_t>(order[0])];
  double z = 0;
  for (int64_t i = 0; i < keep; ++i) {
    const size_t k = static_cast<size_t>(order[static_cast<size_t>(i)]);
    p[k] = std::exp((logits[k] - mx) / o.temperature);
    z += p[k];
  }
  for (int64_t i = 0; i < keep; ++i) p[static_cast<size_t>(order[static_cast<size_t>(i)])] /= z;
  if (o.top_p < 1) {
    double cum = 0;
    int64_t m = 0;
    while (m < keep) {
      cum += p[static_cast<size_t>(order[static_cast<size_t>(m)])];
      ++m;
      if (cum >= o.top_p) break;
    }
    for (int64_t i = m; i < keep; ++i) p[static_cast<size_t>(order[static_cast<size_t>(i)])] = 0;
    for (int64_t i = 0; i < m; ++i) p[static_cast<size_t>(order[static_cast<size_t>(i)])] /= cum;
  }
  return p;
}

/// Draws a token id from logits (one row) with the given truncation.
inline int64_t sample_logits(const std::vector<double>& logits, const SampleOptions& o, Generator& gen) {
  std::vector<double> p = sampling_probs(logits, o);
  double u = gen.uniform(), cum = 0;
  int64_t last = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = static_cast<int64_t>(i);
    cum += p[i];
    if (u < cum) return last;
  }
  return last;  // rounding: the last kept token
}

/// The same for a 1-d logits tensor (any float dtype).
inline int64_t sample_logits(const Tensor& logits, const SampleOptions& o, Generator& gen) {
  GENAI_CHECK(logits.defined() && logits.dim() == 1, "sample_logits: expected a 1-d tensor of logits");
  return sample_logits(logits.to_vector<double>(), o, gen);
}

}  // namespace rnn
}  // namespace models
}  // namespace genai
