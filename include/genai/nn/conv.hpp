// genai/nn/conv.hpp: Conv2d, ConvTranspose2d and the pooling / upsampling modules
// (as torch.nn.Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
// Upsample, PixelShuffle). Parameters `weight` and `bias`, initialized as torch:
// kaiming_uniform(a = sqrt(5)) for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// for the bias, with fan_in computed from the weight's shape (for
// ConvTranspose2d that is out_channels/groups * kh * kw, as torch does).
#pragma once

#include <cmath>
#include <optional>
#include <string>

#include "genai/nn/init.hpp"
#include "genai/nn/module.hpp"
#include "genai/ops/conv.hpp"
#include "genai/ops/pool.hpp"

namespace genai {
namespace nn {

namespace detail {
inline std::string pair_str(Size2 s) {
  // appended piece by piece: "(" + std::to_string(...) + ... trips GCC 12's -Wrestrict false positive
  std::string out = "(";
  out += std::to_string(s.h);
  out += ", ";
  out += std::to_string(s.w);
  out += ")";
  return out;
}

inline void init_conv(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double fan_in = static_cast<double>(init::calculate_fans(weight).fan_in);
    double bound = fan_in > 0 ? 1.0 / std::sqrt(fan_in) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}
}  // namespace detail

/// 2-d convolution: x (N, C_in, H, W) -> (N, C_out, Ho, Wo).
class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
         Size2 dilation = 1, int64_t groups = 1, bool bias = true)
      : in_(in_channels), out_(out_channels), k_(kernel_size), stride_(stride), padding_(padding), dilation_(dilation),
        groups_(groups) {
    GENAI_CHECK(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0, "Conv2d: groups (", groups,
                ") must divide in_channels (", in_channels, ") and out_channels (", out_channels, ")");
    weight = register_parameter("weight", empty({out_channels, in_channels / groups, k_.h, k_.w}));
    if (bias) this->bias = register_parameter("bias", empty({out_channels}));
    detail::init_conv(weight, this->bias);
  }
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override {
    return std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + detail::pair_str(k_) +
           ", stride=" + detail::pair_str(stride_) + ", padding=" + detail::pair_str(padding_) +
           (groups_ != 1 ? ", groups=" + std::to_string(groups_) : "") + (bias.defined() ? "" : ", bias=False");
  }
  Tensor forward(const Tensor& x) override { return conv2d(x, weight, bias, stride_, padding_, dilation_, groups_); }

  Tensor weight;  // (C_out, C_in / groups, kh, kw)
  Tensor bias;    // (C_out) or undefined

 private:
  int64_t in_, out_;
  Size2 k_, stride_, padding_, dilation_;
  int64_t groups_;
};

/// 2-d transposed convolution: x (N, C_in, H, W) -> (N, C_out, Ho, Wo).
class ConvTranspose2d : public UnaryModule {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
                  Size2 output_padding = 0, int64_t groups = 1, bool bias = true, Size2 dilation = 1)
      : in_(in_channels), out_(out_channels), k_(kernel_size), stride_(stride), padding_(padding),
        output_padding_(output_padding), dilation_(dilation), groups_(groups) {
    GENAI_CHECK(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0, "ConvTranspose2d: groups (",
                groups, ") must divide in_channels (", in_channels, ") and out_channels (", out_channels, ")");
    weight = register_parameter("weight", empty({in_channels, out_channels / groups, k_.h, k_.w}));
    if (bias) this->bias = register_parameter("bias", empty({out_channels}));
    detail::init_conv(weight, this->bias);
  }
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override {
    return std::to_string(in_) + ", " + std::to_string(out_) + ", kernel_size=" + detail::pair_str(k_) +
           ", stride=" + detail::pair_str(stride_) + ", padding=" + detail::pair_str(padding_) +
           (bias.defined() ? "" : ", bias=False");
  }
  Tensor forward(const Tensor& x) override {
    return conv_transpose2d(x, weight, bias, stride_, padding_, output_padding_, groups_, dilation_);
  }

  Tensor weight;  // (C_in, C_out / groups, kh, kw)
  Tensor bias;    // (C_out) or undefined

 private:
  int64_t in_, out_;
  Size2 k_, stride_, padding_, output_padding_, dilation_;
  int64_t groups_;
};

class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0)
      : k_(kernel_size), stride_(stride), padding_(padding) {}
  std::string type_name() const override { return "MaxPool2d"; }
  Tensor forward(const Tensor& x) override { return max_pool2d(x, k_, stride_, padding_); }

 private:
  Size2 k_;
  std::optional<Size2> stride_;
  Size2 padding_;
};

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0)
      : k_(kernel_size), stride_(stride), padding_(padding) {}
  std::string type_name() const override { return "AvgPool2d"; }
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, k_, stride_, padding_); }

 private:
  Size2 k_;
  std::optional<Size2> stride_;
  Size2 padding_;
};

class AdaptiveAvgPool2d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size) : size_(output_size) {}
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, size_); }

 private:
  Size2 size_;
};

/// Upsampling by a scale factor, mode "nearest" or "bilinear" (as torch.nn.Upsample).
class Upsample : public UnaryModule {
 public:
  explicit Upsample(double scale_factor, std::string mode = "nearest", std::optional<bool> align_corners = std::nullopt)
      : scale_(scale_factor), mode_(std::move(mode)), align_(align_corners) {}
  std::string type_name() const override { return "Upsample"; }
  Tensor forward(const Tensor& x) override { return interpolate(x, std::nullopt, Scale2(scale_), mode_, align_); }

 private:
  double scale_;
  std::string mode_;
  std::optional<bool> align_;
};

/// Reflection padding of (N, C, H, W) or (C, H, W), as torch.nn.ReflectionPad2d:
/// padding p pads every side by p; {left, right, top, bottom} per side (genai::pad, mode "reflect").
class ReflectionPad2d : public UnaryModule {
 public:
  explicit ReflectionPad2d(int64_t padding) : p_{padding, padding, padding, padding} {}
  ReflectionPad2d(int64_t left, int64_t right, int64_t top, int64_t bottom) : p_{left, right, top, bottom} {}
  std::string type_name() const override { return "ReflectionPad2d"; }
  std::string extra_repr() const override {
    // appended piece by piece (see detail::pair_str: GCC 12's -Wrestrict false positive)
    std::string s = "(";
    for (int i = 0; i < 4; ++i) {
      if (i) s += ", ";
      s += std::to_string(p_[i]);
    }
    s += ")";
    return s;
  }
  Tensor forward(const Tensor& x) override {
    GENAI_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4),
                "ReflectionPad2d: expected (N, C, H, W) or (C, H, W), got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
    return pad(x, {p_[0], p_[1], p_[2], p_[3]}, "reflect");
  }

 private:
  int64_t p_[4];
};

class PixelShuffle : public UnaryModule {
 public:
  explicit PixelShuffle(int64_t upscale_factor) : r_(upscale_factor) {}
  std::string type_name() const override { return "PixelShuffle"; }
  Tensor forward(const Tensor& x) override { return pixel_shuffle(x, r_); }

 private:
  int64_t r_;
};

}  // namespace nn
}  // namespace genai
