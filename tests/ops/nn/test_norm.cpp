// Tests of genai/ops/norm.hpp: batch_norm, layer_norm, group_norm, instance_norm,
// rms_norm against PyTorch fixtures (train and eval, 2-d to 4-d, with and without
// affine parameters, running-stat updates), finite-difference gradchecks, double
// backward, agreement of the fused kernels with the tensor-op formulas, and errors.
#include "nn_fixture.hpp"

using namespace genai;
using nn_test::Inputs;

// ---- PyTorch fixtures -----------------------------------------------------------------

TEST_CASE("batch_norm matches PyTorch in train and eval, incl. running-stat updates") {
  struct C {
    const char* name;
    bool affine, training;
    double momentum, eps;
  };
  for (auto c : {C{"bn_2d_train_affine", true, true, 0.1, 1e-5}, C{"bn_3d_train_plain", false, true, 0.3, 1e-5},
                 C{"bn_4d_train_affine", true, true, 0.1, 1e-3}, C{"bn_4d_eval_affine", true, false, 0.1, 1e-5},
                 C{"bn_3d_eval_plain", false, false, 0.1, 1e-5}}) {
    const std::string n = c.name;
    std::vector<std::string> diff = {"x"};
    if (c.affine) diff.insert(diff.end(), {"w", "b"});
    for (Dtype dt : {kFloat64, kFloat32}) {
      Inputs in = nn_test::run_case(n, diff, {"rm", "rv"}, [&](const Inputs& in) {
        return batch_norm(in["x"], in["rm"], in["rv"], in["w"], in["b"], c.training, c.momentum, c.eps);
      }, dt);
      INFO(n << " running stats (" << dtype_name(dt) << ")");
      // train: updated once by the forward call (momentum, unbiased variance); eval: unchanged
      CHECK_CLOSE(in["rm"], nn_test::fx(n + ".rm_out"), nn_test::rtol_for(dt), nn_test::atol_for(dt));
      CHECK_CLOSE(in["rv"], nn_test::fx(n + ".rv_out"), nn_test::rtol_for(dt), nn_test::atol_for(dt));
      if (!c.training) CHECK_CLOSE(in["rm"], nn_test::fx(n + ".rm", dt), 0, 0);
    }
  }
}

TEST_CASE("layer_norm matches PyTorch") {
  struct C {
    const char* name;
    Shape nshape;
    bool affine;
    double eps;
  };
  for (const auto& c : {C{"ln_2d_affine", {6}, true, 1e-5}, C{"ln_3d_plain", {3, 4}, false, 1e-5},
                        C{"ln_4d_affine", {3, 4}, true, 1e-6}, C{"ln_offset", {8}, true, 1e-5}}) {
    std::vector<std::string> diff = {"x"};
    if (c.affine) diff.insert(diff.end(), {"w", "b"});
    nn_test::run_case_all(c.name, diff, {}, [&](const Inputs& in) {
      return layer_norm(in["x"], c.nshape, in["w"], in["b"], c.eps);
    });
  }
}

TEST_CASE("group_norm matches PyTorch") {
  struct C {
    const char* name;
    int64_t groups;
    bool affine;
    double eps;
  };
  for (auto c : {C{"gn_3d_affine", 3, true, 1e-5}, C{"gn_4d_plain", 2, false, 1e-5}, C{"gn_2d_affine", 2, true, 1e-5},
                 C{"gn_4d_affine_g1", 1, true, 1e-4}}) {
    std::vector<std::string> diff = {"x"};
    if (c.affine) diff.insert(diff.end(), {"w", "b"});
    nn_test::run_case_all(c.name, diff, {}, [&](const Inputs& in) {
      return group_norm(in["x"], c.groups, in["w"], in["b"], c.eps);
    });
  }
}

TEST_CASE("instance_norm matches PyTorch, incl. running-stat updates") {
  struct C {
    const char* name;
    bool affine, use_input_stats, running;
    double momentum, eps;
  };
  for (auto c : {C{"in_3d_train_affine", true, true, true, 0.2, 1e-5}, C{"in_4d_train_plain", false, true, false, 0.1, 1e-5},
                 C{"in_4d_eval_affine", true, false, true, 0.1, 1e-5}}) {
    const std::string n = c.name;
    std::vector<std::string> diff = {"x"};
    if (c.affine) diff.insert(diff.end(), {"w", "b"});
    for (Dtype dt : {kFloat64, kFloat32}) {
      Inputs in = nn_test::run_case(n, diff, {"rm", "rv"}, [&](const Inputs& in) {
        return instance_norm(in["x"], in["rm"], in["rv"], in["w"], in["b"], c.use_input_stats, c.momentum, c.eps);
      }, dt);
      if (!c.running) continue;
      INFO(n << " running stats (" << dtype_name(dt) << ")");
      CHECK_CLOSE(in["rm"], nn_test::fx(n + ".rm_out"), nn_test::rtol_for(dt), nn_test::atol_for(dt));
      CHECK_CLOSE(in["rv"], nn_test::fx(n + ".rv_out"), nn_test::rtol_for(dt), nn_test::atol_for(dt));
    }
  }
}

