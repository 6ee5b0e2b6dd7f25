// genai/models/transformer/bert.hpp: BERT, the bidirectional Transformer encoder
// (Devlin et al., "BERT: Pre-training of deep bidirectional Transformers for
// language understanding", 2019), laid out as Hugging Face's modeling_bert.py
// (BertModel, BertForMaskedLM, BertForSequenceClassification), the loader/saver of
// the Hugging Face folder layout (config.json + model.safetensors), and the masked
// language modelling input corruption of DataCollatorForLanguageModeling.
//
//   models::BertConfig cfg{.vocab_size = 70, .hidden_size = 128, .num_hidden_layers = 2,
//                          .num_attention_heads = 4, .intermediate_size = 512};
//   models::BertForMaskedLM mlm(cfg);                         // BERT init, decoder tied
//   auto [inputs, labels] = models::mask_tokens(ids, special, cfg.vocab_size, mask_id);
//   Tensor logits = mlm.forward(inputs, attention_mask);      // (B, T) int64 -> (B, T, V)
//   Tensor loss = models::BertForMaskedLM::loss(logits, labels);  // ignore_index -100
//   auto hf = models::load_bert_pretrained("bert-base-uncased/");  // config.json + model.safetensors
//
// Model: embeddings = LayerNorm(word + position + token_type) then dropout; an
// encoder of num_hidden_layers post-LN layers: h = LN(h + Attn(h)), h = LN(h +
// W2 act(W1 h)); the pooler tanh(dense(h[:, 0])) on the [CLS] position. The
// attention_mask (B, T) of 1 (token) / 0 (padding) masks the padded keys of every
// query (Hugging Face adds finfo.min to their scores; here a bool mask: the same
// softmax as long as a row has one unmasked key).
// MLM head (cls.predictions): dense + act + LayerNorm, then the decoder, whose weight
// is the word embedding (tied) plus cls.predictions.bias.
// Classification head: dropout + classifier Linear on the pooled output.
//
// Parameter names are Hugging Face's: bert.embeddings.{word,position,token_type}_embeddings.weight,
// bert.embeddings.LayerNorm.*, bert.encoder.layer.<i>.attention.self.{query,key,value}.*,
// bert.encoder.layer.<i>.attention.output.{dense,LayerNorm}.*, bert.encoder.layer.<i>.intermediate.dense.*,
// bert.encoder.layer.<i>.output.{dense,LayerNorm}.*, bert.pooler.dense.*, cls.predictions.transform.
// {dense,LayerNorm}.*, cls.predictions.bias, classifier.*. cls.predictions.decoder.weight is
// the word embedding (one tensor, absent from state_dict()).
//
// Init (HF _init_weights): Linear and Embedding N(0, initializer_range), biases 0, the
// padding row 0, LayerNorm 1 and 0. The padding row of word_embeddings gets no gradient
// from the embedding lookup (nn.Embedding(padding_idx = pad_token_id)).
//
// Differences from Hugging Face: attention dropout is genai's counter-based mask
// (ops/attention.hpp), not torch's stream; a query row whose keys are all padding
// gives 0 (HF: the mean of all values); BertForMaskedLM has no pooler (as HF);
// no relative position embeddings, no cross-attention / decoder use, no
// head_mask, no past_key_values. float16/bfloat16 files load as float32.
#pragma once

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/io/file.hpp"
#include "genai/io/json_fields.hpp"
#include "genai/io/safetensors.hpp"
#include "genai/models/transformer/blocks.hpp"
#include "genai/models/transformer/pretrained.hpp"
#include "genai/ops/loss.hpp"
#include "genai/optim/adam.hpp"

namespace genai {
namespace models {

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";    // "gelu" (erf), "gelu_new", "relu", "silu"
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  int64_t num_labels = 2;             // BertForSequenceClassification

