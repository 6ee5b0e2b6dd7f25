// genai/ops/index.hpp: joining and indexing: cat, stack, index_select,
// index_add, gather, scatter_add, masked_fill, one_hot, triu, tril.
//
// As torch: indices are int64 tensors; out-of-range indices raise a genai::Error
// naming the op, the index and the size (never a crash). index_select/index_add
// and gather/scatter_add are each other's adjoints, so gradients of gradients work.
#pragma once

#include <functional>

#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

inline void check_index_tensor(const Tensor& idx, const char* op) {
  check_defined(idx, op, "index");
  GENAI_CHECK(idx.dtype() == kInt64, op, ": index must be an int64 tensor, got ", dtype_name(idx.dtype()),
              "; hint: create it with dtype genai::kInt64");
}

/// Calls f(offsets into the operands) over every element of `shape`, operands given by strides.
template <size_t N, class F>
inline void for_each_index(const Shape& shape, const std::array<std::vector<int64_t>, N>& strides, F f) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (shape_numel(shape) == 0) return;
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  std::array<int64_t, N> off{};
  while (true) {
    f(idx, off);
    int64_t d = nd - 1;
    for (; d >= 0; --d) {
      ++idx[d];
      for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (size_t k = 0; k < N; ++k) off[k] -= idx[d] * strides[k][d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

}  // namespace detail

inline Tensor cat(const TensorList& xs, int64_t dim) {
  GENAI_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  // as torch, 1-d empty tensors are skipped
  TensorList parts;
  for (const auto& x : xs) {
    detail::check_defined(x, "cat", "an input");
    if (!(x.dim() == 1 && x.numel() == 0)) parts.push_back(x);
  }
  if (parts.empty()) return clone(xs[0]);
  const Tensor& ref = parts[0];
  GENAI_CHECK(ref.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated; hint: use stack");
  int64_t d = wrap_dim(dim, ref.dim(), "cat");
  Dtype dt = ref.dtype();
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& x = parts[i];
    GENAI_CHECK(x.dim() == ref.dim(), "cat: tensor ", i, " has ", x.dim(), " dimensions but tensor 0 has ", ref.dim(),
                " (shapes ", shape_str(x.shape()), " and ", shape_str(ref.shape()), ")");
    for (int64_t k = 0; k < ref.dim(); ++k)
      GENAI_CHECK(k == d || x.shape()[k] == ref.shape()[k], "cat: sizes must match except in dimension ", d,
                  "; tensor ", i, " has shape ", shape_str(x.shape()), ", tensor 0 has shape ", shape_str(ref.shape()));
    total += x.shape()[d];
    dt = promote_types(dt, x.dtype());
  }
  Shape os = ref.shape();
  os[d] = total;
  Tensor out = detail::make_tensor(os, dt);
  std::vector<int64_t> sizes;
  int64_t start = 0;
  {
    NoGradGuard ng;
    for (const auto& x : parts) {
      Tensor dst = narrow(out, d, start, x.shape()[d]);
      kernels::copy_into(dst, x);
      start += x.shape()[d];
      sizes.push_back(x.shape()[d]);
    }
  }
  if (autograd::needs_grad_list(parts)) {
    auto& n = autograd::record("cat", parts, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = [x0; x1; ...] along d  =>  dxi = the matching slice of dout
      const int64_t d = n.ints[0];
      TensorList r(n.ints.size() - 1);
      int64_t s = 0;
      for (size_t i = 0; i + 1 < n.ints.size(); ++i) {
        const int64_t len = n.ints[i + 1] & 0xFFFFFFFFFFFF, dt = n.ints[i + 1] >> 48;
        if (n.needs_input_grad(i)) r[i] = to(narrow(g[0], d, s, len), static_cast<Dtype>(dt));
        s += len;
      }
      return r;
    });
    n.ints.push_back(d);
    for (size_t i = 0; i < parts.size(); ++i)  // size in the low 48 bits, dtype above
      n.ints.push_back(sizes[i] | (static_cast<int64_t>(parts[i].dtype()) << 48));
  }
  return out;
}

inline Tensor stack(const TensorList& xs, int64_t dim) {
  GENAI_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  TensorList u;
  for (size_t i = 0; i < xs.size(); ++i) {
    detail::check_defined(xs[i], "stack", "an input");
    GENAI_CHECK(xs[i].shape() == xs[0].shape(), "stack: all tensors must have the same shape; tensor ", i, " has ",
                shape_str(xs[i].shape()), ", tensor 0 has ", shape_str(xs[0].shape()));
    u.push_back(unsqueeze(xs[i], d));
  }
  return cat(u, d);
}

inline Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select", "input");
  detail::check_index_tensor(index, "index_select");
  GENAI_CHECK(index.dim() <= 1, "index_select: index must be 0-d or 1-d, got shape ", shape_str(index.shape()));
  int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "index_select");
  Tensor xx = x.dim() == 0 ? reshape(x.detach(), {1}) : x.detach();
  Tensor idx = detail::contig(reshape(index, {-1}));
  const int64_t n = idx.numel(), size = xx.shape()[d];
  const int64_t* pi = idx.data_ptr<const int64_t>();
  for (int64_t i = 0; i < n; ++i)
    GENAI_CHECK(pi[i] >= -size && pi[i] < size, "index_select: index ", pi[i], " is out of range for dimension ", dim,
                " of size ", size, " (shape ", shape_str(x.shape()), ")");
  Shape os = xx.shape();
  os[d] = n;
  Tensor out = detail::make_tensor(os, x.dtype());
  for (int64_t i = 0; i < n; ++i) {
    int64_t j = pi[i] < 0 ? pi[i] + size : pi[i];
    Tensor dst = slice(out, d, i, i + 1);
    kernels::copy_into(dst, slice(xx, d, j, j + 1));
  }
  if (x.dim() == 0) out = reshape(out, index.dim() == 0 ? Shape{} : Shape{n});
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("index_select", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = x[idx] along d  =>  dx = zeros, with dout added back at idx (repeats accumulate)
      const Shape& xs = n.shapes[0];
      Tensor gg = xs.empty() ? reshape(g[0], {-1}) : g[0];
      Tensor r = index_add(zeros(xs.empty() ? Shape{1} : xs, g[0].dtype()), n.ints[0], n.saved(0), gg);
      return TensorList{xs.empty() ? reshape(r, {}) : r};
    });
    n.shapes = {x.shape()};
    n.ints = {d};
    n.save(idx);
  }
  return out;
}