TEST_CASE("rms_norm matches the T5 / torch 2.x formula computed by PyTorch") {
  struct C {
    const char* name;
    Shape nshape;
    bool affine;
    double eps;
  };
  for (const auto& c : {C{"rms_2d_affine", {6}, true, 1e-6}, C{"rms_3d_plain", {3, 4}, false, 1e-5},
                        C{"rms_4d_affine", {4}, true, 1e-6}}) {
    std::vector<std::string> diff = {"x"};
    if (c.affine) diff.push_back("w");
    nn_test::run_case_all(c.name, diff, {}, [&](const Inputs& in) { return rms_norm(in["x"], c.nshape, in["w"], c.eps); });
  }
  // default eps: the dtype's machine epsilon (the fixture used float64's)
  nn_test::run_case("rms_default_eps", {"x", "w"}, {}, [](const Inputs& in) { return rms_norm(in["x"], {5}, in["w"]); },
                    kFloat64);
}

// ---- gradients --------------------------------------------------------------------------

TEST_CASE("norms pass gradcheck, and gradgradcheck where double backward is needed") {
  manual_seed(11);
  Tensor x3 = randn({3, 4, 3}, kFloat64).requires_grad_();
  Tensor x4 = (randn({2, 4, 2, 2}, kFloat64) * 1.5 + 0.5).requires_grad_();
  Tensor w = randn({4}, kFloat64).requires_grad_(), b = randn({4}, kFloat64).requires_grad_();
  Tensor rm = randn({4}, kFloat64) * 0.3, rv = rand({4}, kFloat64) + 0.5;
  Tensor wl = randn({2, 2}, kFloat64).requires_grad_(), bl = randn({2, 2}, kFloat64).requires_grad_();
  SECTION("batch_norm train (second order) and eval") {
    nn_test::check_grad([](const TensorList& in) { return batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true); },
                        {x3, w, b}, true);
    nn_test::check_grad([](const TensorList& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3); },
                        {x4}, true);
    nn_test::check_grad([&](const TensorList& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); }, {x4, w, b}, true);
  }
  SECTION("layer_norm (second order)") {
    nn_test::check_grad([](const TensorList& in) { return layer_norm(in[0], {2, 2}, in[1], in[2]); }, {x4, wl, bl}, true);
    nn_test::check_grad([](const TensorList& in) { return layer_norm(in[0], {3}); }, {x3}, true);
  }
  SECTION("group_norm (second order)") {
    nn_test::check_grad([](const TensorList& in) { return group_norm(in[0], 2, in[1], in[2]); }, {x4, w, b}, true);
    nn_test::check_grad([](const TensorList& in) { return group_norm(in[0], 4); }, {x3}, true);
  }
  SECTION("instance_norm") {
    nn_test::check_grad([](const TensorList& in) { return instance_norm(in[0], Tensor(), Tensor(), in[1], in[2]); },
                        {x4, w, b}, true);
    nn_test::check_grad([&](const TensorList& in) { return instance_norm(in[0], rm, rv, in[1], in[2], false); },
                        {x3, w, b});
  }
  SECTION("rms_norm (second order)") {
    nn_test::check_grad([](const TensorList& in) { return rms_norm(in[0], {2, 2}, in[1], 1e-6); }, {x4, wl}, true);
    nn_test::check_grad([](const TensorList& in) { return rms_norm(in[0], {3}); }, {x3}, true);
  }
  SECTION("bias without weight") {
    nn_test::check_grad([](const TensorList& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), in[1], true); },
                        {x3, b});
  }
}

TEST_CASE("a gradient penalty through layer_norm and batch_norm trains like PyTorch's double backward") {
  // d/dw of |d critic / dx|^2 needs the backward of the norm's backward: compare the
  // create_graph result with gradgradcheck's finite differences of the penalty itself.
  manual_seed(3);
  Tensor x = randn({4, 3}, kFloat64).requires_grad_();
  Tensor w = randn({3}, kFloat64).requires_grad_();
  auto penalty = [](const TensorList& in) {
    const Tensor& xx = in[0];
    Tensor h = tanh(batch_norm(layer_norm(xx, {3}, in[1]), Tensor(), Tensor(), Tensor(), Tensor(), true));
    Tensor critic = sum(mul(h, h));
    Tensor g = autograd::grad({critic}, {xx}, {}, true, true)[0];
    return sum(mul(g, g));
  };
  nn_test::check_grad(penalty, {x, w});
}

