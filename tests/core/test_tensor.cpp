// Tests of the tensor core: factories, metadata, views, dtypes, printing, threads.
#include "test_util.hpp"

using namespace genai;

TEST_CASE("factories make the requested shape, dtype and values") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == kFloat32);
  CHECK(z.numel() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.is_contiguous());
  for (float v : z.to_vector()) CHECK(v == 0.f);
  Tensor o = ones({4}, kFloat64);
  CHECK(o.dtype() == kFloat64);
  CHECK(o.sum().item<double>() == 4.0);
  CHECK(full({2, 2}, 3.5).to_vector() == std::vector<float>{3.5f, 3.5f, 3.5f, 3.5f});
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(t.size(-1) == 3);
  CHECK(t.stride(0) == 3);
  CHECK(arange(5).dtype() == kInt64);
  CHECK(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(0.0, 1.0, 0.25).to_vector() == std::vector<float>{0.f, 0.25f, 0.5f, 0.75f});
  CHECK(scalar_tensor(2.5).dim() == 0);
  CHECK(scalar_tensor(2.5).item() == 2.5f);
  CHECK(eye(2).to_vector() == std::vector<float>{1, 0, 0, 1});
  CHECK(zeros_like(t).shape() == t.shape());
  CHECK(linspace(0, 1, 5).to_vector() == std::vector<float>{0.f, 0.25f, 0.5f, 0.75f, 1.f});
}

TEST_CASE("manual_seed makes random draws reproducible") {
  manual_seed(42);
  std::vector<float> a = randn({100}).to_vector(), u = rand({100}).to_vector();
  std::vector<int64_t> r = randint(0, 10, {50}).to_vector<int64_t>();
  manual_seed(42);
  CHECK(randn({100}).to_vector() == a);
  CHECK(rand({100}).to_vector() == u);
  CHECK(randint(0, 10, {50}).to_vector<int64_t>() == r);
  for (float v : u) CHECK((v >= 0.f && v < 1.f));
  for (int64_t v : r) CHECK((v >= 0 && v < 10));
  // moments of a large normal sample
  Tensor n = randn({100000}, kFloat64);
  CHECK(std::abs(n.mean().item<double>()) < 0.02);
  CHECK(std::abs(var(n, {}, 1).item<double>() - 1.0) < 0.02);
  // a permutation holds every index once
  std::vector<int64_t> p = randperm(20).to_vector<int64_t>();
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 20; ++i) CHECK(p[i] == i);
}

TEST_CASE("storage is 64-byte aligned and views share it") {
  Tensor t = randn({5, 7});
  CHECK(reinterpret_cast<uintptr_t>(t.storage()->data()) % 64 == 0);
  Tensor v = t.transpose(0, 1);
  CHECK(v.is_alias_of(t));
  CHECK(!v.is_contiguous());
  CHECK(v.shape() == Shape{7, 5});
  CHECK(v.strides() == std::vector<int64_t>{1, 7});
  Tensor c = v.contiguous();
  CHECK(c.is_contiguous());
  CHECK(!c.is_alias_of(t));
  CHECK(c.to_vector() == v.to_vector());
  Tensor n = t.narrow(1, 2, 3);
  CHECK(n.is_alias_of(t));
  CHECK(n.offset() == 2);
  CHECK(n[1].to_vector() == std::vector<float>{t.to_vector()[9], t.to_vector()[10], t.to_vector()[11]});
  Tensor e = tensor({1, 2, 3}).unsqueeze(0).expand({4, 3});
  CHECK(e.strides() == std::vector<int64_t>{0, 1});
  CHECK(e.sum().item() == 24.f);
  CHECK(t.reshape({35}).is_alias_of(t));                  // contiguous: a view
  CHECK(!v.reshape({35}).is_alias_of(t));                 // transposed: a copy
  CHECK(t.view({7, 5}).shape() == Shape{7, 5});
  CHECK(t.reshape({-1, 5}).shape() == Shape{7, 5});
  CHECK(t.unsqueeze(1).squeeze(1).shape() == t.shape());
  CHECK(t.flatten().shape() == Shape{35});
  CHECK(t.slice(0, 0, 5, 2).shape() == Shape{3, 7});
  CHECK(t.permute({1, 0}).to_vector() == v.to_vector());
  std::vector<Tensor> parts = t.split(2, 0);
  CHECK(parts.size() == 3);
  CHECK(parts[2].shape() == Shape{1, 7});
  CHECK(t.chunk(2, 1)[1].shape() == Shape{5, 3});
}

