// genai/models/transformer/kv_cache.hpp: fast incremental decoding for GPT: a
// key/value cache and GPTDecoder, a forward pass without autograd that appends
// new tokens to the cache and returns the next-token logits.
//
//   models::GPTDecoder dec(gpt);                          // shares gpt's weights (or bf16 copies)
//   models::KVCache cache = dec.new_cache(2);             // two sequences
//   Tensor logits = dec.forward({{15496, 11}, {40}}, cache);  // prefill: (2, V), last position of each
//   logits = dec.forward({{995}, {1101}}, cache);         // one more token each
//
// The cache holds, per layer, keys and values (B, H, max_len, D) and, per
// sequence, how many positions are filled; every sequence advances on its own,
// so prompts of different lengths need no padding and no mask: a forward call
// takes any number of new tokens per sequence (0 to skip it). The new tokens of
// all sequences are stacked into one (N, C) matrix, so every projection is one
// matrix product whatever the batch; attention runs per (sequence, head) over that
// sequence's cached keys, causal within the new tokens.
//
// Kernels (float32 and float64; no autograd, no graph): projections are y = x W^T + b
// with W read in place in the nn.Linear layout (out, in): for up to 8 rows, a
// matrix-vector kernel that streams each weight row once (decoding is bound by
// memory bandwidth: GPT-2 small reads ~500 MB of float32 weights per token), AVX2
// FMA when compiled for it; for more rows (prefill), kernels::gemm. Attention of one
// query is two loops over the cached keys; of several queries (prefill) it is
// scaled_dot_product_attention (ops/attention.hpp) with a causal mask offset by
// the cached length. LayerNorm, GELU and the embeddings are plain loops.
//
// bf16 (optional, float32 models only): GPTDecoder(model, {.bf16 = true}) keeps
// bfloat16 copies (round to nearest even) of the 2-d weights (the projections, and
// wte for the head) and multiplies them with float32 activations (bf16 widened to
// float32 in registers, float32 accumulation): half the bytes per token. Biases,
// LayerNorms and the cache stay float32.
//
// The decoder reads the model's parameter tensors at every call (it holds
// handles, not copies), so it sees the weights a training step has just updated;
// bf16 copies are taken at construction (call refresh_bf16() after training).
// Differences from Hugging Face's past_key_values: one preallocated cache of
// max_len positions per sequence instead of concatenated tensors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "genai/kernels/elementwise.hpp"
#include "genai/kernels/gemm.hpp"
#include "genai/models/transformer/gpt.hpp"
#include "genai/ops/attention.hpp"

namespace genai {
namespace models {

/// Keys and values of every layer for B sequences of up to max_len positions.
struct KVCache {
  int64_t batch = 0, n_layer = 0, n_head = 0, head_dim = 0, max_len = 0;
  Dtype dtype = kFloat32;
  std::vector<Tensor> k, v;   // per layer (B, H, max_len, D)
  std::vector<int64_t> len;   // per sequence: positions filled

  KVCache() = default;
  KVCache(int64_t batch, int64_t n_layer, int64_t n_head, int64_t head_dim, int64_t max_len, Dtype dtype)
      : batch(batch), n_layer(n_layer), n_head(n_head), head_dim(head_dim), max_len(max_len), dtype(dtype) {
    GENAI_CHECK(batch >= 1 && max_len >= 1, "KVCache: batch and max_len must be positive, got ", batch, ", ", max_len);
    for (int64_t l = 0; l < n_layer; ++l) {
      k.push_back(empty({batch, n_head, max_len, head_dim}, dtype));
      v.push_back(empty({batch, n_head, max_len, head_dim}, dtype));
    }
    len.assign(static_cast<size_t>(batch), 0);
  }
  /// Forgets every sequence (the memory is kept).
  void reset() { std::fill(len.begin(), len.end(), 0); }
  /// Forgets sequence b.
  void reset(int64_t b) {
    GENAI_CHECK(b >= 0 && b < batch, "KVCache::reset: sequence ", b, " out of range for batch ", batch);
    len[static_cast<size_t>(b)] = 0;
  }
  int64_t length(int64_t b) const { return len.at(static_cast<size_t>(b)); }
  /// Bytes held by the keys and values.
  int64_t nbytes() const {
    return 2 * n_layer * batch * n_head * max_len * head_dim * static_cast<int64_t>(dtype_size(dtype));
  }
};

// ---- raw kernels -------------------------------------------------------------------------

namespace infer {

/// float32 -> bfloat16, round to nearest even (NaN stays NaN).
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#if defined(__AVX2__) && defined(__FMA__)
inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline __m256 load_bf16x8(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
#endif

/// y[j] = dot(x, W row n0 + j) for j < cnt (cnt <= 4): four weight rows streamed together.
inline void dot_rows(const float* x, const float* w, int64_t K, int64_t cnt, float* y) {
#if defined(__AVX2__) && defined(__FMA__)
  if (cnt == 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const float *w0 = w, *w1 = w + K, *w2 = w + 2 * K, *w3 = w + 3 * K;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w0 + k), a0);
      a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w1 + k), a1);
      a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w2 + k), a2);
      a3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w3 + k), a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (; k < K; ++k) {
      s0 += x[k] * w0[k];
      s1 += x[k] * w1[k];
      s2 += x[k] * w2[k];
      s3 += x[k] * w3[k];
    }
    y[0] = s0, y[1] = s1, y[2] = s2, y[3] = s3;
    return;
  }
  for (int64_t j = 0; j < cnt; ++j) {
    const float* wr = w + j * K;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(wr + k), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8), _mm256_loadu_ps(wr + k + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; k < K; ++k) s += x[k] * wr[k];
    y[j] = s;
  }
