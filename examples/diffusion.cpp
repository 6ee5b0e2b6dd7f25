// diffusion: trains a denoising diffusion model (DDPM) on Fashion-MNIST and samples from it
// with DDPM or DDIM; inverts images to noise with DDIM; scores samples (FMNIST-FID, classifier
// score) and the test set (variational bound in bits/dim).
//
// Walkthrough:
//  1. Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (or --data DIR), scaled
//     to [-1, 1]. --limit N keeps the first N training images.
//  2. Model: the `ddpm_unet` reference U-Net (base 32, channel multipliers 1,2, one residual block
//     per level, attention at 7x7, GroupNorm(8), SiLU, sinusoidal time embedding); every size is
//     a flag. --class-cond adds a class embedding (10 classes + "no class") trained with label
//     dropout --p-uncond, for classifier-free guidance at sampling time.
//  3. Training (`diffusion train`): linear (or cosine) betas over T = 1000 steps; per batch
//     t ~ U{0..T-1}, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, MSE between the network's
//     output and the target (--prediction eps, x0 or v; --loss-weighting constant, min-snr, p2);
//     Adam(2e-4), gradient clipping at 1, an exponential moving average of the weights (EMA,
//     decay --ema-decay) used for every sample. A progress bar; metrics.jsonl every --log-every
//     steps; samples.png (EMA weights, DDIM --preview-steps) and an atomic checkpoint every
//     --sample-every / --checkpoint-every steps and at the end; --resume continues exactly;
//     --time-limit / --cpu-limit stop (with a checkpoint) after a wall-clock / CPU-time budget
//     (the CPU time is the honest budget on a shared machine; metrics.jsonl logs both).
//  4. Sampling (`diffusion sample --checkpoint F`): --sampler ddpm (all T steps, --variance beta
//     or beta-tilde) or ddim (--steps S, --eta); a PNG grid, and with --trajectory a strip per
//     image from noise to image; --class c --guidance s for classifier-free guidance.
//  5. Inversion (`diffusion invert`): test images -> noise (deterministic DDIM) -> images, the
//     reconstruction MSE printed and a PNG (rows: image, noise, reconstruction).
//  6. Evaluation (`diffusion eval --classifier W`): FMNIST-FID and classifier score of --n samples
//     for each sampler setting listed in --samplers (e.g. ddpm,ddim10,ddim20,ddim50), and the
//     variational bound in bits/dim on --bpd-n test images; one JSON line per result in
//     <out>/eval.jsonl. The classifier weights come from the fmnist_classifier example.
//
//   diffusion train --out runs/ddpm --time-limit 30                  # ~30 min budget
//   diffusion sample --checkpoint runs/ddpm/checkpoint.safetensors --sampler ddim --steps 50 --eta 0 --n 64
//   diffusion sample --checkpoint ... --trajectory strip.png --n 8 --steps 20
//   diffusion eval --checkpoint ... --classifier runs/clf/fmnist_classifier.safetensors --n 256
//   diffusion train --steps 3 --limit 64 --out /tmp/d                 # smoke test
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <genai/data/dataloader.hpp>
#include <genai/data/fashion_mnist.hpp>
#include <genai/distributed/sampler.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/diffusion/diffusion.hpp>
#include <genai/models/eval/fid.hpp>
#include <genai/optim/adam.hpp>
#include <genai/optim/ema.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
namespace D = genai::models::diffusion;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
/// CPU seconds used by this process so far (all threads): on a shared machine the honest measure
/// of a training budget next to wall time.
double process_cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

std::vector<int64_t> parse_ints(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(std::stoll(item));
  return v;
}
std::string fmt_g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

/// Model and process settings: flags at training, stored in (and read back from) the checkpoint.
struct ModelArgs {
  int64_t base = 32;
  std::string mult = "1,2";
  int64_t res_blocks = 1;
  std::string attn_res = "";
  bool no_mid_attn = false;
  int64_t heads = 1, groups = 8;
  bool class_cond = false;
  int64_t timesteps = 1000;
  std::string schedule = "linear";
  std::string prediction = "eps";

