// Tests of genai/ops/pool.hpp: max/avg/adaptive pooling, interpolate and pixel
// (un)shuffle against PyTorch fixtures (tests/fixtures/make_conv_fixtures.py),
// finite differences (first and second order), and the error messages.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "conv_fixture_util.hpp"

using namespace genai;
using conv_test::fx;
using conv_test::leaf;

namespace {

/// Values in [-2, 2] spaced at least 1e-3 apart (shuffled): max pooling has no ties,
/// so finite differences of size 1e-6 never cross a kink.
Tensor distinct(const Shape& s) {
  const int64_t n = shape_numel(s);
  Tensor perm = randperm(n);
  std::vector<int64_t> p = perm.to_vector<int64_t>();
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = -2.0 + 4.0 * static_cast<double>(p[i]) / std::max<int64_t>(n - 1, 1);
  return tensor(v, s, kFloat64);
}

void check_grads(const autograd::GradcheckFn& f, const TensorList& in, bool second_order) {
  auto r1 = gradcheck(f, in);
  INFO(r1.message);
  CHECK(r1.ok);
  if (second_order) {
    auto r2 = gradgradcheck(f, in);
    INFO(r2.message);
    CHECK(r2.ok);
  }
}

}  // namespace

// ---- PyTorch fixtures --------------------------------------------------------------------

TEST_CASE("max_pool2d matches PyTorch: values, indices and input gradient") {
  const auto names = conv_test::cases("max_pool2d");
  REQUIRE(names.size() >= 7);
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode]
      const Size2 k{p[0], p[1]};
      // a stride equal to the kernel is passed as the default (std::nullopt)
      const std::optional<Size2> s =
          (p[2] == p[0] && p[3] == p[1]) ? std::nullopt : std::optional<Size2>(Size2{p[2], p[3]});
      Tensor x = leaf(c, "x", tol.dtype);
      ValuesIndices r = max_pool2d_with_indices(x, k, s, {p[4], p[5]}, {p[6], p[7]}, p[8] != 0);
      CHECK_CLOSE(r.values, fx(c, "y"), tol.rtol, tol.atol);
      CHECK(r.indices.dtype() == kInt64);
      CHECK(r.indices.shape() == fx(c, "idx").shape());
      CHECK(r.indices.to_vector<int64_t>() == fx(c, "idx").to_vector<int64_t>());
      CHECK_CLOSE(max_pool2d(x.detach(), k, s, {p[4], p[5]}, {p[6], p[7]}, p[8] != 0), fx(c, "y"), tol.rtol, tol.atol);
      r.values.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
    }
}

TEST_CASE("avg_pool2d matches PyTorch, with ceil_mode, count_include_pad and divisor_override") {
  const auto names = conv_test::cases("avg_pool2d");
  REQUIRE(names.size() >= 8);
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad, divisor or 0]
      const std::optional<int64_t> dov = p[8] ? std::optional<int64_t>(p[8]) : std::nullopt;
      Tensor x = leaf(c, "x", tol.dtype);
      Tensor y = avg_pool2d(x, {p[0], p[1]}, Size2{p[2], p[3]}, {p[4], p[5]}, p[6] != 0, p[7] != 0, dov);
      CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
      y.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
    }
}

TEST_CASE("adaptive_avg_pool2d matches PyTorch") {
  const auto names = conv_test::cases("adaptive_avg_pool2d");
  REQUIRE(names.size() >= 4);
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [oh, ow]
      Tensor x = leaf(c, "x", tol.dtype);
      Tensor y = adaptive_avg_pool2d(x, {p[0], p[1]});
      CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
      y.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
    }
}

TEST_CASE("interpolate matches PyTorch: nearest, nearest-exact, bilinear (both align_corners), area") {
  const auto names = conv_test::cases("interpolate");
  REQUIRE(names.size() >= 15);
  const char* modes[] = {"nearest", "nearest-exact", "bilinear", "area"};
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [mode, has_size, oh, ow, align_corners (-1 unset), recompute]
      const auto sc = fx(c, "scale").to_vector<double>();
      std::optional<Size2> size;
      std::optional<Scale2> scale;
      if (p[1])
        size = Size2{p[2], p[3]};
      else
        scale = Scale2{sc[0], sc[1]};
      const std::optional<bool> ac = p[4] < 0 ? std::nullopt : std::optional<bool>(p[4] != 0);
      const std::optional<bool> rc = p[5] ? std::optional<bool>(true) : std::nullopt;
      Tensor x = leaf(c, "x", tol.dtype);
      Tensor y = interpolate(x, size, scale, modes[p[0]], ac, rc);
      CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
      y.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
    }
}

