// genai/models/diffusion/unet.hpp: the noise-prediction U-Net of DDPM (Ho et al. 2020, after
// PixelCNN++ / Wide ResNet blocks), configurable, with the `ddpm_unet` reference configuration
// (REFERENCE_MODELS.md; docs/benchmarks.md) as its default:
//
//   diffusion::UNet net;                                  // 1x28x28, base 32, mult (1, 2)
//   Tensor eps = net.forward(x_t, t);                     // x_t (N, 1, 28, 28), t (N) timesteps
//   diffusion::UNet cond({.num_classes = 10});            // class-conditional (+ a null class)
//   Tensor e = cond.forward(x_t, t, labels);              // labels (N) int64; num_classes = null
//
// Layout (c = base_channels, L = channel_mult.size(), ch_i = c * channel_mult[i]):
//   temb = time_mlp(sinusoidal(t, time_features)): Linear(time_features -> time_dim) SiLU
//          Linear(time_dim -> time_dim); + class_emb(label) when class-conditional
//   h = conv_in(x)                                        Conv3x3(in_channels -> c)
//   down level i = 0..L-1: num_res_blocks x [Res(-> ch_i), Attn if the level's resolution is in
//          attn_resolutions]; keep h as the level's skip; downsample: Conv3x3 stride 2 (ch_i -> ch_i)
//   mid: Res(ch_{L-1}) [Attn if mid_attention] Res(ch_{L-1})
//   up (deepest level first; up[k] is level L-1-k): upsample ConvT(k4, s2, p1) (-> ch_i), cropped
//          to the skip's size when the size was odd; concat the skip; num_res_blocks x
//          [Res(-> ch_i) (the first from 2 ch_i), Attn as above]
//   out = conv_out(SiLU(norm_out(h)))                     GroupNorm, Conv3x3(c -> out_channels)
//   Res(ci -> co): h = conv1(SiLU(norm1(x))) + time_proj(SiLU(temb))[:, :, None, None];
//          h = conv2(dropout(SiLU(norm2(h)))); out = skip(x) + h, skip a 1x1 conv when ci != co
//          (norms GroupNorm(num_groups), convs 3x3 padding 1)
//   Attn: out = x + proj(attention(qkv(norm(x)))) over the H W positions, num_heads heads
//          (qkv: 1x1 conv C -> 3C split as (3, heads, C / heads); proj: 1x1 conv; scale 1/sqrt(C / heads))
// The reference configuration (base 32, mult (1, 2), one Res per level, attention only in the
// middle at 7x7, GroupNorm(8), time features 32 -> 128) is this layout with the defaults.
//
// Sinusoidal features (DDPM's get_timestep_embedding): half = time_features / 2,
// freq_j = exp(-log(10000) j / (half - 1)), features = [sin(t freq), cos(t freq)].
// The SiLU in front of each block's time_proj is shared (computed once per forward).
// Classifier-free guidance (Ho & Salimans 2022): class_emb has num_classes + 1 rows, the last
// (index num_classes) is the "no class" embedding used for unconditional predictions and for
// labels dropped in training; forward without labels uses it.
// With zero_init (default; as DDPM's and improved-diffusion's zero_module) the last conv of
// each residual branch, the attention output projection and conv_out start at zero, so the
// network starts as the identity on its skip paths and outputs 0.
//
// Parameter names match the PyTorch U-Net of tests/fixtures/make_diffusion_fixtures.py:
// time_mlp.{0,2}, class_emb, conv_in, down.<i>.{res,attn}.<j>.*, down.<i>.downsample,
// mid_res1, mid_attn, mid_res2, up.<k>.upsample, up.<k>.{res,attn}.<j>.*, norm_out, conv_out;
// within blocks norm1, conv1, time_proj, norm2, conv2, skip / norm, qkv, proj.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "genai/nn/conv.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"
#include "genai/ops/attention.hpp"

