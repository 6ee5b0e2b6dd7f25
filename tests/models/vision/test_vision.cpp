// Golden tests of include/genai/models/vision/{vgg,style_transfer,deepdream}.hpp against
// PyTorch (tests/fixtures/make_vgg_fixtures.py, a torchvision-layout VGG with random
// weights): VGG-19 (average pooling) and VGG-16 (max pooling) features at named layers,
// Gram matrices, the content / style / TV losses and their image gradient, Adam and
// L-BFGS runs on the image, luminance transfer, a jittered DeepDream step and a
// two-octave DeepDream; plus gradchecks of the losses, the fallback network, the
// weight loader and error handling.
#include "test_util.hpp"

#include <genai/autograd/gradcheck.hpp>
#include <genai/models/vision/deepdream.hpp>
#include <genai/models/vision/style_transfer.hpp>

using namespace genai;
using models::StyleTransfer;
using models::StyleTransferOptions;
using models::VGGConfig;
using models::VGGFeatures;
using models::VGGPooling;
static const char* kVggFile = "vgg.safetensors";

namespace {

Tensor vfx(const std::string& name, Dtype d) { return genai_test::fixture(kVggFile, name).to(d).clone(); }

io::TensorMap vgg_sub_map(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kVggFile))
    if (k.rfind(prefix + "features.", 0) == 0) m.emplace(k.substr(prefix.size()), v);
  return m;
}

VGGConfig cfg_a() { return {.depth = 19, .pooling = VGGPooling::Average, .width = 2, .last_layer = "relu4_2"}; }
VGGConfig cfg_b() { return {.depth = 16, .pooling = VGGPooling::Max, .width = 2, .last_layer = "relu3_3"}; }

std::shared_ptr<VGGFeatures> load_vgg(const VGGConfig& c, const std::string& prefix, Dtype d) {
  auto m = std::make_shared<VGGFeatures>(c);
  m->to(d);
  models::load_vgg_weights(*m, vgg_sub_map(prefix));
  return m;
}

StyleTransferOptions fixture_options() {
  return {.content_layers = {"relu4_2"},
          .content_layer_weights = {1.0},
          .style_layers = {"relu1_1", "relu2_1", "relu3_1", "relu4_1"},
          .style_layer_weights = {1.0, 0.8, 0.5, 0.3},
          .content_weight = 1.0,
          .style_weight = 1e3,
          .tv_weight = 0.5};
}

struct VTol {
  double rtol, atol;
};
VTol vtol(Dtype d) { return d == kFloat64 ? VTol{1e-10, 1e-12} : VTol{1e-4, 1e-5}; }

}  // namespace

TEST_CASE("VGG features match a torchvision-layout VGG at named layers") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    VTol t = vtol(d);
    auto a = load_vgg(cfg_a(), "a.", d);
    CHECK(a->layer_names().size() == 23);  // features.0 .. features.22 = relu4_2
    CHECK(a->layer_index("relu4_2") == 22);
    CHECK(a->layer_index("relu1_1") == 1);
    CHECK(a->channels("relu4_1") == 16);
    std::vector<std::string> taps = {"relu4_2", "relu1_1", "pool2", "relu2_1", "conv3_2", "relu3_1", "relu4_1"};
    std::vector<Tensor> f = a->extract(vfx("a.content", d), taps);
    for (size_t i = 0; i < taps.size(); ++i) {
      INFO(taps[i]);
      CHECK_CLOSE(f[i], vfx("a.feat." + taps[i], d), t.rtol, t.atol);
    }
    CHECK_CLOSE(a->forward(vfx("a.content", d)), vfx("a.feat.relu4_2", d), t.rtol, t.atol);
    CHECK_CLOSE(models::gram_matrix(f[3]), vfx("a.gram.relu2_1", d), t.rtol, t.atol);

    auto b = load_vgg(cfg_b(), "b.", d);
    std::vector<std::string> btaps = {"relu1_2", "relu2_2", "relu3_3"};
    std::vector<Tensor> fb = b->extract(vfx("b.x", d), btaps);
    for (size_t i = 0; i < btaps.size(); ++i) {
      INFO(btaps[i]);
      CHECK_CLOSE(fb[i], vfx("b.feat." + btaps[i], d), t.rtol, t.atol);
    }
  }
}

