// genai/models/transformer/t5.hpp: T5, the encoder-decoder Transformer of Raffel et
// al., "Exploring the limits of transfer learning with a unified text-to-text
// Transformer", 2020, laid out as Hugging Face's T5ForConditionalGeneration (its
// parameter names, config.json fields and semantics), with cached decoding (greedy,
// sampling, beam search) and the span-corruption pretraining objective.
//
//   models::T5Config cfg{.vocab_size = 40, .d_model = 64, .d_kv = 16, .d_ff = 256, .num_layers = 2, .num_heads = 4};
//   models::T5ForConditionalGeneration t5(cfg);            // HF's init
//   Tensor logits = t5.forward(input_ids, attention_mask, t5.shift_right(labels));  // (B, T, V)
//   Tensor loss = models::T5ForConditionalGeneration::loss(logits, labels);          // -100 ignored
//   auto out = models::t5_generate(t5, {{12, 7, 9, 1}}, {.max_new_tokens = 16, .num_beams = 3});
//   auto hf = models::load_t5_pretrained("t5-small/");     // config.json + model.safetensors
//
// Model (HF modeling_t5.py): shared token embedding; encoder and decoder stacks of
// pre-norm residual blocks with RMSNorm (T5LayerNorm: no mean, no bias), attention
// without biases and without the 1/sqrt(d) scale, a relative position bias (learned
// per bucket and head, owned by block 0's self-attention and shared by all blocks
// of the stack; bidirectional buckets in the encoder, causal in the decoder; none
// in cross-attention), the feed-forward wi -> relu -> wo (v1.0, "relu") or
// gelu_new(wi_0 x) * wi_1 x -> wo (v1.1, "gated-gelu"), final RMSNorms. With tied
// embeddings (v1.0) the decoder output is scaled by d_model^-0.5 before the head
// (the shared embedding); untied (v1.1) the head is lm_head.
//
// Names (HF): shared.weight, {encoder,decoder}.block.N.layer.0.SelfAttention.{q,k,v,o}.weight,
// {encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias.weight,
// {...}.layer.0.layer_norm.weight, decoder.block.N.layer.1.EncDecAttention.{q,k,v,o}.weight,
// decoder.block.N.layer.1.layer_norm.weight, {encoder.block.N.layer.1, decoder.block.N.layer.2}.
// {DenseReluDense.{wi|wi_0,wi_1,wo}.weight, layer_norm.weight}, {encoder,decoder}.final_layer_norm.weight,
// lm_head.weight (untied only). Loading accepts and ignores encoder.embed_tokens.weight /
// decoder.embed_tokens.weight (aliases of shared.weight in HF files) and lm_head.weight of
// a tied model, and the unused decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight
// of the original checkpoints.
//
// Masks: as HF, a padding mask becomes an additive (B, 1, 1, S) mask of 0 and the
// dtype's lowest value, added to the position bias (1, H, T, S); the decoder adds the
// causal mask. Loss: mean cross-entropy over labels != -100; shift_right builds the
// decoder inputs (decoder_start_token_id, then the labels shifted, -100 -> pad).
//
// Differences from Hugging Face: dropout draws come from genai's counter-based masks;
// beam search follows HF's BeamSearchScorer (2 * num_beams candidates, eos only from
// the top num_beams ranks, score = sum log p / generated_len^length_penalty with eos
// counted) on one input at a time; ties in the candidate ranking go to the lower index
// (stable sort); the early_stopping = false heuristic compares the worst kept score
// with best_sum_logprobs / cur_len^length_penalty, cur_len = tokens generated including
// the candidate. No SentencePiece tokenizer (ids in, ids out).
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/core/rng.hpp"
#include "genai/io/file.hpp"
#include "genai/io/json_fields.hpp"
#include "genai/io/safetensors.hpp"
#include "genai/models/transformer/blocks.hpp"
#include "genai/models/transformer/pretrained.hpp"
#include "genai/models/transformer/sampling.hpp"
#include "genai/ops/loss.hpp"

namespace genai {
namespace models {

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_decoder_layers = 0;            // 0: num_layers
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.0;
  double layer_norm_epsilon = 1e-6;
  std::string feed_forward_proj = "relu";    // "relu" (v1.0) or "gated-gelu" (v1.1)
  bool tie_word_embeddings = true;           // v1.0: head = shared, output scaled by d_model^-0.5
  int64_t decoder_start_token_id = 0;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;

  int64_t decoder_layers() const { return num_decoder_layers > 0 ? num_decoder_layers : num_layers; }
  bool is_gated() const { return feed_forward_proj.rfind("gated-", 0) == 0; }
  /// HF's dense_act_fn: the part after "gated-"; "gated-gelu" means gelu_new.
  std::string dense_act() const {
    if (feed_forward_proj == "gated-gelu") return "gelu_new";
    return is_gated() ? feed_forward_proj.substr(6) : feed_forward_proj;
  }
  void validate() const {
    GENAI_CHECK(vocab_size > 0 && d_model > 0 && d_kv > 0 && d_ff > 0 && num_layers > 0 && num_heads > 0,
                "T5Config: vocab_size, d_model, d_kv, d_ff, num_layers and num_heads must be positive, got ", vocab_size,
                ", ", d_model, ", ", d_kv, ", ", d_ff, ", ", num_layers, ", ", num_heads);
    GENAI_CHECK(relative_attention_num_buckets >= 4 && relative_attention_max_distance > relative_attention_num_buckets / 4,
                "T5Config: relative_attention_num_buckets must be >= 4 and max_distance > num_buckets / 4, got ",
                relative_attention_num_buckets, ", ", relative_attention_max_distance);
    GENAI_CHECK(dropout_rate >= 0.0 && dropout_rate < 1.0, "T5Config: dropout_rate must be in [0, 1), got ", dropout_rate);
    apply_activation(zeros({1}), dense_act());  // validates the name
  }

