// Golden tests of GPT (include/genai/models/transformer/gpt.hpp) against a GPT-2
// written in PyTorch with Hugging Face's names and Conv1D layout
// (tests/fixtures/make_gpt_fixtures.py): logits, loss, every gradient, 10 AdamW
// steps with nanoGPT's recipe, greedy generation (module path and KV-cache decoder,
// batched, context beyond block_size), and a tiny Hugging Face GPT-2 folder
// (config.json, model.safetensors, vocab.json, merges.txt) loaded and generated from.
// Tolerances: float64 rtol 1e-9 / atol 1e-11 (logits, gradients), float32 rtol 1e-4 /
// atol 1e-5; AdamW losses float64 rtol 1e-9.
#include "test_util.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <genai/autograd/gradcheck.hpp>
#include <genai/models/transformer/generate.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/kv_cache.hpp>
#include <genai/optim/clip.hpp>
#include <genai/optim/lr_scheduler.hpp>
#include <genai/text/bpe.hpp>

using namespace genai;
using models::GPT;
using models::GPTConfig;
static const char* kFile = "gpt.safetensors";

namespace {

Tensor fx(const std::string& name) { return genai_test::fixture(kFile, name); }

/// Fixture entries under "<prefix>." with the prefix removed.
io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

GPTConfig golden_config() {
  auto i = [](const char* k) { return fx(std::string("config.") + k).item<int64_t>(); };
  return {.block_size = i("n_positions"), .vocab_size = i("vocab_size"), .n_layer = i("n_layer"),
          .n_head = i("n_head"), .n_embd = i("n_embd"), .activation = "gelu_new"};
}

/// The golden model in dtype d, loaded from PyTorch's HF-layout state dict.
std::shared_ptr<GPT> golden_model(Dtype d, const std::string& prefix = "init") {
  GPTConfig cfg = golden_config();
  auto m = std::make_shared<GPT>(cfg);
  m->to(d);
  m->load_state_dict(models::gpt2_state_dict_from_hf(sub_map(prefix), cfg));  // strict
  return m;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype d) { return d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-4, 1e-5}; }

std::vector<int64_t> ids_of(const Tensor& t) { return t.to_vector<int64_t>(); }

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("genai_test_gpt_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

}  // namespace

TEST_CASE("GPT: logits, loss and every gradient match PyTorch's GPT-2", "[gpt]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto m = golden_model(d);
    Tensor idx = fx("idx"), tgt = fx("targets");
    Tensor logits = m->forward(idx);
    CHECK_CLOSE(logits, fx("logits").to(d), t.rtol, t.atol);
    Tensor loss = GPT::loss(logits, tgt);
    CHECK_CLOSE(loss, fx("loss").to(d), t.rtol, t.atol);
    loss.backward();
    io::TensorMap grads = models::gpt2_state_dict_from_hf(sub_map("grad"), m->config());  // Conv1D grads transposed
    REQUIRE(grads.size() == m->named_parameters().size());
    for (const auto& [name, p] : m->named_parameters()) {
      INFO("parameter " << name);
      REQUIRE(grads.count(name));
      REQUIRE(p.grad().defined());
      CHECK_CLOSE(p.grad(), grads.at(name).to(d), t.rtol, t.atol);
    }
  }
}

TEST_CASE("GPT: 10 AdamW steps (decay on matrices, warmup + cosine, clipping) give PyTorch's losses", "[gpt]") {
  auto m = golden_model(kFloat64);
  auto opt = m->configure_optimizers(0.1, 3e-3, {0.9, 0.95}, 1e-8);
  REQUIRE(opt->param_groups().size() == 2);
  for (const auto& p : opt->param_groups()[0].params) CHECK(p.dim() >= 2);
  for (const auto& p : opt->param_groups()[1].params) CHECK(p.dim() < 2);
  optim::WarmupCosineLR sched(*opt, 3, 8, 3e-4);
  std::vector<double> losses = fx("train.losses").to_vector<double>(), norms = fx("train.grad_norms").to_vector<double>();
  for (int it = 0; it < 10; ++it) {
    Tensor x = fx("train.x" + std::to_string(it)), y = fx("train.y" + std::to_string(it));
    Tensor loss = GPT::loss(m->forward(x), y);
    opt->zero_grad();
    loss.backward();
    const double norm = optim::clip_grad_norm_(m->parameters(), 1.0);
    opt->step();
    sched.step();
    INFO("step " << it);
    CHECK(loss.item<double>() == Approx(losses[static_cast<size_t>(it)]).epsilon(1e-9));
    CHECK(norm == Approx(norms[static_cast<size_t>(it)]).epsilon(1e-9));
  }
  io::TensorMap fin = models::gpt2_state_dict_from_hf(sub_map("final"), m->config());
  for (const auto& [name, p] : m->named_parameters()) {
    INFO("parameter " << name);
    CHECK_CLOSE(p, fin.at(name), 1e-8, 1e-10);
  }
}

