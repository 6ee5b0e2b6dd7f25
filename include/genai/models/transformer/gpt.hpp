// genai/models/transformer/gpt.hpp: GPT, the decoder-only Transformer language
// model of GPT-2 (Radford et al., "Language models are unsupervised multitask
// learners", 2019), as Karpathy's nanoGPT model.py writes it, and the loader for
// GPT-2 checkpoints in the Hugging Face layout.
//
//   models::GPTConfig cfg{.block_size = 64, .vocab_size = 65, .n_layer = 4, .n_head = 4, .n_embd = 128};
//   models::GPT gpt(cfg);                                 // GPT-2 init, weights tied
//   Tensor logits = gpt.forward(idx);                     // idx (B, T) int64 -> (B, T, V)
//   Tensor loss = gpt.loss(logits, targets);              // mean cross-entropy, ignore_index -1
//   auto opt = gpt.configure_optimizers(0.1, 1e-3, {0.9, 0.99});   // AdamW, decay on matrices only
//   auto hf = models::load_gpt2_pretrained("gpt2/");      // config.json + model.safetensors
//
// Model: token embedding wte (V, C) + learned position embedding wpe (block_size, C),
// dropout, n_layer pre-LN blocks (blocks.hpp: LayerNorm, causal self-attention with
// a fused qkv projection, LayerNorm, MLP C -> 4C -> C), a final LayerNorm ln_f and
// the language-model head, whose weight is wte (weight tying, Press & Wolf 2017)
// unless tie_weights is false.
//
// Init (GPT-2 / nanoGPT): Linear and Embedding weights N(0, 0.02), biases 0,
// LayerNorm 1 and 0, and the residual projections (attn.c_proj, mlp.c_proj)
// N(0, 0.02 / sqrt(2 n_layer)), so the residual stream's variance does not grow
// with depth.
//
// Parameter names are nanoGPT's, which are GPT2LMHeadModel's: transformer.wte.weight,
// transformer.wpe.weight, transformer.h.<i>.{ln_1, attn.c_attn, attn.c_proj, ln_2,
// mlp.c_fc, mlp.c_proj}.{weight, bias}, transformer.ln_f.{weight, bias}; lm_head.weight
// only when untied (state_dict() has no lm_head.weight for a tied model: one tensor
// is one parameter, so optimizers never see it twice).
//
// Hugging Face layout (load_gpt2_pretrained / save_gpt2_pretrained): config.json with
// n_layer, n_head, n_embd, vocab_size, n_positions (or n_ctx), layer_norm_epsilon,
// activation_function, n_inner, tie_word_embeddings; model.safetensors with the names
// above, where GPT-2's Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj,
// and the cross-attention ones) are stored (in, out), i.e. transposed with respect to
// nn.Linear; they are transposed on load and on save. Also accepted: names without
// the "transformer." prefix (GPT2Model files, as the hub's gpt2 model.safetensors),
// the causal-mask buffers attn.bias / attn.masked_bias (ignored), and lm_head.weight
// absent (tied) or present (ignored when tied). F16/BF16 weights load as float32.
//
// Differences from nanoGPT: GELU is selectable: "gelu" (exact, nanoGPT's nn.GELU) or
// "gelu_new" (the tanh form that GPT-2 was trained with; set from config.json's
// activation_function when loading). Hugging Face's per-site dropout rates
// (embd/attn/resid_pdrop) are one `dropout`.
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

struct GPTConfig {
  int64_t block_size = 1024;          // context length (learned positions)
  int64_t vocab_size = 50304;         // GPT-2's 50257 padded to a multiple of 64, as nanoGPT
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_embd = 768;
  int64_t n_inner = 0;                // MLP width; 0: 4 n_embd
  double dropout = 0.0;
  bool bias = true;                   // biases in Linear and LayerNorm (GPT-2: true)
  double layer_norm_eps = 1e-5;
  std::string activation = "gelu";    // "gelu" (nanoGPT) or "gelu_new" (GPT-2's tanh form)
  bool tie_weights = true;            // lm_head.weight is wte.weight

