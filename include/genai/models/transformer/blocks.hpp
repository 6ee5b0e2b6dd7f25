// genai/models/transformer/blocks.hpp: the Transformer building blocks shared by
// GPT (gpt.hpp), BERT and T5: multi-head self- and cross-attention on the fused
// attention op (ops/attention.hpp), the position-wise MLP, the pre-LN and post-LN
// residual blocks, learned and sinusoidal positions, and helpers for heads.
//
// References: Vaswani et al., "Attention is all you need", 2017 (post-LN blocks,
// sinusoidal positions); Radford et al., GPT-2, 2019 and Karpathy's nanoGPT
// model.py (pre-LN blocks, fused qkv projection, the parameter names).
//
//   models::TransformerBlock blk({.n_embd = 128, .n_head = 4});        // GPT-2 block
//   Tensor y = blk.forward(x, {.causal = true});                        // x (B, T, C)
//
// Parameter names are GPT-2's (Hugging Face GPT2Block / nanoGPT Block): ln_1,
// attn.c_attn (fused q, k, v: C -> 3C), attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj;
// with cross-attention ln_cross_attn and crossattention.{q_attn, c_attn (C -> 2C),
// c_proj}. With `fused = false` the projections are separate Linear modules whose
// names are given by AttentionConfig::names (T5's q, k, v, o by default), and the
// MLP's by MLPConfig::names; models with other nestings (BERT) assemble the
// functions split_heads / merge_heads / attention_core themselves.
//
// Every Linear here is applied to (B*T, C) rows (linear_nd), one GEMM per call
// instead of one per batch element.
//
// KV cache (module path): MultiheadAttention::forward takes an optional LayerKV,
// the keys and values (B, H, S, D) of the positions seen so far; new keys and
// values are appended (self-attention) or computed once (cross-attention). GPT's
// fast decoding uses its own float kernels (kv_cache.hpp); this path serves any
// dtype and any model built from these blocks (T5's decoder).
//
// Differences from PyTorch / Hugging Face: the attention dropout is genai's
// counter-based mask (ops/attention.hpp), not torch's stream; one dropout rate
// per block (GPT-2 has separate embd / attn / resid rates).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "genai/nn/init.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"
#include "genai/ops/attention.hpp"
#include "genai/ops/embedding.hpp"
#include "genai/ops/norm.hpp"

