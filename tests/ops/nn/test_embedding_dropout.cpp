// Tests of genai/ops/embedding.hpp: embedding against PyTorch fixtures (padding_idx,
// repeated indices), gradchecks, errors; dropout / dropout2d semantics (scaling,
// identity cases, reproducibility with a reseeded Generator, mask statistics,
// gradient = mask) and gradchecks with a fixed generator.
#include <cmath>

#include "nn_fixture.hpp"

using namespace genai;
using nn_test::Inputs;

// ---- embedding --------------------------------------------------------------------------

TEST_CASE("embedding matches PyTorch: repeated indices accumulate, padding_idx gets no gradient") {
  nn_test::run_case_all("emb_pad", {"w"}, {"i"}, [](const Inputs& in) { return embedding(in["i"], in["w"], 2); });
  nn_test::run_case_all("emb_plain", {"w"}, {"i"}, [](const Inputs& in) { return embedding(in["i"], in["w"]); });
  nn_test::run_case_all("emb_1d", {"w"}, {"i"}, [](const Inputs& in) { return embedding(in["i"], in["w"], 0); });
  // the padding row is still looked up (its value is not zeroed), only its gradient is
  Tensor w = nn_test::fx("emb_pad.w").requires_grad_();
  Tensor y = embedding(nn_test::fx("emb_pad.i"), w, 2);
  CHECK_CLOSE(y.select(0, 0).select(0, 1), w.detach().select(0, 2), 0, 0);
  y.sum().backward();
  CHECK_CLOSE(w.grad().select(0, 2), zeros({3}, kFloat64), 0, 0);
  CHECK_CLOSE(w.grad().select(0, 0), full({3}, 3.0, kFloat64), 0, 0);  // index 0 appears 3 times
  CHECK_CLOSE(w.grad().select(0, 3), zeros({3}, kFloat64), 0, 0);      // never looked up
}

TEST_CASE("embedding passes gradcheck and gradgradcheck; its backward agrees across paths") {
  manual_seed(4);
  Tensor w = randn({6, 3}, kFloat64).requires_grad_();
  Tensor idx = tensor(std::vector<int64_t>{0, 2, 2, 5, 1, 0}, {2, 3});
  nn_test::check_grad([&](const TensorList& in) { return embedding(idx, in[0]); }, {w}, true);
  // with padding: finite differences see the padding row, so check the other rows through a mask
  Tensor keep = ones({6, 1}, kFloat64);
  static_cast<double*>(keep.raw_data())[2] = 0.0;
  nn_test::check_grad([&](const TensorList& in) { return embedding(idx, mul(in[0], keep), 2); }, {w}, true);
  // large: the fused backward (parallel over the embedding dim) equals the tensor-op one
  Tensor wb = randn({50, 300}, kFloat32).requires_grad_();
  Tensor ib = randint(0, 50, {40, 30});
  Tensor gy = randn({40, 30, 300});
  auto f = [&] { return embedding(ib, wb, 7); };
  Tensor g_fused = nn_test::grads_via(f, {wb}, gy, false)[0], g_ops = nn_test::grads_via(f, {wb}, gy, true)[0];
  CHECK_CLOSE(g_fused, g_ops, 1e-5, 1e-5);
}

TEST_CASE("embedding errors name the index and the shapes") {
  Tensor w = randn({10, 4});
  CHECK_THROWS_WITH(embedding(tensor(std::vector<int64_t>{1, 12, 3}, {3}), w),
                    Catch::Contains("embedding: index 12 at flat position 1 is out of range for 10 embeddings"));
  CHECK_THROWS_WITH(embedding(tensor(std::vector<int64_t>{-1}, {1}), w), Catch::Contains("index -1"));
  CHECK_THROWS_WITH(embedding(tensor({1.0, 2.0}), w),
                    Catch::Contains("embedding: indices must be an int64 tensor, got float32"));
  CHECK_THROWS_WITH(embedding(zeros({2}, kInt64), randn({10})), Catch::Contains("weight must be 2-d") && Catch::Contains("(10,)"));
  CHECK_THROWS_WITH(embedding(zeros({2}, kInt64), w, 10), Catch::Contains("padding_idx 10 is out of range for 10 embeddings"));
}

// ---- dropout ----------------------------------------------------------------------------

