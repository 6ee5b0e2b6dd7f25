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
  // an empty product still records its node: the gradients of empty operands are
  // empty (or zero, for the other operand when K > 0), as in torch
  if (out.numel() > 0) {
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
    const int64_t flops = M * N * K, nt = get_num_threads();
    // threads take whole products when they are small, or when there are enough of them to
    // share evenly (no barrier inside each product); else each product is split over the threads
    if (nb > 1 && (flops < (int64_t(1) << 21) || nb % nt == 0 || nb >= 4 * nt)) {
      parallel_for(0, nb, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(flops, 1)), [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  });
  }
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
///
/// One recorded op (not matmul of a transposed view + add): the weight gradient
/// comes out as dW = dy^T x in W's own (out, in) layout, so the optimizer and
/// .grad() see a contiguous tensor (the composite form's gradient is a transposed
/// view that every accumulation would copy), and the bias is added in place. The
/// backward is written in differentiable ops, so double backward works. Mixed
/// dtypes take the composite form (matmul + add), which promotes.
inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_defined(x, "linear", "input");
  detail::check_defined(weight, "linear", "weight");
  GENAI_CHECK(weight.dim() == 2, "linear: weight must be 2-d (out_features, in_features), got ", shape_str(weight.shape()));
  GENAI_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ", shape_str(x.shape()),
              " does not match weight of shape ", shape_str(weight.shape()), " (expected last dim ", weight.size(1), ")");
  const bool same_dtype = x.dtype() == weight.dtype() && (!bias.defined() || bias.dtype() == x.dtype());
  const bool plain_bias = !bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0));
  if (!same_dtype || !is_floating(x.dtype()) || !plain_bias) {  // the composite form: promotes and broadcasts
    Tensor y = matmul(x, transpose(weight, 0, 1));
    return bias.defined() ? add(y, bias) : y;
  }
  Tensor y;
  {
    NoGradGuard ng;
    y = matmul(x, transpose(weight, 0, 1));  // (..., out), fresh and contiguous
    if (bias.defined() && y.numel() > 0) {   // y += b, in place
      Tensor bc = detail::contig(bias);
      const int64_t out = bias.numel(), rows = y.numel() / out;
      dispatch_float(y.dtype(), "linear", [&](auto tag) {
        using T = typename decltype(tag)::type;
        T* py = y.data_ptr<T>();
        const T* pb = bc.data_ptr<const T>();
        parallel_for(0, rows, std::max<int64_t>(1, kernels::kGrain / out), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t j = 0; j < out; ++j) py[r * out + j] += pb[j];
        });
      });
    }
  }
  if (autograd::needs_grad(x, weight, bias)) {
    auto& n = autograd::record("linear", {x, weight, bias}, y, [](autograd::OpNode& n, const TensorList& g) {
      const Tensor& dy = g[0];  // (..., out)
      Tensor dx, dw, db;
      // y = x W^T  =>  dx = dy W
      if (n.needs_input_grad(0)) dx = matmul(dy, n.saved(1));
      // y = x W^T  =>  dW = dy^T x, with the leading dims of x and dy flattened: (out, in)
      if (n.needs_input_grad(1)) {
        Tensor x = n.saved(0);
        const int64_t in = x.size(-1), out = dy.size(-1);
        dw = matmul(transpose(reshape(dy, {-1, out}), 0, 1), reshape(x, {-1, in}));
      }
      // y = ... + b  =>  db = dy summed over the leading dims
      if (n.needs_input_grad(2)) db = sum_to(dy, {dy.size(-1)});
      return TensorList{dx, dw, db};
    });
    n.save(weight.requires_grad() ? x : Tensor());  // x is needed for dW only, W for dx only
    n.save(x.requires_grad() ? weight : Tensor());
  }
  return y;
}

inline Tensor Tensor::matmul(const Tensor& o) const { return genai::matmul(*this, o); }

}  // namespace genai

#include "genai/ops/all.hpp"