namespace genai {
namespace models {

// ---- head helpers ----------------------------------------------------------------------

/// y = x W^T + b for x (..., in): the leading dims are flattened so that one
/// GEMM (rows x in) x (in x out) does the work; returns (..., out).
inline Tensor linear_nd(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor()) {
  if (x.dim() <= 2) return linear(x, weight, bias);
  Shape os = x.shape();
  os.back() = weight.size(0);
  return reshape(linear(reshape(x, {-1, x.size(-1)}), weight, bias), os);
}

/// (B, T, H*D) -> (B, H, T, D), a view.
inline Tensor split_heads(const Tensor& x, int64_t n_head) {
  GENAI_CHECK(x.dim() == 3 && n_head > 0 && x.size(2) % n_head == 0, "split_heads: expected (B, T, C) with C divisible by n_head = ",
              n_head, ", got ", shape_str(x.shape()));
  return transpose(reshape(x, {x.size(0), x.size(1), n_head, x.size(2) / n_head}), 1, 2);
}

/// (B, H, T, D) -> (B, T, H*D) (contiguous).
inline Tensor merge_heads(const Tensor& x) {
  GENAI_CHECK(x.dim() == 4, "merge_heads: expected (B, H, T, D), got ", shape_str(x.shape()));
  return reshape(contiguous(transpose(x, 1, 2)), {x.size(0), x.size(2), x.size(1) * x.size(3)});
}

/// A bool mask (T, S), true = attend, for T queries at positions S - T ... S - 1
/// over S keys (causal attention after S - T cached positions: j <= i + S - T).
inline Tensor causal_mask(int64_t T, int64_t S) {
  Tensor m = empty({T, S}, kBool);
  bool* p = m.data_ptr<bool>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < S; ++j) p[i * S + j] = j <= i + S - T;
  return m;
}

// ---- positions -------------------------------------------------------------------------

/// Vaswani et al.'s sinusoidal encodings (n_pos, dim):
/// PE[p, 2i] = sin(p / 10000^(2i / dim)), PE[p, 2i + 1] = cos(p / 10000^(2i / dim)).
inline Tensor sinusoidal_positions(int64_t n_pos, int64_t dim, Dtype dtype = kFloat32, double base = 10000.0) {
  GENAI_CHECK(n_pos >= 0 && dim > 0, "sinusoidal_positions: expected n_pos >= 0 and dim > 0, got ", n_pos, ", ", dim);
  Tensor pe = empty({n_pos, dim}, kFloat64);
  double* p = pe.data_ptr<double>();
  for (int64_t t = 0; t < n_pos; ++t)
    for (int64_t i = 0; i < dim; i += 2) {
      const double a = static_cast<double>(t) / std::pow(base, static_cast<double>(i) / static_cast<double>(dim));
      p[t * dim + i] = std::sin(a);
      if (i + 1 < dim) p[t * dim + i + 1] = std::cos(a);
    }
  return pe.to(dtype);
}

// ---- attention -------------------------------------------------------------------------

/// Keys and values (B, H, S, D) of one attention layer, for incremental decoding.
struct LayerKV {
  Tensor k, v;
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  void reset() { k = v = Tensor(); }
};

struct AttentionConfig {
  int64_t n_embd = 0;                 // model width C (queries and output)
  int64_t n_head = 1;                 // H
  int64_t head_dim = 0;               // D; 0: n_embd / n_head (T5 sets it independently)
  int64_t kv_dim = 0;                 // width of the cross-attention context; 0: n_embd
  bool bias = true;                   // biases on the projections
  bool fused = true;                  // GPT-2 names (c_attn, q_attn, c_proj); false: separate `names`
  bool cross = false;                 // keys and values from a second sequence
  double dropout = 0.0;               // on the attention probabilities and the output (training only)
  std::optional<double> scale = {};   // score scale; default 1 / sqrt(D) (T5: 1)
  std::array<std::string, 4> names = {"q", "k", "v", "o"};  // separate projections' names
};

/// How one attention call masks: causal, and/or an explicit mask broadcast to
/// (B, H, T, S) (bool: true = attend; float: added to the scores, e.g. a bias).
struct AttentionMask {
  bool causal = false;
  Tensor mask = {};
};

/// Multi-head attention (self or cross) on scaled_dot_product_attention.
class MultiheadAttention : public nn::Module {
 public:
  explicit MultiheadAttention(const AttentionConfig& c) : cfg_(c) {
    GENAI_CHECK(c.n_embd > 0 && c.n_head > 0, "MultiheadAttention: n_embd and n_head must be positive, got ", c.n_embd,
                ", ", c.n_head);
    if (cfg_.head_dim == 0) {
      GENAI_CHECK(c.n_embd % c.n_head == 0, "MultiheadAttention: n_embd (", c.n_embd, ") must be divisible by n_head (",
                  c.n_head, "); hint: choose n_embd = n_head * head_dim");
      cfg_.head_dim = c.n_embd / c.n_head;
    }
    if (cfg_.kv_dim == 0) cfg_.kv_dim = c.n_embd;
    const int64_t inner = cfg_.n_head * cfg_.head_dim;
    GENAI_CHECK(!c.fused || (inner == c.n_embd && (!c.cross || cfg_.kv_dim == c.n_embd)),
                "MultiheadAttention: the fused (GPT-2) projections need n_head * head_dim == n_embd (== kv_dim "
                "for cross-attention); hint: use fused = false");
    if (c.fused) {
      if (c.cross) {
        q_attn = register_module("q_attn", std::make_shared<nn::Linear>(c.n_embd, inner, c.bias));
        c_attn = register_module("c_attn", std::make_shared<nn::Linear>(c.n_embd, 2 * inner, c.bias));
      } else {
        c_attn = register_module("c_attn", std::make_shared<nn::Linear>(c.n_embd, 3 * inner, c.bias));
      }
      c_proj = register_module("c_proj", std::make_shared<nn::Linear>(inner, c.n_embd, c.bias));
    } else {
      q = register_module(c.names[0], std::make_shared<nn::Linear>(c.n_embd, inner, c.bias));
      k = register_module(c.names[1], std::make_shared<nn::Linear>(cfg_.kv_dim, inner, c.bias));
      v = register_module(c.names[2], std::make_shared<nn::Linear>(cfg_.kv_dim, inner, c.bias));
      c_proj = register_module(c.names[3], std::make_shared<nn::Linear>(inner, c.n_embd, c.bias));
    }
  }
  std::string type_name() const override { return "MultiheadAttention"; }
  const AttentionConfig& config() const { return cfg_; }

