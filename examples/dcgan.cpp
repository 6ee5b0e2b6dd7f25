// dcgan: trains a DCGAN on Fashion-MNIST from scratch.
//
// Walkthrough:
//  1. Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (or --data DIR),
//     scaled to [-1, 1] (the generator ends in tanh); --image-size 64 resizes
//     (bilinear) for the 4-stage 64x64 layout. --limit N keeps the first N images.
//  2. Models: the `dcgan` reference generator and discriminator (nz 100, ngf = ndf = 64,
//     28x28, batch norm, no conv bias, the paper's N(0, 0.02) initialization).
//  3. Training: per batch one D step (real + detached fake) then one G step through the
//     updated D, as pytorch/examples' dcgan; Adam(2e-4, betas (0.5, 0.999)); loss
//     --loss bce (non-saturating, default), hinge, or wgan-gp (gradient penalty weight
//     --gp-weight; double backward through the discriminator).
//  4. Every epoch: metrics.jsonl (mean D and G losses, D's mean logits on real and fake),
//     samples.png from a fixed noise batch (generator in eval mode: running statistics),
//     generator.safetensors (the generator's weights with its configuration as
//     metadata, for FID scoring), and an atomic checkpoint that --resume continues from.
//
//   dcgan --epochs 5 --out runs/dcgan          # ~ 10 min per epoch on 2 shared cores
//   dcgan --steps 3 --limit 256 --out /tmp/g   # smoke test
#include <chrono>
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
#include <genai/models/gan/dcgan.hpp>
#include <genai/optim/adam.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;

namespace {

struct Args {
  int epochs = 5;
  int64_t steps = -1;
  int64_t batch = 64;
  double lr = 2e-4;
  double beta1 = 0.5;
  std::string loss = "bce";
  double gp_weight = 10.0;
  int64_t nz = 100, ngf = 64, ndf = 64, image_size = 28;
  uint64_t seed = 0;
  std::string out = "dcgan_out";
  bool resume = false;
  bool distributed = false;
  int threads = 0;
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t limit = -1;
};

void write_samples(models::DCGANGenerator& G, const Tensor& z_fixed, const std::string& out, int64_t epoch) {
  NoGradGuard ng;
  G.eval();
  Tensor imgs = io::unnormalize_to_zero_to_one(G.forward(z_fixed));  // (64, nc, S, S) in [0, 1]
  G.train();
  Tensor grid = io::make_grid(imgs, 8);
  io::save_png(out + "/samples.png", grid);
  char name[64];
  std::snprintf(name, sizeof name, "/samples_epoch_%03lld.png", static_cast<long long>(epoch));
  io::save_png(out + name, grid);
}

}  // namespace

