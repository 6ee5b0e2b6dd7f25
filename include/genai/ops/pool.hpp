// genai/ops/pool.hpp: pooling, resampling and pixel shuffling of (N, C, H, W)
// images, as torch.nn.functional: max_pool2d (and max_pool2d_with_indices),
// avg_pool2d, adaptive_avg_pool2d, interpolate (modes nearest, nearest-exact,
// bilinear, area) and pixel_shuffle / pixel_unshuffle. Same argument order,
// defaults, output sizes (ceil_mode included) and index rules as PyTorch 1.13's
// CPU kernels: nearest reads floor(dst * scale) with scale = 1 / scale_factor (or
// in / out) in float precision; bilinear reads
// src = scale (dst + 0.5) - 0.5 clamped at 0 (align_corners=false) or
// src = dst (in - 1) / (out - 1) (align_corners=true).
//
// avg_pool2d, adaptive_avg_pool2d and the interpolations are one linear map,
// separable in h and w: out[o, p] = sum_{i, j} a_h(o, i) a_w(p, j) x[i, j], where
// each axis is a short list of taps per output index. One kernel runs the map
// (along w, then along h) and its adjoint, and each is the other's backward, so
// gradients of any order work. max_pool2d's backward scatters the gradient to the
// argmax, and the adjoint of that scatter is a gather: also a closed pair.
// pixel_shuffle / pixel_unshuffle are reshape + permute + reshape.
//
// Differences from PyTorch: no bicubic or antialiased modes; interpolate takes a
// 4-d input only (2-d spatial modes); max_pool2d_with_indices returns
// ValuesIndices {values, indices} instead of a tuple.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "genai/ops/all.hpp"
#include "genai/ops/conv.hpp"

