// genai/models/vision/vgg.hpp: the convolutional part of VGG-16 and VGG-19
// (K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale
// Image Recognition", 2014) as a feature extractor for style transfer and DeepDream,
// with torchvision's module layout, so torchvision's ImageNet weights load:
//
//   models::VGGFeatures vgg({.depth = 19, .pooling = models::VGGPooling::Average});
//   models::load_vgg_weights(vgg, "vgg19.safetensors");   // torchvision's vgg19 features
//   auto f = vgg.extract(img, {"relu1_1", "relu4_2"});     // img (N, 3, H, W) in [0, 1]
//
// The weights file is made once in Python (torchvision >= 0.13, safetensors):
//   import torchvision, safetensors.torch as st
//   st.save_file({k: v for k, v in torchvision.models.vgg19(weights="DEFAULT").state_dict().items() if k.startswith("features")}, "vgg19.safetensors")
//
// Layout (torchvision.models.vgg{16,19}().features, an nn.Sequential):
//   block b = 1..5 with n_b convolutions (VGG-16: 2 2 3 3 3, VGG-19: 2 2 4 4 4) of width
//   64, 128, 256, 512, 512: Conv2d(3x3, pad 1) ReLU ... MaxPool2d(2, 2), parameters
//   features.<index>.{weight,bias}; the layers are named conv<b>_<i>, relu<b>_<i>, pool<b>
//   (relu1_1 = features.1, relu4_2 = features.22 in VGG-19, as Gatys et al. name them).
//
// Where it differs from torchvision: the network stops at `last_layer` (layers past it
// are not built, so a style loss at relu4_1 does not pay for block 5); `pooling` can be
// average pooling (Gatys et al.'s choice for image synthesis); the input is an image in
// [0, 1] normalized inside (ImageNet mean and std, as torchvision's transforms), not a
// normalized tensor; `width` scales every channel count (64 = torchvision's) for small
// test networks. There is no classifier head.
//
// Without pretrained weights, random_vgg_features() is the documented fallback: the same
// layout with seeded random He-normal filters and zero biases. Random multi-layer
// filters still measure colours and local texture statistics across scales
// (Ustyuzhaninov et al., "Texture Synthesis Using Shallow Convolutional Networks with
// Random Filters", 2016; He et al., "A Powerful Generative Model Using Random Weights
// for the Deep Image Representation", 2016), so style transfer gives recognisable
// colour and texture transfer, but not the painterly, object-aware strokes of ImageNet
// features; DeepDream with random filters yields abstract high-frequency patterns,
// not eyes and dogs (docs/style-transfer.md shows both).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "genai/io/safetensors.hpp"
#include "genai/nn/conv.hpp"
#include "genai/nn/init.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"

