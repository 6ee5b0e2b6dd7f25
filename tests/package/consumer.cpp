// A program that uses genai the way a downstream project would: it only sees
// the installed (or added) package. Exits 0 when a gradient comes out right.
#include <cmath>
#include <cstdio>

#include <genai/genai.hpp>

int main() {
  genai::Tensor x = genai::tensor({1.0, 2.0, 3.0}).requires_grad_();
  genai::Tensor y = (x * x).sum();  // dy/dx = 2x
  y.backward();
  std::vector<float> g = x.grad().to_vector();
  bool ok = std::abs(g[0] - 2.f) < 1e-6 && std::abs(g[1] - 4.f) < 1e-6 && std::abs(g[2] - 6.f) < 1e-6;
  std::printf("genai %s: d(sum x^2)/dx = [%g, %g, %g] %s\n", GENAI_VERSION_STRING, g[0], g[1], g[2], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