  /// x (B, T, C) -> (B, T, C). `context` (B, S, kv_dim) for cross-attention.
  /// With `cache`, keys/values of earlier positions are reused and the new ones
  /// appended (self) or computed once (cross); a causal mask then aligns the T
  /// queries with the last T of the S keys.
  Tensor forward(const Tensor& x, const AttentionMask& m = {}, const Tensor& context = Tensor(),
                 LayerKV* cache = nullptr) {
    GENAI_CHECK(x.defined() && x.dim() == 3 && x.size(2) == cfg_.n_embd, "MultiheadAttention: expected x of shape (B, T, ",
                cfg_.n_embd, "), got ", x.defined() ? shape_str(x.shape()) : std::string("undefined"));
    GENAI_CHECK(cfg_.cross == context.defined() || (cfg_.cross && cache && cache->k.defined()),
                "MultiheadAttention: ", cfg_.cross ? "cross-attention needs a context (B, S, kv_dim)"
                                                   : "self-attention takes no context");
    const int64_t H = cfg_.n_head, inner = H * cfg_.head_dim;
    Tensor qh, kh, vh;  // (B, H, T, D), (B, H, S, D)
    const bool reuse_cross = cfg_.cross && cache && cache->k.defined();
    if (cfg_.fused) {
      if (cfg_.cross) {
        qh = split_heads(linear_nd(x, q_attn->weight, q_attn->bias), H);
        if (!reuse_cross) {
          Tensor kv = linear_nd(context, c_attn->weight, c_attn->bias);  // (B, S, 2C)
          kh = split_heads(narrow(kv, 2, 0, inner), H);
          vh = split_heads(narrow(kv, 2, inner, inner), H);
        }
      } else {
        Tensor qkv = linear_nd(x, c_attn->weight, c_attn->bias);  // (B, T, 3C)
        qh = split_heads(narrow(qkv, 2, 0, inner), H);
        kh = split_heads(narrow(qkv, 2, inner, inner), H);
        vh = split_heads(narrow(qkv, 2, 2 * inner, inner), H);
      }
    } else {
      qh = split_heads(linear_nd(x, q->weight, q->bias), H);
      if (!reuse_cross) {
        const Tensor& src = cfg_.cross ? context : x;
        kh = split_heads(linear_nd(src, k->weight, k->bias), H);
        vh = split_heads(linear_nd(src, v->weight, v->bias), H);
      }
    }
    bool causal = m.causal;
    Tensor mask = m.mask;
    if (cache) {
      if (reuse_cross) {
        kh = cache->k;
        vh = cache->v;
      } else if (cfg_.cross || !cache->k.defined()) {
        cache->k = kh.detach();
        cache->v = vh.detach();
      } else {
        kh = cat({cache->k, kh}, 2);
        vh = cat({cache->v, vh}, 2);
        cache->k = kh.detach();
        cache->v = vh.detach();
      }
      const int64_t T = qh.size(2), S = kh.size(2);
      if (causal && S != T) {  // queries are the last T positions: top-left alignment no longer holds
        causal = false;
        Tensor cm = causal_mask(T, S);
        mask = mask.defined() ? (mask.dtype() == kBool ? logical_and(mask, cm) : where(cm, mask, -INFINITY)) : cm;
      }
    }
    const double p = is_training() ? cfg_.dropout : 0.0;
    // contiguous operands: the attention op keeps them for backward, which would otherwise copy them again
    qh = contiguous(qh);
    kh = contiguous(kh);
    vh = contiguous(vh);
    Tensor y = scaled_dot_product_attention(qh, kh, vh, mask, p, causal, cfg_.scale);  // (B, H, T, D)
    y = linear_nd(merge_heads(y), c_proj->weight, c_proj->bias);
    return dropout(y, p, is_training());
  }

  std::shared_ptr<nn::Linear> c_attn, q_attn, c_proj;  // fused (GPT-2) projections
  std::shared_ptr<nn::Linear> q, k, v;                 // separate projections (c_proj is the output one)

 private:
  AttentionConfig cfg_;
};

// ---- MLP -------------------------------------------------------------------------------

struct MLPConfig {
  int64_t n_embd = 0;
  int64_t n_inner = 0;                // 0: 4 n_embd
  bool bias = true;
  std::string activation = "gelu";    // "gelu" (erf), "gelu_new"/"gelu_tanh" (GPT-2), "relu", "silu"
  double dropout = 0.0;
  std::array<std::string, 2> names = {"c_fc", "c_proj"};
};

/// Applies the activation named as Hugging Face's ACT2FN does.
inline Tensor apply_activation(const Tensor& x, const std::string& name) {
  if (name == "gelu") return gelu(x);
  if (name == "gelu_new" || name == "gelu_tanh" || name == "gelu_pytorch_tanh") return gelu(x, "tanh");
  if (name == "relu") return relu(x);
  if (name == "silu" || name == "swish") return silu(x);
  GENAI_FAIL("activation: unknown activation '", name, "'; expected gelu, gelu_new, relu or silu");
}

/// fc -> activation -> proj -> dropout.
class MLP : public nn::Module {
 public:
  explicit MLP(const MLPConfig& c) : cfg_(c) {
    if (cfg_.n_inner == 0) cfg_.n_inner = 4 * c.n_embd;
    apply_activation(zeros({1}), cfg_.activation);  // validates the name
    c_fc = register_module(c.names[0], std::make_shared<nn::Linear>(c.n_embd, cfg_.n_inner, c.bias));
    c_proj = register_module(c.names[1], std::make_shared<nn::Linear>(cfg_.n_inner, c.n_embd, c.bias));
  }
  std::string type_name() const override { return "MLP"; }
  /// (..., C) -> (..., C)
  Tensor forward(const Tensor& x) {
    Tensor h = apply_activation(linear_nd(x, c_fc->weight, c_fc->bias), cfg_.activation);
    return dropout(linear_nd(h, c_proj->weight, c_proj->bias), cfg_.dropout, is_training());
  }
  const MLPConfig& config() const { return cfg_; }

