// genai/models/vae/vae.hpp: variational autoencoders (Kingma & Welling, "Auto-Encoding
// Variational Bayes", 2014): the MLP VAE of pytorch/examples (vae/main.py) and a
// convolutional VAE for small images, with the ELBO, sampling, reconstruction, latent
// interpolation and the importance-weighted log-likelihood estimate (Burda, Grosse &
// Salakhutdinov, "Importance Weighted Autoencoders", 2016) used for evaluation.
//
//   models::VAE vae;                                     // 784 -> 400 -> 20 (x2) -> 400 -> 784
//   models::VAEOutput out = vae.forward(x);              // x (B, 1, 28, 28) in [0, 1]
//   models::VAELosses l = vae.loss(x, out);              // l.loss = mean over the batch of recon + beta KL
//   l.loss.backward();
//   Tensor imgs = vae.sample(64, gen);                   // (64, 784) Bernoulli means
//   Tensor ll = vae.iwae_log_likelihood(x, 100, gen);    // (B) estimates of log p(x), nats
//
// Model. The encoder maps x to the Gaussian posterior q(z|x) = N(mu, diag(exp(logvar)));
// z = mu + exp(logvar / 2) eps with eps ~ N(0, I) (the reparameterization trick); the
// decoder maps z to the parameters of p(x|z): Bernoulli logits (default; the loss is
// BCE-with-logits, as pytorch/examples' BCE on sigmoid outputs but stable) or the mean
// of a Gaussian N(mean, sigma^2 I) with a fixed sigma. The prior is N(0, I).
//
// ELBO. Per sample, -ELBO = -log p(x|z) + KL(q(z|x) || p(z)), summed over pixels and
// latent dimensions; the loss is recon + beta KL (beta-VAE, Higgins et al. 2017; beta = 1
// is the ELBO). reduction "batchmean" (default) averages it over the batch (nats per
// image), "sum" is pytorch/examples' sum over the batch, "none" keeps one value per sample.
// The Gaussian -log p(x|z) includes its constant 0.5 D log(2 pi sigma^2), so the IWAE
// estimate is a log-density.
//
// Noise is an argument: forward(x, eps) and iwae_log_likelihood(x, eps) take the
// standard normal draws explicitly (so tests can replay PyTorch's); the overloads
// with a Generator draw them.
//
// Parameter names are those of the PyTorch modules in tests/fixtures/make_vae_fixtures.py
// (VAE: fc1, fc21 (mu), fc22 (logvar), fc3, fc4, as pytorch/examples; ConvVAE: encoder.*,
// fc_mu, fc_logvar, decoder.*), so PyTorch state dicts load with load_state_dict.
// Differences from pytorch/examples: the decoder returns logits (the example returns
// sigmoid probabilities and uses F.binary_cross_entropy, which clamps log(0) at -100).
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <utility>

#include "genai/nn/conv.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/ops/loss.hpp"

namespace genai {
namespace models {

/// The decoder's distribution p(x|z).
enum class VAELikelihood {
  Bernoulli,  // decoder output = logits; -log p = BCE-with-logits (x in [0, 1])
  Gaussian,   // decoder output = mean; -log p = (x - mean)^2 / (2 sigma^2) + log(2 pi sigma^2) / 2
};

/// "bernoulli" (or "bce") / "gaussian" (or "normal").
inline VAELikelihood parse_vae_likelihood(std::string_view s) {
  if (s == "bernoulli" || s == "bce") return VAELikelihood::Bernoulli;
  if (s == "gaussian" || s == "normal") return VAELikelihood::Gaussian;
  GENAI_FAIL("parse_vae_likelihood: unknown likelihood '", s, "'; expected 'bernoulli' or 'gaussian'");
}

/// The posterior q(z|x) = N(mu, diag(exp(logvar))).
struct VAEPosterior {
  Tensor mu;      // (B, L)
  Tensor logvar;  // (B, L)
};

/// What forward() computes.
struct VAEOutput {
  Tensor logits;  // (B, *out) decoder output: Bernoulli logits, or the Gaussian mean
  Tensor mu;      // (B, L)
  Tensor logvar;  // (B, L)
  Tensor z;       // (B, L) the reparameterized sample
};

/// The terms of the negative ELBO, reduced as asked ("batchmean": scalars; "none": (B)).
struct VAELosses {
  Tensor loss;   // recon + beta kl
  Tensor recon;  // -log p(x|z)
  Tensor kl;     // KL(q(z|x) || N(0, I))
};

/// The shared part of every VAE: reparameterization, ELBO, sampling, reconstruction,
/// interpolation, IWAE. Subclasses define encode and decode and register the layers.
class VAEBase : public nn::Module {
 public:
  VAEBase(int64_t latent_dim, VAELikelihood likelihood, double beta, double sigma)
      : likelihood(likelihood), beta(beta), sigma(sigma), latent_dim_(latent_dim) {
    GENAI_CHECK(latent_dim > 0, "VAE: latent_dim must be positive, got ", latent_dim);
    GENAI_CHECK(sigma > 0, "VAE: the Gaussian likelihood's sigma must be positive, got ", sigma);
  }

