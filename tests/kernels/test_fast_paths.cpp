// The float32 fast paths of the ops against their reference paths: each op is
// run in float32 (the fast kernel) and in float64 (the reference loops), or as
// the fused op and as its composite of primitive ops, and compared: softmax and
// log_softmax (kernels/rowwise.hpp), layer_norm / rms_norm / group_norm
// statistics and affine (the single-segment path), and linear (one recorded op)
// against matmul + add, including its gradients and their layout.
#include "test_util.hpp"

#include <genai/genai.hpp>

using namespace genai;

namespace {
/// Restores the thread count when a test ends.
struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};
}  // namespace

TEST_CASE("float32 softmax and log_softmax (row kernels) match the float64 path", "[kernels][fast]") {
  ThreadsGuard tg;
  Generator g(5);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t n : {1, 3, 8, 15, 16, 17, 33, 100, 1024, 1029}) {
      INFO("threads " << threads << ", row length " << n);
      Tensor x64 = mul(randn({7, n}, kFloat64, g), 4.0);
      // masked entries (-inf) in some rows, a fully masked row, and large magnitudes
      Tensor mask = lt(rand({7, n}, kFloat64, g), 0.3);
      x64 = where(mask, full({}, -INFINITY, kFloat64), x64);
      x64.select(0, 2).fill_(-INFINITY);
      x64.select(0, 3).add_(1000.0);
      // the float64 reference sees the float32-rounded input (rounding x + 1000 to float32
      // alone moves softmax by ~6e-5 relative: that is the input's error, not the kernel's)
      Tensor x32 = x64.to(kFloat32);
      x64 = x32.to(kFloat64);
      CHECK_CLOSE(softmax(x32, -1), softmax(x64, -1), 1e-5, 1e-7);
      Tensor ls32 = log_softmax(x32, -1), ls64 = log_softmax(x64, -1);
      CHECK_CLOSE(ls32, ls64, 1e-5, 1e-5);
      // softmax over a middle dim (moved last, same kernels)
      Tensor y64 = randn({3, n, 4}, kFloat64, g).to(kFloat32).to(kFloat64);
      CHECK_CLOSE(softmax(y64.to(kFloat32), 1), softmax(y64, 1), 1e-5, 1e-7);
      // the fused backward
      Tensor a = y64.to(kFloat32).requires_grad_(), b = y64.clone().requires_grad_();
      Tensor gy = randn({3, n, 4}, kFloat64, g);
      softmax(a, 1).backward(gy.to(kFloat32));
      softmax(b, 1).backward(gy);
      CHECK_CLOSE(a.grad(), b.grad(), 1e-4, 1e-6);
    }
  }
  // NaN propagates, and a row of -inf only gives NaN, as in torch; masked entries are exact zeros
  Tensor xn = tensor({1.0f, NAN, 2.0f, 3.0f});
  CHECK(std::isnan(softmax(xn, 0).to_vector()[0]));
  for (Dtype dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    Tensor all_masked = full({20}, -INFINITY, dt);
    CHECK(std::isnan(softmax(all_masked, 0).to_vector<double>()[7]));
    CHECK(std::isnan(log_softmax(all_masked, 0).to_vector<double>()[7]));
    Tensor some = tensor({-INFINITY, 0.0, 1.0, -INFINITY, 2.0, 3.0, 4.0, 5.0, 6.0, -INFINITY}, {10}, dt);
    std::vector<double> p = softmax(some, 0).to_vector<double>();
    CHECK(p[0] == 0.0);
    CHECK(p[3] == 0.0);
    CHECK(p[9] == 0.0);
  }
}

TEST_CASE("float32 exp: exact zeros for -inf, denormals as std::exp, NaN and inf kept", "[kernels][fast]") {
  std::vector<float> v = {-INFINITY, -200.f, -100.f, -95.f, -88.f, -87.f, 0.f, 1.f, 88.f, 89.f, INFINITY, NAN,
                          -INFINITY, -90.f, 3.f, -INFINITY, 2.f};
  Tensor e = exp(tensor(v, {static_cast<int64_t>(v.size())}));
  std::vector<float> got = e.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("x = " << v[i] << ", exp = " << got[i]);
    const float ref = std::exp(v[i]);
    if (std::isnan(ref))
      CHECK(std::isnan(got[i]));
    else if (ref == 0.f || std::isinf(ref))
      CHECK(got[i] == ref);
    else
      CHECK(std::abs(got[i] - ref) <= 3e-7f * ref);
  }
}