namespace genai {

/// A (height, width) pair of scale factors: Scale2(2.0) is (2, 2).
struct Scale2 {
  double h = 1, w = 1;
  constexpr Scale2(double v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  constexpr Scale2(double h_, double w_) : h(h_), w(w_) {}
};

/// 2-d max pooling, as torch.nn.functional.max_pool2d; stride defaults to kernel_size.
/// input (N, C, H, W) or (C, H, W); padding (implicit -inf) at most half the kernel.
inline Tensor max_pool2d(const Tensor& input, Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                         Size2 padding = 0, Size2 dilation = 1, bool ceil_mode = false);
/// max_pool2d that also returns the int64 argmax of each window, as an index into
/// the flattened (H W) input plane (as torch's return_indices=True).
inline ValuesIndices max_pool2d_with_indices(const Tensor& input, Size2 kernel_size,
                                             std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                                             Size2 dilation = 1, bool ceil_mode = false);
/// 2-d average pooling, as torch.nn.functional.avg_pool2d.
inline Tensor avg_pool2d(const Tensor& input, Size2 kernel_size, std::optional<Size2> stride = std::nullopt,
                         Size2 padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                         std::optional<int64_t> divisor_override = std::nullopt);
/// Adaptive average pooling to output_size, as torch.nn.functional.adaptive_avg_pool2d:
/// output cell o averages input [floor(o in / out), ceil((o + 1) in / out)).
inline Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size);
/// Resizes (N, C, H, W) images, as torch.nn.functional.interpolate: give exactly one
/// of size and scale_factor; mode "nearest", "nearest-exact", "bilinear" or "area";
/// align_corners only with "bilinear" (default false).
inline Tensor interpolate(const Tensor& input, std::optional<Size2> size = std::nullopt,
                          std::optional<Scale2> scale_factor = std::nullopt, std::string_view mode = "nearest",
                          std::optional<bool> align_corners = std::nullopt,
                          std::optional<bool> recompute_scale_factor = std::nullopt);
/// (*, C r^2, H, W) -> (*, C, H r, W r), as torch.nn.functional.pixel_shuffle.
inline Tensor pixel_shuffle(const Tensor& input, int64_t upscale_factor);
/// (*, C, H r, W r) -> (*, C r^2, H, W), as torch.nn.functional.pixel_unshuffle.
inline Tensor pixel_unshuffle(const Tensor& input, int64_t downscale_factor);

namespace detail {

// ---- shared checks ---------------------------------------------------------------------

/// PyTorch's pooling_output_shape: floor (or ceil) of the window count; in ceil
/// mode the last window must start inside the input or its left padding.
inline int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

inline void check_pool_args(const char* op, const Tensor& x, Size2 k, Size2 s, Size2 p, Size2 d) {
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point input, got ", dtype_name(x.dtype()));
  GENAI_CHECK(k.h >= 1 && k.w >= 1, op, ": kernel_size must be positive, got ", size2_str(k), " for input ",
              shape_str(x.shape()));
  GENAI_CHECK(s.h >= 1 && s.w >= 1, op, ": stride must be positive, got ", size2_str(s), " for input ",
              shape_str(x.shape()));
  GENAI_CHECK(d.h >= 1 && d.w >= 1, op, ": dilation must be positive, got ", size2_str(d));
  GENAI_CHECK(p.h >= 0 && p.w >= 0 && p.h <= k.h / 2 && p.w <= k.w / 2, op, ": padding ", size2_str(p),
              " must be non-negative and at most half of kernel_size ", size2_str(k), " (input ", shape_str(x.shape()),
              ")");
}

inline void check_pool_output(const char* op, const Tensor& x, int64_t Ho, int64_t Wo, Size2 k, Size2 p) {
  GENAI_CHECK(Ho >= 1 && Wo >= 1, op, ": input ", shape_str(x.shape()), " with kernel_size ", size2_str(k),
              " and padding ", size2_str(p), " gives an empty output (", Ho, ", ", Wo,
              "); hint: the input is smaller than the (dilated) kernel");
}

// ---- max pooling ---------------------------------------------------------------------------

struct MaxPoolGeom {
  int64_t H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw;
};

/// y, idx (planes, Ho, Wo) = max over each window of x (planes, H, W); NaN wins, ties keep the first.
template <class T>
inline void max_pool_kernel(const T* x, T* y, int64_t* idx, int64_t planes, const MaxPoolGeom& g) {
  const int64_t work = std::max<int64_t>(1, g.Ho * g.Wo * g.kh * g.kw);
  parallel_for(0, planes, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const T* xp = x + pl * g.H * g.W;
      T* yp = y + pl * g.Ho * g.Wo;
      int64_t* ip = idx + pl * g.Ho * g.Wo;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        int64_t hs = oh * g.sh - g.ph;
        const int64_t he = std::min(hs + (g.kh - 1) * g.dh + 1, g.H);
        while (hs < 0) hs += g.dh;
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t ws = ow * g.sw - g.pw;
          const int64_t we = std::min(ws + (g.kw - 1) * g.dw + 1, g.W);
          while (ws < 0) ws += g.dw;
          int64_t best = hs * g.W + ws;
          T m = -std::numeric_limits<T>::infinity();
          for (int64_t ih = hs; ih < he; ih += g.dh)
            for (int64_t iw = ws; iw < we; iw += g.dw) {
              const T v = xp[ih * g.W + iw];
              if (v > m || std::isnan(v)) {
                m = v;
                best = ih * g.W + iw;
              }
            }
          yp[oh * g.Wo + ow] = m;
          ip[oh * g.Wo + ow] = best;
        }
      }
    }
  });
}

inline Tensor max_pool_scatter_op(const Tensor& g, const Tensor& idx, int64_t H, int64_t W);
inline Tensor max_pool_gather_op(const Tensor& g, const Tensor& idx);

/// gx (N, C, H, W) = zeros with g (N, C, Ho, Wo) added at the argmax positions idx.
inline Tensor max_pool_scatter_op(const Tensor& g, const Tensor& idx, int64_t H, int64_t W) {
  Tensor gc = contig(g), ic = contig(idx);
  const int64_t planes = g.size(0) * g.size(1), HWo = g.size(2) * g.size(3), HW = H * W;
  Tensor gx = make_tensor({g.size(0), g.size(1), H, W}, g.dtype());
  dispatch_float(g.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = gc.data_ptr<const T>();
    const int64_t* pi = ic.data_ptr<const int64_t>();
    T* po = gx.data_ptr<T>();
    parallel_for(0, planes, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, HW + HWo)),
                 [&](int64_t p0, int64_t p1) {
                   for (int64_t pl = p0; pl < p1; ++pl) {
                     T* o = po + pl * HW;
                     std::fill(o, o + HW, T(0));
                     const T* gp = pg + pl * HWo;
                     const int64_t* ip = pi + pl * HWo;
                     for (int64_t k = 0; k < HWo; ++k)
                       if (ip[k] >= 0 && ip[k] < HW) o[ip[k]] += gp[k];  // empty windows point nowhere
                   }
                 });
  });
  if (autograd::needs_grad(g)) {
    auto& n = autograd::record("max_pool2d_backward", {g}, gx, [](autograd::OpNode& n, const TensorList& gr) {
      // gx = scatter(g at idx)  =>  dg = gather(dgx at idx)
      return TensorList{max_pool_gather_op(gr[0], n.saved(0))};
    });
    n.save(idx);
  }
  return gx;
}