  /// Hugging Face T5Config fields.
  nlohmann::json to_hf_json() const {
    nlohmann::json j;
    j["architectures"] = {"T5ForConditionalGeneration"};
    j["model_type"] = "t5";
    j["vocab_size"] = vocab_size;
    j["d_model"] = d_model;
    j["d_kv"] = d_kv;
    j["d_ff"] = d_ff;
    j["num_layers"] = num_layers;
    j["num_decoder_layers"] = decoder_layers();
    j["num_heads"] = num_heads;
    j["relative_attention_num_buckets"] = relative_attention_num_buckets;
    j["relative_attention_max_distance"] = relative_attention_max_distance;
    j["dropout_rate"] = dropout_rate;
    j["layer_norm_epsilon"] = layer_norm_epsilon;
    j["initializer_factor"] = 1.0;
    j["feed_forward_proj"] = feed_forward_proj;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["is_encoder_decoder"] = true;
    j["decoder_start_token_id"] = decoder_start_token_id;
    j["pad_token_id"] = pad_token_id;
    j["eos_token_id"] = eos_token_id;
    return j;
  }
  /// Reads a Hugging Face T5 config.json object (missing fields take HF T5Config's defaults).
  static T5Config from_hf_json(const nlohmann::json& j, const std::string& what = "config.json") {
    const io::JsonFields f(j, "T5Config", what);
    auto get_int = [&](const char* k, int64_t def) { return f.get_int(k, def); };
    auto get_real = [&](const char* k, double def) { return f.get_real(k, def); };
    T5Config c;
    c.vocab_size = get_int("vocab_size", 32128);
    c.d_model = get_int("d_model", 512);
    c.d_kv = get_int("d_kv", 64);
    c.d_ff = get_int("d_ff", 2048);
    c.num_layers = get_int("num_layers", 6);
    c.num_decoder_layers = get_int("num_decoder_layers", c.num_layers);
    c.num_heads = get_int("num_heads", 8);
    c.relative_attention_num_buckets = get_int("relative_attention_num_buckets", 32);
    c.relative_attention_max_distance = get_int("relative_attention_max_distance", 128);
    c.dropout_rate = get_real("dropout_rate", 0.1);
    c.layer_norm_epsilon = get_real("layer_norm_epsilon", 1e-6);
    c.feed_forward_proj = f.get_string("feed_forward_proj", c.feed_forward_proj);
    c.tie_word_embeddings = f.get_bool("tie_word_embeddings", c.tie_word_embeddings);
    c.decoder_start_token_id = get_int("decoder_start_token_id", 0);
    c.pad_token_id = get_int("pad_token_id", 0);
    c.eos_token_id = get_int("eos_token_id", 1);
    c.validate();
    return c;
  }
};

// ---- relative positions ---------------------------------------------------------------------

/// HF's T5Attention._relative_position_bucket for one relative position
/// (memory position - query position); the log is taken in float32 as torch does.
inline int64_t t5_relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets = 32,
                                           int64_t max_distance = 128) {
  int64_t bucket = 0;
  int64_t n = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    if (n > 0) bucket += num_buckets;
    n = n < 0 ? -n : n;
  } else {
    n = n < 0 ? -n : 0;  // -min(n, 0)
  }
  const int64_t max_exact = num_buckets / 2;
  if (n < max_exact) return bucket + n;
  // torch: log(float(n) / max_exact) / log(max_distance / max_exact) * (num_buckets - max_exact), in float32
  const float a = std::log(static_cast<float>(n) / static_cast<float>(max_exact));
  const float b = static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float c = a / b * static_cast<float>(num_buckets - max_exact);
  const int64_t large = std::min<int64_t>(max_exact + static_cast<int64_t>(c), num_buckets - 1);
  return bucket + large;
}

/// Buckets (T, S) int64 for queries at positions q0 ... q0 + T - 1 over keys 0 ... S - 1.
inline Tensor t5_position_buckets(int64_t q0, int64_t T, int64_t S, bool bidirectional, int64_t num_buckets,
                                  int64_t max_distance) {
  std::vector<int64_t> b(static_cast<size_t>(T * S));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j)
      b[static_cast<size_t>(i * S + j)] = t5_relative_position_bucket(j - (q0 + i), bidirectional, num_buckets, max_distance);
  return tensor(b, {T, S});
}

/// A padding mask (B, S) (nonzero = attend, any dtype) -> additive (B, 1, 1, S): 0 or the dtype's lowest.
inline Tensor t5_additive_mask(const Tensor& mask, Dtype dtype) {
  GENAI_CHECK(mask.defined() && mask.dim() == 2, "T5: expected an attention mask of shape (B, S), got ",
              mask.defined() ? shape_str(mask.shape()) : std::string("undefined"));
  const double low = dtype == kFloat64 ? std::numeric_limits<double>::lowest() : std::numeric_limits<float>::lowest();
  std::vector<double> m = mask.to(kFloat64).contiguous().to_vector<double>();
  for (double& v : m) v = v != 0.0 ? 0.0 : low;
  return tensor(m, {mask.size(0), 1, 1, mask.size(1)}, dtype);
}

