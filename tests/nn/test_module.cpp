// Tests of nn::Module: naming, registration, state dicts, modes, init, layers.
#include "test_util.hpp"

#include <genai/nn/conv.hpp>
#include <genai/nn/init.hpp>
#include <genai/nn/linear.hpp>
#include <genai/nn/norm.hpp>

using namespace genai;

namespace {
struct Block : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::LayerNorm> ln;
  Block() {
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 4));
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(Shape{4}));
  }
  std::string type_name() const override { return "Block"; }
};
struct Net : nn::Module {
  std::shared_ptr<nn::ModuleList<Block>> layers;
  std::shared_ptr<nn::BatchNorm1d> bn;
  Tensor scale;
  Net() {
    auto enc = register_module("encoder", std::make_shared<nn::Module>());
    layers = std::make_shared<nn::ModuleList<Block>>();
    enc->register_module("layers", layers);
    layers->push_back(std::make_shared<Block>());
    layers->push_back(std::make_shared<Block>());
    bn = register_module("bn", std::make_shared<nn::BatchNorm1d>(4));
    scale = register_parameter("scale", ones({1}));
  }
  std::string type_name() const override { return "Net"; }
};
}  // namespace

TEST_CASE("parameters and buffers have nested dotted names in registration order") {
  Net net;
  std::vector<std::string> names;
  for (auto& [n, p] : net.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"scale", "encoder.layers.0.fc.weight", "encoder.layers.0.fc.bias",
                                          "encoder.layers.0.ln.weight", "encoder.layers.0.ln.bias",
                                          "encoder.layers.1.fc.weight", "encoder.layers.1.fc.bias",
                                          "encoder.layers.1.ln.weight", "encoder.layers.1.ln.bias", "bn.weight",
                                          "bn.bias"});
  std::vector<std::string> bufs;
  for (auto& [n, b] : net.named_buffers()) bufs.push_back(n);
  CHECK(bufs == std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
  for (auto& p : net.parameters()) CHECK(p.requires_grad());
  CHECK(net.num_parameters() == 1 + 2 * (16 + 4 + 4 + 4) + 8);
  auto sd = net.state_dict();
  CHECK(sd.size() == 14);
  CHECK(sd.count("bn.running_var") == 1);
  CHECK(net.named_modules().size() == 10);  // net, encoder, layers, 2 x (block, fc, ln), bn
}

TEST_CASE("duplicate or dotted names are refused") {
  nn::Module m;
  m.register_parameter("w", zeros({1}));
  CHECK_THROWS_WITH(m.register_parameter("w", zeros({1})), Catch::Contains("already registered"));
  CHECK_THROWS_WITH(m.register_buffer("a.b", zeros({1})), Catch::Contains("invalid name"));
}

TEST_CASE("load_state_dict copies values in place and strict mode names every problem") {
  Net a, b;
  Tensor handle = b.layers->operator[](0)->fc->weight;  // a handle kept by the user stays valid
  b.load_state_dict(a.state_dict());
  CHECK(handle.to_vector() == a.layers->operator[](0)->fc->weight.to_vector());
  for (auto& [n, t] : a.state_dict()) CHECK(t.to_vector<double>() == b.state_dict().at(n).to_vector<double>());

  auto sd = a.state_dict();
  sd.erase("bn.bias");
  sd["encoder.layers.9.fc.weight"] = zeros({4, 4});
  sd["scale"] = zeros({2});
  try {
    b.load_state_dict(sd);
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("missing keys (1)") != std::string::npos);
    CHECK(msg.find("bn.bias") != std::string::npos);
    CHECK(msg.find("unexpected keys (1)") != std::string::npos);
    CHECK(msg.find("encoder.layers.9.fc.weight") != std::string::npos);
    CHECK(msg.find("scale: checkpoint (2,) vs model (1,)") != std::string::npos);
  }
  auto r = b.load_state_dict(sd, /*strict=*/false);
  CHECK(r.missing == std::vector<std::string>{"bn.bias"});
  CHECK(r.unexpected.size() == 1);
  CHECK(r.mismatched.size() == 1);
}

TEST_CASE("train/eval propagate; zero_grad clears gradients; to(dtype) keeps handles") {
  Net net;
  net.eval();
  CHECK(!net.bn->is_training());
  CHECK(!net.layers->operator[](1)->fc->is_training());
  net.train();
  CHECK(net.bn->is_training());
  Tensor x = randn({3, 4});
  Tensor y = net.layers->operator[](0)->fc->forward(x).sum();
  y.backward();
  CHECK(net.layers->operator[](0)->fc->weight.grad().defined());
  net.zero_grad();
  CHECK(!net.layers->operator[](0)->fc->weight.grad().defined());
  Tensor w = net.layers->operator[](0)->fc->weight;
  net.to(kFloat64);
  CHECK(w.dtype() == kFloat64);
  CHECK(net.bn->running_mean.dtype() == kFloat64);
  CHECK(net.bn->num_batches_tracked.dtype() == kInt64);
  CHECK(net.layers->operator[](0)->fc->forward(x.to(kFloat64)).dtype() == kFloat64);
}