TEST_CASE("in-place writes through a view reach the base and bump the version") {
  Tensor t = zeros({3, 3});
  uint32_t v0 = t.version();
  Tensor row = t[1];
  row.fill_(2.0);
  CHECK(t.version() > v0);
  CHECK(t.sum().item() == 6.f);
  t += 1.0;
  CHECK(t.sum().item() == 15.f);
  t.narrow(0, 0, 1).copy_(ones({1, 3}) * 5.0);
  CHECK(t[0].to_vector() == std::vector<float>{5, 5, 5});
}

TEST_CASE("dtype conversion and promotion") {
  Tensor i = arange(4);
  Tensor f = i.to(kFloat32);
  CHECK(f.dtype() == kFloat32);
  CHECK(f.to_vector() == std::vector<float>{0, 1, 2, 3});
  CHECK((i + f).dtype() == kFloat32);
  CHECK((i * 2.0).dtype() == kInt64);
  CHECK((i * 0.5).dtype() == kFloat32);
  CHECK((f.to(kFloat64) + f).dtype() == kFloat64);
  CHECK((i > 1).dtype() == kBool);
  CHECK((i > 1).to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1});
}

TEST_CASE("printing shows values, shape, dtype and grad_fn") {
  Tensor t = tensor({1, 2, 3, 4}, {2, 2});
  std::string s = t.to_string();
  CHECK(s.find("[[1, 2],") != std::string::npos);
  CHECK(s.find("shape=(2, 2)") != std::string::npos);
  CHECK(s.find("dtype=float32") != std::string::npos);
  Tensor x = ones({2}).requires_grad_();
  CHECK((x * 2.0).to_string().find("grad_fn=<mul>") != std::string::npos);
  std::ostringstream os;
  os << arange(3);
  CHECK(os.str().find("int64") != std::string::npos);
}

TEST_CASE("set_num_threads governs the thread count and results do not depend on it") {
  int before = get_num_threads();
  manual_seed(3);
  Tensor a = randn({300, 200}), b = randn({200, 100});
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  std::vector<float> r1 = (matmul(a, b).exp() + 1.0).sum({0}).to_vector();
  set_num_threads(2);
  std::vector<float> r2 = (matmul(a, b).exp() + 1.0).sum({0}).to_vector();
  CHECK(r1 == r2);
  CHECK_THROWS_AS(set_num_threads(0), Error);
  set_num_threads(before);
}

TEST_CASE("shape errors name the op and the shapes") {
  CHECK_THROWS_WITH(zeros({2, 3}) + zeros({4}), Catch::Contains("add") && Catch::Contains("(2, 3)") && Catch::Contains("(4,)"));
  CHECK_THROWS_WITH(zeros({2}).reshape({3}), Catch::Contains("reshape") && Catch::Contains("(3,)"));
  CHECK_THROWS_WITH(zeros({2, 3}).transpose(0, 2), Catch::Contains("transpose") && Catch::Contains("out of range"));
  CHECK_THROWS_WITH(zeros({2, 3}).sum({5}), Catch::Contains("sum") && Catch::Contains("dimension 5"));
  CHECK_THROWS_WITH(zeros({3}).item(), Catch::Contains("item") && Catch::Contains("(3,)"));
  CHECK_THROWS_WITH(zeros({-1}), Catch::Contains("(-1,)"));
  CHECK_THROWS_WITH(zeros({int64_t(1) << 40, int64_t(1) << 40}), Catch::Contains("overflow"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(zeros({2, 2}).expand({3, 2}), Catch::Contains("expand") && Catch::Contains("(2, 2)"));
  CHECK_THROWS_WITH(zeros({2}).narrow(0, 1, 5), Catch::Contains("narrow") && Catch::Contains("out of bounds"));
}
