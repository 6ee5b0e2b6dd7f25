// Every invertible layer of genai/models/flow: inverse(forward(x)) == x (float64 to 1e-10,
// float32 to 1e-5) and logdet == log |det| of the numerically computed Jacobian (central
// differences in float64, eps 1e-6; tolerance 1e-6 relative), on small inputs with random
// parameters (zero-initialized layers are perturbed so that none is the identity).
#include "flow_test_util.hpp"

using namespace genai;
using namespace flow_test;

namespace {

Generator& gen() {
  static Generator g(7);
  return g;
}

template <class L>
std::shared_ptr<flow::FlowLayer> prepared(std::shared_ptr<L> layer, double scale = 0.3) {
  layer->to(kFloat64);
  perturb(*layer, scale, gen());
  return layer;
}

Tensor randx(const Shape& s) { return randn(s, kFloat64, gen()); }

}  // namespace

TEST_CASE("flow layers: LogitTransform and ScaleShift", "[flow][layers]") {
  check_layer(std::make_shared<flow::LogitTransform>(0.05), add(mul(rand({2, 5}, kFloat64, gen()), 0.98), 0.01));
  check_layer(std::make_shared<flow::LogitTransform>(0.0), add(mul(rand({2, 3}, kFloat64, gen()), 0.9), 0.05));
  check_layer(std::make_shared<flow::ScaleShift>(1.7, -0.3), randx({2, 2, 2, 2}));
  check_layer(std::make_shared<flow::ScaleShift>(-0.5, 0.25), randx({2, 3}));
  CHECK_THROWS_AS(flow::LogitTransform(0.5), Error);
  CHECK_THROWS_AS(flow::ScaleShift(0.0, 1.0), Error);
}

