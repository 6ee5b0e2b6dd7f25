// genai/ops/conv.hpp: 2-d convolution and transposed convolution, as
// torch.nn.functional.conv2d and conv_transpose2d (stride, padding, dilation,
// groups, output_padding; same argument order and defaults), and the weight
// gradient of a convolution as an op of its own, conv2d_weight_grad (as
// torch.nn.grad.conv2d_weight, with PyTorch's argument roles).
//
// Kernels: im2col + GEMM (kernels::gemm), the scheme of Caffe and of PyTorch's CPU
// slow_conv2d (K. Chellapilla et al., "High performance convolutional neural
// networks for document processing", 2006). The column buffer holds a band of
// output rows at a time (thread-local, grow-only, reused across calls), and the
// work is split over (batch, group, row band). 1x1 stride-1 unpadded convolutions
// skip im2col: the input plane is the GEMM operand itself. The adjoint (the input
// gradient, conv_transpose2d) of a stride-1 convolution is a forward convolution
// with flipped, transposed weights and runs on the forward kernel; strided ones
// use GEMM + col2im.
//
// Autograd: the three ops form a closed set, so gradients of gradients of any
// order work (WGAN-GP, R1 penalties):
//   conv2d(x, w)              dx = conv_transpose2d(dy, w)    dw = conv2d_weight_grad(x, dy)
//   conv_transpose2d(y, w)    dy = conv2d(dx, w)              dw = conv2d_weight_grad(dx, y)
//   conv2d_weight_grad(x, dy) dx = conv_transpose2d(dy, ggw)  d(dy) = conv2d(x, ggw)
// Internally each op takes its output size explicitly, which is how the
// output_padding of a transposed convolution and the cropping of its adjoint are
// expressed without extra pad/slice ops.
//
// Differences from PyTorch: padding is a number or a (h, w) pair (no "same" or
// "valid" strings); input, weight and bias must share one floating dtype (as torch).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "genai/kernels/gemm.hpp"
#include "genai/ops/all.hpp"

namespace genai {

/// A (height, width) pair, as torch's _pair: Size2(3) is (3, 3), Size2{3, 1} is (3, 1).
struct Size2 {
  int64_t h = 0, w = 0;
  constexpr Size2(int64_t v) : h(v), w(v) {}  // NOLINT(google-explicit-constructor)
  constexpr Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  constexpr Size2(std::array<int64_t, 2> a) : h(a[0]), w(a[1]) {}  // NOLINT(google-explicit-constructor)
  friend constexpr bool operator==(const Size2&, const Size2&) = default;
};

// ---- public ops (defined below) ---------------------------------------------------

/// 2-d convolution (cross-correlation), as torch.nn.functional.conv2d.
/// input (N, C, H, W) or (C, H, W); weight (O, C/groups, kh, kw); bias (O) or undefined.
/// Returns (N, O, Ho, Wo), Ho = (H + 2 padding.h - dilation.h (kh - 1) - 1) / stride.h + 1.
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), Size2 stride = 1,
                     Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

/// 2-d transposed convolution, as torch.nn.functional.conv_transpose2d (note the
/// argument order: output_padding and groups come before dilation).
/// input (N, C, H, W) or (C, H, W); weight (C, O/groups, kh, kw); bias (O) or undefined.
/// Returns (N, O, Ho, Wo), Ho = (H - 1) stride.h - 2 padding.h + dilation.h (kh - 1) + output_padding.h + 1.
inline Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                               Size2 stride = 1, Size2 padding = 0, Size2 output_padding = 0, int64_t groups = 1,
                               Size2 dilation = 1);

