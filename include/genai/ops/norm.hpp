// genai/ops/norm.hpp: normalization ops, as torch.nn.functional: batch_norm,
// layer_norm, group_norm, instance_norm and rms_norm.
//
// Reference: PyTorch 1.13 (F.batch_norm, F.layer_norm, F.group_norm,
// F.instance_norm), and torch 2.x F.rms_norm / T5's LayerNorm for rms_norm:
// y = x / sqrt(mean(x^2) + eps) * weight. Argument order and defaults are torch's;
// an undefined Tensor() stands for None.
//
// All five are one operation on the input viewed as (O, K, I): statistics per
// k over (O, I), then y = (x - mean_k) * rstd_k * w[c] + b[c], where the affine
// channel of element (o, k, i) is c = (k % k_mod) * k_mul + i / i_div:
//   batch_norm     (N, C, *):  O = N, K = C,     I = prod(*)      c = k
//   layer_norm     (*, D...):  O = 1, K = rows,  I = prod(D...)   c = i
//   group_norm     (N, C, *):  O = 1, K = N G,   I = C/G prod(*)  c = (k % G) C/G + i / prod(*)
//   instance_norm  (N, C, *):  O = 1, K = N C,   I = prod(*)      c = k % C
//   rms_norm: as layer_norm, without centering (mean = 0).
// Forward is one fused kernel, parallel over k: per (o, k) segment a two-pass
// mean / M2 while the segment is in cache, merged across o with Chan et al.'s
// formula (so the input is swept from memory once for the statistics), then the
// affine transform. Backward:
//   xhat = (x - mean) rstd, dxhat = dy w
//   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))     (rms_norm: no mean(dxhat) term;
//                                                                 running stats: dx = rstd dxhat)
//   dw = sum(dy xhat), db = sum(dy)   over everything but the channel
// as a fused kernel when grad mode is off, and as differentiable tensor ops (the
// statistics recomputed from x) under create_graph, so double backward works
// (gradient penalties through normalized critics).
//
// Differences from PyTorch:
// - weight and bias must have the input's dtype (running stats may be any float dtype).
// - momentum = None (cumulative moving average) is not supported: pass
//   momentum = 1 / (num_batches_tracked + 1) for the same effect.
// - rms_norm's eps defaults to the dtype's machine epsilon, as torch 2.x (torch
//   1.13 has no rms_norm).
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "genai/kernels/rowwise.hpp"
#include "genai/ops/all.hpp"