TEST_CASE("GPT: greedy generation gives the Python reference ids (context beyond block_size)", "[gpt][generate]") {
  REQUIRE(fx("gen.min_margin").item<double>() > 1e-3);  // float32 cannot flip an argmax
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto m = golden_model(d, "final");
    m->eval();
    models::GPTDecoder dec(*m);
    std::vector<std::vector<int64_t>> prompts;
    std::vector<std::vector<int64_t>> expected;
    for (int i = 0; i < 3; ++i) {
      prompts.push_back(ids_of(fx("gen.prompt" + std::to_string(i))));
      expected.push_back(ids_of(fx("gen.out" + std::to_string(i))));
    }
    models::GenerationOptions o{.max_new_tokens = 20, .sampling = {.greedy = true}};
    // one prompt at a time (the first crosses block_size = 16)
    for (int i = 0; i < 3; ++i) {
      o.max_new_tokens = static_cast<int64_t>(expected[static_cast<size_t>(i)].size());
      auto r = models::generate(dec, {prompts[static_cast<size_t>(i)]}, o);
      CHECK(r.tokens[0] == expected[static_cast<size_t>(i)]);
      CHECK(r.finish[0] == models::FinishReason::Length);
    }
    // batched: prompts of lengths 5, 3, 7 together
    o.max_new_tokens = 12;
    auto r = models::generate(dec, prompts, o);
    for (int i = 0; i < 3; ++i) {
      std::vector<int64_t> e(expected[static_cast<size_t>(i)].begin(), expected[static_cast<size_t>(i)].begin() + 12);
      CHECK(r.tokens[static_cast<size_t>(i)] == e);
    }
    // temperature 0 is greedy; top_k = 1 sampling is greedy
    o.sampling = {.temperature = 0.0};
    CHECK(models::generate(dec, {prompts[1]}, o).tokens[0] == expected[1]);
    o.sampling = {.temperature = 1.7, .top_k = 1};
    CHECK(models::generate(dec, {prompts[1]}, o).tokens[0] == expected[1]);
  }
}

TEST_CASE("GPTDecoder: cached logits equal the full forward, any chunking and batch", "[gpt][kvcache]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto m = golden_model(d);
    m->eval();
    NoGradGuard ng;
    Tensor idx = fx("idx");  // (2, 12)
    Tensor full = m->forward(idx);  // (2, 12, V)
    models::GPTDecoder dec(*m);
    models::KVCache cache = dec.new_cache(2);
    std::vector<int64_t> a = ids_of(idx[0]), b = ids_of(idx[1]);
    // sequence 0: 5 tokens, then 1, then 6; sequence 1: 1, then 4, then 7
    std::vector<std::pair<int64_t, int64_t>> chunks0 = {{0, 5}, {5, 6}, {6, 12}}, chunks1 = {{0, 1}, {1, 5}, {5, 12}};
    for (int s = 0; s < 3; ++s) {
      auto [a0, a1] = chunks0[static_cast<size_t>(s)];
      auto [b0, b1] = chunks1[static_cast<size_t>(s)];
      Tensor lg = dec.forward({std::vector<int64_t>(a.begin() + a0, a.begin() + a1),
                               std::vector<int64_t>(b.begin() + b0, b.begin() + b1)},
                              cache);
      CHECK_CLOSE(lg[0], full[0][a1 - 1], t.rtol, t.atol);
      CHECK_CLOSE(lg[1], full[1][b1 - 1], t.rtol, t.atol);
    }
    CHECK(cache.length(0) == 12);
    CHECK(cache.length(1) == 12);
    // a sequence with no new tokens gets a zero row and keeps its length
    Tensor lg = dec.forward({{}, {3}}, cache);
    CHECK(lg[0].abs().sum().item<double>() == 0.0);
    CHECK(cache.length(0) == 12);
    CHECK(cache.length(1) == 13);
    // the module path's cache (LayerKV) agrees too
    std::vector<models::LayerKV> kv;
    Tensor l1 = m->forward(idx.narrow(1, 0, 7), &kv);
    Tensor l2 = m->forward(idx.narrow(1, 7, 5), &kv);
    CHECK_CLOSE(l1, full.narrow(1, 0, 7), t.rtol, t.atol);
    CHECK_CLOSE(l2, full.narrow(1, 7, 5), t.rtol, t.atol);
    // overflowing the cache is an error with a hint
    models::KVCache small = dec.new_cache(1, 4);
    CHECK_THROWS_WITH(dec.forward({{1, 2, 3, 4, 5}}, small), Catch::Contains("crop the context"));
    CHECK_THROWS_WITH(dec.forward({{99}}, small), Catch::Contains("outside the vocabulary"));
  }
}