  /// q(z|x): x (B, ...) -> mu, logvar (B, L).
  virtual VAEPosterior encode(const Tensor& x) = 0;
  /// The decoder's output for z (B, L): (B, *out) logits (Bernoulli) or means (Gaussian).
  virtual Tensor decode(const Tensor& z) = 0;

  int64_t latent_dim() const { return latent_dim_; }

  /// z = mu + exp(logvar / 2) eps; eps (B, L) standard normal.
  static Tensor reparameterize(const Tensor& mu, const Tensor& logvar, const Tensor& eps) {
    GENAI_CHECK(eps.defined() && eps.shape() == mu.shape(), "VAE::reparameterize: eps of shape ",
                eps.defined() ? shape_str(eps.shape()) : std::string("(undefined)"), " must have mu's shape ",
                shape_str(mu.shape()));
    return add(mu, mul(eps, exp(mul(logvar, 0.5))));  // mu + eps * std
  }

  /// Encodes, reparameterizes with the given noise eps (B, L) and decodes.
  VAEOutput forward(const Tensor& x, const Tensor& eps) {
    VAEPosterior q = encode(x);
    Tensor z = reparameterize(q.mu, q.logvar, eps);
    return {decode(z), q.mu, q.logvar, z};
  }
  /// As forward(x, eps), with eps drawn from `gen` (the global generator by default).
  VAEOutput forward(const Tensor& x, Generator& gen = default_generator()) {
    VAEPosterior q = encode(x);
    Tensor z = reparameterize(q.mu, q.logvar, randn(q.mu.shape(), q.mu.dtype(), gen));
    return {decode(z), q.mu, q.logvar, z};
  }
  VAEOutput operator()(const Tensor& x, Generator& gen = default_generator()) { return forward(x, gen); }

  /// -log p(x|z) per sample (B): decoder output `out` (B, *out) against x (numel of out).
  Tensor reconstruction_nll(const Tensor& out, const Tensor& x) const {
    GENAI_CHECK(x.defined() && out.defined() && x.numel() == out.numel(), "VAE: the input of shape ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"), " does not match the decoder output ",
                out.defined() ? shape_str(out.shape()) : std::string("(undefined)"),
                "; hint: the input must have the model's input size per sample");
    Tensor t = reshape(x, out.shape());
    Tensor l;  // (B, *out) elementwise -log p
    if (likelihood == VAELikelihood::Bernoulli) {
      l = binary_cross_entropy_with_logits(out, t, Tensor(), Tensor(), "none");
    } else {
      const double c = 0.5 * std::log(2.0 * 3.14159265358979323846 * sigma * sigma);
      l = add(mul(square(sub(t, out)), 0.5 / (sigma * sigma)), c);
    }
    return sum(reshape(l, {l.size(0), -1}), {1});
  }

  /// The negative ELBO of x given forward's output: recon + beta KL, with reduction
  /// "batchmean" (mean over the batch of the per-sample sums), "sum" or "none".
  VAELosses loss(const Tensor& x, const VAEOutput& out, std::string_view reduction = "batchmean") const {
    Tensor recon = reconstruction_nll(out.logits, x);       // (B)
    Tensor kl = sum(gaussian_kl(out.mu, out.logvar, "none"), {1});  // (B)
    if (reduction == "batchmean") {
      recon = mean(recon);
      kl = mean(kl);
    } else if (reduction == "sum") {
      recon = sum(recon);
      kl = sum(kl);
    } else {
      GENAI_CHECK(reduction == "none", "VAE::loss: reduction must be 'batchmean', 'sum' or 'none', got '", reduction,
                  "'");
    }
    return {beta == 1.0 ? add(recon, kl) : add(recon, mul(kl, beta)), recon, kl};
  }

