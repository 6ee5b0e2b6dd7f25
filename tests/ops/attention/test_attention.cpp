// Tests of genai/ops/attention.hpp: scaled_dot_product_attention (fused forward
// and backward) against PyTorch fixtures (tests/fixtures/make_attention_fixtures.py),
// against the composite reference genai::detail::sdpa_reference, finite
// differences (gradcheck, gradgradcheck), dropout statistics and bad input.
#include <cmath>
#include <functional>
#include <genai/ops/attention.hpp>
#include <optional>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {

const char* kFile = "attention.safetensors";

const std::vector<std::string> kCases = {
    "basic",      "causal",       "cross",   "causal_t_gt_s", "causal_t_lt_s", "key_padding",
    "float_mask", "head_bias",    "t1",      "t1_causal",     "odd_big",       "odd_big_causal",
    "scale",      "fully_masked", "three_d", "five_d",        "mqa",           "large_scores"};

/// Sets the thread count for a scope.
struct ThreadsGuard {
  int prev = get_num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(prev); }
};

/// Sets the fused kernels' tile sizes for a scope (small tiles: many tiles on tiny shapes).
struct BlocksGuard {
  detail::SdpaBlocks prev = detail::sdpa_blocks();
  BlocksGuard(int64_t q, int64_t k) { detail::sdpa_blocks() = detail::SdpaBlocks{q, k}; }
  ~BlocksGuard() { detail::sdpa_blocks() = prev; }
};

/// Tile sizes the tests run with: the default, square ones, and small odd ones (tiles that end mid-row).
const std::vector<std::pair<int64_t, int64_t>> kBlocks = {{64, 256}, {128, 128}, {16, 24}, {7, 5}, {5, 9}};

/// A fresh leaf copy of t in dtype dt.
Tensor leaf(const Tensor& t, Dtype dt, bool requires_grad = true) {
  Tensor x = t.detach().to(dt).clone();
  if (requires_grad) x.requires_grad_();
  return x;
}

struct Inputs {
  Tensor q, k, v, mask, dout;
  bool causal = false;
  std::optional<double> scale;
  bool mask_grad = false;
};

Inputs load_case(const std::string& name, Dtype dt) {
  auto f = [&](const char* key) { return genai_test::fixture(kFile, name + "." + key); };
  const auto& all = genai_test::fixtures(kFile);
  Inputs in;
  in.q = leaf(f("q"), dt);
  in.k = leaf(f("k"), dt);
  in.v = leaf(f("v"), dt);
  in.dout = f("dout").to(dt);
  in.mask_grad = all.count(name + ".dmask") > 0;
  if (all.count(name + ".mask")) {
    Tensor m = f("mask");
    in.mask = m.dtype() == kBool ? m : leaf(m, dt, in.mask_grad);
  }
  std::vector<double> params = f("params").to_vector<double>();
  in.causal = params[0] != 0.0;
  if (!std::isnan(params[1])) in.scale = params[1];
  return in;
}

using SdpaFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, bool,
                          std::optional<double>, Generator&);

Tensor fused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m, double p, bool c,
             std::optional<double> s, Generator& g) {
  return scaled_dot_product_attention(q, k, v, m, p, c, s, g);
}
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m, double p, bool c,
                 std::optional<double> s, Generator& g) {
  return detail::sdpa_reference(q, k, v, m, p, c, s, g);
}