/// out (N, C, Ho, Wo) = g (N, C, H, W) read at the argmax positions idx (the adjoint of the scatter).
inline Tensor max_pool_gather_op(const Tensor& g, const Tensor& idx) {
  Tensor gc = contig(g), ic = contig(idx);
  const int64_t planes = g.size(0) * g.size(1), HW = g.size(2) * g.size(3), HWo = idx.size(2) * idx.size(3);
  Tensor out = make_tensor(idx.shape(), g.dtype());
  dispatch_float(g.dtype(), "max_pool2d_gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = gc.data_ptr<const T>();
    const int64_t* pi = ic.data_ptr<const int64_t>();
    T* po = out.data_ptr<T>();
    parallel_for(0, planes, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(1, HWo)),
                 [&](int64_t p0, int64_t p1) {
                   for (int64_t pl = p0; pl < p1; ++pl) {
                     const T* gp = pg + pl * HW;
                     const int64_t* ip = pi + pl * HWo;
                     T* o = po + pl * HWo;
                     for (int64_t k = 0; k < HWo; ++k) o[k] = (ip[k] >= 0 && ip[k] < HW) ? gp[ip[k]] : T(0);
                   }
                 });
  });
  if (autograd::needs_grad(g)) {
    auto& n = autograd::record("max_pool2d_gather", {g}, out, [](autograd::OpNode& n, const TensorList& gr) {
      // out = g at idx  =>  dg = scatter(dout at idx)
      return TensorList{max_pool_scatter_op(gr[0], n.saved(0), n.ints[0], n.ints[1])};
    });
    n.ints = {g.size(2), g.size(3)};
    n.save(idx);
  }
  return out;
}

inline ValuesIndices max_pool2d_impl(const Tensor& input, Size2 k, std::optional<Size2> stride, Size2 p, Size2 d,
                                     bool ceil_mode) {
  const char* op = "max_pool2d";
  check_defined(input, op, "input");
  if (input.dim() == 3) {  // unbatched (C, H, W)
    ValuesIndices r = max_pool2d_impl(unsqueeze(input, 0), k, stride, p, d, ceil_mode);
    return {squeeze(r.values, 0), squeeze(r.indices, 0)};
  }
  GENAI_CHECK(input.dim() == 4, op, ": expected a 4-d input (N, C, H, W) or a 3-d one (C, H, W), got shape ",
              shape_str(input.shape()));
  const Size2 s = stride.value_or(k);
  check_pool_args(op, input, k, s, p, d);
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  MaxPoolGeom g{H,
                W,
                pool_out_size(H, k.h, s.h, p.h, d.h, ceil_mode),
                pool_out_size(W, k.w, s.w, p.w, d.w, ceil_mode),
                k.h,
                k.w,
                s.h,
                s.w,
                p.h,
                p.w,
                d.h,
                d.w};
  check_pool_output(op, input, g.Ho, g.Wo, k, p);
  Tensor xc = contig(input);
  Tensor y = make_tensor({N, C, g.Ho, g.Wo}, input.dtype());
  Tensor idx = make_tensor({N, C, g.Ho, g.Wo}, kInt64);
  dispatch_float(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_kernel<T>(xc.data_ptr<const T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>(), N * C, g);
  });
  if (autograd::needs_grad(input)) {
    auto& n = autograd::record(op, {input}, y, [](autograd::OpNode& n, const TensorList& gr) {
      // y = x[argmax of each window]  =>  dx = dy scattered to the argmax
      return TensorList{max_pool_scatter_op(gr[0], n.saved(0), n.ints[0], n.ints[1])};
    });
    n.ints = {H, W};
    n.save(idx);
  }
  return {y, idx};
}

