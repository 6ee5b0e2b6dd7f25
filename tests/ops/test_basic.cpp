// Smoke tests of the primitive ops (fixture and gradcheck tests live beside this file).
#include "test_util.hpp"

using namespace genai;

TEST_CASE("matmul matches a naive product, for every layout and thread split") {
  manual_seed(5);
  for (auto [M, N, K] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1}, {3, 5, 7}, {64, 48, 33}, {130, 70, 400}, {7, 300, 5}}) {
    Tensor a = randn({M, K}, kFloat64), b = randn({K, N}, kFloat64);
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    std::vector<double> ref(static_cast<size_t>(M * N), 0.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) ref[i * N + j] += av[i * K + k] * bv[k * N + j];
    Tensor r = tensor(ref, {M, N}, kFloat64);
    CHECK_CLOSE(matmul(a, b), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a.t().contiguous().t(), b), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a, b.t().contiguous().t()), r, 1e-12, 1e-12);
    CHECK_CLOSE(matmul(a.to(kFloat32), b.to(kFloat32)), r, 1e-4, 1e-4);
    CHECK_CLOSE(matmul(a.to(kFloat32).t().contiguous().t(), b.to(kFloat32).t().contiguous().t()), r, 1e-4, 1e-4);
  }
}

TEST_CASE("sign has a zero gradient and its output requires grad, as torch.sign") {
  Tensor x = tensor({-1.5, 0.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = sign(x);
  CHECK(y.requires_grad());
  y.sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0.0, 0.0, 0.0});
}

TEST_CASE("division of integer tensors is true division in float32, as torch") {
  Tensor a = tensor(std::vector<int64_t>{3, -7, 4}, {3}), b = tensor(std::vector<int64_t>{2, 2, -3}, {3});
  Tensor q = div(a, b);
  CHECK(q.dtype() == kFloat32);
  CHECK_CLOSE(q, tensor({1.5, -3.5, -4.0 / 3.0}), 1e-6, 1e-7);
  Tensor h = a / 2.0;
  CHECK(h.dtype() == kFloat32);
  CHECK_CLOSE(h, tensor({1.5, -3.5, 2.0}), 1e-6, 1e-7);
}

namespace {
/// Checks that f throws a genai::Error whose message names `op` (and is not a crash).
template <class F>
void check_error(F f, const std::string& op) {
  INFO("expected a genai::Error from " << op);
  try {
    f();
    FAIL("no exception");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.message().find(op) != std::string::npos);
  }
}
}  // namespace