// ---- modules ----------------------------------------------------------------------------------

/// T5Attention: MultiheadAttention with q, k, v, o (no biases, scale 1, head_dim d_kv)
/// and, in block 0's self-attention, the relative_attention_bias table (buckets, H).
class T5Attention : public MultiheadAttention {
 public:
  T5Attention(const T5Config& c, bool cross, bool has_relative_bias)
      : MultiheadAttention(AttentionConfig{.n_embd = c.d_model,
                                           .n_head = c.num_heads,
                                           .head_dim = c.d_kv,
                                           .bias = false,
                                           .fused = false,
                                           .cross = cross,
                                           .dropout = c.dropout_rate,
                                           .scale = 1.0}) {
    if (has_relative_bias)
      relative_attention_bias = register_module(
          "relative_attention_bias", std::make_shared<nn::Embedding>(c.relative_attention_num_buckets, c.num_heads));
  }
  std::string type_name() const override { return "T5Attention"; }
  std::shared_ptr<nn::Embedding> relative_attention_bias;  // block 0 only
};

/// T5DenseActDense / T5DenseGatedActDense: wi -> act -> dropout -> wo, or act(wi_0 x) * wi_1 x -> dropout -> wo.
class T5DenseActDense : public nn::Module {
 public:
  explicit T5DenseActDense(const T5Config& c) : act_(c.dense_act()), p_(c.dropout_rate) {
    if (c.is_gated()) {
      wi_0 = register_module("wi_0", std::make_shared<nn::Linear>(c.d_model, c.d_ff, false));
      wi_1 = register_module("wi_1", std::make_shared<nn::Linear>(c.d_model, c.d_ff, false));
    } else {
      wi = register_module("wi", std::make_shared<nn::Linear>(c.d_model, c.d_ff, false));
    }
    wo = register_module("wo", std::make_shared<nn::Linear>(c.d_ff, c.d_model, false));
  }
  std::string type_name() const override { return "T5DenseActDense"; }
  /// (B, T, C) -> (B, T, C)
  Tensor forward(const Tensor& x) {
    Tensor h = wi ? apply_activation(linear_nd(x, wi->weight), act_)
                  : mul(apply_activation(linear_nd(x, wi_0->weight), act_), linear_nd(x, wi_1->weight));
    h = dropout(h, p_, is_training());
    return linear_nd(h, wo->weight);
  }
  std::shared_ptr<nn::Linear> wi, wi_0, wi_1, wo;

 private:
  std::string act_;
  double p_;
};

/// layer.0 (SelfAttention), layer.1 (EncDecAttention, decoder), last: DenseReluDense; each with layer_norm.
class T5Sublayer : public nn::Module {
 public:
  enum Kind { Self, Cross, FF };
  T5Sublayer(const T5Config& c, Kind kind, bool has_relative_bias) : kind_(kind), p_(c.dropout_rate) {
    if (kind == Self) attn = register_module("SelfAttention", std::make_shared<T5Attention>(c, false, has_relative_bias));
    if (kind == Cross) attn = register_module("EncDecAttention", std::make_shared<T5Attention>(c, true, false));
    if (kind == FF) ff = register_module("DenseReluDense", std::make_shared<T5DenseActDense>(c));
    layer_norm = register_module("layer_norm", std::make_shared<nn::RMSNorm>(Shape{c.d_model}, c.layer_norm_epsilon));
  }
  std::string type_name() const override { return kind_ == FF ? "T5LayerFF" : "T5LayerAttention"; }
  /// x + sublayer(layer_norm(x)); `mask` is the additive bias + mask (B|1, H|1, T, S).
  Tensor forward(const Tensor& x, const Tensor& mask = {}, const Tensor& context = {}, LayerKV* cache = nullptr) {
    Tensor h = layer_norm->forward(x);
    if (ff) return add(x, dropout(ff->forward(h), p_, is_training()));
    return add(x, attn->forward(h, {false, mask}, context, cache));  // the attention applies the output dropout
  }
  std::shared_ptr<T5Attention> attn;
  std::shared_ptr<T5DenseActDense> ff;
  std::shared_ptr<nn::RMSNorm> layer_norm;

 private:
  Kind kind_;
  double p_;
};

class T5Block : public nn::Module {
 public:
  T5Block(const T5Config& c, bool decoder, bool has_relative_bias) {
    layer = register_module("layer", std::make_shared<nn::ModuleList<T5Sublayer>>());
    layer->push_back(std::make_shared<T5Sublayer>(c, T5Sublayer::Self, has_relative_bias));
    if (decoder) layer->push_back(std::make_shared<T5Sublayer>(c, T5Sublayer::Cross, false));
    layer->push_back(std::make_shared<T5Sublayer>(c, T5Sublayer::FF, false));
  }
  std::string type_name() const override { return "T5Block"; }
  std::shared_ptr<nn::ModuleList<T5Sublayer>> layer;
};

/// The decoder's incremental state: self-attention keys/values per layer (growing)
/// and cross-attention keys/values (computed once from the encoder output).
struct T5DecoderCache {
  std::vector<LayerKV> self, cross;
  int64_t length() const { return self.empty() ? 0 : self[0].length(); }
  void reset() { self.clear(), cross.clear(); }
  /// Keeps rows `idx` (beam search): row i of the new cache is row idx[i] of the old.
  void reorder(const std::vector<int64_t>& idx) {
    Tensor ix = tensor(idx, {static_cast<int64_t>(idx.size())});
    for (auto* v : {&self, &cross})
      for (LayerKV& kv : *v)
        if (kv.k.defined()) kv.k = index_select(kv.k, 0, ix), kv.v = index_select(kv.v, 0, ix);
  }
};

