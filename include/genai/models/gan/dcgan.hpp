// genai/models/gan/dcgan.hpp: DCGAN (Radford, Metz & Chintala, "Unsupervised
// Representation Learning with Deep Convolutional GANs", 2016): the generator and
// discriminator as reusable modules, the GAN losses, the WGAN-GP gradient penalty
// (Gulrajani et al., "Improved Training of Wasserstein GANs", 2017) and one training
// iteration (a D step, then a G step).
//
//   models::DCGANConfig cfg;                       // nz 100, ngf 64, ndf 64, 1 x 28 x 28
//   models::DCGANGenerator netG(cfg);
//   models::DCGANDiscriminator netD(cfg);
//   optim::Adam optG(netG.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//   optim::Adam optD(netD.parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//   models::GANStepStats s = models::gan_train_step(netG, netD, optG, optD, real, randn({B, 100}));
//
// Layouts (no conv bias: batch norm follows every hidden conv; images in [-1, 1]):
//   28 x 28 (the `dcgan` reference configuration with ngf = ndf = 64):
//     G: z -> ConvT(nz, 4ngf, 7, 1, 0) BN ReLU -> ConvT(4ngf, 2ngf, 4, 2, 1) BN ReLU
//           -> ConvT(2ngf, nc, 4, 2, 1) Tanh
//     D: Conv(nc, ndf, 4, 2, 1) LReLU(0.2) -> Conv(ndf, 2ndf, 4, 2, 1) BN LReLU(0.2)
//           -> Conv(2ndf, 1, 7, 1, 0)
//   64 x 64 (the standard 4-stage layout of the paper and pytorch/examples' dcgan):
//     G: ConvT(nz, 8ngf, 4, 1, 0) BN ReLU, ConvT(8ngf, 4ngf), ConvT(4ngf, 2ngf), ConvT(2ngf, ngf)
//        (each 4, 2, 1, BN ReLU), ConvT(ngf, nc, 4, 2, 1) Tanh
//     D: Conv(nc, ndf, 4, 2, 1) LReLU, Conv(ndf, 2ndf), Conv(2ndf, 4ndf), Conv(4ndf, 8ndf)
//        (each 4, 2, 1, BN LReLU), Conv(8ndf, 1, 4, 1, 0)
// The layers live in a Sequential named `main`, as in pytorch/examples' dcgan/main.py, so
// parameter names (main.0.weight, main.1.running_mean, ...) match a PyTorch model of this
// structure (tests/fixtures/make_dcgan_fixtures.py). The discriminator returns logits (N):
// pytorch/examples ends D with a Sigmoid and uses BCELoss; BCE-with-logits is the same loss,
// computed stably. Parameters start with the paper's initialization (conv weights N(0, 0.02),
// batch norm weights N(1, 0.02), biases 0), as pytorch/examples' weights_init.
//
// Losses (real / fake logits of D, means over the batch):
//   NonSaturating: D: BCE(real, 1) + BCE(fake, 0)     G: BCE(fake, 1) = mean softplus(-fake)
//   Hinge:         D: relu(1 - real) + relu(1 + fake)  G: -fake
//   WGANGP:        D: fake - real + gp_weight * GP     G: -fake
//   GP = mean_i (||dD(x_i)/dx_i||_2 - 1)^2 at x = alpha real + (1 - alpha) fake, alpha ~ U(0, 1)
//   per sample. The penalty differentiates D's input gradient (autograd::grad with
//   create_graph), i.e. double backward through conv, batch norm and leaky ReLU. Like
//   torch's norm, the norm's gradient is undefined for an all-zero input gradient.
//
// The class names carry a DCGAN prefix because genai::Generator is the random-number generator.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "genai/nn/conv.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"
#include "genai/ops/loss.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace models {

struct DCGANConfig {
  int64_t latent_dim = 100;  // nz
  int64_t ngf = 64;          // generator width
  int64_t ndf = 64;          // discriminator width
  int64_t channels = 1;      // nc
  int64_t image_size = 28;   // 28 or 64
  bool dcgan_init = true;    // the paper's N(0, 0.02) initialization (else torch's defaults)
};

