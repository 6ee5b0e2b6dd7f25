// genai/ops/attention.hpp: scaled dot-product attention with a fused forward and
// backward, as torch.nn.functional.scaled_dot_product_attention (torch 2.x):
//
//   out = dropout(softmax(q k^T * scale + mask), dropout_p) v
//   q (..., T, D), k (..., S, D), v (..., S, Dv)  ->  out (..., T, Dv)
//
// Forward: the streaming, tiled computation of FlashAttention (T. Dao et al.,
// "FlashAttention: fast and memory-efficient exact attention with IO-awareness",
// 2022): for each (batch-head, block of query rows) the key/value blocks are
// visited once with an online softmax (running row max m and row sum l, the
// output block rescaled when m grows). Only the output and the per-row
// logsumexp (..., T) are kept for backward, never the (T x S) probabilities.
// With is_causal, key blocks entirely above the diagonal are skipped and no
// mask tensor is built.
// Backward: FlashAttention-2 (T. Dao, 2023): scores are recomputed tile by tile
// from q, k and the saved logsumexp, P = exp(s - lse), and
//   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),
//   dQ += dS K * scale,  dK += dS^T Q * scale,  dmask = dS (float masks only).
// Block products run on kernels::gemm; the work is spread with parallel_for over
// (batch-head, query block) in forward, and over batch-heads (or over key blocks
// then query blocks when there are fewer batch-heads than threads) in backward.
// With create_graph, backward is computed with differentiable tensor ops
// instead (matmul, softmax, where), so double backward works.
//
// Dropout (dropout_p > 0; applied whenever p > 0, as the functional torch op:
// pass 0 in eval mode): the keep decision for element (batch-head b, i, j) is a
// counter-based hash (splitmix64) of a seed drawn once per call from `gen` and
// of the counter (b T + i) S + j, so backward regenerates the same mask and no
// (T x S) mask is stored. Kept probabilities are scaled by 1 / (1 - p).
//
// Differences from PyTorch:
//  - rows whose keys are all masked give an output of 0 (and zero gradients).
//    This matches torch >= 2.5 (_safe_softmax); torch 2.0-2.4 give NaN there.
//  - the dropout mask is drawn from genai's hash stream, not torch's RNG: same
//    distribution and expectation, different numbers.
//  - q, k and v must share one dtype (float32 or float64); a float attn_mask of
//    the other float dtype is converted. No enable_gqa argument, but the leading
//    batch dims of q, k, v (and of the mask) broadcast, as in torch's math path,
//    so k and v of shape (B, 1, S, D) give multi-query attention.
//  - a float attn_mask that requires grad gets its gradient (as torch's math
//    backend); only then is a (..., T, S) buffer allocated in backward.
//
// genai::detail::sdpa_reference is the same function written with ordinary ops
// (matmul + masked softmax + matmul, materializing the probabilities); the tests
// compare the fused kernels with it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "genai/core/rng.hpp"
#include "genai/kernels/gemm.hpp"
#include "genai/kernels/rowwise.hpp"
#include "genai/ops/all.hpp"

