// Tests of the autograd engine (include/genai/autograd/engine.hpp, node.hpp,
// grad_mode.hpp): accumulation into .grad(), shared subexpressions and diamonds,
// several roots, explicit root gradients, leaves as roots, retain_graph and the
// errors for a second backward, bad roots, grad mode guards, detach, and deep
// chains (backward and destruction without recursion).
#include <cmath>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {
std::vector<double> vec_engine(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("backward accumulates into leaf gradients") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
  Tensor y2 = (x * 3.0).sum();
  y2.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{5, 7, 9});
}

TEST_CASE("backward accumulates across calls in float64; set_grad resets") {
  Tensor x = tensor({0.5, -1.0, 2.0}, kFloat64).requires_grad_();
  (x * x).sum().backward();
  Tensor g1 = x.grad();
  std::vector<double> first = vec_engine(g1);
  CHECK(first == std::vector<double>{1.0, -2.0, 4.0});
  (x.exp()).sum().backward();
  std::vector<double> acc = vec_engine(x.grad());
  for (size_t i = 0; i < 3; ++i) CHECK(acc[i] == Approx(first[i] + std::exp(vec_engine(x)[i])).epsilon(1e-15));
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().dtype() == kFloat64);
  // the gradient never requires grad after a plain backward
  CHECK_FALSE(x.grad().requires_grad());
  // set_grad(undefined) resets, as x.grad = None
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
  (x * 2.0).sum().backward();
  CHECK(vec_engine(x.grad()) == std::vector<double>{2, 2, 2});
}

TEST_CASE("gradients of shared subexpressions add up") {
  SECTION("x used many times in one expression") {
    Tensor x = tensor({0.5, -1.5, 2.0}, kFloat64).requires_grad_();
    Tensor y = (x * x * x + x * 4.0 - x / x).sum();  // d/dx = 3 x^2 + 4 (x/x contributes 1/x - x/x^2 = 0)
    y.backward();
    std::vector<double> xv = vec_engine(x), g = vec_engine(x.grad());
    for (size_t i = 0; i < 3; ++i) CHECK(g[i] == Approx(3 * xv[i] * xv[i] + 4).epsilon(1e-14));
  }
  SECTION("x added to itself 10 times") {
    Tensor x = tensor({1, 2}).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 9; ++i) y = y + x;
    y.sum().backward();
    CHECK(x.grad().to_vector() == std::vector<float>{10, 10});
  }
  SECTION("the same tensor on both sides of one op") {
    Tensor x = tensor({3.0, -2.0}, kFloat64).requires_grad_();
    mul(x, x).sum().backward();
    CHECK(vec_engine(x.grad()) == std::vector<double>{6, -4});
  }
  SECTION("diamond: a -> (exp, sin) -> product") {
    Tensor x = tensor({0.3, -0.7, 1.1}, kFloat64).requires_grad_();
    Tensor a = x * 2.0;
    Tensor b = a.exp();
    Tensor c = a.sin();
    (b * c).sum().backward();
    // d/dx e^{2x} sin 2x = 2 e^{2x} (sin 2x + cos 2x)
    std::vector<double> xv = vec_engine(x), g = vec_engine(x.grad());
    for (size_t i = 0; i < 3; ++i)
      CHECK(g[i] == Approx(2 * std::exp(2 * xv[i]) * (std::sin(2 * xv[i]) + std::cos(2 * xv[i]))).epsilon(1e-13));
  }
  SECTION("nested diamonds sharing intermediate nodes") {
    // h1 = x^2, h2 = h1 + x, h3 = h1 * h2, y = sum(h3 + h2): dy/dx = h2 (2x) + h1 (2x + 1) + 2x + 1
    Tensor x = tensor({0.5, 1.5, -2.0}, kFloat64).requires_grad_();
    Tensor h1 = x * x, h2 = h1 + x, h3 = h1 * h2;
    (h3 + h2).sum().backward();
    std::vector<double> xv = vec_engine(x), g = vec_engine(x.grad());
    for (size_t i = 0; i < 3; ++i) {
      double v = xv[i], a = v * v, b = a + v;
      CHECK(g[i] == Approx(b * 2 * v + a * (2 * v + 1) + 2 * v + 1).epsilon(1e-14));
    }
  }
  SECTION("broadcasting: a (3) row added to every row of a (2, 3) matrix") {
    Tensor r = tensor({1, 2, 3}, kFloat64).requires_grad_();
    Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64).requires_grad_();
    ((m + r) * m).sum().backward();  // d/dr = sum_rows(m), d/dm = 2m + r
    CHECK(vec_engine(r.grad()) == std::vector<double>{5, 7, 9});
    CHECK(vec_engine(m.grad()) == std::vector<double>{3, 6, 9, 9, 12, 15});
  }
}