/// The gradient of conv2d's weight, as a differentiable op (torch.nn.grad.conv2d_weight):
/// dw[o, c, i, j] = sum_{n, p, q} input[n, g c', p s.h - pad.h + i d.h, q s.w - pad.w + j d.w] grad_output[n, o, p, q].
/// input (N, C, H, W); grad_output (N, O, Ho, Wo); returns weight_shape (O, C/groups, kh, kw).
inline Tensor conv2d_weight_grad(const Tensor& input, const Tensor& grad_output, const Shape& weight_shape,
                                 Size2 stride = 1, Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

namespace detail {

inline std::string size2_str(Size2 s) { return str_cat("(", s.h, ", ", s.w, ")"); }

// ---- geometry ---------------------------------------------------------------------

/// Stride, padding, dilation and groups of a convolution (stored in a node's ints).
struct ConvParams {
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
};

inline ConvParams conv_params(Size2 s, Size2 p, Size2 d, int64_t groups) {
  return ConvParams{s.h, s.w, p.h, p.w, d.h, d.w, groups};
}
inline std::vector<int64_t> conv_ints(const ConvParams& p, int64_t a, int64_t b) {
  return {p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.groups, a, b};
}
inline ConvParams conv_params_of(const std::vector<int64_t>& v) {
  return ConvParams{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

/// One convolution y = conv2d(x, w), seen from both sides: the image side x
/// (N, C, H, W) (conv_transpose2d's output) and the feature side y (N, O, Ho, Wo)
/// (conv_transpose2d's input); weight (O, Cg, kh, kw). The kernels accept any
/// sizes on both sides: taps that fall outside the image read (or write) zeros.
struct ConvGeom {
  int64_t N, C, H, W;
  int64_t O, Ho, Wo;
  int64_t kh, kw;
  ConvParams p;
  int64_t G, Cg, Og, K;  // groups, channels per group on each side, K = Cg kh kw (im2col rows)
  bool pointwise;        // 1x1, stride 1, no padding, same size on both sides: no im2col
};

inline ConvGeom conv_geom(const Shape& xs, const Shape& ws, int64_t Ho, int64_t Wo, const ConvParams& p) {
  ConvGeom g;
  g.N = xs[0];
  g.C = xs[1];
  g.H = xs[2];
  g.W = xs[3];
  g.O = ws[0];
  g.kh = ws[2];
  g.kw = ws[3];
  g.Ho = Ho;
  g.Wo = Wo;
  g.p = p;
  g.G = p.groups;
  g.Cg = ws[1];
  g.Og = g.O / g.G;
  g.K = g.Cg * g.kh * g.kw;
  g.pointwise = g.kh == 1 && g.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 && Ho == g.H && Wo == g.W;
  GENAI_ASSERT(g.Cg * g.G == g.C && g.Og * g.G == g.O);
  return g;
}

inline int64_t ceil_div_pos(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Output columns [lo, hi) whose tap at kernel column offset `off` (= j dw - pw) lands inside [0, W).
inline void valid_cols(int64_t off, int64_t stride, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div_pos(-off, stride);
  hi = W - off <= 0 ? 0 : ceil_div_pos(W - off, stride);
  lo = std::min(lo, Wo);
  hi = std::clamp(hi, lo, Wo);
}

/// A grow-only, 64-byte-aligned scratch buffer per thread and element type,
/// reused across calls (im2col columns, pooling temporaries).
template <class T>
inline T* conv_scratch(size_t n) {
  struct Buf {
    void* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf b;
  if (b.cap < n * sizeof(T)) {
    std::free(b.p);
    b.p = nullptr;
    b.cap = 0;
    const size_t bytes = (n * sizeof(T) + 4095) / 4096 * 4096;
    b.p = aligned_malloc(bytes);
    b.cap = bytes;
  }
  return static_cast<T*>(b.p);
}

/// Elements of the im2col buffer a task may use (a band of output rows is cut to fit).
constexpr int64_t kConvColBudget = int64_t(1) << 18;

/// Output rows per band: the column buffer fits the budget, and with few
/// (batch, group) pairs the rows are split so that every thread gets work.
inline int64_t conv_band_rows(const ConvGeom& g, bool split_for_threads) {
  int64_t rows = g.Ho;
  if (!g.pointwise)
    rows = std::clamp<int64_t>(kConvColBudget / std::max<int64_t>(1, g.K * g.Wo), 1, std::max<int64_t>(g.Ho, 1));
  const int64_t nt = get_num_threads(), planes = g.N * g.G;
  if (split_for_threads && planes > 0 && planes < nt && g.Ho > 0)
    rows = std::min(rows, ceil_div_pos(g.Ho, ceil_div_pos(nt, planes)));
  return std::max<int64_t>(rows, 1);
}

/// Images per GEMM when the output planes are small: im2col of several images side by
/// side gives the GEMM enough columns (a 7 x 7 plane alone is 49). 1: no folding
/// (large planes are cut into bands of rows instead). Leaves work for every thread.
inline int64_t conv_fold(const ConvGeom& g) {
  const int64_t HWo = g.Ho * g.Wo;
  if (g.N <= 1 || HWo >= 256 || HWo == 0) return 1;
  int64_t nf = std::min<int64_t>(g.N, std::max<int64_t>(1, 512 / HWo));
  nf = std::min<int64_t>(nf, std::max<int64_t>(1, kConvColBudget / std::max<int64_t>(1, g.K * HWo)));
  const int64_t nt = get_num_threads();
  while (nf > 1 && ceil_div_pos(g.N, nf) * g.G < nt) nf = ceil_div_pos(nf, 2);
  return nf;
}

/// im2col for output rows [r0, r1): col (K, (r1 - r0) Wo), row stride ld, from one
/// group's image x (Cg, H, W).
template <class T>
inline void im2col(const T* x, const ConvGeom& g, int64_t r0, int64_t r1, T* col, int64_t ld) {
  const ConvParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* dst = col + ((c * g.kh + i) * g.kw + j) * ld;
        const int64_t off = j * p.dw - p.pw;
        int64_t lo, hi;
        valid_cols(off, p.sw, g.W, g.Wo, lo, hi);
        for (int64_t oh = r0; oh < r1; ++oh) {
          T* d = dst + (oh - r0) * g.Wo;
          const int64_t ih = oh * p.sh - p.ph + i * p.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(d, d + g.Wo, T(0));
            continue;
          }
          const T* row = x + (c * g.H + ih) * g.W;
          std::fill(d, d + lo, T(0));
          if (p.sw == 1) {
            if (hi > lo) std::copy(row + (lo + off), row + (hi + off), d + lo);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = row[ow * p.sw + off];
          }
          std::fill(d + hi, d + g.Wo, T(0));
        }
      }
}

/// The adjoint of im2col: one group's image x (Cg, H, W) += col (K, (r1 - r0) Wo, row
/// stride ld) scattered back.
template <class T>
inline void col2im(const T* col, const ConvGeom& g, int64_t r0, int64_t r1, T* x, int64_t ld) {
  const ConvParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* src = col + ((c * g.kh + i) * g.kw + j) * ld;
        const int64_t off = j * p.dw - p.pw;
        int64_t lo, hi;
        valid_cols(off, p.sw, g.W, g.Wo, lo, hi);
        for (int64_t oh = r0; oh < r1; ++oh) {
          const int64_t ih = oh * p.sh - p.ph + i * p.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* s = src + (oh - r0) * g.Wo;
          T* row = x + (c * g.H + ih) * g.W;
          if (p.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) row[ow + off] += s[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) row[ow * p.sw + off] += s[ow];
          }
        }
      }
}

// ---- kernels (raw, unrecorded; contiguous operands of one dtype) ---------------------

/// y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), w (O, Cg, kh, kw)) + b (O, or null).
template <class T>
inline void conv2d_forward_kernel(const T* x, const T* w, const T* b, T* y, const ConvGeom& g) {
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  if (const int64_t nf = conv_fold(g); nf > 1) {
    // small planes: per task nf images of one group, col (K, nf HWo) -> tmp (Og, nf HWo) -> y
    const int64_t chunks = ceil_div_pos(g.N, nf);
    const int64_t work = std::max<int64_t>(1, g.Og * g.K * nf * HWo);
    parallel_for(0, chunks * g.G, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t t0, int64_t t1) {
      T* col = conv_scratch<T>(static_cast<size_t>((g.K + g.Og) * nf * HWo));
      T* tmp = col + g.K * nf * HWo;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t gi = t % g.G, n0 = (t / g.G) * nf, n1 = std::min(g.N, n0 + nf), cols = (n1 - n0) * HWo;
        for (int64_t n = n0; n < n1; ++n)
          im2col(x + (n * g.C + gi * g.Cg) * HW, g, 0, g.Ho, col + (n - n0) * HWo, cols);
        // tmp (Og, cols) = w_g (Og, K) col (K, cols)
        kernels::gemm<T>(g.Og, cols, g.K, w + gi * g.Og * g.K, g.K, 1, col, cols, 1, tmp, cols, false);
        for (int64_t n = n0; n < n1; ++n)
          for (int64_t o = 0; o < g.Og; ++o) {
            const T bo = b ? b[gi * g.Og + o] : T(0);
            const T* src = tmp + o * cols + (n - n0) * HWo;
            T* dst = y + (n * g.O + gi * g.Og + o) * HWo;
            for (int64_t q = 0; q < HWo; ++q) dst[q] = src[q] + bo;
          }
      }
    });
    return;
  }
  const int64_t rows = conv_band_rows(g, true), bands = ceil_div_pos(g.Ho, rows);
  const int64_t tasks = g.N * g.G * bands;
  const int64_t work = std::max<int64_t>(1, g.Og * g.K * rows * g.Wo);
  parallel_for(0, tasks, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t t0, int64_t t1) {
    T* col = g.pointwise ? nullptr : conv_scratch<T>(static_cast<size_t>(g.K * rows * g.Wo));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (g.G * bands), gi = (t / bands) % g.G, band = t % bands;
      const int64_t r0 = band * rows, r1 = std::min(g.Ho, r0 + rows), ncols = (r1 - r0) * g.Wo;
      const T* xg = x + (n * g.C + gi * g.Cg) * HW;         // (Cg, H, W)
      T* yg = y + (n * g.O + gi * g.Og) * HWo + r0 * g.Wo;  // (Og, rows, Wo) with row stride HWo
      const T* B = xg + r0 * g.W;                           // (K, ncols): the image itself when pointwise
      int64_t brs = HW;
      if (!g.pointwise) {
        im2col(xg, g, r0, r1, col, ncols);
        B = col;
        brs = ncols;
      }
      // y_g (Og, ncols) = w_g (Og, K) col (K, ncols)
      kernels::gemm<T>(g.Og, ncols, g.K, w + gi * g.Og * g.K, g.K, 1, B, brs, 1, yg, HWo, false);
      if (b)
        for (int64_t o = 0; o < g.Og; ++o) {
          const T bo = b[gi * g.Og + o];
          T* yr = yg + o * HWo;
          for (int64_t k = 0; k < ncols; ++k) yr[k] += bo;
        }
    }
  });
}