namespace genai {

namespace detail {

/// How the statistics are obtained: from the input (centered, or root mean
/// square only), or given (running statistics in eval mode).
enum class NormMode : int64_t { Center = 0, Rms = 1, Given = 2 };

/// The input viewed as (O, K, I), statistics per k over (O, I); the affine
/// channel of element (o, k, i) is (k % k_mod) * k_mul + i / i_div, in [0, C).
struct NormGeom {
  int64_t O = 1, K = 1, I = 1;
  int64_t k_mod = 1, k_mul = 0, i_div = 1;
  int64_t C = 0;
};

inline std::vector<int64_t> norm_geom_ints(const NormGeom& g) { return {g.O, g.K, g.I, g.k_mod, g.k_mul, g.i_div, g.C}; }
inline NormGeom norm_geom_from(const std::vector<int64_t>& v) {
  return NormGeom{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

// The kernels are plain loops, not Eigen expressions: a dozen distinct Eigen
// expressions instantiated for float and double cost ~4 s of compile time at -O2
// in every TU that uses a norm. Reductions use four independent double
// accumulators (instruction-level parallelism, and float inputs sum in double).

/// sum(a[i] (b[i] - c)) over n elements, or sum(b[i] - c) when a is null, or
/// sum((b[i] - c)^2) when a == b.
template <class T>
inline double norm_dot(const T* a, const T* b, int64_t n, double c) {
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  if (!a) {
    for (; i + 4 <= n; i += 4)
      for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(b[i + j]) - c;
    for (; i < n; ++i) s[0] += static_cast<double>(b[i]) - c;
  } else if (a == b) {
    for (; i + 4 <= n; i += 4)
      for (int j = 0; j < 4; ++j) {
        const double d = static_cast<double>(b[i + j]) - c;
        s[j] += d * d;
      }
    for (; i < n; ++i) {
      const double d = static_cast<double>(b[i]) - c;
      s[0] += d * d;
    }
  } else {
    for (; i + 4 <= n; i += 4)
      for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(a[i + j]) * (static_cast<double>(b[i + j]) - c);
    for (; i < n; ++i) s[0] += static_cast<double>(a[i]) * (static_cast<double>(b[i]) - c);
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/// sum(a[i]) and sum(a[i] (b[i] - c)) over n elements, in one pass.
template <class T>
inline void norm_sums(const T* a, const T* b, int64_t n, double c, double& sum_a, double& sum_ab) {
  double s[4] = {0, 0, 0, 0}, d[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {
      const double av = static_cast<double>(a[i + j]);
      s[j] += av;
      d[j] += av * (static_cast<double>(b[i + j]) - c);
    }
  for (; i < n; ++i) {
    const double av = static_cast<double>(a[i]);
    s[0] += av;
    d[0] += av * (static_cast<double>(b[i]) - c);
  }
  sum_a += (s[0] + s[1]) + (s[2] + s[3]);
  sum_ab += (d[0] + d[1]) + (d[2] + d[3]);
}

/// Forward kernel: y (O, K, I); mean, rstd, var (K) (computed, or read from mean/rstd in Given mode).
template <class T>
inline void norm_forward_kernel(const T* px, T* py, T* pmean, T* prstd, T* pvar, const T* pw, const T* pb,
                                const NormGeom& g, NormMode mode, double eps) {
  const int64_t O = g.O, K = g.K, I = g.I, L = g.i_div;
  const int64_t n_runs = I / L;
  const double n = static_cast<double>(O * I);
  const bool per_element = L == 1 && I > 0;  // layer_norm: the channel changes every element
  parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(O * I, 1)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double mean = 0, rstd = 0;
      if (mode == NormMode::Given) {
        mean = static_cast<double>(pmean[k]);
        rstd = static_cast<double>(prstd[k]);
      } else {
        double m2 = 0, cnt = 0;  // sum of squared deviations from `mean` over the segments so far
        bool done = false;
        if constexpr (std::is_same_v<T, float>) {
          if (O == 1 && I > 0) {  // one segment (layer_norm, group_norm, ...): vectorized double sums
            const T* xs = px + k * I;
            if (mode != NormMode::Rms) mean = kernels::row_sum_f64(xs, I, 0.0, false) / static_cast<double>(I);
            m2 = kernels::row_sum_f64(xs, I, mean, true);
            done = true;
          }
        }
        for (int64_t o = 0; o < O && I > 0 && !done; ++o) {
          const T* xs = px + (o * K + k) * I;
          if (mode == NormMode::Rms) {
            m2 += norm_dot<T>(xs, xs, I, 0.0);  // sum x^2
            continue;
          }
          // two passes over the segment while it is in cache, then Chan et al.'s merge of
          // (cnt, mean, m2) with the segment's (I, sm, sm2)
          const double sm = norm_dot<T>(nullptr, xs, I, 0.0) / static_cast<double>(I);
          const double sm2 = norm_dot<T>(xs, xs, I, sm);
          const double tot = cnt + static_cast<double>(I), delta = sm - mean;
          mean += delta * static_cast<double>(I) / tot;
          m2 += sm2 + delta * delta * cnt * static_cast<double>(I) / tot;
          cnt = tot;
        }
        const double var = n > 0 ? m2 / n : std::numeric_limits<double>::quiet_NaN();
        rstd = 1.0 / std::sqrt(var + eps);
        pmean[k] = static_cast<T>(mean);
        prstd[k] = static_cast<T>(rstd);
        if (pvar) pvar[k] = static_cast<T>(var);
      }
      const int64_t c0 = (k % g.k_mod) * g.k_mul;
      const T tm = static_cast<T>(mean), tr = static_cast<T>(rstd);
      for (int64_t o = 0; o < O; ++o) {
        const T* xs = px + (o * K + k) * I;
        T* ys = py + (o * K + k) * I;
        if (per_element) {  // y = (x - mean) rstd w + b, w and b indexed by i
          if constexpr (std::is_same_v<T, float>) {
            kernels::row_normalize(xs, ys, I, tm, tr, pw ? pw + c0 : nullptr, pb ? pb + c0 : nullptr);
            continue;
          }
          for (int64_t i = 0; i < I; ++i) ys[i] = (xs[i] - tm) * tr;
          if (pw)
            for (int64_t i = 0; i < I; ++i) ys[i] *= pw[c0 + i];
          if (pb)
            for (int64_t i = 0; i < I; ++i) ys[i] += pb[c0 + i];
          continue;
        }
        for (int64_t r = 0; r < n_runs; ++r) {  // one channel per run of L elements
          const int64_t c = c0 + r;
          const T scale = pw ? static_cast<T>(rstd * static_cast<double>(pw[c])) : tr;
          const T shift = pb ? pb[c] : T(0);
          const T* xr = xs + r * L;
          T* yr = ys + r * L;
          for (int64_t i = 0; i < L; ++i) yr[i] = (xr[i] - tm) * scale + shift;
        }
      }
    }
  });
}

/// Backward kernel: dx (O, K, I) (when pdx), and dw, db (C) accumulated in double (when pdw / pdb).
template <class T>
inline void norm_backward_kernel(const T* pg, const T* px, const T* pmean, const T* prstd, const T* pw, T* pdx,
                                 double* pdw, double* pdb, const NormGeom& g, NormMode mode) {
  const int64_t O = g.O, K = g.K, I = g.I, C = g.C, L = g.i_div;
  const int64_t n_runs = I / L;
  const double inv_n = O * I > 0 ? 1.0 / static_cast<double>(O * I) : 0.0;
  const bool per_element = L == 1 && I > 0;
  const bool need_wb = pdw || pdb;
  // each chunk of k accumulates dw, db into its own buffer (channels are shared across k)
  const int64_t grain = std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(O * I, 1));
  const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), (K + grain - 1) / grain));
  std::vector<double> acc(need_wb ? static_cast<size_t>(n_chunks * 2 * C) : 0, 0.0);
  parallel_for(0, n_chunks, 1, [&](int64_t j0, int64_t j1) {
    std::vector<T> gx(static_cast<size_t>(per_element ? I : 0));  // dxhat = dy w of one segment
    for (int64_t j = j0; j < j1; ++j) {
      double* aw = need_wb ? acc.data() + j * 2 * C : nullptr;
      double* ab = need_wb ? aw + C : nullptr;
      for (int64_t k = K * j / n_chunks; k < K * (j + 1) / n_chunks; ++k) {
        const T tm = pmean[k], tr = prstd[k];
        const double dm = static_cast<double>(tm), dr = static_cast<double>(tr);
        const int64_t c0 = (k % g.k_mod) * g.k_mul;
        // s1 = sum(dxhat), s2 = sum(dxhat xhat) over (o, i), with dxhat = dy w; and, per channel,
        // dw += sum(dy xhat), db += sum(dy): one pass over dy and x
        const bool need_s = pdx && mode != NormMode::Given;
        double s1 = 0, s2 = 0;
        if (need_s || need_wb) {
          for (int64_t o = 0; o < O; ++o) {
            const T* gs = pg + (o * K + k) * I;
            const T* xs = px + (o * K + k) * I;
            if (per_element) {
              if (need_s) {
                const T* gw = gs;
                if (pw) {
                  for (int64_t i = 0; i < I; ++i) gx[static_cast<size_t>(i)] = gs[i] * pw[c0 + i];
                  gw = gx.data();
                }
                double t1 = 0, t2 = 0;
                norm_sums<T>(gw, xs, I, dm, t1, t2);
                s1 += t1;
                s2 += t2 * dr;
              }
              if (pdw)
                for (int64_t i = 0; i < I; ++i)
                  aw[c0 + i] += static_cast<double>(gs[i]) * (static_cast<double>(xs[i]) - dm) * dr;
              if (pdb)
                for (int64_t i = 0; i < I; ++i) ab[c0 + i] += static_cast<double>(gs[i]);
              continue;
            }
            for (int64_t r = 0; r < n_runs; ++r) {  // one channel per run of L elements
              const int64_t c = c0 + r;
              double gsum = 0, gdot = 0;  // sum(dy), sum(dy (x - mean))
              norm_sums<T>(gs + r * L, xs + r * L, L, dm, gsum, gdot);
              const double wc = pw ? static_cast<double>(pw[c]) : 1.0;
              s1 += wc * gsum;
              s2 += wc * gdot * dr;
              if (pdw) aw[c] += gdot * dr;
              if (pdb) ab[c] += gsum;
            }
          }
        }
        if (!pdx) continue;
        // dx = rstd (dxhat - s1 / n - xhat s2 / n); Rms: without s1; Given: rstd dxhat
        const T a1 = mode == NormMode::Center ? static_cast<T>(s1 * inv_n) : T(0);
        const T a2 = mode != NormMode::Given ? static_cast<T>(s2 * inv_n) * tr : T(0);
        for (int64_t o = 0; o < O; ++o) {
          const T* gs = pg + (o * K + k) * I;
          const T* xs = px + (o * K + k) * I;
          T* ds = pdx + (o * K + k) * I;
          if (per_element) {
            if (pw)
              for (int64_t i = 0; i < I; ++i) ds[i] = (gs[i] * pw[c0 + i] - a1 - (xs[i] - tm) * a2) * tr;
            else
              for (int64_t i = 0; i < I; ++i) ds[i] = (gs[i] - a1 - (xs[i] - tm) * a2) * tr;
            continue;
          }
          for (int64_t r = 0; r < n_runs; ++r) {
            const T wc = pw ? pw[c0 + r] : T(1);
            const T* gr = gs + r * L;
            const T* xr = xs + r * L;
            T* dx_r = ds + r * L;
            for (int64_t i = 0; i < L; ++i) dx_r[i] = (gr[i] * wc - a1 - (xr[i] - tm) * a2) * tr;
          }
        }
      }
    }
  });
  for (int64_t j = 0; j < (need_wb ? n_chunks : 0); ++j)
    for (int64_t c = 0; c < C; ++c) {
      if (pdw) pdw[c] += acc[static_cast<size_t>(j * 2 * C + c)];
      if (pdb) pdb[c] += acc[static_cast<size_t>(j * 2 * C + C + c)];
    }
}

