// Optimizers vs PyTorch 1.13 (fixtures of make_optim_fixtures.py): 20-step
// trajectories of every optimizer and option combination in float64 and float32,
// L-BFGS on Rosenbrock, its line search and cubic interpolation, state-dict round
// trips (bit-identical resumption), and error handling.
#include <cmath>
#include <cstring>

#include "optim/optim_test_util.hpp"

using namespace genai;
using namespace optim_test;

namespace {

// Tolerances: float64 runs follow torch's float64 runs to rounding (differences
// come from summation order in matmul/mean and dot products, amplified a little
// by 20 steps); float32 runs are compared with torch's float32 runs, which differ
// from the float64 runs by up to 1e-6 (L-BFGS: 4e-6, checked normwise).
constexpr double kRtol64 = 1e-10, kAtol64 = 1e-12;
constexpr double kRtol32 = 1e-5, kAtol32 = 1e-6;

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), static_cast<size_t>(x.numel()) * x.element_size()) == 0;
}

}  // namespace

TEST_CASE("optimizers follow PyTorch's 20-step trajectories (float64 and float32)") {
  for (const auto& name : config_names()) {
    for (Dtype dt : {kFloat64, kFloat32}) {
      const std::string tag = dt == kFloat64 ? "f64" : "f32";
      const double rtol = dt == kFloat64 ? kRtol64 : kRtol32, atol = dt == kFloat64 ? kAtol64 : kAtol32;
      INFO("config " << name << " (" << tag << ")");
      Problem p = make_problem(dt, name);
      auto opt = make_optimizer(name, p);
      std::vector<double> losses = run_steps(*opt, p, 20);
      const std::string pre = name + "." + tag + ".";
      // L-BFGS in float32 amplifies rounding (torch's own float32 and float64 runs
      // differ by 4e-6 relative): there the check is normwise, |diff| <= 1e-5 max|expected|
      const bool normwise = dt == kFloat32 && name.rfind("lbfgs", 0) == 0;
      auto check = [&](const Tensor& got, const std::string& key) {
        Tensor want = genai_test::fixture(kFixture, pre + key);
        const double a = normwise ? kRtol32 * want.abs().max().item<double>() : atol;
        CHECK_CLOSE(got, want, rtol, a);
      };
      check(vec(losses), "losses");
      check(p.W, "W");
      check(p.b, "b");
      check(p.V, "V");
      CHECK(p.W.dtype() == dt);
    }
  }
}

namespace {
Tensor rosenbrock(const Tensor& x) {  // sum 100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2
  Tensor head = x.slice(0, 0, x.size(0) - 1), tail = x.slice(0, 1, x.size(0));
  return sum(mul(square(tail - square(head)), 100.0) + square(add(neg(head), 1.0)));
}
}  // namespace

TEST_CASE("LBFGS on Rosenbrock with the default max_iter matches PyTorch") {
  struct Case {
    const char* name;
    optim::LBFGSOptions o;
  };
  std::vector<Case> cases = {
      {"wolfe", {.line_search_fn = "strong_wolfe"}},
      {"wolfe_h3", {.max_iter = 10, .history_size = 3, .line_search_fn = "strong_wolfe"}},
      {"fixed", {.lr = 0.5, .max_iter = 20, .history_size = 5}},
  };
  for (const auto& c : cases) {
    INFO("rosen_" << c.name);
    Tensor x = leaf(genai_test::fixture(kFixture, "rosen.x0"), kFloat64);
    optim::LBFGS opt({x}, c.o);
    std::vector<double> losses;
    for (int s = 0; s < 5; ++s)
      losses.push_back(opt.step([&] {
                            opt.zero_grad();
                            Tensor l = rosenbrock(x);
                            l.backward();
                            return l;
                          })
                           .item<double>());
    // Rosenbrock's valley amplifies rounding differences about 1e4-fold over these runs
    CHECK_CLOSE(vec(losses), genai_test::fixture(kFixture, std::string("rosen_") + c.name + ".losses"), 1e-8, 1e-12);
    CHECK_CLOSE(x, genai_test::fixture(kFixture, std::string("rosen_") + c.name + ".x"), 1e-8, 1e-12);
  }
}