// ---- separable linear maps: avg pools and interpolation ----------------------------------

/// One axis of a separable linear map: output o reads inputs [start[o], start[o] + len[o])
/// with weights w[off[o] ...].
struct AxisTaps {
  int64_t in = 0, out = 0;
  std::vector<int64_t> start, len, off;
  std::vector<double> w;
  void add_uniform(int64_t s, int64_t l, double wt) {
    start.push_back(s);
    len.push_back(l);
    off.push_back(static_cast<int64_t>(w.size()));
    for (int64_t t = 0; t < l; ++t) w.push_back(wt);
  }
  void add_linear(int64_t i0, int64_t i1, double l0, double l1) {  // two taps (one when i0 == i1)
    start.push_back(i0);
    off.push_back(static_cast<int64_t>(w.size()));
    if (i1 == i0) {
      len.push_back(1);
      w.push_back(l0 + l1);
    } else {
      GENAI_ASSERT(i1 == i0 + 1);
      len.push_back(2);
      w.push_back(l0);
      w.push_back(l1);
    }
  }
};

/// Which op a separable map is (names of the forward and adjoint nodes).
enum class SepKind : int64_t { AvgPool, AdaptiveAvgPool, Nearest, NearestExact, Bilinear };
inline const char* sep_name(SepKind k, bool adjoint) {
  static const char* const fwd[] = {"avg_pool2d", "adaptive_avg_pool2d", "upsample_nearest2d",
                                    "upsample_nearest_exact2d", "upsample_bilinear2d"};
  static const char* const adj[] = {"avg_pool2d_backward", "adaptive_avg_pool2d_backward",
                                    "upsample_nearest2d_backward", "upsample_nearest_exact2d_backward",
                                    "upsample_bilinear2d_backward"};
  return (adjoint ? adj : fwd)[static_cast<int64_t>(k)];
}

/// y (planes, Ho, Wo) = A_h x (planes, H, W) A_w^T, or its adjoint gx (planes, H, W) = A_h^T g A_w.
template <class T>
inline void separable_kernel(const T* x, T* y, int64_t planes, const AxisTaps& ah, const AxisTaps& aw, bool adjoint) {
  const int64_t H = ah.in, W = aw.in, Ho = ah.out, Wo = aw.out;
  const std::vector<T> wh(ah.w.begin(), ah.w.end()), ww(aw.w.begin(), aw.w.end());
  const int64_t work = std::max<int64_t>(1, H * Wo + Ho * Wo + H * W);
  parallel_for(0, planes, std::max<int64_t>(1, (int64_t(1) << 14) / work), [&](int64_t p0, int64_t p1) {
    T* tmp = conv_scratch<T>(static_cast<size_t>(std::max<int64_t>(1, H * Wo)));  // (H, Wo)
    for (int64_t pl = p0; pl < p1; ++pl) {
      if (!adjoint) {
        const T* xp = x + pl * H * W;
        T* yp = y + pl * Ho * Wo;
        for (int64_t h = 0; h < H; ++h) {  // tmp = x A_w^T
          const T* xr = xp + h * W;
          T* tr = tmp + h * Wo;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const T* wt = ww.data() + aw.off[ow];
            const T* xs = xr + aw.start[ow];
            T acc = 0;
            for (int64_t t = 0; t < aw.len[ow]; ++t) acc += wt[t] * xs[t];
            tr[ow] = acc;
          }
        }
        for (int64_t oh = 0; oh < Ho; ++oh) {  // y = A_h tmp
          T* yr = yp + oh * Wo;
          std::fill(yr, yr + Wo, T(0));
          for (int64_t t = 0; t < ah.len[oh]; ++t) {
            const T a = wh[ah.off[oh] + t];
            const T* tr = tmp + (ah.start[oh] + t) * Wo;
            for (int64_t ow = 0; ow < Wo; ++ow) yr[ow] += a * tr[ow];
          }
        }
      } else {
        const T* gp = x + pl * Ho * Wo;
        T* gx = y + pl * H * W;
        std::fill(tmp, tmp + H * Wo, T(0));
        for (int64_t oh = 0; oh < Ho; ++oh) {  // tmp = A_h^T g
          const T* gr = gp + oh * Wo;
          for (int64_t t = 0; t < ah.len[oh]; ++t) {
            const T a = wh[ah.off[oh] + t];
            T* tr = tmp + (ah.start[oh] + t) * Wo;
            for (int64_t ow = 0; ow < Wo; ++ow) tr[ow] += a * gr[ow];
          }
        }
        for (int64_t h = 0; h < H; ++h) {  // gx = tmp A_w
          T* gxr = gx + h * W;
          std::fill(gxr, gxr + W, T(0));
          const T* tr = tmp + h * Wo;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const T v = tr[ow];
            const T* wt = ww.data() + aw.off[ow];
            T* gs = gxr + aw.start[ow];
            for (int64_t t = 0; t < aw.len[ow]; ++t) gs[t] += wt[t] * v;
          }
        }
      }
    }
  });
}

