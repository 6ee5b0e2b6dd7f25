// genai/ops/view.hpp: views that share storage (no copies): view/reshape,
// flatten, transpose, permute, narrow/slice/select, expand, squeeze/unsqueeze,
// split/chunk. Semantics as torch: reshape copies only when the strides make a
// view impossible; expand gives stride-0 dimensions; negative dims count from the end.
#pragma once

#include <algorithm>
#include <numeric>
#include <optional>

#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

/// Resolves one -1 in a requested shape against numel; checks the element count.
inline Shape infer_shape(const Shape& req, int64_t numel, const char* op, const Shape& from) {
  Shape s = req;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      GENAI_CHECK(infer < 0, op, ": only one dimension can be -1, got ", shape_str(req));
      infer = static_cast<int64_t>(i);
    } else {
      GENAI_CHECK(s[i] >= 0, op, ": invalid size ", s[i], " in shape ", shape_str(req));
      GENAI_CHECK(!__builtin_mul_overflow(known, s[i], &known), op, ": shape ", shape_str(req),
                  " is invalid for input of shape ", shape_str(from), " (", numel, " elements): its element count "
                  "overflows int64");
    }
  }
  if (infer >= 0) {
    GENAI_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(req), " is invalid for input of shape ",
                shape_str(from), " (", numel, " elements)");
    s[static_cast<size_t>(infer)] = numel / known;
  }
  GENAI_CHECK(shape_numel(s) == numel, op, ": shape ", shape_str(req), " is invalid for input of shape ",
              shape_str(from), " (", numel, " elements)");
  return s;
}

/// Strides that let (old_shape, old_strides) be viewed as new_shape without a
/// copy, if any (the algorithm of PyTorch's computeStride).
inline std::optional<std::vector<int64_t>> view_strides(const Shape& old_shape, const std::vector<int64_t>& old_strides,
                                                        const Shape& new_shape) {
  std::vector<int64_t> ns(new_shape.size());
  if (old_shape.empty()) {
    std::fill(ns.begin(), ns.end(), 1);
    return ns;
  }
  int64_t numel = shape_numel(old_shape);
  if (numel == 0) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[td];
    if (td == 0 || (old_shape[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        ns[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (td > 0) {
        chunk_base_stride = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return ns;
}

/// out = zeros(shape) with out.slice(dim, start, end, step) = g. The adjoint of slice.
inline Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start, int64_t end,
                             int64_t step) {
  Tensor out = zeros(shape, g.dtype());
  {
    Tensor dst = slice(out, dim, start, end, step);
    kernels::copy_into(dst, g);
  }
  if (autograd::needs_grad(g)) {
    auto& n = autograd::record("slice_backward", {g}, out, [](autograd::OpNode& n, const TensorList& gg) {
      const auto& p = n.ints;  // out[slice] = g  =>  dg = dout[slice]
      return TensorList{slice(gg[0], p[0], p[1], p[2], p[3])};
    });
    n.ints = {dim, start, end, step};
  }
  return out;
}

}  // namespace detail

inline Tensor view(const Tensor& x, const Shape& shape) {
  Shape s = detail::infer_shape(shape, x.numel(), "view", x.shape());
  auto st = detail::view_strides(x.shape(), x.strides(), s);
  GENAI_CHECK(st.has_value(), "view: shape ", shape_str(shape), " is incompatible with the strides of a ",
              shape_str(x.shape()), " tensor; hint: use reshape(), which copies when needed, or call contiguous() first");
  Tensor out = detail::make_view(x, s, *st, x.offset());
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("view", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{reshape(g[0], n.shapes[0])};  // out = x.view(s)  =>  dx = dout.reshape(x.shape)
    });
    n.shapes = {x.shape()};
  }
  return out;
}

inline Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = detail::infer_shape(shape, x.numel(), "reshape", x.shape());
  if (detail::view_strides(x.shape(), x.strides(), s)) return view(x, s);
  return view(clone(x), s);
}

