// Golden tests of CycleGAN (include/genai/models/gan/cyclegan.hpp) against PyTorch
// (tests/fixtures/make_cyclegan_fixtures.py: the junyanz/pytorch-CycleGAN-and-pix2pix
// networks at tiny widths, ngf 2, 2 residual blocks, ndf 4, 2-layer PatchGAN, 16 x 16):
// the ResNet generator's forward and backward (input and every weight gradient), the
// PatchGAN's forward, the full generator objective (LSGAN + cycle + identity) with the
// gradients of both generators, and 5 training iterations (G step, then D_A and D_B) with
// Adam(2e-4, betas (0.5, 0.999)) and pools of size 0. Tolerances: float64 1e-10 relative
// (1e-12 absolute), float32 1e-4 relative (1e-5 absolute for outputs, 1e-4 of the largest
// gradient for parameter gradients); the training run's float32 values are looser (stated at
// the check). Also: the paper's parameter counts, the image pool, the
// linear learning-rate decay and error messages.
#include "test_util.hpp"

#include <genai/models/gan/cyclegan.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;
using models::CycleGANConfig;

namespace {
const char* kCgFile = "cyclegan.safetensors";

Tensor cfx(const std::string& name, Dtype d) { return genai_test::fixture(kCgFile, name).to(d).clone(); }

io::TensorMap cg_sub_map(const std::string& prefix, const std::string& new_prefix = "") {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kCgFile))
    if (k.rfind(prefix + ".", 0) == 0) m.emplace(new_prefix + k.substr(prefix.size() + 1), v);
  return m;
}

CycleGANConfig tiny() {
  return {.input_nc = 1, .output_nc = 1, .ngf = 2, .ndf = 4, .n_blocks = 2, .n_downsampling = 2, .n_layers_d = 2};
}

struct CgTol {
  double rtol, atol;
};
CgTol cg_tol(Dtype d) { return d == kFloat64 ? CgTol{1e-10, 1e-12} : CgTol{1e-4, 1e-5}; }

/// Compares every parameter gradient of m with the fixture's. In float32, sums of hundreds of
/// products (and the generators applied twice in the cycle losses) differ from float64 by up
/// to ~1.5e-5 of the gradients' scale, so float32's absolute tolerance is 1e-4 of the largest
/// gradient of the network (the conv biases before instance norm have a gradient that is
/// exactly 0 mathematically: ~1e-14 in the fixture, rounding noise in float32).
void check_param_grads(nn::Module& m, const std::string& prefix, Dtype d, CgTol t) {
  double scale = 0;
  for (const auto& [name, p] : m.named_parameters())
    scale = std::max(scale, max(abs(cfx(prefix + name, kFloat64))).item<double>());
  const double atol = d == kFloat64 ? t.atol : 1e-4 * std::max(1.0, scale);
  for (const auto& [name, p] : m.named_parameters()) {
    INFO("parameter " << name << " (largest gradient of the network " << scale << ")");
    REQUIRE(p.grad().defined());
    CHECK_CLOSE(p.grad(), cfx(prefix + name, d), t.rtol, atol);
  }
}

/// True for the conv biases that an instance norm follows (their gradient is 0: the norm
/// subtracts the per-channel mean): all of G's biases but the last conv's.
bool bias_before_instance_norm(const std::string& name, const std::string& last_conv) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0 && name != last_conv + ".bias";
}

std::shared_ptr<models::CycleGAN> load_tiny(Dtype d, int64_t pool = 0) {
  auto gan = std::make_shared<models::CycleGAN>(tiny(), models::CycleGANLossWeights{}, pool);
  gan->to(d);
  io::TensorMap sd;
  for (auto [from, to] : {std::pair{"G_A.init", "netG_A."}, std::pair{"G_B.init", "netG_B."},
                          std::pair{"D_A.init", "netD_A."}, std::pair{"D_B.init", "netD_B."}})
    for (auto& [k, v] : cg_sub_map(from, to)) sd.emplace(k, v);
  gan->load_state_dict(sd);  // strict: the reference code's parameter names
  return gan;
}
}  // namespace

