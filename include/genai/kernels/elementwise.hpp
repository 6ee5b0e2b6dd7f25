// genai/kernels/elementwise.hpp: raw loops for elementwise ops over strided tensors.
//
// Not public API. Ops name the arithmetic with an enum (BinaryOp, UnaryOp, ...)
// and these kernels run it over tensors of any strides with NumPy broadcasting.
// float32 on contiguous data goes through Eigen array expressions (vectorized
// exp, tanh, erf, ...); float64 (used for gradient checks) and strided data use
// plain loops. The enum style keeps the number of template instantiations, and so
// the compile time of every file that includes genai, small.
//
// Strided iteration coalesces dimensions that are contiguous across all operands,
// so the inner loop is as long as possible and usually unit-stride.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "genai/core/tensor.hpp"
#include "genai/core/threading.hpp"
#include "genai/kernels/rowwise.hpp"

namespace genai {
namespace kernels {

/// Elements per thread below which a loop is not split.
constexpr int64_t kGrain = 32768;

template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// ---- strided iteration -----------------------------------------------------------

/// Shape and per-operand strides (up to 4 operands) after merging dimensions that
/// are contiguous for every operand and dropping size-1 dimensions; at least 1-d.
struct Geometry {
  int nops = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides[4];
};

inline Geometry coalesce(const Shape& shape, std::initializer_list<const std::vector<int64_t>*> strides) {
  Geometry g;
  g.nops = static_cast<int>(strides.size());
  const std::vector<int64_t>* st[4];
  int k = 0;
  for (auto* s : strides) st[k++] = s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !g.shape.empty();
    for (int i = 0; merge && i < g.nops; ++i)
      if (g.strides[i].back() != (*st[i])[d] * shape[d]) merge = false;
    if (merge) {
      g.shape.back() *= shape[d];
      for (int i = 0; i < g.nops; ++i) g.strides[i].back() = (*st[i])[d];
    } else {
      g.shape.push_back(shape[d]);
      for (int i = 0; i < g.nops; ++i) g.strides[i].push_back((*st[i])[d]);
    }
  }
  if (g.shape.empty()) {
    g.shape.push_back(1);
    for (int i = 0; i < g.nops; ++i) g.strides[i].push_back(0);
  }
  return g;
}

/// Row callback: element offsets of the row's first element per operand, the row
/// length, and the per-operand strides along the row.
using RowFn = FunctionRef<void(const int64_t* off, int64_t n, const int64_t* st)>;

/// Calls f for each innermost row of the geometry; rows are split across threads
/// when the total work is large.
inline void for_each_row(const Geometry& g, RowFn f, int64_t grain = kGrain) {
  const int64_t nd = static_cast<int64_t>(g.shape.size());
  const int64_t inner = g.shape[nd - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < nd - 1; ++d) rows *= g.shape[d];
  int64_t inner_st[4] = {0, 0, 0, 0};
  for (int k = 0; k < g.nops; ++k) inner_st[k] = g.strides[k][nd - 1];
  const int64_t row_grain = std::max<int64_t>(1, grain / std::max<int64_t>(inner, 1));
  parallel_for(0, rows, row_grain, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(static_cast<size_t>(std::max<int64_t>(nd - 1, 0)), 0);
    int64_t off[4] = {0, 0, 0, 0};
    int64_t r = r0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = r % g.shape[d];
      r /= g.shape[d];
      for (int k = 0; k < g.nops; ++k) off[k] += idx[d] * g.strides[k][d];
    }
    for (int64_t row = r0; row < r1; ++row) {
      f(off, inner, inner_st);
      for (int64_t d = nd - 2; d >= 0; --d) {
        ++idx[d];
        for (int k = 0; k < g.nops; ++k) off[k] += g.strides[k][d];
        if (idx[d] < g.shape[d]) break;
        for (int k = 0; k < g.nops; ++k) off[k] -= idx[d] * g.strides[k][d];
        idx[d] = 0;
      }
    }
  });
}

// ---- copies and fills ------------------------------------------------------------

namespace detail {
template <class D, class S>
inline void convert_rows(const Tensor& dst, const Tensor& src) {
  D* pd = static_cast<D*>(dst.raw_data());
  const S* ps = static_cast<const S*>(src.raw_data());
  Geometry g = coalesce(dst.shape(), {&dst.strides(), &src.strides()});
  for_each_row(g, [&](const int64_t* off, int64_t n, const int64_t* st) {
    D* o = pd + off[0];
    const S* a = ps + off[1];
    if (st[0] == 1 && st[1] == 1)
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<D>(a[i]);
    else
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = static_cast<D>(a[i * st[1]]);
  });
}
}  // namespace detail

