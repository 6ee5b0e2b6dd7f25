// genai/ops/copy.hpp: dtype conversion, copies, in-place fills, item/to_vector,
// detach, and the machinery behind in-place ops.
//
// In-place ops (x.add_(y), x += y, copy_, fill_) follow PyTorch where it matters:
// an in-place op on a leaf that requires grad is refused while grad mode is on,
// and every in-place write bumps the storage's version so that a backward that
// needs the old values raises a clear error instead of using the new ones.
// Difference from PyTorch: when the op is recorded by autograd (the tensor or the
// other operand requires grad), the result is written to a new buffer that the
// tensor then points to, so views taken of the tensor earlier keep the old values,
// and so do values saved for backward before the update (the backward that PyTorch
// refuses as "modified by an inplace operation" gets the right gradient here; the
// tensor's version still goes up); in-place ops on views of tensors that require
// grad are refused.
#pragma once

#include <functional>
#include <sstream>

#include "genai/ops/common.hpp"

namespace genai {

inline Tensor to(const Tensor& x, Dtype d) {
  if (x.dtype() == d) return x;
  Tensor out = detail::make_tensor(x.shape(), d);
  kernels::copy_into(out, x);
  if (autograd::needs_grad(x) && is_floating(d)) {
    auto& n = autograd::record("to", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{to(g[0], static_cast<Dtype>(n.ints[0]))};  // dx = dy, converted back
    });
    n.ints = {static_cast<int64_t>(x.dtype())};
  }
  return out;
}

inline Tensor clone(const Tensor& x) {
  Tensor out = detail::make_tensor(x.shape(), x.dtype());
  kernels::copy_into(out, x);
  if (autograd::needs_grad(x))
    autograd::record("clone", {x}, out, [](autograd::OpNode&, const TensorList& g) {
      return TensorList{g[0]};  // out = x  =>  dx = dout
    });
  return out;
}

inline Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

inline Tensor Tensor::to(Dtype d) const { return genai::to(*this, d); }
inline Tensor Tensor::clone() const { return genai::clone(*this); }
inline Tensor Tensor::contiguous() const { return genai::contiguous(*this); }

inline Tensor Tensor::detach() const {
  const auto& im = detail::checked(impl_);
  Tensor t = detail::make_view(*this, im.shape, im.strides, im.offset);
  t.impl()->is_view = im.is_view;
  return t;
}

inline Tensor& Tensor::detach_() {
  auto& im = const_cast<TensorImpl&>(detail::checked(impl_));
  im.grad_fn.reset();
  im.output_nr = 0;
  im.requires_grad = false;
  return *this;
}

template <class T>
T Tensor::item() const {
  GENAI_CHECK(numel() == 1, "item: only one-element tensors can be converted to a scalar, got shape ",
              shape_str(shape()));
  return dispatch_all(dtype(), [&](auto tag) -> T {
    using U = typename decltype(tag)::type;
    return static_cast<T>(*static_cast<const U*>(raw_data()));
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> v(static_cast<size_t>(numel()));
  if (v.empty()) return v;
  Tensor dst(detail::make_tensor(shape(), dtype_of<T>::value));
  kernels::copy_into(dst, *this);
  std::memcpy(v.data(), dst.raw_data(), v.size() * sizeof(T));
  return v;
}


inline Tensor& Tensor::copy_(const Tensor& src) {
  GENAI_CHECK(src.defined(), "copy_: source is undefined");
  Shape b = broadcast_shapes(shape(), src.shape(), "copy_");
  GENAI_CHECK(b == shape(), "copy_: source of shape ", shape_str(src.shape()),
              " cannot be broadcast to destination shape ", shape_str(shape()));
  bool rec = detail::check_inplace(*this, "copy_", src.requires_grad());
  if (rec) {
    Tensor r = genai::to(src, dtype());
    r = r.shape() == shape() ? genai::clone(r) : genai::clone(genai::expand(r, shape()));
    detail::commit_inplace(*this, r, true);
    return *this;
  }
  if (src.shape() == shape()) {
    if (is_alias_of(src) && offset() == src.offset() && strides() == src.strides()) return *this;
    kernels::copy_into(*this, is_alias_of(src) ? genai::clone(src.detach()) : src);
  } else {
    kernels::copy_into(*this, genai::expand(src.detach(), shape()).contiguous());
  }
  storage()->bump_version();
  return *this;
}

inline Tensor& Tensor::fill_(double v) {
  bool rec = detail::check_inplace(*this, "fill_");
  if (rec) {
    detail::commit_inplace(*this, full(shape(), v, dtype()), true);  // constant: cuts the graph
    impl()->grad_fn.reset();
    return *this;
  }
  dispatch_all(dtype(), [&](auto tag) {
    using U = typename decltype(tag)::type;
    kernels::fill<U>(*this, static_cast<U>(v));
  });
  storage()->bump_version();
  return *this;
}

inline Tensor& Tensor::zero_() { return fill_(0.0); }

namespace detail {
template <class T>
inline void print_value(std::ostream& os, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "True" : "False");
  } else if constexpr (std::is_integral_v<T>) {
    os << v;
  } else {
    std::ostringstream s;
    s.precision(4);
    s << v;
    os << s.str();
  }
}
}  // namespace detail

inline std::string Tensor::to_string() const {
  std::ostringstream os;
  if (!defined()) return "tensor(undefined)";
  Tensor c = contiguous();
  const int64_t n = numel();
  const bool summarize = n > 1000;
  os << "tensor(";
  dispatch_all(dtype(), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* p = c.template data_ptr<const U>();
    if (dim() == 0) {
      detail::print_value(os, p[0]);
      return;
    }
    // recursive print with brackets, eliding the middle of long dimensions
    const Shape& s = shape();
    std::vector<int64_t> st = contiguous_strides(s);
    std::function<void(int64_t, int64_t)> rec = [&](int64_t d, int64_t off) {
      os << '[';
      int64_t len = s[d];
      for (int64_t i = 0; i < len; ++i) {
        if (summarize && len > 6 && i == 3) {
          os << "..., ";
          i = len - 3;
        }
        if (d + 1 == static_cast<int64_t>(s.size())) {
          detail::print_value(os, p[off + i * st[d]]);
        } else {
          rec(d + 1, off + i * st[d]);
        }
        if (i + 1 < len) os << (d + 1 == static_cast<int64_t>(s.size()) ? ", " : ",\n       ");
      }
      os << ']';
    };
    rec(0, 0);
  });
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype());
  if (grad_fn())
    os << ", grad_fn=<" << grad_fn()->name() << ">";
  else if (requires_grad())
    os << ", requires_grad=True";
  os << ')';
  return os.str();
}

inline std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace genai

#include "genai/ops/all.hpp"