namespace genai {
namespace models {
namespace diffusion {

struct UNetConfig {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t image_size = 28;                      // H = W of the inputs (checked)
  int64_t base_channels = 32;                   // c
  std::vector<int64_t> channel_mult = {1, 2};   // ch_i = c * channel_mult[i], one level each
  int64_t num_res_blocks = 1;                   // residual blocks per level
  std::vector<int64_t> attn_resolutions = {};   // level resolutions with attention after each Res
  bool mid_attention = true;                    // attention between the two middle Res blocks
  int64_t num_heads = 1;
  int64_t num_groups = 8;                       // GroupNorm groups
  int64_t time_features = 32;                   // sinusoidal features of t
  int64_t time_dim = 128;                       // time embedding width
  int64_t num_classes = 0;                      // > 0: class-conditional (+ a null class for guidance)
  double dropout = 0.0;                         // in each Res block, before conv2
  bool zero_init = true;                        // zero the last conv of each residual branch and conv_out
};

/// DDPM's sinusoidal timestep features: t (N) -> (N, dim) [sin(t f), cos(t f)], f_j =
/// exp(-log(10000) j / (dim/2 - 1)). dim even and >= 4. Not differentiable in t.
inline Tensor timestep_embedding(const Tensor& t, int64_t dim, Dtype dtype = kFloat32) {
  GENAI_CHECK(t.defined() && t.dim() == 1, "timestep_embedding: timesteps must be (N), got ",
              t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
  GENAI_CHECK(dim >= 4 && dim % 2 == 0, "timestep_embedding: dim must be even and >= 4, got ", dim);
  const std::vector<double> ts = t.to_vector<double>();
  const int64_t half = dim / 2, N = static_cast<int64_t>(ts.size());
  const double scale = std::log(10000.0) / static_cast<double>(half - 1);
  std::vector<double> v(static_cast<size_t>(N * dim));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < half; ++j) {
      const double a = ts[static_cast<size_t>(n)] * std::exp(-scale * static_cast<double>(j));
      v[static_cast<size_t>(n * dim + j)] = std::sin(a);
      v[static_cast<size_t>(n * dim + half + j)] = std::cos(a);
    }
  return from_vector(v, {N, dim}, dtype);
}

/// Res(ci -> co) with a time-embedding projection (see the header).
class ResBlock : public nn::Module {
 public:
  ResBlock(int64_t in_ch, int64_t out_ch, int64_t time_dim, int64_t groups, double dropout = 0.0)
      : in_(in_ch), out_(out_ch), dropout_(dropout) {
    norm1 = register_module("norm1", std::make_shared<nn::GroupNorm>(groups, in_ch));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in_ch, out_ch, 3, 1, 1));
    time_proj = register_module("time_proj", std::make_shared<nn::Linear>(time_dim, out_ch));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(groups, out_ch));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(out_ch, out_ch, 3, 1, 1));
    if (in_ch != out_ch) skip = register_module("skip", std::make_shared<nn::Conv2d>(in_ch, out_ch, 1));
  }
  std::string type_name() const override { return "ResBlock"; }
  std::string extra_repr() const override { return std::to_string(in_) + " -> " + std::to_string(out_); }

  /// x (N, ci, H, W), emb = SiLU(temb) (N, time_dim) -> (N, co, H, W).
  Tensor forward(const Tensor& x, const Tensor& emb) {
    Tensor h = conv1->forward(silu(norm1->forward(x)));                      // (N, co, H, W)
    Tensor tp = time_proj->forward(emb);                                     // (N, co)
    h = add(h, reshape(tp, {tp.size(0), tp.size(1), 1, 1}));
    h = silu(norm2->forward(h));
    if (dropout_ > 0) h = dropout(h, dropout_, is_training());
    h = conv2->forward(h);
    return add(skip ? skip->forward(x) : x, h);
  }

  std::shared_ptr<nn::GroupNorm> norm1, norm2;
  std::shared_ptr<nn::Conv2d> conv1, conv2, skip;  // skip: null when ci == co
  std::shared_ptr<nn::Linear> time_proj;

 private:
  int64_t in_, out_;
  double dropout_;
};

/// Self-attention over the positions of a feature map, with a GroupNorm in front and a residual.
class AttentionBlock : public nn::UnaryModule {
 public:
  AttentionBlock(int64_t channels, int64_t num_heads, int64_t groups) : c_(channels), heads_(num_heads) {
    GENAI_CHECK(num_heads >= 1 && channels % num_heads == 0, "AttentionBlock: num_heads (", num_heads,
                ") must divide the channels (", channels, ")");
    norm = register_module("norm", std::make_shared<nn::GroupNorm>(groups, channels));
    qkv = register_module("qkv", std::make_shared<nn::Conv2d>(channels, 3 * channels, 1));
    proj = register_module("proj", std::make_shared<nn::Conv2d>(channels, channels, 1));
  }
  std::string type_name() const override { return "AttentionBlock"; }
  std::string extra_repr() const override { return std::to_string(c_) + ", heads=" + std::to_string(heads_); }

