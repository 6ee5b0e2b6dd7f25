// genai/models/vision/style_transfer.hpp: neural style transfer (L. A. Gatys, A. S.
// Ecker, M. Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR
// 2016) on VGG features (genai/models/vision/vgg.hpp): the image itself is optimized
// so that its features match the content image's at the content layers and its Gram
// matrices match the style image's at the style layers.
//
//   auto vgg = std::make_shared<models::VGGFeatures>(models::VGGConfig{.pooling = models::VGGPooling::Average});
//   models::load_vgg_weights(*vgg, "vgg19.safetensors");      // or models::random_vgg_features()
//   models::StyleTransfer st(*vgg, {.steps = 300, .num_scales = 2});
//   Tensor out = st.run(content, style);                      // (1, 3, H, W) in [0, 1] each
//
// Loss (as PyTorch's neural style tutorial, with Gatys et al.'s relu layers):
//   gram(F) = F F^T / (C H W) for F (N, C, H W)                       (N, C, C)
//   content = sum_l a_l mse(F_l(x), F_l(content))
//   style   = sum_l b_l mse(gram(F_l(x)), gram(F_l(style)))
//   tv      = mean((x[.., i+1, :] - x[.., i, :])^2) + mean((x[.., j+1] - x[.., j])^2)
//   loss    = content_weight content + style_weight style + tv_weight tv
// Optimization: Adam (lr 0.02 default) or L-BFGS (torch.optim.LBFGS, one iteration per
// step, no line search unless asked) on the pixels; after every step the image is clamped
// to [0, 1] (no grad). Coarse to fine: with num_scales = S, scale s (0 .. S-1) works at
// the content size / 2^(S-1-s) (the style image shrinks by the same factor), starts from
// the previous scale's result upsampled bilinearly (scale 0: the content image, noise or
// init_image)
// and runs `steps` steps. Colour preservation (Gatys et al., "Preserving Color in Neural
// Artistic Style Transfer", 2016, luminance-only transfer): the result's luminance (Y of
// YIQ) with the content's chrominance (I, Q).
//
// Differences from the paper: Gram matrices are normalized by C H W (the tutorial's
// convention) rather than by 4 N^2 M^2, so the weights differ from the paper's
// alpha/beta; the TV term is squared differences (smooth), not Mahendran's beta-norm.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genai/models/vision/vgg.hpp"
#include "genai/ops/loss.hpp"
#include "genai/ops/pool.hpp"
#include "genai/optim/adam.hpp"
#include "genai/optim/lbfgs.hpp"

