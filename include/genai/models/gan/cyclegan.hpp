// genai/models/gan/cyclegan.hpp: CycleGAN (Zhu, Park, Isola & Efros, "Unpaired
// Image-to-Image Translation using Cycle-Consistent Adversarial Networks", 2017),
// following the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
// models/networks.py and models/cycle_gan_model.py) layer for layer, so its state dicts
// load (parameter names model.N.weight in nn.Sequential order):
//
//   ResnetGenerator (images (N, input_nc, H, W) -> (N, output_nc, H, W) in [-1, 1]):
//     ReflectionPad2d(3) Conv(input_nc, ngf, 7) IN ReLU
//     n_downsampling x [Conv(c, 2c, 3, stride 2, pad 1) IN ReLU]           (H / 2^n_down)
//     n_blocks x ResnetBlock(C = ngf 2^n_down):
//        x + [ReflectionPad2d(1) Conv(C, C, 3) IN ReLU (Dropout 0.5) ReflectionPad2d(1) Conv(C, C, 3) IN](x)
//     n_downsampling x [ConvTranspose(c, c/2, 3, stride 2, pad 1, output_padding 1) IN ReLU]
//     ReflectionPad2d(3) Conv(ngf, output_nc, 7) Tanh
//   NLayerDiscriminator (the PatchGAN; n_layers 3 is the paper's 70 x 70 receptive field):
//     Conv(input_nc, ndf, 4, 2, 1) LReLU(0.2)
//     for n in 1..n_layers-1: Conv(ndf min(2^(n-1), 8), ndf min(2^n, 8), 4, 2, 1) IN LReLU(0.2)
//     Conv(.., ndf min(2^n_layers, 8), 4, 1, 1) IN LReLU(0.2), Conv(.., 1, 4, 1, 1)  -> patch logits
//   IN = InstanceNorm2d without affine parameters or running statistics (so every conv
//   has a bias, as networks.py's use_bias for instance norm). Initialization: conv
//   weights N(0, init_gain = 0.02), biases 0 (networks.py init_weights, 'normal').
//
// Training (cycle_gan_model.py optimize_parameters), per iteration on real_A, real_B:
//   fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A)
//   G step (D frozen): L_G = LSGAN(D_A(fake_B), 1) + LSGAN(D_B(fake_A), 1)
//                            + lambda_A |rec_A - A|_1 + lambda_B |rec_B - B|_1
//                            + lambda_idt (lambda_B |G_A(B) - B|_1 + lambda_A |G_B(A) - A|_1)
//   D step: L_D_A = (LSGAN(D_A(B), 1) + LSGAN(D_A(pool_B(fake_B)), 0)) / 2, same for D_B
//   with A and fake_A; LSGAN(p, t) = mean (p - t)^2; |.|_1 are means; Adam(2e-4,
//   betas (0.5, 0.999)); pools of 50 past fakes (ImagePool); the learning rate constant
//   for n_epochs, then decaying linearly to 0 over n_epochs_decay (cyclegan_lr_factor).
//
// Differences from the reference code: the image pool draws from a genai::Generator (the
// reference uses Python's `random`), and its contents are not part of a checkpoint;
// n_downsampling is configurable (fixed at 2 there: the default here too).
//
//   models::CycleGAN gan(models::CycleGANConfig::fashion_mnist());
//   optim::Adam opt_G(gan.generator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//   optim::Adam opt_D(gan.discriminator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
//   models::CycleGANStepStats s = gan.train_step(opt_G, opt_D, real_A, real_B);
//   Tensor b = gan.translate(real_A, /*a2b=*/true);
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "genai/nn/conv.hpp"
#include "genai/nn/init.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"
#include "genai/ops/loss.hpp"
#include "genai/ops/pad.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace models {

