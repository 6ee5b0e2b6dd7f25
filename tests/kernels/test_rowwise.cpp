// kernels/rowwise.hpp (the float32 row kernels behind softmax, the norms and the
// attention tiles) against double-precision loops: every row length from 0 to 70
// (vector bodies, unrolled bodies and scalar or masked tails), special values, and
// exp over its whole float range.
#include "test_util.hpp"

#include <genai/kernels/rowwise.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace genai::kernels;

namespace {
std::vector<float> random_row(int64_t n, unsigned seed, float scale = 3.f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(g);
  return v;
}
}  // namespace

TEST_CASE("row_exp_sum: exp within 2 ulp over the float range, exact 0, inf and NaN at the edges") {
  std::vector<float> x;
  for (float v = -100.f; v < 100.f; v += 0.0013f) x.push_back(v);
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 88.72f, 88.7228f, 88.73f, -87.33f, -87.34f, -103.f})
    x.push_back(v);
  std::vector<float> y(x.size());
  row_exp_sum(x.data(), y.data(), static_cast<int64_t>(x.size()), 0.f);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    INFO("x = " << x[i] << ", exp = " << y[i] << ", reference " << ref);
    if (ref > std::numeric_limits<float>::max()) {
      CHECK(std::isinf(y[i]));
    } else if (ref < std::numeric_limits<float>::min()) {
      CHECK(y[i] >= 0.f);  // underflow: 0 (or a denormal from the scalar tail)
      CHECK(y[i] < std::numeric_limits<float>::min());
    } else if (x[i] > 88.f) {
      CHECK(std::abs(y[i] - ref) <= 8e-7 * ref);  // the capped top octave: a few ulp
    } else {
      worst = std::max(worst, std::abs(y[i] - ref) / ref);
    }
  }
  CHECK(worst <= 2.4e-7);  // 2 ulp (ulp = 2^-23 relative at most, 2^-24 at best)
  // special values, in the vector body (8 of them) and in the tail
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  uint32_t payload_bits = 0x7fc001ffu;  // a NaN with low payload bits set
  float payload_nan;
  std::memcpy(&payload_nan, &payload_bits, 4);
  std::vector<float> s = {-inf, inf, nan, payload_nan, 0.f, -1.f, 1.f, -inf, nan, -inf, 2.f};
  std::vector<float> e(s.size());
  const float sum = row_exp_sum(s.data(), e.data(), static_cast<int64_t>(s.size()), 0.f);
  CHECK(e[0] == 0.f);
  CHECK(std::isinf(e[1]));
  CHECK(std::isnan(e[2]));
  CHECK(std::isnan(e[3]));
  CHECK(e[4] == 1.f);
  CHECK(e[7] == 0.f);
  CHECK(std::isnan(e[8]));
  CHECK(e[9] == 0.f);
  CHECK(std::isnan(sum));
}

TEST_CASE("row kernels match double loops for every length from 0 to 70") {
  for (int64_t n = 0; n <= 70; ++n) {
    INFO("n = " << n);
    std::vector<float> x = random_row(n, 11u + static_cast<unsigned>(n)), w = random_row(n, 99u, 1.f),
                       b = random_row(n, 7u, 1.f);
    // row_max, with a NaN anywhere
    float ref_max = -std::numeric_limits<float>::infinity();
    for (float v : x) ref_max = std::max(ref_max, v);
    CHECK(row_max(x.data(), n) == ref_max);
    for (int64_t at : {int64_t(0), n / 2, n - 1}) {
      if (n == 0) break;
      std::vector<float> xn = x;
      xn[static_cast<size_t>(at)] = std::numeric_limits<float>::quiet_NaN();
      CHECK(std::isnan(row_max(xn.data(), n)));
    }
    // row_exp_sum (also in place)
    std::vector<float> y(static_cast<size_t>(n));
    const float shift = ref_max;
    const float s = row_exp_sum(x.data(), y.data(), n, shift);
    double ref_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float d = x[i] - shift;  // the kernel subtracts in float, then takes exp
      const double e = std::exp(static_cast<double>(d));
      ref_sum += e;
      CHECK(std::abs(y[i] - e) <= 3e-7 * e + 1e-37);
    }
    CHECK(std::abs(s - ref_sum) <= 1e-6 * ref_sum);
    std::vector<float> yi = x;
    row_exp_sum(yi.data(), yi.data(), n, shift);
    CHECK(yi == y);
    // row_axpb
    std::vector<float> z(static_cast<size_t>(n));
    row_axpb(x.data(), z.data(), n, 0.5f, -2.f);
    for (int64_t i = 0; i < n; ++i) CHECK(std::abs(z[i] - (x[i] * 0.5 - 2.0)) <= 1e-6 * (1 + std::abs(x[i])));
    // sums and dots in double
    double r1 = 0, r2 = 0, r3 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(x[i]) - 0.25;
      r1 += d;
      r2 += d * d;
      r3 += static_cast<double>(x[i]) * static_cast<double>(w[i]);
    }
    CHECK(std::abs(row_sum_f64(x.data(), n, 0.25, false) - r1) <= 1e-12 * (1 + std::abs(r1)));
    CHECK(std::abs(row_sum_f64(x.data(), n, 0.25, true) - r2) <= 1e-12 * (1 + r2));
    CHECK(std::abs(row_dot_f64(x.data(), w.data(), n) - r3) <= 1e-12 * (1 + std::abs(r3)));
    // row_normalize with and without weight and bias
    const float mean = 0.3f, rstd = 1.7f;
    for (int mode = 0; mode < 4; ++mode) {
      const float* pw = (mode & 1) ? w.data() : nullptr;
      const float* pb = (mode & 2) ? b.data() : nullptr;
      row_normalize(x.data(), z.data(), n, mean, rstd, pw, pb);
      for (int64_t i = 0; i < n; ++i) {
        double ref = (static_cast<double>(x[i]) - mean) * rstd;
        if (pw) ref *= w[i];
        if (pb) ref += b[i];
        CHECK(std::abs(z[i] - ref) <= 1e-5 * (1 + std::abs(ref)));
      }
    }
  }
}