TEST_CASE("pixel_shuffle and pixel_unshuffle match PyTorch") {
  for (const std::string op : {"pixel_shuffle", "pixel_unshuffle"}) {
    const auto names = conv_test::cases(op);
    REQUIRE(names.size() >= 2);
    for (const auto& c : names)
      for (const auto& tol : conv_test::tolerances()) {
        INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
        const int64_t r = conv_test::params(c)[0];
        Tensor x = leaf(c, "x", tol.dtype);
        Tensor y = op == "pixel_shuffle" ? pixel_shuffle(x, r) : pixel_unshuffle(x, r);
        CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
        y.backward(fx(c, "gy").to(tol.dtype));
        CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
      }
  }
}

// ---- semantics not covered by the fixtures -------------------------------------------------

TEST_CASE("pooling accepts unbatched (C, H, W) inputs") {
  manual_seed(21);
  Tensor x = randn({2, 5, 6}, kFloat64), xb = unsqueeze(x, 0);
  CHECK_CLOSE(max_pool2d(x, 2), squeeze(max_pool2d(xb, 2), 0), 0, 0);
  CHECK(max_pool2d_with_indices(x, 3, 2, 1).indices.shape() == Shape{2, 3, 3});
  CHECK_CLOSE(avg_pool2d(x, 3, 2, 1, true), squeeze(avg_pool2d(xb, 3, 2, 1, true), 0), 0, 0);
  CHECK_CLOSE(adaptive_avg_pool2d(x, {2, 3}), squeeze(adaptive_avg_pool2d(xb, {2, 3}), 0), 0, 0);
  CHECK(pixel_shuffle(randn({8, 2, 3}, kFloat64), 2).shape() == Shape{2, 4, 6});
}

TEST_CASE("max_pool2d propagates NaN like PyTorch, and pools to -inf-padded windows") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = tensor({1.0, nan, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0}, {1, 1, 2, 4}, kFloat64);
  std::vector<double> y = max_pool2d(x, 2).to_vector<double>();
  REQUIRE(y.size() == 2);
  CHECK(std::isnan(y[0]));  // the window holding the NaN
  CHECK(y[1] == 4.0);
  // padding is -inf, never 0: an all-negative input keeps its negative maxima
  Tensor neg = tensor({-5.0, -6.0, -7.0, -8.0}, {1, 1, 2, 2}, kFloat64);
  CHECK_CLOSE(max_pool2d(neg, 2, 1, 1),
              tensor({-5.0, -5.0, -6.0, -5.0, -5.0, -6.0, -7.0, -7.0, -8.0}, {1, 1, 3, 3}, kFloat64), 0, 0);
}

// ---- finite differences ------------------------------------------------------------------

TEST_CASE("max_pool2d passes gradcheck and gradgradcheck") {
  manual_seed(31);
  check_grads([](const TensorList& t) { return max_pool2d(t[0], 2); }, {distinct({2, 2, 4, 4}).requires_grad_()}, true);
  check_grads(
      [](const TensorList& t) {
        return max_pool2d(t[0], {3, 2}, Size2{2, 1}, {1, 0}, {1, 2}, true);
      },
      {distinct({1, 2, 5, 6}).requires_grad_()}, true);
}

TEST_CASE("avg_pool2d passes gradcheck and gradgradcheck") {
  manual_seed(32);
  Tensor x = randn({1, 2, 5, 6}, kFloat64).requires_grad_();
  check_grads([](const TensorList& t) { return avg_pool2d(t[0], 2); }, {x}, true);
  check_grads([](const TensorList& t) { return avg_pool2d(t[0], 3, 2, 1, true, false); }, {x}, true);
  check_grads(
      [](const TensorList& t) {
        return avg_pool2d(t[0], {3, 2}, Size2{1, 2}, {1, 1}, false, true, 5);
      },
      {x}, true);
}

TEST_CASE("adaptive_avg_pool2d passes gradcheck and gradgradcheck") {
  manual_seed(33);
  check_grads(
      [](const TensorList& t) {
        return adaptive_avg_pool2d(t[0], {3, 4});
      },
      {randn({2, 1, 5, 3}, kFloat64).requires_grad_()}, true);
}