  /// bert-base-uncased (110M).
  static BertConfig bert_base() { return {}; }
  /// BERT-mini (Turc et al. 2019): 4 layers, 256 wide, 4 heads.
  static BertConfig bert_mini(int64_t vocab = 30522) {
    return {.vocab_size = vocab, .hidden_size = 256, .num_hidden_layers = 4, .num_attention_heads = 4,
            .intermediate_size = 1024};
  }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  void validate() const {
    GENAI_CHECK(vocab_size > 0 && hidden_size > 0 && num_hidden_layers > 0 && num_attention_heads > 0 &&
                    intermediate_size > 0 && max_position_embeddings > 0 && type_vocab_size > 0,
                "BertConfig: sizes must be positive, got vocab_size ", vocab_size, ", hidden_size ", hidden_size,
                ", num_hidden_layers ", num_hidden_layers, ", num_attention_heads ", num_attention_heads,
                ", intermediate_size ", intermediate_size, ", max_position_embeddings ", max_position_embeddings,
                ", type_vocab_size ", type_vocab_size);
    GENAI_CHECK(hidden_size % num_attention_heads == 0, "BertConfig: hidden_size (", hidden_size,
                ") must be divisible by num_attention_heads (", num_attention_heads, ")");
    GENAI_CHECK(hidden_dropout_prob >= 0.0 && hidden_dropout_prob < 1.0 && attention_probs_dropout_prob >= 0.0 &&
                    attention_probs_dropout_prob < 1.0,
                "BertConfig: dropout rates must be in [0, 1)");
    GENAI_CHECK(pad_token_id >= -1 && pad_token_id < vocab_size, "BertConfig: pad_token_id ", pad_token_id,
                " is outside the vocabulary of ", vocab_size);
  }