  /// x (N, C, H, W) -> (N, C, H, W).
  Tensor forward(const Tensor& x) override {
    const int64_t N = x.size(0), H = x.size(2), W = x.size(3), d = c_ / heads_;
    Tensor qkv_ = reshape(qkv->forward(norm->forward(x)), {N, 3, heads_, d, H * W});  // (N, 3, h, d, HW)
    Tensor q = transpose(select(qkv_, 1, 0), -1, -2);  // (N, h, HW, d)
    Tensor k = transpose(select(qkv_, 1, 1), -1, -2);
    Tensor v = transpose(select(qkv_, 1, 2), -1, -2);
    Tensor o = scaled_dot_product_attention(q, k, v);  // (N, h, HW, d)
    o = reshape(transpose(o, -1, -2), {N, c_, H, W});  // (N, C, H, W), channel = head * d + j
    return add(x, proj->forward(o));
  }

  std::shared_ptr<nn::GroupNorm> norm;
  std::shared_ptr<nn::Conv2d> qkv, proj;

 private:
  int64_t c_, heads_;
};

/// One level of the down path: residual (and attention) blocks, then a stride-2 conv.
class DownLevel : public nn::Module {
 public:
  std::string type_name() const override { return "DownLevel"; }
  std::shared_ptr<nn::ModuleList<ResBlock>> res;
  std::shared_ptr<nn::ModuleList<AttentionBlock>> attn;  // empty, or one per Res block
  std::shared_ptr<nn::Conv2d> downsample;
};

/// One level of the up path: a transposed conv, then residual (and attention) blocks.
class UpLevel : public nn::Module {
 public:
  std::string type_name() const override { return "UpLevel"; }
  std::shared_ptr<nn::ConvTranspose2d> upsample;
  std::shared_ptr<nn::ModuleList<ResBlock>> res;
  std::shared_ptr<nn::ModuleList<AttentionBlock>> attn;
};

