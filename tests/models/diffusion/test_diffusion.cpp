// Golden tests of the diffusion models (include/genai/models/diffusion/) against PyTorch
// (tests/fixtures/make_diffusion_fixtures.py): sinusoidal features and noise schedules; the
// U-Net's output, training loss and every parameter gradient (a class-conditional net with
// attention at a level and in the middle, and the reference layout at an odd size where the
// up path crops); the targets, x0 / eps conversions and loss weightings; 3 Adam steps; the
// parameter names and shapes of the ddpm_unet reference configuration; the samplers (DDPM with
// both variances, DDIM with eta 0 / 0.5 / 1, eps / x0 / v outputs, classifier-free guidance)
// given the same noise, after their first step and at the end; DDIM inversion; the variational
// bound in bits/dim. Plus: DDIM with eta 0 is deterministic, inversion round trips, the
// U-Net passes a finite-difference gradcheck, training lowers the loss, bad input throws.
//
// Tolerances: float64 rtol 1e-9 / atol 1e-11 (forward, loss, gradients, samplers); float32
// rtol 1e-4 / atol 1e-5 for forward and loss, 2e-3 / 1e-5 for gradients (GroupNorm over 1-2
// channels amplifies rounding) and 1e-3 / 1e-4 for multi-step samplers.
#include "test_util.hpp"

#include <genai/models/diffusion/diffusion.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
namespace D = genai::models::diffusion;
static const char* kFile = "diffusion.safetensors";

namespace {

Tensor fx(const std::string& name, Dtype d) {
  Tensor t = genai_test::fixture(kFile, name);
  return is_floating(t.dtype()) ? t.to(d).clone() : t.clone();
}

io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

D::UNetConfig small_cfg() {
  D::UNetConfig c;
  c.image_size = 8;
  c.base_channels = 2;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attn_resolutions = {4};
  c.num_heads = 2;
  c.num_groups = 2;
  c.time_features = 8;
  c.time_dim = 8;
  c.num_classes = 3;
  c.zero_init = false;
  return c;
}

D::UNetConfig ref_small_cfg() {
  D::UNetConfig c;
  c.image_size = 7;
  c.base_channels = 2;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 2;
  c.num_heads = 1;
  c.num_groups = 1;
  c.time_features = 8;
  c.time_dim = 4;
  c.zero_init = false;
  return c;
}

std::shared_ptr<D::UNet> load(const D::UNetConfig& c, const std::string& prefix, Dtype d) {
  auto m = std::make_shared<D::UNet>(c);
  m->to(d);
  m->load_state_dict(sub_map(prefix));  // strict: every PyTorch name and shape
  return m;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype d) { return d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-4, 1e-5}; }
Tol grad_tol(Dtype d) { return d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{2e-3, 1e-5}; }
Tol multi_step_tol(Dtype d) { return d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-3, 1e-4}; }

D::NoiseSchedule small_schedule() { return D::NoiseSchedule(fx("samp.betas", kFloat64).to_vector<double>()); }

/// The fixture's per-step noise as a NoiseFn.
D::NoiseFn fixture_noise(const std::string& name, Dtype d) {
  Tensor all = fx(name, d);
  return [all](int64_t step, const Shape& s) {
    Tensor z = all[step];
    REQUIRE(z.shape() == s);
    return z;
  };
}

}  // namespace

TEST_CASE("diffusion: sinusoidal timestep features match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    Tol t = tol_for(d);
    Tensor ts = fx("emb.t", d);
    CHECK_CLOSE(D::timestep_embedding(ts, 32, d), fx("emb.features32", d), t.rtol, t.atol);
    CHECK_CLOSE(D::timestep_embedding(ts, 8, d), fx("emb.features8", d), t.rtol, t.atol);
  }
  CHECK_THROWS_WITH(D::timestep_embedding(tensor({1.0}), 7), Catch::Contains("even"));
}

