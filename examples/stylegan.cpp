// stylegan: trains a small StyleGAN2 on Fashion-MNIST (padded to 32 x 32) and samples it.
//
// Walkthrough:
//  1. Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (or --data DIR),
//     scaled to [-1, 1] and padded with the background value -1 from 28 x 28 to 32 x 32
//     (other --resolution values resize bilinearly). --limit N keeps the first N images.
//  2. Models (include/genai/models/gan/stylegan.hpp): mapping network (z = w = 128, 8 FC
//     layers, lr multiplier 0.01), skip-architecture synthesis network with modulated /
//     demodulated convolutions, noise inputs and a learned constant (channels 64, 64, 32, 16
//     at 4, 8, 16, 32), residual discriminator with minibatch stddev; an EMA copy of G.
//  3. Training (stylegan2-ada-pytorch's StyleGAN2Loss): per iteration a G step (non-
//     saturating loss, style mixing with probability 0.9) and a D step, with lazy R1
//     (gamma --r1-gamma, every 16 steps, scaled by 16); Adam(0.0025, betas (0, 0.99)), D's
//     adjusted for the lazy interval; the EMA generator's half-life ramps up to 10k images.
//     Stops after --steps iterations, --minutes of training or --cpu-minutes of process CPU
//     time in training steps, whichever comes first.
//  4. Every --tick iterations and at the end: metrics.jsonl, samples.png (EMA generator,
//     fixed z, constant noise), generator.safetensors (the EMA generator's state dict with
//     its configuration as metadata) and an atomic checkpoint that --resume continues from.
//
// Sampling from a trained generator.safetensors:
//   stylegan sample --generator G --truncation 0.7 --out dir    # dir/samples_psi0.70.png
//   stylegan sample --generator G -n 10000 --fid-out s.safetensors   # (N, 1, 28, 28) for fmnist_eval --samples
//   stylegan mix --generator G --out dir     # style-mixing grid: coarse styles from the row's
//                                            #   source, fine styles from the column's
//   stylegan walk --generator G --out dir    # latent walk: linear paths in W between random w's
//
//   stylegan train --minutes 15 --out runs/stylegan
//   stylegan train --steps 3 --limit 128 --out /tmp/sg   # smoke test
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <genai/data/dataloader.hpp>
#include <genai/data/fashion_mnist.hpp>
#include <genai/distributed/sampler.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/gan/stylegan.hpp>
#include <genai/optim/adam.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>
#include <map>
#include <optional>
#include <string>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;

