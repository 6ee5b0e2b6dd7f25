// genai/ops/embedding.hpp: embedding lookup and dropout, as torch.nn.functional:
// embedding, dropout, dropout2d.
//
// Reference: PyTorch 1.13. embedding gathers rows of the weight (num, dim) for
// int64 indices of any shape; its weight gradient adds the upstream rows back
// (repeated indices accumulate) and is zero at padding_idx. dropout is inverted
// dropout: kept elements are scaled by 1 / (1 - p), so eval needs no rescaling;
// dropout2d zeroes whole channels of an (N, C, H, W) or (C, H, W) input.
//
// Differences from PyTorch:
// - padding_idx = -1 means "no padding row" (PyTorch uses None, and counts
//   negative values from the end: write num + padding_idx for that).
// - max_norm / scale_grad_by_freq / sparse are not supported.
// - the dropout masks come from genai's Generator (xoshiro256**), not PyTorch's
//   stream; a Generator reseeded identically gives the same mask.
#pragma once

#include "genai/ops/all.hpp"

namespace genai {

namespace detail {

/// out (n, dim) = weight rows at idx (n); parallel over rows.
template <class T>
inline void embedding_gather(const T* pw, const int64_t* pi, T* po, int64_t n, int64_t dim) {
  parallel_for(0, n, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(dim, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::copy(pw + pi[i] * dim, pw + (pi[i] + 1) * dim, po + i * dim);
  });
}

/// The embedding weight gradient (num, dim): the rows of g (n, dim) added at idx, 0 at padding_idx.
inline Tensor embedding_backward(const Tensor& g, const Tensor& idx, int64_t num, int64_t padding_idx) {
  const int64_t dim = g.size(-1);
  Tensor g2 = reshape(g, {-1, dim});  // (n, dim)
  if (autograd::is_grad_enabled()) {  // tensor ops, differentiable again
    Tensor keep = padding_idx >= 0 ? unsqueeze(to(ne(idx, static_cast<double>(padding_idx)), g.dtype()), 1) : Tensor();
    return index_add(zeros({num, dim}, g.dtype()), 0, idx, keep.defined() ? mul(g2, keep) : g2);
  }
  Tensor out = zeros({num, dim}, g.dtype());
  Tensor gc = contig(g2);
  const int64_t* pi = idx.data_ptr<const int64_t>();
  const int64_t n = idx.numel();
  dispatch_float(g.dtype(), "embedding backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = gc.data_ptr<const T>();
    T* po = out.data_ptr<T>();
    // parallel over blocks of the embedding dimension: no two threads touch the same element
    parallel_for(0, dim, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(n, 1)), [&](int64_t d0, int64_t d1) {
      for (int64_t i = 0; i < n; ++i) {
        if (pi[i] == padding_idx) continue;
        T* orow = po + pi[i] * dim;
        const T* grow = pg + i * dim;
        for (int64_t d = d0; d < d1; ++d) orow[d] += grow[d];
      }
    });
  });
  return out;
}

}  // namespace detail

