// Golden tests of the Fashion-MNIST classifier (include/genai/models/eval/fmnist_classifier.hpp)
// against PyTorch (tests/fixtures/make_fid_fixtures.py): parameter names and counts,
// training-mode features, logits, loss and every gradient (parameters and input), five
// AdamW steps and the state after them (running statistics included), eval-mode logits;
// plus the evaluation helpers (classify, score_samples) and the augmentation.
#include "test_util.hpp"

#include <genai/models/eval/fid.hpp>
#include <genai/models/eval/fmnist_classifier.hpp>
#include <genai/ops/loss.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
static const char* kClfFile = "fid.safetensors";

namespace {

Tensor clf_fx(const std::string& name, Dtype d) { return genai_test::fixture(kClfFile, name).to(d).clone(); }

io::TensorMap sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kClfFile))
    if (k.rfind(prefix, 0) == 0) m.emplace(k.substr(prefix.size()), v);
  return m;
}

models::FMNISTClassifierConfig small_cfg() {
  return {.channels1 = 4, .channels2 = 8, .pooled = 3, .feature_dim = 16, .num_classes = 10, .dropout = 0.0};
}

std::shared_ptr<models::FMNISTClassifier> load_small(Dtype d) {
  auto m = std::make_shared<models::FMNISTClassifier>(small_cfg());
  m->to(d);
  m->load_state_dict(sub_map("clf.init."));  // strict: PyTorch's names and shapes
  return m;
}

}  // namespace

TEST_CASE("FMNISTClassifier has PyTorch's parameter names and counts") {
  models::FMNISTClassifier def;
  CHECK(def.num_parameters() == genai_test::fixture(kClfFile, "clf.num_params_default").item<int64_t>());
  CHECK(def.num_parameters() == 94058);
  models::FMNISTClassifier small(small_cfg());
  CHECK(small.num_parameters() == genai_test::fixture(kClfFile, "clf.num_params").item<int64_t>());
  io::TensorMap torch_sd = sub_map("clf.init.");
  io::TensorMap sd = small.state_dict();
  CHECK(sd.size() == torch_sd.size());
  for (const auto& [k, v] : torch_sd) {
    INFO("key " << k);
    REQUIRE(sd.count(k) == 1);
    CHECK(sd.at(k).shape() == v.shape());
  }
}

TEST_CASE("FMNISTClassifier forward and gradients match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    // batch norm over 3 images makes the float32 gradients of early layers sensitive to rounding
    const double rtol = d == kFloat64 ? 1e-10 : 1e-4, atol = d == kFloat64 ? 1e-12 : 1e-5;
    const double grtol = d == kFloat64 ? 1e-9 : 1e-3, gatol = d == kFloat64 ? 1e-12 : 1e-5;
    auto m = load_small(d);
    m->train();
    Tensor x = clf_fx("clf.x", d).requires_grad_();
    Tensor f = m->features(x);
    CHECK(f.shape() == Shape{3, 16});
    CHECK_CLOSE(f, clf_fx("clf.features", d), rtol, atol);
    Tensor logits = m->head(f);
    CHECK_CLOSE(logits, clf_fx("clf.logits", d), rtol, atol);
    Tensor loss = cross_entropy(logits, genai_test::fixture(kClfFile, "clf.target"));
    CHECK_CLOSE(loss, clf_fx("clf.loss", d), rtol, atol);
    loss.backward();
    for (const auto& [name, p] : m->named_parameters()) {
      INFO("parameter " << name);
      REQUIRE(p.grad().defined());
      CHECK_CLOSE(p.grad(), clf_fx("clf.grad." + name, d), grtol, gatol);
    }
    CHECK_CLOSE(x.grad(), clf_fx("clf.grad_x", d), grtol, gatol);
  }
}

