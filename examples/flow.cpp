// flow: trains and samples normalizing flows (RealNVP, Glow) on Fashion-MNIST or on a 2-D toy.
//
// Walkthrough:
//  1. Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (or --data DIR), 8-bit
//     images dequantized to y = (k + u) / 256 with fresh uniform noise u every step; or a 2-D
//     toy density (--dataset moons|rings|checkerboard), fresh points every step.
//  2. Model (genai/models/flow): --model realnvp (the MLP RealNVP, the `realnvp` reference
//     configuration on 784-d images: 8 affine couplings, 784-512-512-1568 conditioners, after
//     RealNVP's logit transform), realnvp-conv (multi-scale RealNVP: checkerboard and channel
//     couplings, squeeze, factor-out) or glow (ActNorm, LU 1x1 convolutions, affine couplings,
//     2 levels with learned priors; data centred to [-1/2, 1/2]). On 2-D toys: RealNVP with
//     64-unit MLPs or Glow on vectors.
//  3. Loss: the exact negative log-likelihood -log p(y) (change of variables, every
//     Jacobian included, the preprocessing's too); Adam. Reported as bits per dimension of
//     the 8-bit data: (-log p(y) + D log 256) / (D log 2). Toys: nats per point.
//  4. Every --eval-every steps (images: every epoch): test bits/dim (toys: held-out NLL),
//     metrics.jsonl, PNGs (samples.png at --temperature; toys: density.png heat map and
//     samples.png), and an atomic checkpoint that --resume continues from exactly.
//  5. `flow sample --checkpoint F --temperature 0.7` writes a grid of samples (toys: the
//     density next to a 2-D histogram of samples); `flow bpd --checkpoint F` reports test
//     bits/dim (toys: NLL).
//
//   flow train --model realnvp --epochs 10 --out runs/realnvp       # Fashion-MNIST
//   flow train --model glow --dataset moons --steps 3000 --out runs/moons
//   flow sample --checkpoint runs/realnvp/checkpoint.safetensors --temperature 0.7 --out s.png
//   flow bpd --checkpoint runs/realnvp/checkpoint.safetensors
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/data/dataloader.hpp>
#include <genai/data/fashion_mnist.hpp>
#include <genai/distributed/sampler.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/flow/glow.hpp>
#include <genai/models/flow/realnvp.hpp>
#include <genai/models/flow/toy2d.hpp>
#include <genai/optim/adam.hpp>
#include <genai/optim/clip.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

#include "distributed_util.hpp"

using namespace genai;
namespace flow = genai::models::flow;