namespace genai {

namespace detail {

/// Validated geometry of one attention call.
struct SdpaGeom {
  Shape batch;       // broadcast leading dims of q, k, v
  int64_t nb = 1;    // number of batch-heads (product of batch)
  int64_t T = 0;     // query length
  int64_t S = 0;     // key length
  int64_t D = 0;     // query/key feature size
  int64_t Dv = 0;    // value feature size
  double scale = 1;  // the score scale (1/sqrt(D) by default)
  Shape full(int64_t a, int64_t b) const {
    Shape s = batch;
    s.push_back(a);
    s.push_back(b);
    return s;
  }
};

inline SdpaGeom sdpa_check(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p,
                           bool is_causal, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  check_defined(q, op, "query");
  check_defined(k, op, "key");
  check_defined(v, op, "value");
  GENAI_CHECK(q.dim() >= 3 && k.dim() >= 3 && v.dim() >= 3, op,
              ": query, key and value must be at least 3-d "
              "(..., T, D), (..., S, D), (..., S, Dv); got shapes ",
              shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()),
              "; hint: add a batch dimension with unsqueeze(0)");
  GENAI_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), op,
              ": query, key and value must have the same floating-point dtype, got ", dtype_name(q.dtype()), ", ",
              dtype_name(k.dtype()), ", ", dtype_name(v.dtype()), "; hint: convert with .to(genai::kFloat32)");
  SdpaGeom g;
  g.T = q.size(-2);
  g.S = k.size(-2);
  g.D = q.size(-1);
  g.Dv = v.size(-1);
  GENAI_CHECK(k.size(-1) == g.D, op, ": query ", shape_str(q.shape()), " and key ", shape_str(k.shape()),
              " must have the same last dimension (", g.D, " vs ", k.size(-1), ")");
  GENAI_CHECK(v.size(-2) == g.S, op, ": key ", shape_str(k.shape()), " and value ", shape_str(v.shape()),
              " must have the same number of positions (dim -2: ", g.S, " vs ", v.size(-2), ")");
  Shape bq(q.shape().begin(), q.shape().end() - 2), bk(k.shape().begin(), k.shape().end() - 2),
      bv(v.shape().begin(), v.shape().end() - 2);
  bool ok = true;
  try {
    g.batch = broadcast_shapes(broadcast_shapes(bq, bk, op), bv, op);
  } catch (const Error&) {
    ok = false;
  }
  GENAI_CHECK(ok, op, ": the batch dimensions of query ", shape_str(q.shape()), ", key ", shape_str(k.shape()),
              " and value ", shape_str(v.shape()), " do not broadcast together");
  g.nb = shape_numel(g.batch);
  if (mask.defined()) {
    GENAI_CHECK(!is_causal, op, ": is_causal=true together with an attn_mask (shape ", shape_str(mask.shape()),
                ") is not allowed (as torch); hint: fold the causal mask into attn_mask, or pass only is_causal");
    GENAI_CHECK(mask.dtype() == kBool || is_floating(mask.dtype()), op,
                ": attn_mask must be bool (true = attend) or floating point (added to the scores), got ",
                dtype_name(mask.dtype()));
    const Shape full = g.full(g.T, g.S);
    bool fits = mask.dim() <= static_cast<int64_t>(full.size());
    for (int64_t i = 1; fits && i <= mask.dim(); ++i) {
      int64_t m = mask.size(-i), f = full[full.size() - static_cast<size_t>(i)];
      fits = m == f || m == 1;
    }
    GENAI_CHECK(fits, op, ": attn_mask of shape ", shape_str(mask.shape()),
                " cannot be broadcast to the scores' shape ", shape_str(full),
                " (..., T, S); hint: a key-padding mask has shape (B, 1, 1, S)");
  }
  GENAI_CHECK(dropout_p >= 0.0 && dropout_p <= 1.0, op, ": dropout_p must be in [0, 1], got ", dropout_p);
  g.scale = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(g.D));
  GENAI_CHECK(!std::isnan(g.scale), op, ": scale is NaN");
  return g;
}

// ---- dropout mask: a counter-based hash, regenerated in backward --------------------

/// 64 random bits for element `counter` of the stream `seed` (splitmix64's output function).
inline uint64_t sdpa_hash(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/// Element is kept iff (hash >> 11) >= threshold, i.e. uniform [0, 1) >= p.
inline uint64_t sdpa_drop_threshold(double p) {
  return p >= 1.0 ? (uint64_t(1) << 53) : static_cast<uint64_t>(std::ceil(p * 9007199254740992.0));
}

/// The dropout multipliers (batch..., T, S): 1/(1-p) where kept, 0 where dropped.
inline Tensor sdpa_dropout_multiplier(uint64_t seed, const SdpaGeom& g, double p, Dtype dt) {
  Tensor m = make_tensor(g.full(g.T, g.S), kFloat64);
  double* pm = m.data_ptr<double>();
  const uint64_t thr = sdpa_drop_threshold(p);
  const double keep = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  for (int64_t c = 0; c < m.numel(); ++c) pm[c] = (sdpa_hash(seed, static_cast<uint64_t>(c)) >> 11) >= thr ? keep : 0.0;
  return as_dtype(m, dt);
}

// ---- composite (reference) path: ordinary differentiable ops -----------------------

/// softmax(q k^T scale + mask) with masked entries at probability 0 and fully
/// masked rows all 0, in differentiable ops. (..., T, S)
inline Tensor sdpa_probs(const Tensor& q, const Tensor& k, const Tensor& mask, bool is_causal, double scale) {
  const int64_t T = q.size(-2), S = k.size(-2);
  Tensor s = mul(matmul(q, transpose(k, -2, -1)), scale);  // (..., T, S)
  if (S == 0) return s;
  Tensor valid;  // bool, broadcastable to s; true = attend
  if (is_causal) {
    valid = le(reshape(arange<int64_t>(S), {1, S}), reshape(arange<int64_t>(T), {T, 1}));  // j <= i
    s = where(valid, s, -INFINITY);
  } else if (mask.defined() && mask.dtype() == kBool) {
    valid = mask;
    s = where(valid, s, -INFINITY);
  } else if (mask.defined()) {
    s = add(s, mask);
    valid = gt(mask, -INFINITY);
  }
  if (!valid.defined()) return softmax(s, -1);
  Tensor any_f = amax(to(valid, s.dtype()), {-1}, true);  // (..., T, 1): 1 where some key is attended
  if (any_f.numel() == 0 || min(any_f).item<double>() > 0.5) return softmax(s, -1);
  Tensor row_any = gt(any_f, 0.5);
  s = where(row_any, s, 0.0);  // fully masked rows: finite scores, then zeroed below
  return mul(softmax(s, -1), to(row_any, s.dtype()));
}

/// The gradients (dq, dk, dv, dmask) of attention written with differentiable
/// ops (used for create_graph); `want` says which are needed.
inline TensorList sdpa_backward_composite(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& mask, bool is_causal, double scale, double dropout_p,
                                          uint64_t seed, const bool want[4]) {
  TensorList r(4);
  Tensor p = sdpa_probs(q, k, mask, is_causal, scale);  // (..., T, S)
  Tensor mult;
  if (dropout_p > 0)
    mult = sdpa_dropout_multiplier(seed, sdpa_check(q, k, v, mask, dropout_p, is_causal, scale), dropout_p, q.dtype());
  Tensor pd = mult.defined() ? mul(p, mult) : p;  // pd = dropout(p)
  // out = pd v  =>  dv = pd^T dout
  if (want[2]) r[2] = sum_to(matmul(transpose(pd, -2, -1), dout), v.shape());
  if (want[0] || want[1] || want[3]) {
    Tensor dpd = matmul(dout, transpose(v, -2, -1));    // out = pd v  =>  dpd = dout v^T
    Tensor dp = mult.defined() ? mul(dpd, mult) : dpd;  // pd = p mult  =>  dp = dpd mult
    // p = softmax(s)  =>  ds = p (dp - sum_j(dp p))
    Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));
    // s = q k^T scale + mask  =>  dmask = ds, dq = ds k scale, dk = ds^T q scale
    if (want[3]) r[3] = to(sum_to(ds, mask.shape()), mask.dtype());
    if (want[0]) r[0] = sum_to(matmul(mul(ds, scale), k), q.shape());
    if (want[1]) r[1] = sum_to(matmul(transpose(ds, -2, -1), mul(q, scale)), k.shape());
  }
  return r;
}