namespace {
/// Rosenbrock's value and gradient, by hand.
std::pair<double, Tensor> rosen_fg(const std::vector<double>& x) {
  const size_t n = x.size();
  double f = 0;
  std::vector<double> g(n, 0.0);
  for (size_t i = 0; i + 1 < n; ++i) {
    const double a = x[i + 1] - x[i] * x[i], c = 1 - x[i];
    f += 100 * a * a + c * c;
    g[i] += -400 * x[i] * a - 2 * c;
    g[i + 1] += 200 * a;
  }
  return {f, tensor(g, {static_cast<int64_t>(n)}, kFloat64)};
}
}  // namespace

TEST_CASE("strong_wolfe matches torch's _strong_wolfe on calls that run every branch of it") {
  const auto& F = [](const std::string& k) { return genai_test::fixture(kFixture, "ls." + k); };
  Tensor xs = F("x"), ds = F("d"), gs = F("g");
  std::vector<double> t0s = F("t0").to_vector<double>(), c2s = F("c2").to_vector<double>();
  std::vector<double> tols = F("tolerance_change").to_vector<double>(), max_ls = F("max_ls").to_vector<double>();
  std::vector<double> fs = F("f").to_vector<double>(), ts = F("t").to_vector<double>();
  std::vector<double> evals = F("evals").to_vector<double>();
  REQUIRE(t0s.size() >= 10);
  for (size_t k = 0; k < t0s.size(); ++k) {
    INFO("case " << k << ": t0 = " << t0s[k] << ", c2 = " << c2s[k] << ", tolerance_change = " << tols[k]
                 << ", max_ls = " << max_ls[k]);
    const int64_t kk = static_cast<int64_t>(k);
    std::vector<double> x0 = xs[kk].to_vector<double>(), dv = ds[kk].to_vector<double>();
    Tensor d = ds[kk].contiguous();
    auto [f0, g0] = rosen_fg(x0);
    const double gtd = optim::detail::flat_dot(g0, d);
    auto obj = [&](double t) {
      std::vector<double> x = x0;
      for (size_t i = 0; i < x.size(); ++i) x[i] += t * dv[i];
      return rosen_fg(x);
    };
    optim::detail::LineSearchResult r = optim::detail::strong_wolfe(obj, t0s[k], d, f0, g0, gtd, 1e-4, c2s[k], tols[k],
                                                                    static_cast<int64_t>(max_ls[k]));
    CHECK(r.func_evals == static_cast<int64_t>(evals[k]));
    CHECK(std::abs(r.t - ts[k]) <= 1e-12 * std::abs(ts[k]));
    CHECK(std::abs(r.f - fs[k]) <= 1e-12 * std::abs(fs[k]));
    CHECK_CLOSE(r.g, gs[kk], 1e-10, 1e-10);
  }
}

TEST_CASE("cubic_interpolate matches torch's _cubic_interpolate, with and without bounds") {
  Tensor in = genai_test::fixture(kFixture, "cubic.in");
  std::vector<double> want = genai_test::fixture(kFixture, "cubic.out").to_vector<double>();
  int no_minimizer = 0;
  for (int64_t k = 0; k < in.size(0); ++k) {
    std::vector<double> v = in[k].to_vector<double>();
    std::optional<std::pair<double, double>> bounds;
    if (!std::isnan(v[6])) bounds = std::make_pair(v[6], v[7]);
    double d1 = v[2] + v[5] - 3 * (v[1] - v[4]) / (v[0] - v[3]);
    if (d1 * d1 - v[2] * v[5] < 0) ++no_minimizer;
    double got = optim::detail::cubic_interpolate(v[0], v[1], v[2], v[3], v[4], v[5], bounds);
    INFO("case " << k);
    CHECK(std::abs(got - want[static_cast<size_t>(k)]) <= 1e-14 * (1 + std::abs(want[static_cast<size_t>(k)])));
  }
  CHECK(no_minimizer > 0);  // the fixture covers the "no minimizer: midpoint" branch
}