/// T5Stack: blocks + final_layer_norm (the embedding is the model's `shared`).
class T5Stack : public nn::Module {
 public:
  T5Stack(const T5Config& c, bool decoder) : cfg_(c), decoder_(decoder) {
    block = register_module("block", std::make_shared<nn::ModuleList<T5Block>>());
    const int64_t n = decoder ? c.decoder_layers() : c.num_layers;
    for (int64_t i = 0; i < n; ++i) block->push_back(std::make_shared<T5Block>(c, decoder, i == 0));
    final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::RMSNorm>(Shape{c.d_model}, c.layer_norm_epsilon));
  }
  std::string type_name() const override { return "T5Stack"; }

  /// The position bias (1, H, T, S) for queries q0 ... q0 + T - 1 over keys 0 ... S - 1.
  Tensor position_bias(int64_t q0, int64_t T, int64_t S) const {
    const auto& rb = (*block)[0]->layer->operator[](0)->attn->relative_attention_bias;
    Tensor b = t5_position_buckets(q0, T, S, !decoder_, cfg_.relative_attention_num_buckets,
                                   cfg_.relative_attention_max_distance);
    return unsqueeze(permute(embedding(b, rb->weight), {2, 0, 1}), 0);  // (T, S, H) -> (1, H, T, S)
  }

  /// x (B, T, C) embedded tokens -> (B, T, C). `self_mask`: additive (B|1, 1, T, S) or undefined;
  /// decoder: `context` (B, S_enc, C) and its additive `cross_mask` (B, 1, 1, S_enc).
  Tensor forward(const Tensor& x, const Tensor& self_mask, const Tensor& context = {}, const Tensor& cross_mask = {},
                 T5DecoderCache* cache = nullptr) {
    const int64_t T = x.size(1);
    const int64_t q0 = cache ? cache->length() : 0;
    if (cache && cache->self.empty()) {
      cache->self.resize(block->size());
      cache->cross.resize(block->size());
    }
    Tensor bias = position_bias(q0, T, q0 + T);
    if (self_mask.defined()) bias = add(bias, self_mask);
    Tensor h = dropout(x, cfg_.dropout_rate, is_training());
    for (size_t i = 0; i < block->size(); ++i) {
      auto& L = *(*block)[i]->layer;
      h = L[0]->forward(h, bias, Tensor(), cache ? &cache->self[i] : nullptr);
      if (decoder_) h = L[1]->forward(h, cross_mask, context, cache ? &cache->cross[i] : nullptr);
      h = L[L.size() - 1]->forward(h);
    }
    return dropout(final_layer_norm->forward(h), cfg_.dropout_rate, is_training());
  }

  std::shared_ptr<nn::ModuleList<T5Block>> block;
  std::shared_ptr<nn::RMSNorm> final_layer_norm;

 private:
  T5Config cfg_;
  bool decoder_;
};

class T5ForConditionalGeneration : public nn::Module {
 public:
  /// Builds the model with HF's T5 init (draws from `gen`); init = false skips it (weights about to be loaded).
  explicit T5ForConditionalGeneration(const T5Config& c, Generator& gen = default_generator(), bool init = true)
      : cfg_(c) {
    c.validate();
    shared = register_module("shared", std::make_shared<nn::Embedding>(c.vocab_size, c.d_model));
    encoder = register_module("encoder", std::make_shared<T5Stack>(c, false));
    decoder = register_module("decoder", std::make_shared<T5Stack>(c, true));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", std::make_shared<nn::Linear>(c.d_model, c.vocab_size, false));
    if (init) init_weights(gen);
  }
  std::string type_name() const override { return "T5ForConditionalGeneration"; }
  const T5Config& config() const { return cfg_; }

  /// HF T5PreTrainedModel._init_weights (factor 1): shared N(0, 1), q N(0, (d_model d_kv)^-0.5),
  /// k, v N(0, d_model^-0.5), o N(0, (H d_kv)^-0.5), relative bias and wi N(0, d_model^-0.5),
  /// wo N(0, d_ff^-0.5), lm_head N(0, d_model^-0.5), norms 1.
  void init_weights(Generator& gen = default_generator()) {
    NoGradGuard ng;
    const double dm = static_cast<double>(cfg_.d_model);
    auto ends = [](const std::string& s, const std::string& suf) {
      return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
    };
    for (auto& [name, p] : named_parameters()) {
      Tensor t = p;
      double sd = 1.0;
      if (ends(name, "layer_norm.weight")) {
        nn::init::constant_(t, 1.0);
        continue;
      }
      if (name == "shared.weight") sd = 1.0;
      else if (ends(name, ".q.weight")) sd = 1.0 / std::sqrt(dm * static_cast<double>(cfg_.d_kv));
      else if (ends(name, ".o.weight")) sd = 1.0 / std::sqrt(static_cast<double>(cfg_.num_heads * cfg_.d_kv));
      else if (ends(name, ".wo.weight")) sd = 1.0 / std::sqrt(static_cast<double>(cfg_.d_ff));
      else sd = 1.0 / std::sqrt(dm);  // k, v, relative_attention_bias, wi*, lm_head
      nn::init::normal_(t, 0.0, sd, gen);
    }
  }

  Dtype dtype() const { return shared->weight.dtype(); }
  /// The head's weight (V, C): shared's when tied.
  const Tensor& lm_head_weight() const { return lm_head ? lm_head->weight : shared->weight; }