// ---- fused kernels ------------------------------------------------------------------

/// Tile sizes of the fused kernels. 64 query rows x 256 keys keeps a tile's four
/// scratch blocks (256 KB in float32) in L2 while the block products stay large
/// enough for the GEMM; up to 256 keys a query block sees all its keys in one
/// tile (no online rescaling), and with is_causal the tile is cut at the block's
/// last row, so only the 64 x 64 diagonal block computes masked scores (at T = 256:
/// 1.25x the unmasked work, against 1.5x with 128 x 128 tiles). The tests shrink
/// the tiles to exercise many of them on tiny shapes. A process-wide setting, not
/// meant to be changed while attention runs on another thread.
struct SdpaBlocks {
  int64_t q = 64;   // query rows per tile (Br)
  int64_t k = 256;  // key rows per tile (Bc)
};
inline SdpaBlocks& sdpa_blocks() {
  static SdpaBlocks b;
  return b;
}

/// Everything the tile kernels read: contiguous (nb, ...) operands and the mask.
template <class scalar_t>
struct SdpaCtx {
  int64_t nb = 0, T = 0, S = 0, D = 0, Dv = 0;
  int64_t br = 128, bc = 128;  // tile sizes (sdpa_blocks())
  scalar_t scale = 1;
  bool causal = false;
  const scalar_t* q = nullptr;  // (nb, T, D)
  const scalar_t* k = nullptr;  // (nb, S, D)
  const scalar_t* v = nullptr;  // (nb, S, Dv)
  int mask_kind = 0;            // 0 none, 1 bool (true = attend), 2 additive
  const bool* mask_b = nullptr;
  const scalar_t* mask_f = nullptr;
  std::vector<int64_t> mask_off;     // (nb,) element offset of each batch-head's mask
  int64_t mask_st = 0, mask_ss = 0;  // mask strides along T and S (0 when broadcast)
  bool dropout = false;
  uint64_t seed = 0, drop_thr = 0;
  scalar_t keep_scale = 1;  // 1 / (1 - p)
};

