// genai/models/flow/toy2d.hpp: 2-D toy densities for quick checks of density models, and
// pictures of 2-D densities and samples.
//
//   Tensor x = flow::toy_sample("moons", 512, gen);          // (512, 2) float32
//   Tensor img = flow::density_image(model, -4, 4, 128);    // (3, 128, 128) heat map of p(x)
//   io::save_png("density.png", img);
//
// Datasets: "moons" (two interleaving half circles, as sklearn.datasets.make_moons with
// noise 0.05, centred and scaled by 2), "rings" (three concentric circles of radii 1, 2, 3,
// points in proportion to the circumference, radial noise 0.08), "checkerboard" (uniform on
// the black squares of a 4 x 4 board over [-4, 4]^2, as FFJORD's toy). All lie in [-4, 4]^2.
// The colour map is a piecewise-linear approximation of matplotlib's "inferno".
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "genai/models/flow/flow.hpp"

namespace genai {
namespace models {
namespace flow {

/// The names toy_sample accepts.
inline const std::vector<std::string>& toy_names() {
  static const std::vector<std::string> names{"moons", "rings", "checkerboard"};
  return names;
}

inline bool is_toy(const std::string& name) {
  return std::find(toy_names().begin(), toy_names().end(), name) != toy_names().end();
}

/// n points (n, 2) of the toy density `name` (see the header comment).
inline Tensor toy_sample(const std::string& name, int64_t n, Generator& gen = default_generator(),
                         Dtype dtype = kFloat32) {
  GENAI_CHECK(n >= 1, "toy_sample: n must be positive, got ", n);
  constexpr double pi = 3.14159265358979323846;
  std::vector<double> v(static_cast<size_t>(2 * n));
  auto put = [&](int64_t i, double a, double b) {
    v[static_cast<size_t>(2 * i)] = a;
    v[static_cast<size_t>(2 * i + 1)] = b;
  };
  if (name == "moons") {
    for (int64_t i = 0; i < n; ++i) {
      const double t = pi * gen.uniform();
      double a, b;
      if (i % 2 == 0) {  // upper moon
        a = std::cos(t);
        b = std::sin(t);
      } else {  // lower moon, shifted
        a = 1.0 - std::cos(t);
        b = 0.5 - std::sin(t);
      }
      a += 0.05 * gen.normal();
      b += 0.05 * gen.normal();
      put(i, 2.0 * (a - 0.5), 2.0 * (b - 0.25));
    }
  } else if (name == "rings") {
    for (int64_t i = 0; i < n; ++i) {
      const double u = 6.0 * gen.uniform();  // radius r with probability r / 6
      const double r = (u < 1.0 ? 1.0 : u < 3.0 ? 2.0 : 3.0) + 0.08 * gen.normal();
      const double t = 2.0 * pi * gen.uniform();
      put(i, r * std::cos(t), r * std::sin(t));
    }
  } else if (name == "checkerboard") {
    for (int64_t i = 0; i < n; ++i) {
      const double x1 = 4.0 * gen.uniform() - 2.0;                                  // [-2, 2)
      const double x2 = gen.uniform() - 2.0 * static_cast<double>(gen.below(2));      // [-2, -1) or [0, 1)
      const double shift = static_cast<double>(((static_cast<int64_t>(std::floor(x1)) % 2) + 2) % 2);
      put(i, 2.0 * x1, 2.0 * (x2 + shift));
    }
  } else {
    GENAI_FAIL("toy_sample: unknown toy density '", name, "'; expected moons, rings or checkerboard");
  }
  return from_vector(v, {n, 2}, dtype);
}

/// matplotlib's "inferno" colour map, piecewise linear: t in [0, 1] -> RGB in [0, 1].
inline void inferno(double t, double rgb[3]) {
  static const double stops[9][3] = {{0.001, 0.000, 0.014}, {0.087, 0.045, 0.225}, {0.258, 0.039, 0.406},
                                     {0.416, 0.090, 0.433}, {0.578, 0.148, 0.404}, {0.735, 0.216, 0.330},
                                     {0.865, 0.317, 0.226}, {0.954, 0.469, 0.099}, {0.988, 0.998, 0.645}};
  t = std::isnan(t) ? 0.0 : std::min(1.0, std::max(0.0, t));
  const double p = t * 8.0;
  const int k = std::min(7, static_cast<int>(p));
  const double f = p - k;
  for (int c = 0; c < 3; ++c) rgb[c] = stops[k][c] * (1.0 - f) + stops[k + 1][c] * f;
}

/// A heat map (3, H, W) of values (H, W) (any range; scaled by their maximum, 0 -> black).
inline Tensor heatmap(const Tensor& values) {
  GENAI_CHECK(values.defined() && values.dim() == 2, "heatmap: expected (H, W) values, got ",
              values.defined() ? shape_str(values.shape()) : std::string("(undefined)"));
  const int64_t H = values.size(0), W = values.size(1);
  std::vector<double> v = values.to_vector<double>();
  double hi = 0;
  for (double x : v)
    if (std::isfinite(x)) hi = std::max(hi, x);
  std::vector<double> img(static_cast<size_t>(3 * H * W));
  for (int64_t i = 0; i < H * W; ++i) {
    double rgb[3];
    inferno(hi > 0 ? v[static_cast<size_t>(i)] / hi : 0.0, rgb);
    for (int c = 0; c < 3; ++c) img[static_cast<size_t>(c * H * W + i)] = rgb[c];
  }
  return from_vector(img, {3, H, W}, kFloat32);
}

/// The flow's density p(x) on a res x res grid over [lo, hi]^2 (row 0 at the top = y = hi),
/// as a heat map (3, res, res); evaluated in batches without recording.
inline Tensor density_image(Flow& model, double lo = -4.0, double hi = 4.0, int64_t res = 128) {
  GENAI_CHECK(model.event_numel() == 2, "density_image: the flow must model 2-D points, its event shape is ",
              shape_str(model.event_shape()));
  GENAI_CHECK(res >= 2 && hi > lo, "density_image: expected res >= 2 and hi > lo");
  NoGradGuard ng;
  auto ps = model.parameters();
  const Dtype dt = ps.empty() ? kFloat32 : ps[0].dtype();
  std::vector<double> grid(static_cast<size_t>(2 * res * res));
  for (int64_t r = 0; r < res; ++r)
    for (int64_t c = 0; c < res; ++c) {
      const double x = lo + (hi - lo) * (static_cast<double>(c) + 0.5) / static_cast<double>(res);
      const double y = hi - (hi - lo) * (static_cast<double>(r) + 0.5) / static_cast<double>(res);
      grid[static_cast<size_t>(2 * (r * res + c))] = x;
      grid[static_cast<size_t>(2 * (r * res + c) + 1)] = y;
    }
  Tensor pts = from_vector(grid, {res * res, 2}, dt);
  Shape es{-1};
  es.insert(es.end(), model.event_shape().begin(), model.event_shape().end());
  TensorList dens;
  for (int64_t s = 0; s < res * res; s += 4096) {
    const int64_t len = std::min<int64_t>(4096, res * res - s);
    dens.push_back(exp(model.log_prob(reshape(narrow(pts, 0, s, len), es))));
  }
  return heatmap(reshape(cat(dens, 0), {res, res}));
}

/// A 2-D histogram (3, res, res) of points (N, 2) over [lo, hi]^2, as a heat map.
inline Tensor scatter_image(const Tensor& points, double lo = -4.0, double hi = 4.0, int64_t res = 128) {
  GENAI_CHECK(points.defined() && points.numel() % 2 == 0 && points.dim() >= 1,
              "scatter_image: expected points (N, 2)");
  GENAI_CHECK(res >= 2 && hi > lo, "scatter_image: expected res >= 2 and hi > lo");
  std::vector<double> p = points.to_vector<double>(), h(static_cast<size_t>(res * res), 0.0);
  for (size_t i = 0; i + 1 < p.size(); i += 2) {
    const double c = (p[i] - lo) / (hi - lo) * static_cast<double>(res);
    const double r = (hi - p[i + 1]) / (hi - lo) * static_cast<double>(res);
    if (!(c >= 0 && c < static_cast<double>(res) && r >= 0 && r < static_cast<double>(res))) continue;
    h[static_cast<size_t>(static_cast<int64_t>(r) * res + static_cast<int64_t>(c))] += 1.0;
  }
  for (double& x : h) x = std::sqrt(x);  // compress the range so that sparse regions show
  return heatmap(from_vector(h, {res, res}, kFloat64));
}

}  // namespace flow
}  // namespace models
}  // namespace genai