TEST_CASE("state_dict round trip through safetensors: 10 + 10 steps == 20 steps, bit for bit") {
  for (const auto& name : config_names()) {
    for (Dtype dt : {kFloat64, kFloat32}) {
      INFO("config " << name << " (" << dtype_name(dt) << ")");
      Problem straight = make_problem(dt, name);
      auto opt_s = make_optimizer(name, straight);
      std::vector<double> losses_s = run_steps(*opt_s, straight, 20);

      Problem first = make_problem(dt, name);
      auto opt_a = make_optimizer(name, first);
      std::vector<double> losses = run_steps(*opt_a, first, 10);
      // checkpoint: optimizer state and parameters, through the safetensors format
      io::TensorMap ck = opt_a->state_dict();
      ck["model.W"] = first.W.detach();
      ck["model.b"] = first.b.detach();
      ck["model.V"] = first.V.detach();
      std::vector<unsigned char> bytes = io::safetensors_bytes(ck);
      opt_a.reset();
      first = Problem();

      io::TensorMap loaded = io::load_safetensors_bytes(bytes.data(), bytes.size(), "checkpoint");
      Problem resumed = make_problem(dt, name);
      {
        NoGradGuard ng;
        resumed.W.copy_(loaded.at("model.W"));
        resumed.b.copy_(loaded.at("model.b"));
        resumed.V.copy_(loaded.at("model.V"));
      }
      for (const char* k : {"model.W", "model.b", "model.V"}) loaded.erase(k);
      auto opt_b = make_optimizer(name, resumed);
      opt_b->load_state_dict(loaded);
      std::vector<double> more = run_steps(*opt_b, resumed, 10);
      losses.insert(losses.end(), more.begin(), more.end());

      CHECK(losses == losses_s);
      CHECK(bit_equal(resumed.W, straight.W));
      CHECK(bit_equal(resumed.b, straight.b));
      CHECK(bit_equal(resumed.V, straight.V));
    }
  }
}