TEST_CASE("diffusion: linear and cosine schedules match PyTorch") {
  for (auto [kind, name] : {std::pair{D::BetaSchedule::Linear, "linear"}, std::pair{D::BetaSchedule::Cosine, "cosine"}}) {
    INFO(name);
    D::NoiseSchedule s({.num_timesteps = 1000, .schedule = kind});
    const std::string p = std::string("sched.") + name + ".";
    CHECK_CLOSE(tensor(s.betas, {1000}, kFloat64), fx(p + "betas", kFloat64), 1e-12, 1e-15);
    std::vector<double> ac, lv;
    for (size_t i = 0; i < 1000; i += 37) {
      ac.push_back(s.alphas_cumprod[i]);
      lv.push_back(s.posterior_log_variance_clipped[i]);
    }
    const int64_t n = static_cast<int64_t>(ac.size());
    CHECK_CLOSE(tensor(ac, {n}, kFloat64), fx(p + "alphas_cumprod", kFloat64), 1e-12, 1e-15);
    CHECK_CLOSE(tensor(lv, {n}, kFloat64), fx(p + "posterior_log_variance_clipped", kFloat64), 1e-12, 1e-15);
  }
  D::NoiseSchedule lin;
  CHECK(lin.betas.front() == Approx(1e-4));
  CHECK(lin.betas.back() == Approx(0.02));
  CHECK(lin.alphas_cumprod.back() < 1e-4);  // x_T is almost pure noise
  CHECK_THROWS_WITH(D::NoiseSchedule(D::ScheduleConfig{.num_timesteps = 0}), Catch::Contains("num_timesteps"));
  CHECK_THROWS_WITH(D::NoiseSchedule(std::vector<double>{0.1, 1.5}), Catch::Contains("betas"));
  CHECK_THROWS_WITH(D::parse_beta_schedule("quadratic"), Catch::Contains("quadratic"));
}

TEST_CASE("diffusion: U-Net forward, loss and parameter gradients match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d), gt = grad_tol(d);
    auto net = load(small_cfg(), "unet.w", d);
    Tensor ts = fx("unet.t", d), y = fx("unet.y", d);
    CHECK_CLOSE(net->forward(fx("unet.x", d), ts, y), fx("unet.out", d), t.rtol, t.atol);
    CHECK_CLOSE(net->forward(fx("unet.x", d), ts), fx("unet.out_null", d), t.rtol, t.atol);  // no labels: null class

    D::NoiseSchedule s;
    Tensor x0 = fx("unet.x0", d), noise = fx("unet.noise", d);
    CHECK_CLOSE(s.q_sample(x0, ts, noise), fx("unet.x_t", d), t.rtol, t.atol);
    Tensor loss = D::training_loss(*net, s, x0, ts, noise, y);
    CHECK_CLOSE(loss, fx("unet.loss", d), t.rtol, t.atol);
    loss.backward();
    for (const auto& [name, p] : net->named_parameters()) {
      INFO("parameter " << name);
      REQUIRE(p.grad().defined());
      CHECK_CLOSE(p.grad(), fx("unet.grad." + name, d), gt.rtol, gt.atol);
    }
  }
}

TEST_CASE("diffusion: targets, x0 / eps conversions and loss weightings match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto net = load(small_cfg(), "unet.w", d);
    D::NoiseSchedule s;
    Tensor ts = fx("unet.t", d), x0 = fx("unet.x0", d), noise = fx("unet.noise", d), xt = fx("unet.x_t", d);
    NoGradGuard ng;
    Tensor out = net->forward(xt, ts, fx("unet.y", d));
    for (auto [kind, kname] : {std::pair{D::Prediction::Epsilon, "eps"}, std::pair{D::Prediction::X0, "x0"},
                               std::pair{D::Prediction::V, "v"}}) {
      INFO(kname);
      const std::string k = kname;
      CHECK_CLOSE(s.target(kind, x0, noise, ts), fx("unet.target." + k, d), t.rtol, t.atol);
      CHECK_CLOSE(s.predict_x0(kind, xt, ts, out), fx("unet.pred_x0." + k, d), t.rtol, t.atol);
      CHECK_CLOSE(s.predict_eps(kind, xt, ts, out), fx("unet.pred_eps." + k, d), t.rtol, t.atol);
      // the conversions are inverse to the target: the exact target gives back x0 and the noise
      CHECK_CLOSE(s.predict_x0(kind, xt, ts, s.target(kind, x0, noise, ts)), x0, d == kFloat64 ? 1e-9 : 1e-3, 1e-5);
      for (auto [w, wname] : {std::pair{D::LossWeighting::Constant, "constant"}, std::pair{D::LossWeighting::MinSNR, "min-snr"},
                              std::pair{D::LossWeighting::P2, "p2"}}) {
        INFO(wname);
        D::LossOptions o{.prediction = kind, .weighting = w, .snr_gamma = 5.0, .p2_gamma = 1.0, .p2_k = 1.0};
        CHECK_CLOSE(D::diffusion_loss(out, x0, noise, ts, s, o), fx("unet.loss." + k + "." + wname, d), t.rtol, t.atol);
      }
    }
    CHECK_CLOSE(s.posterior_mean(x0, xt, ts), fx("unet.post_mean", d), t.rtol, t.atol);
  }
  CHECK(D::parse_prediction("v") == D::Prediction::V);
  CHECK(D::parse_loss_weighting("min-snr") == D::LossWeighting::MinSNR);
  CHECK_THROWS_WITH(D::parse_prediction("score"), Catch::Contains("score"));
}

