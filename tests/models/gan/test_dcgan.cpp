// Golden tests of DCGAN (include/genai/models/gan/dcgan.hpp) against PyTorch
// (tests/fixtures/make_dcgan_fixtures.py): forward of G and D at 28x28 and 64x64,
// the three GAN losses and their gradients, the parameter gradients of the
// non-saturating losses, the WGAN-GP critic loss and its parameter gradients
// (double backward through conv, batch norm and leaky ReLU), and 20 iterations of
// D step + G step with Adam; plus gradchecks of the penalty and error handling.
#include "test_util.hpp"

#include <genai/models/gan/dcgan.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
using models::DCGANConfig;
using models::DCGANDiscriminator;
using models::DCGANGenerator;
using models::GANLoss;
static const char* kFile = "dcgan.safetensors";

namespace {

Tensor fx(const std::string& name, Dtype d) { return genai_test::fixture(kFile, name).to(d).clone(); }

io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

DCGANConfig cfg28() { return {.latent_dim = 4, .ngf = 2, .ndf = 2, .channels = 1, .image_size = 28}; }
DCGANConfig cfg64() { return {.latent_dim = 4, .ngf = 1, .ndf = 1, .channels = 1, .image_size = 64}; }

template <class M>
std::shared_ptr<M> load(const DCGANConfig& c, const std::string& prefix, Dtype d) {
  auto m = std::make_shared<M>(c);
  m->to(d);
  m->load_state_dict(sub_map(prefix));  // strict: PyTorch's names
  return m;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype d) { return d == kFloat64 ? Tol{1e-10, 1e-12} : Tol{1e-4, 1e-5}; }

void check_grads(nn::Module& m, const std::string& prefix, Dtype d, Tol t) {
  for (const auto& [name, p] : m.named_parameters()) {
    INFO("parameter " << name);
    REQUIRE(p.grad().defined());
    CHECK_CLOSE(p.grad(), fx(prefix + "." + name, d), t.rtol, t.atol);
  }
}

}  // namespace

TEST_CASE("GAN losses match PyTorch with their gradients") {
  for (Dtype d : {kFloat64, kFloat32}) {
    Tol t = tol_for(d);
    for (auto [kind, name] : {std::pair{GANLoss::NonSaturating, "ns"}, std::pair{GANLoss::Hinge, "hinge"},
                              std::pair{GANLoss::WGANGP, "wgan"}}) {
      INFO(name << " " << dtype_name(d));
      Tensor r = fx("loss.real_logits", d).requires_grad_(), f = fx("loss.fake_logits", d).requires_grad_();
      Tensor dl = models::discriminator_loss(kind, r, f);
      CHECK_CLOSE(dl, fx(std::string("loss.") + name + ".d", d), t.rtol, t.atol);
      dl.backward();
      CHECK_CLOSE(r.grad(), fx(std::string("loss.") + name + ".d_grad_real", d), t.rtol, t.atol);
      CHECK_CLOSE(f.grad(), fx(std::string("loss.") + name + ".d_grad_fake", d), t.rtol, t.atol);
      Tensor f2 = fx("loss.fake_logits", d).requires_grad_();
      Tensor gl = models::generator_loss(kind, f2);
      CHECK_CLOSE(gl, fx(std::string("loss.") + name + ".g", d), t.rtol, t.atol);
      gl.backward();
      CHECK_CLOSE(f2.grad(), fx(std::string("loss.") + name + ".g_grad_fake", d), t.rtol, t.atol);
    }
  }
  CHECK(models::parse_gan_loss("wgan-gp") == GANLoss::WGANGP);
  CHECK(models::parse_gan_loss("hinge") == GANLoss::Hinge);
  CHECK(models::parse_gan_loss("bce") == GANLoss::NonSaturating);
  CHECK_THROWS_WITH(models::parse_gan_loss("lsgan"), Catch::Contains("lsgan"));
}