inline Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_defined(x, "index_add", "input");
  detail::check_defined(src, "index_add", "source");
  detail::check_index_tensor(index, "index_add");
  GENAI_CHECK(index.dim() <= 1, "index_add: index must be 0-d or 1-d, got shape ", shape_str(index.shape()));
  GENAI_CHECK(x.dim() > 0, "index_add: 0-d input is not supported; hint: reshape it to shape (1,)");
  int64_t d = wrap_dim(dim, x.dim(), "index_add");
  Tensor idx = detail::contig(reshape(index, {-1}));
  const int64_t n = idx.numel(), size = x.shape()[d];
  Shape want = x.shape();
  want[d] = n;
  GENAI_CHECK(src.shape() == want, "index_add: source of shape ", shape_str(src.shape()), " does not match the expected ",
              shape_str(want), " (input ", shape_str(x.shape()), " with ", n, " indices along dimension ", dim, ")");
  const int64_t* pi = idx.data_ptr<const int64_t>();
  for (int64_t i = 0; i < n; ++i)
    GENAI_CHECK(pi[i] >= -size && pi[i] < size, "index_add: index ", pi[i], " is out of range for dimension ", dim,
                " of size ", size);
  Tensor out = detail::make_tensor(x.shape(), promote_types(x.dtype(), src.dtype()));
  kernels::copy_into(out, x);
  Tensor s = detail::as_dtype(src.detach(), out.dtype());
  dispatch_arith(out.dtype(), "index_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < n; ++i) {
      int64_t j = pi[i] < 0 ? pi[i] + size : pi[i];
      Tensor dst = slice(out, d, j, j + 1);
      Tensor sv = slice(s, d, i, i + 1);
      T* pd = static_cast<T*>(dst.raw_data());
      const T* ps = static_cast<const T*>(sv.raw_data());
      detail::for_each_index<2>(dst.shape(), {dst.strides(), sv.strides()},
                                [&](const std::vector<int64_t>&, const std::array<int64_t, 2>& o) { pd[o[0]] += ps[o[1]]; });
    }
  });
  if (autograd::needs_grad(x, src)) {
    auto& n = autograd::record("index_add", {x, src}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = x + src scattered at idx  =>  dx = dout, dsrc = dout[idx]
      return TensorList{n.needs_input_grad(0) ? g[0] : Tensor(),
                        n.needs_input_grad(1) ? index_select(g[0], n.ints[0], n.saved(0)) : Tensor()};
    });
    n.ints = {d};
    n.save(idx);
  }
  return out;
}

