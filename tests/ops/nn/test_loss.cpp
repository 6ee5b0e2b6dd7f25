// Tests of genai/ops/loss.hpp against PyTorch fixtures (every reduction, class
// weights, ignore_index, label smoothing, probability targets, (N, C, d1, d2)
// inputs, logits of +-1000), gradchecks, double backward, the fused cross_entropy
// against its tensor-op backward, and error messages.
#include <cmath>

#include "nn_fixture.hpp"

using namespace genai;
using nn_test::Inputs;

namespace {
const char* const kReductions[] = {"mean", "sum", "none"};
}

// ---- PyTorch fixtures -----------------------------------------------------------------

TEST_CASE("mse_loss and l1_loss match PyTorch for every reduction") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("mse_" + r, {"x", "t"}, {}, [&](const Inputs& in) { return mse_loss(in["x"], in["t"], r); });
    nn_test::run_case_all("mse3d_" + r, {"x", "t"}, {}, [&](const Inputs& in) { return mse_loss(in["x"], in["t"], r); });
    nn_test::run_case_all("l1_" + r, {"x", "t"}, {}, [&](const Inputs& in) { return l1_loss(in["x"], in["t"], r); });
  }
}

TEST_CASE("binary_cross_entropy matches PyTorch, incl. weights and probabilities of exactly 0 and 1") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("bce_" + r, {"x", "t"}, {}, [&](const Inputs& in) {
      return binary_cross_entropy(in["x"], in["t"], Tensor(), r);
    });
    nn_test::run_case_all("bce_w_" + r, {"x", "t"}, {"w"}, [&](const Inputs& in) {
      return binary_cross_entropy(in["x"], in["t"], in["w"], r);
    });
  }
  // log clamped at -100 (loss 100), gradient (x - t) / max(x (1 - x), 1e-12)
  nn_test::run_case_all("bce_edge", {"x"}, {"t"}, [](const Inputs& in) {
    return binary_cross_entropy(in["x"], in["t"], Tensor(), "none");
  });
}

TEST_CASE("binary_cross_entropy_with_logits matches PyTorch, incl. weight, pos_weight and logits of +-1000") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("bcel_" + r, {"x", "t"}, {}, [&](const Inputs& in) {
      return binary_cross_entropy_with_logits(in["x"], in["t"], Tensor(), Tensor(), r);
    });
    nn_test::run_case_all("bcel_wpw_" + r, {"x", "t"}, {"w", "pw"}, [&](const Inputs& in) {
      return binary_cross_entropy_with_logits(in["x"], in["t"], in["w"], in["pw"], r);
    });
  }
  nn_test::run_case_all("bcel_large", {"x", "t"}, {"pw"}, [](const Inputs& in) {
    return binary_cross_entropy_with_logits(in["x"], in["t"], Tensor(), in["pw"], "none");
  });
}

TEST_CASE("cross_entropy with class indices matches PyTorch: weights, ignore_index, label smoothing, (N, C, d1, d2)") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("ce_" + r, {"x"}, {"t"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], Tensor(), -100, r);
    });
    nn_test::run_case_all("ce_w_" + r, {"x"}, {"t", "w"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], in["w"], -100, r);
    });
    nn_test::run_case_all("ce_wls_" + r, {"x"}, {"t", "w"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], in["w"], -100, r, 0.15);
    });
    nn_test::run_case_all("ce_ls_" + r, {"x"}, {"t"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], Tensor(), -100, r, 0.3);
    });
    nn_test::run_case_all("ce4d_" + r, {"x"}, {"t", "w"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], in["w"], 1, r, 0.2);
    });
  }
  nn_test::run_case_all("ce_large", {"x"}, {"t"}, [](const Inputs& in) {
    return cross_entropy(in["x"], in["t"], Tensor(), -100, "none");
  });
  nn_test::run_case_all("ce_unbatched", {"x"}, {"t"}, [](const Inputs& in) {
    return cross_entropy(in["x"], in["t"], Tensor(), -100, "mean", 0.1);
  });
  nn_test::run_case_all("ce_all_ignored_sum", {"x"}, {"t"}, [](const Inputs& in) {
    return cross_entropy(in["x"], in["t"], Tensor(), -100, "sum");
  });
}

