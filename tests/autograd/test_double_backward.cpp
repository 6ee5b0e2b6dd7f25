// Double (and triple) backward against PyTorch: tests/fixtures/autograd.safetensors,
// written by tests/fixtures/make_autograd_fixtures.py (PyTorch 1.13, float64).
//
//   WGAN-GP gradient penalty: penalty value, dD/dxhat, and the parameter
//     gradients of the penalty alone and of the full critic loss.
//   R1 penalty with tanh, softplus and sigmoid.
//   Gradient, Hessian and third-derivative tensor of a scalar function mixing
//     exp, log, pow (scalar and tensor exponents), softmax, logsumexp and matmul.
// Each is run in float64 (rtol 1e-9) and in float32 (rtol 1e-4) against the
// float64 references, plus a float64 gradgradcheck of the same functions.
#include <string>

#include "test_util.hpp"

using namespace genai;

namespace {

const char* kFile = "autograd.safetensors";

struct Precision {
  Dtype dtype;
  double rtol, atol;
};

/// A fresh copy of a fixture tensor in dtype dt (never the cached one).
Tensor fx(const std::string& name, Dtype dt) { return genai_test::fixture(kFile, name).to(dt).clone(); }
Tensor param(const std::string& name, Dtype dt) { return fx(name, dt).requires_grad_(); }
Tensor expected(const std::string& name) { return genai_test::fixture(kFile, name); }

/// .grad() of t, or zeros when no gradient reached it. PyTorch returns explicit
/// zeros for parameters that only reach the loss through a piecewise-constant
/// mask (leaky_relu's double backward); genai leaves them undefined.
Tensor grad_or_zeros(const Tensor& t) { return t.grad().defined() ? t.grad() : zeros_like(t); }

Tensor critic_gp(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2) {
  return matmul(leaky_relu(matmul(x, w1) + b1, 0.2), w2);  // (N, 1)
}

/// WGAN-GP: ((||dD/dxhat||_2 - 1)^2).mean() at xhat = eps x_real + (1 - eps) x_fake; also returns g.
std::pair<Tensor, Tensor> gradient_penalty(const Tensor& w1, const Tensor& b1, const Tensor& w2, Dtype dt) {
  Tensor eps = fx("gp_eps", dt);  // (N, 1)
  Tensor xhat = (eps * fx("gp_x_real", dt) + (1.0 - eps) * fx("gp_x_fake", dt)).requires_grad_();
  Tensor d = critic_gp(xhat, w1, b1, w2);
  Tensor g = autograd::grad({d.sum()}, {xhat}, {}, false, /*create_graph=*/true)[0];  // (N, D)
  Tensor norm = (g * g).sum({1}).sqrt();                                               // (N)
  return {(norm - 1.0).pow(2.0).mean(), g};
}

Tensor critic_r1(const Tensor& x, const TensorList& p) {
  // p = W1, b1, W2, b2, V
  return softplus(matmul(tanh(matmul(x, p[0]) + p[1]), p[2]) + p[3]) + sigmoid(matmul(x, p[4]));  // (N, 1)
}

Tensor hx_f(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& c) {
  Tensor s = softmax(matmul(a, x), 0);        // (3)
  Tensor p = matmul(pow(x, 3.0), b);          // (3)
  Tensor l = log(x.pow(2.0) + 1.0);           // (4)
  Tensor q = pow(exp(-x) + 1.0, x);           // (4), tensor exponent
  return (s * exp(p * 0.1)).sum() + logsumexp(p + c, {0}) + (l * x.exp()).sum() * 0.5 + q.sum();
}

}  // namespace

TEST_CASE("double backward: WGAN-GP gradient penalty matches PyTorch") {
  for (Precision pr : {Precision{kFloat64, 1e-9, 1e-12}, Precision{kFloat32, 1e-4, 1e-5}}) {
    INFO("dtype " << dtype_name(pr.dtype));
    SECTION(std::string("penalty alone, ") + dtype_name(pr.dtype)) {
      Tensor w1 = param("gp_W1", pr.dtype), b1 = param("gp_b1", pr.dtype), w2 = param("gp_W2", pr.dtype);
      auto [penalty, g] = gradient_penalty(w1, b1, w2, pr.dtype);
      CHECK(g.requires_grad());
      CHECK_CLOSE(g.detach(), expected("gp_g"), pr.rtol, pr.atol);
      CHECK_CLOSE(penalty.detach(), expected("gp_penalty"), pr.rtol, pr.atol);
      penalty.backward();
      REQUIRE(w1.grad().defined());
      REQUIRE(w2.grad().defined());
      CHECK(w1.grad().dtype() == pr.dtype);
      CHECK_CLOSE(w1.grad(), expected("gp_W1_grad"), pr.rtol, pr.atol);
      CHECK_CLOSE(grad_or_zeros(b1), expected("gp_b1_grad"), pr.rtol, pr.atol);  // zero: b1 only moves the kinks
      CHECK_CLOSE(w2.grad(), expected("gp_W2_grad"), pr.rtol, pr.atol);
    }
    SECTION(std::string("full critic loss, ") + dtype_name(pr.dtype)) {
      Tensor w1 = param("gp_W1", pr.dtype), b1 = param("gp_b1", pr.dtype), w2 = param("gp_W2", pr.dtype);
      Tensor penalty = gradient_penalty(w1, b1, w2, pr.dtype).first;
      Tensor loss = critic_gp(fx("gp_x_fake", pr.dtype), w1, b1, w2).mean() -
                    critic_gp(fx("gp_x_real", pr.dtype), w1, b1, w2).mean() + penalty * 10.0;
      loss.backward();
      CHECK_CLOSE(loss.detach(), expected("gp_loss"), pr.rtol, pr.atol);
      CHECK_CLOSE(w1.grad(), expected("gp_loss_W1_grad"), pr.rtol, pr.atol);
      CHECK_CLOSE(b1.grad(), expected("gp_loss_b1_grad"), pr.rtol, pr.atol);
      CHECK_CLOSE(w2.grad(), expected("gp_loss_W2_grad"), pr.rtol, pr.atol);
    }
  }
}

