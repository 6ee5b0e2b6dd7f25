// Tests of genai/ops/conv.hpp: conv2d, conv_transpose2d and conv2d_weight_grad
// against PyTorch fixtures (tests/fixtures/make_conv_fixtures.py), a direct-loop
// reference at sizes where the GEMM blocking and the row bands kick in, finite
// differences (first and second order), and the error messages.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_fixture_util.hpp"

using namespace genai;
using conv_test::fx;
using conv_test::has;
using conv_test::leaf;

namespace {

/// Restores the thread count when a test changes it.
struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

struct Conv {
  Size2 stride = 1, padding = 0, dilation = 1;
  int64_t groups = 1;
};

/// Direct-loop conv2d in float64: x (N, C, H, W), w (O, C/G, kh, kw) -> (N, O, Ho, Wo).
std::vector<double> naive_conv2d(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                                 const Shape& ws, const Conv& c, int64_t Ho, int64_t Wo) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], kh = ws[2], kw = ws[3];
  const int64_t Og = O / c.groups;
  std::vector<double> y(static_cast<size_t>(N * O * Ho * Wo), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = 0;
          const int64_t g = o / Og;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * c.stride.h - c.padding.h + i * c.dilation.h;
                const int64_t iw = ow * c.stride.w - c.padding.w + j * c.dilation.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + g * Cg + ci) * H + ih) * W + iw] * w[((o * Cg + ci) * kh + i) * kw + j];
              }
          y[((n * O + o) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

/// Direct-loop weight gradient: dw[o, ci, i, j] = sum x[n, g Cg + ci, ih, iw] dy[n, o, oh, ow].
std::vector<double> naive_weight_grad(const std::vector<double>& x, const Shape& xs, const std::vector<double>& dy,
                                      const Shape& ys, const Shape& ws, const Conv& c) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], kh = ws[2], kw = ws[3];
  const int64_t Ho = ys[2], Wo = ys[3], Og = O / c.groups;
  std::vector<double> dw(static_cast<size_t>(O * Cg * kh * kw), 0.0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t ci = 0; ci < Cg; ++ci)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          double acc = 0;
          const int64_t g = o / Og;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t ih = oh * c.stride.h - c.padding.h + i * c.dilation.h;
                const int64_t iw = ow * c.stride.w - c.padding.w + j * c.dilation.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * C + g * Cg + ci) * H + ih) * W + iw] * dy[((n * O + o) * Ho + oh) * Wo + ow];
              }
          dw[((o * Cg + ci) * kh + i) * kw + j] = acc;
        }
  return dw;
}

double dot(const Tensor& a, const Tensor& b) { return sum(mul(a, b)).item<double>(); }

}  // namespace

// ---- PyTorch fixtures ------------------------------------------------------------------

TEST_CASE("conv2d matches PyTorch: forward, input, weight and bias gradients") {
  const auto names = conv_test::cases("conv2d");
  REQUIRE(names.size() >= 12);
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [sh, sw, ph, pw, dh, dw, groups, has_bias]
      Tensor x = leaf(c, "x", tol.dtype), w = leaf(c, "w", tol.dtype);
      Tensor b = p[7] ? leaf(c, "b", tol.dtype) : Tensor();
      Tensor y = conv2d(x, w, b, {p[0], p[1]}, {p[2], p[3]}, {p[4], p[5]}, p[6]);
      CHECK(y.dtype() == tol.dtype);
      CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
      y.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
      CHECK_CLOSE(w.grad(), fx(c, "gw"), tol.rtol, tol.atol);
      if (p[7]) CHECK_CLOSE(b.grad(), fx(c, "gb"), tol.rtol, tol.atol);
    }
}

TEST_CASE("conv_transpose2d matches PyTorch: forward, input, weight and bias gradients") {
  const auto names = conv_test::cases("conv_transpose2d");
  REQUIRE(names.size() >= 8);
  for (const auto& c : names)
    for (const auto& tol : conv_test::tolerances()) {
      INFO("case " << c << ", dtype " << dtype_name(tol.dtype));
      const auto p = conv_test::params(c);  // [sh, sw, ph, pw, oph, opw, groups, dh, dw, has_bias]
      Tensor x = leaf(c, "x", tol.dtype), w = leaf(c, "w", tol.dtype);
      Tensor b = p[9] ? leaf(c, "b", tol.dtype) : Tensor();
      Tensor y = conv_transpose2d(x, w, b, {p[0], p[1]}, {p[2], p[3]}, {p[4], p[5]}, p[6], {p[7], p[8]});
      CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
      y.backward(fx(c, "gy").to(tol.dtype));
      CHECK_CLOSE(x.grad(), fx(c, "gx"), tol.rtol, tol.atol);
      CHECK_CLOSE(w.grad(), fx(c, "gw"), tol.rtol, tol.atol);
      if (p[9]) CHECK_CLOSE(b.grad(), fx(c, "gb"), tol.rtol, tol.atol);
    }
}