/// Runs one fixture case through fn in dtype dt and compares out, dq, dk, dv (and dmask).
void check_fixture_case(const std::string& name, Dtype dt, SdpaFn fn, double tol) {
  INFO("case " << name << ", " << dtype_name(dt));
  Inputs in = load_case(name, dt);
  Generator gen(1);
  Tensor out = fn(in.q, in.k, in.v, in.mask, 0.0, in.causal, in.scale, gen);
  CHECK(out.dtype() == dt);
  CHECK_CLOSE(out, genai_test::fixture(kFile, name + ".out"), tol, tol);
  out.backward(in.dout);
  CHECK_CLOSE(in.q.grad(), genai_test::fixture(kFile, name + ".dq"), tol, tol);
  CHECK_CLOSE(in.k.grad(), genai_test::fixture(kFile, name + ".dk"), tol, tol);
  CHECK_CLOSE(in.v.grad(), genai_test::fixture(kFile, name + ".dv"), tol, tol);
  if (in.mask_grad) CHECK_CLOSE(in.mask.grad(), genai_test::fixture(kFile, name + ".dmask"), tol, tol);
}

/// Random float64 leaves.
Tensor rnd(const Shape& s, Generator& g, double mul = 1.0) { return leaf(randn(s, kFloat64, g) * mul, kFloat64); }

/// A (B, 1, 1, S) key-padding mask: batch b attends its first S - pad[b] keys.
Tensor key_padding(const std::vector<int64_t>& pad, int64_t S) {
  const int64_t B = static_cast<int64_t>(pad.size());
  std::vector<int64_t> v;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < S; ++j) v.push_back(j < S - pad[b] ? 1 : 0);
  return tensor(v, {B, 1, 1, S}).to(kBool);
}

/// Compares fused and reference forward and input gradients for one configuration.
void check_fused_vs_reference(const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& m0, double p,
                              bool causal, std::optional<double> scale, Dtype dt, double tol) {
  const bool mg = m0.defined() && m0.dtype() != kBool;
  Tensor dout;  // drawn once the output shape is known
  Tensor outs[2], grads[2][4];
  for (int which = 0; which < 2; ++which) {
    Tensor q = leaf(q0, dt), k = leaf(k0, dt), v = leaf(v0, dt);
    Tensor m = m0.defined() ? (mg ? leaf(m0, dt) : m0) : Tensor();
    Generator gen(99);
    Tensor out = which == 0 ? scaled_dot_product_attention(q, k, v, m, p, causal, scale, gen)
                            : detail::sdpa_reference(q, k, v, m, p, causal, scale, gen);
    if (which == 0) {
      Generator gd(5);
      dout = randn(out.shape(), kFloat64, gd).to(dt);
    }
    out.backward(dout);
    outs[which] = out.detach();
    grads[which][0] = q.grad();
    grads[which][1] = k.grad();
    grads[which][2] = v.grad();
    if (mg) grads[which][3] = m.grad();
  }
  CHECK_CLOSE(outs[0], outs[1], tol, tol);
  for (int i = 0; i < (mg ? 4 : 3); ++i) {
    INFO("gradient of input " << i);
    CHECK_CLOSE(grads[0][i], grads[1][i], tol, tol);
  }
}

}  // namespace

// ---- PyTorch fixtures ------------------------------------------------------------------

TEST_CASE("sdpa: fused forward and backward match PyTorch (float64, float32, tile sizes, both backward schedules)") {
  for (auto [bq, bk] : kBlocks) {
    BlocksGuard bg(bq, bk);
    for (int threads : {1, 16}) {  // 1: one pass per batch-head; 16 > batch-heads: key-block then query-block passes
      ThreadsGuard tg(threads);
      INFO("tiles " << bq << " x " << bk << ", threads " << threads);
      for (const auto& name : kCases) {
        check_fixture_case(name, kFloat64, fused, 1e-10);
        check_fixture_case(name, kFloat32, fused, 1e-4);
      }
    }
  }
}

TEST_CASE("sdpa: the composite reference matches PyTorch") {
  for (const auto& name : kCases) {
    check_fixture_case(name, kFloat64, reference, 1e-10);
    check_fixture_case(name, kFloat32, reference, 1e-4);
  }
}