/// Packs both axes into a node's ints / reals, and back.
inline void save_taps(autograd::OpNode& n, SepKind kind, bool adjoint, const AxisTaps& ah, const AxisTaps& aw) {
  n.ints = {static_cast<int64_t>(kind), adjoint ? 1 : 0, ah.in, ah.out, aw.in, aw.out};
  for (const AxisTaps* a : {&ah, &aw}) {
    n.ints.insert(n.ints.end(), a->start.begin(), a->start.end());
    n.ints.insert(n.ints.end(), a->len.begin(), a->len.end());
  }
  n.reals = ah.w;
  n.reals.insert(n.reals.end(), aw.w.begin(), aw.w.end());
}
inline void load_taps(const autograd::OpNode& n, SepKind& kind, bool& adjoint, AxisTaps& ah, AxisTaps& aw) {
  kind = static_cast<SepKind>(n.ints[0]);
  adjoint = n.ints[1] != 0;
  size_t pos = 6, wpos = 0;
  ah.in = n.ints[2];
  ah.out = n.ints[3];
  aw.in = n.ints[4];
  aw.out = n.ints[5];
  for (AxisTaps* a : {&ah, &aw}) {
    const auto no = static_cast<size_t>(a->out);
    a->start.assign(n.ints.begin() + static_cast<long>(pos), n.ints.begin() + static_cast<long>(pos + no));
    a->len.assign(n.ints.begin() + static_cast<long>(pos + no), n.ints.begin() + static_cast<long>(pos + 2 * no));
    pos += 2 * no;
    a->off.resize(no);
    int64_t total = 0;
    for (size_t o = 0; o < no; ++o) {
      a->off[o] = total;
      total += a->len[o];
    }
    a->w.assign(n.reals.begin() + static_cast<long>(wpos), n.reals.begin() + static_cast<long>(wpos) + total);
    wpos += static_cast<size_t>(total);
  }
}

/// The separable map (adjoint = false: (N, C, H, W) -> (N, C, Ho, Wo)) or its adjoint, recorded.
inline Tensor separable_op(const Tensor& x, const AxisTaps& ah, const AxisTaps& aw, SepKind kind, bool adjoint) {
  const char* name = sep_name(kind, adjoint);
  Tensor xc = contig(x);
  const int64_t N = x.size(0), C = x.size(1);
  GENAI_ASSERT(x.size(2) == (adjoint ? ah.out : ah.in) && x.size(3) == (adjoint ? aw.out : aw.in));
  Tensor y = make_tensor({N, C, adjoint ? ah.in : ah.out, adjoint ? aw.in : aw.out}, x.dtype());
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    separable_kernel<T>(xc.data_ptr<const T>(), y.data_ptr<T>(), N * C, ah, aw, adjoint);
  });
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record(name, {x}, y, [](autograd::OpNode& n, const TensorList& gr) {
      SepKind kind;
      bool adjoint;
      AxisTaps ah, aw;
      load_taps(n, kind, adjoint, ah, aw);
      // y = A_h x A_w^T  =>  dx = A_h^T dy A_w (and the adjoint's backward is the map itself)
      return TensorList{separable_op(gr[0], ah, aw, kind, !adjoint)};
    });
    save_taps(n, kind, adjoint, ah, aw);
  }
  return y;
}

