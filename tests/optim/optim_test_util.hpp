// Shared pieces of the optim tests: the fixture problem of make_optim_fixtures.py
// and the optimizer configurations it runs, rebuilt with genai.
#pragma once

#include <functional>
#include <genai/optim/all.hpp>
#include <memory>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace optim_test {

using namespace genai;

inline const char* kFixture = "optim.safetensors";

/// loss = mean((tanh(X W^T + b) V^T - Y)^2), negated for the *_maximize configs.
struct Problem {
  Tensor W, b, V;  // (4, 3), (4,), (2, 4): the parameters
  Tensor X, Y;     // (16, 3), (16, 2)
  bool negate = false;

  std::vector<Tensor> params() const { return {W, b, V}; }
  Tensor loss() const {
    Tensor h = tanh(matmul(X, W.t()) + b);  // (16, 4)
    Tensor r = matmul(h, V.t()) - Y;        // (16, 2)
    Tensor l = mean(square(r));
    return negate ? neg(l) : l;
  }
};

inline Tensor leaf(const Tensor& t, Dtype d) {
  Tensor x = t.to(d).clone();
  x.requires_grad_(true);
  return x;
}

/// The fixture's initial parameters and data in dtype d.
inline Problem make_problem(Dtype d, const std::string& config = "") {
  Problem p;
  p.W = leaf(genai_test::fixture(kFixture, "init.W"), d);
  p.b = leaf(genai_test::fixture(kFixture, "init.b"), d);
  p.V = leaf(genai_test::fixture(kFixture, "init.V"), d);
  p.X = genai_test::fixture(kFixture, "data.X").to(d);
  p.Y = genai_test::fixture(kFixture, "data.Y").to(d);
  p.negate = config.size() > 9 && config.substr(config.size() - 9) == "_maximize";
  return p;
}

inline const std::vector<std::string>& config_names() {
  static const std::vector<std::string> names = {"sgd",
                                                 "sgd_momentum",
                                                 "sgd_nesterov",
                                                 "sgd_wd",
                                                 "sgd_groups",
                                                 "sgd_maximize",
                                                 "adam",
                                                 "adam_wd",
                                                 "adam_amsgrad",
                                                 "adam_groups",
                                                 "adam_maximize",
                                                 "adamw",
                                                 "adamw_amsgrad",
                                                 "rmsprop",
                                                 "rmsprop_centered",
                                                 "rmsprop_momentum",
                                                 "rmsprop_centered_momentum",
                                                 "adagrad",
                                                 "adagrad_opts",
                                                 "lbfgs",
                                                 "lbfgs_wolfe"};
  return names;
}