  /// Hugging Face BertConfig fields.
  nlohmann::json to_hf_json() const {
    nlohmann::json j;
    j["architectures"] = {"BertForMaskedLM"};
    j["model_type"] = "bert";
    j["vocab_size"] = vocab_size;
    j["hidden_size"] = hidden_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["intermediate_size"] = intermediate_size;
    j["hidden_act"] = hidden_act;
    j["hidden_dropout_prob"] = hidden_dropout_prob;
    j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
    j["max_position_embeddings"] = max_position_embeddings;
    j["type_vocab_size"] = type_vocab_size;
    j["initializer_range"] = initializer_range;
    j["layer_norm_eps"] = layer_norm_eps;
    j["pad_token_id"] = pad_token_id;
    j["position_embedding_type"] = "absolute";
    if (num_labels != 2) j["num_labels"] = num_labels;
    return j;
  }
  /// Reads a Hugging Face BertConfig config.json object (missing fields: bert-base's values).
  static BertConfig from_hf_json(const nlohmann::json& j, const std::string& what = "config.json") {
    const io::JsonFields f(j, "BertConfig", what);
    auto get_int = [&](const char* k, int64_t def) { return f.get_int(k, def); };
    auto get_real = [&](const char* k, double def) { return f.get_real(k, def); };
    BertConfig c;
    c.vocab_size = get_int("vocab_size", c.vocab_size);
    c.hidden_size = get_int("hidden_size", c.hidden_size);
    c.num_hidden_layers = get_int("num_hidden_layers", c.num_hidden_layers);
    c.num_attention_heads = get_int("num_attention_heads", c.num_attention_heads);
    c.intermediate_size = get_int("intermediate_size", c.intermediate_size);
    c.max_position_embeddings = get_int("max_position_embeddings", c.max_position_embeddings);
    c.type_vocab_size = get_int("type_vocab_size", c.type_vocab_size);
    c.pad_token_id = get_int("pad_token_id", c.pad_token_id);
    c.hidden_dropout_prob = get_real("hidden_dropout_prob", c.hidden_dropout_prob);
    c.attention_probs_dropout_prob = get_real("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
    c.initializer_range = get_real("initializer_range", c.initializer_range);
    c.layer_norm_eps = get_real("layer_norm_eps", c.layer_norm_eps);
    c.hidden_act = f.get_string("hidden_act", c.hidden_act);
    if (j.contains("position_embedding_type") && j["position_embedding_type"].is_string())
      GENAI_CHECK(j["position_embedding_type"].get<std::string>() == "absolute", "BertConfig: ", what,
                  ": position_embedding_type '", j["position_embedding_type"].get<std::string>(),
                  "' is not supported (only \"absolute\")");
    if (j.contains("num_labels")) c.num_labels = get_int("num_labels", 2);
    else if (j.contains("id2label") && j["id2label"].is_object()) c.num_labels = static_cast<int64_t>(j["id2label"].size());
    c.validate();
    return c;
  }
};

// ---- modules (Hugging Face nesting, so that the names fall out) -------------------------

class BertEmbeddings : public nn::Module {
 public:
  explicit BertEmbeddings(const BertConfig& c) : cfg_(c) {
    word_embeddings = register_module(
        "word_embeddings", std::make_shared<nn::Embedding>(
                               c.vocab_size, c.hidden_size,
                               c.pad_token_id >= 0 ? std::optional<int64_t>(c.pad_token_id) : std::nullopt));
    position_embeddings =
        register_module("position_embeddings", std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
    token_type_embeddings =
        register_module("token_type_embeddings", std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  }
  std::string type_name() const override { return "BertEmbeddings"; }
  /// input_ids (B, T) int64, token_type_ids (B, T) int64 or undefined (zeros) -> (B, T, C).
  Tensor forward(const Tensor& input_ids, const Tensor& token_type_ids = Tensor()) {
    const int64_t T = input_ids.size(1);
    GENAI_CHECK(T <= cfg_.max_position_embeddings, "BertModel: a sequence of length ", T,
                " is longer than max_position_embeddings = ", cfg_.max_position_embeddings,
                "; hint: truncate the input");
    Tensor x = add(word_embeddings->forward(input_ids), position_embeddings->forward(arange<int64_t>(0, T)));
    if (token_type_ids.defined()) {
      GENAI_CHECK(token_type_ids.dtype() == kInt64 && token_type_ids.shape() == input_ids.shape(),
                  "BertModel: token_type_ids must be int64 of the input's shape ", shape_str(input_ids.shape()), ", got ",
                  shape_str(token_type_ids.shape()), " ", dtype_name(token_type_ids.dtype()));
      x = add(x, token_type_embeddings->forward(token_type_ids));
    } else {
      x = add(x, token_type_embeddings->weight[0]);  // token type 0 everywhere
    }
    return dropout(LayerNorm->forward(x), cfg_.hidden_dropout_prob, is_training());
  }
  std::shared_ptr<nn::Embedding> word_embeddings, position_embeddings, token_type_embeddings;
  std::shared_ptr<nn::LayerNorm> LayerNorm;

 private:
  BertConfig cfg_;
};

/// attention.self: query, key, value projections.
class BertSelfAttention : public nn::Module {
 public:
  explicit BertSelfAttention(const BertConfig& c) {
    query = register_module("query", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    key = register_module("key", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    value = register_module("value", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  }
  std::string type_name() const override { return "BertSelfAttention"; }
  std::shared_ptr<nn::Linear> query, key, value;
};

/// dense + LayerNorm (attention.output and output of a layer).
class BertDenseNorm : public nn::Module {
 public:
  BertDenseNorm(int64_t in, int64_t out, double eps, const char* type) : type_(type) {
    dense = register_module("dense", std::make_shared<nn::Linear>(in, out));
    LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{out}, eps));
  }
  std::string type_name() const override { return type_; }
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;

 private:
  std::string type_;
};

class BertAttention : public nn::Module {
 public:
  explicit BertAttention(const BertConfig& c) {
    self = register_module("self", std::make_shared<BertSelfAttention>(c));
    output = register_module("output",
                             std::make_shared<BertDenseNorm>(c.hidden_size, c.hidden_size, c.layer_norm_eps, "BertSelfOutput"));
  }
  std::string type_name() const override { return "BertAttention"; }
  std::shared_ptr<BertSelfAttention> self;
  std::shared_ptr<BertDenseNorm> output;
};

/// intermediate.dense (C -> I).
class BertIntermediate : public nn::Module {
 public:
  explicit BertIntermediate(const BertConfig& c) {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.intermediate_size));
  }
  std::string type_name() const override { return "BertIntermediate"; }
  std::shared_ptr<nn::Linear> dense;
};

/// One post-LN encoder layer.
class BertLayer : public nn::Module {
 public:
  explicit BertLayer(const BertConfig& c) : cfg_(c) {
    attention = register_module("attention", std::make_shared<BertAttention>(c));
    intermediate = register_module("intermediate", std::make_shared<BertIntermediate>(c));
    output = register_module("output", std::make_shared<BertDenseNorm>(c.intermediate_size, c.hidden_size,
                                                                       c.layer_norm_eps, "BertOutput"));
  }
  std::string type_name() const override { return "BertLayer"; }