  /// GPT-2 small (124M): 12 layers, 12 heads, 768 wide, 1024 positions, 50257 tokens.
  static GPTConfig gpt2() {
    return {.block_size = 1024, .vocab_size = 50257, .n_layer = 12, .n_head = 12, .n_embd = 768,
            .activation = "gelu_new"};
  }
  /// The `char_gpt` reference configuration (REFERENCE_MODELS.md) for a vocabulary of `vocab`.
  static GPTConfig char_gpt(int64_t vocab = 65) {
    return {.block_size = 64, .vocab_size = vocab, .n_layer = 4, .n_head = 4, .n_embd = 128};
  }
  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  int64_t head_dim() const { return n_embd / n_head; }

  void validate() const {
    GENAI_CHECK(block_size > 0 && vocab_size > 0 && n_layer > 0 && n_head > 0 && n_embd > 0,
                "GPTConfig: block_size, vocab_size, n_layer, n_head and n_embd must be positive, got ", block_size, ", ",
                vocab_size, ", ", n_layer, ", ", n_head, ", ", n_embd);
    GENAI_CHECK(n_embd % n_head == 0, "GPTConfig: n_embd (", n_embd, ") must be divisible by n_head (", n_head, ")");
    GENAI_CHECK(dropout >= 0.0 && dropout < 1.0, "GPTConfig: dropout must be in [0, 1), got ", dropout);
  }

  /// Hugging Face GPT2Config fields.
  nlohmann::json to_hf_json() const {
    nlohmann::json j;
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["activation_function"] = activation;
    j["n_ctx"] = block_size;
    j["n_positions"] = block_size;
    j["n_embd"] = n_embd;
    j["n_head"] = n_head;
    j["n_layer"] = n_layer;
    j["n_inner"] = n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr);
    j["vocab_size"] = vocab_size;
    j["layer_norm_epsilon"] = layer_norm_eps;
    j["tie_word_embeddings"] = tie_weights;
    j["embd_pdrop"] = dropout;
    j["attn_pdrop"] = dropout;
    j["resid_pdrop"] = dropout;
    j["genai_bias"] = bias;
    return j;
  }
  /// Reads a Hugging Face GPT-2 config.json object (missing fields take GPT-2's values).
  static GPTConfig from_hf_json(const nlohmann::json& j, const std::string& what = "config.json") {
    const io::JsonFields f(j, "GPTConfig", what);
    GPTConfig c = gpt2();
    c.n_layer = f.get_int("n_layer", 12);
    c.n_head = f.get_int("n_head", 12);
    c.n_embd = f.get_int("n_embd", 768);
    c.vocab_size = f.get_int("vocab_size", 50257);
    c.block_size = f.get_int("n_positions", f.get_int("n_ctx", 1024));
    c.n_inner = f.get_int("n_inner", 0);
    c.layer_norm_eps = f.get_real("layer_norm_epsilon", c.layer_norm_eps);
    c.activation = f.get_string("activation_function", c.activation);
    c.tie_weights = f.get_bool("tie_word_embeddings", c.tie_weights);
    c.bias = f.get_bool("genai_bias", c.bias);
    c.dropout = f.get_real("resid_pdrop", c.dropout);
    c.validate();
    return c;
  }
};

/// The body of GPT (Hugging Face's GPT2Model, nanoGPT's `transformer` dict).
class GPTTransformer : public nn::Module {
 public:
  explicit GPTTransformer(const GPTConfig& c) {
    wte = register_module("wte", std::make_shared<nn::Embedding>(c.vocab_size, c.n_embd));
    wpe = register_module("wpe", std::make_shared<nn::Embedding>(c.block_size, c.n_embd));
    h = register_module("h", std::make_shared<nn::ModuleList<TransformerBlock>>());
    for (int64_t i = 0; i < c.n_layer; ++i)
      h->push_back(std::make_shared<TransformerBlock>(BlockConfig{.n_embd = c.n_embd,
                                                                  .n_head = c.n_head,
                                                                  .n_inner = c.inner(),
                                                                  .bias = c.bias,
                                                                  .dropout = c.dropout,
                                                                  .layer_norm_eps = c.layer_norm_eps,
                                                                  .pre_norm = true,
                                                                  .activation = c.activation}));
    ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(Shape{c.n_embd}, c.layer_norm_eps, true, c.bias));
  }
  std::string type_name() const override { return "GPT2Model"; }

  std::shared_ptr<nn::Embedding> wte, wpe;
  std::shared_ptr<nn::ModuleList<TransformerBlock>> h;
  std::shared_ptr<nn::LayerNorm> ln_f;
};