struct NormResult {
  Tensor y;     // the input's shape
  Tensor mean;  // (K); zeros for Rms
  Tensor rstd;  // (K)
  Tensor var;   // (K), biased; only in Center mode
};

/// xhat (O, K, I) in differentiable tensor ops; sets *rstd to the (1, K, 1) rstd.
inline Tensor norm_xhat_composite(const Tensor& xv, NormMode mode, double eps, const Tensor& given_mean,
                                  const Tensor& given_rstd, Tensor* rstd) {
  const int64_t K = xv.size(1);
  switch (mode) {
    case NormMode::Center: {
      Tensor xc = sub(xv, mean(xv, {0, 2}, true));                  // x - mean
      *rstd = rsqrt(add(mean(mul(xc, xc), {0, 2}, true), eps));     // 1 / sqrt(var + eps)
      return mul(xc, *rstd);
    }
    case NormMode::Rms:
      *rstd = rsqrt(add(mean(mul(xv, xv), {0, 2}, true), eps));     // 1 / sqrt(mean(x^2) + eps)
      return mul(xv, *rstd);
    case NormMode::Given:
      *rstd = reshape(given_rstd, {1, K, 1});
      return mul(sub(xv, reshape(given_mean, {1, K, 1})), *rstd);
  }
  return Tensor();
}