  D::UNetConfig unet() const {
    D::UNetConfig c;
    c.base_channels = base;
    c.channel_mult = parse_ints(mult);
    c.num_res_blocks = res_blocks;
    c.attn_resolutions = parse_ints(attn_res);
    c.mid_attention = !no_mid_attn;
    c.num_heads = heads;
    c.num_groups = groups;
    c.num_classes = class_cond ? 10 : 0;
    return c;
  }
  D::NoiseSchedule schedule_() const {
    return D::NoiseSchedule({.num_timesteps = timesteps, .schedule = D::parse_beta_schedule(schedule)});
  }
  void save(io::Checkpoint& ck) const {
    ck.ints["base"] = base;
    ck.strings["mult"] = mult;
    ck.ints["res_blocks"] = res_blocks;
    ck.strings["attn_res"] = attn_res;
    ck.ints["mid_attn"] = no_mid_attn ? 0 : 1;
    ck.ints["heads"] = heads;
    ck.ints["groups"] = groups;
    ck.ints["class_cond"] = class_cond ? 1 : 0;
    ck.ints["timesteps"] = timesteps;
    ck.strings["schedule"] = schedule;
    ck.strings["prediction"] = prediction;
  }
  static ModelArgs load(const io::Checkpoint& ck) {
    ModelArgs m;
    m.base = ck.get_int("base");
    m.mult = ck.get_string("mult");
    m.res_blocks = ck.get_int("res_blocks");
    m.attn_res = ck.get_string("attn_res");
    m.no_mid_attn = ck.get_int("mid_attn") == 0;
    m.heads = ck.get_int("heads");
    m.groups = ck.get_int("groups");
    m.class_cond = ck.get_int("class_cond") != 0;
    m.timesteps = ck.get_int("timesteps");
    m.schedule = ck.get_string("schedule");
    m.prediction = ck.get_string("prediction");
    return m;
  }
};

void add_model_flags(CLI::App* app, ModelArgs& m) {
  app->add_option("--base", m.base, "U-Net base channels c")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--mult", m.mult, "channel multipliers per level, comma-separated")->capture_default_str();
  app->add_option("--res-blocks", m.res_blocks, "residual blocks per level")->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--attn-res", m.attn_res, "level resolutions with attention (e.g. 14); the middle always has it "
                                            "unless --no-mid-attn")->capture_default_str();
  app->add_flag("--no-mid-attn", m.no_mid_attn, "no attention between the middle residual blocks");
  app->add_option("--heads", m.heads, "attention heads")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--groups", m.groups, "GroupNorm groups")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_flag("--class-cond", m.class_cond, "class-conditional (10 classes + a null class for guidance)");
  app->add_option("--timesteps", m.timesteps, "diffusion steps T")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--schedule", m.schedule, "beta schedule: linear or cosine")
      ->check(CLI::IsMember({"linear", "cosine"}))->capture_default_str();
  app->add_option("--prediction", m.prediction, "network target: eps, x0 or v")
      ->check(CLI::IsMember({"eps", "x0", "v"}))->capture_default_str();
}

int missing_data(const char* prog, const std::string& dir) {
  std::fprintf(stderr,
               "%s: Fashion-MNIST not found in %s.\n"
               "Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist),\n"
               "or pass --data DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].\n",
               prog, dir.c_str());
  return 77;  // "skipped" for ctest
}

/// A trained model loaded from a checkpoint, with the EMA weights in place unless told otherwise.
struct Loaded {
  ModelArgs margs;
  std::shared_ptr<D::UNet> net;
  D::NoiseSchedule sched;
  int64_t step = 0;
};

Loaded load_model(const std::string& path, bool use_ema) {
  GENAI_CHECK(std::filesystem::exists(path), "diffusion: checkpoint '", path, "' not found; hint: train first ",
              "(diffusion train --out DIR) and pass DIR/checkpoint.safetensors");
  io::Checkpoint ck = io::Checkpoint::load(path);
  Loaded L{ModelArgs::load(ck), nullptr, D::NoiseSchedule(), ck.get_int("step", 0)};
  L.net = std::make_shared<D::UNet>(L.margs.unet());
  L.net->load_state_dict(ck.group("model"));
  if (use_ema && ck.groups.count("ema")) {
    optim::ExponentialMovingAverage ema(L.net->parameters());
    ema.load_state_dict(ck.group("ema"));
    ema.copy_to();
  }
  L.net->eval();
  L.sched = L.margs.schedule_();
  return L;
}

struct SampleArgs {
  std::string sampler = "ddim";
  int64_t steps = 50;
  double eta = 0.0;
  std::string variance = "beta-tilde";
  bool no_clip = false;
  int64_t label = -1;
  double guidance = 1.0;
};

void add_sample_flags(CLI::App* app, SampleArgs& s) {
  app->add_option("--sampler", s.sampler, "ddpm (all T steps) or ddim")->check(CLI::IsMember({"ddpm", "ddim"}))
      ->capture_default_str();
  app->add_option("--steps", s.steps, "DDIM steps")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--eta", s.eta, "DDIM eta (0: deterministic)")->capture_default_str();
  app->add_option("--variance", s.variance, "DDPM reverse variance: beta or beta-tilde")
      ->check(CLI::IsMember({"beta", "beta-tilde"}))->capture_default_str();
  app->add_flag("--no-clip", s.no_clip, "do not clamp the predicted x0 to [-1, 1]");
  app->add_option("--class", s.label, "class to sample (class-conditional models); -1: unconditional / all classes "
                                      "in turn")->capture_default_str();
  app->add_option("--guidance", s.guidance, "classifier-free guidance scale (1: conditional only)")
      ->capture_default_str();
}