TEST_CASE("state_dict follows the documented flat scheme") {
  Problem p = make_problem(kFloat64);
  optim::Adam opt(
      std::vector<optim::ParamGroup>{optim::ParamGroup({p.W, p.V}), optim::ParamGroup({p.b}, {{"lr", 0.5}})},
      {.lr = 0.01, .amsgrad = true});
  run_steps(opt, p, 3);
  io::TensorMap sd = opt.state_dict();
  // parameters are numbered in group order: W = 0, V = 1, b = 2
  CHECK(sd.at("param_groups.0.params").to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(sd.at("param_groups.1.params").to_vector<int64_t>() == std::vector<int64_t>{2});
  CHECK(sd.at("param_groups.1.lr").item<double>() == 0.5);
  CHECK(sd.at("param_groups.0.beta2").item<double>() == 0.999);
  CHECK(sd.at("param_groups.0.amsgrad").item<double>() == 1.0);
  CHECK(sd.at("state.2.step").dim() == 0);
  CHECK(sd.at("state.2.step").dtype() == kFloat64);
  CHECK(sd.at("state.2.step").item<double>() == 3.0);
  CHECK(sd.at("state.1.exp_avg").shape() == p.V.shape());
  CHECK(sd.at("state.0.max_exp_avg_sq").shape() == p.W.shape());
  CHECK(sd.size() == 2 + 2 * 7 + 3 * 4);  // params lists, 7 options per group, 4 entries per parameter

  // float32 buffers load into a float64 optimizer (cast, as torch)
  Problem q = make_problem(kFloat32);
  optim::Adam opt32(std::vector<optim::ParamGroup>{optim::ParamGroup({q.W, q.V}), optim::ParamGroup({q.b})}, {});
  run_steps(opt32, q, 2);
  Problem r = make_problem(kFloat64);
  optim::Adam opt64(std::vector<optim::ParamGroup>{optim::ParamGroup({r.W, r.V}), optim::ParamGroup({r.b})}, {});
  opt64.load_state_dict(opt32.state_dict());
  CHECK(opt64.state(r.V).tensors.at("exp_avg").dtype() == kFloat64);
  CHECK(opt64.state(r.V).scalars.at("step") == 2.0);
}

TEST_CASE("load_state_dict rejects mismatches and leaves the optimizer unchanged") {
  Problem p = make_problem(kFloat64);
  optim::SGD opt(p.params(), {.lr = 0.1, .momentum = 0.9});
  run_steps(opt, p, 2);
  io::TensorMap good = opt.state_dict();
  io::TensorMap before =
      io::load_safetensors_bytes(io::safetensors_bytes(good).data(), io::safetensors_bytes(good).size(), "copy");

  auto expect_error = [&](io::TensorMap sd, const std::string& fragment) {
    try {
      opt.load_state_dict(sd);
      FAIL("load_state_dict accepted a bad state dict; expected an error mentioning '" << fragment << "'");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    }
    io::TensorMap now = opt.state_dict();
    REQUIRE(now.size() == before.size());
    for (auto& [k, t] : before) CHECK(bit_equal(now.at(k), t));
  };
  io::TensorMap sd = good;
  sd["state.1.momentum_buffer"] = zeros({5}, kFloat64);
  expect_error(sd, "shape");
  sd = good;
  sd["param_groups.1.lr"] = scalar_tensor(0.1, kFloat64);
  expect_error(sd, "parameter group 1");
  sd = good;
  sd["param_groups.0.params"] = tensor(std::vector<int64_t>{0, 1}, {2});
  expect_error(sd, "parameter(s)");
  sd = good;
  sd["state.7.momentum_buffer"] = zeros({4}, kFloat64);
  expect_error(sd, "state for parameter 7");
  sd = good;
  sd["encoder.weight"] = zeros({4}, kFloat64);
  expect_error(sd, "unexpected key");
  sd = good;
  sd["state.x.step"] = zeros({}, kFloat64);
  expect_error(sd, "malformed key");
  sd = good;
  sd.erase("param_groups.0.params");
  sd.erase("param_groups.0.lr");
  sd.erase("param_groups.0.momentum");
  sd.erase("param_groups.0.dampening");
  sd.erase("param_groups.0.weight_decay");
  sd.erase("param_groups.0.nesterov");
  sd.erase("param_groups.0.maximize");
  expect_error(sd, "no entries for parameter group 0");
}

TEST_CASE("optimizers refuse bad options and bad parameters with clear errors") {
  Problem p = make_problem(kFloat64);
  CHECK_THROWS_WITH(optim::SGD(p.params(), {}), Catch::Contains("lr is required"));
  CHECK_THROWS_WITH(optim::SGD(p.params(), {.lr = 0.1, .nesterov = true}), Catch::Contains("Nesterov"));
  CHECK_THROWS_WITH(optim::SGD(p.params(), {.lr = -1.0}), Catch::Contains("learning rate"));
  CHECK_THROWS_WITH(optim::Adam(p.params(), {.betas = {1.0, 0.999}}), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(optim::RMSprop(p.params(), {.alpha = -0.5}), Catch::Contains("alpha"));
  CHECK_THROWS_WITH(optim::Adagrad(p.params(), {.lr_decay = -1.0}), Catch::Contains("lr_decay"));
  CHECK_THROWS_WITH(optim::SGD(std::vector<Tensor>{}, {.lr = 0.1}), Catch::Contains("empty parameter list"));
  CHECK_THROWS_WITH(
      optim::SGD(std::vector<optim::ParamGroup>{optim::ParamGroup({p.W}, {{"momentun", 0.9}})}, {.lr = 0.1}),
      Catch::Contains("unknown option 'momentun'"));
  CHECK_THROWS_WITH(
      optim::SGD(std::vector<optim::ParamGroup>{optim::ParamGroup({p.W, p.b}), optim::ParamGroup({p.W})}, {.lr = 0.1}),
      Catch::Contains("more than one parameter group"));
  Tensor nonleaf = mul(p.W, 2.0);
  CHECK_THROWS_WITH(optim::SGD({nonleaf}, {.lr = 0.1}), Catch::Contains("non-leaf"));
  CHECK_THROWS_WITH(optim::SGD({tensor(std::vector<int64_t>{1, 2}, {2})}, {.lr = 0.1}), Catch::Contains("int64"));
  CHECK_THROWS_WITH(optim::LBFGS(p.params(), {.line_search_fn = "backtracking"}), Catch::Contains("strong_wolfe"));
  optim::LBFGS lb(p.params());
  CHECK_THROWS_WITH(lb.step(), Catch::Contains("closure"));
  CHECK_THROWS_WITH(lb.add_param_group(optim::ParamGroup({leaf(zeros({2}), kFloat64)})),
                    Catch::Contains("parameter groups"));
  CHECK_THROWS_WITH(optim::LBFGS({p.W, leaf(zeros({2}), kFloat32)}), Catch::Contains("one dtype"));
  optim::LBFGS lb2({p.W});
  CHECK_THROWS_WITH(lb2.step([] { return zeros({2}, kFloat64); }), Catch::Contains("one-element"));
}

TEST_CASE("zero_grad, skipped parameters, add_param_group and version counters") {
  Problem p = make_problem(kFloat64);
  optim::Adam opt({p.W, p.V}, {.lr = 0.01});
  p.loss().backward();
  opt.zero_grad(false);  // zeroes in place
  REQUIRE(p.W.grad().defined());
  CHECK(p.W.grad().abs().max().item<double>() == 0.0);
  opt.zero_grad();  // default: set_to_none
  CHECK(!p.W.grad().defined());

  // a parameter without a gradient is skipped: no state, no change
  Tensor W_before = p.W.detach().clone();
  p.V.set_grad(ones_like(p.V));
  const uint32_t v0 = p.V.version();
  opt.step();
  CHECK(opt.state(p.W).empty());
  CHECK(allclose(p.W, W_before, 0, 0));
  CHECK(opt.state(p.V).scalars.at("step") == 1.0);
  CHECK(p.V.version() > v0);  // updates are in-place writes: saved tensors see them

  // a group added later takes the defaults, with its own lr
  opt.add_param_group(optim::ParamGroup({p.b}, {{"lr", 0.5}}));
  REQUIRE(opt.param_groups().size() == 2);
  CHECK(opt.param_groups()[1].lr() == 0.5);
  CHECK(opt.param_groups()[1].get("beta1") == 0.9);
  Tensor b_before = p.b.detach().clone();
  p.b.set_grad(ones_like(p.b));
  opt.step();
  // Adam's first step moves each element by lr (m / sqrt(v) = sign(g) after bias correction)
  CHECK_CLOSE(p.b, sub(b_before, full(p.b.shape(), 0.5, kFloat64)), 1e-6, 1e-6);
}

TEST_CASE("fused updates: non-contiguous parameters, large tensors, any thread count") {
  // a non-contiguous leaf is updated through a staging copy, exactly as a contiguous one
  Tensor base = randn({3, 5}, kFloat64);
  Tensor nc = base.t();  // (5, 3), strides (1, 5)
  nc.requires_grad_(true);
  REQUIRE(!nc.is_contiguous());
  Tensor c = nc.detach().contiguous().clone();
  c.requires_grad_(true);
  Tensor g = randn({5, 3}, kFloat64);
  optim::SGD o1({nc}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  optim::SGD o2({c}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  for (int s = 0; s < 3; ++s) {
    nc.set_grad(g.t().contiguous().t());  // a non-contiguous gradient too
    c.set_grad(g);
    o1.step();
    o2.step();
  }
  CHECK(bit_equal(nc.contiguous(), c));
  CHECK(allclose(base.t(), c, 0, 0));  // the update landed in the viewed storage

  // a tensor large enough to be split across threads: same bits with 1 and 2
  // threads, and the same bits as a short tensor holding its last elements (which
  // go through other vector lanes and the scalar tail: the vectorized sqrt is exact)
  const int saved = get_num_threads();
  const int64_t n = 300007, k = 29;
  Tensor init = randn({n}, kFloat32), grad = randn({n}, kFloat32);
  for (const std::string opt_name : {"adamw", "rmsprop", "adagrad", "sgd"}) {
    INFO("optimizer " << opt_name);
    auto make = [&](Tensor w) -> std::unique_ptr<optim::Optimizer> {
      if (opt_name == "adamw")
        return std::make_unique<optim::AdamW>(std::vector<Tensor>{w}, optim::AdamWOptions{.lr = 0.01, .amsgrad = true});
      if (opt_name == "rmsprop")
        return std::make_unique<optim::RMSprop>(
            std::vector<Tensor>{w}, optim::RMSpropOptions{.weight_decay = 0.1, .momentum = 0.5, .centered = true});
      if (opt_name == "adagrad")
        return std::make_unique<optim::Adagrad>(std::vector<Tensor>{w}, optim::AdagradOptions{.weight_decay = 0.1});
      return std::make_unique<optim::SGD>(
          std::vector<Tensor>{w}, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
    };
    std::vector<Tensor> results;
    for (int threads : {1, 2, 1}) {
      set_num_threads(threads);
      const bool short_run = results.size() == 2;
      Tensor w = short_run ? init.slice(0, n - k, n).clone() : init.clone();
      Tensor gw = short_run ? grad.slice(0, n - k, n).contiguous() : grad;
      w.requires_grad_(true);
      auto opt = make(w);
      for (int s = 0; s < 3; ++s) {
        w.set_grad(gw);
        opt->step();
      }
      results.push_back(w.detach());
    }
    set_num_threads(saved);
    CHECK(bit_equal(results[0], results[1]));
    CHECK(bit_equal(results[0].slice(0, n - k, n), results[2]));
    if (opt_name == "adamw") {  // spot check two elements against the AdamW formulas
      std::vector<float> wi = init.to_vector<float>(), gi = grad.to_vector<float>(), wr = results[0].to_vector<float>();
      for (int64_t idx : {int64_t(12345), n - 1}) {
        double w = wi[static_cast<size_t>(idx)], gg = gi[static_cast<size_t>(idx)], m = 0, v = 0, vmax = 0;
        for (int t = 1; t <= 3; ++t) {
          w *= 1 - 0.01 * 0.01;
          m = 0.9 * m + 0.1 * gg;
          v = 0.999 * v + 0.001 * gg * gg;
          vmax = std::max(vmax, v);
          w -= 0.01 / (1 - std::pow(0.9, t)) * m / (std::sqrt(vmax) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8);
        }
        CHECK(std::abs(wr[static_cast<size_t>(idx)] - w) < 1e-5);
      }
    }
  }
}

TEST_CASE("the vectorized square root is exact: Adagrad's first step equals the scalar formula bit for bit") {
  // From a zero accumulator: p - clr g / (sqrt(g*g) + eps), a formula with no
  // multiply-add the compiler could fuse differently, computed here with std::sqrt.
  for (Dtype dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    const int64_t n = 1003;
    Tensor init = mul(randn({n}, dt), 3.0), grad = mul(randn({n}, dt), exp(mul(randn({n}, dt), 4.0)));
    Tensor w = init.clone();
    w.requires_grad_(true);
    w.set_grad(grad);
    optim::Adagrad opt({w}, {.lr = 0.3, .eps = 1e-10});
    opt.step();
    dispatch_float(dt, "test", [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<T> p0 = init.to_vector<T>(), g = grad.to_vector<T>(), got = w.detach().to_vector<T>();
      int64_t mismatches = 0;
      for (size_t i = 0; i < p0.size(); ++i) {
        const T s = g[i] * g[i];
        const T want = p0[i] + (T(-0.3) * g[i]) / (std::sqrt(s) + T(1e-10));
        if (std::memcmp(&want, &got[i], sizeof(T)) != 0) ++mismatches;
      }
      CHECK(mismatches == 0);
    });
  }
}