TEST_CASE("flow layers: masked couplings", "[flow][layers]") {
  // RealNVP's MLP coupling with an even/odd mask on vectors
  for (int64_t parity : {0, 1})
    check_layer(prepared(std::make_shared<flow::MaskedCoupling>(flow::checkerboard_mask({6}, parity), flow::mlp_net(6, 8, 12),
                                                                flow::CouplingKind::Affine)),
                randx({2, 6}));
  // checkerboard on images, each coupling kind
  check_layer(prepared(std::make_shared<flow::MaskedCoupling>(flow::checkerboard_mask({2, 3, 3}, 1), flow::conv_net(2, 4, 4),
                                                              flow::CouplingKind::Affine)),
              randx({2, 2, 3, 3}));
  check_layer(prepared(std::make_shared<flow::MaskedCoupling>(flow::checkerboard_mask({2, 2, 2}, 0), flow::conv_net(2, 4, 4),
                                                              flow::CouplingKind::GlowAffine)),
              randx({2, 2, 2, 2}));
  check_layer(prepared(std::make_shared<flow::MaskedCoupling>(flow::checkerboard_mask({1, 3, 2}, 0), flow::conv_net(1, 3, 1),
                                                              flow::CouplingKind::Additive)),
              randx({2, 1, 3, 2}));
  // the mask: (h + w + parity) even -> 1
  Tensor m = flow::checkerboard_mask({2, 2, 3}, 1);
  CHECK(m.to_vector<double>() == std::vector<double>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
  CHECK(flow::checkerboard_mask({5}, 0).to_vector<double>() == std::vector<double>{1, 0, 1, 0, 1});
  // a conditioner with the wrong output size is reported
  flow::MaskedCoupling bad(flow::checkerboard_mask({4}, 0), flow::mlp_net(4, 3, 4));
  CHECK_THROWS_WITH(bad.forward(randn({2, 4})), Catch::Contains("must output 8"));
  CHECK_THROWS_WITH(bad.forward(randn({2, 5})), Catch::Contains("MaskedCoupling"));
}

TEST_CASE("flow layers: channel couplings", "[flow][layers]") {
  for (bool swap : {false, true}) {
    check_layer(prepared(std::make_shared<flow::ChannelCoupling>(4, flow::conv_net(2, 4, 4), flow::CouplingKind::Affine, swap)),
                randx({2, 4, 2, 2}));
    // odd channel count: halves of 1 and 2
    const int64_t cond = swap ? 2 : 1, trans = 3 - cond;
    check_layer(prepared(std::make_shared<flow::ChannelCoupling>(3, flow::conv_net(cond, 4, 2 * trans),
                                                                 flow::CouplingKind::GlowAffine, swap)),
                randx({2, 3, 2, 2}));
  }
  check_layer(prepared(std::make_shared<flow::ChannelCoupling>(5, flow::mlp_net(2, 6, 3, 2, true), flow::CouplingKind::Additive)),
              randx({3, 5}));
  check_layer(prepared(std::make_shared<flow::ChannelCoupling>(2, flow::mlp_net(1, 6, 2, 2, true), flow::CouplingKind::GlowAffine)),
              randx({3, 2}));
  flow::ChannelCoupling c(4, flow::conv_net(2, 3, 4));
  CHECK_THROWS_WITH(c.forward(randn({1, 3, 2, 2})), Catch::Contains("ChannelCoupling: expected (B, 4"));
}

TEST_CASE("flow layers: ActNorm", "[flow][layers]") {
  for (int64_t ed : {3, 1}) {
    auto an = std::make_shared<flow::ActNorm>(3, ed);
    an->to(kFloat64);
    Shape s = ed == 3 ? Shape{8, 3, 2, 2} : Shape{8, 3};
    Tensor x = add(mul(randx(s), 2.5), 1.5);
    CHECK_FALSE(an->is_initialized());
    flow::FlowOutput o = an->forward(x);  // data-dependent init: zero mean, unit (unbiased) std per channel
    CHECK(an->is_initialized());
    std::vector<int64_t> dims = ed == 3 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
    CHECK_CLOSE(mean(o.z, dims), zeros({3}, kFloat64), 0.0, 1e-12);
    CHECK_CLOSE(var(o.z, dims), ones({3}, kFloat64), 1e-5, 1e-5);  // std + 1e-6 in the denominator
    // a second batch does not re-initialize
    Tensor loc0 = an->loc.clone();
    an->forward(randx(s));
    CHECK_CLOSE(an->loc, loc0, 0.0, 0.0);
    perturb(*an, 0.3, gen());
    check_layer(an, randx(ed == 3 ? Shape{2, 3, 2, 2} : Shape{2, 3}));
  }
  // eval mode does not initialize
  flow::ActNorm an(2, 1);
  an.eval();
  an.forward(randn({4, 2}));
  CHECK_FALSE(an.is_initialized());
  // the flag is in the state dict: a loaded model is not re-initialized
  CHECK(an.state_dict().count("initialized") == 1);
  CHECK_THROWS_WITH(an.forward(randn({4, 3})), Catch::Contains("ActNorm: expected (B, 2)"));
}

TEST_CASE("flow layers: invertible 1x1 convolutions", "[flow][layers]") {
  check_layer(prepared(std::make_shared<flow::InvConv2d>(3)), randx({2, 3, 2, 2}));
  check_layer(prepared(std::make_shared<flow::InvConv2d>(4, 1)), randx({3, 4}));
  check_layer(prepared(std::make_shared<flow::InvConv2dLU>(4)), randx({2, 4, 2, 2}));
  check_layer(prepared(std::make_shared<flow::InvConv2dLU>(3, 1)), randx({3, 3}));
  check_layer(prepared(std::make_shared<flow::InvConv2dLU>(1)), randx({2, 1, 2, 3}));
  // the initial weight is a rotation (|det| = 1) and the LU form reproduces it
  flow::InvConv2d plain(5);
  CHECK(std::abs(linalg::slogdet(plain.weight).logabsdet.item<double>()) < 1e-5);
  CHECK_CLOSE(mm(plain.weight, plain.weight.t()), eye(5), 0.0, 1e-5);
  flow::InvConv2dLU luc(6);
  Tensor W = luc.weight();
  CHECK_CLOSE(mm(W, W.t()), eye(6), 0.0, 1e-5);
  CHECK(std::abs(sum(luc.w_s).item<double>()) < 1e-5);
  CHECK_THROWS_WITH(luc.forward(randn({1, 5, 2, 2})), Catch::Contains("InvConv2dLU: expected (B, 6, H, W)"));
}

TEST_CASE("flow layers: Squeeze, LearnedPrior, FactorOut", "[flow][layers]") {
  check_layer(std::make_shared<flow::Squeeze>(), randx({2, 2, 4, 2}));
  // the squeeze layout: channel c * 4 + 2 i + j holds pixel (2h + i, 2w + j)
  {
    Tensor x = reshape(arange<double>(0.0, 16.0, 1.0, kFloat64), {1, 1, 4, 4});
    Tensor z = flow::Squeeze().forward(x).z;
    CHECK(z.shape() == Shape{1, 4, 2, 2});
    CHECK(z.to_vector<double>() == std::vector<double>{0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15});
  }
  CHECK_THROWS_WITH(flow::Squeeze().forward(randn({1, 1, 3, 4})), Catch::Contains("even H and W"));
  check_layer(prepared(std::make_shared<flow::LearnedPrior>(3)), randx({2, 3, 2, 2}));
  check_layer(prepared(std::make_shared<flow::LearnedPrior>(3, 1)), randx({2, 3}));
  // with Glow's learned prior, the inner flow a step of flow
  {
    auto inner = std::make_shared<flow::GlowStep>(2, 4, true, flow::CouplingKind::GlowAffine, 3);
    auto fo = std::make_shared<flow::FactorOut>(Shape{4, 2, 2}, inner, true);
    fo->to(kFloat64);
    inner->actnorm->data_init(randx({4, 2, 2, 2}));
    perturb(*fo, 0.3, gen());
    check_layer(fo, randx({2, 4, 2, 2}));
    CHECK(fo->output_shape({4, 2, 2}) == Shape{16});
  }
  // without a prior, on vectors, odd channel count, a squeezing inner flow on images
  check_layer(prepared(std::make_shared<flow::FactorOut>(Shape{5}, std::make_shared<flow::LearnedPrior>(2, 1), false)),
              randx({2, 5}));
  check_layer(prepared(std::make_shared<flow::FactorOut>(Shape{2, 4, 4}, std::make_shared<flow::Squeeze>(), false)),
              randx({2, 2, 4, 4}));
}

TEST_CASE("flow layers: whole models", "[flow][layers]") {
  auto realnvp = std::make_shared<flow::RealNVP>(flow::RealNVPConfig{.dim = 6, .hidden = 8, .n_couplings = 4});
  check_layer(prepared(realnvp, 0.1), randx({2, 6}));
  auto rconv = std::make_shared<flow::RealNVPConv>(flow::RealNVPConvConfig{.in_channels = 1, .image_size = 4, .hidden = 4});
  check_layer(prepared(rconv, 0.1), randx({2, 1, 4, 4}));
  CHECK(rconv->output_shape({1, 4, 4}) == Shape{16});
  auto glow = std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {2, 4, 4}, .n_levels = 2, .n_steps = 2, .hidden = 6});
  glow->to(kFloat64);
  glow->forward(randx({8, 2, 4, 4}));  // ActNorm's data-dependent init
  perturb(*glow, 0.1, gen());
  check_layer(glow, randx({2, 2, 4, 4}));
  auto gvec = std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {2}, .n_steps = 3, .hidden = 8});
  gvec->to(kFloat64);
  gvec->forward(randx({8, 2}));
  perturb(*gvec, 0.1, gen());
  check_layer(gvec, randx({3, 2}));
  CHECK_THROWS_WITH(flow::Glow(flow::GlowConfig{.event_shape = {1, 28, 28}, .n_levels = 3}), Catch::Contains("divisible by 2^n_levels"));
  CHECK_THROWS_WITH(realnvp->forward(randn({2, 7}, kFloat64)), Catch::Contains("RealNVP: expected a floating-point batch (B, 6)"));
}