TEST_CASE("conv2d_weight_grad equals PyTorch's weight gradient") {
  for (const auto& c : conv_test::cases("conv2d")) {
    INFO("case " << c);
    const auto p = conv_test::params(c);
    Tensor gw =
        conv2d_weight_grad(fx(c, "x"), fx(c, "gy"), fx(c, "w").shape(), {p[0], p[1]}, {p[2], p[3]}, {p[4], p[5]}, p[6]);
    CHECK_CLOSE(gw, fx(c, "gw"), 1e-10, 1e-10);
  }
}

TEST_CASE("a gradient penalty through conv, pools, bilinear and conv_transpose matches PyTorch (double backward)") {
  const std::string c = "penalty/net";
  for (const auto& tol : conv_test::tolerances()) {
    INFO("dtype " << dtype_name(tol.dtype));
    Tensor x = leaf(c, "x", tol.dtype), w1 = leaf(c, "w1", tol.dtype), b1 = leaf(c, "b1", tol.dtype);
    Tensor w2 = leaf(c, "w2", tol.dtype), b2 = leaf(c, "b2", tol.dtype);
    Tensor h = tanh(conv2d(x, w1, b1, 1, 1));
    h = max_pool2d(h, 2);
    h = avg_pool2d(h, 3, 1, 1, false, /*count_include_pad=*/false);
    h = interpolate(h, std::nullopt, 2.0, "bilinear", false);
    Tensor y = conv_transpose2d(h, w2, b2, 2, 1, 1);
    CHECK_CLOSE(y, fx(c, "y"), tol.rtol, tol.atol);
    Tensor gx = autograd::grad({sum(mul(y, fx(c, "gy").to(tol.dtype)))}, {x}, {}, true, true)[0];
    CHECK_CLOSE(gx, fx(c, "gx"), tol.rtol, tol.atol);
    Tensor penalty = sum(mul(gx, gx));
    CHECK_CLOSE(penalty, fx(c, "penalty"), tol.rtol, tol.atol);
    TensorList d = autograd::grad({penalty}, {x, w1, b1, w2});
    CHECK_CLOSE(d[0], fx(c, "d_x"), tol.rtol, tol.atol);
    CHECK_CLOSE(d[1], fx(c, "d_w1"), tol.rtol, tol.atol);
    CHECK_CLOSE(d[2], fx(c, "d_b1"), tol.rtol, tol.atol);
    CHECK_CLOSE(d[3], fx(c, "d_w2"), tol.rtol, tol.atol);
  }
}

// ---- direct-loop reference at larger sizes, for every thread count ------------------------

