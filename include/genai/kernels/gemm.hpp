// genai/kernels/gemm.hpp: general matrix multiply, C (+)= A B, for float and double.
//
// A packed, cache-blocked GEMM in the style of BLIS / Goto (K. Goto and R. van de
// Geijn, "Anatomy of high-performance matrix multiplication", 2008): B is packed
// into KC x NR panels shared by the threads, A into MC x KC blocks of MR-row
// panels, and an MR x NR register-tile micro-kernel does the arithmetic with
// AVX-512 or AVX2 FMA intrinsics when the compiler targets them (portable C++
// otherwise). Operands are given by pointer and (row, column) strides, so
// transposed views are packed directly, never copied first.
//
// The register-tile loops carry `#pragma GCC unroll` so that the accumulators
// stay in registers at -O2 too (without it GCC keeps them in memory below -O3).
//
// Not public API: ops/matmul.hpp calls it. Written without Eigen's product
// templates because each of those costs seconds of compile time per use.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "genai/core/storage.hpp"
#include "genai/core/threading.hpp"

namespace genai {
namespace kernels {

namespace gemm_detail {

/// Register tile and cache blocking for element type T on the compiled-for ISA.
template <class T>
struct Blocking;

template <>
struct Blocking<float> {
#if defined(__AVX512F__)
  static constexpr int MR = 8, NR = 32;  // 16 zmm accumulators
#elif defined(__AVX2__) && defined(__FMA__)
  static constexpr int MR = 6, NR = 16;  // 12 ymm accumulators
#else
  static constexpr int MR = 4, NR = 8;
#endif
  static constexpr int64_t KC = 384, MC = MR * 16, NC = 3072;
};

template <>
struct Blocking<double> {
#if defined(__AVX512F__)
  static constexpr int MR = 8, NR = 16;
#elif defined(__AVX2__) && defined(__FMA__)
  static constexpr int MR = 6, NR = 8;
#else
  static constexpr int MR = 4, NR = 4;
#endif
  static constexpr int64_t KC = 256, MC = MR * 16, NC = 2048;
};

/// A grow-only, 64-byte-aligned scratch buffer per thread (reused across calls).
template <class T>
inline T* scratch(int slot, size_t n) {
  struct Buf {
    void* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[slot];
  if (b.cap < n * sizeof(T)) {
    std::free(b.p);
    b.cap = (n * sizeof(T) + 4095) / 4096 * 4096;
    b.p = genai::detail::aligned_malloc(b.cap);
  }
  return static_cast<T*>(b.p);
}

#if defined(__AVX2__)
/// dst[j * ldd + i] = src[i * lds + j] for an 8 x 8 block of floats.
inline void transpose8x8_ps(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
  __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/// dst[j * 6 + r] = src[r * lds + j] for 6 rows x 8 columns of floats (an A panel
/// slice). Each 8-float store also writes 2 floats past its 6 (overwritten by the
/// next store; the scratch buffer has slack for the last one).
inline void pack6x8_ps(const float* src, int64_t lds, float* dst) {
  __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
  __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_setzero_ps(), r7 = r6;
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst + 0 * 6, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + 1 * 6, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * 6, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * 6, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * 6, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * 6, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * 6, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * 6, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of A into MR-row panels (zero-padded):
/// panel p holds ap[p][k][r] = A(i0 + p*MR + r, k0 + k).
template <class T, int MR>
inline void pack_a(const T* A, int64_t rs, int64_t cs, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* ap) {
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t m = std::min<int64_t>(MR, mc - p);
    T* dst = ap + p * kc;
    const T* src = A + (i0 + p) * rs + k0 * cs;
    if (m == MR && cs == 1) {
      int64_t k = 0;
#if defined(__AVX2__)
      if constexpr (std::is_same_v<T, float> && MR == 6)
        for (; k + 8 <= kc; k += 8) pack6x8_ps(src + k, rs, dst + k * MR);
#endif
      for (; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * rs + k];
    } else if (m == MR && rs == 1) {  // A^T given: the MR rows of one k are contiguous
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[k * cs + r];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t r = 0; r < m; ++r) dst[k * MR + r] = src[r * rs + k * cs];
        for (int64_t r = m; r < MR; ++r) dst[k * MR + r] = T(0);
      }
    }
  }
}

/// Packs rows [k0, k0+kc) x cols [j0+jb, j0+je) of B into NR-column panels:
/// panel q holds bp[q][k][c] = B(k0 + k, j0 + q*NR + c).
template <class T, int NR>
inline void pack_b(const T* B, int64_t rs, int64_t cs, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int64_t jb,
                   int64_t je, T* bp) {
  for (int64_t q = jb; q < je; q += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - q);
    T* dst = bp + q * kc;
    const T* src = B + k0 * rs + (j0 + q) * cs;
    if (n == NR && cs == 1) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * NR, src + k * rs, sizeof(T) * NR);
    } else if (n == NR && rs == 1) {  // B^T given: each column is contiguous in memory
      int64_t k = 0;
#if defined(__AVX2__)
      if constexpr (std::is_same_v<T, float> && NR % 8 == 0)
        for (; k + 8 <= kc; k += 8)
          for (int c0 = 0; c0 < NR; c0 += 8) transpose8x8_ps(src + c0 * cs + k, cs, dst + k * NR + c0, NR);
#endif
      for (; k < kc; ++k)
        for (int c = 0; c < NR; ++c) dst[k * NR + c] = src[c * cs + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t c = 0; c < n; ++c) dst[k * NR + c] = src[k * rs + c * cs];
        for (int64_t c = n; c < NR; ++c) dst[k * NR + c] = T(0);
      }
    }
  }
}