TEST_CASE("sdpa: fully masked rows give 0 (torch >= 2.5), not NaN") {
  Inputs in = load_case("fully_masked", kFloat64);
  Tensor out = scaled_dot_product_attention(in.q, in.k, in.v, in.mask);
  // batch 0 row 0 and batch 1 row 2 have every key masked (see the fixture script)
  CHECK(out.select(0, 0).select(1, 0).abs().max().item<double>() == 0.0);
  CHECK(out.select(0, 1).select(1, 2).abs().max().item<double>() == 0.0);
  CHECK(out.abs().sum().item<double>() > 0.0);
  out.backward(in.dout);
  CHECK(in.q.grad().select(0, 0).select(1, 0).abs().max().item<double>() == 0.0);
  CHECK(std::isfinite(in.k.grad().sum().item<double>()));
  // a float mask of -inf on a whole row is the same
  Tensor fm = where(in.mask, 0.0, full({}, -INFINITY, kFloat64));
  CHECK_CLOSE(scaled_dot_product_attention(in.q, in.k, in.v, fm), out, 1e-12, 1e-12);
}

// ---- fused vs reference on bigger random shapes ------------------------------------------

TEST_CASE("sdpa: fused agrees with the composite reference on bigger random shapes") {
  Generator g(42);
  const int64_t B = 2, H = 3, T = 70, S = 70, D = 16;
  Tensor q = randn({B, H, T, D}, kFloat64, g), k = randn({B, H, S, D}, kFloat64, g),
         v = randn({B, H, S, D}, kFloat64, g);
  Tensor kx = randn({B, H, 45, D}, kFloat64, g), vx = randn({B, H, 45, 24}, kFloat64, g);
  Tensor fm = randn({1, H, T, S}, kFloat64, g);
  Tensor kp = key_padding({0, 13}, S);
  for (auto [bq, bk] : {std::pair<int64_t, int64_t>{64, 256}, {128, 128}, {32, 32}, {16, 48}}) {
    BlocksGuard bg(bq, bk);
    for (int threads : {1, 16}) {
      ThreadsGuard tg(threads);
      for (Dtype dt : {kFloat64, kFloat32}) {
        const double tol = dt == kFloat64 ? 1e-10 : 1e-4;
        INFO("tiles " << bq << " x " << bk << ", threads " << threads << ", " << dtype_name(dt));
        {
          INFO("plain");
          check_fused_vs_reference(q, k, v, Tensor(), 0.0, false, std::nullopt, dt, tol);
        }
        {
          INFO("causal");
          check_fused_vs_reference(q, k, v, Tensor(), 0.0, true, std::nullopt, dt, tol);
        }
        {
          INFO("key padding");
          check_fused_vs_reference(q, k, v, kp, 0.0, false, std::nullopt, dt, tol);
        }
        {
          INFO("float mask with grad, custom scale");
          check_fused_vs_reference(q, k, v, fm, 0.0, false, 0.2, dt, tol);
        }
        {
          INFO("cross-attention, causal, T > S, Dv != D");
          check_fused_vs_reference(q, kx, vx, Tensor(), 0.0, true, std::nullopt, dt, tol);
        }
        {
          INFO("dropout with key padding");
          check_fused_vs_reference(q, k, v, kp, 0.3, false, std::nullopt, dt, tol);
        }
        {
          INFO("dropout, causal");
          check_fused_vs_reference(q, k, v, Tensor(), 0.1, true, std::nullopt, dt, tol);
        }
      }
    }
  }
}

TEST_CASE("sdpa: non-contiguous inputs (heads split from (B, T, H, D) by transpose)") {
  Generator g(3);
  Tensor x = randn({2, 9, 3, 4}, kFloat64, g), y = randn({2, 11, 3, 4}, kFloat64, g),
         z = randn({2, 11, 3, 5}, kFloat64, g);
  Tensor q = x.transpose(1, 2), k = y.transpose(1, 2), v = z.transpose(1, 2);
  REQUIRE(!q.is_contiguous());
  check_fused_vs_reference(q, k, v, Tensor(), 0.0, false, std::nullopt, kFloat64, 1e-10);
  CHECK_CLOSE(scaled_dot_product_attention(q, k, v),
              scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous()), 1e-14, 1e-14);
}