struct CycleGANConfig {
  int64_t input_nc = 1;        // channels of domain A images
  int64_t output_nc = 1;       // channels of domain B images
  int64_t ngf = 16;            // generator width (paper: 64)
  int64_t ndf = 16;            // discriminator width (paper: 64)
  int64_t n_blocks = 4;        // residual blocks (paper: 9 at 256 x 256, 6 at 128 x 128)
  int64_t n_downsampling = 2;  // stride-2 convs (and transposed convs) of the generator
  int64_t n_layers_d = 2;      // PatchGAN stride-2 layers (paper: 3, the 70 x 70 PatchGAN)
  bool use_dropout = false;    // Dropout(0.5) in the residual blocks (CycleGAN: off)
  double init_gain = 0.02;     // std of the N(0, gain) conv weights

  /// The default for 28 x 28 Fashion-MNIST (the fields' defaults above: 28 -> 14 -> 7, four
  /// residual blocks of 64 channels at 7 x 7, a PatchGAN with 5 x 5 patches of 16 x 16 pixels;
  /// 343k parameters per generator, 42k per discriminator).
  static CycleGANConfig fashion_mnist() { return {}; }
  /// The paper's networks for 256 x 256 RGB: resnet_9blocks, ngf = ndf = 64, 70 x 70 PatchGAN.
  static CycleGANConfig paper() {
    return {.input_nc = 3, .output_nc = 3, .ngf = 64, .ndf = 64, .n_blocks = 9, .n_downsampling = 2, .n_layers_d = 3};
  }
};

namespace detail {
inline std::string shape_or_undef(const Tensor& t) {
  return t.defined() ? shape_str(t.shape()) : std::string("(undefined)");
}
inline std::shared_ptr<nn::InstanceNorm2d> cyclegan_norm(int64_t c) { return std::make_shared<nn::InstanceNorm2d>(c); }

/// networks.py init_weights('normal'): conv weights N(0, gain), biases 0 (these nets have no
/// other parameters: the instance norms carry none).
inline void cyclegan_init(nn::Module& m, double gain, Generator& gen) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor t = p;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0)
      nn::init::zeros_(t);
    else
      nn::init::normal_(t, 0.0, gain, gen);
  }
}
}  // namespace detail

/// x + conv_block(x) with conv_block = [pad conv IN ReLU (dropout) pad conv IN]: (N, C, H, W) -> same.
class ResnetBlock : public nn::UnaryModule {
 public:
  explicit ResnetBlock(int64_t dim, bool use_dropout = false) {
    conv_block = register_module("conv_block", std::make_shared<nn::Sequential>());
    conv_block->push_back(std::make_shared<nn::ReflectionPad2d>(1));
    conv_block->push_back(std::make_shared<nn::Conv2d>(dim, dim, 3, 1, 0));
    conv_block->push_back(detail::cyclegan_norm(dim));
    conv_block->push_back(std::make_shared<nn::ReLU>());
    if (use_dropout) conv_block->push_back(std::make_shared<nn::Dropout>(0.5));
    conv_block->push_back(std::make_shared<nn::ReflectionPad2d>(1));
    conv_block->push_back(std::make_shared<nn::Conv2d>(dim, dim, 3, 1, 0));
    conv_block->push_back(detail::cyclegan_norm(dim));
  }
  std::string type_name() const override { return "ResnetBlock"; }
  Tensor forward(const Tensor& x) override { return add(x, conv_block->forward(x)); }

  std::shared_ptr<nn::Sequential> conv_block;
};

