// Tests of in-place ops under autograd (include/genai/ops/copy.hpp, ops/common.hpp,
// the in-place members of ops/elementwise.hpp, SavedTensor in autograd/node.hpp):
// the version counter, the error for a saved tensor modified in place, refusals
// (leaves that require grad, views), and correct gradients through recorded
// in-place updates of non-leaves.
//
// genai's documented difference from PyTorch (copy.hpp): a recorded in-place op
// writes its result to a fresh buffer that the tensor then points to. Values
// saved for backward before the update are therefore the old values, and the
// backward that PyTorch refuses ("modified by an inplace operation") gives the
// correct gradient here instead. Unrecorded writes (no grad needed, or under
// NoGradGuard) write through and are caught by the version check.
#include <cmath>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {
std::vector<double> vec_inplace(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("every in-place op bumps the version counter, shared with views") {
  Tensor t = zeros({2, 3}, kFloat64);
  uint32_t v = t.version();
  t.add_(1.0);
  CHECK(t.version() == v + 1);
  t.mul_(2.0);
  CHECK(t.version() == v + 2);
  t.sub_(ones({3}, kFloat64));
  CHECK(t.version() == v + 3);
  t.div_(full({}, 2.0, kFloat64));
  CHECK(t.version() == v + 4);
  t.copy_(full({2, 3}, 5.0, kFloat64));
  CHECK(t.version() == v + 5);
  t.fill_(7.0);
  CHECK(t.version() == v + 6);
  t.zero_();
  CHECK(t.version() == v + 7);
  t += 1.0;
  t *= ones({2, 3}, kFloat64);
  t -= 0.5;
  t /= 0.5;
  CHECK(t.version() == v + 11);
  CHECK(vec_inplace(t) == std::vector<double>(6, 1.0));

  Tensor row = t.select(0, 1);  // a view shares the counter
  uint32_t vr = row.version();
  CHECK(vr == t.version());
  row.add_(1.0);
  CHECK(t.version() == vr + 1);
  CHECK(row.version() == vr + 1);
  CHECK(vec_inplace(t) == std::vector<double>{1, 1, 1, 2, 2, 2});

  // an out-of-place op does not bump
  uint32_t before = t.version();
  Tensor u = t + 1.0;
  CHECK(t.version() == before);
}

TEST_CASE("a recorded in-place op on a non-leaf bumps its version too") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  uint32_t v = y.version();
  y.add_(1.0);
  CHECK(y.version() > v);
  uint32_t v2 = y.version();
  y.mul_(x);
  CHECK(y.version() > v2);
}

TEST_CASE("modifying a saved tensor in place, then backward, raises and names the op") {
  SECTION("an input saved by mul, modified while it does not require grad") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor a = tensor({3.0, 4.0}, kFloat64);
    Tensor y = (x * a).sum();
    a.mul_(2.0);
    CHECK_THROWS_AS(y.backward(), Error);
    CHECK_THROWS_WITH(y.backward(), Contains("modified by an in-place operation") && Contains("'mul'"));
  }
  SECTION("an output saved by exp, modified under NoGradGuard") {
    Tensor x = tensor({0.5, -0.5}, kFloat64).requires_grad_();
    Tensor e = x.exp();
    {
      NoGradGuard ng;
      e.add_(1.0);
    }
    CHECK_THROWS_WITH(e.sum().backward(), Contains("modified by an in-place operation") && Contains("'exp'"));
  }
  SECTION("a leaf that requires grad, saved by matmul, updated under NoGradGuard (an optimizer step before backward)") {
    Tensor w = tensor({1, 2, 3, 4}, {2, 2}, kFloat64).requires_grad_();
    Tensor x = tensor({1, 1, 1, 1}, {2, 2}, kFloat64).requires_grad_();
    Tensor y = matmul(x, w).sum();
    {
      NoGradGuard ng;
      w.sub_(full({2, 2}, 0.1, kFloat64));
    }
    CHECK_THROWS_WITH(y.backward(), Contains("modified by an in-place operation") && Contains("'matmul'"));
  }
  SECTION("through a view of the saved tensor: the version is shared") {
    Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
    Tensor a = tensor({1.0, 1.0, 1.0}, kFloat64);
    Tensor y = (x * a).sum();
    a.narrow(0, 1, 1).fill_(5.0);
    CHECK_THROWS_WITH(y.backward(), Contains("modified by an in-place operation") && Contains("'mul'"));
  }
  SECTION("through copy_ into a detached alias") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor s = x.sigmoid();
    s.detach().copy_(zeros({2}, kFloat64));
    CHECK_THROWS_WITH(s.sum().backward(), Contains("modified by an in-place operation") && Contains("'sigmoid'"));
  }
  SECTION("a saved leaf that stops requiring grad, then is updated by a recorded in-place op") {
    // the update moves w to a new buffer; the version keeps counting, so mul's saved handle notices
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor w = tensor({3.0, 4.0}, kFloat64).requires_grad_();
    Tensor z = tensor({2.0, 2.0}, kFloat64).requires_grad_();
    Tensor y = (x * w).sum();
    w.requires_grad_(false);
    w.mul_(z);
    CHECK(w.requires_grad());
    CHECK_THROWS_WITH(y.backward(), Contains("modified by an in-place operation") && Contains("'mul'"));
  }
  SECTION("grad mode is restored when the error leaves backward") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor a = tensor({3.0, 4.0}, kFloat64);
    Tensor y = (x * a).exp().sum();
    a.add_(1.0);
    CHECK_THROWS_AS(autograd::grad({y}, {x}, {}, false, /*create_graph=*/false), Error);
    CHECK(autograd::is_grad_enabled());
    {
      NoGradGuard ng;
      CHECK_THROWS_AS(autograd::grad({y}, {x}, {}, false, /*create_graph=*/true), Error);
      CHECK_FALSE(autograd::is_grad_enabled());
    }
  }
  SECTION("a saved tensor left alone is fine, and an unsaved one may change") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor a = tensor({3.0, 4.0}, kFloat64);
    Tensor b = tensor({1.0, 1.0}, kFloat64);
    Tensor y = (x * a + b).sum();  // add saves nothing
    b.mul_(10.0);
    y.backward();
    CHECK(vec_inplace(x.grad()) == std::vector<double>{3, 4});
  }
}