/// n samples in batches of `batch`: (n, 1, 28, 28) in [-1, 1] (clamped); the first batch's
/// trajectory in `traj` when frames > 1. Returns the seconds spent.
double generate(Loaded& L, const SampleArgs& a, int64_t n, int64_t batch, Generator& gen, Tensor& out,
                int64_t frames = 0, std::vector<Tensor>* traj = nullptr, bool progress = true) {
  const auto t0 = Clock::now();
  const int64_t S = L.net->config().image_size;
  TensorList parts;
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t b = std::min(batch, n - i);
    Tensor labels;
    if (L.net->class_conditional()) {
      std::vector<int64_t> y(static_cast<size_t>(b));
      for (int64_t k = 0; k < b; ++k) y[static_cast<size_t>(k)] = a.label >= 0 ? a.label : (i + k) % 10;
      labels = tensor(y, {b});
    }
    D::DenoiseFn f = D::unet_denoiser(*L.net, labels, labels.defined() ? a.guidance : 1.0);
    D::SampleOptions o{.sampler = D::parse_sampler(a.sampler),
                       .steps = a.steps,
                       .eta = a.eta,
                       .prediction = D::parse_prediction(L.margs.prediction),
                       .variance = D::parse_posterior_variance(a.variance),
                       .clip_denoised = !a.no_clip,
                       .trajectory_frames = i == 0 ? frames : 0,
                       .progress = progress,
                       .desc = a.sampler + " " + std::to_string(i / batch + 1) + "/" +
                               std::to_string((n + batch - 1) / batch)};
    D::SampleResult r = D::sample(f, L.sched, {b, 1, S, S}, o, gen);
    parts.push_back(clamp(r.images, -1.0, 1.0));
    if (traj && i == 0) *traj = r.trajectory;
  }
  out = cat(parts, 0);
  return seconds_since(t0);
}

// ---- train -----------------------------------------------------------------------------------

struct TrainArgs {
  ModelArgs m;
  int epochs = 20;
  int64_t steps = -1;
  double time_limit = 0;  // minutes of wall time
  double cpu_limit = 0;   // minutes of CPU time (all runs of a resumed training together)
  int64_t batch = 64;
  double lr = 2e-4;
  double grad_clip = 1.0;
  double ema_decay = 0.999;
  double p_uncond = 0.1;
  std::string loss_weighting = "constant";
  double snr_gamma = 5.0;
  int64_t log_every = 50, sample_every = 1000, checkpoint_every = 500, preview_steps = 20;
  uint64_t seed = 0;
  std::string out = "diffusion_out";
  bool resume = false;
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t limit = -1;
  bool distributed = false;
};

