// nn::FreezeParameters: requires_grad off for a scope, restored after it (exceptions too).
#include "test_util.hpp"

#include <stdexcept>

#include <genai/nn/linear.hpp>

using namespace genai;

TEST_CASE("FreezeParameters turns requires_grad off for its scope and back on after it", "[nn][freeze]") {
  nn::Linear D(3, 2), G(2, 3);
  D.bias.requires_grad_(false);  // already off: must stay off
  {
    nn::FreezeParameters frozen(D.parameters());
    CHECK_FALSE(D.weight.requires_grad());
    Tensor loss = sum(D.forward(G.forward(ones({4, 2}))));
    loss.backward();  // reaches G through the frozen D
    CHECK(G.weight.grad().defined());
    CHECK_FALSE(D.weight.grad().defined());
  }
  CHECK(D.weight.requires_grad());
  CHECK_FALSE(D.bias.requires_grad());
  try {
    nn::FreezeParameters frozen(D.parameters());
    throw std::runtime_error("leaves the scope");
  } catch (const std::runtime_error&) {
  }
  CHECK(D.weight.requires_grad());
}