namespace {

struct Args {
  // train
  int64_t steps = -1;
  double minutes = -1;
  double cpu_minutes = -1;
  int64_t batch = 32;
  double lr = 0.0025;
  double r1_gamma = 0.01;
  int64_t r1_interval = 16;
  double mixing = 0.9;
  double ema_kimg = -1;  // -1: batch * 10 / 32
  int64_t tick = 200;
  // model
  int64_t z_dim = 128, w_dim = 128, mapping_layers = 8, resolution = 32, channel_base = 512, channel_max = 64;
  // sampling
  std::string generator;
  double truncation = 1.0;
  int64_t n = 64;
  std::string fid_out;
  int64_t mix_rows = 5, mix_cols = 6, mix_cutoff = 3;
  int64_t walk_keys = 5, walk_frames = 8;
  bool const_noise = false;
  // common
  uint64_t seed = 0;
  std::string out = "stylegan_out";
  bool resume = false;
  bool distributed = false;
  int threads = 0;
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t limit = -1;
};

models::StyleGANConfig config_of(const Args& a) {
  return {.z_dim = a.z_dim,
          .w_dim = a.w_dim,
          .mapping_layers = a.mapping_layers,
          .resolution = a.resolution,
          .img_channels = 1,
          .channel_base = a.channel_base,
          .channel_max = a.channel_max};
}

std::map<std::string, std::string> config_meta(const models::StyleGANConfig& c, int64_t step) {
  return {{"model", "StyleGANGenerator"},
          {"z_dim", std::to_string(c.z_dim)},
          {"w_dim", std::to_string(c.w_dim)},
          {"mapping_layers", std::to_string(c.mapping_layers)},
          {"resolution", std::to_string(c.resolution)},
          {"img_channels", std::to_string(c.img_channels)},
          {"channel_base", std::to_string(c.channel_base)},
          {"channel_max", std::to_string(c.channel_max)},
          {"step", std::to_string(step)}};
}

/// (B, 1, 28, 28) in [-1, 1] -> (B, 1, R, R): padded with -1 (R = 32) or resized.
Tensor to_resolution(const Tensor& x, int64_t R) {
  if (x.size(2) == R) return x;
  if (R != 32 || x.size(2) != 28) return io::resize(x, R, R);
  Tensor xc = contiguous(x);
  const int64_t B = x.size(0), C = x.size(1);
  Tensor y = full({B, C, 32, 32}, -1.0);
  const float* s = xc.data_ptr<const float>();
  float* d = y.data_ptr<float>();
  for (int64_t p = 0; p < B * C; ++p)
    for (int64_t i = 0; i < 28; ++i)
      std::copy(s + (p * 28 + i) * 28, s + (p * 28 + i + 1) * 28, d + (p * 32 + i + 2) * 32 + 2);
  return y;
}

Tensor to_unit(const Tensor& img) { return io::unnormalize_to_zero_to_one(clamp(img, -1.0, 1.0)); }

std::shared_ptr<models::StyleGANGenerator> load_generator(const std::string& path) {
  std::map<std::string, std::string> meta;
  io::TensorMap sd = io::load_safetensors(path, &meta);
  auto get = [&](const char* k) {
    GENAI_CHECK(meta.count(k), "stylegan: ", path, " has no '", k, "' metadata; hint: pass a generator.safetensors ",
                "written by `stylegan train`");
    return std::stoll(meta[k]);
  };
  models::StyleGANConfig c{.z_dim = get("z_dim"),
                           .w_dim = get("w_dim"),
                           .mapping_layers = get("mapping_layers"),
                           .resolution = get("resolution"),
                           .img_channels = get("img_channels"),
                           .channel_base = get("channel_base"),
                           .channel_max = get("channel_max")};
  auto G = std::make_shared<models::StyleGANGenerator>(c);
  G->load_state_dict(sd);
  G->eval();
  return G;
}

// ---- train ---------------------------------------------------------------------------------

int run_train(const Args& a) {
  if (!data::FashionMNIST::available(a.data)) return examples::missing_fashion_mnist("stylegan", a.data);
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);
  data::FashionMNIST train_set(a.data, true, a.limit);
  // --distributed: each process visits its shard of every epoch's permutation (the sampler shuffles)
  distributed::DistributedSampler shard(train_set, dist.world(), dist.rank(), {.shuffle = true, .seed = a.seed});
  data::DataLoader loader(dist.on() ? static_cast<const data::Dataset&>(shard) : train_set,
                          {.batch_size = a.batch, .shuffle = !dist.on(), .drop_last = true, .seed = a.seed});
  GENAI_CHECK(loader.size() > 0, "stylegan: fewer training images (", train_set.size(), ") than --batch ", a.batch);
  GENAI_CHECK(a.batch % 4 == 0, "stylegan: --batch must be a multiple of 4 (the minibatch-stddev group)");