TEST_CASE("ops reject bad input with a genai::Error naming the op") {
  Tensor x = randn({2, 3}), y = randn({2, 2});
  check_error([&] { add(x, randn({4})); }, "add");
  check_error([&] { mul(x, y); }, "mul");
  check_error([&] { matmul(x, x); }, "matmul");
  check_error([&] { matmul(randn({2, 2, 3}), randn({3, 3, 2})); }, "matmul");
  check_error([&] { mm(x, randn({3})); }, "mm");
  check_error([&] { bmm(randn({2, 2, 3}), randn({3, 3, 2})); }, "bmm");
  check_error([&] { linear(x, randn({4, 2})); }, "linear");
  check_error([&] { view(x, {4, 2}); }, "view");
  check_error([&] { view(x.t(), {6}); }, "view");
  check_error([&] { reshape(x, {-1, -1}); }, "reshape");
  check_error([&] { narrow(x, 1, 2, 2); }, "narrow");
  check_error([&] { select(x, 0, 2); }, "select");
  check_error([&] { transpose(x, 0, 2); }, "transpose");
  check_error([&] { permute(x, {0, 0}); }, "permute");
  check_error([&] { expand(x, {3, 3}); }, "expand");
  check_error([&] { split_with_sizes(x, {1, 1}, 1); }, "split");
  check_error([&] { sum(x, {0, -2}); }, "sum");
  check_error([&] { sum(x, {2}); }, "sum");
  check_error([&] { softmax(x, 2); }, "softmax");
  check_error([&] { log_softmax(x, -3); }, "log_softmax");
  check_error([&] { amax(randn({0, 3}), {0}); }, "amax");
  check_error([&] { argmax(x, 5); }, "argmax");
  check_error([&] { sum_to(x, {2}); }, "sum_to");
  check_error([&] { cat({x, randn({2, 2})}, 0); }, "cat");
  check_error([&] { cat({x, randn({2})}, 0); }, "cat");
  check_error([&] { stack({x, y}, 0); }, "stack");
  check_error([&] { index_select(x, 0, tensor(std::vector<int64_t>{2}, {1})); }, "index_select");
  check_error([&] { index_select(x, 0, tensor({0.0})); }, "index_select");
  check_error([&] { index_add(x, 0, tensor(std::vector<int64_t>{0}, {1}), randn({1, 2})); }, "index_add");
  check_error([&] { index_add(randn({}), 0, tensor(std::vector<int64_t>{0}, {1}), randn({1})); }, "index_add");
  check_error([&] { gather(x, 1, tensor(std::vector<int64_t>{3}, {1, 1})); }, "gather");
  check_error([&] { gather(x, 1, tensor(std::vector<int64_t>{0}, {1})); }, "gather");
  check_error([&] { scatter_add(x, 1, tensor(std::vector<int64_t>{-4}, {1, 1}), randn({1, 1})); }, "scatter_add");
  check_error([&] { scatter_add(x, 1, tensor(std::vector<int64_t>{0}, {1, 1}), randn({1})); }, "scatter_add");
  check_error([&] { scatter_add(randn({}), 0, tensor(std::vector<int64_t>{0}, {}), randn({})); }, "scatter_add");
  check_error([&] { masked_fill(x, gt(randn({3, 3}), 0.0), 1.0); }, "masked_fill");
  check_error([&] { masked_fill(x, x, 1.0); }, "masked_fill");
  check_error([&] { one_hot(tensor(std::vector<int64_t>{3}, {1}), 2); }, "one_hot");
  check_error([&] { triu(randn({3})); }, "triu");
  check_error([&] { gelu(x, "fast"); }, "gelu");
  check_error([&] { clamp(x, 1.0, -1.0); }, "clamp");
  check_error([&] { exp(tensor(std::vector<int64_t>{1}, {1})); }, "exp");
  check_error([&] { where(gt(x, 0.0), x, randn({4})); }, "where");
}

TEST_CASE("clamp_min and clamp_max of int64 tensors") {
  Tensor x = tensor(std::vector<int64_t>{-3, 0, 5}, {3});
  CHECK(clamp_min(x, 0.0).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 5});
  CHECK(clamp_max(x, 1.0).to_vector<int64_t>() == std::vector<int64_t>{-3, 0, 1});
  CHECK(clamp(x, -1.0, 2.0).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 2});
  CHECK(clamp_min(x, 0.0).dtype() == kInt64);
}