TEST_CASE("interpolate passes gradcheck (all modes) and gradgradcheck (bilinear, nearest)") {
  manual_seed(34);
  Tensor x = randn({1, 2, 3, 4}, kFloat64).requires_grad_();
  check_grads(
      [](const TensorList& t) {
        return interpolate(t[0], std::nullopt, Scale2{2.0, 1.5}, "bilinear", false);
      },
      {x}, true);
  check_grads(
      [](const TensorList& t) {
        return interpolate(t[0], Size2{5, 7}, std::nullopt, "bilinear", true);
      },
      {x}, true);
  check_grads([](const TensorList& t) { return interpolate(t[0], Size2{2, 3}, std::nullopt, "bilinear"); }, {x}, true);
  check_grads([](const TensorList& t) { return interpolate(t[0], std::nullopt, 2.0); }, {x}, true);
  check_grads(
      [](const TensorList& t) {
        return interpolate(t[0], Size2{5, 3}, std::nullopt, "nearest-exact");
      },
      {x}, false);
  check_grads([](const TensorList& t) { return interpolate(t[0], Size2{2, 3}, std::nullopt, "area"); }, {x}, false);
}

TEST_CASE("pixel_shuffle and pixel_unshuffle pass gradcheck and invert each other") {
  manual_seed(35);
  Tensor x = randn({1, 8, 2, 3}, kFloat64).requires_grad_();
  check_grads([](const TensorList& t) { return pixel_shuffle(t[0], 2); }, {x}, false);
  check_grads([](const TensorList& t) { return pixel_unshuffle(t[0], 2); },
              {randn({1, 2, 4, 6}, kFloat64).requires_grad_()}, false);
  CHECK_CLOSE(pixel_unshuffle(pixel_shuffle(x, 2), 2), x, 0, 0);
}

// ---- errors -----------------------------------------------------------------------------

TEST_CASE("pool and resampling errors name the op and the shapes") {
  using Catch::Contains;
  Tensor x = randn({1, 2, 5, 5}, kFloat64);
  CHECK_THROWS_AS(max_pool2d(x, 2, std::nullopt, 2), Error);
  CHECK_THROWS_WITH(max_pool2d(x, 2, std::nullopt, 2),
                    Contains("max_pool2d") && Contains("padding") && Contains("(1, 2, 5, 5)"));
  CHECK_THROWS_WITH(max_pool2d(randn({1, 1, 2, 2}, kFloat64), 3),
                    Contains("max_pool2d") && Contains("(1, 1, 2, 2)") && Contains("empty output"));
  CHECK_THROWS_WITH(max_pool2d(randn({5, 5}, kFloat64), 2), Contains("max_pool2d") && Contains("(5, 5)"));
  CHECK_THROWS_WITH(max_pool2d(x, 0), Contains("max_pool2d") && Contains("kernel_size"));
  CHECK_THROWS_WITH(avg_pool2d(x, 3, 1, 2), Contains("avg_pool2d") && Contains("padding") && Contains("(1, 2, 5, 5)"));
  CHECK_THROWS_WITH(avg_pool2d(randn({1, 1, 2, 2}, kFloat64), {3, 1}),
                    Contains("avg_pool2d") && Contains("(1, 1, 2, 2)"));
  CHECK_THROWS_WITH(avg_pool2d(x, 2, std::nullopt, 0, false, true, 0), Contains("avg_pool2d") && Contains("divisor"));
  CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {0, 2}), Contains("adaptive_avg_pool2d") && Contains("(1, 2, 5, 5)"));
  CHECK_THROWS_WITH(interpolate(x, Size2{3, 3}, 2.0), Contains("interpolate") && Contains("exactly one"));
  CHECK_THROWS_WITH(interpolate(x), Contains("interpolate") && Contains("exactly one"));
  CHECK_THROWS_WITH(interpolate(x, Size2{3, 3}, std::nullopt, "nearest", true),
                    Contains("interpolate") && Contains("align_corners"));
  CHECK_THROWS_WITH(interpolate(x, Size2{3, 3}, std::nullopt, "bicubic"),
                    Contains("interpolate") && Contains("bicubic"));
  CHECK_THROWS_WITH(interpolate(randn({2, 5, 5}, kFloat64), Size2{3, 3}),
                    Contains("interpolate") && Contains("(2, 5, 5)"));
  CHECK_THROWS_WITH(interpolate(x, std::nullopt, 0.1), Contains("interpolate") && Contains("empty"));
  CHECK_THROWS_WITH(pixel_shuffle(randn({1, 6, 2, 2}, kFloat64), 2),
                    Contains("pixel_shuffle") && Contains("(1, 6, 2, 2)"));
  CHECK_THROWS_WITH(pixel_unshuffle(randn({1, 1, 3, 4}, kFloat64), 2),
                    Contains("pixel_unshuffle") && Contains("(1, 1, 3, 4)"));
}
