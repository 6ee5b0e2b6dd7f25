// genai/ops/matmul.hpp: matmul with batch broadcasting (torch.matmul), mm, bmm, linear.
//
// GEMM (kernels/gemm.hpp) reads the operands through their strides, so the
// transposed views in backward (dA = dC B^T, dB = A^T dC) cost no copies. Batches of small matrices
// are spread over threads; a single large product is split over the threads inside the GEMM.
#pragma once

#include "genai/kernels/gemm.hpp"
#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

/// a (..., M, K) @ b (..., K, N) with broadcast batch dims; both at least 2-d.
inline Tensor matmul_nd(const Tensor& a_in, const Tensor& b_in) {
  Dtype dt = promote_types(a_in.dtype(), b_in.dtype());
  GENAI_CHECK(is_floating(dt), "matmul: expected floating-point tensors, got ", dtype_name(a_in.dtype()), " and ",
              dtype_name(b_in.dtype()));
  Tensor a = as_dtype(a_in, dt), b = as_dtype(b_in, dt);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  GENAI_CHECK(b.size(-2) == K, "matmul: shapes ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()),
              " cannot be multiplied (", M, "x", K, " and ", b.size(-2), "x", N, ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Shape os = batch;
  os.push_back(M);
  os.push_back(N);
  Tensor out = make_tensor(os, dt);
  const int64_t nb = shape_numel(batch);
  if (out.numel() == 0) return out;
  std::vector<int64_t> sa = broadcast_strides(ba, std::vector<int64_t>(a.strides().begin(), a.strides().end() - 2), batch);
  std::vector<int64_t> sb = broadcast_strides(bb, std::vector<int64_t>(b.strides().begin(), b.strides().end() - 2), batch);
  dispatch_float(dt, "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = a.data_ptr<const T>();
    const T* pb = b.data_ptr<const T>();
    T* pc = out.data_ptr<T>();
    auto one = [&](int64_t i) {
      int64_t oa = 0, ob = 0, r = i;
      for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
        int64_t idx = r % batch[d];
        r /= batch[d];
        oa += idx * sa[d];
        ob += idx * sb[d];
      }
      kernels::gemm<T>(M, N, K, pa + oa, a.stride(-2), a.stride(-1), pb + ob, b.stride(-2), b.stride(-1),
                       pc + i * M * N, N);
    };
    const int64_t flops = M * N * K;
    if (nb > 1 && flops < (int64_t(1) << 21)) {
      parallel_for(0, nb, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(flops, 1)), [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  });
  if (autograd::needs_grad(a_in, b_in)) {
    auto& n = autograd::record("matmul", {a_in, b_in}, out, [](autograd::OpNode& n, const TensorList& g) {
      // C = A B  =>  dA = dC B^T, dB = A^T dC (summed over broadcast batch dims)
      Tensor ga, gb;
      if (n.needs_input_grad(0)) ga = sum_to(matmul_nd(g[0], transpose(n.saved(1), -1, -2)), n.shapes[0]);
      if (n.needs_input_grad(1)) gb = sum_to(matmul_nd(transpose(n.saved(0), -1, -2), g[0]), n.shapes[1]);
      return TensorList{ga, gb};
    });
    n.shapes = {a_in.shape(), b_in.shape()};
    n.save(a_in);
    n.save(b_in);
  }
  return out;
}

}  // namespace detail

inline Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "matmul", "first operand");
  detail::check_defined(b, "matmul", "second operand");
  GENAI_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dimension, got shapes ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.dim() == 1 && b.dim() == 1) {
    GENAI_CHECK(a.numel() == b.numel(), "matmul: 1-d vectors of sizes ", a.numel(), " and ", b.numel(),
                " have no dot product");
    return reshape(detail::matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (a.dim() == 1) return squeeze(detail::matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(detail::matmul_nd(a, unsqueeze(b, 1)), -1);
  return detail::matmul_nd(a, b);
}

inline Tensor mm(const Tensor& a, const Tensor& b) {
  GENAI_CHECK(a.dim() == 2 && b.dim() == 2, "mm: expected 2-d matrices, got shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  return detail::matmul_nd(a, b);
}

inline Tensor bmm(const Tensor& a, const Tensor& b) {
  GENAI_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), "bmm: expected 3-d tensors with equal batch, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  return detail::matmul_nd(a, b);
}

/// y = x W^T + b with W (out_features, in_features), as torch.nn.functional.linear.
inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  GENAI_CHECK(weight.dim() == 2, "linear: weight must be 2-d (out_features, in_features), got ", shape_str(weight.shape()));
  GENAI_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ", shape_str(x.shape()),
              " does not match weight of shape ", shape_str(weight.shape()), " (expected last dim ", weight.size(1), ")");
  Tensor y = matmul(x, transpose(weight, 0, 1));
  return bias.defined() ? add(y, bias) : y;
}

inline Tensor Tensor::matmul(const Tensor& o) const { return genai::matmul(*this, o); }

}  // namespace genai

#include "genai/ops/all.hpp"
