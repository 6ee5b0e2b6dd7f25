// genai/core/factory.hpp: tensor factories, as torch.zeros, torch.tensor, torch.randn...
//
// Every factory takes the shape first and the dtype last (float32 by default).
// Random factories draw from the global generator (see manual_seed) unless a
// Generator is passed.
#pragma once

#include <cmath>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "genai/core/rng.hpp"
#include "genai/core/tensor.hpp"
#include "genai/kernels/elementwise.hpp"

namespace genai {

/// Uninitialized tensor.
inline Tensor empty(const Shape& shape, Dtype dtype = kFloat32) { return detail::make_tensor(shape, dtype); }

/// Tensor filled with `value`.
inline Tensor full(const Shape& shape, double value, Dtype dtype = kFloat32) {
  Tensor t = detail::make_tensor(shape, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::fill<T>(t, static_cast<T>(value));
  });
  return t;
}
inline Tensor zeros(const Shape& shape, Dtype dtype = kFloat32) { return full(shape, 0.0, dtype); }
inline Tensor ones(const Shape& shape, Dtype dtype = kFloat32) { return full(shape, 1.0, dtype); }

inline Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
inline Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
inline Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
inline Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, t.dtype()); }

/// 0-d tensor holding one value.
inline Tensor scalar_tensor(double value, Dtype dtype = kFloat32) { return full({}, value, dtype); }

/// Tensor from row-major values with the given shape (values.size() must match).
template <class T>
inline Tensor from_vector(const std::vector<T>& values, const Shape& shape, Dtype dtype) {
  int64_t n = shape_numel(shape);
  GENAI_CHECK(n == static_cast<int64_t>(values.size()), "tensor: ", values.size(),
              " values do not fill shape ", shape_str(shape), " (", n, " elements)");
  Tensor t = detail::make_tensor(shape, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<U>(values[static_cast<size_t>(i)]);
  });
  return t;
}

/// torch.tensor: values (row-major) and a shape; 1-d when the shape is omitted.
inline Tensor tensor(std::initializer_list<double> values, const Shape& shape, Dtype dtype = kFloat32) {
  return from_vector(std::vector<double>(values), shape, dtype);
}
inline Tensor tensor(std::initializer_list<double> values, Dtype dtype = kFloat32) {
  return from_vector(std::vector<double>(values), {static_cast<int64_t>(values.size())}, dtype);
}
inline Tensor tensor(const std::vector<float>& values, const Shape& shape, Dtype dtype = kFloat32) {
  return from_vector(values, shape, dtype);
}
inline Tensor tensor(const std::vector<double>& values, const Shape& shape, Dtype dtype = kFloat32) {
  return from_vector(values, shape, dtype);
}
inline Tensor tensor(const std::vector<int64_t>& values, const Shape& shape, Dtype dtype = kInt64) {
  return from_vector(values, shape, dtype);
}

/// [start, end) with the given step, as torch.arange: int64 for integral
/// arguments, float32 for floating ones, unless a dtype is given.
template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
inline Tensor arange(T start, T end, T step = T(1), Dtype dtype = std::is_integral_v<T> ? kInt64 : kFloat32) {
  double s = static_cast<double>(start), e = static_cast<double>(end), st = static_cast<double>(step);
  GENAI_CHECK(st != 0.0, "arange: step must be non-zero");
  GENAI_CHECK(std::isfinite(s) && std::isfinite(e) && std::isfinite(st), "arange: start, end and step must be "
              "finite, got [", s, ", ", e, ") with step ", st);
  GENAI_CHECK((e - s) / st >= 0, "arange: the range [", s, ", ", e, ") with step ", st,
              " goes the wrong way");
  const double count = std::ceil((e - s) / st);
  GENAI_CHECK(count < 9.2e18, "arange: the range [", s, ", ", e, ") with step ", st, " has ", count,
              " elements, which overflows int64");
  int64_t n = static_cast<int64_t>(count);
  Tensor t = detail::make_tensor({n}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<U>(s + static_cast<double>(i) * st);
  });
  return t;
}
template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
inline Tensor arange(T end, Dtype dtype = std::is_integral_v<T> ? kInt64 : kFloat32) {
  return arange<T>(T(0), end, T(1), dtype);
}

/// `steps` evenly spaced values from start to end inclusive.
inline Tensor linspace(double start, double end, int64_t steps, Dtype dtype = kFloat32) {
  GENAI_CHECK(steps >= 0, "linspace: steps must be non-negative, got ", steps);
  GENAI_CHECK(static_cast<uint64_t>(steps) <= kMaxAllocBytes / sizeof(double), "linspace: ", steps,
              " steps is too many to allocate");
  std::vector<double> v(static_cast<size_t>(steps));
  for (int64_t i = 0; i < steps; ++i)
    v[static_cast<size_t>(i)] = steps == 1 ? start : start + (end - start) * static_cast<double>(i) / static_cast<double>(steps - 1);
  return from_vector(v, {steps}, dtype);
}

/// n x m identity-like matrix (m = n when omitted).
inline Tensor eye(int64_t n, int64_t m = -1, Dtype dtype = kFloat32) {
  GENAI_CHECK(n >= 0, "eye: n must be non-negative, got ", n);
  if (m < 0) m = n;
  Tensor t = zeros({n, m}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = static_cast<U>(1);
  });
  return t;
}

/// Uniform samples in [0, 1).
inline Tensor rand(const Shape& shape, Dtype dtype = kFloat32, Generator& gen = default_generator()) {
  Tensor t = detail::make_tensor(shape, dtype);
  dispatch_float(dtype, "rand", [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      U v = static_cast<U>(gen.uniform());
      p[i] = v < U(1) ? v : std::nextafter(U(1), U(0));  // rounding to float may reach 1
    }
  });
  return t;
}

/// Standard normal samples.
inline Tensor randn(const Shape& shape, Dtype dtype = kFloat32, Generator& gen = default_generator()) {
  Tensor t = detail::make_tensor(shape, dtype);
  dispatch_float(dtype, "randn", [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<U>(gen.normal());
  });
  return t;
}

/// Uniform integers in [low, high).
inline Tensor randint(int64_t low, int64_t high, const Shape& shape, Dtype dtype = kInt64,
                      Generator& gen = default_generator()) {
  GENAI_CHECK(high > low, "randint: expected low < high, got [", low, ", ", high, ")");
  Tensor t = detail::make_tensor(shape, dtype);
  uint64_t range = static_cast<uint64_t>(high - low);
  dispatch_all(dtype, [&](auto tag) {
    using U = typename decltype(tag)::type;
    U* p = t.data_ptr<U>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<U>(low + static_cast<int64_t>(gen.below(range)));
  });
  return t;
}

/// A random permutation of 0..n-1 (int64), Fisher-Yates.
inline Tensor randperm(int64_t n, Generator& gen = default_generator()) {
  GENAI_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  Tensor t = arange<int64_t>(n);
  int64_t* p = t.data_ptr<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[gen.below(static_cast<uint64_t>(i + 1))]);
  return t;
}

inline Tensor rand_like(const Tensor& t, Generator& gen = default_generator()) { return rand(t.shape(), t.dtype(), gen); }
inline Tensor randn_like(const Tensor& t, Generator& gen = default_generator()) { return randn(t.shape(), t.dtype(), gen); }

}  // namespace genai
