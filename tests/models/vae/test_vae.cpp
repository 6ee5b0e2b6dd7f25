// Golden tests of the VAEs (include/genai/models/vae/vae.hpp) against PyTorch
// (tests/fixtures/make_vae_fixtures.py): forward, ELBO terms, gradients, IWAE,
// interpolation and 20 Adam steps with the noise supplied, in float64 (tight) and
// float32 (loose); plus finite-difference gradchecks and error handling.
#include "test_util.hpp"

#include <genai/models/vae/vae.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
using models::ConvVAE;
using models::VAE;
using models::VAEBase;
static const char* kFile = "vae.safetensors";

namespace {

/// A fixture tensor converted to d (a copy: tests mark it requires_grad).
Tensor fx(const std::string& name, Dtype d) { return genai_test::fixture(kFile, name).to(d).clone(); }

/// The fixture entries under "<prefix>." with the prefix removed.
io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

std::shared_ptr<VAEBase> make_model(const std::string& name, Dtype d) {
  std::shared_ptr<VAEBase> m;
  if (name == "mlp")
    m = std::make_shared<VAE>(models::VAEConfig{.input_dim = 64, .hidden_dim = 16, .latent_dim = 4});
  else
    m = std::make_shared<ConvVAE>(models::ConvVAEConfig{.channels = 2, .hidden_dim = 8, .latent_dim = 3});
  m->to(d);
  m->load_state_dict(sub_map(name + ".init"));  // strict: every name must match PyTorch's
  return m;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype d) { return d == kFloat64 ? Tol{1e-10, 1e-12} : Tol{1e-4, 1e-5}; }

void check_grads(VAEBase& m, const std::string& prefix, Dtype d) {
  Tol t = tol_for(d);
  for (const auto& [name, p] : m.named_parameters()) {
    INFO("parameter " << name);
    REQUIRE(p.grad().defined());
    CHECK_CLOSE(p.grad(), fx(prefix + ".grad." + name, d), t.rtol, t.atol);
  }
}

void check_model(const std::string& name, Dtype d, bool full) {
  INFO(name << " " << dtype_name(d));
  Tol t = tol_for(d);
  auto m = make_model(name, d);
  Tensor x = fx(name + ".x", d).requires_grad_();
  Tensor eps = fx(name + ".eps", d);

  // forward and the Bernoulli ELBO (beta 1)
  models::VAEOutput out = m->forward(x, eps);
  CHECK_CLOSE(out.logits, fx(name + ".bce.logits", d), t.rtol, t.atol);
  CHECK_CLOSE(out.mu, fx(name + ".bce.mu", d), t.rtol, t.atol);
  CHECK_CLOSE(out.logvar, fx(name + ".bce.logvar", d), t.rtol, t.atol);
  CHECK_CLOSE(out.z, fx(name + ".bce.z", d), t.rtol, t.atol);
  models::VAELosses none = m->loss(x, out, "none");
  CHECK_CLOSE(none.recon, fx(name + ".bce.recon", d), t.rtol, t.atol);
  CHECK_CLOSE(none.kl, fx(name + ".bce.kl", d), t.rtol, t.atol);
  CHECK_CLOSE(none.loss, fx(name + ".bce.loss_none", d), t.rtol, t.atol);
  CHECK_CLOSE(m->loss(x, out, "sum").loss, fx(name + ".bce.loss_sum", d), t.rtol, t.atol);
  models::VAELosses l = m->loss(x, out);
  CHECK_CLOSE(l.loss, fx(name + ".bce.loss", d), t.rtol, t.atol);
  m->zero_grad();
  l.loss.backward();
  check_grads(*m, name + ".bce", d);
  CHECK_CLOSE(x.grad(), fx(name + ".bce.grad_x", d), t.rtol, t.atol);

  // Gaussian likelihood, sigma 0.5, beta 0.5
  m->likelihood = models::VAELikelihood::Gaussian;
  m->sigma = 0.5;
  m->beta = 0.5;
  m->zero_grad();
  out = m->forward(x, eps);
  CHECK_CLOSE(m->loss(x, out, "none").recon, fx(name + ".gauss.recon", d), t.rtol, t.atol);
  l = m->loss(x, out);
  CHECK_CLOSE(l.loss, fx(name + ".gauss.loss", d), t.rtol, t.atol);
  if (full) {
    l.loss.backward();
    check_grads(*m, name + ".gauss", d);
  }

  // IWAE estimate and interpolation (no graph)
  NoGradGuard ng;
  Tensor xd = x.detach(), e = fx(name + ".iwae.eps", d);
  CHECK_CLOSE(m->iwae_log_likelihood(xd, e), fx(name + ".iwae.ll_gauss", d), t.rtol, t.atol);
  if (full) {
    const int64_t P = 4;
    CHECK_CLOSE(m->interpolate(xd.narrow(0, 0, P), xd.narrow(0, P, P), 5), fx(name + ".interp_gauss", d), t.rtol,
                t.atol);
  }
  m->likelihood = models::VAELikelihood::Bernoulli;
  m->sigma = 1.0;
  m->beta = 1.0;
  CHECK_CLOSE(m->iwae_log_likelihood(xd, e), fx(name + ".iwae.ll", d), t.rtol, t.atol);
  const int64_t P = full ? 4 : 1, S = full ? 5 : 3;
  Tensor interp = m->interpolate(xd.narrow(0, 0, P), xd.narrow(0, P, P), S);
  CHECK_CLOSE(interp, fx(name + ".interp", d).reshape(interp.shape()), t.rtol, t.atol);
}

void check_training(const std::string& name, Dtype d, bool full) {
  INFO(name << " " << dtype_name(d));
  auto m = make_model(name, d);
  Tensor x = fx(name + ".x", d), eps = fx(name + ".train.eps", d);
  std::vector<double> want = fx(name + ".train.losses", kFloat64).to_vector<double>();
  optim::Adam opt(m->parameters(), {.lr = 1e-3});
  const double rel = d == kFloat64 ? 1e-11 : 1e-5;
  for (int s = 0; s < 20; ++s) {
    opt.zero_grad();
    Tensor loss = m->loss(x, m->forward(x, eps[s])).loss;
    loss.backward();
    opt.step();
    INFO("step " << s);
    CHECK(loss.item<double>() == Approx(want[static_cast<size_t>(s)]).epsilon(rel));
  }
  CHECK(want[19] < want[0]);  // the fixture itself trains
  if (full) {
    Tol t = d == kFloat64 ? Tol{1e-9, 1e-11} : Tol{1e-3, 1e-5};
    for (const auto& [k, v] : m->state_dict()) {
      INFO("final " << k);
      CHECK_CLOSE(v, fx(name + ".train.final." + k, d), t.rtol, t.atol);
    }
  }
}

}  // namespace