// ---- gradients: finite differences, selective grads, double backward -------------------

TEST_CASE("sdpa: gradcheck (float64) on tiny shapes") {
  Generator g(11);
  auto run = [](const Tensor& m, bool causal, std::optional<double> scale) {
    return [m, causal, scale](const TensorList& x) {
      return scaled_dot_product_attention(x[0], x[1], x[2], x.size() > 3 ? x[3] : m, 0.0, causal, scale);
    };
  };
  SECTION("plain, Dv != D") {
    CHECK(gradcheck(run(Tensor(), false, std::nullopt),
                    {rnd({1, 2, 3, 2}, g), rnd({1, 2, 4, 2}, g), rnd({1, 2, 4, 3}, g)}));
  }
  SECTION("causal, T > S and T < S") {
    CHECK(gradcheck(run(Tensor(), true, std::nullopt),
                    {rnd({1, 2, 4, 2}, g), rnd({1, 2, 3, 2}, g), rnd({1, 2, 3, 2}, g)}));
    CHECK(gradcheck(run(Tensor(), true, 0.7), {rnd({2, 1, 2, 3}, g), rnd({2, 1, 4, 3}, g), rnd({2, 1, 4, 2}, g)}));
  }
  SECTION("bool mask with a fully masked row") {
    Tensor m = tensor(std::vector<int64_t>{1, 0, 1, 0, 0, 0, 0, 1, 1}, {1, 1, 3, 3}).to(kBool);
    CHECK(gradcheck(run(m, false, std::nullopt), {rnd({2, 1, 3, 2}, g), rnd({2, 1, 3, 2}, g), rnd({2, 1, 3, 2}, g)}));
  }
  SECTION("float mask (broadcast over batch) with its gradient") {
    CHECK(gradcheck(run(Tensor(), false, std::nullopt),
                    {rnd({2, 2, 3, 2}, g), rnd({2, 2, 4, 2}, g), rnd({2, 2, 4, 2}, g), rnd({1, 2, 3, 4}, g)}));
  }
  SECTION("broadcast batch dims (multi-query)") {
    CHECK(gradcheck(run(Tensor(), false, std::nullopt),
                    {rnd({2, 2, 3, 2}, g), rnd({2, 1, 3, 2}, g), rnd({1, 1, 3, 2}, g)}));
  }
  SECTION("dropout, generator reseeded identically per call") {
    auto f = [](const TensorList& x) {
      Generator gen(2024);
      return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0.4, false, std::nullopt, gen);
    };
    CHECK(gradcheck(f, {rnd({1, 2, 3, 2}, g), rnd({1, 2, 4, 2}, g), rnd({1, 2, 4, 2}, g)}));
  }
  SECTION("many tiles (4 x 3), both backward schedules") {
    BlocksGuard bg(4, 3);
    Tensor m = key_padding({3, 0}, 10);
    for (int threads : {1, 16}) {
      ThreadsGuard tg(threads);
      CHECK(gradcheck(run(Tensor(), true, std::nullopt),
                      {rnd({1, 1, 9, 2}, g), rnd({1, 1, 10, 2}, g), rnd({1, 1, 10, 2}, g)}));
      CHECK(
          gradcheck(run(m, false, std::nullopt), {rnd({2, 1, 9, 2}, g), rnd({2, 1, 10, 2}, g), rnd({2, 1, 10, 2}, g)}));
      CHECK(gradcheck(
          [](const TensorList& x) {
            Generator gen(9);
            return scaled_dot_product_attention(x[0], x[1], x[2], x[3], 0.3, false, std::nullopt, gen);
          },
          {rnd({1, 2, 7, 2}, g), rnd({1, 2, 8, 2}, g), rnd({1, 2, 8, 2}, g), rnd({7, 8}, g)}));
    }
  }
  SECTION("q = k = v (self-attention on one tensor)") {
    CHECK(gradcheck(
        [](const TensorList& x) { return scaled_dot_product_attention(x[0], x[0], x[0], Tensor(), 0.0, true); },
        {rnd({2, 2, 4, 3}, g)}));
  }
}

