// Golden tests of StyleGAN2 (include/genai/models/gan/stylegan.hpp) against PyTorch
// (tests/fixtures/make_stylegan_fixtures.py): the modulated convolution (both forms, with
// and without demodulation: forward and gradients w.r.t. x, weight, styles, noise), a tiny
// generator (mapping with truncation, synthesis with constant noise, parameter gradients),
// a tiny residual discriminator with minibatch stddev (logits, loss, parameter gradients),
// the R1 penalty and its parameter gradients (double backward), and 6 training iterations
// with lazy R1 and an EMA generator; plus finite-difference gradchecks and error handling.
#include <genai/models/gan/stylegan.hpp>
#include <genai/optim/adam.hpp>

#include "test_util.hpp"

using namespace genai;
using models::NoiseMode;
using models::StyleGANConfig;
using models::StyleGANDiscriminator;
using models::StyleGANGenerator;
static const char* kSgFile = "stylegan.safetensors";

namespace {

Tensor sg(const std::string& name, Dtype d) { return genai_test::fixture(kSgFile, name).to(d).clone(); }

io::TensorMap sg_sub(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kSgFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

// the fixture's tiny configuration: channels 4 at 4 x 4, 2 at 8 x 8
StyleGANConfig tiny() {
  return {.z_dim = 6,
          .w_dim = 6,
          .mapping_layers = 3,
          .resolution = 8,
          .img_channels = 1,
          .channel_base = 16,
          .channel_max = 4,
          .mbstd_group_size = 2};
}

template <class M>
std::shared_ptr<M> sg_load(const std::string& prefix, Dtype d) {
  auto m = std::make_shared<M>(tiny());
  m->to(d);
  m->load_state_dict(sg_sub(prefix));  // strict: stylegan2-ada-pytorch's names
  return m;
}

struct SgTol {
  double rtol, atol;
};
SgTol sg_tol(Dtype d) { return d == kFloat64 ? SgTol{1e-10, 1e-12} : SgTol{1e-4, 1e-5}; }

void sg_check_grads(nn::Module& m, const std::string& prefix, Dtype d, SgTol t) {
  for (const auto& [name, p] : m.named_parameters()) {
    INFO("parameter " << name);
    Tensor want = sg(prefix + "." + name, d);
    // an undefined gradient is zero (genai records no path where PyTorch's graph holds zeros,
    // e.g. a bias whose R1 gradient passes only through leaky ReLU's piecewise-constant slope)
    CHECK_CLOSE(p.grad().defined() ? p.grad() : zeros_like(want), want, t.rtol, t.atol);
  }
}

}  // namespace

TEST_CASE("modulated_conv2d matches stylegan2-ada-pytorch's (both forms, with and without demodulation)") {
  for (Dtype d : {kFloat64, kFloat32})
    for (bool fused : {false, true})
      for (const char* c : {"demod", "nodemod"}) {
        const std::string p = std::string("modconv.") + c;
        const bool demod = std::string(c) == "demod";
        INFO(c << (fused ? " fused" : " activation-scaling") << " " << dtype_name(d));
        SgTol t = sg_tol(d);
        Tensor x = sg(p + ".x", d).requires_grad_(), w = sg(p + ".weight", d).requires_grad_();
        Tensor s = sg(p + ".styles", d).requires_grad_();
        Tensor noise = demod ? sg(p + ".noise", d).requires_grad_() : Tensor();
        Tensor y = models::modulated_conv2d(x, w, s, noise, demod ? 1 : 0, demod, fused);
        CHECK_CLOSE(y, sg(p + ".y", d), t.rtol, t.atol);
        sum(mul(y, sg(p + ".gy", d))).backward();
        CHECK_CLOSE(x.grad(), sg(p + ".gx", d), t.rtol, t.atol);
        CHECK_CLOSE(w.grad(), sg(p + ".gw", d), t.rtol, t.atol);
        CHECK_CLOSE(s.grad(), sg(p + ".gs", d), t.rtol, t.atol);
        if (demod) CHECK_CLOSE(noise.grad(), sg(p + ".gnoise", d), t.rtol, t.atol);
      }
}

TEST_CASE("modulated_conv2d passes finite-difference gradchecks (float64), first and second order") {
  manual_seed(3);
  Tensor x = randn({2, 3, 4, 4}, kFloat64).requires_grad_(), w = randn({2, 3, 3, 3}, kFloat64).requires_grad_();
  Tensor s = add(randn({2, 3}, kFloat64), 1.0).requires_grad_();
  for (bool fused : {false, true})
    for (bool demod : {true, false}) {
      INFO((fused ? "fused" : "activation-scaling") << (demod ? " demod" : " no demod"));
      auto fn = [&](const TensorList& in) {
        return models::modulated_conv2d(in[0], in[1], in[2], Tensor(), 1, demod, fused);
      };
      auto r = gradcheck(fn, {x, w, s}, 1e-6, 1e-6, 1e-4);
      INFO(r.message);
      CHECK(r.ok);
    }
  // second order: the gradient w.r.t. x (what R1 differentiates) is itself differentiable
  auto gfn = [&](const TensorList& in) {
    Tensor y = models::modulated_conv2d(in[0], in[1], in[2], Tensor(), 1, true, false);
    return autograd::grad({sum(square(y))}, {in[0]}, {}, true, true)[0];
  };
  auto r2 = gradcheck(gfn, {x, w, s}, 1e-6, 1e-6, 1e-4);
  INFO(r2.message);
  CHECK(r2.ok);
}

TEST_CASE("StyleGAN generator (mapping, truncation, synthesis) matches PyTorch with gradients") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    SgTol t = sg_tol(d);
    auto G = sg_load<StyleGANGenerator>("g.init", d);
    CHECK(G->num_ws() == 4);
    Tensor z = sg("g.z", d);
    CHECK_CLOSE(G->mapping->forward(z, 0.7, 2), sg("g.ws_trunc", d), t.rtol, t.atol);
    Tensor img = G->synthesis->forward(G->mapping->forward(z), NoiseMode::Const);
    CHECK(img.shape() == Shape{3, 1, 8, 8});
    CHECK_CLOSE(img, sg("g.img", d), t.rtol, t.atol);
    // the grouped-convolution form gives the same image
    CHECK_CLOSE(G->synthesis->forward(G->mapping->forward(z), NoiseMode::Const, true), sg("g.img", d), t.rtol, t.atol);
    sum(mul(img, sg("g.gy", d))).backward();
    sg_check_grads(*G, "g.grad", d, d == kFloat64 ? t : SgTol{1e-3, 1e-5});
  }
}

