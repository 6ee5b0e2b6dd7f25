// Golden tests of the flows against PyTorch (tests/fixtures/make_flow_fixtures.py, which
// writes the same models in PyTorch with the same state-dict keys): RealNVP (MLP, the
// reference configuration's structure at small sizes), multi-scale RealNVP, Glow (LU 1x1
// convolutions with learned priors; plain 1x1 convolutions with additive coupling; on
// vectors). For each: z, logdet, log p, bits/dim, ActNorm's data-dependent init, the
// gradients of the mean NLL w.r.t. every parameter and the input, a temperature-0.7
// sample, and 5 Adam(1e-3) steps. float64: 1e-9 (Adam losses 1e-9); float32: log p and
// bits/dim 1e-4 relative, gradients 2e-3 relative to the largest entry.
#include "flow_test_util.hpp"

#include <genai/optim/adam.hpp>

using namespace genai;
using namespace flow_test;
using genai_test::fixture;
using genai_test::fixtures;

namespace {

const char* kFile = "flow.safetensors";

std::shared_ptr<flow::Flow> build(const std::string& name) {
  if (name == "realnvp")
    return std::make_shared<flow::Flow>(
        std::make_shared<flow::RealNVP>(flow::RealNVPConfig{.dim = 6, .hidden = 8, .n_couplings = 4}), Shape{6},
        std::make_shared<flow::LogitTransform>(0.05));
  if (name == "realnvp_conv")
    return std::make_shared<flow::Flow>(
        std::make_shared<flow::RealNVPConv>(flow::RealNVPConvConfig{.in_channels = 1, .image_size = 4, .n_scales = 2, .hidden = 4}),
        Shape{1, 4, 4}, std::make_shared<flow::LogitTransform>(0.05));
  if (name == "glow")
    return std::make_shared<flow::Flow>(
        std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {2, 4, 4}, .n_levels = 2, .n_steps = 2, .hidden = 6, .lu = true}),
        Shape{2, 4, 4}, std::make_shared<flow::ScaleShift>(1.0, -0.5));
  if (name == "glow_plain")
    return std::make_shared<flow::Flow>(
        std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {1, 4, 4}, .n_levels = 2, .n_steps = 1, .hidden = 5,
                                                      .lu = false, .coupling = flow::CouplingKind::Additive,
                                                      .split_prior = false, .learn_top = false}),
        Shape{1, 4, 4}, std::make_shared<flow::ScaleShift>(1.0, -0.5));
  if (name == "glow_vec")
    return std::make_shared<flow::Flow>(
        std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {4}, .n_steps = 2, .hidden = 8, .lu = true}), Shape{4});
  FAIL("unknown model " << name);
  return nullptr;
}

io::TensorMap with_prefix(const std::string& prefix) {
  io::TensorMap m;
  for (auto& [k, v] : fixtures(kFile))
    if (k.rfind(prefix, 0) == 0) m.emplace(k.substr(prefix.size()), v);
  return m;
}

/// Largest |a - b| relative to the largest |b| (gradients span orders of magnitude).
double rel_err(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0, m = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d = std::max(d, std::abs(x[i] - y[i]));
    m = std::max(m, std::abs(y[i]));
  }
  return d / std::max(m, 1e-300);
}

void golden(const std::string& name, Dtype dt) {
  INFO("model " << name << " in " << dtype_name(dt));
  const std::string p = name + ".";
  const bool f64 = dt == kFloat64;
  const double tol = f64 ? 1e-9 : 1e-4;
  auto model = build(name);
  model->to(dt);
  model->load_state_dict(with_prefix(p + "init."));
  Tensor x = fixture(kFile, p + "x").to(dt), u = fixture(kFile, p + "u").to(dt);
  Tensor y = model->dequantize(x, u).requires_grad_();
  flow::FlowOutput o = model->forward(y);  // runs ActNorm's data-dependent init, as in PyTorch
  for (auto& [k, v] : with_prefix(p + "after_init.")) {
    INFO("after init: " << k);
    CHECK_CLOSE(model->state_dict().at(k), v, tol, tol);
  }
  CHECK_CLOSE(o.z, fixture(kFile, p + "z"), tol, tol);
  CHECK_CLOSE(o.logdet, fixture(kFile, p + "logdet"), tol, tol);
  Tensor lp = add(flow::standard_normal_log_prob(o.z), o.logdet);
  CHECK_CLOSE(lp, fixture(kFile, p + "log_prob"), tol, tol);
  CHECK_CLOSE(model->log_prob(y.detach()), fixture(kFile, p + "log_prob"), tol, tol);
  CHECK_CLOSE(model->bits_per_dim(x, u), fixture(kFile, p + "bpd"), tol, tol);
  Tensor loss = neg(mean(lp));
  CHECK_CLOSE(loss, fixture(kFile, p + "loss"), tol, tol);
  model->zero_grad();
  loss.backward();
  const double gtol = f64 ? 1e-9 : 2e-3;
  int n_grads = 0;
  for (auto& [k, param] : model->named_parameters()) {
    INFO("grad of " << k);
    REQUIRE(param.grad().defined());
    CHECK(rel_err(param.grad(), fixture(kFile, p + "grad." + k)) <= gtol);
    ++n_grads;
  }
  CHECK(n_grads == static_cast<int>(with_prefix(p + "grad.").size()));
  CHECK(rel_err(y.grad(), fixture(kFile, p + "grad_y")) <= gtol);
  Tensor s = model->sample_from(fixture(kFile, p + "sample.eps").to(dt), 0.7);
  CHECK(rel_err(s, fixture(kFile, p + "sample.x")) <= (f64 ? 1e-9 : 1e-3));
  // Adam steps on the fixed batch (ActNorm is initialized)
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  Tensor yd = y.detach();
  std::vector<double> losses;
  for (int i = 0; i < 5; ++i) {
    opt.zero_grad();
    Tensor l = model->nll(yd);
    l.backward();
    opt.step();
    losses.push_back(l.item<double>());
  }
  CHECK_CLOSE(tensor(losses, {5}, kFloat64), fixture(kFile, p + "adam_losses"), f64 ? 1e-9 : 1e-4, f64 ? 1e-9 : 1e-4);
}

}  // namespace

TEST_CASE("flow golden: RealNVP (MLP) vs PyTorch", "[flow][golden]") {
  golden("realnvp", kFloat64);
  golden("realnvp", kFloat32);
  // the body alone, on Gaussian data: the reference configuration's NLL under N(0, I)
  auto model = build("realnvp");
  model->to(kFloat64);
  model->load_state_dict(with_prefix("realnvp.init."));
  flow::FlowOutput o = model->body->forward(fixture(kFile, "realnvp.plain.x"));
  CHECK_CLOSE(o.z, fixture(kFile, "realnvp.plain.z"), 1e-10, 1e-10);
  CHECK_CLOSE(o.logdet, fixture(kFile, "realnvp.plain.logdet"), 1e-10, 1e-10);
  // the state-dict keys are PyTorch's
  auto sd = model->state_dict();
  CHECK(sd.count("body.couplings.0.mask") == 1);
  CHECK(sd.count("body.couplings.3.net.4.weight") == 1);
}

TEST_CASE("flow golden: multi-scale RealNVP vs PyTorch", "[flow][golden]") {
  golden("realnvp_conv", kFloat64);
  golden("realnvp_conv", kFloat32);
}

TEST_CASE("flow golden: Glow vs PyTorch", "[flow][golden]") {
  for (const char* m : {"glow", "glow_plain", "glow_vec"}) {
    golden(m, kFloat64);
    golden(m, kFloat32);
  }
}