  const models::StyleGANConfig cfg = config_of(a);
  models::StyleGANGenerator G(cfg), G_ema(cfg);
  models::StyleGANDiscriminator D(cfg);
  G_ema.load_state_dict(G.state_dict());
  G_ema.eval();
  // lazy regularization: D's Adam runs at lr c and betas^c, c = interval / (interval + 1)
  const double c = a.r1_interval > 0 ? double(a.r1_interval) / double(a.r1_interval + 1) : 1.0;
  optim::Adam optG(G.parameters(), {.lr = a.lr, .betas = {0.0, 0.99}, .eps = 1e-8});
  optim::Adam optD(D.parameters(), {.lr = a.lr * c, .betas = {0.0, std::pow(0.99, c)}, .eps = 1e-8});
  const models::StyleGANTrainOptions opt{
      .r1_gamma = a.r1_gamma, .r1_interval = a.r1_interval, .style_mixing_prob = a.mixing};
  Generator fixed_gen(a.seed + 1000);
  Tensor z_fixed = randn({64, cfg.z_dim}, kFloat32, fixed_gen);
  if (dist.is_main())
    std::printf("G: %lld parameters (%lld ws), D: %lld parameters; %lld training images, batch %lld\n",
              static_cast<long long>(G.num_parameters()), static_cast<long long>(G.num_ws()),
              static_cast<long long>(D.num_parameters()), static_cast<long long>(train_set.size()),
              static_cast<long long>(a.batch));

  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t step = 0, epoch = 0, skip_batches = 0;
  double trained_secs = 0, trained_cpu_secs = 0;  // wall and process CPU time of the training steps
  if (a.resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    G.load_state_dict(ck.group("G"));
    G_ema.load_state_dict(ck.group("G_ema"));
    D.load_state_dict(ck.group("D"));
    optG.load_state_dict(ck.group("optG"));
    optD.load_state_dict(ck.group("optD"));
    ck.restore_generator("loader", loader.generator());
    ck.restore_generator("global", default_generator());
    step = ck.get_int("step");
    epoch = ck.get_int("epoch");
    skip_batches = ck.get_int("batch");
    trained_secs = static_cast<double>(ck.get_int("train_ms")) / 1000.0;
    trained_cpu_secs = static_cast<double>(ck.get_int("train_cpu_ms", 0)) / 1000.0;
    std::printf("resumed from %s: step %lld (epoch %lld, batch %lld)\n", ckpt_path.c_str(),
                static_cast<long long>(step), static_cast<long long>(epoch + 1), static_cast<long long>(skip_batches));
  }
  // --distributed: rank 0's weights everywhere; G's and D's gradients are each averaged by their own
  // backward inside stylegan_train_step (G_ema follows G, so it stays the same everywhere)
  dist.wrap(G);
  dist.wrap(D);
  if (dist.on() && !(a.resume && std::filesystem::exists(ckpt_path))) G_ema.load_state_dict(G.state_dict());
  // the latents and noise inputs (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 logs and writes the samples and checkpoints
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;   // seconds in this run's training steps
  int64_t n_steps = 0;  // this run's training steps

  Generator loader_at_epoch_start = loader.generator();
  int64_t batch_in_epoch = skip_batches;
  auto save = [&]() {
    if (!dist.is_main()) return;
    {
      NoGradGuard ng;
      Tensor imgs = G_ema.forward(z_fixed, 1.0, -1, models::NoiseMode::Const);  // (64, 1, R, R)
      io::save_png(a.out + "/samples.png", io::make_grid(to_unit(imgs), 8));
    }
    io::Checkpoint ck;
    ck.group("G") = G.state_dict();
    ck.group("G_ema") = G_ema.state_dict();
    ck.group("D") = D.state_dict();
    ck.group("optG") = optG.state_dict();
    ck.group("optD") = optD.state_dict();
    ck.set_generator("loader", loader_at_epoch_start);
    ck.set_generator("global", default_generator());
    ck.ints["step"] = step;
    ck.ints["epoch"] = epoch;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["train_ms"] = static_cast<int64_t>(trained_secs * 1000);
    ck.ints["train_cpu_ms"] = static_cast<int64_t>(trained_cpu_secs * 1000);
    ck.save(ckpt_path);  // atomic
    io::save_safetensors(a.out + "/generator.safetensors", G_ema.state_dict(), config_meta(cfg, step));
  };