TEST_CASE("cross_entropy with probability targets matches PyTorch (the target gets a gradient too)") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("ceprob_" + r, {"x", "t"}, {"w"}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], in["w"], -100, r, 0.1);
    });
    nn_test::run_case_all("ceprob3d_" + r, {"x", "t"}, {}, [&](const Inputs& in) {
      return cross_entropy(in["x"], in["t"], Tensor(), -100, r);
    });
  }
}

TEST_CASE("nll_loss matches PyTorch with weights and ignore_index") {
  for (std::string r : kReductions) {
    nn_test::run_case_all("nll_w_" + r, {"x"}, {"t", "w"}, [&](const Inputs& in) {
      return nll_loss(in["x"], in["t"], in["w"], -100, r);
    });
    nn_test::run_case_all("nll3d_" + r, {"x"}, {"t"}, [&](const Inputs& in) { return nll_loss(in["x"], in["t"], Tensor(), -100, r); });
  }
}

TEST_CASE("kl_div and gaussian_kl match PyTorch for every reduction incl. batchmean") {
  for (std::string r : {"mean", "sum", "none", "batchmean"}) {
    nn_test::run_case_all("kl_" + r, {"x", "t"}, {}, [&](const Inputs& in) { return kl_div(in["x"], in["t"], r); });
    nn_test::run_case_all("kl0_" + r, {"x"}, {"t"}, [&](const Inputs& in) { return kl_div(in["x"], in["t"], r); });
    nn_test::run_case_all("kllog_" + r, {"x", "t"}, {}, [&](const Inputs& in) { return kl_div(in["x"], in["t"], r, true); });
    nn_test::run_case_all("gkl_" + r, {"mu", "logvar"}, {}, [&](const Inputs& in) {
      return gaussian_kl(in["mu"], in["logvar"], r);
    });
  }
}

// ---- gradients --------------------------------------------------------------------------

TEST_CASE("losses pass gradcheck; mse, bce_with_logits and cross_entropy also gradgradcheck") {
  manual_seed(17);
  Tensor x = randn({3, 4}, kFloat64).requires_grad_();
  Tensor t = randn({3, 4}, kFloat64).requires_grad_();
  Tensor p = (rand({3, 4}, kFloat64) * 0.8 + 0.1).requires_grad_();
  Tensor q = rand({3, 4}, kFloat64).requires_grad_();
  Tensor w = rand({4}, kFloat64) + 0.5, pw = rand({4}, kFloat64) * 2 + 0.5;
  Tensor idx = tensor(std::vector<int64_t>{0, 3, -100}, {3});
  for (std::string r : kReductions) {
    INFO("reduction " << r);
    nn_test::check_grad([&](const TensorList& in) { return mse_loss(in[0], in[1], r); }, {x, t}, true);
    nn_test::check_grad([&](const TensorList& in) { return l1_loss(in[0], in[1], r); }, {x, t});
    nn_test::check_grad([&](const TensorList& in) { return binary_cross_entropy(in[0], in[1], w, r); }, {p, q}, true);
    nn_test::check_grad([&](const TensorList& in) { return binary_cross_entropy_with_logits(in[0], in[1], w, pw, r); },
                        {x, q}, true);
    nn_test::check_grad([&](const TensorList& in) { return binary_cross_entropy_with_logits(in[0], in[1], Tensor(), Tensor(), r); },
                        {x, q}, true);
    nn_test::check_grad([&](const TensorList& in) { return cross_entropy(in[0], idx, w, -100, r, 0.2); }, {x}, true);
    nn_test::check_grad([&](const TensorList& in) { return cross_entropy(in[0], idx, Tensor(), -100, r); }, {x}, true);
    nn_test::check_grad([&](const TensorList& in) { return cross_entropy(in[0], softmax(in[1], 1), w, -100, r, 0.1); },
                        {x, t}, true);
    nn_test::check_grad([&](const TensorList& in) { return nll_loss(in[0], idx, w, -100, r); }, {x}, true);
    nn_test::check_grad([&](const TensorList& in) { return kl_div(log_softmax(in[0], 1), softmax(in[1], 1), r); }, {x, t}, true);
    nn_test::check_grad([&](const TensorList& in) { return kl_div(in[0], in[1], r, true); }, {x, t}, true);
    nn_test::check_grad([&](const TensorList& in) { return gaussian_kl(in[0], in[1], r); }, {x, t}, true);
  }
  // (N, C, d1, d2) cross_entropy with a custom ignore_index, second order
  Tensor x4 = randn({2, 3, 2, 2}, kFloat64).requires_grad_();
  Tensor t4 = tensor(std::vector<int64_t>{0, 2, 1, 1, 2, 0, 1, 2}, {2, 2, 2});
  Tensor w3 = rand({3}, kFloat64) + 0.5;
  nn_test::check_grad([&](const TensorList& in) { return cross_entropy(in[0], t4, w3, 1, "mean", 0.25); }, {x4}, true);
  nn_test::check_grad([&](const TensorList& in) { return cross_entropy(in[0], t4, w3, 1, "none", 0.25); }, {x4}, true);
}

