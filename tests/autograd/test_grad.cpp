// Tests of autograd::grad (gradients returned, not accumulated; non-leaf inputs;
// allow_unused; grad_outputs; create_graph), of gradcheck/gradgradcheck
// themselves (they must fail for a wrong backward), and of thread-count
// independence of forward + backward.
#include <cmath>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {
std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("autograd::grad w.r.t. leaves returns gradients and does not touch .grad()") {
  Tensor x = tensor({1.0, 2.0, -1.0}, kFloat64).requires_grad_();
  Tensor w = tensor({0.5, -3.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = (x * x * w).sum();
  TensorList g = autograd::grad({y}, {x, w});
  REQUIRE(g.size() == 2);
  CHECK(vec(g[0]) == std::vector<double>{1.0, -12.0, -4.0});  // 2 x w
  CHECK(vec(g[1]) == std::vector<double>{1.0, 4.0, 1.0});     // x^2
  CHECK_FALSE(g[0].requires_grad());
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());

  SECTION("existing .grad() values are left as they are") {
    Tensor x2 = tensor({1.0, 2.0}, kFloat64).requires_grad_();
    Tensor w2 = tensor({3.0, 4.0}, kFloat64).requires_grad_();
    (x2 * 10.0).sum().backward();
    (w2 * 10.0).sum().backward();
    Tensor y2 = (x2 * w2).sum();
    TensorList g2 = autograd::grad({y2}, {x2});
    CHECK(vec(g2[0]) == std::vector<double>{3, 4});
    CHECK(vec(x2.grad()) == std::vector<double>{10, 10});
    CHECK(vec(w2.grad()) == std::vector<double>{10, 10});  // w2 was not asked for: not accumulated either
  }
  SECTION("the inputs may come in any order, and repeated") {
    Tensor y2 = (x * w).sum();
    TensorList g2 = autograd::grad({y2}, {w, x, w});
    CHECK(vec(g2[0]) == vec(x));
    CHECK(vec(g2[1]) == vec(w));
    CHECK(vec(g2[2]) == vec(x));
  }
  SECTION("a leaf as both output and input") {
    TensorList g2 = autograd::grad({x}, {x}, {tensor({1.0, 2.0, 3.0}, kFloat64)});
    CHECK(vec(g2[0]) == std::vector<double>{1, 2, 3});
  }
}

TEST_CASE("autograd::grad w.r.t. non-leaves") {
  Tensor x = tensor({1.0, -2.0}, kFloat64).requires_grad_();
  Tensor h = x * 3.0;                 // non-leaf
  Tensor y = (h * h).sum() + h.sum();  // dy/dh = 2h + 1
  TensorList g = autograd::grad({y}, {h, x}, {}, /*retain_graph=*/true);
  CHECK(vec(g[0]) == std::vector<double>{7.0, -11.0});
  CHECK(vec(g[1]) == std::vector<double>{21.0, -33.0});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(h.grad().defined());

  SECTION("only the non-leaf: the part of the graph below it is not run") {
    TensorList g2 = autograd::grad({y}, {h}, {}, true);
    CHECK(vec(g2[0]) == std::vector<double>{7.0, -11.0});
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("a non-leaf output of a multi-use node") {
    Tensor e = x.exp();
    Tensor y2 = (e * e).sum();
    TensorList g2 = autograd::grad({y2}, {e});
    std::vector<double> ev = vec(e);
    CHECK(vec(g2[0]) == std::vector<double>{2 * ev[0], 2 * ev[1]});
  }
}

TEST_CASE("autograd::grad allow_unused") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor u = tensor({5.0}, kFloat64).requires_grad_();  // not used
  Tensor y = (x * x).sum();
  SECTION("false (default): names the input and the option") {
    CHECK_THROWS_AS(autograd::grad({y}, {x, u}), Error);
    Tensor y2 = (x * x).sum();
    CHECK_THROWS_WITH(autograd::grad({y2}, {x, u}),
                      Contains("input 1") && Contains("not used in the graph") && Contains("allow_unused=true"));
  }
  SECTION("true: an undefined gradient for the unused input") {
    TensorList g = autograd::grad({y}, {x, u}, {}, false, false, /*allow_unused=*/true);
    CHECK(vec(g[0]) == std::vector<double>{2, 4});
    CHECK_FALSE(g[1].defined());
    CHECK_FALSE(u.grad().defined());
  }
  SECTION("an input that does not require grad is refused") {
    Tensor c = tensor({1.0}, kFloat64);
    CHECK_THROWS_WITH(autograd::grad({y}, {c}), Contains("input 0") && Contains("does not require grad"));
  }
  SECTION("an empty input list is refused") {
    CHECK_THROWS_WITH(autograd::grad({y}, {}), Contains("at least one input"));
  }
}

TEST_CASE("autograd::grad grad_outputs weight the outputs") {
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
  SECTION("one non-scalar output") {
    Tensor y = x * x;
    TensorList g = autograd::grad({y}, {x}, {tensor({1.0, -1.0, 0.5}, kFloat64)});
    CHECK(vec(g[0]) == std::vector<double>{2, -4, 3});
  }
  SECTION("two outputs, summed") {
    Tensor y1 = x * x;
    Tensor y2 = x.sum() * 3.0;
    TensorList g = autograd::grad({y1, y2}, {x}, {tensor({1.0, 0.0, 2.0}, kFloat64), scalar_tensor(10.0, kFloat64)});
    CHECK(vec(g[0]) == std::vector<double>{32, 30, 42});
  }
  SECTION("grad_outputs of the wrong shape name both shapes") {
    Tensor y = x * x;
    CHECK_THROWS_WITH(autograd::grad({y}, {x}, {ones({2}, kFloat64)}), Contains("(2,)") && Contains("(3,)"));
  }
  SECTION("without retain_graph a second grad raises; with it, it works") {
    Tensor y = (x * x).sum();
    autograd::grad({y}, {x}, {}, /*retain_graph=*/true);
    TensorList g = autograd::grad({y}, {x});
    CHECK(vec(g[0]) == std::vector<double>{2, 4, 6});
    CHECK_THROWS_WITH(autograd::grad({y}, {x}), Contains("backward through the graph a second time"));
  }
}

TEST_CASE("autograd::grad create_graph: gradients of gradients") {
  Tensor x = tensor({0.5, -1.0, 2.0}, kFloat64).requires_grad_();
  std::vector<double> xv = vec(x);
  SECTION("d/dx sum(x^3) = 3x^2, d/dx sum(3x^2) = 6x") {
    Tensor y = (x * x * x).sum();
    TensorList g = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true);
    REQUIRE(g[0].requires_grad());
    REQUIRE(g[0].grad_fn() != nullptr);
    for (size_t i = 0; i < 3; ++i) CHECK(vec(g[0])[i] == Approx(3 * xv[i] * xv[i]));
    TensorList gg = autograd::grad({g[0].sum()}, {x});
    for (size_t i = 0; i < 3; ++i) CHECK(vec(gg[0])[i] == Approx(6 * xv[i]));
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("third derivative of sin: -cos") {
    Tensor y = x.sin().sum();
    Tensor g1 = autograd::grad({y}, {x}, {}, false, true)[0];
    Tensor g2 = autograd::grad({g1.sum()}, {x}, {}, false, true)[0];
    Tensor g3 = autograd::grad({g2.sum()}, {x})[0];
    for (size_t i = 0; i < 3; ++i) {
      CHECK(vec(g1)[i] == Approx(std::cos(xv[i])).epsilon(1e-14));
      CHECK(vec(g2)[i] == Approx(-std::sin(xv[i])).epsilon(1e-14));
      CHECK(vec(g3)[i] == Approx(-std::cos(xv[i])).epsilon(1e-14));
    }
  }
  SECTION("mixed partials: d/dw of (dy/dx . v) with y = sum(exp(x w))") {
    Tensor w = tensor({0.3, 0.2, -0.1}, kFloat64).requires_grad_();
    Tensor v = tensor({1.0, 2.0, 3.0}, kFloat64);
    Tensor y = (x * w).exp().sum();
    Tensor gx = autograd::grad({y}, {x}, {}, false, true)[0];  // w e^{xw}
    Tensor gw = autograd::grad({(gx * v).sum()}, {w})[0];       // v (1 + x w) e^{xw}
    std::vector<double> wv = vec(w);
    for (size_t i = 0; i < 3; ++i)
      CHECK(vec(gw)[i] == Approx((i + 1.0) * (1 + xv[i] * wv[i]) * std::exp(xv[i] * wv[i])).epsilon(1e-14));
  }
  SECTION("backward(create_graph=true) leaves a differentiable .grad()") {
    Tensor y = (x * x * x).sum();
    y.backward(Tensor(), false, /*create_graph=*/true);
    REQUIRE(x.grad().requires_grad());
    Tensor g = x.grad();
    x.set_grad(Tensor());
    g.sum().backward();
    for (size_t i = 0; i < 3; ++i) CHECK(vec(x.grad())[i] == Approx(6 * xv[i]));
  }
  SECTION("a gradient penalty: d/dw ||dy/dx||^2 with y = tanh(x w) summed") {
    Tensor w = scalar_tensor(0.7, kFloat64).requires_grad_();
    Tensor y = (x * w).tanh().sum();
    Tensor gx = autograd::grad({y}, {x}, {}, false, true)[0];  // w (1 - t^2), t = tanh(x w)
    Tensor p = (gx * gx).sum();
    p.backward();
    double wv = 0.7, expect = 0;
    for (size_t i = 0; i < 3; ++i) {
      double t = std::tanh(xv[i] * wv), s = 1 - t * t;
      // p = sum w^2 s^2  =>  dp/dw = sum 2 w s^2 + w^2 2 s (-2 t s x)
      expect += 2 * wv * s * s - 4 * wv * wv * s * s * t * xv[i];
    }
    CHECK(w.grad().item<double>() == Approx(expect).epsilon(1e-13));
  }
}

// ---- gradcheck must be able to fail --------------------------------------------------

namespace {

/// out = x^3 with a hand-written backward dx = factor * 3 g x^2 (factor 1: right, 2: wrong).
/// The backward calls cube_grad, whose own backward is scaled by dd_factor.
Tensor cube_grad(const Tensor& g, const Tensor& x, double dd_factor);

Tensor my_cube(const Tensor& x, double factor, double dd_factor) {
  Tensor out;
  {
    NoGradGuard ng;
    out = x * x * x;
  }
  if (autograd::needs_grad(x)) {
    auto& n = autograd::record("my_cube", {x}, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = x^3  =>  dx = 3 g x^2 (times a deliberate error factor)
      return TensorList{mul(cube_grad(g[0], n.saved(0), n.reals[1]), n.reals[0])};
    });
    n.save(x);
    n.reals = {factor, dd_factor};
  }
  return out;
}

Tensor cube_grad(const Tensor& g, const Tensor& x, double dd_factor) {
  Tensor out;
  {
    NoGradGuard ng;
    out = g * x * x * 3.0;
  }
  if (autograd::needs_grad(g, x)) {
    auto& n = autograd::record("cube_grad", {g, x}, out, [](autograd::OpNode& n, const TensorList& gg) {
      Tensor gv = n.saved(0), xv = n.saved(1);
      // out = 3 g x^2  =>  dg = 3 x^2 gg, dx = 6 g x gg (the latter times a deliberate error factor)
      return TensorList{mul(mul(mul(xv, xv), 3.0), gg[0]), mul(mul(mul(gv, xv), 6.0 * n.reals[0]), gg[0])};
    });
    n.save(g);
    n.save(x);
    n.reals = {dd_factor};
  }
  return out;
}

}  // namespace

