// genai/nn/init.hpp: parameter initializers, as torch.nn.init.
//
// Each fills a tensor in place (without recording) and returns it. Fan-in and
// fan-out follow torch: for a weight of shape (out, in, *k), fan_in = in * prod(k)
// and fan_out = out * prod(k). Random draws use the global generator unless one
// is passed.
#pragma once

#include <cmath>
#include <string_view>
#include <vector>

#include "genai/tensor.hpp"

namespace genai {
namespace nn {
namespace init {

namespace detail {
/// Writes values produced by f() (in row-major order) into t under NoGradGuard.
template <class F>
inline Tensor& fill_with(Tensor& t, F f) {
  NoGradGuard ng;
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (auto& x : v) x = f();
  Tensor src = tensor(v, t.shape(), t.dtype());
  t.copy_(src);
  return t;
}
}  // namespace detail

struct Fans {
  int64_t fan_in, fan_out;
};

/// fan_in and fan_out of a weight (at least 2-d), as torch's _calculate_fan_in_and_fan_out.
inline Fans calculate_fans(const Tensor& t) {
  GENAI_CHECK(t.dim() >= 2, "init: fan in and fan out need a tensor with at least 2 dimensions, got shape ",
              shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

/// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain).
inline double calculate_gain(std::string_view nonlinearity, double param = 0.01) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" || nonlinearity == "sigmoid" ||
      nonlinearity == "conv_transpose2d")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  GENAI_FAIL("calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
}

inline Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0, Generator& gen = default_generator()) {
  return detail::fill_with(t, [&] { return a + (b - a) * gen.uniform(); });
}
inline Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator& gen = default_generator()) {
  return detail::fill_with(t, [&] { return mean + std * gen.normal(); });
}
/// Normal(mean, std) truncated to [a, b] by redrawing.
inline Tensor& trunc_normal_(Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0,
                             Generator& gen = default_generator()) {
  GENAI_CHECK(a < b, "trunc_normal_: expected a < b, got [", a, ", ", b, "]");
  return detail::fill_with(t, [&] {
    for (int i = 0; i < 1000; ++i) {
      double v = mean + std * gen.normal();
      if (v >= a && v <= b) return v;
    }
    return std::min(std::max(mean, a), b);
  });
}
inline Tensor& constant_(Tensor& t, double v) {
  NoGradGuard ng;
  t.fill_(v);
  return t;
}
inline Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
inline Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

inline Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator& gen = default_generator()) {
  Fans f = calculate_fans(t);
  double a = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  return uniform_(t, -a, a, gen);
}
inline Tensor& xavier_normal_(Tensor& t, double gain = 1.0, Generator& gen = default_generator()) {
  Fans f = calculate_fans(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)), gen);
}

/// He initialization; mode "fan_in" or "fan_out", nonlinearity as calculate_gain with param a.
inline Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                                std::string_view nonlinearity = "leaky_relu", Generator& gen = default_generator()) {
  GENAI_CHECK(mode == "fan_in" || mode == "fan_out", "kaiming_uniform_: mode must be fan_in or fan_out, got ", mode);
  Fans f = calculate_fans(t);
  double fan = static_cast<double>(mode == "fan_in" ? f.fan_in : f.fan_out);
  double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(fan);
  return uniform_(t, -bound, bound, gen);
}
inline Tensor& kaiming_normal_(Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                               std::string_view nonlinearity = "leaky_relu", Generator& gen = default_generator()) {
  GENAI_CHECK(mode == "fan_in" || mode == "fan_out", "kaiming_normal_: mode must be fan_in or fan_out, got ", mode);
  Fans f = calculate_fans(t);
  double fan = static_cast<double>(mode == "fan_in" ? f.fan_in : f.fan_out);
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan), gen);
}

/// A (semi-)orthogonal matrix scaled by gain, from the QR decomposition of a
/// normal matrix (torch.nn.init.orthogonal_); trailing dims are flattened.
inline Tensor& orthogonal_(Tensor& t, double gain = 1.0, Generator& gen = default_generator()) {
  GENAI_CHECK(t.dim() >= 2, "orthogonal_: needs at least 2 dimensions, got shape ", shape_str(t.shape()));
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  const bool flip = rows < cols;
  const int64_t m = flip ? cols : rows, n = flip ? rows : cols;  // m >= n
  std::vector<double> a(static_cast<size_t>(m * n));
  for (auto& x : a) x = gen.normal();
  // modified Gram-Schmidt on the columns of a (m x n, column j at a[i*n + j]) with
  // the sign of R's diagonal folded in, which makes Q uniformly distributed
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < j; ++k) {
      double dot = 0;
      for (int64_t i = 0; i < m; ++i) dot += a[i * n + k] * a[i * n + j];
      for (int64_t i = 0; i < m; ++i) a[i * n + j] -= dot * a[i * n + k];
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += a[i * n + j] * a[i * n + j];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < m; ++i) a[i * n + j] /= norm;
  }
  std::vector<double> q(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) q[i * cols + j] = gain * (flip ? a[j * n + i] : a[i * n + j]);
  NoGradGuard ng;
  t.copy_(tensor(q, t.shape(), t.dtype()));
  return t;
}

}  // namespace init
}  // namespace nn
}  // namespace genai