TEST_CASE("cross_entropy: the fused kernel, the tensor-op backward and log_softmax + nll_loss agree") {
  manual_seed(23);
  for (Dtype dt : {kFloat64, kFloat32}) {
    const double tol = dt == kFloat64 ? 1e-10 : 1e-4;
    for (bool spatial : {false, true}) {
      Tensor x = (spatial ? randn({8, 10, 6, 7}, dt) : randn({300, 10}, dt)) * 3.0;
      x.requires_grad_();
      Shape ts = spatial ? Shape{8, 6, 7} : Shape{300};
      Tensor t = randint(0, 10, ts);
      t = where(eq(randint(0, 7, ts), 0.0), full({}, -1, kInt64), t);  // ~1/7 ignored, ignore_index = -1
      Tensor w = rand({10}, dt) + 0.2;
      for (std::string r : kReductions) {
        for (double ls : {0.0, 0.1}) {
          INFO(dtype_name(dt) << " spatial " << spatial << " reduction " << r << " label_smoothing " << ls);
          auto f = [&] { return cross_entropy(x, t, w, -1, r, ls); };
          Tensor y = f();
          Tensor gy = randn(y.shape(), dt);
          TensorList gf = nn_test::grads_via(f, {x}, gy, false), gc = nn_test::grads_via(f, {x}, gy, true);
          CHECK_CLOSE(gf[0], gc[0], tol, tol);
          if (ls == 0.0) {  // the composition log_softmax + nll_loss: forward and its autograd backward
            auto ref = [&] { return nll_loss(log_softmax(x, 1), t, w, -1, r); };
            CHECK_CLOSE(y, ref(), tol, tol);
            Tensor g_ref = nn_test::grads_via(ref, {x}, gy, false)[0];
            CHECK_CLOSE(gf[0], g_ref, tol, tol);
          }
        }
      }
    }
  }
}

TEST_CASE("loss behaviour: shapes of reduction none, all-ignored mean is NaN, no graph without grad") {
  Tensor x = randn({2, 3, 4, 5});
  Tensor t = randint(0, 3, {2, 4, 5});
  CHECK(cross_entropy(x, t, Tensor(), -100, "none").shape() == Shape{2, 4, 5});
  CHECK(cross_entropy(x, t).dim() == 0);
  CHECK(std::isnan(cross_entropy(randn({2, 3}), full({2}, -100, kInt64)).item<double>()));
  CHECK(std::isnan(nll_loss(randn({2, 3}), full({2}, -100, kInt64)).item<double>()));
  CHECK_FALSE(cross_entropy(x, t).requires_grad());
  CHECK(cross_entropy(x.clone().requires_grad_(), t).requires_grad());
  // the target of a class-index loss never needs a gradient; the class weight gets none
  Tensor w = ones({3}).requires_grad_();
  Tensor xr = x.clone().requires_grad_();
  cross_entropy(xr, t, w).backward();
  CHECK(xr.grad().defined());
  CHECK_FALSE(w.grad().defined());
  // kl_div where the target is 0: loss 0, the target's gradient -input (finite, unlike PyTorch's NaN)
  Tensor lp = tensor({-1.5, -0.3}, kFloat64).requires_grad_(), tg = tensor({0.0, 1.0}, kFloat64).requires_grad_();
  Tensor kl = kl_div(lp, tg, "none");
  CHECK(kl.to_vector<double>()[0] == 0.0);
  kl.sum().backward();
  CHECK_CLOSE(tg.grad(), tensor({1.5, 1.0 + 0.3}, kFloat64), 1e-15, 1e-15);  // log t + 1 - x where t > 0
  CHECK_CLOSE(lp.grad(), tensor({0.0, -1.0}, kFloat64), 0, 0);
}