int run_train(const TrainArgs& a) {
  if (!data::FashionMNIST::available(a.data)) return missing_data("diffusion train", a.data);
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);
  data::FashionMNIST train_set(a.data, true, a.limit);
  // --distributed: each process visits its shard of every epoch's permutation (the sampler shuffles)
  distributed::DistributedSampler shard(train_set, dist.world(), dist.rank(), {.shuffle = true, .seed = a.seed});
  data::DataLoader loader(dist.on() ? static_cast<const data::Dataset&>(shard) : train_set,
                          {.batch_size = a.batch, .shuffle = !dist.on(), .drop_last = true, .seed = a.seed});
  GENAI_CHECK(loader.size() > 0, "diffusion: fewer training images (", train_set.size(), ") than --batch ", a.batch);

  D::UNet net(a.m.unet());
  D::NoiseSchedule sched = a.m.schedule_();
  optim::Adam opt(net.parameters(), {.lr = a.lr});
  optim::ExponentialMovingAverage ema(net.parameters(), a.ema_decay);
  const D::TrainStepOptions step_opt{
      .loss = {.prediction = D::parse_prediction(a.m.prediction),
               .weighting = D::parse_loss_weighting(a.loss_weighting),
               .snr_gamma = a.snr_gamma},
      .p_uncond = a.p_uncond,
      .grad_clip = a.grad_clip};
  if (dist.is_main())
    std::printf("U-Net: %lld parameters (%s); %lld training images, %lld steps per epoch; T = %lld (%s), target %s\n",
              static_cast<long long>(net.num_parameters()), net.extra_repr().c_str(),
              static_cast<long long>(train_set.size()), static_cast<long long>(loader.size()),
              static_cast<long long>(a.m.timesteps), a.m.schedule.c_str(), a.m.prediction.c_str());

  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t start_epoch = 0, skip_batches = 0, step = 0;
  double trained_seconds = 0, cpu_before = 0;  // wall and CPU seconds of training before this run
  if (a.resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    net.load_state_dict(ck.group("model"));
    opt.load_state_dict(ck.group("optim"));
    ema.load_state_dict(ck.group("ema"));
    ck.restore_generator("loader", loader.generator());
    ck.restore_generator("global", default_generator());
    start_epoch = ck.get_int("epoch");
    skip_batches = ck.get_int("batch");
    step = ck.get_int("step");
    trained_seconds = ck.get_float("train_seconds", 0.0);
    cpu_before = ck.get_float("cpu_seconds", 0.0);
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld\n", ckpt_path.c_str(),
                static_cast<long long>(start_epoch + 1), static_cast<long long>(skip_batches),
                static_cast<long long>(step));
  }
  dist.wrap(net);  // --distributed: rank 0's weights everywhere, gradients averaged (inside D::train_step's backward)
  // the noise and timesteps of the training steps (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 logs and writes the samples and checkpoints
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;   // seconds in this run's training steps
  int64_t n_steps = 0;  // this run's training steps
  const double cpu_start = process_cpu_seconds();
  auto cpu_total = [&] { return cpu_before + process_cpu_seconds() - cpu_start; };
  Generator preview_gen(a.seed + 1000);
  const Generator preview_state = preview_gen;

  auto save = [&](int64_t epoch, int64_t batch_in_epoch, const Generator& loader_state) {
    if (!dist.is_main()) return;
    io::Checkpoint ck;
    ck.group("model") = net.state_dict();
    ck.group("optim") = opt.state_dict();
    ck.group("ema") = ema.state_dict();
    ck.set_generator("loader", loader_state);
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = epoch;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["step"] = step;
    ck.floats["train_seconds"] = trained_seconds;
    ck.floats["cpu_seconds"] = cpu_total();
    a.m.save(ck);
    ck.save(ckpt_path);  // atomic
  };
  auto preview = [&]() {  // 64 samples with the EMA weights (the same noise every time)
    if (!dist.is_main()) return;
    NoGradGuard ng;
    ema.store();
    ema.copy_to();
    net.eval();
    Loaded L{a.m, std::shared_ptr<D::UNet>(&net, [](D::UNet*) {}), sched, step};
    Tensor imgs;
    preview_gen = preview_state;
    SampleArgs sa;
    sa.steps = std::min(a.preview_steps, a.m.timesteps);
    generate(L, sa, 64, 64, preview_gen, imgs, 0, nullptr, false);
    net.train();
    ema.restore();
    io::save_png(a.out + "/samples.png", io::make_grid(io::unnormalize_to_zero_to_one(imgs), 8));
  };

  const auto t_start = Clock::now();
  const double budget = a.time_limit > 0 ? a.time_limit * 60.0 : INFINITY;
  const double cpu_budget = a.cpu_limit > 0 ? a.cpu_limit * 60.0 : INFINITY;
  bool stop = false;
  double loss_sum = 0;
  int64_t loss_n = 0;
  auto t_log = Clock::now();
  for (int64_t epoch = start_epoch; epoch < a.epochs && !stop; ++epoch) {
    const Generator loader_at_start = loader.generator();
    if (dist.on()) shard.set_epoch(epoch);
    int64_t todo = loader.size() - skip_batches;
    if (a.steps >= 0) todo = std::min(todo, std::max<int64_t>(0, a.steps - step));
    if (todo <= 0) break;
    net.train();
    train::ProgressBar bar(todo, {.desc = "epoch " + std::to_string(epoch + 1), .stream = dist.progress_stream()});
    int64_t consumed = 0;
    for (const data::Example& b : loader) {
      if (consumed < skip_batches) {
        ++consumed;
        continue;
      }
      // time limits: rank 0 decides for every process
      if ((a.steps >= 0 && step >= a.steps) ||
          dist.from_main(seconds_since(t_start) >= budget || cpu_total() >= cpu_budget)) {
        stop = true;
        break;
      }
      const auto t0 = Clock::now();
      Tensor x0 = io::normalize_to_neg_one_to_one(b.input);  // (B, 1, 28, 28) in [-1, 1]
      // --distributed: train_step's backward leaves the gradients' average over the processes
      const double loss = D::train_step(net, opt, sched, x0, a.m.class_cond ? b.target : Tensor(), step_opt);
      ema.update();
      trained_seconds += seconds_since(t0);
      t_steps += seconds_since(t0);
      ++n_steps;
      ++step;
      ++consumed;
      examples::check_finite_loss(loss, step);
      loss_sum += loss;
      ++loss_n;
      char post[64];
      std::snprintf(post, sizeof post, "loss=%.4f step=%lld", loss, static_cast<long long>(step));
      bar.set_postfix(post);
      bar.update();
      if (step % a.log_every == 0) {
        const double secs = seconds_since(t_log);
        const double mean_loss = dist.mean(loss_sum / static_cast<double>(loss_n));  // over the processes
        if (log)
          log->log({{"step", step},
                 {"epoch", epoch + 1},
                 {"loss", mean_loss},
                 {"images_per_s", static_cast<double>(loss_n * a.batch * dist.world()) / secs},
                 {"train_seconds", trained_seconds},
                 {"cpu_seconds", cpu_total()}});
        loss_sum = 0;
        loss_n = 0;
        t_log = Clock::now();
      }
      if (a.sample_every > 0 && step % a.sample_every == 0) preview();
      if (a.checkpoint_every > 0 && step % a.checkpoint_every == 0) save(epoch, consumed, loader_at_start);
    }
    bar.close();
    const bool finished_epoch = consumed == loader.size();
    skip_batches = 0;
    if (finished_epoch) {
      if (dist.is_main())
        std::printf("epoch %lld done: step %lld, %.1f s training so far\n", static_cast<long long>(epoch + 1),
                  static_cast<long long>(step), trained_seconds);
      save(epoch + 1, 0, loader.generator());
    } else {
      stop = true;
      save(epoch, consumed, loader_at_start);
    }
  }
  const double mean_loss = loss_n > 0 ? dist.mean(loss_sum / static_cast<double>(loss_n)) : 0.0;  // over the processes
  if (log && loss_n > 0)
    log->log({{"step", step},
             {"loss", mean_loss},
             {"train_seconds", trained_seconds},
             {"cpu_seconds", cpu_total()}});
  preview();
  if (!dist.is_main()) return 0;
  if (dist.on()) examples::report_step_time(dist, a.batch, n_steps, t_steps);
  std::printf("trained %lld steps (%.1f s wall, %.1f s CPU); wrote %s/samples.png and %s\n",
              static_cast<long long>(step), trained_seconds, cpu_total(), a.out.c_str(), ckpt_path.c_str());
  return 0;
}