#else
  for (int64_t j = 0; j < cnt; ++j) {
    const float* wr = w + j * K;
    float s[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= K; k += 4)
      for (int u = 0; u < 4; ++u) s[u] += x[k + u] * wr[k + u];
    for (; k < K; ++k) s[0] += x[k] * wr[k];
    y[j] = (s[0] + s[1]) + (s[2] + s[3]);
  }
#endif
}
inline void dot_rows(const double* x, const double* w, int64_t K, int64_t cnt, double* y) {
  for (int64_t j = 0; j < cnt; ++j) {
    const double* wr = w + j * K;
    double s = 0;
    for (int64_t k = 0; k < K; ++k) s += x[k] * wr[k];
    y[j] = s;
  }
}
/// bf16 weights, float32 activations and accumulation.
inline void dot_rows(const float* x, const uint16_t* w, int64_t K, int64_t cnt, float* y) {
#if defined(__AVX2__) && defined(__FMA__)
  if (cnt == 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const uint16_t *w0 = w, *w1 = w + K, *w2 = w + 2 * K, *w3 = w + 3 * K;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(xv, load_bf16x8(w0 + k), a0);
      a1 = _mm256_fmadd_ps(xv, load_bf16x8(w1 + k), a1);
      a2 = _mm256_fmadd_ps(xv, load_bf16x8(w2 + k), a2);
      a3 = _mm256_fmadd_ps(xv, load_bf16x8(w3 + k), a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (; k < K; ++k) {
      s0 += x[k] * bf16_to_float(w0[k]);
      s1 += x[k] * bf16_to_float(w1[k]);
      s2 += x[k] * bf16_to_float(w2[k]);
      s3 += x[k] * bf16_to_float(w3[k]);
    }
    y[0] = s0, y[1] = s1, y[2] = s2, y[3] = s3;
    return;
  }
#endif
  for (int64_t j = 0; j < cnt; ++j) {
    const uint16_t* wr = w + j * K;
    float s = 0;
    for (int64_t k = 0; k < K; ++k) s += x[k] * bf16_to_float(wr[k]);
    y[j] = s;
  }
}

/// y (M, N) = x (M, K) W^T (+ b), W (N, K) row-major; Wt is T or uint16_t (bf16).
/// M <= 8: each weight row is streamed once and dotted with every x row (memory
/// bound); larger M: kernels::gemm (W^T read through strides), T = Wt only.
template <class T, class Wt>
inline void linear(const T* x, int64_t M, int64_t K, const Wt* W, const T* b, int64_t N, T* y) {
  if (M <= 0 || N <= 0) return;
  if constexpr (std::is_same_v<T, Wt>) {
    if (M > 8) {
      kernels::gemm<T>(M, N, K, x, K, 1, W, 1, K, y, N);
      if (b)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) y[m * N + n] += b[n];
      return;
    }
  }
  // rows of W in chunks of 4, parallel over chunks; for M > 8 (bf16) in blocks of 8 rows of x
  const int64_t nq = (N + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(K, 1));  // ~16K MACs per task at least
  for (int64_t m0 = 0; m0 < M; m0 += 8) {
    const int64_t mb = std::min<int64_t>(8, M - m0);
    parallel_for(0, nq, grain, [&](int64_t q0, int64_t q1) {
      T tmp[4];
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t n = q * 4, cnt = std::min<int64_t>(4, N - n);
        for (int64_t m = m0; m < m0 + mb; ++m) {
          dot_rows(x + m * K, W + n * K, K, cnt, tmp);
          for (int64_t j = 0; j < cnt; ++j) y[m * N + n + j] = tmp[j] + (b ? b[n + j] : T(0));
        }
      }
    });
  }
}