TEST_CASE("GPTDecoder: bf16 weights stay close to float32", "[gpt][kvcache]") {
  auto m = golden_model(kFloat32);
  m->eval();
  NoGradGuard ng;
  models::GPTDecoder f32(*m), b16(*m, {.bf16 = true});
  models::KVCache c1 = f32.new_cache(1), c2 = b16.new_cache(1);
  std::vector<int64_t> a = ids_of(fx("idx")[0]);
  Tensor l1 = f32.forward({a}, c1), l2 = b16.forward({a}, c2);
  // bf16 has 8 significant bits: relative error ~ 2^-8 per weight
  CHECK_CLOSE(l2, l1, 0.05, 0.05);
  CHECK((l2 - l1).abs().max().item<double>() > 0.0);  // the bf16 copy is really used
  l1 = f32.forward({{a[0]}}, c1);
  l2 = b16.forward({{a[0]}}, c2);
  CHECK_CLOSE(l2, l1, 0.05, 0.05);
  auto m64 = golden_model(kFloat64);
  CHECK_THROWS_WITH(models::GPTDecoder(*m64, {.bf16 = true}), Catch::Contains("float32"));
}

TEST_CASE("GPT: a tiny Hugging Face GPT-2 folder loads and generates the reference continuation", "[gpt][hf]") {
  const std::string dir = std::string(GENAI_FIXTURE_DIR) + "/gpt2_tiny_hf";
  nlohmann::json ex = [] {
    std::ifstream f(std::string(GENAI_FIXTURE_DIR) + "/gpt2_tiny_expected.json");
    return nlohmann::json::parse(f);
  }();
  REQUIRE(ex["min_margin"].get<double>() > 1e-3);
  auto model = models::load_gpt2_pretrained(dir);  // GPT2Model names, attn.bias buffers, no lm_head
  CHECK(model->config().activation == "gelu_new");
  CHECK(model->config().block_size == 32);
  CHECK_FALSE(model->is_training());
  text::BPETokenizer tok = text::BPETokenizer::from_dir(dir);
  CHECK(model->config().vocab_size == tok.vocab_size());
  std::vector<int64_t> pids = tok.encode(ex["prompt"].get<std::string>());
  CHECK(pids == ex["prompt_ids"].get<std::vector<int64_t>>());
  models::GPTDecoder dec(*model);
  const auto expected = ex["greedy_ids"].get<std::vector<int64_t>>();
  models::GenerationOptions o{.max_new_tokens = static_cast<int64_t>(expected.size()), .sampling = {.greedy = true}};
  std::vector<int64_t> streamed;
  auto r = models::generate(dec, {pids}, o, default_generator(), [&](int64_t seq, int64_t t) {
    CHECK(seq == 0);
    streamed.push_back(t);
    return true;
  });
  CHECK(r.tokens[0] == expected);  // 13 + 40 tokens: crosses n_positions = 32
  CHECK(streamed == expected);

  // save in the HF layout and load again: same logits
  const std::string out = temp_dir("save");
  models::save_gpt2_pretrained(*model, out);
  auto again = models::load_gpt2_pretrained(out);
  Tensor x = from_vector(pids, {1, static_cast<int64_t>(pids.size())}, kInt64);
  NoGradGuard ng;
  CHECK_CLOSE(again->forward(x), model->forward(x), 0.0, 0.0);
  io::TensorMap saved = io::load_safetensors(out + "/model.safetensors");
  CHECK(saved.count("transformer.h.0.attn.c_attn.weight"));
  CHECK(saved.at("transformer.h.0.attn.c_attn.weight").shape() == Shape{16, 48});  // Conv1D (in, out)
  CHECK_FALSE(saved.count("lm_head.weight"));  // tied
  std::filesystem::remove_all(out);
}