// ---- sample ----------------------------------------------------------------------------------

int run_sample(const std::string& ckpt, const SampleArgs& s, int64_t n, int64_t batch, int64_t nrow,
               const std::string& out, const std::string& traj_path, int64_t frames, bool no_ema, uint64_t seed,
               const std::string& save_tensor) {
  Loaded L = load_model(ckpt, !no_ema);
  std::printf("model: %s, step %lld%s; sampler %s%s\n", L.net->extra_repr().c_str(), static_cast<long long>(L.step),
              no_ema ? " (raw weights)" : " (EMA weights)", s.sampler.c_str(),
              s.sampler == "ddim" ? (", " + std::to_string(s.steps) + " steps, eta " + fmt_g(s.eta)).c_str()
                                  : (", " + std::to_string(L.margs.timesteps) + " steps, variance " + s.variance).c_str());
  Generator gen(seed);
  Tensor imgs;
  std::vector<Tensor> traj;
  const bool want_traj = !traj_path.empty();
  const double secs = generate(L, s, n, batch, gen, imgs, want_traj ? frames : 0, want_traj ? &traj : nullptr);
  const int64_t nfe = s.sampler == "ddpm" ? L.margs.timesteps : s.steps;
  std::printf("%lld images in %.2f s: %.3f s per image (%lld network evaluations each, batch %lld)\n",
              static_cast<long long>(n), secs, secs / static_cast<double>(n), static_cast<long long>(nfe),
              static_cast<long long>(std::min(batch, n)));
  if (!out.empty()) {
    io::save_png(out, io::make_grid(io::unnormalize_to_zero_to_one(imgs), nrow));
    std::printf("wrote %s\n", out.c_str());
  }
  if (want_traj) {
    // one row per image (at most 8): the frames from x_T (left) to the sample (right)
    const int64_t rows = std::min<int64_t>(8, traj[0].size(0)), F = static_cast<int64_t>(traj.size());
    TensorList cells;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t f = 0; f < F; ++f) cells.push_back(clamp(traj[static_cast<size_t>(f)][i], -1.0, 1.0));
    io::save_png(traj_path, io::make_grid(io::unnormalize_to_zero_to_one(stack(cells, 0)), F));
    std::printf("wrote %s (%lld frames from noise to image)\n", traj_path.c_str(), static_cast<long long>(F));
  }
  if (!save_tensor.empty()) {
    io::save_safetensors(save_tensor, {{"images", io::unnormalize_to_zero_to_one(imgs).contiguous()}});
    std::printf("wrote %s (images (N, 1, 28, 28) in [0, 1])\n", save_tensor.c_str());
  }
  return 0;
}

// ---- invert ----------------------------------------------------------------------------------

