// genai/ops/common.hpp: helpers shared by the op families (not public API):
// contiguous/dtype staging for kernels, and the checks behind in-place ops.
#pragma once

#include "genai/autograd/function.hpp"
#include "genai/core/factory.hpp"
#include "genai/kernels/elementwise.hpp"
#include "genai/ops/fwd.hpp"

namespace genai {
namespace detail {

/// x itself when contiguous, else a contiguous copy (never recorded).
inline Tensor contig(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor c = make_tensor(x.shape(), x.dtype());
  kernels::copy_into(c, x);
  return c;
}

/// x converted to dtype d without recording (for kernels).
inline Tensor as_dtype(const Tensor& x, Dtype d) {
  if (x.dtype() == d) return x;
  Tensor c = make_tensor(x.shape(), d);
  kernels::copy_into(c, x);
  return c;
}

inline void check_defined(const Tensor& t, const char* op, const char* what) {
  GENAI_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

/// A float unary kernel on x (made contiguous first).
inline Tensor unary_float(const Tensor& x, const char* op, kernels::UnaryOp k, double p0 = 0, double p1 = 0) {
  check_defined(x, op, "input");
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point tensor (float32 or float64), got ",
              dtype_name(x.dtype()), "; hint: convert with .to(genai::kFloat32)");
  return kernels::unary(k, contig(x), p0, p1);
}

/// Refuses in-place writes that would corrupt autograd; returns whether the
/// update must be recorded in the graph.
inline bool check_inplace(const Tensor& self, const char* op, bool other_requires_grad = false) {
  if (!autograd::is_grad_enabled()) return false;
  bool rec = self.requires_grad() || other_requires_grad;
  if (!rec) return false;
  GENAI_CHECK(!(self.is_leaf() && self.requires_grad()),
              op, ": a leaf tensor that requires grad (shape ", shape_str(self.shape()),
              ") is used in an in-place operation; hint: wrap the update in genai::NoGradGuard, or use the "
              "out-of-place form");
  GENAI_CHECK(!self.impl()->is_view, op, ": in-place operation on a view (shape ", shape_str(self.shape()),
              ") while autograd is recording is not supported; hint: use the out-of-place form");
  return true;
}

/// Makes `self` hold `result`: recorded updates take over result's buffer and
/// graph node; unrecorded ones write through self's strides and bump the version.
inline void commit_inplace(Tensor& self, const Tensor& result, bool recorded) {
  if (recorded) {
    TensorImpl* d = self.impl();
    TensorImpl* s = result.impl();
    GENAI_ASSERT(d->shape == s->shape);
    // the tensor's version keeps increasing across the move to the new buffer, so a
    // saved handle to this very tensor (not an alias) sees the in-place update
    const uint32_t v = d->storage ? d->storage->version() + 1 : 1;
    if (s->storage && s->storage->version() < v) s->storage->set_version(v);
    d->storage = s->storage;
    d->strides = s->strides;
    d->offset = s->offset;
    d->dtype = s->dtype;
    d->is_contiguous = s->is_contiguous;
    d->grad_fn = s->grad_fn;
    d->output_nr = s->output_nr;
    return;
  }
  kernels::copy_into(self, result);
  self.storage()->bump_version();
}

}  // namespace detail
}  // namespace genai
