// genai/models/gan/stylegan.hpp: StyleGAN2 (Karras et al., "Analyzing and Improving the
// Image Quality of StyleGAN", CVPR 2020), laid out as NVlabs' stylegan2-ada-pytorch
// (training/networks.py, training/loss.py), small enough for Fashion-MNIST at 32 x 32:
//
//   models::StyleGANConfig cfg;                  // z = w = 128, 8 mapping layers, 32 x 32 x 1
//   models::StyleGANGenerator G(cfg);            // G.mapping (z -> ws), G.synthesis (ws -> image)
//   models::StyleGANDiscriminator D(cfg);        // residual D with minibatch stddev
//   Tensor img = G.forward(z, /*truncation_psi=*/0.7);           // (N, 1, 32, 32), about [-1, 1]
//   models::StyleGANStepStats s = models::stylegan_train_step(G, D, optG, optD, real, step);
//
// Pieces (names of parameters and buffers as stylegan2-ada-pytorch's, so its state dicts
// of the same configuration load; tests/fixtures/make_stylegan_fixtures.py is the PyTorch twin):
// - equalized learning rate: every weight is stored N(0, 1) (/ lr_multiplier) and scaled at
//   run time by its He constant (FullyConnectedLayer: lr_multiplier / sqrt(in); Conv2dLayer
//   and ToRGB: 1 / sqrt(in k k)); biases by lr_multiplier. Leaky ReLU (0.2) outputs are
//   multiplied by sqrt(2) (bias_act's def_gain).
// - mapping network: z normalized by its second moment, `mapping_layers` FC + lrelu layers
//   with lr multiplier 0.01, broadcast to num_ws styles; w_avg (a buffer) tracks the mean w
//   (beta 0.995) in training mode; the truncation trick lerps ws[:, :cutoff] toward w_avg.
// - synthesis network (skip architecture): a learned 4 x 4 constant, per resolution two
//   modulated 3 x 3 convolutions (weight demodulation) with per-pixel noise scaled by a
//   learned per-layer strength, and a ToRGB (1 x 1 modulated conv without demodulation)
//   whose images are summed across resolutions after upsampling.
// - discriminator (residual architecture): FromRGB at full resolution, per block conv 3 x 3,
//   conv 3 x 3 down and a 1 x 1 skip down, summed with gain sqrt(1/2); epilogue at 4 x 4:
//   minibatch standard deviation (group 4, 1 channel), conv, FC, FC -> one logit.
// - losses (StyleGAN2Loss): non-saturating softplus losses, style mixing regularization
//   (probability 0.9: ws after a random cutoff come from a second z), lazy R1 on real images
//   every `r1_interval` steps, scaled by the interval; an EMA generator (stylegan_ema_update).
//
// Differences from stylegan2-ada-pytorch (all documented in docs/stylegan.md):
// - resampling: bilinear x2 upsampling (align_corners false: the [1, 3, 3, 1] / 4 filter of
//   the official FIR upsampler, with replicated instead of zero-padded borders) before the
//   up-convolution and for the skip images; 2 x 2 average pooling before the discriminator's
//   down-convolutions (the official code blurs with [1, 3, 3, 1] and convolves with stride 2).
// - no path-length regularization, no conditioning (c_dim 0), no fp16 / conv clamping.
// - the lazy R1 term is added to the discriminator's main step of every r1_interval-th
//   iteration (sharing its forward pass on the reals) instead of running a separate
//   optimizer step; the Adam hyper-parameters are adjusted by interval / (interval + 1) as
//   the official code does (stylegan_adam_for_lazy_reg).
// - modulated_conv2d takes the upsampling out (the layer does it) and has no flip_weight
//   or resample filter; fused_modconv selects the grouped-convolution form (one conv2d with
//   groups = N, per-sample weights) instead of scaling activations (the default; both agree).
// - the discriminator returns logits of shape (N), not (N, 1).
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "genai/nn/module.hpp"
#include "genai/ops/conv.hpp"
#include "genai/ops/pool.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace models {

struct StyleGANConfig {
  int64_t z_dim = 128;             // latent z
  int64_t w_dim = 128;             // intermediate latent w
  int64_t mapping_layers = 8;      // FC layers of the mapping network
  double mapping_lr_mult = 0.01;   // learning-rate multiplier of the mapping network
  double w_avg_beta = 0.995;       // decay of the tracked mean w (truncation center)
  int64_t resolution = 32;         // output size, a power of two >= 8
  int64_t img_channels = 1;        // 1 (Fashion-MNIST) or 3
  int64_t channel_base = 512;      // channels at resolution r: min(channel_base / r, channel_max)
  int64_t channel_max = 64;        //   the default gives 64, 64, 32, 16 at 4, 8, 16, 32
  int64_t mbstd_group_size = 4;    // minibatch-stddev group (the batch must divide into groups)
  int64_t mbstd_num_channels = 1;  // minibatch-stddev features
};

