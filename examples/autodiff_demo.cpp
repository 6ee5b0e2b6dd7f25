// autodiff_demo: genai's tensor core and autograd in one page.
//
// Trains a two-layer MLP from scratch to separate two interleaved spirals, with
// nothing but tensors, autograd and a hand-written SGD step, then shows a
// gradient of a gradient. Runs in a few seconds:
//
//   autodiff_demo [--steps N] [--seed S]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <genai/genai.hpp>

using namespace genai;

// Two spirals of n points each: x (2n, 2), labels y (2n,) in {0, 1}.
static void make_spirals(int64_t n, Tensor& x, Tensor& y) {
  std::vector<float> pts;
  std::vector<int64_t> labels;
  Generator gen(7);
  for (int c = 0; c < 2; ++c)
    for (int64_t i = 0; i < n; ++i) {
      double r = 0.2 + 0.8 * static_cast<double>(i) / static_cast<double>(n);
      double t = 3.0 * M_PI * static_cast<double>(i) / static_cast<double>(n) + c * M_PI;
      pts.push_back(static_cast<float>(r * std::cos(t) + 0.02 * gen.normal()));
      pts.push_back(static_cast<float>(r * std::sin(t) + 0.02 * gen.normal()));
      labels.push_back(c);
    }
  x = tensor(pts, {2 * n, 2});
  y = tensor(labels, {2 * n});
}

int main(int argc, char** argv) {
  int steps = 2000;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::printf("usage: autodiff_demo [--steps N] [--seed S]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  manual_seed(seed);
  Tensor x, y;
  make_spirals(200, x, y);
  Tensor target = one_hot(y, 2).to(kFloat32);  // (N, 2)

  // parameters of a 2 -> 64 -> 64 -> 2 MLP
  const int64_t h = 64;
  Tensor w1 = (randn({h, 2}) * std::sqrt(1.0 / 2)).requires_grad_();
  Tensor b1 = zeros({h}).requires_grad_();
  Tensor w2 = (randn({h, h}) * std::sqrt(1.0 / h)).requires_grad_();
  Tensor b2 = zeros({h}).requires_grad_();
  Tensor w3 = (randn({2, h}) * std::sqrt(1.0 / h)).requires_grad_();
  Tensor b3 = zeros({2}).requires_grad_();
  std::vector<Tensor> params{w1, b1, w2, b2, w3, b3};

  std::printf("training a 2-64-64-2 MLP on two spirals (%lld points), SGD with momentum\n",
              static_cast<long long>(x.size(0)));
  std::vector<Tensor> velocity;
  for (auto& p : params) velocity.push_back(zeros_like(p));
  float loss_v = 0;
  for (int step = 1; step <= steps; ++step) {
    Tensor hid = tanh(linear(x, w1, b1));
    hid = tanh(linear(hid, w2, b2));
    Tensor logits = linear(hid, w3, b3);                        // (N, 2)
    Tensor loss = -(log_softmax(logits, 1) * target).sum({1}).mean();  // cross-entropy
    for (auto& p : params) p.set_grad(Tensor());
    loss.backward();
    {
      NoGradGuard no_grad;  // the update itself is not recorded
      for (size_t i = 0; i < params.size(); ++i) {
        velocity[i] = velocity[i] * 0.9 + params[i].grad();
        params[i].sub_(velocity[i] * 0.05);
      }
    }
    loss_v = loss.item();
    if (step == 1 || step % 250 == 0) {
      float acc = eq(argmax(logits, 1), y).to(kFloat32).mean().item();
      std::printf("step %5d  loss %.4f  accuracy %.1f%%\n", step, loss_v, 100.0 * acc);
    }
  }

  // gradients of gradients: d/dx of d/dx tanh(x) = -2 tanh(x) (1 - tanh(x)^2)
  Tensor z = tensor({0.5}).requires_grad_();
  Tensor dz = autograd::grad({tanh(z)}, {z}, {}, false, /*create_graph=*/true)[0];
  Tensor d2z = autograd::grad({dz}, {z})[0];
  double t = std::tanh(0.5);
  std::printf("d2/dx2 tanh(x) at 0.5: autograd %.6f, closed form %.6f\n", d2z.item<double>(),
              -2 * t * (1 - t * t));
  return loss_v < 0.2f ? 0 : 1;
}