TEST_CASE("several roots: autograd::backward({a, b})") {
  SECTION("two scalar roots sharing a leaf") {
    Tensor x = tensor({1.0, -2.0, 0.5}, kFloat64).requires_grad_();
    Tensor a = (x * x).sum();
    Tensor b = (x * 3.0).sum();
    autograd::backward({a, b});
    CHECK(vec_engine(x.grad()) == std::vector<double>{5, -1, 4});
  }
  SECTION("non-scalar roots with their own gradients, and an undefined entry for a scalar root") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor w = tensor({3.0, -1.0}, kFloat64).requires_grad_();
    Tensor u = x * w;          // (2)
    Tensor v = (x * x).sum();  // ()
    autograd::backward({u, v}, {tensor({10.0, 100.0}, kFloat64), Tensor()});
    CHECK(vec_engine(x.grad()) == std::vector<double>{10 * 3 + 2 * 1, 100 * -1 + 2 * 2});
    CHECK(vec_engine(w.grad()) == std::vector<double>{10 * 1, 100 * 2});
  }
  SECTION("one root is an ancestor of the other") {
    Tensor x = tensor({0.1, 0.2}, kFloat64).requires_grad_();
    Tensor r1 = x.exp();
    Tensor r2 = (r1 * 2.0).sum();
    autograd::backward({r1, r2}, {ones({2}, kFloat64), Tensor()});
    std::vector<double> xv = vec_engine(x), g = vec_engine(x.grad());
    for (size_t i = 0; i < 2; ++i) CHECK(g[i] == Approx(3 * std::exp(xv[i])).epsilon(1e-15));
  }
  SECTION("the same root twice counts twice") {
    Tensor x = tensor({2.0}, kFloat64).requires_grad_();
    Tensor y = (x * x).sum();
    autograd::backward({y, y});
    CHECK(vec_engine(x.grad()) == std::vector<double>{8});
  }
  SECTION("wrong number of gradients") {
    Tensor x = tensor({2.0}, kFloat64).requires_grad_();
    Tensor y = (x * x).sum();
    CHECK_THROWS_WITH(autograd::backward({y, y}, {ones({}, kFloat64)}), Contains("got 1 gradients for 2 outputs"));
  }
}

TEST_CASE("non-scalar backward with an explicit gradient") {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, kFloat64).requires_grad_();
  Tensor y = x * x;  // (2, 3)
  Tensor g = tensor({1, 0, -1, 0.5, 2, 0}, {2, 3}, kFloat64);
  y.backward(g);
  CHECK(vec_engine(x.grad()) == std::vector<double>{2, 0, -6, 4, 20, 0});
  // the user's gradient tensor is read, never written
  CHECK(vec_engine(g) == std::vector<double>{1, 0, -1, 0.5, 2, 0});

  SECTION("a gradient of the wrong shape names both shapes") {
    Tensor z = x * 2.0;
    CHECK_THROWS_WITH(z.backward(ones({3, 2}, kFloat64)), Contains("(3, 2)") && Contains("(2, 3)"));
  }
  SECTION("a float32 gradient for a float64 graph still gives a float64 .grad()") {
    Tensor x2 = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    (x2 * 3.0).backward(tensor({1.0, 1.0}));
    CHECK(x2.grad().dtype() == kFloat64);
    CHECK(vec_engine(x2.grad()) == std::vector<double>{3, 3});
  }
}

TEST_CASE("a leaf used as the root") {
  SECTION("non-scalar leaf with a gradient: .grad() is the gradient, and accumulating never writes the user's tensor") {
    Tensor x = tensor({1, 2, 3}, kFloat64).requires_grad_();
    Tensor g = tensor({0.5, -1, 2}, kFloat64);
    x.backward(g);
    CHECK(vec_engine(x.grad()) == std::vector<double>{0.5, -1, 2});
    x.backward(g);
    CHECK(vec_engine(x.grad()) == std::vector<double>{1, -2, 4});
    CHECK(vec_engine(g) == std::vector<double>{0.5, -1, 2});
  }
  SECTION("scalar leaf without a gradient") {
    Tensor s = scalar_tensor(3.0, kFloat64).requires_grad_();
    s.backward();
    CHECK(s.grad().item<double>() == 1.0);
    CHECK(s.grad().shape() == Shape{});
  }
  SECTION("a leaf root next to a non-leaf root") {
    Tensor x = tensor({1, 2}, kFloat64).requires_grad_();
    autograd::backward({x, (x * x).sum()}, {ones({2}, kFloat64), Tensor()});
    CHECK(vec_engine(x.grad()) == std::vector<double>{3, 5});
  }
}