/// The whole normalization in differentiable tensor ops (the reference the fused kernel is tested against).
inline Tensor norm_forward_composite(const Tensor& x, const NormGeom& g, NormMode mode, double eps, const Tensor& w,
                                     const Tensor& b, const Shape& wshape, const Tensor& given_mean = Tensor(),
                                     const Tensor& given_rstd = Tensor()) {
  Tensor rstd;
  Tensor y = reshape(norm_xhat_composite(reshape(x, {g.O, g.K, g.I}), mode, eps, given_mean, given_rstd, &rstd), x.shape());
  if (w.defined()) y = mul(y, reshape(w, wshape));
  if (b.defined()) y = add(y, reshape(b, wshape));
  return y;
}

/// Backward in differentiable tensor ops (used under create_graph): {dx, dw, db}.
inline TensorList norm_backward_composite(const Tensor& gy, const Tensor& x, const Tensor& w, const NormGeom& g,
                                          NormMode mode, double eps, const Shape& wshape, const Shape& w_shape,
                                          const Shape& b_shape, const Tensor& given_mean, const Tensor& given_rstd,
                                          bool need_x, bool need_w, bool need_b) {
  const Shape V = {g.O, g.K, g.I};
  Tensor rstd;
  Tensor xhat = norm_xhat_composite(reshape(x, V), mode, eps, given_mean, given_rstd, &rstd);  // (O, K, I)
  Tensor dx, dw, db;
  if (need_x) {
    Tensor gxhat = reshape(w.defined() ? mul(gy, reshape(w, wshape)) : gy, V);  // y = xhat w + b  =>  dxhat = dy w
    if (mode == NormMode::Given) {
      dx = mul(gxhat, rstd);  // xhat = (x - mean) rstd, constant statistics  =>  dx = dxhat rstd
    } else {
      // xhat = (x - mean) rstd  =>  dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))  (rms: no mean(dxhat))
      Tensor t = sub(gxhat, mul(xhat, mean(mul(gxhat, xhat), {0, 2}, true)));
      if (mode == NormMode::Center) t = sub(t, mean(gxhat, {0, 2}, true));
      dx = mul(t, rstd);
    }
    dx = reshape(dx, x.shape());
  }
  if (need_w) dw = reshape(sum_to(mul(gy, reshape(xhat, x.shape())), wshape), w_shape);  // y = xhat w  =>  dw = sum dy xhat
  if (need_b) db = reshape(sum_to(gy, wshape), b_shape);                                // y = ... + b  =>  db = sum dy
  return {dx, dw, db};
}