TEST_CASE("large tensors take the threaded paths and agree with naive loops") {
  set_num_threads(2);  // loops above the grain size are split in two
  Generator gen(11);
  const int64_t R = 300, C = 400;  // 120,000 elements: above every elementwise/reduction grain
  Tensor a = randn({R, C}, kFloat64, gen), b = randn({C}, kFloat64, gen);
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  auto ref_of = [&](auto f, const Shape& s) {
    std::vector<double> r(static_cast<size_t>(shape_numel(s)));
    f(r);
    return tensor(r, s, kFloat64);
  };
  auto at = [&](int64_t i, int64_t j) { return av[static_cast<size_t>(i * C + j)]; };

  Tensor prod = ref_of([&](std::vector<double>& r) {
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < C; ++j) r[i * C + j] = at(i, j) * bv[j];
  }, {R, C});
  CHECK_CLOSE(mul(a, b), prod, 1e-15, 0.0);
  CHECK_CLOSE(mul(a.to(kFloat32), b.to(kFloat32)), prod, 1e-6, 1e-7);
  CHECK_CLOSE(mul(a.t().contiguous().t(), b), prod, 1e-15, 0.0);  // strided operand

  Tensor ex = ref_of([&](std::vector<double>& r) { for (size_t k = 0; k < r.size(); ++k) r[k] = std::exp(av[k]); }, {R, C});
  CHECK_CLOSE(exp(a), ex, 1e-15, 0.0);
  CHECK_CLOSE(exp(a.to(kFloat32)), ex, 1e-6, 0.0);
  Tensor th = ref_of([&](std::vector<double>& r) { for (size_t k = 0; k < r.size(); ++k) r[k] = std::tanh(av[k]); }, {R, C});
  CHECK_CLOSE(tanh(a.to(kFloat32)), th, 1e-6, 1e-7);

  Tensor s0 = ref_of([&](std::vector<double>& r) {
    for (int64_t j = 0; j < C; ++j)
      for (int64_t i = 0; i < R; ++i) r[j] += at(i, j);
  }, {C});
  Tensor s1 = ref_of([&](std::vector<double>& r) {
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = 0; j < C; ++j) r[i] += at(i, j);
  }, {R});
  Tensor m1 = ref_of([&](std::vector<double>& r) {
    for (int64_t i = 0; i < R; ++i) {
      r[i] = at(i, 0);
      for (int64_t j = 1; j < C; ++j) r[i] = std::max(r[i], at(i, j));
    }
  }, {R});
  CHECK_CLOSE(sum(a, {0}), s0, 1e-12, 1e-12);  // reduced dims leading: the row-add path
  CHECK_CLOSE(sum(a, {1}), s1, 1e-12, 1e-12);  // the general path
  CHECK_CLOSE(sum(a.to(kFloat32), {1}), s1, 1e-4, 1e-4);
  CHECK_CLOSE(amax(a, {1}), m1, 0.0, 0.0);
  CHECK_CLOSE(amax(a.t(), {0}), m1, 0.0, 0.0);

  Tensor sm = ref_of([&](std::vector<double>& r) {
    for (int64_t i = 0; i < R; ++i) {
      double m = at(i, 0), z = 0;
      for (int64_t j = 1; j < C; ++j) m = std::max(m, at(i, j));
      for (int64_t j = 0; j < C; ++j) z += std::exp(at(i, j) - m);
      for (int64_t j = 0; j < C; ++j) r[i * C + j] = std::exp(at(i, j) - m) / z;
    }
  }, {R, C});
  CHECK_CLOSE(softmax(a, 1), sm, 1e-12, 1e-15);
  CHECK_CLOSE(softmax(a.t(), 0).t(), sm, 1e-12, 1e-15);
  CHECK_CLOSE(softmax(a.to(kFloat32), -1), sm, 1e-5, 1e-8);
  {  // fused backward over many rows: softmax dx = y (g - sum(g y)); with g = a: row by row
    Tensor x = a.clone().requires_grad_();
    Tensor y = softmax(x, 1);
    y.backward(a);
    Tensor ys = sm;
    Tensor ref = mul(ys, sub(a, sum(mul(a, ys), {1}, true)));
    CHECK_CLOSE(x.grad(), ref, 1e-12, 1e-15);
  }

  Tensor big = randn({2048, 8}, kFloat64, gen);  // argmax rows are split above 1024
  const std::vector<double> bg = big.to_vector<double>();
  std::vector<int64_t> am(2048);
  for (int64_t i = 0; i < 2048; ++i)
    am[i] = std::max_element(bg.begin() + i * 8, bg.begin() + i * 8 + 8) - (bg.begin() + i * 8);
  CHECK(argmax(big, 1).to_vector<int64_t>() == am);

  Tensor big2 = randn({400, 400}, kFloat64, gen);  // contiguous copies above 131,072 elements are split
  CHECK_CLOSE(clone(big2), big2, 0.0, 0.0);
  CHECK_CLOSE(contiguous(big2.t()).t(), big2, 0.0, 0.0);
}