// ---- errors ------------------------------------------------------------------------------

TEST_CASE("loss errors name the op, the shapes and the offending value") {
  Tensor x = randn({5, 4});
  CHECK_THROWS_WITH(mse_loss(randn({3, 1}), randn({3})),
                    Catch::Contains("mse_loss: target of shape (3,) does not match the input shape (3, 1)"));
  CHECK_THROWS_WITH(l1_loss(randn({2, 2}), randn({2, 3})), Catch::Contains("l1_loss: target of shape (2, 3)"));
  CHECK_THROWS_WITH(mse_loss(zeros({2}, kInt64), zeros({2}, kInt64)),
                    Catch::Contains("mse_loss: expected a floating-point input, got int64"));
  CHECK_THROWS_WITH(mse_loss(x, x, "avg"), Catch::Contains("mse_loss: reduction must be") && Catch::Contains("\"avg\""));
  CHECK_THROWS_WITH(cross_entropy(x, tensor(std::vector<int64_t>{0, 7, 1, 2, 3}, {5})),
                    Catch::Contains("cross_entropy: target 7 at flat position 1 is out of range for 4 classes"));
  CHECK_THROWS_WITH(nll_loss(x, tensor(std::vector<int64_t>{0, 1, -3, 2, 3}, {5})),
                    Catch::Contains("nll_loss: target -3 at flat position 2 is out of range for 4 classes"));
  CHECK_THROWS_WITH(cross_entropy(x, tensor(std::vector<int64_t>{0, 1, 2, 3}, {4})),
                    Catch::Contains("cross_entropy: target of shape (4,) does not match the input of shape (5, 4)") &&
                        Catch::Contains("expected class indices of shape (5,)"));
  CHECK_THROWS_WITH(cross_entropy(x, randn({5})),
                    Catch::Contains("probability target of shape (5,) does not match the input shape (5, 4)") &&
                        Catch::Contains("int64"));
  CHECK_THROWS_WITH(cross_entropy(x, zeros({5}, kBool)), Catch::Contains("expected int64 class indices as target, got bool"));
  CHECK_THROWS_WITH(cross_entropy(x, zeros({5}, kInt64), ones({3})), Catch::Contains("class weight must have shape (4,)"));
  CHECK_THROWS_WITH(cross_entropy(x, zeros({5}, kInt64), Tensor(), -100, "mean", 1.5),
                    Catch::Contains("label_smoothing must be in [0, 1]"));
  CHECK_THROWS_WITH(cross_entropy(zeros({5, 4}, kInt64), zeros({5}, kInt64)),
                    Catch::Contains("cross_entropy: expected a floating-point input, got int64"));
  CHECK_THROWS_WITH(binary_cross_entropy(tensor({0.5, 1.5}), tensor({0.0, 1.0})),
                    Catch::Contains("binary_cross_entropy: all elements of the input must be probabilities") &&
                        Catch::Contains("got 1.5 at flat position 1"));
  CHECK_THROWS_WITH(binary_cross_entropy_with_logits(x, x, Tensor(), ones({3})),
                    Catch::Contains("pos_weight of shape (3,) cannot be broadcast to the input shape (5, 4)"));
  CHECK_THROWS_WITH(kl_div(x, x, "batch"), Catch::Contains("\"batchmean\""));
  CHECK_THROWS_WITH(gaussian_kl(randn({2, 3}), randn({3, 2})),
                    Catch::Contains("gaussian_kl: mu of shape (2, 3) and logvar of shape (3, 2)"));
}
