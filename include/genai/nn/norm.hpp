// genai/nn/norm.hpp: BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d, RMSNorm,
// Embedding and Dropout modules (as their torch.nn namesakes, with the same
// parameter and buffer names: weight, bias, running_mean, running_var,
// num_batches_tracked). Affine weights start at 1 and biases at 0; an Embedding
// starts N(0, 1) with the padding row zeroed.
#pragma once

#include <optional>
#include <string>

#include "genai/nn/init.hpp"
#include "genai/nn/module.hpp"
#include "genai/ops/embedding.hpp"
#include "genai/ops/norm.hpp"

namespace genai {
namespace nn {

/// Batch normalization over (N, C) or (N, C, L) (BatchNorm1d) and (N, C, H, W) (BatchNorm2d):
/// batch statistics in training (and a running average of them), running statistics in eval.
class BatchNorm : public UnaryModule {
 public:
  BatchNorm(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
            bool track_running_stats = true, std::string type = "BatchNorm2d")
      : n_(num_features), eps_(eps), momentum_(momentum), type_(std::move(type)) {
    if (affine) {
      weight = register_parameter("weight", ones({num_features}));
      bias = register_parameter("bias", zeros({num_features}));
    }
    if (track_running_stats) {
      running_mean = register_buffer("running_mean", zeros({num_features}));
      running_var = register_buffer("running_var", ones({num_features}));
      num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
    }
  }
  std::string type_name() const override { return type_; }
  std::string extra_repr() const override {
    return std::to_string(n_) + ", eps=" + std::to_string(eps_) + ", momentum=" + std::to_string(momentum_);
  }
  Tensor forward(const Tensor& x) override {
    const bool use_batch = is_training() || !running_mean.defined();
    if (is_training() && num_batches_tracked.defined()) {
      NoGradGuard ng;
      num_batches_tracked += 1.0;
    }
    if (is_training() && sync_sum) return synced_forward(x);
    return batch_norm(x, use_batch && !is_training() ? Tensor() : running_mean,
                      use_batch && !is_training() ? Tensor() : running_var, weight, bias, use_batch, momentum_, eps_);
  }

  Tensor weight, bias;                                   // (C) when affine
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), () when tracked

  /// Synchronized batch norm (torch.nn.SyncBatchNorm): when set, training-mode statistics
  /// are those of the global batch, all processes' batches together. `sync_sum(t)` must
  /// return the elementwise sum of t over the processes, differentiably (its backward
  /// sums the gradients the same way); genai::distributed::convert_sync_batchnorm sets it.
  Tensor (*sync_sum)(const Tensor&) = nullptr;

 private:
  /// Two-pass statistics over the global batch: mean = sum(x) / n, var = sum((x - mean)^2) / n.
  Tensor synced_forward(const Tensor& x) {
    GENAI_CHECK(x.dim() >= 2 && x.size(1) == n_, type_, " (synchronized): expected input (N, ", n_,
                ", ...), got ", shape_str(x.shape()));
    std::vector<int64_t> dims{0};
    Shape bshape(static_cast<size_t>(x.dim()), 1);  // (1, C, 1, ...)
    bshape[1] = n_;
    for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
    Tensor count = full({1}, static_cast<double>(x.numel() / n_), x.dtype());
    Tensor sums = sync_sum(cat({sum(x, dims), count}));                                 // (C + 1)
    const double n = sums.narrow(0, n_, 1).detach().item<double>();                      // global count
    GENAI_CHECK(n > 1, type_, " (synchronized): expected more than 1 value per channel over all processes");
    Tensor mean = mul(sums.narrow(0, 0, n_), 1.0 / n);                                   // (C)
    Tensor xc = sub(x, view(mean, bshape));                                               // x - mean
    Tensor var = mul(sync_sum(sum(square(xc), dims)), 1.0 / n);                          // (C), biased
    Tensor y = mul(xc, view(rsqrt(add(var, eps_)), bshape));
    if (weight.defined()) y = add(mul(y, view(weight, bshape)), view(bias, bshape));
    if (running_mean.defined()) {  // as torch: the running variance is the unbiased one
      NoGradGuard ng;
      running_mean.mul_(1.0 - momentum_).add_(mul(mean.detach(), momentum_));
      running_var.mul_(1.0 - momentum_).add_(mul(var.detach(), momentum_ * n / (n - 1)));
    }
    return y;
  }

  int64_t n_;
  double eps_, momentum_;
  std::string type_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats, "BatchNorm1d") {}
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true)
      : BatchNorm(num_features, eps, momentum, affine, track_running_stats, "BatchNorm2d") {}
};