TEST_CASE("Style-transfer losses, image gradient and optimizer runs match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    VTol t = vtol(d);
    auto a = load_vgg(cfg_a(), "a.", d);
    StyleTransfer st(*a, fixture_options());
    st.set_targets(vfx("a.content", d), vfx("a.style", d));
    Tensor x = vfx("a.x", d).requires_grad_();
    models::StyleLosses l = st.losses(x);
    CHECK_CLOSE(l.total, vfx("a.loss.total", d), t.rtol, t.atol);
    CHECK_CLOSE(l.content, vfx("a.loss.content", d), t.rtol, t.atol);
    CHECK_CLOSE(l.style, vfx("a.loss.style", d), t.rtol, t.atol);
    CHECK_CLOSE(l.tv, vfx("a.loss.tv", d), t.rtol, t.atol);
    CHECK_CLOSE(stack(l.style_terms), vfx("a.loss.style_terms", d), t.rtol, t.atol);
    CHECK_CLOSE(stack(l.content_terms), vfx("a.loss.content_terms", d), t.rtol, t.atol);
    l.total.backward();
    CHECK_CLOSE(x.grad(), vfx("a.grad_x", d), t.rtol, t.atol);

    for (const char* opt : {"adam", "lbfgs"}) {
      INFO(opt);
      StyleTransferOptions o = fixture_options();
      o.optimizer = opt;
      o.lr = std::string(opt) == "adam" ? 0.02 : 0.5;
      StyleTransfer run(*a, o);
      run.set_targets(vfx("a.content", d), vfx("a.style", d));
      Tensor img = vfx("a.x", d).requires_grad_();
      const int64_t steps = std::string(opt) == "adam" ? 5 : 4;
      std::vector<double> hist = run.optimize(img, steps);
      Tensor expect = vfx(std::string("a.") + opt + ".losses", d);
      // float32 L-BFGS amplifies rounding through its curvature pairs: looser there
      const double rt = d == kFloat64 ? 1e-9 : 2e-3;
      CHECK_CLOSE(tensor(hist, {steps}, kFloat64), expect.to(kFloat64), rt, rt * 1e-2);
      CHECK_CLOSE(img.detach(), vfx(std::string("a.") + opt + ".final", d), rt, rt * 1e-1);
    }
    CHECK_CLOSE(models::transfer_luminance(vfx("a.x", d), vfx("a.content", d)), vfx("a.lum", d), t.rtol, t.atol);
  }
}

TEST_CASE("DeepDream steps and octaves match PyTorch") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    const double rt = d == kFloat64 ? 1e-9 : 1e-3;
    auto a = load_vgg(cfg_a(), "a.", d);
    Tensor x = vfx("a.content", d);
    double v = models::deepdream_step(x, models::vgg_dream_objective(*a, "relu3_1", 1), 0.05, 3, -2, true);
    CHECK_THAT(v, Catch::Matchers::WithinRel(vfx("a.dream.step.obj", kFloat64).item<double>(), rt));
    CHECK_CLOSE(x, vfx("a.dream.step.out", d), rt, rt * 1e-1);

    std::vector<double> objs;
    Tensor out = models::deepdream(vfx("a.content", d), models::vgg_dream_objective(*a, "relu4_1"),
                                   {.octaves = 2, .octave_scale = 1.4, .steps = 2, .lr = 0.05, .jitter = 0},
                                   [&](const models::DreamStep& s) {
                                     objs.push_back(s.objective);
                                     CHECK(s.image->size(2) == (s.octave == 0 ? 14 : 20));
                                   });
    CHECK_CLOSE(tensor(objs, {4}, kFloat64), vfx("a.dream.octaves.obj", kFloat64), rt, rt * 1e-2);
    CHECK_CLOSE(out, vfx("a.dream.octaves.out", d), rt, rt * 1e-1);
  }
}

