// fmnist_eval: scores a generator's Fashion-MNIST samples with FMNIST-FID and the
// classifier score (include/genai/models/eval/fid.hpp, docs/evaluation.md).
//
// Walkthrough:
//  1. Loads the classifier weights written by fmnist_classifier (--classifier).
//  2. Fits the reference Gaussian to the classifier's penultimate features of the
//     Fashion-MNIST test set (10,000 images; needs dataset-fashion-mnist or --data DIR).
//  3. Gets the samples from one source:
//       --samples FILE.safetensors  a tensor (N, 1, 28, 28), (N, 28, 28) or (N, 784), float in
//                                   [0, 1] or [-1, 1] (detected; --range forces it) or uint8
//                                   (--tensor NAME picks one of several tensors)
//       --png-dir DIR               every *.png in DIR, one image per file (not grids),
//                                   greyscale; other sizes are resized to 28 x 28
//       --generator FILE            draws -n samples from a model: a DCGAN generator written
//                                   by the dcgan example (generator.safetensors, configuration
//                                   in its metadata) or a VAE checkpoint of the vae example
//       --reference train           -n training images: the FID floor (real vs real)
//  4. Prints FID, the classifier score (mean +- std over --splits) and how the samples
//     spread over the 10 classes; --json FILE appends the numbers as one JSON line.
//
//   fmnist_eval --classifier runs/clf/fmnist_classifier.safetensors --generator runs/dcgan/generator.safetensors
//   fmnist_eval --classifier W --reference train          # the floor: train vs test
//   fmnist_eval --classifier W --png-dir my_samples/
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <genai/data/fashion_mnist.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/io/safetensors.hpp>
#include <genai/models/eval/fid.hpp>
#include <genai/models/gan/dcgan.hpp>
#include <genai/models/vae/vae.hpp>
#include <genai/train/progress.hpp>

#include "example_util.hpp"

using namespace genai;
namespace fs = std::filesystem;

namespace {

struct Args {
  std::string classifier;
  std::string samples, tensor_name, png_dir, generator, reference;
  int64_t n = -1;
  std::string range = "auto";
  int64_t splits = 10;
  uint64_t seed = 0;
  std::string data = data::FashionMNIST::kDefaultRoot;
  std::string json;
  int threads = 0;
};

const char* const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, int64_t def) {
  auto it = meta.find(key);
  return it == meta.end() ? def : std::stoll(it->second);
}

/// Samples from a samples file: (N, 1, 28, 28) float32 in the file's range (or [0, 1] from uint8).
Tensor samples_from_file(const Args& a) {
  io::TensorMap m = io::load_safetensors(a.samples);
  GENAI_CHECK(!m.empty(), "fmnist_eval: '", a.samples, "' holds no tensors");
  Tensor t;
  if (!a.tensor_name.empty()) {
    auto it = m.find(a.tensor_name);
    GENAI_CHECK(it != m.end(), "fmnist_eval: '", a.samples, "' has no tensor '", a.tensor_name, "'");
    t = it->second;
  } else {
    std::string names;
    for (const auto& [k, v] : m) names += " " + k;
    GENAI_CHECK(m.size() == 1, "fmnist_eval: '", a.samples, "' holds several tensors (", names,
                " ); hint: pick one with --tensor NAME");
    t = m.begin()->second;
  }
  const int64_t N = t.dim() >= 1 ? t.size(0) : 0;
  GENAI_CHECK(N >= 2 && t.numel() == N * 784, "fmnist_eval: the samples tensor must be (N, 1, 28, 28), (N, 28, 28) or ",
              "(N, 784) with N >= 2, got ", shape_str(t.shape()));
  // integer files (U8 and other integer dtypes load as int64): pixel values 0..255
  if (t.dtype() == kInt64) return mul(reshape(t.to(kFloat32), {N, 1, 28, 28}), 1.0 / 255.0);
  GENAI_CHECK(t.is_floating_point(), "fmnist_eval: the samples must be float or integer (0..255), got ",
              dtype_name(t.dtype()));
  return reshape(t.to(kFloat32), {N, 1, 28, 28});
}

/// Every *.png of a folder (sorted by name), as (N, 1, 28, 28) in [0, 1].
Tensor samples_from_pngs(const Args& a) {
  GENAI_CHECK(fs::is_directory(a.png_dir), "fmnist_eval: --png-dir '", a.png_dir, "' is not a directory");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(a.png_dir))
    if (e.is_regular_file() && e.path().extension() == ".png") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (a.n > 0 && static_cast<int64_t>(files.size()) > a.n) files.resize(static_cast<size_t>(a.n));
  GENAI_CHECK(files.size() >= 2, "fmnist_eval: --png-dir '", a.png_dir, "' holds ", files.size(),
              " PNG files; at least 2 are needed (thousands for a meaningful FID)");
  TensorList xs;
  bool resized = false;
  for (const std::string& f : files) {
    Tensor img = io::load_image(f, 1);  // (1, H, W) in [0, 1]
    if (img.size(1) != 28 || img.size(2) != 28) {
      GENAI_CHECK(img.size(1) <= 256 && img.size(2) <= 256, "fmnist_eval: '", f, "' is ", img.size(2), "x", img.size(1),
                  "; expected single 28x28 images, not grids");
      img = io::resize(img, 28, 28);
      resized = true;
    }
    xs.push_back(img);
  }
  if (resized) std::printf("note: some PNGs were not 28x28 and were resized (bilinear)\n");
  return stack(xs, 0);
}

