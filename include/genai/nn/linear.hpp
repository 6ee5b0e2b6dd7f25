// genai/nn/linear.hpp: Linear, Identity, Flatten and the activation modules
// (as torch.nn.Linear, Identity, Flatten, ReLU, LeakyReLU, GELU, SiLU, Tanh,
// Sigmoid, ELU, Softplus). Linear's parameters are `weight` (out_features,
// in_features) and `bias` (out_features), initialized as torch does:
// U(-1/sqrt(in_features), 1/sqrt(in_features)) for both.
#pragma once

#include <cmath>
#include <string>

#include "genai/nn/init.hpp"
#include "genai/nn/module.hpp"

namespace genai {
namespace nn {

/// y = x W^T + b, x (*, in_features) -> y (*, out_features).
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : in_features_(in_features), out_features_(out_features) {
    GENAI_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got ", in_features, " -> ",
                out_features);
    weight = register_parameter("weight", empty({out_features, in_features}));
    init::kaiming_uniform_(weight, std::sqrt(5.0));  // = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    if (bias) {
      this->bias = register_parameter("bias", empty({out_features}));
      double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      init::uniform_(this->bias, -bound, bound);
    }
  }
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override {
    return "in_features=" + std::to_string(in_features_) + ", out_features=" + std::to_string(out_features_) +
           ", bias=" + (bias.defined() ? "True" : "False");
  }
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }

  Tensor weight;  // (out_features, in_features)
  Tensor bias;    // (out_features), undefined when bias = false

 private:
  int64_t in_features_, out_features_;
};

class Identity : public UnaryModule {
 public:
  std::string type_name() const override { return "Identity"; }
  Tensor forward(const Tensor& x) override { return x; }
};

/// Flattens dims [start_dim, end_dim] (default: all but the batch dim).
class Flatten : public UnaryModule {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_(start_dim), end_(end_dim) {}
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_);
  }
  Tensor forward(const Tensor& x) override { return flatten(x, start_, end_); }

 private:
  int64_t start_, end_;
};

/// Declares an activation module wrapping a function of one tensor.
#define GENAI_ACTIVATION_MODULE(NAME, EXPR)                         \
  class NAME : public UnaryModule {                                 \
   public:                                                          \
    std::string type_name() const override { return #NAME; }        \
    Tensor forward(const Tensor& x) override { return EXPR; }       \
  };
GENAI_ACTIVATION_MODULE(ReLU, relu(x))
GENAI_ACTIVATION_MODULE(Tanh, tanh(x))
GENAI_ACTIVATION_MODULE(Sigmoid, sigmoid(x))
GENAI_ACTIVATION_MODULE(SiLU, silu(x))
#undef GENAI_ACTIVATION_MODULE

class LeakyReLU : public UnaryModule {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override { return "negative_slope=" + std::to_string(slope_); }
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }

 private:
  double slope_;
};

class GELU : public UnaryModule {
 public:
  explicit GELU(std::string approximate = "none") : approximate_(std::move(approximate)) {}
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override { return "approximate='" + approximate_ + "'"; }
  Tensor forward(const Tensor& x) override { return gelu(x, approximate_); }

 private:
  std::string approximate_;
};

class ELU : public UnaryModule {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  std::string type_name() const override { return "ELU"; }
  Tensor forward(const Tensor& x) override { return elu(x, alpha_); }

 private:
  double alpha_;
};

class Softplus : public UnaryModule {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta_(beta), threshold_(threshold) {}
  std::string type_name() const override { return "Softplus"; }
  Tensor forward(const Tensor& x) override { return softplus(x, beta_, threshold_); }

 private:
  double beta_, threshold_;
};

}  // namespace nn
}  // namespace genai
