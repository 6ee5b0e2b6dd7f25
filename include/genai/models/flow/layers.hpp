// genai/models/flow/layers.hpp: the invertible layers of RealNVP and Glow.
//
//   MaskedCoupling   affine coupling with a binary mask (RealNVP's checkerboard masks, or
//                    alternating even/odd masks on vectors)         Dinh et al. 2017, eq. 8-9
//   ChannelCoupling  affine coupling on halves of the channels (RealNVP's channel masks,
//                    Glow's coupling)                               Dinh 2017; Kingma 2018, table 1
//   ActNorm          per-channel affine with data-dependent init     Kingma & Dhariwal 2018, 3.1
//   InvConv2d        invertible 1x1 convolution, plain or LU-parameterized (InvConv2dLU)   3.2
//   Squeeze          (C, H, W) -> (4C, H/2, W/2), as torch.nn.functional.pixel_unshuffle
//   FactorOut        multi-scale: factor out half of the channels (optionally with Glow's
//                    learned conditional prior) and run an inner flow on the other half
//   LearnedPrior     Glow's learned top prior N(mean, exp(logs)^2) per channel
//   ZeroConv2d / ZeroLinear   zero-initialized output layers scaled by exp(3 scale) (Glow)
//
// Coupling kinds (the conditioner net's output h is split along dim 1: first half the scale,
// second half the shift t, as rosinality/glow-pytorch):
//   Affine      s = tanh(h_s),            z = x exp(s) + t,  logdet = sum s        (RealNVP)
//   GlowAffine  log s = logsigmoid(h_s + 2),  z = (x + t) s,  logdet = sum log s  (Glow)
//   Additive    z = x + t (the net outputs t only), logdet = 0                     (NICE / Glow)
// Masked couplings multiply s and t by (1 - mask), so the masked part passes through.
//
// Layers work on images (B, C, H, W) and, where it makes sense, on vectors (B, D) (event_dims
// 1): ActNorm, InvConv2d (a linear map), couplings, FactorOut and LearnedPrior. Differences
// from rosinality/glow-pytorch: ActNorm stores log-scales (`logs`) instead of scales; the
// LU-parameterized 1x1 convolution applies tril/triu instead of stored mask buffers; ZeroConv2d
// pads with zeros (rosinality pads with ones); the learned top prior is one mean and log-scale
// per channel (rosinality derives it from a zero-padded ZeroConv2d of zeros).
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "genai/models/flow/flow.hpp"
#include "genai/models/flow/linalg.hpp"
#include "genai/nn/conv.hpp"
#include "genai/nn/linear.hpp"

namespace genai {
namespace models {
namespace flow {

// ---- zero-initialized output layers ---------------------------------------------------------

/// Conv2d(in, out, 3, padding 1) with zero weight and bias, scaled by exp(3 scale) per output
/// channel (scale zero-initialized): the last layer of Glow's nets, so a coupling starts as the
/// identity. Children "conv" and parameter "scale" (1, out, 1, 1).
class ZeroConv2d : public nn::UnaryModule {
 public:
  ZeroConv2d(int64_t in_channels, int64_t out_channels) {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(in_channels, out_channels, 3, 1, 1));
    nn::init::zeros_(conv->weight);
    nn::init::zeros_(conv->bias);
    scale = register_parameter("scale", zeros({1, out_channels, 1, 1}));
  }
  std::string type_name() const override { return "ZeroConv2d"; }
  Tensor forward(const Tensor& x) override { return mul(conv->forward(x), exp(mul(scale, 3.0))); }  // (B, out, H, W)

  std::shared_ptr<nn::Conv2d> conv;
  Tensor scale;  // (1, out, 1, 1)
};

/// Linear(in, out) with zero weight and bias, scaled by exp(3 scale): ZeroConv2d for vectors.
class ZeroLinear : public nn::UnaryModule {
 public:
  ZeroLinear(int64_t in_features, int64_t out_features) {
    linear = register_module("linear", std::make_shared<nn::Linear>(in_features, out_features));
    nn::init::zeros_(linear->weight);
    nn::init::zeros_(linear->bias);
    scale = register_parameter("scale", zeros({1, out_features}));
  }
  std::string type_name() const override { return "ZeroLinear"; }
  Tensor forward(const Tensor& x) override { return mul(linear->forward(x), exp(mul(scale, 3.0))); }  // (B, out)

