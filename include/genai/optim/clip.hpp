// genai/optim/clip.hpp: gradient clipping, as torch.nn.utils.clip_grad_norm_ and
// clip_grad_value_ (PyTorch 1.13).
//
// clip_grad_norm_ computes the p-norm of all gradients together (as if they were
// concatenated into one vector): the norm of the per-tensor norms, or the largest
// |g| for norm_type = inf. Every gradient is then multiplied by
// min(1, max_norm / (total_norm + 1e-6)) -- also when that factor is 1, as torch.
// Parameters without a gradient are skipped.
//
// Numerics: per-tensor norms accumulate in double over fixed blocks (vectorized;
// the result does not depend on the thread count) and are rounded to the gradient's dtype, as
// torch's per-tensor norms are tensors of that dtype; the clip factor is computed
// in that dtype as torch computes it.
// Differences from PyTorch: the total norm is returned as a double (torch returns a
// 0-d tensor); norm_type must be > 0 or inf (torch also accepts 0 and -inf).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "genai/optim/optimizer.hpp"

namespace genai {
namespace optim {

namespace detail {

constexpr int64_t kNormBlock = int64_t(1) << 16;

/// sum |x|^p (p finite) or max |x| (p = inf) over a contiguous buffer, in double.
template <class T>
inline double grad_norm_accumulate(const T* x, int64_t n, double p) {
  const bool inf = std::isinf(p);
  const int64_t nblocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> part(static_cast<size_t>(nblocks), 0.0);
  parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t s = blk * kNormBlock, e = std::min(n, s + kNormBlock);
      double acc = 0;
      if (inf) {
        for (int64_t i = s; i < e; ++i) {
          double v = std::abs(static_cast<double>(x[i]));
          if (!(v <= acc)) acc = v;  // NaN propagates
        }
      } else if (p == 2.0) {
#if defined(_OPENMP)
#pragma omp simd reduction(+ : acc)
#endif
        for (int64_t i = s; i < e; ++i) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      } else if (p == 1.0) {
#if defined(_OPENMP)
#pragma omp simd reduction(+ : acc)
#endif
        for (int64_t i = s; i < e; ++i) acc += std::abs(static_cast<double>(x[i]));
      } else {
        for (int64_t i = s; i < e; ++i) acc += std::pow(std::abs(static_cast<double>(x[i])), p);
      }
      part[static_cast<size_t>(blk)] = acc;
    }
  });
  double total = 0;
  for (double v : part) {
    if (inf) {
      if (!(v <= total)) total = v;
    } else {
      total += v;
    }
  }
  return total;
}

/// The p-norm of a finished accumulation.
inline double norm_finish(double acc, double p) {
  if (std::isinf(p) || p == 1.0) return acc;
  if (p == 2.0) return std::sqrt(acc);
  return std::pow(acc, 1.0 / p);
}

}  // namespace detail

/// Scales the gradients so that their total norm is at most max_norm; returns the
/// total norm before clipping. With error_if_nonfinite, a NaN or infinite total
/// norm throws instead.
inline double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                              bool error_if_nonfinite = false) {
  GENAI_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be > 0 or inf, got ", norm_type);
  const bool inf = std::isinf(norm_type);
  std::vector<Tensor> grads;
  for (const auto& p : params) {
    GENAI_CHECK(p.defined(), "clip_grad_norm_: a parameter is an undefined tensor");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    GENAI_CHECK(is_floating(g.dtype()), "clip_grad_norm_: gradient has dtype ", dtype_name(g.dtype()));
    grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  const Dtype dt = grads[0].dtype();  // torch: the stacked norms take the first gradient's dtype
  // per-tensor norms, each rounded to its gradient's dtype; then the norm of the norms
  double acc = 0;
  for (const auto& g : grads) {
    Tensor c = genai::detail::contig(g.detach());
    double ni = dispatch_float(c.dtype(), "clip_grad_norm_", [&](auto tag) {
      using T = typename decltype(tag)::type;
      return static_cast<double>(static_cast<T>(
          detail::norm_finish(detail::grad_norm_accumulate<T>(c.data_ptr<T>(), c.numel(), norm_type), norm_type)));
    });
    if (inf) {
      if (!(ni <= acc)) acc = ni;
    } else {
      acc += norm_type == 2.0 ? ni * ni : (norm_type == 1.0 ? ni : std::pow(ni, norm_type));
    }
  }
  const double total = dispatch_float(dt, "clip_grad_norm_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return static_cast<double>(static_cast<T>(detail::norm_finish(acc, norm_type)));
  });
  GENAI_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
              " for gradients from `parameters` is non-finite, so it cannot be clipped. To disable this error and "
              "scale the gradients by the non-finite norm anyway, set error_if_nonfinite = false");
  NoGradGuard ng;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    // clip_coef = max_norm / (total_norm + 1e-6), computed as torch does for a
    // Python float over a tensor: (1 / (total + 1e-6)) * max_norm; then clamp(max=1)
    Tensor gd = g.detach();
    Tensor c = genai::detail::contig(gd);
    dispatch_float(c.dtype(), "clip_grad_norm_", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T denom = static_cast<T>(total) + static_cast<T>(1e-6);
      T coef = (T(1) / denom) * static_cast<T>(max_norm);
      if (coef > T(1)) coef = T(1);  // torch.clamp(clip_coef, max=1.0)
      T* x = c.data_ptr<T>();
      parallel_for(0, c.numel(), detail::kOptimGrain, [&](int64_t b, int64_t e) {
        GENAI_OPTIM_SIMD
        for (int64_t i = b; i < e; ++i) x[i] = x[i] * coef;  // g.detach().mul_(clip_coef_clamped)
      });
    });
    if (!c.is_alias_of(gd)) kernels::copy_into(gd, c);
    gd.storage()->bump_version();
  }
  return total;
}

/// Clamps every gradient element to [-clip_value, clip_value].
inline void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  NoGradGuard ng;
  for (const auto& p : params) {
    GENAI_CHECK(p.defined(), "clip_grad_value_: a parameter is an undefined tensor");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor gd = g.detach();
    Tensor c = genai::detail::contig(gd);
    dispatch_float(c.dtype(), "clip_grad_value_", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T lo = static_cast<T>(-clip_value), hi = static_cast<T>(clip_value);
      T* x = c.data_ptr<T>();
      parallel_for(0, c.numel(), detail::kOptimGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          T v = x[i];
          x[i] = v < lo ? lo : (v > hi ? hi : v);  // clamp_(min=-clip_value, max=clip_value); NaN stays NaN
        }
      });
    });
    if (!c.is_alias_of(gd)) kernels::copy_into(gd, c);
    gd.storage()->bump_version();
  }
}

}  // namespace optim
}  // namespace genai