namespace genai {
namespace models {

enum class VGGPooling { Max, Average };

/// "max" or "avg"/"average" -> VGGPooling; throws genai::Error otherwise.
inline VGGPooling parse_vgg_pooling(const std::string& s) {
  if (s == "max") return VGGPooling::Max;
  if (s == "avg" || s == "average") return VGGPooling::Average;
  GENAI_FAIL("VGG: unknown pooling '", s, "'; hint: use \"max\" or \"avg\"");
  return VGGPooling::Max;
}

struct VGGConfig {
  int64_t depth = 19;                      // 16 or 19 (convolutions + the 3 layers of the classifier)
  VGGPooling pooling = VGGPooling::Max;    // torchvision: max; Gatys et al. use average pooling
  int64_t width = 64;                      // block-1 channels; blocks have width x (1, 2, 4, 8, 8)
  std::string last_layer = "";             // build up to this layer only ("" = all, pool5)
  bool normalize_input = true;             // inputs in [0, 1], ImageNet mean/std applied inside
};

/// ImageNet's per-channel mean and std (torchvision's transforms.Normalize values).
inline constexpr double kImageNetMean[3] = {0.485, 0.456, 0.406};
inline constexpr double kImageNetStd[3] = {0.229, 0.224, 0.225};

/// The layer names of a VGG-`depth` feature stack, in order: conv1_1, relu1_1, ..., pool5.
inline std::vector<std::string> vgg_layer_names(int64_t depth) {
  GENAI_CHECK(depth == 16 || depth == 19, "VGG: depth must be 16 or 19, got ", depth);
  const int convs[5] = {2, 2, depth == 16 ? 3 : 4, depth == 16 ? 3 : 4, depth == 16 ? 3 : 4};
  std::vector<std::string> names;
  for (int b = 1; b <= 5; ++b) {
    for (int i = 1; i <= convs[b - 1]; ++i) {
      names.push_back("conv" + std::to_string(b) + "_" + std::to_string(i));
      names.push_back("relu" + std::to_string(b) + "_" + std::to_string(i));
    }
    names.push_back("pool" + std::to_string(b));
  }
  return names;
}

class VGGFeatures : public nn::Module {
 public:
  explicit VGGFeatures(const VGGConfig& c = {}) : cfg_(c) {
    GENAI_CHECK(c.width > 0, "VGGFeatures: width must be positive, got ", c.width);
    std::vector<std::string> all = vgg_layer_names(c.depth);
    size_t n = all.size();
    if (!c.last_layer.empty()) {
      auto it = std::find(all.begin(), all.end(), c.last_layer);
      GENAI_CHECK(it != all.end(), "VGGFeatures: unknown last_layer '", c.last_layer, "' for VGG-", c.depth,
                  "; hint: names are conv<b>_<i>, relu<b>_<i>, pool<b> (e.g. relu4_1)");
      n = static_cast<size_t>(it - all.begin()) + 1;
    }
    names_.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    features = register_module("features", std::make_shared<nn::Sequential>());
    int64_t in = 3, block = 0;
    const int64_t mult[5] = {1, 2, 4, 8, 8};
    for (const std::string& name : names_) {
      if (name.rfind("conv", 0) == 0) {
        block = name[4] - '1';
        const int64_t out = c.width * mult[block];
        features->push_back(std::make_shared<nn::Conv2d>(in, out, 3, 1, 1));
        in = out;
      } else if (name.rfind("relu", 0) == 0) {
        features->push_back(std::make_shared<nn::ReLU>());
      } else if (c.pooling == VGGPooling::Max) {
        features->push_back(std::make_shared<nn::MaxPool2d>(2, 2));
      } else {
        features->push_back(std::make_shared<nn::AvgPool2d>(2, 2));
      }
    }
  }
  std::string type_name() const override { return "VGGFeatures"; }
  std::string extra_repr() const override {
    return "depth=" + std::to_string(cfg_.depth) + ", width=" + std::to_string(cfg_.width) +
           ", pooling=" + (cfg_.pooling == VGGPooling::Max ? "max" : "avg") + ", last_layer=" + names_.back();
  }
  const VGGConfig& config() const { return cfg_; }
  /// The names of the layers built, in order (`features.i` is `layer_names()[i]`).
  const std::vector<std::string>& layer_names() const { return names_; }
  /// The index of a layer in `features`; throws genai::Error naming the known layers if absent.
  int64_t layer_index(const std::string& name) const {
    auto it = std::find(names_.begin(), names_.end(), name);
    GENAI_CHECK(it != names_.end(), "VGGFeatures: no layer '", name, "' (this network has ", names_.front(),
                " ... ", names_.back(), "); hint: names are conv<b>_<i>, relu<b>_<i>, pool<b>; raise last_layer");
    return static_cast<int64_t>(it - names_.begin());
  }
  /// Channels of a layer's output.
  int64_t channels(const std::string& name) const {
    layer_index(name);  // throws for unknown names
    const int64_t mult[5] = {1, 2, 4, 8, 8};
    return cfg_.width * mult[name[4] - '1'];  // conv<b>_<i>, relu<b>_<i>, pool<b>: b at [4]
  }
  /// Freezes the weights (requires_grad = false), as for style transfer and DeepDream.
  void freeze() {
    for (auto& p : parameters()) p.requires_grad_(false);
  }

