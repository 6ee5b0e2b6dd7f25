// genai/core/dtype.hpp: element types.
//
// float32 is the default; float64 exists for gradient checks and reference runs;
// int64 holds indices and labels (as torch.long); bool holds masks and comparison
// results (one byte per element, as torch.bool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <type_traits>

#include "genai/config.hpp"

namespace genai {

enum class Dtype : uint8_t { Float32, Float64, Int64, Bool };

constexpr Dtype kFloat32 = Dtype::Float32;
constexpr Dtype kFloat64 = Dtype::Float64;
constexpr Dtype kInt64 = Dtype::Int64;
constexpr Dtype kBool = Dtype::Bool;

inline const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::Float32: return "float32";
    case Dtype::Float64: return "float64";
    case Dtype::Int64: return "int64";
    case Dtype::Bool: return "bool";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, Dtype d) { return os << dtype_name(d); }

inline size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
    case Dtype::Int64: return 8;
    case Dtype::Bool: return 1;
  }
  return 0;
}

inline bool is_floating(Dtype d) { return d == Dtype::Float32 || d == Dtype::Float64; }

/// C++ type -> Dtype.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr Dtype value = Dtype::Float32; };
template <> struct dtype_of<double> { static constexpr Dtype value = Dtype::Float64; };
template <> struct dtype_of<int64_t> { static constexpr Dtype value = Dtype::Int64; };
template <> struct dtype_of<bool> { static constexpr Dtype value = Dtype::Bool; };

template <class T> struct type_tag { using type = T; };

/// Calls f(type_tag<T>{}) with T the C++ type of a floating dtype; throws otherwise.
template <class F>
decltype(auto) dispatch_float(Dtype d, const char* op, F&& f) {
  switch (d) {
    case Dtype::Float32: return f(type_tag<float>{});
    case Dtype::Float64: return f(type_tag<double>{});
    default: break;
  }
  GENAI_FAIL(op, ": expected a floating-point tensor (float32 or float64), got ", dtype_name(d),
             "; hint: convert with .to(genai::kFloat32)");
}

/// Calls f(type_tag<T>{}) for every dtype.
template <class F>
decltype(auto) dispatch_all(Dtype d, F&& f) {
  switch (d) {
    case Dtype::Float32: return f(type_tag<float>{});
    case Dtype::Float64: return f(type_tag<double>{});
    case Dtype::Int64: return f(type_tag<int64_t>{});
    case Dtype::Bool: return f(type_tag<bool>{});
  }
  GENAI_FAIL("unknown dtype");
}

/// Calls f for float32, float64 and int64 (arithmetic types); bool is refused.
template <class F>
decltype(auto) dispatch_arith(Dtype d, const char* op, F&& f) {
  switch (d) {
    case Dtype::Float32: return f(type_tag<float>{});
    case Dtype::Float64: return f(type_tag<double>{});
    case Dtype::Int64: return f(type_tag<int64_t>{});
    default: break;
  }
  GENAI_FAIL(op, ": not defined for ", dtype_name(d), " tensors");
}

/// The dtype of a binary arithmetic result (float64 > float32 > int64 > bool).
inline Dtype promote_types(Dtype a, Dtype b) {
  auto rank = [](Dtype d) {
    switch (d) {
      case Dtype::Bool: return 0;
      case Dtype::Int64: return 1;
      case Dtype::Float32: return 2;
      case Dtype::Float64: return 3;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace genai