TEST_CASE("double backward: R1 penalty with tanh, softplus and sigmoid matches PyTorch") {
  const std::vector<std::string> names{"W1", "b1", "W2", "b2", "V"};
  for (Precision pr : {Precision{kFloat64, 1e-9, 1e-12}, Precision{kFloat32, 1e-4, 1e-5}}) {
    INFO("dtype " << dtype_name(pr.dtype));
    TensorList p;
    for (const auto& n : names) p.push_back(param("r1_" + n, pr.dtype));
    Tensor x = param("r1_x", pr.dtype);
    Tensor d = critic_r1(x, p);
    Tensor g = autograd::grad({d.sum()}, {x}, {}, false, true)[0];  // (N, D)
    Tensor r1 = (g * g).sum({1}).mean();
    Tensor loss = softplus(-d).mean() + r1 * 5.0;  // gamma / 2 = 5
    loss.backward();
    CHECK_CLOSE(g.detach(), expected("r1_g"), pr.rtol, pr.atol);
    CHECK_CLOSE(r1.detach(), expected("r1_penalty"), pr.rtol, pr.atol);
    CHECK_CLOSE(loss.detach(), expected("r1_loss"), pr.rtol, pr.atol);
    CHECK_CLOSE(x.grad(), expected("r1_x_grad"), pr.rtol, pr.atol);
    for (size_t i = 0; i < names.size(); ++i) {
      INFO("parameter " << names[i]);
      REQUIRE(p[i].grad().defined());
      CHECK_CLOSE(p[i].grad(), expected("r1_" + names[i] + "_grad"), pr.rtol, pr.atol);
    }
  }
}

TEST_CASE("second and third derivatives of exp/log/pow/softmax/logsumexp/matmul match PyTorch") {
  for (Precision pr : {Precision{kFloat64, 1e-9, 1e-12}, Precision{kFloat32, 1e-4, 1e-4}}) {
    INFO("dtype " << dtype_name(pr.dtype));
    Tensor x = param("hx_x", pr.dtype);
    Tensor a = fx("hx_A", pr.dtype), b = fx("hx_B", pr.dtype), c = fx("hx_c", pr.dtype);
    const int64_t n = x.numel();
    Tensor y = hx_f(x, a, b, c);
    CHECK_CLOSE(y.detach(), expected("hx_f"), pr.rtol, pr.atol);
    Tensor g1 = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true)[0];
    CHECK_CLOSE(g1.detach(), expected("hx_grad"), pr.rtol, pr.atol);
    Tensor eye_n = eye(n, -1, pr.dtype);
    TensorList hess_rows, third_rows;
    for (int64_t i = 0; i < n; ++i) {
      // row i of the Hessian: grad of g1 weighted by the one-hot e_i
      Tensor hi = autograd::grad({g1}, {x}, {eye_n[i]}, /*retain_graph=*/true, /*create_graph=*/true)[0];
      hess_rows.push_back(hi.detach());
      TensorList ti;
      for (int64_t j = 0; j < n; ++j) ti.push_back(autograd::grad({hi}, {x}, {eye_n[j]}, /*retain_graph=*/true)[0]);
      third_rows.push_back(stack(ti, 0));
    }
    CHECK_CLOSE(stack(hess_rows, 0), expected("hx_hess"), pr.rtol, pr.atol);
    CHECK_CLOSE(stack(third_rows, 0), expected("hx_third"), pr.rtol, pr.atol);
    CHECK_FALSE(x.grad().defined());  // grad() never accumulates
  }
}

TEST_CASE("the fixture functions pass gradgradcheck in float64") {
  SECTION("gradient penalty critic (away from the leaky_relu kinks)") {
    Tensor xhat = fx("gp_x_real", kFloat64).requires_grad_();
    TensorList in{xhat, param("gp_W1", kFloat64), param("gp_b1", kFloat64), param("gp_W2", kFloat64)};
    auto f = [](const TensorList& t) { return critic_gp(t[0], t[1], t[2], t[3]); };
    CHECK(gradcheck(f, in).ok);
    CHECK(gradgradcheck(f, in).ok);
  }
  SECTION("R1 critic") {
    TensorList in{fx("r1_x", kFloat64).requires_grad_()};
    for (const char* n : {"r1_W1", "r1_b1", "r1_W2", "r1_b2", "r1_V"}) in.push_back(param(n, kFloat64));
    auto f = [](const TensorList& t) { return critic_r1(t[0], TensorList(t.begin() + 1, t.end())); };
    CHECK(gradgradcheck(f, in).ok);
  }
  SECTION("scalar function of section (c)") {
    Tensor a = fx("hx_A", kFloat64), b = fx("hx_B", kFloat64), c = fx("hx_c", kFloat64);
    auto f = [&](const TensorList& t) { return hx_f(t[0], a, b, c); };
    CHECK(gradgradcheck(f, {param("hx_x", kFloat64)}).ok);
  }
}
