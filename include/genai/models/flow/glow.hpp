// genai/models/flow/glow.hpp: Glow (Kingma & Dhariwal, "Glow: Generative Flow with
// Invertible 1x1 Convolutions", NeurIPS 2018), as rosinality/glow-pytorch arranges it.
//
// A step of flow is ActNorm -> invertible 1x1 convolution (plain or LU) -> coupling
// (GlowStep: children "actnorm", "invconv", "coupling"). On images (C, H, W) the multi-scale
// architecture has n_levels levels: each squeezes, runs n_steps steps, and (except the last)
// factors out half of the channels with the learned conditional prior (split_prior); the
// last ends with the learned top prior (learn_top). On vectors (D) (e.g. the 2-D toys) there
// is one level of n_steps steps, no squeeze, and conditioners are MLPs.
//
//   flow::Glow body({.event_shape = {1, 28, 28}, .n_levels = 2, .n_steps = 8, .hidden = 128});
//   flow::Flow model(std::make_shared<flow::Glow>(...), {1, 28, 28}, std::make_shared<flow::ScaleShift>(1.0, -0.5));
//
// The conditioner of the coupling is flow::conv_net (Conv3x3 ReLU Conv1x1 ReLU ZeroConv2d) on
// images and flow::mlp_net(..., zero_last = true) on vectors; the coupling is GlowAffine
// (sigmoid(h + 2) scale) by default. ActNorm initializes itself from the first batch it sees
// in training mode (for a better estimate, run one forward on a large batch first, under
// NoGradGuard if you like). Differences from the paper: no learned conditioning on labels (class-conditional
// prior), no zero-padding edge channel, per-channel top prior (see layers.hpp).
#pragma once

#include <memory>
#include <string>

#include "genai/models/flow/layers.hpp"

namespace genai {
namespace models {
namespace flow {

/// One step of flow: ActNorm, invertible 1x1 convolution, coupling.
class GlowStep : public FlowLayer {
 public:
  /// `channels`: C of the step's input; `event_dims` 3 for (B, C, H, W), 1 for (B, C).
  GlowStep(int64_t channels, int64_t hidden, bool lu = true, CouplingKind kind = CouplingKind::GlowAffine,
           int64_t event_dims = 3) {
    actnorm = register_module("actnorm", std::make_shared<ActNorm>(channels, event_dims));
    if (lu)
      invconv = register_module("invconv", std::static_pointer_cast<FlowLayer>(std::make_shared<InvConv2dLU>(channels, event_dims)));
    else
      invconv = register_module("invconv", std::static_pointer_cast<FlowLayer>(std::make_shared<InvConv2d>(channels, event_dims)));
    const int64_t cond = channels / 2, trans = channels - cond;
    const int64_t out = kind == CouplingKind::Additive ? trans : 2 * trans;
    std::shared_ptr<nn::UnaryModule> net;
    if (event_dims == 3)
      net = conv_net(cond, hidden, out);
    else
      net = mlp_net(cond, hidden, out, 2, /*zero_last=*/true);
    coupling = register_module("coupling", std::make_shared<ChannelCoupling>(channels, net, kind, false));
  }
  std::string type_name() const override { return "GlowStep"; }
  FlowOutput forward(const Tensor& x) override {
    FlowOutput a = actnorm->forward(x);
    FlowOutput b = invconv->forward(a.z);
    FlowOutput c = coupling->forward(b.z);
    return {c.z, add(add(a.logdet, b.logdet), c.logdet)};
  }
  Tensor inverse(const Tensor& z) override {
    return actnorm->inverse(invconv->inverse(coupling->inverse(z)));
  }

  std::shared_ptr<ActNorm> actnorm;
  std::shared_ptr<FlowLayer> invconv;  // InvConv2dLU or InvConv2d
  std::shared_ptr<ChannelCoupling> coupling;
};

struct GlowConfig {
  Shape event_shape = {1, 28, 28};  // (C, H, W) images, or (D) vectors
  int64_t n_levels = 2;             // L (images): H and W divisible by 2^L
  int64_t n_steps = 8;              // K steps of flow per level
  int64_t hidden = 128;             // width of the conditioner nets
  bool lu = true;                   // LU-parameterized 1x1 convolutions
  CouplingKind coupling = CouplingKind::GlowAffine;
  bool split_prior = true;  // learned conditional prior for the factored-out halves
  bool learn_top = true;    // learned prior on the last level's output
};

/// Glow: x (B, *event) -> z (B, D) for images with n_levels > 1 (flat, see FactorOut), else
/// z shaped like the last level's output.
class Glow : public FlowSequential {
 public:
  explicit Glow(const GlowConfig& c = {}) : cfg_(c) {
    const Shape& e = c.event_shape;
    GENAI_CHECK(c.n_steps >= 1 && c.hidden > 0, "Glow: n_steps and hidden must be positive");
    if (e.size() == 1) {
      GENAI_CHECK(e[0] >= 2, "Glow: a vector event needs D >= 2, got ", shape_str(e));
      for (int64_t k = 0; k < c.n_steps; ++k) push_back(std::make_shared<GlowStep>(e[0], c.hidden, c.lu, c.coupling, 1));
      if (c.learn_top) push_back(std::make_shared<LearnedPrior>(e[0], 1));
      return;
    }
    GENAI_CHECK(e.size() == 3 && c.n_levels >= 1, "Glow: expected an event shape (C, H, W) or (D) and n_levels >= 1, got ",
                shape_str(e));
    const int64_t m = int64_t(1) << c.n_levels;
    GENAI_CHECK(e[1] % m == 0 && e[2] % m == 0, "Glow: H and W (", e[1], ", ", e[2], ") must be divisible by 2^n_levels = ",
                m, "; hint: use fewer levels");
    build(*this, e, 0);
  }
  std::string type_name() const override { return "Glow"; }
  const GlowConfig& config() const { return cfg_; }

 private:
  void build(FlowSequential& seq, const Shape& s, int64_t level) {
    seq.push_back(std::make_shared<Squeeze>());
    const Shape sq{4 * s[0], s[1] / 2, s[2] / 2};
    for (int64_t k = 0; k < cfg_.n_steps; ++k)
      seq.push_back(std::make_shared<GlowStep>(sq[0], cfg_.hidden, cfg_.lu, cfg_.coupling, 3));
    if (level == cfg_.n_levels - 1) {
      if (cfg_.learn_top) seq.push_back(std::make_shared<LearnedPrior>(sq[0], 3));
      return;
    }
    auto inner = std::make_shared<FlowSequential>();
    build(*inner, {sq[0] / 2, sq[1], sq[2]}, level + 1);
    seq.push_back(std::make_shared<FactorOut>(sq, inner, cfg_.split_prior));
  }
  GlowConfig cfg_;
};

}  // namespace flow
}  // namespace models
}  // namespace genai