TEST_CASE("fused kernels and tensor-op formulas agree, forward and backward, on larger inputs") {
  manual_seed(21);
  // big enough that the parallel loops split (kGrain = 32768 elements per chunk)
  for (Dtype dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat64 ? 1e-10 : 2e-4;
    Tensor x = (randn({16, 8, 20, 30}, dt) * 2.0 + 1.0).requires_grad_();
    Tensor w = randn({8}, dt).requires_grad_(), b = randn({8}, dt).requires_grad_();
    Tensor wl = randn({20, 30}, dt).requires_grad_(), bl = randn({20, 30}, dt).requires_grad_();
    Tensor gy = randn(x.shape(), dt);
    Tensor rm = randn({8}, dt), rv = rand({8}, dt) + 0.5;
    using detail::NormGeom;
    using detail::NormMode;
    struct C {
      const char* name;
      std::function<Tensor()> fused;
      std::function<Tensor()> composite;
      TensorList params;
    };
    const int64_t N = 16, Ch = 8, S = 600;
    Tensor rstd_c = rsqrt(rv + 1e-5);
    std::vector<C> cases = {
        {"batch_norm train", [&] { return batch_norm(x, Tensor(), Tensor(), w, b, true); },
         [&] { return detail::norm_forward_composite(x, NormGeom{N, Ch, S, Ch, 1, S, Ch}, NormMode::Center, 1e-5, w, b, {1, Ch, 1, 1}); },
         {x, w, b}},
        {"batch_norm eval", [&] { return batch_norm(x, rm, rv, w, b, false); },
         [&] { return detail::norm_forward_composite(x, NormGeom{N, Ch, S, Ch, 1, S, Ch}, NormMode::Given, 1e-5, w, b, {1, Ch, 1, 1}, rm, rstd_c); },
         {x, w, b}},
        {"layer_norm", [&] { return layer_norm(x, {20, 30}, wl, bl); },
         [&] { return detail::norm_forward_composite(x, NormGeom{1, N * Ch, S, 1, 0, 1, S}, NormMode::Center, 1e-5, wl, bl, {20, 30}); },
         {x, wl, bl}},
        {"rms_norm", [&] { return rms_norm(x, {20, 30}, wl, 1e-5); },
         [&] { return detail::norm_forward_composite(x, NormGeom{1, N * Ch, S, 1, 0, 1, S}, NormMode::Rms, 1e-5, wl, Tensor(), {20, 30}); },
         {x, wl}},
        {"group_norm", [&] { return group_norm(x, 4, w, b); },
         [&] { return detail::norm_forward_composite(x, NormGeom{1, N * 4, 2 * S, 4, 2, S, Ch}, NormMode::Center, 1e-5, w, b, {1, Ch, 1, 1}); },
         {x, w, b}},
        {"instance_norm", [&] { return instance_norm(x, Tensor(), Tensor(), w, b); },
         [&] { return detail::norm_forward_composite(x, NormGeom{1, N * Ch, S, Ch, 1, S, Ch}, NormMode::Center, 1e-5, w, b, {1, Ch, 1, 1}); },
         {x, w, b}},
    };
    for (const auto& c : cases) {
      INFO(c.name << " " << dtype_name(dt));
      Tensor yf = c.fused(), yc = c.composite();
      CHECK_CLOSE(yf, yc, tol, tol);
      TensorList gf = nn_test::grads_via(c.fused, c.params, gy, false);      // fused backward kernel
      TensorList gc = nn_test::grads_via(c.fused, c.params, gy, true);       // backward in tensor ops
      TensorList gr = nn_test::grads_via(c.composite, c.params, gy, false);  // autograd of the composite forward
      for (size_t i = 0; i < c.params.size(); ++i) {
        INFO("param " << i);
        // dw, db sum over ~10^5 elements: compare relative to their scale
        const double t = i == 0 ? tol : tol * 10;
        CHECK_CLOSE(gf[i], gr[i], t, t);
        CHECK_CLOSE(gc[i], gr[i], t, t);
      }
    }
  }
}

// ---- behaviour ----------------------------------------------------------------------------

