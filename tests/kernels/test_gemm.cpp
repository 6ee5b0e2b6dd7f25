// kernels::gemm against a plain triple loop in double precision: every code path
// of the packed GEMM (small direct loops, whole-block and panel-split threading,
// full and edge register tiles, K split over several KC blocks, N over several NC
// blocks, the transposed-operand packing fast paths, accumulate), float and double,
// 1 and 2 threads.
#include "test_util.hpp"

#include <genai/kernels/gemm.hpp>

#include <random>
#include <vector>

using namespace genai;

namespace {

/// Restores the thread count when a test ends.
struct GemmThreadsGuard {
  int saved = get_num_threads();
  ~GemmThreadsGuard() { set_num_threads(saved); }
};

/// An operand stored row-major (rows x cols) or as its transpose in memory; element
/// (i, j) is at data[i * rs + j * cs].
template <class T>
struct Operand {
  std::vector<T> data;
  int64_t rs = 0, cs = 0;
  Operand(int64_t rows, int64_t cols, bool transposed, std::mt19937& g, int64_t pad = 0) {
    std::uniform_real_distribution<double> u(-1, 1);
    data.resize(static_cast<size_t>((rows + pad) * (cols + pad)));
    for (auto& x : data) x = static_cast<T>(u(g));
    if (transposed) {  // column-major with leading dim rows + pad
      rs = 1;
      cs = rows + pad;
    } else {
      rs = cols + pad;
      cs = 1;
    }
  }
  T at(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * rs + j * cs)]; }
};

/// Checks gemm(M, N, K) for one transposition case; returns the worst relative error.
template <class T>
double check_gemm(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool accumulate, int64_t ldc_pad, unsigned seed) {
  std::mt19937 g(seed);
  Operand<T> A(M, K, ta, g, 3), B(K, N, tb, g, 5);
  const int64_t ldc = N + ldc_pad;
  std::vector<T> C(static_cast<size_t>(std::max<int64_t>(M, 1) * ldc));
  std::uniform_real_distribution<double> u(-1, 1);
  for (auto& x : C) x = static_cast<T>(u(g));
  std::vector<T> C0 = C;
  kernels::gemm<T>(M, N, K, A.data.data(), A.rs, A.cs, B.data.data(), B.rs, B.cs, C.data(), ldc, accumulate);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const double got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= N) {  // the padding between rows is never written
        if (got != static_cast<double>(C0[static_cast<size_t>(i * ldc + j)])) return INFINITY;
        continue;
      }
      double ref = accumulate ? static_cast<double>(C0[static_cast<size_t>(i * ldc + j)]) : 0.0, mag = 1.0;
      for (int64_t k = 0; k < K; ++k) {
        ref += static_cast<double>(A.at(i, k)) * static_cast<double>(B.at(k, j));
        mag += std::abs(static_cast<double>(A.at(i, k)) * static_cast<double>(B.at(k, j)));
      }
      worst = std::max(worst, std::abs(got - ref) / mag);
    }
  }
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("kernels::gemm matches a plain triple loop", "[kernels][gemm]", float, double) {
  GemmThreadsGuard guard;
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;  // relative to sum |a_ik b_kj|
  // (M, N, K): tiny (direct loops), edge tiles in every direction, K over several KC
  // blocks (KC = 384 / 256), N over several NC blocks, M over several MC blocks, and
  // shapes where few row blocks make the threads split the B panels instead
  const std::vector<std::array<int64_t, 3>> shapes = {
      {1, 1, 1},     {2, 37, 5},    {3, 3, 3},     {7, 17, 9},     {6, 16, 64},   {12, 32, 8},  {13, 33, 65},
      {64, 64, 64},  {97, 131, 77}, {200, 9, 700}, {5, 300, 1000}, {130, 70, 385}, {96, 4100, 20},
      {250, 250, 3}, {33, 513, 129}};
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const auto& s : shapes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int acc = 0; acc < 2; ++acc) {
            INFO("threads " << threads << ", M N K = " << s[0] << " " << s[1] << " " << s[2] << ", A^T " << ta
                            << ", B^T " << tb << ", accumulate " << acc);
            CHECK(check_gemm<TestType>(s[0], s[1], s[2], ta, tb, acc, acc ? 3 : 0, 7u * s[0] + s[1]) <= tol);
          }
  }
}

TEST_CASE("kernels::gemm with K = 0 zeroes or keeps C, and empty M or N do nothing", "[kernels][gemm]") {
  std::vector<float> A(4, 1.f), B(4, 1.f), C(6, 5.f);
  kernels::gemm<float>(2, 3, 0, A.data(), 1, 1, B.data(), 1, 1, C.data(), 3, true);
  CHECK(C == std::vector<float>(6, 5.f));
  kernels::gemm<float>(2, 3, 0, A.data(), 1, 1, B.data(), 1, 1, C.data(), 3, false);
  CHECK(C == std::vector<float>(6, 0.f));
  std::vector<float> D(6, 7.f);
  kernels::gemm<float>(0, 3, 2, A.data(), 2, 1, B.data(), 3, 1, D.data(), 3, false);
  kernels::gemm<float>(2, 0, 2, A.data(), 2, 1, B.data(), 3, 1, D.data(), 3, false);
  CHECK(D == std::vector<float>(6, 7.f));
}