namespace {

/// Everything needed to rebuild a model (stored in the checkpoint).
struct Spec {
  std::string model = "realnvp";  // realnvp | realnvp-conv | glow
  std::string dataset = "fmnist";  // fmnist | moons | rings | checkerboard
  int64_t hidden = -1;            // -1: the model's default
  int64_t couplings = -1;         // RealNVP couplings / Glow steps per level
  int64_t levels = 2;             // Glow levels / RealNVP-conv scales
  double alpha = 0.05;            // logit transform (RealNVP)
  bool lu = true;                 // Glow: LU-parameterized 1x1 convolutions
};

bool is_image(const Spec& s) { return s.dataset == "fmnist"; }

std::shared_ptr<flow::Flow> make_flow(const Spec& s) {
  const bool img = is_image(s);
  auto pick = [](int64_t v, int64_t def) { return v > 0 ? v : def; };
  if (s.model == "realnvp") {
    flow::RealNVPConfig c{.dim = img ? 784 : 2, .hidden = pick(s.hidden, img ? 512 : 64),
                          .n_couplings = pick(s.couplings, 8)};
    return std::make_shared<flow::Flow>(std::make_shared<flow::RealNVP>(c), Shape{c.dim},
                                        img ? std::make_shared<flow::LogitTransform>(s.alpha) : nullptr);
  }
  if (s.model == "realnvp-conv") {
    GENAI_CHECK(img, "flow: --model realnvp-conv needs images (--dataset fmnist); use realnvp or glow on 2-D toys");
    flow::RealNVPConvConfig c{.in_channels = 1, .image_size = 28, .n_scales = s.levels, .hidden = pick(s.hidden, 64)};
    return std::make_shared<flow::Flow>(std::make_shared<flow::RealNVPConv>(c), Shape{1, 28, 28},
                                        std::make_shared<flow::LogitTransform>(s.alpha));
  }
  GENAI_CHECK(s.model == "glow", "flow: unknown model '", s.model, "'");
  flow::GlowConfig c{.event_shape = img ? Shape{1, 28, 28} : Shape{2}, .n_levels = s.levels,
                     .n_steps = pick(s.couplings, 8), .hidden = pick(s.hidden, 64), .lu = s.lu};
  return std::make_shared<flow::Flow>(std::make_shared<flow::Glow>(c), c.event_shape,
                                      img ? std::make_shared<flow::ScaleShift>(1.0, -0.5) : nullptr);
}

void put_spec(io::Checkpoint& ck, const Spec& s) {
  ck.strings["model"] = s.model;
  ck.strings["dataset"] = s.dataset;
  ck.ints["hidden"] = s.hidden;
  ck.ints["couplings"] = s.couplings;
  ck.ints["levels"] = s.levels;
  ck.ints["lu"] = s.lu;
  ck.floats["alpha"] = s.alpha;
}
Spec get_spec(const io::Checkpoint& ck) {
  Spec s;
  s.model = ck.get_string("model");
  s.dataset = ck.get_string("dataset");
  s.hidden = ck.get_int("hidden");
  s.couplings = ck.get_int("couplings");
  s.levels = ck.get_int("levels");
  s.lu = ck.get_int("lu") != 0;
  s.alpha = ck.get_float("alpha");
  return s;
}

/// x (B, ...) reshaped to the flow's batch shape (B, *event).
Tensor as_event(const flow::Flow& m, const Tensor& x) {
  Shape s{x.size(0)};
  s.insert(s.end(), m.event_shape().begin(), m.event_shape().end());
  return reshape(x, s);
}

int missing_data(const char* cmd, const std::string& dir) {
  std::fprintf(stderr,
               "flow %s: Fashion-MNIST not found in %s.\n"
               "Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist),\n"
               "or pass --data DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz],\n"
               "or train on a 2-D toy: --dataset moons|rings|checkerboard.\n",
               cmd, dir.c_str());
  return 77;  // "skipped" for ctest
}

/// Test bits/dim over the first n test images (fixed dequantization noise), or the held-out
/// NLL in nats of the toy test points.
double evaluate(flow::Flow& m, const Spec& s, const data::Dataset* test, const Tensor& toy_test, int64_t n,
                uint64_t seed, bool progress = false) {
  NoGradGuard ng;
  m.eval();
  if (!is_image(s)) return m.nll(toy_test).item<double>();
  Generator gen(seed);
  data::DataLoader loader(*test, {.batch_size = 500});
  double total = 0;
  int64_t seen = 0;
  std::optional<train::ProgressBar> bar;
  if (progress) bar.emplace((std::min(n, test->size()) + 499) / 500, train::ProgressOptions{.desc = "test bits/dim"});
  for (const data::Example& b : loader) {
    if (seen >= n) break;
    Tensor x = as_event(m, b.input.narrow(0, 0, std::min(b.input.size(0), n - seen)));
    total += sum(m.bits_per_dim(x, gen)).item<double>();
    seen += x.size(0);
    if (bar) bar->update();
  }
  if (bar) bar->close();
  return total / static_cast<double>(seen);
}

/// Images: a grid of samples (n, 1, 28, 28) clamped to [0, 1]. Toys: the density heat map
/// next to a 2-D histogram of 20000 samples.
Tensor picture(flow::Flow& m, const Spec& s, const Tensor& eps, double temperature) {
  NoGradGuard ng;
  m.eval();
  if (is_image(s)) return io::make_grid(clamp(reshape(m.sample_from(eps, temperature), {-1, 1, 28, 28}), 0.0, 1.0), 8);
  Tensor dens = flow::density_image(m, -4, 4, 160);
  Tensor pts = flow::scatter_image(m.sample_from(eps, temperature), -4, 4, 160);
  return cat({dens, ones({3, 160, 4}), pts}, 2);
}

struct TrainArgs {
  Spec spec;
  int epochs = 10;
  int64_t steps = -1;
  int64_t batch = 128;
  double lr = 1e-3;
  int64_t warmup = 0;
  double clip = 0;
  double temperature = 0.7;
  int64_t eval_every = 500;  // toys
  int64_t eval_limit = -1;   // test images per evaluation (-1: all)
  uint64_t seed = 0;
  std::string out = "flow_out";
  bool resume = false;
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t limit = -1;
  bool distributed = false;
};

int train_main(const TrainArgs& a) {
  const Spec& s = a.spec;
  const bool img = is_image(s);
  if (img && !data::FashionMNIST::available(a.data)) return missing_data("train", a.data);
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);