/// Backward with the fused kernel (no graph): {dx, dw, db}.
inline TensorList norm_backward_fused(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                      const Tensor& rstd, const NormGeom& g, NormMode mode, const Shape& w_shape,
                                      const Shape& b_shape, bool need_x, bool need_w, bool need_b) {
  Tensor dx, dw, db;
  Tensor gc = contig(as_dtype(gy.detach(), x.dtype())), xc = contig(x.detach());
  Tensor wc = w.defined() ? contig(w.detach()) : Tensor();
  dispatch_float(x.dtype(), "norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (need_x) dx = make_tensor(x.shape(), x.dtype());
    std::vector<double> aw(need_w ? static_cast<size_t>(g.C) : 0, 0.0), ab(need_b ? static_cast<size_t>(g.C) : 0, 0.0);
    norm_backward_kernel<T>(gc.data_ptr<const T>(), xc.data_ptr<const T>(), mean.data_ptr<const T>(),
                            rstd.data_ptr<const T>(), wc.defined() ? wc.data_ptr<const T>() : nullptr,
                            need_x ? dx.data_ptr<T>() : nullptr, need_w ? aw.data() : nullptr,
                            need_b ? ab.data() : nullptr, g, mode);
    if (need_w) dw = from_vector(aw, w_shape, x.dtype());
    if (need_b) db = from_vector(ab, b_shape, x.dtype());
  });
  return {dx, dw, db};
}