TEST_CASE("MLP VAE matches PyTorch: forward, ELBO, gradients, IWAE, interpolation") {
  check_model("mlp", kFloat64, true);
  check_model("mlp", kFloat32, true);
}

TEST_CASE("convolutional VAE matches PyTorch: forward, ELBO, gradients, IWAE, interpolation") {
  check_model("conv", kFloat64, false);
  check_model("conv", kFloat32, false);
}

TEST_CASE("VAE training with Adam follows PyTorch for 20 steps (noise from the fixture)") {
  check_training("mlp", kFloat64, true);
  check_training("mlp", kFloat32, true);
  check_training("conv", kFloat64, false);
  check_training("conv", kFloat32, false);
}

TEST_CASE("VAE state dict names are PyTorch's") {
  VAE v;  // the reference configuration
  std::vector<std::string> names;
  for (const auto& [k, t] : v.state_dict()) names.push_back(k);
  CHECK(names == std::vector<std::string>{"fc1.bias", "fc1.weight", "fc21.bias", "fc21.weight", "fc22.bias",
                                          "fc22.weight", "fc3.bias", "fc3.weight", "fc4.bias", "fc4.weight"});
  CHECK(v.fc1->weight.shape() == Shape{400, 784});
  CHECK(v.fc21->weight.shape() == Shape{20, 400});
  CHECK(v.fc4->weight.shape() == Shape{784, 400});
  CHECK(v.num_parameters() == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784);
}

