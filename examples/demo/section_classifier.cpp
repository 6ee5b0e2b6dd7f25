// The demo's first section: the evaluation classifier behind FMNIST-FID and the classifier
// score (include/genai/models/eval/). With --classifier W it loads fully trained weights
// (examples/fmnist_classifier); otherwise it trains one briefly, which is good enough to
// rank models within this run but gives numbers that are not comparable with
// docs/evaluation.md. It sets ctx.scorer, which the later sections call on their samples.
#include <cstdio>
#include <map>
#include <memory>

#include "demo.hpp"

#include <genai/io/safetensors.hpp>
#include <genai/models/eval/fid.hpp>
#include <genai/models/eval/fmnist_classifier.hpp>
#include <genai/ops/loss.hpp>
#include <genai/optim/adam.hpp>

using namespace genai;

namespace section_classifier {  // a named namespace: the demo's files are compiled as one unit

void run(demo::Context& ctx, demo::SectionReport& rep) {
  if (ctx.opt.no_fid) {
    rep.text("Skipped (--no-fid): no FID or classifier score in this report.");
    return;
  }
  auto clf = std::make_shared<models::FMNISTClassifier>();
  const demo::Data& d = ctx.data;
  std::string what;
  if (!ctx.opt.classifier.empty()) {
    std::map<std::string, std::string> meta;
    clf->load_state_dict(io::load_safetensors(ctx.opt.classifier, &meta));
    what = demo::fmt("the fully trained classifier `%s`", ctx.opt.classifier.c_str());
    rep.text(demo::fmt("Loaded %s (%lld parameters).", what.c_str(), static_cast<long long>(clf->num_parameters())));
  } else {
    // a brief training run: AdamW, constant learning rate, flips and shifts
    optim::AdamW opt(clf->parameters(), {.lr = 2e-3, .weight_decay = 5e-4});
    demo::Batcher batches(d.train_images, d.train_labels, ctx.opt.seed + 1);
    Generator aug(ctx.opt.seed + 2);
    std::vector<double> xs, losses;
    clf->train();
    const int64_t steps = demo::run_steps(ctx, "classifier", ctx.steps(2 * 469, 10), [&](int64_t i) {
      Tensor y;
      Tensor x = models::random_shift_flip(batches.next(128, &y), 2, aug);
      opt.zero_grad();
      Tensor loss = cross_entropy(clf->forward(x), y);
      loss.backward();
      opt.step();
      xs.push_back(static_cast<double>(i + 1));
      losses.push_back(loss.item<double>());
      return demo::fmt("loss=%.3f", losses.back());
    });
    rep.curve("cross-entropy (training batch)", xs, losses);
    what = demo::fmt("a classifier trained for only %lld steps in this run", static_cast<long long>(steps));
    rep.text(demo::fmt(
        "FID and the classifier score need a Fashion-MNIST classifier: `models::FMNISTClassifier` (2 conv layers "
        "with batch norm, pooling and an MLP head, %lld parameters; its 128-d penultimate features play the role of "
        "Inception's in FID). The demo trained it for %lld steps of 128 images (%.1f epochs). The fully trained one "
        "(`fmnist_classifier`, see docs/evaluation.md) gives numbers comparable across runs: pass it with "
        "`--classifier`.",
        static_cast<long long>(clf->num_parameters()), static_cast<long long>(steps), steps * 128.0 / d.train_images.size(0)));
  }
  clf->eval();
  // one pass over the test set: accuracy, and the reference statistics (the floor: as many
  // real training images as the generators get samples, against them)
  models::ClassifierOutputs test_out = models::classify(*clf, d.test_images);
  const double acc = eq(argmax(test_out.probs, 1), d.test_labels).to(kFloat64).mean().item<double>();
  std::printf("classifier test accuracy: %.2f%%\n", 100 * acc);
  models::GaussianStats ref = models::gaussian_stats(test_out.features);
  const int64_t n = std::min<int64_t>(ctx.opt.quick ? 200 : ctx.opt.fid_samples, d.train_images.size(0));
  models::SampleScores floor = models::score_samples(*clf, d.train_images.narrow(0, 0, n), ref);
  ctx.scorer = [clf, ref, n](const Tensor& samples) -> std::optional<demo::Score> {
    const int64_t m = std::min<int64_t>(n, samples.size(0));
    models::SampleScores s = models::score_samples(*clf, models::images_to_unit_range(samples.narrow(0, 0, m)), ref);
    return demo::Score{s.fid, s.score.mean, s.n};
  };
  ctx.scorer_note = demo::fmt(
      "FID here is FMNIST-FID: the Frechet distance between Gaussians fitted to the classifier's features of %lld "
      "samples and of the %lld test images (lower is better; real training images score %.2f, the floor at this "
      "sample size). The classifier score is the Inception score's analogue (1 to 10, higher is better; real images: "
      "%.2f). Both use %s (test accuracy %.2f%%).",
      static_cast<long long>(n), static_cast<long long>(ref.n), floor.fid, floor.score.mean, what.c_str(), 100 * acc);
  rep.table({{"", "value"},
             {"test accuracy", demo::fmt("%.2f%%", 100 * acc)},
             {demo::fmt("FID of %lld real training images (floor)", static_cast<long long>(n)), demo::fmt("%.2f", floor.fid)},
             {"classifier score of real images", demo::fmt("%.2f", floor.score.mean)}});
  rep.number("accuracy", demo::fmt("%.1f%%", 100 * acc));
  rep.number("FID floor", demo::fmt("%.2f", floor.fid));
}

demo::RegisterSection reg({.key = "classifier",
                           .title = "Evaluation classifier (for FID)",
                           .order = 10,
                           .budget_share = 0.15,
                           .run = run});

}  // namespace section_classifier