inline AxisTaps avg_pool_axis(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool count_include_pad,
                              std::optional<double> fixed_weight) {
  AxisTaps a;
  a.in = in;
  a.out = out;
  for (int64_t o = 0; o < out; ++o) {
    const int64_t s0 = o * s - p, e0 = std::min(s0 + k, in + p);  // window with its padding
    const int64_t b = std::max<int64_t>(s0, 0), e = std::min(e0, in);
    const int64_t l = std::max<int64_t>(e - b, 0);
    const int64_t div = count_include_pad ? e0 - s0 : l;
    a.add_uniform(b, l, fixed_weight ? *fixed_weight : (div > 0 ? 1.0 / static_cast<double>(div) : 0.0));
  }
  return a;
}

inline AxisTaps adaptive_axis(int64_t in, int64_t out) {
  AxisTaps a;
  a.in = in;
  a.out = out;
  for (int64_t o = 0; o < out; ++o) {
    const int64_t b = (o / out) * in + ((o % out) * in) / out;  // floor(o in / out)
    const int64_t e = 1 + ((o + 1) * in - 1) / out;             // ceil((o + 1) in / out)
    a.add_uniform(b, e - b, 1.0 / static_cast<double>(e - b));
  }
  return a;
}

/// PyTorch's compute_scales_value: 1 / scale_factor when given, else in / out (in precision T).
template <class T>
inline T interp_scale(int64_t in, int64_t out, std::optional<double> scale) {
  return scale && *scale > 0 ? static_cast<T>(1.0 / *scale) : static_cast<T>(in) / static_cast<T>(out);
}

inline AxisTaps nearest_axis(int64_t in, int64_t out, std::optional<double> scale, bool exact, bool single) {
  AxisTaps a;
  a.in = in;
  a.out = out;
  for (int64_t o = 0; o < out; ++o) {
    int64_t src;
    if (!exact && out == in) {
      src = o;
    } else if (!exact && out == 2 * in) {
      src = o >> 1;
    } else if (!exact) {  // PyTorch's nearest_idx: floorf(dst * scale) with a float scale
      const float sc = interp_scale<float>(in, out, scale);
      src = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * sc)), in - 1);
    } else if (single) {  // nearest-exact: floor((dst + 0.5) scale), the scale in the tensor's precision
      const float sc = interp_scale<float>(in, out, scale);
      src = std::min(static_cast<int64_t>(std::floor((static_cast<float>(o) + 0.5f) * sc)), in - 1);
    } else {
      const double sc = interp_scale<double>(in, out, scale);
      src = std::min(static_cast<int64_t>(std::floor(static_cast<float>((static_cast<double>(o) + 0.5) * sc))), in - 1);
    }
    a.add_uniform(src, 1, 1.0);
  }
  return a;
}

inline AxisTaps bilinear_axis(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  AxisTaps a;
  a.in = in;
  a.out = out;
  const double sc = align_corners ? (out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0)
                                  : interp_scale<double>(in, out, scale);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in) {  // PyTorch copies when the size is unchanged
      a.add_uniform(o, 1, 1.0);
      continue;
    }
    double src = align_corners ? sc * static_cast<double>(o) : sc * (static_cast<double>(o) + 0.5) - 0.5;
    if (src < 0) src = 0;
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const double l1 = std::min(std::max(src - static_cast<double>(i0), 0.0), 1.0);
    a.add_linear(i0, i1, 1.0 - l1, l1);
  }
  return a;
}

/// Runs f on a 4-d view of a (C, H, W) or (N, C, H, W) input, restoring the rank.
template <class F>
inline Tensor with_batch(const Tensor& x, const char* op, F&& f) {
  check_defined(x, op, "input");
  GENAI_CHECK(x.dim() == 3 || x.dim() == 4, op,
              ": expected a 4-d input (N, C, H, W) or a 3-d one (C, H, W), got shape ", shape_str(x.shape()));
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point input, got ", dtype_name(x.dtype()));
  if (x.dim() == 3) return squeeze(f(unsqueeze(x, 0)), 0);
  return f(x);
}

}  // namespace detail

// ---- public ops ------------------------------------------------------------------------------

inline Tensor max_pool2d(const Tensor& input, Size2 kernel_size, std::optional<Size2> stride, Size2 padding,
                         Size2 dilation, bool ceil_mode) {
  return detail::max_pool2d_impl(input, kernel_size, stride, padding, dilation, ceil_mode).values;
}