TEST_CASE("conv2d, its adjoint and its weight gradient match direct loops at sizes that use GEMM blocking") {
  ThreadGuard tg;
  struct Case {
    Shape xs, ws;
    Conv c;
  };
  const std::vector<Case> cases = {
      {{1, 16, 48, 48}, {8, 16, 3, 3}, {1, 1, 1, 1}},  // two row bands of im2col (buffer budget)
      {{3, 6, 17, 19}, {12, 3, 3, 2}, {{2, 1}, {1, 0}, {1, 2}, 2}},
      {{2, 32, 9, 11}, {40, 32, 1, 1}, {}},           // pointwise: plain GEMM, no im2col
      {{1, 8, 13, 10}, {8, 1, 3, 3}, {1, 1, 1, 8}},   // depthwise
      {{2, 5, 12, 12}, {70, 5, 5, 5}, {2, 2, 2, 1}},  // packed GEMM with M > MC
      // stride 1: the adjoint runs as a forward convolution with flipped weights,
      // padding d (k - 1) - p: here (3, 0), groups, a non-square kernel
      {{2, 6, 15, 13}, {4, 3, 3, 2}, {1, {1, 1}, {2, 1}, 2}},
      {{1, 3, 9, 9}, {5, 3, 3, 3}, {1, 3, 1, 1}},  // padding > d (k - 1): the adjoint falls back to col2im
      // small planes: several images side by side in one GEMM (forward, weight gradient and,
      // with stride 2, the folded col2im adjoint), with groups
      {{6, 4, 7, 7}, {6, 4, 3, 3}, {1, 1, 1, 1}},
      {{5, 6, 8, 9}, {4, 3, 4, 4}, {2, 1, 1, 2}},
      {{7, 3, 5, 5}, {5, 3, 1, 1}, {}},  // pointwise on small planes: folded too
  };
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Generator gen(7);
    for (const auto& k : cases) {
      INFO("threads " << threads << ", x " << shape_str(k.xs) << ", w " << shape_str(k.ws));
      Tensor x = randn(k.xs, kFloat64, gen), w = randn(k.ws, kFloat64, gen);
      Tensor y = conv2d(x, w, Tensor(), k.c.stride, k.c.padding, k.c.dilation, k.c.groups);
      const Shape ys = y.shape();
      Tensor ref = tensor(naive_conv2d(x.to_vector<double>(), k.xs, w.to_vector<double>(), k.ws, k.c, ys[2], ys[3]), ys,
                          kFloat64);
      CHECK_CLOSE(y, ref, 1e-11, 1e-11);
      CHECK_CLOSE(conv2d(x.to(kFloat32), w.to(kFloat32), Tensor(), k.c.stride, k.c.padding, k.c.dilation, k.c.groups),
                  ref, 1e-4, 1e-4);
      // conv_transpose2d is the adjoint: <conv2d(x, w), v> = <x, conv_transpose2d(v, w)>
      Tensor v = randn(ys, kFloat64, gen);
      const int64_t oph =
          k.xs[2] - ((ys[2] - 1) * k.c.stride.h - 2 * k.c.padding.h + k.c.dilation.h * (k.ws[2] - 1) + 1);
      const int64_t opw =
          k.xs[3] - ((ys[3] - 1) * k.c.stride.w - 2 * k.c.padding.w + k.c.dilation.w * (k.ws[3] - 1) + 1);
      Tensor xt = conv_transpose2d(v, w, Tensor(), k.c.stride, k.c.padding, {oph, opw}, k.c.groups, k.c.dilation);
      REQUIRE(xt.shape() == k.xs);
      const double lhs = dot(y, v), rhs = dot(x, xt);
      CHECK(std::abs(lhs - rhs) <= 1e-10 * std::max(1.0, std::abs(lhs)));
      // weight gradient
      Tensor dw = conv2d_weight_grad(x, v, k.ws, k.c.stride, k.c.padding, k.c.dilation, k.c.groups);
      Tensor dw_ref =
          tensor(naive_weight_grad(x.to_vector<double>(), k.xs, v.to_vector<double>(), ys, k.ws, k.c), k.ws, kFloat64);
      CHECK_CLOSE(dw, dw_ref, 1e-10, 1e-10);
      CHECK_CLOSE(
          conv2d_weight_grad(x.to(kFloat32), v.to(kFloat32), k.ws, k.c.stride, k.c.padding, k.c.dilation, k.c.groups),
          dw_ref, 1e-4, 1e-3);
    }
  }
}

TEST_CASE("conv2d accepts unbatched, non-contiguous and empty-batch inputs") {
  manual_seed(3);
  Tensor x = randn({3, 5, 6}, kFloat64), w = randn({4, 3, 3, 3}, kFloat64), b = randn({4}, kFloat64);
  Tensor y3 = conv2d(x, w, b, 1, 1);
  Tensor y4 = conv2d(unsqueeze(x, 0), w, b, 1, 1);
  CHECK(y3.shape() == Shape{4, 5, 6});
  CHECK_CLOSE(y3, squeeze(y4, 0), 0, 0);
  // a transposed (non-contiguous) view gives the same result as its contiguous copy
  Tensor xt = transpose(randn({2, 3, 6, 5}, kFloat64), 2, 3);
  REQUIRE(!xt.is_contiguous());
  CHECK_CLOSE(conv2d(xt, w, b, 2, 1), conv2d(xt.contiguous(), w, b, 2, 1), 0, 0);
  Tensor yt = conv_transpose2d(x, randn({3, 2, 3, 3}, kFloat64), Tensor(), 2, 1, 1);
  CHECK(yt.shape() == Shape{2, 10, 12});
  // empty batch: empty output, zero weight gradient
  Tensor e = zeros({0, 3, 5, 6}, kFloat64);
  Tensor wl = w.detach().clone().requires_grad_();
  Tensor ye = conv2d(e, wl, b, 1, 1);
  CHECK(ye.shape() == Shape{0, 4, 5, 6});
  sum(ye).backward();
  REQUIRE(wl.grad().defined());
  CHECK_CLOSE(wl.grad(), zeros({4, 3, 3, 3}, kFloat64), 0, 0);
}

