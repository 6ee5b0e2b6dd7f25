// Helpers shared by the conv / pool tests: the cases stored in conv.safetensors.
#pragma once

#include <genai/ops/conv.hpp>
#include <genai/ops/pool.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace conv_test {

inline const char* kFile = "conv.safetensors";

/// Case prefixes "<op>/<name>" stored in the fixture file (every case has a params tensor).
inline std::vector<std::string> cases(const std::string& op) {
  std::vector<std::string> out;
  const std::string head = op + "/", tail = "/params";
  for (const auto& [key, t] : genai_test::fixtures(kFile)) {
    (void)t;
    if (key.size() > head.size() + tail.size() && key.compare(0, head.size(), head) == 0 &&
        key.compare(key.size() - tail.size(), tail.size(), tail) == 0)
      out.push_back(key.substr(0, key.size() - tail.size()));
  }
  return out;
}

inline genai::Tensor fx(const std::string& c, const std::string& what) {
  return genai_test::fixture(kFile, c + "/" + what);
}
inline bool has(const std::string& c, const std::string& what) {
  return genai_test::fixtures(kFile).count(c + "/" + what) > 0;
}
inline std::vector<int64_t> params(const std::string& c) { return fx(c, "params").to_vector<int64_t>(); }

/// A leaf in dtype dt that requires grad, from a float64 fixture.
inline genai::Tensor leaf(const std::string& c, const std::string& what, genai::Dtype dt) {
  return fx(c, what).to(dt).detach().requires_grad_();
}

struct Tol {
  genai::Dtype dtype;
  double rtol, atol;
};
/// float64 must match PyTorch to 1e-10; float32 to 1e-4.
inline const std::vector<Tol>& tolerances() {
  static const std::vector<Tol> t{{genai::kFloat64, 1e-10, 1e-10}, {genai::kFloat32, 1e-4, 1e-4}};
  return t;
}

}  // namespace conv_test
