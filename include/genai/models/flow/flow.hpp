// genai/models/flow/flow.hpp: normalizing flows: the invertible-layer interface, their
// composition, and a flow with a standard normal base distribution that gives exact
// log-likelihoods, samples (with a temperature) and bits per dimension of 8-bit data.
//
//   auto body = std::make_shared<flow::RealNVP>(flow::RealNVPConfig{});      // any FlowLayer
//   flow::Flow model(body, {784}, std::make_shared<flow::LogitTransform>(0.05));
//   Tensor y = model.dequantize(x, gen);           // x (B, 784) = bytes / 255 -> y in [0, 1)
//   Tensor loss = neg(model.log_prob(y)).mean();    // nats per sample
//   Tensor bpd = model.bits_per_dim(x, gen);        // (B) bits per dimension of the 8-bit data
//   Tensor imgs = model.sample(64, 0.7);            // (64, 784), temperature 0.7
//
// An invertible layer (FlowLayer) maps x (B, *in) to z (B, *out) with forward(x) ->
// {z, logdet}, logdet (B) = log |det dz/dx| per sample, and back with inverse(z). Layers
// compose with FlowSequential (logdets add up). A Flow is
//     x --preprocess--> y --body--> z,   z ~ N(0, I),
//     log p(x) = log N(z; 0, I) + logdet_body + logdet_preprocess        (change of variables)
// with an optional preprocessing layer (LogitTransform: RealNVP's logit of
// alpha + (1 - 2 alpha) x; ScaleShift: Glow's x - 1/2) whose Jacobian is part of log p, so
// log p is the density of the data in its own space.
//
// Dequantization and bits/dim (Theis et al. 2016; Dinh et al. 2017, section 4.1): 8-bit
// data x = k / 255 becomes y = (k + u) / 256 with u ~ U[0, 1)^D, a density on [0, 1]^D;
// then -log2 P(k) <= E_u[-log2 p(y)] + D log2 256 and
//     bits/dim = (-log p(y) + D log 256) / (D log 2).
//
// Sampling draws z ~ N(0, T^2 I) (temperature T, Kingma & Dhariwal 2018) and inverts.
// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP" (2017);
// Kingma & Dhariwal, "Glow" (2018); Papamakarios et al., "Normalizing Flows for
// Probabilistic Modeling and Inference" (2021). PyTorch has no flow library: the layer
// conventions follow the widely used PyTorch ports (chrischute/real-nvp,
// rosinality/glow-pytorch); differences are stated in each layer's comment.
// Not part of genai/genai.hpp: include genai/models/flow/{realnvp,glow}.hpp.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "genai/nn/module.hpp"

