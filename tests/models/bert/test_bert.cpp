// Golden tests of BERT (include/genai/models/transformer/bert.hpp) and the WordPiece
// tokenizer (include/genai/text/wordpiece.hpp) against tests/fixtures/make_bert_fixtures.py
// (a PyTorch BERT with Hugging Face's names and its additive attention mask, and a
// Python re-implementation of BertTokenizer): sequence / pooled outputs, MLM logits and
// loss, classification logits and loss, their gradients, 5 AdamW steps, a tiny Hugging
// Face folder (BertForPreTraining names, float32), WordPiece cases, padding behaviour,
// mask_tokens statistics, save / load round trip and error messages.
// Tolerances: float64 rtol 1e-9 / atol 1e-11 (outputs, gradients), float32 rtol 1e-4 /
// atol 1e-5; AdamW losses float64 rtol 1e-9, final weights rtol 1e-8.
#include "test_util.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <genai/autograd/gradcheck.hpp>
#include <genai/models/transformer/bert.hpp>
#include <genai/text/wordpiece.hpp>

using namespace genai;
using models::BertConfig;
using models::BertForMaskedLM;
using models::BertForSequenceClassification;
static const char* kBertFile = "bert.safetensors";

namespace {

Tensor bfx(const std::string& name) { return genai_test::fixture(kBertFile, name); }

/// Fixture entries under "<prefix>." with the prefix removed.
io::TensorMap bert_sub(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kBertFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

BertConfig bert_golden_config() {
  auto i = [](const char* k) { return bfx(std::string("config.") + k).item<int64_t>(); };
  BertConfig c{.vocab_size = i("vocab_size"), .hidden_size = i("hidden_size"), .num_hidden_layers = i("num_hidden_layers"),
               .num_attention_heads = i("num_attention_heads"), .intermediate_size = i("intermediate_size"),
               .hidden_dropout_prob = 0.0, .attention_probs_dropout_prob = 0.0,
               .max_position_embeddings = i("max_position_embeddings"), .type_vocab_size = i("type_vocab_size"),
               .layer_norm_eps = 1e-12, .pad_token_id = i("pad_token_id"), .num_labels = i("num_labels")};
  return c;
}

std::shared_ptr<BertForMaskedLM> bert_mlm(Dtype d, const std::string& prefix = "mlm") {
  auto m = std::make_shared<BertForMaskedLM>(bert_golden_config());
  m->to(d);
  m->load_state_dict(bert_sub(prefix));  // strict
  return m;
}

std::shared_ptr<BertForSequenceClassification> bert_cls(Dtype d) {
  auto m = std::make_shared<BertForSequenceClassification>(bert_golden_config());
  m->to(d);
  io::TensorMap sd = bert_sub("cls");
  for (const auto& [k, v] : bert_sub("mlm"))
    if (k.rfind("bert.", 0) == 0) sd.emplace(k, v);
  m->load_state_dict(sd);
  return m;
}

struct BertTol {
  double rtol, atol;
};
BertTol bert_tol(Dtype d) { return d == kFloat64 ? BertTol{1e-9, 1e-11} : BertTol{1e-4, 1e-5}; }

std::string bert_temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("genai_test_bert_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

nlohmann::json bert_cases() {
  std::ifstream f(std::string(GENAI_FIXTURE_DIR) + "/bert_wordpiece_cases.json");
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("BERT: outputs, MLM loss and every gradient match PyTorch", "[bert]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    BertTol t = bert_tol(d);
    Tensor ids = bfx("ids"), mask = bfx("attention_mask"), tt = bfx("token_type_ids"), labels = bfx("labels");
    // body: sequence and pooled outputs
    auto cl = bert_cls(d);
    models::BertOutput o = cl->bert->forward(ids, mask, tt);
    CHECK_CLOSE(o.last_hidden_state, bfx("sequence_output").to(d), t.rtol, t.atol);
    CHECK_CLOSE(o.pooler_output, bfx("pooled_output").to(d), t.rtol, t.atol);
    // MLM
    auto m = bert_mlm(d);
    Tensor logits = m->forward(ids, mask, tt);
    CHECK_CLOSE(logits, bfx("mlm_logits").to(d), t.rtol, t.atol);
    Tensor loss = BertForMaskedLM::loss(logits, labels);
    CHECK_CLOSE(loss, bfx("mlm_loss").to(d), t.rtol, t.atol);
    loss.backward();
    io::TensorMap grads = bert_sub("mlm_grad");
    REQUIRE(grads.size() == m->named_parameters().size());  // decoder.weight is the tied word embedding
    for (const auto& [name, p] : m->named_parameters()) {
      INFO("parameter " << name);
      REQUIRE(grads.count(name));
      REQUIRE(p.grad().defined());
      CHECK_CLOSE(p.grad(), grads.at(name).to(d), t.rtol, t.atol);
    }
    // classification
    Tensor cl_logits = cl->forward(ids, mask, tt);
    CHECK_CLOSE(cl_logits, bfx("cls_logits").to(d), t.rtol, t.atol);
    Tensor cl_loss = cross_entropy(cl_logits, bfx("cls_labels"));
    CHECK_CLOSE(cl_loss, bfx("cls_loss").to(d), t.rtol, t.atol);
    cl_loss.backward();
    io::TensorMap cg = bert_sub("cls_grad");
    REQUIRE(cg.size() > 10);
    for (const auto& [name, g] : cg) {
      INFO("parameter " << name);
      auto np = cl->named_parameters();
      auto it = std::find_if(np.begin(), np.end(), [&](const auto& kv) { return kv.first == name; });
      REQUIRE(it != np.end());
      CHECK_CLOSE(it->second.grad(), g.to(d), t.rtol, t.atol);
    }
  }
}

TEST_CASE("BERT: 5 AdamW steps (no decay on biases and LayerNorm) give PyTorch's losses", "[bert]") {
  auto m = bert_mlm(kFloat64);
  optim::AdamW opt(m->param_groups(0.01), optim::AdamWOptions{.lr = 1e-2, .betas = {0.9, 0.999}, .eps = 1e-6,
                                                               .weight_decay = 0.01});
  std::vector<double> losses = bfx("train.losses").to_vector<double>();
  for (int it = 0; it < 5; ++it) {
    const std::string s = std::to_string(it);
    Tensor x = bfx("train.x" + s), y = bfx("train.y" + s), msk = bfx("train.mask" + s);
    Tensor loss = BertForMaskedLM::loss(m->forward(x, msk, zeros_like(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    INFO("step " << it);
    CHECK(loss.item<double>() == Approx(losses[static_cast<size_t>(it)]).epsilon(1e-9));
  }
  io::TensorMap fin = bert_sub("final");
  for (const auto& [name, p] : m->named_parameters()) {
    INFO("parameter " << name);
    CHECK_CLOSE(p, fin.at(name), 1e-8, 1e-10);
  }
}

TEST_CASE("BERT: padded positions do not change the outputs of the tokens", "[bert]") {
  auto cl = bert_cls(kFloat64);
  NoGradGuard ng;
  Tensor ids = bfx("ids"), mask = bfx("attention_mask"), tt = bfx("token_type_ids");
  models::BertOutput ref = cl->bert->forward(ids, mask, tt);
  // other token ids and token types under the padding: same outputs at the tokens
  Tensor ids2 = ids.clone(), tt2 = tt.clone();
  ids2[2].narrow(0, 3, 5).fill_(7.0);
  tt2[1].narrow(0, 6, 2).fill_(1.0);
  models::BertOutput o = cl->bert->forward(ids2, mask, tt2);
  CHECK_CLOSE(o.last_hidden_state[0], ref.last_hidden_state[0], 0, 0);
  CHECK_CLOSE(o.last_hidden_state[1].narrow(0, 0, 6), ref.last_hidden_state[1].narrow(0, 0, 6), 1e-12, 1e-12);
  CHECK_CLOSE(o.last_hidden_state[2].narrow(0, 0, 3), ref.last_hidden_state[2].narrow(0, 0, 3), 1e-12, 1e-12);
  CHECK_CLOSE(o.pooler_output, ref.pooler_output, 1e-12, 1e-12);
  // a padded row equals the same sequence alone without padding
  Tensor alone = cl->bert->forward(ids[2].narrow(0, 0, 3).unsqueeze(0), Tensor(), tt[2].narrow(0, 0, 3).unsqueeze(0))
                     .last_hidden_state;
  CHECK_CLOSE(alone[0], ref.last_hidden_state[2].narrow(0, 0, 3), 1e-12, 1e-12);
  // without the mask the padding does change them (the test can fail)
  Tensor nomask = cl->bert->forward(ids, Tensor(), tt).last_hidden_state;
  CHECK((nomask[2].narrow(0, 0, 3) - ref.last_hidden_state[2].narrow(0, 0, 3)).abs().max().item<double>() > 1e-3);
  // a bool mask works as the 0/1 one
  CHECK_CLOSE(cl->bert->forward(ids, ne(mask, 0.0), tt).last_hidden_state, ref.last_hidden_state, 0, 0);
}

TEST_CASE("BERT: a float64 gradcheck through a layer with a padding mask", "[bert]") {
  BertConfig c{.vocab_size = 11, .hidden_size = 8, .num_hidden_layers = 1, .num_attention_heads = 2,
               .intermediate_size = 12, .hidden_dropout_prob = 0, .attention_probs_dropout_prob = 0,
               .max_position_embeddings = 6, .layer_norm_eps = 1e-5};
  models::BertLayer layer(c);
  layer.to(kFloat64);
  Generator g(9);
  for (auto& [n, p] : layer.named_parameters()) {
    NoGradGuard ng;
    Tensor t = p;
    t.copy_(randn(p.shape(), kFloat64, g) * 0.5);
  }
  Tensor x = randn({2, 4, 8}, kFloat64, g).requires_grad_();
  Tensor m = models::bert_attention_mask(from_vector<int64_t>({1, 1, 1, 1, 1, 1, 0, 0}, {2, 4}, kInt64), {2, 4});
  auto r = gradcheck([&](const TensorList& in) { return layer.forward(in[0], m); }, {x}, 1e-6, 1e-6, 1e-4);
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("BERT: a tiny Hugging Face folder loads (BertForPreTraining names) and gives the reference logits", "[bert][hf]") {
  const std::string dir = std::string(GENAI_FIXTURE_DIR) + "/bert_tiny_hf";
  auto m = models::load_bert_pretrained(dir);  // position_ids, decoder.*, seq_relationship.*, pooler ignored
  CHECK_FALSE(m->is_training());
  CHECK(m->config().max_position_embeddings == 32);
  text::WordPieceTokenizer tok = text::WordPieceTokenizer::from_dir(dir);
  CHECK(tok.vocab_size() == m->config().vocab_size);
  std::vector<int64_t> ids = tok.encode("the [MASK] sat on the mat.");
  CHECK(ids == bfx("hf.ids").to_vector<int64_t>());
  Tensor x = from_vector(ids, {1, static_cast<int64_t>(ids.size())}, kInt64);
  NoGradGuard ng;
  Tensor logits = m->forward(x);
  CHECK_CLOSE(logits, bfx("hf.logits").to(kFloat32), 1e-4, 1e-5);
  auto m64 = models::load_bert_pretrained(dir, kFloat64);
  CHECK_CLOSE(m64->forward(x), bfx("hf.logits"), 1e-6, 1e-6);  // float32 weights, float64 compute
  // the body alone, with the pooler of the file
  auto body = models::load_bert_model(dir);
  REQUIRE(body->pooler);
  CHECK_CLOSE(body->forward(x).last_hidden_state, m->bert->forward(x).last_hidden_state, 0, 0);

  // save (BertForMaskedLM names) and load again: same logits; no decoder weight in the file
  const std::string out = bert_temp_dir("save");
  models::save_bert_pretrained(*m, out);
  tok.save(out);
  auto again = models::load_bert_pretrained(out);
  CHECK_CLOSE(again->forward(x), logits, 0.0, 0.0);
  io::TensorMap saved = io::load_safetensors(out + "/model.safetensors");
  CHECK(saved.count("bert.encoder.layer.1.attention.self.query.weight"));
  CHECK(saved.count("cls.predictions.transform.LayerNorm.bias"));
  CHECK_FALSE(saved.count("cls.predictions.decoder.weight"));
  CHECK(text::WordPieceTokenizer::from_dir(out).encode("the [MASK] sat on the mat.") == ids);
  // names without the "bert." prefix (a BertModel file) load into BertModel
  io::TensorMap bare;
  for (const auto& [k, v] : saved)
    if (k.rfind("bert.", 0) == 0) bare[k.substr(5)] = v;
  io::save_safetensors(out + "/model.safetensors", bare);
  auto body2 = models::load_bert_model(out);
  CHECK_FALSE(body2->pooler);
  CHECK_CLOSE(body2->forward(x).last_hidden_state, m->bert->forward(x).last_hidden_state, 0, 0);
  // ... but BertForMaskedLM then misses its head: a clear error
  CHECK_THROWS_WITH(models::load_bert_pretrained(out), Catch::Contains("missing: cls.predictions.bias"));
  // TensorFlow-era LayerNorm.gamma / .beta names (bert-base-uncased) load as weight / bias
  io::TensorMap tf = saved;
  for (const char* k : {"bert.embeddings.LayerNorm", "bert.encoder.layer.1.output.LayerNorm"}) {
    tf[std::string(k) + ".gamma"] = tf.at(std::string(k) + ".weight");
    tf[std::string(k) + ".beta"] = tf.at(std::string(k) + ".bias");
    tf.erase(std::string(k) + ".weight");
    tf.erase(std::string(k) + ".bias");
  }
  io::save_safetensors(out + "/model.safetensors", tf);
  CHECK_CLOSE(models::load_bert_pretrained(out)->forward(x), logits, 0.0, 0.0);
  std::filesystem::remove_all(out);
}

TEST_CASE("BERT: Hugging Face files with missing or mismatched pieces give clear errors", "[bert][hf]") {
  const std::string src = std::string(GENAI_FIXTURE_DIR) + "/bert_tiny_hf";
  const std::string dir = bert_temp_dir("bad");
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("config.json"));
  std::filesystem::copy_file(src + "/config.json", dir + "/config.json");
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("model.safetensors"));
  io::TensorMap sd = io::load_safetensors(src + "/model.safetensors");
  sd.erase("bert.encoder.layer.1.output.dense.bias");
  sd["bert.encoder.layer.1.strange.weight"] = zeros({2});
  io::save_safetensors(dir + "/model.safetensors", sd);
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("missing: bert.encoder.layer.1.output.dense.bias"));
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("unexpected: bert.encoder.layer.1.strange.weight"));
  {
    std::ofstream f(dir + "/config.json");
    f << R"({"vocab_size": 132, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2})";
  }
  io::save_safetensors(dir + "/model.safetensors", io::load_safetensors(src + "/model.safetensors"));
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("size mismatch"));
  {
    std::ofstream f(dir + "/config.json");
    f << "{not json";
  }
  CHECK_THROWS_WITH(models::load_bert_pretrained(dir), Catch::Contains("not valid JSON"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("BERT: names, init, config round trip and bad input", "[bert]") {
  BertConfig c{.vocab_size = 40, .hidden_size = 32, .num_hidden_layers = 2, .num_attention_heads = 4,
               .intermediate_size = 64, .max_position_embeddings = 16};
  Generator g(3);
  BertForMaskedLM m(c, g);
  auto sd = m.state_dict();
  for (const char* n : {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
                        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                        "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.1.attention.self.key.bias",
                        "bert.encoder.layer.1.attention.self.value.weight",
                        "bert.encoder.layer.0.attention.output.dense.weight",
                        "bert.encoder.layer.0.attention.output.LayerNorm.bias", "bert.encoder.layer.0.intermediate.dense.weight",
                        "bert.encoder.layer.0.output.dense.bias", "bert.encoder.layer.0.output.LayerNorm.weight",
                        "cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
                        "cls.predictions.bias"}) {
    INFO(n);
    CHECK(sd.count(n));
  }
  CHECK_FALSE(sd.count("bert.pooler.dense.weight"));
  CHECK_FALSE(sd.count("cls.predictions.decoder.weight"));
  // 16 C^2/... : embeddings (V + P + 2) C + 2C, layer 4 C^2 + 4C + 2 C I + I + C + 4C, head C^2 + 3C + V
  const int64_t C = 32, I = 64, V = 40, P = 16;
  CHECK(m.num_parameters() == (V + P + 2) * C + 2 * C + 2 * (4 * C * C + 4 * C + 2 * C * I + I + C + 4 * C) + C * C + 3 * C + V);
  auto stdev = [](const Tensor& t) { return std::sqrt(t.square().mean().item<double>()); };
  CHECK(stdev((*m.bert->encoder->layer)[0]->intermediate->dense->weight) == Approx(0.02).epsilon(0.1));
  CHECK(m.bert->embeddings->word_embeddings->weight[0].abs().max().item<double>() == 0.0);  // padding row
  CHECK(m.cls->predictions->bias.abs().max().item<double>() == 0.0);
  CHECK(m.bert->embeddings->LayerNorm->weight.min().item<double>() == 1.0);
  BertConfig back = BertConfig::from_hf_json(c.to_hf_json());
  CHECK(back.hidden_size == 32);
  CHECK(back.max_position_embeddings == 16);
  CHECK(back.layer_norm_eps == 1e-12);
  CHECK(BertConfig::from_hf_json(nlohmann::json{{"id2label", {{"0", "a"}, {"1", "b"}, {"2", "c"}}}}).num_labels == 3);
  CHECK_THROWS_WITH(BertConfig::from_hf_json(nlohmann::json{{"position_embedding_type", "relative_key"}}),
                    Catch::Contains("not supported"));
  CHECK_THROWS_WITH(m.forward(zeros({1, 17}, kInt64)), Catch::Contains("max_position_embeddings"));
  CHECK_THROWS_WITH(m.forward(zeros({1, 4})), Catch::Contains("int64"));
  CHECK_THROWS_WITH(m.forward(zeros({1, 4}, kInt64), ones({1, 5})), Catch::Contains("attention_mask"));
  CHECK_THROWS_WITH(BertForMaskedLM::loss(zeros({1, 4, 40}), zeros({1, 5}, kInt64)), Catch::Contains("do not match"));
  BertConfig bad = c;
  bad.num_attention_heads = 5;
  CHECK_THROWS_WITH(BertForMaskedLM(bad), Catch::Contains("divisible"));
  bad = c;
  bad.hidden_act = "swoosh";
  CHECK_THROWS_WITH(BertForMaskedLM(bad), Catch::Contains("unknown activation"));
}

TEST_CASE("mask_tokens: 15% selected, 80/10/10, specials never selected", "[bert][mlm]") {
  const int64_t B = 200, T = 250, V = 1000, MASK = 4;
  Generator g(11);
  Tensor ids = randint(5, V, {B, T}, kInt64, g);
  Tensor special = zeros({B, T}, kBool);
  {
    bool* p = special.data_ptr<bool>();
    int64_t* pi = ids.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      p[b * T] = p[b * T + T - 1] = true;  // [CLS] ... [SEP]
      pi[b * T] = 2;
      pi[b * T + T - 1] = 3;
    }
  }
  auto [in, labels] = models::mask_tokens(ids, special, V, MASK, 0.15, g);
  const int64_t* pi = ids.data_ptr<int64_t>();
  const int64_t* pin = in.data_ptr<int64_t>();
  const int64_t* pl = labels.data_ptr<int64_t>();
  const bool* ps = special.data_ptr<bool>();
  int64_t sel = 0, masked = 0, kept = 0, random = 0, n_normal = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    if (ps[i]) {
      CHECK(pl[i] == -100);
      CHECK(pin[i] == pi[i]);
      continue;
    }
    ++n_normal;
    if (pl[i] == -100) {
      if (pin[i] != pi[i]) FAIL("an unselected position changed");
      continue;
    }
    ++sel;
    REQUIRE(pl[i] == pi[i]);
    if (pin[i] == MASK)
      ++masked;
    else if (pin[i] == pi[i])
      ++kept;
    else
      ++random;
  }
  const double fs = static_cast<double>(sel) / static_cast<double>(n_normal);
  // n ~ 49600: the standard deviation of the rate is 0.0016; of the 80/10/10 shares ~0.004 / 0.003
  CHECK(fs == Approx(0.15).margin(0.008));
  CHECK(static_cast<double>(masked) / sel == Approx(0.8).margin(0.02));
  CHECK(static_cast<double>(random) / sel == Approx(0.1).margin(0.015));  // ~0.1% of them hit the same token
  CHECK(static_cast<double>(kept) / sel == Approx(0.1).margin(0.015));
  // prob 0 selects nothing; prob 1 everything but the specials; the same generator state repeats
  auto [in0, l0] = models::mask_tokens(ids, special, V, MASK, 0.0, g);
  CHECK(eq(l0, -100.0).to(kFloat64).sum().item<double>() == static_cast<double>(B * T));
  auto [in1, l1] = models::mask_tokens(ids, Tensor(), V, MASK, 1.0, g);
  CHECK(ne(l1, -100.0).to(kFloat64).sum().item<double>() == static_cast<double>(B * T));
  Generator g1(5), g2(5);
  CHECK_CLOSE(models::mask_tokens(ids, special, V, MASK, 0.15, g1).first,
              models::mask_tokens(ids, special, V, MASK, 0.15, g2).first, 0, 0);
  CHECK_THROWS_WITH(models::mask_tokens(ids, special, V, V, 0.15), Catch::Contains("mask_id"));
  CHECK_THROWS_WITH(models::mask_tokens(ids, zeros({2, 2}, kBool), V, MASK), Catch::Contains("shape"));
}

TEST_CASE("WordPiece: BertTokenizer's tokens and ids (Python reference)", "[bert][wordpiece]") {
  nlohmann::json cs = bert_cases();
  const std::string dir = std::string(GENAI_FIXTURE_DIR) + "/bert_tiny_hf";
  text::WordPieceTokenizer tok = text::WordPieceTokenizer::from_dir(dir);  // do_lower_case from tokenizer_config.json
  CHECK(tok.options().do_lower_case);
  REQUIRE(cs["cases"].size() > 30);
  for (const auto& c : cs["cases"]) {
    const std::string s = c["text"].get<std::string>();
    INFO("text: " << s);
    CHECK(tok.tokenize(s) == c["tokens"].get<std::vector<std::string>>());
    CHECK(tok.tokenize_ids(s) == c["ids"].get<std::vector<int64_t>>());
    CHECK(tok.encode(s) == c["encoded"].get<std::vector<int64_t>>());
  }
  text::WordPieceTokenizer cased = text::WordPieceTokenizer::from_file(dir + "/vocab.txt", {.do_lower_case = false});
  for (const auto& c : cs["cased"]) {
    const std::string s = c["text"].get<std::string>();
    INFO("cased text: " << s);
    CHECK(cased.tokenize(s) == c["tokens"].get<std::vector<std::string>>());
  }
  for (const auto& p : cs["pairs"]) {
    INFO("pair: " << p["a"].get<std::string>() << " | " << p["b"].get<std::string>());
    text::WordPieceEncoding e = tok.encode_pair(p["a"].get<std::string>(), p["b"].get<std::string>());
    CHECK(e.ids == p["ids"].get<std::vector<int64_t>>());
    CHECK(e.token_type_ids == p["token_type_ids"].get<std::vector<int64_t>>());
  }
  CHECK(tok.decode(cs["decode"]["ids"].get<std::vector<int64_t>>()) == cs["decode"]["text"].get<std::string>());
  CHECK(tok.decode(tok.encode("the cat sat"), true) == "the cat sat");
  CHECK(tok.decode(tok.encode("the cat sat")) == "[CLS] the cat sat [SEP]");
  CHECK(tok.mask_id() == 4);
  CHECK(tok.is_special(tok.cls_id()));
  CHECK_FALSE(tok.is_special(tok.token_to_id("the")));
  CHECK_THROWS_WITH(tok.id_to_token(1000), Catch::Contains("outside the vocabulary"));
  CHECK_THROWS_WITH(text::WordPieceTokenizer::from_file("/nonexistent/vocab.txt"), Catch::Contains("not found"));
  // accent stripping beyond Latin: Hangul syllables decompose into jamo; Greek tonos is dropped
  CHECK(tok.basic_tokenize("한 άέ") == std::vector<std::string>{"\u1112\u1161\u11AB", "\u03B1\u03B5"});
}

TEST_CASE("WordPiece: a built vocabulary round-trips the words of its text", "[bert][wordpiece]") {
  const std::string text = "the cat sat on the mat. The cat ate; the dog sat! Unique zebra.";
  text::WordPieceTokenizer tok = text::WordPieceTokenizer::build(text, 60);
  CHECK(tok.vocab()[0] == "[PAD]");
  CHECK(tok.vocab()[4] == "[MASK]");
  CHECK(tok.token_to_id("##z") >= 0);
  CHECK(tok.token_to_id("the") >= 0);  // frequent word
  CHECK(tok.token_to_id("zebra") < 0);  // seen once
  CHECK(tok.vocab_size() <= 60);
  std::vector<std::string> t = tok.tokenize("the zebra");
  CHECK(t == std::vector<std::string>{"the", "z", "##e", "##b", "##r", "##a"});
  CHECK(tok.decode(tok.tokenize_ids("the zebra sat")) == "the zebra sat");
  // character level: no words at all
  text::WordPieceTokenizer ch = text::WordPieceTokenizer::build(text, 0, {.do_lower_case = false});
  CHECK(ch.tokenize("The cat") == std::vector<std::string>{"T", "##h", "##e", "c", "##a", "##t"});
  const std::string dir = bert_temp_dir("wp");
  ch.save(dir);
  text::WordPieceTokenizer back = text::WordPieceTokenizer::from_dir(dir);
  CHECK_FALSE(back.options().do_lower_case);
  CHECK(back.vocab() == ch.vocab());
  std::filesystem::remove_all(dir);
}