  /// The mean of p(x|z) for z (B, L): sigmoid(logits) (Bernoulli) or the Gaussian mean.
  Tensor decode_mean(const Tensor& z) {
    Tensor out = decode(z);
    return likelihood == VAELikelihood::Bernoulli ? sigmoid(out) : out;
  }

  /// n samples from the model: z ~ N(0, I), decoded to the mean of p(x|z) (n, *out).
  Tensor sample(int64_t n, Generator& gen = default_generator()) {
    GENAI_CHECK(n >= 0, "VAE::sample: n must be non-negative, got ", n);
    return decode_mean(randn({n, latent_dim_}, param_dtype(), gen));
  }

  /// Deterministic reconstruction: decode the posterior mean; shaped as x.
  Tensor reconstruct(const Tensor& x) {
    Tensor m = decode_mean(encode(x).mu);
    return m.numel() == x.numel() ? reshape(m, x.shape()) : m;
  }

  /// Linear interpolation between the posterior means of x_a[i] and x_b[i] (both (P, ...)),
  /// `steps` points from x_a (t = 0) to x_b (t = 1) inclusive, decoded to means:
  /// (P * steps, *out), pair-major (make_grid with nrow = steps gives one row per pair).
  Tensor interpolate(const Tensor& x_a, const Tensor& x_b, int64_t steps) {
    GENAI_CHECK(steps >= 2, "VAE::interpolate: steps must be >= 2, got ", steps);
    GENAI_CHECK(x_a.defined() && x_b.defined() && x_a.shape() == x_b.shape(), "VAE::interpolate: x_a ",
                x_a.defined() ? shape_str(x_a.shape()) : std::string("(undefined)"), " and x_b ",
                x_b.defined() ? shape_str(x_b.shape()) : std::string("(undefined)"), " must have the same shape");
    Tensor ma = encode(x_a).mu, mb = encode(x_b).mu;  // (P, L)
    const int64_t P = ma.size(0);
    Tensor t = reshape(linspace(0.0, 1.0, steps, ma.dtype()), {1, steps, 1});  // (1, S, 1)
    Tensor z = add(mul(unsqueeze(ma, 1), sub(ones_like(t), t)), mul(unsqueeze(mb, 1), t));  // (P, S, L)
    return decode_mean(reshape(z, {P * steps, latent_dim_}));
  }

  /// Importance-weighted estimate of log p(x) per sample (B) with K = eps.size(0) samples
  /// from q(z|x), eps (K, B, L) standard normal:
  ///   log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)   (a lower bound, tight as K grows).
  /// K = 1 is the ELBO. The K B decodes run as one batch: split x for large K B.
  Tensor iwae_log_likelihood(const Tensor& x, const Tensor& eps) {
    GENAI_CHECK(eps.defined() && eps.dim() == 3 && eps.size(0) >= 1 && eps.size(2) == latent_dim_,
                "VAE::iwae_log_likelihood: eps must be (K, B, ", latent_dim_, ") with K >= 1, got ",
                eps.defined() ? shape_str(eps.shape()) : std::string("(undefined)"));
    const int64_t K = eps.size(0), B = eps.size(1), L = latent_dim_;
    GENAI_CHECK(x.defined() && x.dim() >= 1 && x.size(0) == B, "VAE::iwae_log_likelihood: x of shape ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"), " must have batch size ", B,
                " (eps.size(1))");
    VAEPosterior q = encode(x);                                                   // (B, L)
    Tensor z = add(unsqueeze(q.mu, 0), mul(eps, unsqueeze(exp(mul(q.logvar, 0.5)), 0)));  // (K, B, L)
    Tensor out = decode(reshape(z, {K * B, L}));                                  // (K B, *out)
    const int64_t D = x.numel() / B;
    Tensor xk = reshape(expand(reshape(x, {1, B, D}), {K, B, D}), out.shape());
    Tensor log_px = neg(reshape(reconstruction_nll(out, xk), {K, B}));           // log p(x|z_k)
    // log p(z) - log q(z|x) = -z^2/2 + (eps^2 + logvar)/2 summed over L (the log 2 pi terms cancel)
    Tensor log_ratio = mul(sub(add(square(eps), unsqueeze(q.logvar, 0)), square(z)), 0.5);
    Tensor log_w = add(log_px, sum(log_ratio, {2}));                              // (K, B)
    return add(logsumexp(log_w, {0}), -std::log(static_cast<double>(K)));
  }
  /// As above with K samples drawn from `gen`.
  Tensor iwae_log_likelihood(const Tensor& x, int64_t K, Generator& gen = default_generator()) {
    GENAI_CHECK(K >= 1, "VAE::iwae_log_likelihood: K must be >= 1, got ", K);
    GENAI_CHECK(x.defined() && x.dim() >= 1, "VAE::iwae_log_likelihood: x must be a batch (B, ...)");
    return iwae_log_likelihood(x, randn({K, x.size(0), latent_dim_}, param_dtype(), gen));
  }