TEST_CASE("retain_graph") {
  SECTION("a second backward without it names the op and says what happened") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor y = (x * x).sum();
    y.backward();
    CHECK_THROWS_AS(y.backward(), Error);
    CHECK_THROWS_WITH(y.backward(), Contains("backward through the graph a second time") && Contains("'mul'"));
    // the failed attempts did not change the gradient
    CHECK(vec_engine(x.grad()) == std::vector<double>{2, 4});
  }
  SECTION("the error names the op that saved the freed tensor (exp saves its output)") {
    Tensor x = tensor({0.0}, kFloat64).requires_grad_();
    Tensor y = (x.exp() + 1.0).sum();
    y.backward();
    CHECK_THROWS_WITH(y.backward(), Contains("backward through the graph a second time") && Contains("'exp'"));
  }
  SECTION("with retain_graph=true the second backward works and doubles the gradients") {
    Tensor x = tensor({1.0, -3.0}, kFloat64).requires_grad_();
    Tensor w = tensor({2.0, 0.5}, kFloat64).requires_grad_();
    Tensor y = (x * w).exp().sum();
    y.backward(Tensor(), /*retain_graph=*/true);
    std::vector<double> gx1 = vec_engine(x.grad()), gw1 = vec_engine(w.grad());
    y.backward(Tensor(), /*retain_graph=*/true);
    std::vector<double> gx2 = vec_engine(x.grad()), gw2 = vec_engine(w.grad());
    for (size_t i = 0; i < 2; ++i) {
      CHECK(gx2[i] == Approx(2 * gx1[i]).epsilon(1e-15));
      CHECK(gw2[i] == Approx(2 * gw1[i]).epsilon(1e-15));
    }
    y.backward();  // a third one, without retain: still fine, frees the graph
    CHECK(vec_engine(x.grad())[0] == Approx(3 * gx1[0]).epsilon(1e-15));
    CHECK_THROWS_WITH(y.backward(), Contains("backward through the graph a second time"));
  }
  SECTION("a graph without saved tensors can be walked again, as in PyTorch") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor y = (x + 1.0).sum();
    y.backward();
    y.backward();
    CHECK(vec_engine(x.grad()) == std::vector<double>{2, 2});
  }
  SECTION("part of a freed graph reused in a new expression raises too") {
    Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor h = x * x;
    h.sum().backward();
    Tensor z = (h * 2.0).sum();
    CHECK_THROWS_WITH(z.backward(), Contains("backward through the graph a second time") && Contains("'mul'"));
  }
}