  std::shared_ptr<nn::Linear> linear;
  Tensor scale;  // (1, out)
};

/// MLP conditioner: Linear(in, h) ReLU [Linear(h, h) ReLU] x (n_hidden - 1) then Linear(h, out)
/// (PyTorch's default init; the RealNVP reference configuration) or ZeroLinear(h, out).
/// Children "0", "1", ... as nn.Sequential.
inline std::shared_ptr<nn::Sequential> mlp_net(int64_t in, int64_t hidden, int64_t out, int64_t n_hidden = 2,
                                               bool zero_last = false) {
  GENAI_CHECK(in > 0 && hidden > 0 && out > 0 && n_hidden >= 1, "flow::mlp_net: sizes must be positive, got in ", in,
              ", hidden ", hidden, ", out ", out, ", n_hidden ", n_hidden);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Linear>(in, hidden));
  net->push_back(std::make_shared<nn::ReLU>());
  for (int64_t i = 1; i < n_hidden; ++i) {
    net->push_back(std::make_shared<nn::Linear>(hidden, hidden));
    net->push_back(std::make_shared<nn::ReLU>());
  }
  if (zero_last)
    net->push_back(std::make_shared<ZeroLinear>(hidden, out));
  else
    net->push_back(std::make_shared<nn::Linear>(hidden, out));
  return net;
}

/// Glow's conditioner (rosinality/glow-pytorch): Conv3x3(in, h) ReLU Conv1x1(h, h) ReLU
/// ZeroConv2d(h, out); the two convolutions' weights ~ N(0, 0.05^2), biases zero.
inline std::shared_ptr<nn::Sequential> conv_net(int64_t in, int64_t hidden, int64_t out) {
  GENAI_CHECK(in > 0 && hidden > 0 && out > 0, "flow::conv_net: channels must be positive, got in ", in, ", hidden ",
              hidden, ", out ", out);
  auto net = std::make_shared<nn::Sequential>();
  auto c0 = net->push_back(std::make_shared<nn::Conv2d>(in, hidden, 3, 1, 1));
  net->push_back(std::make_shared<nn::ReLU>());
  auto c1 = net->push_back(std::make_shared<nn::Conv2d>(hidden, hidden, 1));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<ZeroConv2d>(hidden, out));
  for (auto& c : {c0, c1}) {
    nn::init::normal_(c->weight, 0.0, 0.05);
    nn::init::zeros_(c->bias);
  }
  return net;
}

// ---- couplings ------------------------------------------------------------------------------

enum class CouplingKind {
  Affine,      // RealNVP: s = tanh(h_s), z = x exp(s) + t
  GlowAffine,  // Glow: s = sigmoid(h_s + 2), z = (x + t) s
  Additive,    // NICE: z = x + t
};

/// "affine" / "glow" / "additive".
inline CouplingKind parse_coupling_kind(const std::string& s) {
  if (s == "affine") return CouplingKind::Affine;
  if (s == "glow" || s == "glow_affine") return CouplingKind::GlowAffine;
  if (s == "additive") return CouplingKind::Additive;
  GENAI_FAIL("parse_coupling_kind: unknown coupling '", s, "'; expected 'affine', 'glow' or 'additive'");
}