TEST_CASE("Sequential chains modules and names them by index") {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Linear>(3, 5));
  seq.push_back(std::make_shared<nn::ReLU>());
  seq.push_back(std::make_shared<nn::Linear>(5, 2, false));
  CHECK(seq.size() == 3);
  CHECK(seq.state_dict().count("2.weight") == 1);
  CHECK(seq.state_dict().count("2.bias") == 0);
  Tensor out = seq.forward(randn({7, 3}));
  CHECK(out.shape() == Shape{7, 2});
  CHECK(seq.repr().find("(1): ReLU()") != std::string::npos);
}

TEST_CASE("default initializations follow PyTorch's bounds") {
  manual_seed(0);
  nn::Linear lin(100, 50);
  double bound = 1.0 / std::sqrt(100.0);
  CHECK(lin.weight.abs().max().item<double>() <= bound);
  CHECK(lin.weight.abs().max().item<double>() > 0.9 * bound);
  CHECK(lin.bias.abs().max().item<double>() <= bound);
  nn::Conv2d conv(8, 16, 3);
  double cb = 1.0 / std::sqrt(8.0 * 9);
  CHECK(conv.weight.abs().max().item<double>() <= cb);
  CHECK(conv.weight.abs().max().item<double>() > 0.9 * cb);
  nn::ConvTranspose2d convt(8, 16, 4);  // fan_in from weight dim 1: 16 * 16
  CHECK(convt.weight.shape() == Shape{8, 16, 4, 4});
  CHECK(convt.weight.abs().max().item<double>() <= 1.0 / std::sqrt(16.0 * 16));
  nn::Embedding emb(10, 4, 3);
  CHECK(emb.weight[3].abs().sum().item() == 0.f);
  CHECK(std::abs(var(emb.weight.narrow(0, 4, 6), {}).item<double>() - 1.0) < 0.8);
  nn::BatchNorm2d bn(6);
  CHECK(bn.weight.sum().item() == 6.f);
  CHECK(bn.running_var.sum().item() == 6.f);
}

TEST_CASE("init functions draw from the right distributions") {
  manual_seed(1);
  Tensor w = empty({256, 512});
  nn::init::xavier_uniform_(w);
  double a = std::sqrt(6.0 / (256 + 512));
  CHECK(w.abs().max().item<double>() <= a);
  CHECK(std::abs(var(w, {}).item<double>() - a * a / 3) < 0.05 * a * a / 3);
  nn::init::kaiming_normal_(w, 0.0, "fan_in", "relu");
  CHECK(std::abs(var(w, {}).item<double>() - 2.0 / 512) < 0.05 * 2.0 / 512);
  nn::init::normal_(w, 3.0, 0.5);
  CHECK(std::abs(w.mean().item<double>() - 3.0) < 0.01);
  nn::init::trunc_normal_(w, 0.0, 1.0, -0.5, 0.5);
  CHECK(w.abs().max().item<double>() <= 0.5);
  nn::init::constant_(w, 0.25);
  CHECK(w.mean().item() == 0.25f);
  Tensor q = empty({6, 4});
  nn::init::orthogonal_(q, 2.0);
  CHECK_CLOSE(matmul(q.t(), q), eye(4) * 4.0, 1e-5, 1e-5);
  Tensor r = empty({3, 5});
  nn::init::orthogonal_(r);
  CHECK_CLOSE(matmul(r, r.t()), eye(3), 1e-5, 1e-5);
  CHECK(nn::init::calculate_gain("leaky_relu", 0.2) == Approx(std::sqrt(2.0 / 1.04)));
  CHECK_THROWS_WITH(nn::init::calculate_fans(empty({3})), Catch::Contains("at least 2 dimensions"));
}

TEST_CASE("layers produce the documented shapes") {
  CHECK(nn::Conv2d(3, 8, 3, 2, 1).forward(randn({2, 3, 9, 9})).shape() == Shape{2, 8, 5, 5});
  CHECK(nn::ConvTranspose2d(8, 4, 4, 2, 1).forward(randn({2, 8, 7, 7})).shape() == Shape{2, 4, 14, 14});
  CHECK(nn::GroupNorm(2, 4).forward(randn({3, 4, 5})).shape() == Shape{3, 4, 5});
  CHECK(nn::InstanceNorm2d(4).forward(randn({2, 4, 3, 3})).shape() == Shape{2, 4, 3, 3});
  CHECK(nn::RMSNorm(Shape{6}).forward(randn({2, 6})).shape() == Shape{2, 6});
  CHECK(nn::Embedding(10, 3).forward(tensor({1, 2, 9}, {3}, kInt64)).shape() == Shape{3, 3});
  CHECK(nn::Flatten().forward(randn({2, 3, 4})).shape() == Shape{2, 12});
  CHECK(nn::AdaptiveAvgPool2d(1).forward(randn({2, 3, 5, 5})).shape() == Shape{2, 3, 1, 1});
  CHECK(nn::Upsample(2.0).forward(randn({1, 1, 3, 3})).shape() == Shape{1, 1, 6, 6});
  nn::Dropout d(0.5);
  Tensor x = ones({1000});
  CHECK(d.forward(x).sum().item() != 1000.f);
  d.eval();
  CHECK(d.forward(x).sum().item() == 1000.f);
}