class GPT : public nn::Module {
 public:
  /// Builds the model and initializes it as GPT-2 (draws from `gen`); init = false
  /// leaves the default module init (for weights about to be loaded).
  explicit GPT(const GPTConfig& c, Generator& gen = default_generator(), bool init = true) : cfg_(c) {
    c.validate();
    apply_activation(zeros({1}), c.activation);  // validates the name early
    transformer = register_module("transformer", std::make_shared<GPTTransformer>(c));
    if (!c.tie_weights) lm_head = register_module("lm_head", std::make_shared<nn::Linear>(c.n_embd, c.vocab_size, false));
    if (init) init_weights(gen);
  }
  std::string type_name() const override { return "GPT"; }
  const GPTConfig& config() const { return cfg_; }

  /// GPT-2 init: N(0, 0.02) weights, zero biases, residual projections N(0, 0.02 / sqrt(2 n_layer)).
  void init_weights(Generator& gen = default_generator()) {
    NoGradGuard ng;
    const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg_.n_layer));
    for (auto& [name, p] : named_parameters()) {
      Tensor t = p;
      const bool is_norm = name.find(".ln_") != std::string::npos || name.rfind("ln_", 0) == 0;
      if (is_norm) {
        nn::init::constant_(t, ends_with(name, ".weight") ? 1.0 : 0.0);
      } else if (ends_with(name, ".bias")) {
        nn::init::zeros_(t);
      } else {
        const bool resid = ends_with(name, "c_proj.weight");
        nn::init::normal_(t, 0.0, resid ? proj_std : 0.02, gen);
      }
    }
  }

  /// The language-model head's weight (V, C): wte's when tied.
  const Tensor& lm_head_weight() const { return lm_head ? lm_head->weight : transformer->wte->weight; }

  /// Final hidden states (B, T, C) (after ln_f) of idx (B, T) int64; positions
  /// start at `pos0` (the number of cached positions when `cache` is given).
  Tensor hidden(const Tensor& idx, std::vector<LayerKV>* cache = nullptr) {
    GENAI_CHECK(idx.defined() && idx.dim() == 2 && idx.dtype() == kInt64, "GPT: expected idx of shape (B, T) int64, got ",
                idx.defined() ? shape_str(idx.shape()) + " " + dtype_name(idx.dtype()) : std::string("undefined"));
    const int64_t T = idx.size(1);
    if (cache && cache->empty()) cache->resize(static_cast<size_t>(cfg_.n_layer));
    GENAI_CHECK(!cache || static_cast<int64_t>(cache->size()) == cfg_.n_layer, "GPT: the cache has ", cache ? cache->size() : 0,
                " layers, the model ", cfg_.n_layer, "; hint: pass an empty std::vector<LayerKV>");
    const int64_t pos0 = cache ? (*cache)[0].length() : 0;
    GENAI_CHECK(T >= 1 && pos0 + T <= cfg_.block_size, "GPT: cannot forward a sequence of length ", pos0 + T,
                ", block size is only ", cfg_.block_size, "; hint: crop the context to the last block_size tokens");
    Tensor pos = arange<int64_t>(pos0, pos0 + T);
    Tensor x = add(transformer->wte->forward(idx), transformer->wpe->forward(pos));  // (B, T, C) + (T, C)
    x = dropout(x, cfg_.dropout, is_training());
    for (size_t i = 0; i < transformer->h->size(); ++i)
      x = (*transformer->h)[i]->forward(x, {.causal = true, .cache = cache ? &(*cache)[i] : nullptr});
    return transformer->ln_f->forward(x);
  }

  /// Logits (B, T, V) of idx (B, T) int64.
  Tensor forward(const Tensor& idx, std::vector<LayerKV>* cache = nullptr) {
    return linear_nd(hidden(idx, cache), lm_head_weight());
  }
  Tensor operator()(const Tensor& idx) { return forward(idx); }

  /// Mean cross-entropy of logits (B, T, V) against targets (B, T) int64; -1 is ignored (nanoGPT).
  static Tensor loss(const Tensor& logits, const Tensor& targets) {
    GENAI_CHECK(logits.dim() == 3 && targets.dim() == 2 && targets.size(0) == logits.size(0) &&
                    targets.size(1) == logits.size(1),
                "GPT::loss: logits ", shape_str(logits.shape()), " and targets ", shape_str(targets.shape()),
                " do not match; expected (B, T, V) and (B, T)");
    return cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(targets, {-1}), Tensor(), -1);
  }

  /// nanoGPT's configure_optimizers: two groups, weight decay on the parameters
  /// with at least 2 dims (matrices and embeddings), none on biases and norms.
  std::vector<optim::ParamGroup> param_groups(double weight_decay) const {
    std::vector<Tensor> decay, no_decay;
    for (auto& [n, p] : named_parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    return {optim::ParamGroup(decay, {{"weight_decay", weight_decay}}),
            optim::ParamGroup(no_decay, {{"weight_decay", 0.0}})};
  }
  std::unique_ptr<optim::AdamW> configure_optimizers(double weight_decay, double lr,
                                                     std::array<double, 2> betas = {0.9, 0.95}, double eps = 1e-8) const {
    return std::make_unique<optim::AdamW>(param_groups(weight_decay),
                                          optim::AdamWOptions{.lr = lr, .betas = betas, .eps = eps,
                                                              .weight_decay = weight_decay});
  }

  /// Parameter count; without the position embedding when non_embedding (as nanoGPT's
  /// get_num_params: the token embedding counts, it is the head's weight).
  int64_t num_params(bool non_embedding = true) const {
    int64_t n = num_parameters();
    if (non_embedding) n -= transformer->wpe->weight.numel();
    return n;
  }

  std::shared_ptr<GPTTransformer> transformer;
  std::shared_ptr<nn::Linear> lm_head;  // only when !tie_weights

 private:
  static bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  }
  GPTConfig cfg_;
};