/// Channels at resolution `res`: min(channel_base / res, channel_max).
inline int64_t stylegan_channels(const StyleGANConfig& c, int64_t res) {
  return std::max<int64_t>(1, std::min(c.channel_base / res, c.channel_max));
}

inline void check_stylegan_config(const StyleGANConfig& c, const char* who) {
  const bool pow2 = c.resolution >= 8 && (c.resolution & (c.resolution - 1)) == 0;
  GENAI_CHECK(pow2, who, ": resolution must be a power of two >= 8, got ", c.resolution);
  GENAI_CHECK(c.z_dim > 0 && c.w_dim > 0 && c.mapping_layers >= 1 && c.img_channels > 0 && c.channel_base > 0 &&
                  c.channel_max > 0 && c.mapping_lr_mult > 0 && c.mbstd_group_size >= 1 && c.mbstd_num_channels >= 1,
              who,
              ": z_dim, w_dim, mapping_layers, img_channels, channel_base, channel_max, mapping_lr_mult and the "
              "minibatch-stddev sizes must be positive");
}

/// Noise inputs of the synthesis layers: fresh N(0, 1) per call, the stored noise_const
/// buffers (reproducible images), or none.
enum class NoiseMode { Random, Const, None };

// ---- the modulated convolution ------------------------------------------------------------

/// StyleGAN2's modulated convolution (stylegan2-ada-pytorch's modulated_conv2d, stride 1):
///   w'[n, o, c] = weight[o, c] styles[n, c]; with demodulation
///   w''[n, o, c] = w'[n, o, c] / sqrt(sum_{c, i, j} w'[n, o, c, i, j]^2 + 1e-8)
///   y[n] = conv2d(x[n], w''[n], padding) + noise
/// x (N, C, H, W), weight (O, C, k, k), styles (N, C), noise broadcasting to (N, O, Ho, Wo)
/// or undefined. fused_modconv = false (what the official code trains with): scale the
/// activations by the styles, one shared conv2d, scale the output by the demodulation
/// coefficients; true: per-sample weights in one grouped conv2d (groups = N). The same
/// function either way, differentiable to any order (composed of differentiable ops).
inline Tensor modulated_conv2d(const Tensor& x, const Tensor& weight, const Tensor& styles,
                               const Tensor& noise = Tensor(), int64_t padding = 0, bool demodulate = true,
                               bool fused_modconv = false) {
  GENAI_CHECK(x.defined() && weight.defined() && styles.defined(),
              "modulated_conv2d: x, weight and styles must be defined");
  GENAI_CHECK(x.dim() == 4 && weight.dim() == 4 && styles.dim() == 2 && weight.size(1) == x.size(1) &&
                  styles.size(0) == x.size(0) && styles.size(1) == x.size(1),
              "modulated_conv2d: expected x (N, C, H, W), weight (O, C, k, k) and styles (N, C), got x ",
              shape_str(x.shape()), ", weight ", shape_str(weight.shape()), ", styles ", shape_str(styles.shape()));
  const int64_t N = x.size(0), C = x.size(1), O = weight.size(0);
  Tensor y;
  if (!fused_modconv) {
    Tensor xs = mul(x, reshape(styles, {N, C, 1, 1}));  // (N, C, H, W) modulated activations
    y = conv2d(xs, weight, Tensor(), 1, padding);       // (N, O, Ho, Wo)
    if (demodulate) {
      // sum_{c,i,j} (w[o,c,i,j] s[n,c])^2 = sum_c s[n,c]^2 sum_{i,j} w[o,c,i,j]^2: (N, C) x (C, O)
      Tensor wsq = sum(square(weight), {2, 3});                                        // (O, C)
      Tensor dcoefs = rsqrt(add(matmul(square(styles), transpose(wsq, 0, 1)), 1e-8));  // (N, O)
      y = mul(y, reshape(dcoefs, {N, O, 1, 1}));
    }
  } else {
    const int64_t kh = weight.size(2), kw = weight.size(3);
    Tensor w = mul(unsqueeze(weight, 0), reshape(styles, {N, 1, C, 1, 1}));  // (N, O, C, kh, kw)
    if (demodulate) {
      Tensor dcoefs = rsqrt(add(sum(square(w), {2, 3, 4}), 1e-8));  // (N, O)
      w = mul(w, reshape(dcoefs, {N, O, 1, 1, 1}));
    }
    Tensor xg = reshape(x, {1, N * C, x.size(2), x.size(3)});                    // (1, N C, H, W)
    y = conv2d(xg, reshape(w, {N * O, C, kh, kw}), Tensor(), 1, padding, 1, N);  // (1, N O, Ho, Wo)
    y = reshape(y, {N, O, y.size(2), y.size(3)});
  }
  if (noise.defined()) y = add(y, noise);
  return y;
}

