// genai/core/shape.hpp: shapes, strides, dimension wrapping and NumPy broadcasting.
#pragma once

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "genai/config.hpp"

namespace genai {

/// A tensor shape, outermost dimension first, as torch.Size.
using Shape = std::vector<int64_t>;

/// "(2, 3, 4)"; "()" for a scalar.
inline std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << ')';
  return os.str();
}

/// Product of the sizes; throws on negative sizes or int64 overflow.
inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    GENAI_CHECK(d >= 0, "invalid shape ", shape_str(s), ": sizes must be non-negative");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      GENAI_FAIL("invalid shape ", shape_str(s), ": element count overflows int64");
    n *= d;
  }
  return n;
}

/// Row-major (C-order) strides of a shape, in elements. Throws when they overflow
/// int64, which a size 0 can hide from shape_numel (as torch: "Stride calculation overflowed").
inline std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    if (i > 0 && __builtin_mul_overflow(acc, s[i] > 1 ? s[i] : 1, &acc))
      GENAI_FAIL("invalid shape ", shape_str(s), ": its strides overflow int64 (the sizes other than the zero-sized "
                 "one multiply past int64)");
  }
  return st;
}

/// Maps a possibly negative dim into [0, ndim); throws naming `op` otherwise.
inline int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
  GENAI_CHECK(dim >= lo && dim <= hi, op, ": dimension ", dim, " out of range for a ", ndim,
              "-d tensor (expected in [", lo, ", ", hi, "])");
  return dim < 0 ? dim + (ndim > 0 ? ndim : 1) : dim;
}

/// NumPy broadcasting of two shapes; throws naming `op` and both shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GENAI_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Strides of a tensor with (shape, strides) viewed as broadcast to `out` (0 on broadcast dims).
inline std::vector<int64_t> broadcast_strides(const Shape& shape, const std::vector<int64_t>& strides,
                                              const Shape& out) {
  std::vector<int64_t> r(out.size(), 0);
  size_t off = out.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) r[off + i] = shape[i] == 1 ? 0 : strides[i];
  return r;
}

}  // namespace genai