  /// h (B, T, C); mask: bool (B, 1, 1, T), true = attend, or undefined.
  Tensor forward(const Tensor& h, const Tensor& mask = Tensor()) {
    const bool tr = is_training();
    const int64_t H = cfg_.num_attention_heads;
    const BertSelfAttention& sa = *attention->self;
    Tensor q = contiguous(split_heads(linear_nd(h, sa.query->weight, sa.query->bias), H));  // (B, H, T, D)
    Tensor k = contiguous(split_heads(linear_nd(h, sa.key->weight, sa.key->bias), H));
    Tensor v = contiguous(split_heads(linear_nd(h, sa.value->weight, sa.value->bias), H));
    Tensor a = scaled_dot_product_attention(q, k, v, mask, tr ? cfg_.attention_probs_dropout_prob : 0.0);
    a = linear_nd(merge_heads(a), attention->output->dense->weight, attention->output->dense->bias);  // (B, T, C)
    a = dropout(a, cfg_.hidden_dropout_prob, tr);
    Tensor x = attention->output->LayerNorm->forward(add(a, h));
    Tensor f = apply_activation(linear_nd(x, intermediate->dense->weight, intermediate->dense->bias), cfg_.hidden_act);
    f = dropout(linear_nd(f, output->dense->weight, output->dense->bias), cfg_.hidden_dropout_prob, tr);
    return output->LayerNorm->forward(add(f, x));
  }
  std::shared_ptr<BertAttention> attention;
  std::shared_ptr<BertIntermediate> intermediate;
  std::shared_ptr<BertDenseNorm> output;

 private:
  BertConfig cfg_;
};

class BertEncoder : public nn::Module {
 public:
  explicit BertEncoder(const BertConfig& c) {
    layer = register_module("layer", std::make_shared<nn::ModuleList<BertLayer>>());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(std::make_shared<BertLayer>(c));
  }
  std::string type_name() const override { return "BertEncoder"; }
  std::shared_ptr<nn::ModuleList<BertLayer>> layer;
};

class BertPooler : public nn::Module {
 public:
  explicit BertPooler(const BertConfig& c) {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
  }
  std::string type_name() const override { return "BertPooler"; }
  /// tanh(dense(h[:, 0])): (B, T, C) -> (B, C).
  Tensor forward(const Tensor& h) { return tanh(linear(select(h, 1, 0), dense->weight, dense->bias)); }
  std::shared_ptr<nn::Linear> dense;
};

/// The outputs of BertModel::forward.
struct BertOutput {
  Tensor last_hidden_state;  // (B, T, C)
  Tensor pooler_output;      // (B, C), undefined without a pooler
};

/// The attention mask of the encoder: attention_mask (B, T) of 1/0 (any dtype) -> bool (B, 1, 1, T).
inline Tensor bert_attention_mask(const Tensor& attention_mask, const Shape& ids_shape) {
  if (!attention_mask.defined()) return Tensor();
  GENAI_CHECK(attention_mask.shape() == ids_shape, "BertModel: attention_mask must have the input's shape ",
              shape_str(ids_shape), ", got ", shape_str(attention_mask.shape()));
  Tensor m = attention_mask.dtype() == kBool ? attention_mask : ne(attention_mask.to(kFloat64), 0.0);
  return reshape(m, {ids_shape[0], 1, 1, ids_shape[1]});
}

/// BERT's body: embeddings, encoder, optional pooler.
class BertModel : public nn::Module {
 public:
  explicit BertModel(const BertConfig& c, bool add_pooling_layer = true) : cfg_(c) {
    c.validate();
    apply_activation(zeros({1}), c.hidden_act);  // validates the name early
    embeddings = register_module("embeddings", std::make_shared<BertEmbeddings>(c));
    encoder = register_module("encoder", std::make_shared<BertEncoder>(c));
    if (add_pooling_layer) pooler = register_module("pooler", std::make_shared<BertPooler>(c));
  }
  std::string type_name() const override { return "BertModel"; }
  const BertConfig& config() const { return cfg_; }