  std::unique_ptr<data::FashionMNIST> train_set, test_set;
  std::unique_ptr<distributed::DistributedSampler> shard;  // --distributed: this process's shard
  std::unique_ptr<data::DataLoader> loader;
  // toys: each process draws its own points (another seed per rank; rank 0's is the single-process one)
  Generator toy_gen(a.seed + 17 + 7919 * static_cast<uint64_t>(dist.rank()));
  Tensor toy_test;
  if (img) {
    train_set = std::make_unique<data::FashionMNIST>(a.data, true, a.limit);
    test_set = std::make_unique<data::FashionMNIST>(a.data, false, a.limit < 0 ? -1 : std::max<int64_t>(a.limit / 6, 16));
    // --distributed: each process visits its shard of every epoch's permutation (the sampler shuffles)
    if (dist.on())
      shard = std::make_unique<distributed::DistributedSampler>(*train_set, dist.world(), dist.rank(),
                                                                distributed::DistributedSamplerOptions{.seed = a.seed});
    loader = std::make_unique<data::DataLoader>(
        shard ? static_cast<const data::Dataset&>(*shard) : *train_set,
        data::DataLoaderOptions{.batch_size = a.batch, .shuffle = !shard, .drop_last = true, .seed = a.seed});
  } else {
    Generator test_gen(a.seed + 99);
    toy_test = flow::toy_sample(s.dataset, 4000, test_gen);
  }
  auto model = make_flow(s);
  flow::Flow& m = *model;
  optim::Adam opt(m.parameters(), {.lr = a.lr});
  Generator sample_gen(a.seed + 1000);
  Shape es{img ? 64 : 20000};
  es.insert(es.end(), m.latent_shape().begin(), m.latent_shape().end());
  const Tensor eps_fixed = randn(es, kFloat32, sample_gen);  // the same samples every evaluation
  const int64_t steps_per_epoch = img ? loader->size() : a.eval_every;
  const int64_t total_steps = a.steps >= 0 ? a.steps : (img ? a.epochs * steps_per_epoch : 5000);
  const int64_t eval_n = a.eval_limit < 0 ? (img ? test_set->size() : 0) : a.eval_limit;
  if (dist.is_main())
    std::printf("%s on %s: %lld parameters, %lld steps of batch %lld\n", m.body->type_name().c_str(), s.dataset.c_str(),
              static_cast<long long>(m.num_parameters()), static_cast<long long>(total_steps),
              static_cast<long long>(a.batch));

  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t epoch = 0, skip_batches = 0, step = 0;
  double first_loss = NAN;
  if (a.resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    Spec cs = get_spec(ck);
    GENAI_CHECK(cs.model == s.model && cs.dataset == s.dataset && cs.hidden == s.hidden && cs.couplings == s.couplings &&
                    cs.levels == s.levels && cs.lu == s.lu,
                "flow: the checkpoint ", ckpt_path, " is for --model ", cs.model, " --dataset ", cs.dataset,
                " with other sizes; hint: resume with the same flags");
    m.load_state_dict(ck.model());
    opt.load_state_dict(ck.optim());
    if (img) ck.restore_generator("loader", loader->generator());
    ck.restore_generator("toy", toy_gen);
    ck.restore_generator("global", default_generator());
    epoch = ck.get_int("epoch");
    skip_batches = ck.get_int("batch");
    step = ck.get_int("step");
    first_loss = ck.get_float("first_loss", NAN);
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld\n", ckpt_path.c_str(),
                static_cast<long long>(epoch + 1), static_cast<long long>(skip_batches), static_cast<long long>(step));
    // the checkpoint holds rank 0's point generator: the others draw a new stream
    if (dist.rank() > 0)
      toy_gen.manual_seed(a.seed + 17 + 7919 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  }
  dist.wrap(m);  // --distributed: rank 0's weights everywhere, gradients averaged
  // the dequantization noise (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  // Glow's ActNorm layers initialize themselves from their first training batch, which differs
  // between the processes: after that step, rank 0's values are broadcast (below)
  bool actnorm_pending = false;
  for (const auto& [name, t] : m.named_buffers())
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "initialized") == 0 && t.item<double>() == 0.0)
      actnorm_pending = true;
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates and writes the metrics, PNGs and checkpoints
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;   // seconds in training steps
  int64_t n_steps = 0;  // training steps timed
  if (!img && dist.is_main()) {
    io::save_png(a.out + "/data.png", flow::scatter_image(flow::toy_sample(s.dataset, 20000, sample_gen), -4, 4, 160));
  }

  auto save = [&](int64_t ep, int64_t batch_in_epoch, const Generator* loader_state) {
    if (!dist.is_main()) return;
    io::Checkpoint ck;
    ck.model() = m.state_dict();
    ck.optim() = opt.state_dict();
    if (loader_state) ck.set_generator("loader", *loader_state);
    ck.set_generator("toy", toy_gen);
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = ep;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["step"] = step;
    ck.floats["first_loss"] = first_loss;
    put_spec(ck, s);
    ck.save(ckpt_path);  // atomic
  };

  double last_loss = NAN;
  int bad_steps = 0;
  const auto t_start = std::chrono::steady_clock::now();
  while (step < total_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    const Generator loader_at_start = img ? loader->generator() : Generator();
    if (shard) shard->set_epoch(epoch);
    const int64_t todo = std::min(steps_per_epoch - skip_batches, total_steps - step);
    m.train();
    train::ProgressBar bar(todo, {.desc = (img ? "epoch " : "round ") + std::to_string(epoch + 1),
                                 .stream = dist.progress_stream()});
    double loss_sum = 0;
    int64_t n = 0, consumed = skip_batches;
    auto one_step = [&](const Tensor& batch) {
      const auto ts = std::chrono::steady_clock::now();
      if (a.warmup > 0) opt.param_groups()[0].set_lr(a.lr * std::min(1.0, static_cast<double>(step + 1) / a.warmup));
      opt.zero_grad();
      Tensor x = img ? m.dequantize(as_event(m, batch)) : batch;  // fresh dequantization noise every step
      Tensor loss = m.nll(x);
      // --distributed: the mean over the processes (non-finite if any is), so all skip or step together
      const double l = dist.mean(loss.item<double>());
      if (!std::isfinite(l)) {  // skip a diverging step instead of poisoning the parameters
        GENAI_CHECK(++bad_steps < 20, "flow: 20 consecutive non-finite losses; hint: lower --lr, add --clip or --warmup");
        std::fprintf(stderr, "\nflow: non-finite loss at step %lld, step skipped\n", static_cast<long long>(step));
      } else {
        bad_steps = 0;
        loss.backward();  // --distributed: backward leaves the gradients' average over the processes
        if (a.clip > 0) optim::clip_grad_norm_(m.parameters(), a.clip);
        opt.step();
#ifdef GENAI_EXAMPLES_MPI
        if (actnorm_pending && dist.on()) distributed::broadcast_parameters(m);  // ActNorm: rank 0's init everywhere
#endif
        actnorm_pending = false;
        last_loss = img ? m.nll_to_bits_per_dim(l) : l;
        if (std::isnan(first_loss)) first_loss = last_loss;
        loss_sum += last_loss;
        ++n;
      }
      ++step;
      ++consumed;
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++n_steps;
      char post[64];
      std::snprintf(post, sizeof post, img ? "bpd=%.3f" : "nll=%.3f", last_loss);
      bar.set_postfix(post);
      bar.update();
    };
    if (img) {
      int64_t seen = 0;
      for (const data::Example& b : *loader) {
        if (seen++ < skip_batches) continue;  // done before the checkpoint (same shuffle: same batches)
        if (consumed >= skip_batches + todo) break;
        one_step(b.input);
      }
    } else {
      for (int64_t i = 0; i < todo; ++i) one_step(flow::toy_sample(s.dataset, a.batch, toy_gen));
    }
    bar.close();
    const bool epoch_done = consumed >= steps_per_epoch;
    skip_batches = 0;
    if (!dist.is_main()) {  // rank 0 evaluates and writes
      if (epoch_done) ++epoch;
      continue;
    }

    const double test = evaluate(m, s, test_set.get(), toy_test, eval_n, a.seed + 2000);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double train_avg = n ? loss_sum / static_cast<double>(n) : NAN;
    std::printf("%s %lld%s, step %lld: train %s %.4f, test %s %.4f, %.1f s\n", img ? "epoch" : "round",
                static_cast<long long>(epoch + 1), epoch_done ? "" : " (partial)", static_cast<long long>(step),
                img ? "bits/dim" : "NLL", train_avg, img ? "bits/dim" : "NLL", test, secs);
    log->log({{"epoch", epoch + 1},
             {"step", step},
             {img ? "train_bpd" : "train_nll", train_avg},
             {img ? "test_bpd" : "test_nll", test},
             {"seconds", secs},
             {"elapsed", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()}});
    io::save_png(a.out + "/samples.png", picture(m, s, eps_fixed, a.temperature));
    if (!img) {
      NoGradGuard ng;
      io::save_png(a.out + "/density.png", flow::density_image(m, -4, 4, 160));
    }
    if (epoch_done) {
      ++epoch;
      save(epoch, 0, img ? &loader->generator() : nullptr);
    } else {
      save(epoch, consumed, img ? &loader_at_start : nullptr);  // --resume continues inside this epoch
    }
  }
  if (!dist.is_main()) return 0;
  if (dist.on()) examples::report_step_time(dist, a.batch, n_steps, t_steps);
  if (!std::isnan(first_loss) && !std::isnan(last_loss)) {
    std::printf("training %s: first step %.4f, last step %.4f\n", img ? "bits/dim" : "NLL", first_loss, last_loss);
    if (!(last_loss < first_loss)) {
      std::fprintf(stderr, "flow: the training loss did not fall (%.4f -> %.4f)\n", first_loss, last_loss);
      return 1;
    }
  }
  return 0;
}