TEST_CASE("FMNISTClassifier: five AdamW steps, running statistics and eval mode match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    const double rtol = d == kFloat64 ? 1e-9 : 1e-3, atol = d == kFloat64 ? 1e-11 : 1e-4;
    auto m = load_small(d);
    m->train();
    optim::AdamW opt(m->parameters(), {.lr = 1e-2, .weight_decay = 1e-2});
    Tensor x = clf_fx("clf.x", d), target = genai_test::fixture(kClfFile, "clf.target");
    std::vector<double> losses;
    for (int i = 0; i < 5; ++i) {
      opt.zero_grad();
      Tensor l = cross_entropy(m->forward(x), target);
      l.backward();
      opt.step();
      losses.push_back(l.item<double>());
    }
    CHECK_CLOSE(tensor(losses, {5}, kFloat64), clf_fx("clf.steps", kFloat64), rtol, atol);
    // Adam's update lr * m / sqrt(v) has size ~lr even for gradients near 0, so float32
    // rounding of such gradients moves a few weights by up to ~1e-3 (lr 1e-2) in 5 steps
    const double s_atol = d == kFloat64 ? atol : 2e-3;
    for (const auto& [k, v] : m->state_dict()) {
      INFO("state " << k);
      if (v.is_floating_point()) CHECK_CLOSE(v, clf_fx("clf.final." + k, d), rtol, s_atol);
      else CHECK(v.item<int64_t>() == genai_test::fixture(kClfFile, "clf.final." + k).item<int64_t>());
    }
    m->eval();
    NoGradGuard ng;
    CHECK_CLOSE(m->forward(x), clf_fx("clf.eval_logits", d), rtol, atol);
  }
}

TEST_CASE("classify and score_samples run the classifier in eval mode, in batches") {
  auto m = load_small(kFloat32);
  m->train();
  Tensor x = clf_fx("clf.x", kFloat32);
  Tensor imgs = cat({x, x, x}, 0);  // (9, 1, 28, 28)
  models::ClassifierOutputs o = models::classify(*m, imgs, /*batch=*/2);
  CHECK(m->is_training());  // mode restored
  CHECK(o.features.shape() == Shape{9, 16});
  CHECK(o.probs.shape() == Shape{9, 10});
  m->eval();
  NoGradGuard ng;
  CHECK_CLOSE(o.features.narrow(0, 3, 3), m->features(x), 1e-5, 1e-6);  // batches do not mix (eval mode)
  CHECK_CLOSE(sum(o.probs, {1}), ones({9}), 1e-5, 1e-6);
  // scoring a set against its own statistics: FID 0, class counts add up
  Tensor many = add(cat({x, x, x, x}, 0), mul(rand({12, 1, 28, 28}), 0.1));
  models::GaussianStats ref = models::gaussian_stats(models::classify(*m, many).features);
  models::SampleScores s = models::score_samples(*m, many, ref);
  CHECK(s.fid == Approx(0).margin(1e-5));  // 12 samples in 16 dims: singular covariances
  CHECK(s.n == 12);
  int64_t total = 0;
  for (int64_t c : s.class_counts) total += c;
  CHECK(total == 12);
  CHECK(s.score.mean >= 1.0 - 1e-9);
  CHECK(s.score.mean <= 10.0 + 1e-9);
  CHECK_THROWS_WITH(m->forward(rand({2, 1, 32, 32})), Catch::Contains("(2, 1, 32, 32)"));
}

TEST_CASE("random_shift_flip moves every image by at most max_shift, mirrored or not") {
  Generator g(5);
  const int64_t B = 64;
  Tensor x = zeros({B, 1, 28, 28});
  for (int64_t b = 0; b < B; ++b) x.data_ptr<float>()[b * 784 + 10 * 28 + 9] = 1.0f;  // one pixel at (10, 9)
  Tensor y = models::random_shift_flip(x, 2, g);
  CHECK(y.shape() == x.shape());
  int flipped = 0, moved = 0;
  for (int64_t b = 0; b < B; ++b) {
    const float* p = y.data_ptr<float>() + b * 784;
    int64_t count = 0, r = -1, c = -1;
    for (int64_t i = 0; i < 784; ++i)
      if (p[i] != 0) ++count, r = i / 28, c = i % 28;
    REQUIRE(count == 1);  // shifts of <= 2 keep the pixel inside
    CHECK(std::abs(r - 10) <= 2);
    const bool near_plain = std::abs(c - 9) <= 2, near_flip = std::abs(c - 18) <= 2;
    CHECK((near_plain || near_flip));
    flipped += near_flip;
    moved += (r != 10);
  }
  CHECK(flipped > 10);  // both branches happen (64 draws)
  CHECK(flipped < 54);
  CHECK(moved > 10);
  // max_shift 0: each image is itself or its mirror
  Tensor z = models::random_shift_flip(x, 0, g);
  for (int64_t b = 0; b < B; ++b) {
    const float* p = z.data_ptr<float>() + b * 784;
    CHECK((p[10 * 28 + 9] == 1.0f || p[10 * 28 + 18] == 1.0f));
  }
}