TEST_CASE("diffusion: three Adam steps follow PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto net = load(small_cfg(), "unet.w", d);
    optim::Adam opt(net->parameters(), {.lr = 1e-3});
    D::NoiseSchedule s;
    Tensor x0 = fx("unet.x0", d), y = fx("unet.y", d), ts = fx("unet.adam.t", d), noise = fx("unet.adam.noise", d);
    std::vector<double> want = fx("unet.adam.losses", kFloat64).to_vector<double>();
    for (int64_t k = 0; k < 3; ++k) {
      INFO("step " << k);
      opt.zero_grad();
      Tensor loss = D::training_loss(*net, s, x0, ts[k], noise[k], y);
      loss.backward();
      opt.step();
      CHECK(loss.item<double>() == Approx(want[static_cast<size_t>(k)]).epsilon(d == kFloat64 ? 1e-10 : 1e-4));
    }
  }
}

TEST_CASE("diffusion: the reference layout at an odd size (cropping up path) matches PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d), gt = grad_tol(d);
    auto net = load(ref_small_cfg(), "ref.w", d);
    Tensor out = net->forward(fx("ref.x", d), fx("ref.t", d));
    CHECK_CLOSE(out, fx("ref.out", d), t.rtol, t.atol);
    sum(mul(out, fx("ref.g", d))).backward();
    for (const auto& [name, p] : net->named_parameters()) {
      INFO("parameter " << name);
      REQUIRE(p.grad().defined());
      CHECK_CLOSE(p.grad(), fx("ref.grad." + name, d), gt.rtol, gt.atol);
    }
  }
}

TEST_CASE("diffusion: the ddpm_unet reference configuration has PyTorch's parameter names and shapes") {
  D::UNet net;  // the defaults are the reference configuration
  io::TensorMap want = sub_map("refshape");
  auto sd = net.state_dict();
  CHECK(sd.size() == want.size());
  for (const auto& [name, shape] : want) {
    INFO(name);
    auto it = sd.find(name);
    REQUIRE(it != sd.end());
    std::vector<int64_t> s = shape.to_vector<int64_t>();
    CHECK(it->second.shape() == Shape(s.begin(), s.end()));
  }
  CHECK(net.num_parameters() == genai_test::fixture(kFile, "refshape_numel").item<int64_t>());
  // zero_init: the residual branches' last convs and conv_out start at zero, the net outputs 0
  NoGradGuard ng;
  Tensor o = net.forward(randn({2, 1, 28, 28}), tensor(std::vector<int64_t>{3, 700}, {2}));
  CHECK(o.shape() == Shape{2, 1, 28, 28});
  CHECK(abs(o).max().item<double>() == 0.0);
}