TEST_CASE("sdpa: gradients when only some inputs need them") {
  Generator g(12);
  Tensor q0 = randn({2, 2, 5, 3}, kFloat64, g), k0 = randn({2, 2, 6, 3}, kFloat64, g),
         v0 = randn({2, 2, 6, 4}, kFloat64, g);
  Tensor fm0 = randn({5, 6}, kFloat64, g), dout = randn({2, 2, 5, 4}, kFloat64, g);
  // all at once
  Tensor q = leaf(q0, kFloat64), k = leaf(k0, kFloat64), v = leaf(v0, kFloat64), fm = leaf(fm0, kFloat64);
  scaled_dot_product_attention(q, k, v, fm).backward(dout);
  const Tensor full_grads[4] = {q.grad(), k.grad(), v.grad(), fm.grad()};
  for (int subset = 1; subset < 16; ++subset) {
    INFO("subset " << subset);
    Tensor x[4] = {leaf(q0, kFloat64, subset & 1), leaf(k0, kFloat64, subset & 2), leaf(v0, kFloat64, subset & 4),
                   leaf(fm0, kFloat64, subset & 8)};
    for (int threads : {1, 16}) {
      ThreadsGuard tg(threads);
      BlocksGuard bg(2, 4);  // several tiles each way
      for (auto& t : x) t.set_grad(Tensor());
      scaled_dot_product_attention(x[0], x[1], x[2], x[3]).backward(dout);
      for (int i = 0; i < 4; ++i) {
        if (subset & (1 << i))
          CHECK_CLOSE(x[i].grad(), full_grads[i], 1e-12, 1e-12);
        else
          CHECK(!x[i].grad().defined());
      }
    }
  }
  {
    INFO("autograd::grad asks for one input only; leaves accumulate over two backward calls");
    Tensor a = leaf(q0, kFloat64), b = leaf(k0, kFloat64), c = leaf(v0, kFloat64);
    Tensor out = scaled_dot_product_attention(a, b, c, Tensor(), 0.0, true);
    TensorList gk = autograd::grad({out}, {b}, {dout}, /*retain_graph=*/true);
    Tensor ref_b = leaf(k0, kFloat64);
    detail::sdpa_reference(leaf(q0, kFloat64, false), ref_b, leaf(v0, kFloat64, false), Tensor(), 0.0, true)
        .backward(dout);
    CHECK_CLOSE(gk[0], ref_b.grad(), 1e-12, 1e-12);
    CHECK(!a.grad().defined());
    out.backward(dout, /*retain_graph=*/true);
    out.backward(dout);
    CHECK_CLOSE(b.grad(), mul(ref_b.grad(), 2.0), 1e-12, 1e-12);
  }
}