TEST_CASE("Gram matrix and total variation pass gradcheck") {
  manual_seed(3);
  Tensor f = randn({2, 3, 4, 5}, kFloat64).requires_grad_();
  auto r1 = autograd::gradcheck([](const TensorList& in) { return models::gram_matrix(in[0]); }, {f}, 1e-6, 1e-8, 1e-6);
  INFO(r1.message);
  CHECK(r1.ok);
  Tensor x = randn({1, 2, 4, 3}, kFloat64).requires_grad_();
  auto r2 = autograd::gradcheck([](const TensorList& in) { return models::total_variation(in[0]); }, {x}, 1e-6, 1e-8,
                                1e-6);
  INFO(r2.message);
  CHECK(r2.ok);
}

TEST_CASE("Coarse-to-fine style transfer on the fallback network lowers the style loss") {
  manual_seed(0);
  auto net = models::random_vgg_features({.pooling = VGGPooling::Average, .width = 4, .last_layer = "relu4_2"}, 7);
  for (const auto& p : net->parameters()) CHECK_FALSE(p.requires_grad());
  // deterministic for a seed, independent of the global generator
  auto net2 = models::random_vgg_features({.pooling = VGGPooling::Average, .width = 4, .last_layer = "relu4_2"}, 7);
  CHECK_CLOSE(net->features->named_parameters().front().second, net2->features->named_parameters().front().second, 0,
              0);
  Tensor content = rand({1, 3, 32, 32});
  Tensor style = rand({1, 3, 24, 24});
  StyleTransferOptions o;
  o.style_layers = {"relu1_1", "relu2_1", "relu3_1", "relu4_1"};
  o.steps = 15;
  o.num_scales = 2;
  o.lr = 0.05;
  o.preserve_colors = true;
  StyleTransfer st(*net, o);
  std::vector<int64_t> sizes;
  std::vector<double> style_loss;
  Tensor out = st.run(content, style, [&](const models::StyleStep& s) {
    sizes.push_back(s.image->size(2));
    style_loss.push_back(s.style);
  });
  REQUIRE(sizes.size() == 30);
  CHECK(sizes.front() == 16);
  CHECK(sizes.back() == 32);
  CHECK(out.shape() == content.shape());
  CHECK_FALSE(out.requires_grad());
  CHECK(out.min().item<double>() >= 0.0);
  CHECK(out.max().item<double>() <= 1.0);
  INFO("style loss at the fine scale: " << style_loss[15] << " -> " << style_loss.back());
  CHECK(style_loss.back() < 0.5 * style_loss[15]);
}