/// Prefetches the rows of a C tile (rows bytes long) into L1 before the k loop, so
/// that reading it after the loop does not stall: C rows are ldc apart, and at
/// ldc = 1024 or 2048 floats they also share L1 sets (+30% at n = 1024 on Zen 3).
template <class T>
inline void prefetch_c_tile(const T* c, int64_t ldc, int rows, int row_bytes) {
  for (int r = 0; r < rows; ++r) {
    const char* p = reinterpret_cast<const char*>(c + r * ldc);
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + row_bytes - 1, 0, 3);
  }
}

/// The MR x NR tile at c (row stride ldc) = (or += when `add`) Ap panel x Bp panel over kc.
/// The accumulators stay in registers for the whole k loop; the tile is written once.
template <class T, int MR, int NR>
inline void micro_kernel(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* __restrict c, int64_t ldc,
                         bool add) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && MR == 8 && NR == 32) {
    __m512 acc[8][2];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    prefetch_c_tile(c, ldc, 8, 128);
    for (int64_t k = 0; k < kc; ++k) {
      __m512 b0 = _mm512_load_ps(bp + k * 32), b1 = _mm512_load_ps(bp + k * 32 + 16);
      #pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        __m512 a = _mm512_set1_ps(ap[k * 8 + r]);
        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      T* cr = c + r * ldc;
      if (add) {
        acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(cr));
        acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(cr + 16));
      }
      _mm512_storeu_ps(cr, acc[r][0]);
      _mm512_storeu_ps(cr + 16, acc[r][1]);
    }
    return;
  }
  if constexpr (std::is_same_v<T, double> && MR == 8 && NR == 16) {
    __m512d acc[8][2];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_pd();
    prefetch_c_tile(c, ldc, 8, 128);
    for (int64_t k = 0; k < kc; ++k) {
      __m512d b0 = _mm512_load_pd(bp + k * 16), b1 = _mm512_load_pd(bp + k * 16 + 8);
      #pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        __m512d a = _mm512_set1_pd(ap[k * 8 + r]);
        acc[r][0] = _mm512_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_pd(a, b1, acc[r][1]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      T* cr = c + r * ldc;
      if (add) {
        acc[r][0] = _mm512_add_pd(acc[r][0], _mm512_loadu_pd(cr));
        acc[r][1] = _mm512_add_pd(acc[r][1], _mm512_loadu_pd(cr + 8));
      }
      _mm512_storeu_pd(cr, acc[r][0]);
      _mm512_storeu_pd(cr + 8, acc[r][1]);
    }
    return;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float> && MR == 6 && NR == 16) {
    __m256 acc[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    prefetch_c_tile(c, ldc, 6, 64);
    #pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      __builtin_prefetch(bp + k * 16 + 256, 0, 3);  // the B panel, 16 k ahead
      __m256 b0 = _mm256_load_ps(bp + k * 16), b1 = _mm256_load_ps(bp + k * 16 + 8);
      #pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        __m256 a = _mm256_broadcast_ss(ap + k * 6 + r);
        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      T* cr = c + r * ldc;
      if (add) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
      }
      _mm256_storeu_ps(cr, acc[r][0]);
      _mm256_storeu_ps(cr + 8, acc[r][1]);
    }
    return;
  }
  if constexpr (std::is_same_v<T, double> && MR == 6 && NR == 8) {
    __m256d acc[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_pd();
    prefetch_c_tile(c, ldc, 6, 64);
    #pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      __m256d b0 = _mm256_load_pd(bp + k * 8), b1 = _mm256_load_pd(bp + k * 8 + 4);
      #pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        __m256d a = _mm256_broadcast_sd(ap + k * 6 + r);
        acc[r][0] = _mm256_fmadd_pd(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_pd(a, b1, acc[r][1]);
      }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      T* cr = c + r * ldc;
      if (add) {
        acc[r][0] = _mm256_add_pd(acc[r][0], _mm256_loadu_pd(cr));
        acc[r][1] = _mm256_add_pd(acc[r][1], _mm256_loadu_pd(cr + 4));
      }
      _mm256_storeu_pd(cr, acc[r][0]);
      _mm256_storeu_pd(cr + 4, acc[r][1]);
    }
    return;
  }