TEST_CASE("flow: log_prob, gradients and sampling of a whole flow", "[flow]") {
  auto body = std::make_shared<flow::Glow>(flow::GlowConfig{.event_shape = {1, 4, 4}, .n_levels = 2, .n_steps = 1, .hidden = 4});
  flow::Flow model(body, {1, 4, 4}, std::make_shared<flow::LogitTransform>(0.05));
  model.to(kFloat64);
  model.forward(rand({8, 1, 4, 4}, kFloat64, gen()));
  perturb(model, 0.1, gen());
  // gradcheck of log p w.r.t. the data (every layer's backward, chained)
  Tensor x = add(mul(rand({2, 1, 4, 4}, kFloat64, gen()), 0.9), 0.05).requires_grad_();
  auto res = gradcheck([&](const TensorList& in) { return model.log_prob(in[0]); }, {x}, 1e-6, 1e-6, 1e-4);
  INFO(res.message);
  CHECK(res.ok);
  // the Flow's forward is the composition of preprocessing and body, and log p adds the base density
  flow::FlowOutput o = model.forward(x.detach());
  flow::FlowOutput a = model.preprocess->forward(x.detach());
  flow::FlowOutput b = body->forward(a.z);
  CHECK_CLOSE(o.logdet, add(a.logdet, b.logdet), 1e-12, 1e-12);
  CHECK_CLOSE(model.log_prob(x.detach()), add(flow::standard_normal_log_prob(o.z), o.logdet), 1e-12, 1e-12);
  // bits/dim = (-log p(y) + D log 256) / (D log 2), y = (255 x + u) / 256
  Tensor xd = mul(randint(0, 256, {3, 1, 4, 4}, kInt64, gen()).to(kFloat64), 1.0 / 255.0);
  Tensor u = rand({3, 1, 4, 4}, kFloat64, gen());
  Tensor y = add(mul(xd, 255.0 / 256.0), mul(u, 1.0 / 256.0));
  CHECK_CLOSE(model.dequantize(xd, u), y, 1e-14, 1e-14);
  Tensor bpd = model.bits_per_dim(xd, u);
  Tensor expect = mul(add(neg(model.log_prob(y)), 16 * std::log(256.0)), 1.0 / (16 * std::log(2.0)));
  CHECK_CLOSE(bpd, expect, 1e-12, 1e-12);
  // samples: the right shape, in [0, 1] (the logit's inverse), temperature 0 gives the mode's image
  Tensor s = model.sample(5, 0.7, gen());
  CHECK(s.shape() == Shape{5, 1, 4, 4});
  CHECK(s.requires_grad() == false);
  CHECK(amin(s, {0, 1, 2, 3}).item<double>() >= -0.06);
  Tensor s0 = model.sample(2, 0.0, gen());
  CHECK_CLOSE(narrow(s0, 0, 0, 1), narrow(s0, 0, 1, 1), 0.0, 1e-12);
  CHECK_CLOSE(model.inverse(model.forward(xd).z), xd, 0.0, 1e-10);
  CHECK_THROWS_WITH(model.log_prob(randn({2, 16}, kFloat64)), Catch::Contains("Flow::forward: expected a floating-point batch (B, 1, 4, 4)"));
  CHECK_THROWS_AS(flow::Flow(std::make_shared<flow::Squeeze>(), {1, 3, 3}), Error);
}