/// Runs a normalization: the fused forward, recorded for autograd.
inline NormResult norm_run(const char* op, const Tensor& x, const NormGeom& g, NormMode mode, double eps,
                           const Tensor& w, const Tensor& b, const Shape& wshape, const Tensor& given_mean = Tensor(),
                           const Tensor& given_rstd = Tensor()) {
  for (const Tensor* p : {&w, &b})
    if (p->defined()) {
      GENAI_CHECK(p->dtype() == x.dtype(), op, ": ", p == &w ? "weight" : "bias", " has dtype ", dtype_name(p->dtype()),
                  " but the input has dtype ", dtype_name(x.dtype()), "; hint: convert them to the same dtype");
      GENAI_ASSERT(p->numel() == g.C);
    }
  NormResult r;
  Tensor xc = contig(x.detach());
  Tensor wc = w.defined() ? contig(w.detach()) : Tensor(), bc = b.defined() ? contig(b.detach()) : Tensor();
  r.y = make_tensor(x.shape(), x.dtype());
  if (mode == NormMode::Given) {
    // copies: the node must not keep the caller's running_mean buffer, which later
    // training steps update in place
    r.mean = make_tensor({g.K}, x.dtype());
    kernels::copy_into(r.mean, reshape(given_mean.detach(), {g.K}));
    r.rstd = contig(as_dtype(given_rstd.detach(), x.dtype()));
    GENAI_ASSERT(r.mean.numel() == g.K && r.rstd.numel() == g.K);
  } else {
    r.mean = make_tensor({g.K}, x.dtype());
    r.rstd = make_tensor({g.K}, x.dtype());
    if (mode == NormMode::Center) r.var = make_tensor({g.K}, x.dtype());
  }
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    norm_forward_kernel<T>(xc.data_ptr<const T>(), r.y.data_ptr<T>(), r.mean.data_ptr<T>(), r.rstd.data_ptr<T>(),
                           r.var.defined() ? r.var.data_ptr<T>() : nullptr,
                           wc.defined() ? wc.data_ptr<const T>() : nullptr, bc.defined() ? bc.data_ptr<const T>() : nullptr,
                           g, mode, eps);
  });
  if (autograd::needs_grad(x, w, b)) {
    auto& n = autograd::record(op, {x, w, b}, r.y, [](autograd::OpNode& n, const TensorList& gr) {
      Tensor xs = n.saved(0), ws = n.saved(1), mean = n.saved(2), rstd = n.saved(3);
      const NormGeom g = norm_geom_from(n.ints);
      const NormMode mode = static_cast<NormMode>(n.ints[7]);
      const bool nx = n.needs_input_grad(0), nw = n.needs_input_grad(1), nb = n.needs_input_grad(2);
      if (!autograd::is_grad_enabled())
        return norm_backward_fused(gr[0], xs, ws, mean, rstd, g, mode, n.shapes[1], n.shapes[2], nx, nw, nb);
      return norm_backward_composite(gr[0], xs, ws, g, mode, n.reals[0], n.shapes[0], n.shapes[1], n.shapes[2], mean,
                                     rstd, nx, nw, nb);
    });
    n.save(x);
    n.save(w);
    n.save(r.mean);
    n.save(r.rstd);
    n.ints = norm_geom_ints(g);
    n.ints.push_back(static_cast<int64_t>(mode));
    n.reals = {eps};
    n.shapes = {wshape, w.defined() ? w.shape() : Shape{}, b.defined() ? b.shape() : Shape{}};
  }
  return r;
}

inline void norm_check_input(const Tensor& x, const char* op, int64_t min_dim, const char* layout) {
  check_defined(x, op, "input");
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point input, got ", dtype_name(x.dtype()),
              "; hint: convert with .to(genai::kFloat32)");
  GENAI_CHECK(x.dim() >= min_dim, op, ": expected an input of shape ", layout, " with at least ", min_dim,
              " dimensions, got shape ", shape_str(x.shape()));
}

/// Checks that an optional per-channel tensor (weight, bias, running stat) has shape `want`.
inline void norm_check_param(const Tensor& p, const Shape& want, const char* op, const char* what, const Tensor& x) {
  if (!p.defined()) return;
  GENAI_CHECK(p.shape() == want, op, ": ", what, " must have shape ", shape_str(want), " for an input of shape ",
              shape_str(x.shape()), ", got ", shape_str(p.shape()));
  GENAI_CHECK(is_floating(p.dtype()), op, ": ", what, " must be a floating-point tensor, got ", dtype_name(p.dtype()));
}

/// [1, C, 1, ...] for an input (N, C, *): how a per-channel parameter broadcasts.
inline Shape channel_shape(const Tensor& x) {
  Shape s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

inline int64_t spatial_numel(const Tensor& x) {
  int64_t s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) s *= x.size(d);
  return s;
}

/// running = (1 - momentum) running + momentum value, in place without recording.
inline void update_running(const Tensor& running, const Tensor& value, double momentum) {
  if (!running.defined()) return;
  NoGradGuard ng;
  Tensor r = running;
  r.copy_(add(mul(running, 1.0 - momentum), mul(as_dtype(value, running.dtype()), momentum)));
}

}  // namespace detail

