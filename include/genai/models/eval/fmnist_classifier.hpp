// genai/models/eval/fmnist_classifier.hpp: a small Fashion-MNIST classifier (~94k
// parameters) whose penultimate features are the embedding of "FMNIST-FID"
// (genai/models/eval/fid.hpp), the way Inception-v3's pool3 features are FID's
// (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
// Nash Equilibrium", 2017).
//
//   models::FMNISTClassifier clf;                     // 2 conv + BN + pooling, MLP head
//   clf.load_state_dict(io::load_safetensors("fmnist_classifier.safetensors"));
//   clf.eval();
//   Tensor logits = clf.forward(x);                   // x (B, 1, 28, 28) in [0, 1] -> (B, 10)
//   Tensor f = clf.features(x);                       // (B, 128) penultimate features
//
// Architecture (PyTorch module of the same structure: tests/fixtures/make_fid_fixtures.py):
//   x' = (x - 0.2860) / 0.3530                                     (Fashion-MNIST mean / std)
//   body: Conv(1, 32, 3, pad 1, no bias) BN ReLU MaxPool(2)        (B, 32, 14, 14)
//         Conv(32, 64, 3, pad 1, no bias) BN ReLU MaxPool(2)       (B, 64, 7, 7)
//         AdaptiveAvgPool(3) Flatten                               (B, 576)
//         Linear(576, 128) ReLU                                    (B, 128) = features(x)
//   dropout(0.3), fc: Linear(128, 10)                              (B, 10)  = forward(x)
// Parameter names: body.0.weight, body.1.{weight,bias,running_mean,running_var,
// num_batches_tracked}, body.4.weight, body.5.*, body.10.{weight,bias}, fc.{weight,bias}.
// With the defaults: 94,058 parameters. Trained by examples/fmnist_classifier.cpp
// (docs/evaluation.md has the measured test accuracy).
//
// Differences from Inception-based FID: features are 128-d (not 2048), after ReLU, from a
// network trained on Fashion-MNIST itself, so numbers are only comparable with other
// FMNIST-FID numbers computed with the same weights.
#pragma once

#include <memory>
#include <string>

#include "genai/nn/conv.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"

namespace genai {
namespace models {

struct FMNISTClassifierConfig {
  int64_t channels1 = 32;      // first conv's output channels
  int64_t channels2 = 64;      // second conv's output channels
  int64_t pooled = 3;          // adaptive average pool to pooled x pooled
  int64_t feature_dim = 128;   // penultimate features (FID embedding)
  int64_t num_classes = 10;
  double dropout = 0.3;        // before the last layer, training only
  double input_mean = 0.2860;  // Fashion-MNIST training-set pixel mean (inputs in [0, 1])
  double input_std = 0.3530;   // ... and standard deviation
};

class FMNISTClassifier : public nn::Module {
 public:
  explicit FMNISTClassifier(const FMNISTClassifierConfig& c = {}) : cfg_(c) {
    GENAI_CHECK(c.channels1 > 0 && c.channels2 > 0 && c.pooled > 0 && c.feature_dim > 0 && c.num_classes > 1,
                "FMNISTClassifier: sizes must be positive (and num_classes > 1), got channels ", c.channels1, ", ",
                c.channels2, ", pooled ", c.pooled, ", feature_dim ", c.feature_dim, ", num_classes ", c.num_classes);
    GENAI_CHECK(c.input_std > 0, "FMNISTClassifier: input_std must be positive, got ", c.input_std);
    body = register_module("body", std::make_shared<nn::Sequential>());
    body->push_back(std::make_shared<nn::Conv2d>(1, c.channels1, 3, 1, 1, 1, 1, /*bias=*/false));  // 0
    body->push_back(std::make_shared<nn::BatchNorm2d>(c.channels1));                               // 1
    body->push_back(std::make_shared<nn::ReLU>());                                                 // 2
    body->push_back(std::make_shared<nn::MaxPool2d>(2));                                           // 3: 28 -> 14
    body->push_back(std::make_shared<nn::Conv2d>(c.channels1, c.channels2, 3, 1, 1, 1, 1, false));  // 4
    body->push_back(std::make_shared<nn::BatchNorm2d>(c.channels2));                               // 5
    body->push_back(std::make_shared<nn::ReLU>());                                                 // 6
    body->push_back(std::make_shared<nn::MaxPool2d>(2));                                           // 7: 14 -> 7
    body->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(c.pooled));                            // 8: 7 -> 3
    body->push_back(std::make_shared<nn::Flatten>());                                              // 9
    body->push_back(std::make_shared<nn::Linear>(c.channels2 * c.pooled * c.pooled, c.feature_dim));  // 10
    body->push_back(std::make_shared<nn::ReLU>());                                                 // 11
    drop = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
    fc = register_module("fc", std::make_shared<nn::Linear>(c.feature_dim, c.num_classes));
  }
  std::string type_name() const override { return "FMNISTClassifier"; }
  std::string extra_repr() const override {
    return "channels=(" + std::to_string(cfg_.channels1) + ", " + std::to_string(cfg_.channels2) +
           "), feature_dim=" + std::to_string(cfg_.feature_dim) + ", num_classes=" + std::to_string(cfg_.num_classes);
  }
  const FMNISTClassifierConfig& config() const { return cfg_; }
  int64_t feature_dim() const { return cfg_.feature_dim; }
  int64_t num_classes() const { return cfg_.num_classes; }

