// Tests of the autograd engine: accumulation, graph freeing, deep chains, grad().
#include "test_util.hpp"

using namespace genai;

TEST_CASE("backward accumulates into leaf gradients") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
  Tensor y2 = (x * 3.0).sum();
  y2.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{5, 7, 9});
}

TEST_CASE("a 100,000-op chain runs backward and is freed without recursion") {
  Tensor x = ones({4}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y + 1e-5;
  y.sum().backward();
  CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 1, 1});
  y = Tensor();  // destroys the chain
  SUCCEED("no stack overflow");
}