// ---- layers -------------------------------------------------------------------------------

namespace detail {
/// prefix + number ("b32", "fc0"), built by appending (GCC 12's -Wrestrict misfires on "b" + to_string(n))
inline std::string stylegan_name(const char* prefix, int64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

/// bias_act: x + b (broadcast along dim 1), then leaky ReLU (0.2) times sqrt(2) times gain, or linear times gain.
inline Tensor stylegan_bias_act(const Tensor& x, const Tensor& b, bool lrelu, double gain = 1.0) {
  Tensor y = x;
  if (b.defined()) {
    Shape s(static_cast<size_t>(x.dim()), 1);
    s[1] = b.size(0);
    y = add(y, reshape(b, s));
  }
  if (lrelu) {
    y = leaky_relu(y, 0.2);
    gain *= std::sqrt(2.0);
  }
  return gain == 1.0 ? y : mul(y, gain);
}
}  // namespace detail

/// FullyConnectedLayer with equalized learning rate: y = act(x (weight lr_mult / sqrt(in))^T + bias lr_mult).
class StyleGANLinear : public nn::UnaryModule {
 public:
  StyleGANLinear(int64_t in, int64_t out, bool lrelu = false, double lr_multiplier = 1.0, double bias_init = 0.0)
      : in_(in), lrelu_(lrelu), lr_mult_(lr_multiplier) {
    weight = register_parameter("weight", mul(randn({out, in}), 1.0 / lr_multiplier));  // (out, in)
    bias = register_parameter("bias", full({out}, bias_init));                          // (out)
  }
  std::string type_name() const override { return "FullyConnectedLayer"; }
  Tensor forward(const Tensor& x) override {  // (N, in) -> (N, out)
    Tensor w = mul(weight, lr_mult_ / std::sqrt(static_cast<double>(in_)));
    Tensor b = lr_mult_ == 1.0 ? bias : mul(bias, lr_mult_);
    Tensor y = linear(x, w, b);
    return lrelu_ ? mul(leaky_relu(y, 0.2), std::sqrt(2.0)) : y;
  }
  Tensor weight, bias;

 private:
  int64_t in_;
  bool lrelu_;
  double lr_mult_;
};

/// Conv2dLayer of the discriminator: optional 2 x 2 average pooling (down), conv k x k
/// (padding k / 2) with weight / sqrt(in k k), bias, leaky ReLU or linear, times gain.
class StyleGANConv2d : public nn::Module {
 public:
  StyleGANConv2d(int64_t in, int64_t out, int64_t k, bool lrelu, bool down = false, bool bias = true)
      : k_(k), lrelu_(lrelu), down_(down), gain_(1.0 / std::sqrt(static_cast<double>(in * k * k))) {
    weight = register_parameter("weight", randn({out, in, k, k}));  // (O, C, k, k)
    if (bias) this->bias = register_parameter("bias", zeros({out}));
  }
  std::string type_name() const override { return "Conv2dLayer"; }
  Tensor forward(const Tensor& x, double gain = 1.0) {  // (N, C, H, W) -> (N, O, H', W')
    Tensor h = down_ ? avg_pool2d(x, 2) : x;
    h = conv2d(h, mul(weight, gain_), Tensor(), 1, k_ / 2);
    return detail::stylegan_bias_act(h, bias, lrelu_, gain);
  }
  Tensor weight, bias;

