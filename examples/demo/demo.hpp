// demo.hpp: the small framework of genai_demo (examples/demo/): the options and data every
// section sees, the report blocks a section writes, and the registry of sections.
//
// A model family adds itself to the demo with one .cpp file in examples/demo/ (listed in
// examples/CMakeLists.txt) that registers a section:
//
//   static demo::RegisterSection reg({
//       .key = "flow", .title = "Normalizing flow (RealNVP)", .order = 40, .budget_share = 0.2,
//       .run = [](demo::Context& ctx, demo::SectionReport& rep) {
//         ... train for at most ctx.section_seconds / ctx.steps(full, quick) steps ...
//         ctx.save_png("flow_samples.png", grid);              // into the output folder
//         rep.image("flow_samples.png", "64 samples");
//         rep.number("FID", ctx.score(samples).fid);           // when a classifier is available
//         rep.curve("loss", steps, losses);                    // plotted with gnuplot
//       }});
//
// genai_demo runs the sections in `order`, gives each budget_share of --budget seconds,
// and writes report.md / index.html from the blocks, with one loss plot per section.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <genai/tensor.hpp>

namespace demo {

using genai::Tensor;

struct Options {
  std::string out = "genai-demo";  // output folder
  bool quick = false;               // a few steps per model (smoke test)
  double budget = 270;              // seconds for the whole run (training + evaluation)
  uint64_t seed = 0;
  std::string data;                 // Fashion-MNIST folder
  std::string classifier;           // trained classifier weights (skip training one)
  bool no_fid = false;              // skip the classifier and FID
  int64_t fid_samples = 2000;       // samples per FID estimate
};

/// The images every section trains on: Fashion-MNIST, or a synthetic stand-in.
struct Data {
  Tensor train_images;  // (N, 1, 28, 28) float32 in [0, 1]
  Tensor train_labels;  // (N) int64
  Tensor test_images;   // (M, 1, 28, 28)
  Tensor test_labels;   // (M)
  bool synthetic = false;
  std::string description;  // one sentence for the report
};

/// What ctx.score() returns for a set of samples.
struct Score {
  double fid = 0;    // FMNIST-FID against the test set (lower is better)
  double score = 0;  // classifier score (1 .. 10, higher is better)
  int64_t n = 0;     // samples scored
};

/// One block of a section's report.
struct Block {
  enum class Kind { Text, Image, Table };
  Kind kind = Kind::Text;
  std::string text;                          // Text: a paragraph (plain text, `code` allowed); Image: caption
  std::string file;                          // Image: file name inside the output folder
  std::vector<std::vector<std::string>> rows;  // Table: rows[0] is the header
};

/// A series for the section's loss plot.
struct Curve {
  std::string name;
  std::vector<double> x, y;
  bool smooth = true;  // draw a moving average over the raw values
};

/// What a section produces; rendered into report.md and index.html.
struct SectionReport {
  std::string key, title;
  std::vector<Block> blocks;
  std::vector<Curve> curves;
  std::string xlabel = "step", ylabel = "loss";
  std::vector<std::pair<std::string, std::string>> summary;  // key numbers for the overview table
  double seconds = 0;
  bool failed = false;

  void text(std::string t) { blocks.push_back({Block::Kind::Text, std::move(t), {}, {}}); }
  void image(std::string file, std::string caption) {
    blocks.push_back({Block::Kind::Image, std::move(caption), std::move(file), {}});
  }
  void table(std::vector<std::vector<std::string>> rows) { blocks.push_back({Block::Kind::Table, {}, {}, std::move(rows)}); }
  void curve(std::string name, std::vector<double> x, std::vector<double> y, bool smooth = true) {
    curves.push_back({std::move(name), std::move(x), std::move(y), smooth});
  }
  void number(std::string name, std::string value) { summary.emplace_back(std::move(name), std::move(value)); }
};

struct Context {
  Options opt;
  Data data;
  double section_seconds = 0;  // this section's share of the budget
  /// Scores samples (N, 1, 28, 28) in [0, 1]; empty when no classifier is available
  /// (--no-fid) -- set by the "classifier" section.
  std::function<std::optional<Score>(const Tensor&)> scorer;
  std::string scorer_note;  // what the classifier is (for the report)

  std::optional<Score> score(const Tensor& samples) const {
    return scorer ? scorer(samples) : std::nullopt;
  }
  /// `full` normally, `quick` with --quick.
  int64_t steps(int64_t full, int64_t quick) const { return opt.quick ? quick : full; }
  std::string path(const std::string& file) const { return opt.out + "/" + file; }
  /// Writes an image (C, H, W) in [0, 1] to the output folder.
  void save_png(const std::string& file, const Tensor& img) const;
};

struct Section {
  std::string key;            // short name (--sections), file-name prefix
  std::string title;          // heading in the report
  int order = 100;            // sections run and appear in increasing order
  double budget_share = 0.1;  // share of --budget (the shares are normalized)
  std::function<void(Context&, SectionReport&)> run;
};

/// All registered sections (filled by RegisterSection objects at start-up).
inline std::vector<Section>& registry() {
  static std::vector<Section> sections;
  return sections;
}

struct RegisterSection {
  explicit RegisterSection(Section s) { registry().push_back(std::move(s)); }
};

/// Random batches of a dataset, epoch by epoch (a new permutation each pass).
class Batcher {
 public:
  Batcher(Tensor images, Tensor labels, uint64_t seed) : x_(std::move(images)), y_(std::move(labels)), gen_(seed) {}
  /// The next B examples: images (B, 1, 28, 28) and, if `labels`, their labels (B).
  Tensor next(int64_t B, Tensor* labels = nullptr);
  int64_t epochs() const { return epochs_; }

 private:
  Tensor x_, y_;
  genai::Generator gen_;
  std::vector<int64_t> order_;
  size_t pos_ = 0;
  int64_t epochs_ = 0;
};

/// Runs step(i) for i = 0, 1, ... until max_steps or (unless --quick) 85% of the section's
/// time (the rest is for its evaluation): the first steps measure the speed and set the
/// progress bar's length. step
/// returns the progress bar's postfix. Returns the number of steps run.
int64_t run_steps(const Context& ctx, const std::string& desc, int64_t max_steps,
                  const std::function<std::string(int64_t)>& step);

/// Seconds since `t0` on a steady clock.
double seconds_since(double t0);
double now_seconds();
/// printf-style formatting into a std::string.
std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));

}  // namespace demo