TEST_CASE("VAE gradients pass finite-difference checks (float64)") {
  for (int conv = 0; conv < 2; ++conv) {
    for (auto lik : {models::VAELikelihood::Bernoulli, models::VAELikelihood::Gaussian}) {
      INFO("conv " << conv << " likelihood " << static_cast<int>(lik));
      manual_seed(3);
      std::shared_ptr<VAEBase> m;
      Tensor x;
      if (conv) {
        m = std::make_shared<ConvVAE>(
            models::ConvVAEConfig{.image_size = 8, .channels = 1, .hidden_dim = 3, .latent_dim = 2, .likelihood = lik});
        x = rand({2, 1, 8, 8}, kFloat64);
      } else {
        m = std::make_shared<VAE>(
            models::VAEConfig{.input_dim = 5, .hidden_dim = 4, .latent_dim = 2, .likelihood = lik, .beta = 0.7});
        x = rand({3, 5}, kFloat64);
      }
      m->to(kFloat64);
      x.requires_grad_();
      Tensor eps = randn({x.size(0), 2}, kFloat64).requires_grad_();
      auto fn = [&](const TensorList& in) { return m->loss(in[0], m->forward(in[0], in[1])).loss; };
      auto r = gradcheck(fn, {x, eps}, 1e-6, 1e-6, 1e-4);
      INFO(r.message);
      CHECK(r.ok);
      // the IWAE estimate (logsumexp over samples) as well
      Tensor e3 = randn({3, x.size(0), 2}, kFloat64).requires_grad_();
      auto fi = [&](const TensorList& in) { return m->iwae_log_likelihood(in[0], in[1]); };
      auto ri = gradcheck(fi, {x, e3}, 1e-6, 1e-6, 1e-4);
      INFO(ri.message);
      CHECK(ri.ok);
    }
  }
}

TEST_CASE("IWAE with one sample is the one-sample ELBO, and more samples tighten the bound") {
  manual_seed(5);
  VAE m(models::VAEConfig{.input_dim = 12, .hidden_dim = 6, .latent_dim = 3});
  m.to(kFloat64);
  Tensor x = rand({4, 12}, kFloat64);
  Tensor eps = randn({1, 4, 3}, kFloat64);
  NoGradGuard ng;
  Tensor ll = m.iwae_log_likelihood(x, eps);
  // K = 1: log p(x|z) + log p(z) - log q(z|x), the ELBO with a Monte Carlo KL
  models::VAEOutput o = m.forward(x, eps[0]);
  Tensor log_q = sum(mul(add(add(square(eps[0]), o.logvar), std::log(2 * 3.14159265358979323846)), -0.5), {1});
  Tensor log_p = sum(mul(add(square(o.z), std::log(2 * 3.14159265358979323846)), -0.5), {1});
  Tensor elbo1 = sub(add(neg(m.loss(x, o, "none").recon), log_p), log_q);
  CHECK_CLOSE(ll, elbo1, 1e-12, 1e-12);
  // averaged over many draws, the Monte Carlo KL approaches the analytic KL of loss()
  // (KL(q || p) = E_q[log q(z|x) - log p(z)]; the model's KL is ~0.3 nats per sample)
  Tensor em = randn({4000, 4, 3}, kFloat64), kl_mc = zeros({4}, kFloat64);
  for (int k = 0; k < 4000; ++k) {
    models::VAELosses l = m.loss(x, m.forward(x, em[k]), "none");
    kl_mc = add(kl_mc, neg(add(m.iwae_log_likelihood(x, em.narrow(0, k, 1)), l.recon)));  // log q - log p
  }
  Tensor kl = m.loss(x, o, "none").kl;
  INFO("analytic KL " << kl.to_string());
  CHECK(min(kl).item<double>() > 0.1);
  CHECK_CLOSE(mul(kl_mc, 1.0 / 4000), kl, 0.0, 0.05);  // ~3.5 standard errors
  // Jensen: the K-sample bound with a set of draws is >= the mean of the 1-sample bounds of the same draws
  Tensor e = randn({16, 4, 3}, kFloat64);
  Tensor l16 = m.iwae_log_likelihood(x, e);
  Tensor mean1 = zeros({4}, kFloat64);
  for (int k = 0; k < 16; ++k) mean1 = add(mean1, m.iwae_log_likelihood(x, e.narrow(0, k, 1)));
  mean1 = mul(mean1, 1.0 / 16);
  for (int b = 0; b < 4; ++b) CHECK(l16[b].item<double>() >= mean1[b].item<double>());
}