namespace detail {
inline void check_gather_shapes(const Tensor& x, int64_t d, const Tensor& index, const char* op) {
  GENAI_CHECK(index.dim() == x.dim(), op, ": index must have as many dimensions as the input; got index shape ",
              shape_str(index.shape()), " and input shape ", shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k)
    GENAI_CHECK(k == d || index.shape()[k] <= x.shape()[k], op, ": index shape ", shape_str(index.shape()),
                " is larger than the input shape ", shape_str(x.shape()), " in dimension ", k);
}
}  // namespace detail

inline Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "gather", "input");
  detail::check_index_tensor(index, "gather");
  if (x.dim() == 0) return index_select(x, 0, reshape(index, {}));
  int64_t d = wrap_dim(dim, x.dim(), "gather");
  detail::check_gather_shapes(x, d, index, "gather");
  Tensor out = detail::make_tensor(index.shape(), x.dtype());
  const int64_t size = x.shape()[d];
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x.raw_data());
    const int64_t* pi = static_cast<const int64_t*>(index.raw_data());
    T* po = out.data_ptr<T>();
    std::vector<int64_t> xs = x.strides();
    xs[d] = 0;
    detail::for_each_index<3>(index.shape(), {out.strides(), index.strides(), xs},
                              [&](const std::vector<int64_t>& ix, const std::array<int64_t, 3>& o) {
                                int64_t j = pi[o[1]];
                                GENAI_CHECK(j >= -size && j < size, "gather: index ", j, " is out of range for dimension ",
                                            dim, " of size ", size, " (at position ", shape_str(ix), ")");
                                if (j < 0) j += size;
                                po[o[0]] = px[o[2] + j * x.strides()[d]];
                              });
  });
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("gather", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out[i] = x[.., idx[i], ..]  =>  dx = zeros with dout added at idx
      return TensorList{scatter_add(zeros(n.shapes[0], g[0].dtype()), n.ints[0], n.saved(0), g[0])};
    });
    n.shapes = {x.shape()};
    n.ints = {d};
    n.save(index);
  }
  return out;
}

inline Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_defined(x, "scatter_add", "input");
  detail::check_defined(src, "scatter_add", "source");
  detail::check_index_tensor(index, "scatter_add");
  GENAI_CHECK(x.dim() > 0, "scatter_add: 0-d input is not supported; hint: reshape it to shape (1,)");
  int64_t d = wrap_dim(dim, x.dim(), "scatter_add");
  detail::check_gather_shapes(x, d, index, "scatter_add");
  GENAI_CHECK(src.dim() == x.dim(), "scatter_add: source of shape ", shape_str(src.shape()),
              " must have as many dimensions as the input of shape ", shape_str(x.shape()));
  for (int64_t k = 0; k < x.dim(); ++k)
    GENAI_CHECK(index.shape()[k] <= src.shape()[k], "scatter_add: index shape ", shape_str(index.shape()),
                " is larger than the source shape ", shape_str(src.shape()), " in dimension ", k);
  Dtype dt = promote_types(x.dtype(), src.dtype());
  Tensor out = detail::make_tensor(x.shape(), dt);
  kernels::copy_into(out, x);
  Tensor s = detail::as_dtype(src, dt);
  const int64_t size = x.shape()[d];
  dispatch_arith(dt, "scatter_add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ps = static_cast<const T*>(s.raw_data());
    const int64_t* pi = static_cast<const int64_t*>(index.raw_data());
    T* po = out.data_ptr<T>();
    std::vector<int64_t> os = out.strides();
    os[d] = 0;
    detail::for_each_index<3>(index.shape(), {s.strides(), index.strides(), os},
                              [&](const std::vector<int64_t>& ix, const std::array<int64_t, 3>& o) {
                                int64_t j = pi[o[1]];
                                GENAI_CHECK(j >= -size && j < size, "scatter_add: index ", j,
                                            " is out of range for dimension ", dim, " of size ", size, " (at position ",
                                            shape_str(ix), ")");
                                if (j < 0) j += size;
                                po[o[2] + j * out.strides()[d]] += ps[o[0]];
                              });
  });
  if (autograd::needs_grad(x, src)) {
    auto& n = autograd::record("scatter_add", {x, src}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = x + src scattered at idx  =>  dx = dout, dsrc = dout gathered at idx (zero outside index's extent)
      Tensor gs;
      if (n.needs_input_grad(1)) {
        const int64_t d = n.ints[0];
        const Shape& ss = n.shapes[0];
        Tensor index = n.saved(0);
        const Shape& is = index.shape();
        gs = gather(g[0], d, index);
        Shape cur = is;  // zero-pad up to the source's shape, one dimension at a time
        for (size_t k = 0; k < is.size(); ++k)
          if (is[k] != ss[k]) {
            cur[k] = ss[k];
            gs = detail::slice_backward(gs, cur, static_cast<int64_t>(k), 0, is[k], 1);
          }
      }
      return TensorList{n.needs_input_grad(0) ? g[0] : Tensor(), gs};
    });
    n.shapes = {src.shape()};
    n.ints = {d};
    n.save(index);
  }
  return out;
}

