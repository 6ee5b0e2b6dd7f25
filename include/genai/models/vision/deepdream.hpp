// genai/models/vision/deepdream.hpp: DeepDream (A. Mordvintsev, C. Olah, M. Tyka,
// "Inceptionism: Going Deeper into Neural Networks", Google Research blog, 2015, and
// their deepdream.ipynb): gradient ascent on the image to amplify what a layer (or one
// of its channels) responds to, over octaves, with random jitter and normalized steps.
//
//   auto vgg = models::random_vgg_features();                  // or VGG-19 with weights
//   Tensor out = models::deepdream(img, models::vgg_dream_objective(*vgg, "relu4_2"),
//                                  {.octaves = 4, .steps = 10});   // img (1, 3, H, W) in [0, 1]
//
// Algorithm (as deepdream.ipynb): octave o = 0 .. octaves-1 is the image resized by
// 1/octave_scale^o; from the smallest octave up, x = octave image + detail (the change
// made so far, upsampled bilinearly), then `steps` times:
//   (dy, dx) uniform in [-jitter, jitter]^2; x' = roll(x, (dy, dx))
//   g = roll(d objective(x') / d x', (-dy, -dx))
//   x = clamp(x + lr g / (mean |g| + 1e-8), 0, 1)      (without normalize_grad: x + lr g)
// and detail = x - octave image. The objective maps an image (1, C, h, w) to a 0-d tensor
// to maximize: vgg_dream_objective (mean of squared activations of a VGG layer or
// channel, the notebook's L2 objective), fmnist_dream_objective (the Fashion-MNIST
// classifier's layers or a class logit), or any function.
//
// Differences from the notebook: pixels live in [0, 1] (the network normalizes), and the
// image is clamped after each step; the notebook's step size 1.5 on [0, 255] pixels
// corresponds to lr ~ 0.006 here (the default 0.01 is a little stronger).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genai/models/eval/fmnist_classifier.hpp"
#include "genai/models/vision/vgg.hpp"
#include "genai/ops/pool.hpp"