  VAELikelihood likelihood;  // p(x|z)
  double beta;               // weight of the KL term (1: the ELBO)
  double sigma;              // standard deviation of the Gaussian likelihood

 protected:
  Dtype param_dtype() const {
    auto ps = parameters();
    return ps.empty() ? kFloat32 : ps[0].dtype();
  }

 private:
  int64_t latent_dim_;
};

/// The MLP VAE's sizes and loss settings (defaults: pytorch/examples' VAE, the `vae`
/// reference configuration).
struct VAEConfig {
  int64_t input_dim = 784;   // D: values per sample (1 x 28 x 28)
  int64_t hidden_dim = 400;  // H
  int64_t latent_dim = 20;   // L
  VAELikelihood likelihood = VAELikelihood::Bernoulli;
  double beta = 1.0;   // KL weight
  double sigma = 1.0;  // Gaussian likelihood's standard deviation
};

/// MLP VAE: enc D -> H ReLU -> (mu, logvar) L each; dec L -> H ReLU -> D.
/// x may be (B, D) or any (B, ...) with D values per sample; decode gives (B, D).
class VAE : public VAEBase {
 public:
  explicit VAE(const VAEConfig& c = {}) : VAEBase(c.latent_dim, c.likelihood, c.beta, c.sigma), cfg_(c) {
    GENAI_CHECK(c.input_dim > 0 && c.hidden_dim > 0, "VAE: sizes must be positive, got input_dim ", c.input_dim,
                ", hidden_dim ", c.hidden_dim);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(c.input_dim, c.hidden_dim));
    fc21 = register_module("fc21", std::make_shared<nn::Linear>(c.hidden_dim, c.latent_dim));
    fc22 = register_module("fc22", std::make_shared<nn::Linear>(c.hidden_dim, c.latent_dim));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(c.latent_dim, c.hidden_dim));
    fc4 = register_module("fc4", std::make_shared<nn::Linear>(c.hidden_dim, c.input_dim));
  }
  std::string type_name() const override { return "VAE"; }
  std::string extra_repr() const override {
    return "input_dim=" + std::to_string(cfg_.input_dim) + ", hidden_dim=" + std::to_string(cfg_.hidden_dim) +
           ", latent_dim=" + std::to_string(cfg_.latent_dim);
  }
  const VAEConfig& config() const { return cfg_; }

  VAEPosterior encode(const Tensor& x) override {
    GENAI_CHECK(x.defined() && x.dim() >= 1 && x.size(0) > 0 && x.numel() == x.size(0) * cfg_.input_dim,
                "VAE::encode: expected (B, ...) with ", cfg_.input_dim, " values per sample, got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    Tensor h = relu(fc1->forward(reshape(x, {x.size(0), cfg_.input_dim})));  // (B, H)
    return {fc21->forward(h), fc22->forward(h)};
  }
  Tensor decode(const Tensor& z) override {
    GENAI_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.latent_dim, "VAE::decode: expected z (B, ",
                cfg_.latent_dim, "), got ", z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
    return fc4->forward(relu(fc3->forward(z)));  // (B, D)
  }

  std::shared_ptr<nn::Linear> fc1, fc21, fc22, fc3, fc4;

 private:
  VAEConfig cfg_;
};

/// The convolutional VAE's sizes and loss settings.
struct ConvVAEConfig {
  int64_t in_channels = 1;   // C
  int64_t image_size = 28;   // S (divisible by 4)
  int64_t channels = 32;     // c: the encoder has c and 2c channels
  int64_t hidden_dim = 256;  // H
  int64_t latent_dim = 20;   // L
  VAELikelihood likelihood = VAELikelihood::Bernoulli;
  double beta = 1.0;
  double sigma = 1.0;
};

namespace detail {
/// (B, prod(shape)) -> (B, *shape), as torch.nn.Unflatten(1, shape).
class Unflatten : public nn::UnaryModule {
 public:
  explicit Unflatten(Shape shape) : shape_(std::move(shape)) {}
  std::string type_name() const override { return "Unflatten"; }
  Tensor forward(const Tensor& x) override {
    Shape s{x.size(0)};
    s.insert(s.end(), shape_.begin(), shape_.end());
    return reshape(x, s);
  }