TEST_CASE("diffusion: samplers match the Python reference given the same noise") {
  D::NoiseSchedule s = small_schedule();
  const int64_t T = s.num_timesteps();
  REQUIRE(T == 10);
  struct Case {
    const char* name;
    D::SampleOptions o;
    int64_t n_steps;
  };
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = multi_step_tol(d);
    auto net = load(small_cfg(), "unet.w", d);
    Tensor y = fx("samp.y", d);
    D::DenoiseFn cond = D::unet_denoiser(*net, y);
    using D::PosteriorVariance;
    using D::Prediction;
    using D::Sampler;
    std::vector<Case> cases = {
        {"ddpm_beta_tilde", {.sampler = Sampler::DDPM, .variance = PosteriorVariance::BetaTilde}, T},
        {"ddpm_beta", {.sampler = Sampler::DDPM, .variance = PosteriorVariance::Beta}, T},
        {"ddpm_x0_noclip", {.sampler = Sampler::DDPM, .prediction = Prediction::X0, .clip_denoised = false}, T},
        {"ddim5_eta0", {.sampler = Sampler::DDIM, .steps = 5, .eta = 0.0, .clip_denoised = false}, 5},
        {"ddim5_eta05_clip", {.sampler = Sampler::DDIM, .steps = 5, .eta = 0.5, .clip_denoised = true}, 5},
        {"ddim3_eta1_v", {.sampler = Sampler::DDIM, .steps = 3, .eta = 1.0, .prediction = Prediction::V,
                          .clip_denoised = false}, 3},
    };
    for (Case& c : cases) {
      INFO(c.name);
      c.o.x_T = fx("samp.x_T", d);
      c.o.noise = fixture_noise("samp.noise", d);
      c.o.trajectory_frames = c.n_steps + 1;  // every state
      D::SampleResult r = D::sample(cond, s, {2, 1, 8, 8}, c.o);
      REQUIRE(r.trajectory.size() == static_cast<size_t>(c.n_steps + 1));
      CHECK_CLOSE(r.trajectory[0], fx("samp.x_T", d), 0, 1e-300);
      CHECK_CLOSE(r.trajectory[1], fx(std::string("samp.") + c.name + ".first", d), tol_for(d).rtol, tol_for(d).atol);
      CHECK_CLOSE(r.images, fx(std::string("samp.") + c.name + ".final", d), t.rtol, t.atol);
      CHECK_CLOSE(r.trajectory.back(), r.images, 0, 1e-300);
      CHECK(r.trajectory_t.back() == -1);
    }
    // classifier-free guidance, scale 2, with DDIM (5 steps, eta 0)
    D::SampleOptions o{.sampler = Sampler::DDIM, .steps = 5, .eta = 0.0, .clip_denoised = false,
                       .trajectory_frames = 6};
    o.x_T = fx("samp.x_T", d);
    D::SampleResult r = D::sample(D::unet_denoiser(*net, y, 2.0), s, {2, 1, 8, 8}, o);
    CHECK_CLOSE(r.trajectory[1], fx("samp.cfg2_ddim5.first", d), tol_for(d).rtol, tol_for(d).atol);
    CHECK_CLOSE(r.images, fx("samp.cfg2_ddim5.final", d), t.rtol, t.atol);
  }
  CHECK(D::ddim_timesteps(1000, 50)[1] == 20);
  CHECK(D::ddim_timesteps(10, 3) == std::vector<int64_t>{0, 3, 6});
  CHECK_THROWS_WITH(D::ddim_timesteps(10, 11), Catch::Contains("steps"));
}

TEST_CASE("diffusion: DDIM inversion matches the Python reference and round trips") {
  D::NoiseSchedule s = small_schedule();
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = multi_step_tol(d);
    auto net = load(small_cfg(), "unet.w", d);
    D::DenoiseFn cond = D::unet_denoiser(*net, fx("samp.y", d));
    Tensor x0 = fx("inv.x0", d);
    for (int64_t iters : {0, 2}) {
      INFO("fixed-point iterations " << iters);
      const std::string p = "inv.iters" + std::to_string(iters) + ".";
      Tensor z = D::ddim_invert(cond, s, x0, {.steps = 5, .fixed_point_iters = iters});
      CHECK_CLOSE(z, fx(p + "z", d), t.rtol, t.atol);
      D::SampleOptions o{.sampler = D::Sampler::DDIM, .steps = 5, .eta = 0.0, .clip_denoised = false};
      o.x_T = z;
      CHECK_CLOSE(D::sample(cond, s, x0.shape(), o).images, fx(p + "recon", d), t.rtol, t.atol);
    }
  }
  // round trip with 50 of T = 1000 steps, with the exact denoiser of Gaussian data N(0, 0.25 I):
  // eps*(x_t, t) = sqrt(1 - abar) x_t / (0.25 abar + 1 - abar) (a smooth probability-flow ODE, as
  // a trained net approximates): plain inversion is close, fixed-point iterations make it exact.
  // (An untrained net is not smooth enough for either; the trained model's round trip is measured
  // by `diffusion invert`, docs/diffusion.md.)
  D::NoiseSchedule lin;
  D::DenoiseFn gauss = [&lin](const Tensor& x, const Tensor& t) {
    return mul(x, lin.gather_fn([&](size_t i) {
      const double a = lin.alphas_cumprod[i];
      return std::sqrt(1 - a) / (0.25 * a + 1 - a);
    }, t, x.dtype(), x.dim()));
  };
  manual_seed(7);
  Tensor x0 = mul(randn({2, 1, 8, 8}, kFloat64), 0.5);
  auto round_trip = [&](const D::DenoiseFn& f, int64_t iters) {
    D::SampleOptions o{.sampler = D::Sampler::DDIM, .steps = 50, .eta = 0.0, .clip_denoised = false};
    o.x_T = D::ddim_invert(f, lin, x0, {.steps = 50, .fixed_point_iters = iters});
    return mean(square(sub(D::sample(f, lin, x0.shape(), o).images, x0))).item<double>();
  };
  const double g0 = round_trip(gauss, 0), g3 = round_trip(gauss, 3);
  INFO("Gaussian denoiser, reconstruction MSE: plain " << g0 << ", 3 fixed-point iterations " << g3);
  CHECK(g0 < 1e-3);
  CHECK(g3 < 1e-8);
  CHECK(g3 < 1e-4 * g0);
}

