// Golden tests of T5 (include/genai/models/transformer/t5.hpp) against a T5 written in
// PyTorch with Hugging Face's names (tests/fixtures/make_t5_fixtures.py): relative-position
// buckets, encoder states, logits, loss (-100 ignored) and every gradient for v1.0 (relu,
// tied) and v1.1 (gated-gelu, untied), 5 AdamW steps, greedy and beam-search ids of the
// Python decoding reference, cached == uncached decoding, span corruption properties,
// save/load round trip and a tiny Hugging Face folder (t5_tiny_hf).
// Tolerances: float64 rtol 1e-9 / atol 1e-11, float32 rtol 1e-4 / atol 1e-5.
#include "test_util.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <genai/models/transformer/t5.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
using models::T5Config;
using models::T5ForConditionalGeneration;
static const char* kFile = "t5.safetensors";

namespace {

Tensor fx(const std::string& name) { return genai_test::fixture(kFile, name); }
std::vector<int64_t> ids_of(const Tensor& t) { return t.to_vector<int64_t>(); }

T5Config golden_config(const std::string& variant) {
  T5Config c{.vocab_size = 40, .d_model = 16, .d_kv = 8, .d_ff = 32, .num_layers = 2, .num_decoder_layers = 2,
             .num_heads = 2, .relative_attention_num_buckets = 8, .relative_attention_max_distance = 16};
  if (variant == "v11") c.feed_forward_proj = "gated-gelu", c.tie_word_embeddings = false;
  return c;
}

/// The fixture script's weight formula (parameter rank k in sorted-name order, flat index i).
void formula_init(T5ForConditionalGeneration& m) {
  NoGradGuard ng;
  auto named = m.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, p] : named) names.push_back(n);
  std::sort(names.begin(), names.end());
  for (size_t k = 0; k < names.size(); ++k) {
    Tensor p;
    for (auto& [n, t] : named)
      if (n == names[k]) p = t;
    const bool ln = names[k].size() >= 17 && names[k].compare(names[k].size() - 17, 17, "layer_norm.weight") == 0;
    std::vector<double> v(static_cast<size_t>(p.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      const double x = static_cast<double>(i), kk = static_cast<double>(k);
      v[i] = ln ? 1.0 + 0.1 * std::sin(0.37 * x + kk)
                : (names[k] == "shared.weight" ? 1.0 : 0.3) * std::sin(0.7 * std::fmod(x * x, 1009.0) + 1.7 * x + 0.9 * kk + 0.5);
    }
    p.copy_(tensor(v, p.shape(), kFloat64).to(p.dtype()));
  }
}

std::shared_ptr<T5ForConditionalGeneration> golden_model(const std::string& variant, Dtype d) {
  auto m = std::make_shared<T5ForConditionalGeneration>(golden_config(variant));
  m->to(d);
  formula_init(*m);
  return m;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype d) { return d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-4, 1e-5}; }