TEST_CASE("sdpa: create_graph uses the composite backward; it equals the fused one and double backward works") {
  Generator g(13);
  Tensor q0 = randn({1, 2, 4, 3}, kFloat64, g), k0 = randn({1, 2, 5, 3}, kFloat64, g),
         v0 = randn({1, 2, 5, 2}, kFloat64, g);
  Tensor kp = key_padding({2}, 5), fm0 = randn({1, 2, 4, 5}, kFloat64, g), dout = randn({1, 2, 4, 2}, kFloat64, g);
  struct Cfg {
    const char* name;
    Tensor mask;
    bool causal;
    double p;
  };
  for (const Cfg& cfg :
       {Cfg{"plain", Tensor(), false, 0.0}, Cfg{"causal", Tensor(), true, 0.0}, Cfg{"key padding", kp, false, 0.0},
        Cfg{"float mask", fm0, false, 0.0}, Cfg{"dropout", Tensor(), true, 0.3}}) {
    INFO(cfg.name);
    const bool mg = cfg.mask.defined() && cfg.mask.dtype() != kBool;
    TensorList res[2];
    for (int create : {0, 1}) {
      Tensor q = leaf(q0, kFloat64), k = leaf(k0, kFloat64), v = leaf(v0, kFloat64);
      Tensor m = mg ? leaf(cfg.mask, kFloat64) : cfg.mask;
      Generator gen(7);
      Tensor out = scaled_dot_product_attention(q, k, v, m, cfg.p, cfg.causal, std::nullopt, gen);
      TensorList in{q, k, v};
      if (mg) in.push_back(m);
      res[create] = autograd::grad({out}, in, {dout}, false, create == 1);
      if (create) CHECK(res[create][0].requires_grad());
    }
    for (size_t i = 0; i < res[0].size(); ++i) CHECK_CLOSE(res[1][i], res[0][i], 1e-12, 1e-12);
  }
  {
    INFO("gradgradcheck");
    Tensor q = leaf(q0.narrow(2, 0, 3), kFloat64), k = leaf(k0.narrow(2, 0, 4), kFloat64),
           v = leaf(v0.narrow(2, 0, 4), kFloat64);
    CHECK(gradgradcheck(
        [](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0.0, true); },
        {q, k, v}));
    Tensor m = key_padding({1}, 4);
    CHECK(gradgradcheck([m](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2], m); },
                        {q, k, v}));
    CHECK(gradgradcheck([](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2], x[3]); },
                        {q, k, v, leaf(fm0.narrow(2, 0, 3).narrow(3, 0, 4), kFloat64)}));
    CHECK(gradgradcheck(
        [](const TensorList& x) {
          Generator gen(31);
          return scaled_dot_product_attention(x[0], x[1], x[2], Tensor(), 0.25, false, std::nullopt, gen);
        },
        {q, k, v}));
  }
}

// ---- dropout -----------------------------------------------------------------------------

TEST_CASE("sdpa: dropout is reproducible for a given generator seed, and differs across seeds") {
  Generator g(21);
  Tensor q = randn({2, 2, 6, 4}, kFloat32, g), k = randn({2, 2, 7, 4}, kFloat32, g),
         v = randn({2, 2, 7, 3}, kFloat32, g);
  Generator a(5), b(5), c(6);
  Tensor o1 = scaled_dot_product_attention(q, k, v, Tensor(), 0.5, false, std::nullopt, a);
  Tensor o2 = scaled_dot_product_attention(q, k, v, Tensor(), 0.5, false, std::nullopt, b);
  Tensor o3 = scaled_dot_product_attention(q, k, v, Tensor(), 0.5, false, std::nullopt, c);
  CHECK_CLOSE(o1, o2, 0.0, 0.0);
  CHECK(!allclose(o1, o3));
  // the generator advanced: the next call draws another mask
  Tensor o4 = scaled_dot_product_attention(q, k, v, Tensor(), 0.5, false, std::nullopt, a);
  CHECK(!allclose(o1, o4));
  // the default generator follows manual_seed
  manual_seed(77);
  Tensor d1 = scaled_dot_product_attention(q, k, v, Tensor(), 0.5);
  manual_seed(77);
  CHECK_CLOSE(scaled_dot_product_attention(q, k, v, Tensor(), 0.5), d1, 0.0, 0.0);
  // no dropout: the generator is not used
  Generator e(5);
  scaled_dot_product_attention(q, k, v);
  CHECK(e.next_u64() == Generator(5).next_u64());
}

