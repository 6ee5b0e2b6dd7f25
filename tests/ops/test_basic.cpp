// Smoke tests of the primitive ops (fixture and gradcheck tests live beside this file).
#include "test_util.hpp"

using namespace genai;

TEST_CASE("matmul matches a naive product, for every layout and thread split") {
  manual_seed(5);
  for (auto [M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 5, 7}, {64, 48, 33}, {130, 70, 400}, {7, 300, 5}}) {
    Tensor a = randn({M, K}, kFloat64), b = randn({K, N}, kFloat64);
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    std::vector<double> ref(static_cast<size_t>(M * N), 0.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) ref[i * N + j] += av[i * K + k] * bv[k * N + j];
    Tensor r = tensor(ref, {M, N}, kFloat64);
    CHECK_CLOSE(matmul(a, b), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a.t().contiguous().t(), b), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a, b.t().contiguous().t()), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a.to(kFloat32), b.to(kFloat32)), r, 1e-4, 1e-4);
    CHECK_CLOSE(matmul(a.to(kFloat32).t().contiguous().t(), b.to(kFloat32).t().contiguous().t()), r, 1e-4, 1e-4);
  }
}