inline ValuesIndices max_pool2d_with_indices(const Tensor& input, Size2 kernel_size, std::optional<Size2> stride,
                                             Size2 padding, Size2 dilation, bool ceil_mode) {
  return detail::max_pool2d_impl(input, kernel_size, stride, padding, dilation, ceil_mode);
}

inline Tensor avg_pool2d(const Tensor& input, Size2 kernel_size, std::optional<Size2> stride, Size2 padding,
                         bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  return detail::with_batch(input, "avg_pool2d", [&](const Tensor& x) {
    const Size2 s = stride.value_or(kernel_size);
    detail::check_pool_args("avg_pool2d", x, kernel_size, s, padding, 1);
    GENAI_CHECK(!divisor_override || *divisor_override != 0, "avg_pool2d: divisor_override must be non-zero (input ",
                shape_str(x.shape()), ")");
    const int64_t H = x.size(2), W = x.size(3);
    const int64_t Ho = detail::pool_out_size(H, kernel_size.h, s.h, padding.h, 1, ceil_mode);
    const int64_t Wo = detail::pool_out_size(W, kernel_size.w, s.w, padding.w, 1, ceil_mode);
    detail::check_pool_output("avg_pool2d", x, Ho, Wo, kernel_size, padding);
    std::optional<double> fh, fw;  // divisor_override: 1/D on the h taps, 1 on the w taps
    if (divisor_override) {
      fh = 1.0 / static_cast<double>(*divisor_override);
      fw = 1.0;
    }
    detail::AxisTaps ah = detail::avg_pool_axis(H, Ho, kernel_size.h, s.h, padding.h, count_include_pad, fh);
    detail::AxisTaps aw = detail::avg_pool_axis(W, Wo, kernel_size.w, s.w, padding.w, count_include_pad, fw);
    return detail::separable_op(x, ah, aw, detail::SepKind::AvgPool, false);
  });
}

inline Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size) {
  return detail::with_batch(input, "adaptive_avg_pool2d", [&](const Tensor& x) {
    GENAI_CHECK(output_size.h >= 1 && output_size.w >= 1, "adaptive_avg_pool2d: output_size must be positive, got ",
                detail::size2_str(output_size), " for input ", shape_str(x.shape()));
    GENAI_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: input ", shape_str(x.shape()),
                " has an empty spatial dimension");
    detail::AxisTaps ah = detail::adaptive_axis(x.size(2), output_size.h);
    detail::AxisTaps aw = detail::adaptive_axis(x.size(3), output_size.w);
    return detail::separable_op(x, ah, aw, detail::SepKind::AdaptiveAvgPool, false);
  });
}

inline Tensor interpolate(const Tensor& input, std::optional<Size2> size, std::optional<Scale2> scale_factor,
                          std::string_view mode, std::optional<bool> align_corners,
                          std::optional<bool> recompute_scale_factor) {
  const char* op = "interpolate";
  detail::check_defined(input, op, "input");
  const bool nearest = mode == "nearest", exact = mode == "nearest-exact", bilinear = mode == "bilinear",
             area = mode == "area";
  GENAI_CHECK(nearest || exact || bilinear || area, op, ": unsupported mode \"", mode,
              "\"; expected \"nearest\", \"nearest-exact\", \"bilinear\" or \"area\"");
  GENAI_CHECK(input.dim() == 4, op, ": mode \"", mode, "\" expects a 4-d input (N, C, H, W), got shape ",
              shape_str(input.shape()));
  GENAI_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  GENAI_CHECK(size.has_value() != scale_factor.has_value(), op, ": give exactly one of size and scale_factor (input ",
              shape_str(input.shape()), ")");
  GENAI_CHECK(!align_corners || bilinear, op, ": align_corners can only be set with mode \"bilinear\", got mode \"",
              mode, "\"");
  GENAI_CHECK(!(recompute_scale_factor.value_or(false) && size), op,
              ": recompute_scale_factor is only meaningful with scale_factor");
  const int64_t H = input.size(2), W = input.size(3);
  int64_t Ho, Wo;
  std::optional<double> sh, sw;  // the scales handed to the kernels (as PyTorch)
  if (size) {
    Ho = size->h;
    Wo = size->w;
  } else {
    GENAI_CHECK(
        scale_factor->h > 0 && scale_factor->w > 0 && std::isfinite(scale_factor->h) && std::isfinite(scale_factor->w),
        op, ": scale_factor must be positive and finite, got (", scale_factor->h, ", ", scale_factor->w, ")");
    Ho = static_cast<int64_t>(std::floor(static_cast<double>(H) * scale_factor->h));
    Wo = static_cast<int64_t>(std::floor(static_cast<double>(W) * scale_factor->w));
    if (!recompute_scale_factor.value_or(false)) {
      sh = scale_factor->h;
      sw = scale_factor->w;
    }
  }
  GENAI_CHECK(Ho >= 1 && Wo >= 1 && H >= 1 && W >= 1, op, ": input ", shape_str(input.shape()),
              " would be resized to an empty output (", Ho, ", ", Wo, ")");
  if (area) return adaptive_avg_pool2d(input, Size2{Ho, Wo});
  if (bilinear) {
    const bool ac = align_corners.value_or(false);
    return detail::separable_op(input, detail::bilinear_axis(H, Ho, ac, sh), detail::bilinear_axis(W, Wo, ac, sw),
                                detail::SepKind::Bilinear, false);
  }
  const bool single = input.dtype() == kFloat32;
  return detail::separable_op(input, detail::nearest_axis(H, Ho, sh, exact, single),
                              detail::nearest_axis(W, Wo, sw, exact, single),
                              exact ? detail::SepKind::NearestExact : detail::SepKind::Nearest, false);
}