namespace detail {
inline void check_dcgan_config(const DCGANConfig& c, const char* who) {
  GENAI_CHECK(c.image_size == 28 || c.image_size == 64, who, ": image_size must be 28 or 64, got ", c.image_size);
  GENAI_CHECK(c.latent_dim > 0 && c.ngf > 0 && c.ndf > 0 && c.channels > 0, who,
              ": latent_dim, ngf, ndf and channels must be positive, got ", c.latent_dim, ", ", c.ngf, ", ", c.ndf, ", ",
              c.channels);
}

/// The paper's initialization of the conv weights and batch norms of `main`.
inline void dcgan_init(nn::Sequential& main, Generator& gen) {
  for (size_t i = 0; i < main.size(); ++i) {
    nn::Module* m = main[i].get();
    if (auto* c = dynamic_cast<nn::Conv2d*>(m)) {
      nn::init::normal_(c->weight, 0.0, 0.02, gen);
    } else if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(m)) {
      nn::init::normal_(t->weight, 0.0, 0.02, gen);
    } else if (auto* b = dynamic_cast<nn::BatchNorm*>(m)) {
      nn::init::normal_(b->weight, 1.0, 0.02, gen);
      nn::init::zeros_(b->bias);
    }
  }
}
}  // namespace detail

/// z (N, nz) or (N, nz, 1, 1) -> images (N, nc, S, S) in [-1, 1].
class DCGANGenerator : public nn::UnaryModule {
 public:
  explicit DCGANGenerator(const DCGANConfig& c = {}) : cfg_(c) {
    detail::check_dcgan_config(c, "DCGANGenerator");
    main = register_module("main", std::make_shared<nn::Sequential>());
    auto up = [&](int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool last) {
      main->push_back(std::make_shared<nn::ConvTranspose2d>(in, out, k, s, p, 0, 1, /*bias=*/false));
      if (last) {
        main->push_back(std::make_shared<nn::Tanh>());
      } else {
        main->push_back(std::make_shared<nn::BatchNorm2d>(out));
        main->push_back(std::make_shared<nn::ReLU>());
      }
    };
    const int64_t nz = c.latent_dim, g = c.ngf;
    if (c.image_size == 28) {
      up(nz, 4 * g, 7, 1, 0, false);         // 1 -> 7
      up(4 * g, 2 * g, 4, 2, 1, false);      // 7 -> 14
      up(2 * g, c.channels, 4, 2, 1, true);  // 14 -> 28
    } else {
      up(nz, 8 * g, 4, 1, 0, false);     // 1 -> 4
      up(8 * g, 4 * g, 4, 2, 1, false);  // 4 -> 8
      up(4 * g, 2 * g, 4, 2, 1, false);  // 8 -> 16
      up(2 * g, g, 4, 2, 1, false);      // 16 -> 32
      up(g, c.channels, 4, 2, 1, true);  // 32 -> 64
    }
    if (c.dcgan_init) reset_parameters(default_generator());
  }
  std::string type_name() const override { return "DCGANGenerator"; }
  std::string extra_repr() const override {
    return "nz=" + std::to_string(cfg_.latent_dim) + ", ngf=" + std::to_string(cfg_.ngf) +
           ", image_size=" + std::to_string(cfg_.image_size);
  }
  const DCGANConfig& config() const { return cfg_; }

  /// Re-draws the parameters with the paper's initialization from `gen`.
  void reset_parameters(Generator& gen) { detail::dcgan_init(*main, gen); }

  Tensor forward(const Tensor& z) override {
    GENAI_CHECK(z.defined() && z.dim() >= 2 && z.size(0) > 0 && z.numel() == z.size(0) * cfg_.latent_dim,
                "DCGANGenerator: expected z (N, ", cfg_.latent_dim, ") or (N, ", cfg_.latent_dim, ", 1, 1), got ",
                z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
    return main->forward(reshape(z, {z.size(0), cfg_.latent_dim, 1, 1}));  // (N, nc, S, S)
  }

  /// n images from z ~ N(0, I) drawn from `gen` (in the module's current mode).
  Tensor sample(int64_t n, Generator& gen = default_generator()) {
    return forward(randn({n, cfg_.latent_dim}, parameters()[0].dtype(), gen));
  }

  std::shared_ptr<nn::Sequential> main;

 private:
  DCGANConfig cfg_;
};

/// images (N, nc, S, S) -> logits (N).
class DCGANDiscriminator : public nn::UnaryModule {
 public:
  explicit DCGANDiscriminator(const DCGANConfig& c = {}) : cfg_(c) {
    detail::check_dcgan_config(c, "DCGANDiscriminator");
    main = register_module("main", std::make_shared<nn::Sequential>());
    auto down = [&](int64_t in, int64_t out, bool bn) {
      main->push_back(std::make_shared<nn::Conv2d>(in, out, 4, 2, 1, 1, 1, /*bias=*/false));
      if (bn) main->push_back(std::make_shared<nn::BatchNorm2d>(out));
      main->push_back(std::make_shared<nn::LeakyReLU>(0.2));
    };
    const int64_t d = c.ndf;
    if (c.image_size == 28) {
      down(c.channels, d, false);  // 28 -> 14
      down(d, 2 * d, true);        // 14 -> 7
      main->push_back(std::make_shared<nn::Conv2d>(2 * d, 1, 7, 1, 0, 1, 1, false));  // 7 -> 1
    } else {
      down(c.channels, d, false);  // 64 -> 32
      down(d, 2 * d, true);        // 32 -> 16
      down(2 * d, 4 * d, true);    // 16 -> 8
      down(4 * d, 8 * d, true);    // 8 -> 4
      main->push_back(std::make_shared<nn::Conv2d>(8 * d, 1, 4, 1, 0, 1, 1, false));  // 4 -> 1
    }
    if (c.dcgan_init) reset_parameters(default_generator());
  }
  std::string type_name() const override { return "DCGANDiscriminator"; }
  std::string extra_repr() const override {
    return "ndf=" + std::to_string(cfg_.ndf) + ", image_size=" + std::to_string(cfg_.image_size);
  }
  const DCGANConfig& config() const { return cfg_; }