/// dst[i] = convert(src[i]) elementwise; shapes equal, any strides, any dtypes.
inline void copy_into(const Tensor& dst, const Tensor& src) {
  GENAI_ASSERT(dst.shape() == src.shape());
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    const char* s = static_cast<const char*>(src.raw_data());
    char* d = static_cast<char*>(dst.raw_data());
    size_t es = dst.element_size();
    parallel_for(0, dst.numel(), kGrain * 4, [&](int64_t b, int64_t e) {
      std::memcpy(d + b * es, s + b * es, static_cast<size_t>(e - b) * es);
    });
    return;
  }
  auto with_src = [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    switch (src.dtype()) {
      case Dtype::Float32: detail::convert_rows<D, float>(dst, src); break;
      case Dtype::Float64: detail::convert_rows<D, double>(dst, src); break;
      case Dtype::Int64: detail::convert_rows<D, int64_t>(dst, src); break;
      case Dtype::Bool: detail::convert_rows<D, bool>(dst, src); break;
    }
  };
  switch (dst.dtype()) {
    case Dtype::Float32: with_src(type_tag<float>{}); break;
    case Dtype::Float64: with_src(type_tag<double>{}); break;
    case Dtype::Int64: with_src(type_tag<int64_t>{}); break;
    case Dtype::Bool: with_src(type_tag<bool>{}); break;
  }
}

/// Fills a tensor (any strides) with one value.
template <class T>
inline void fill(const Tensor& t, T v) {
  T* p = t.data_ptr<T>();
  if (t.is_contiguous()) {
    parallel_for(0, t.numel(), kGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
    return;
  }
  Geometry g = coalesce(t.shape(), {&t.strides()});
  for_each_row(g, [&](const int64_t* off, int64_t n, const int64_t* st) {
    for (int64_t i = 0; i < n; ++i) p[off[0] + i * st[0]] = v;
  });
}

// ---- binary arithmetic -----------------------------------------------------------

enum class BinaryOp { Add, Sub, Mul, Div, Max, Min, Pow };

namespace detail {

template <class T>
inline T apply_binary(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Max: return (x > y || x != x) ? x : y;  // NaN propagates (as torch.maximum)
    case BinaryOp::Min: return (x < y || x != x) ? x : y;
    case BinaryOp::Pow: return static_cast<T>(std::pow(x, y));
  }
  return x;
}

/// One row of o = a op b with the op hoisted out of the loop.
template <class T>
inline void binary_row(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t so, int64_t n) {
#define GENAI_BIN_LOOP(EXPR)                                                           \
  if (so == 1 && sa == 1 && sb == 1) {                                                 \
    for (int64_t i = 0; i < n; ++i) { const T x = a[i], y = b[i]; o[i] = (EXPR); }     \
  } else if (so == 1 && sa == 1 && sb == 0) {                                          \
    const T y = *b;                                                                    \
    for (int64_t i = 0; i < n; ++i) { const T x = a[i]; o[i] = (EXPR); }               \
  } else if (so == 1 && sa == 0 && sb == 1) {                                          \
    const T x = *a;                                                                    \
    for (int64_t i = 0; i < n; ++i) { const T y = b[i]; o[i] = (EXPR); }               \
  } else {                                                                             \
    for (int64_t i = 0; i < n; ++i) { const T x = a[i * sa], y = b[i * sb]; o[i * so] = (EXPR); } \
  }
  switch (op) {
    case BinaryOp::Add: GENAI_BIN_LOOP(x + y) break;
    case BinaryOp::Sub: GENAI_BIN_LOOP(x - y) break;
    case BinaryOp::Mul: GENAI_BIN_LOOP(x * y) break;
    case BinaryOp::Div: GENAI_BIN_LOOP(x / y) break;
    case BinaryOp::Max: GENAI_BIN_LOOP((x > y || x != x) ? x : y) break;  // NaN propagates
    case BinaryOp::Min: GENAI_BIN_LOOP((x < y || x != x) ? x : y) break;
    case BinaryOp::Pow: GENAI_BIN_LOOP(static_cast<T>(std::pow(x, y))) break;
  }
#undef GENAI_BIN_LOOP
}

/// Same-shape contiguous float32: Eigen (explicitly vectorized).
inline void binary_contig_f32(BinaryOp op, const float* a, const float* b, float* o, int64_t n) {
  ConstArrayMap<float> A(a, n), B(b, n);
  ArrayMap<float> O(o, n);
  switch (op) {
    case BinaryOp::Add: O = A + B; break;
    case BinaryOp::Sub: O = A - B; break;
    case BinaryOp::Mul: O = A * B; break;
    case BinaryOp::Div: O = A / B; break;
    case BinaryOp::Max: O = (A > B || A.isNaN()).select(A, B); break;  // NaN propagates
    case BinaryOp::Min: O = (A < B || A.isNaN()).select(A, B); break;
    case BinaryOp::Pow: binary_row<float>(op, a, 1, b, 1, o, 1, n); break;
  }
}

template <class T>
inline void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  const Shape& os = out.shape();
  if (a.is_contiguous() && b.is_contiguous() && a.shape() == os && b.shape() == os) {
    parallel_for(0, out.numel(), kGrain, [&](int64_t s, int64_t e) {
      if constexpr (std::is_same_v<T, float>)
        binary_contig_f32(op, pa + s, pb + s, po + s, e - s);
      else
        binary_row<T>(op, pa + s, 1, pb + s, 1, po + s, 1, e - s);
    });
    return;
  }
  std::vector<int64_t> sa = broadcast_strides(a.shape(), a.strides(), os);
  std::vector<int64_t> sb = broadcast_strides(b.shape(), b.strides(), os);
  Geometry g = coalesce(os, {&out.strides(), &sa, &sb});
  for_each_row(g, [&](const int64_t* off, int64_t n, const int64_t* st) {
    binary_row<T>(op, pa + off[1], st[1], pb + off[2], st[2], po + off[0], st[0], n);
  });
}

}  // namespace detail