/// Whether the adjoint of this stride-1 convolution is computed as a forward
/// convolution with flipped, transposed weights (conv2d_adjoint_kernel). That
/// convolution does Cg Og kh kw H W multiply-adds against Cg Og kh kw Ho Wo for
/// GEMM + col2im, so it is used only when the image side is not much larger than
/// the feature side ("same" padding); a transposed convolution that grows a 1 x 1
/// input to 7 x 7 would do 49x the work.
inline bool adjoint_as_forward(const ConvGeom& g) {
  const ConvParams& p = g.p;
  return !g.pointwise && p.sh == 1 && p.sw == 1 && p.dh * (g.kh - 1) >= p.ph && p.dw * (g.kw - 1) >= p.pw &&
         4 * g.H * g.W <= 5 * g.Ho * g.Wo;
}

/// x (N, C, H, W) = the adjoint of conv2d in its input applied to y (N, O, Ho, Wo),
/// i.e. conv_transpose2d(y, w); plus b (C, or null).
///
/// Three schemes: 1x1 stride-1 unpadded: x_g = w_g^T y_g, one GEMM per band. Other
/// stride-1 convolutions: the adjoint is itself a convolution,
///   x[c, h] = sum_{o, i} y[o, h + p - i d] w[o, c, i] = conv2d(y, w')[c, h],
///   w'[c, o, i] = w[o, c, k - 1 - i], padding p' = d (k - 1) - p (when >= 0),
/// so it runs on the forward kernel (GEMM depth Og kh kw instead of Og, and no
/// scatter-add). Otherwise (strided): col = w_g^T y_g and col2im adds the columns
/// back into the image (Caffe's col2im).
template <class T>
inline void conv2d_adjoint_kernel(const T* y, const T* w, const T* b, T* x, const ConvGeom& g) {
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo;
  if (adjoint_as_forward(g)) {
    // w' (C, Og, kh, kw): group gi's (Cg, Og) block is the transpose of w's (Og, Cg) block, taps flipped
    std::vector<T> wf(static_cast<size_t>(g.C * g.Og * g.kh * g.kw));
    const int64_t taps = g.kh * g.kw;
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t o = 0; o < g.Og; ++o)
        for (int64_t c = 0; c < g.Cg; ++c) {
          const T* src = w + ((gi * g.Og + o) * g.Cg + c) * taps;
          T* dst = wf.data() + ((gi * g.Cg + c) * g.Og + o) * taps;
          for (int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
        }
    ConvParams p2 = g.p;
    p2.ph = g.p.dh * (g.kh - 1) - g.p.ph;
    p2.pw = g.p.dw * (g.kw - 1) - g.p.pw;
    // the forward convolution from y's side (N, O, Ho, Wo) to x's side (N, C, H, W)
    const ConvGeom g2 = conv_geom({g.N, g.O, g.Ho, g.Wo}, {g.C, g.Og, g.kh, g.kw}, g.H, g.W, p2);
    conv2d_forward_kernel<T>(y, wf.data(), b, x, g2);
    return;
  }
  auto add_bias = [&](T* xg, int64_t gi) {  // xg (Cg, H, W)
    if (!b) return;
    for (int64_t c = 0; c < g.Cg; ++c) {
      const T bc = b[gi * g.Cg + c];
      T* xr = xg + c * HW;
      for (int64_t k = 0; k < HW; ++k) xr[k] += bc;
    }
  };
  if (g.pointwise) {  // x_g (Cg, HW) = w_g^T (Cg, Og) y_g (Og, HW), in bands of rows
    const int64_t rows = conv_band_rows(g, true), bands = ceil_div_pos(g.Ho, rows);
    const int64_t work = std::max<int64_t>(1, g.Og * g.Cg * rows * g.W);
    parallel_for(0, g.N * g.G * bands, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / (g.G * bands), gi = (t / bands) % g.G, band = t % bands;
        const int64_t r0 = band * rows, r1 = std::min(g.Ho, r0 + rows), ncols = (r1 - r0) * g.W;
        T* xg = x + (n * g.C + gi * g.Cg) * HW + r0 * g.W;
        const T* yg = y + (n * g.O + gi * g.Og) * HWo + r0 * g.W;
        kernels::gemm<T>(g.Cg, ncols, g.Og, w + gi * g.Og * g.K, 1, g.K, yg, HWo, 1, xg, HW, false);
        if (b)
          for (int64_t c = 0; c < g.Cg; ++c) {
            const T bc = b[gi * g.Cg + c];
            for (int64_t k = 0; k < ncols; ++k) xg[c * HW + k] += bc;
          }
      }
    });
    return;
  }
  if (const int64_t nf = conv_fold(g); nf > 1) {
    // small planes: per task nf images of one group, tmp (Og, nf HWo) = y, col = w_g^T tmp, col2im
    const int64_t chunks = ceil_div_pos(g.N, nf);
    const int64_t work = std::max<int64_t>(1, g.Og * g.K * nf * HWo);
    parallel_for(0, chunks * g.G, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t t0, int64_t t1) {
      T* col = conv_scratch<T>(static_cast<size_t>((g.K + g.Og) * nf * HWo));
      T* tmp = col + g.K * nf * HWo;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t gi = t % g.G, n0 = (t / g.G) * nf, n1 = std::min(g.N, n0 + nf), cols = (n1 - n0) * HWo;
        for (int64_t n = n0; n < n1; ++n)
          for (int64_t o = 0; o < g.Og; ++o)
            std::copy(y + (n * g.O + gi * g.Og + o) * HWo, y + (n * g.O + gi * g.Og + o + 1) * HWo,
                      tmp + o * cols + (n - n0) * HWo);
        // col (K, cols) = w_g^T (K, Og) tmp (Og, cols)
        kernels::gemm<T>(g.K, cols, g.Og, w + gi * g.Og * g.K, 1, g.K, tmp, cols, 1, col, cols, false);
        for (int64_t n = n0; n < n1; ++n) {
          T* xg = x + (n * g.C + gi * g.Cg) * HW;
          std::fill(xg, xg + g.Cg * HW, T(0));
          col2im(col + (n - n0) * HWo, g, 0, g.Ho, xg, cols);
          add_bias(xg, gi);
        }
      }
    });
    return;
  }
  // col (K, ncols) = w_g^T (K, Og) y_g (Og, ncols); x_g += col2im(col). Bands of one
  // (batch, group) overlap in x, so tasks are whole (batch, group) pairs.
  const int64_t rows = conv_band_rows(g, false), bands = ceil_div_pos(g.Ho, rows);
  const int64_t work = std::max<int64_t>(1, g.Og * g.K * HWo);
  parallel_for(0, g.N * g.G, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t t0, int64_t t1) {
    T* col = conv_scratch<T>(static_cast<size_t>(g.K * rows * g.Wo));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / g.G, gi = t % g.G;
      T* xg = x + (n * g.C + gi * g.Cg) * HW;
      std::fill(xg, xg + g.Cg * HW, T(0));
      const T* yg = y + (n * g.O + gi * g.Og) * HWo;
      for (int64_t band = 0; band < bands; ++band) {
        const int64_t r0 = band * rows, r1 = std::min(g.Ho, r0 + rows), ncols = (r1 - r0) * g.Wo;
        kernels::gemm<T>(g.K, ncols, g.Og, w + gi * g.Og * g.K, 1, g.K, yg + r0 * g.Wo, HWo, 1, col, ncols, false);
        col2im(col, g, r0, r1, xg, ncols);
      }
      add_bias(xg, gi);
    }
  });
}

