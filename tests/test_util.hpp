// Shared helpers for genai's tests: fixture loading and tensor comparison.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <sstream>
#include <string>

#include <genai/io/safetensors.hpp>
#include <genai/tensor.hpp>

namespace genai_test {

/// The tensors of tests/fixtures/<file>, loaded once per process.
inline const genai::io::TensorMap& fixtures(const std::string& file) {
  static std::map<std::string, genai::io::TensorMap> cache;
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, genai::io::load_safetensors(std::string(GENAI_FIXTURE_DIR) + "/" + file)).first;
  return it->second;
}

/// One fixture tensor; fails the test with the missing name.
inline genai::Tensor fixture(const std::string& file, const std::string& name) {
  const auto& m = fixtures(file);
  auto it = m.find(name);
  INFO("fixture " << file << ":" << name);
  REQUIRE(it != m.end());
  return it->second;
}

/// Largest |a - b| / (atol + rtol |b|); <= 1 means close. Shapes must match.
inline double closeness(const genai::Tensor& a, const genai::Tensor& b, double rtol, double atol, double* max_abs = nullptr) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0, worst_abs = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) != std::isnan(y[i])) return INFINITY;
    if (std::isnan(x[i])) continue;
    if (std::isinf(x[i]) || std::isinf(y[i])) {
      if (x[i] != y[i]) return INFINITY;
      continue;
    }
    double d = std::abs(x[i] - y[i]);
    worst_abs = std::max(worst_abs, d);
    worst = std::max(worst, d / (atol + rtol * std::abs(y[i])));
  }
  if (max_abs) *max_abs = worst_abs;
  return worst;
}

}  // namespace genai_test

/// CHECKs that two tensors have the same shape and close values.
#define CHECK_CLOSE(actual, expected, rtol, atol)                                                             \
  do {                                                                                                         \
    const genai::Tensor ca_ = (actual);                                                                        \
    const genai::Tensor ce_ = (expected);                                                                      \
    INFO(#actual " vs " #expected ": shapes " << genai::shape_str(ca_.shape()) << " and "                       \
                                             << genai::shape_str(ce_.shape()));                                \
    REQUIRE(ca_.shape() == ce_.shape());                                                                       \
    double mabs_ = 0;                                                                                          \
    double c_ = genai_test::closeness(ca_, ce_, (rtol), (atol), &mabs_);                                       \
    INFO("max |diff| = " << mabs_ << ", worst diff / (atol + rtol |expected|) = " << c_);                      \
    CHECK(c_ <= 1.0);                                                                                          \
  } while (0)