TEST_CASE("batch_norm: running stats optional in training, required in eval; empty batch") {
  manual_seed(5);
  Tensor x = randn({5, 3, 4}, kFloat64);
  Tensor rm = zeros({3}, kFloat64), rv = ones({3}, kFloat64);
  Tensor y1 = batch_norm(x, rm, rv, Tensor(), Tensor(), true);
  Tensor y2 = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK_CLOSE(y1, y2, 0, 0);
  // per-channel mean 0 and biased variance 1 (up to eps)
  CHECK_CLOSE(mean(y1, {0, 2}), zeros({3}, kFloat64), 0, 1e-12);
  CHECK_CLOSE(var(y1, {0, 2}, 0), full({3}, 1.0, kFloat64), 1e-4, 1e-4);
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                    Catch::Contains("batch_norm") && Catch::Contains("eval mode"));
  // running stats are buffers: no graph, no version clash with saved tensors
  Tensor xr = x.clone().requires_grad_();
  Tensor y = batch_norm(xr, rm, rv, Tensor(), Tensor(), true);
  CHECK_FALSE(rm.requires_grad());
  y.sum().backward();
  CHECK(xr.grad().defined());
  // an eval-mode graph does not hold the running buffers: updating them before its backward is fine
  Tensor xe = x.clone().requires_grad_();
  Tensor ye = batch_norm(xe, rm, rv, Tensor(), Tensor(), false);
  Tensor rstd_before = rsqrt(rv + 1e-5);
  batch_norm(x, rm, rv, Tensor(), Tensor(), true);  // updates rm, rv in place
  ye.sum().backward();
  CHECK_CLOSE(xe.grad(), expand(reshape(rstd_before, {1, 3, 1}), {5, 3, 4}), 1e-14, 1e-14);  // dx = rstd
  // an empty batch gives an empty output and leaves the running stats alone
  Tensor before = rm.clone();
  Tensor e = batch_norm(zeros({0, 3}, kFloat64), rm, rv, Tensor(), Tensor(), true);
  CHECK(e.shape() == Shape{0, 3});
  CHECK_CLOSE(rm, before, 0, 0);
}

TEST_CASE("norms on float32 running stats with float64 input, and non-contiguous inputs") {
  manual_seed(8);
  Tensor x = randn({4, 3, 5}, kFloat64);
  Tensor rm = zeros({3}, kFloat32), rv = ones({3}, kFloat32);
  batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.5);
  CHECK(rm.dtype() == kFloat32);
  CHECK_CLOSE(rm, mul(mean(x, {0, 2}), 0.5), 1e-6, 1e-6);
  // a transposed input normalizes like its contiguous copy
  Tensor xt = randn({5, 6}, kFloat64).t();  // (6, 5), non-contiguous
  CHECK_FALSE(xt.is_contiguous());
  CHECK_CLOSE(layer_norm(xt, {5}), layer_norm(xt.contiguous(), {5}), 1e-14, 1e-14);
  CHECK_CLOSE(group_norm(xt.reshape({3, 2, 5}).transpose(1, 2), 1), group_norm(xt.reshape({3, 2, 5}).transpose(1, 2).contiguous(), 1),
              1e-14, 1e-14);
}

TEST_CASE("norm errors name the op and the shapes") {
  Tensor x = randn({2, 3, 4});
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), ones({4}), Tensor(), true),
                    Catch::Contains("batch_norm: weight must have shape (3,)") && Catch::Contains("(2, 3, 4)"));
  CHECK_THROWS_WITH(batch_norm(randn({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Catch::Contains("more than 1 value per channel"));
  CHECK_THROWS_WITH(batch_norm(x, zeros({3}), ones({2}), Tensor(), Tensor(), false),
                    Catch::Contains("running_var must have shape (3,)"));
  CHECK_THROWS_WITH(batch_norm(zeros({2, 3}, kInt64), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Catch::Contains("batch_norm: expected a floating-point input, got int64"));
  CHECK_THROWS_WITH(batch_norm(randn({3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                    Catch::Contains("(N, C, *)") && Catch::Contains("(3,)"));
  CHECK_THROWS_WITH(batch_norm(x, Tensor(), Tensor(), ones({3}, kFloat64), Tensor(), true),
                    Catch::Contains("weight has dtype float64 but the input has dtype float32"));
  CHECK_THROWS_WITH(layer_norm(x, {3}), Catch::Contains("layer_norm: normalized_shape (3,)") && Catch::Contains("(2, 3, 4)"));
  CHECK_THROWS_WITH(layer_norm(x, {4}, ones({3})), Catch::Contains("layer_norm: weight must have shape (4,)"));
  CHECK_THROWS_WITH(rms_norm(x, {2, 4}), Catch::Contains("rms_norm: normalized_shape (2, 4)"));
  CHECK_THROWS_WITH(group_norm(x, 2), Catch::Contains("divisible by num_groups") && Catch::Contains("num_groups = 2"));
  CHECK_THROWS_WITH(instance_norm(randn({2, 3, 1})), Catch::Contains("more than 1 spatial element"));
  CHECK_THROWS_WITH(instance_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                    Catch::Contains("running_mean and running_var are needed"));
}