#endif
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < MR; ++r) {
      const T a = ap[k * MR + r];
      for (int j = 0; j < NR; ++j) acc[r][j] += a * bp[k * NR + j];
    }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[r * ldc + j] = add ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

/// C block (m x n at c, leading dim ldc) (+)= tile ct.
template <class T, int NR>
inline void store_tile(const T* ct, T* c, int64_t ldc, int64_t m, int64_t n, bool add) {
  for (int64_t r = 0; r < m; ++r) {
    T* cr = c + r * ldc;
    const T* tr = ct + r * NR;
    if (add)
      for (int64_t j = 0; j < n; ++j) cr[j] += tr[j];
    else
      for (int64_t j = 0; j < n; ++j) cr[j] = tr[j];
  }
}

/// Whether A may be read in place instead of packed (see macro_kernel).
template <class T>
constexpr bool kDirectA =
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
    std::is_same_v<T, float>;
#else
    false;
#endif

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
/// The 6 x 16 float micro-kernel with A read in place: element (r, k) at a[r * ars + k * acs].
/// Any strides (row-major A, or A^T given), since each k broadcasts 6 single floats.
inline void micro_kernel_direct(int64_t kc, const float* a, int64_t ars, int64_t acs, const float* __restrict bp,
                                float* __restrict c, int64_t ldc, bool add) {
  __m256 acc[6][2];
  #pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  prefetch_c_tile(c, ldc, 6, 64);
  const float *a0 = a, *a1 = a + ars, *a2 = a + 2 * ars, *a3 = a + 3 * ars, *a4 = a + 4 * ars, *a5 = a + 5 * ars;
  #pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __builtin_prefetch(bp + k * 16 + 256, 0, 3);
    const int64_t o = k * acs;
    const __m256 b0 = _mm256_load_ps(bp + k * 16), b1 = _mm256_load_ps(bp + k * 16 + 8);
    __m256 x = _mm256_broadcast_ss(a0 + o);
    acc[0][0] = _mm256_fmadd_ps(x, b0, acc[0][0]), acc[0][1] = _mm256_fmadd_ps(x, b1, acc[0][1]);
    x = _mm256_broadcast_ss(a1 + o);
    acc[1][0] = _mm256_fmadd_ps(x, b0, acc[1][0]), acc[1][1] = _mm256_fmadd_ps(x, b1, acc[1][1]);
    x = _mm256_broadcast_ss(a2 + o);
    acc[2][0] = _mm256_fmadd_ps(x, b0, acc[2][0]), acc[2][1] = _mm256_fmadd_ps(x, b1, acc[2][1]);
    x = _mm256_broadcast_ss(a3 + o);
    acc[3][0] = _mm256_fmadd_ps(x, b0, acc[3][0]), acc[3][1] = _mm256_fmadd_ps(x, b1, acc[3][1]);
    x = _mm256_broadcast_ss(a4 + o);
    acc[4][0] = _mm256_fmadd_ps(x, b0, acc[4][0]), acc[4][1] = _mm256_fmadd_ps(x, b1, acc[4][1]);
    x = _mm256_broadcast_ss(a5 + o);
    acc[5][0] = _mm256_fmadd_ps(x, b0, acc[5][0]), acc[5][1] = _mm256_fmadd_ps(x, b1, acc[5][1]);
  }
  #pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    float* cr = c + r * ldc;
    if (add) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}