namespace genai {
namespace models {

/// Maps an image (1, C, h, w) to the 0-d value DeepDream maximizes.
using DreamObjective = std::function<Tensor(const Tensor&)>;

struct DeepDreamOptions {
  int64_t octaves = 4;        // number of scales
  double octave_scale = 1.4;  // size ratio between successive octaves
  int64_t steps = 10;         // gradient-ascent steps per octave
  double lr = 0.01;           // step size (in [0, 1] pixel units, after normalization)
  int64_t jitter = 32;        // maximum random shift in pixels (0: none)
  bool normalize_grad = true; // divide the gradient by its mean absolute value
  uint64_t seed = 0;          // for the jitter
};

/// What the callback of deepdream sees after each step.
struct DreamStep {
  int64_t octave = 0, octaves = 1;  // 0 = smallest
  int64_t step = 0, global_step = 0;  // 1-based
  double objective = 0;               // before the step
  const Tensor* image = nullptr;      // the current image (1, C, h, w)
};

namespace detail {
/// x (N, C, H, W) shifted circularly by dy rows and dx columns (as torch.roll(x, (dy, dx), (2, 3))).
inline Tensor roll2d(const Tensor& x, int64_t dy, int64_t dx) {
  const int64_t H = x.size(2), W = x.size(3);
  dy = ((dy % H) + H) % H;
  dx = ((dx % W) + W) % W;
  Tensor y = dy == 0 ? x : cat({narrow(x, 2, H - dy, dy), narrow(x, 2, 0, H - dy)}, 2);
  return dx == 0 ? y : cat({narrow(y, 3, W - dx, dx), narrow(y, 3, 0, W - dx)}, 3);
}
inline Tensor resize_bilinear(const Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return interpolate(x, Size2{h, w}, std::nullopt, "bilinear", false);
}
}  // namespace detail

/// One DeepDream step on x (1, C, h, w) with shift (dy, dx): returns the objective before
/// the step and writes the new image (clamped to [0, 1]) into x. Not recorded.
inline double deepdream_step(Tensor& x, const DreamObjective& objective, double lr, int64_t dy, int64_t dx,
                             bool normalize_grad) {
  Tensor xs = detail::roll2d(x.detach(), dy, dx).contiguous();
  xs.requires_grad_(true);
  Tensor obj;
  {
    EnableGradGuard eg;
    obj = objective(xs);
    GENAI_CHECK(obj.defined() && obj.numel() == 1, "deepdream: the objective must return one value, got ",
                obj.defined() ? shape_str(obj.shape()) : std::string("(undefined)"));
    obj.backward();
  }
  NoGradGuard ng;
  Tensor g = detail::roll2d(xs.grad(), -dy, -dx);  // (1, C, h, w)
  if (normalize_grad) g = div(g, add(mean(abs(g)), 1e-8));
  x = clamp(add(x.detach(), mul(g, lr)), 0.0, 1.0);
  return obj.item<double>();
}

/// DeepDream on img (1, C, H, W) in [0, 1]; returns the dreamed image (1, C, H, W).
inline Tensor deepdream(const Tensor& img, const DreamObjective& objective, const DeepDreamOptions& o = {},
                        const std::function<void(const DreamStep&)>& cb = nullptr) {
  GENAI_CHECK(img.defined() && img.dim() == 4 && img.size(0) == 1 && img.is_floating_point(),
              "deepdream: expected one image (1, C, H, W) in [0, 1], got ",
              img.defined() ? shape_str(img.shape()) : std::string("(undefined)"));
  GENAI_CHECK(o.octaves >= 1 && o.octave_scale >= 1.0 && o.steps >= 0 && o.jitter >= 0,
              "deepdream: octaves >= 1, octave_scale >= 1, steps >= 0 and jitter >= 0 needed, got ", o.octaves, ", ",
              o.octave_scale, ", ", o.steps, ", ", o.jitter);
  NoGradGuard ng;
  Generator gen(o.seed);
  const int64_t H = img.size(2), W = img.size(3);
  Tensor base = img.detach().contiguous();
  Tensor detail, x;
  int64_t global = 0;
  for (int64_t oc = o.octaves - 1; oc >= 0; --oc) {
    const double f = std::pow(o.octave_scale, -static_cast<double>(oc));
    const int64_t h = std::max<int64_t>(1, std::llround(static_cast<double>(H) * f));
    const int64_t w = std::max<int64_t>(1, std::llround(static_cast<double>(W) * f));
    Tensor base_o = detail::resize_bilinear(base, h, w);                                    // (1, C, h, w)
    detail = detail.defined() ? detail::resize_bilinear(detail, h, w) : zeros_like(base_o);
    x = add(base_o, detail);
    for (int64_t s = 0; s < o.steps; ++s) {
      int64_t dy = 0, dx = 0;
      if (o.jitter > 0) {
        const uint64_t span = static_cast<uint64_t>(2 * o.jitter + 1);
        dy = static_cast<int64_t>(gen.next_u64() % span) - o.jitter;
        dx = static_cast<int64_t>(gen.next_u64() % span) - o.jitter;
      }
      const double v = deepdream_step(x, objective, o.lr, dy, dx, o.normalize_grad);
      ++global;
      if (cb) cb(DreamStep{o.octaves - 1 - oc, o.octaves, s + 1, global, v, &x});
    }
    detail = sub(x, base_o);
  }
  return x;
}

/// Mean of squared activations of a VGG layer (channel >= 0: of that channel only).
/// The network must outlive the objective.
inline DreamObjective vgg_dream_objective(VGGFeatures& net, const std::string& layer, int64_t channel = -1) {
  net.layer_index(layer);  // unknown names throw here
  GENAI_CHECK(channel < net.channels(layer), "vgg_dream_objective: ", layer, " has ", net.channels(layer),
              " channels, asked for channel ", channel);
  return [&net, layer, channel](const Tensor& x) {
    Tensor f = net.extract(x, {layer})[0];  // (1, C, h, w)
    if (channel >= 0) f = narrow(f, 1, channel, 1);
    return mean(square(f));
  };
}

/// DeepDream objectives of the Fashion-MNIST classifier on grey images (1, 1, h, w):
/// body_layer >= 0: mean of squared activations after clf.body[body_layer] (e.g. 2 = first
/// ReLU, 6 = second ReLU; channel >= 0 picks one channel); body_layer = -1: the logit of
/// class `channel` (class visualization). Runs in the classifier's current mode (use eval()).
inline DreamObjective fmnist_dream_objective(FMNISTClassifier& clf, int64_t body_layer, int64_t channel = -1) {
  const int64_t n = static_cast<int64_t>(clf.body->size());
  GENAI_CHECK(body_layer >= -1 && body_layer < n, "fmnist_dream_objective: body_layer must be -1 (logits) or in [0, ",
              n, "), got ", body_layer);
  GENAI_CHECK(body_layer >= 0 || (channel >= 0 && channel < clf.num_classes()),
              "fmnist_dream_objective: the logit objective needs a class in [0, ", clf.num_classes(), "), got ", channel);
  return [&clf, body_layer, channel, n](const Tensor& x) {
    GENAI_CHECK(x.dim() == 4 && x.size(1) == 1, "fmnist_dream_objective: expected grey images (1, 1, h, w), got ",
                shape_str(x.shape()));
    const auto& c = clf.config();
    Tensor h = mul(add(x, -c.input_mean), 1.0 / c.input_std);
    const int64_t last = body_layer >= 0 ? body_layer : n - 1;
    for (int64_t i = 0; i <= last; ++i) h = (*clf.body)[static_cast<size_t>(i)]->forward(h);
    if (body_layer < 0) return sum(narrow(clf.head(h), 1, channel, 1));
    if (channel >= 0 && h.dim() == 4) h = narrow(h, 1, channel, 1);
    return mean(square(h));
  };
}

}  // namespace models
}  // namespace genai