TEST_CASE("StyleGAN discriminator and the R1 penalty (double backward) match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    SgTol t = sg_tol(d);
    auto D = sg_load<StyleGANDiscriminator>("d.init", d);
    Tensor real = sg("d.real", d), fake = sg("d.fake", d);
    Tensor rl = D->forward(real), fl = D->forward(fake);
    CHECK(rl.shape() == Shape{4});
    CHECK_CLOSE(rl, sg("d.real_logits", d), t.rtol, t.atol);
    CHECK_CLOSE(fl, sg("d.fake_logits", d), t.rtol, t.atol);
    Tensor loss = add(mean(softplus(fl)), mean(softplus(neg(rl))));
    CHECK_CLOSE(loss, sg("d.loss", d), t.rtol, t.atol);
    loss.backward();
    sg_check_grads(*D, "d.grad", d, d == kFloat64 ? t : SgTol{1e-3, 1e-5});
    D->zero_grad();
    Tensor r1 = models::r1_penalty(*D, real);
    CHECK_CLOSE(r1, sg("d.r1", d), t.rtol, t.atol);
    mul(mean(r1), 0.5).backward();
    sg_check_grads(*D, "d.r1_grad", d, d == kFloat64 ? SgTol{1e-9, 1e-12} : SgTol{2e-3, 1e-5});
  }
}

