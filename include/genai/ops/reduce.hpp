// genai/ops/reduce.hpp: reductions over any set of dimensions, with keepdim:
// sum, mean, var, amax/amin, max/min (full, or along a dim with indices),
// argmax/argmin, logsumexp, and sum_to (the adjoint of broadcasting).
//
// As torch: max/min along a dim send the gradient to the returned index; amax,
// amin and the full max()/min() split it evenly between tied maxima; var uses
// Bessel's correction unless told otherwise; NaN propagates through max/min.
// An empty dims list reduces over every dimension (torch.sum(x, dim=[])).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

enum class ReduceKind { Sum, Max, Min };

/// Which dims are reduced; empty `dims` means all.
inline std::vector<bool> reduce_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  int64_t nd = x.dim();
  std::vector<bool> m(static_cast<size_t>(nd), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, nd, op);
    GENAI_CHECK(nd == 0 || !m[w], op, ": dimension ", d, " appears more than once in the dims list");
    if (nd > 0) m[w] = true;
  }
  return m;
}

/// The output shape of a reduction.
inline Shape reduced_shape(const Shape& s, const std::vector<bool>& m, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!m[i])
      out.push_back(s[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

template <class T>
inline T reduce_combine(ReduceKind k, T a, T b) {
  switch (k) {
    case ReduceKind::Sum: return a + b;
    case ReduceKind::Max: return (a > b || std::isnan(a)) ? a : b;
    case ReduceKind::Min: return (a < b || std::isnan(a)) ? a : b;
  }
  return a;
}

/// Reduces x over the masked dims; the result has the kept dims only.
inline Tensor reduce_kernel(const Tensor& x, const std::vector<bool>& m, ReduceKind kind, const char* op) {
  const Shape& s = x.shape();
  Shape kept_shape, red_shape;
  std::vector<int64_t> perm;
  for (size_t i = 0; i < s.size(); ++i)
    if (!m[i]) {
      kept_shape.push_back(s[i]);
      perm.push_back(static_cast<int64_t>(i));
    }
  for (size_t i = 0; i < s.size(); ++i)
    if (m[i]) {
      red_shape.push_back(s[i]);
      perm.push_back(static_cast<int64_t>(i));
    }
  const int64_t K = shape_numel(kept_shape), R = shape_numel(red_shape);
  GENAI_CHECK(R > 0 || kind == ReduceKind::Sum || K == 0, op, ": cannot reduce over an empty dimension (shape ",
              shape_str(s), "); the reduction has no identity");
  return dispatch_arith(x.dtype() == kBool ? kInt64 : x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor xx = as_dtype(x, dtype_of<T>::value);
    Tensor out = make_tensor(kept_shape, dtype_of<T>::value);
    T* po = out.data_ptr<T>();
    if (K == 0) return out;
    if (R == 0) {
      kernels::fill<T>(out, T(0));
      return out;
    }
    // leading reduced dims and trailing kept dims of a contiguous tensor: add rows
    bool leading = true;
    {
      bool seen_kept = false;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == 1) continue;
        if (!m[i]) seen_kept = true;
        else if (seen_kept) leading = false;
      }
    }
    if (xx.is_contiguous() && leading && K > 1) {
      const T* px = xx.data_ptr<const T>();
      parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(R, 1)), [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) po[k] = px[k];
        for (int64_t r = 1; r < R; ++r) {
          const T* row = px + r * K;
          if (kind == ReduceKind::Sum)
            for (int64_t k = k0; k < k1; ++k) po[k] += row[k];
          else
            for (int64_t k = k0; k < k1; ++k) po[k] = reduce_combine(kind, po[k], row[k]);
        }
      });
      return out;
    }
    // general: bring the reduced dims last, then reduce contiguous rows
    Tensor xp = contig(genai::detail::make_view(xx, [&] {
      Shape ps;
      for (int64_t p : perm) ps.push_back(s[p]);
      return ps;
    }(), [&] {
      std::vector<int64_t> st;
      for (int64_t p : perm) st.push_back(xx.strides()[p]);
      return st;
    }(), xx.offset()));
    const T* px = xp.data_ptr<const T>();
    parallel_for(0, K, std::max<int64_t>(1, kernels::kGrain / R), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        kernels::ConstArrayMap<T> row(px + k * R, R);
        if constexpr (std::is_floating_point_v<T>) {
          if (kind == ReduceKind::Sum) po[k] = row.sum();
          else if (kind == ReduceKind::Max) po[k] = row.template maxCoeff<Eigen::PropagateNaN>();
          else po[k] = row.template minCoeff<Eigen::PropagateNaN>();
        } else {
          T acc = row[0];
          for (int64_t r = 1; r < R; ++r) acc = reduce_combine(kind, acc, row[r]);
          po[k] = acc;
        }
      }
    });
    return out;
  });
}