/// The ResNet generator: (N, input_nc, H, W) -> (N, output_nc, H, W) in [-1, 1]; H and W
/// must be divisible by 2^n_downsampling (and the reflection pads need H, W > 3).
class ResnetGenerator : public nn::UnaryModule {
 public:
  explicit ResnetGenerator(const CycleGANConfig& c = {}) : cfg_(c) {
    GENAI_CHECK(c.input_nc > 0 && c.output_nc > 0 && c.ngf > 0 && c.n_blocks >= 0 && c.n_downsampling >= 0,
                "ResnetGenerator: input_nc, output_nc, ngf must be positive and n_blocks, n_downsampling "
                "non-negative, got ",
                c.input_nc, ", ", c.output_nc, ", ", c.ngf, ", ", c.n_blocks, ", ", c.n_downsampling);
    model = register_module("model", std::make_shared<nn::Sequential>());
    model->push_back(std::make_shared<nn::ReflectionPad2d>(3));
    model->push_back(std::make_shared<nn::Conv2d>(c.input_nc, c.ngf, 7, 1, 0));
    model->push_back(detail::cyclegan_norm(c.ngf));
    model->push_back(std::make_shared<nn::ReLU>());
    int64_t ch = c.ngf;
    for (int64_t i = 0; i < c.n_downsampling; ++i, ch *= 2) {  // H -> H / 2
      model->push_back(std::make_shared<nn::Conv2d>(ch, 2 * ch, 3, 2, 1));
      model->push_back(detail::cyclegan_norm(2 * ch));
      model->push_back(std::make_shared<nn::ReLU>());
    }
    for (int64_t i = 0; i < c.n_blocks; ++i) model->push_back(std::make_shared<ResnetBlock>(ch, c.use_dropout));
    for (int64_t i = 0; i < c.n_downsampling; ++i, ch /= 2) {  // H -> 2 H
      model->push_back(std::make_shared<nn::ConvTranspose2d>(ch, ch / 2, 3, 2, 1, 1));
      model->push_back(detail::cyclegan_norm(ch / 2));
      model->push_back(std::make_shared<nn::ReLU>());
    }
    model->push_back(std::make_shared<nn::ReflectionPad2d>(3));
    model->push_back(std::make_shared<nn::Conv2d>(c.ngf, c.output_nc, 7, 1, 0));
    model->push_back(std::make_shared<nn::Tanh>());
    reset_parameters(default_generator());
  }
  std::string type_name() const override { return "ResnetGenerator"; }
  std::string extra_repr() const override {
    return "ngf=" + std::to_string(cfg_.ngf) + ", n_blocks=" + std::to_string(cfg_.n_blocks) +
           ", n_downsampling=" + std::to_string(cfg_.n_downsampling);
  }
  const CycleGANConfig& config() const { return cfg_; }
  void reset_parameters(Generator& gen) { detail::cyclegan_init(*this, cfg_.init_gain, gen); }

  Tensor forward(const Tensor& x) override {
    const int64_t f = int64_t(1) << cfg_.n_downsampling;
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.input_nc && x.size(2) % f == 0 &&
                    x.size(3) % f == 0 && x.size(2) > 3 && x.size(3) > 3,
                "ResnetGenerator: expected images (N, ", cfg_.input_nc, ", H, W) with H and W divisible by ", f,
                " and larger than 3, got ", detail::shape_or_undef(x),
                "; hint: pad or resize the images (e.g. 28 x 28 works with n_downsampling 2)");
    return model->forward(x);  // (N, output_nc, H, W)
  }

  std::shared_ptr<nn::Sequential> model;

 private:
  CycleGANConfig cfg_;
};

