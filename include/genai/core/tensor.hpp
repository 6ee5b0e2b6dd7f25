// genai/core/tensor.hpp: genai::Tensor, a shared handle to a strided view of a Storage.
//
// As torch.Tensor: a Tensor is a cheap handle; copies share the same data and
// autograd identity (use clone() for a deep copy). A tensor has a runtime shape,
// strides and offset (in elements) into a 64-byte-aligned Storage, a dtype, and
// autograd metadata (requires_grad, the node that produced it, the accumulated
// gradient). Views (reshape, transpose, permute, narrow, expand, ...) share the
// storage.
//
// This header defines the class and its metadata accessors. The member functions
// that run ops (x.exp(), x.sum(), x + y, ...) are defined next to their ops in
// genai/ops/*.hpp; include genai/tensor.hpp (or genai/genai.hpp) to get them all.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <vector>

#include "genai/config.hpp"
#include "genai/core/dtype.hpp"
#include "genai/core/shape.hpp"
#include "genai/core/storage.hpp"

namespace genai {

namespace autograd {
class Node;
}

struct TensorImpl;
class Tensor;
using TensorList = std::vector<Tensor>;

/// Result of max/min along a dimension: the values and their int64 indices.
struct ValuesIndices;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata --------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  /// Size of dimension d (negative d counts from the end).
  int64_t size(int64_t d) const;
  const std::vector<int64_t>& strides() const;
  int64_t stride(int64_t d) const;
  /// Offset of element 0 into the storage, in elements.
  int64_t offset() const;
  int64_t dim() const;
  int64_t numel() const;
  Dtype dtype() const;
  size_t element_size() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  const std::shared_ptr<Storage>& storage() const;
  /// True when both tensors view the same storage.
  bool is_alias_of(const Tensor& other) const { return storage() == other.storage(); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  /// Pointer to element 0 (after the offset); T must match the dtype.
  template <class T> T* data_ptr() const;
  /// Untyped pointer to element 0.
  void* raw_data() const;

  // ---- values ----------------------------------------------------------------
  /// The value of a one-element tensor, converted to T.
  template <class T = float> T item() const;
  /// A flat row-major copy of the values, converted to T.
  template <class T = float> std::vector<T> to_vector() const;
  std::string to_string() const;

  // ---- autograd --------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf tensor as needing its gradient (as torch's requires_grad_).
  Tensor& requires_grad_(bool on = true);
  /// The accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  /// True for tensors not produced by a recorded op (user-created or detached).
  bool is_leaf() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;
  /// Runs reverse-mode autodiff from this tensor (a scalar unless `gradient` is given).
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;
  /// A tensor sharing the data, cut from the graph, with requires_grad false.
  Tensor detach() const;
  /// Cuts this tensor from the graph in place.
  Tensor& detach_();
  /// The in-place version counter of the storage (bumped by every in-place op).
  uint32_t version() const { return storage() ? storage()->version() : 0; }

  // ---- conversion and copies (ops/copy.hpp) -----------------------------------
  Tensor to(Dtype d) const;
  Tensor clone() const;
  Tensor contiguous() const;
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double v);
  Tensor& zero_();

  // ---- views (ops/view.hpp) -----------------------------------------------------
  Tensor view(const Shape& s) const;
  Tensor reshape(const Shape& s) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor operator[](int64_t index) const;
  Tensor expand(const Shape& s) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  TensorList split(int64_t split_size, int64_t dim = 0) const;
  TensorList chunk(int64_t chunks, int64_t dim = 0) const;