// ---- Hugging Face GPT-2 layout ----------------------------------------------------------

namespace detail {

inline bool gpt_ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
/// GPT-2's Conv1D weights (stored (in, out)): the 2-d weights inside a block other than LayerNorms.
inline bool gpt_is_conv1d(const std::string& name, const Tensor& t) {
  return name.rfind("transformer.h.", 0) == 0 && gpt_ends_with(name, ".weight") && t.dim() == 2 &&
         name.find(".ln_") == std::string::npos;
}

/// A contiguous copy of the transpose of a 2-d tensor, in 32 x 32 tiles (the
/// generic strided copy is slow on the large Conv1D matrices of GPT-2).
inline Tensor gpt_transpose_2d(const Tensor& t) {
  if (!is_floating(t.dtype())) return contiguous(transpose(t, 0, 1));
  Tensor src = t.contiguous();
  const int64_t R = src.size(0), C = src.size(1);
  Tensor out = empty({C, R}, src.dtype());
  dispatch_float(src.dtype(), "gpt_transpose_2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ps = src.data_ptr<const T>();
    T* po = out.data_ptr<T>();
    parallel_for(0, (R + 31) / 32, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i0 = b0 * 32; i0 < std::min(R, b1 * 32); i0 += 32)
        for (int64_t j0 = 0; j0 < C; j0 += 32)
          for (int64_t i = i0; i < std::min(R, i0 + 32); ++i)
            for (int64_t j = j0; j < std::min(C, j0 + 32); ++j) po[j * R + i] = ps[i * C + j];
    });
  });
  return out;
}

}  // namespace detail