/// The PatchGAN discriminator: (N, input_nc, H, W) -> patch logits (N, 1, H', W').
class NLayerDiscriminator : public nn::UnaryModule {
 public:
  explicit NLayerDiscriminator(int64_t input_nc = 1, int64_t ndf = 64, int64_t n_layers = 3, double init_gain = 0.02)
      : n_layers_(n_layers), init_gain_(init_gain) {
    GENAI_CHECK(input_nc > 0 && ndf > 0 && n_layers >= 0, "NLayerDiscriminator: input_nc, ndf must be positive and "
                "n_layers non-negative, got ", input_nc, ", ", ndf, ", ", n_layers);
    model = register_module("model", std::make_shared<nn::Sequential>());
    model->push_back(std::make_shared<nn::Conv2d>(input_nc, ndf, 4, 2, 1));
    model->push_back(std::make_shared<nn::LeakyReLU>(0.2));
    int64_t mult = 1, prev = 1;
    for (int64_t n = 1; n < n_layers; ++n) {
      prev = mult;
      mult = std::min<int64_t>(int64_t(1) << n, 8);
      model->push_back(std::make_shared<nn::Conv2d>(ndf * prev, ndf * mult, 4, 2, 1));
      model->push_back(detail::cyclegan_norm(ndf * mult));
      model->push_back(std::make_shared<nn::LeakyReLU>(0.2));
    }
    prev = mult;
    mult = std::min<int64_t>(int64_t(1) << n_layers, 8);
    model->push_back(std::make_shared<nn::Conv2d>(ndf * prev, ndf * mult, 4, 1, 1));
    model->push_back(detail::cyclegan_norm(ndf * mult));
    model->push_back(std::make_shared<nn::LeakyReLU>(0.2));
    model->push_back(std::make_shared<nn::Conv2d>(ndf * mult, 1, 4, 1, 1));
    reset_parameters(default_generator());
  }
  std::string type_name() const override { return "NLayerDiscriminator"; }
  std::string extra_repr() const override { return "n_layers=" + std::to_string(n_layers_); }
  void reset_parameters(Generator& gen) { detail::cyclegan_init(*this, init_gain_, gen); }

  Tensor forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() == 4, "NLayerDiscriminator: expected images (N, C, H, W), got ",
                detail::shape_or_undef(x));
    return model->forward(x);  // (N, 1, H', W')
  }

  std::shared_ptr<nn::Sequential> model;

 private:
  int64_t n_layers_;
  double init_gain_;
};

// ---- losses, image pool, learning-rate schedule ----------------------------------------------

/// LSGAN loss (networks.py GANLoss('lsgan')): mean (pred - target)^2, target 1 (real) or 0 (fake).
inline Tensor lsgan_loss(const Tensor& pred, bool target_is_real) {
  GENAI_CHECK(pred.defined() && pred.is_floating_point(), "lsgan_loss: pred must be a floating-point tensor");
  return mse_loss(pred, full_like(pred, target_is_real ? 1.0 : 0.0));
}

/// A buffer of past generated images (Shrivastava et al. 2017, as util/image_pool.py): until
/// it holds pool_size images, query returns the new images and stores them; afterwards each
/// image is, with probability 1/2, swapped with a random stored one (the stored one is
/// returned), else returned as is. pool_size 0 returns the input unchanged.
class ImagePool {
 public:
  explicit ImagePool(int64_t pool_size = 50) : pool_size_(pool_size) {
    GENAI_CHECK(pool_size >= 0, "ImagePool: pool_size must be non-negative, got ", pool_size);
  }
  /// images (N, C, H, W) -> (N, C, H, W), detached.
  Tensor query(const Tensor& images, Generator& gen = default_generator()) {
    GENAI_CHECK(images.defined() && images.dim() == 4, "ImagePool::query: expected images (N, C, H, W), got ",
                detail::shape_or_undef(images));
    Tensor d = images.detach();
    if (pool_size_ == 0) return d;
    TensorList out;
    for (int64_t i = 0; i < d.size(0); ++i) {
      Tensor img = clone(narrow(d, 0, i, 1));  // (1, C, H, W)
      if (static_cast<int64_t>(images_.size()) < pool_size_) {
        images_.push_back(img);
        out.push_back(img);
      } else if (gen.uniform() > 0.5) {
        const auto k = static_cast<size_t>(gen.below(static_cast<uint64_t>(pool_size_)));
        out.push_back(images_[k]);
        images_[k] = img;
      } else {
        out.push_back(img);
      }
    }
    return cat(out, 0);
  }
  int64_t pool_size() const { return pool_size_; }
  int64_t size() const { return static_cast<int64_t>(images_.size()); }

 private:
  int64_t pool_size_;
  TensorList images_;
};