  /// input_ids (B, T) int64; attention_mask (B, T) 1 = token, 0 = padding (undefined: all
  /// tokens); token_type_ids (B, T) int64 (undefined: zeros).
  BertOutput forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                     const Tensor& token_type_ids = Tensor()) {
    GENAI_CHECK(input_ids.defined() && input_ids.dim() == 2 && input_ids.dtype() == kInt64,
                "BertModel: expected input_ids of shape (B, T) int64, got ",
                input_ids.defined() ? shape_str(input_ids.shape()) + " " + dtype_name(input_ids.dtype())
                                    : std::string("undefined"));
    Tensor mask = bert_attention_mask(attention_mask, input_ids.shape());
    Tensor h = embeddings->forward(input_ids, token_type_ids);
    for (size_t i = 0; i < encoder->layer->size(); ++i) h = (*encoder->layer)[i]->forward(h, mask);
    BertOutput o{h, Tensor()};
    if (pooler) o.pooler_output = pooler->forward(h);
    return o;
  }

  std::shared_ptr<BertEmbeddings> embeddings;
  std::shared_ptr<BertEncoder> encoder;
  std::shared_ptr<BertPooler> pooler;

 private:
  BertConfig cfg_;
};

/// HF _init_weights on every parameter of `m` whose name is given (N(0, std) matrices and
/// embeddings, zero biases, LayerNorm 1 / 0, zero padding row).
inline void bert_init_weights(nn::Module& m, const BertConfig& c, Generator& gen) {
  NoGradGuard ng;
  auto ends_with = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  for (auto& [name, p] : m.named_parameters()) {
    Tensor t = p;
    if (name.find("LayerNorm.") != std::string::npos)
      nn::init::constant_(t, ends_with(name, ".weight") ? 1.0 : 0.0);
    else if (ends_with(name, "bias"))
      nn::init::zeros_(t);
    else
      nn::init::normal_(t, 0.0, c.initializer_range, gen);
    if (ends_with(name, "word_embeddings.weight") && c.pad_token_id >= 0) t[c.pad_token_id].zero_();
  }
}

/// cls.predictions.transform: dense + act + LayerNorm.
class BertPredictionHeadTransform : public nn::Module {
 public:
  explicit BertPredictionHeadTransform(const BertConfig& c) {
    dense = register_module("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(Shape{c.hidden_size}, c.layer_norm_eps));
  }
  std::string type_name() const override { return "BertPredictionHeadTransform"; }
  std::shared_ptr<nn::Linear> dense;
  std::shared_ptr<nn::LayerNorm> LayerNorm;
};

/// cls.predictions: transform + bias (the decoder weight is the word embedding).
class BertLMPredictionHead : public nn::Module {
 public:
  explicit BertLMPredictionHead(const BertConfig& c) {
    transform = register_module("transform", std::make_shared<BertPredictionHeadTransform>(c));
    bias = register_parameter("bias", zeros({c.vocab_size}));
  }
  std::string type_name() const override { return "BertLMPredictionHead"; }
  std::shared_ptr<BertPredictionHeadTransform> transform;
  Tensor bias;  // (V)
};

class BertOnlyMLMHead : public nn::Module {
 public:
  explicit BertOnlyMLMHead(const BertConfig& c) {
    predictions = register_module("predictions", std::make_shared<BertLMPredictionHead>(c));
  }
  std::string type_name() const override { return "BertOnlyMLMHead"; }
  std::shared_ptr<BertLMPredictionHead> predictions;
};

/// BERT with the masked-language-model head (no pooler, as Hugging Face's BertForMaskedLM).
class BertForMaskedLM : public nn::Module {
 public:
  /// Builds and initializes the model as HF does (draws from `gen`); init = false keeps the
  /// default module init (for weights about to be loaded).
  explicit BertForMaskedLM(const BertConfig& c, Generator& gen = default_generator(), bool init = true) : cfg_(c) {
    bert = register_module("bert", std::make_shared<BertModel>(c, /*add_pooling_layer=*/false));
    cls = register_module("cls", std::make_shared<BertOnlyMLMHead>(c));
    if (init) bert_init_weights(*this, c, gen);
  }
  std::string type_name() const override { return "BertForMaskedLM"; }
  const BertConfig& config() const { return cfg_; }