  /// Encoder hidden states (B, S, C) of input_ids (B, S) int64; attention_mask (B, S), 1 = token, 0 = pad.
  Tensor encode(const Tensor& input_ids, const Tensor& attention_mask = {}) {
    check_ids(input_ids, "input_ids");
    Tensor m = attention_mask.defined() ? t5_additive_mask(attention_mask, dtype()) : Tensor();
    return encoder->forward(shared->forward(input_ids), m);
  }

  /// Logits (B, T, V) of decoder_input_ids (B, T) given the encoder output (B, S, C) and its mask.
  /// With `cache`, the T tokens follow cache->length() earlier ones (their keys/values are reused).
  /// decoder_attention_mask (B, cached + T) masks decoder keys (HF semantics: combined with the causal mask).
  Tensor decode(const Tensor& decoder_input_ids, const Tensor& encoder_hidden, const Tensor& attention_mask = {},
                const Tensor& decoder_attention_mask = {}, T5DecoderCache* cache = nullptr) {
    check_ids(decoder_input_ids, "decoder_input_ids");
    const int64_t T = decoder_input_ids.size(1), q0 = cache ? cache->length() : 0, S = q0 + T;
    const Dtype dt = dtype();
    // causal (and padding) additive mask (B|1, 1, T, S)
    const double low = dt == kFloat64 ? std::numeric_limits<double>::lowest() : std::numeric_limits<float>::lowest();
    Tensor self_mask;
    if (T > 1 || decoder_attention_mask.defined()) {
      const int64_t B = decoder_attention_mask.defined() ? decoder_attention_mask.size(0) : 1;
      GENAI_CHECK(!decoder_attention_mask.defined() ||
                      (decoder_attention_mask.dim() == 2 && decoder_attention_mask.size(1) == S),
                  "T5: decoder_attention_mask must be (B, ", S, "), got ", shape_str(decoder_attention_mask.shape()));
      std::vector<double> pm = decoder_attention_mask.defined()
                                   ? decoder_attention_mask.to(kFloat64).contiguous().to_vector<double>()
                                   : std::vector<double>(static_cast<size_t>(S), 1.0);
      std::vector<double> m(static_cast<size_t>(B * T * S));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = 0; j < S; ++j)
            m[static_cast<size_t>((b * T + i) * S + j)] =
                (j <= q0 + i && pm[static_cast<size_t>(b * S + j)] != 0.0) ? 0.0 : low;
      self_mask = tensor(m, {B, 1, T, S}, dt);
    }
    Tensor cross_mask = attention_mask.defined() ? t5_additive_mask(attention_mask, dt) : Tensor();
    Tensor h = decoder->forward(shared->forward(decoder_input_ids), self_mask, encoder_hidden, cross_mask, cache);
    if (cfg_.tie_word_embeddings) h = mul(h, 1.0 / std::sqrt(static_cast<double>(cfg_.d_model)));
    return linear_nd(h, lm_head_weight());
  }

  /// Logits (B, T, V).
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& decoder_input_ids,
                 const Tensor& decoder_attention_mask = {}) {
    Tensor enc = encode(input_ids, attention_mask);
    return decode(decoder_input_ids, enc, attention_mask, decoder_attention_mask);
  }

  /// HF's _shift_right: (B, T) labels -> decoder inputs [start, labels[:-1]] with -100 -> pad.
  Tensor shift_right(const Tensor& labels) const {
    GENAI_CHECK(labels.defined() && labels.dim() == 2 && labels.dtype() == kInt64,
                "T5::shift_right: expected labels (B, T) int64, got ", labels.defined() ? shape_str(labels.shape()) : "undefined");
    const int64_t B = labels.size(0), T = labels.size(1);
    std::vector<int64_t> l = labels.contiguous().to_vector<int64_t>(), o(static_cast<size_t>(B * T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        int64_t v = t == 0 ? cfg_.decoder_start_token_id : l[static_cast<size_t>(b * T + t - 1)];
        o[static_cast<size_t>(b * T + t)] = v == -100 ? cfg_.pad_token_id : v;
      }
    return tensor(o, {B, T});
  }

  /// Mean cross-entropy of logits (B, T, V) against labels (B, T); -100 is ignored (HF).
  static Tensor loss(const Tensor& logits, const Tensor& labels) {
    GENAI_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.size(0) == logits.size(0) && labels.size(1) == logits.size(1),
                "T5::loss: logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()),
                " do not match; expected (B, T, V) and (B, T)");
    return cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(labels, {-1}), Tensor(), -100);
  }

  std::shared_ptr<nn::Embedding> shared;
  std::shared_ptr<T5Stack> encoder, decoder;
  std::shared_ptr<nn::Linear> lm_head;  // untied only

 private:
  void check_ids(const Tensor& ids, const char* what) const {
    GENAI_CHECK(ids.defined() && ids.dim() == 2 && ids.dtype() == kInt64 && ids.size(1) >= 1, "T5: expected ", what,
                " of shape (B, T) int64, got ",
                ids.defined() ? shape_str(ids.shape()) + " " + dtype_name(ids.dtype()) : std::string("undefined"));
  }
  T5Config cfg_;
};

// ---- decoding ---------------------------------------------------------------------------------