TEST_CASE("gradcheck passes for a right backward and fails for a wrong one") {
  Tensor x = tensor({0.5, -1.2, 2.0}, kFloat64).requires_grad_();
  auto right = [](const TensorList& in) { return my_cube(in[0], 1.0, 1.0); };
  auto wrong = [](const TensorList& in) { return my_cube(in[0], 2.0, 1.0); };
  autograd::GradcheckResult ok = gradcheck(right, {x});
  CHECK(ok.ok);
  CHECK(ok.max_abs_err < 1e-6);
  autograd::GradcheckResult bad = gradcheck(wrong, {x});
  CHECK_FALSE(bad.ok);
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK_THAT(bad.message, Contains("Jacobian mismatch") && Contains("analytical") && Contains("numerical"));
  CHECK(bad.max_abs_err > 0.5);
  CHECK_THROWS_WITH(gradcheck(wrong, {x}, 1e-6, 1e-5, 1e-3, /*raise=*/true), Contains("Jacobian mismatch"));
  CHECK_NOTHROW(gradcheck(right, {x}, 1e-6, 1e-5, 1e-3, true));

  SECTION("a wrong gradient for one of two inputs is caught; the constant input is not checked") {
    Tensor w = tensor({1.5, 0.5, -0.5}, kFloat64).requires_grad_();
    Tensor c = tensor({100.0, 100.0, 100.0}, kFloat64);
    CHECK(gradcheck([](const TensorList& in) { return my_cube(in[0], 1.0, 1.0) * in[1] + in[2]; }, {x, w, c}).ok);
    CHECK_FALSE(gradcheck([](const TensorList& in) { return my_cube(in[0], 1.0, 1.0) * my_cube(in[1], 0.5, 1.0); },
                          {x, w}).ok);
  }
  SECTION("gradcheck refuses float32 inputs") {
    Tensor xf = tensor({0.5f}).requires_grad_();
    CHECK_THROWS_WITH(gradcheck(right, {xf}), Contains("float64"));
  }
}