int run_invert(const std::string& ckpt, const std::string& data_dir, int64_t n, int64_t steps, int64_t iters,
               const std::string& out) {
  if (!data::FashionMNIST::available(data_dir)) return missing_data("diffusion invert", data_dir);
  Loaded L = load_model(ckpt, true);
  data::FashionMNIST test(data_dir, false, n);
  Tensor x0 = io::normalize_to_neg_one_to_one(models::dataset_images(test, n));  // (n, 1, 28, 28)
  Tensor labels;
  if (L.net->class_conditional()) {  // invert and decode with the true labels
    std::vector<int64_t> y;
    for (int64_t i = 0; i < n; ++i) y.push_back(test.get(i).target.item<int64_t>());
    labels = tensor(y, {n});
  }
  D::DenoiseFn f = D::unet_denoiser(*L.net, labels);
  const D::Prediction p = D::parse_prediction(L.margs.prediction);
  const auto t0 = Clock::now();
  Tensor z = D::ddim_invert(f, L.sched, x0, {.steps = steps, .prediction = p, .fixed_point_iters = iters, .progress = true});
  D::SampleOptions o{.sampler = D::Sampler::DDIM, .steps = steps, .eta = 0.0, .prediction = p,
                     .clip_denoised = false, .progress = true, .desc = "decoding"};
  o.x_T = z;
  Tensor rec = D::sample(f, L.sched, x0.shape(), o).images;
  Tensor rec2 = D::sample(f, L.sched, x0.shape(), o).images;  // eta = 0: the same again
  const double secs = seconds_since(t0);
  NoGradGuard ng;
  const double mse = mean(square(sub(rec, x0))).item<double>();
  const double det = abs(sub(rec, rec2)).max().item<double>();
  const double zstd = std::sqrt(mean(square(z)).item<double>());
  std::printf("DDIM inversion, %lld steps, %lld fixed-point iterations, %lld test images: reconstruction MSE %.3g "
              "(images in [-1, 1]; %.3g in [0, 1] units), PSNR %.1f dB; std of the noise %.3f; decoding twice: max "
              "|difference| %.3g; %.1f s\n",
              static_cast<long long>(steps), static_cast<long long>(iters), static_cast<long long>(n), mse, mse / 4,
              10 * std::log10(4.0 / mse), zstd, det, secs);
  TensorList rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(x0[i]);
  for (int64_t i = 0; i < n; ++i) rows.push_back(clamp(mul(z[i], 0.5), -1.0, 1.0));  // the noise, scaled
  for (int64_t i = 0; i < n; ++i) rows.push_back(clamp(rec[i], -1.0, 1.0));
  io::save_png(out, io::make_grid(io::unnormalize_to_zero_to_one(stack(rows, 0)), n));
  std::printf("wrote %s (rows: images, their noise x_T (scaled by 1/2), reconstructions)\n", out.c_str());
  return 0;
}

// ---- eval ------------------------------------------------------------------------------------