class UNet : public nn::Module {
 public:
  explicit UNet(const UNetConfig& c = {}) : cfg_(c) {
    check_config(c);
    const int64_t base = c.base_channels, L = static_cast<int64_t>(c.channel_mult.size()), G = c.num_groups;
    time_mlp = register_module("time_mlp", std::make_shared<nn::Sequential>());
    time_mlp->push_back(std::make_shared<nn::Linear>(c.time_features, c.time_dim));
    time_mlp->push_back(std::make_shared<nn::SiLU>());
    time_mlp->push_back(std::make_shared<nn::Linear>(c.time_dim, c.time_dim));
    if (c.num_classes > 0)
      class_emb = register_module("class_emb", std::make_shared<nn::Embedding>(c.num_classes + 1, c.time_dim));
    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.in_channels, base, 3, 1, 1));

    down = register_module("down", std::make_shared<nn::ModuleList<DownLevel>>());
    std::vector<int64_t> res_of(static_cast<size_t>(L));
    int64_t ch = base, res = c.image_size;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t co = base * c.channel_mult[static_cast<size_t>(i)];
      res_of[static_cast<size_t>(i)] = res;
      const bool att = has_attn(res);
      auto lvl = std::make_shared<DownLevel>();
      lvl->res = lvl->register_module("res", std::make_shared<nn::ModuleList<ResBlock>>());
      lvl->attn = lvl->register_module("attn", std::make_shared<nn::ModuleList<AttentionBlock>>());
      for (int64_t j = 0; j < c.num_res_blocks; ++j) {
        lvl->res->push_back(std::make_shared<ResBlock>(ch, co, c.time_dim, G, c.dropout));
        ch = co;
        if (att) lvl->attn->push_back(std::make_shared<AttentionBlock>(co, c.num_heads, G));
      }
      lvl->downsample = lvl->register_module("downsample", std::make_shared<nn::Conv2d>(co, co, 3, 2, 1));
      down->push_back(lvl);
      res = (res + 1) / 2;
    }
    mid_res1 = register_module("mid_res1", std::make_shared<ResBlock>(ch, ch, c.time_dim, G, c.dropout));
    if (c.mid_attention) mid_attn = register_module("mid_attn", std::make_shared<AttentionBlock>(ch, c.num_heads, G));
    mid_res2 = register_module("mid_res2", std::make_shared<ResBlock>(ch, ch, c.time_dim, G, c.dropout));

    up = register_module("up", std::make_shared<nn::ModuleList<UpLevel>>());
    for (int64_t i = L - 1; i >= 0; --i) {
      const int64_t co = base * c.channel_mult[static_cast<size_t>(i)];
      const bool att = has_attn(res_of[static_cast<size_t>(i)]);
      auto lvl = std::make_shared<UpLevel>();
      lvl->upsample = lvl->register_module("upsample", std::make_shared<nn::ConvTranspose2d>(ch, co, 4, 2, 1));
      lvl->res = lvl->register_module("res", std::make_shared<nn::ModuleList<ResBlock>>());
      lvl->attn = lvl->register_module("attn", std::make_shared<nn::ModuleList<AttentionBlock>>());
      for (int64_t j = 0; j < c.num_res_blocks; ++j) {
        lvl->res->push_back(std::make_shared<ResBlock>(j == 0 ? 2 * co : co, co, c.time_dim, G, c.dropout));
        if (att) lvl->attn->push_back(std::make_shared<AttentionBlock>(co, c.num_heads, G));
      }
      ch = co;
      up->push_back(lvl);
    }
    norm_out = register_module("norm_out", std::make_shared<nn::GroupNorm>(G, base));
    conv_out = register_module("conv_out", std::make_shared<nn::Conv2d>(base, c.out_channels, 3, 1, 1));
    if (c.zero_init) zero_output_layers();
  }
  std::string type_name() const override { return "UNet"; }
  std::string extra_repr() const override {
    // appended piece by piece (operator+ chains of temporaries trip GCC 12's -Wrestrict false positive)
    std::string s = "base_channels=";
    s += std::to_string(cfg_.base_channels);
    s += ", channel_mult=(";
    for (size_t i = 0; i < cfg_.channel_mult.size(); ++i) {
      if (i) s += ",";
      s += std::to_string(cfg_.channel_mult[i]);
    }
    s += "), image_size=";
    s += std::to_string(cfg_.image_size);
    if (cfg_.num_classes > 0) {
      s += ", num_classes=";
      s += std::to_string(cfg_.num_classes);
    }
    return s;
  }
  const UNetConfig& config() const { return cfg_; }
  bool class_conditional() const { return cfg_.num_classes > 0; }
  /// The label of the "no class" embedding (classifier-free guidance).
  int64_t null_class() const { return cfg_.num_classes; }

  /// x (N, in_channels, S, S), t (N) timesteps (any dtype), labels (N) int64 in [0, num_classes]
  /// or undefined (= the null class) -> (N, out_channels, S, S).
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& labels = Tensor()) {
    const int64_t S = cfg_.image_size;
    GENAI_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.in_channels && x.size(2) == S && x.size(3) == S,
                "UNet: expected x (N, ", cfg_.in_channels, ", ", S, ", ", S, "), got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"),
                "; hint: image_size and in_channels are set in UNetConfig");
    GENAI_CHECK(t.defined() && t.dim() == 1 && t.size(0) == x.size(0), "UNet: timesteps must be (N) with N = ",
                x.size(0), ", got ", t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
    Tensor temb = time_mlp->forward(timestep_embedding(t, cfg_.time_features, x.dtype()));  // (N, time_dim)
    if (class_emb) {
      Tensor y = labels.defined() ? labels : full({x.size(0)}, static_cast<double>(null_class()), kInt64);
      GENAI_CHECK(y.dim() == 1 && y.size(0) == x.size(0) && y.dtype() == kInt64, "UNet: labels must be int64 (N) with N = ",
                  x.size(0), ", got ", dtype_name(y.dtype()), " ", shape_str(y.shape()));
      for (int64_t v : y.to_vector<int64_t>())
        GENAI_CHECK(v >= 0 && v <= null_class(), "UNet: label ", v, " is outside [0, ", null_class(), "] (",
                    null_class(), " = no class)");
      temb = add(temb, class_emb->forward(y));
    } else {
      GENAI_CHECK(!labels.defined(), "UNet: labels given to an unconditional model; hint: set UNetConfig.num_classes");
    }
    const Tensor emb = silu(temb);  // (N, time_dim), shared by every block's time_proj

    Tensor h = conv_in->forward(x);  // (N, c, S, S)
    std::vector<Tensor> skips;
    for (size_t i = 0; i < down->size(); ++i) {
      DownLevel& lvl = *(*down)[i];
      for (size_t j = 0; j < lvl.res->size(); ++j) {
        h = (*lvl.res)[j]->forward(h, emb);
        if (lvl.attn->size()) h = (*lvl.attn)[j]->forward(h);
      }
      skips.push_back(h);
      h = lvl.downsample->forward(h);
    }
    h = mid_res1->forward(h, emb);
    if (mid_attn) h = mid_attn->forward(h);
    h = mid_res2->forward(h, emb);
    for (size_t k = 0; k < up->size(); ++k) {
      UpLevel& lvl = *(*up)[k];
      const Tensor& s = skips[skips.size() - 1 - k];
      h = lvl.upsample->forward(h);
      if (h.size(2) != s.size(2) || h.size(3) != s.size(3))  // odd size: crop the doubled map
        h = narrow(narrow(h, 2, 0, s.size(2)), 3, 0, s.size(3));
      h = cat({h, s}, 1);
      for (size_t j = 0; j < lvl.res->size(); ++j) {
        h = (*lvl.res)[j]->forward(h, emb);
        if (lvl.attn->size()) h = (*lvl.attn)[j]->forward(h);
      }
    }
    return conv_out->forward(silu(norm_out->forward(h)));
  }

  /// Zeroes conv2 of every Res block, every attention proj and conv_out (weights and biases).
  void zero_output_layers() {
    NoGradGuard ng;
    for (auto& [name, p] : named_parameters()) {
      const bool last = name.rfind("conv_out.", 0) == 0 || name.find(".conv2.") != std::string::npos ||
                        name.rfind("conv2.", 0) == 0 || name.find(".proj.") != std::string::npos ||
                        name.rfind("proj.", 0) == 0;
      if (last) {
        Tensor q = p;
        q.zero_();
      }
    }
  }

  std::shared_ptr<nn::Sequential> time_mlp;
  std::shared_ptr<nn::Embedding> class_emb;  // null unless class-conditional
  std::shared_ptr<nn::Conv2d> conv_in, conv_out;
  std::shared_ptr<nn::ModuleList<DownLevel>> down;
  std::shared_ptr<ResBlock> mid_res1, mid_res2;
  std::shared_ptr<AttentionBlock> mid_attn;  // null without mid_attention
  std::shared_ptr<nn::ModuleList<UpLevel>> up;
  std::shared_ptr<nn::GroupNorm> norm_out;

 private:
  bool has_attn(int64_t res) const {
    return std::find(cfg_.attn_resolutions.begin(), cfg_.attn_resolutions.end(), res) != cfg_.attn_resolutions.end();
  }
  static void check_config(const UNetConfig& c) {
    GENAI_CHECK(c.in_channels > 0 && c.out_channels > 0 && c.base_channels > 0 && c.image_size > 0,
                "UNet: channels and image_size must be positive");
    GENAI_CHECK(!c.channel_mult.empty(), "UNet: channel_mult must have at least one level");
    for (int64_t m : c.channel_mult) GENAI_CHECK(m > 0, "UNet: channel multipliers must be positive, got ", m);
    GENAI_CHECK(c.num_res_blocks >= 1, "UNet: num_res_blocks must be >= 1, got ", c.num_res_blocks);
    GENAI_CHECK(c.num_groups >= 1 && c.base_channels % c.num_groups == 0, "UNet: num_groups (", c.num_groups,
                ") must divide base_channels (", c.base_channels, ")");
    GENAI_CHECK(c.num_heads >= 1, "UNet: num_heads must be >= 1");
    GENAI_CHECK(c.time_features >= 4 && c.time_features % 2 == 0, "UNet: time_features must be even and >= 4, got ",
                c.time_features);
    GENAI_CHECK(c.time_dim > 0 && c.num_classes >= 0, "UNet: time_dim must be positive and num_classes >= 0");
    GENAI_CHECK(c.dropout >= 0 && c.dropout < 1, "UNet: dropout must be in [0, 1), got ", c.dropout);
  }

  UNetConfig cfg_;
};

}  // namespace diffusion
}  // namespace models
}  // namespace genai