inline Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  int64_t nd = x.dim();
  if (nd == 0) return reshape(x, {1});
  int64_t a = wrap_dim(start_dim, nd, "flatten"), b = wrap_dim(end_dim, nd, "flatten");
  GENAI_CHECK(a <= b, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape s;
  for (int64_t i = 0; i < a; ++i) s.push_back(x.shape()[i]);
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m *= x.shape()[i];
  s.push_back(m);
  for (int64_t i = b + 1; i < nd; ++i) s.push_back(x.shape()[i]);
  return reshape(x, s);
}

inline Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  int64_t nd = x.dim();
  GENAI_CHECK(static_cast<int64_t>(dims.size()) == nd, "permute: got ", dims.size(), " dims for a ", nd,
              "-d tensor of shape ", shape_str(x.shape()));
  std::vector<int64_t> p(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape s(dims.size());
  std::vector<int64_t> st(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    p[i] = wrap_dim(dims[i], nd, "permute");
    GENAI_CHECK(!seen[p[i]], "permute: dimension ", dims[i], " repeated");
    seen[p[i]] = true;
    s[i] = x.shape()[p[i]];
    st[i] = x.strides()[p[i]];
  }
  Tensor out = detail::make_view(x, s, st, x.offset());
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("permute", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{permute(g[0], n.ints)};  // out = x.permute(p)  =>  dx = dout.permute(p^-1)
    });
    n.ints.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) n.ints[p[i]] = static_cast<int64_t>(i);
  }
  return out;
}

inline Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  int64_t nd = x.dim();
  if (nd == 0) return x;
  int64_t a = wrap_dim(d0, nd, "transpose"), b = wrap_dim(d1, nd, "transpose");
  std::vector<int64_t> p(static_cast<size_t>(nd));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[a], p[b]);
  return permute(x, p);
}

inline Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  int64_t d = wrap_dim(dim, x.dim(), "slice");
  GENAI_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = x.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = x.shape();
  std::vector<int64_t> st = x.strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = detail::make_view(x, s, st, x.offset() + start * x.strides()[d]);
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("slice", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      const auto& p = n.ints;
      return TensorList{detail::slice_backward(g[0], n.shapes[0], p[0], p[1], p[2], p[3])};
    });
    n.shapes = {x.shape()};
    n.ints = {d, start, end, step};
  }
  return out;
}

inline Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  int64_t d = wrap_dim(dim, x.dim(), "narrow");
  int64_t n = x.shape()[d];
  if (start < 0) start += n;
  GENAI_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: range [", start, ", ", start + length,
              ") is out of bounds for dimension ", dim, " of size ", n, " (shape ", shape_str(x.shape()), ")");
  return slice(x, d, start, start + length, 1);
}

inline Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  int64_t d = wrap_dim(dim, x.dim(), "select");
  int64_t n = x.shape()[d];
  GENAI_CHECK(index >= -n && index < n, "select: index ", index, " is out of bounds for dimension ", dim,
              " of size ", n, " (shape ", shape_str(x.shape()), ")");
  if (index < 0) index += n;
  return squeeze(narrow(x, d, index, 1), d);
}

inline Tensor expand(const Tensor& x, const Shape& shape) {
  int64_t nd = static_cast<int64_t>(shape.size());
  GENAI_CHECK(nd >= x.dim(), "expand: the requested shape ", shape_str(shape), " has fewer dimensions than the tensor ",
              shape_str(x.shape()));
  Shape s(static_cast<size_t>(nd));
  std::vector<int64_t> st(static_cast<size_t>(nd));
  int64_t off = nd - x.dim();
  for (int64_t i = 0; i < nd; ++i) {
    int64_t want = shape[i];
    if (i < off) {
      GENAI_CHECK(want >= 0, "expand: size -1 is not allowed in a new leading dimension, got ", shape_str(shape));
      s[i] = want;
      st[i] = 0;
      continue;
    }
    int64_t have = x.shape()[i - off];
    if (want == -1) want = have;
    GENAI_CHECK(have == want || have == 1, "expand: the size ", have, " of dimension ", i - off, " of a ",
                shape_str(x.shape()), " tensor cannot be expanded to ", want, " (target shape ", shape_str(shape),
                "); only size-1 dimensions expand");
    s[i] = want;
    st[i] = have == want ? x.strides()[i - off] : 0;
  }
  if (s == x.shape()) return x;
  Tensor out = detail::make_view(x, s, st, x.offset());
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("expand", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{sum_to(g[0], n.shapes[0])};  // out = x broadcast  =>  dx = sum over broadcast dims
    });
    n.shapes = {x.shape()};
  }
  return out;
}