namespace genai {
namespace models {

/// Gram matrix of feature maps: f (N, C, H, W) -> (N, C, C) = F F^T / (C H W), F = f as (N, C, H W).
inline Tensor gram_matrix(const Tensor& f) {
  GENAI_CHECK(f.defined() && f.dim() == 4, "gram_matrix: expected features (N, C, H, W), got ",
              f.defined() ? shape_str(f.shape()) : std::string("(undefined)"));
  const int64_t N = f.size(0), C = f.size(1), HW = f.size(2) * f.size(3);
  Tensor F = reshape(f, {N, C, HW});                                                 // (N, C, HW)
  return mul(bmm(F, transpose(F, 1, 2)), 1.0 / static_cast<double>(C * HW));        // (N, C, C)
}

/// Squared-difference total variation of images x (N, C, H, W): the mean of the squared
/// vertical differences plus the mean of the squared horizontal differences (0-d).
inline Tensor total_variation(const Tensor& x) {
  GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(2) >= 2 && x.size(3) >= 2,
              "total_variation: expected images (N, C, H, W) with H, W >= 2, got ",
              x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
  const int64_t H = x.size(2), W = x.size(3);
  Tensor dh = sub(narrow(x, 2, 1, H - 1), narrow(x, 2, 0, H - 1));  // (N, C, H-1, W)
  Tensor dw = sub(narrow(x, 3, 1, W - 1), narrow(x, 3, 0, W - 1));  // (N, C, H, W-1)
  return add(mean(square(dh)), mean(square(dw)));
}

/// Luminance-only transfer: the luminance (YIQ's Y) of `stylized` with the chrominance
/// (I, Q) of `content`, both (N, 3, H, W) in [0, 1]; the result is clamped to [0, 1].
/// Not recorded by autograd.
inline Tensor transfer_luminance(const Tensor& stylized, const Tensor& content) {
  GENAI_CHECK(stylized.defined() && content.defined() && stylized.dim() == 4 && stylized.size(1) == 3 &&
                  stylized.shape() == content.shape(),
              "transfer_luminance: expected two RGB images (N, 3, H, W) of one shape, got ",
              stylized.defined() ? shape_str(stylized.shape()) : std::string("(undefined)"), " and ",
              content.defined() ? shape_str(content.shape()) : std::string("(undefined)"));
  NoGradGuard ng;
  const Dtype d = stylized.dtype();
  // rows: Y, I, Q from R, G, B (NTSC)
  Tensor rgb2yiq = tensor({0.299, 0.587, 0.114, 0.595716, -0.274453, -0.321263, 0.211456, -0.522591, 0.311135},
                          {3, 3}, d);
  auto to_yiq = [&](const Tensor& img) {
    return matmul(permute(img.detach(), {0, 2, 3, 1}), transpose(rgb2yiq, 0, 1));  // (N, H, W, 3)
  };
  Tensor ys = to_yiq(stylized), yc = to_yiq(content);
  Tensor yiq = cat({narrow(ys, 3, 0, 1), narrow(yc, 3, 1, 2)}, 3);             // (N, H, W, 3)
  Tensor yiq2rgb = tensor({1.0, 0.9563, 0.6210, 1.0, -0.2721, -0.6474, 1.0, -1.1070, 1.7046}, {3, 3}, d);
  Tensor rgb = matmul(yiq, transpose(yiq2rgb, 0, 1));                          // (N, H, W, 3)
  return clamp(contiguous(permute(rgb, {0, 3, 1, 2})), 0.0, 1.0);
}

struct StyleTransferOptions {
  std::vector<std::string> content_layers = {"relu4_2"};
  std::vector<double> content_layer_weights = {};  // one per content layer; empty: all 1
  std::vector<std::string> style_layers = {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"};
  std::vector<double> style_layer_weights = {};    // one per style layer; empty: all 1
  double content_weight = 1.0;
  double style_weight = 1e6;     // PyTorch's tutorial's weight for C H W-normalized Grams
  double tv_weight = 0.0;
  std::string optimizer = "adam";  // "adam" or "lbfgs"
  double lr = 0.02;                // Adam's learning rate (L-BFGS: its lr, 1 is usual)
  bool line_search = false;        // L-BFGS: strong-Wolfe line search
  int64_t steps = 200;             // steps per scale (Adam steps or L-BFGS iterations)
  int64_t num_scales = 1;          // coarse-to-fine scales (1: the content size only)
  double style_scale = 1.0;        // the style image is resized by this factor first
  std::string init = "content";    // "content" or "noise" (uniform in [0, 1])
  Tensor init_image = Tensor();    // when defined, (1, 3, h, w): start from it (resized) instead
  bool preserve_colors = false;    // keep the content's colours (luminance-only transfer)
  uint64_t seed = 0;               // for the noise init
};

/// The loss terms of one evaluation (0-d tensors; total is differentiable).
struct StyleLosses {
  Tensor total, content, style, tv;
  std::vector<Tensor> content_terms, style_terms;  // unweighted per-layer losses
};

/// What the callback of StyleTransfer::run sees after each step.
struct StyleStep {
  int64_t scale = 0, num_scales = 1;  // scale index (0 = coarsest)
  int64_t step = 0;                   // step within the scale (1-based)
  int64_t global_step = 0;            // steps so far over all scales (1-based)
  double total = 0, content = 0, style = 0, tv = 0;  // weighted terms, before the step
  const Tensor* image = nullptr;      // the current image (1, 3, h, w)
};

class StyleTransfer {
 public:
  StyleTransfer(VGGFeatures& net, StyleTransferOptions o = {}) : net_(net), o_(std::move(o)) {
    GENAI_CHECK(!o_.style_layers.empty() || !o_.content_layers.empty(),
                "StyleTransfer: give at least one style or content layer");
    if (o_.content_layer_weights.empty()) o_.content_layer_weights.assign(o_.content_layers.size(), 1.0);
    if (o_.style_layer_weights.empty()) o_.style_layer_weights.assign(o_.style_layers.size(), 1.0);
    GENAI_CHECK(o_.content_layer_weights.size() == o_.content_layers.size() &&
                    o_.style_layer_weights.size() == o_.style_layers.size(),
                "StyleTransfer: ", o_.content_layers.size(), " content layers but ", o_.content_layer_weights.size(),
                " weights, ", o_.style_layers.size(), " style layers but ", o_.style_layer_weights.size(),
                " weights; hint: one weight per layer, or none");
    for (const auto& l : o_.content_layers) net_.layer_index(l);  // unknown names throw here
    for (const auto& l : o_.style_layers) net_.layer_index(l);
    GENAI_CHECK(o_.optimizer == "adam" || o_.optimizer == "lbfgs", "StyleTransfer: optimizer must be \"adam\" or ",
                "\"lbfgs\", got \"", o_.optimizer, "\"");
    GENAI_CHECK(o_.init == "content" || o_.init == "noise", "StyleTransfer: init must be \"content\" or \"noise\", got \"",
                o_.init, "\"");
    GENAI_CHECK(o_.steps >= 0 && o_.num_scales >= 1 && o_.style_scale > 0,
                "StyleTransfer: steps >= 0, num_scales >= 1 and style_scale > 0 needed, got ", o_.steps, ", ",
                o_.num_scales, ", ", o_.style_scale);
  }
  const StyleTransferOptions& options() const { return o_; }