/// The optimizer of config `name` over the problem's parameters (as in make_optim_fixtures.py).
inline std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& name, const Problem& p) {
  using optim::ParamGroup;
  const Tensor &W = p.W, &b = p.b, &V = p.V;
  if (name == "sgd") return std::make_unique<optim::SGD>(p.params(), optim::SGDOptions{.lr = 0.1});
  if (name == "sgd_momentum")
    return std::make_unique<optim::SGD>(p.params(), optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1});
  if (name == "sgd_nesterov")
    return std::make_unique<optim::SGD>(p.params(), optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true});
  if (name == "sgd_wd")
    return std::make_unique<optim::SGD>(
        std::vector<ParamGroup>{ParamGroup({W, V}, {{"weight_decay", 0.05}}), ParamGroup({b})},
        optim::SGDOptions{.lr = 0.1, .momentum = 0.5});
  if (name == "sgd_groups")
    return std::make_unique<optim::SGD>(std::vector<ParamGroup>{ParamGroup({W, V}), ParamGroup({b}, {{"lr", 0.3}})},
                                        optim::SGDOptions{.lr = 0.05, .momentum = 0.9});
  if (name == "sgd_maximize")
    return std::make_unique<optim::SGD>(p.params(), optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .maximize = true});
  if (name == "adam") return std::make_unique<optim::Adam>(p.params(), optim::AdamOptions{.lr = 0.01});
  if (name == "adam_wd")
    return std::make_unique<optim::Adam>(
        std::vector<ParamGroup>{ParamGroup({W, V}, {{"weight_decay", 0.1}}), ParamGroup({b})},
        optim::AdamOptions{.lr = 0.01});
  if (name == "adam_amsgrad")
    return std::make_unique<optim::Adam>(p.params(),
                                         optim::AdamOptions{.lr = 0.02, .betas = {0.8, 0.99}, .amsgrad = true});
  if (name == "adam_groups")
    return std::make_unique<optim::Adam>(std::vector<ParamGroup>{ParamGroup({W, V}), ParamGroup({b}, {{"lr", 0.05}})},
                                         optim::AdamOptions{.lr = 0.01});
  if (name == "adam_maximize")
    return std::make_unique<optim::Adam>(p.params(), optim::AdamOptions{.lr = 0.01, .maximize = true});
  if (name == "adamw")
    return std::make_unique<optim::AdamW>(
        std::vector<ParamGroup>{ParamGroup({W, V}, {{"weight_decay", 0.1}}), ParamGroup({b}, {{"weight_decay", 0.0}})},
        optim::AdamWOptions{.lr = 0.01, .betas = {0.9, 0.95}});
  if (name == "adamw_amsgrad")
    return std::make_unique<optim::AdamW>(p.params(), optim::AdamWOptions{.lr = 0.01, .amsgrad = true});
  if (name == "rmsprop") return std::make_unique<optim::RMSprop>(p.params(), optim::RMSpropOptions{.lr = 0.01});
  if (name == "rmsprop_centered")
    return std::make_unique<optim::RMSprop>(p.params(), optim::RMSpropOptions{.lr = 0.01, .centered = true});
  if (name == "rmsprop_momentum")
    return std::make_unique<optim::RMSprop>(
        std::vector<ParamGroup>{ParamGroup({W, V}, {{"weight_decay", 0.01}}), ParamGroup({b})},
        optim::RMSpropOptions{.lr = 0.005, .alpha = 0.9, .momentum = 0.9});
  if (name == "rmsprop_centered_momentum")
    return std::make_unique<optim::RMSprop>(p.params(),
                                            optim::RMSpropOptions{.lr = 0.005, .momentum = 0.5, .centered = true});
  if (name == "adagrad") return std::make_unique<optim::Adagrad>(p.params(), optim::AdagradOptions{.lr = 0.1});
  if (name == "adagrad_opts")
    return std::make_unique<optim::Adagrad>(
        std::vector<ParamGroup>{ParamGroup({W, V}, {{"weight_decay", 0.01}}), ParamGroup({b})},
        optim::AdagradOptions{.lr = 0.1, .lr_decay = 0.01, .initial_accumulator_value = 0.1, .eps = 1e-8});
  if (name == "lbfgs")
    return std::make_unique<optim::LBFGS>(p.params(), optim::LBFGSOptions{.max_iter = 2, .history_size = 10});
  if (name == "lbfgs_wolfe")
    return std::make_unique<optim::LBFGS>(
        p.params(), optim::LBFGSOptions{.max_iter = 2, .history_size = 10, .line_search_fn = "strong_wolfe"});
  FAIL("unknown optimizer config " << name);
  return nullptr;
}

/// `steps` calls of opt.step(closure), as the fixture script; returns the losses step() returned.
inline std::vector<double> run_steps(optim::Optimizer& opt, const Problem& p, int steps) {
  std::vector<double> losses;
  optim::Closure closure = [&] {
    opt.zero_grad();
    Tensor l = p.loss();
    l.backward();
    return l;
  };
  for (int s = 0; s < steps; ++s) losses.push_back(opt.step(closure).item<double>());
  return losses;
}

inline Tensor vec(const std::vector<double>& v) { return tensor(v, {static_cast<int64_t>(v.size())}, kFloat64); }

}  // namespace optim_test