inline Tensor pixel_shuffle(const Tensor& input, int64_t upscale_factor) {
  const char* op = "pixel_shuffle";
  detail::check_defined(input, op, "input");
  const int64_t r = upscale_factor;
  GENAI_CHECK(r >= 1, op, ": upscale_factor must be positive, got ", r);
  GENAI_CHECK(input.dim() >= 3, op, ": expected an input of at least 3 dims (*, C, H, W), got shape ",
              shape_str(input.shape()));
  const int64_t C = input.size(-3), H = input.size(-2), W = input.size(-1);
  GENAI_CHECK(C % (r * r) == 0, op, ": the ", C, " channels of input ", shape_str(input.shape()),
              " are not divisible by upscale_factor^2 = ", r * r);
  Shape lead(input.shape().begin(), input.shape().end() - 3);
  const auto nl = static_cast<int64_t>(lead.size());
  Shape s6 = lead;  // (*, C, r, r, H, W)
  for (int64_t v : {C / (r * r), r, r, H, W}) s6.push_back(v);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < nl; ++i) perm.push_back(i);
  for (int64_t v : {0, 3, 1, 4, 2}) perm.push_back(nl + v);  // (*, C, H, r, W, r)
  Shape out = lead;
  for (int64_t v : {C / (r * r), H * r, W * r}) out.push_back(v);
  return reshape(permute(reshape(input, s6), perm), out);
}

inline Tensor pixel_unshuffle(const Tensor& input, int64_t downscale_factor) {
  const char* op = "pixel_unshuffle";
  detail::check_defined(input, op, "input");
  const int64_t r = downscale_factor;
  GENAI_CHECK(r >= 1, op, ": downscale_factor must be positive, got ", r);
  GENAI_CHECK(input.dim() >= 3, op, ": expected an input of at least 3 dims (*, C, H, W), got shape ",
              shape_str(input.shape()));
  const int64_t C = input.size(-3), H = input.size(-2), W = input.size(-1);
  GENAI_CHECK(H % r == 0 && W % r == 0, op, ": the spatial size (", H, ", ", W, ") of input ", shape_str(input.shape()),
              " is not divisible by downscale_factor ", r);
  Shape lead(input.shape().begin(), input.shape().end() - 3);
  const auto nl = static_cast<int64_t>(lead.size());
  Shape s6 = lead;  // (*, C, H/r, r, W/r, r)
  for (int64_t v : {C, H / r, r, W / r, r}) s6.push_back(v);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < nl; ++i) perm.push_back(i);
  for (int64_t v : {0, 2, 4, 1, 3}) perm.push_back(nl + v);  // (*, C, r, r, H/r, W/r)
  Shape out = lead;
  for (int64_t v : {C * r * r, H / r, W / r}) out.push_back(v);
  return reshape(permute(reshape(input, s6), perm), out);
}

}  // namespace genai