namespace genai {
namespace models {
namespace flow {

/// What an invertible layer's forward computes.
struct FlowOutput {
  Tensor z;       // (B, *out)
  Tensor logdet;  // (B) log |det dz/dx| per sample
};

/// An invertible layer: forward(x) -> {z, logdet}, inverse(z) -> x. Shapes are given
/// per sample ("event" shape, without the batch dimension).
class FlowLayer : public nn::Module {
 public:
  /// x (B, *in) -> z (B, *output_shape(in)), logdet (B).
  virtual FlowOutput forward(const Tensor& x) = 0;
  /// z (B, *out) -> x (B, *in); inverse(forward(x).z) == x.
  virtual Tensor inverse(const Tensor& z) = 0;
  /// The event shape of z for an input event shape `in` (default: the same).
  virtual Shape output_shape(const Shape& in) const { return in; }
  FlowOutput operator()(const Tensor& x) { return forward(x); }
};

/// Sums t (B, ...) over every dimension but the first: (B).
inline Tensor sum_per_sample(const Tensor& t) {
  GENAI_CHECK(t.defined() && t.dim() >= 1, "flow: expected a batch (B, ...), got ",
              t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
  if (t.dim() == 1) return t;
  return sum(reshape(t, {t.size(0), -1}), {1});
}

/// A (B) logdet holding the 0-d (or (1)) value v for every sample.
inline Tensor logdet_like(const Tensor& v, const Tensor& x) { return expand(reshape(v, {1}), {x.size(0)}); }

/// log N(z; 0, I) per sample: -(|z|^2 + D log 2 pi) / 2, z (B, ...) -> (B).
inline Tensor standard_normal_log_prob(const Tensor& z) {
  const double D = static_cast<double>(z.numel() / std::max<int64_t>(z.size(0), 1));
  return add(mul(sum_per_sample(square(z)), -0.5), -0.5 * D * std::log(2.0 * 3.14159265358979323846));
}

/// Checks that x is a batch (B, *event) of floating-point values.
inline void check_event(const Tensor& x, const Shape& event, const char* op) {
  GENAI_CHECK(x.defined(), op, ": the input is an undefined tensor");
  bool ok = x.dim() == static_cast<int64_t>(event.size()) + 1 && is_floating(x.dtype());
  for (size_t i = 0; ok && i < event.size(); ++i) ok = x.size(static_cast<int64_t>(i) + 1) == event[i];
  std::string want = "(B";
  for (int64_t e : event) want += ", " + std::to_string(e);
  GENAI_CHECK(ok, op, ": expected a floating-point batch ", want, "), got ",
              dtype_name(x.dtype()), " ", shape_str(x.shape()),
              "; hint: the layer was built for that event shape (reshape the input)");
}

/// Runs its children in order (forward) and in reverse order (inverse); logdets add up.
/// Children are named "0", "1", ... as in torch.nn.Sequential.
class FlowSequential : public FlowLayer {
 public:
  std::string type_name() const override { return "FlowSequential"; }
  template <class L>
  std::shared_ptr<L> push_back(std::shared_ptr<L> layer) {
    register_module(std::to_string(layers_.size()), layer);
    layers_.push_back(std::static_pointer_cast<FlowLayer>(layer));
    return layer;
  }
  FlowOutput forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() >= 1, "FlowSequential: expected a batch (B, ...)");
    Tensor h = x, ld;
    for (auto& l : layers_) {
      FlowOutput o = l->forward(h);
      h = o.z;
      ld = ld.defined() ? add(ld, o.logdet) : o.logdet;
    }
    if (!ld.defined()) ld = zeros({x.size(0)}, x.dtype());
    return {h, ld};
  }
  Tensor inverse(const Tensor& z) override {
    Tensor h = z;
    for (size_t i = layers_.size(); i-- > 0;) h = layers_[i]->inverse(h);
    return h;
  }
  Shape output_shape(const Shape& in) const override {
    Shape s = in;
    for (auto& l : layers_) s = l->output_shape(s);
    return s;
  }
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<FlowLayer>& operator[](size_t i) const { return layers_.at(i); }

 private:
  std::vector<std::shared_ptr<FlowLayer>> layers_;
};

/// RealNVP's logit transform (Dinh et al. 2017, section 4.1) of data in [0, 1]:
///   p = alpha + (1 - 2 alpha) x,   z = log p - log(1 - p),
///   log |dz/dx| = log(1 - 2 alpha) - log p - log(1 - p)   per element.
/// alpha keeps the logit away from +-inf at 0 and 1 (0.05 in RealNVP, 1e-6 in MAF).
class LogitTransform : public FlowLayer {
 public:
  explicit LogitTransform(double alpha = 0.05) : alpha_(alpha) {
    GENAI_CHECK(alpha >= 0 && alpha < 0.5, "LogitTransform: alpha must be in [0, 0.5), got ", alpha);
  }
  std::string type_name() const override { return "LogitTransform"; }
  std::string extra_repr() const override { return "alpha=" + std::to_string(alpha_); }
  double alpha() const { return alpha_; }
  FlowOutput forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() >= 1 && is_floating(x.dtype()),
                "LogitTransform: expected a floating-point batch (B, ...) in [0, 1]");
    Tensor p = add(mul(x, 1.0 - 2.0 * alpha_), alpha_);  // alpha + (1 - 2 alpha) x
    Tensor lp = log(p), lq = log1p(neg(p));               // log p, log(1 - p)
    const double D = static_cast<double>(x.numel() / std::max<int64_t>(x.size(0), 1));
    Tensor ld = add(neg(sum_per_sample(add(lp, lq))), D * std::log(1.0 - 2.0 * alpha_));
    return {sub(lp, lq), ld};
  }
  Tensor inverse(const Tensor& z) override {
    return mul(add(sigmoid(z), -alpha_), 1.0 / (1.0 - 2.0 * alpha_));  // x = (sigmoid(z) - alpha) / (1 - 2 alpha)
  }

