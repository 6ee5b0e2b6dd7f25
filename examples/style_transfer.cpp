// style_transfer: Gatys-style neural style transfer of one image
// (include/genai/models/vision/style_transfer.hpp).
//
// Walkthrough:
//  1. Images: --content and --style (PNG or JPEG; examples/data has skimage samples). The
//     content is resized so its longer side is --size; the style so its longer side is
//     --style-size (default: --size).
//  2. Features: VGG-19 (average pooling, Gatys et al.'s choice) with torchvision's ImageNet
//     weights from --weights vgg19.safetensors (docs/style-transfer.md has the two-line
//     conversion), or, without weights, the fallback: the same layout with seeded random
//     filters (width --width), which transfers colours and textures but not painterly
//     strokes. The stack is built only up to the deepest layer used.
//  3. Loss: content (MSE of features at --content-layers) + style (MSE of Gram matrices at
//     --style-layers) + total variation; Adam (--lr 0.02) or L-BFGS on the pixels, clamped
//     to [0, 1]; --scales S runs coarse to fine (size / 2^(S-1) first).
//  4. Output: OUT.png, OUT.metrics.jsonl (losses per step), intermediate images every
//     --save-every steps (OUT.step<k>.png); --preserve-colors keeps the content's colours.
//     --resume-from IMG starts from an earlier result instead of the content image (the
//     image is the whole state of this optimization, so it is the checkpoint).
//  At the end it prints the style loss at the first and last step of the finest scale and
//  their ratio; --min-style-drop F exits 1 when the ratio is below F (smoke tests).
//
//   style_transfer --content examples/data/chelsea.jpg --style examples/data/ihc.jpg --out cat.png
//   style_transfer --content c.jpg --style s.jpg --weights vgg19.safetensors --size 512 --steps 300 --out o.png
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <genai/io/image.hpp>
#include <genai/models/vision/style_transfer.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

using namespace genai;

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}
std::vector<double> split_numbers(const std::string& s) {
  std::vector<double> out;
  for (const auto& t : split_list(s)) out.push_back(std::stod(t));
  return out;
}

/// Loads an RGB image as (1, 3, h, w) with its longer side `size` (area-averaged when shrinking).
Tensor load_rgb(const std::string& path, int64_t size) {
  Tensor img = io::load_image(path, 3).unsqueeze(0);  // (1, 3, H, W)
  const int64_t H = img.size(2), W = img.size(3);
  const double f = static_cast<double>(size) / static_cast<double>(std::max(H, W));
  const int64_t h = std::max<int64_t>(8, std::llround(H * f)), w = std::max<int64_t>(8, std::llround(W * f));
  if (h == H && w == W) return img;
  return interpolate(img, Size2{h, w}, std::nullopt, f < 1 ? "area" : "bilinear");
}

