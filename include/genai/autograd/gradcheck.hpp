// genai/autograd/gradcheck.hpp: finite-difference checks of gradients, as
// torch.autograd.gradcheck / gradgradcheck.
//
// gradcheck compares, for every output element and every input element, the
// analytical Jacobian (from backward) with central differences
// (f(x + eps) - f(x - eps)) / (2 eps), in float64. It passes when
// |analytical - numerical| <= atol + rtol * |numerical| everywhere. Inputs that do
// not require grad are held constant. Choose inputs away from kinks (relu at 0,
// abs at 0, clamp at its bounds), where the finite difference is meaningless.
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>

#include "genai/autograd/engine.hpp"

namespace genai {
namespace autograd {

struct GradcheckResult {
  bool ok = true;
  std::string message;     // the first mismatch, when !ok
  double max_abs_err = 0;  // largest |analytical - numerical|
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const TensorList&)>;

/// Checks the gradients of fn at `inputs` (float64 tensors; those that require
/// grad are checked). Throws when `raise` is set and the check fails.
inline GradcheckResult gradcheck(const GradcheckFn& fn, const TensorList& inputs, double eps = 1e-6,
                                 double atol = 1e-5, double rtol = 1e-3, bool raise = false) {
  GradcheckResult res;
  for (size_t i = 0; i < inputs.size(); ++i)
    GENAI_CHECK(!inputs[i].requires_grad() || inputs[i].dtype() == kFloat64, "gradcheck: input ", i,
                " is ", dtype_name(inputs[i].dtype()), "; use float64 inputs for finite differences");
  Tensor y = fn(inputs);
  GENAI_CHECK(y.defined(), "gradcheck: the function returned an undefined tensor");
  const int64_t ny = y.numel();
  std::vector<size_t> checked;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) checked.push_back(i);
  GENAI_CHECK(!checked.empty(), "gradcheck: no input requires grad");
  TensorList req;
  for (size_t i : checked) req.push_back(inputs[i]);

  // analytical Jacobian, one output element at a time: ana[k][j * nx + i]
  std::vector<std::vector<double>> ana(checked.size());
  for (size_t k = 0; k < checked.size(); ++k) ana[k].assign(static_cast<size_t>(ny * inputs[checked[k]].numel()), 0.0);
  if (y.requires_grad()) {
    for (int64_t j = 0; j < ny; ++j) {
      Tensor go = zeros(y.shape(), y.dtype());
      static_cast<double*>(go.raw_data())[j] = 1.0;
      if (y.dtype() == kFloat32) go = go.to(kFloat32);
      TensorList gs = grad({y}, req, {go}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t k = 0; k < checked.size(); ++k) {
        if (!gs[k].defined()) continue;
        std::vector<double> v = gs[k].to_vector<double>();
        for (size_t i = 0; i < v.size(); ++i) ana[k][static_cast<size_t>(j) * v.size() + i] = v[i];
      }
    }
  }

  // numerical Jacobian by central differences on detached copies (which keep
  // requires_grad, so that fn may itself differentiate, as gradgradcheck's does)
  for (size_t k = 0; k < checked.size(); ++k) {
    const size_t idx = checked[k];
    const int64_t nx = inputs[idx].numel();
    for (int64_t i = 0; i < nx; ++i) {
      auto eval = [&](double delta) {
        TensorList xs;
        for (size_t m = 0; m < inputs.size(); ++m)
          xs.push_back(inputs[m].detach().clone().requires_grad_(inputs[m].requires_grad()));
        double* p = static_cast<double*>(xs[idx].raw_data());
        p[i] += delta;
        return fn(xs).detach().to_vector<double>();
      };
      std::vector<double> yp = eval(eps), ym = eval(-eps);
      for (int64_t j = 0; j < ny; ++j) {
        double num = (yp[j] - ym[j]) / (2 * eps);
        double a = ana[k][static_cast<size_t>(j * nx + i)];
        double err = std::abs(a - num);
        res.max_abs_err = std::max(res.max_abs_err, err);
        if (res.ok && !(err <= atol + rtol * std::abs(num))) {
          std::ostringstream os;
          os << "gradcheck: Jacobian mismatch for output element " << j << " w.r.t. input " << idx << " element " << i
             << ": analytical " << a << ", numerical " << num << " (atol " << atol << ", rtol " << rtol << ")";
          res.ok = false;
          res.message = os.str();
        }
      }
    }
  }
  if (!res.ok && raise) GENAI_FAIL(res.message);
  return res;
}

/// Checks second derivatives: gradcheck of (inputs, v) -> grad(fn(inputs), inputs, v)
/// with a random float64 v, through create_graph.
inline GradcheckResult gradgradcheck(const GradcheckFn& fn, const TensorList& inputs, double eps = 1e-6,
                                     double atol = 1e-5, double rtol = 1e-3, bool raise = false) {
  Tensor y0;
  {
    NoGradGuard ng;
    y0 = fn(inputs);
  }
  Generator gen(1234);
  Tensor v = randn(y0.shape(), kFloat64, gen).requires_grad_();
  const size_t n_in = inputs.size();
  auto g_fn = [&](const TensorList& xs) -> Tensor {
    TensorList in(xs.begin(), xs.begin() + static_cast<long>(n_in));
    TensorList req;
    for (const auto& x : in)
      if (x.requires_grad()) req.push_back(x);
    Tensor y = fn(in);
    TensorList gs = grad({y}, req, {xs.back()}, true, true, true);
    TensorList flat;
    for (size_t k = 0; k < gs.size(); ++k)
      flat.push_back(gs[k].defined() ? reshape(gs[k], {-1}) : zeros({req[k].numel()}, kFloat64));
    return cat(flat, 0);
  };
  TensorList all(inputs.begin(), inputs.end());
  all.push_back(v);
  return gradcheck(g_fn, all, eps, atol, rtol, raise);
}

}  // namespace autograd

using autograd::gradcheck;
using autograd::gradgradcheck;

}  // namespace genai