inline Tensor squeeze(const Tensor& x) {
  Shape s;
  for (int64_t d : x.shape())
    if (d != 1) s.push_back(d);
  return s.size() == x.shape().size() ? x : reshape(x, s);
}

inline Tensor squeeze(const Tensor& x, int64_t dim) {
  if (x.dim() == 0) return x;
  int64_t d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.shape()[d] != 1) return x;
  Shape s = x.shape();
  std::vector<int64_t> st = x.strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = detail::make_view(x, s, st, x.offset());
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("squeeze", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{unsqueeze(g[0], n.ints[0])};
    });
    n.ints = {d};
  }
  return out;
}

inline Tensor unsqueeze(const Tensor& x, int64_t dim) {
  int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  std::vector<int64_t> st = x.strides();
  int64_t new_stride = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  Tensor out = detail::make_view(x, s, st, x.offset());
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("unsqueeze", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{squeeze(g[0], n.ints[0])};
    });
    n.ints = {d};
  }
  return out;
}

inline TensorList split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    GENAI_CHECK(s >= 0, "split: negative size ", s);
    total += s;
  }
  GENAI_CHECK(total == x.shape()[d], "split: sizes sum to ", total, " but dimension ", dim, " of shape ",
              shape_str(x.shape()), " has size ", x.shape()[d]);
  TensorList out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, d, start, s));
    start += s;
  }
  return out;
}

inline TensorList split(const Tensor& x, int64_t split_size, int64_t dim) {
  int64_t d = wrap_dim(dim, x.dim(), "split");
  GENAI_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  int64_t n = x.shape()[d];
  std::vector<int64_t> sizes;
  for (int64_t s = 0; s < n; s += split_size) sizes.push_back(std::min(split_size, n - s));
  if (sizes.empty()) sizes.push_back(0);
  return split_with_sizes(x, sizes, d);
}

inline TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  GENAI_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  int64_t d = wrap_dim(dim, x.dim(), "chunk");
  int64_t n = x.shape()[d];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), d);
}

inline Tensor Tensor::view(const Shape& s) const { return genai::view(*this, s); }
inline Tensor Tensor::reshape(const Shape& s) const { return genai::reshape(*this, s); }
inline Tensor Tensor::flatten(int64_t a, int64_t b) const { return genai::flatten(*this, a, b); }
inline Tensor Tensor::transpose(int64_t a, int64_t b) const { return genai::transpose(*this, a, b); }
inline Tensor Tensor::t() const {
  GENAI_CHECK(dim() <= 2, "t: expects a tensor with at most 2 dimensions, got shape ", shape_str(shape()),
              "; hint: use transpose(d0, d1)");
  return dim() < 2 ? *this : genai::transpose(*this, 0, 1);
}
inline Tensor Tensor::permute(const std::vector<int64_t>& d) const { return genai::permute(*this, d); }
inline Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return genai::narrow(*this, d, s, l); }
inline Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const { return genai::slice(*this, d, s, e, st); }
inline Tensor Tensor::select(int64_t d, int64_t i) const { return genai::select(*this, d, i); }
inline Tensor Tensor::operator[](int64_t i) const { return genai::select(*this, 0, i); }
inline Tensor Tensor::expand(const Shape& s) const { return genai::expand(*this, s); }
inline Tensor Tensor::expand_as(const Tensor& o) const { return genai::expand(*this, o.shape()); }
inline Tensor Tensor::squeeze() const { return genai::squeeze(*this); }
inline Tensor Tensor::squeeze(int64_t d) const { return genai::squeeze(*this, d); }
inline Tensor Tensor::unsqueeze(int64_t d) const { return genai::unsqueeze(*this, d); }
inline TensorList Tensor::split(int64_t s, int64_t d) const { return genai::split(*this, s, d); }
inline TensorList Tensor::chunk(int64_t c, int64_t d) const { return genai::chunk(*this, c, d); }

}  // namespace genai

#include "genai/ops/all.hpp"