  // ---- math (ops/elementwise.hpp, ops/reduce.hpp, ...) ------------------------
  Tensor neg() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor abs() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor square() const;
  Tensor pow(double p) const;
  Tensor pow(const Tensor& p) const;
  Tensor clamp(double lo, double hi) const;
  Tensor clamp_min(double lo) const;
  Tensor clamp_max(double hi) const;
  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor var(const std::vector<int64_t>& dims, int64_t correction = 1, bool keepdim = false) const;
  Tensor amax(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor amin(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  Tensor argmax() const;
  Tensor argmax(int64_t dim, bool keepdim = false) const;
  Tensor logsumexp(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor matmul(const Tensor& other) const;
  Tensor masked_fill(const Tensor& mask, double value) const;

  // ---- in-place arithmetic (autograd-aware; ops/elementwise.hpp) ---------------
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double v);
  Tensor& sub_(const Tensor& other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double v);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double v);
  Tensor& operator+=(const Tensor& o) { return add_(o); }
  Tensor& operator-=(const Tensor& o) { return sub_(o); }
  Tensor& operator*=(const Tensor& o) { return mul_(o); }
  Tensor& operator/=(const Tensor& o) { return div_(o); }
  Tensor& operator+=(double v) { return add_(v); }
  Tensor& operator-=(double v) { return add_(-v); }
  Tensor& operator*=(double v) { return mul_(v); }
  Tensor& operator/=(double v) { return div_(v); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// The state behind a Tensor handle. Not part of the stable API.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  std::vector<int64_t> strides;  // in elements
  int64_t offset = 0;            // in elements
  int64_t numel = 0;
  Dtype dtype = Dtype::Float32;
  bool is_contiguous = true;

  // autograd
  bool requires_grad = false;                     // leaves: the user's flag
  std::shared_ptr<autograd::Node> grad_fn;        // non-leaves: the op that made it
  uint32_t output_nr = 0;                         // which output of grad_fn
  std::weak_ptr<autograd::Node> grad_accumulator; // leaves: shared AccumulateGrad node
  Tensor grad;
  bool is_view = false;  // shares storage with the tensor it was derived from

  TensorImpl() = default;
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();

  void refresh_contiguous() {
    is_contiguous = true;
    int64_t expected = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      if (shape[i] == 1) continue;
      if (strides[i] != expected) {
        is_contiguous = false;
        return;
      }
      expected *= shape[i];
    }
  }
};

namespace detail {

/// Destroys graph nodes without recursion. Dropping the last tensor of a long
/// chain would otherwise destroy node -> tensor -> node ... recursively and
/// overflow the stack (a 100,000-op chain must not). Owners of graph nodes hand
/// them here; nested releases are queued and drained by the outermost call.
inline void release_graph_ref(std::shared_ptr<void>&& p) {
  struct Graveyard {
    std::vector<std::shared_ptr<void>> items;
    bool draining = false;
  };
  thread_local Graveyard g;
  if (!p) return;
  if (p.use_count() > 1) {  // not the last owner: nothing is destroyed here
    p.reset();
    return;
  }
  g.items.push_back(std::move(p));
  if (g.draining) return;
  g.draining = true;
  while (!g.items.empty()) {
    std::shared_ptr<void> x = std::move(g.items.back());
    g.items.pop_back();
    x.reset();  // may queue more items
  }
  g.draining = false;
}

}  // namespace detail

inline TensorImpl::~TensorImpl() {
  if (grad_fn) detail::release_graph_ref(std::shared_ptr<void>(std::move(grad_fn)));
}

// ---- inline metadata accessors ------------------------------------------------

namespace detail {
inline const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  GENAI_CHECK(p != nullptr, "operation on an undefined tensor; hint: the Tensor was default-constructed "
                            "or its gradient was never computed");
  return *p;
}
}  // namespace detail

inline const Shape& Tensor::shape() const { return detail::checked(impl_).shape; }
inline int64_t Tensor::size(int64_t d) const {
  const auto& s = shape();
  return s[wrap_dim(d, static_cast<int64_t>(s.size()), "size")];
}
inline const std::vector<int64_t>& Tensor::strides() const { return detail::checked(impl_).strides; }
inline int64_t Tensor::stride(int64_t d) const {
  const auto& s = strides();
  return s[wrap_dim(d, static_cast<int64_t>(s.size()), "stride")];
}
inline int64_t Tensor::offset() const { return detail::checked(impl_).offset; }
inline int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
inline int64_t Tensor::numel() const { return detail::checked(impl_).numel; }
inline Dtype Tensor::dtype() const { return detail::checked(impl_).dtype; }
inline bool Tensor::is_contiguous() const { return detail::checked(impl_).is_contiguous; }
inline const std::shared_ptr<Storage>& Tensor::storage() const { return detail::checked(impl_).storage; }

inline void* Tensor::raw_data() const {
  const auto& im = detail::checked(impl_);
  if (!im.storage || !im.storage->data()) return nullptr;
  return static_cast<char*>(im.storage->data()) + im.offset * static_cast<int64_t>(dtype_size(im.dtype));
}