/// Checkerboard mask of an event shape: (C, H, W) -> 1 where (h + w + parity) is even;
/// (D) -> 1 where (j + parity) is even (RealNVP's alternating even/odd masks on vectors).
inline Tensor checkerboard_mask(const Shape& event, int64_t parity, Dtype dtype = kFloat32) {
  GENAI_CHECK(event.size() == 1 || event.size() == 3, "checkerboard_mask: expected an event shape (D) or (C, H, W), got ",
              shape_str(event));
  std::vector<double> m(static_cast<size_t>(shape_numel(event)));
  if (event.size() == 1) {
    for (int64_t j = 0; j < event[0]; ++j) m[static_cast<size_t>(j)] = (j + parity) % 2 == 0 ? 1.0 : 0.0;
  } else {
    const int64_t C = event[0], H = event[1], W = event[2];
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) m[static_cast<size_t>((c * H + h) * W + w)] = (h + w + parity) % 2 == 0 ? 1.0 : 0.0;
  }
  return from_vector(m, event, dtype);
}

namespace detail {
/// The scale and shift of a coupling from the net's output h (B, k n, ...): k = 2 (s, t) or 1 (t).
struct CouplingParams {
  Tensor s;  // log-scale (undefined for Additive)
  Tensor t;  // shift
};
inline CouplingParams coupling_params(const Tensor& h, int64_t n, CouplingKind kind, const char* op) {
  const int64_t k = kind == CouplingKind::Additive ? 1 : 2;
  GENAI_CHECK(h.dim() >= 2 && h.size(1) == k * n, op, ": the conditioner net must output ", k * n,
              " values along dim 1 (", k == 2 ? "scale and shift" : "shift", " for ", n, "), got shape ",
              shape_str(h.shape()));
  if (kind == CouplingKind::Additive) return {Tensor(), h};
  Tensor hs = narrow(h, 1, 0, n), t = narrow(h, 1, n, n);
  Tensor s = kind == CouplingKind::Affine ? tanh(hs)                          // s = tanh(h_s)
                                          : neg(softplus(neg(add(hs, 2.0))));  // log s = logsigmoid(h_s + 2)
  return {s, t};
}
/// z from x (forward) or x from z (inverse) given (masked) s and t.
inline Tensor coupling_apply(const Tensor& x, const CouplingParams& p, CouplingKind kind, bool inverse) {
  switch (kind) {
    case CouplingKind::Affine:  // z = x e^s + t;  x = (z - t) e^-s
      return inverse ? mul(sub(x, p.t), exp(neg(p.s))) : add(mul(x, exp(p.s)), p.t);
    case CouplingKind::GlowAffine:  // z = (x + t) e^s;  x = z e^-s - t
      return inverse ? sub(mul(x, exp(neg(p.s))), p.t) : mul(add(x, p.t), exp(p.s));
    case CouplingKind::Additive:  // z = x + t
      return inverse ? sub(x, p.t) : add(x, p.t);
  }
  return x;
}
}  // namespace detail

/// Affine coupling with a fixed binary mask b (buffer "mask", the event shape) and a conditioner
/// net (child "net") mapping x b (B, *event) to (B, k C, ...) (k = 2, or 1 for Additive; C =
/// event[0]): s and t are multiplied by (1 - b), so z = x where b = 1.
class MaskedCoupling : public FlowLayer {
 public:
  MaskedCoupling(Tensor mask, std::shared_ptr<nn::UnaryModule> net, CouplingKind kind = CouplingKind::Affine)
      : kind_(kind) {
    GENAI_CHECK(mask.defined() && mask.dim() >= 1, "MaskedCoupling: the mask must be an event-shaped tensor");
    GENAI_CHECK(net != nullptr, "MaskedCoupling: the conditioner net is null");
    this->mask = register_buffer("mask", mask.detach().to(kFloat32));
    this->net = register_module("net", std::move(net));
  }
  std::string type_name() const override { return "MaskedCoupling"; }
  FlowOutput forward(const Tensor& x) override { return run(x, false); }
  Tensor inverse(const Tensor& z) override { return run(z, true).z; }

  Tensor mask;  // (*event) 1: conditioning (passes through), 0: transformed
  std::shared_ptr<nn::UnaryModule> net;