/// dw (O, Cg, kh, kw) = sum over the batch of y_g (Og, HoWo) im2col(x_g)^T (HoWo, K).
template <class T>
inline void conv2d_weight_kernel(const T* x, const T* y, T* dw, const ConvGeom& g) {
  const int64_t HW = g.H * g.W, HWo = g.Ho * g.Wo, wnumel = g.O * g.K;
  const int64_t rows = conv_band_rows(g, false), bands = ceil_div_pos(g.Ho, rows);
  // accumulates images [n0, n1) and groups [g0, g1) into acc (O, K)
  const int64_t nf = conv_fold(g);
  auto run = [&](int64_t n0, int64_t n1, int64_t g0, int64_t g1, T* acc) {
    if (nf > 1) {  // small planes: nf images per GEMM, tmp (Og, nf HWo) = y, col (K, nf HWo)
      T* col = conv_scratch<T>(static_cast<size_t>((g.K + g.Og) * nf * HWo));
      T* tmp = col + g.K * nf * HWo;
      for (int64_t f0 = n0; f0 < n1; f0 += nf)
        for (int64_t gi = g0; gi < g1; ++gi) {
          const int64_t f1 = std::min(n1, f0 + nf), cols = (f1 - f0) * HWo;
          for (int64_t n = f0; n < f1; ++n) {
            im2col(x + (n * g.C + gi * g.Cg) * HW, g, 0, g.Ho, col + (n - f0) * HWo, cols);
            for (int64_t o = 0; o < g.Og; ++o)
              std::copy(y + (n * g.O + gi * g.Og + o) * HWo, y + (n * g.O + gi * g.Og + o + 1) * HWo,
                        tmp + o * cols + (n - f0) * HWo);
          }
          // acc_g (Og, K) += tmp (Og, cols) col^T (cols, K)
          kernels::gemm<T>(g.Og, g.K, cols, tmp, cols, 1, col, 1, cols, acc + gi * g.Og * g.K, g.K, true);
        }
      return;
    }
    T* col = g.pointwise ? nullptr : conv_scratch<T>(static_cast<size_t>(g.K * rows * g.Wo));
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t gi = g0; gi < g1; ++gi) {
        const T* xg = x + (n * g.C + gi * g.Cg) * HW;
        const T* yg = y + (n * g.O + gi * g.Og) * HWo;
        for (int64_t band = 0; band < bands; ++band) {
          const int64_t r0 = band * rows, r1 = std::min(g.Ho, r0 + rows), ncols = (r1 - r0) * g.Wo;
          const T* B = xg + r0 * g.W;  // col^T (ncols, K): element (q, k) at B[q + k * bcs]
          int64_t bcs = HW;
          if (!g.pointwise) {
            im2col(xg, g, r0, r1, col, ncols);
            B = col;
            bcs = ncols;
          }
          kernels::gemm<T>(g.Og, g.K, ncols, yg + r0 * g.Wo, HWo, 1, B, 1, bcs, acc + gi * g.Og * g.K, g.K, true);
        }
      }
  };
  std::fill(dw, dw + wnumel, T(0));
  const int64_t nt = get_num_threads();
  if (g.G >= nt || g.N <= 1) {  // groups write disjoint slices of dw
    const int64_t work = std::max<int64_t>(1, g.N * g.Og * g.K * HWo);
    parallel_for(0, g.G, std::max<int64_t>(1, (int64_t(1) << 15) / work),
                 [&](int64_t g0, int64_t g1) { run(0, g.N, g0, g1, dw); });
    return;
  }
  // few groups: split the batch, one private accumulator per chunk, then reduce
  const int64_t chunks = std::min(nt, g.N);
  std::vector<T> partial(static_cast<size_t>((chunks - 1) * wnumel), T(0));
  const int64_t work = std::max<int64_t>(1, g.O * g.K * HWo);
  parallel_for(0, chunks, std::max<int64_t>(1, (int64_t(1) << 15) / work), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      run(g.N * c / chunks, g.N * (c + 1) / chunks, 0, g.G, c == 0 ? dw : partial.data() + (c - 1) * wnumel);
  });
  for (int64_t c = 1; c < chunks; ++c) {
    const T* pp = partial.data() + (c - 1) * wnumel;
    for (int64_t k = 0; k < wnumel; ++k) dw[k] += pp[k];
  }
}

