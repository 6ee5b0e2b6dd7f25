// genai/ops/softmax.hpp: softmax and log_softmax along a dimension.
//
// Numerically stable (the row max is subtracted before exp). Forward and the
// fused backward run row by row over the softmax dimension moved last (float32
// rows on the single-pass kernels of kernels/rowwise.hpp); with
// create_graph the backward is written in tensor ops instead, so it is
// differentiable again:
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
#pragma once

#include <cmath>
#include <limits>

#include "genai/kernels/rowwise.hpp"
#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

/// x with `dim` moved last, contiguous; and the permutation that undoes it.
inline Tensor move_dim_last(const Tensor& x, int64_t d, std::vector<int64_t>& inverse) {
  int64_t nd = x.dim();
  std::vector<int64_t> p;
  for (int64_t i = 0; i < nd; ++i)
    if (i != d) p.push_back(i);
  p.push_back(d);
  inverse.assign(static_cast<size_t>(nd), 0);
  for (int64_t i = 0; i < nd; ++i) inverse[p[i]] = i;
  return contig(permute(x.detach(), p));
}

/// Row-wise kernel over the last dim of a contiguous tensor: f(in_row, out_row).
template <class T, class F>
inline void for_rows(const Tensor& in, Tensor& out, F f) {
  const int64_t R = in.dim() == 0 ? 1 : in.shape().back();
  const int64_t K = R == 0 ? 0 : in.numel() / R;
  const T* pi = in.data_ptr<const T>();
  T* po = out.data_ptr<T>();
  parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(R, 1)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k)
      f(kernels::ConstArrayMap<T>(pi + k * R, R), kernels::ArrayMap<T>(po + k * R, R));
  });
}

/// softmax (log=false) or log_softmax (log=true) along `d`.
inline Tensor softmax_forward(const Tensor& x, int64_t d, bool log) {
  std::vector<int64_t> inv;
  bool last = d == x.dim() - 1 && x.is_contiguous();
  Tensor xl = last ? x : move_dim_last(x, d, inv);
  Tensor yl = make_tensor(xl.shape(), xl.dtype());
  dispatch_float(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float>) {  // one read of each row from memory (kernels/rowwise.hpp)
      const int64_t R = xl.dim() == 0 ? 1 : xl.shape().back();
      const int64_t K = R == 0 ? 0 : xl.numel() / R;
      const float* pi = xl.data_ptr<const float>();
      float* po = yl.data_ptr<float>();
      parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(R, 1)), [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
          const float* in = pi + k * R;
          float* out = po + k * R;
          float m = kernels::row_max(in, R);
          if (!std::isfinite(m)) m = std::isnan(m) ? m : 0.f;
          const float sum = kernels::row_exp_sum(in, out, R, m);  // out = exp(x - m)
          if (log) {  // out = (x - m) - log(sum exp(x - m))
            const float lse = std::log(sum);
            for (int64_t i = 0; i < R; ++i) out[i] = (in[i] - m) - lse;
          } else {  // out = exp(x - m) / sum
            kernels::row_axpb(out, out, R, 1.f / sum, 0.f);
          }
        }
      });
      return;
    }
    // float64 (gradient checks, reference runs): plain loops with std::exp, which gives
    // exact zeros for -inf (Eigen's vectorized exp returns a denormal there, which turned
    // fully masked rows into a uniform distribution instead of NaN, as torch)
    for_rows<T>(xl, yl, [log](const auto& in, auto out) {
      const int64_t n = in.size();
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t i = 0; i < n; ++i) m = (in[i] > m || in[i] != in[i]) ? in[i] : m;  // NaN propagates
      if (!std::isfinite(m)) m = std::isnan(m) ? m : T(0);
      T sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += std::exp(in[i] - m);
      if (log) {
        const T lse = std::log(sum);
        for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - m) - lse;
      } else {
        for (int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i] - m) / sum;
      }
    });
  });
  return last ? yl : contig(permute(yl, inv));
}

/// The fused backward (no graph): softmax dx = y (g - sum(g y)); log_softmax dx = g - e^y sum(g).
inline Tensor softmax_backward_fused(const Tensor& g, const Tensor& y, int64_t d, bool log) {
  std::vector<int64_t> inv;
  bool last = d == y.dim() - 1 && y.is_contiguous() && g.is_contiguous();
  Tensor gl = last ? g : move_dim_last(g, d, inv);
  Tensor yl = last ? y : move_dim_last(y, d, inv);
  Tensor dx = make_tensor(gl.shape(), gl.dtype());
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t R = yl.dim() == 0 ? 1 : yl.shape().back();
    const int64_t K = R == 0 ? 0 : yl.numel() / R;
    const T* pg = gl.data_ptr<const T>();
    const T* py = yl.data_ptr<const T>();
    T* po = dx.data_ptr<T>();
    parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(R, 1)), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        if constexpr (std::is_same_v<T, float>) {
          if (!log) {  // dx = y (g - sum(g y)), the sum in double
            const float s = static_cast<float>(kernels::row_dot_f64(pg + k * R, py + k * R, R));
            const float* gr = pg + k * R;
            const float* yr = py + k * R;
            float* o = po + k * R;
            for (int64_t i = 0; i < R; ++i) o[i] = yr[i] * (gr[i] - s);
            continue;
          }
        }
        kernels::ConstArrayMap<T> gr(pg + k * R, R), yr(py + k * R, R);
        kernels::ArrayMap<T> o(po + k * R, R);
        if (log) {
          T s = gr.sum();
          o = gr - yr.exp() * s;
        } else {
          T s = (gr * yr).sum();
          o = yr * (gr - s);
        }
      }
    });
  });
  return last ? dx : contig(permute(dx, inv));
}

inline Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_defined(x, op, "input");
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point tensor, got ", dtype_name(x.dtype()));
  if (x.dim() == 0) {
    Tensor r = log ? mul(x, 0.0) : add(mul(x, 0.0), 1.0);
    return r;
  }
  int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor out = softmax_forward(x, d, log);
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record(op, {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor y = n.saved(0);
      const int64_t d = n.ints[0];
      const bool log = n.ints[1] != 0;
      if (!autograd::is_grad_enabled()) return TensorList{softmax_backward_fused(g[0], y, d, log)};
      if (log)  // y = x - lse(x)  =>  dx = dy - softmax(x) sum(dy)
        return TensorList{sub(g[0], mul(exp(y), sum(g[0], {d}, true)))};
      // y = softmax(x)  =>  dx = y (dy - sum(dy y))
      return TensorList{mul(y, sub(g[0], sum(mul(g[0], y), {d}, true)))};
    });
    n.save_output(out);
    n.ints = {d, log ? 1 : 0};
  }
  return out;
}

}  // namespace detail

inline Tensor softmax(const Tensor& x, int64_t dim) { return detail::softmax_impl(x, dim, false); }
inline Tensor log_softmax(const Tensor& x, int64_t dim) { return detail::softmax_impl(x, dim, true); }

inline Tensor Tensor::softmax(int64_t d) const { return genai::softmax(*this, d); }
inline Tensor Tensor::log_softmax(int64_t d) const { return genai::log_softmax(*this, d); }

}  // namespace genai

#include "genai/ops/all.hpp"
