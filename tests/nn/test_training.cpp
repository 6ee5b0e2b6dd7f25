// A small MLP and a small CNN, built from genai's modules, loaded with the
// initialization PyTorch used, trained for 20 steps: the losses and the final
// parameters must follow PyTorch's (tests/fixtures/make_training_fixtures.py).
#include "test_util.hpp"

#include <genai/nn/conv.hpp>
#include <genai/nn/linear.hpp>
#include <genai/nn/norm.hpp>
#include <genai/ops/loss.hpp>
#include <genai/optim/adam.hpp>
#include <genai/optim/sgd.hpp>

using namespace genai;
static const char* kFile = "training.safetensors";

/// The entries of the fixture under "<prefix>." with the prefix removed.
static io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(k.substr(prefix.size() + 1), v);
  return m;
}

static void check_params(nn::Module& model, const std::string& prefix, double rtol, double atol) {
  io::TensorMap want = sub_map(prefix);
  for (const auto& [name, t] : model.state_dict()) {
    INFO(name);
    REQUIRE(want.count(name) == 1);
    CHECK_CLOSE(t, want.at(name).to(t.dtype()), rtol, atol);
  }
}

TEST_CASE("an MLP trained with SGD follows PyTorch's losses for 20 steps") {
  auto mlp = std::make_shared<nn::Sequential>();
  mlp->push_back(std::make_shared<nn::Linear>(8, 16));
  mlp->push_back(std::make_shared<nn::Tanh>());
  mlp->push_back(std::make_shared<nn::Linear>(16, 4));
  mlp->load_state_dict(sub_map("mlp.init"));
  Tensor x = genai_test::fixture(kFile, "mlp.x"), y = genai_test::fixture(kFile, "mlp.y");
  std::vector<double> want = genai_test::fixture(kFile, "mlp.losses").to_vector<double>();
  optim::SGD opt(mlp->parameters(), {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(mlp->forward(x), y);
    loss.backward();
    opt.step();
    INFO("step " << step);
    CHECK(loss.item<double>() == Approx(want[step]).epsilon(1e-5));
  }
  check_params(*mlp, "mlp.final", 1e-4, 1e-5);
}

TEST_CASE("a CNN with batch norm trained with Adam follows PyTorch's losses for 20 steps") {
  auto cnn = std::make_shared<nn::Sequential>();
  cnn->push_back(std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1, 1, 1, /*bias=*/false));
  cnn->push_back(std::make_shared<nn::BatchNorm2d>(4));
  cnn->push_back(std::make_shared<nn::ReLU>());
  cnn->push_back(std::make_shared<nn::MaxPool2d>(2));
  cnn->push_back(std::make_shared<nn::Flatten>());
  cnn->push_back(std::make_shared<nn::Linear>(64, 3));
  cnn->load_state_dict(sub_map("cnn.init"));
  Tensor x = genai_test::fixture(kFile, "cnn.x"), y = genai_test::fixture(kFile, "cnn.y");
  std::vector<double> want = genai_test::fixture(kFile, "cnn.losses").to_vector<double>();
  optim::Adam opt(cnn->parameters(), {.lr = 1e-2});
  cnn->train();
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(cnn->forward(x), y);
    loss.backward();
    opt.step();
    INFO("step " << step);
    CHECK(loss.item<double>() == Approx(want[step]).epsilon(1e-4));
  }
  // parameters and BatchNorm's running statistics (and num_batches_tracked)
  check_params(*cnn, "cnn.final", 2e-3, 1e-4);
  cnn->eval();
  NoGradGuard ng;
  CHECK_CLOSE(cnn->forward(x), genai_test::fixture(kFile, "cnn.eval_logits").to(kFloat32), 2e-3, 1e-4);
}
