// genai/kernels/rowwise.hpp: float32 row kernels for softmax and the norms.
//
// Not public API. One contiguous row at a time (the softmax or normalized
// dimension), each a single pass that keeps several vector accumulators in
// flight: the row maximum (NaN-propagating, as torch), exp(x - shift) with its
// sum, dot products and sums in double, and the affine normalization
// y = (x - mean) rstd w + b. With AVX2+FMA they are explicit intrinsics; other
// targets get plain loops with the same results up to rounding. Rows are short
// enough (the softmax or normalized dim) to stay in L1 between the passes, so a
// row costs one read from memory and one write.
//
// exp_ps is the Cephes expf scheme (S. L. Moshier, Cephes Math Library): x =
// n ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 polynomial, 2^n added to
// the exponent bits; within 2 ulp on [-87.3, 88.7], 0 below (exact zeros for
// masked -inf scores), +inf above, NaN kept.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace genai {
namespace kernels {

#if defined(__AVX2__) && defined(__FMA__)
namespace rowwise_detail {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// exp of 8 floats (see the header comment). n = round(x log2 e) comes from adding
/// 1.5 * 2^23 (the low mantissa bits then hold n), and 2^n is added to the exponent
/// bits of the polynomial: no rounding or conversion instructions.
inline __m256 exp_ps(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-87.3365447505531f);
  const __m256 magic = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  // max(lo, x) and min(., .) return x itself when it is NaN (the second operand)
  const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  // round(x log2 e) in [-126, 127]: capped at 127 so that 2^n stays finite (above 88.03,
  // r goes up to ln 2 and exp(r) up to 2)
  const __m256 fx = _mm256_min_ps(_mm256_set1_ps(12582912.0f + 127.0f),
                                  _mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic));
  const __m256 n = _mm256_sub_ps(fx, magic);
  __m256 r = _mm256_fnmadd_ps(n, ln2_hi, xc);
  r = _mm256_fnmadd_ps(n, ln2_lo, r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));  // exp(r) in [0.7, 1.5)
  const __m256i e = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_castps_si256(fx), _mm256_castps_si256(magic)), 23);
  __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));  // p 2^n
  y = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);                       // underflow: 0
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));  // overflow: inf
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));                  // NaN stays NaN
}

/// Mask of the first n (< 8) lanes, for the row tails.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace rowwise_detail
#endif

/// max(x[0..n)); NaN if any element is NaN; -inf for n = 0.
inline float row_max(const float* x, int64_t n) {
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace rowwise_detail;
  __m256 m0 = _mm256_set1_ps(m), m1 = m0, m2 = m0, m3 = m0;
  __m256 bad = _mm256_setzero_ps();  // lanes that saw a NaN
  for (; i + 32 <= n; i += 32) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8), c = _mm256_loadu_ps(x + i + 16),
           d = _mm256_loadu_ps(x + i + 24);
    bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
    m0 = _mm256_max_ps(m0, a), m1 = _mm256_max_ps(m1, b), m2 = _mm256_max_ps(m2, c), m3 = _mm256_max_ps(m3, d);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_loadu_ps(x + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    m0 = _mm256_max_ps(m0, a);
  }
  m = hmax(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  nan = _mm256_movemask_ps(bad) != 0;
#endif
  for (; i < n; ++i) {
    if (x[i] != x[i]) nan = true;
    m = x[i] > m ? x[i] : m;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

/// y[i] = exp(x[i] - shift); returns sum(y) (accumulated in float, 32 lanes).
inline float row_exp_sum(const float* x, float* y, int64_t n, float shift) {
  int64_t i = 0;
  float s = 0;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace rowwise_detail;
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
    __m256 b = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh));
    _mm256_storeu_ps(y + i, a);
    _mm256_storeu_ps(y + i + 8, b);
    s0 = _mm256_add_ps(s0, a), s1 = _mm256_add_ps(s1, b);
  }
  if (i < n) {  // masked tail: the same exp as the body, so every element rounds alike
    for (; i + 8 <= n; i += 8) {
      __m256 a = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
      _mm256_storeu_ps(y + i, a);
      s0 = _mm256_add_ps(s0, a);
    }
    if (i < n) {
      const __m256i mk = tail_mask(n - i);
      __m256 a = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mk), sh));
      a = _mm256_and_ps(a, _mm256_castsi256_ps(mk));
      _mm256_maskstore_ps(y + i, mk, a);
      s1 = _mm256_add_ps(s1, a);
      i = n;
    }
  }
  s = hsum(_mm256_add_ps(s0, s1));