 private:
  double alpha_;
};

/// z = scale x + shift (constants); log |det| = D log |scale|. Glow's preprocessing is
/// ScaleShift(1, -0.5): data in [0, 1] centred to [-1/2, 1/2].
class ScaleShift : public FlowLayer {
 public:
  explicit ScaleShift(double scale = 1.0, double shift = -0.5) : scale_(scale), shift_(shift) {
    GENAI_CHECK(scale != 0 && std::isfinite(scale), "ScaleShift: scale must be finite and non-zero, got ", scale);
  }
  std::string type_name() const override { return "ScaleShift"; }
  std::string extra_repr() const override {
    return "scale=" + std::to_string(scale_) + ", shift=" + std::to_string(shift_);
  }
  FlowOutput forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() >= 1, "ScaleShift: expected a batch (B, ...)");
    const double D = static_cast<double>(x.numel() / std::max<int64_t>(x.size(0), 1));
    Tensor z = add(scale_ == 1.0 ? x : mul(x, scale_), shift_);
    return {z, full({x.size(0)}, D * std::log(std::abs(scale_)), x.dtype())};
  }
  Tensor inverse(const Tensor& z) override {
    Tensor x = add(z, -shift_);
    return scale_ == 1.0 ? x : mul(x, 1.0 / scale_);
  }

 private:
  double scale_, shift_;
};

/// A normalizing flow: optional preprocessing, an invertible body and a standard normal
/// base distribution over the body's output. Children: "preprocess" (when given) and
/// "body", so the state dict has the body's parameters under "body.".
class Flow : public nn::Module {
 public:
  /// `event_shape`: the shape of one data sample, e.g. {784} or {1, 28, 28}.
  /// `n_bins`: the number of values of the discrete data (256 for 8-bit images).
  Flow(std::shared_ptr<FlowLayer> body, Shape event_shape, std::shared_ptr<FlowLayer> preprocess = nullptr,
       int64_t n_bins = 256)
      : event_shape_(std::move(event_shape)), n_bins_(n_bins) {
    GENAI_CHECK(body != nullptr, "Flow: the body is null");
    GENAI_CHECK(!event_shape_.empty() && shape_numel(event_shape_) > 0, "Flow: the event shape ",
                shape_str(event_shape_), " must be non-empty");
    GENAI_CHECK(n_bins >= 2, "Flow: n_bins must be >= 2, got ", n_bins);
    if (preprocess) this->preprocess = register_module("preprocess", std::move(preprocess));
    this->body = register_module("body", std::move(body));
    latent_shape_ = this->body->output_shape(event_shape_);
    GENAI_CHECK(shape_numel(latent_shape_) == shape_numel(event_shape_), "Flow: the body maps ",
                shape_str(event_shape_), " to ", shape_str(latent_shape_), ", which has a different size");
  }
  std::string type_name() const override { return "Flow"; }

  const Shape& event_shape() const { return event_shape_; }
  const Shape& latent_shape() const { return latent_shape_; }
  /// D: values per sample.
  int64_t event_numel() const { return shape_numel(event_shape_); }
  int64_t n_bins() const { return n_bins_; }

  /// x (B, *event) -> z (B, *latent) and the total logdet (B), preprocessing included.
  FlowOutput forward(const Tensor& x) {
    check_event(x, event_shape_, "Flow::forward");
    if (!preprocess) return body->forward(x);
    FlowOutput a = preprocess->forward(x);
    FlowOutput b = body->forward(a.z);
    return {b.z, add(a.logdet, b.logdet)};
  }
  /// z (B, *latent) -> x (B, *event).
  Tensor inverse(const Tensor& z) {
    check_event(z, latent_shape_, "Flow::inverse");
    Tensor y = body->inverse(z);
    return preprocess ? preprocess->inverse(y) : y;
  }