template <class T>
T* Tensor::data_ptr() const {
  GENAI_CHECK(dtype() == dtype_of<std::remove_const_t<T>>::value, "data_ptr: tensor has dtype ",
              dtype_name(dtype()), " but ", dtype_name(dtype_of<std::remove_const_t<T>>::value),
              " was requested");
  return static_cast<T*>(raw_data());
}

inline bool Tensor::requires_grad() const {
  const auto& im = detail::checked(impl_);
  return im.requires_grad || im.grad_fn != nullptr;
}
inline bool Tensor::is_leaf() const { return detail::checked(impl_).grad_fn == nullptr; }
inline const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return detail::checked(impl_).grad_fn; }
inline uint32_t Tensor::output_nr() const { return detail::checked(impl_).output_nr; }
inline Tensor Tensor::grad() const { return detail::checked(impl_).grad; }
inline void Tensor::set_grad(const Tensor& g) const {
  const auto& im = detail::checked(impl_);
  if (g.defined())
    GENAI_CHECK(g.shape() == im.shape, "set_grad: gradient shape ", shape_str(g.shape()),
                " does not match tensor shape ", shape_str(im.shape));
  impl_->grad = g;
}

inline Tensor& Tensor::requires_grad_(bool on) {
  auto& im = const_cast<TensorImpl&>(detail::checked(impl_));
  GENAI_CHECK(im.grad_fn == nullptr || on,
              "requires_grad_(false) on a non-leaf tensor; hint: use detach() to cut it from the graph");
  GENAI_CHECK(!on || is_floating(im.dtype), "requires_grad_: only floating-point tensors can require "
              "gradients, got ", dtype_name(im.dtype));
  if (im.grad_fn == nullptr) im.requires_grad = on;
  return *this;
}

// ---- construction helpers used by ops -----------------------------------------

namespace detail {

/// Storage for a new tensor; an allocation failure names the shape.
inline std::shared_ptr<Storage> allocate_tensor_storage(const Shape& shape, Dtype dtype, size_t nbytes) {
  try {
    return std::make_shared<Storage>(nbytes);
  } catch (const Error& e) {
    GENAI_FAIL("tensor of shape ", shape_str(shape), " (", dtype_name(dtype), ", ", nbytes,
               " bytes) could not be allocated: ", e.message());
  } catch (const std::bad_alloc&) {
    GENAI_FAIL("tensor of shape ", shape_str(shape), " (", dtype_name(dtype), ", ", nbytes,
               " bytes) could not be allocated: out of memory");
  }
}

/// A new tensor with fresh, uninitialized, contiguous storage. Negative sizes, an
/// element count that overflows int64, or a byte size above kMaxAllocBytes throw
/// genai::Error naming the shape (never a wrapped-around size or a huge malloc).
inline Tensor make_tensor(const Shape& shape, Dtype dtype) {
  auto im = std::make_shared<TensorImpl>();
  im->numel = shape_numel(shape);
  GENAI_CHECK(static_cast<uint64_t>(im->numel) <= kMaxAllocBytes / dtype_size(dtype), "tensor of shape ",
              shape_str(shape), " (", dtype_name(dtype), ", ", im->numel, " elements) is too large to allocate: more "
              "than ", kMaxAllocBytes, " bytes (64 TiB); hint: check the sizes (an overflow, or a corrupt file?)");
  im->storage = allocate_tensor_storage(shape, dtype, static_cast<size_t>(im->numel) * dtype_size(dtype));
  im->shape = shape;
  im->strides = contiguous_strides(shape);
  im->dtype = dtype;
  return Tensor(std::move(im));
}

/// A view: same storage and dtype as `base`, new geometry; no autograd history.
inline Tensor make_view(const Tensor& base, Shape shape, std::vector<int64_t> strides, int64_t offset) {
  auto im = std::make_shared<TensorImpl>();
  im->storage = base.storage();
  im->numel = shape_numel(shape);
  im->shape = std::move(shape);
  im->strides = std::move(strides);
  im->offset = offset;
  im->dtype = base.dtype();
  im->is_view = true;
  im->refresh_contiguous();
  return Tensor(std::move(im));
}

}  // namespace detail

}  // namespace genai