TEST_CASE("VAE sample, reconstruct and interpolate: shapes, ranges, reproducibility") {
  manual_seed(0);
  VAE m;
  ConvVAE c;
  NoGradGuard ng;
  Generator g1(7), g2(7);
  Tensor s1 = m.sample(6, g1), s2 = m.sample(6, g2);
  CHECK(s1.shape() == Shape{6, 784});
  CHECK(allclose(s1, s2, 0, 0));
  CHECK(min(s1).item<double>() >= 0.0);
  CHECK(max(s1).item<double>() <= 1.0);
  CHECK(c.sample(3, g1).shape() == Shape{3, 1, 28, 28});
  Tensor x = rand({5, 1, 28, 28});
  CHECK(m.reconstruct(x).shape() == x.shape());
  CHECK(c.reconstruct(x).shape() == x.shape());
  Tensor it = c.interpolate(x.narrow(0, 0, 2), x.narrow(0, 2, 2), 7);
  CHECK(it.shape() == Shape{14, 1, 28, 28});
  // the ends of the path are the reconstructions
  Tensor rec = c.reconstruct(x.narrow(0, 0, 2));
  CHECK_CLOSE(it[0], rec[0], 1e-5, 1e-6);
  CHECK_CLOSE(it[7], rec[1], 1e-5, 1e-6);
  CHECK_CLOSE(it[13], c.reconstruct(x.narrow(0, 3, 1))[0], 1e-5, 1e-6);
  // with the global generator: same seed, same draws
  manual_seed(11);
  Tensor a = m.forward(x).z;
  manual_seed(11);
  CHECK(allclose(m.forward(x).z, a, 0, 0));
}

TEST_CASE("VAE rejects bad input with clear errors") {
  VAE m(models::VAEConfig{.input_dim = 10, .hidden_dim = 4, .latent_dim = 2});
  ConvVAE c(models::ConvVAEConfig{.image_size = 8, .channels = 1, .hidden_dim = 3, .latent_dim = 2});
  CHECK_THROWS_WITH(m.encode(zeros({3, 11})), Catch::Contains("VAE::encode") && Catch::Contains("(3, 11)"));
  CHECK_THROWS_WITH(m.decode(zeros({3, 3})), Catch::Contains("VAE::decode"));
  CHECK_THROWS_WITH(m.forward(zeros({3, 10}), zeros({3, 5})), Catch::Contains("eps"));
  CHECK_THROWS_WITH(m.iwae_log_likelihood(zeros({3, 10}), zeros({2, 4, 2})), Catch::Contains("batch size"));
  CHECK_THROWS_WITH(m.iwae_log_likelihood(zeros({3, 10}), zeros({2, 3})), Catch::Contains("(K, B, 2)"));
  CHECK_THROWS_WITH(m.interpolate(zeros({1, 10}), zeros({2, 10}), 4), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(m.interpolate(zeros({1, 10}), zeros({1, 10}), 1), Catch::Contains("steps"));
  CHECK_THROWS_WITH(m.loss(zeros({3, 10}), m.forward(zeros({3, 10})), "mean"), Catch::Contains("reduction"));
  CHECK_THROWS_WITH(c.encode(zeros({2, 1, 28, 28})), Catch::Contains("ConvVAE::encode"));
  CHECK_THROWS_WITH(ConvVAE(models::ConvVAEConfig{.image_size = 30}), Catch::Contains("multiple of 4"));
  CHECK_THROWS_WITH(models::parse_vae_likelihood("poisson"), Catch::Contains("poisson"));
  CHECK(models::parse_vae_likelihood("gaussian") == models::VAELikelihood::Gaussian);
}