  std::shared_ptr<nn::Linear> c_fc, c_proj;

 private:
  MLPConfig cfg_;
};

// ---- residual block --------------------------------------------------------------------

struct BlockConfig {
  int64_t n_embd = 0;
  int64_t n_head = 1;
  int64_t n_inner = 0;                // MLP width; 0: 4 n_embd
  bool bias = true;                   // biases on Linear and LayerNorm
  double dropout = 0.0;
  double layer_norm_eps = 1e-5;
  bool pre_norm = true;               // GPT-2: x + f(ln(x)); false (BERT): ln(x + f(x))
  std::string activation = "gelu";
  bool cross_attention = false;       // adds ln_cross_attn + crossattention (decoder of an encoder-decoder)
};

/// Arguments of one block call beyond x.
struct BlockInputs {
  bool causal = false;                // causal self-attention
  Tensor mask = {};                   // self-attention mask (broadcast to (B, H, T, T))
  Tensor context = {};                // (B, S, C) encoder output for cross-attention
  Tensor context_mask = {};           // cross-attention mask (broadcast to (B, H, T, S))
  LayerKV* cache = nullptr;           // self-attention keys/values
  LayerKV* cross_cache = nullptr;     // cross-attention keys/values
};

/// A Transformer block, GPT-2 names: ln_1, attn, [ln_cross_attn, crossattention], ln_2, mlp.
class TransformerBlock : public nn::Module {
 public:
  explicit TransformerBlock(const BlockConfig& c) : cfg_(c) {
    ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(Shape{c.n_embd}, c.layer_norm_eps, true, c.bias));
    attn = register_module("attn", std::make_shared<MultiheadAttention>(
                                       AttentionConfig{.n_embd = c.n_embd, .n_head = c.n_head, .bias = c.bias,
                                                       .dropout = c.dropout}));
    if (c.cross_attention) {
      ln_cross_attn = register_module(
          "ln_cross_attn", std::make_shared<nn::LayerNorm>(Shape{c.n_embd}, c.layer_norm_eps, true, c.bias));
      crossattention = register_module(
          "crossattention", std::make_shared<MultiheadAttention>(AttentionConfig{
                                .n_embd = c.n_embd, .n_head = c.n_head, .bias = c.bias, .cross = true, .dropout = c.dropout}));
    }
    ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(Shape{c.n_embd}, c.layer_norm_eps, true, c.bias));
    mlp = register_module("mlp", std::make_shared<MLP>(MLPConfig{.n_embd = c.n_embd, .n_inner = c.n_inner, .bias = c.bias,
                                                                 .activation = c.activation, .dropout = c.dropout}));
  }
  std::string type_name() const override { return "TransformerBlock"; }
  const BlockConfig& config() const { return cfg_; }

  /// x (B, T, C) -> (B, T, C).
  Tensor forward(const Tensor& x, const BlockInputs& in = {}) {
    auto self_attn = [&](const Tensor& h) { return attn->forward(h, {in.causal, in.mask}, Tensor(), in.cache); };
    auto cross_attn = [&](const Tensor& h) {
      return crossattention->forward(h, {false, in.context_mask}, in.context, in.cross_cache);
    };
    Tensor h = x;
    if (cfg_.pre_norm) {
      h = add(h, self_attn(ln_1->forward(h)));
      if (crossattention) h = add(h, cross_attn(ln_cross_attn->forward(h)));
      return add(h, mlp->forward(ln_2->forward(h)));
    }
    h = ln_1->forward(add(h, self_attn(h)));
    if (crossattention) h = ln_cross_attn->forward(add(h, cross_attn(h)));
    return ln_2->forward(add(h, mlp->forward(h)));
  }

  std::shared_ptr<nn::LayerNorm> ln_1, ln_cross_attn, ln_2;
  std::shared_ptr<MultiheadAttention> attn, crossattention;
  std::shared_ptr<MLP> mlp;

 private:
  BlockConfig cfg_;
};

}  // namespace models
}  // namespace genai