 private:
  int64_t k_;
  bool lrelu_, down_;
  double gain_;
};

/// SynthesisLayer: affine(w) -> styles; [bilinear x2]; modulated 3 x 3 conv with
/// demodulation; + noise strength * noise; + bias; leaky ReLU * sqrt(2).
class StyleGANSynthesisLayer : public nn::Module {
 public:
  StyleGANSynthesisLayer(int64_t in, int64_t out, int64_t w_dim, int64_t resolution, bool up)
      : res_(resolution), up_(up) {
    affine = register_module("affine", std::make_shared<StyleGANLinear>(w_dim, in, false, 1.0, 1.0));
    weight = register_parameter("weight", randn({out, in, 3, 3}));                  // (O, C, 3, 3)
    noise_const = register_buffer("noise_const", randn({resolution, resolution}));  // (R, R)
    bias = register_parameter("bias", zeros({out}));                                // (O)
    noise_strength = register_parameter("noise_strength", zeros({}));               // 0-d
  }
  std::string type_name() const override { return "SynthesisLayer"; }
  Tensor forward(const Tensor& x, const Tensor& w, NoiseMode mode, bool fused_modconv = false,
                 Generator& gen = default_generator()) {  // x (N, C, r, r), w (N, w_dim) -> (N, O, R, R)
    Tensor styles = affine->forward(w);                   // (N, C)
    Tensor h = up_ ? interpolate(x, std::nullopt, Scale2(2.0), "bilinear", false) : x;
    Tensor noise;
    if (mode == NoiseMode::Random)
      noise = mul(randn({x.size(0), 1, res_, res_}, x.dtype(), gen), noise_strength);  // (N, 1, R, R)
    else if (mode == NoiseMode::Const)
      noise = mul(noise_const, noise_strength);  // (R, R)
    h = modulated_conv2d(h, weight, styles, noise, 1, true, fused_modconv);
    return detail::stylegan_bias_act(h, bias, true);
  }
  std::shared_ptr<StyleGANLinear> affine;
  Tensor weight, noise_const, bias, noise_strength;

 private:
  int64_t res_;
  bool up_;
};

/// ToRGBLayer: 1 x 1 modulated conv without demodulation (styles / sqrt(in)), + bias, linear.
class StyleGANToRGB : public nn::Module {
 public:
  StyleGANToRGB(int64_t in, int64_t out, int64_t w_dim) : gain_(1.0 / std::sqrt(static_cast<double>(in))) {
    affine = register_module("affine", std::make_shared<StyleGANLinear>(w_dim, in, false, 1.0, 1.0));
    weight = register_parameter("weight", randn({out, in, 1, 1}));  // (O, C, 1, 1)
    bias = register_parameter("bias", zeros({out}));
  }
  std::string type_name() const override { return "ToRGBLayer"; }
  Tensor forward(const Tensor& x, const Tensor& w, bool fused_modconv = false) {  // (N, C, R, R) -> (N, O, R, R)
    Tensor styles = mul(affine->forward(w), gain_);                               // (N, C)
    Tensor y = modulated_conv2d(x, weight, styles, Tensor(), 0, false, fused_modconv);
    return detail::stylegan_bias_act(y, bias, false);
  }
  std::shared_ptr<StyleGANLinear> affine;
  Tensor weight, bias;

 private:
  double gain_;
};

/// SynthesisBlock (skip architecture) at resolution R: [const | conv0 (up)], conv1, torgb;
/// img = upsample(img) + torgb(x). Consumes num_conv + 1 ws, of which the last is shared
/// with the next block's first layer (as the official code's w_idx bookkeeping).
class StyleGANSynthesisBlock : public nn::Module {
 public:
  StyleGANSynthesisBlock(int64_t in, int64_t out, int64_t w_dim, int64_t resolution, int64_t img_channels)
      : in_(in), res_(resolution) {
    if (in == 0) {
      const_ = register_parameter("const", randn({out, resolution, resolution}));  // (C, 4, 4)
    } else {
      conv0 = register_module("conv0", std::make_shared<StyleGANSynthesisLayer>(in, out, w_dim, resolution, true));
    }
    conv1 = register_module("conv1", std::make_shared<StyleGANSynthesisLayer>(out, out, w_dim, resolution, false));
    torgb = register_module("torgb", std::make_shared<StyleGANToRGB>(out, img_channels, w_dim));
  }
  std::string type_name() const override { return "SynthesisBlock"; }
  int64_t num_conv() const { return in_ == 0 ? 1 : 2; }
  /// ws (N, num_conv + 1, w_dim); x (N, in, R/2, R/2) and img (N, img_channels, R/2, R/2) or undefined (first block).
  void forward(Tensor& x, Tensor& img, const Tensor& ws, NoiseMode mode, bool fused_modconv, Generator& gen) {
    const int64_t N = ws.size(0);
    int64_t i = 0;
    if (in_ == 0) {
      x = expand(unsqueeze(const_, 0), {N, const_.size(0), res_, res_});  // (N, C, 4, 4)
    } else {
      x = conv0->forward(x, select(ws, 1, i++), mode, fused_modconv, gen);
    }
    x = conv1->forward(x, select(ws, 1, i++), mode, fused_modconv, gen);
    if (img.defined()) img = interpolate(img, std::nullopt, Scale2(2.0), "bilinear", false);
    Tensor y = torgb->forward(x, select(ws, 1, i), fused_modconv);
    img = img.defined() ? add(img, y) : y;
  }
  Tensor const_;
  std::shared_ptr<StyleGANSynthesisLayer> conv0, conv1;
  std::shared_ptr<StyleGANToRGB> torgb;