TEST_CASE("in-place on a leaf that requires grad is refused while grad mode is on") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  CHECK_THROWS_AS(x.add_(1.0), Error);
  CHECK_THROWS_WITH(x.add_(1.0), Contains("add_") && Contains("leaf tensor that requires grad") && Contains("(2,)") &&
                                     Contains("NoGradGuard"));
  CHECK_THROWS_WITH(x.mul_(2.0), Contains("mul_") && Contains("leaf tensor that requires grad"));
  CHECK_THROWS_WITH(x += ones({2}, kFloat64), Contains("add_") && Contains("leaf tensor that requires grad"));
  CHECK_THROWS_WITH(x.copy_(zeros({2}, kFloat64)), Contains("copy_") && Contains("leaf tensor that requires grad"));
  CHECK_THROWS_WITH(x.fill_(0.0), Contains("fill_") && Contains("leaf tensor that requires grad"));
  CHECK_THROWS_WITH(x.zero_(), Contains("leaf tensor that requires grad"));
  CHECK(vec_inplace(x) == std::vector<double>{1, 2});  // nothing was written
  CHECK(x.is_leaf());

  SECTION("allowed under NoGradGuard: writes through, stays a leaf that requires grad") {
    Tensor alias = x.detach();
    {
      NoGradGuard ng;
      x.mul_(3.0);
      x.add_(ones({2}, kFloat64), 2.0);
    }
    CHECK(vec_inplace(x) == std::vector<double>{5, 8});
    CHECK(vec_inplace(alias) == std::vector<double>{5, 8});
    CHECK(x.is_leaf());
    CHECK(x.requires_grad());
    (x * x).sum().backward();
    CHECK(vec_inplace(x.grad()) == std::vector<double>{10, 16});
  }
}