TEST_CASE("GPT: Hugging Face files with missing or mismatched pieces give clear errors", "[gpt][hf]") {
  const std::string src = std::string(GENAI_FIXTURE_DIR) + "/gpt2_tiny_hf";
  const std::string dir = temp_dir("bad");
  CHECK_THROWS_WITH(models::load_gpt2_pretrained(dir), Catch::Contains("config.json"));
  std::filesystem::copy_file(src + "/config.json", dir + "/config.json");
  CHECK_THROWS_WITH(models::load_gpt2_pretrained(dir), Catch::Contains("model.safetensors"));
  // a file missing one tensor
  io::TensorMap sd = io::load_safetensors(src + "/model.safetensors");
  sd.erase("h.1.mlp.c_fc.bias");
  io::save_safetensors(dir + "/model.safetensors", sd);
  CHECK_THROWS_WITH(models::load_gpt2_pretrained(dir), Catch::Contains("transformer.h.1.mlp.c_fc.bias"));
  // a config that does not match the weights
  {
    std::ofstream f(dir + "/config.json");
    f << R"({"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 377, "n_positions": 32})";
  }
  CHECK_THROWS_WITH(models::load_gpt2_pretrained(dir), Catch::Contains("size mismatch"));
  {
    std::ofstream f(dir + "/config.json");
    f << "{not json";
  }
  CHECK_THROWS_WITH(models::load_gpt2_pretrained(dir), Catch::Contains("not valid JSON"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("GPT: GPT-2 init, weight tying, parameter names and counts", "[gpt]") {
  GPTConfig cfg{.block_size = 32, .vocab_size = 300, .n_layer = 3, .n_head = 4, .n_embd = 64};
  Generator g(3);
  GPT m(cfg, g);
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n);
  CHECK(names.front() == "transformer.wte.weight");
  CHECK(names[1] == "transformer.wpe.weight");
  CHECK(names[2] == "transformer.h.0.ln_1.weight");
  CHECK(std::find(names.begin(), names.end(), "transformer.h.2.attn.c_attn.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "transformer.h.2.mlp.c_proj.bias") != names.end());
  CHECK(names.back() == "transformer.ln_f.bias");
  CHECK(std::find(names.begin(), names.end(), "lm_head.weight") == names.end());  // tied
  // 12 C^2 + 13 C per layer, V C + P C embeddings, 2 C final norm
  const int64_t C = 64, L = 3;
  CHECK(m.num_parameters() == L * (12 * C * C + 13 * C) + 300 * C + 32 * C + 2 * C);
  CHECK(m.num_params(true) == m.num_parameters() - 32 * C);
  CHECK(m.lm_head_weight().impl() == m.transformer->wte->weight.impl());
  auto stdev = [](const Tensor& t) { return std::sqrt(t.square().mean().item<double>()); };
  const auto& blk = *(*m.transformer->h)[1];
  CHECK(stdev(blk.attn->c_attn->weight) == Approx(0.02).epsilon(0.05));
  CHECK(stdev(blk.attn->c_proj->weight) == Approx(0.02 / std::sqrt(2.0 * L)).epsilon(0.05));
  CHECK(stdev(blk.mlp->c_proj->weight) == Approx(0.02 / std::sqrt(2.0 * L)).epsilon(0.05));
  CHECK(stdev(m.transformer->wte->weight) == Approx(0.02).epsilon(0.05));
  CHECK(blk.attn->c_attn->bias.abs().max().item<double>() == 0.0);
  CHECK(blk.ln_1->weight.min().item<double>() == 1.0);
  // untied: a separate head, in the state dict as lm_head.weight
  GPTConfig u = cfg;
  u.tie_weights = false;
  GPT mu(u);
  CHECK(mu.state_dict().count("lm_head.weight"));
  CHECK(mu.num_parameters() == m.num_parameters() + 300 * C);
  // bias = false: no biases anywhere
  GPTConfig nb = cfg;
  nb.bias = false;
  GPT mb(nb);
  for (auto& [n, p] : mb.named_parameters()) CHECK(n.find("bias") == std::string::npos);
  // HF config round trip
  GPTConfig back = GPTConfig::from_hf_json(cfg.to_hf_json());
  CHECK(back.n_layer == 3);
  CHECK(back.block_size == 32);
  CHECK(back.activation == "gelu");
}

TEST_CASE("GPT: bad input raises clear errors", "[gpt]") {
  GPTConfig cfg{.block_size = 8, .vocab_size = 10, .n_layer = 1, .n_head = 2, .n_embd = 8};
  GPT m(cfg);
  CHECK_THROWS_WITH(m.forward(zeros({1, 9}, kInt64)), Catch::Contains("block size is only 8"));
  CHECK_THROWS_WITH(m.forward(zeros({1, 4})), Catch::Contains("int64"));
  CHECK_THROWS_WITH(m.forward(full({1, 2}, 10, kInt64)), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(GPT::loss(zeros({1, 4, 10}), zeros({1, 5}, kInt64)), Catch::Contains("do not match"));
  GPTConfig bad = cfg;
  bad.n_head = 3;
  CHECK_THROWS_WITH(GPT(bad), Catch::Contains("divisible"));
  bad = cfg;
  bad.activation = "swoosh";
  CHECK_THROWS_WITH(GPT(bad), Catch::Contains("unknown activation"));
}

TEST_CASE("Transformer blocks: gradcheck, cross-attention, post-LN, module cache, positions", "[blocks]") {
  using namespace models;
  Generator g(5);
  // pre-LN block with cross-attention, float64 gradcheck through x and the context
  TransformerBlock blk(BlockConfig{.n_embd = 8, .n_head = 2, .activation = "gelu_new", .cross_attention = true});
  blk.to(kFloat64);
  Tensor x = randn({2, 3, 8}, kFloat64, g).requires_grad_();
  Tensor ctx = randn({2, 4, 8}, kFloat64, g).requires_grad_();
  auto f = [&](const TensorList& in) { return blk.forward(in[0], {.causal = true, .context = in[1]}); };
  auto r = gradcheck(f, {x, ctx}, 1e-6, 1e-6, 1e-4);
  INFO(r.message);
  CHECK(r.ok);
  // names as GPT2Block with add_cross_attention
  auto sd = blk.state_dict();
  CHECK(sd.count("crossattention.q_attn.weight"));
  CHECK(sd.count("crossattention.c_attn.weight"));
  CHECK(sd.at("crossattention.c_attn.weight").shape() == Shape{16, 8});
  CHECK(sd.count("ln_cross_attn.bias"));
  // post-LN block with separate q/k/v projections named like T5
  MultiheadAttention sep(AttentionConfig{.n_embd = 8, .n_head = 2, .bias = false, .fused = false});
  CHECK(sep.state_dict().count("q.weight"));
  CHECK(sep.state_dict().count("o.weight"));
  sep.to(kFloat64);
  Tensor y = randn({1, 5, 8}, kFloat64, g);
  auto fs = [&](const TensorList& in) { return sep.forward(in[0], {.causal = true}); };
  auto rs = gradcheck(fs, {y.clone().requires_grad_()}, 1e-6, 1e-6, 1e-4);
  INFO(rs.message);
  CHECK(rs.ok);
  // the module cache: one token at a time equals all at once
  NoGradGuard ng;
  Tensor all = sep.forward(y, {.causal = true});
  LayerKV kv;
  for (int64_t t = 0; t < 5; ++t) {
    Tensor o = sep.forward(y.narrow(1, t, 1), {.causal = true}, Tensor(), &kv);
    CHECK_CLOSE(o, all.narrow(1, t, 1), 1e-12, 1e-12);
  }
  CHECK(kv.length() == 5);
  TransformerBlock post(BlockConfig{.n_embd = 8, .n_head = 2, .pre_norm = false});
  post.to(kFloat64);
  Tensor po = post.forward(y);
  // post-LN: the output rows are normalized (LayerNorm with weight 1, bias 0)
  CHECK_CLOSE(po.mean({-1}), zeros({1, 5}, kFloat64), 0, 1e-12);
  // sinusoidal positions
  Tensor pe = sinusoidal_positions(6, 4, kFloat64);
  CHECK(pe[3][0].item<double>() == Approx(std::sin(3.0)));
  CHECK(pe[3][1].item<double>() == Approx(std::cos(3.0)));
  CHECK(pe[5][2].item<double>() == Approx(std::sin(5.0 / 100.0)));
  CHECK(pe[5][3].item<double>() == Approx(std::cos(5.0 / 100.0)));
  CHECK_THROWS_WITH(MultiheadAttention(AttentionConfig{.n_embd = 9, .n_head = 2}), Catch::Contains("divisible"));
}