 private:
  int64_t in_, res_;
};

/// SynthesisNetwork: ws (N, num_ws, w_dim) -> images (N, img_channels, R, R).
class StyleGANSynthesis : public nn::Module {
 public:
  explicit StyleGANSynthesis(const StyleGANConfig& c) : cfg_(c) {
    check_stylegan_config(c, "StyleGANSynthesis");
    for (int64_t res = 4; res <= c.resolution; res *= 2) {
      const int64_t in = res == 4 ? 0 : stylegan_channels(c, res / 2), out = stylegan_channels(c, res);
      blocks.push_back(register_module(detail::stylegan_name("b", res), std::make_shared<StyleGANSynthesisBlock>(
                                                                            in, out, c.w_dim, res, c.img_channels)));
      num_ws_ += blocks.back()->num_conv();
    }
    num_ws_ += 1;  // the last block's torgb
  }
  std::string type_name() const override { return "SynthesisNetwork"; }
  int64_t num_ws() const { return num_ws_; }
  Tensor forward(const Tensor& ws, NoiseMode mode = NoiseMode::Random, bool fused_modconv = false,
                 Generator& gen = default_generator()) {
    GENAI_CHECK(ws.defined() && ws.dim() == 3 && ws.size(1) == num_ws_ && ws.size(2) == cfg_.w_dim && ws.size(0) > 0,
                "StyleGANSynthesis: expected ws (N, ", num_ws_, ", ", cfg_.w_dim, "), got ",
                ws.defined() ? shape_str(ws.shape()) : std::string("(undefined)"));
    Tensor x, img;
    int64_t w_idx = 0;
    for (auto& b : blocks) {
      b->forward(x, img, narrow(ws, 1, w_idx, b->num_conv() + 1), mode, fused_modconv, gen);
      w_idx += b->num_conv();
    }
    return img;  // (N, img_channels, R, R)
  }
  std::vector<std::shared_ptr<StyleGANSynthesisBlock>> blocks;

 private:
  StyleGANConfig cfg_;
  int64_t num_ws_ = 0;
};

/// MappingNetwork: z (N, z_dim) -> ws (N, num_ws, w_dim), with the tracked mean w_avg.
class StyleGANMapping : public nn::Module {
 public:
  StyleGANMapping(const StyleGANConfig& c, int64_t num_ws) : cfg_(c), num_ws_(num_ws) {
    check_stylegan_config(c, "StyleGANMapping");
    for (int64_t i = 0; i < c.mapping_layers; ++i)
      fcs.push_back(register_module(
          detail::stylegan_name("fc", i),
          std::make_shared<StyleGANLinear>(i == 0 ? c.z_dim : c.w_dim, c.w_dim, true, c.mapping_lr_mult)));
    w_avg = register_buffer("w_avg", zeros({c.w_dim}));  // (w_dim)
  }
  std::string type_name() const override { return "MappingNetwork"; }
  /// update_w_avg (training mode only): w_avg <- lerp(mean_n w, w_avg, beta). The truncation
  /// trick: ws[:, :cutoff] <- w_avg + psi (ws - w_avg) (cutoff < 0: all num_ws).
  Tensor forward(const Tensor& z, double truncation_psi = 1.0, int64_t truncation_cutoff = -1,
                 bool update_w_avg = false) {
    GENAI_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.z_dim && z.size(0) > 0,
                "StyleGANMapping: expected z (N, ", cfg_.z_dim, "), got ",
                z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
    // normalize_2nd_moment: z / sqrt(mean(z^2) + 1e-8)
    Tensor x = mul(z, rsqrt(add(mean(square(z), {1}, true), 1e-8)));  // (N, z_dim)
    for (auto& fc : fcs) x = fc->forward(x);                          // (N, w_dim)
    if (update_w_avg && is_training()) {
      NoGradGuard ng;
      Tensor m = mean(x.detach(), {0});  // w_avg.copy_(x.mean(0).lerp(w_avg, beta))
      w_avg.copy_(add(m, mul(sub(w_avg, m), cfg_.w_avg_beta)));
    }
    const int64_t N = z.size(0);
    Tensor ws = expand(unsqueeze(x, 1), {N, num_ws_, cfg_.w_dim});  // (N, num_ws, w_dim)
    if (truncation_psi != 1.0) {
      const int64_t cut = truncation_cutoff < 0 ? num_ws_ : std::min(truncation_cutoff, num_ws_);
      Tensor avg = reshape(w_avg, {1, 1, cfg_.w_dim});
      Tensor t = add(avg, mul(sub(narrow(ws, 1, 0, cut), avg), truncation_psi));  // lerp(w_avg, w, psi)
      ws = cut == num_ws_ ? t : cat({t, narrow(ws, 1, cut, num_ws_ - cut)}, 1);
    }
    return ws;
  }
  std::vector<std::shared_ptr<StyleGANLinear>> fcs;
  Tensor w_avg;