/// The linear decay of networks.py get_scheduler('linear') (epoch_count 1): the factor of the
/// initial lr after `epochs_done` epochs: 1 for the first n_epochs, then linearly to 1 / (n_decay + 1).
inline double cyclegan_lr_factor(int64_t epochs_done, int64_t n_epochs, int64_t n_epochs_decay) {
  const double over = static_cast<double>(std::max<int64_t>(0, epochs_done + 1 - n_epochs));
  return std::max(0.0, 1.0 - over / static_cast<double>(n_epochs_decay + 1));
}

struct CycleGANLossWeights {
  double lambda_A = 10.0;         // weight of the cycle loss A -> B -> A
  double lambda_B = 10.0;         // weight of the cycle loss B -> A -> B
  double lambda_identity = 0.5;   // identity loss weight, relative to lambda_A / lambda_B (0: off)
};

/// The generator losses of one iteration (each already weighted) and the images they came from.
struct CycleGANGeneratorLoss {
  Tensor G_A, G_B, cycle_A, cycle_B, idt_A, idt_B;  // 0-d (idt_* undefined when lambda_identity is 0)
  Tensor total;                                     // 0-d: their sum
  Tensor fake_A, fake_B, rec_A, rec_B;              // (N, C, H, W)
};

/// The generator objective of cycle_gan_model.py backward_G (D's parameters are used as given:
/// freeze them to skip their gradients).
inline CycleGANGeneratorLoss cyclegan_generator_loss(nn::UnaryModule& G_A, nn::UnaryModule& G_B,
                                                     nn::UnaryModule& D_A, nn::UnaryModule& D_B, const Tensor& real_A,
                                                     const Tensor& real_B, const CycleGANLossWeights& w = {}) {
  CycleGANGeneratorLoss l;
  l.fake_B = G_A.forward(real_A);   // G_A(A)
  l.rec_A = G_B.forward(l.fake_B);  // G_B(G_A(A))
  l.fake_A = G_B.forward(real_B);   // G_B(B)
  l.rec_B = G_A.forward(l.fake_A);  // G_A(G_B(B))
  Tensor total;
  if (w.lambda_identity > 0) {
    GENAI_CHECK(real_A.size(1) == real_B.size(1), "cyclegan_generator_loss: the identity loss needs both domains to "
                "have the same channels, got A ", shape_str(real_A.shape()), " and B ", shape_str(real_B.shape()),
                "; hint: set lambda_identity to 0");
    l.idt_A = mul(l1_loss(G_A.forward(real_B), real_B), w.lambda_B * w.lambda_identity);
    l.idt_B = mul(l1_loss(G_B.forward(real_A), real_A), w.lambda_A * w.lambda_identity);
  }
  l.G_A = lsgan_loss(D_A.forward(l.fake_B), true);
  l.G_B = lsgan_loss(D_B.forward(l.fake_A), true);
  l.cycle_A = mul(l1_loss(l.rec_A, real_A), w.lambda_A);
  l.cycle_B = mul(l1_loss(l.rec_B, real_B), w.lambda_B);
  l.total = add(add(add(l.G_A, l.G_B), l.cycle_A), l.cycle_B);
  if (l.idt_A.defined()) l.total = add(add(l.total, l.idt_A), l.idt_B);
  return l;
}

/// The discriminator objective of backward_D_basic: (LSGAN(D(real), 1) + LSGAN(D(fake), 0)) / 2, fake detached.
inline Tensor cyclegan_discriminator_loss(nn::UnaryModule& D, const Tensor& real, const Tensor& fake) {
  return mul(add(lsgan_loss(D.forward(real), true), lsgan_loss(D.forward(fake.detach()), false)), 0.5);
}

/// The losses of one iteration (before the updates).
struct CycleGANStepStats {
  double G = 0, G_A = 0, G_B = 0, cycle_A = 0, cycle_B = 0, idt_A = 0, idt_B = 0;
  double D_A = 0, D_B = 0;
};