#endif
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    s += y[i];
  }
  return s;
}

/// y[i] = exp(x[i]), as std::exp: exact 0 for -inf, and the lanes whose result is a
/// denormal (x in (-103.98, -87.34), which exp_ps flushes to 0) recomputed with std::exp.
inline void row_exp(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace rowwise_detail;
  const __m256 lo = _mm256_set1_ps(-87.3365447505531f), dn = _mm256_set1_ps(-104.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(y + i, exp_ps(v));
    if (_mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ), _mm256_cmp_ps(v, dn, _CMP_GT_OQ))))
      for (int j = 0; j < 8; ++j) y[i + j] = std::exp(x[i + j]);
  }
#endif
  for (; i < n; ++i) y[i] = std::exp(x[i]);
}

/// y[i] = x[i] * a + b (in place when y == x).
inline void row_axpb(const float* x, float* y, int64_t n, float a, float b) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vb));
#endif
  for (; i < n; ++i) y[i] = x[i] * a + b;
}

/// sum(x) and sum(x^2 - ...) helpers in double: sum(x[i] - c) (sq false) or sum((x[i] - c)^2) (sq true).
inline double row_sum_f64(const float* x, int64_t n, double c, bool sq) {
  int64_t i = 0;
  double s = 0;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace rowwise_detail;
  const __m256d vc = _mm256_set1_pd(c);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 16 <= n; i += 16) {
    __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), vc);
    __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), vc);
    __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vc);
    __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vc);
    if (sq) {
      a0 = _mm256_fmadd_pd(d0, d0, a0), a1 = _mm256_fmadd_pd(d1, d1, a1);
      a2 = _mm256_fmadd_pd(d2, d2, a2), a3 = _mm256_fmadd_pd(d3, d3, a3);
    } else {
      a0 = _mm256_add_pd(a0, d0), a1 = _mm256_add_pd(a1, d1), a2 = _mm256_add_pd(a2, d2), a3 = _mm256_add_pd(a3, d3);
    }
  }
  s = hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
#endif
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - c;
    s += sq ? d * d : d;
  }
  return s;
}

/// sum(a[i] b[i]) in double.
inline double row_dot_f64(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  double s = 0;
#if defined(__AVX2__) && defined(__FMA__)
  using namespace rowwise_detail;
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 16 <= n; i += 16) {
    __m256 u = _mm256_loadu_ps(a + i), v = _mm256_loadu_ps(a + i + 8);
    __m256 p = _mm256_loadu_ps(b + i), q = _mm256_loadu_ps(b + i + 8);
    a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), _mm256_cvtps_pd(_mm256_castps256_ps128(p)), a0);
    a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)), a1);
    a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_castps256_ps128(q)), a2);
    a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)), a3);
  }
  s = hsum(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
#endif
  for (; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

/// y[i] = (x[i] - mean) rstd w[i] + b[i] (w, b may be null: 1 and 0).
inline void row_normalize(const float* x, float* y, int64_t n, float mean, float rstd, const float* w,
                          const float* b) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
  if (w && b) {
    for (; i + 8 <= n; i += 8) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
  } else if (w) {
    for (; i + 8 <= n; i += 8) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(y + i, _mm256_mul_ps(t, _mm256_loadu_ps(w + i)));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
      _mm256_storeu_ps(y + i, b ? _mm256_add_ps(t, _mm256_loadu_ps(b + i)) : t);
    }
  }
#endif
  for (; i < n; ++i) {
    float t = (x[i] - mean) * rstd;
    if (w) t *= w[i];
    if (b) t += b[i];
    y[i] = t;
  }
}

}  // namespace kernels
}  // namespace genai