TEST_CASE("VGG weight loading, layer names and bad input give clear errors") {
  VGGFeatures a(cfg_a());
  // torchvision files may hold classifier.* tensors and deeper layers: they are ignored
  io::TensorMap w = vgg_sub_map("a.");
  w.emplace("classifier.0.weight", zeros({4, 4}));
  models::load_vgg_weights(a, w);
  // the same tensors without the "features." prefix (a features.state_dict())
  io::TensorMap bare;
  for (const auto& [k, v] : vgg_sub_map("a.")) bare.emplace(k.substr(9), v);
  VGGFeatures a2(cfg_a());
  models::load_vgg_weights(a2, bare);
  CHECK_CLOSE(a2.features->named_parameters().back().second, a.features->named_parameters().back().second, 0, 0);
  // missing or mis-shaped weights name the tensor
  VGGFeatures deeper({.depth = 19, .pooling = VGGPooling::Average, .width = 2, .last_layer = "relu5_1"});
  CHECK_THROWS_WITH(models::load_vgg_weights(deeper, vgg_sub_map("a.")), Catch::Contains("features.23."));
  VGGFeatures wide({.depth = 19, .width = 4, .last_layer = "relu1_1"});
  CHECK_THROWS_WITH(models::load_vgg_weights(wide, vgg_sub_map("a.")), Catch::Contains("features.0."));
  CHECK_THROWS_WITH(models::load_vgg_weights(a, std::string("/nonexistent/vgg19.safetensors")),
                    Catch::Contains("vgg19.safetensors"));
  // names
  CHECK_THROWS_WITH(VGGFeatures({.depth = 18}), Catch::Contains("16 or 19"));
  CHECK_THROWS_WITH(VGGFeatures({.last_layer = "relu6_1"}), Catch::Contains("relu6_1"));
  CHECK_THROWS_WITH(a.extract(rand({1, 3, 16, 16}), {"relu5_1"}), Catch::Contains("relu5_1"));
  CHECK(models::vgg_layer_names(16).size() == 31);  // torchvision's vgg16().features has 31 modules
  CHECK(models::vgg_layer_names(19).size() == 37);
  CHECK(models::parse_vgg_pooling("avg") == VGGPooling::Average);
  CHECK_THROWS_WITH(models::parse_vgg_pooling("min"), Catch::Contains("min"));
  // shapes
  CHECK_THROWS_WITH(a.extract(rand({1, 1, 16, 16}), {"relu1_1"}), Catch::Contains("(1, 1, 16, 16)"));
  CHECK_THROWS_WITH(a.extract(rand({1, 3, 4, 4}), {"relu4_1"}), Catch::Contains("too small"));
  CHECK_THROWS_WITH(StyleTransfer(a, {.style_layers = {"relu9_9"}}), Catch::Contains("relu9_9"));
  CHECK_THROWS_WITH(StyleTransfer(a, {.style_layers = {"relu1_1"}, .style_layer_weights = {1, 2}}),
                    Catch::Contains("weights"));
  StyleTransfer st(a, {.style_layers = {"relu1_1"}});
  CHECK_THROWS_WITH(st.losses(rand({1, 3, 16, 16})), Catch::Contains("set_targets"));
  CHECK_THROWS_WITH(st.set_targets(rand({3, 16, 16}), rand({1, 3, 16, 16})), Catch::Contains("unsqueeze"));
  st.set_targets(rand({1, 3, 16, 16}), rand({1, 3, 16, 16}));
  CHECK_THROWS_WITH(st.losses(rand({1, 3, 24, 24})), Catch::Contains("content image's size"));
  CHECK_THROWS_WITH(models::deepdream(rand({3, 8, 8}), models::vgg_dream_objective(a, "relu1_1")),
                    Catch::Contains("(1, C, H, W)"));
  CHECK_THROWS_WITH(models::vgg_dream_objective(a, "relu1_1", 5), Catch::Contains("channel"));
}

TEST_CASE("DeepDream on the Fashion-MNIST classifier raises its objective") {
  manual_seed(1);
  models::FMNISTClassifier clf({.channels1 = 4, .channels2 = 8, .feature_dim = 16});
  clf.eval();
  for (auto& p : clf.parameters()) p.requires_grad_(false);
  Tensor img = rand({1, 1, 28, 28});
  for (auto [layer, ch] : {std::pair<int64_t, int64_t>{6, 2}, {-1, 3}}) {
    INFO("layer " << layer << " channel " << ch);
    auto obj = models::fmnist_dream_objective(clf, layer, ch);
    std::vector<double> v;
    Tensor out = models::deepdream(img, obj, {.octaves = 2, .steps = 6, .lr = 0.02, .jitter = 2, .seed = 5},
                                   [&](const models::DreamStep& s) { v.push_back(s.objective); });
    REQUIRE(v.size() == 12);
    CHECK(out.shape() == img.shape());
    CHECK(obj(out).item<double>() > obj(img).item<double>());
  }
  CHECK_THROWS_WITH(models::fmnist_dream_objective(clf, 20), Catch::Contains("body_layer"));
  CHECK_THROWS_WITH(models::fmnist_dream_objective(clf, -1, 10), Catch::Contains("class"));
}