TEST_CASE("DCGAN 28x28 forward and non-saturating gradients match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto G = load<DCGANGenerator>(cfg28(), "g28.init", d);
    auto D = load<DCGANDiscriminator>(cfg28(), "d28.init", d);
    Tensor z = fx("g28.z", d), real = fx("d28.real", d);
    Tensor fake = G->forward(z);
    CHECK(fake.shape() == Shape{4, 1, 28, 28});
    CHECK_CLOSE(fake, fx("g28.fake", d), t.rtol, t.atol);
    Tensor rl = D->forward(real), fl = D->forward(fake.detach());
    CHECK(rl.shape() == Shape{4});
    CHECK_CLOSE(rl, fx("d28.real_logits", d), t.rtol, t.atol);
    CHECK_CLOSE(fl, fx("d28.fake_logits", d), t.rtol, t.atol);
    Tensor dl = models::discriminator_loss(GANLoss::NonSaturating, rl, fl);
    CHECK_CLOSE(dl, fx("d28.ns.d_loss", d), t.rtol, t.atol);
    dl.backward();
    // batch norm makes gradients of the first layers sensitive to rounding: float32 is looser
    check_grads(*D, "d28.ns.grad", d, d == kFloat64 ? t : Tol{1e-3, 1e-5});
    D->zero_grad();
    Tensor gl = models::generator_loss(GANLoss::NonSaturating, D->forward(fake));
    CHECK_CLOSE(gl, fx("d28.ns.g_loss", d), t.rtol, t.atol);
    gl.backward();
    check_grads(*G, "g28.ns.grad", d, d == kFloat64 ? t : Tol{1e-3, 1e-5});
  }
}

TEST_CASE("DCGAN 64x64 (4-stage layout) forward and gradients match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto G = load<DCGANGenerator>(cfg64(), "g64.init", d);
    auto D = load<DCGANDiscriminator>(cfg64(), "d64.init", d);
    Tensor fake = G->forward(fx("g64.z", d));
    CHECK(fake.shape() == Shape{2, 1, 64, 64});
    CHECK_CLOSE(fake, fx("g64.fake", d), t.rtol, t.atol);
    Tensor fl = D->forward(fake.detach());
    CHECK_CLOSE(fl, fx("d64.fake_logits", d), t.rtol, t.atol);
    binary_cross_entropy_with_logits(fl, zeros_like(fl)).backward();
    Tol loose = d == kFloat64 ? t : Tol{1e-3, 1e-5};
    check_grads(*D, "d64.grad", d, loose);
    D->zero_grad();
    models::generator_loss(GANLoss::NonSaturating, D->forward(fake)).backward();
    check_grads(*G, "g64.grad", d, loose);
  }
}

TEST_CASE("WGAN-GP critic loss and its parameter gradients (double backward) match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    Tol t = tol_for(d);
    auto G = load<DCGANGenerator>(cfg28(), "g28.init", d);
    auto D = load<DCGANDiscriminator>(cfg28(), "d28.init", d);
    Tensor real = fx("d28.real", d), fake = G->forward(fx("g28.z", d)).detach();
    Tensor gp = models::gradient_penalty(*D, real, fake, fx("d28.gp.alpha", d));
    CHECK_CLOSE(gp, fx("d28.gp.gp", d), t.rtol, t.atol);
    Tensor loss = add(models::discriminator_loss(GANLoss::WGANGP, D->forward(real), D->forward(fake)), mul(gp, 10.0));
    CHECK_CLOSE(loss, fx("d28.gp.d_loss", d), t.rtol, t.atol);
    // (PyTorch's order of D calls: x_hat, fake, real; batch norm's running stats are not in the loss)
    loss.backward();
    check_grads(*D, "d28.gp.grad", d, d == kFloat64 ? Tol{1e-9, 1e-12} : Tol{2e-3, 1e-5});
  }
}

TEST_CASE("DCGAN training (D step + G step, Adam 2e-4) follows PyTorch for 20 iterations") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto G = load<DCGANGenerator>(cfg28(), "g28.init", d);
    auto D = load<DCGANDiscriminator>(cfg28(), "d28.init", d);
    optim::Adam optG(G->parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    optim::Adam optD(D->parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    Tensor real = fx("d28.real", d), zs = fx("train.z", d);
    std::vector<double> wd = fx("train.d_losses", kFloat64).to_vector<double>();
    std::vector<double> wg = fx("train.g_losses", kFloat64).to_vector<double>();
    const double rel = d == kFloat64 ? 1e-10 : 2e-5;
    for (int s = 0; s < 20; ++s) {
      models::GANStepStats st = models::gan_train_step(*G, *D, optG, optD, real, zs[s]);
      INFO("iteration " << s);
      CHECK(st.d_loss == Approx(wd[static_cast<size_t>(s)]).epsilon(rel));
      CHECK(st.g_loss == Approx(wg[static_cast<size_t>(s)]).epsilon(rel));
    }
    // parameters and batch norm running statistics (3 D calls and 1 G call per iteration)
    Tol t = d == kFloat64 ? Tol{1e-8, 1e-11} : Tol{1e-2, 1e-4};
    for (const auto& [k, v] : G->state_dict()) {
      INFO("G " << k);
      CHECK_CLOSE(v, fx("train.g_final." + k, v.dtype()), t.rtol, t.atol);
    }
    for (const auto& [k, v] : D->state_dict()) {
      INFO("D " << k);
      CHECK_CLOSE(v, fx("train.d_final." + k, v.dtype()), t.rtol, t.atol);
    }
    G->eval();
    NoGradGuard ng;
    CHECK_CLOSE(G->forward(fx("g28.z", d)), fx("train.g_eval", d), t.rtol, t.atol);
  }
}