// ---- finite differences ------------------------------------------------------------------

TEST_CASE("conv2d passes gradcheck and gradgradcheck") {
  manual_seed(11);
  struct Case {
    Shape xs, ws;
    Conv c;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 2, 4, 5}, {3, 2, 3, 3}, {1, 1, 1, 1}, true},
      {{1, 4, 5, 5}, {4, 2, 3, 2}, {{2, 1}, {1, 0}, {1, 2}, 2}, true},
      {{2, 3, 3, 4}, {2, 3, 1, 1}, {}, true},             // pointwise
      {{1, 2, 4, 4}, {2, 1, 3, 3}, {1, 1, 2, 2}, false},  // depthwise, dilated
  };
  for (const auto& k : cases) {
    INFO("x " << shape_str(k.xs) << ", w " << shape_str(k.ws));
    TensorList in{randn(k.xs, kFloat64).requires_grad_(), randn(k.ws, kFloat64).requires_grad_(),
                  k.bias ? randn({k.ws[0]}, kFloat64).requires_grad_() : Tensor()};
    auto f = [&](const TensorList& t) {
      return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), k.c.stride, k.c.padding, k.c.dilation, k.c.groups);
    };
    if (!k.bias) in.pop_back();
    auto r1 = gradcheck(f, in);
    INFO(r1.message);
    CHECK(r1.ok);
    auto r2 = gradgradcheck(f, in);
    INFO(r2.message);
    CHECK(r2.ok);
  }
}

TEST_CASE("conv_transpose2d passes gradcheck and gradgradcheck") {
  manual_seed(12);
  struct Case {
    Shape xs, ws;
    Size2 stride, padding, output_padding;
    int64_t groups;
    Size2 dilation;
  };
  const std::vector<Case> cases = {
      {{2, 2, 3, 3}, {2, 3, 3, 3}, 2, 1, 1, 1, 1},
      {{1, 4, 3, 2}, {4, 1, 3, 3}, 1, 1, 1, 2, 2},  // output_padding >= stride (allowed by dilation)
      {{1, 2, 2, 3}, {2, 2, 2, 3}, {2, 3}, {0, 1}, {1, 2}, 1, 1},
      {{2, 3, 2, 2}, {3, 2, 1, 1}, 1, 0, 0, 1, 1},  // pointwise
  };
  for (const auto& k : cases) {
    INFO("x " << shape_str(k.xs) << ", w " << shape_str(k.ws));
    TensorList in{randn(k.xs, kFloat64).requires_grad_(), randn(k.ws, kFloat64).requires_grad_(),
                  randn({k.ws[1] * k.groups}, kFloat64).requires_grad_()};
    auto f = [&](const TensorList& t) {
      return conv_transpose2d(t[0], t[1], t[2], k.stride, k.padding, k.output_padding, k.groups, k.dilation);
    };
    auto r1 = gradcheck(f, in);
    INFO(r1.message);
    CHECK(r1.ok);
    auto r2 = gradgradcheck(f, in);
    INFO(r2.message);
    CHECK(r2.ok);
  }
}

TEST_CASE("conv2d_weight_grad passes gradcheck and gradgradcheck in both arguments") {
  manual_seed(13);
  Tensor x = randn({2, 4, 5, 4}, kFloat64).requires_grad_();
  Tensor gy =
      randn({2, 2, 3, 5}, kFloat64).requires_grad_();  // conv2d(x, w (2, 2, 3, 2), stride (2, 1), pad 1, groups 2)
  auto f = [](const TensorList& t) { return conv2d_weight_grad(t[0], t[1], {2, 2, 3, 2}, {2, 1}, 1, 1, 2); };
  REQUIRE(conv2d(x.detach(), randn({2, 2, 3, 2}, kFloat64), Tensor(), {2, 1}, 1, 1, 2).shape() == gy.shape());
  auto r1 = gradcheck(f, {x, gy});
  INFO(r1.message);
  CHECK(r1.ok);
  auto r2 = gradgradcheck(f, {x, gy});
  INFO(r2.message);
  CHECK(r2.ok);
}