struct T5GenerationOptions {
  int64_t max_new_tokens = 20;
  SamplingOptions sampling = {.greedy = true};  // greedy, or temperature / top-k / top-p sampling (num_beams == 1)
  int64_t num_beams = 1;                         // > 1: beam search (deterministic)
  double length_penalty = 1.0;                   // beam scores are sum log p / generated_len^length_penalty
  bool early_stopping = false;                   // beam search: stop once num_beams hypotheses ended (HF's True)
  bool use_cache = true;                         // false: the whole decoder prefix is recomputed at each step
};

namespace detail {

/// Row-major (N, L) int64 tensor of sequences padded with `pad`, and the (N, L) mask.
inline std::pair<Tensor, Tensor> t5_pad_batch(const std::vector<std::vector<int64_t>>& seqs, int64_t pad) {
  size_t L = 0;
  for (const auto& s : seqs) L = std::max(L, s.size());
  std::vector<int64_t> ids(seqs.size() * L, pad), mask(seqs.size() * L, 0);
  for (size_t i = 0; i < seqs.size(); ++i)
    for (size_t j = 0; j < seqs[i].size(); ++j) ids[i * L + j] = seqs[i][j], mask[i * L + j] = 1;
  const Shape s = {static_cast<int64_t>(seqs.size()), static_cast<int64_t>(L)};
  return {tensor(ids, s), tensor(mask, s)};
}

/// Next-token logits (N, V) float64 of each row's decoder sequence (start token included).
inline Tensor t5_step_logits(T5ForConditionalGeneration& m, const std::vector<std::vector<int64_t>>& dec,
                             const Tensor& enc, const Tensor& mask, T5DecoderCache& cache, bool use_cache) {
  const int64_t N = static_cast<int64_t>(dec.size());
  std::vector<int64_t> ids;
  int64_t T = 1;
  if (use_cache && cache.length() > 0) {
    for (const auto& d : dec) ids.push_back(d.back());
  } else {
    T = static_cast<int64_t>(dec[0].size());
    for (const auto& d : dec) ids.insert(ids.end(), d.begin(), d.end());
  }
  Tensor lg = m.decode(tensor(ids, {N, T}), enc, mask, Tensor(), use_cache ? &cache : nullptr);
  return contiguous(select(lg, 1, T - 1)).to(kFloat64);
}

}  // namespace detail

/// Beam search for one input (ids, no padding); returns the best hypothesis's tokens (eos included if generated).
inline std::vector<int64_t> t5_beam_search(T5ForConditionalGeneration& m, const std::vector<int64_t>& input,
                                           const T5GenerationOptions& o) {
  const T5Config& c = m.config();
  const int64_t nb = o.num_beams, V = c.vocab_size;
  NoGradGuard ng;
  Tensor ids = tensor(input, {1, static_cast<int64_t>(input.size())});
  Tensor enc1 = m.encode(ids);
  Tensor enc = contiguous(expand(enc1, {nb, enc1.size(1), enc1.size(2)}));
  std::vector<std::vector<int64_t>> beams(static_cast<size_t>(nb), std::vector<int64_t>{c.decoder_start_token_id});
  std::vector<double> score(static_cast<size_t>(nb), -1e9);
  score[0] = 0.0;
  std::vector<std::pair<double, std::vector<int64_t>>> hyps;  // (score, generated tokens)
  double worst = 1e9;
  auto add_hyp = [&](std::vector<int64_t> toks, double sum_logprobs) {
    const double s = sum_logprobs / std::pow(static_cast<double>(toks.size()), o.length_penalty);
    if (static_cast<int64_t>(hyps.size()) < nb || s > worst) {
      hyps.emplace_back(s, std::move(toks));
      if (static_cast<int64_t>(hyps.size()) > nb) {
        size_t wi = 0;
        for (size_t i = 1; i < hyps.size(); ++i)
          if (hyps[i].first < hyps[wi].first) wi = i;
        hyps.erase(hyps.begin() + static_cast<std::ptrdiff_t>(wi));
        worst = hyps[0].first;
        for (const auto& h : hyps) worst = std::min(worst, h.first);
      } else {
        worst = std::min(worst, s);
      }
    }
  };
  T5DecoderCache cache;
  bool done = false;
  for (int64_t step = 0; step < o.max_new_tokens && !done; ++step) {
    Tensor lg = detail::t5_step_logits(m, beams, enc, Tensor(), cache, o.use_cache);
    Tensor lp = log_softmax(lg, 1);  // (nb, V)
    const double* p = lp.data_ptr<const double>();
    std::vector<double> cand(static_cast<size_t>(nb * V));
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t v = 0; v < V; ++v) cand[static_cast<size_t>(b * V + v)] = p[b * V + v] + score[static_cast<size_t>(b)];
    std::vector<int64_t> order(cand.size());
    std::iota(order.begin(), order.end(), 0);
    const int64_t k = std::min<int64_t>(2 * nb, nb * V);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
      return cand[static_cast<size_t>(a)] > cand[static_cast<size_t>(b)] || (cand[static_cast<size_t>(a)] == cand[static_cast<size_t>(b)] && a < b);
    });
    const int64_t cur_len = step + 1;  // generated tokens including this one
    std::vector<std::vector<int64_t>> next;
    std::vector<double> next_score;
    std::vector<int64_t> src;
    for (int64_t r = 0; r < k && static_cast<int64_t>(next.size()) < nb; ++r) {
      const int64_t idx = order[static_cast<size_t>(r)], b = idx / V, tok = idx % V;
      const double s = cand[static_cast<size_t>(idx)];
      if (tok == c.eos_token_id) {
        if (r >= nb) continue;
        std::vector<int64_t> h(beams[static_cast<size_t>(b)].begin() + 1, beams[static_cast<size_t>(b)].end());
        h.push_back(tok);
        add_hyp(std::move(h), s);
      } else {
        next.push_back(beams[static_cast<size_t>(b)]);
        next.back().push_back(tok);
        next_score.push_back(s);
        src.push_back(b);
      }
    }
    // HF's is_done with the best candidate score of this step
    if (static_cast<int64_t>(hyps.size()) >= nb) {
      if (o.early_stopping) done = true;
      else done = worst >= cand[static_cast<size_t>(order[0])] / std::pow(static_cast<double>(cur_len), o.length_penalty);
    }
    beams = std::move(next);
    score = std::move(next_score);
    if (o.use_cache) cache.reorder(src);
  }
  if (!done)
    for (int64_t b = 0; b < nb; ++b)
      add_hyp(std::vector<int64_t>(beams[static_cast<size_t>(b)].begin() + 1, beams[static_cast<size_t>(b)].end()),
              score[static_cast<size_t>(b)]);
  size_t best = 0;
  for (size_t i = 1; i < hyps.size(); ++i)
    if (hyps[i].first > hyps[best].first) best = i;
  return hyps[best].second;
}

