// genai/models/flow/realnvp.hpp: RealNVP (Dinh, Sohl-Dickstein & Bengio, "Density
// estimation using Real NVP", ICLR 2017) in two forms.
//
// RealNVP (MLP, on vectors (B, D)): n_couplings affine couplings with alternating even/odd
// masks; coupling i conditions on the dimensions j with (j + i) even and transforms the
// others. Each conditioner is an MLP D -> hidden (ReLU) -> ... -> 2D split into s (tanh,
// masked) and t (masked). The defaults are the `realnvp` reference configuration
// (REFERENCE_MODELS.md): 8 couplings on 784-d, Linear(784, 512) ReLU Linear(512, 512) ReLU
// Linear(512, 1568). State dict keys: couplings.<i>.mask, couplings.<i>.net.{0,2,4}.{weight,bias}.
//
//   flow::RealNVP body({.dim = 784});
//   flow::FlowOutput o = body.forward(x);    // x (B, 784) -> z (B, 784), logdet (B)
//
// RealNVPConv (multi-scale, on images (B, C, H, W)), section 3.6 of the paper: each scale but
// the last is n_checker checkerboard couplings (alternating parity), a squeeze, n_channel
// channel-wise couplings (alternating halves), then half of the channels are factored out and
// the next scale runs on the rest; the last scale is n_final checkerboard couplings. The
// conditioners are Glow's small CNNs (flow::conv_net: 3x3, 1x1, zero-initialized 3x3), not the
// paper's ResNets, and there is no batch normalization in the flow (smaller, simpler to
// train at small batch sizes). The latent is flat (B, C H W).
#pragma once

#include <memory>
#include <string>

#include "genai/models/flow/layers.hpp"

namespace genai {
namespace models {
namespace flow {

struct RealNVPConfig {
  int64_t dim = 784;         // D: values per sample
  int64_t hidden = 512;      // width of the conditioner MLPs
  int64_t n_couplings = 8;   // affine couplings
  int64_t n_hidden = 2;      // hidden layers per conditioner
};

/// RealNVP on vectors: x (B, D) -> z (B, D).
class RealNVP : public FlowLayer {
 public:
  explicit RealNVP(const RealNVPConfig& c = {}) : cfg_(c) {
    GENAI_CHECK(c.dim >= 2 && c.hidden > 0 && c.n_couplings >= 1 && c.n_hidden >= 1,
                "RealNVP: expected dim >= 2, hidden > 0, n_couplings >= 1, n_hidden >= 1; got dim ", c.dim, ", hidden ",
                c.hidden, ", n_couplings ", c.n_couplings, ", n_hidden ", c.n_hidden);
    couplings = register_module("couplings", std::make_shared<FlowSequential>());
    for (int64_t i = 0; i < c.n_couplings; ++i)
      couplings->push_back(std::make_shared<MaskedCoupling>(checkerboard_mask({c.dim}, i % 2),
                                                            mlp_net(c.dim, c.hidden, 2 * c.dim, c.n_hidden),
                                                            CouplingKind::Affine));
  }
  std::string type_name() const override { return "RealNVP"; }
  std::string extra_repr() const override {
    return "dim=" + std::to_string(cfg_.dim) + ", hidden=" + std::to_string(cfg_.hidden) +
           ", n_couplings=" + std::to_string(cfg_.n_couplings);
  }
  const RealNVPConfig& config() const { return cfg_; }
  FlowOutput forward(const Tensor& x) override {
    check_event(x, {cfg_.dim}, "RealNVP");
    return couplings->forward(x);
  }
  Tensor inverse(const Tensor& z) override {
    check_event(z, {cfg_.dim}, "RealNVP::inverse");
    return couplings->inverse(z);
  }

  std::shared_ptr<FlowSequential> couplings;

 private:
  RealNVPConfig cfg_;
};

struct RealNVPConvConfig {
  int64_t in_channels = 1;  // C
  int64_t image_size = 28;  // H = W; divisible by 2^(n_scales - 1)
  int64_t n_scales = 2;     // scales (the last has no squeeze)
  int64_t hidden = 64;      // channels of the conditioner CNNs
  int64_t n_checker = 3;    // checkerboard couplings per scale (before the squeeze)
  int64_t n_channel = 3;    // channel-wise couplings per scale (after the squeeze)
  int64_t n_final = 4;      // checkerboard couplings of the last scale
};

/// Multi-scale RealNVP on images: x (B, C, H, W) -> z (B, C H W) (flat when n_scales > 1).
/// It is the FlowSequential of scale 0, whose FactorOut holds scale 1 as "inner", and so on.
class RealNVPConv : public FlowSequential {
 public:
  explicit RealNVPConv(const RealNVPConvConfig& c = {}) : cfg_(c) {
    GENAI_CHECK(c.in_channels >= 1 && c.image_size >= 1 && c.n_scales >= 1 && c.hidden > 0 && c.n_checker >= 0 &&
                    c.n_channel >= 0 && c.n_final >= 1,
                "RealNVPConv: invalid configuration (sizes must be positive, n_scales >= 1, n_final >= 1)");
    GENAI_CHECK(c.image_size % (int64_t(1) << (c.n_scales - 1)) == 0, "RealNVPConv: image_size ", c.image_size,
                " must be divisible by 2^(n_scales - 1) = ", int64_t(1) << (c.n_scales - 1));
    build(*this, {c.in_channels, c.image_size, c.image_size}, 0);
  }
  std::string type_name() const override { return "RealNVPConv"; }
  const RealNVPConvConfig& config() const { return cfg_; }

 private:
  void build(FlowSequential& seq, const Shape& s, int64_t scale) {
    const int64_t C = s[0];
    const bool last = scale == cfg_.n_scales - 1;
    const int64_t n_checker = last ? cfg_.n_final : cfg_.n_checker;
    for (int64_t i = 0; i < n_checker; ++i)
      seq.push_back(std::make_shared<MaskedCoupling>(checkerboard_mask(s, i % 2), conv_net(C, cfg_.hidden, 2 * C),
                                                     CouplingKind::Affine));
    if (last) return;
    seq.push_back(std::make_shared<Squeeze>());
    const Shape sq{4 * C, s[1] / 2, s[2] / 2};
    for (int64_t i = 0; i < cfg_.n_channel; ++i) {
      const bool swap = i % 2 == 1;
      const int64_t cond = swap ? 4 * C - 2 * C : 2 * C, trans = 4 * C - cond;
      seq.push_back(std::make_shared<ChannelCoupling>(4 * C, conv_net(cond, cfg_.hidden, 2 * trans),
                                                      CouplingKind::Affine, swap));
    }
    auto inner = std::make_shared<FlowSequential>();
    build(*inner, {2 * C, s[1] / 2, s[2] / 2}, scale + 1);
    seq.push_back(std::make_shared<FactorOut>(sq, inner, /*learned_prior=*/false));
  }
  RealNVPConvConfig cfg_;
};

}  // namespace flow
}  // namespace models
}  // namespace genai