/// Fills the context's pointers and mask view. qc, kc, vc, mc must outlive it.
template <class scalar_t>
inline void sdpa_setup(SdpaCtx<scalar_t>& c, const SdpaGeom& g, const Tensor& qc, const Tensor& kc, const Tensor& vc,
                       const Tensor& mc, bool causal, double dropout_p, uint64_t seed) {
  c.nb = g.nb;
  c.br = std::max<int64_t>(1, sdpa_blocks().q);
  c.bc = std::max<int64_t>(1, sdpa_blocks().k);
  c.T = g.T;
  c.S = g.S;
  c.D = g.D;
  c.Dv = g.Dv;
  c.scale = static_cast<scalar_t>(g.scale);
  c.causal = causal;
  c.q = qc.data_ptr<const scalar_t>();
  c.k = kc.data_ptr<const scalar_t>();
  c.v = vc.data_ptr<const scalar_t>();
  if (mc.defined()) {
    const Shape full = g.full(g.T, g.S);
    std::vector<int64_t> st = broadcast_strides(mc.shape(), mc.strides(), full);
    const int64_t nd = static_cast<int64_t>(g.batch.size());
    c.mask_st = st[nd];
    c.mask_ss = st[nd + 1];
    c.mask_off.assign(static_cast<size_t>(g.nb), 0);
    for (int64_t b = 0; b < g.nb; ++b) {
      int64_t r = b, off = 0;
      for (int64_t d = nd - 1; d >= 0; --d) {
        off += (r % g.batch[d]) * st[d];
        r /= g.batch[d];
      }
      c.mask_off[b] = off;
    }
    c.mask_kind = mc.dtype() == kBool ? 1 : 2;
    if (c.mask_kind == 1)
      c.mask_b = mc.data_ptr<const bool>();
    else
      c.mask_f = mc.data_ptr<const scalar_t>();
  }
  c.dropout = dropout_p > 0;
  c.seed = seed;
  c.drop_thr = sdpa_drop_threshold(dropout_p);
  c.keep_scale = dropout_p < 1 ? static_cast<scalar_t>(1.0 / (1.0 - dropout_p)) : scalar_t(0);
}

/// s (br x bc, row stride c.bc) = q_i k_j^T scale, masked (-inf) and biased,
/// for query rows [i0, i0+br) and keys [j0, j0+bc) of batch-head b.
template <class scalar_t>
inline void sdpa_scores(const SdpaCtx<scalar_t>& c, int64_t b, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                        scalar_t* s) {
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  // s = q_i k_j^T   (br, D) x (D, bc); k_j^T is read through strides (gemm packs it)
  kernels::gemm<scalar_t>(br, bc, c.D, c.q + (b * c.T + i0) * c.D, c.D, 1, c.k + (b * c.S + j0) * c.D, 1, c.D, s, c.bc);
  for (int64_t r = 0; r < br; ++r) {
    const int64_t i = i0 + r;
    scalar_t* row = s + r * c.bc;
    for (int64_t cc = 0; cc < bc; ++cc) row[cc] *= c.scale;
    if (c.mask_kind == 1) {
      const bool* m = c.mask_b + c.mask_off[b] + i * c.mask_st + j0 * c.mask_ss;
      for (int64_t cc = 0; cc < bc; ++cc)
        if (!m[cc * c.mask_ss]) row[cc] = ninf;
    } else if (c.mask_kind == 2) {
      const scalar_t* m = c.mask_f + c.mask_off[b] + i * c.mask_st + j0 * c.mask_ss;
      for (int64_t cc = 0; cc < bc; ++cc) row[cc] += m[cc * c.mask_ss];
    }
    if (c.causal)  // key j attends only when j <= i
      for (int64_t cc = std::max<int64_t>(0, i + 1 - j0); cc < bc; ++cc) row[cc] = ninf;
  }
}

/// The dropout multiplier of element (b, i, j): keep_scale or 0.
template <class scalar_t>
inline scalar_t sdpa_keep(const SdpaCtx<scalar_t>& c, int64_t b, int64_t i, int64_t j) {
  const uint64_t counter = static_cast<uint64_t>((b * c.T + i) * c.S + j);
  return (sdpa_hash(c.seed, counter) >> 11) >= c.drop_thr ? c.keep_scale : scalar_t(0);
}