 private:
  FlowOutput run(const Tensor& x, bool inverse) {
    check_event(x, mask.shape(), "MaskedCoupling");
    Tensor b = mask.dtype() == x.dtype() ? mask : mask.to(x.dtype());
    Tensor nb = add(neg(b), 1.0);                                                // 1 - b
    detail::CouplingParams p = detail::coupling_params(net->forward(mul(x, b)), x.size(1), kind_, "MaskedCoupling");
    if (p.s.defined()) p.s = mul(p.s, nb);  // s (1 - b)
    p.t = mul(p.t, nb);                     // t (1 - b)
    Tensor z = detail::coupling_apply(x, p, kind_, inverse);
    Tensor ld = inverse ? Tensor() : (p.s.defined() ? sum_per_sample(p.s) : zeros({x.size(0)}, x.dtype()));
    return {z, ld};
  }
  CouplingKind kind_;
};

/// Affine coupling on channel halves: x (B, C, ...) splits into x1 = channels [0, C/2) and
/// x2 = [C/2, C); x1 conditions and x2 is transformed (swapped: x2 conditions, x1 is
/// transformed). The net (child "net") maps the conditioning half to k times the other's channels.
class ChannelCoupling : public FlowLayer {
 public:
  ChannelCoupling(int64_t channels, std::shared_ptr<nn::UnaryModule> net, CouplingKind kind = CouplingKind::GlowAffine,
                  bool swap = false)
      : channels_(channels), kind_(kind), swap_(swap) {
    GENAI_CHECK(channels >= 2, "ChannelCoupling: needs at least 2 channels, got ", channels);
    GENAI_CHECK(net != nullptr, "ChannelCoupling: the conditioner net is null");
    this->net = register_module("net", std::move(net));
  }
  std::string type_name() const override { return "ChannelCoupling"; }
  std::string extra_repr() const override {
    return "channels=" + std::to_string(channels_) + (swap_ ? ", swap=True" : "");
  }
  /// Channels of the conditioning half (the net's input) and of the transformed half.
  int64_t cond_channels() const { return swap_ ? channels_ - channels_ / 2 : channels_ / 2; }
  int64_t trans_channels() const { return channels_ - cond_channels(); }

  FlowOutput forward(const Tensor& x) override { return run(x, false); }
  Tensor inverse(const Tensor& z) override { return run(z, true).z; }

  std::shared_ptr<nn::UnaryModule> net;

 private:
  FlowOutput run(const Tensor& x, bool inverse) {
    GENAI_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == channels_, "ChannelCoupling: expected (B, ", channels_,
                ", ...), got ", x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    const int64_t c1 = channels_ / 2, c2 = channels_ - c1;
    Tensor x1 = narrow(x, 1, 0, c1), x2 = narrow(x, 1, c1, c2);
    const Tensor& xa = swap_ ? x2 : x1;  // conditioning half
    const Tensor& xb = swap_ ? x1 : x2;  // transformed half
    detail::CouplingParams p = detail::coupling_params(net->forward(xa), xb.size(1), kind_, "ChannelCoupling");
    Tensor zb = detail::coupling_apply(xb, p, kind_, inverse);
    Tensor z = swap_ ? cat({zb, xa}, 1) : cat({xa, zb}, 1);
    Tensor ld = inverse ? Tensor() : (p.s.defined() ? sum_per_sample(p.s) : zeros({x.size(0)}, x.dtype()));
    return {z, ld};
  }
  int64_t channels_;
  CouplingKind kind_;
  bool swap_;
};

// ---- ActNorm --------------------------------------------------------------------------------