 private:
  StyleGANConfig cfg_;
  int64_t num_ws_;
};

/// The generator: mapping + synthesis. forward(z) -> (N, img_channels, R, R), not squashed
/// (about [-1, 1]; clamp for display).
class StyleGANGenerator : public nn::Module {
 public:
  explicit StyleGANGenerator(const StyleGANConfig& c = {}) : cfg_(c) {
    check_stylegan_config(c, "StyleGANGenerator");
    synthesis = std::make_shared<StyleGANSynthesis>(c);
    mapping = register_module("mapping", std::make_shared<StyleGANMapping>(c, synthesis->num_ws()));
    register_module("synthesis", synthesis);
  }
  std::string type_name() const override { return "Generator"; }
  const StyleGANConfig& config() const { return cfg_; }
  int64_t num_ws() const { return synthesis->num_ws(); }
  Tensor forward(const Tensor& z, double truncation_psi = 1.0, int64_t truncation_cutoff = -1,
                 NoiseMode mode = NoiseMode::Random, Generator& gen = default_generator()) {
    return synthesis->forward(mapping->forward(z, truncation_psi, truncation_cutoff), mode, false, gen);
  }
  std::shared_ptr<StyleGANMapping> mapping;
  std::shared_ptr<StyleGANSynthesis> synthesis;

 private:
  StyleGANConfig cfg_;
};

// ---- discriminator ------------------------------------------------------------------------

/// MinibatchStdLayer: appends, per group of G samples (sample i is in group i mod N/G), the
/// mean over features of the groups' standard deviations as num_channels extra channels.
inline Tensor minibatch_stddev(const Tensor& x, int64_t group_size, int64_t num_channels = 1) {
  GENAI_CHECK(x.defined() && x.dim() == 4, "minibatch_stddev: expected x (N, C, H, W)");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t G = std::min(group_size, N), F = num_channels, c = C / F, n = N / G;
  GENAI_CHECK(N % G == 0 && C % F == 0, "minibatch_stddev: the batch ", N, " must be a multiple of the group size ", G,
              " and the ", C, " channels of num_channels ", F, " (x ", shape_str(x.shape()), ")");
  Tensor y = reshape(x, {G, n, F, c, H, W});                 // [G n F c H W]
  y = sub(y, mean(y, {0}, true));                            // center over the group
  y = sqrt(add(mean(square(y), {0}), 1e-8));                 // [n F c H W] stddev
  y = mean(y, {2, 3, 4});                                    // [n F]
  y = expand(reshape(y, {1, n, F, 1, 1}), {G, n, F, H, W});  // y.repeat(G, 1, H, W)
  return cat({x, reshape(y, {N, F, H, W})}, 1);              // (N, C + F, H, W)
}

/// DiscriminatorBlock (residual): [fromrgb], conv0, conv1 (down), skip (down, 1 x 1, no bias).
class StyleGANDiscriminatorBlock : public nn::Module {
 public:
  StyleGANDiscriminatorBlock(int64_t in, int64_t tmp, int64_t out, int64_t img_channels) : first_(in == 0) {
    if (first_) fromrgb = register_module("fromrgb", std::make_shared<StyleGANConv2d>(img_channels, tmp, 1, true));
    conv0 = register_module("conv0", std::make_shared<StyleGANConv2d>(tmp, tmp, 3, true));
    conv1 = register_module("conv1", std::make_shared<StyleGANConv2d>(tmp, out, 3, true, true));
    skip = register_module("skip", std::make_shared<StyleGANConv2d>(tmp, out, 1, false, true, false));
  }
  std::string type_name() const override { return "DiscriminatorBlock"; }
  Tensor forward(const Tensor& x_or_img) {  // (N, tmp or img_channels, R, R) -> (N, out, R/2, R/2)
    Tensor x = first_ ? fromrgb->forward(x_or_img) : x_or_img;
    const double g = std::sqrt(0.5);
    Tensor y = skip->forward(x, g);
    x = conv1->forward(conv0->forward(x), g);
    return add(y, x);
  }
  std::shared_ptr<StyleGANConv2d> fromrgb, conv0, conv1, skip;