/// n samples from a DCGAN generator file or a VAE checkpoint, in [0, 1].
Tensor samples_from_generator(const Args& a, int64_t n) {
  std::map<std::string, std::string> meta;
  io::TensorMap sd = io::load_safetensors(a.generator, &meta);
  Generator gen(a.seed);
  NoGradGuard ng;
  TensorList parts;
  const int64_t bs = 500;
  train::ProgressBar bar((n + bs - 1) / bs, {.desc = "sampling"});
  if (meta.count("model") && meta.at("model") == "DCGANGenerator") {
    models::DCGANConfig c;
    c.latent_dim = meta_int(meta, "latent_dim", c.latent_dim);
    c.ngf = meta_int(meta, "ngf", c.ngf);
    c.channels = meta_int(meta, "channels", 1);
    c.image_size = meta_int(meta, "image_size", 28);
    c.dcgan_init = false;
    GENAI_CHECK(c.channels == 1, "fmnist_eval: the generator makes ", c.channels, "-channel images; need 1");
    models::DCGANGenerator G(c);
    G.load_state_dict(sd);
    G.eval();
    std::printf("generator: DCGAN (nz %lld, ngf %lld, %lldx%lld), %lld parameters\n",
                static_cast<long long>(c.latent_dim), static_cast<long long>(c.ngf),
                static_cast<long long>(c.image_size), static_cast<long long>(c.image_size),
                static_cast<long long>(G.num_parameters()));
    for (int64_t i = 0; i < n; i += bs) {
      Tensor x = io::unnormalize_to_zero_to_one(G.sample(std::min(bs, n - i), gen));  // (b, 1, S, S)
      parts.push_back(c.image_size == 28 ? x : io::resize(x, 28, 28));
      bar.update();
    }
  } else if (meta.count("genai.checkpoint") && meta.count("str.model")) {
    io::Checkpoint ck = io::Checkpoint::load(a.generator);
    const std::string kind = ck.get_string("model");
    std::unique_ptr<models::VAEBase> vae;
    const io::TensorMap& w = ck.model();
    if (kind == "mlp") {
      GENAI_CHECK(w.count("fc21.weight") && w.count("fc1.weight"), "fmnist_eval: '", a.generator,
                  "' has no MLP VAE weights");
      models::VAEConfig c;
      c.hidden_dim = w.at("fc1.weight").size(0);
      c.latent_dim = w.at("fc21.weight").size(0);
      vae = std::make_unique<models::VAE>(c);
    } else if (kind == "conv") {
      GENAI_CHECK(w.count("fc_mu.weight"), "fmnist_eval: '", a.generator, "' has no conv VAE weights");
      models::ConvVAEConfig c;
      c.hidden_dim = w.at("fc_mu.weight").size(1);
      c.latent_dim = w.at("fc_mu.weight").size(0);
      c.channels = w.at("encoder.0.weight").size(0);
      vae = std::make_unique<models::ConvVAE>(c);
    } else {
      GENAI_FAIL("fmnist_eval: '", a.generator, "' is a checkpoint of model '", kind,
                 "', not one fmnist_eval can sample (a VAE checkpoint: model mlp or conv)");
    }
    vae->load_state_dict(w);
    vae->eval();
    std::printf("generator: VAE (%s, latent %lld), %lld parameters; samples are decoder means\n", kind.c_str(),
                static_cast<long long>(vae->latent_dim()), static_cast<long long>(vae->num_parameters()));
    for (int64_t i = 0; i < n; i += bs) {
      const int64_t b = std::min(bs, n - i);
      parts.push_back(reshape(vae->sample(b, gen), {b, 1, 28, 28}));
      bar.update();
    }
  } else {
    GENAI_FAIL("fmnist_eval: '", a.generator,
               "' is neither a DCGAN generator file (metadata model = DCGANGenerator, as the dcgan example writes) nor "
               "a VAE checkpoint of the vae example");
  }
  bar.close();
  return cat(parts, 0);
}