TEST_CASE("diffusion: DDIM with eta 0 is deterministic; DDPM and DDIM eta > 0 draw from the generator") {
  manual_seed(3);
  D::UNetConfig c = small_cfg();
  c.num_classes = 0;
  D::UNet net(c);
  D::NoiseSchedule s = small_schedule();
  D::DenoiseFn f = D::unet_denoiser(net);
  Tensor xT = randn({2, 1, 8, 8});
  D::SampleOptions o{.sampler = D::Sampler::DDIM, .steps = 4, .eta = 0.0};
  o.x_T = xT;
  Generator g1(1), g2(2);
  Tensor a = D::sample(f, s, xT.shape(), o, g1).images, b = D::sample(f, s, xT.shape(), o, g2).images;
  CHECK_CLOSE(a, b, 0, 1e-300);
  CHECK(g1.state() == Generator(1).state());  // eta 0 draws nothing
  o.eta = 1.0;
  Generator g3(1), g4(2);
  Tensor e1 = D::sample(f, s, xT.shape(), o, g3).images, e2 = D::sample(f, s, xT.shape(), o, g4).images;
  CHECK(mean(square(sub(e1, e2))).item<double>() > 1e-6);
  o.sampler = D::Sampler::DDPM;
  Generator g5(5), g6(5);
  CHECK_CLOSE(D::sample(f, s, xT.shape(), o, g5).images, D::sample(f, s, xT.shape(), o, g6).images, 0, 1e-300);
  CHECK_THROWS_WITH(D::sample(f, s, {2, 1, 8, 8}, {.sampler = D::Sampler::DDIM, .steps = 11}), Catch::Contains("steps"));
}

TEST_CASE("diffusion: the variational bound in bits/dim matches the Python reference") {
  D::NoiseSchedule s = small_schedule();
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-3, 1e-4};
    auto net = load(small_cfg(), "unet.w", d);
    D::DenoiseFn cond = D::unet_denoiser(*net, fx("samp.y", d));
    for (auto [v, vname] : {std::pair{D::PosteriorVariance::BetaTilde, "beta_tilde"}, std::pair{D::PosteriorVariance::Beta, "beta"}}) {
      INFO(vname);
      D::VLBOptions o{.variance = v};
      o.noise = fixture_noise("vlb.noise", d);
      D::VLBResult r = D::variational_bound(cond, s, fx("inv.x0", d), o);
      const std::string p = std::string("vlb.") + vname + ".";
      CHECK_CLOSE(r.total_bpd, fx(p + "total", d), t.rtol, t.atol);
      CHECK_CLOSE(r.prior_bpd, fx(p + "prior", d), t.rtol, t.atol);
      CHECK_CLOSE(r.decoder_bpd, fx(p + "decoder", d), t.rtol, t.atol);
    }
    Tol u = tol_for(d);
    CHECK_CLOSE(D::normal_kl(fx("kl.m1", d), fx("kl.lv1", d), fx("kl.m2", d), fx("kl.lv2", d)), fx("kl.value", d),
                u.rtol, u.atol);
    CHECK_CLOSE(D::discretized_gaussian_log_likelihood(fx("dll.x", d), fx("dll.means", d), fx("dll.log_scales", d)),
                fx("dll.value", d), d == kFloat64 ? 1e-9 : 1e-3, d == kFloat64 ? 1e-11 : 1e-4);
  }
}