  const double ema_nimg_max = (a.ema_kimg > 0 ? a.ema_kimg : double(a.batch * dist.world()) * 10.0 / 32.0) * 1000.0;
  const int64_t budget = a.steps >= 0 ? a.steps - step : -1;
  train::ProgressBar bar(budget > 0 ? budget : 0, {.desc = "stylegan", .stream = dist.progress_stream()});
  double g_sum = 0, d_sum = 0, dr_sum = 0, df_sum = 0, r1_last = 0;
  int64_t n = 0;
  auto t_tick = std::chrono::steady_clock::now();
  auto budget_spent = [&] {
    return (a.steps >= 0 && step >= a.steps) || (a.minutes > 0 && trained_secs >= a.minutes * 60) ||
           (a.cpu_minutes > 0 && trained_cpu_secs >= a.cpu_minutes * 60);
  };
  bool done = dist.from_main(budget_spent());  // time limits: rank 0 decides for every process
  while (!done) {
    loader_at_epoch_start = loader.generator();
    if (dist.on()) shard.set_epoch(epoch);
    int64_t consumed = 0;
    for (const data::Example& b : loader) {
      if (consumed++ < skip_batches) continue;
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      Tensor real = to_resolution(io::normalize_to_neg_one_to_one(b.input), cfg.resolution);  // (B, 1, R, R)
      const int64_t B = real.size(0);
      Tensor zg = randn({B, cfg.z_dim}), zd = randn({B, cfg.z_dim});
      Tensor zg2 = randn({B, cfg.z_dim}), zd2 = randn({B, cfg.z_dim});
      models::StyleGANStepStats st = models::stylegan_train_step(G, D, optG, optD, real, zg, zd, step, opt, zg2, zd2);
      // EMA generator: half-life ema_nimg images, ramped up to 5% of the images seen (--distributed: the
      // global batch, world x B images, per step)
      const double Bg = double(B) * double(dist.world());
      const double nimg = double(step + 1) * Bg;
      const double ema_nimg = std::min(ema_nimg_max, nimg * 0.05);
      models::stylegan_ema_update(G_ema, G, std::pow(0.5, Bg / std::max(ema_nimg, 1e-8)));
      ++step;
      batch_in_epoch = consumed;
      trained_secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      trained_cpu_secs += static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++n_steps;
      examples::check_finite_loss(st.g_loss, step, "generator loss");
      examples::check_finite_loss(st.d_loss, step, "discriminator loss");
      g_sum += st.g_loss;
      d_sum += st.d_loss;
      dr_sum += st.d_real;
      df_sum += st.d_fake;
      if (st.r1 >= 0) r1_last = st.r1;
      ++n;
      char post[96];
      std::snprintf(post, sizeof post, "G=%.3f D=%.3f R1=%.3g", st.g_loss, st.d_loss, r1_last);
      bar.set_postfix(post);
      bar.update();
      done = dist.from_main(budget_spent());
      if (step % a.tick == 0 || done) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tick).count();
        const double dn = double(n);
        // --distributed: losses averaged over the processes, images counted over all of them
        const double g_avg = dist.mean(g_sum / dn), d_avg = dist.mean(d_sum / dn), dr_avg = dist.mean(dr_sum / dn),
                     df_avg = dist.mean(df_sum / dn);
        if (log)
          log->log({{"step", step},
                 {"kimg", nimg / 1000.0},
                 {"g_loss", g_avg},
                 {"d_loss", d_avg},
                 {"d_real_logit", dr_avg},
                 {"d_fake_logit", df_avg},
                 {"r1", r1_last},
                 {"ms_per_step", 1000.0 * secs / dn},
                 {"train_minutes", trained_secs / 60.0},
                 {"train_cpu_minutes", trained_cpu_secs / 60.0}});
        g_sum = d_sum = dr_sum = df_sum = 0;
        n = 0;
        save();
        t_tick = std::chrono::steady_clock::now();
      }
      if (done) break;
    }
    if (!done) {
      ++epoch;
      skip_batches = 0;
      batch_in_epoch = 0;
    }
  }
  bar.close();
  if (!dist.is_main()) return 0;
  if (dist.on()) examples::report_step_time(dist, a.batch, n_steps, t_steps);
  std::printf(
      "trained %lld steps (%.1f kimg) in %.1f min (%.1f min CPU); wrote %s/{samples.png,generator.safetensors,"
      "metrics.jsonl}\n",
      static_cast<long long>(step), double(step * a.batch * dist.world()) / 1000.0, trained_secs / 60.0,
      trained_cpu_secs / 60.0,
      a.out.c_str());
  return 0;
}

// ---- sample, mix, walk -------------------------------------------------------------------------

models::NoiseMode noise_of(const Args& a) {
  return a.const_noise ? models::NoiseMode::Const : models::NoiseMode::Random;
}

int sample(const Args& a) {
  auto G = load_generator(a.generator);
  std::filesystem::create_directories(a.out);
  Generator gen(a.seed);
  NoGradGuard ng;
  const int64_t z_dim = G->config().z_dim, R = G->config().resolution;
  if (!a.fid_out.empty()) {
    // (N, 1, 28, 28) in [-1, 1]: the central crop of a 32 x 32 (padded) generator, else resized
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < a.n; i += 500) {
      const int64_t m = std::min<int64_t>(500, a.n - i);
      Tensor img = clamp(G->forward(randn({m, z_dim}, kFloat32, gen), a.truncation, -1, noise_of(a), gen), -1.0, 1.0);
      img = R == 32 ? contiguous(narrow(narrow(img, 2, 2, 28), 3, 2, 28)) : io::resize(img, 28, 28);
      parts.push_back(img);
    }
    io::save_safetensors(a.fid_out, {{"samples", cat(parts, 0)}});
    std::printf("wrote %lld samples (N, 1, 28, 28) in [-1, 1] to %s\n", static_cast<long long>(a.n), a.fid_out.c_str());
    return 0;
  }
  Tensor img = G->forward(randn({a.n, z_dim}, kFloat32, gen), a.truncation, -1, noise_of(a), gen);
  char name[64];
  std::snprintf(name, sizeof name, "/samples_psi%.2f.png", a.truncation);
  io::save_png(a.out + name, io::make_grid(to_unit(img), 8));
  std::printf("wrote %s%s\n", a.out.c_str(), name);
  return 0;
}

