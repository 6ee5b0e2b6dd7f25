// genai/ops/pad.hpp: padding of the last one or two dimensions, as
// torch.nn.functional.pad(input, pad, mode, value) with mode "constant", "reflect",
// "replicate" or "circular" (the 1-d and 2-d cases: pad = {left, right} or
// {left, right, top, bottom}).
//
// Every mode is a gather: output position o of an axis reads input position src(o)
//   constant:  o - l when inside [0, in), else nothing (value)
//   reflect:   i = o - l reflected about the edges without repeating them
//              (i < 0 -> -i, i >= in -> 2 (in - 1) - i; so pads must be < in)
//   replicate: i clamped to [0, in - 1]
//   circular:  i mod in (pads at most in)
// and the 2-d map is the product of the h and w maps. The backward is the adjoint
// scatter-add (each input position sums the gradients of the outputs that read it),
// and the adjoint of that scatter is the gather again, so the pair is closed under
// differentiation: gradients of any order work. Both are one fused loop per plane.
//
// Differences from PyTorch: any number of leading dimensions is accepted for every
// mode (PyTorch limits reflect / replicate / circular to 2-d or 3-d inputs for a 1-d
// pad and 3-d or 4-d inputs for a 2-d pad); 3-d padding (6 values) is not implemented;
// negative pads (cropping) are accepted in constant mode only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "genai/ops/common.hpp"

namespace genai {

// pad and reflection_pad2d are declared (with their defaults) in genai/ops/fwd.hpp.

namespace detail {

enum class PadMode : int64_t { Constant = 0, Reflect = 1, Replicate = 2, Circular = 3 };

inline PadMode parse_pad_mode(std::string_view m) {
  if (m == "constant") return PadMode::Constant;
  if (m == "reflect") return PadMode::Reflect;
  if (m == "replicate") return PadMode::Replicate;
  if (m == "circular") return PadMode::Circular;
  GENAI_FAIL("pad: unknown mode '", m, "'; expected 'constant', 'reflect', 'replicate' or 'circular'");
}

/// The source index of each output position of one axis (-1: the constant value).
inline std::vector<int64_t> pad_axis_map(int64_t in, int64_t lo, int64_t hi, PadMode m) {
  const int64_t out = in + lo + hi;
  std::vector<int64_t> src(static_cast<size_t>(std::max<int64_t>(out, 0)));
  for (int64_t o = 0; o < out; ++o) {
    int64_t i = o - lo;
    switch (m) {
      case PadMode::Constant:
        i = (i >= 0 && i < in) ? i : -1;
        break;
      case PadMode::Reflect:
        if (i < 0) i = -i;
        if (i >= in) i = 2 * (in - 1) - i;
        break;
      case PadMode::Replicate:
        i = std::clamp<int64_t>(i, 0, in - 1);
        break;
      case PadMode::Circular:
        i = ((i % in) + in) % in;
        break;
    }
    src[static_cast<size_t>(o)] = i;
  }
  return src;
}

/// The geometry of one pad: planes of (H, W) -> (Ho, Wo) with the per-axis maps.
struct PadGeom {
  int64_t planes, H, W, Ho, Wo;
  std::vector<int64_t> sh, sw;  // (Ho), (Wo) source rows / columns, -1 outside
};

/// ints = {mode, H, W, l, r, t, b, nd}: the node's record of a pad of the last nd dims of
/// a tensor of shape in_shape.
inline PadGeom pad_geom(const Shape& in_shape, const std::vector<int64_t>& ints) {
  int64_t planes = 1;
  for (size_t i = 0; i + static_cast<size_t>(ints[7]) < in_shape.size(); ++i) planes *= in_shape[i];
  const auto m = static_cast<PadMode>(ints[0]);
  const int64_t H = ints[1], W = ints[2], l = ints[3], r = ints[4], t = ints[5], b = ints[6];
  return {planes, H, W, H + t + b, W + l + r, pad_axis_map(H, t, b, m), pad_axis_map(W, l, r, m)};
}

inline Tensor pad_gather_op(const Tensor& x, const Shape& out_shape, const std::vector<int64_t>& ints, double value);
inline Tensor pad_scatter_op(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& ints);

/// y (..., Ho, Wo) = x (..., H, W) read at the mapped positions (`value` where unmapped).
inline Tensor pad_gather_op(const Tensor& x, const Shape& out_shape, const std::vector<int64_t>& ints, double value) {
  Tensor xc = contig(x);
  Tensor y = make_tensor(out_shape, x.dtype());
  const PadGeom g = pad_geom(x.shape(), ints);
  dispatch_float(x.dtype(), "pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = xc.data_ptr<const T>();
    T* py = y.data_ptr<T>();
    const T fill = static_cast<T>(value);
    const int64_t work = std::max<int64_t>(1, g.Ho * g.Wo);
    parallel_for(0, g.planes, std::max<int64_t>(1, (int64_t(1) << 14) / work), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* xp = px + p * g.H * g.W;
        T* yp = py + p * g.Ho * g.Wo;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t ih = g.sh[static_cast<size_t>(oh)];
          T* yr = yp + oh * g.Wo;
          if (ih < 0) {
            std::fill(yr, yr + g.Wo, fill);
            continue;
          }
          const T* xr = xp + ih * g.W;
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            const int64_t iw = g.sw[static_cast<size_t>(ow)];
            yr[ow] = iw < 0 ? fill : xr[iw];
          }
        }
      }
    });
  });
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("pad", {x}, y, [](autograd::OpNode& n, const TensorList& gr) {
      // y = x at src (or value)  =>  dx = dy scatter-added to src
      return TensorList{pad_scatter_op(gr[0], n.shapes[0], n.ints)};
    });
    n.ints = ints;
    n.shapes = {x.shape()};
  }
  return y;
}

