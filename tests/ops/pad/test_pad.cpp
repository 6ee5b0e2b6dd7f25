// Tests of genai::pad (include/genai/ops/pad.hpp) and nn::ReflectionPad2d: the output and
// the input gradient for a stored upstream gradient against torch.nn.functional.pad
// (tests/fixtures/make_cyclegan_fixtures.py -> pad.safetensors) in every mode, in float64
// (1e-12: the op only copies and sums) and float32 (1e-6); finite-difference gradchecks and
// gradgradchecks in float64; errors for bad pads.
#include "test_util.hpp"

#include <genai/nn/conv.hpp>

using namespace genai;

namespace {
const char* kPadFile = "pad.safetensors";
Tensor pfx(const std::string& name, Dtype d) { return genai_test::fixture(kPadFile, name).to(d).clone(); }

struct PadCase {
  const char* name;
  std::vector<int64_t> pad;
  const char* mode;
  double value;
};
const std::vector<PadCase>& pad_cases() {
  static const std::vector<PadCase> c = {
      {"reflect2d", {2, 1, 3, 0}, "reflect", 0.0},     {"reflect2d_max", {2, 2, 2, 2}, "reflect", 0.0},
      {"reflect1d", {5, 2}, "reflect", 0.0},           {"reflect_unbatched", {1, 1, 1, 1}, "reflect", 0.0},
      {"replicate2d", {3, 1, 0, 2}, "replicate", 0.0}, {"circular2d", {4, 1, 2, 3}, "circular", 0.0},
      {"constant2d", {1, 2, 2, 0}, "constant", 1.5},   {"constant_crop", {-1, 2, 1, -2}, "constant", -0.5},
  };
  return c;
}
}  // namespace

TEST_CASE("pad matches torch.nn.functional.pad: output and input gradient", "[ops][pad]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    const double tol = d == kFloat64 ? 1e-12 : 1e-6;
    for (const PadCase& c : pad_cases()) {
      INFO(c.name << " " << dtype_name(d));
      const std::string n = c.name;
      Tensor x = pfx(n + ".x", d).requires_grad_();
      Tensor y = pad(x, c.pad, c.mode, c.value);
      Tensor y_ref = pfx(n + ".y", d);
      REQUIRE(y.shape() == y_ref.shape());
      CHECK_CLOSE(y, y_ref, tol, tol);
      y.backward(pfx(n + ".g", d));
      CHECK_CLOSE(x.grad(), pfx(n + ".dx", d), tol, tol);
    }
  }
}

TEST_CASE("pad gradients pass gradcheck and gradgradcheck in float64", "[ops][pad]") {
  Generator gen(7);
  for (const PadCase& c : pad_cases()) {
    INFO(c.name);
    Tensor x = pfx(std::string(c.name) + ".x", kFloat64).requires_grad_();
    auto fn = [&](const TensorList& in) { return pad(in[0], c.pad, c.mode, c.value); };
    auto r = gradcheck(fn, {x});
    INFO(r.message);
    CHECK(r.ok);
    auto r2 = gradgradcheck(fn, {x});
    INFO(r2.message);
    CHECK(r2.ok);
  }
  // the backward is itself differentiable: the gradient of sum(dx * v) with respect to the upstream gradient
  Tensor x = randn({1, 2, 4, 5}, kFloat64, gen).requires_grad_();
  Tensor g = randn({1, 2, 7, 10}, kFloat64, gen).requires_grad_();
  Tensor y = pad(x, {2, 3, 1, 2}, "reflect");
  Tensor dx = autograd::grad({y}, {x}, {g}, true, true)[0];
  Tensor v = randn(dx.shape(), kFloat64, gen);
  Tensor dg = autograd::grad({sum(mul(dx, v))}, {g})[0];
  // d/dg sum(scatter(g) v) = gather(v) = pad(v) (reflect)
  CHECK_CLOSE(dg, pad(v, {2, 3, 1, 2}, "reflect"), 1e-12, 1e-12);
}

TEST_CASE("nn::ReflectionPad2d and pad edge cases", "[ops][pad]") {
  Tensor x = arange(0, 12, 1, kFloat64).reshape({1, 1, 3, 4});
  nn::ReflectionPad2d p1(1);
  Tensor y = p1.forward(x);
  CHECK(y.shape() == Shape{1, 1, 5, 6});
  CHECK_CLOSE(y, pad(x, {1, 1, 1, 1}, "reflect"), 0, 0);
  // reflect does not repeat the edge: row -1 is row 1, column -1 is column 1
  CHECK(y.data_ptr<double>()[0] == 5.0);
  nn::ReflectionPad2d p2(0, 2, 1, 0);
  CHECK(p2.forward(x).shape() == Shape{1, 1, 4, 6});
  // zero pads are the identity
  CHECK_CLOSE(pad(x, {0, 0, 0, 0}, "reflect"), x, 0, 0);
  // errors name the op and the shapes
  CHECK_THROWS_WITH(pad(x, {4, 0, 0, 0}, "reflect"),
                    Catch::Contains("reflect padding") && Catch::Contains("(1, 1, 3, 4)"));
  CHECK_THROWS_WITH(pad(x, {0, 0, 3, 0}, "reflect"), Catch::Contains("smaller than"));
  CHECK_THROWS_WITH(pad(x, {-1, 0, 0, 0}, "replicate"), Catch::Contains("non-negative"));
  CHECK_THROWS_WITH(pad(x, {1, 1, 1}, "reflect"), Catch::Contains("2 values"));
  CHECK_THROWS_WITH(pad(x, {1, 1}, "wrap"), Catch::Contains("unknown mode"));
  CHECK_THROWS_WITH(pad(x, {-3, -2}, "constant"), Catch::Contains("negative size"));
  CHECK_THROWS_WITH(pad(arange(0, 4, 1, kInt64), {1, 1}, "reflect"), Catch::Contains("floating-point"));
  CHECK_THROWS_WITH(p1.forward(zeros({4}, kFloat64)), Catch::Contains("ReflectionPad2d"));
  // constant padding of an empty plane fills the value
  Tensor e = pad(zeros({2, 0}, kFloat64), {1, 2}, "constant", 3.0);
  CHECK(e.shape() == Shape{2, 3});
  CHECK_CLOSE(e, full({2, 3}, 3.0, kFloat64), 0, 0);
}
