// genai/ops/softmax.hpp: softmax and log_softmax along a dimension.
//
// Numerically stable (the row max is subtracted before exp). Forward and the
// fused backward run row by row over the softmax dimension moved last; with
// create_graph the backward is written in tensor ops instead, so it is
// differentiable again:
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
#pragma once

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
    for_rows<T>(xl, yl, [log](const auto& in, auto out) {
      T m = in.template maxCoeff<Eigen::PropagateNaN>();
      if (!std::isfinite(m)) m = std::isnan(m) ? m : T(0);
      if (log) {
        out = in - m;
        T lse = std::log(out.exp().sum());
        out -= lse;
      } else {
        out = (in - m).exp();
        out /= out.sum();
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