// ---- differentiable ops with explicit output sizes -----------------------------------

inline Tensor conv2d_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p, int64_t Ho, int64_t Wo);
inline Tensor conv_transpose2d_op(const Tensor& y, const Tensor& w, const Tensor& b, const ConvParams& p, int64_t H,
                                  int64_t W);
inline Tensor conv2d_weight_grad_op(const Tensor& x, const Tensor& y, const Shape& wshape, const ConvParams& p);

/// y (N, O, Ho, Wo) = conv2d(x, w) + b with the given output size (at most the natural one).
inline Tensor conv2d_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p, int64_t Ho,
                        int64_t Wo) {
  const Dtype dt = x.dtype();
  Tensor xc = contig(as_dtype(x, dt)), wc = contig(as_dtype(w, dt));
  Tensor bc = b.defined() ? contig(as_dtype(b, dt)) : Tensor();
  ConvGeom g = conv_geom(x.shape(), w.shape(), Ho, Wo, p);
  Tensor y = make_tensor({g.N, g.O, Ho, Wo}, dt);
  dispatch_float(dt, "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2d_forward_kernel<T>(xc.data_ptr<const T>(), wc.data_ptr<const T>(),
                             bc.defined() ? bc.data_ptr<const T>() : nullptr, y.data_ptr<T>(), g);
  });
  if (autograd::needs_grad(x, w, b)) {
    auto& n = autograd::record("conv2d", {x, w, b}, y, [](autograd::OpNode& n, const TensorList& gr) {
      const ConvParams p = conv_params_of(n.ints);
      const Shape& xs = n.shapes[0];
      Tensor gx, gw, gb;
      // y = conv2d(x, w)  =>  dx = conv_transpose2d(dy, w), cropped or padded to x's size
      if (n.needs_input_grad(0)) gx = conv_transpose2d_op(gr[0], n.saved(1), Tensor(), p, xs[2], xs[3]);
      // y = conv2d(x, w)  =>  dw = sum_n dy (x) im2col(x)
      if (n.needs_input_grad(1)) gw = conv2d_weight_grad_op(n.saved(0), gr[0], n.shapes[1], p);
      // y = ... + b[o]  =>  db = sum of dy over (N, Ho, Wo)
      if (n.needs_input_grad(2)) gb = sum(gr[0], {0, 2, 3});
      return TensorList{gx, gw, gb};
    });
    n.ints = conv_ints(p, Ho, Wo);
    n.shapes = {x.shape(), w.shape()};
    n.save(w.requires_grad() ? x : Tensor());  // x is needed for dw only, w for dx only
    n.save(x.requires_grad() ? w : Tensor());
  }
  return y;
}

