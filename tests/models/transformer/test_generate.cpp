// Tests for include/genai/models/transformer/generate.hpp: the logits processors
// (repetition penalty, temperature, top-k, top-p) on hand-computed examples, the
// sampling distribution, seeding, stop tokens / sequences, the streaming callback and
// contexts longer than block_size.
#include "test_util.hpp"

#include <map>

#include <genai/models/transformer/generate.hpp>

using namespace genai;
using namespace genai::models;

namespace {

constexpr double kNinf = -std::numeric_limits<double>::infinity();

std::vector<double> logs(const std::vector<double>& p) {
  std::vector<double> l;
  for (double x : p) l.push_back(std::log(x));
  return l;
}

/// Frequencies of n draws of sample_next.
std::vector<double> frequencies(const std::vector<double>& logits, const SamplingOptions& o, int n, uint64_t seed) {
  Generator g(seed);
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[static_cast<size_t>(sample_next(logits, {}, o, g))] += 1.0 / n;
  return f;
}

GPT& tiny_model() {
  static std::unique_ptr<GPT> m = [] {
    Generator g(11);
    auto x = std::make_unique<GPT>(GPTConfig{.block_size = 12, .vocab_size = 23, .n_layer = 2, .n_head = 2, .n_embd = 16}, g);
    NoGradGuard ng;
    for (auto& p : x->parameters()) p.mul_(20.0);  // peaked distributions: distinct greedy paths
    x->eval();
    return x;
  }();
  return *m;
}

}  // namespace

TEST_CASE("process_logits: repetition penalty, temperature, top-k, top-p", "[generate]") {
  std::vector<double> l = {2.0, -2.0, 1.0, 0.5};
  process_logits(l, {0, 1, 1}, {.repetition_penalty = 2.0});
  CHECK(l == std::vector<double>{1.0, -4.0, 1.0, 0.5});  // positive divided, negative multiplied
  l = {2.0, -2.0, 1.0, 0.5};
  process_logits(l, {}, {.temperature = 0.5});
  CHECK(l == std::vector<double>{4.0, -4.0, 2.0, 1.0});
  // top-k keeps ties at the k-th value
  l = {1.0, 3.0, 2.0, 2.0, 0.0};
  process_logits(l, {}, {.top_k = 2});
  CHECK(l == std::vector<double>{kNinf, 3.0, 2.0, 2.0, kNinf});
  // top-p 0.75 on probabilities (0.5, 0.3, 0.15, 0.05): ascending cumulative 0.05, 0.2 <= 0.25 removed
  l = logs({0.15, 0.5, 0.05, 0.3});
  process_logits(l, {}, {.top_p = 0.75});
  CHECK(l[0] == kNinf);
  CHECK(l[2] == kNinf);
  CHECK(std::isfinite(l[1]));
  CHECK(std::isfinite(l[3]));
  // a tiny top-p keeps the most likely token
  l = logs({0.15, 0.5, 0.05, 0.3});
  process_logits(l, {}, {.top_p = 0.01});
  CHECK(std::isfinite(l[1]));
  CHECK(std::count_if(l.begin(), l.end(), [](double x) { return std::isfinite(x); }) == 1);
  // greedy: only the penalty applies
  l = {2.0, -2.0, 1.0};
  process_logits(l, {0}, {.temperature = 0.3, .top_k = 1, .repetition_penalty = 4.0, .greedy = true});
  CHECK(l == std::vector<double>{0.5, -2.0, 1.0});
  CHECK(sample_next({2.0, -2.0, 1.0}, {0}, {.repetition_penalty = 4.0, .greedy = true}, default_generator()) == 2);
  CHECK(sample_next({1.0, 5.0, 5.0}, {}, {.greedy = true}, default_generator()) == 1);  // first on ties
  CHECK_THROWS_WITH(process_logits(l, {}, {.top_p = 0.0}), Catch::Contains("top_p"));
  CHECK_THROWS_WITH(process_logits(l, {}, {.repetition_penalty = 0.0}), Catch::Contains("repetition_penalty"));
}

TEST_CASE("sample_next draws from the processed distribution", "[generate]") {
  const std::vector<double> l = logs({0.1, 0.2, 0.3, 0.4});
  const int n = 40000;  // standard error <= 0.0025
  auto f = frequencies(l, {}, n, 1);
  CHECK(f[0] == Approx(0.1).margin(0.012));
  CHECK(f[3] == Approx(0.4).margin(0.012));
  // temperature 2: p^(1/2), normalized
  f = frequencies(l, {.temperature = 2.0}, n, 2);
  const double z = std::sqrt(0.1) + std::sqrt(0.2) + std::sqrt(0.3) + std::sqrt(0.4);
  CHECK(f[0] == Approx(std::sqrt(0.1) / z).margin(0.012));
  CHECK(f[2] == Approx(std::sqrt(0.3) / z).margin(0.012));
  // top-k 2 and top-p 0.65 both leave {0.3, 0.4}, renormalized
  for (SamplingOptions o : {SamplingOptions{.top_k = 2}, SamplingOptions{.top_p = 0.65}}) {
    f = frequencies(l, o, n, 3);
    CHECK(f[0] == 0.0);
    CHECK(f[1] == 0.0);
    CHECK(f[2] == Approx(3.0 / 7.0).margin(0.012));
  }
  // same seed, same draws
  CHECK(frequencies(l, {}, 100, 9) == frequencies(l, {}, 100, 9));
  CHECK_THROWS_WITH(sample_next({kNinf, kNinf}, {}, {}, default_generator()), Catch::Contains("no finite logit"));
}