TEST_CASE("dropout: identity when p = 0 or not training, zeros when p = 1") {
  Tensor x = randn({4, 5}).requires_grad_();
  CHECK(dropout(x, 0.0).impl() == x.impl());
  CHECK(dropout(x, 0.7, false).impl() == x.impl());
  CHECK(dropout2d(randn({2, 3, 4, 4}), 0.5, false).shape() == Shape{2, 3, 4, 4});
  Tensor z = dropout(x, 1.0);
  CHECK_CLOSE(z, zeros({4, 5}), 0, 0);
  z.sum().backward();
  CHECK_CLOSE(x.grad(), zeros({4, 5}), 0, 0);
}

TEST_CASE("dropout: inverted scaling, keep rate, reproducible with a reseeded generator, gradient = mask") {
  const double p = 0.3;
  Tensor x = (rand({200, 500}, kFloat64) + 1.0).requires_grad_();  // no zeros in x
  Generator g1(42), g2(42), g3(43);
  Tensor y = dropout(x, p, true, g1);
  CHECK_CLOSE(y, dropout(x, p, true, g2), 0, 0);
  CHECK_FALSE(allclose(y, dropout(x, p, true, g3)));
  // every element is 0 or x / (1 - p)
  std::vector<double> xv = x.detach().to_vector<double>(), yv = y.detach().to_vector<double>();
  int64_t zeros_n = 0;
  bool scaled = true;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0) ++zeros_n;
    else scaled = scaled && std::abs(yv[i] - xv[i] / (1 - p)) < 1e-12;
  }
  CHECK(scaled);
  const double rate = static_cast<double>(zeros_n) / static_cast<double>(xv.size());
  CHECK(std::abs(rate - p) < 0.01);  // 100,000 draws: sd of the rate is 0.0014
  // the expectation is preserved
  CHECK(std::abs(mean(y).item<double>() - mean(x).item<double>()) < 0.01);
  // gradient: dout * mask / (1 - p) = dout * y / x
  Tensor gy = randn(x.shape(), kFloat64);
  y.backward(gy);
  CHECK_CLOSE(x.grad(), mul(gy, div(y.detach(), x.detach())), 1e-12, 1e-12);
  // the default generator follows manual_seed
  manual_seed(9);
  Tensor a = dropout(x.detach(), 0.5);
  manual_seed(9);
  CHECK_CLOSE(dropout(x.detach(), 0.5), a, 0, 0);
  // float32
  Generator g4(42);
  Tensor y32 = dropout(x.detach().to(kFloat32), p, true, g4);
  CHECK_CLOSE(y32, y.detach(), 1e-6, 1e-6);
}

TEST_CASE("dropout2d zeroes whole channels") {
  Generator g(5);
  Tensor x = rand({20, 30, 3, 4}, kFloat64) + 1.0;
  Tensor y = dropout2d(x, 0.4, true, g);
  Tensor ratio = div(y, x);  // per element: 0 or 1 / 0.6, constant over each (n, c) channel
  CHECK_CLOSE(amax(ratio, {2, 3}), amin(ratio, {2, 3}), 0, 1e-12);
  Tensor dropped = to(eq(amax(ratio, {2, 3}), 0.0), kFloat64);
  CHECK(std::abs(mean(dropped).item<double>() - 0.4) < 0.06);  // 600 channels
  // unbatched (C, H, W)
  Tensor y3 = dropout2d(rand({50, 2, 2}, kFloat64) + 1.0, 0.5, true, g);
  Tensor r3 = amax(y3, {1, 2}), m3 = amin(y3, {1, 2});
  CHECK(allclose(to(eq(r3, 0.0), kFloat64), to(eq(m3, 0.0), kFloat64)));
  CHECK_THROWS_WITH(dropout2d(randn({3, 4})), Catch::Contains("dropout2d: expected an input of shape (N, C, H, W) or (C, H, W)"));
}

TEST_CASE("dropout passes gradcheck with a generator reseeded per call") {
  manual_seed(2);
  Tensor x = randn({3, 4, 2, 2}, kFloat64).requires_grad_();
  nn_test::check_grad([](const TensorList& in) { Generator g(77); return dropout(in[0], 0.4, true, g); }, {x}, true);
  nn_test::check_grad([](const TensorList& in) { Generator g(78); return dropout2d(in[0], 0.5, true, g); }, {x}, true);
}

TEST_CASE("dropout errors") {
  CHECK_THROWS_WITH(dropout(randn({2}), 1.5), Catch::Contains("dropout: dropout probability has to be between 0 and 1, but got 1.5"));
  CHECK_THROWS_WITH(dropout(randn({2}), -0.1), Catch::Contains("between 0 and 1"));
  CHECK_THROWS_WITH(dropout(zeros({2}, kInt64), 0.5), Catch::Contains("dropout: expected a floating-point input, got int64"));
}