/// x (N, C, H, W) = conv_transpose2d(y, w) + b with the given output size (the
/// adjoint of conv2d_op(., w) from (N, C, H, W) to y's size).
inline Tensor conv_transpose2d_op(const Tensor& y, const Tensor& w, const Tensor& b, const ConvParams& p, int64_t H,
                                  int64_t W) {
  const Dtype dt = y.dtype();
  Tensor yc = contig(as_dtype(y, dt)), wc = contig(as_dtype(w, dt));
  Tensor bc = b.defined() ? contig(as_dtype(b, dt)) : Tensor();
  const int64_t C = w.size(1) * p.groups;
  ConvGeom g = conv_geom({y.size(0), C, H, W}, w.shape(), y.size(2), y.size(3), p);
  Tensor x = make_tensor({g.N, C, H, W}, dt);
  dispatch_float(dt, "conv_transpose2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2d_adjoint_kernel<T>(yc.data_ptr<const T>(), wc.data_ptr<const T>(),
                             bc.defined() ? bc.data_ptr<const T>() : nullptr, x.data_ptr<T>(), g);
  });
  if (autograd::needs_grad(y, w, b)) {
    auto& n = autograd::record("conv_transpose2d", {y, w, b}, x, [](autograd::OpNode& n, const TensorList& gr) {
      const ConvParams p = conv_params_of(n.ints);
      const Shape& ys = n.shapes[0];
      Tensor gy, gw, gb;
      // x = conv_transpose2d(y, w) = conv2d^T y  =>  dy = conv2d(dx, w), at y's size
      if (n.needs_input_grad(0)) gy = conv2d_op(gr[0], n.saved(1), Tensor(), p, ys[2], ys[3]);
      // x = conv_transpose2d(y, w)  =>  dw = conv2d_weight_grad(dx, y): the roles of image and feature swap
      if (n.needs_input_grad(1)) gw = conv2d_weight_grad_op(gr[0], n.saved(0), n.shapes[1], p);
      // x = ... + b[c]  =>  db = sum of dx over (N, H, W)
      if (n.needs_input_grad(2)) gb = sum(gr[0], {0, 2, 3});
      return TensorList{gy, gw, gb};
    });
    n.ints = conv_ints(p, H, W);
    n.shapes = {y.shape(), w.shape()};
    n.save(w.requires_grad() ? y : Tensor());  // y is needed for dw only, w for dy only
    n.save(y.requires_grad() ? w : Tensor());
  }
  return x;
}