  /// Computes the targets: content features of `content` and Grams of `style`, both
  /// (1, 3, H, W) in [0, 1] (the style image may have another size). Not recorded.
  void set_targets(const Tensor& content, const Tensor& style) {
    check_image("content", content);
    check_image("style", style);
    NoGradGuard ng;
    content_targets_ = o_.content_layers.empty() ? std::vector<Tensor>{} : net_.extract(content, o_.content_layers);
    style_targets_.clear();
    if (!o_.style_layers.empty())
      for (const Tensor& f : net_.extract(style, o_.style_layers)) style_targets_.push_back(gram_matrix(f));
  }

  /// The loss of image x (1, 3, H, W) against the targets of set_targets (differentiable in x).
  StyleLosses losses(const Tensor& x) {
    GENAI_CHECK(content_targets_.size() == o_.content_layers.size() && style_targets_.size() == o_.style_layers.size(),
                "StyleTransfer: call set_targets(content, style) before losses()");
    std::vector<std::string> layers = o_.content_layers;
    layers.insert(layers.end(), o_.style_layers.begin(), o_.style_layers.end());
    std::vector<Tensor> f = net_.extract(x, layers);
    StyleLosses r;
    const Dtype d = x.dtype();
    r.content = scalar_tensor(0.0, d);
    r.style = scalar_tensor(0.0, d);
    for (size_t i = 0; i < o_.content_layers.size(); ++i) {
      GENAI_CHECK(f[i].shape() == content_targets_[i].shape(), "StyleTransfer: the image ", shape_str(x.shape()),
                  " gives ", o_.content_layers[i], " features ", shape_str(f[i].shape()), " but the content target is ",
                  shape_str(content_targets_[i].shape()), "; hint: the image must have the content image's size");
      r.content_terms.push_back(mse_loss(f[i], content_targets_[i]));
      r.content = add(r.content, mul(r.content_terms.back(), o_.content_layer_weights[i]));
    }
    for (size_t i = 0; i < o_.style_layers.size(); ++i) {
      r.style_terms.push_back(mse_loss(gram_matrix(f[o_.content_layers.size() + i]), style_targets_[i]));
      r.style = add(r.style, mul(r.style_terms.back(), o_.style_layer_weights[i]));
    }
    r.content = mul(r.content, o_.content_weight);
    r.style = mul(r.style, o_.style_weight);
    r.tv = o_.tv_weight != 0 ? mul(total_variation(x), o_.tv_weight) : scalar_tensor(0.0, d);
    r.total = add(add(r.content, r.style), r.tv);
    return r;
  }