int run(int argc, char** argv) {
  Args a;
  CLI::App app{"Scores generated Fashion-MNIST samples: FMNIST-FID against the test set and the classifier score."};
  app.add_option("--classifier", a.classifier, "classifier weights (fmnist_classifier.safetensors from fmnist_classifier)")
      ->required();
  auto* src_samples = app.add_option("--samples", a.samples, "safetensors file with a samples tensor (N, 1, 28, 28)");
  app.add_option("--tensor", a.tensor_name, "name of the samples tensor when the file holds several");
  auto* src_png = app.add_option("--png-dir", a.png_dir, "folder of single-image PNG files");
  auto* src_gen =
      app.add_option("--generator", a.generator, "DCGAN generator.safetensors or VAE checkpoint.safetensors to sample");
  auto* src_ref = app.add_option("--reference", a.reference, "train: score training images (the real-vs-real floor)")
                      ->check(CLI::IsMember({"train"}));
  src_samples->excludes(src_png)->excludes(src_gen)->excludes(src_ref);
  src_png->excludes(src_gen)->excludes(src_ref);
  src_gen->excludes(src_ref);
  app.add_option("-n,--num", a.n, "number of samples (generator / reference: default 10000; files: all)");
  app.add_option("--range", a.range, "value range of --samples: auto, 01 ([0, 1]) or pm1 ([-1, 1])")
      ->check(CLI::IsMember({"auto", "01", "pm1"}))
      ->capture_default_str();
  app.add_option("--splits", a.splits, "chunks for the classifier score's mean and std")->capture_default_str();
  app.add_option("--seed", a.seed, "seeds the generator's noise and the choice of reference images")
      ->capture_default_str();
  app.add_option("--data", a.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--json", a.json, "append the results as one JSON line to this file");
  app.add_option("--threads", a.threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  const int sources = !a.samples.empty() + !a.png_dir.empty() + !a.generator.empty() + !a.reference.empty();
  if (sources != 1) {
    std::fprintf(stderr, "fmnist_eval: give one of --samples, --png-dir, --generator or --reference train\n%s",
                 app.help().c_str());
    return 2;
  }
  if (!data::FashionMNIST::available(a.data)) return examples::missing_fashion_mnist("fmnist_eval", a.data, " (the test set is the reference)");
  const auto t0 = std::chrono::steady_clock::now();

  models::FMNISTClassifier clf;
  std::map<std::string, std::string> cmeta;
  clf.load_state_dict(io::load_safetensors(a.classifier, &cmeta));
  clf.eval();
  std::printf("classifier: %s (test accuracy %s)\n", a.classifier.c_str(),
              cmeta.count("test_accuracy") ? cmeta.at("test_accuracy").c_str() : "unknown");

  data::FashionMNIST test_set(a.data, false);
  models::GaussianStats ref = models::dataset_stats(clf, test_set);
  std::printf("reference: %lld test images\n", static_cast<long long>(ref.n));

  Tensor samples;  // (N, 1, 28, 28) in [0, 1]
  std::string source;
  if (!a.samples.empty()) {
    const models::ImageRange r = a.range == "01"    ? models::ImageRange::ZeroOne
                                 : a.range == "pm1" ? models::ImageRange::MinusOneOne
                                                    : models::ImageRange::Auto;
    samples = models::images_to_unit_range(samples_from_file(a), r);
    if (a.n > 0 && samples.size(0) > a.n) samples = samples.narrow(0, 0, a.n);
    source = a.samples;
  } else if (!a.png_dir.empty()) {
    samples = samples_from_pngs(a);
    source = a.png_dir;
  } else if (!a.generator.empty()) {
    samples = samples_from_generator(a, a.n > 0 ? a.n : 10000);
    source = a.generator;
  } else {  // --reference train: a random subset of the training set
    data::FashionMNIST train_set(a.data, true);
    const int64_t n = std::min<int64_t>(a.n > 0 ? a.n : 10000, train_set.size());
    Generator g(a.seed);
    std::vector<int64_t> idx = randperm(train_set.size(), g).narrow(0, 0, n).to_vector<int64_t>();
    TensorList xs;
    for (int64_t i : idx) xs.push_back(train_set.get(i).input);
    samples = stack(xs, 0);
    source = "Fashion-MNIST training images";
  }
  GENAI_CHECK(samples.size(0) >= a.splits, "fmnist_eval: ", samples.size(0), " samples cannot be split into ", a.splits,
              "; hint: lower --splits");
  models::SampleScores s = models::score_samples(clf, samples, ref, a.splits);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("samples: %lld from %s\n", static_cast<long long>(s.n), source.c_str());
  std::printf("FMNIST-FID: %.3f\n", s.fid);
  std::printf("classifier score: %.3f +- %.3f (%lld splits; 1 = one class, 10 = confident and balanced)\n", s.score.mean,
              s.score.std, static_cast<long long>(a.splits));
  std::printf("predicted classes:");
  for (size_t k = 0; k < s.class_counts.size(); ++k)
    std::printf(" %s %.1f%%%s", k < 10 ? kClassNames[k] : "?", 100.0 * s.class_counts[k] / static_cast<double>(s.n),
                k + 1 < s.class_counts.size() ? "," : "\n");
  if (s.n < 2000)
    std::printf("note: FID is biased upwards for small sample sets; compare numbers at the same N (10000 is usual)\n");
  std::printf("%.1f s\n", secs);
  if (!a.json.empty()) {
    nlohmann::json j = {{"source", source},          {"n", s.n},
                        {"fid", s.fid},              {"score", s.score.mean},
                        {"score_std", s.score.std},  {"splits", a.splits},
                        {"class_counts", s.class_counts}, {"classifier", a.classifier}};
    std::ofstream(a.json, std::ios::app) << j.dump() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fmnist_eval: %s\n", e.what());
    return 1;
  }
}