TEST_CASE("sdpa: dropout keeps a fraction 1 - p, scaled by 1 / (1 - p)") {
  detail::SdpaGeom geo;
  geo.batch = {4, 3};
  geo.nb = 12;
  geo.T = 50;
  geo.S = 60;
  for (double p : {0.1, 0.5, 0.9}) {
    std::vector<double> m = detail::sdpa_dropout_multiplier(123, geo, p, kFloat64).to_vector<double>();
    double kept = 0;
    for (double x : m) {
      if (x != 0.0) {
        CHECK(x == Approx(1.0 / (1.0 - p)).epsilon(1e-15));
        kept += 1;
      }
    }
    const double n = static_cast<double>(m.size()), frac = kept / n;
    CHECK(std::abs(frac - (1 - p)) < 5 * std::sqrt(p * (1 - p) / n));  // 5 sigma
  }
  // p = 1 drops everything (as torch.dropout)
  Generator g(1);
  Tensor q = randn({1, 1, 3, 2}, kFloat64, g), k = randn({1, 1, 4, 2}, kFloat64, g),
         v = randn({1, 1, 4, 2}, kFloat64, g);
  CHECK(scaled_dot_product_attention(q, k, v, Tensor(), 1.0).abs().max().item<double>() == 0.0);
}

TEST_CASE("sdpa: with dropout, the mean output over many seeds approaches the no-dropout output") {
  Generator g(8);
  Tensor q = randn({1, 2, 4, 3}, kFloat64, g), k = randn({1, 2, 6, 3}, kFloat64, g),
         v = randn({1, 2, 6, 2}, kFloat64, g);
  Tensor kp = key_padding({1}, 6);
  Tensor expected = scaled_dot_product_attention(q, k, v, kp);
  const int n = 4000;
  const double p = 0.2;
  std::vector<double> sum(static_cast<size_t>(expected.numel()), 0.0), sum2 = sum;
  for (int s = 0; s < n; ++s) {
    Generator gen(static_cast<uint64_t>(1000 + s));
    std::vector<double> o = scaled_dot_product_attention(q, k, v, kp, p, false, std::nullopt, gen).to_vector<double>();
    for (size_t i = 0; i < o.size(); ++i) {
      sum[i] += o[i];
      sum2[i] += o[i] * o[i];
    }
  }
  std::vector<double> e = expected.to_vector<double>();
  for (size_t i = 0; i < e.size(); ++i) {
    const double mean = sum[i] / n, sd = std::sqrt(std::max(0.0, sum2[i] / n - mean * mean));
    INFO("element " << i << ": mean " << mean << ", expected " << e[i] << ", sd " << sd);
    CHECK(sd > 0.0);  // dropout really happened
    CHECK(std::abs(mean - e[i]) <= 5 * sd / std::sqrt(static_cast<double>(n)) + 1e-12);
  }
}

// ---- edge cases and errors ---------------------------------------------------------------

TEST_CASE("sdpa: empty sizes") {
  Generator g(4);
  SECTION("T = 0") {
    Tensor q = leaf(randn({2, 0, 3}, kFloat64, g), kFloat64), k = leaf(randn({2, 4, 3}, kFloat64, g), kFloat64),
           v = leaf(randn({2, 4, 5}, kFloat64, g), kFloat64);
    Tensor out = scaled_dot_product_attention(q, k, v);
    CHECK(out.shape() == Shape{2, 0, 5});
    out.sum().backward();
    CHECK(k.grad().abs().sum().item<double>() == 0.0);
  }
  SECTION("S = 0: no key to attend, output 0") {
    Tensor q = leaf(randn({2, 3, 3}, kFloat64, g), kFloat64), k = leaf(randn({2, 0, 3}, kFloat64, g), kFloat64),
           v = leaf(randn({2, 0, 5}, kFloat64, g), kFloat64);
    Tensor out = scaled_dot_product_attention(q, k, v);
    CHECK(out.shape() == Shape{2, 3, 5});
    CHECK(out.abs().sum().item<double>() == 0.0);
    CHECK_CLOSE(detail::sdpa_reference(q, k, v), out, 0.0, 0.0);
    out.sum().backward();
    CHECK(q.grad().abs().sum().item<double>() == 0.0);
  }
  SECTION("empty batch") {
    Tensor q = randn({0, 2, 3, 4}, kFloat32, g), k = randn({0, 2, 5, 4}, kFloat32, g),
           v = randn({0, 2, 5, 4}, kFloat32, g);
    CHECK(scaled_dot_product_attention(q, k, v).shape() == Shape{0, 2, 3, 4});
  }
}