/// Index of the first max (or min) along `dim`; NaN counts as the extreme.
inline Tensor arg_reduce(const Tensor& x, int64_t dim, bool keepdim, bool is_max, const char* op) {
  check_defined(x, op, "input");
  int64_t nd = x.dim();
  if (nd == 0) return zeros({}, kInt64);
  int64_t d = wrap_dim(dim, nd, op);
  GENAI_CHECK(x.shape()[d] > 0, op, ": cannot take the ", is_max ? "max" : "min", " of an empty dimension (shape ",
              shape_str(x.shape()), ")");
  // bring `d` last: rows of xt are then in the row-major order of the kept dims
  std::vector<int64_t> perm;
  Shape kept;
  for (int64_t i = 0; i < nd; ++i)
    if (i != d) {
      perm.push_back(i);
      kept.push_back(x.shape()[i]);
    }
  perm.push_back(d);
  Tensor xt = contig(permute(x.detach(), perm));
  const int64_t R = x.shape()[d], K = shape_numel(kept);
  Shape os = x.shape();
  if (keepdim) os[d] = 1;
  else os = kept;
  Tensor out = make_tensor(os, kInt64);
  int64_t* po = out.data_ptr<int64_t>();
  dispatch_arith(xt.dtype() == kBool ? kInt64 : xt.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor xx = as_dtype(xt, dtype_of<T>::value);
    const T* px = xx.data_ptr<const T>();
    parallel_for(0, K, 1024, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const T* row = px + k * R;
        int64_t best = 0;
        for (int64_t r = 1; r < R; ++r) {
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(row[best])) break;
            if (std::isnan(row[r])) {
              best = r;
              break;
            }
          }
          if (is_max ? row[r] > row[best] : row[r] < row[best]) best = r;
        }
        po[k] = best;
      }
    });
  });
  return out;
}

}  // namespace detail

inline Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "sum", "input");
  std::vector<bool> m = detail::reduce_mask(x, dims, "sum");
  Tensor r = detail::reduce_kernel(x, m, detail::ReduceKind::Sum, "sum");
  Tensor out = keepdim ? detail::make_view(r, detail::reduced_shape(x.shape(), m, true),
                                           contiguous_strides(detail::reduced_shape(x.shape(), m, true)), 0)
                       : r;
  out.impl()->is_view = false;
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("sum", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{expand(reshape(g[0], n.shapes[1]), n.shapes[0])};  // dx = dout broadcast back
    });
    n.shapes = {x.shape(), detail::reduced_shape(x.shape(), m, true)};
  }
  return out;
}

inline Tensor sum(const Tensor& x) { return sum(x, {}, false); }

inline Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "mean", "input");
  GENAI_CHECK(is_floating(x.dtype()), "mean: expected a floating-point tensor, got ", dtype_name(x.dtype()),
              "; hint: convert with .to(genai::kFloat32)");
  std::vector<bool> m = detail::reduce_mask(x, dims, "mean");
  int64_t count = 1;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i]) count *= x.shape()[i];
  return div(sum(x, dims, keepdim), full({}, static_cast<double>(count), x.dtype()));
}

inline Tensor mean(const Tensor& x) { return mean(x, {}, false); }

inline Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  detail::check_defined(x, "var", "input");
  std::vector<bool> m = detail::reduce_mask(x, dims, "var");
  int64_t count = 1;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i]) count *= x.shape()[i];
  Tensor d = sub(x, mean(x, dims, true));
  double denom = static_cast<double>(std::max<int64_t>(count - correction, 0));
  return div(sum(mul(d, d), dims, keepdim), full({}, denom, x.dtype()));
}

namespace detail {
inline Tensor amax_amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  const char* op = is_max ? "amax" : "amin";
  check_defined(x, op, "input");
  std::vector<bool> m = reduce_mask(x, dims, op);
  Tensor r = reduce_kernel(x, m, is_max ? ReduceKind::Max : ReduceKind::Min, op);
  Tensor out = keepdim ? reshape(r, reduced_shape(x.shape(), m, true)) : r;
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record(op, {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      // the gradient is split evenly between the positions that attain the extreme
      Tensor xv = n.saved(0);
      const Shape& xs = n.shapes[0];
      const Shape& ks = n.shapes[1];
      Tensor mask = to(eq(xv, expand(reshape(n.saved(1).detach(), ks), xs)), xv.dtype());
      Tensor cnt = sum(mask, n.ints, true);
      return TensorList{div(mul(expand(reshape(g[0], ks), xs), mask), cnt)};
    });
    n.save(x);
    n.save_output(out);
    n.shapes = {x.shape(), reduced_shape(x.shape(), m, true)};
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i]) n.ints.push_back(static_cast<int64_t>(i));
  }
  return out;
}
}  // namespace detail