  /// x (N, 3, H, W) in [0, 1] (or already normalized when normalize_input is false)
  /// -> (N, 3, H, W) input of features.0.
  Tensor normalize(const Tensor& x) const {
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3 && x.is_floating_point(),
                "VGGFeatures: expected float images (N, 3, H, W), got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                "; hint: grey images need 3 channels (expand the channel dimension)");
    if (!cfg_.normalize_input) return x;
    const std::vector<double> mean(kImageNetMean, kImageNetMean + 3), stdv(kImageNetStd, kImageNetStd + 3);
    return div(sub(x, tensor(mean, {1, 3, 1, 1}, x.dtype())), tensor(stdv, {1, 3, 1, 1}, x.dtype()));
  }
  /// The activations at `layers` (any order; each a layer name), in the order asked;
  /// the stack runs only up to the deepest of them. x (N, 3, H, W).
  std::vector<Tensor> extract(const Tensor& x, const std::vector<std::string>& layers) {
    std::vector<int64_t> idx;
    int64_t last = -1;
    for (const auto& l : layers) {
      idx.push_back(layer_index(l));
      last = std::max(last, idx.back());
    }
    std::vector<Tensor> out(layers.size());
    Tensor h = normalize(x);
    for (int64_t i = 0; i <= last; ++i) {
      GENAI_CHECK(names_[static_cast<size_t>(i)][0] != 'p' || (h.size(2) >= 2 && h.size(3) >= 2),
                  "VGGFeatures: the image is too small for ", names_[static_cast<size_t>(i)], " (input ",
                  shape_str(x.shape()), ", activation ", shape_str(h.shape()),
                  "); hint: use a larger image or a shallower layer");
      h = (*features)[static_cast<size_t>(i)]->forward(h);
      for (size_t k = 0; k < idx.size(); ++k)
        if (idx[k] == i) out[k] = h;
    }
    return out;
  }
  /// The output of the last layer built: x (N, 3, H, W) -> (N, C, H', W').
  Tensor forward(const Tensor& x) { return features->forward(normalize(x)); }

  std::shared_ptr<nn::Sequential> features;

 private:
  VGGConfig cfg_;
  std::vector<std::string> names_;
};

/// The fallback feature network: VGG layout with seeded random He-normal (fan_in) filters
/// and zero biases, frozen. Deterministic for a given seed (independent of the global RNG).
inline std::shared_ptr<VGGFeatures> random_vgg_features(const VGGConfig& c = {}, uint64_t seed = 0) {
  auto m = std::make_shared<VGGFeatures>(c);
  Generator gen(seed);
  for (auto& [name, p] : m->named_parameters()) {
    if (p.dim() == 4)
      nn::init::kaiming_normal_(p, 0.0, "fan_in", "relu", gen);
    else
      nn::init::zeros_(p);
  }
  m->freeze();
  return m;
}

/// Loads torchvision's VGG weights (`features.i.weight` / `.bias`, with or without the
/// "features." prefix; classifier.* and layers past last_layer are ignored) into `m`
/// (converted to m's dtype) and freezes it. Throws genai::Error naming the file and the
/// missing or mis-shaped tensors (e.g. VGG-16 weights given to a VGG-19).
inline void load_vgg_weights(VGGFeatures& m, const io::TensorMap& weights, const std::string& what = "weights") {
  io::TensorMap sd;
  for (const auto& [k, v] : weights) {
    std::string key = k.rfind("features.", 0) == 0 ? k : (k.rfind("classifier.", 0) == 0 ? "" : "features." + k);
    if (!key.empty()) sd.emplace(key, v);
  }
  io::TensorMap own = m.state_dict();
  io::TensorMap used;
  for (const auto& [k, v] : own) {
    auto it = sd.find(k);
    GENAI_CHECK(it != sd.end(), "load_vgg_weights: ", what, " has no tensor '", k, "' (VGG-", m.config().depth,
                " up to ", m.layer_names().back(),
                "); hint: give torchvision's vgg", m.config().depth, " weights (docs/style-transfer.md has the snippet)");
    GENAI_CHECK(it->second.shape() == v.shape(), "load_vgg_weights: ", what, ": '", k, "' has shape ",
                shape_str(it->second.shape()), ", the network expects ", shape_str(v.shape()),
                "; hint: VGG-16 and VGG-19 weights differ from features.14 on, and width must be 64");
    used.emplace(k, it->second.to(v.dtype()));
  }
  m.load_state_dict(used);
  m.freeze();
}
inline void load_vgg_weights(VGGFeatures& m, const std::string& path) {
  load_vgg_weights(m, io::load_safetensors(path), path);
}

}  // namespace models
}  // namespace genai