/// Per-channel affine z = (x + loc) exp(logs) on (B, C, H, W) (event_dims 3) or (B, C)
/// (event_dims 1); logdet = H W sum(logs). Data-dependent init (Kingma & Dhariwal 2018): the
/// first forward in training mode sets loc = -mean(x), logs = -log(std(x) + 1e-6) per channel
/// (std unbiased, as torch.std), so the output has zero mean and unit variance; the buffer
/// "initialized" (0-d, 0 or 1) records it (it is in the state dict, so a resumed run keeps the
/// trained values). Parameters "loc", "logs" (1, C, 1, 1) or (1, C).
class ActNorm : public FlowLayer {
 public:
  explicit ActNorm(int64_t num_features, int64_t event_dims = 3) : C_(num_features), event_dims_(event_dims) {
    GENAI_CHECK(num_features > 0, "ActNorm: num_features must be positive, got ", num_features);
    GENAI_CHECK(event_dims == 1 || event_dims == 3, "ActNorm: event_dims must be 1 (B, C) or 3 (B, C, H, W), got ",
                event_dims);
    Shape ps = event_dims == 3 ? Shape{1, C_, 1, 1} : Shape{1, C_};
    loc = register_parameter("loc", zeros(ps));
    logs = register_parameter("logs", zeros(ps));
    initialized = register_buffer("initialized", zeros({}));
  }
  std::string type_name() const override { return "ActNorm"; }
  std::string extra_repr() const override { return std::to_string(C_); }
  bool is_initialized() const { return initialized.item<double>() != 0.0; }

  /// Sets loc and logs from the statistics of x (no gradient) and marks the layer initialized.
  void data_init(const Tensor& x) {
    check(x);
    NoGradGuard ng;
    std::vector<int64_t> dims = event_dims_ == 3 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
    const int64_t count = x.numel() / C_;
    Tensor xd = x.detach();
    Tensor m = mean(xd, dims, true);
    Tensor sd = count > 1 ? sqrt(var(xd, dims, 1, true)) : ones_like(m);
    loc.copy_(neg(m));
    logs.copy_(neg(log(add(sd, 1e-6))));  // log(1 / (std + 1e-6))
    initialized.fill_(1.0);
  }

  FlowOutput forward(const Tensor& x) override {
    check(x);
    if (is_training() && !is_initialized()) data_init(x);
    Tensor z = mul(add(x, loc), exp(logs));  // (x + loc) e^logs
    const double hw = static_cast<double>(spatial(x));
    return {z, logdet_like(mul(sum(logs), hw), x)};
  }
  Tensor inverse(const Tensor& z) override {
    check(z);
    return sub(mul(z, exp(neg(logs))), loc);  // x = z e^-logs - loc
  }

  Tensor loc, logs;   // (1, C, 1, 1) or (1, C)
  Tensor initialized;  // () 0 or 1

 private:
  void check(const Tensor& x) const {
    GENAI_CHECK(x.defined() && x.dim() == event_dims_ + 1 && x.size(1) == C_, "ActNorm: expected ",
                event_dims_ == 3 ? "(B, " + std::to_string(C_) + ", H, W)" : "(B, " + std::to_string(C_) + ")",
                ", got ", x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
  }
  static int64_t spatial(const Tensor& x) { return x.dim() == 4 ? x.size(2) * x.size(3) : 1; }
  int64_t C_, event_dims_;
};

// ---- invertible 1x1 convolutions --------------------------------------------------------------

namespace detail {
/// z = W x per pixel: conv2d with a (C, C, 1, 1) kernel on (B, C, H, W), x W^T on (B, C).
inline Tensor apply_channel_matrix(const Tensor& x, const Tensor& W) {
  const int64_t C = W.size(0);
  if (x.dim() == 4) return conv2d(x, reshape(W, {C, C, 1, 1}));
  return linear(x, W);
}
inline void check_channels(const Tensor& x, int64_t C, int64_t event_dims, const char* op) {
  GENAI_CHECK(x.defined() && x.dim() == event_dims + 1 && x.size(1) == C, op, ": expected ",
              event_dims == 3 ? "(B, " + std::to_string(C) + ", H, W)" : "(B, " + std::to_string(C) + ")", ", got ",
              x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
}
}  // namespace detail

/// Invertible 1x1 convolution z = W x (per pixel) with a free matrix W (parameter "weight"
/// (C, C), initialized to a random rotation); logdet = H W log |det W| (slogdet through LU in
/// double precision; its gradient is H W W^{-T}). On (B, C) inputs (event_dims 1) it is the
/// invertible linear map z = W x.
class InvConv2d : public FlowLayer {
 public:
  explicit InvConv2d(int64_t channels, int64_t event_dims = 3) : C_(channels), event_dims_(event_dims) {
    GENAI_CHECK(channels > 0, "InvConv2d: channels must be positive, got ", channels);
    GENAI_CHECK(event_dims == 1 || event_dims == 3, "InvConv2d: event_dims must be 1 or 3, got ", event_dims);
    weight = register_parameter("weight", linalg::random_orthogonal(channels));
  }
  std::string type_name() const override { return "InvConv2d"; }
  std::string extra_repr() const override { return std::to_string(C_); }
  FlowOutput forward(const Tensor& x) override {
    detail::check_channels(x, C_, event_dims_, "InvConv2d");
    const double hw = x.dim() == 4 ? static_cast<double>(x.size(2) * x.size(3)) : 1.0;
    return {detail::apply_channel_matrix(x, weight), logdet_like(mul(linalg::slogdet(weight).logabsdet, hw), x)};
  }
  Tensor inverse(const Tensor& z) override {
    detail::check_channels(z, C_, event_dims_, "InvConv2d");
    return detail::apply_channel_matrix(z, linalg::inv(weight));
  }