  void reset_parameters(Generator& gen) { detail::dcgan_init(*main, gen); }

  Tensor forward(const Tensor& x) override {
    const int64_t S = cfg_.image_size;
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.channels && x.size(2) == S && x.size(3) == S,
                "DCGANDiscriminator: expected images (N, ", cfg_.channels, ", ", S, ", ", S, "), got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                "; hint: resize the images to image_size (io::resize) or configure image_size");
    Tensor y = main->forward(x);  // (N, 1, 1, 1)
    return reshape(y, {y.size(0)});
  }

  std::shared_ptr<nn::Sequential> main;

 private:
  DCGANConfig cfg_;
};

// ---- losses ---------------------------------------------------------------------------

enum class GANLoss { NonSaturating, Hinge, WGANGP };

/// "bce" / "ns" / "non-saturating", "hinge", "wgan-gp" / "wgan".
inline GANLoss parse_gan_loss(std::string_view s) {
  if (s == "bce" || s == "ns" || s == "non-saturating") return GANLoss::NonSaturating;
  if (s == "hinge") return GANLoss::Hinge;
  if (s == "wgan-gp" || s == "wgan" || s == "wgangp") return GANLoss::WGANGP;
  GENAI_FAIL("parse_gan_loss: unknown GAN loss '", s, "'; expected 'bce', 'hinge' or 'wgan-gp'");
}

namespace detail {
inline void check_logits(const Tensor& t, const char* op, const char* what) {
  GENAI_CHECK(t.defined() && t.is_floating_point(), op, ": ", what, " logits must be a floating-point tensor");
}
}  // namespace detail

/// The discriminator's loss from its logits on real (N) and fake (M) data (for WGANGP
/// without the penalty: add gp_weight * gradient_penalty(...)).
inline Tensor discriminator_loss(GANLoss kind, const Tensor& real_logits, const Tensor& fake_logits) {
  detail::check_logits(real_logits, "discriminator_loss", "real");
  detail::check_logits(fake_logits, "discriminator_loss", "fake");
  switch (kind) {
    case GANLoss::NonSaturating:  // BCE(real, 1) + BCE(fake, 0) = softplus(-real) + softplus(fake)
      return add(binary_cross_entropy_with_logits(real_logits, ones_like(real_logits)),
                 binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits)));
    case GANLoss::Hinge:
      return add(mean(relu(sub(ones_like(real_logits), real_logits))), mean(relu(add(fake_logits, 1.0))));
    case GANLoss::WGANGP:
      return sub(mean(fake_logits), mean(real_logits));
  }
  GENAI_FAIL("discriminator_loss: unknown loss kind");
}

/// The generator's loss from the discriminator's logits on fake data.
inline Tensor generator_loss(GANLoss kind, const Tensor& fake_logits) {
  detail::check_logits(fake_logits, "generator_loss", "fake");
  if (kind == GANLoss::NonSaturating) return binary_cross_entropy_with_logits(fake_logits, ones_like(fake_logits));
  return neg(mean(fake_logits));  // hinge and WGAN
}