int run_eval(const std::string& ckpt, const std::string& clf_path, const std::string& data_dir,
             const std::string& samplers, int64_t n, int64_t batch, int64_t bpd_n, int64_t t_stride,
             const SampleArgs& base, const std::string& out_dir, uint64_t seed) {
  if (!data::FashionMNIST::available(data_dir)) return missing_data("diffusion eval", data_dir);
  Loaded L = load_model(ckpt, true);
  std::filesystem::create_directories(out_dir);
  train::MetricsLogger log(out_dir + "/eval.jsonl", train::MetricsFormat::Auto, /*append=*/true);
  data::FashionMNIST test(data_dir, false);
  std::printf("model: %s, step %lld (EMA weights)\n", L.net->extra_repr().c_str(), static_cast<long long>(L.step));
  if (!clf_path.empty()) {
    models::FMNISTClassifier clf;
    clf.load_state_dict(io::load_safetensors(clf_path));
    clf.eval();
    models::GaussianStats ref = models::dataset_stats(clf, test);
    {  // the floor: n real test images against the full test set
      models::SampleScores real = models::score_samples(clf, models::dataset_images(test, n), ref);
      std::printf("reference: %lld real test images: FMNIST-FID %.2f, classifier score %.3f\n",
                  static_cast<long long>(n), real.fid, real.score.mean);
      log.log({{"what", "real_test_images"}, {"n", n}, {"fid", real.fid}, {"classifier_score", real.score.mean}});
    }
    std::stringstream ss(samplers);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      SampleArgs s = base;
      if (item == "ddpm") {
        s.sampler = "ddpm";
      } else {
        GENAI_CHECK(item.rfind("ddim", 0) == 0, "diffusion eval: unknown sampler '", item, "' in --samplers; "
                    "expected ddpm or ddim<steps> (e.g. ddim50)");
        s.sampler = "ddim";
        s.steps = std::stoll(item.substr(4));
      }
      Generator gen(seed);
      Tensor imgs;
      const double secs = generate(L, s, n, batch, gen, imgs);
      models::SampleScores sc = models::score_samples(clf, io::unnormalize_to_zero_to_one(imgs), ref);
      std::printf("%s: %lld samples, FMNIST-FID %.2f, classifier score %.3f, %.3f s per image\n", item.c_str(),
                  static_cast<long long>(n), sc.fid, sc.score.mean, secs / static_cast<double>(n));
      log.log({{"what", "samples"}, {"sampler", item}, {"eta", s.eta}, {"n", n}, {"fid", sc.fid},
               {"classifier_score", sc.score.mean}, {"seconds_per_image", secs / static_cast<double>(n)},
               {"step", L.step}});
      io::save_png(out_dir + "/eval_" + item + ".png",
                   io::make_grid(io::unnormalize_to_zero_to_one(imgs.narrow(0, 0, std::min<int64_t>(64, n))), 8));
    }
  }
  if (bpd_n > 0) {
    Tensor x0 = io::normalize_to_neg_one_to_one(models::dataset_images(test, bpd_n));
    Generator gen(seed + 1);
    const auto t0 = Clock::now();
    std::vector<double> tot, prior, dec;
    for (int64_t i = 0; i < bpd_n; i += batch) {
      Tensor xb = x0.narrow(0, i, std::min(batch, bpd_n - i));
      D::VLBResult r = D::variational_bound(D::unet_denoiser(*L.net), L.sched, xb,
                                            {.prediction = D::parse_prediction(L.margs.prediction),
                                             .variance = D::parse_posterior_variance(base.variance),
                                             .t_stride = t_stride,
                                             .progress = true},
                                            gen);
      for (double v : r.total_bpd.to_vector<double>()) tot.push_back(v);
      for (double v : r.prior_bpd.to_vector<double>()) prior.push_back(v);
      for (double v : r.decoder_bpd.to_vector<double>()) dec.push_back(v);
    }
    auto avg = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return s / static_cast<double>(v.size());
    };
    std::printf("variational bound on %lld test images (variance %s, t stride %lld): %.3f bits/dim (prior %.2g, "
                "decoder %.3f), %.1f s\n",
                static_cast<long long>(bpd_n), base.variance.c_str(), static_cast<long long>(t_stride), avg(tot),
                avg(prior), avg(dec), seconds_since(t0));
    log.log({{"what", "bpd"}, {"n", bpd_n}, {"variance", base.variance}, {"t_stride", t_stride},
             {"bits_per_dim", avg(tot)}, {"prior_bpd", avg(prior)}, {"decoder_bpd", avg(dec)}, {"step", L.step}});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Denoising diffusion (DDPM / DDIM) on Fashion-MNIST: train, sample, invert, eval."};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "worker threads (0: GENAI_NUM_THREADS or all cores)");

  TrainArgs ta;
  CLI::App* tr = app.add_subcommand("train", "train a U-Net on Fashion-MNIST");
  add_model_flags(tr, ta.m);
  tr->add_option("--epochs", ta.epochs, "passes over the training set")->capture_default_str();
  tr->add_option("--steps", ta.steps, "stop after this many optimizer steps in total; -1: no limit")
      ->capture_default_str();
  tr->add_option("--time-limit", ta.time_limit, "stop after this many minutes of wall time (0: no limit)")
      ->capture_default_str();
  tr->add_option("--cpu-limit", ta.cpu_limit, "stop after this many minutes of process CPU time, counted over "
                                              "resumed runs too (0: no limit)")->capture_default_str();
  tr->add_option("--batch", ta.batch, "images per step (per process with --distributed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--lr", ta.lr, "Adam learning rate")->capture_default_str();
  tr->add_option("--grad-clip", ta.grad_clip, "clip the gradient norm (0: off)")->capture_default_str();
  tr->add_option("--ema-decay", ta.ema_decay, "decay of the weights' moving average used for sampling")
      ->capture_default_str();
  tr->add_option("--p-uncond", ta.p_uncond, "class-conditional: probability of dropping a label")
      ->capture_default_str();
  tr->add_option("--loss-weighting", ta.loss_weighting, "constant, min-snr or p2")
      ->check(CLI::IsMember({"constant", "min-snr", "p2"}))->capture_default_str();
  tr->add_option("--snr-gamma", ta.snr_gamma, "min-snr: gamma")->capture_default_str();
  tr->add_option("--log-every", ta.log_every, "steps between metrics records")->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--sample-every", ta.sample_every, "steps between samples.png previews (0: only at the end)")
      ->capture_default_str();
  tr->add_option("--checkpoint-every", ta.checkpoint_every, "steps between checkpoints (also at each epoch's end)")
      ->capture_default_str();
  tr->add_option("--preview-steps", ta.preview_steps, "DDIM steps of the previews")->capture_default_str();
  tr->add_option("--seed", ta.seed, "seeds initialization, shuffling and the noise")->capture_default_str();
  tr->add_option("--out", ta.out, "output directory (metrics.jsonl, samples.png, checkpoint.safetensors)")
      ->capture_default_str();
  tr->add_flag("--resume", ta.resume, "continue from <out>/checkpoint.safetensors if it exists");
  tr->add_option("--data", ta.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  tr->add_option("--limit", ta.limit, "use only the first N training images; -1: all")->capture_default_str();
  tr->add_flag("--distributed", ta.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process; rank 0 logs and "
               "writes)");

  SampleArgs sa;
  std::string s_ckpt, s_out = "samples.png", s_traj, s_save;
  int64_t s_n = 64, s_batch = 64, s_nrow = 8, s_frames = 10;
  uint64_t s_seed = 0;
  bool s_no_ema = false;
  CLI::App* sp = app.add_subcommand("sample", "sample images from a trained model");
  sp->add_option("--checkpoint", s_ckpt, "checkpoint written by `diffusion train`")->required();
  add_sample_flags(sp, sa);
  sp->add_option("--n", s_n, "number of images")->check(CLI::PositiveNumber)->capture_default_str();
  sp->add_option("--batch", s_batch, "images per sampling batch")->check(CLI::PositiveNumber)->capture_default_str();
  sp->add_option("--out", s_out, "PNG grid of the samples")->capture_default_str();
  sp->add_option("--nrow", s_nrow, "images per row of the grid")->check(CLI::PositiveNumber)->capture_default_str();
  sp->add_option("--trajectory", s_traj, "also write the denoising strip (noise -> image) of up to 8 images here");
  sp->add_option("--frames", s_frames, "frames of the trajectory strip")->check(CLI::Range(2, 1000))
      ->capture_default_str();
  sp->add_option("--save", s_save, "also save the images (in [0, 1]) as a safetensors file");
  sp->add_flag("--no-ema", s_no_ema, "use the raw weights instead of their moving average");
  sp->add_option("--seed", s_seed, "seeds the noise")->capture_default_str();

  std::string i_ckpt, i_data = data::FashionMNIST::kDefaultRoot, i_out = "inversion.png";
  int64_t i_n = 8, i_steps = 50, i_iters = 0;
  CLI::App* ip = app.add_subcommand("invert", "DDIM inversion of test images: image -> noise -> image");
  ip->add_option("--checkpoint", i_ckpt, "checkpoint written by `diffusion train`")->required();
  ip->add_option("--n", i_n, "test images")->check(CLI::PositiveNumber)->capture_default_str();
  ip->add_option("--steps", i_steps, "DDIM steps")->check(CLI::PositiveNumber)->capture_default_str();
  ip->add_option("--fixed-point-iters", i_iters, "extra evaluations per inversion step (more exact)")
      ->capture_default_str();
  ip->add_option("--out", i_out, "PNG: images, noise, reconstructions")->capture_default_str();
  ip->add_option("--data", i_data, "directory with the Fashion-MNIST IDX files")->capture_default_str();

  SampleArgs ea;
  std::string e_ckpt, e_clf, e_data = data::FashionMNIST::kDefaultRoot, e_samplers = "ddim10,ddim20,ddim50",
                             e_out = ".";
  int64_t e_n = 256, e_batch = 128, e_bpd_n = 0, e_stride = 1;
  uint64_t e_seed = 0;
  CLI::App* ep = app.add_subcommand("eval", "FMNIST-FID / classifier score of samples; bits/dim of test images");
  ep->add_option("--checkpoint", e_ckpt, "checkpoint written by `diffusion train`")->required();
  ep->add_option("--classifier", e_clf, "fmnist_classifier.safetensors (from the fmnist_classifier example); "
                                        "empty: skip FID");
  add_sample_flags(ep, ea);
  ep->add_option("--samplers", e_samplers, "comma-separated: ddpm, ddim<steps>")->capture_default_str();
  ep->add_option("--n", e_n, "samples per setting")->check(CLI::Range(2, 1000000))->capture_default_str();
  ep->add_option("--batch", e_batch, "images per batch")->check(CLI::PositiveNumber)->capture_default_str();
  ep->add_option("--bpd-n", e_bpd_n, "test images for the variational bound (0: skip)")->capture_default_str();
  ep->add_option("--t-stride", e_stride, "bits/dim: evaluate every k-th term (1: exact bound)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  ep->add_option("--out", e_out, "directory for eval.jsonl and sample grids")->capture_default_str();
  ep->add_option("--data", e_data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  ep->add_option("--seed", e_seed, "seeds the noise")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);
  try {
    if (*tr) return run_train(ta);
    if (*sp) return run_sample(s_ckpt, sa, s_n, s_batch, s_nrow, s_out, s_traj, s_frames, s_no_ema, s_seed, s_save);
    if (*ip) return run_invert(i_ckpt, i_data, i_n, i_steps, i_iters, i_out);
    if (*ep) return run_eval(e_ckpt, e_clf, e_data, e_samplers, e_n, e_batch, e_bpd_n, e_stride, ea, e_out, e_seed);
  } catch (const genai::Error& e) {
    std::fprintf(stderr, "diffusion: %s\n", e.what());
    return 1;
  }
  return 0;
}