  /// log p(x) per sample (B), in nats, for x (B, *event) in data space.
  Tensor log_prob(const Tensor& x) {
    FlowOutput o = forward(x);
    return add(standard_normal_log_prob(o.z), o.logdet);
  }
  /// The training loss: mean over the batch of -log p(x) (nats per sample).
  Tensor nll(const Tensor& x) { return neg(mean(log_prob(x))); }

  /// z = temperature * eps, inverted to data space: eps (n, *latent) standard normal.
  Tensor sample_from(const Tensor& eps, double temperature = 1.0) {
    NoGradGuard ng;
    return inverse(temperature == 1.0 ? eps : mul(eps, temperature));
  }
  /// n samples (n, *event) at the given temperature (not recorded).
  Tensor sample(int64_t n, double temperature = 1.0, Generator& gen = default_generator()) {
    GENAI_CHECK(n >= 1, "Flow::sample: n must be positive, got ", n);
    GENAI_CHECK(temperature >= 0, "Flow::sample: the temperature must be >= 0, got ", temperature);
    Shape s{n};
    s.insert(s.end(), latent_shape_.begin(), latent_shape_.end());
    return sample_from(randn(s, param_dtype(), gen), temperature);
  }

  /// Uniform dequantization of discrete data x = k / (n_bins - 1) (as ToTensor gives):
  /// y = (k + u) / n_bins with the noise u (shaped as x) in [0, 1). Not recorded.
  Tensor dequantize(const Tensor& x, const Tensor& u) const {
    GENAI_CHECK(x.defined() && u.defined() && x.shape() == u.shape(), "Flow::dequantize: the noise ",
                u.defined() ? shape_str(u.shape()) : std::string("(undefined)"), " must have the data's shape ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    NoGradGuard ng;
    const double nb = static_cast<double>(n_bins_);
    return mul(add(mul(x.detach(), nb - 1.0), u), 1.0 / nb);
  }
  Tensor dequantize(const Tensor& x, Generator& gen = default_generator()) const {
    GENAI_CHECK(x.defined(), "Flow::dequantize: the data is an undefined tensor");
    return dequantize(x, rand(x.shape(), x.dtype(), gen));
  }

  /// Bits per dimension of discrete data x (B, *event) with dequantization noise u:
  /// (-log p(y) + D log n_bins) / (D log 2), y = dequantize(x, u); (B).
  Tensor bits_per_dim(const Tensor& x, const Tensor& u) { return nll_to_bits_per_dim(neg(log_prob(dequantize(x, u)))); }
  Tensor bits_per_dim(const Tensor& x, Generator& gen = default_generator()) {
    GENAI_CHECK(x.defined(), "Flow::bits_per_dim: the data is an undefined tensor");
    return bits_per_dim(x, rand(x.shape(), x.dtype(), gen));
  }
  /// Converts -log p(y) in nats (of dequantized data) to bits per dimension of the discrete data.
  Tensor nll_to_bits_per_dim(const Tensor& nll_nats) const {
    const double D = static_cast<double>(event_numel());
    return mul(add(nll_nats, D * std::log(static_cast<double>(n_bins_))), 1.0 / (D * std::log(2.0)));
  }
  double nll_to_bits_per_dim(double nll_nats) const {
    const double D = static_cast<double>(event_numel());
    return (nll_nats + D * std::log(static_cast<double>(n_bins_))) / (D * std::log(2.0));
  }

  std::shared_ptr<FlowLayer> preprocess;  // may be null
  std::shared_ptr<FlowLayer> body;

 private:
  Dtype param_dtype() const {
    auto ps = parameters();
    return ps.empty() ? kFloat32 : ps[0].dtype();
  }
  Shape event_shape_, latent_shape_;
  int64_t n_bins_;
};

}  // namespace flow
}  // namespace models
}  // namespace genai