inline Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return detail::amax_amin(x, dims, keepdim, true);
}
inline Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return detail::amax_amin(x, dims, keepdim, false);
}
inline Tensor max(const Tensor& x) { return detail::amax_amin(x, {}, false, true); }
inline Tensor min(const Tensor& x) { return detail::amax_amin(x, {}, false, false); }

namespace detail {
inline ValuesIndices max_min_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  check_defined(x, op, "input");
  Tensor idx = arg_reduce(x, dim, keepdim, is_max, op);
  if (x.dim() == 0) return {x, idx};
  int64_t d = wrap_dim(dim, x.dim(), op);
  Tensor idx_k = keepdim ? idx : unsqueeze(idx, d);
  Tensor vals = gather(x, d, idx_k);  // records the gradient to the selected positions
  if (!keepdim) vals = squeeze(vals, d);
  return {vals, idx};
}
}  // namespace detail

inline ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return detail::max_min_dim(x, dim, keepdim, true); }
inline ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return detail::max_min_dim(x, dim, keepdim, false); }

inline Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return detail::arg_reduce(x, dim, keepdim, true, "argmax"); }
inline Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return detail::arg_reduce(x, dim, keepdim, false, "argmin"); }
inline Tensor argmax(const Tensor& x) { return detail::arg_reduce(reshape(x.detach(), {-1}), 0, false, true, "argmax"); }
inline Tensor argmin(const Tensor& x) { return detail::arg_reduce(reshape(x.detach(), {-1}), 0, false, false, "argmin"); }

inline Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "logsumexp", "input");
  GENAI_CHECK(is_floating(x.dtype()), "logsumexp: expected a floating-point tensor, got ", dtype_name(x.dtype()));
  // m + log(sum(exp(x - m))) with m the (detached) max; an all -inf row keeps m = 0
  Tensor m = amax(x.detach(), dims, true);
  m = where(eq(detail::unary_float(m, "isfinite", kernels::UnaryOp::IsFinite), 0.0), 0.0, m);
  Tensor s = log(sum(exp(sub(x, m)), dims, true));
  Tensor out = add(s, m);
  if (!keepdim) {
    std::vector<bool> mk = detail::reduce_mask(x, dims, "logsumexp");
    out = reshape(out, detail::reduced_shape(x.shape(), mk, false));
  }
  return out;
}

inline Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  int64_t nd = x.dim(), ns = static_cast<int64_t>(shape.size());
  GENAI_CHECK(ns <= nd, "sum_to: cannot reduce shape ", shape_str(x.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < nd; ++i) {
    int64_t j = i - (nd - ns);
    if (j < 0) {
      dims.push_back(i);
    } else if (shape[j] == 1 && x.shape()[i] != 1) {
      dims.push_back(i);
    } else {
      GENAI_CHECK(shape[j] == x.shape()[i], "sum_to: cannot reduce shape ", shape_str(x.shape()), " to ",
                  shape_str(shape));
    }
  }
  Tensor r = sum(x, dims, true);
  return reshape(r, shape);
}

inline Tensor Tensor::sum() const { return genai::sum(*this); }
inline Tensor Tensor::sum(const std::vector<int64_t>& d, bool k) const { return genai::sum(*this, d, k); }
inline Tensor Tensor::mean() const { return genai::mean(*this); }
inline Tensor Tensor::mean(const std::vector<int64_t>& d, bool k) const { return genai::mean(*this, d, k); }
inline Tensor Tensor::var(const std::vector<int64_t>& d, int64_t c, bool k) const { return genai::var(*this, d, c, k); }
inline Tensor Tensor::amax(const std::vector<int64_t>& d, bool k) const { return genai::amax(*this, d, k); }
inline Tensor Tensor::amin(const std::vector<int64_t>& d, bool k) const { return genai::amin(*this, d, k); }
inline Tensor Tensor::max() const { return genai::max(*this); }
inline Tensor Tensor::min() const { return genai::min(*this); }
inline Tensor Tensor::argmax() const { return genai::argmax(*this); }
inline Tensor Tensor::argmax(int64_t d, bool k) const { return genai::argmax(*this, d, k); }
inline Tensor Tensor::logsumexp(const std::vector<int64_t>& d, bool k) const { return genai::logsumexp(*this, d, k); }

}  // namespace genai

#include "genai/ops/all.hpp"