/// Forward for query rows [i0, i0+br) of batch-head b: online softmax over key
/// blocks; writes out rows (br, Dv) and lse (br). Scratch: s (Br x Bc), m, l (Br).
template <class scalar_t>
inline void sdpa_forward_rows(const SdpaCtx<scalar_t>& c, int64_t b, int64_t i0, int64_t br, scalar_t* s, scalar_t* m,
                              scalar_t* l, scalar_t* out, scalar_t* lse) {
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  scalar_t* o = out + (b * c.T + i0) * c.Dv;  // (br, Dv) accumulator
  std::fill(o, o + br * c.Dv, scalar_t(0));
  std::fill(m, m + br, ninf);
  std::fill(l, l + br, scalar_t(0));
  const int64_t j_end = c.causal ? std::min(c.S, i0 + br) : c.S;  // causal: no key beyond the last row
  for (int64_t j0 = 0; j0 < j_end; j0 += c.bc) {
    const int64_t bc = std::min(c.bc, j_end - j0);
    sdpa_scores(c, b, i0, br, j0, bc, s);
    for (int64_t r = 0; r < br; ++r) {
      kernels::ArrayMap<scalar_t> row(s + r * c.bc, bc);
      scalar_t row_max;
      if constexpr (std::is_same_v<scalar_t, float>)
        row_max = kernels::row_max(s + r * c.bc, bc);
      else
        row_max = row.maxCoeff();
      const scalar_t m_new = std::max(m[r], row_max);
      if (m_new == ninf) {  // every key so far masked: contributes nothing
        row.setZero();
        continue;
      }
      const scalar_t alpha = std::exp(m[r] - m_new);  // rescales the previous blocks (0 when m was -inf)
      scalar_t row_sum;                               // p = exp(s - m), l = sum of p, before dropout
      if constexpr (std::is_same_v<scalar_t, float>) {
        row_sum = kernels::row_exp_sum(s + r * c.bc, s + r * c.bc, bc, m_new);
      } else {
        row = (row - m_new).exp();
        row_sum = row.sum();
      }
      l[r] = l[r] * alpha + row_sum;
      m[r] = m_new;
      if (alpha != scalar_t(1))
        for (int64_t d = 0; d < c.Dv; ++d) o[r * c.Dv + d] *= alpha;
      if (c.dropout)
        for (int64_t cc = 0; cc < bc; ++cc) row[cc] *= sdpa_keep(c, b, i0 + r, j0 + cc);
    }
    // o += p v_j   (br, bc) x (bc, Dv)
    kernels::gemm<scalar_t>(br, c.Dv, bc, s, c.bc, 1, c.v + (b * c.S + j0) * c.Dv, c.Dv, 1, o, c.Dv, true);
  }
  for (int64_t r = 0; r < br; ++r) {
    scalar_t* lo = lse + b * c.T + i0 + r;
    if (l[r] == scalar_t(0)) {  // every key masked: output 0 (torch >= 2.5), lse = -inf
      std::fill(o + r * c.Dv, o + (r + 1) * c.Dv, scalar_t(0));
      *lo = ninf;
      continue;
    }
    const scalar_t inv = scalar_t(1) / l[r];
    for (int64_t d = 0; d < c.Dv; ++d) o[r * c.Dv + d] *= inv;
    *lo = m[r] + std::log(l[r]);
  }
}

/// Which gradients a backward tile computes.
struct SdpaBwdFlags {
  bool dq = false, dk = false, dv = false, dmask = false;
};

/// Backward state: the forward context plus dO, lse, D = rowsum(dO * O) and the outputs.
template <class scalar_t>
struct SdpaBwd {
  SdpaCtx<scalar_t> c;
  const scalar_t* dout = nullptr;  // (nb, T, Dv)
  const scalar_t* lse = nullptr;   // (nb, T)
  const scalar_t* di = nullptr;    // (nb, T)
  scalar_t* dq = nullptr;          // (nb, T, D), accumulated
  scalar_t* dk = nullptr;          // (nb, S, D), accumulated
  scalar_t* dv = nullptr;          // (nb, S, Dv), accumulated
  scalar_t* dmask = nullptr;       // (nb, T, S), written
};

/// One backward tile: query rows [i0, i0+br) x keys [j0, j0+bc) of batch-head b.
/// Scratch: p, pd, z, ds, each Br x Bc (row stride Bc).
template <class scalar_t>
inline void sdpa_backward_tile(const SdpaBwd<scalar_t>& w, int64_t b, int64_t i0, int64_t br, int64_t j0, int64_t bc,
                               SdpaBwdFlags f, scalar_t* p, scalar_t* pd, scalar_t* z, scalar_t* ds) {
  const SdpaCtx<scalar_t>& c = w.c;
  const int64_t ld = c.bc;
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  if (c.causal) bc = std::min(bc, i0 + br - j0);  // keys after the tile's last row are masked: p = 0 there
  const scalar_t* dout_i = w.dout + (b * c.T + i0) * c.Dv;
  // p = exp(s - lse): the probabilities of the forward, recomputed
  sdpa_scores(c, b, i0, br, j0, bc, p);
  for (int64_t r = 0; r < br; ++r) {
    kernels::ArrayMap<scalar_t> row(p + r * ld, bc);
    const scalar_t lse = w.lse[b * c.T + i0 + r];
    if (lse == ninf)
      row.setZero();  // fully masked row: output 0, no gradient
    else if constexpr (std::is_same_v<scalar_t, float>)
      kernels::row_exp_sum(p + r * ld, p + r * ld, bc, lse);
    else
      row = (row - lse).exp();
  }
  // pd = p * z: dropout applied with the regenerated mask
  const scalar_t* pdrop = p;
  if (c.dropout) {
    for (int64_t r = 0; r < br; ++r)
      for (int64_t cc = 0; cc < bc; ++cc) {
        z[r * ld + cc] = sdpa_keep(c, b, i0 + r, j0 + cc);
        pd[r * ld + cc] = p[r * ld + cc] * z[r * ld + cc];
      }
    pdrop = pd;
  }
  // out = pd v  =>  dv_j += pd^T dout_i   (bc, br) x (br, Dv)
  if (f.dv)
    kernels::gemm<scalar_t>(bc, c.Dv, br, pdrop, 1, ld, dout_i, c.Dv, 1, w.dv + (b * c.S + j0) * c.Dv, c.Dv, true);
  if (!(f.dq || f.dk || f.dmask)) return;
  // out = pd v  =>  dpd = dout_i v_j^T   (br, Dv) x (Dv, bc)
  kernels::gemm<scalar_t>(br, bc, c.Dv, dout_i, c.Dv, 1, c.v + (b * c.S + j0) * c.Dv, 1, c.Dv, ds, ld);
  for (int64_t r = 0; r < br; ++r) {
    const int64_t i = i0 + r;
    const scalar_t di = w.di[b * c.T + i];
    scalar_t* dsr = ds + r * ld;
    const scalar_t* pr = p + r * ld;
    if (c.dropout)  // pd = p z  =>  dp = dpd z
      for (int64_t cc = 0; cc < bc; ++cc) dsr[cc] *= z[r * ld + cc];
    // p = softmax(s)  =>  ds = p (dp - sum_j(dp p)),  sum_j(dp p) = rowsum(dout * out) = di
    for (int64_t cc = 0; cc < bc; ++cc) dsr[cc] = pr[cc] * (dsr[cc] - di);
    // s = q k^T scale + mask  =>  dmask = ds
    if (f.dmask) std::copy(dsr, dsr + bc, w.dmask + (b * c.T + i) * c.S + j0);
    for (int64_t cc = 0; cc < bc; ++cc) dsr[cc] *= c.scale;
  }
  // s = q_i k_j^T scale  =>  dq_i += ds k_j scale   (br, bc) x (bc, D)
  if (f.dq)
    kernels::gemm<scalar_t>(br, c.D, bc, ds, ld, 1, c.k + (b * c.S + j0) * c.D, c.D, 1, w.dq + (b * c.T + i0) * c.D,
                            c.D, true);
  // s = q_i k_j^T scale  =>  dk_j += ds^T q_i scale   (bc, br) x (br, D)
  if (f.dk)
    kernels::gemm<scalar_t>(bc, c.D, br, ds, 1, ld, c.q + (b * c.T + i0) * c.D, c.D, 1, w.dk + (b * c.S + j0) * c.D,
                            c.D, true);
}