/// out = a op b, broadcast to out_shape; a and b already have out's dtype.
inline Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  GENAI_ASSERT(a.dtype() == b.dtype());
  Tensor out = genai::detail::make_tensor(out_shape, a.dtype());
  if (out.numel() == 0) return out;
  switch (a.dtype()) {
    case Dtype::Float32: detail::binary_typed<float>(op, a, b, out); break;
    case Dtype::Float64: detail::binary_typed<double>(op, a, b, out); break;
    case Dtype::Int64: detail::binary_typed<int64_t>(op, a, b, out); break;
    case Dtype::Bool: GENAI_FAIL("binary arithmetic on bool tensors");
  }
  return out;
}

// ---- comparisons and where -------------------------------------------------------

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, And, Or };

namespace detail {
template <class T>
inline void compare_typed(CompareOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  bool* po = static_cast<bool*>(out.raw_data());
  std::vector<int64_t> sa = broadcast_strides(a.shape(), a.strides(), out.shape());
  std::vector<int64_t> sb = broadcast_strides(b.shape(), b.strides(), out.shape());
  Geometry g = coalesce(out.shape(), {&out.strides(), &sa, &sb});
  for_each_row(g, [&](const int64_t* off, int64_t n, const int64_t* st) {
    const T* x = pa + off[1];
    const T* y = pb + off[2];
    bool* o = po + off[0];
#define GENAI_CMP(EXPR) for (int64_t i = 0; i < n; ++i) { const T u = x[i * st[1]], v = y[i * st[2]]; o[i * st[0]] = (EXPR); }
    switch (op) {
      case CompareOp::Eq: GENAI_CMP(u == v) break;
      case CompareOp::Ne: GENAI_CMP(u != v) break;
      case CompareOp::Lt: GENAI_CMP(u < v) break;
      case CompareOp::Le: GENAI_CMP(u <= v) break;
      case CompareOp::Gt: GENAI_CMP(u > v) break;
      case CompareOp::Ge: GENAI_CMP(u >= v) break;
      case CompareOp::And: GENAI_CMP(u != T(0) && v != T(0)) break;
      case CompareOp::Or: GENAI_CMP(u != T(0) || v != T(0)) break;
    }
#undef GENAI_CMP
  });
}
}  // namespace detail

/// Bool tensor of a op b (broadcast); a and b have the same dtype.
inline Tensor compare(CompareOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  GENAI_ASSERT(a.dtype() == b.dtype());
  Tensor out = genai::detail::make_tensor(out_shape, kBool);
  if (out.numel() == 0) return out;
  switch (a.dtype()) {
    case Dtype::Float32: detail::compare_typed<float>(op, a, b, out); break;
    case Dtype::Float64: detail::compare_typed<double>(op, a, b, out); break;
    case Dtype::Int64: detail::compare_typed<int64_t>(op, a, b, out); break;
    case Dtype::Bool: detail::compare_typed<bool>(op, a, b, out); break;
  }
  return out;
}