TEST_CASE("CycleGAN ResNet generator forward and backward match PyTorch", "[models][cyclegan]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    const CgTol t = cg_tol(d);
    auto gan = load_tiny(d);
    Tensor x = cfx("real_A", d).requires_grad_();
    Tensor y = gan->netG_A->forward(x);
    REQUIRE(y.shape() == Shape{2, 1, 16, 16});
    CHECK_CLOSE(y, cfx("gen.y", d), t.rtol, t.atol);
    y.backward(cfx("gen.g", d));
    CHECK_CLOSE(x.grad(), cfx("gen.dx", d), t.rtol, t.atol);
    check_param_grads(*gan->netG_A, "gen.grad.", d, t);
  }
}

TEST_CASE("CycleGAN PatchGAN discriminator forward matches PyTorch", "[models][cyclegan]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto gan = load_tiny(d);
    Tensor y = gan->netD_A->forward(cfx("real_B", d));
    REQUIRE(y.shape() == Shape{2, 1, 2, 2});  // 16 -> 8 -> 4 -> 3 -> 2 patches
    CHECK_CLOSE(y, cfx("disc.y", d), cg_tol(d).rtol, cg_tol(d).atol);
  }
}

TEST_CASE("CycleGAN generator objective (LSGAN + cycle + identity) and its gradients match PyTorch",
          "[models][cyclegan]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    const CgTol t = cg_tol(d);
    auto gan = load_tiny(d);
    for (auto& p : gan->discriminator_parameters()) p.requires_grad_(false);
    models::CycleGANGeneratorLoss l = models::cyclegan_generator_loss(
        *gan->netG_A, *gan->netG_B, *gan->netD_A, *gan->netD_B, cfx("real_A", d), cfx("real_B", d));
    CHECK_CLOSE(l.G_A, cfx("loss.G_A", d), t.rtol, t.atol);
    CHECK_CLOSE(l.G_B, cfx("loss.G_B", d), t.rtol, t.atol);
    CHECK_CLOSE(l.cycle_A, cfx("loss.cycle_A", d), t.rtol, t.atol);
    CHECK_CLOSE(l.cycle_B, cfx("loss.cycle_B", d), t.rtol, t.atol);
    CHECK_CLOSE(l.idt_A, cfx("loss.idt_A", d), t.rtol, t.atol);
    CHECK_CLOSE(l.idt_B, cfx("loss.idt_B", d), t.rtol, t.atol);
    CHECK_CLOSE(l.total, cfx("loss.G", d), t.rtol, t.atol);
    l.total.backward();
    check_param_grads(*gan->netG_A, "loss.grad.G_A.", d, t);
    check_param_grads(*gan->netG_B, "loss.grad.G_B.", d, t);
    for (auto& p : gan->discriminator_parameters()) CHECK(!p.grad().defined());
  }
}