 private:
  bool first_;
};

/// DiscriminatorEpilogue at 4 x 4: minibatch stddev, conv 3 x 3, fc (lrelu), out -> (N).
class StyleGANDiscriminatorEpilogue : public nn::Module {
 public:
  StyleGANDiscriminatorEpilogue(int64_t in, int64_t group, int64_t num_channels) : group_(group), nch_(num_channels) {
    conv = register_module("conv", std::make_shared<StyleGANConv2d>(in + num_channels, in, 3, true));
    fc = register_module("fc", std::make_shared<StyleGANLinear>(in * 16, in, true));
    out = register_module("out", std::make_shared<StyleGANLinear>(in, 1, false));
  }
  std::string type_name() const override { return "DiscriminatorEpilogue"; }
  Tensor forward(const Tensor& x) {  // (N, C, 4, 4) -> (N)
    Tensor h = conv->forward(minibatch_stddev(x, group_, nch_));
    h = fc->forward(reshape(h, {h.size(0), -1}));
    return reshape(out->forward(h), {h.size(0)});
  }
  std::shared_ptr<StyleGANConv2d> conv;
  std::shared_ptr<StyleGANLinear> fc, out;

 private:
  int64_t group_, nch_;
};

/// images (N, img_channels, R, R) -> logits (N).
class StyleGANDiscriminator : public nn::UnaryModule {
 public:
  explicit StyleGANDiscriminator(const StyleGANConfig& c = {}) : cfg_(c) {
    check_stylegan_config(c, "StyleGANDiscriminator");
    for (int64_t res = c.resolution; res > 4; res /= 2) {
      const int64_t in = res == c.resolution ? 0 : stylegan_channels(c, res);
      blocks.push_back(
          register_module(detail::stylegan_name("b", res),
                          std::make_shared<StyleGANDiscriminatorBlock>(in, stylegan_channels(c, res),
                                                                       stylegan_channels(c, res / 2), c.img_channels)));
    }
    epilogue = register_module("b4", std::make_shared<StyleGANDiscriminatorEpilogue>(
                                         stylegan_channels(c, 4), c.mbstd_group_size, c.mbstd_num_channels));
  }
  std::string type_name() const override { return "Discriminator"; }
  Tensor forward(const Tensor& img) override {
    const int64_t R = cfg_.resolution;
    GENAI_CHECK(
        img.defined() && img.dim() == 4 && img.size(1) == cfg_.img_channels && img.size(2) == R && img.size(3) == R,
        "StyleGANDiscriminator: expected images (N, ", cfg_.img_channels, ", ", R, ", ", R, "), got ",
        img.defined() ? shape_str(img.shape()) : std::string("(undefined)"),
        "; hint: pad Fashion-MNIST's 28 x 28 to 32 x 32 or configure resolution");
    Tensor x = img;
    for (auto& b : blocks) x = b->forward(x);
    return epilogue->forward(x);
  }
  std::vector<std::shared_ptr<StyleGANDiscriminatorBlock>> blocks;
  std::shared_ptr<StyleGANDiscriminatorEpilogue> epilogue;