/// WGAN-GP's penalty mean((||grad_x D(x)||_2 - 1)^2) at x = alpha real + (1 - alpha) fake,
/// alpha broadcasting to the images (e.g. (N, 1, 1, 1)); fake is detached. Differentiable
/// with respect to D's parameters (the input gradient is taken with create_graph).
inline Tensor gradient_penalty(nn::UnaryModule& critic, const Tensor& real, const Tensor& fake, const Tensor& alpha) {
  GENAI_CHECK(real.defined() && fake.defined() && real.shape() == fake.shape() && real.dim() >= 2,
              "gradient_penalty: real ", real.defined() ? shape_str(real.shape()) : std::string("(undefined)"),
              " and fake ", fake.defined() ? shape_str(fake.shape()) : std::string("(undefined)"),
              " must be batches (N, ...) of the same shape");
  GENAI_CHECK(alpha.defined(), "gradient_penalty: alpha is undefined");
  Tensor a = alpha.detach();
  Tensor x = add(mul(a, real.detach()), mul(sub(ones_like(a), a), fake.detach()));  // (N, C, H, W)
  x = x.detach();
  x.requires_grad_(true);
  Tensor d = critic.forward(x);  // (N)
  Tensor g = autograd::grad({d}, {x}, {ones_like(d)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  Tensor norm = sqrt(sum(square(reshape(g, {g.size(0), -1})), {1}));  // (N) ||grad||_2
  return mean(square(add(norm, -1.0)));
}
/// As above with alpha ~ U(0, 1) per sample drawn from `gen`.
inline Tensor gradient_penalty(nn::UnaryModule& critic, const Tensor& real, const Tensor& fake,
                               Generator& gen = default_generator()) {
  GENAI_CHECK(real.defined() && real.dim() >= 2, "gradient_penalty: real must be a batch (N, ...)");
  Shape s(static_cast<size_t>(real.dim()), 1);
  s[0] = real.size(0);
  return gradient_penalty(critic, real, fake, rand(s, real.dtype(), gen));
}

// ---- one training iteration ---------------------------------------------------------------

struct GANStepOptions {
  GANLoss loss = GANLoss::NonSaturating;
  double gp_weight = 10.0;  // WGANGP: weight of the gradient penalty
};

/// The losses of one iteration (taken before the updates), and D's mean logits.
struct GANStepStats {
  double d_loss = 0, g_loss = 0;
  double gp = 0;                   // the gradient penalty (WGANGP), else 0
  double d_real = 0, d_fake = 0;   // mean logit of D on real and on fake (before D's step)
};

/// One iteration as pytorch/examples' dcgan: D step on real and detached fake = G(z), then
/// a G step through the updated D on the same fake. real (N, nc, S, S) in [-1, 1], z (M, nz).
/// Unlike the PyTorch example, D's parameter gradients are not computed in the G step
/// (they are never used); afterwards D's .grad() holds the D step's gradients.
/// WGANGP draws alpha from `gen` unless `gp_alpha` is given.
inline GANStepStats gan_train_step(nn::UnaryModule& netG, nn::UnaryModule& netD, optim::Optimizer& optG,
                                   optim::Optimizer& optD, const Tensor& real, const Tensor& z,
                                   const GANStepOptions& o = {}, const Tensor& gp_alpha = Tensor(),
                                   Generator& gen = default_generator()) {
  GANStepStats st;
  // D step: maximize log D(real) + log(1 - D(G(z))) (or the hinge / WGAN critic objective)
  optD.zero_grad();
  Tensor fake = netG.forward(z);  // (M, nc, S, S), with G's graph for the G step
  Tensor real_logits = netD.forward(real), fake_logits = netD.forward(fake.detach());
  Tensor d_loss = discriminator_loss(o.loss, real_logits, fake_logits);
  if (o.loss == GANLoss::WGANGP) {
    Tensor gp = gp_alpha.defined() ? gradient_penalty(netD, real, fake, gp_alpha)
                                   : gradient_penalty(netD, real, fake, gen);
    st.gp = gp.item<double>();
    d_loss = add(d_loss, mul(gp, o.gp_weight));
  }
  d_loss.backward();
  optD.step();
  // G step: the non-saturating loss -log D(G(z)) (or -D(G(z))). D's parameters are frozen
  // meanwhile: their gradients would be discarded (optD.zero_grad above), so skip them
  optG.zero_grad();
  Tensor g_loss;
  {
    nn::FreezeParameters frozen(netD.parameters());  // D gets no gradient from G's loss
    g_loss = generator_loss(o.loss, netD.forward(fake));
    g_loss.backward();
  }
  optG.step();
  st.d_loss = d_loss.item<double>();
  st.g_loss = g_loss.item<double>();
  st.d_real = mean(real_logits).item<double>();
  st.d_fake = mean(fake_logits).item<double>();
  return st;
}

}  // namespace models
}  // namespace genai