TEST_CASE("float32 layer_norm, rms_norm and group_norm (row kernels) match the float64 path", "[kernels][fast]") {
  ThreadsGuard tg;
  Generator g(6);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t n : {1, 2, 7, 16, 17, 64, 1024, 1030}) {
      INFO("threads " << threads << ", normalized size " << n);
      Tensor x64 = add(mul(randn({5, n}, kFloat64, g), 3.0), 7.0);  // a mean far from 0
      Tensor w64 = randn({n}, kFloat64, g), b64 = randn({n}, kFloat64, g);
      Tensor x32 = x64.to(kFloat32), w32 = w64.to(kFloat32), b32 = b64.to(kFloat32);
      const double tol = n == 1 ? 1e-3 : 2e-5;  // n = 1: x - mean = 0 exactly, y = b
      CHECK_CLOSE(layer_norm(x32, {n}, w32, b32), layer_norm(x64, {n}, w64, b64), tol, tol);
      CHECK_CLOSE(layer_norm(x32, {n}, w32), layer_norm(x64, {n}, w64), tol, tol);
      CHECK_CLOSE(layer_norm(x32, {n}, Tensor(), b32), layer_norm(x64, {n}, Tensor(), b64), tol, tol);
      CHECK_CLOSE(layer_norm(x32, {n}), layer_norm(x64, {n}), tol, tol);
      CHECK_CLOSE(rms_norm(x32, {n}, w32, 1e-6), rms_norm(x64, {n}, w64, 1e-6), 2e-5, 2e-5);
    }
    // group_norm: statistics over one contiguous segment per (n, group), affine per channel
    Tensor x64 = randn({3, 6, 5, 4}, kFloat64, g), w64 = randn({6}, kFloat64, g), b64 = randn({6}, kFloat64, g);
    CHECK_CLOSE(group_norm(x64.to(kFloat32), 3, w64.to(kFloat32), b64.to(kFloat32)), group_norm(x64, 3, w64, b64),
                2e-5, 2e-5);
  }
}

TEST_CASE("linear (one recorded op) matches matmul + add, with contiguous weight gradients", "[kernels][fast]") {
  Generator g(7);
  for (Dtype dt : {kFloat64, kFloat32}) {
    const double tol = dt == kFloat64 ? 1e-12 : 1e-5;
    for (const Shape& xs : {Shape{5}, Shape{4, 5}, Shape{2, 3, 5}, Shape{0, 5}}) {
      INFO(dtype_name(dt) << ", input " << shape_str(xs));
      Tensor x = randn(xs, dt, g).requires_grad_(), w = randn({3, 5}, dt, g).requires_grad_(),
             b = randn({3}, dt, g).requires_grad_();
      Tensor x2 = x.detach().clone().requires_grad_(), w2 = w.detach().clone().requires_grad_(),
             b2 = b.detach().clone().requires_grad_();
      Tensor y = linear(x, w, b), y2 = add(matmul(x2, w2.t()), b2);
      CHECK_CLOSE(y, y2, tol, tol);
      Tensor gy = randn(y.shape(), dt, g);
      y.backward(gy);
      y2.backward(gy);
      CHECK_CLOSE(x.grad(), x2.grad(), tol, tol);
      CHECK_CLOSE(w.grad(), w2.grad(), tol, tol);
      CHECK_CLOSE(b.grad(), b2.grad(), tol, tol);
      CHECK(w.grad().is_contiguous());
      // without bias, from a non-contiguous input
      if (xs.size() == 2) {
        Tensor xt = randn({5, xs[0]}, dt, g).requires_grad_();
        Tensor xt2 = xt.detach().clone().requires_grad_();
        Tensor z = linear(xt.t(), w), z2 = matmul(xt2.t(), w2.t());
        CHECK_CLOSE(z, z2, tol, tol);
        z.sum().backward();
        z2.sum().backward();
        CHECK_CLOSE(xt.grad(), xt2.grad(), tol, tol);
      }
    }
  }
  // mixed dtypes take the composite form and promote, as torch
  Tensor y = linear(randn({2, 5}), randn({3, 5}, kFloat64), randn({3}, kFloat64));
  CHECK(y.dtype() == kFloat64);
  // a bias of the wrong size is an error that names the shapes
  CHECK_THROWS_WITH(linear(randn({2, 5}), randn({3, 5}), randn({4})), Catch::Contains("(2, 3)"));
}