/// Batch normalization over (N, *) per channel of an (N, C, *) input (as F.batch_norm).
/// training: normalizes with the batch statistics and, when running_mean /
/// running_var are defined, updates them in place (running_var with the unbiased
/// variance, as PyTorch); otherwise normalizes with the running statistics.
inline Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                         double momentum = 0.1, double eps = 1e-5) {
  const char* op = "batch_norm";
  detail::norm_check_input(input, op, 2, "(N, C, *)");
  const int64_t N = input.size(0), C = input.size(1), S = detail::spatial_numel(input);
  detail::norm_check_param(weight, {C}, op, "weight", input);
  detail::norm_check_param(bias, {C}, op, "bias", input);
  detail::norm_check_param(running_mean, {C}, op, "running_mean", input);
  detail::norm_check_param(running_var, {C}, op, "running_var", input);
  detail::NormGeom g{N, C, S, C, 1, std::max<int64_t>(S, 1), C};
  const Shape wshape = detail::channel_shape(input);
  if (!training) {
    GENAI_CHECK(running_mean.defined() && running_var.defined(), op,
                ": running_mean and running_var are needed in eval mode (training = false); hint: pass them, or "
                "training = true to normalize with the batch statistics");
    Tensor rstd;
    {
      NoGradGuard ng;
      rstd = rsqrt(add(detail::as_dtype(running_var.detach(), input.dtype()), eps));  // (C)
    }
    return detail::norm_run(op, input, g, detail::NormMode::Given, eps, weight, bias, wshape, running_mean, rstd).y;
  }
  GENAI_CHECK(N * S != 1, op, ": expected more than 1 value per channel when training, got input of shape ",
              shape_str(input.shape()), "; hint: use a batch of more than one sample, or eval mode");
  detail::NormResult r = detail::norm_run(op, input, g, detail::NormMode::Center, eps, weight, bias, wshape);
  if (input.numel() > 0) {
    const double n = static_cast<double>(N * S);
    detail::update_running(running_mean, r.mean, momentum);
    detail::update_running(running_var, mul(r.var, n / (n - 1.0)), momentum);  // unbiased, as PyTorch
  }
  return r.y;
}

/// Layer normalization over the trailing dims `normalized_shape` (as F.layer_norm);
/// weight and bias have shape normalized_shape.
inline Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                         const Tensor& bias = Tensor(), double eps = 1e-5) {
  const char* op = "layer_norm";
  detail::norm_check_input(input, op, 0, "(*, normalized_shape)");
  const int64_t nd = static_cast<int64_t>(normalized_shape.size());
  bool ok = nd >= 1 && input.dim() >= nd;
  for (int64_t i = 0; ok && i < nd; ++i) ok = input.size(input.dim() - nd + i) == normalized_shape[i];
  GENAI_CHECK(ok, op, ": normalized_shape ", shape_str(normalized_shape), " must be non-empty and match the trailing "
              "dimensions of the input, got input of shape ", shape_str(input.shape()));
  detail::norm_check_param(weight, normalized_shape, op, "weight", input);
  detail::norm_check_param(bias, normalized_shape, op, "bias", input);
  const int64_t D = shape_numel(normalized_shape);
  const int64_t R = D > 0 ? input.numel() / D : 0;
  detail::NormGeom g{1, R, D, 1, 0, 1, D};
  return detail::norm_run(op, input, g, detail::NormMode::Center, eps, weight, bias, normalized_shape).y;
}

/// RMS normalization over the trailing dims (as torch 2.x F.rms_norm, T5's
/// LayerNorm): y = x / sqrt(mean(x^2) + eps) * weight. eps defaults to the
/// machine epsilon of the input's dtype.
inline Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                       std::optional<double> eps = std::nullopt) {
  const char* op = "rms_norm";
  detail::norm_check_input(input, op, 0, "(*, normalized_shape)");
  const int64_t nd = static_cast<int64_t>(normalized_shape.size());
  bool ok = nd >= 1 && input.dim() >= nd;
  for (int64_t i = 0; ok && i < nd; ++i) ok = input.size(input.dim() - nd + i) == normalized_shape[i];
  GENAI_CHECK(ok, op, ": normalized_shape ", shape_str(normalized_shape), " must be non-empty and match the trailing "
              "dimensions of the input, got input of shape ", shape_str(input.shape()));
  detail::norm_check_param(weight, normalized_shape, op, "weight", input);
  const double e = eps ? *eps
                       : (input.dtype() == kFloat64 ? std::numeric_limits<double>::epsilon()
                                                    : static_cast<double>(std::numeric_limits<float>::epsilon()));
  const int64_t D = shape_numel(normalized_shape);
  const int64_t R = D > 0 ? input.numel() / D : 0;
  detail::NormGeom g{1, R, D, 1, 0, 1, D};
  return detail::norm_run(op, input, g, detail::NormMode::Rms, e, weight, Tensor(), normalized_shape).y;
}