/// Operands for the kernels: expanded to the broadcast batch and contiguous.
inline Tensor sdpa_operand(const Tensor& x, const SdpaGeom& g, int64_t rows, int64_t cols) {
  return contig(expand(x.detach(), g.full(rows, cols)));
}

/// The fused forward; returns out (batch..., T, Dv) and sets lse (batch..., T).
inline Tensor sdpa_forward_fused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                 const SdpaGeom& g, bool is_causal, double dropout_p, uint64_t seed, Tensor& lse) {
  const Dtype dt = q.dtype();
  Tensor out = make_tensor(g.full(g.T, g.Dv), dt);
  Shape ls = g.batch;
  ls.push_back(g.T);
  lse = make_tensor(ls, dt);
  NoGradGuard ng;
  if (out.numel() == 0) {  // T = 0, Dv = 0 or an empty batch: nothing to attend (backward gives zeros)
    if (lse.numel() > 0) lse.fill_(-INFINITY);
    return out;
  }
  Tensor qc = sdpa_operand(q, g, g.T, g.D), kc = sdpa_operand(k, g, g.S, g.D), vc = sdpa_operand(v, g, g.S, g.Dv);
  Tensor mc = mask.defined() ? (mask.dtype() == kBool ? mask : as_dtype(mask, dt)) : Tensor();
  dispatch_float(dt, "scaled_dot_product_attention", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    SdpaCtx<scalar_t> c;
    sdpa_setup<scalar_t>(c, g, qc, kc, vc, mc, is_causal, dropout_p, seed);
    const int64_t nqb = (g.T + c.br - 1) / c.br;
    scalar_t* po = out.data_ptr<scalar_t>();
    scalar_t* pl = lse.data_ptr<scalar_t>();
    const int64_t work = std::max<int64_t>(1, c.br * g.S * (g.D + g.Dv));  // flops per task, roughly
    parallel_for(0, g.nb * nqb, std::max<int64_t>(1, (int64_t(1) << 16) / work), [&](int64_t t0, int64_t t1) {
      std::vector<scalar_t> buf(static_cast<size_t>(c.br * c.bc + 2 * c.br));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / nqb, i0 = (t % nqb) * c.br;
        sdpa_forward_rows<scalar_t>(c, b, i0, std::min(c.br, g.T - i0), buf.data(), buf.data() + c.br * c.bc,
                                    buf.data() + c.br * c.bc + c.br, po, pl);
      }
    });
  });
  return out;
}

