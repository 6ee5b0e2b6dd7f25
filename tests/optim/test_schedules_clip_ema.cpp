// LR schedules vs PyTorch 1.13 (and nanoGPT's get_lr) over 50 steps, their state
// round trip; clip_grad_norm_ / clip_grad_value_ vs torch.nn.utils; the parameter
// EMA vs a hand computation.
#include <cmath>

#include "optim/optim_test_util.hpp"

using namespace genai;
using namespace optim_test;

namespace {

/// The fixture's schedule optimizer: two groups with base lr 0.1 and 0.05.
struct SchedSetup {
  Tensor p1 = leaf(zeros({2}), kFloat32), p2 = leaf(zeros({2}), kFloat32);
  std::unique_ptr<optim::Optimizer> opt;
  explicit SchedSetup(bool adam) {
    std::vector<optim::ParamGroup> groups{optim::ParamGroup({p1}), optim::ParamGroup({p2}, {{"lr", 0.05}})};
    if (adam)
      opt = std::make_unique<optim::Adam>(groups, optim::AdamOptions{.lr = 0.1});
    else
      opt = std::make_unique<optim::SGD>(groups, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  }
};

std::unique_ptr<optim::LRScheduler> make_scheduler(const std::string& name, optim::Optimizer& opt) {
  if (name == "steplr") return std::make_unique<optim::StepLR>(opt, 7, 0.5);
  if (name == "explr") return std::make_unique<optim::ExponentialLR>(opt, 0.95);
  if (name == "cosine") return std::make_unique<optim::CosineAnnealingLR>(opt, 20, 0.001);
  if (name == "onecycle") return std::make_unique<optim::OneCycleLR>(opt, std::vector<double>{0.1, 0.05}, 50);
  if (name == "onecycle3")
    return std::make_unique<optim::OneCycleLR>(
        opt, 0.2, 50, optim::OneCycleLROptions{.pct_start = 0.25, .anneal_strategy = "linear", .three_phase = true});
  if (name == "warmup_cosine") return std::make_unique<optim::WarmupCosineLR>(opt, 10, 40, 1e-3);
  FAIL("unknown scheduler " << name);
  return nullptr;
}

}  // namespace

TEST_CASE("LR schedules match PyTorch (chainable forms) and nanoGPT over 50 steps") {
  for (std::string name : {"steplr", "explr", "cosine", "onecycle", "onecycle3", "warmup_cosine"}) {
    INFO("schedule " << name);
    const bool adam = name == "onecycle3";
    SchedSetup s(adam);
    auto sched = make_scheduler(name, *s.opt);
    std::vector<double> lrs, moms;
    auto record = [&] {
      for (double v : sched->get_last_lr()) lrs.push_back(v);
      for (const auto& g : s.opt->param_groups()) moms.push_back(g.get(adam ? "beta1" : "momentum"));
    };
    record();
    for (int i = 0; i < 50; ++i) {
      s.opt->step();
      sched->step();
      record();
    }
    CHECK(sched->last_epoch() == 50);
    CHECK(s.opt->param_groups()[1].lr() == lrs.back());
    Tensor got = tensor(lrs, {51, 2}, kFloat64);
    CHECK_CLOSE(got, genai_test::fixture(kFixture, "sched." + name + ".lr"), 1e-13, 1e-15);
    if (name.rfind("onecycle", 0) == 0)
      CHECK_CLOSE(tensor(moms, {51, 2}, kFloat64), genai_test::fixture(kFixture, "sched." + name + ".momentum"), 1e-13,
                  1e-15);
  }
}

TEST_CASE("LR schedules resume from their state dict and the optimizer's") {
  for (std::string name : {"steplr", "explr", "cosine", "onecycle", "onecycle3", "warmup_cosine"}) {
    INFO("schedule " << name);
    const bool adam = name == "onecycle3";
    SchedSetup a(adam);
    auto sa = make_scheduler(name, *a.opt);
    std::vector<double> straight;
    for (int i = 0; i < 40; ++i) {
      sa->step();
      straight.push_back(sa->get_last_lr()[0]);
      straight.push_back(sa->get_last_lr()[1]);
    }
    SchedSetup b(adam);
    auto sb = make_scheduler(name, *b.opt);
    std::vector<double> resumed;
    for (int i = 0; i < 15; ++i) {
      sb->step();
      resumed.push_back(sb->get_last_lr()[0]);
      resumed.push_back(sb->get_last_lr()[1]);
    }
    io::TensorMap sched_sd = sb->state_dict(), opt_sd = b.opt->state_dict();
    auto bytes1 = io::safetensors_bytes(sched_sd), bytes2 = io::safetensors_bytes(opt_sd);
    SchedSetup c(adam);
    auto sc = make_scheduler(name, *c.opt);  // a fresh schedule (its initial step is overwritten below)
    c.opt->load_state_dict(io::load_safetensors_bytes(bytes2.data(), bytes2.size(), "opt"));
    sc->load_state_dict(io::load_safetensors_bytes(bytes1.data(), bytes1.size(), "sched"));
    CHECK(sc->last_epoch() == 15);
    for (int i = 0; i < 25; ++i) {
      sc->step();
      resumed.push_back(sc->get_last_lr()[0]);
      resumed.push_back(sc->get_last_lr()[1]);
    }
    CHECK(resumed == straight);
  }
}

TEST_CASE("LR schedules: torch's edge behaviors and errors") {
  SchedSetup s(false);
  optim::OneCycleLR oc(*s.opt, 0.1, 5);
  for (int i = 0; i < 5; ++i) oc.step();
  CHECK_THROWS_WITH(oc.step(), Catch::Contains("total steps is 5"));

  SchedSetup s2(false);
  CHECK_THROWS_WITH(optim::StepLR(*s2.opt, 3, 0.5, /*last_epoch=*/4), Catch::Contains("initial_lr"));
  CHECK_THROWS_WITH(optim::WarmupCosineLR(*s2.opt, 10, 10, 0.0), Catch::Contains("lr_decay_iters"));

  Tensor p = leaf(zeros({2}), kFloat32);
  optim::Adagrad ada({p});
  CHECK_THROWS_WITH(optim::OneCycleLR(ada, 0.1, 10), Catch::Contains("momentum"));
  optim::OneCycleLR ok(ada, 0.1, 10, {.cycle_momentum = false});
  CHECK(std::abs(ok.get_last_lr()[0] - 0.1 / 25) < 1e-16);

  // StepLR composes with a manual lr change (chainable form): the decay applies to the new lr
  SchedSetup s3(false);
  optim::StepLR st(*s3.opt, 2, 0.5);
  st.step();
  s3.opt->param_groups()[0].set_lr(1.0);
  st.step();  // last_epoch 2: decays
  CHECK(st.get_last_lr()[0] == 0.5);
}

TEST_CASE("clip_grad_norm_ and clip_grad_value_ match torch.nn.utils") {
  const std::vector<std::pair<std::string, std::pair<double, double>>> cases = {
      {"p2", {2.0, 1.0}}, {"p1", {1.0, 2.0}}, {"p3.5", {3.5, 1.5}}, {"inf", {INFINITY, 0.5}}, {"noclip", {2.0, 100.0}}};
  for (Dtype dt : {kFloat64, kFloat32}) {
    const double tol = dt == kFloat64 ? 1e-13 : 2e-6;
    for (const auto& [name, pm] : cases) {
      INFO("case " << name << " (" << dtype_name(dt) << ")");
      std::vector<Tensor> ps;
      for (int i = 0; i < 3; ++i) {
        Tensor g = genai_test::fixture(kFixture, "clip.g" + std::to_string(i));
        Tensor p = leaf(zeros(g.shape()), dt);
        p.set_grad(g.to(dt).clone());
        ps.push_back(p);
      }
      ps.push_back(leaf(zeros({2}), dt));  // no gradient: skipped
      double total = optim::clip_grad_norm_(ps, pm.second, pm.first);
      double want = genai_test::fixture(kFixture, "clip." + name + ".total").item<double>();
      CHECK(std::abs(total - want) <= tol * want);
      for (int i = 0; i < 3; ++i)
        CHECK_CLOSE(ps[static_cast<size_t>(i)].grad(),
                    genai_test::fixture(kFixture, "clip." + name + ".g" + std::to_string(i)), tol, tol);
      CHECK(!ps[3].grad().defined());
    }
    std::vector<Tensor> ps;
    for (int i = 0; i < 3; ++i) {
      Tensor g = genai_test::fixture(kFixture, "clip.g" + std::to_string(i));
      Tensor p = leaf(zeros(g.shape()), dt);
      p.set_grad(g.to(dt).clone());
      ps.push_back(p);
    }
    optim::clip_grad_value_(ps, 0.5);
    for (int i = 0; i < 3; ++i)
      CHECK_CLOSE(ps[static_cast<size_t>(i)].grad(), genai_test::fixture(kFixture, "clip.value.g" + std::to_string(i)),
                  dt == kFloat64 ? 0.0 : 1e-7, 0.0);
  }
  // no gradients at all: total norm 0; non-finite norms throw on request
  Tensor p = leaf(zeros({3}), kFloat64);
  CHECK(optim::clip_grad_norm_({p}, 1.0) == 0.0);
  p.set_grad(tensor({1.0, NAN, 2.0}, kFloat64));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({p}, 1.0, 2.0, true), Catch::Contains("non-finite"));
  CHECK(std::isnan(optim::clip_grad_norm_({p}, 1.0)));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({p}, 1.0, 0.0), Catch::Contains("norm_type"));
}