  Tensor weight;  // (C, C)

 private:
  int64_t C_, event_dims_;
};

/// The LU-parameterized 1x1 convolution of Glow (section 3.2):
///   W = P (L + I) (U + diag(s_sign exp(w_s))),  L = tril(w_l, -1), U = triu(w_u, 1),
/// with P (buffer "w_p") and s_sign (buffer) fixed from the LU decomposition of a random
/// rotation; logdet = H W sum(w_s), O(C) instead of O(C^3). Parameters "w_l", "w_u" (C, C),
/// "w_s" (C) (names of rosinality/glow-pytorch).
class InvConv2dLU : public FlowLayer {
 public:
  explicit InvConv2dLU(int64_t channels, int64_t event_dims = 3) : C_(channels), event_dims_(event_dims) {
    GENAI_CHECK(channels > 0, "InvConv2dLU: channels must be positive, got ", channels);
    GENAI_CHECK(event_dims == 1 || event_dims == 3, "InvConv2dLU: event_dims must be 1 or 3, got ", event_dims);
    linalg::PLU f = linalg::lu(linalg::random_orthogonal(channels, kFloat64));
    std::vector<double> u = f.U.to_vector<double>(), s(static_cast<size_t>(C_)), sign(s.size());
    for (int64_t i = 0; i < C_; ++i) {
      const double d = u[static_cast<size_t>(i * C_ + i)];
      sign[static_cast<size_t>(i)] = d < 0 ? -1.0 : 1.0;
      s[static_cast<size_t>(i)] = std::log(std::abs(d));
    }
    w_p = register_buffer("w_p", f.P.to(kFloat32));
    s_sign = register_buffer("s_sign", from_vector(sign, {C_}, kFloat32));
    w_l = register_parameter("w_l", f.L.to(kFloat32));
    w_s = register_parameter("w_s", from_vector(s, {C_}, kFloat32));
    w_u = register_parameter("w_u", triu(f.U, 1).to(kFloat32));
  }
  std::string type_name() const override { return "InvConv2dLU"; }
  std::string extra_repr() const override { return std::to_string(C_); }

  /// The (C, C) matrix W assembled from the factors (differentiable).
  Tensor weight() const {
    Tensor I = eye(C_, -1, w_l.dtype());
    Tensor L = add(tril(w_l, -1), I);                                       // unit lower triangular
    Tensor U = add(triu(w_u, 1), mul(I, mul(s_sign, exp(w_s))));           // upper, diag s_sign e^w_s
    return mm(w_p, mm(L, U));                                               // P L U
  }
  FlowOutput forward(const Tensor& x) override {
    detail::check_channels(x, C_, event_dims_, "InvConv2dLU");
    const double hw = x.dim() == 4 ? static_cast<double>(x.size(2) * x.size(3)) : 1.0;
    return {detail::apply_channel_matrix(x, weight()), logdet_like(mul(sum(w_s), hw), x)};
  }
  Tensor inverse(const Tensor& z) override {
    detail::check_channels(z, C_, event_dims_, "InvConv2dLU");
    NoGradGuard ng;  // W^{-1} from the assembled W (not differentiated: inverse is for sampling)
    return detail::apply_channel_matrix(z, linalg::inv(weight()));
  }