int run(int argc, char** argv) {
  Args a;
  CLI::App app{"Trains a DCGAN on Fashion-MNIST (Radford et al. 2016); writes metrics, sample grids, the "
               "generator's weights and checkpoints."};
  app.add_option("--epochs", a.epochs, "number of passes over the training set")->capture_default_str();
  app.add_option("--steps", a.steps, "stop after this many iterations (D + G step) in total; -1: no limit")
      ->capture_default_str();
  app.add_option("--batch", a.batch, "real images per iteration")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate of both networks")->capture_default_str();
  app.add_option("--beta1", a.beta1, "Adam beta1 of both networks (beta2 = 0.999)")->capture_default_str();
  app.add_option("--loss", a.loss, "bce (non-saturating), hinge or wgan-gp")
      ->check(CLI::IsMember({"bce", "hinge", "wgan-gp"}))
      ->capture_default_str();
  app.add_option("--gp-weight", a.gp_weight, "gradient penalty weight (wgan-gp)")->capture_default_str();
  app.add_option("--nz", a.nz, "latent dimensions")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--ngf", a.ngf, "generator width")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--ndf", a.ndf, "discriminator width")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--image-size", a.image_size, "28 (reference layout) or 64 (4-stage layout; images resized)")
      ->check(CLI::IsMember({28, 64}))
      ->capture_default_str();
  app.add_option("--seed", a.seed, "seeds initialization, shuffling and the noise")->capture_default_str();
  app.add_option("--out", a.out, "output directory (metrics.jsonl, PNGs, generator.safetensors, checkpoint)")
      ->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from <out>/checkpoint.safetensors if it exists");
  app.add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process, batch norm over "
               "the global batch; rank 0 writes)");
  app.add_option("--threads", a.threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--data", a.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--limit", a.limit, "use only the first N training images; -1: all")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (a.threads > 0) set_num_threads(a.threads);
  if (!data::FashionMNIST::available(a.data)) return examples::missing_fashion_mnist("dcgan", a.data);
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);

  data::FashionMNIST train_set(a.data, true, a.limit);
  // --distributed: each process visits its shard of every epoch's permutation (the sampler shuffles)
  distributed::DistributedSampler shard(train_set, dist.world(), dist.rank(), {.shuffle = true, .seed = a.seed});
  data::DataLoader loader(dist.on() ? static_cast<const data::Dataset&>(shard) : train_set,
                          {.batch_size = a.batch, .shuffle = !dist.on(), .drop_last = true, .seed = a.seed});
  GENAI_CHECK(loader.size() > 0, "dcgan: fewer training images (", train_set.size(), ") than --batch ", a.batch);

  models::DCGANConfig cfg{.latent_dim = a.nz, .ngf = a.ngf, .ndf = a.ndf, .channels = 1, .image_size = a.image_size};
  models::DCGANGenerator G(cfg);
  models::DCGANDiscriminator D(cfg);
  optim::Adam optG(G.parameters(), {.lr = a.lr, .betas = {a.beta1, 0.999}});
  optim::Adam optD(D.parameters(), {.lr = a.lr, .betas = {a.beta1, 0.999}});
  const models::GANStepOptions step_opt{.loss = models::parse_gan_loss(a.loss), .gp_weight = a.gp_weight};
  Generator noise_gen(a.seed + 1000);
  Tensor z_fixed = randn({64, a.nz}, kFloat32, noise_gen);
  if (dist.is_main())
    std::printf("G: %lld parameters, D: %lld parameters; %lld training images, %lld iterations per epoch\n",
              static_cast<long long>(G.num_parameters()), static_cast<long long>(D.num_parameters()),
              static_cast<long long>(train_set.size()), static_cast<long long>(loader.size()));

  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t start_epoch = 0, skip_batches = 0, step = 0;
  if (a.resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    G.load_state_dict(ck.group("netG"));
    D.load_state_dict(ck.group("netD"));
    optG.load_state_dict(ck.group("optG"));
    optD.load_state_dict(ck.group("optD"));
    ck.restore_generator("loader", loader.generator());
    ck.restore_generator("global", default_generator());
    start_epoch = ck.get_int("epoch");
    skip_batches = ck.get_int("batch");
    step = ck.get_int("step");
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld\n", ckpt_path.c_str(),
                static_cast<long long>(start_epoch + 1), static_cast<long long>(skip_batches),
                static_cast<long long>(step));
  }
  // --distributed: rank 0's weights everywhere, gradients averaged by backward, batch norm
  // statistics over the global batch (so every process holds the same running statistics)
  dist.wrap(G, /*sync_bn=*/true);
  dist.wrap(D, /*sync_bn=*/true);
  // the noise (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 logs and writes
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;  // seconds in training steps

  auto save = [&](int64_t epoch, int64_t batch_in_epoch, const Generator& loader_state) {
    if (!dist.is_main()) return;
    io::Checkpoint ck;
    ck.group("netG") = G.state_dict();
    ck.group("netD") = D.state_dict();
    ck.group("optG") = optG.state_dict();
    ck.group("optD") = optD.state_dict();
    ck.set_generator("loader", loader_state);
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = epoch;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["step"] = step;
    ck.strings["loss"] = a.loss;
    ck.save(ckpt_path);  // atomic
    // the generator alone, with what is needed to rebuild it (for sampling / FID)
    io::save_safetensors(a.out + "/generator.safetensors", G.state_dict(),
                         {{"model", "DCGANGenerator"},
                          {"latent_dim", std::to_string(a.nz)},
                          {"ngf", std::to_string(a.ngf)},
                          {"channels", "1"},
                          {"image_size", std::to_string(a.image_size)},
                          {"step", std::to_string(step)}});
  };

  bool stopped = false;
  for (int64_t epoch = start_epoch; epoch < a.epochs && !stopped; ++epoch) {
    if (a.steps >= 0 && step >= a.steps) break;
    const auto t0 = std::chrono::steady_clock::now();
    const Generator loader_at_start = loader.generator();
    shard.set_epoch(epoch);
    int64_t todo = loader.size() - skip_batches;
    if (a.steps >= 0) todo = std::min(todo, a.steps - step);
    G.train();
    D.train();
    train::ProgressBar bar(todo, {.desc = "epoch " + std::to_string(epoch + 1), .stream = dist.progress_stream()});
    double d_sum = 0, g_sum = 0, dr_sum = 0, df_sum = 0;
    int64_t n = 0, consumed = 0;
    for (const data::Example& b : loader) {
      if (consumed < skip_batches) {
        ++consumed;
        continue;
      }
      if (a.steps >= 0 && step >= a.steps) break;
      Tensor real = io::normalize_to_neg_one_to_one(b.input);  // (B, 1, 28, 28) in [-1, 1]
      if (a.image_size != 28) real = io::resize(real, a.image_size, a.image_size);
      Tensor z = randn({real.size(0), a.nz});
      const auto ts = std::chrono::steady_clock::now();
      models::GANStepStats st = models::gan_train_step(G, D, optG, optD, real, z, step_opt);
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++step;
      ++consumed;
      examples::check_finite_loss(st.d_loss, step, "discriminator loss");
      examples::check_finite_loss(st.g_loss, step, "generator loss");
      d_sum += st.d_loss;
      g_sum += st.g_loss;
      dr_sum += st.d_real;
      df_sum += st.d_fake;
      ++n;
      char post[96];
      std::snprintf(post, sizeof post, "D=%.3f G=%.3f", st.d_loss, st.g_loss);
      bar.set_postfix(post);
      bar.update();
    }
    bar.close();
    stopped = consumed < loader.size();
    skip_batches = 0;
    if (!dist.is_main()) continue;  // rank 0 logs and writes
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double dn = n ? static_cast<double>(n) : NAN;
    std::printf("epoch %lld%s: D loss %.4f, G loss %.4f, D(real) logit %.3f, D(fake) logit %.3f, %.1f s\n",
                static_cast<long long>(epoch + 1), stopped ? " (stopped by --steps)" : "", d_sum / dn, g_sum / dn,
                dr_sum / dn, df_sum / dn, secs);
    log->log({{"epoch", epoch + 1},
             {"step", step},
             {"d_loss", d_sum / dn},
             {"g_loss", g_sum / dn},
             {"d_real_logit", dr_sum / dn},
             {"d_fake_logit", df_sum / dn},
             {"seconds", secs}});
    write_samples(G, z_fixed, a.out, epoch + 1);
    if (stopped)
      save(epoch, consumed, loader_at_start);
    else
      save(epoch + 1, 0, loader.generator());
  }
  examples::report_step_time(dist, a.batch, step, t_steps);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "dcgan: %s\n", e.what());
    return 1;
  }
}