TEST_CASE("recorded in-place ops on non-leaves give correct gradients") {
  Tensor x = tensor({1.0, -2.0, 0.5}, kFloat64).requires_grad_();
  Tensor z = tensor({3.0, 0.25, -1.0}, kFloat64).requires_grad_();
  std::vector<double> xv = vec_inplace(x), zv = vec_inplace(z);

  SECTION("y = x * 2; y += z") {
    Tensor y = x * 2.0;
    y += z;
    REQUIRE(y.grad_fn() != nullptr);
    CHECK_FALSE(y.is_leaf());
    y.sum().backward();
    CHECK(vec_inplace(x.grad()) == std::vector<double>{2, 2, 2});
    CHECK(vec_inplace(z.grad()) == std::vector<double>{1, 1, 1});
  }
  SECTION("y = x * 2; y *= z (mul_ needs the old y)") {
    Tensor y = x * 2.0;
    y *= z;
    y.sum().backward();
    for (size_t i = 0; i < 3; ++i) {
      CHECK(vec_inplace(x.grad())[i] == Approx(2 * zv[i]));
      CHECK(vec_inplace(z.grad())[i] == Approx(2 * xv[i]));  // the old y, not y * z
    }
  }
  SECTION("y = x.exp(); y /= z; y -= x; y.mul_(3)") {
    Tensor y = x.exp();
    y /= z;
    y -= x;
    y.mul_(3.0);
    y.sum().backward();  // y = 3 (e^x / z - x)
    for (size_t i = 0; i < 3; ++i) {
      CHECK(vec_inplace(x.grad())[i] == Approx(3 * (std::exp(xv[i]) / zv[i] - 1)).epsilon(1e-14));
      CHECK(vec_inplace(z.grad())[i] == Approx(-3 * std::exp(xv[i]) / (zv[i] * zv[i])).epsilon(1e-14));
    }
  }
  SECTION("add_ with alpha") {
    Tensor y = x * 1.0;
    y.add_(z, -2.5);
    (y * y).sum().backward();  // y = x - 2.5 z
    for (size_t i = 0; i < 3; ++i) {
      double yi = xv[i] - 2.5 * zv[i];
      CHECK(vec_inplace(x.grad())[i] == Approx(2 * yi).epsilon(1e-14));
      CHECK(vec_inplace(z.grad())[i] == Approx(-5 * yi).epsilon(1e-14));
    }
  }
  SECTION("a tensor that does not require grad becomes part of the graph: a += x") {
    Tensor a = zeros({3}, kFloat64);
    a += x * x;
    CHECK(a.requires_grad());
    a.sum().backward();
    for (size_t i = 0; i < 3; ++i) CHECK(vec_inplace(x.grad())[i] == Approx(2 * xv[i]));
  }
  SECTION("copy_ from a tensor that requires grad") {
    Tensor y = x * 2.0;
    y.copy_(z * z);
    (y * 3.0).sum().backward();
    for (size_t i = 0; i < 3; ++i) CHECK(vec_inplace(z.grad())[i] == Approx(6 * zv[i]));
    // x no longer contributes: its gradient is undefined (PyTorch: zeros)
    if (x.grad().defined()) CHECK(vec_inplace(x.grad()) == std::vector<double>(3, 0.0));
  }
  SECTION("a tensor saved before the in-place update keeps its old value (documented difference)") {
    // PyTorch raises "modified by an inplace operation" here; genai's recorded
    // in-place op writes a new buffer, so mul's saved y is still 2x.
    Tensor y = x * 2.0;
    Tensor w = y * y;
    y += 1.0;
    (w.sum() + y.sum()).backward();
    for (size_t i = 0; i < 3; ++i) CHECK(vec_inplace(x.grad())[i] == Approx(8 * xv[i] + 2).epsilon(1e-14));
    CHECK(vec_inplace(y) == std::vector<double>{2 * xv[0] + 1, 2 * xv[1] + 1, 2 * xv[2] + 1});
    CHECK(vec_inplace(w) == std::vector<double>{4 * xv[0] * xv[0], 4 * xv[1] * xv[1], 4 * xv[2] * xv[2]});
  }
  SECTION("an output saved by sigmoid, then updated in place under autograd") {
    Tensor s = x.sigmoid();
    s.mul_(2.0);
    s.sum().backward();
    for (size_t i = 0; i < 3; ++i) {
      double si = 1 / (1 + std::exp(-xv[i]));
      CHECK(vec_inplace(x.grad())[i] == Approx(2 * si * (1 - si)).epsilon(1e-14));
    }
  }
  SECTION("a handle copy sees the update (handles share the tensor, as Python references)") {
    Tensor y = x * 2.0;
    Tensor same = y;
    y += z;
    CHECK(vec_inplace(same) == vec_inplace(y));
    CHECK(same.grad_fn() == y.grad_fn());
  }
  SECTION("the same update under NoGradGuard is not recorded") {
    Tensor y = x * 2.0;
    {
      NoGradGuard ng;
      y += z;
    }
    y.sum().backward();
    CHECK(vec_inplace(x.grad()) == std::vector<double>{2, 2, 2});
    CHECK_FALSE(z.grad().defined());
  }
}

TEST_CASE("in-place ops on views of tensors that require grad are refused") {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  SECTION("narrow of a non-leaf") {
    Tensor v = y.narrow(0, 0, 1);
    CHECK_THROWS_AS(v.add_(1.0), Error);
    CHECK_THROWS_WITH(v.add_(1.0), Contains("add_") && Contains("in-place operation on a view") && Contains("(1, 2)"));
  }
  SECTION("select, transpose and reshape views") {
    CHECK_THROWS_WITH(y.select(1, 0).mul_(2.0), Contains("mul_") && Contains("view"));
    CHECK_THROWS_WITH(y.t().copy_(zeros({2, 2}, kFloat64)), Contains("copy_") && Contains("view"));
    CHECK_THROWS_WITH(y.view({4}).fill_(0.0), Contains("fill_") && Contains("view"));
  }
  SECTION("a view of a leaf that requires grad") {
    CHECK_THROWS_WITH(x.view({4}).add_(1.0), Contains("view"));
  }
  SECTION("a view of a tensor that does not require grad, updated with one that does") {
    Tensor a = zeros({2, 2}, kFloat64);
    CHECK_THROWS_WITH(a.select(0, 0).add_(x.select(0, 1)), Contains("view"));
  }
  SECTION("nothing was written by the refused ops, and the graph still works") {
    CHECK_THROWS(y.narrow(0, 1, 1).add_(100.0));
    CHECK(vec_inplace(y) == std::vector<double>{2, 4, 6, 8});
    y.sum().backward();
    CHECK(vec_inplace(x.grad()) == std::vector<double>{2, 2, 2, 2});
  }
  SECTION("allowed under NoGradGuard: writes through to the base") {
    {
      NoGradGuard ng;
      y.narrow(0, 1, 1).fill_(0.0);
    }
    CHECK(vec_inplace(y) == std::vector<double>{2, 4, 0, 0});
  }
}