TEST_CASE("ExponentialMovingAverage matches a hand computation, with and without warmup") {
  for (bool warmup : {true, false}) {
    INFO("use_num_updates = " << warmup);
    Tensor a = leaf(tensor({1.0, -2.0, 3.0}, kFloat64), kFloat64);
    Tensor b = leaf(tensor({0.5, 0.25, -1.0, 4.0}, {2, 2}, kFloat32), kFloat32);
    optim::ExponentialMovingAverage ema({a, b}, 0.9, warmup);
    std::vector<double> sa = a.to_vector<double>(), sb = b.to_vector<double>();
    for (int n = 1; n <= 30; ++n) {
      {  // move the parameters as training would
        NoGradGuard ng;
        a.add_(full({3}, 0.1 * n, kFloat64));
        b.mul_(full({2, 2}, 0.97, kFloat32));
      }
      ema.update();
      double decay = warmup ? std::min(0.9, (1.0 + n) / (10.0 + n)) : 0.9;
      std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
      for (size_t i = 0; i < sa.size(); ++i) sa[i] -= (1 - decay) * (sa[i] - av[i]);
      for (size_t i = 0; i < sb.size(); ++i)
        sb[i] =
            static_cast<float>(static_cast<float>(sb[i]) -
                               static_cast<float>(1 - decay) * (static_cast<float>(sb[i]) - static_cast<float>(bv[i])));
    }
    CHECK(ema.num_updates() == (warmup ? 30 : -1));
    CHECK_CLOSE(ema.shadow_params()[0], tensor(sa, {3}, kFloat64), 1e-14, 1e-14);
    CHECK_CLOSE(ema.shadow_params()[1], tensor(sb, {2, 2}, kFloat64), 1e-6, 1e-7);
    CHECK(ema.shadow_params()[1].dtype() == kFloat32);

    // store / copy_to / restore
    Tensor a_now = a.detach().clone();
    ema.store();
    ema.copy_to();
    CHECK_CLOSE(a, tensor(sa, {3}, kFloat64), 1e-14, 1e-14);
    ema.restore();
    CHECK(allclose(a, a_now, 0, 0));

    // state round trip
    auto bytes = io::safetensors_bytes(ema.state_dict());
    optim::ExponentialMovingAverage other({a, b}, 0.5, !warmup);
    other.load_state_dict(io::load_safetensors_bytes(bytes.data(), bytes.size(), "ema"));
    CHECK(other.decay() == 0.9);
    CHECK(other.num_updates() == ema.num_updates());
    ema.update();
    other.update();
    CHECK(allclose(other.shadow_params()[0], ema.shadow_params()[0], 0, 0));
    CHECK(allclose(other.shadow_params()[1], ema.shadow_params()[1], 0, 0));
  }
  Tensor a = leaf(zeros({3}), kFloat64);
  optim::ExponentialMovingAverage ema({a}, 0.99);
  CHECK_THROWS_WITH(ema.update({leaf(zeros({4}), kFloat64)}), Catch::Contains("shape"));
  CHECK_THROWS_WITH(ema.restore(), Catch::Contains("store()"));
  CHECK_THROWS_WITH(optim::ExponentialMovingAverage({a}, 1.5), Catch::Contains("decay"));
}