std::string stem(const std::string& out) {
  std::filesystem::path p(out);
  return (p.parent_path() / p.stem()).string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Neural style transfer (Gatys et al. 2016) on VGG-19 features"};
  std::string content_path, style_path, weights, out = "style_transfer.png", pooling = "avg", optimizer = "adam",
                                               init = "content", resume_from;
  std::string content_layers = "relu4_2", style_layers = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1";
  std::string style_layer_weights;
  int64_t size = 512, style_size = 0, steps = 300, scales = 1, width = 32, save_every = 0;
  double lr = -1, content_weight = 1.0, style_weight = 1e6, tv_weight = 0.0, min_style_drop = 0;
  bool preserve_colors = false;
  uint64_t seed = 0;
  int threads = 0;
  app.add_option("--content", content_path, "content image (PNG/JPEG)")->required();
  app.add_option("--style", style_path, "style image (PNG/JPEG)")->required();
  app.add_option("--weights", weights, "torchvision VGG-19 weights as safetensors (default: the random fallback network)");
  app.add_option("--out", out, "output PNG")->capture_default_str();
  app.add_option("--size", size, "longer side of the result in pixels")->capture_default_str();
  app.add_option("--style-size", style_size, "longer side of the style image (0: --size)")->capture_default_str();
  app.add_option("--steps", steps, "optimizer steps per scale")->capture_default_str();
  app.add_option("--scales", scales, "coarse-to-fine scales (each halves the size)")->capture_default_str();
  app.add_option("--optimizer", optimizer, "adam or lbfgs")->capture_default_str();
  app.add_option("--lr", lr, "learning rate (default: 0.02 for Adam, 1 for L-BFGS)");
  app.add_option("--content-weight", content_weight, "weight of the content loss")->capture_default_str();
  app.add_option("--style-weight", style_weight, "weight of the style loss")->capture_default_str();
  app.add_option("--tv-weight", tv_weight, "weight of the total-variation loss")->capture_default_str();
  app.add_option("--content-layers", content_layers, "comma-separated layers")->capture_default_str();
  app.add_option("--style-layers", style_layers, "comma-separated layers")->capture_default_str();
  app.add_option("--style-layer-weights", style_layer_weights, "comma-separated, one per style layer (default: 1)");
  app.add_option("--pooling", pooling, "avg or max")->capture_default_str();
  app.add_option("--width", width, "channels of the fallback network's first block (torchvision: 64)")
      ->capture_default_str();
  app.add_option("--init", init, "content or noise")->capture_default_str();
  app.add_option("--resume-from", resume_from, "start from this image (an earlier result) instead");
  app.add_flag("--preserve-colors", preserve_colors, "keep the content image's colours (luminance-only transfer)");
  app.add_option("--save-every", save_every, "write OUT.step<k>.png every k steps (0: never)")->capture_default_str();
  app.add_option("--seed", seed, "seed of the fallback network and the noise init")->capture_default_str();
  app.add_option("--min-style-drop", min_style_drop, "exit 1 unless the style loss falls by this factor")
      ->capture_default_str();
  app.add_option("--threads", threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);

  try {
    for (const auto& p : {content_path, style_path})
      if (!std::filesystem::exists(p)) {
        std::fprintf(stderr, "style_transfer: %s not found (examples/data holds sample images; "
                             "python3-skimage has more, see examples/data/export_samples.py)\n", p.c_str());
        return 1;
      }
    Tensor content = load_rgb(content_path, size);
    Tensor style = load_rgb(style_path, style_size > 0 ? style_size : size);

    models::StyleTransferOptions o;
    o.content_layers = split_list(content_layers);
    o.style_layers = split_list(style_layers);
    o.style_layer_weights = split_numbers(style_layer_weights);
    o.content_weight = content_weight;
    o.style_weight = style_weight;
    o.tv_weight = tv_weight;
    o.optimizer = optimizer;
    o.lr = lr > 0 ? lr : (optimizer == "lbfgs" ? 1.0 : 0.02);
    o.steps = steps;
    o.num_scales = scales;
    o.init = init;
    o.preserve_colors = preserve_colors;
    o.seed = seed;
    if (!resume_from.empty()) {
      o.init_image = io::load_image(resume_from, 3).unsqueeze(0);
      std::printf("resumed from %s\n", resume_from.c_str());
    }

    // the network, built up to the deepest layer used
    std::vector<std::string> all = o.content_layers;
    all.insert(all.end(), o.style_layers.begin(), o.style_layers.end());
    const std::vector<std::string> names = models::vgg_layer_names(19);
    std::string last;
    for (const auto& n : names)
      if (std::find(all.begin(), all.end(), n) != all.end()) last = n;
    GENAI_CHECK(!last.empty(), "style_transfer: no known layer in --content-layers/--style-layers");
    models::VGGConfig cfg{.depth = 19, .pooling = models::parse_vgg_pooling(pooling), .width = 64, .last_layer = last};
    std::shared_ptr<models::VGGFeatures> net;
    if (!weights.empty()) {
      net = std::make_shared<models::VGGFeatures>(cfg);
      models::load_vgg_weights(*net, weights);
      std::printf("VGG-19 weights from %s (up to %s, %s pooling)\n", weights.c_str(), last.c_str(), pooling.c_str());
    } else {
      cfg.width = width;
      net = models::random_vgg_features(cfg, seed);
      std::printf("no --weights: the fallback network (VGG-19 layout, random filters, width %lld, up to %s); "
                  "expect colour and texture transfer, not painterly strokes\n",
                  static_cast<long long>(width), last.c_str());
    }

    std::printf("content %s (%lld x %lld), style %s (%lld x %lld), %lld steps x %lld scales, %s\n",
                content_path.c_str(), static_cast<long long>(content.size(3)), static_cast<long long>(content.size(2)),
                style_path.c_str(), static_cast<long long>(style.size(3)), static_cast<long long>(style.size(2)),
                static_cast<long long>(steps), static_cast<long long>(scales), optimizer.c_str());
    if (std::filesystem::path(out).has_parent_path()) std::filesystem::create_directories(std::filesystem::path(out).parent_path());
    train::MetricsLogger log(stem(out) + ".metrics.jsonl");
    train::ProgressBar bar(steps * scales, {.desc = "style"});
    double first_style = 0, last_style = 0;
    models::StyleTransfer st(*net, o);
    Tensor result = st.run(content, style, [&](const models::StyleStep& s) {
      if (s.scale == s.num_scales - 1 && s.step == 1) first_style = s.style;
      last_style = s.style;
      log.log({{"step", s.global_step}, {"scale", s.scale}, {"size", s.image->size(2)}, {"loss", s.total},
               {"content", s.content}, {"style", s.style}, {"tv", s.tv}});
      char post[128];
      std::snprintf(post, sizeof post, "%lldpx loss=%.4g style=%.4g content=%.4g", static_cast<long long>(s.image->size(2)),
                    s.total, s.style, s.content);
      bar.set_postfix(post);
      bar.update();
      if (save_every > 0 && s.global_step % save_every == 0)
        io::save_png(stem(out) + ".step" + std::to_string(s.global_step) + ".png", s.image->detach()[0]);
    });
    bar.close();
    io::save_png(out, result[0]);
    const double drop = last_style > 0 ? first_style / last_style : 0;
    std::printf("style loss %.6g -> %.6g (down %.1fx over the finest scale); wrote %s\n", first_style, last_style,
                drop, out.c_str());
    if (min_style_drop > 0 && !(drop >= min_style_drop)) {
      std::fprintf(stderr, "style_transfer: the style loss fell only %.2fx (< %.2fx)\n", drop, min_style_drop);
      return 1;
    }
  } catch (const genai::Error& e) {
    std::fprintf(stderr, "style_transfer: %s\n", e.what());
    return 1;
  }
  return 0;
}