TEST_CASE("diffusion: the U-Net passes a finite-difference gradcheck (float64)") {
  manual_seed(11);
  D::UNetConfig c = ref_small_cfg();
  c.image_size = 5;
  c.num_res_blocks = 1;
  c.num_classes = 2;
  D::UNet net(c);
  net.to(kFloat64);
  Tensor x = randn({2, 1, 5, 5}, kFloat64).requires_grad_();
  Tensor t = tensor(std::vector<int64_t>{4, 600}, {2});
  Tensor y = tensor(std::vector<int64_t>{1, 2}, {2});
  auto fn = [&](const TensorList& in) { return net.forward(in[0], t, y); };
  auto res = gradcheck(fn, {x}, 1e-6, 1e-6, 1e-4);
  INFO(res.message);
  CHECK(res.ok);
}

TEST_CASE("diffusion: training lowers the loss on a fixed batch; train_step runs with label dropout") {
  manual_seed(5);
  D::UNetConfig c = small_cfg();
  c.base_channels = 4;
  D::UNet net(c);
  D::NoiseSchedule s;
  optim::Adam opt(net.parameters(), {.lr = 3e-3});
  Tensor x0 = add(mul(rand({4, 1, 8, 8}), 2.0), -1.0), noise = randn({4, 1, 8, 8});
  Tensor t = tensor(std::vector<int64_t>{10, 200, 500, 900}, {4}), y = tensor(std::vector<int64_t>{0, 1, 2, 0}, {4});
  double first = 0, last = 0;
  for (int k = 0; k < 40; ++k) {
    opt.zero_grad();
    Tensor loss = D::training_loss(net, s, x0, t, noise, y);
    loss.backward();
    opt.step();
    if (k == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
  Generator g(9);
  const double l = D::train_step(net, opt, s, x0, y, {.p_uncond = 0.5}, g);
  CHECK(std::isfinite(l));
}

TEST_CASE("diffusion: bad input throws a clear error") {
  D::UNet net;
  CHECK_THROWS_WITH(net.forward(zeros({2, 1, 32, 32}), zeros({2})), Catch::Contains("UNet: expected x (N, 1, 28, 28)"));
  CHECK_THROWS_WITH(net.forward(zeros({2, 1, 28, 28}), zeros({3})), Catch::Contains("timesteps"));
  CHECK_THROWS_WITH(net.forward(zeros({2, 1, 28, 28}), zeros({2}), zeros({2}, kInt64)), Catch::Contains("unconditional"));
  D::UNetConfig c = small_cfg();
  D::UNet cond(c);
  CHECK_THROWS_WITH(cond.forward(zeros({1, 1, 8, 8}), zeros({1}), full({1}, 4.0, kInt64)), Catch::Contains("label 4"));
  CHECK_THROWS_WITH(D::UNet(D::UNetConfig{.base_channels = 12}), Catch::Contains("num_groups"));
  CHECK_THROWS_WITH(D::UNet(D::UNetConfig{.channel_mult = {}}), Catch::Contains("channel_mult"));
  D::UNetConfig bad_heads;
  bad_heads.num_heads = 3;
  CHECK_THROWS_WITH(D::UNet{bad_heads}, Catch::Contains("num_heads"));
  D::NoiseSchedule s;
  CHECK_THROWS_WITH(s.q_sample(zeros({2, 1, 4, 4}), tensor(std::vector<int64_t>{0, 1000}, {2}), zeros({2, 1, 4, 4})),
                    Catch::Contains("timestep 1000"));
  CHECK_THROWS_WITH(s.q_sample(zeros({2, 1, 4, 4}), tensor(std::vector<int64_t>{0, 1}, {2}), zeros({2, 1, 4, 5})),
                    Catch::Contains("noise"));
  CHECK_THROWS_WITH(D::unet_denoiser(net, tensor(std::vector<int64_t>{0}, {1})), Catch::Contains("unconditional"));
  CHECK_THROWS_WITH(D::parse_sampler("euler"), Catch::Contains("euler"));
}