/// The two generators and two discriminators: state dict keys netG_A.model.0.weight, ...,
/// netD_B.model.N.bias, as the reference code's saved networks prefixed by their names.
class CycleGAN : public nn::Module {
 public:
  explicit CycleGAN(const CycleGANConfig& c = {}, const CycleGANLossWeights& w = {}, int64_t pool_size = 50)
      : cfg_(c), weights_(w), fake_A_pool_(pool_size), fake_B_pool_(pool_size) {
    CycleGANConfig cb = c;  // G_B maps B -> A
    std::swap(cb.input_nc, cb.output_nc);
    netG_A = register_module("netG_A", std::make_shared<ResnetGenerator>(c));
    netG_B = register_module("netG_B", std::make_shared<ResnetGenerator>(cb));
    netD_A = register_module("netD_A", std::make_shared<NLayerDiscriminator>(c.output_nc, c.ndf, c.n_layers_d,
                                                                            c.init_gain));  // judges B images
    netD_B = register_module("netD_B", std::make_shared<NLayerDiscriminator>(c.input_nc, c.ndf, c.n_layers_d,
                                                                            c.init_gain));  // judges A images
  }
  std::string type_name() const override { return "CycleGAN"; }
  const CycleGANConfig& config() const { return cfg_; }
  CycleGANLossWeights& loss_weights() { return weights_; }

  std::vector<Tensor> generator_parameters() const {
    std::vector<Tensor> p = netG_A->parameters(), q = netG_B->parameters();
    p.insert(p.end(), q.begin(), q.end());
    return p;
  }
  std::vector<Tensor> discriminator_parameters() const {
    std::vector<Tensor> p = netD_A->parameters(), q = netD_B->parameters();
    p.insert(p.end(), q.begin(), q.end());
    return p;
  }

  /// A -> B (a2b) or B -> A, without gradients.
  Tensor translate(const Tensor& x, bool a2b) {
    NoGradGuard ng;
    return a2b ? netG_A->forward(x) : netG_B->forward(x);
  }

  /// One iteration of optimize_parameters: the G step (D frozen) with opt_G over
  /// generator_parameters(), then the D_A and D_B losses on pooled fakes and one opt_D step
  /// over discriminator_parameters(). real_A (N, input_nc, H, W), real_B (M, output_nc, H, W).
  CycleGANStepStats train_step(optim::Optimizer& opt_G, optim::Optimizer& opt_D, const Tensor& real_A,
                               const Tensor& real_B, Generator& gen = default_generator()) {
    CycleGANStepStats st;
    CycleGANGeneratorLoss l;
    {
      nn::FreezeParameters frozen(discriminator_parameters());  // D gets no gradient from G's loss
      opt_G.zero_grad();
      l = cyclegan_generator_loss(*netG_A, *netG_B, *netD_A, *netD_B, real_A, real_B, weights_);
      l.total.backward();
      opt_G.step();
    }
    opt_D.zero_grad();
    Tensor fake_B = fake_B_pool_.query(l.fake_B, gen), fake_A = fake_A_pool_.query(l.fake_A, gen);
    Tensor d_A = cyclegan_discriminator_loss(*netD_A, real_B, fake_B);
    d_A.backward();
    Tensor d_B = cyclegan_discriminator_loss(*netD_B, real_A, fake_A);
    d_B.backward();
    opt_D.step();
    auto val = [](const Tensor& t) { return t.defined() ? t.item<double>() : 0.0; };
    st.G = val(l.total);
    st.G_A = val(l.G_A);
    st.G_B = val(l.G_B);
    st.cycle_A = val(l.cycle_A);
    st.cycle_B = val(l.cycle_B);
    st.idt_A = val(l.idt_A);
    st.idt_B = val(l.idt_B);
    st.D_A = d_A.item<double>();
    st.D_B = d_B.item<double>();
    return st;
  }

  std::shared_ptr<ResnetGenerator> netG_A, netG_B;      // A -> B, B -> A
  std::shared_ptr<NLayerDiscriminator> netD_A, netD_B;  // on B images, on A images

 private:
  CycleGANConfig cfg_;
  CycleGANLossWeights weights_;
  ImagePool fake_A_pool_, fake_B_pool_;
};

}  // namespace models
}  // namespace genai