/// The golden model after the fixture's gen.steps AdamW steps on the batch (in float64), cast to d.
std::shared_ptr<T5ForConditionalGeneration> trained_model(const std::string& variant, Dtype d) {
  auto m = golden_model(variant, kFloat64);
  optim::AdamW opt(m->parameters(), optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.01});
  Tensor ids = fx("input_ids"), mask = fx("attention_mask"), labels = fx("labels");
  for (int64_t it = 0; it < fx(variant + ".gen.steps").item<int64_t>(); ++it) {
    Tensor loss = T5ForConditionalGeneration::loss(m->forward(ids, mask, m->shift_right(labels)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  m->to(d);
  m->eval();
  return m;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("genai_test_t5_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

}  // namespace

TEST_CASE("T5: relative position buckets match HF's _relative_position_bucket", "[t5]") {
  auto check = [](const std::string& rel_key, const std::string& key, bool bi, int64_t nb, int64_t md) {
    std::vector<int64_t> rel = ids_of(fx(rel_key)), exp = ids_of(fx(key));
    for (size_t i = 0; i < rel.size(); ++i) {
      INFO(key << " rel " << rel[i]);
      CHECK(models::t5_relative_position_bucket(rel[i], bi, nb, md) == exp[i]);
    }
  };
  check("buckets.rel", "buckets.bi_32_128", true, 32, 128);
  check("buckets.rel", "buckets.causal_32_128", false, 32, 128);
  check("buckets.rel", "buckets.bi_8_16", true, 8, 16);
  check("buckets.rel", "buckets.causal_8_16", false, 8, 16);
  check("buckets.big_rel", "buckets.big_bi_32_128", true, 32, 128);
  check("buckets.big_rel", "buckets.big_causal_32_128", false, 32, 128);
  // hand-checked values (HF, 32 buckets, max distance 128): the future half starts at 16,
  // exact buckets below 8, the causal bucket of any future position is 0
  CHECK(models::t5_relative_position_bucket(0, true) == 0);
  CHECK(models::t5_relative_position_bucket(1, true) == 17);
  CHECK(models::t5_relative_position_bucket(-7, true) == 7);
  CHECK(models::t5_relative_position_bucket(-1000, true) == 15);
  CHECK(models::t5_relative_position_bucket(1000, true) == 31);
  CHECK(models::t5_relative_position_bucket(5, false) == 0);
  CHECK(models::t5_relative_position_bucket(-15, false) == 15);
  CHECK(models::t5_relative_position_bucket(-1000, false) == 31);
}

TEST_CASE("T5: encoder states, logits, loss and every gradient match PyTorch (v1.0 and v1.1)", "[t5]") {
  for (std::string variant : {"v10", "v11"})
    for (Dtype d : {kFloat64, kFloat32}) {
      INFO(variant << " " << dtype_name(d));
      Tol t = tol_for(d);
      auto m = golden_model(variant, d);
      Tensor ids = fx("input_ids"), mask = fx("attention_mask"), labels = fx("labels");
      Tensor dec_in = m->shift_right(labels);
      CHECK(ids_of(dec_in) == ids_of(fx("decoder_input_ids")));
      Tensor enc = m->encode(ids, mask);
      CHECK_CLOSE(enc, fx(variant + ".enc").to(d), t.rtol, t.atol);
      Tensor logits = m->decode(dec_in, enc, mask);
      CHECK_CLOSE(logits, fx(variant + ".logits").to(d), t.rtol, t.atol);
      CHECK_CLOSE(m->forward(ids, mask, dec_in), logits, 1e-12, 1e-12);
      Tensor loss = T5ForConditionalGeneration::loss(logits, labels);
      CHECK_CLOSE(loss, fx(variant + ".loss").to(d), t.rtol, t.atol);
      loss.backward();
      size_t n = 0;
      for (const auto& [name, g] : genai_test::fixtures(kFile))
        if (name.rfind(variant + ".grad.", 0) == 0) ++n;
      REQUIRE(n == m->named_parameters().size());
      for (const auto& [name, p] : m->named_parameters()) {
        INFO("parameter " << name);
        REQUIRE(p.grad().defined());
        CHECK_CLOSE(p.grad(), fx(variant + ".grad." + name).to(d), t.rtol, t.atol);
      }
    }
  // the names are HF's
  auto m = golden_model("v10", kFloat64);
  auto sd = m->state_dict();
  CHECK(sd.count("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
  CHECK(!sd.count("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"));
  CHECK(sd.count("decoder.block.1.layer.1.EncDecAttention.o.weight"));
  CHECK(sd.count("decoder.block.1.layer.2.DenseReluDense.wi.weight"));
  CHECK(!sd.count("lm_head.weight"));
  auto m11 = golden_model("v11", kFloat64);
  CHECK(m11->state_dict().count("encoder.block.1.layer.1.DenseReluDense.wi_1.weight"));
  CHECK(m11->state_dict().count("lm_head.weight"));
}

TEST_CASE("T5: 5 AdamW steps give PyTorch's losses", "[t5]") {
  auto m = golden_model("v11", kFloat64);
  optim::AdamW opt(m->parameters(), optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.01});
  std::vector<double> exp = fx("v11.train.losses").to_vector<double>();
  Tensor ids = fx("input_ids"), mask = fx("attention_mask"), labels = fx("labels");
  for (int it = 0; it < 5; ++it) {
    Tensor loss = T5ForConditionalGeneration::loss(m->forward(ids, mask, m->shift_right(labels)), labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    INFO("step " << it);
    CHECK(loss.item<double>() == Approx(exp[static_cast<size_t>(it)]).epsilon(1e-9));
  }
}

TEST_CASE("T5: greedy and beam search give the Python reference ids; cached == uncached", "[t5][generate]") {
  for (std::string variant : {"v10", "v11"}) {
    REQUIRE(fx(variant + ".gen.margin").item<double>() > 1e-3);  // float32 cannot flip an argmax
    for (Dtype d : {kFloat64, kFloat32}) {
      INFO(variant << " " << dtype_name(d));
      auto m = trained_model(variant, d);
      std::vector<std::vector<int64_t>> in, greedy, beam;
      for (int i = 0; i < 3; ++i) {
        in.push_back(ids_of(fx(variant + ".gen.in" + std::to_string(i))));
        greedy.push_back(ids_of(fx(variant + ".gen.greedy" + std::to_string(i))));
        beam.push_back(ids_of(fx(variant + ".gen.beam" + std::to_string(i))));
      }
      models::T5GenerationOptions o{.max_new_tokens = 8};
      for (int i = 0; i < 3; ++i) {  // one at a time, cached and uncached
        CHECK(models::t5_generate(*m, {in[static_cast<size_t>(i)]}, o)[0] == greedy[static_cast<size_t>(i)]);
        o.use_cache = false;
        CHECK(models::t5_generate(*m, {in[static_cast<size_t>(i)]}, o)[0] == greedy[static_cast<size_t>(i)]);
        o.use_cache = true;
      }
      CHECK(models::t5_generate(*m, in, o) == greedy);  // batched with padding
      if (d == kFloat64) {  // beam scores can tie closely; float64 only
        models::T5GenerationOptions b{.max_new_tokens = 8, .num_beams = 3};
        CHECK(models::t5_generate(*m, in, b) == beam);
        b.use_cache = false;
        CHECK(models::t5_generate(*m, in, b) == beam);
      }
      // sampling: top_k = 1 is greedy; a seed gives the same draws
      models::T5GenerationOptions s{.max_new_tokens = 8, .sampling = {.temperature = 1.5, .top_k = 1}};
      CHECK(models::t5_generate(*m, in, s) == greedy);
      s.sampling = {.temperature = 1.0, .top_p = 0.9};
      Generator g1(7), g2(7);
      CHECK(models::t5_generate(*m, in, s, g1) == models::t5_generate(*m, in, s, g2));
    }
  }
}

TEST_CASE("T5: cached decoder logits equal the full decoder forward", "[t5][generate]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    Tol t = tol_for(d);
    auto m = golden_model("v11", d);
    m->eval();
    NoGradGuard ng;
    Tensor ids = fx("input_ids"), mask = fx("attention_mask"), dec = fx("decoder_input_ids");
    Tensor enc = m->encode(ids, mask);
    Tensor full = m->decode(dec, enc, mask);  // (2, 5, V)
    models::T5DecoderCache cache;
    Tensor a = m->decode(dec.narrow(1, 0, 2), enc, mask, Tensor(), &cache);
    Tensor b = m->decode(dec.narrow(1, 2, 1), enc, mask, Tensor(), &cache);
    Tensor c = m->decode(dec.narrow(1, 3, 2), enc, mask, Tensor(), &cache);
    CHECK(cache.length() == 5);
    CHECK_CLOSE(a, full.narrow(1, 0, 2), t.rtol, t.atol);
    CHECK_CLOSE(b, full.narrow(1, 2, 1), t.rtol, t.atol);
    CHECK_CLOSE(c, full.narrow(1, 3, 2), t.rtol, t.atol);
  }
}

TEST_CASE("T5: span corruption masks ~15% in spans, sentinels count down, input + target rebuild the text", "[t5]") {
  const int64_t V = 100;
  Generator gen(3);
  int64_t masked = 0, total = 0, spans = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t L = 20 + trial % 60;
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < L; ++i) ids.push_back(2 + static_cast<int64_t>(gen.below(80)));
    auto r = models::t5_span_corruption(ids, V, gen);
    REQUIRE(r.inputs.back() == 1);
    REQUIRE(r.targets.back() == 1);
    // sentinels: V-1, V-2, ... in order, the same ones on both sides
    std::vector<int64_t> si, st;
    for (size_t i = 0; i + 1 < r.inputs.size(); ++i)
      if (r.inputs[i] >= 90) si.push_back(r.inputs[i]);
    for (size_t i = 0; i + 1 < r.targets.size(); ++i)
      if (r.targets[i] >= 90) st.push_back(r.targets[i]);
    REQUIRE(si == st);
    for (size_t k = 0; k < si.size(); ++k) CHECK(si[k] == V - 1 - static_cast<int64_t>(k));
    CHECK(r.targets[0] == V - 1);
    // reconstruction: replace each sentinel of the input by its span from the target
    std::vector<int64_t> rebuilt;
    for (size_t i = 0; i + 1 < r.inputs.size(); ++i) {
      const int64_t tok = r.inputs[i];
      if (tok < 90) {
        rebuilt.push_back(tok);
        continue;
      }
      auto it = std::find(r.targets.begin(), r.targets.end(), tok);
      REQUIRE(it != r.targets.end());
      for (++it; it != r.targets.end() - 1 && *it < 90; ++it) rebuilt.push_back(*it);
    }
    CHECK(rebuilt == ids);
    CHECK(r.num_noise == static_cast<int64_t>(r.targets.size() - si.size() - 1));
    masked += r.num_noise;
    total += L;
    spans += static_cast<int64_t>(si.size());
  }
  const double frac = static_cast<double>(masked) / static_cast<double>(total);
  CHECK(frac > 0.13);
  CHECK(frac < 0.17);
  const double mean_span = static_cast<double>(masked) / static_cast<double>(spans);
  CHECK(mean_span > 2.5);
  CHECK(mean_span < 3.6);
  // seeded
  Generator a(11), b(11);
  std::vector<int64_t> ids(30, 5);
  std::iota(ids.begin(), ids.end(), 2);
  CHECK(models::t5_span_corruption(ids, V, a).inputs == models::t5_span_corruption(ids, V, b).inputs);
  CHECK_THROWS_WITH(models::t5_span_corruption({3}, V, a), Catch::Contains("at least 2 tokens"));
}

TEST_CASE("T5: save_t5_pretrained / load_t5_pretrained round trip", "[t5][io]") {
  for (std::string variant : {"v10", "v11"}) {
    auto m = golden_model(variant, kFloat32);
    const std::string dir = temp_dir(variant);
    models::save_t5_pretrained(*m, dir);
    auto back = models::load_t5_pretrained(dir);
    CHECK(back->config().feed_forward_proj == m->config().feed_forward_proj);
    CHECK(back->config().tie_word_embeddings == m->config().tie_word_embeddings);
    CHECK(back->config().relative_attention_num_buckets == 8);
    auto a = m->state_dict(), b = back->state_dict();
    REQUIRE(a.size() == b.size());
    for (const auto& [n, t] : a) CHECK_CLOSE(b.at(n), t, 0.0, 0.0);
    std::filesystem::remove_all(dir);
  }
  CHECK_THROWS_WITH(models::load_t5_pretrained("/nonexistent/t5"), Catch::Contains("config.json"));
  // HF variants: shared.weight only as encoder.embed_tokens.weight, a tied lm_head.weight, and the
  // unused EncDecAttention.relative_attention_bias of the original checkpoints
  auto m = golden_model("v10", kFloat64);
  io::TensorMap hf = m->state_dict();
  hf["encoder.embed_tokens.weight"] = hf.at("shared.weight");
  hf.erase("shared.weight");
  hf["lm_head.weight"] = hf.at("encoder.embed_tokens.weight");
  hf["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = zeros({8, 2}, kFloat64);
  auto fresh = std::make_shared<T5ForConditionalGeneration>(golden_config("v10"));
  fresh->to(kFloat64);
  fresh->load_state_dict(models::t5_state_dict_from_hf(hf, fresh->config()));  // strict
  CHECK_CLOSE(fresh->shared->weight, m->shared->weight, 0.0, 0.0);
}

TEST_CASE("T5: the tiny Hugging Face folder loads (embed_tokens aliases) and decodes the reference ids", "[t5][io]") {
  const std::string dir = std::string(GENAI_FIXTURE_DIR) + "/t5_tiny_hf";
  std::ifstream f(std::string(GENAI_FIXTURE_DIR) + "/t5_tiny_expected.json");
  REQUIRE(f.good());
  nlohmann::json exp = nlohmann::json::parse(f);
  REQUIRE(exp["min_margin"].get<double>() > 1e-3);
  auto m = models::load_t5_pretrained(dir);
  CHECK(m->config().vocab_size == 32);
  CHECK(m->config().tie_word_embeddings);
  auto ins = exp["inputs"].get<std::vector<std::vector<int64_t>>>();
  auto outs = exp["greedy"].get<std::vector<std::vector<int64_t>>>();
  models::T5GenerationOptions o{.max_new_tokens = exp["max_new_tokens"].get<int64_t>()};
  for (size_t i = 0; i < ins.size(); ++i) CHECK(models::t5_generate(*m, {ins[i]}, o)[0] == outs[i]);
  CHECK_THROWS_WITH(models::t5_generate(*m, {{99}}, o), Catch::Contains("outside the vocabulary"));
  // bad inputs throw errors naming what is wrong
  CHECK_THROWS_WITH(m->encode(zeros({2, 3})), Catch::Contains("input_ids"));
  CHECK_THROWS_WITH(m->decode(tensor(std::vector<int64_t>{0, 1}, {1, 2}), m->encode(tensor(std::vector<int64_t>{3, 1}, {1, 2})),
                              Tensor(), ones({1, 5}, kInt64)),
                    Catch::Contains("decoder_attention_mask"));
  CHECK_THROWS_WITH(T5Config::from_hf_json(nlohmann::json{{"feed_forward_proj", "gated-foo"}}), Catch::Contains("activation"));
  CHECK_THROWS_WITH(T5ForConditionalGeneration::loss(zeros({2, 3, 4}), zeros({2, 4}, kInt64)), Catch::Contains("T5::loss"));
}