/// y = LayerNorm(x) over rows of C (two-pass statistics in double).
template <class T>
inline void layer_norm(const T* x, int64_t M, int64_t C, const T* w, const T* b, double eps, T* y) {
  for (int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * C;
    T* yr = y + m * C;
    double mean = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mean += static_cast<double>(xr[c]);
    mean /= static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c) {
      const double d = static_cast<double>(xr[c]) - mean;
      var += d * d;
    }
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(C) + eps);
    for (int64_t c = 0; c < C; ++c) {
      const T v = static_cast<T>((static_cast<double>(xr[c]) - mean) * rstd);
      yr[c] = w ? (b ? v * w[c] + b[c] : v * w[c]) : (b ? v + b[c] : v);
    }
  }
}

/// The activation in place (gelu / gelu_new / relu / silu).
template <class T>
inline void activation(T* x, int64_t n, kernels::UnaryOp op) {
  parallel_for(0, n, kernels::kGrain, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<T, float>)
      kernels::detail::unary_f32(op, x + b, x + b, e - b, 0.f, 0.f);
    else
      for (int64_t i = b; i < e; ++i) x[i] = kernels::detail::unary_scalar<double>(op, x[i], 0.0, 0.0);
  });
}

inline kernels::UnaryOp activation_op(const std::string& name) {
  if (name == "gelu") return kernels::UnaryOp::GeluErf;
  if (name == "gelu_new" || name == "gelu_tanh" || name == "gelu_pytorch_tanh") return kernels::UnaryOp::GeluTanh;
  if (name == "relu") return kernels::UnaryOp::Relu;
  if (name == "silu" || name == "swish") return kernels::UnaryOp::Silu;
  GENAI_FAIL("GPTDecoder: unknown activation '", name, "'");
}

}  // namespace infer

// ---- the decoder ---------------------------------------------------------------------------

struct GPTDecoderOptions {
  bool bf16 = false;  // bfloat16 copies of the 2-d weights (float32 models only)
};

class GPTDecoder {
 public:
  explicit GPTDecoder(const GPT& model, GPTDecoderOptions opt = {}) : model_(&model), opt_(opt) {
    const Dtype dt = model.transformer->wte->weight.dtype();
    GENAI_CHECK(!opt.bf16 || dt == kFloat32, "GPTDecoder: bf16 weights need a float32 model, got ", dtype_name(dt));
    act_ = infer::activation_op(model.config().activation);
    if (opt.bf16) refresh_bf16();
  }

  const GPTConfig& config() const { return model_->config(); }
  Dtype dtype() const { return model_->transformer->wte->weight.dtype(); }

  /// A cache for `batch` sequences of up to max_len positions (default block_size).
  KVCache new_cache(int64_t batch, int64_t max_len = 0) const {
    const GPTConfig& c = config();
    if (max_len <= 0) max_len = c.block_size;
    GENAI_CHECK(max_len <= c.block_size, "GPTDecoder::new_cache: max_len ", max_len, " exceeds block_size ",
                c.block_size);
    return KVCache(batch, c.n_layer, c.n_head, c.head_dim(), max_len, dtype());
  }