TEST_CASE("the gradient penalty passes finite-difference checks through the critic (float64)") {
  manual_seed(2);
  DCGANConfig c = cfg28();
  DCGANDiscriminator D(c);
  D.to(kFloat64);
  Tensor real = rand({3, 1, 28, 28}, kFloat64), fake = rand({3, 1, 28, 28}, kFloat64).requires_grad_();
  Tensor alpha = rand({3, 1, 1, 1}, kFloat64);
  // d GP / d real needs the second derivative of D (conv, batch norm, leaky ReLU)
  Tensor r = real.clone().requires_grad_();
  auto fn = [&](const TensorList& in) {
    // gradient_penalty detaches its inputs: rebuild x_hat here so the check sees real
    Tensor x = add(mul(alpha, in[0]), mul(sub(ones_like(alpha), alpha), fake.detach()));
    Tensor dd = D.forward(x);
    Tensor g = autograd::grad({dd}, {x}, {ones_like(dd)}, true, true)[0];
    return mean(square(add(sqrt(sum(square(reshape(g, {3, -1})), {1})), -1.0)));
  };
  // the same quantity as the library function
  CHECK_CLOSE(fn({r}), models::gradient_penalty(D, real, fake, alpha), 1e-12, 1e-14);
  auto res = gradcheck(fn, {r}, 1e-6, 1e-6, 1e-4);
  INFO(res.message);
  CHECK(res.ok);
}

TEST_CASE("DCGAN shapes, state dict names and errors") {
  DCGANGenerator G;  // the reference configuration
  DCGANDiscriminator D;
  std::vector<std::string> gn, dn;
  for (const auto& [k, t] : G.named_parameters()) gn.push_back(k);
  for (const auto& [k, t] : D.named_parameters()) dn.push_back(k);
  CHECK(gn == std::vector<std::string>{"main.0.weight", "main.1.weight", "main.1.bias", "main.3.weight",
                                       "main.4.weight", "main.4.bias", "main.6.weight"});
  CHECK(dn == std::vector<std::string>{"main.0.weight", "main.2.weight", "main.3.weight", "main.3.bias",
                                       "main.5.weight"});
  CHECK(G.main->size() == 8);
  auto gw = G.parameters();
  CHECK(gw[0].shape() == Shape{100, 256, 7, 7});
  CHECK(gw[3].shape() == Shape{256, 128, 4, 4});
  CHECK(gw[6].shape() == Shape{128, 1, 4, 4});
  auto dw = D.parameters();
  CHECK(dw[0].shape() == Shape{64, 1, 4, 4});
  CHECK(dw[1].shape() == Shape{128, 64, 4, 4});
  CHECK(dw[4].shape() == Shape{1, 128, 7, 7});
  // the DCGAN initialization: std ~ 0.02
  double sd = std::sqrt(mean(square(gw[0])).item<double>());
  CHECK(sd == Approx(0.02).epsilon(0.05));
  {
    NoGradGuard ng;
    Generator g(1);
    Tensor imgs = G.sample(2, g);
    CHECK(imgs.shape() == Shape{2, 1, 28, 28});
    CHECK(max(abs(imgs)).item<double>() <= 1.0);
    CHECK(D.forward(imgs).shape() == Shape{2});
    CHECK(G.forward(randn({2, 100, 1, 1})).shape() == Shape{2, 1, 28, 28});
  }
  DCGANConfig c64{.ngf = 4, .ndf = 4, .channels = 3, .image_size = 64};
  DCGANGenerator G64(c64);
  DCGANDiscriminator D64(c64);
  CHECK(G64.main->size() == 14);
  CHECK(D64.main->size() == 12);
  {
    NoGradGuard ng;
    CHECK(D64.forward(G64.forward(randn({2, 100}))).shape() == Shape{2});
  }
  CHECK_THROWS_WITH(G.forward(randn({2, 99})), Catch::Contains("DCGANGenerator") && Catch::Contains("(2, 99)"));
  CHECK_THROWS_WITH(D.forward(randn({2, 1, 32, 32})), Catch::Contains("(2, 1, 32, 32)"));
  CHECK_THROWS_WITH(DCGANGenerator(DCGANConfig{.image_size = 32}), Catch::Contains("28 or 64"));
  CHECK_THROWS_WITH(models::gradient_penalty(D, randn({2, 1, 28, 28}), randn({3, 1, 28, 28})),
                    Catch::Contains("same shape"));
}