/// Generates for every input (token ids, eos usually last): greedy or sampling in one padded
/// batch, or beam search (num_beams > 1) one input at a time. Returns the generated tokens
/// (without the decoder start token; a sequence stops after eos, which is included).
inline std::vector<std::vector<int64_t>> t5_generate(T5ForConditionalGeneration& m,
                                                     const std::vector<std::vector<int64_t>>& inputs,
                                                     const T5GenerationOptions& o, Generator& gen = default_generator()) {
  GENAI_CHECK(!inputs.empty(), "t5_generate: no inputs");
  GENAI_CHECK(o.max_new_tokens >= 0 && o.num_beams >= 1, "t5_generate: max_new_tokens must be >= 0 and num_beams >= 1, got ",
              o.max_new_tokens, ", ", o.num_beams);
  const T5Config& c = m.config();
  for (const auto& s : inputs) {
    GENAI_CHECK(!s.empty(), "t5_generate: empty input; hint: end inputs with eos (", c.eos_token_id, ")");
    for (int64_t t : s)
      GENAI_CHECK(t >= 0 && t < c.vocab_size, "t5_generate: token ", t, " is outside the vocabulary of ", c.vocab_size);
  }
  std::vector<std::vector<int64_t>> out(inputs.size());
  if (o.num_beams > 1) {
    for (size_t i = 0; i < inputs.size(); ++i) out[i] = t5_beam_search(m, inputs[i], o);
    return out;
  }
  NoGradGuard ng;
  auto [ids, mask] = detail::t5_pad_batch(inputs, c.pad_token_id);
  Tensor enc = m.encode(ids, mask);
  const size_t N = inputs.size();
  std::vector<std::vector<int64_t>> dec(N, std::vector<int64_t>{c.decoder_start_token_id});
  std::vector<char> active(N, 1);
  T5DecoderCache cache;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    if (std::none_of(active.begin(), active.end(), [](char a) { return a != 0; })) break;
    Tensor lg = detail::t5_step_logits(m, dec, enc, mask, cache, o.use_cache);
    const double* p = lg.data_ptr<const double>();
    const int64_t V = lg.size(1);
    for (size_t i = 0; i < N; ++i) {
      if (!active[i]) {
        dec[i].push_back(c.pad_token_id);  // as HF: finished rows are fed pad
        continue;
      }
      std::vector<double> row(p + static_cast<int64_t>(i) * V, p + static_cast<int64_t>(i + 1) * V);
      const int64_t tok = sample_next(std::move(row), dec[i], o.sampling, gen);
      dec[i].push_back(tok);
      out[i].push_back(tok);
      if (tok == c.eos_token_id) active[i] = 0;
    }
  }
  return out;
}

// ---- span corruption ----------------------------------------------------------------------------

struct SpanCorruption {
  std::vector<int64_t> inputs;   // kept tokens, each masked span replaced by a sentinel, + eos
  std::vector<int64_t> targets;  // sentinel_0 span_0 sentinel_1 span_1 ... + eos
  int64_t num_noise = 0;         // masked tokens
};