  /// Re-takes the bf16 copies of the weights (after they changed).
  void refresh_bf16() {
    const GPT& m = *model_;
    bf16_.clear();
    auto conv = [&](const Tensor& w) {
      Tensor c = w.contiguous();
      const float* p = c.data_ptr<const float>();
      std::vector<uint16_t> out(static_cast<size_t>(c.numel()));
      parallel_for(0, c.numel(), 1 << 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = infer::float_to_bf16(p[i]);
      });
      bf16_.push_back(std::move(out));
    };
    for (size_t l = 0; l < m.transformer->h->size(); ++l) {
      const TransformerBlock& blk = *(*m.transformer->h)[l];
      conv(blk.attn->c_attn->weight);
      conv(blk.attn->c_proj->weight);
      conv(blk.mlp->c_fc->weight);
      conv(blk.mlp->c_proj->weight);
    }
    conv(m.lm_head_weight());
  }

  /// Appends tokens[b] (may be empty) to sequence b of `cache` and returns the
  /// logits (B, V) after the last new token of every sequence (zero rows for
  /// sequences without new tokens). Throws when a sequence would exceed max_len.
  Tensor forward(const std::vector<std::vector<int64_t>>& tokens, KVCache& cache) const {
    const GPTConfig& c = config();
    GENAI_CHECK(static_cast<int64_t>(tokens.size()) == cache.batch, "GPTDecoder::forward: ", tokens.size(),
                " token lists for a cache of ", cache.batch, " sequences");
    GENAI_CHECK(cache.n_layer == c.n_layer && cache.n_head == c.n_head && cache.head_dim == c.head_dim() &&
                    cache.dtype == dtype(),
                "GPTDecoder::forward: the cache was not made for this model (use new_cache)");
    for (size_t b = 0; b < tokens.size(); ++b) {
      GENAI_CHECK(cache.len[b] + static_cast<int64_t>(tokens[b].size()) <= cache.max_len, "GPTDecoder::forward: sequence ",
                  b, " would reach ", cache.len[b] + static_cast<int64_t>(tokens[b].size()),
                  " positions, more than the cache's ", cache.max_len,
                  "; hint: crop the context (generate() re-fills the cache with the last block_size tokens)");
      for (int64_t t : tokens[b])
        GENAI_CHECK(t >= 0 && t < c.vocab_size, "GPTDecoder::forward: token ", t, " of sequence ", b,
                    " is outside the vocabulary [0, ", c.vocab_size, ")");
    }
    NoGradGuard ng;
    Tensor out;
    dispatch_float(dtype(), "GPTDecoder::forward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      out = run<T>(tokens, cache);
    });
    return out;
  }

 private:
  template <class T>
  static const T* ptr(const Tensor& t) {
    if (!t.defined()) return nullptr;
    GENAI_CHECK(t.is_contiguous(), "GPTDecoder: a weight is not contiguous");
    return t.data_ptr<const T>();
  }

  /// y (M, N) = x (M, K) W^T + b with the float weights or their bf16 copy `wi`.
  template <class T>
  void proj(const T* x, int64_t M, int64_t K, const nn::Linear& lin, size_t wi, T* y) const {
    const T* b = lin.bias.defined() ? ptr<T>(lin.bias) : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.bf16) {
        infer::linear<float, uint16_t>(x, M, K, bf16_[wi].data(), b, lin.weight.size(0), y);
        return;
      }
    }
    infer::linear<T, T>(x, M, K, ptr<T>(lin.weight), b, lin.weight.size(0), y);
  }

  template <class T>
  Tensor run(const std::vector<std::vector<int64_t>>& tokens, KVCache& cache) const {
    const GPT& m = *model_;
    const GPTConfig& c = m.config();
    const int64_t C = c.n_embd, H = c.n_head, D = c.head_dim(), L = cache.max_len, B = cache.batch;
    // rows: the new tokens of every sequence, stacked
    std::vector<int64_t> row_seq, row_pos, first(static_cast<size_t>(B), -1), count(static_cast<size_t>(B), 0);
    for (int64_t b = 0; b < B; ++b) {
      const auto& tk = tokens[static_cast<size_t>(b)];
      if (!tk.empty()) first[static_cast<size_t>(b)] = static_cast<int64_t>(row_seq.size());
      count[static_cast<size_t>(b)] = static_cast<int64_t>(tk.size());
      for (size_t i = 0; i < tk.size(); ++i) {
        row_seq.push_back(b);
        row_pos.push_back(cache.len[static_cast<size_t>(b)] + static_cast<int64_t>(i));
      }
    }
    const int64_t N = static_cast<int64_t>(row_seq.size());
    Tensor logits = zeros({B, c.vocab_size}, dtype());
    if (N == 0) return logits;
    const int64_t F = c.inner();
    std::vector<T> x(static_cast<size_t>(N * C)), h(static_cast<size_t>(N * C)), att(static_cast<size_t>(N * C)),
        qkv(static_cast<size_t>(N * 3 * C)), f(static_cast<size_t>(N * F)), y(static_cast<size_t>(N * C));
    // x = wte[token] + wpe[pos]
    const T* wte = ptr<T>(m.transformer->wte->weight);
    const T* wpe = ptr<T>(m.transformer->wpe->weight);
    {
      int64_t r = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t : tokens[static_cast<size_t>(b)]) {
          for (int64_t i = 0; i < C; ++i) x[r * C + i] = wte[t * C + i] + wpe[row_pos[r] * C + i];
          ++r;
        }
    }
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const TransformerBlock& blk = *(*m.transformer->h)[static_cast<size_t>(l)];
      // h = ln_1(x); qkv = c_attn(h)
      infer::layer_norm<T>(x.data(), N, C, ptr<T>(blk.ln_1->weight), ptr<T>(blk.ln_1->bias), c.layer_norm_eps, h.data());
      proj<T>(h.data(), N, C, *blk.attn->c_attn, static_cast<size_t>(4 * l), qkv.data());
      // append k, v to the cache: (B, H, L, D)
      T* kc = cache.k[static_cast<size_t>(l)].template data_ptr<T>();
      T* vc = cache.v[static_cast<size_t>(l)].template data_ptr<T>();
      for (int64_t r = 0; r < N; ++r)
        for (int64_t hh = 0; hh < H; ++hh) {
          const int64_t off = ((row_seq[r] * H + hh) * L + row_pos[r]) * D;
          std::memcpy(kc + off, &qkv[static_cast<size_t>(r * 3 * C + C + hh * D)], sizeof(T) * static_cast<size_t>(D));
          std::memcpy(vc + off, &qkv[static_cast<size_t>(r * 3 * C + 2 * C + hh * D)], sizeof(T) * static_cast<size_t>(D));
        }
      // attention per (sequence, head)
      attention<T>(qkv.data(), kc, vc, row_pos, first, count, B, H, D, L, C, scale, cache, l, att.data());
      // x = x + c_proj(att)
      proj<T>(att.data(), N, C, *blk.attn->c_proj, static_cast<size_t>(4 * l + 1), y.data());
      for (int64_t i = 0; i < N * C; ++i) x[i] += y[i];
      // x = x + mlp(ln_2(x))
      infer::layer_norm<T>(x.data(), N, C, ptr<T>(blk.ln_2->weight), ptr<T>(blk.ln_2->bias), c.layer_norm_eps, h.data());
      proj<T>(h.data(), N, C, *blk.mlp->c_fc, static_cast<size_t>(4 * l + 2), f.data());
      infer::activation<T>(f.data(), N * F, act_);
      proj<T>(f.data(), N, F, *blk.mlp->c_proj, static_cast<size_t>(4 * l + 3), y.data());
      for (int64_t i = 0; i < N * C; ++i) x[i] += y[i];
    }
    // ln_f and the head on the last new row of each sequence
    std::vector<int64_t> seqs;
    for (int64_t b = 0; b < B; ++b)
      if (count[static_cast<size_t>(b)] > 0) seqs.push_back(b);
    const int64_t S = static_cast<int64_t>(seqs.size());
    std::vector<T> last(static_cast<size_t>(S * C)), lg(static_cast<size_t>(S * c.vocab_size));
    for (int64_t s = 0; s < S; ++s) {
      const int64_t b = seqs[static_cast<size_t>(s)];
      const int64_t r = first[static_cast<size_t>(b)] + count[static_cast<size_t>(b)] - 1;
      infer::layer_norm<T>(x.data() + r * C, 1, C, ptr<T>(m.transformer->ln_f->weight),
                           ptr<T>(m.transformer->ln_f->bias), c.layer_norm_eps, last.data() + s * C);
    }
    const T* head_bias = nullptr;
    bool done = false;
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.bf16) {
        infer::linear<float, uint16_t>(last.data(), S, C, bf16_.back().data(), head_bias, c.vocab_size, lg.data());
        done = true;
      }
    }
    if (!done) infer::linear<T, T>(last.data(), S, C, ptr<T>(m.lm_head_weight()), head_bias, c.vocab_size, lg.data());
    T* po = logits.data_ptr<T>();
    for (int64_t s = 0; s < S; ++s)
      std::memcpy(po + seqs[static_cast<size_t>(s)] * c.vocab_size, lg.data() + s * c.vocab_size,
                  sizeof(T) * static_cast<size_t>(c.vocab_size));
    for (int64_t b = 0; b < B; ++b) cache.len[static_cast<size_t>(b)] += count[static_cast<size_t>(b)];
    return logits;
  }

  /// att (N, C) = causal attention of the new rows over their sequence's cached keys.
  template <class T>
  void attention(const T* qkv, const T* kc, const T* vc, const std::vector<int64_t>& row_pos,
                 const std::vector<int64_t>& first, const std::vector<int64_t>& count, int64_t B, int64_t H, int64_t D,
                 int64_t L, int64_t C, T scale, const KVCache& cache, int64_t layer, T* att) const {
    (void)row_pos;
    // one new token per sequence: direct loops, parallel over (sequence, head)
    std::vector<int64_t> single, multi;
    for (int64_t b = 0; b < B; ++b) {
      if (count[static_cast<size_t>(b)] == 1) single.push_back(b);
      if (count[static_cast<size_t>(b)] > 1) multi.push_back(b);
    }
    if (!single.empty()) {
      const int64_t ns = static_cast<int64_t>(single.size());
      parallel_for(0, ns * H, 1, [&](int64_t t0, int64_t t1) {
        std::vector<T> s(static_cast<size_t>(L));
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t b = single[static_cast<size_t>(t / H)], hh = t % H;
          const int64_t r = first[static_cast<size_t>(b)];
          const int64_t S = cache.len[static_cast<size_t>(b)] + 1;  // keys including the new one
          const T* q = qkv + r * 3 * C + hh * D;
          const T* kb = kc + (b * H + hh) * L * D;
          const T* vb = vc + (b * H + hh) * L * D;
          T mx = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j < S; ++j) {
            T d;
            infer::dot_rows(q, kb + j * D, D, 1, &d);
            s[static_cast<size_t>(j)] = d * scale;
            mx = std::max(mx, s[static_cast<size_t>(j)]);
          }
          T sum = 0;
          for (int64_t j = 0; j < S; ++j) {
            s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx);
            sum += s[static_cast<size_t>(j)];
          }
          T* o = att + r * C + hh * D;
          std::fill(o, o + D, T(0));
          const T inv = T(1) / sum;
          for (int64_t j = 0; j < S; ++j) {
            const T p = s[static_cast<size_t>(j)] * inv;
            const T* vr = vb + j * D;
            for (int64_t d = 0; d < D; ++d) o[d] += p * vr[d];
          }
        }
      });
    }
    // several new tokens (prefill): the fused attention op with a causal mask offset by the cached length
    for (int64_t b : multi) {
      const int64_t T_new = count[static_cast<size_t>(b)], p0 = cache.len[static_cast<size_t>(b)], S = p0 + T_new;
      const int64_t r0 = first[static_cast<size_t>(b)];
      Tensor q = empty({1, H, T_new, D}, dtype());
      T* pq = q.data_ptr<T>();
      for (int64_t t = 0; t < T_new; ++t)
        for (int64_t hh = 0; hh < H; ++hh)
          std::memcpy(pq + (hh * T_new + t) * D, qkv + (r0 + t) * 3 * C + hh * D, sizeof(T) * static_cast<size_t>(D));
      Tensor k = narrow(select(cache.k[static_cast<size_t>(layer)], 0, b), 1, 0, S).unsqueeze(0);  // (1, H, S, D)
      Tensor v = narrow(select(cache.v[static_cast<size_t>(layer)], 0, b), 1, 0, S).unsqueeze(0);
      Tensor o = p0 == 0 ? scaled_dot_product_attention(q, k, v, Tensor(), 0.0, true)
                         : scaled_dot_product_attention(q, k, v, causal_mask(T_new, S));
      Tensor oc = o.contiguous();  // (1, H, T, D)
      const T* po = oc.data_ptr<const T>();
      for (int64_t t = 0; t < T_new; ++t)
        for (int64_t hh = 0; hh < H; ++hh)
          std::memcpy(att + (r0 + t) * C + hh * D, po + (hh * T_new + t) * D, sizeof(T) * static_cast<size_t>(D));
    }
  }

  const GPT* model_;
  GPTDecoderOptions opt_;
  kernels::UnaryOp act_;
  std::vector<std::vector<uint16_t>> bf16_;  // per layer: c_attn, c_proj, c_fc, mlp.c_proj; then the head
};

}  // namespace models
}  // namespace genai