inline Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_defined(x, "masked_fill", "input");
  detail::check_defined(mask, "masked_fill", "mask");
  GENAI_CHECK(mask.dtype() == kBool, "masked_fill: mask must be a bool tensor, got ", dtype_name(mask.dtype()),
              "; hint: build it with a comparison such as x > 0");
  Shape s = broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  GENAI_CHECK(s == x.shape(), "masked_fill: mask of shape ", shape_str(mask.shape()),
              " cannot be broadcast to the input shape ", shape_str(x.shape()));
  return where(mask, full({}, value, x.dtype()), x);
}

inline Tensor one_hot(const Tensor& index, int64_t num_classes) {
  detail::check_index_tensor(index, "one_hot");
  Tensor idx = detail::contig(index);
  const int64_t* pi = idx.data_ptr<const int64_t>();
  const int64_t n = idx.numel();
  if (num_classes < 0) {
    GENAI_CHECK(n > 0, "one_hot: cannot infer the number of classes from an empty tensor");
    num_classes = 0;
    for (int64_t i = 0; i < n; ++i) num_classes = std::max(num_classes, pi[i] + 1);
  }
  Shape os = index.shape();
  os.push_back(num_classes);
  Tensor out = zeros(os, kInt64);
  int64_t* po = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    GENAI_CHECK(pi[i] >= 0 && pi[i] < num_classes, "one_hot: class index ", pi[i], " is out of range for ", num_classes,
                " classes");
    po[i * num_classes + pi[i]] = 1;
  }
  return out;
}

namespace detail {
inline Tensor tri_mask(const Tensor& x, int64_t diagonal, bool upper, const char* op) {
  check_defined(x, op, "input");
  GENAI_CHECK(x.dim() >= 2, op, ": expected a tensor with at least 2 dimensions, got shape ", shape_str(x.shape()));
  const int64_t R = x.size(-2), C = x.size(-1);
  Tensor m = make_tensor({R, C}, kBool);
  bool* pm = m.data_ptr<bool>();
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) pm[i * C + j] = upper ? (j - i >= diagonal) : (j - i <= diagonal);
  return m;
}
}  // namespace detail

inline Tensor triu(const Tensor& x, int64_t diagonal) {
  Tensor m = detail::tri_mask(x, diagonal, true, "triu");
  return where(m, x, full({}, 0.0, x.dtype()));
}

inline Tensor tril(const Tensor& x, int64_t diagonal) {
  Tensor m = detail::tri_mask(x, diagonal, false, "tril");
  return where(m, x, full({}, 0.0, x.dtype()));
}

inline Tensor Tensor::masked_fill(const Tensor& mask, double value) const { return genai::masked_fill(*this, mask, value); }

}  // namespace genai

#include "genai/ops/all.hpp"