/// T5's span corruption (random_spans_noise_mask of the T5 repository): round(L * noise_density)
/// tokens (at least 1, at most L - 1) in round(num_noise / mean_span_length) spans (at least 1),
/// span lengths and the kept runs between them drawn as random segmentations; the sequence starts
/// with a kept run and alternates. Sentinels are vocab_size - 1, vocab_size - 2, ... (extra_id_0, 1, ...).
/// `ids` should not contain eos; it is appended to both sides when `append_eos`.
inline SpanCorruption t5_span_corruption(const std::vector<int64_t>& ids, int64_t vocab_size, Generator& gen,
                                         double noise_density = 0.15, double mean_span_length = 3.0, int64_t eos = 1,
                                         bool append_eos = true) {
  const int64_t L = static_cast<int64_t>(ids.size());
  GENAI_CHECK(L >= 2, "t5_span_corruption: need at least 2 tokens, got ", L);
  GENAI_CHECK(noise_density > 0 && noise_density < 1 && mean_span_length >= 1,
              "t5_span_corruption: noise_density must be in (0, 1) and mean_span_length >= 1, got ", noise_density, ", ",
              mean_span_length);
  int64_t num_noise = static_cast<int64_t>(std::llround(static_cast<double>(L) * noise_density));
  num_noise = std::min<int64_t>(std::max<int64_t>(num_noise, 1), L - 1);
  int64_t num_spans = std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(num_noise) / mean_span_length)));
  num_spans = std::min(num_spans, std::min(num_noise, L - num_noise));
  // random segmentation of n items into k non-empty runs: k - 1 distinct cut points in 1 .. n - 1
  auto segment = [&](int64_t n, int64_t k) {
    std::vector<int64_t> pts(static_cast<size_t>(n - 1));
    std::iota(pts.begin(), pts.end(), 1);
    for (int64_t i = 0; i < k - 1; ++i) {  // partial Fisher-Yates
      const int64_t j = i + static_cast<int64_t>(gen.below(static_cast<uint64_t>(n - 1 - i)));
      std::swap(pts[static_cast<size_t>(i)], pts[static_cast<size_t>(j)]);
    }
    std::vector<int64_t> cuts(pts.begin(), pts.begin() + (k - 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<int64_t> len;
    int64_t prev = 0;
    for (int64_t x : cuts) len.push_back(x - prev), prev = x;
    len.push_back(n - prev);
    return len;
  };
  std::vector<int64_t> noise_len = segment(num_noise, num_spans), keep_len = segment(L - num_noise, num_spans);
  GENAI_CHECK(vocab_size - num_spans > 0, "t5_span_corruption: vocab_size ", vocab_size, " leaves no room for ", num_spans,
              " sentinels");
  SpanCorruption r;
  r.num_noise = num_noise;
  int64_t pos = 0;
  for (int64_t s = 0; s < num_spans; ++s) {
    for (int64_t i = 0; i < keep_len[static_cast<size_t>(s)]; ++i) r.inputs.push_back(ids[static_cast<size_t>(pos++)]);
    const int64_t sentinel = vocab_size - 1 - s;
    r.inputs.push_back(sentinel);
    r.targets.push_back(sentinel);
    for (int64_t i = 0; i < noise_len[static_cast<size_t>(s)]; ++i) r.targets.push_back(ids[static_cast<size_t>(pos++)]);
  }
  if (append_eos) r.inputs.push_back(eos), r.targets.push_back(eos);
  return r;
}

// ---- Hugging Face layout ------------------------------------------------------------------------

/// A T5ForConditionalGeneration state dict in HF names -> genai's (drops the embed_tokens aliases
/// a tied lm_head and decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight, which
/// HF ignores too; an absent shared.weight is taken from encoder.embed_tokens.weight).
inline io::TensorMap t5_state_dict_from_hf(const io::TensorMap& hf, const T5Config& cfg) {
  io::TensorMap out;
  for (const auto& [name, t] : hf) {
    if (name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight") continue;
    if (name == "lm_head.weight" && cfg.tie_word_embeddings) continue;
    // unused in HF too (_keys_to_ignore_on_load_unexpected): the original t5-small/base checkpoints have it
    if (name.find("EncDecAttention.relative_attention_bias.") != std::string::npos) continue;
    out[name] = t;
  }
  if (!out.count("shared.weight") && hf.count("encoder.embed_tokens.weight")) out["shared.weight"] = hf.at("encoder.embed_tokens.weight");
  return out;
}

inline T5Config load_t5_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  const nlohmann::json j = io::read_json_file(
      path, "load_t5_config", "a T5 folder holds config.json and model.safetensors (as the Hugging Face hub's t5-small)");
  return T5Config::from_hf_json(j, "'" + path + "'");
}

/// Loads `dir`/config.json + `dir`/model.safetensors (HF T5ForConditionalGeneration names); eval mode.
inline std::shared_ptr<T5ForConditionalGeneration> load_t5_pretrained(const std::string& dir, Dtype dtype = kFloat32) {
  T5Config cfg = load_t5_config(dir);
  const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  GENAI_CHECK(std::filesystem::exists(path), "load_t5_pretrained: '", path,
              "' not found; hint: download model.safetensors next to config.json (pytorch_model.bin is not read)");
  const double d = static_cast<double>(cfg.d_model), inner = static_cast<double>(cfg.num_heads) * cfg.d_kv,
               ff = static_cast<double>(cfg.d_ff);
  detail::check_config_fits_weights("load_t5_pretrained", path, static_cast<double>(cfg.vocab_size) * d +
                                    static_cast<double>(cfg.num_layers) * (4 * d * inner + 2 * d * ff) +
                                    static_cast<double>(cfg.decoder_layers()) * (8 * d * inner + 2 * d * ff));
  auto model = std::make_shared<T5ForConditionalGeneration>(cfg, default_generator(), /*init=*/false);
  if (dtype != kFloat32) model->to(dtype);
  io::TensorMap sd = t5_state_dict_from_hf(io::load_safetensors(path), cfg);
  try {
    model->load_state_dict(sd);
  } catch (const Error& e) {
    GENAI_FAIL("load_t5_pretrained: '", path, "' does not match its config.json: ", e.what());
  }
  model->eval();
  return model;
}

/// Writes `dir`/config.json and `dir`/model.safetensors in the HF layout (shared.weight, no
/// embed_tokens aliases, lm_head.weight only when untied). `extra` fields merge into config.json.
inline void save_t5_pretrained(const T5ForConditionalGeneration& model, const std::string& dir,
                               const nlohmann::json& extra = {}) {
  std::filesystem::create_directories(dir);
  io::write_json_file((std::filesystem::path(dir) / "config.json").string(), model.config().to_hf_json(), extra);
  io::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), model.state_dict(), {{"format", "pt"}});
}

}  // namespace models
}  // namespace genai
