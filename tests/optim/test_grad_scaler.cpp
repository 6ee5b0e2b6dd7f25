// Tests of optim::GradScaler and optim::grads_finite (include/genai/optim/grad_scaler.hpp):
// a clean scaled step equals a plain optimizer step (the scale is a power of two, so
// scaling and unscaling are exact); a step with an injected inf/nan gradient is
// skipped (parameters and optimizer state untouched) and the scale backs off; the
// scale grows after growth_interval clean steps; unscale_ before clipping; torch's
// errors for misuse; state_dict round trip; a disabled scaler passes through.
#include <cmath>
#include <limits>
#include <string>

#include <genai/optim/all.hpp>
#include <genai/optim/grad_scaler.hpp>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {

/// loss = mean((tanh(X W) - Y)^2) for W (3, 2); float64.
struct ScalerProblem {
  Tensor W, X, Y;  // (3, 2), (5, 3), (5, 2)
  ScalerProblem() {
    W = tensor({0.3, -0.2, 0.5, 0.1, -0.4, 0.25}, {3, 2}, kFloat64).requires_grad_();
    X = tensor({1.0, 0.5, -0.5, 0.2, -1.0, 0.3, 0.7, 0.1, 0.9, -0.3, 0.4, 0.6, 0.0, 1.2, -0.8}, {5, 3}, kFloat64);
    Y = tensor({0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.0, -0.2, 0.3}, {5, 2}, kFloat64);
  }
  Tensor loss() const { return mean(square(tanh(matmul(X, W)) - Y)); }
};