/// Layer normalization over the trailing normalized_shape dims.
class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, bool bias = true)
      : shape_(std::move(normalized_shape)), eps_(eps) {
    if (elementwise_affine) {
      weight = register_parameter("weight", ones(shape_));
      if (bias) this->bias = register_parameter("bias", zeros(shape_));
    }
  }
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override { return shape_str(shape_) + ", eps=" + std::to_string(eps_); }
  Tensor forward(const Tensor& x) override { return layer_norm(x, shape_, weight, bias, eps_); }

  Tensor weight, bias;  // normalized_shape

 private:
  Shape shape_;
  double eps_;
};

/// Root-mean-square normalization (T5, torch 2.x nn.RMSNorm): x / sqrt(mean(x^2) + eps) * weight.
class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt, bool elementwise_affine = true)
      : shape_(std::move(normalized_shape)), eps_(eps) {
    if (elementwise_affine) weight = register_parameter("weight", ones(shape_));
  }
  std::string type_name() const override { return "RMSNorm"; }
  Tensor forward(const Tensor& x) override { return rms_norm(x, shape_, weight, eps_); }

  Tensor weight;  // normalized_shape

 private:
  Shape shape_;
  std::optional<double> eps_;
};

/// Group normalization: channels split into num_groups groups, x (N, C, *).
class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true)
      : groups_(num_groups), channels_(num_channels), eps_(eps) {
    GENAI_CHECK(num_groups > 0 && num_channels % num_groups == 0, "GroupNorm: num_groups (", num_groups,
                ") must divide num_channels (", num_channels, ")");
    if (affine) {
      weight = register_parameter("weight", ones({num_channels}));
      bias = register_parameter("bias", zeros({num_channels}));
    }
  }
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override {
    return std::to_string(groups_) + ", " + std::to_string(channels_) + ", eps=" + std::to_string(eps_);
  }
  Tensor forward(const Tensor& x) override { return group_norm(x, groups_, weight, bias, eps_); }

  Tensor weight, bias;  // (C)

 private:
  int64_t groups_, channels_;
  double eps_;
};

/// Instance normalization of (N, C, H, W) (no affine and no running stats by default, as torch).
class InstanceNorm2d : public UnaryModule {
 public:
  explicit InstanceNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = false,
                          bool track_running_stats = false)
      : eps_(eps), momentum_(momentum) {
    if (affine) {
      weight = register_parameter("weight", ones({num_features}));
      bias = register_parameter("bias", zeros({num_features}));
    }
    if (track_running_stats) {
      running_mean = register_buffer("running_mean", zeros({num_features}));
      running_var = register_buffer("running_var", ones({num_features}));
      num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
    }
  }
  std::string type_name() const override { return "InstanceNorm2d"; }
  Tensor forward(const Tensor& x) override {
    const bool use_input_stats = is_training() || !running_mean.defined();
    return instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum_, eps_);
  }

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  double eps_, momentum_;
};

/// A lookup table: indices (*) int64 -> (*, embedding_dim).
class Embedding : public Module {
 public:
  /// padding_idx: a row whose gradient is always zero (negative counts from the end, as torch).
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt)
      : num_(num_embeddings), dim_(embedding_dim) {
    if (padding_idx) {
      GENAI_CHECK(*padding_idx >= -num_embeddings && *padding_idx < num_embeddings, "Embedding: padding_idx ",
                  *padding_idx, " is out of range for ", num_embeddings, " embeddings");
      padding_idx_ = *padding_idx < 0 ? *padding_idx + num_embeddings : *padding_idx;
    }
    weight = register_parameter("weight", empty({num_embeddings, embedding_dim}));
    init::normal_(weight);
    if (padding_idx_ >= 0) {
      NoGradGuard ng;
      weight[padding_idx_].zero_();
    }
  }
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override { return std::to_string(num_) + ", " + std::to_string(dim_); }
  Tensor forward(const Tensor& indices) { return embedding(indices, weight, padding_idx_); }
  Tensor operator()(const Tensor& indices) { return forward(indices); }

  Tensor weight;  // (num_embeddings, embedding_dim)

 private:
  int64_t num_, dim_, padding_idx_ = -1;  // -1: none
};

/// Inverted dropout: zeroes elements with probability p in training, identity in eval.
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5) : p_(p) {
    GENAI_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
  }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override { return "p=" + std::to_string(p_); }
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training()); }

 private:
  double p_;
};

}  // namespace nn
}  // namespace genai