  /// The decoder weight (V, C): the word embedding (tied).
  const Tensor& decoder_weight() const { return bert->embeddings->word_embeddings->weight; }

  /// The MLM head on hidden states (..., C) -> logits (..., V).
  Tensor head(const Tensor& h) {
    const auto& t = *cls->predictions->transform;
    Tensor x = apply_activation(linear_nd(h, t.dense->weight, t.dense->bias), cfg_.hidden_act);
    x = t.LayerNorm->forward(x);
    return linear_nd(x, decoder_weight(), cls->predictions->bias);
  }

  /// Logits (B, T, V).
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(), const Tensor& token_type_ids = Tensor()) {
    return head(bert->forward(input_ids, attention_mask, token_type_ids).last_hidden_state);
  }

  /// Mean cross-entropy of logits (B, T, V) against labels (B, T); -100 is ignored (HF).
  static Tensor loss(const Tensor& logits, const Tensor& labels) {
    GENAI_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.size(0) == logits.size(0) &&
                    labels.size(1) == logits.size(1),
                "BertForMaskedLM::loss: logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()),
                " do not match; expected (B, T, V) and (B, T)");
    return cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(labels, {-1}), Tensor(), -100);
  }

  /// AdamW with weight decay on all but biases and LayerNorm weights (the BERT recipe).
  std::vector<optim::ParamGroup> param_groups(double weight_decay) const {
    std::vector<Tensor> decay, no_decay;
    for (auto& [n, p] : named_parameters())
      (n.find("LayerNorm") == std::string::npos && n.find("bias") == std::string::npos ? decay : no_decay).push_back(p);
    return {optim::ParamGroup(decay, {{"weight_decay", weight_decay}}),
            optim::ParamGroup(no_decay, {{"weight_decay", 0.0}})};
  }

  std::shared_ptr<BertModel> bert;
  std::shared_ptr<BertOnlyMLMHead> cls;

 private:
  BertConfig cfg_;
};

/// BERT with a classification head on the pooled output: dropout + classifier (C -> num_labels).
class BertForSequenceClassification : public nn::Module {
 public:
  explicit BertForSequenceClassification(const BertConfig& c, Generator& gen = default_generator(), bool init = true)
      : cfg_(c) {
    GENAI_CHECK(c.num_labels > 0, "BertForSequenceClassification: num_labels must be positive, got ", c.num_labels);
    bert = register_module("bert", std::make_shared<BertModel>(c, /*add_pooling_layer=*/true));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(c.hidden_size, c.num_labels));
    if (init) bert_init_weights(*this, c, gen);
  }
  std::string type_name() const override { return "BertForSequenceClassification"; }
  const BertConfig& config() const { return cfg_; }
  /// Logits (B, num_labels).
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(), const Tensor& token_type_ids = Tensor()) {
    Tensor pooled = bert->forward(input_ids, attention_mask, token_type_ids).pooler_output;
    return linear(dropout(pooled, cfg_.hidden_dropout_prob, is_training()), classifier->weight, classifier->bias);
  }
  std::shared_ptr<BertModel> bert;
  std::shared_ptr<nn::Linear> classifier;

 private:
  BertConfig cfg_;
};

// ---- masked language modelling inputs ---------------------------------------------------

