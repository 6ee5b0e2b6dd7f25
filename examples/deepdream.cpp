// deepdream: DeepDream on an image (include/genai/models/vision/deepdream.hpp).
//
// Walkthrough:
//  1. Image: --image (PNG or JPEG), resized so its longer side is --size.
//  2. Network (--model vgg, default): VGG-19 (max pooling, as torchvision) with ImageNet
//     weights from --weights vgg19.safetensors (docs/style-transfer.md has the two-line
//     conversion), or the fallback: the same layout with seeded random filters (width
//     --width), whose dreams are abstract high-frequency patterns. --model fmnist: the
//     library's Fashion-MNIST classifier (weights from examples/fmnist_classifier, given with
//     --classifier) on the image turned grey and resized to 28 x 28; --layer is then an index
//     into its body (2 = first ReLU, 6 = second) or "logit" (with --channel = the class).
//  3. Objective: the mean squared activation of --layer (or of one --channel of it);
//     gradient ascent over --octaves scales (ratio --octave-scale), --steps per octave, random
//     --jitter, gradients normalized by their mean absolute value, step --lr.
//  4. Output: OUT.png, OUT.metrics.jsonl (objective per step), the image after each octave
//     on request (--save-octaves: OUT.octave<k>.png). At the end it prints the objective of
//     the input and of the result (exit 1 if it did not rise).
//
//   deepdream --image examples/data/chelsea.jpg --layer relu4_2 --octaves 4 --out dream.png
//   deepdream --model fmnist --classifier fmnist_classifier.safetensors --image x.png --layer 6 --out d.png
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/io/image.hpp>
#include <genai/models/vision/deepdream.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

using namespace genai;