TEST_CASE("CycleGAN training (G step, D_A and D_B steps, Adam 2e-4) follows PyTorch for 5 iterations",
          "[models][cyclegan]") {
  for (Dtype d : {kFloat64, kFloat32}) {
    INFO(dtype_name(d));
    auto gan = load_tiny(d, /*pool=*/0);
    optim::Adam opt_G(gan->generator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    optim::Adam opt_D(gan->discriminator_parameters(), {.lr = 2e-4, .betas = {0.5, 0.999}});
    Tensor lg = cfx("train.loss_G", d), lda = cfx("train.loss_D_A", d), ldb = cfx("train.loss_D_B", d);
    // float32: Adam divides by sqrt(v), so rounding in near-zero gradients moves parameters by up to ~lr
    const double rtol = d == kFloat64 ? 1e-9 : 2e-4, ptol = d == kFloat64 ? 1e-10 : 2e-4;
    for (int64_t it = 0; it < 5; ++it) {
      INFO("iteration " << it);
      const std::string s = std::to_string(it);
      models::CycleGANStepStats st =
          gan->train_step(opt_G, opt_D, cfx("train.real_A." + s, d), cfx("train.real_B." + s, d));
      CHECK(st.G == Approx(lg.to(kFloat64).data_ptr<double>()[it]).epsilon(rtol));
      CHECK(st.D_A == Approx(lda.to(kFloat64).data_ptr<double>()[it]).epsilon(rtol));
      CHECK(st.D_B == Approx(ldb.to(kFloat64).data_ptr<double>()[it]).epsilon(rtol));
    }
    for (const auto& [name, p] : gan->netG_A->named_parameters()) {
      INFO("final parameter " << name);
      if (bias_before_instance_norm(name, "model.19")) {
        // zero true gradient: Adam normalizes rounding noise, so only its step bound holds
        // (|update| <= lr per step, up to the bias correction's ~1.0x)
        Tensor init = cfx("G_A.init." + name, d);
        CHECK(max(abs(sub(p, init))).item<double>() <= 5 * 2e-4 * 1.01);
        continue;
      }
      CHECK_CLOSE(p, cfx("train.final.G_A." + name, d), ptol, ptol);
    }
  }
}

TEST_CASE("CycleGAN networks: the paper's configuration, pool, lr decay, errors", "[models][cyclegan]") {
  // the reference code prints 11.378 M parameters for resnet_9blocks and 2.765 M for the
  // 70 x 70 PatchGAN (basic, n_layers 3) with 3 channels
  const CycleGANConfig p = CycleGANConfig::paper();
  models::ResnetGenerator G(p);
  models::NLayerDiscriminator D(3, 64, 3);
  CHECK(G.num_parameters() == 11378179);
  CHECK(D.num_parameters() == 2764737);
  // parameter names of the reference's state dicts
  auto names = G.named_parameters();
  CHECK(names.front().first == "model.1.weight");
  bool has_block = false;
  for (auto& [n, t] : names) has_block = has_block || n == "model.10.conv_block.5.weight";
  CHECK(has_block);
  CHECK(D.named_parameters().back().first == "model.11.bias");
  // paper init: conv weights N(0, 0.02), biases 0
  Tensor w = G.model->named_parameters()[0].second;
  CHECK(std::abs(std::sqrt(mean(square(w)).item<double>()) - 0.02) < 0.005);

  // image pool: size 0 passes through; size 3 fills first, then returns only images it has seen
  models::ImagePool p0(0);
  Tensor a = randn({2, 1, 4, 4});
  CHECK_CLOSE(p0.query(a), a, 0, 0);
  models::ImagePool pool(3);
  Generator gen(3);
  std::vector<double> seen;
  for (int it = 0; it < 6; ++it) {
    Tensor b = full({2, 1, 2, 2}, static_cast<double>(it * 2), kFloat32);
    b.data_ptr<float>()[4] = static_cast<float>(it * 2 + 1);  // image 1 of the batch holds it * 2 + 1
    seen.push_back(it * 2);
    seen.push_back(it * 2 + 1);
    Tensor r = pool.query(b, gen);
    REQUIRE(r.shape() == b.shape());
    for (int64_t i = 0; i < 2; ++i) {
      const float v = r.data_ptr<float>()[i * 4];
      CHECK(std::find(seen.begin(), seen.end(), static_cast<double>(v)) != seen.end());
    }
    if (it == 0) CHECK_CLOSE(r, b, 0, 0);  // not full yet: the new images
  }
  CHECK(pool.size() == 3);

  // linear decay as networks.py's lambda_rule (n_epochs 100, n_epochs_decay 100)
  CHECK(models::cyclegan_lr_factor(0, 100, 100) == 1.0);
  CHECK(models::cyclegan_lr_factor(99, 100, 100) == 1.0);
  CHECK(models::cyclegan_lr_factor(100, 100, 100) == Approx(1.0 - 1.0 / 101));
  CHECK(models::cyclegan_lr_factor(199, 100, 100) == Approx(1.0 / 101));

  // errors
  models::ResnetGenerator g(tiny());
  CHECK_THROWS_WITH(g.forward(zeros({1, 1, 18, 18})),
                    Catch::Contains("ResnetGenerator") && Catch::Contains("(1, 1, 18, 18)"));
  CHECK_THROWS_WITH(g.forward(zeros({1, 3, 16, 16})), Catch::Contains("divisible"));
  CHECK_THROWS_WITH(models::lsgan_loss(Tensor(), true), Catch::Contains("lsgan_loss"));
  CHECK_THROWS_WITH(models::ImagePool(-1), Catch::Contains("pool_size"));
}