/// gx (..., H, W) = zeros with g (..., Ho, Wo) added at the mapped positions (the adjoint of the gather).
inline Tensor pad_scatter_op(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& ints) {
  Tensor gc = contig(g);
  Tensor gx = make_tensor(in_shape, g.dtype());
  const int64_t HW = ints[1] * ints[2];
  const PadGeom geo = pad_geom(in_shape, ints);
  dispatch_float(g.dtype(), "pad_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = gc.data_ptr<const T>();
    T* px = gx.data_ptr<T>();
    const int64_t work = std::max<int64_t>(1, geo.Ho * geo.Wo + HW);
    parallel_for(0, geo.planes, std::max<int64_t>(1, (int64_t(1) << 14) / work), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        T* xp = px + p * HW;
        std::fill(xp, xp + HW, T(0));
        const T* gp = pg + p * geo.Ho * geo.Wo;
        for (int64_t oh = 0; oh < geo.Ho; ++oh) {
          const int64_t ih = geo.sh[static_cast<size_t>(oh)];
          if (ih < 0) continue;
          T* xr = xp + ih * geo.W;
          const T* gr = gp + oh * geo.Wo;
          for (int64_t ow = 0; ow < geo.Wo; ++ow) {
            const int64_t iw = geo.sw[static_cast<size_t>(ow)];
            if (iw >= 0) xr[iw] += gr[ow];
          }
        }
      }
    });
  });
  if (autograd::needs_grad(g)) {
    auto& n = autograd::record("pad_backward", {g}, gx, [](autograd::OpNode& n, const TensorList& gr) {
      // gx = scatter-add of g to src  =>  dg = dgx gathered at src (0 where unmapped)
      return TensorList{pad_gather_op(gr[0], n.shapes[0], n.ints, 0.0)};
    });
    n.ints = ints;
    n.shapes = {g.shape()};
  }
  return gx;
}

}  // namespace detail

inline Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, std::string_view mode, double value) {
  const char* op = "pad";
  detail::check_defined(input, op, "input");
  GENAI_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  GENAI_CHECK(pad.size() == 2 || pad.size() == 4, op,
              ": pad must hold 2 values {left, right} or 4 values {left, right, top, bottom}, got ", pad.size(),
              " for input ", shape_str(input.shape()), "; hint: 3-d padding (6 values) is not implemented");
  const auto nd = static_cast<int64_t>(pad.size() / 2);
  GENAI_CHECK(input.dim() >= nd, op, ": a ", nd, "-d pad needs an input of at least ", nd, " dims, got shape ",
              shape_str(input.shape()));
  const detail::PadMode m = detail::parse_pad_mode(mode);
  const int64_t W = input.size(-1), H = nd == 2 ? input.size(-2) : 1;
  const int64_t l = pad[0], r = pad[1], t = nd == 2 ? pad[2] : 0, b = nd == 2 ? pad[3] : 0;
  if (m == detail::PadMode::Constant) {
    GENAI_CHECK(W + l + r >= 0 && H + t + b >= 0, op, ": pad ", detail::str_cat("{", l, ", ", r, ", ", t, ", ", b, "}"),
                " gives a negative size for input ", shape_str(input.shape()));
  } else {
    GENAI_CHECK(l >= 0 && r >= 0 && t >= 0 && b >= 0, op, ": ", mode, " padding must be non-negative, got ",
                detail::str_cat("{", l, ", ", r, ", ", t, ", ", b, "}"), " for input ", shape_str(input.shape()));
    GENAI_CHECK(H > 0 && W > 0, op, ": ", mode, " padding of an empty plane, input ", shape_str(input.shape()));
    if (m == detail::PadMode::Reflect)
      GENAI_CHECK(l < W && r < W && t < H && b < H, op, ": reflect padding ",
                  detail::str_cat("{", l, ", ", r, ", ", t, ", ", b, "}"),
                  " must be smaller than the padded dimensions of input ", shape_str(input.shape()),
                  "; hint: use mode 'replicate' or a smaller pad");
    if (m == detail::PadMode::Circular)
      GENAI_CHECK(l <= W && r <= W && t <= H && b <= H, op, ": circular padding ",
                  detail::str_cat("{", l, ", ", r, ", ", t, ", ", b, "}"),
                  " must be at most the padded dimensions of input ", shape_str(input.shape()));
  }
  Shape out = input.shape();
  out[out.size() - 1] = W + l + r;
  if (nd == 2) out[out.size() - 2] = H + t + b;
  return detail::pad_gather_op(input, out, {static_cast<int64_t>(m), H, W, l, r, t, b, nd}, value);
}

inline Tensor reflection_pad2d(const Tensor& input, int64_t left, int64_t right, int64_t top, int64_t bottom) {
  return pad(input, {left, right, top, bottom}, "reflect");
}

}  // namespace genai

#include "genai/ops/all.hpp"