/// out = cond ? a : b (broadcast); cond is bool, a and b share a dtype.
inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  GENAI_ASSERT(cond.dtype() == kBool && a.dtype() == b.dtype());
  Tensor out = genai::detail::make_tensor(out_shape, a.dtype());
  if (out.numel() == 0) return out;
  std::vector<int64_t> sc = broadcast_strides(cond.shape(), cond.strides(), out_shape);
  std::vector<int64_t> sa = broadcast_strides(a.shape(), a.strides(), out_shape);
  std::vector<int64_t> sb = broadcast_strides(b.shape(), b.strides(), out_shape);
  Geometry g = coalesce(out_shape, {&out.strides(), &sc, &sa, &sb});
  const bool* pc = static_cast<const bool*>(cond.raw_data());
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for_each_row(g, [&](const int64_t* off, int64_t n, const int64_t* st) {
      for (int64_t i = 0; i < n; ++i)
        po[off[0] + i * st[0]] = pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
    });
  };
  switch (a.dtype()) {
    case Dtype::Float32: run(type_tag<float>{}); break;
    case Dtype::Float64: run(type_tag<double>{}); break;
    case Dtype::Int64: run(type_tag<int64_t>{}); break;
    case Dtype::Bool: run(type_tag<bool>{}); break;
  }
  return out;
}

// ---- unary float math ------------------------------------------------------------

enum class UnaryOp {
  Exp, Log, Log1p, Sqrt, Rsqrt, Square, Sin, Cos, Erf, Tanh, Sigmoid, Relu,
  LeakyRelu,  // p0 = negative slope
  Elu,        // p0 = alpha
  GeluErf, GeluTanh, Silu,
  Softplus,   // p0 = beta, p1 = threshold
  PowScalar,  // x^p0
  RDiv,       // p0 / x
  IsFinite,   // 1 where finite, else 0
  Abs, Sign,
  Clamp,      // to [p0, p1]; NaN stays NaN
};

namespace detail {
constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluC = 0.044715;

template <class T>
inline T unary_scalar(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Log1p: return std::log1p(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Sin: return std::sin(x);
    case UnaryOp::Cos: return std::cos(x);
    case UnaryOp::Erf: return std::erf(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::Relu: return x <= T(0) ? T(0) : x;  // NaN stays NaN
    case UnaryOp::LeakyRelu: return x > T(0) ? x : x * p0;
    case UnaryOp::Elu: return x > T(0) ? x : p0 * std::expm1(x);
    case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2)));
    case UnaryOp::GeluTanh: return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x)));
    case UnaryOp::Silu: return x / (T(1) + std::exp(-x));
    case UnaryOp::Softplus: return x * p0 > p1 ? x : std::log1p(std::exp(x * p0)) / p0;
    case UnaryOp::PowScalar: return std::pow(x, p0);
    case UnaryOp::RDiv: return p0 / x;
    case UnaryOp::IsFinite: return std::isfinite(x) ? T(1) : T(0);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return static_cast<T>((T(0) < x) - (x < T(0)));
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
  }
  return x;
}

/// Contiguous float32 through Eigen's vectorized functions.
inline void unary_f32(UnaryOp op, const float* x, float* o, int64_t n, float p0, float p1) {
  ConstArrayMap<float> X(x, n);
  ArrayMap<float> O(o, n);
  switch (op) {
    case UnaryOp::Exp: row_exp(x, o, n); break;  // not X.exp(): Eigen 3.4 gives a denormal for exp(-inf)
    case UnaryOp::Log: O = X.log(); break;
    case UnaryOp::Log1p: O = X.log1p(); break;
    // sqrt and rsqrt stay exact (as torch): Eigen's fast-math packets approximate them
    case UnaryOp::Sqrt: for (int64_t i = 0; i < n; ++i) o[i] = std::sqrt(x[i]); break;
    case UnaryOp::Rsqrt: for (int64_t i = 0; i < n; ++i) o[i] = 1.0f / std::sqrt(x[i]); break;
    case UnaryOp::Square: O = X.square(); break;
    case UnaryOp::Sin: O = X.sin(); break;
    case UnaryOp::Cos: O = X.cos(); break;
    case UnaryOp::Erf: O = X.erf(); break;
    case UnaryOp::Tanh: O = X.tanh(); break;
    case UnaryOp::Sigmoid: O = X.logistic(); break;
    case UnaryOp::Relu: O = X.max(0.0f); break;
    case UnaryOp::LeakyRelu: O = (X > 0.0f).select(X, X * p0); break;
    case UnaryOp::GeluErf: O = 0.5f * X * (1.0f + (X * float(kSqrt1_2)).erf()); break;
    case UnaryOp::GeluTanh: O = 0.5f * X * (1.0f + (float(kSqrt2OverPi) * (X + float(kGeluC) * X.cube())).tanh()); break;
    case UnaryOp::Silu: O = X * X.logistic(); break;
    case UnaryOp::Abs: O = X.abs(); break;
    default:
      for (int64_t i = 0; i < n; ++i) o[i] = unary_scalar<float>(op, x[i], p0, p1);
  }
}
}  // namespace detail

