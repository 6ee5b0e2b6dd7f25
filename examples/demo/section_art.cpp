// The demo's art section (include/genai/models/vision/): Gatys style transfer of the
// skimage cat photo (examples/data/chelsea.jpg) in the style of a stained-tissue micrograph
// (examples/data/ihc.jpg), and DeepDream on the same photo, both on the fallback feature
// network (VGG-19 layout with seeded random filters: no weights to download). Without the
// sample images (an installed binary) it uses a synthetic picture and texture instead.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "demo.hpp"

#include <genai/io/image.hpp>
#include <genai/models/vision/deepdream.hpp>
#include <genai/models/vision/style_transfer.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace section_art {  // a named namespace: the demo's files are compiled as one unit

#ifdef GENAI_EXAMPLES_DATA
const char* kArtData = GENAI_EXAMPLES_DATA;
#else
const char* kArtData = "examples/data";
#endif

/// (1, 3, h, w) with the longer side `size`, from a file, or nullopt-like undefined tensor.
Tensor art_load(const std::string& file, int64_t size) {
  const std::string path = std::string(kArtData) + "/" + file;
  if (!std::filesystem::exists(path)) return Tensor();
  Tensor img = io::load_image(path, 3).unsqueeze(0);
  const double f = static_cast<double>(size) / static_cast<double>(std::max(img.size(2), img.size(3)));
  return interpolate(img, Size2{std::llround(img.size(2) * f), std::llround(img.size(3) * f)}, std::nullopt, "area");
}

/// Synthetic stand-ins: a soft disc on a gradient (content), coloured stripes (style).
Tensor art_synthetic(bool style, int64_t h, int64_t w) {
  Tensor img = empty({1, 3, h, w});
  float* p = img.data_ptr<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const double y = static_cast<double>(i) / h, x = static_cast<double>(j) / w;
        double v = style ? 0.5 + 0.5 * std::sin(18 * (x + 0.6 * y) + 2.1 * c)
                         : (std::hypot(x - 0.5, y - 0.5) < 0.3 ? 0.8 - 0.2 * c : 0.2 + 0.3 * y + 0.1 * c);
        p[(c * h + i) * w + j] = static_cast<float>(v);
      }
  return img;
}

void run(demo::Context& ctx, demo::SectionReport& rep) {
  Tensor content = art_load("chelsea.jpg", 128), style = art_load("ihc.jpg", 128);
  const bool samples = content.defined() && style.defined();
  if (!samples) {
    content = art_synthetic(false, 96, 128);
    style = art_synthetic(true, 128, 128);
  }
  auto net = models::random_vgg_features({.depth = 19, .pooling = models::VGGPooling::Average, .width = 16,
                                          .last_layer = "relu4_1"},
                                         ctx.opt.seed + 110);
  // 1. style transfer: Adam on the pixels, as many steps as the budget allows
  models::StyleTransfer st(*net, {.content_layers = {"relu3_1"},
                                  .style_layers = {"relu1_1", "relu2_1", "relu3_1", "relu4_1"},
                                  .content_weight = 1.0,
                                  .style_weight = 1e5,
                                  .lr = 0.03});
  st.set_targets(content, style);
  Tensor img = content.clone().requires_grad_();
  optim::Adam opt({img}, {.lr = 0.03});
  std::vector<double> xs, style_losses;
  demo::Context st_ctx = ctx;
  st_ctx.section_seconds = 0.7 * ctx.section_seconds;
  const int64_t steps = demo::run_steps(st_ctx, "style transfer", ctx.steps(150, 4), [&](int64_t i) {
    opt.zero_grad();
    models::StyleLosses l = st.losses(img);
    l.total.backward();
    opt.step();
    {
      NoGradGuard ng;
      img.copy_(clamp(img, 0.0, 1.0));
    }
    xs.push_back(static_cast<double>(i + 1));
    style_losses.push_back(l.style.item<double>());
    return demo::fmt("style=%.4g content=%.4g", l.style.item<double>(), l.content.item<double>());
  });
  rep.curve("style loss (weighted)", xs, style_losses, false);
  rep.ylabel = "style loss";
  Tensor result = img.detach();
  const int64_t h = content.size(2), w = content.size(3);
  Tensor style_shown = interpolate(style, Size2{h, h}, std::nullopt, "area");
  Tensor bar = ones({1, 3, h, 4});
  ctx.save_png("art_style_transfer.png", cat({content, bar, style_shown, bar, result}, 3)[0]);
  const double drop = style_losses.empty() ? 0 : style_losses.front() / style_losses.back();

  // 2. DeepDream on the content photo
  demo::Context dd_ctx = ctx;
  dd_ctx.section_seconds = 0.25 * ctx.section_seconds;
  models::DeepDreamOptions dopt{.octaves = 3, .octave_scale = 1.4, .steps = ctx.steps(8, 1), .lr = 0.02, .jitter = 8,
                                .seed = ctx.opt.seed + 111};
  auto objective = models::vgg_dream_objective(*net, "relu3_1");
  double before = 0, after = 0;
  Tensor dream;
  {
    const double t0 = demo::now_seconds();
    before = objective(content).item<double>();
    dream = models::deepdream(content, objective, dopt);
    after = objective(dream).item<double>();
    std::printf("art: DeepDream %lld steps in %.1f s, objective %.4g -> %.4g\n",
                static_cast<long long>(dopt.octaves * dopt.steps), demo::seconds_since(t0), before, after);
  }
  ctx.save_png("art_deepdream.png", cat({content, bar, dream}, 3)[0]);

  rep.text(demo::fmt(
      "Neural style transfer (Gatys et al. 2016, `genai/models/vision/style_transfer.hpp`): the pixels of the "
      "picture are optimized (Adam, %lld steps at %lld x %lld) so that its features match the content photo's at "
      "relu3_1 and its Gram matrices match the style image's at relu1_1 ... relu4_1. The features come from the "
      "fallback network (VGG-19 layout, seeded random filters, width 16): it needs no download and transfers "
      "colours and textures; torchvision's VGG-19 weights (`style_transfer --weights`) give the painterly results "
      "of docs/style-transfer.md. The style loss fell %.1fx. Then DeepDream (`deepdream`) amplifies relu3_1 over "
      "3 octaves.%s",
      static_cast<long long>(steps), static_cast<long long>(w), static_cast<long long>(h), drop,
      samples ? " Images: scikit-image's samples (chelsea, immunohistochemistry; examples/data)."
              : " The sample images were not found: synthetic stand-ins are used."));
  rep.image("art_style_transfer.png", "Content, style, result (fallback network)");
  rep.image("art_deepdream.png", demo::fmt("DeepDream on relu3_1: objective %.3g -> %.3g", before, after));
  rep.number("style loss drop", demo::fmt("%.1fx", drop));
  std::printf("art: style transfer %lld steps, style loss %.4g -> %.4g (%.1fx)\n", static_cast<long long>(steps),
              style_losses.empty() ? 0.0 : style_losses.front(), style_losses.empty() ? 0.0 : style_losses.back(), drop);
}

demo::RegisterSection reg({.key = "art", .title = "Style transfer and DeepDream", .order = 80, .budget_share = 0.05,
                           .run = run});

}  // namespace section_art