std::vector<double> scaler_vec(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST_CASE("GradScaler: clean steps match plain Adam steps exactly") {
  ScalerProblem plain, scaled;
  optim::Adam opt_plain({plain.W}, {.lr = 0.01});
  optim::Adam opt_scaled({scaled.W}, {.lr = 0.01});
  optim::GradScaler scaler;  // 65536
  for (int it = 0; it < 3; ++it) {
    opt_plain.zero_grad();
    plain.loss().backward();
    opt_plain.step();

    opt_scaled.zero_grad();
    Tensor l = scaled.loss();
    Tensor sl = scaler.scale(l);
    CHECK(sl.item<double>() == l.item<double>() * 65536.0);
    sl.backward();
    CHECK(scaler.step(opt_scaled));
    CHECK_FALSE(scaler.last_step_skipped());
    scaler.update();
    CHECK(scaler_vec(scaled.W.grad()) == scaler_vec(plain.W.grad()));  // unscaled in place
    CHECK(scaler_vec(scaled.W) == scaler_vec(plain.W));
  }
  CHECK(scaler.get_scale() == 65536.0);
  CHECK(scaler.growth_tracker() == 3);
}

TEST_CASE("GradScaler: a step with an inf or nan gradient is skipped and the scale backs off") {
  ScalerProblem p;
  optim::Adam opt({p.W}, {.lr = 0.01});
  optim::GradScaler scaler({.init_scale = 1024.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 2});
  const std::vector<double> w0 = scaler_vec(p.W);

  for (double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    opt.zero_grad();
    scaler.scale(p.loss()).backward();
    {
      NoGradGuard ng;
      p.W.grad().narrow(0, 1, 1).narrow(1, 0, 1).fill_(bad);  // inject one bad value
    }
    CHECK_FALSE(optim::grads_finite(opt));
    CHECK_FALSE(optim::grads_finite({p.W}));
    CHECK_FALSE(scaler.step(opt));
    CHECK(scaler.last_step_skipped());
    scaler.update();
    CHECK(scaler_vec(p.W) == w0);               // parameters untouched
    CHECK(opt.state(0, 0).empty());             // no Adam moments, no step count
    CHECK(scaler.growth_tracker() == 0);
  }
  CHECK(scaler.get_scale() == 256.0);  // 1024 * 0.5 * 0.5

  // clean steps proceed; after growth_interval (2) of them the scale doubles
  opt.zero_grad();
  scaler.scale(p.loss()).backward();
  CHECK(optim::grads_finite(opt));
  CHECK(scaler.step(opt));
  scaler.update();
  CHECK(scaler_vec(p.W) != w0);
  CHECK(opt.state(0, 0).scalars.at("step") == 1.0);
  CHECK(scaler.get_scale() == 256.0);
  CHECK(scaler.growth_tracker() == 1);
  opt.zero_grad();
  scaler.scale(p.loss()).backward();
  CHECK(scaler.step(opt));
  scaler.update();
  CHECK(scaler.get_scale() == 512.0);
  CHECK(scaler.growth_tracker() == 0);

  // a loss that is nan makes every gradient nan: skipped too
  opt.zero_grad();
  const std::vector<double> w2 = scaler_vec(p.W);
  scaler.scale(mul(p.loss(), std::nan(""))).backward();
  CHECK_FALSE(scaler.step(opt));
  scaler.update();
  CHECK(scaler_vec(p.W) == w2);
  CHECK(scaler.get_scale() == 256.0);
}

TEST_CASE("GradScaler: unscale_ before clipping, then step does not unscale again") {
  ScalerProblem a, b;
  optim::SGD opt_a({a.W}, {.lr = 0.1});
  optim::SGD opt_b({b.W}, {.lr = 0.1});
  optim::GradScaler scaler({.init_scale = 8.0});
  a.loss().backward();
  const double norm_a = optim::clip_grad_norm_({a.W}, 0.05);
  opt_a.step();

  scaler.scale(b.loss()).backward();
  scaler.unscale_(opt_b);  // true gradients, so the clipping threshold means what it says
  const double norm_b = optim::clip_grad_norm_({b.W}, 0.05);
  CHECK(norm_b == norm_a);
  CHECK(norm_a > 0.05);  // the clip was active
  CHECK(scaler.step(opt_b));
  scaler.update();
  CHECK(scaler_vec(b.W.grad()) == scaler_vec(a.W.grad()));
  CHECK(scaler_vec(b.W) == scaler_vec(a.W));
}

TEST_CASE("GradScaler: misuse throws torch's errors") {
  ScalerProblem p;
  optim::SGD opt({p.W}, {.lr = 0.1});
  optim::GradScaler scaler;
  CHECK_THROWS_WITH(scaler.update(), Contains("No inf checks were recorded prior to update."));
  scaler.scale(p.loss()).backward();
  scaler.unscale_(opt);
  CHECK_THROWS_WITH(scaler.unscale_(opt),
                    Contains("unscale_() has already been called on this optimizer since the last update()."));
  scaler.step(opt);
  CHECK_THROWS_WITH(scaler.step(opt), Contains("step() has already been called since the last update()."));
  CHECK_THROWS_WITH(scaler.unscale_(opt), Contains("unscale_() is being called after step()."));
  CHECK_THROWS_WITH(scaler.step(opt, [&] { return p.loss(); }),
                    Contains("Closure use is not currently supported if GradScaler is enabled."));
  scaler.update();
  CHECK_THROWS_WITH(optim::GradScaler({.init_scale = -1.0}), Contains("init_scale must be finite and > 0"));
  CHECK_THROWS_WITH(optim::GradScaler({.backoff_factor = 2.0}), Contains("backoff_factor should be in (0, 1]"));
}

TEST_CASE("GradScaler: state_dict round trip, update(new_scale), disabled scaler") {
  optim::GradScaler a({.init_scale = 1024.0, .growth_interval = 10});
  ScalerProblem p;
  optim::SGD opt({p.W}, {.lr = 0.1});
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    a.scale(p.loss()).backward();
    a.step(opt);
    a.update();
  }
  io::TensorMap sd = a.state_dict();
  CHECK(sd.at("scale").item<double>() == 1024.0);
  CHECK(sd.at("_growth_tracker").item<double>() == 3.0);
  CHECK(sd.at("growth_interval").item<double>() == 10.0);
  optim::GradScaler b;
  b.load_state_dict(sd);
  CHECK(b.get_scale() == 1024.0);
  CHECK(b.growth_tracker() == 3);
  CHECK(b.get_growth_interval() == 10);
  b.update(3.0);
  CHECK(b.get_scale() == 3.0);
  sd.erase("scale");
  CHECK_THROWS_WITH(b.load_state_dict(sd), Contains("missing or malformed entry 'scale'"));

  // disabled: scale() is the identity and step() always steps
  optim::GradScaler off({.enabled = false});
  Tensor l = p.loss();
  CHECK(off.scale(l).impl() == l.impl());
  opt.zero_grad();
  l.backward();
  const std::vector<double> w = scaler_vec(p.W);
  CHECK(off.step(opt));
  off.update();
  CHECK(scaler_vec(p.W) != w);
  CHECK(off.get_scale() == 1.0);
  CHECK(off.state_dict().empty());
  CHECK_THROWS_WITH(b.load_state_dict({}), Contains("The source state dict is empty"));
}