TEST_CASE("gradgradcheck passes for a right double backward and fails for a wrong one") {
  Tensor x = tensor({0.5, -1.2, 2.0}, kFloat64).requires_grad_();
  auto right = [](const TensorList& in) { return my_cube(in[0], 1.0, 1.0); };
  auto wrong_dd = [](const TensorList& in) { return my_cube(in[0], 1.0, 2.0); };
  // the first derivative of wrong_dd is right, so gradcheck cannot tell them apart
  CHECK(gradcheck(wrong_dd, {x}).ok);
  CHECK(gradgradcheck(right, {x}).ok);
  autograd::GradcheckResult bad = gradgradcheck(wrong_dd, {x});
  CHECK_FALSE(bad.ok);
  CHECK_THAT(bad.message, Contains("Jacobian mismatch"));
  CHECK_THROWS_AS(gradgradcheck(wrong_dd, {x}, 1e-6, 1e-5, 1e-3, true), Error);

  SECTION("gradgradcheck of built-in ops on two inputs") {
    Tensor w = tensor({0.3, -0.4, 0.8}, kFloat64).requires_grad_();
    CHECK(gradgradcheck([](const TensorList& in) { return (in[0] * in[1]).tanh() + in[0].exp() * in[1].sigmoid(); },
                        {x, w}).ok);
  }
}