TEST_CASE("sdpa: no graph without grad, or under NoGradGuard") {
  Generator g(5);
  Tensor q = randn({1, 2, 3, 4}, kFloat32, g), k = randn({1, 2, 3, 4}, kFloat32, g),
         v = randn({1, 2, 3, 4}, kFloat32, g);
  CHECK(!scaled_dot_product_attention(q, k, v).requires_grad());
  q.requires_grad_();
  CHECK(scaled_dot_product_attention(q, k, v).requires_grad());
  NoGradGuard ng;
  CHECK(!scaled_dot_product_attention(q, k, v).requires_grad());
}

TEST_CASE("sdpa: bad input raises genai::Error naming the op and the shapes") {
  Generator g(6);
  Tensor q = randn({2, 2, 3, 4}, kFloat32, g), k = randn({2, 2, 5, 4}, kFloat32, g),
         v = randn({2, 2, 5, 6}, kFloat32, g);
  auto sdpa = [](const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& m = Tensor(), double p = 0.0,
                 bool causal = false) { return scaled_dot_product_attention(a, b, c, m, p, causal); };
  CHECK_THROWS_AS(sdpa(q.select(0, 0).select(0, 0), k, v), Error);
  CHECK_THROWS_WITH(sdpa(q.select(0, 0).select(0, 0), k, v),
                    Contains("scaled_dot_product_attention") && Contains("at least 3-d"));
  CHECK_THROWS_WITH(sdpa(q, randn({2, 2, 5, 3}), v), Contains("same last dimension") && Contains("(2, 2, 5, 3)"));
  CHECK_THROWS_WITH(sdpa(q, k, randn({2, 2, 4, 6})), Contains("same number of positions") && Contains("(2, 2, 4, 6)"));
  CHECK_THROWS_WITH(sdpa(q, randn({3, 2, 5, 4}), randn({3, 2, 5, 6})), Contains("do not broadcast"));
  CHECK_THROWS_WITH(sdpa(q, k.to(kFloat64), v), Contains("same floating-point dtype"));
  CHECK_THROWS_WITH(sdpa(q.to(kInt64), k.to(kInt64), v.to(kInt64)), Contains("same floating-point dtype"));
  CHECK_THROWS_WITH(sdpa(q, k, v, ones({2, 1, 1, 4}).to(kBool)),
                    Contains("attn_mask of shape (2, 1, 1, 4)") && Contains("(2, 2, 3, 5)"));
  CHECK_THROWS_WITH(sdpa(q, k, v, ones({3, 2, 2, 3, 5}).to(kBool)), Contains("cannot be broadcast"));
  CHECK_THROWS_WITH(sdpa(q, k, v, ones({3, 5}, kInt64)), Contains("attn_mask must be bool"));
  CHECK_THROWS_WITH(sdpa(q, k, v, ones({3, 5}).to(kBool), 0.0, true),
                    Contains("is_causal=true together with an attn_mask"));
  CHECK_THROWS_WITH(sdpa(q, k, v, Tensor(), 1.5), Contains("dropout_p must be in [0, 1]"));
  CHECK_THROWS_WITH(sdpa(q, k, v, Tensor(), -0.1), Contains("dropout_p must be in [0, 1]"));
  CHECK_THROWS_WITH(sdpa(Tensor(), k, v), Contains("query is an undefined tensor"));
  // a float mask of the other float dtype is accepted (converted)
  CHECK_NOTHROW(sdpa(q, k, v, zeros({3, 5}, kFloat64)));
}