 private:
  StyleGANConfig cfg_;
};

// ---- losses and one training iteration ----------------------------------------------------

/// The R1 penalty per sample, ||d sum(D(x)) / d x_n||^2 (N), at real images x; differentiable
/// with respect to D's parameters (the input gradient is taken with create_graph).
inline Tensor r1_penalty(nn::UnaryModule& D, const Tensor& real, Tensor* logits = nullptr) {
  GENAI_CHECK(real.defined() && real.dim() == 4, "r1_penalty: expected real images (N, C, H, W)");
  Tensor x = real.detach();
  x.requires_grad_(true);
  Tensor d = D.forward(x);  // (N)
  Tensor g = autograd::grad({sum(d)}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  if (logits) *logits = d;
  return sum(square(g), {1, 2, 3});  // (N)
}

struct StyleGANTrainOptions {
  double r1_gamma = 0.01;          // R1 weight (stylegan2-ada's cifar configuration)
  int64_t r1_interval = 16;        // lazy regularization: R1 every r1_interval steps
  double style_mixing_prob = 0.9;  // probability of mixing two w's at a random cutoff
  NoiseMode noise_mode = NoiseMode::Random;
};

struct StyleGANStepStats {
  double g_loss = 0, d_loss = 0;  // mean softplus(-D(G(z))); D's softplus losses (without R1)
  double r1 = -1;                 // mean R1 penalty on a regularization step, else -1
  double d_real = 0, d_fake = 0;  // D's mean logits on real and fake (D step)
};

/// ws of a batch with style mixing: with probability `prob`, ws[:, cutoff:] come from z2,
/// cutoff uniform in [1, num_ws). The mapping updates w_avg (training mode) from z only.
inline Tensor stylegan_mapping_with_mixing(StyleGANGenerator& G, const Tensor& z, const Tensor& z2, double prob,
                                           Generator& gen) {
  Tensor ws = G.mapping->forward(z, 1.0, -1, /*update_w_avg=*/true);  // (N, num_ws, w_dim)
  if (prob > 0 && z2.defined()) {
    const int64_t nws = G.num_ws();
    const int64_t cutoff = 1 + static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(nws - 1));
    const bool mix = gen.uniform() < prob;
    if (mix) {
      Tensor ws2 = G.mapping->forward(z2);
      ws = cat({narrow(ws, 1, 0, cutoff), narrow(ws2, 1, cutoff, nws - cutoff)}, 1);
    }
  }
  return ws;
}

/// One iteration as stylegan2-ada-pytorch's phases Gmain, Dmain (+ Dreg every r1_interval
/// steps, folded into the D step): G step on softplus(-D(G(z_g))) with D frozen; D step on
/// softplus(D(G(z_d))) + softplus(-D(real)) [+ r1_interval gamma / 2 R1(real)].
/// real (N, C, R, R) in [-1, 1]; z_g, z_d (N, z_dim); z_g2, z_d2: second latents for style
/// mixing (undefined: no mixing). `step` counts from 0 (R1 on steps 0, interval, 2 interval, ...).
inline StyleGANStepStats stylegan_train_step(StyleGANGenerator& G, StyleGANDiscriminator& D, optim::Optimizer& optG,
                                             optim::Optimizer& optD, const Tensor& real, const Tensor& z_g,
                                             const Tensor& z_d, int64_t step, const StyleGANTrainOptions& o = {},
                                             const Tensor& z_g2 = Tensor(), const Tensor& z_d2 = Tensor(),
                                             Generator& gen = default_generator()) {
  StyleGANStepStats st;
  // ---- Gmain: minimize softplus(-D(G(z))), D's parameters frozen
  optG.zero_grad();
  {
    nn::FreezeParameters frozen(D.parameters());  // D gets no gradient from G's loss
    Tensor ws = stylegan_mapping_with_mixing(G, z_g, z_g2, o.style_mixing_prob, gen);
    Tensor img = G.synthesis->forward(ws, o.noise_mode, false, gen);
    Tensor g_loss = mean(softplus(neg(D.forward(img))));
    g_loss.backward();
    st.g_loss = g_loss.item<double>();
  }
  optG.step();
  // ---- Dmain (+ Dreg): softplus(D(fake)) + softplus(-D(real)) [+ R1]
  optD.zero_grad();
  Tensor fake;
  {
    NoGradGuard ng;
    fake = G.synthesis->forward(stylegan_mapping_with_mixing(G, z_d, z_d2, o.style_mixing_prob, gen), o.noise_mode,
                                false, gen);
  }
  Tensor fake_logits = D.forward(fake);  // (N)
  const bool reg = o.r1_interval > 0 && o.r1_gamma > 0 && step % o.r1_interval == 0;
  Tensor real_logits, r1;
  if (reg) {
    r1 = r1_penalty(D, real, &real_logits);
  } else {
    real_logits = D.forward(real);
  }
  Tensor d_loss = add(mean(softplus(fake_logits)), mean(softplus(neg(real_logits))));
  Tensor total = d_loss;
  if (reg) {
    total = add(total, mul(mean(r1), o.r1_gamma / 2 * static_cast<double>(o.r1_interval)));
    st.r1 = mean(r1).item<double>();
  }
  total.backward();
  optD.step();
  st.d_loss = d_loss.item<double>();
  st.d_real = mean(real_logits).item<double>();
  st.d_fake = mean(fake_logits).item<double>();
  return st;
}

/// The EMA generator's update: p_ema <- p + beta (p_ema - p) (= p.lerp(p_ema, beta)) for
/// every parameter; buffers (w_avg, noise_const) are copied.
inline void stylegan_ema_update(StyleGANGenerator& G_ema, const StyleGANGenerator& G, double beta) {
  NoGradGuard ng;
  auto pe = G_ema.parameters(), p = G.parameters();
  GENAI_CHECK(pe.size() == p.size(), "stylegan_ema_update: the generators differ in structure");
  for (size_t i = 0; i < p.size(); ++i) pe[i].copy_(add(p[i], mul(sub(pe[i], p[i]), beta)));
  auto be = G_ema.buffers(), b = G.buffers();
  for (size_t i = 0; i < b.size(); ++i) be[i].copy_(b[i]);
}

}  // namespace models
}  // namespace genai