TEST_CASE("StyleGAN training (G step, D step with lazy R1, EMA) follows PyTorch for 6 iterations") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto G = sg_load<StyleGANGenerator>("g.init", d);
    auto D = sg_load<StyleGANDiscriminator>("d.init", d);
    auto G_ema = sg_load<StyleGANGenerator>("g.init", d);
    optim::Adam optG(G->parameters(), {.lr = 0.0025, .betas = {0.0, 0.99}, .eps = 1e-8});
    optim::Adam optD(D->parameters(), {.lr = 0.0025, .betas = {0.0, 0.99}, .eps = 1e-8});
    models::StyleGANTrainOptions o{
        .r1_gamma = 1.0, .r1_interval = 2, .style_mixing_prob = 0.0, .noise_mode = NoiseMode::Const};
    Tensor real = sg("train.real", d), zg = sg("train.zg", d), zd = sg("train.zd", d);
    std::vector<double> wg = sg("train.g_losses", kFloat64).to_vector<double>();
    std::vector<double> wd = sg("train.d_losses", kFloat64).to_vector<double>();
    std::vector<double> wr = sg("train.r1", kFloat64).to_vector<double>();
    const double rel = d == kFloat64 ? 1e-9 : 1e-3;
    for (int64_t s = 0; s < 6; ++s) {
      models::StyleGANStepStats st = models::stylegan_train_step(*G, *D, optG, optD, real, zg[s], zd[s], s, o);
      models::stylegan_ema_update(*G_ema, *G, 0.9);
      const auto i = static_cast<size_t>(s);
      INFO("iteration " << s);
      CHECK(st.g_loss == Approx(wg[i]).epsilon(rel));
      CHECK(st.d_loss == Approx(wd[i]).epsilon(rel));
      CHECK(st.r1 == Approx(wr[i]).epsilon(rel));
    }
    SgTol t = d == kFloat64 ? SgTol{1e-8, 1e-10} : SgTol{1e-2, 1e-3};
    CHECK_CLOSE(G->mapping->w_avg, sg("train.w_avg", d), t.rtol, t.atol);
    NoGradGuard ng;
    Tensor z = sg("g.z", d);
    CHECK_CLOSE(G_ema->forward(z, 1.0, -1, NoiseMode::Const), sg("train.ema_img", d), t.rtol, t.atol);
    CHECK_CLOSE(G->forward(z, 1.0, -1, NoiseMode::Const), sg("train.g_img", d), t.rtol, t.atol);
  }
}

TEST_CASE("the R1 penalty passes a finite-difference check w.r.t. the real images (float64)") {
  manual_seed(5);
  StyleGANDiscriminator D(tiny());
  D.to(kFloat64);
  Tensor real = rand({2, 1, 8, 8}, kFloat64).requires_grad_();
  auto fn = [&](const TensorList& in) {
    Tensor dd = D.forward(in[0]);
    Tensor g = autograd::grad({sum(dd)}, {in[0]}, {}, true, true)[0];
    return sum(square(g));
  };
  CHECK_CLOSE(fn({real}), sum(models::r1_penalty(D, real)), 1e-12, 1e-14);
  auto r = gradcheck(fn, {real}, 1e-6, 1e-6, 1e-4);
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("StyleGAN: style mixing, random noise, minibatch stddev and bad input") {
  manual_seed(7);
  StyleGANGenerator G(tiny());
  Tensor z = randn({4, 6});
  {
    NoGradGuard ng;
    G.synthesis->blocks[1]->conv1->noise_strength.fill_(0.5);  // zero at initialization
    // random noise differs between calls, constant noise does not
    CHECK_FALSE(allclose(G.forward(z), G.forward(z)));
    CHECK(allclose(G.forward(z, 1.0, -1, NoiseMode::Const), G.forward(z, 1.0, -1, NoiseMode::Const)));
    // psi = 0 gives the average w's image for every z
    Tensor img0 = G.forward(z, 0.0, -1, NoiseMode::None);
    CHECK(allclose(narrow(img0, 0, 0, 1), narrow(img0, 0, 1, 1), 1e-5, 1e-6));
    // style mixing with probability 1: the first `cutoff` ws from z, the rest from z2
    Generator gen(11);
    Tensor z2 = randn({4, 6});
    Tensor ws = models::stylegan_mapping_with_mixing(G, z, z2, 1.0, gen);
    Tensor a = G.mapping->forward(z), b = G.mapping->forward(z2);
    CHECK(allclose(select(ws, 1, 0), select(a, 1, 0)));
    CHECK(allclose(select(ws, 1, 3), select(b, 1, 3)));
  }
  // minibatch stddev: group 2 of a batch of 4 appends one channel, constant per group member
  Tensor x = randn({4, 3, 2, 2});
  Tensor y = models::minibatch_stddev(x, 2);
  CHECK(y.shape() == Shape{4, 4, 2, 2});
  CHECK(allclose(narrow(y, 1, 3, 1)[0], narrow(y, 1, 3, 1)[2]));
  CHECK_THROWS_WITH(models::minibatch_stddev(randn({3, 2, 2, 2}), 2), Catch::Contains("multiple of the group size"));
  StyleGANDiscriminator D(tiny());
  CHECK_THROWS_WITH(D.forward(randn({2, 1, 28, 28})), Catch::Contains("StyleGANDiscriminator"));
  CHECK_THROWS_WITH(G.forward(randn({2, 5})), Catch::Contains("StyleGANMapping"));
  CHECK_THROWS_WITH(models::modulated_conv2d(randn({2, 3, 4, 4}), randn({2, 4, 3, 3}), randn({2, 3})),
                    Catch::Contains("modulated_conv2d"));
  CHECK_THROWS_WITH(StyleGANGenerator(StyleGANConfig{.resolution = 24}), Catch::Contains("power of two"));
}