#endif

/// The A operand of a macro kernel: packed MR-row panels (ap), or, when a is set,
/// read in place with element (i, k) at a[i * rs + k * cs].
template <class T>
struct AOperand {
  const T* ap = nullptr;
  const T* a = nullptr;
  int64_t rs = 0, cs = 0;
};

/// Multiplies one A block (mc rows, kc deep) by packed B panels [jb, je) of the current block.
/// Packing A pays off when the block meets many B panels; for few (small N) the
/// packing costs as much as the product, so A is read in place (kDirectA), and only
/// a last partial panel of fewer than MR rows is packed (zero-padded).
template <class T>
inline void macro_kernel(const AOperand<T>& A, const T* bp, int64_t mc, int64_t kc, int64_t nc, int64_t jb,
                         int64_t je, T* c, int64_t ldc, bool add) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T ct[MR * NR];
  alignas(64) T edge[MR * Blocking<T>::KC + 8];  // the packed partial panel (direct A only)
  const int64_t full = mc / MR * MR;
  if (A.a && full < mc) pack_a<T, MR>(A.a, A.rs, A.cs, full, mc - full, 0, kc, edge);
  for (int64_t q = jb; q < je; q += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - q);
    for (int64_t p = 0; p < mc; p += MR) {
      const int64_t m = std::min<int64_t>(MR, mc - p);
      T* cp = c + p * ldc + q;
      T* dst = (m == MR && n == NR) ? cp : ct;  // a full tile goes straight into C, an edge tile through ct
      const int64_t ld = dst == cp ? ldc : NR;
      const bool acc = dst == cp ? add : false;
      if (A.ap) {
        micro_kernel<T, MR, NR>(kc, A.ap + p * kc, bp + q * kc, dst, ld, acc);
      } else if (m < MR) {
        micro_kernel<T, MR, NR>(kc, edge, bp + q * kc, dst, ld, acc);
      } else {
        if constexpr (kDirectA<T>) micro_kernel_direct(kc, A.a + p * A.rs, A.rs, A.cs, bp + q * kc, dst, ld, acc);
      }
      if (dst == ct) store_tile<T, NR>(ct, cp, ldc, m, n, add);
    }
  }
}

/// Small products: direct loops, no packing (B rows must be unit-stride).
template <class T>
inline void gemm_small(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B, int64_t brs,
                       T* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    if (!accumulate)
      for (int64_t j = 0; j < N; ++j) ci[j] = T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * ars + k * acs];
      const T* bk = B + k * brs;
      for (int64_t j = 0; j < N; ++j) ci[j] += a * bk[j];
    }
  }
}

}  // namespace gemm_detail