  /// Optimizes `img` (a leaf (1, 3, H, W) tensor that requires grad) in place for `steps`
  /// steps against the current targets; calls `cb` after each step. Returns the loss of
  /// each step (before it).
  std::vector<double> optimize(Tensor& img, int64_t steps, const std::function<void(const StyleStep&)>& cb = nullptr,
                               int64_t scale = 0) {
    GENAI_CHECK(img.defined() && img.is_leaf() && img.requires_grad(),
                "StyleTransfer::optimize: the image must be a leaf tensor that requires grad");
    std::vector<double> hist;
    StyleLosses last;
    auto evaluate = [&] {
      last = losses(img);
      last.total.backward();
      return last.total;
    };
    auto report = [&](int64_t s) {
      hist.push_back(last.total.item<double>());
      ++global_;
      if (cb) {
        StyleStep st{scale, o_.num_scales, s + 1, global_, hist.back(), last.content.item<double>(),
                     last.style.item<double>(), last.tv.item<double>(), &img};
        cb(st);
      }
    };
    if (o_.optimizer == "adam") {
      optim::Adam opt({img}, {.lr = o_.lr});
      for (int64_t s = 0; s < steps; ++s) {
        opt.zero_grad();
        evaluate();
        opt.step();
        clamp_image(img);
        report(s);
      }
    } else {
      optim::LBFGS opt({img}, {.lr = o_.lr, .max_iter = 1, .line_search_fn = o_.line_search ? "strong_wolfe" : ""});
      for (int64_t s = 0; s < steps; ++s) {
        opt.step([&] {
          opt.zero_grad();
          return evaluate();
        });
        clamp_image(img);
        report(s);
      }
    }
    return hist;
  }

  /// The whole procedure: coarse-to-fine optimization of an image of the content's
  /// size (1, 3, H, W), colour preservation if asked. content and style are (1, 3, H, W)
  /// images in [0, 1]. Returns the result (1, 3, H, W), not requiring grad.
  Tensor run(const Tensor& content, const Tensor& style, const std::function<void(const StyleStep&)>& cb = nullptr) {
    check_image("content", content);
    check_image("style", style);
    global_ = 0;
    const int64_t H = content.size(2), W = content.size(3);
    Tensor img;
    Tensor style0 = o_.style_scale == 1.0 ? style.detach() : resized(style, o_.style_scale);
    for (int64_t s = 0; s < o_.num_scales; ++s) {
      const double f = std::ldexp(1.0, -static_cast<int>(o_.num_scales - 1 - s));  // 2^-(S-1-s)
      const int64_t h = std::max<int64_t>(1, std::llround(static_cast<double>(H) * f));
      const int64_t w = std::max<int64_t>(1, std::llround(static_cast<double>(W) * f));
      Tensor content_s = h == H && w == W ? content.detach() : resize_to(content, h, w);
      Tensor style_s = f == 1.0 ? style0 : resized(style0, f);
      set_targets(content_s, style_s);
      {
        NoGradGuard ng;
        if (!img.defined()) {
          if (o_.init_image.defined()) {
            check_image("init", o_.init_image);
            img = clamp(resize_to(o_.init_image.to(content_s.dtype()), h, w), 0.0, 1.0);
          } else if (o_.init == "content") {
            img = clone(content_s);
          } else {
            Generator gen(o_.seed);
            img = rand(content_s.shape(), content_s.dtype(), gen);
          }
        } else {
          img = clamp(resize_to(img, h, w), 0.0, 1.0);
        }
      }
      img = img.detach().contiguous();
      img.requires_grad_(true);
      optimize(img, o_.steps, cb, s);
    }
    Tensor out = img.detach();
    if (o_.preserve_colors) out = transfer_luminance(out, content.detach());
    return out;
  }

 private:
  static void check_image(const char* what, const Tensor& x) {
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(0) == 1 && x.size(1) == 3 && x.is_floating_point(),
                "StyleTransfer: expected the ", what, " image as (1, 3, H, W) floats in [0, 1], got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                "; hint: io::load_image(path, 3) gives (3, H, W): unsqueeze(0)");
  }
  static void clamp_image(Tensor& img) {
    NoGradGuard ng;
    img.copy_(clamp(img, 0.0, 1.0));
  }
  static Tensor resize_to(const Tensor& x, int64_t h, int64_t w) {
    NoGradGuard ng;
    return interpolate(x.detach(), Size2{h, w}, std::nullopt, "bilinear", false);
  }
  static Tensor resized(const Tensor& x, double f) {
    const int64_t h = std::max<int64_t>(1, std::llround(static_cast<double>(x.size(2)) * f));
    const int64_t w = std::max<int64_t>(1, std::llround(static_cast<double>(x.size(3)) * f));
    return resize_to(x, h, w);
  }

  VGGFeatures& net_;
  StyleTransferOptions o_;
  std::vector<Tensor> content_targets_, style_targets_;  // features, Grams
  int64_t global_ = 0;
};

}  // namespace models
}  // namespace genai