  Tensor w_p, s_sign;  // buffers: (C, C) permutation, (C) signs of diag(U)
  Tensor w_l, w_u;     // (C, C): strictly lower / strictly upper parts are used
  Tensor w_s;          // (C) log |diag(U)|

 private:
  int64_t C_, event_dims_;
};

// ---- multi-scale pieces ---------------------------------------------------------------------

/// (B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 block becomes 4 channels (channel c*4 + 2i + j
/// holds pixel (2h + i, 2w + j) of channel c), as pixel_unshuffle(x, 2) and Glow's squeeze2d.
class Squeeze : public FlowLayer {
 public:
  std::string type_name() const override { return "Squeeze"; }
  FlowOutput forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
                "Squeeze: expected (B, C, H, W) with even H and W, got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    return {pixel_unshuffle(x, 2), zeros({x.size(0)}, x.dtype())};
  }
  Tensor inverse(const Tensor& z) override { return pixel_shuffle(z, 2); }
  Shape output_shape(const Shape& in) const override {
    GENAI_CHECK(in.size() == 3 && in[1] % 2 == 0 && in[2] % 2 == 0, "Squeeze: cannot squeeze the event shape ",
                shape_str(in), "; hint: H and W must be even");
    return {in[0] * 4, in[1] / 2, in[2] / 2};
  }
};

/// Glow's learned prior: N(mean, exp(logs)^2) per channel, written as the invertible map
/// eps = (x - mean) exp(-logs) onto N(0, I); logdet = -H W sum(logs). Parameters "mean",
/// "logs" (1, C, 1, 1) or (1, C), zero-initialized (the prior starts as N(0, I)).
class LearnedPrior : public FlowLayer {
 public:
  explicit LearnedPrior(int64_t channels, int64_t event_dims = 3) : C_(channels), event_dims_(event_dims) {
    GENAI_CHECK(channels > 0 && (event_dims == 1 || event_dims == 3),
                "LearnedPrior: expected channels > 0 and event_dims 1 or 3");
    Shape ps = event_dims == 3 ? Shape{1, C_, 1, 1} : Shape{1, C_};
    mean = register_parameter("mean", zeros(ps));
    logs = register_parameter("logs", zeros(ps));
  }
  std::string type_name() const override { return "LearnedPrior"; }
  FlowOutput forward(const Tensor& x) override {
    detail::check_channels(x, C_, event_dims_, "LearnedPrior");
    const double hw = x.dim() == 4 ? static_cast<double>(x.size(2) * x.size(3)) : 1.0;
    return {mul(sub(x, mean), exp(neg(logs))), logdet_like(mul(sum(logs), -hw), x)};
  }
  Tensor inverse(const Tensor& z) override {
    detail::check_channels(z, C_, event_dims_, "LearnedPrior");
    return add(mul(z, exp(logs)), mean);
  }

  Tensor mean, logs;