std::shared_ptr<flow::Flow> load_model(const std::string& path, Spec& spec) {
  io::Checkpoint ck = io::Checkpoint::load(path);
  spec = get_spec(ck);
  auto m = make_flow(spec);
  m->load_state_dict(ck.model());
  m->eval();
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Normalizing flows (RealNVP, Glow) on Fashion-MNIST or 2-D toys: train, sample, bits/dim."};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();

  TrainArgs ta;
  CLI::App* tr = app.add_subcommand("train", "train a flow; writes metrics.jsonl, PNGs and checkpoint.safetensors");
  tr->add_option("--model", ta.spec.model, "realnvp (MLP, the reference configuration), realnvp-conv (multi-scale) or glow")
      ->check(CLI::IsMember({"realnvp", "realnvp-conv", "glow"}))
      ->capture_default_str();
  tr->add_option("--dataset", ta.spec.dataset, "fmnist, or a 2-D toy: moons, rings, checkerboard")
      ->check(CLI::IsMember({"fmnist", "moons", "rings", "checkerboard"}))
      ->capture_default_str();
  tr->add_option("--hidden", ta.spec.hidden, "conditioner width (-1: 512 for realnvp on images, 64 otherwise)")
      ->capture_default_str();
  tr->add_option("--couplings", ta.spec.couplings, "RealNVP couplings / Glow steps per level (-1: 8)")
      ->capture_default_str();
  tr->add_option("--levels", ta.spec.levels, "Glow levels / RealNVP-conv scales (images)")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  tr->add_option("--alpha", ta.spec.alpha, "RealNVP's logit transform: logit(alpha + (1 - 2 alpha) x)")
      ->capture_default_str();
  tr->add_flag("!--no-lu", ta.spec.lu, "Glow: plain 1x1 convolutions (slogdet by LU) instead of the LU parameterization");
  tr->add_option("--epochs", ta.epochs, "passes over the training set (images)")->capture_default_str();
  tr->add_option("--steps", ta.steps, "optimizer steps in total (-1: epochs x batches; toys: 5000)")->capture_default_str();
  tr->add_option("--batch", ta.batch, "batch size (per process with --distributed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--lr", ta.lr, "Adam learning rate")->capture_default_str();
  tr->add_option("--warmup", ta.warmup, "linear learning-rate warmup steps (0: none)")->capture_default_str();
  tr->add_option("--clip", ta.clip, "clip the gradient norm to this (0: off)")->capture_default_str();
  tr->add_option("--temperature", ta.temperature, "sampling temperature of samples.png")->capture_default_str();
  tr->add_option("--eval-every", ta.eval_every, "toys: steps between evaluations")->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--eval-limit", ta.eval_limit, "test images per evaluation (-1: all 10000)")->capture_default_str();
  tr->add_option("--seed", ta.seed, "seeds initialization, shuffling, dequantization and sampling")->capture_default_str();
  tr->add_option("--out", ta.out, "output directory")->capture_default_str();
  tr->add_flag("--resume", ta.resume, "continue from <out>/checkpoint.safetensors if it exists");
  tr->add_option("--data", ta.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  tr->add_option("--limit", ta.limit, "use only the first N training images (and N/6 test images); -1: all")
      ->capture_default_str();
  tr->add_flag("--distributed", ta.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process; toys: each process "
               "draws its own points; rank 0 evaluates and writes)");

  std::string ckpt, out_png = "samples.png", data_dir = data::FashionMNIST::kDefaultRoot;
  double temperature = 0.7;
  int64_t n_samples = 64, limit = -1;
  uint64_t seed = 0;
  CLI::App* sp = app.add_subcommand("sample", "sample a trained flow into a PNG grid (toys: density and samples)");
  sp->add_option("--checkpoint", ckpt, "checkpoint.safetensors written by flow train")->required();
  sp->add_option("--temperature", temperature, "scale of the latent noise (1: the model's distribution)")
      ->capture_default_str();
  sp->add_option("--n", n_samples, "images in the grid (toys: points in the histogram)")->check(CLI::PositiveNumber)
      ->capture_default_str();
  sp->add_option("--out", out_png, "PNG file to write")->capture_default_str();
  sp->add_option("--seed", seed, "seed of the latent noise")->capture_default_str();
  CLI::App* bp = app.add_subcommand("bpd", "test bits/dim of a trained flow (toys: held-out NLL in nats)");
  bp->add_option("--checkpoint", ckpt, "checkpoint.safetensors written by flow train")->required();
  bp->add_option("--limit", limit, "first N test images (-1: all 10000)")->capture_default_str();
  bp->add_option("--data", data_dir, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  bp->add_option("--seed", seed, "seed of the dequantization noise")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);

  try {
    if (tr->parsed()) return train_main(ta);
    Spec spec;
    auto m = load_model(ckpt, spec);
    if (sp->parsed()) {
      Generator gen(seed);
      if (!is_image(spec)) n_samples = std::max<int64_t>(n_samples, 20000);
      Shape es{n_samples};
      es.insert(es.end(), m->latent_shape().begin(), m->latent_shape().end());
      io::save_png(out_png, picture(*m, spec, randn(es, kFloat32, gen), temperature));
      std::printf("wrote %s (%lld %s at temperature %.2f)\n", out_png.c_str(), static_cast<long long>(n_samples),
                  is_image(spec) ? "samples" : "points", temperature);
      return 0;
    }
    // bpd
    if (is_image(spec)) {
      if (!data::FashionMNIST::available(data_dir)) return missing_data("bpd", data_dir);
      data::FashionMNIST test(data_dir, false, limit);
      const double bpd = evaluate(*m, spec, &test, Tensor(), test.size(), seed, true);
      std::printf("test bits/dim: %.4f (%lld images, one dequantization sample each)\n", bpd,
                  static_cast<long long>(test.size()));
    } else {
      Generator test_gen(seed + 99);
      Tensor pts = flow::toy_sample(spec.dataset, 4000, test_gen);
      std::printf("held-out NLL: %.4f nats per point (4000 points of %s)\n", evaluate(*m, spec, nullptr, pts, 0, seed),
                  spec.dataset.c_str());
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "flow: %s\n", e.what());
    return 1;
  }
}