/// DataCollatorForLanguageModeling's corruption: each position not flagged in
/// `special_mask` (B, T) bool (or 0/1; undefined: none) is selected with probability
/// `prob`; selected positions get label = the token (others -100) and their input
/// becomes mask_id (80%), a uniform random token of [0, vocab_size) (10%) or stays (10%).
/// Returns (inputs, labels), both (B, T) int64. Draws from `gen` (not torch's stream).
inline std::pair<Tensor, Tensor> mask_tokens(const Tensor& ids, const Tensor& special_mask, int64_t vocab_size,
                                             int64_t mask_id, double prob = 0.15, Generator& gen = default_generator()) {
  GENAI_CHECK(ids.defined() && ids.dtype() == kInt64, "mask_tokens: expected int64 ids, got ",
              ids.defined() ? dtype_name(ids.dtype()) : "undefined");
  GENAI_CHECK(!special_mask.defined() || special_mask.shape() == ids.shape(), "mask_tokens: special_mask ",
              special_mask.defined() ? shape_str(special_mask.shape()) : "", " must have the ids' shape ",
              shape_str(ids.shape()));
  GENAI_CHECK(prob >= 0.0 && prob <= 1.0 && vocab_size > 0 && mask_id >= 0 && mask_id < vocab_size,
              "mask_tokens: expected prob in [0, 1] and mask_id in [0, vocab_size), got prob ", prob, ", mask_id ",
              mask_id, ", vocab_size ", vocab_size);
  Tensor in = ids.contiguous().clone(), labels = empty(ids.shape(), kInt64);
  Tensor sp = special_mask.defined() ? ne(special_mask.to(kFloat64), 0.0).contiguous() : Tensor();
  const bool* ps = sp.defined() ? sp.data_ptr<bool>() : nullptr;
  int64_t* pi = in.data_ptr<int64_t>();
  int64_t* pl = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < in.numel(); ++i) {
    const bool selected = !(ps && ps[i]) && gen.uniform() < prob;
    pl[i] = selected ? pi[i] : -100;
    if (!selected) continue;
    const double u = gen.uniform();
    if (u < 0.8)
      pi[i] = mask_id;
    else if (u < 0.9)
      pi[i] = static_cast<int64_t>(gen.below(static_cast<uint64_t>(vocab_size)));
  }
  return {in, labels};
}

// ---- Hugging Face layout ------------------------------------------------------------------

namespace detail {
inline bool bert_starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
inline bool bert_ends(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
}  // namespace detail

/// A Hugging Face BERT state dict (BertModel names without "bert.", or BertFor* names with
/// it) -> the state dict of `model` (a BertModel when `prefixed` is false, else a BertFor*
/// module whose body is "bert."). Entries the model has no use for are dropped when they
/// are known extras (the position_ids / token_type_ids buffers, cls.seq_relationship.*,
/// the tied cls.predictions.decoder.*, a pooler or heads the model lacks); anything else
/// unexpected or missing is an error naming the keys. LayerNorm.gamma / LayerNorm.beta
/// (the TensorFlow-era names of bert-base-uncased's files) are read as weight / bias.
inline io::TensorMap bert_state_dict_from_hf(const io::TensorMap& hf, const nn::Module& model, bool prefixed) {
  io::TensorMap own = model.state_dict();
  io::TensorMap out;
  std::vector<std::string> unexpected;
  for (const auto& [name0, t] : hf) {
    std::string body = name0;  // the name inside BertModel, or a head's name
    // TensorFlow-era names (bert-base-uncased's files): LayerNorm.gamma / .beta
    if (detail::bert_ends(body, "LayerNorm.gamma")) body = body.substr(0, body.size() - 5) + "weight";
    if (detail::bert_ends(body, "LayerNorm.beta")) body = body.substr(0, body.size() - 4) + "bias";
    bool is_body = false;
    if (detail::bert_starts(body, "bert.")) {
      body = body.substr(5);
      is_body = true;
    } else if (detail::bert_starts(body, "embeddings.") || detail::bert_starts(body, "encoder.") ||
               detail::bert_starts(body, "pooler.")) {
      is_body = true;
    }
    const std::string name = is_body && prefixed ? "bert." + body : body;
    if (own.count(name)) {
      out[name] = t;
      continue;
    }
    const bool known_extra = detail::bert_ends(body, "position_ids") || detail::bert_ends(body, "token_type_ids") ||
                             detail::bert_starts(body, "cls.") || detail::bert_starts(body, "pooler.") ||
                             detail::bert_starts(body, "classifier.") || detail::bert_starts(body, "qa_outputs.");
    if (!known_extra) unexpected.push_back(name0);
  }
  std::vector<std::string> missing;
  for (const auto& [n, t] : own)
    if (!out.count(n)) missing.push_back(n);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg;
    for (const auto& n : missing) msg += "\n  missing: " + n;
    for (const auto& n : unexpected) msg += "\n  unexpected: " + n;
    GENAI_FAIL("bert_state_dict_from_hf: the checkpoint does not match ", model.type_name(), ":", msg);
  }
  return out;
}

