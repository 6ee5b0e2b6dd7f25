// genai/models/flow/linalg.hpp: inv and slogdet against torch.linalg (values and gradients
// for a stored upstream gradient; float64 to 1e-10, float32 to 1e-4), finite-difference
// gradchecks and gradgradchecks in float64, the P L U factors, random rotations, errors.
#include "flow_test_util.hpp"

using namespace genai;
using genai_test::fixture;

namespace {
const char* kLinalgFile = "flow.safetensors";
}

TEST_CASE("linalg: inv and slogdet match torch.linalg", "[flow][linalg]") {
  for (const char* name : {"a", "neg", "pivot", "one", "big"}) {
    const std::string p = std::string("linalg.") + name + ".";
    INFO("matrix " << name);
    for (Dtype dt : {kFloat64, kFloat32}) {
      const double rtol = dt == kFloat64 ? 1e-10 : 1e-4, atol = dt == kFloat64 ? 1e-10 : 1e-4;
      Tensor a = fixture(kLinalgFile, p + "a").to(dt).clone().requires_grad_();  // a fresh leaf (to() may return the cached fixture)
      Tensor g = fixture(kLinalgFile, p + "g").to(dt);
      Tensor inv = linalg::inv(a);
      CHECK(inv.dtype() == dt);
      CHECK_CLOSE(inv, fixture(kLinalgFile, p + "inv"), rtol, atol);
      sum(mul(inv, g)).backward();
      CHECK_CLOSE(a.grad(), fixture(kLinalgFile, p + "inv_grad"), rtol, atol);
      a.set_grad(Tensor());
      linalg::SlogdetResult r = linalg::slogdet(a);
      CHECK(r.sign.item<double>() == fixture(kLinalgFile, p + "sign").item<double>());
      CHECK_FALSE(r.sign.requires_grad());
      CHECK_CLOSE(r.logabsdet, fixture(kLinalgFile, p + "logabsdet"), rtol, atol);
      mul(r.logabsdet, 1.7).backward();
      CHECK_CLOSE(a.grad(), fixture(kLinalgFile, p + "logabsdet_grad"), rtol, atol);
    }
  }
}

TEST_CASE("linalg: gradcheck and gradgradcheck", "[flow][linalg]") {
  Generator gen(3);
  Tensor a = add(randn({4, 4}, kFloat64, gen), mul(eye(4, -1, kFloat64), 2.0)).requires_grad_();
  Tensor w = randn({4, 4}, kFloat64, gen);
  auto f_inv = [&](const TensorList& in) { return sum(mul(linalg::inv(in[0]), w)); };
  auto f_logdet = [&](const TensorList& in) { return linalg::slogdet(in[0]).logabsdet; };
  auto r1 = gradcheck(f_inv, {a}, 1e-6, 1e-7, 1e-5);
  INFO(r1.message);
  CHECK(r1.ok);
  auto r2 = gradcheck(f_logdet, {a}, 1e-6, 1e-7, 1e-5);
  INFO(r2.message);
  CHECK(r2.ok);
  auto r3 = gradgradcheck(f_logdet, {a}, 1e-6, 1e-6, 1e-4);
  INFO(r3.message);
  CHECK(r3.ok);
  auto r4 = gradgradcheck([&](const TensorList& in) { return linalg::inv(in[0]); }, {a}, 1e-6, 1e-6, 1e-4);
  INFO(r4.message);
  CHECK(r4.ok);
  // a matrix that needs pivoting and has a negative determinant
  Tensor p = tensor({0.0, 1.0, 2.0, 1.0, 0.0, 3.0, 4.0, 5.0, 6.0}, {3, 3}, kFloat64).requires_grad_();
  auto r5 = gradcheck(f_logdet, {p}, 1e-6, 1e-7, 1e-5);
  INFO(r5.message);
  CHECK(r5.ok);
  CHECK(linalg::slogdet(p).sign.item<double>() == 1.0);  // det = -(6 - 12) + 2 (5 - 0) = 16, after two row swaps
  CHECK(std::abs(linalg::slogdet(p).logabsdet.item<double>() - std::log(16.0)) < 1e-14);
}

TEST_CASE("linalg: singular matrices, P L U, random rotations, errors", "[flow][linalg]") {
  Tensor s = tensor({1.0, 2.0, 2.0, 4.0}, {2, 2}, kFloat64);
  linalg::SlogdetResult r = linalg::slogdet(s);
  CHECK(r.sign.item<double>() == 0.0);
  CHECK(std::isinf(r.logabsdet.item<double>()));
  CHECK(r.logabsdet.item<double>() < 0);
  CHECK_THROWS_WITH(linalg::inv(s), Catch::Contains("linalg::inv: the matrix of shape (2, 2) is singular"));
  CHECK_THROWS_WITH(linalg::inv(zeros({2, 3})), Catch::Contains("expected a square matrix (n, n), got shape (2, 3)"));
  CHECK_THROWS_WITH(linalg::slogdet(zeros({2, 2, 2})), Catch::Contains("linalg::slogdet: expected a square matrix"));
  CHECK_THROWS_WITH(linalg::slogdet(zeros({2, 2}, kInt64)), Catch::Contains("float32 or float64"));

  Generator gen(5);
  Tensor a = randn({5, 5}, kFloat64, gen);
  linalg::PLU f = linalg::lu(a);
  CHECK_CLOSE(mm(f.P, mm(f.L, f.U)), a, 0.0, 1e-12);
  CHECK_CLOSE(f.L, add(tril(f.L, -1), eye(5, -1, kFloat64)), 0.0, 0.0);  // unit lower triangular
  CHECK_CLOSE(f.U, triu(f.U), 0.0, 0.0);
  CHECK(amax(abs(tril(f.L, -1)), {0, 1}).item<double>() <= 1.0);        // partial pivoting: |L| <= 1
  Tensor q = linalg::random_orthogonal(7, kFloat64, gen);
  CHECK_CLOSE(mm(q, q.t()), eye(7, -1, kFloat64), 0.0, 1e-12);
  CHECK(std::abs(linalg::slogdet(q).logabsdet.item<double>()) < 1e-12);
  // inverse of a product, determinant of a product (float32 computed in double)
  Tensor b = randn({5, 5}, kFloat64, gen);
  CHECK_CLOSE(linalg::inv(mm(a, b)), mm(linalg::inv(b), linalg::inv(a)), 1e-9, 1e-9);
  CHECK(std::abs(linalg::slogdet(mm(a, b)).logabsdet.item<double>() - linalg::slogdet(a).logabsdet.item<double>() -
                 linalg::slogdet(b).logabsdet.item<double>()) < 1e-10);
}