/// Group normalization of an (N, C, *) input: statistics per sample over each of
/// num_groups groups of C / num_groups channels (as F.group_norm); per-channel weight and bias (C).
inline Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = Tensor(),
                         const Tensor& bias = Tensor(), double eps = 1e-5) {
  const char* op = "group_norm";
  detail::norm_check_input(input, op, 2, "(N, C, *)");
  const int64_t N = input.size(0), C = input.size(1), S = detail::spatial_numel(input);
  GENAI_CHECK(num_groups > 0 && C % num_groups == 0, op, ": the number of channels must be divisible by num_groups, "
              "got input of shape ", shape_str(input.shape()), " and num_groups = ", num_groups);
  detail::norm_check_param(weight, {C}, op, "weight", input);
  detail::norm_check_param(bias, {C}, op, "bias", input);
  const int64_t cg = C / num_groups;
  detail::NormGeom g{1, N * num_groups, cg * S, num_groups, cg, std::max<int64_t>(S, 1), C};
  return detail::norm_run(op, input, g, detail::NormMode::Center, eps, weight, bias, detail::channel_shape(input)).y;
}

/// Instance normalization of an (N, C, *) input: statistics per sample and channel
/// over the spatial dims (as F.instance_norm). With use_input_stats and running
/// stats given, these are updated with the batch average of the per-instance
/// statistics (unbiased variance); without use_input_stats the running stats normalize.
inline Tensor instance_norm(const Tensor& input, const Tensor& running_mean = Tensor(),
                            const Tensor& running_var = Tensor(), const Tensor& weight = Tensor(),
                            const Tensor& bias = Tensor(), bool use_input_stats = true, double momentum = 0.1,
                            double eps = 1e-5) {
  const char* op = "instance_norm";
  detail::norm_check_input(input, op, 2, "(N, C, *)");
  const int64_t N = input.size(0), C = input.size(1), S = detail::spatial_numel(input);
  detail::norm_check_param(weight, {C}, op, "weight", input);
  detail::norm_check_param(bias, {C}, op, "bias", input);
  detail::norm_check_param(running_mean, {C}, op, "running_mean", input);
  detail::norm_check_param(running_var, {C}, op, "running_var", input);
  detail::NormGeom g{1, N * C, S, C, 1, std::max<int64_t>(S, 1), C};
  const Shape wshape = detail::channel_shape(input);
  if (!use_input_stats) {
    GENAI_CHECK(running_mean.defined() && running_var.defined(), op,
                ": running_mean and running_var are needed when use_input_stats is false");
    Tensor mean_rep, rstd_rep;  // (N C): the running stats repeated for every sample
    {
      NoGradGuard ng;
      Tensor rm = detail::as_dtype(running_mean.detach(), input.dtype());
      Tensor rv = detail::as_dtype(running_var.detach(), input.dtype());
      mean_rep = reshape(expand(reshape(rm, {1, C}), {N, C}), {N * C});
      rstd_rep = reshape(expand(reshape(rsqrt(add(rv, eps)), {1, C}), {N, C}), {N * C});
    }
    return detail::norm_run(op, input, g, detail::NormMode::Given, eps, weight, bias, wshape, mean_rep, rstd_rep).y;
  }
  GENAI_CHECK(S > 1, op, ": expected more than 1 spatial element when training, got input of shape ",
              shape_str(input.shape()));
  detail::NormResult r = detail::norm_run(op, input, g, detail::NormMode::Center, eps, weight, bias, wshape);
  if (N > 0 && (running_mean.defined() || running_var.defined())) {
    NoGradGuard ng;
    const double n = static_cast<double>(S);
    detail::update_running(running_mean, mean(reshape(r.mean, {N, C}), {0}), momentum);
    detail::update_running(running_var, mean(reshape(mul(r.var, n / (n - 1.0)), {N, C}), {0}), momentum);
  }
  return r.y;
}

}  // namespace genai