namespace {

std::string stem(const std::string& out) {
  std::filesystem::path p(out);
  return (p.parent_path() / p.stem()).string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DeepDream (Mordvintsev et al. 2015) on VGG-19 or the Fashion-MNIST classifier"};
  std::string image, weights, classifier, model = "vgg", layer = "relu4_2", pooling = "max", out = "deepdream.png";
  int64_t size = 384, width = 32, channel = -1;
  models::DeepDreamOptions o;
  bool save_octaves = false;
  int threads = 0;
  app.add_option("--image", image, "input image (PNG/JPEG)")->required();
  app.add_option("--model", model, "vgg or fmnist")->capture_default_str();
  app.add_option("--weights", weights, "torchvision VGG-19 weights as safetensors (default: the random fallback network)");
  app.add_option("--classifier", classifier, "Fashion-MNIST classifier weights (--model fmnist)");
  app.add_option("--layer", layer, "VGG layer (relu4_2, ...) or classifier body index / \"logit\"")->capture_default_str();
  app.add_option("--channel", channel, "one channel (class for \"logit\"); -1: the whole layer")->capture_default_str();
  app.add_option("--out", out, "output PNG")->capture_default_str();
  app.add_option("--size", size, "longer side in pixels (fmnist: always 28)")->capture_default_str();
  app.add_option("--octaves", o.octaves, "number of octaves")->capture_default_str();
  app.add_option("--octave-scale", o.octave_scale, "size ratio between octaves")->capture_default_str();
  app.add_option("--steps", o.steps, "gradient-ascent steps per octave")->capture_default_str();
  app.add_option("--lr", o.lr, "step size (pixels in [0, 1])")->capture_default_str();
  app.add_option("--jitter", o.jitter, "maximum random shift in pixels")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the jitter and of the fallback network")->capture_default_str();
  app.add_option("--pooling", pooling, "VGG pooling: max or avg")->capture_default_str();
  app.add_option("--width", width, "channels of the fallback network's first block")->capture_default_str();
  app.add_flag("--save-octaves", save_octaves, "write the image after each octave (OUT.octave<k>.png)");
  app.add_option("--threads", threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);

  try {
    if (!std::filesystem::exists(image)) {
      std::fprintf(stderr, "deepdream: %s not found (examples/data holds sample images)\n", image.c_str());
      return 1;
    }
    Tensor img;
    models::DreamObjective objective;
    std::shared_ptr<models::VGGFeatures> net;
    std::shared_ptr<models::FMNISTClassifier> clf;
    if (model == "vgg") {
      img = io::load_image(image, 3).unsqueeze(0);
      const int64_t H = img.size(2), W = img.size(3);
      const double f = static_cast<double>(size) / static_cast<double>(std::max(H, W));
      img = interpolate(img, Size2{std::max<int64_t>(16, std::llround(H * f)), std::max<int64_t>(16, std::llround(W * f))},
                        std::nullopt, f < 1 ? "area" : "bilinear");
      models::VGGConfig cfg{.depth = 19, .pooling = models::parse_vgg_pooling(pooling), .width = 64, .last_layer = layer};
      if (!weights.empty()) {
        net = std::make_shared<models::VGGFeatures>(cfg);
        models::load_vgg_weights(*net, weights);
        std::printf("VGG-19 weights from %s\n", weights.c_str());
      } else {
        cfg.width = width;
        net = models::random_vgg_features(cfg, o.seed);
        std::printf("no --weights: the fallback network (VGG-19 layout, random filters, width %lld); expect abstract "
                    "patterns, not the objects of ImageNet features\n", static_cast<long long>(width));
      }
      objective = models::vgg_dream_objective(*net, layer, channel);
    } else if (model == "fmnist") {
      if (classifier.empty()) {
        std::fprintf(stderr, "deepdream: --model fmnist needs --classifier FILE (train one with the example "
                             "fmnist_classifier, which writes fmnist_classifier.safetensors)\n");
        return 1;
      }
      clf = std::make_shared<models::FMNISTClassifier>();
      clf->load_state_dict(io::load_safetensors(classifier));
      clf->eval();
      for (auto& p : clf->parameters()) p.requires_grad_(false);
      img = io::resize(io::load_image(image, 1).unsqueeze(0), 28, 28);
      const bool logit = layer == "logit";
      objective = models::fmnist_dream_objective(*clf, logit ? -1 : std::stoll(layer), channel);
    } else {
      std::fprintf(stderr, "deepdream: --model must be vgg or fmnist, got %s\n", model.c_str());
      return 1;
    }

    if (std::filesystem::path(out).has_parent_path()) std::filesystem::create_directories(std::filesystem::path(out).parent_path());
    const double before = [&] {
      Tensor x = img.detach().clone();
      x.requires_grad_(false);
      return objective(x).item<double>();
    }();
    train::MetricsLogger log(stem(out) + ".metrics.jsonl");
    train::ProgressBar bar(o.octaves * o.steps, {.desc = "dream"});
    Tensor result = models::deepdream(img, objective, o, [&](const models::DreamStep& s) {
      log.log({{"step", s.global_step}, {"octave", s.octave}, {"size", s.image->size(2)}, {"objective", s.objective}});
      char post[96];
      std::snprintf(post, sizeof post, "octave %lld/%lld objective=%.4g", static_cast<long long>(s.octave + 1),
                    static_cast<long long>(s.octaves), s.objective);
      bar.set_postfix(post);
      bar.update();
      if (save_octaves && s.step == o.steps)
        io::save_png(stem(out) + ".octave" + std::to_string(s.octave) + ".png", s.image->detach()[0]);
    });
    bar.close();
    io::save_png(out, result[0]);
    const double after = objective(result).item<double>();
    std::printf("objective %.6g -> %.6g (x%.2f); wrote %s\n", before, after, after / before, out.c_str());
    if (!(after > before)) {
      std::fprintf(stderr, "deepdream: the objective did not rise\n");
      return 1;
    }
  } catch (const genai::Error& e) {
    std::fprintf(stderr, "deepdream: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepdream: %s\n", e.what());
    return 1;
  }
  return 0;
}