/// The fused backward (no graph): gradients for the inputs flagged in `want`.
inline TensorList sdpa_backward_fused(const Tensor& dout_in, const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& mask, const Tensor& out, const Tensor& lse, bool is_causal,
                                      double scale, double dropout_p, uint64_t seed, const bool want[4]) {
  const SdpaGeom g = sdpa_check(q, k, v, mask, dropout_p, is_causal, scale);
  const Dtype dt = q.dtype();
  TensorList r(4);
  Tensor dq = want[0] ? zeros({g.nb, g.T, g.D}, dt) : Tensor();
  Tensor dk = want[1] ? zeros({g.nb, g.S, g.D}, dt) : Tensor();
  Tensor dv = want[2] ? zeros({g.nb, g.S, g.Dv}, dt) : Tensor();
  Tensor dm = want[3] ? zeros({g.nb, g.T, g.S}, dt) : Tensor();
  if (g.nb * g.T * g.S * g.Dv > 0) {  // else out is empty or 0 and every gradient is 0
    Tensor qc = sdpa_operand(q, g, g.T, g.D), kc = sdpa_operand(k, g, g.S, g.D), vc = sdpa_operand(v, g, g.S, g.Dv);
    Tensor doc = contig(as_dtype(dout_in, dt)), oc = contig(out), lc = contig(lse);
    Tensor di = make_tensor({g.nb, g.T}, dt);
    Tensor mc = mask.defined() ? (mask.dtype() == kBool ? mask : as_dtype(mask, dt)) : Tensor();
    dispatch_float(dt, "scaled_dot_product_attention_backward", [&](auto tag) {
      using scalar_t = typename decltype(tag)::type;
      SdpaBwd<scalar_t> w;
      sdpa_setup<scalar_t>(w.c, g, qc, kc, vc, mc, is_causal, dropout_p, seed);
      const SdpaCtx<scalar_t>& c = w.c;
      w.dout = doc.data_ptr<const scalar_t>();
      w.lse = lc.data_ptr<const scalar_t>();
      w.dq = dq.defined() ? dq.data_ptr<scalar_t>() : nullptr;
      w.dk = dk.defined() ? dk.data_ptr<scalar_t>() : nullptr;
      w.dv = dv.defined() ? dv.data_ptr<scalar_t>() : nullptr;
      w.dmask = dm.defined() ? dm.data_ptr<scalar_t>() : nullptr;
      // di = rowsum(dout * out) = sum_j(dp p), per query row
      {
        const scalar_t* pd = w.dout;
        const scalar_t* po = oc.data_ptr<const scalar_t>();
        scalar_t* pdi = di.data_ptr<scalar_t>();
        parallel_for(0, g.nb * g.T, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(g.Dv, 1)),
                     [&](int64_t r0, int64_t r1) {
                       for (int64_t rr = r0; rr < r1; ++rr) {
                         scalar_t acc = 0;
                         for (int64_t d = 0; d < g.Dv; ++d) acc += pd[rr * g.Dv + d] * po[rr * g.Dv + d];
                         pdi[rr] = acc;
                       }
                     });
        w.di = pdi;
      }
      const int64_t nqb = (g.T + c.br - 1) / c.br, nkb = (g.S + c.bc - 1) / c.bc;
      const size_t tile = static_cast<size_t>(c.br * c.bc);
      // tile (i0, j0) has some j <= i unless causal masks it entirely
      auto live = [&](int64_t i0, int64_t br, int64_t j0) { return !c.causal || j0 <= i0 + br - 1; };
      auto sweep_keys = [&](int64_t b, int64_t kb, SdpaBwdFlags f, scalar_t* buf) {  // one key block, all query blocks
        const int64_t j0 = kb * c.bc, bc = std::min(c.bc, g.S - j0);
        for (int64_t qb = 0; qb < nqb; ++qb) {
          const int64_t i0 = qb * c.br, br = std::min(c.br, g.T - i0);
          if (live(i0, br, j0))
            sdpa_backward_tile<scalar_t>(w, b, i0, br, j0, bc, f, buf, buf + tile, buf + 2 * tile, buf + 3 * tile);
        }
      };
      const int64_t work = std::max<int64_t>(1, g.T * g.S * (g.D + g.Dv));  // flops per batch-head, roughly
      if (g.nb >= get_num_threads()) {
        // one pass; each thread owns whole batch-heads, so dq, dk, dv accumulate without races
        SdpaBwdFlags f{want[0], want[1], want[2], want[3]};
        parallel_for(0, g.nb, std::max<int64_t>(1, (int64_t(1) << 16) / work), [&](int64_t b0, int64_t b1) {
          std::vector<scalar_t> buf(4 * tile);
          for (int64_t b = b0; b < b1; ++b)
            for (int64_t kb = 0; kb < nkb; ++kb) sweep_keys(b, kb, f, buf.data());
        });
      } else {
        // few batch-heads: dk, dv over (batch-head, key block), then dq (and dmask) over
        // (batch-head, query block); every task writes its own rows
        if (want[1] || want[2]) {
          SdpaBwdFlags f{false, want[1], want[2], false};
          parallel_for(0, g.nb * nkb, 1, [&](int64_t t0, int64_t t1) {
            std::vector<scalar_t> buf(4 * tile);
            for (int64_t t = t0; t < t1; ++t) sweep_keys(t / nkb, t % nkb, f, buf.data());
          });
        }
        if (want[0] || want[3]) {
          SdpaBwdFlags f{want[0], false, false, want[3]};
          parallel_for(0, g.nb * nqb, 1, [&](int64_t t0, int64_t t1) {
            std::vector<scalar_t> buf(4 * tile);
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t b = t / nqb, i0 = (t % nqb) * c.br, br = std::min(c.br, g.T - i0);
              for (int64_t kb = 0; kb < nkb; ++kb) {
                const int64_t j0 = kb * c.bc;
                if (live(i0, br, j0))
                  sdpa_backward_tile<scalar_t>(w, b, i0, br, j0, std::min(c.bc, g.S - j0), f, buf.data(),
                                               buf.data() + tile, buf.data() + 2 * tile, buf.data() + 3 * tile);
              }
            }
          });
        }
      }
    });
  }
  // back to the input shapes: sum over broadcast batch dims
  if (want[0]) r[0] = sum_to(reshape(dq, g.full(g.T, g.D)), q.shape());
  if (want[1]) r[1] = sum_to(reshape(dk, g.full(g.S, g.D)), k.shape());
  if (want[2]) r[2] = sum_to(reshape(dv, g.full(g.S, g.Dv)), v.shape());
  if (want[3]) r[3] = to(sum_to(reshape(dm, g.full(g.T, g.S)), mask.shape()), mask.dtype());
  return r;
}

}  // namespace detail