 private:
  int64_t C_, event_dims_;
};

/// Multi-scale factor-out (Dinh et al. 2017, section 3.6): x (B, C, *rest) splits into the
/// kept half (channels [0, C/2)), which goes through the inner flow (child "inner"), and the
/// factored-out half (channels [C/2, C)), which goes straight to the latent. With a learned
/// prior (Glow's split, child "prior": ZeroConv2d or ZeroLinear on the kept half giving mean
/// and log-scale), the factored half is mapped to eps = (x_f - mean) exp(-logs), logdet
/// -sum(logs). The output is flat: z = cat(flatten(eps), flatten(inner z)) (B, D).
class FactorOut : public FlowLayer {
 public:
  /// `in_shape`: the event shape (C, H, W) or (C) this layer receives.
  FactorOut(Shape in_shape, std::shared_ptr<FlowLayer> inner, bool learned_prior = false)
      : in_shape_(std::move(in_shape)) {
    GENAI_CHECK(in_shape_.size() == 1 || in_shape_.size() == 3, "FactorOut: expected an event shape (C) or (C, H, W), got ",
                shape_str(in_shape_));
    GENAI_CHECK(in_shape_[0] >= 2, "FactorOut: needs at least 2 channels, got ", shape_str(in_shape_));
    GENAI_CHECK(inner != nullptr, "FactorOut: the inner flow is null");
    ck_ = in_shape_[0] / 2;
    cf_ = in_shape_[0] - ck_;
    kept_shape_ = in_shape_;
    kept_shape_[0] = ck_;
    if (learned_prior) {
      if (in_shape_.size() == 3)
        prior = register_module("prior", std::static_pointer_cast<nn::UnaryModule>(std::make_shared<ZeroConv2d>(ck_, 2 * cf_)));
      else
        prior = register_module("prior", std::static_pointer_cast<nn::UnaryModule>(std::make_shared<ZeroLinear>(ck_, 2 * cf_)));
    }
    this->inner = register_module("inner", std::move(inner));
    inner_out_ = this->inner->output_shape(kept_shape_);
  }
  std::string type_name() const override { return "FactorOut"; }

  FlowOutput forward(const Tensor& x) override {
    check_event(x, in_shape_, "FactorOut");
    Tensor keep = narrow(x, 1, 0, ck_), f = narrow(x, 1, ck_, cf_);
    Tensor eps = f, ld;
    if (prior) {
      Tensor h = prior->forward(keep);  // (B, 2 cf, ...)
      Tensor m = narrow(h, 1, 0, cf_), ls = narrow(h, 1, cf_, cf_);
      eps = mul(sub(f, m), exp(neg(ls)));  // (x_f - mean) e^-logs
      ld = neg(sum_per_sample(ls));
    }
    FlowOutput o = inner->forward(keep);
    Tensor z = cat({flatten(eps, 1), flatten(o.z, 1)}, 1);  // (B, D)
    return {z, ld.defined() ? add(ld, o.logdet) : o.logdet};
  }
  Tensor inverse(const Tensor& z) override {
    const int64_t D = shape_numel(in_shape_), Df = D / in_shape_[0] * cf_;
    GENAI_CHECK(z.defined() && z.dim() == 2 && z.size(1) == D, "FactorOut::inverse: expected (B, ", D, "), got ",
                z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
    const int64_t B = z.size(0);
    Shape fs{B}, is{B};
    fs.insert(fs.end(), in_shape_.begin(), in_shape_.end());
    fs[1] = cf_;
    is.insert(is.end(), inner_out_.begin(), inner_out_.end());
    Tensor eps = reshape(narrow(z, 1, 0, Df), fs);
    Tensor keep = inner->inverse(reshape(narrow(z, 1, Df, D - Df), is));
    Tensor f = eps;
    if (prior) {
      Tensor h = prior->forward(keep);
      f = add(mul(eps, exp(narrow(h, 1, cf_, cf_))), narrow(h, 1, 0, cf_));  // eps e^logs + mean
    }
    return cat({keep, f}, 1);
  }
  Shape output_shape(const Shape& in) const override {
    GENAI_CHECK(in == in_shape_, "FactorOut: built for the event shape ", shape_str(in_shape_), ", given ",
                shape_str(in));
    return {shape_numel(in)};
  }

  std::shared_ptr<nn::UnaryModule> prior;  // null without a learned prior
  std::shared_ptr<FlowLayer> inner;

 private:
  Shape in_shape_, kept_shape_, inner_out_;
  int64_t ck_ = 0, cf_ = 0;
};

}  // namespace flow
}  // namespace models
}  // namespace genai