  /// Penultimate features: x (B, 1, 28, 28) in [0, 1] -> (B, feature_dim), after ReLU.
  Tensor features(const Tensor& x) {
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28,
                "FMNISTClassifier: expected images (B, 1, 28, 28) in [0, 1], got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                "; hint: images in [-1, 1] need io::unnormalize_to_zero_to_one, other sizes io::resize");
    return body->forward(mul(add(x, -cfg_.input_mean), 1.0 / cfg_.input_std));
  }
  /// Logits (B, num_classes) from the penultimate features f (B, feature_dim).
  Tensor head(const Tensor& f) { return fc->forward(drop->forward(f)); }
  /// Logits (B, num_classes) for images x (B, 1, 28, 28) in [0, 1].
  Tensor forward(const Tensor& x) { return head(features(x)); }
  Tensor operator()(const Tensor& x) { return forward(x); }

  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::Linear> fc;

 private:
  FMNISTClassifierConfig cfg_;
};

/// Training augmentation for (B, C, H, W) images: per image, a horizontal flip with
/// probability 1/2 and a translation by (dy, dx) uniform in [-max_shift, max_shift]^2
/// (vacated pixels 0, as torchvision's RandomCrop(padding) with zero fill). Not recorded.
inline Tensor random_shift_flip(const Tensor& x, int64_t max_shift, Generator& gen = default_generator()) {
  GENAI_CHECK(x.defined() && x.dim() == 4 && x.is_floating_point() && max_shift >= 0,
              "random_shift_flip: expected float images (B, C, H, W) and max_shift >= 0, got ",
              x.defined() ? shape_str(x.shape()) : std::string("(undefined)"), " and ", max_shift);
  Tensor src = x.detach().to(kFloat32).contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), span = 2 * max_shift + 1;
  Tensor out = zeros(x.shape(), kFloat32);
  const float* s = src.data_ptr<float>();
  float* o = out.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const bool flip = (gen.next_u64() & 1) != 0;
    const int64_t dy = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(span)) - max_shift;
    const int64_t dx = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(span)) - max_shift;
    for (int64_t c = 0; c < C; ++c) {
      const float* sp = s + (b * C + c) * H * W;
      float* op = o + (b * C + c) * H * W;
      for (int64_t i = 0; i < H; ++i) {
        const int64_t si = i - dy;  // out[i][j] = in[i - dy][j' - dx], j' the (flipped) column
        if (si < 0 || si >= H) continue;
        for (int64_t j = 0; j < W; ++j) {
          const int64_t sj = (flip ? W - 1 - j : j) - dx;
          if (sj >= 0 && sj < W) op[i * W + j] = sp[si * W + sj];
        }
      }
    }
  }
  return x.dtype() == kFloat32 ? out : out.to(x.dtype());
}

}  // namespace models
}  // namespace genai