/// Looks up rows of `weight` (num, dim) at int64 `indices` of any shape; the
/// result has shape indices.shape() + (dim,). The weight gradient is zero at
/// padding_idx (-1: none).
inline Tensor embedding(const Tensor& indices, const Tensor& weight, int64_t padding_idx = -1) {
  const char* op = "embedding";
  detail::check_defined(indices, op, "indices");
  detail::check_defined(weight, op, "weight");
  GENAI_CHECK(indices.dtype() == kInt64, op, ": indices must be an int64 tensor, got ", dtype_name(indices.dtype()),
              " (shape ", shape_str(indices.shape()), "); hint: convert with .to(genai::kInt64)");
  GENAI_CHECK(weight.dim() == 2, op, ": weight must be 2-d (num_embeddings, embedding_dim), got shape ",
              shape_str(weight.shape()));
  GENAI_CHECK(is_floating(weight.dtype()), op, ": weight must be floating point, got ", dtype_name(weight.dtype()));
  const int64_t num = weight.size(0), dim = weight.size(1);
  GENAI_CHECK(padding_idx == -1 || (padding_idx >= 0 && padding_idx < num), op, ": padding_idx ", padding_idx,
              " is out of range for ", num, " embeddings (use -1 for none)");
  Tensor idx = detail::contig(reshape(indices, {-1}));  // (n)
  const int64_t n = idx.numel();
  const int64_t* pi = idx.data_ptr<const int64_t>();
  for (int64_t i = 0; i < n; ++i)
    GENAI_CHECK(pi[i] >= 0 && pi[i] < num, op, ": index ", pi[i], " at flat position ", i, " is out of range for ",
                num, " embeddings (expected 0 <= index < ", num, "); indices shape ", shape_str(indices.shape()));
  Shape os = indices.shape();
  os.push_back(dim);
  Tensor out = detail::make_tensor(os, weight.dtype());
  Tensor wc = detail::contig(weight.detach());
  dispatch_float(weight.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::embedding_gather<T>(wc.data_ptr<const T>(), pi, out.data_ptr<T>(), n, dim);
  });
  if (autograd::needs_grad(weight)) {
    auto& nd = autograd::record(op, {weight}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out[i] = weight[idx[i]]  =>  dweight[j] = sum over i with idx[i] = j of dout[i]; 0 at padding_idx
      return TensorList{detail::embedding_backward(g[0], n.saved(0), n.ints[0], n.ints[1])};
    });
    nd.save(idx);
    nd.ints = {num, padding_idx};
  }
  return out;
}

namespace detail {

/// A mask of `shape` with 1 / (1 - p) where kept (probability 1 - p) and 0 elsewhere.
inline Tensor dropout_mask(const Shape& shape, double p, Dtype dtype, Generator& gen) {
  Tensor m = make_tensor(shape, dtype);
  const double scale = 1.0 / (1.0 - p);
  dispatch_float(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* pm = m.data_ptr<T>();
    for (int64_t i = 0; i < m.numel(); ++i) pm[i] = gen.uniform() >= p ? static_cast<T>(scale) : T(0);
  });
  return m;
}

inline void check_dropout(const Tensor& x, double p, const char* op) {
  check_defined(x, op, "input");
  GENAI_CHECK(is_floating(x.dtype()), op, ": expected a floating-point input, got ", dtype_name(x.dtype()));
  GENAI_CHECK(p >= 0.0 && p <= 1.0, op, ": dropout probability has to be between 0 and 1, but got ", p);
}

}  // namespace detail

/// Inverted dropout: zeroes each element with probability p and scales the rest
/// by 1 / (1 - p). p = 0 or training = false returns the input itself; p = 1 gives zeros.
inline Tensor dropout(const Tensor& input, double p = 0.5, bool training = true, Generator& gen = default_generator()) {
  detail::check_dropout(input, p, "dropout");
  if (!training || p == 0.0) return input;
  if (p == 1.0) return mul(input, 0.0);
  return mul(input, detail::dropout_mask(input.shape(), p, input.dtype(), gen));  // dx = dout * mask
}

/// Channel dropout: zeroes whole channels of an (N, C, H, W) or (C, H, W) input
/// with probability p and scales the kept ones by 1 / (1 - p).
inline Tensor dropout2d(const Tensor& input, double p = 0.5, bool training = true, Generator& gen = default_generator()) {
  detail::check_dropout(input, p, "dropout2d");
  GENAI_CHECK(input.dim() == 3 || input.dim() == 4, "dropout2d: expected an input of shape (N, C, H, W) or (C, H, W), "
              "got shape ", shape_str(input.shape()));
  if (!training || p == 0.0) return input;
  if (p == 1.0) return mul(input, 0.0);
  Shape ms = input.shape();
  for (size_t d = ms.size() - 2; d < ms.size(); ++d) ms[d] = 1;  // one draw per (sample, channel)
  return mul(input, detail::dropout_mask(ms, p, input.dtype(), gen));
}

}  // namespace genai