/// Scaled dot-product attention, as torch.nn.functional.scaled_dot_product_attention:
/// softmax(q k^T * scale + mask) v with optional causal masking and dropout on the
/// probabilities. q (..., T, D), k (..., S, D), v (..., S, Dv) -> (..., T, Dv).
/// attn_mask broadcasts to (..., T, S): bool (true = attend) or float (added to
/// the scores; -inf masks). is_causal masks keys j > i (top-left aligned).
/// scale defaults to 1/sqrt(D). Rows with every key masked give 0.
inline Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
                                           bool is_causal = false, std::optional<double> scale = std::nullopt,
                                           Generator& gen = default_generator()) {
  const detail::SdpaGeom g = detail::sdpa_check(q, k, v, attn_mask, dropout_p, is_causal, scale);
  const uint64_t seed = dropout_p > 0 ? gen.next_u64() : 0;
  Tensor lse;  // (..., T)
  Tensor out = detail::sdpa_forward_fused(q, k, v, attn_mask, g, is_causal, dropout_p, seed, lse);
  if (autograd::needs_grad(q, k, v, attn_mask)) {
    auto& n = autograd::record(
        "scaled_dot_product_attention", {q, k, v, attn_mask}, out, [](autograd::OpNode& n, const TensorList& grads) {
          const Tensor& dout = grads[0];
          if (!dout.defined()) return TensorList(4);
          const bool want[4] = {n.needs_input_grad(0), n.needs_input_grad(1), n.needs_input_grad(2),
                                n.needs_input_grad(3)};
          const bool causal = n.ints[0] != 0;
          const uint64_t seed = static_cast<uint64_t>(n.ints[1]);
          const double scale = n.reals[0], p = n.reals[1];
          Tensor q = n.saved(0), k = n.saved(1), v = n.saved(2), mask = n.saved(3);
          // create_graph: the same gradients in differentiable ops (double backward works)
          if (autograd::is_grad_enabled())
            return detail::sdpa_backward_composite(dout, q, k, v, mask, causal, scale, p, seed, want);
          return detail::sdpa_backward_fused(dout, q, k, v, mask, n.saved(5), n.saved(4), causal, scale, p, seed, want);
        });
    n.save(q);
    n.save(k);
    n.save(v);
    n.save(attn_mask);
    n.save(lse);
    n.save_output(out);
    n.ints = {is_causal ? 1 : 0, static_cast<int64_t>(seed)};
    n.reals = {g.scale, dropout_p};
  }
  return out;
}

namespace detail {

/// scaled_dot_product_attention written with ordinary differentiable ops (matmul,
/// masked softmax, matmul); materializes the (..., T, S) probabilities. Draws the
/// same dropout seed from `gen` as the fused op, so both agree for equal generators.
inline Tensor sdpa_reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask = Tensor(),
                             double dropout_p = 0.0, bool is_causal = false, std::optional<double> scale = std::nullopt,
                             Generator& gen = default_generator()) {
  const SdpaGeom g = sdpa_check(q, k, v, attn_mask, dropout_p, is_causal, scale);
  Tensor p = sdpa_probs(q, k, attn_mask, is_causal, g.scale);  // (..., T, S)
  if (dropout_p > 0) p = mul(p, sdpa_dropout_multiplier(gen.next_u64(), g, dropout_p, q.dtype()));
  return matmul(p, v);  // (..., T, Dv)
}

}  // namespace detail

}  // namespace genai