TEST_CASE("generate: seeds, stops, callback, long contexts", "[generate]") {
  GPTDecoder dec(tiny_model());
  const std::vector<int64_t> prompt = {1, 2, 3};
  GenerationOptions greedy{.max_new_tokens = 10, .sampling = {.greedy = true}};
  auto base = generate(dec, {prompt}, greedy).tokens[0];
  REQUIRE(base.size() == 10);

  // seeded sampling is reproducible
  GenerationOptions samp{.max_new_tokens = 15, .sampling = {.temperature = 100.0}};  // the model is very peaked
  Generator g1(5), g2(5), g3(6);
  auto s1 = generate(dec, {prompt, {7}}, samp, g1).tokens;
  auto s2 = generate(dec, {prompt, {7}}, samp, g2).tokens;
  auto s3 = generate(dec, {prompt, {7}}, samp, g3).tokens;
  CHECK(s1 == s2);
  CHECK(s1 != s3);

  // a stop token ends the sequence after its first occurrence (included)
  const int64_t stop = base[4];
  const auto first = std::find(base.begin(), base.end(), stop);
  GenerationOptions o = greedy;
  o.stop_tokens = {stop};
  auto r = generate(dec, {prompt}, o);
  CHECK(r.tokens[0] == std::vector<int64_t>(base.begin(), first + 1));
  CHECK(r.finish[0] == FinishReason::StopToken);
  // a stop sequence (two tokens)
  o = greedy;
  o.stop_sequences = {{base[5], base[6]}};
  r = generate(dec, {prompt}, o);
  size_t end = 0;
  for (size_t i = 1; i < base.size(); ++i)
    if (base[i - 1] == base[5] && base[i] == base[6]) {
      end = i + 1;
      break;
    }
  CHECK(r.tokens[0] == std::vector<int64_t>(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(end)));
  CHECK(r.finish[0] == FinishReason::StopSequence);
  // the callback streams every token and can stop one sequence of a batch
  std::map<int64_t, std::vector<int64_t>> seen;
  r = generate(dec, {prompt, prompt}, greedy, default_generator(), [&](int64_t b, int64_t t) {
    seen[b].push_back(t);
    return !(b == 1 && seen[b].size() == 3);
  });
  CHECK(r.tokens[0] == base);
  CHECK(seen[0] == base);
  CHECK(r.tokens[1] == std::vector<int64_t>(base.begin(), base.begin() + 3));
  CHECK(r.finish[1] == FinishReason::Callback);
  CHECK(r.finish[0] == FinishReason::Length);

  // a prompt longer than block_size (12) is cropped to its last 12 tokens
  std::vector<int64_t> long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt.push_back(i % 23);
  const std::vector<int64_t> tail(long_prompt.end() - 12, long_prompt.end());
  CHECK(generate(dec, {long_prompt}, greedy).tokens[0] == generate(dec, {tail}, greedy).tokens[0]);
  // generating past block_size keeps matching the module forward on the last 12 tokens
  GenerationOptions longer{.max_new_tokens = 20, .sampling = {.greedy = true}};
  auto lr = generate(dec, {prompt}, longer).tokens[0];
  std::vector<int64_t> seq = prompt;
  NoGradGuard ng;
  for (int i = 0; i < 20; ++i) {
    std::vector<int64_t> ctx(seq.size() > 12 ? seq.end() - 12 : seq.begin(), seq.end());
    Tensor lg = tiny_model().forward(from_vector(ctx, {1, static_cast<int64_t>(ctx.size())}, kInt64));
    const int64_t next = lg[0][static_cast<int64_t>(ctx.size()) - 1].argmax().item<int64_t>();
    CHECK(lr[static_cast<size_t>(i)] == next);
    seq.push_back(next);
  }

  // edge cases
  CHECK(generate(dec, {prompt}, {.max_new_tokens = 0}).tokens[0].empty());
  CHECK_THROWS_WITH(generate(dec, {{}}, greedy), Catch::Contains("prompt 0 is empty"));
  CHECK_THROWS_WITH(generate(dec, {}, greedy), Catch::Contains("no prompts"));
  CHECK_THROWS_WITH(generate(dec, {{99}}, greedy), Catch::Contains("outside the vocabulary"));
}