int mix(const Args& a) {
  auto G = load_generator(a.generator);
  std::filesystem::create_directories(a.out);
  Generator gen(a.seed);
  NoGradGuard ng;
  const int64_t z_dim = G->config().z_dim, R = G->config().resolution, nws = G->num_ws();
  const int64_t cut = std::clamp<int64_t>(a.mix_cutoff, 1, nws - 1);
  Tensor ws_row = G->mapping->forward(randn({a.mix_rows, z_dim}, kFloat32, gen), a.truncation);  // (rows, nws, w)
  Tensor ws_col = G->mapping->forward(randn({a.mix_cols, z_dim}, kFloat32, gen), a.truncation);  // (cols, nws, w)
  const models::NoiseMode nm = models::NoiseMode::Const;
  Tensor row_img = G->synthesis->forward(ws_row, nm), col_img = G->synthesis->forward(ws_col, nm);
  std::vector<Tensor> cells;
  cells.push_back(full({1, 1, R, R}, -1.0));  // top-left corner: blank
  for (int64_t j = 0; j < a.mix_cols; ++j) cells.push_back(narrow(col_img, 0, j, 1));
  for (int64_t i = 0; i < a.mix_rows; ++i) {
    cells.push_back(narrow(row_img, 0, i, 1));
    // coarse styles (ws[:cut], the low resolutions) from row i, fine ones from column j
    Tensor coarse = expand(narrow(ws_row, 0, i, 1), {a.mix_cols, nws, ws_row.size(2)});
    Tensor ws = cat({narrow(coarse, 1, 0, cut), narrow(ws_col, 1, cut, nws - cut)}, 1);
    cells.push_back(G->synthesis->forward(ws, nm));
  }
  io::save_png(a.out + "/style_mixing.png", io::make_grid(to_unit(cat(cells, 0)), a.mix_cols + 1));
  std::printf(
      "wrote %s/style_mixing.png: left column and top row are the sources; cell (i, j) takes ws[0:%lld] "
      "(coarse) from row i and ws[%lld:%lld] (fine) from column j\n",
      a.out.c_str(), static_cast<long long>(cut), static_cast<long long>(cut), static_cast<long long>(nws));
  return 0;
}