/// C (M x N, row-major, row stride ldc) = A B, or += A B when `accumulate`.
/// A is M x K with element (i, k) at A[i*ars + k*acs]; B is K x N likewise.
/// Multithreaded over get_num_threads() when large.
template <class T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B, int64_t brs,
                 int64_t bcs, T* C, int64_t ldc, bool accumulate = false) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  if (bcs == 1 && (M * N * K <= 32 * 32 * 32 || M <= 2)) {
    gemm_small<T>(M, N, K, A, ars, acs, B, brs, C, ldc, accumulate);
    return;
  }
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  constexpr int64_t KC = Blocking<T>::KC, MC = Blocking<T>::MC, NC = Blocking<T>::NC;
  const int nt = in_parallel_region() ? 1 : get_num_threads();
  // below ~2 MFLOP a single thread finishes before a parallel region pays off
  const bool big = M * N * K >= 128 * 128 * 128;
  // row-major A read in place when each A block meets at most 16 B panels (N <= 256):
  // then packing it (a transposition) costs about as much as the product (attention's
  // head-dim products, small layers). A^T packs by plain copies and stays packed.
  const bool direct_a = kDirectA<T> && acs == 1 && N <= 16 * NR;
  // row blocks of at most MC rows, as many as a multiple of the thread count when that
  // is not much smaller, so that threads taking whole blocks get equal shares
  int64_t mc_rows = MC;
  if (big && nt > 1) {
    const int64_t nb0 = (M + MC - 1) / MC, nbal = (nb0 + nt - 1) / nt * nt;
    mc_rows = std::min<int64_t>(MC, ((M + nbal - 1) / nbal + MR - 1) / MR * MR);
  }
  for (int64_t j0 = 0; j0 < N; j0 += NC) {
    const int64_t nc = std::min(NC, N - j0);
    const int64_t nc_pad = (nc + NR - 1) / NR * NR;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0);
      const bool add = accumulate || k0 > 0;
      T* bp = scratch<T>(0, static_cast<size_t>(nc_pad * kc));
      const int64_t npanels = nc_pad / NR;
      parallel_for(0, npanels, big ? 1 : npanels, [&](int64_t s, int64_t e) {
        pack_b<T, NR>(B, brs, bcs, k0, kc, j0, nc, s * NR, e * NR, bp);
      });
      const int64_t nblocks = (M + mc_rows - 1) / mc_rows;
      // the A block of rows [i0, i0 + mc): packed into ap, or read in place when the block meets few B panels
      auto a_block = [&](int64_t i0, int64_t mc, T* ap) {
        AOperand<T> op;
        if (direct_a) {
          op.a = A + i0 * ars + k0 * acs;
          op.rs = ars;
          op.cs = acs;
        } else {
          pack_a<T, MR>(A, ars, acs, i0, mc, k0, kc, ap);
          op.ap = ap;
        }
        return op;
      };
      if (nblocks >= nt || !big) {
        // threads take whole A blocks
        parallel_for(0, nblocks, big ? 1 : nblocks, [&](int64_t b0, int64_t b1) {
          T* ap = direct_a ? nullptr : scratch<T>(1, static_cast<size_t>(MC * kc + 8));  // + 8: pack6x8_ps slack
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t i0 = b * mc_rows, mc = std::min(mc_rows, M - i0);
            macro_kernel<T>(a_block(i0, mc, ap), bp, mc, kc, nc, 0, nc_pad, C + i0 * ldc + j0, ldc, add);
          }
        });
      } else {
        // few rows: share each A block, split the B panels between threads
        for (int64_t b = 0; b < nblocks; ++b) {
          const int64_t i0 = b * mc_rows, mc = std::min(mc_rows, M - i0);
          T* ap = direct_a ? nullptr : scratch<T>(1, static_cast<size_t>(MC * kc + 8));
          const AOperand<T> op = a_block(i0, mc, ap);
          parallel_for(0, npanels, 1, [&](int64_t s, int64_t e) {
            macro_kernel<T>(op, bp, mc, kc, nc, s * NR, e * NR, C + i0 * ldc + j0, ldc, add);
          });
        }
      }
    }
  }
}

}  // namespace kernels
}  // namespace genai