 private:
  Shape shape_;
};
}  // namespace detail

/// Convolutional VAE for (B, C, S, S) images:
///   encoder: Conv(C, c, 4, 2, 1) ReLU Conv(c, 2c, 4, 2, 1) ReLU Flatten Linear(2c (S/4)^2, H) ReLU
///   fc_mu, fc_logvar: Linear(H, L)
///   decoder: Linear(L, H) ReLU Linear(H, 2c (S/4)^2) ReLU Unflatten ConvT(2c, c, 4, 2, 1) ReLU
///            ConvT(c, C, 4, 2, 1)   -> (B, C, S, S) logits or means
class ConvVAE : public VAEBase {
 public:
  explicit ConvVAE(const ConvVAEConfig& c = {})
      : VAEBase(c.latent_dim, c.likelihood, c.beta, c.sigma), cfg_(c) {
    GENAI_CHECK(c.image_size > 0 && c.image_size % 4 == 0, "ConvVAE: image_size must be a positive multiple of 4, got ",
                c.image_size);
    GENAI_CHECK(c.in_channels > 0 && c.channels > 0 && c.hidden_dim > 0, "ConvVAE: sizes must be positive");
    const int64_t s = c.image_size / 4, flat = 2 * c.channels * s * s;
    encoder = register_module("encoder", std::make_shared<nn::Sequential>());
    encoder->push_back(std::make_shared<nn::Conv2d>(c.in_channels, c.channels, 4, 2, 1));
    encoder->push_back(std::make_shared<nn::ReLU>());
    encoder->push_back(std::make_shared<nn::Conv2d>(c.channels, 2 * c.channels, 4, 2, 1));
    encoder->push_back(std::make_shared<nn::ReLU>());
    encoder->push_back(std::make_shared<nn::Flatten>());
    encoder->push_back(std::make_shared<nn::Linear>(flat, c.hidden_dim));
    encoder->push_back(std::make_shared<nn::ReLU>());
    fc_mu = register_module("fc_mu", std::make_shared<nn::Linear>(c.hidden_dim, c.latent_dim));
    fc_logvar = register_module("fc_logvar", std::make_shared<nn::Linear>(c.hidden_dim, c.latent_dim));
    decoder = register_module("decoder", std::make_shared<nn::Sequential>());
    decoder->push_back(std::make_shared<nn::Linear>(c.latent_dim, c.hidden_dim));
    decoder->push_back(std::make_shared<nn::ReLU>());
    decoder->push_back(std::make_shared<nn::Linear>(c.hidden_dim, flat));
    decoder->push_back(std::make_shared<nn::ReLU>());
    decoder->push_back(std::make_shared<detail::Unflatten>(Shape{2 * c.channels, s, s}));
    decoder->push_back(std::make_shared<nn::ConvTranspose2d>(2 * c.channels, c.channels, 4, 2, 1));
    decoder->push_back(std::make_shared<nn::ReLU>());
    decoder->push_back(std::make_shared<nn::ConvTranspose2d>(c.channels, c.in_channels, 4, 2, 1));
  }
  std::string type_name() const override { return "ConvVAE"; }
  const ConvVAEConfig& config() const { return cfg_; }

  VAEPosterior encode(const Tensor& x) override {
    const int64_t per = cfg_.in_channels * cfg_.image_size * cfg_.image_size;
    GENAI_CHECK(x.defined() && x.dim() >= 1 && x.size(0) > 0 && x.numel() == x.size(0) * per,
                "ConvVAE::encode: expected (B, ", cfg_.in_channels, ", ", cfg_.image_size, ", ", cfg_.image_size,
                "), got ", x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    Tensor h = encoder->forward(reshape(x, {x.size(0), cfg_.in_channels, cfg_.image_size, cfg_.image_size}));  // (B, H)
    return {fc_mu->forward(h), fc_logvar->forward(h)};
  }
  Tensor decode(const Tensor& z) override {
    GENAI_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.latent_dim, "ConvVAE::decode: expected z (B, ",
                cfg_.latent_dim, "), got ", z.defined() ? shape_str(z.shape()) : std::string("(undefined)"));
    return decoder->forward(z);  // (B, C, S, S)
  }

  std::shared_ptr<nn::Sequential> encoder, decoder;
  std::shared_ptr<nn::Linear> fc_mu, fc_logvar;

 private:
  ConvVAEConfig cfg_;
};

}  // namespace models
}  // namespace genai