int walk(const Args& a) {
  auto G = load_generator(a.generator);
  std::filesystem::create_directories(a.out);
  Generator gen(a.seed);
  NoGradGuard ng;
  const int64_t z_dim = G->config().z_dim;
  Tensor keys = G->mapping->forward(randn({a.walk_keys, z_dim}, kFloat32, gen), a.truncation);  // (K, nws, w)
  std::vector<Tensor> frames;
  for (int64_t k = 0; k + 1 < a.walk_keys; ++k)
    for (int64_t f = 0; f < a.walk_frames; ++f) {
      const double t = double(f) / double(a.walk_frames);  // linear path in W from key k to key k + 1
      frames.push_back(add(narrow(keys, 0, k, 1), mul(sub(narrow(keys, 0, k + 1, 1), narrow(keys, 0, k, 1)), t)));
    }
  Tensor img = G->synthesis->forward(cat(frames, 0), models::NoiseMode::Const);
  io::save_png(a.out + "/latent_walk.png", io::make_grid(to_unit(img), a.walk_frames));
  std::printf("wrote %s/latent_walk.png (%lld rows: key k to key k + 1 in W, constant noise)\n", a.out.c_str(),
              static_cast<long long>(a.walk_keys - 1));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{
      "StyleGAN2 on Fashion-MNIST 32x32 (Karras et al. 2020): train, sample with truncation, "
      "style-mixing grid, latent walk."};
  app.require_subcommand(1);
  auto common = [&](CLI::App* s) {
    s->add_option("--seed", a.seed, "random seed")->capture_default_str();
    s->add_option("--out", a.out, "output directory")->capture_default_str();
    s->add_option("--threads", a.threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  };
  CLI::App* tr = app.add_subcommand("train", "train on Fashion-MNIST");
  common(tr);
  tr->add_option("--steps", a.steps, "stop after this many iterations (G + D step); -1: no limit")
      ->capture_default_str();
  tr->add_option("--minutes", a.minutes, "stop after this much training time (excl. saving); -1: no limit")
      ->capture_default_str();
  tr->add_option("--cpu-minutes", a.cpu_minutes,
                 "stop after this much process CPU time in training steps (a budget that a shared machine does "
                 "not shrink; with --threads 1 it is one core's time); -1: no limit")
      ->capture_default_str();
  tr->add_option("--batch", a.batch, "images per step (multiple of 4; per process with --distributed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--lr", a.lr, "Adam learning rate (betas (0, 0.99))")->capture_default_str();
  tr->add_option("--r1-gamma", a.r1_gamma, "R1 weight gamma")->capture_default_str();
  tr->add_option("--r1-interval", a.r1_interval, "lazy R1 every N steps (0: off)")->capture_default_str();
  tr->add_option("--mixing", a.mixing, "style mixing probability")->capture_default_str();
  tr->add_option("--ema-kimg", a.ema_kimg, "EMA half-life in thousands of images (-1: global batch * 10 / 32)")
      ->capture_default_str();
  tr->add_option("--tick", a.tick, "log, sample and checkpoint every N steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--z-dim", a.z_dim, "latent z size")->capture_default_str();
  tr->add_option("--w-dim", a.w_dim, "latent w size")->capture_default_str();
  tr->add_option("--mapping-layers", a.mapping_layers, "mapping network depth")->capture_default_str();
  tr->add_option("--resolution", a.resolution, "image size (32: Fashion-MNIST padded)")->capture_default_str();
  tr->add_option("--channel-base", a.channel_base, "channels min(base / res, max)")->capture_default_str();
  tr->add_option("--channel-max", a.channel_max, "channels min(base / res, max)")->capture_default_str();
  tr->add_flag("--resume", a.resume, "continue from <out>/checkpoint.safetensors if it exists");
  tr->add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process; rank 0 logs and "
               "writes)");
  tr->add_option("--data", a.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  tr->add_option("--limit", a.limit, "use only the first N training images; -1: all")->capture_default_str();
  auto gen_opts = [&](CLI::App* s) {
    common(s);
    s->add_option("--generator", a.generator, "generator.safetensors written by `stylegan train`")->required();
    s->add_option("--truncation", a.truncation, "truncation psi (1: none; 0: the average w)")->capture_default_str();
  };
  CLI::App* sa = app.add_subcommand("sample", "write a grid of samples, or N samples for fmnist_eval");
  gen_opts(sa);
  sa->add_option("-n", a.n, "number of samples")->check(CLI::PositiveNumber)->capture_default_str();
  sa->add_option("--fid-out", a.fid_out, "write the samples (N, 1, 28, 28) to this safetensors file instead");
  sa->add_flag("--const-noise", a.const_noise, "use the stored noise instead of fresh noise");
  CLI::App* mx = app.add_subcommand("mix", "style-mixing grid");
  gen_opts(mx);
  mx->add_option("--rows", a.mix_rows, "sources of the coarse styles")->capture_default_str();
  mx->add_option("--cols", a.mix_cols, "sources of the fine styles")->capture_default_str();
  mx->add_option("--cutoff", a.mix_cutoff, "ws[0:cutoff] are coarse (3: the 4x4 and 8x8 layers)")
      ->capture_default_str();
  CLI::App* wk = app.add_subcommand("walk", "latent walk in W");
  gen_opts(wk);
  wk->add_option("--keys", a.walk_keys, "random w's to walk through")->capture_default_str();
  wk->add_option("--frames", a.walk_frames, "frames between two keys")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  try {
    if (*tr) return run_train(a);
    if (*sa) return sample(a);
    if (*mx) return mix(a);
    return walk(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stylegan: %s\n", e.what());
    return 1;
  }
}
