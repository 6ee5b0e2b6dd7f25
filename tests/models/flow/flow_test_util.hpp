// Helpers for the normalizing-flow tests: random parameters, the numerical Jacobian of a
// layer, and the invertibility / log-determinant check every layer must pass.
#pragma once

#include "test_util.hpp"

#include <genai/models/flow/glow.hpp>
#include <genai/models/flow/realnvp.hpp>

namespace flow_test {

namespace flow = genai::models::flow;
using genai::Tensor;

/// Adds scale * N(0, 1) to every parameter (so that zero-initialized layers are not the identity).
inline void perturb(genai::nn::Module& m, double scale, genai::Generator& gen) {
  genai::NoGradGuard ng;
  for (auto& p : m.parameters()) {
    Tensor t = p;
    t.add_(genai::mul(genai::randn(p.shape(), p.dtype(), gen), scale));
  }
}

/// The Jacobian dz/dx (D_out, D_in) of one sample x (1, *event) by central differences in float64.
inline Tensor numerical_jacobian(flow::FlowLayer& layer, const Tensor& x, double eps = 1e-6) {
  genai::NoGradGuard ng;
  const int64_t din = x.numel();
  std::vector<double> base = x.to_vector<double>();
  std::vector<double> J;
  int64_t dout = -1;
  std::vector<std::vector<double>> cols;
  for (int64_t i = 0; i < din; ++i) {
    auto eval = [&](double d) {
      std::vector<double> v = base;
      v[static_cast<size_t>(i)] += d;
      return layer.forward(genai::from_vector(v, x.shape(), genai::kFloat64)).z.to_vector<double>();
    };
    std::vector<double> p = eval(eps), m = eval(-eps), c(p.size());
    for (size_t k = 0; k < p.size(); ++k) c[k] = (p[k] - m[k]) / (2 * eps);
    dout = static_cast<int64_t>(c.size());
    cols.push_back(c);
  }
  J.resize(static_cast<size_t>(dout * din));
  for (int64_t i = 0; i < din; ++i)
    for (int64_t k = 0; k < dout; ++k) J[static_cast<size_t>(k * din + i)] = cols[static_cast<size_t>(i)][static_cast<size_t>(k)];
  return genai::from_vector(J, {dout, din}, genai::kFloat64);
}

/// For a layer (in float64) and a batch x (B, *event) float64: inverse(forward(x)) == x in
/// float64 (1e-10) and, for a float32 copy of the layer, to 1e-5; the output shape agrees with
/// output_shape; and, per sample, logdet == log |det J| of the numerical Jacobian (1e-6).
inline void check_layer(const std::shared_ptr<flow::FlowLayer>& layer, const Tensor& x, double logdet_tol = 1e-6,
                        double inv_tol32 = 1e-5) {
  INFO("layer " << layer->type_name() << " on " << genai::shape_str(x.shape()));
  REQUIRE(x.dtype() == genai::kFloat64);
  flow::FlowOutput o = layer->forward(x);
  REQUIRE(o.logdet.shape() == genai::Shape{x.size(0)});
  genai::Shape ev(x.shape().begin() + 1, x.shape().end()), zs{x.size(0)};
  genai::Shape os = layer->output_shape(ev);
  zs.insert(zs.end(), os.begin(), os.end());
  CHECK(o.z.shape() == zs);
  Tensor back = layer->inverse(o.z);
  CHECK_CLOSE(back, x, 0.0, 1e-10);
  // the log-determinant against the numerical Jacobian, sample by sample
  for (int64_t b = 0; b < x.size(0); ++b) {
    Tensor xb = genai::narrow(x, 0, b, 1).contiguous();
    Tensor J = numerical_jacobian(*layer, xb);
    REQUIRE(J.size(0) == J.size(1));
    genai::linalg::SlogdetResult r = genai::linalg::slogdet(J);
    INFO("sample " << b << ": logdet " << o.logdet.to_vector<double>()[static_cast<size_t>(b)] << ", log|det J| "
                   << r.logabsdet.item<double>());
    CHECK(r.sign.item<double>() != 0.0);
    CHECK(std::abs(r.logabsdet.item<double>() - o.logdet.to_vector<double>()[static_cast<size_t>(b)]) <=
          logdet_tol * (1.0 + std::abs(r.logabsdet.item<double>())));
  }
  // float32: inverse(forward(x)) == x to inv_tol32 (the layer is converted and converted back)
  layer->to(genai::kFloat32);
  {
    genai::NoGradGuard ng;
    Tensor x32 = x.to(genai::kFloat32);
    Tensor back32 = layer->inverse(layer->forward(x32).z);
    CHECK_CLOSE(back32, x32, 0.0, inv_tol32);
  }
  layer->to(genai::kFloat64);
}

}  // namespace flow_test