TEST_CASE("third-order gradients of conv2d are consistent with the second order") {
  // d/dw of <d/dx <conv2d(x, w), v>, u> = conv2d_weight_grad(u, v): check a third backward runs and agrees
  manual_seed(14);
  Tensor x = randn({1, 2, 4, 4}, kFloat64).requires_grad_(), w = randn({3, 2, 3, 3}, kFloat64).requires_grad_();
  Tensor v = randn({1, 3, 4, 4}, kFloat64), u = randn({1, 2, 4, 4}, kFloat64);
  Tensor gx = autograd::grad({sum(mul(conv2d(x, w, Tensor(), 1, 1), v))}, {x}, {}, true, true)[0];
  Tensor gw = autograd::grad({sum(mul(gx, u))}, {w}, {}, true, true)[0];
  CHECK_CLOSE(gw, conv2d_weight_grad(u, v, w.shape(), 1, 1), 1e-12, 1e-12);
}

// ---- errors -----------------------------------------------------------------------------

TEST_CASE("conv errors name the op and the shapes") {
  using Catch::Contains;
  Tensor x = randn({1, 4, 5, 5}, kFloat64);
  // channel mismatch
  CHECK_THROWS_AS(conv2d(x, randn({8, 3, 3, 3}, kFloat64)), Error);
  CHECK_THROWS_WITH(conv2d(x, randn({8, 3, 3, 3}, kFloat64)),
                    Contains("conv2d") && Contains("(1, 4, 5, 5)") && Contains("(8, 3, 3, 3)") && Contains("channels"));
  CHECK_THROWS_WITH(conv_transpose2d(x, randn({3, 2, 3, 3}, kFloat64)),
                    Contains("conv_transpose2d") && Contains("(1, 4, 5, 5)") && Contains("(3, 2, 3, 3)"));
  // groups not dividing the channels
  CHECK_THROWS_WITH(conv2d(x, randn({6, 2, 3, 3}, kFloat64), Tensor(), 1, 0, 1, 3),
                    Contains("conv2d") && Contains("groups=3") && Contains("(1, 4, 5, 5)"));
  CHECK_THROWS_WITH(conv2d(x, randn({3, 2, 3, 3}, kFloat64), Tensor(), 1, 0, 1, 2),
                    Contains("conv2d") && Contains("groups=2") && Contains("(3, 2, 3, 3)"));
  CHECK_THROWS_WITH(conv_transpose2d(x, randn({4, 2, 3, 3}, kFloat64), Tensor(), 1, 0, 0, 3),
                    Contains("conv_transpose2d") && Contains("groups=3") && Contains("(1, 4, 5, 5)"));
  // kernel larger than the padded input
  CHECK_THROWS_WITH(conv2d(randn({1, 1, 2, 2}, kFloat64), randn({1, 1, 5, 5}, kFloat64), Tensor(), 1, 1),
                    Contains("conv2d") && Contains("larger than the padded input") && Contains("(1, 1, 2, 2)") &&
                        Contains("(1, 1, 5, 5)"));
  CHECK_THROWS_WITH(conv2d(randn({1, 1, 5, 5}, kFloat64), randn({1, 1, 3, 3}, kFloat64), Tensor(), 1, 0, 3),
                    Contains("conv2d") && Contains("dilated"));
  // other bad arguments
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3, 3}, kFloat64), randn({3}, kFloat64)),
                    Contains("conv2d") && Contains("bias") && Contains("(3,)"));
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3, 3}, kFloat32)), Contains("conv2d") && Contains("dtype"));
  CHECK_THROWS_WITH(conv2d(randn({4, 5}, kFloat64), randn({2, 4, 3, 3}, kFloat64)),
                    Contains("conv2d") && Contains("(4, 5)"));
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3}, kFloat64)), Contains("conv2d") && Contains("(2, 4, 3)"));
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3, 3}, kFloat64), Tensor(), 0), Contains("conv2d") && Contains("stride"));
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3, 3}, kFloat64), Tensor(), 1, -1), Contains("padding"));
  CHECK_THROWS_WITH(conv2d(x, randn({2, 4, 3, 3}, kFloat64), Tensor(), 1, 0, 1, 0), Contains("groups"));
  CHECK_THROWS_WITH(conv_transpose2d(x, randn({4, 2, 3, 3}, kFloat64), Tensor(), 1, 0, 1),
                    Contains("conv_transpose2d") && Contains("output_padding") && Contains("(1, 4, 5, 5)"));
  CHECK_THROWS_WITH(conv_transpose2d(randn({1, 4, 1, 1}, kFloat64), randn({4, 2, 1, 1}, kFloat64), Tensor(), 1, 1),
                    Contains("conv_transpose2d") && Contains("output size"));
  CHECK_THROWS_WITH(conv2d_weight_grad(x, randn({1, 3, 3, 3}, kFloat64), {2, 4, 3, 3}),
                    Contains("conv2d_weight_grad") && Contains("(1, 3, 3, 3)"));
}