TEST_CASE("bad roots raise clear errors") {
  SECTION("non-scalar root without a gradient names the shape") {
    Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
    Tensor y = x * 2.0;
    CHECK_THROWS_AS(y.backward(), Error);
    CHECK_THROWS_WITH(y.backward(), Contains("only for one-element outputs") && Contains("(2, 3)"));
    CHECK_THROWS_WITH(autograd::grad({y}, {x}), Contains("(2, 3)"));
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("root that does not require grad") {
    Tensor x = tensor({1, 2, 3});
    Tensor y = (x * 2.0).sum();
    CHECK_THROWS_AS(y.backward(), Error);
    CHECK_THROWS_WITH(y.backward(), Contains("does not require grad"));
  }
  SECTION("root computed under NoGradGuard") {
    Tensor x = tensor({1, 2, 3}).requires_grad_();
    Tensor y;
    {
      NoGradGuard ng;
      y = (x * 2.0).sum();
    }
    CHECK_THROWS_WITH(y.backward(), Contains("does not require grad") && Contains("NoGradGuard"));
  }
  SECTION("undefined root") {
    CHECK_THROWS_AS(autograd::backward({Tensor()}, {ones({})}), Error);
  }
}

TEST_CASE("grad mode guards nest and restore") {
  REQUIRE(autograd::is_grad_enabled());
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  {
    NoGradGuard ng;
    CHECK_FALSE(autograd::is_grad_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(y.is_leaf());
    {
      EnableGradGuard eg;
      CHECK(autograd::is_grad_enabled());
      Tensor z = x * 2.0;
      CHECK(z.requires_grad());
      REQUIRE(z.grad_fn() != nullptr);
      CHECK(z.grad_fn()->name() == "mul");
      {
        NoGradGuard ng2;
        CHECK_FALSE(autograd::is_grad_enabled());
        CHECK_FALSE((x + 1.0).requires_grad());
      }
      CHECK(autograd::is_grad_enabled());
      z.sum().backward();  // backward inside an enabled scope nested in a disabled one
      CHECK(vec_engine(x.grad()) == std::vector<double>{2, 2});
    }
    CHECK_FALSE(autograd::is_grad_enabled());
    {
      autograd::GradModeGuard g(true);
      CHECK(autograd::is_grad_enabled());
    }
    CHECK_FALSE(autograd::is_grad_enabled());
  }
  CHECK(autograd::is_grad_enabled());

  SECTION("set_grad_enabled") {
    autograd::set_grad_enabled(false);
    CHECK_FALSE((x * 2.0).requires_grad());
    autograd::set_grad_enabled(true);
    CHECK((x * 2.0).requires_grad());
  }
  SECTION("the mode is restored when an exception leaves the scope") {
    try {
      NoGradGuard ng;
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(autograd::is_grad_enabled());
  }
  SECTION("the mode is per thread") {
    NoGradGuard ng;
    bool other_enabled = false, other_records = false;
    std::thread t([&] {
      other_enabled = autograd::is_grad_enabled();
      other_records = (x * 2.0).requires_grad();
    });
    t.join();
    CHECK(other_enabled);
    CHECK(other_records);
    CHECK_FALSE(autograd::is_grad_enabled());
  }
  SECTION("backward works inside NoGradGuard (as under torch.no_grad)") {
    x.set_grad(Tensor());
    Tensor y = (x * x).sum();
    NoGradGuard ng;
    y.backward();
    CHECK(vec_engine(x.grad()) == std::vector<double>{2, 4});
    CHECK_FALSE(autograd::is_grad_enabled());
  }
  SECTION("backward itself runs with grad mode off and restores it") {
    Tensor y = (x * x).sum();
    y.backward();
    CHECK(autograd::is_grad_enabled());
    CHECK_FALSE(x.grad().requires_grad());
  }
}

TEST_CASE("detach cuts the graph and shares storage") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.grad_fn() == nullptr);
  CHECK(d.is_alias_of(y));
  CHECK(d.raw_data() == y.raw_data());
  CHECK(vec_engine(d) == vec_engine(y));
  CHECK(y.requires_grad());  // the original is untouched

  SECTION("gradients do not flow through the detached tensor") {
    (d * x).sum().backward();
    CHECK(vec_engine(x.grad()) == std::vector<double>{2, 4, 6});  // d is a constant: d/dx (d x) = d
  }
  SECTION("writes through the detached tensor are seen by the original (shared storage) and bump its version") {
    uint32_t v = y.version();
    d.add_(1.0);
    CHECK(vec_engine(y) == std::vector<double>{3, 5, 7});
    CHECK(y.version() == v + 1);
  }
  SECTION("a detached view stays a view of the same memory") {
    Tensor row = x.detach().narrow(0, 1, 2);
    CHECK(row.is_alias_of(x));
    CHECK(vec_engine(row) == std::vector<double>{2, 3});
  }
  SECTION("detach_ cuts a non-leaf in place") {
    Tensor z = x * 3.0;
    REQUIRE(z.grad_fn() != nullptr);
    z.detach_();
    CHECK(z.is_leaf());
    CHECK_FALSE(z.requires_grad());
    CHECK(z.grad_fn() == nullptr);
    CHECK(vec_engine(z) == std::vector<double>{3, 6, 9});
    (z * x).sum().backward();
    CHECK(vec_engine(x.grad()) == std::vector<double>{3, 6, 9});
  }
  SECTION("detach_ on a leaf that requires grad turns the flag off") {
    Tensor l = tensor({1.0}, kFloat64).requires_grad_();
    l.detach_();
    CHECK_FALSE(l.requires_grad());
    CHECK_FALSE((l * 2.0).requires_grad());
  }
  SECTION("requires_grad_(false) on a non-leaf is refused with a hint to detach") {
    CHECK_THROWS_WITH(y.requires_grad_(false), Contains("non-leaf") && Contains("detach"));
  }
  SECTION("requires_grad_ on an integer tensor is refused") {
    Tensor i = tensor(std::vector<int64_t>{1, 2}, {2});
    CHECK_THROWS_WITH(i.requires_grad_(), Contains("floating-point") && Contains("int64"));
  }
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

TEST_CASE("a 100,000-op chain is destroyed without backward and without recursion") {
  Tensor x = ones({2}, kFloat64).requires_grad_();
  SECTION("ops that save nothing (add)") {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y + 1e-5;
    CHECK(y.grad_fn() != nullptr);
    y = Tensor();
  }
  SECTION("ops that save their inputs (mul): the chain also runs through saved tensors") {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * x;
    y = Tensor();
  }
  SECTION("ops that save their outputs (exp) and several live handles into the chain") {
    Tensor y = x * 1e-6;
    Tensor mid;
    for (int i = 0; i < 100000; ++i) {
      y = (y * 1e-6).exp();
      if (i == 50000) mid = y;
    }
    y = Tensor();   // frees the second half
    mid = Tensor();  // then the first half
  }
  SECTION("a graph dropped after a partial autograd::grad") {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
    TensorList g = autograd::grad({y.sum()}, {x});
    CHECK(vec_engine(g[0]) == std::vector<double>{1, 1});
    y = Tensor();
  }
  // the leaf is still usable afterwards
  (x * 2.0).sum().backward();
  CHECK(vec_engine(x.grad()) == std::vector<double>{2, 2});
}
