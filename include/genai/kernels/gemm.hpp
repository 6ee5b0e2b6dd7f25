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

/// Packs rows [i0, i0+mc) x cols [k0, k0+kc) of A into MR-row panels (zero-padded):
/// panel p holds ap[p][k][r] = A(i0 + p*MR + r, k0 + k).
template <class T, int MR>
inline void pack_a(const T* A, int64_t rs, int64_t cs, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* ap) {
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t m = std::min<int64_t>(MR, mc - p);
    T* dst = ap + p * kc;
    const T* src = A + (i0 + p) * rs + k0 * cs;
    if (m == MR && cs == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[r * rs + k];
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
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t c = 0; c < n; ++c) dst[k * NR + c] = src[k * rs + c * cs];
        for (int64_t c = n; c < NR; ++c) dst[k * NR + c] = T(0);
      }
    }
  }
}

/// ct (MR x NR, row-major, leading dim NR) = Ap panel x Bp panel over kc.
template <class T, int MR, int NR>
inline void micro_kernel(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* __restrict ct) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && MR == 8 && NR == 32) {
    __m512 c[8][2];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      __m512 b0 = _mm512_load_ps(bp + k * 32), b1 = _mm512_load_ps(bp + k * 32 + 16);
      #pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        __m512 a = _mm512_set1_ps(ap[k * 8 + r]);
        c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      _mm512_store_ps(ct + r * 32, c[r][0]);
      _mm512_store_ps(ct + r * 32 + 16, c[r][1]);
    }
    return;
  }
  if constexpr (std::is_same_v<T, double> && MR == 8 && NR == 16) {
    __m512d c[8][2];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) c[r][0] = c[r][1] = _mm512_setzero_pd();
    for (int64_t k = 0; k < kc; ++k) {
      __m512d b0 = _mm512_load_pd(bp + k * 16), b1 = _mm512_load_pd(bp + k * 16 + 8);
      #pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) {
        __m512d a = _mm512_set1_pd(ap[k * 8 + r]);
        c[r][0] = _mm512_fmadd_pd(a, b0, c[r][0]);
        c[r][1] = _mm512_fmadd_pd(a, b1, c[r][1]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      _mm512_store_pd(ct + r * 16, c[r][0]);
      _mm512_store_pd(ct + r * 16 + 8, c[r][1]);
    }
    return;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float> && MR == 6 && NR == 16) {
    __m256 c[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
      __m256 b0 = _mm256_load_ps(bp + k * 16), b1 = _mm256_load_ps(bp + k * 16 + 8);
      #pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        __m256 a = _mm256_broadcast_ss(ap + k * 6 + r);
        c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
      }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      _mm256_store_ps(ct + r * 16, c[r][0]);
      _mm256_store_ps(ct + r * 16 + 8, c[r][1]);
    }
    return;
  }
  if constexpr (std::is_same_v<T, double> && MR == 6 && NR == 8) {
    __m256d c[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) c[r][0] = c[r][1] = _mm256_setzero_pd();
    for (int64_t k = 0; k < kc; ++k) {
      __m256d b0 = _mm256_load_pd(bp + k * 8), b1 = _mm256_load_pd(bp + k * 8 + 4);
      #pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        __m256d a = _mm256_broadcast_sd(ap + k * 6 + r);
        c[r][0] = _mm256_fmadd_pd(a, b0, c[r][0]);
        c[r][1] = _mm256_fmadd_pd(a, b1, c[r][1]);
      }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      _mm256_store_pd(ct + r * 8, c[r][0]);
      _mm256_store_pd(ct + r * 8 + 4, c[r][1]);
    }
    return;
  }
#endif
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k)
    for (int r = 0; r < MR; ++r) {
      const T a = ap[k * MR + r];
      for (int c = 0; c < NR; ++c) acc[r][c] += a * bp[k * NR + c];
    }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) ct[r * NR + c] = acc[r][c];
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

/// Multiplies one packed A block (mc rows) by packed B panels [jb, je) of the current block.
template <class T>
inline void macro_kernel(const T* ap, const T* bp, int64_t mc, int64_t kc, int64_t nc, int64_t jb, int64_t je, T* c,
                         int64_t ldc, bool add) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T ct[MR * NR];
  (void)nc;
  for (int64_t q = jb; q < je; q += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - q);
    for (int64_t p = 0; p < mc; p += MR) {
      const int64_t m = std::min<int64_t>(MR, mc - p);
      micro_kernel<T, MR, NR>(kc, ap + p * kc, bp + q * kc, ct);
      store_tile<T, NR>(ct, c + p * ldc + q, ldc, m, n, add);
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
      const int64_t nblocks = (M + MC - 1) / MC;
      if (nblocks >= nt || !big) {
        // threads take whole A blocks
        parallel_for(0, nblocks, big ? 1 : nblocks, [&](int64_t b0, int64_t b1) {
          T* ap = scratch<T>(1, static_cast<size_t>(MC * kc));
          for (int64_t b = b0; b < b1; ++b) {
            const int64_t i0 = b * MC, mc = std::min(MC, M - i0);
            pack_a<T, MR>(A, ars, acs, i0, mc, k0, kc, ap);
            macro_kernel<T>(ap, bp, mc, kc, nc, 0, nc_pad, C + i0 * ldc + j0, ldc, add);
          }
        });
      } else {
        // few rows: share each packed A block, split the B panels between threads
        for (int64_t b = 0; b < nblocks; ++b) {
          const int64_t i0 = b * MC, mc = std::min(MC, M - i0);
          T* ap = scratch<T>(1, static_cast<size_t>(MC * kc));
          pack_a<T, MR>(A, ars, acs, i0, mc, k0, kc, ap);
          parallel_for(0, npanels, 1, [&](int64_t s, int64_t e) {
            macro_kernel<T>(ap, bp, mc, kc, nc, s * NR, e * NR, C + i0 * ldc + j0, ldc, add);
          });
        }
      }
    }
  }
}

}  // namespace kernels
}  // namespace genai