/// Reads `dir`/config.json (Hugging Face BertConfig fields).
inline BertConfig load_bert_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  const nlohmann::json j = io::read_json_file(path, "load_bert_config",
                                              "a BERT folder holds config.json, model.safetensors and vocab.txt (the "
                                              "files of the Hugging Face hub's bert-base-uncased repository)");
  return BertConfig::from_hf_json(j, "'" + path + "'");
}

namespace detail {
inline io::TensorMap bert_read_weights(const std::string& dir, const BertConfig& cfg, const char* op) {
  const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  GENAI_CHECK(std::filesystem::exists(path), op, ": '", path,
              "' not found; hint: download model.safetensors next to config.json (pytorch_model.bin is not read)");
  const double d = static_cast<double>(cfg.hidden_size);
  check_config_fits_weights(op, path, static_cast<double>(cfg.vocab_size) * d +
                            static_cast<double>(cfg.num_hidden_layers) * (4 * d * d + 2 * d * cfg.intermediate_size));
  return io::load_safetensors(path);  // F16 / BF16 are read as float32
}
template <class M>
inline void bert_load_into(M& model, const io::TensorMap& hf, bool prefixed, Dtype dtype, const std::string& dir, const char* op) {
  if (dtype != kFloat32) model.to(dtype);
  try {
    model.load_state_dict(bert_state_dict_from_hf(hf, model, prefixed));
  } catch (const Error& e) {
    GENAI_FAIL(op, ": '", dir, "/model.safetensors' does not match its config.json: ", e.what());
  }
  model.eval();
}
}  // namespace detail

/// Loads BertForMaskedLM from a Hugging Face folder (config.json + model.safetensors, with
/// BertForMaskedLM / BertForPreTraining names); the model is in eval mode.
inline std::shared_ptr<BertForMaskedLM> load_bert_pretrained(const std::string& dir, Dtype dtype = kFloat32) {
  BertConfig cfg = load_bert_config(dir);
  io::TensorMap hf = detail::bert_read_weights(dir, cfg, "load_bert_pretrained");
  auto m = std::make_shared<BertForMaskedLM>(cfg, default_generator(), /*init=*/false);
  detail::bert_load_into(*m, hf, true, dtype, dir, "load_bert_pretrained");
  return m;
}

/// Loads the BertModel body (with the pooler when the file has one) of any BERT folder.
inline std::shared_ptr<BertModel> load_bert_model(const std::string& dir, Dtype dtype = kFloat32) {
  BertConfig cfg = load_bert_config(dir);
  io::TensorMap hf = detail::bert_read_weights(dir, cfg, "load_bert_model");
  const bool pool = hf.count("bert.pooler.dense.weight") || hf.count("pooler.dense.weight");
  auto m = std::make_shared<BertModel>(cfg, pool);
  detail::bert_load_into(*m, hf, false, dtype, dir, "load_bert_model");
  return m;
}

/// Writes `dir`/config.json and `dir`/model.safetensors in the Hugging Face layout
/// (BertForMaskedLM names; the tied decoder weight is omitted). `extra` fields are
/// merged into config.json.
inline void save_bert_pretrained(const BertForMaskedLM& model, const std::string& dir, const nlohmann::json& extra = {}) {
  std::filesystem::create_directories(dir);
  io::write_json_file((std::filesystem::path(dir) / "config.json").string(), model.config().to_hf_json(), extra);
  io::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), model.state_dict(),
                       {{"format", "pt"}});
}

}  // namespace models
}  // namespace genai