/// dw (O, Cg, kh, kw) = conv2d_weight_grad(x (N, C, H, W), y (N, O, Ho, Wo)), bilinear in x and y.
inline Tensor conv2d_weight_grad_op(const Tensor& x, const Tensor& y, const Shape& wshape, const ConvParams& p) {
  const Dtype dt = x.dtype();
  Tensor xc = contig(as_dtype(x, dt)), yc = contig(as_dtype(y, dt));
  ConvGeom g = conv_geom(x.shape(), wshape, y.size(2), y.size(3), p);
  Tensor dw = make_tensor(wshape, dt);
  dispatch_float(dt, "conv2d_weight_grad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv2d_weight_kernel<T>(xc.data_ptr<const T>(), yc.data_ptr<const T>(), dw.data_ptr<T>(), g);
  });
  if (autograd::needs_grad(x, y)) {
    auto& n = autograd::record("conv2d_weight_grad", {x, y}, dw, [](autograd::OpNode& n, const TensorList& gr) {
      const ConvParams p = conv_params_of(n.ints);
      const Shape &xs = n.shapes[0], &ys = n.shapes[1];
      Tensor gx, gy;
      // dw = <y, conv2d(x, .)>  =>  d/dx = conv_transpose2d(y, ddw), at x's size
      if (n.needs_input_grad(0)) gx = conv_transpose2d_op(n.saved(1), gr[0], Tensor(), p, xs[2], xs[3]);
      // dw = <y, conv2d(x, .)>  =>  d/dy = conv2d(x, ddw), at y's size
      if (n.needs_input_grad(1)) gy = conv2d_op(n.saved(0), gr[0], Tensor(), p, ys[2], ys[3]);
      return TensorList{gx, gy};
    });
    n.ints = conv_ints(p, 0, 0);
    n.shapes = {x.shape(), y.shape()};
    n.save(y.requires_grad() ? x : Tensor());  // x is needed for d/dy only, y for d/dx only
    n.save(x.requires_grad() ? y : Tensor());
  }
  return dw;
}

// ---- argument checks --------------------------------------------------------------------

inline void check_conv_params(const char* op, Size2 stride, Size2 padding, Size2 dilation, int64_t groups) {
  GENAI_CHECK(stride.h >= 1 && stride.w >= 1, op, ": stride must be positive, got ", size2_str(stride));
  GENAI_CHECK(padding.h >= 0 && padding.w >= 0, op, ": padding must be non-negative, got ", size2_str(padding));
  GENAI_CHECK(dilation.h >= 1 && dilation.w >= 1, op, ": dilation must be positive, got ", size2_str(dilation));
  GENAI_CHECK(groups >= 1, op, ": groups must be positive, got ", groups);
}

inline void check_conv_tensors(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias) {
  check_defined(input, op, "input");
  check_defined(weight, op, "weight");
  GENAI_CHECK(input.dim() == 4, op, ": expected a 4-d input (N, C, H, W) or a 3-d one (C, H, W), got shape ",
              shape_str(input.shape()));
  GENAI_CHECK(weight.dim() == 4, op, ": expected a 4-d weight, got shape ", shape_str(weight.shape()), " for input ",
              shape_str(input.shape()));
  GENAI_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  GENAI_CHECK(input.dtype() == weight.dtype(), op, ": input (", dtype_name(input.dtype()), ") and weight (",
              dtype_name(weight.dtype()), ") must have the same dtype; hint: convert one with .to()");
  if (bias.defined())
    GENAI_CHECK(bias.dtype() == input.dtype(), op, ": bias (", dtype_name(bias.dtype()), ") and input (",
                dtype_name(input.dtype()), ") must have the same dtype");
}

}  // namespace detail

// ---- conv2d --------------------------------------------------------------------------

inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                     Size2 dilation, int64_t groups) {
  detail::check_defined(input, "conv2d", "input");
  if (input.dim() == 3)  // unbatched (C, H, W)
    return squeeze(conv2d(unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0);
  detail::check_conv_tensors("conv2d", input, weight, bias);
  detail::check_conv_params("conv2d", stride, padding, dilation, groups);
  const Shape& xs = input.shape();
  const Shape& ws = weight.shape();
  const int64_t C = xs[1], O = ws[0], kh = ws[2], kw = ws[3];
  GENAI_CHECK(C % groups == 0, "conv2d: groups=", groups, " does not divide the ", C, " input channels of input ",
              shape_str(xs), " (weight ", shape_str(ws), ")");
  GENAI_CHECK(O % groups == 0, "conv2d: groups=", groups, " does not divide the ", O, " output channels of weight ",
              shape_str(ws), " (input ", shape_str(xs), ")");
  GENAI_CHECK(ws[1] * groups == C, "conv2d: input ", shape_str(xs), " has ", C, " channels but weight ", shape_str(ws),
              " with groups=", groups, " expects ", ws[1] * groups, " (weight.size(1) * groups); hint: the weight is (",
              "out_channels, in_channels / groups, kh, kw)");
  if (bias.defined())
    GENAI_CHECK(bias.dim() == 1 && bias.size(0) == O, "conv2d: bias of shape ", shape_str(bias.shape()),
                " does not match the ", O, " output channels of weight ", shape_str(ws));
  const int64_t eh = dilation.h * (kh - 1) + 1, ew = dilation.w * (kw - 1) + 1;  // dilated kernel
  const int64_t ph = xs[2] + 2 * padding.h, pw = xs[3] + 2 * padding.w;          // padded input
  GENAI_CHECK(kh >= 1 && kw >= 1 && eh <= ph && ew <= pw, "conv2d: kernel size (", kh, ", ", kw, ") (dilated: (", eh,
              ", ", ew, ")) is larger than the padded input size (", ph, ", ", pw, ") of input ", shape_str(xs),
              " with padding ", detail::size2_str(padding), "; weight ", shape_str(ws));
  const int64_t Ho = (ph - eh) / stride.h + 1, Wo = (pw - ew) / stride.w + 1;
  return detail::conv2d_op(input, weight, bias, detail::conv_params(stride, padding, dilation, groups), Ho, Wo);
}

// ---- conv_transpose2d ---------------------------------------------------------------------

inline Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
                               Size2 padding, Size2 output_padding, int64_t groups, Size2 dilation) {
  detail::check_defined(input, "conv_transpose2d", "input");
  if (input.dim() == 3)  // unbatched (C, H, W)
    return squeeze(
        conv_transpose2d(unsqueeze(input, 0), weight, bias, stride, padding, output_padding, groups, dilation), 0);
  detail::check_conv_tensors("conv_transpose2d", input, weight, bias);
  detail::check_conv_params("conv_transpose2d", stride, padding, dilation, groups);
  const Shape& xs = input.shape();
  const Shape& ws = weight.shape();
  const int64_t C = xs[1], kh = ws[2], kw = ws[3];
  GENAI_CHECK(C % groups == 0, "conv_transpose2d: groups=", groups, " does not divide the ", C,
              " input channels of input ", shape_str(xs), " (weight ", shape_str(ws), ")");
  GENAI_CHECK(ws[0] == C, "conv_transpose2d: input ", shape_str(xs), " has ", C, " channels but weight ", shape_str(ws),
              " expects ", ws[0],
              " (weight.size(0)); hint: the weight is (in_channels, out_channels / groups, kh, kw)");
  const int64_t O = ws[1] * groups;
  if (bias.defined())
    GENAI_CHECK(bias.dim() == 1 && bias.size(0) == O, "conv_transpose2d: bias of shape ", shape_str(bias.shape()),
                " does not match the ", O, " output channels (weight ", shape_str(ws), ", groups=", groups, ")");
  GENAI_CHECK(output_padding.h >= 0 && output_padding.w >= 0 &&
                  (output_padding.h < stride.h || output_padding.h < dilation.h) &&
                  (output_padding.w < stride.w || output_padding.w < dilation.w),
              "conv_transpose2d: output_padding ", detail::size2_str(output_padding),
              " must be smaller than either stride ", detail::size2_str(stride), " or dilation ",
              detail::size2_str(dilation), " (input ", shape_str(xs), ", weight ", shape_str(ws), ")");
  GENAI_CHECK(kh >= 1 && kw >= 1, "conv_transpose2d: empty kernel in weight ", shape_str(ws));
  const int64_t Ho = (xs[2] - 1) * stride.h - 2 * padding.h + dilation.h * (kh - 1) + output_padding.h + 1;
  const int64_t Wo = (xs[3] - 1) * stride.w - 2 * padding.w + dilation.w * (kw - 1) + output_padding.w + 1;
  GENAI_CHECK(Ho >= 1 && Wo >= 1, "conv_transpose2d: the output size (", Ho, ", ", Wo, ") is too small for input ",
              shape_str(xs), ", weight ", shape_str(ws), ", stride ", detail::size2_str(stride), ", padding ",
              detail::size2_str(padding), ", dilation ", detail::size2_str(dilation), "; hint: reduce the padding");
  return detail::conv_transpose2d_op(input, weight, bias, detail::conv_params(stride, padding, dilation, groups), Ho,
                                     Wo);
}

// ---- conv2d_weight_grad ----------------------------------------------------------------------

inline Tensor conv2d_weight_grad(const Tensor& input, const Tensor& grad_output, const Shape& weight_shape,
                                 Size2 stride, Size2 padding, Size2 dilation, int64_t groups) {
  const char* op = "conv2d_weight_grad";
  detail::check_defined(input, op, "input");
  detail::check_defined(grad_output, op, "grad_output");
  detail::check_conv_params(op, stride, padding, dilation, groups);
  GENAI_CHECK(input.dim() == 4 && grad_output.dim() == 4 && weight_shape.size() == 4, op,
              ": expected a 4-d input, grad_output and weight shape, got ", shape_str(input.shape()), ", ",
              shape_str(grad_output.shape()), " and ", shape_str(weight_shape));
  GENAI_CHECK(is_floating(input.dtype()) && input.dtype() == grad_output.dtype(), op, ": input (",
              dtype_name(input.dtype()), ") and grad_output (", dtype_name(grad_output.dtype()),
              ") must share one floating-point dtype");
  const int64_t C = input.size(1), O = weight_shape[0];
  GENAI_CHECK(C % groups == 0 && O % groups == 0 && weight_shape[1] * groups == C && grad_output.size(1) == O &&
                  grad_output.size(0) == input.size(0) && weight_shape[2] >= 1 && weight_shape[3] >= 1,
              op, ": input ", shape_str(input.shape()), ", grad_output ", shape_str(grad_output.shape()),
              " and weight shape ", shape_str(weight_shape), " do not fit with groups=", groups,
              " (expected input (N, C, H, W), grad_output (N, O, Ho, Wo), weight (O, C/groups, kh, kw))");
  return detail::conv2d_weight_grad_op(input, grad_output, weight_shape,
                                       detail::conv_params(stride, padding, dilation, groups));
}

}  // namespace genai