/// out = op(x) for a contiguous float tensor x.
inline Tensor unary(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  GENAI_ASSERT(x.is_contiguous() && is_floating(x.dtype()));
  Tensor out = genai::detail::make_tensor(x.shape(), x.dtype());
  if (x.dtype() == kFloat32) {
    const float* px = x.data_ptr<const float>();
    float* po = out.data_ptr<float>();
    parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
      detail::unary_f32(op, px + b, po + b, e - b, static_cast<float>(p0), static_cast<float>(p1));
    });
  } else {
    const double* px = x.data_ptr<const double>();
    double* po = out.data_ptr<double>();
    parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) po[i] = detail::unary_scalar<double>(op, px[i], p0, p1);
    });
  }
  return out;
}

/// Fused activation backward: dx = g * f'(t), where t is the op's output (Tanh,
/// Sigmoid, Relu) or its input (GeluErf, Silu). g and t contiguous, same shape.
inline Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& t) {
  GENAI_ASSERT(g.is_contiguous() && t.is_contiguous() && g.shape() == t.shape() && g.dtype() == t.dtype());
  Tensor out = genai::detail::make_tensor(g.shape(), g.dtype());
  auto scalar = [op](auto gg, auto v) -> decltype(gg) {
    using T = decltype(gg);
    switch (op) {
      case UnaryOp::Tanh: return gg * (T(1) - v * v);
      case UnaryOp::Sigmoid: return gg * v * (T(1) - v);
      case UnaryOp::Relu: return v <= T(0) ? T(0) : gg;  // NaN passes the gradient (as torch)
      case UnaryOp::GeluErf:
        return gg * (T(0.5) * (T(1) + std::erf(v * T(detail::kSqrt1_2))) +
                     v * T(detail::kInvSqrt2Pi) * std::exp(T(-0.5) * v * v));
      case UnaryOp::Silu: {
        T s = T(1) / (T(1) + std::exp(-v));
        return gg * s * (T(1) + v * (T(1) - s));
      }
      default: return T(0);
    }
  };
  GENAI_ASSERT(op == UnaryOp::Tanh || op == UnaryOp::Sigmoid || op == UnaryOp::Relu || op == UnaryOp::GeluErf ||
               op == UnaryOp::Silu);
  if (g.dtype() == kFloat32) {
    const float* pg = g.data_ptr<const float>();
    const float* pt = t.data_ptr<const float>();
    float* po = out.data_ptr<float>();
    parallel_for(0, g.numel(), kGrain, [&](int64_t b, int64_t e) {
      const int64_t n = e - b;
      ConstArrayMap<float> G(pg + b, n), V(pt + b, n);
      ArrayMap<float> O(po + b, n);
      switch (op) {
        case UnaryOp::Tanh: O = G * (1.0f - V.square()); break;
        case UnaryOp::Sigmoid: O = G * V * (1.0f - V); break;
        case UnaryOp::Relu: O = (V <= 0.0f).select(0.0f, G); break;
        case UnaryOp::GeluErf:
          O = G * (0.5f * (1.0f + (V * float(detail::kSqrt1_2)).erf()) +
                   V * float(detail::kInvSqrt2Pi) * (V.square() * -0.5f).exp());
          break;
        case UnaryOp::Silu: O = G * V.logistic() * (1.0f + V * (1.0f - V.logistic())); break;
        default: break;
      }
    });
  } else {
    const double* pg = g.data_ptr<const double>();
    const double* pt = t.data_ptr<const double>();
    double* po = out.data_ptr<double>();
    parallel_for(0, g.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) po[i] = scalar(pg[i], pt[i]);
    });
  }
  return out;
}

}  // namespace kernels
}  // namespace genai