/// A GPT2LMHeadModel / GPT2Model state dict (Hugging Face names, Conv1D (in, out)
/// weights) -> genai GPT names and (out, in) Linear weights, ready for load_state_dict.
inline io::TensorMap gpt2_state_dict_from_hf(const io::TensorMap& hf, const GPTConfig& cfg) {
  io::TensorMap out;
  for (const auto& [name0, t] : hf) {
    std::string name = name0;
    if (name.rfind("transformer.", 0) != 0 && name.rfind("lm_head.", 0) != 0) name = "transformer." + name;
    // the causal-mask buffers of older GPT2Attention versions
    if (detail::gpt_ends_with(name, ".attn.bias") || detail::gpt_ends_with(name, ".attn.masked_bias") ||
        detail::gpt_ends_with(name, ".crossattention.bias") || detail::gpt_ends_with(name, ".crossattention.masked_bias"))
      if (t.dim() != 1) continue;
    if (name == "lm_head.weight" && cfg.tie_weights) continue;  // tied: the token embedding is the head
    out[name] = detail::gpt_is_conv1d(name, t) ? detail::gpt_transpose_2d(t) : t;
  }
  return out;
}

/// genai GPT state dict -> GPT2LMHeadModel names ("transformer." prefix) with Conv1D (in, out) weights.
inline io::TensorMap gpt2_state_dict_to_hf(const io::TensorMap& sd) {
  io::TensorMap out;
  for (const auto& [name, t] : sd) out[name] = detail::gpt_is_conv1d(name, t) ? detail::gpt_transpose_2d(t) : t;
  return out;
}

/// Reads `dir`/config.json (Hugging Face GPT-2 fields) into a GPTConfig.
inline GPTConfig load_gpt2_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  const nlohmann::json j = io::read_json_file(path, "load_gpt2_config",
                                              "a GPT-2 folder holds config.json and model.safetensors (the files of "
                                              "the Hugging Face hub's gpt2 repository)");
  return GPTConfig::from_hf_json(j, "'" + path + "'");
}

/// Loads a GPT-2 checkpoint in the Hugging Face layout: `dir`/config.json and
/// `dir`/model.safetensors (GPT2LMHeadModel or GPT2Model names). The model is in eval mode.
inline std::shared_ptr<GPT> load_gpt2_pretrained(const std::string& dir, Dtype dtype = kFloat32) {
  GPTConfig cfg = load_gpt2_config(dir);
  const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  GENAI_CHECK(std::filesystem::exists(path), "load_gpt2_pretrained: '", path,
              "' not found; hint: download model.safetensors next to config.json (pytorch_model.bin is not read)");
  const double d = static_cast<double>(cfg.n_embd), inner = cfg.n_inner > 0 ? static_cast<double>(cfg.n_inner) : 4 * d;
  detail::check_config_fits_weights("load_gpt2_pretrained", path, static_cast<double>(cfg.vocab_size) * d +
                                    static_cast<double>(cfg.n_layer) * (4 * d * d + 2 * d * inner));
  auto model = std::make_shared<GPT>(cfg, default_generator(), /*init=*/false);
  io::TensorMap sd = gpt2_state_dict_from_hf(io::load_safetensors(path), cfg);
  if (dtype != kFloat32) model->to(dtype);
  try {
    model->load_state_dict(sd);
  } catch (const Error& e) {
    GENAI_FAIL("load_gpt2_pretrained: '", path, "' does not match its config.json: ", e.what());
  }
  model->eval();
  return model;
}

/// Writes `dir`/config.json and `dir`/model.safetensors in the Hugging Face GPT-2
/// layout (GPT2LMHeadModel names, Conv1D weights (in, out), tied head omitted).
/// `extra` fields are merged into config.json.
inline void save_gpt2_pretrained(const GPT& model, const std::string& dir, const nlohmann::json& extra = {}) {
  std::filesystem::create_directories(dir);
  io::write_json_file((std::filesystem::path(dir) / "config.json").string(), model.config().to_hf_json(), extra);
  io::save_safetensors((std::filesystem::path(dir) / "model.safetensors").string(),
                       gpt2_state_dict_to_hf(model.state_dict()), {{"format", "pt"}});
}

}  // namespace models
}  // namespace genai