// ---- thread count independence -------------------------------------------------------

TEST_CASE("forward + backward give identical results with 1 and 2 threads") {
  const int saved_threads = get_num_threads();
  auto run = [](int threads) {
    set_num_threads(threads);
    Generator gen(42);
    // large enough that the elementwise kernels (grain 32768) and GEMM split over threads
    Tensor x = randn({256, 384}, kFloat32, gen).requires_grad_();
    Tensor w = (randn({384, 192}, kFloat32, gen) * 0.05).detach().requires_grad_();
    Tensor b = randn({192}, kFloat32, gen).requires_grad_();
    Tensor h = (matmul(x, w) + b).tanh();                    // (256, 192)
    Tensor p = softmax(h, 1);                                 // (256, 192)
    Tensor loss = (p * h).sum() + (x.sigmoid() * x).mean() + logsumexp(h, {0}).sum();
    loss.backward();
    std::vector<std::vector<float>> r{loss.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                      b.grad().to_vector()};
    return r;
  };
  auto one = run(1);
  auto two = run(2);
  set_num_threads(saved_threads);
  REQUIRE(one.size() == two.size());
  for (size_t k = 0; k < one.size(); ++k) {
    INFO("result " << k);
    REQUIRE(one[k].size() == two[k].size());
    size_t mismatches = 0;
    for (size_t i = 0; i < one[k].size(); ++i) mismatches += one[k][i] != two[k][i];
    CHECK(mismatches == 0);
  }
  CHECK(std::isfinite(one[0][0]));
}
