// vae: trains a variational autoencoder on Fashion-MNIST from scratch.
//
// Walkthrough:
//  1. Data: Fashion-MNIST from the Debian package dataset-fashion-mnist (or --data DIR),
//     images in [0, 1], flattened by the model. --limit N keeps the first N training
//     images (and N / 6 test images) for quick runs.
//  2. Model: the MLP VAE of pytorch/examples (784 -> 400 -> 2 x 20 -> 400 -> 784, the
//     `vae` reference configuration) or --model conv, a convolutional VAE.
//  3. Loss: the negative ELBO, BCE-with-logits summed over pixels plus beta KL, averaged
//     over the batch (nats per image); Adam.
//  4. Every epoch: test negative ELBO (one posterior sample per image, fixed noise),
//     metrics.jsonl, PNGs (samples.png, reconstructions.png: originals above their
//     reconstructions, interpolation.png: latent paths between test images), and an
//     atomic checkpoint that --resume continues from exactly (mid-epoch too).
//  5. At the end: the importance-weighted estimate of the test log-likelihood (IWAE,
//     --iwae-k samples per image), and a check that the training loss fell (exit 1 if not).
//
//   vae --epochs 10 --out runs/vae            # full run (~1 min per epoch on 2 cores)
//   vae --steps 20 --limit 512 --out /tmp/v   # smoke test
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/data/dataloader.hpp>
#include <genai/data/fashion_mnist.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/vae/vae.hpp>
#include <genai/optim/adam.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

#include <genai/distributed/sampler.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;

namespace {

struct Args {
  std::string model = "mlp";
  int epochs = 10;
  int64_t steps = -1;
  int64_t batch = 128;
  double lr = 1e-3;
  double beta = 1.0;
  std::string likelihood = "bernoulli";
  int64_t latent = 20;
  uint64_t seed = 0;
  std::string out = "vae_out";
  bool resume = false;
  bool distributed = false;
  int threads = 0;
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t limit = -1;
  int64_t iwae_k = 50;
  int64_t iwae_n = -1;
};

/// Test-set negative ELBO (and its terms), nats per image, one posterior sample per
/// image from a generator re-seeded for every evaluation (comparable across epochs).
struct EvalResult {
  double neg_elbo = 0, recon = 0, kl = 0;
};
EvalResult evaluate(models::VAEBase& m, const data::Dataset& test, uint64_t seed) {
  NoGradGuard ng;
  Generator gen(seed);
  data::DataLoader loader(test, {.batch_size = 500});
  EvalResult r;
  for (const data::Example& b : loader) {
    models::VAELosses l = m.loss(b.input, m.forward(b.input, gen), "sum");
    r.neg_elbo += l.loss.item<double>();
    r.recon += l.recon.item<double>();
    r.kl += l.kl.item<double>();
  }
  const double n = static_cast<double>(test.size());
  return {r.neg_elbo / n, r.recon / n, r.kl / n};
}

/// -log p(x) estimated with K importance samples (IWAE bound), nats per image, over the
/// first n test images.
double iwae_nll(models::VAEBase& m, const data::Dataset& test, int64_t K, int64_t n, uint64_t seed) {
  NoGradGuard ng;
  Generator gen(seed);
  const int64_t bs = std::max<int64_t>(1, 8192 / K);  // K * bs decodes per batch
  data::DataLoader loader(test, {.batch_size = bs});
  double total = 0;
  int64_t seen = 0;
  train::ProgressBar bar(loader.size(), {.desc = "IWAE k=" + std::to_string(K)});
  for (const data::Example& b : loader) {
    if (seen >= n) break;
    Tensor x = b.input.narrow(0, 0, std::min(b.input.size(0), n - seen));
    total -= sum(m.iwae_log_likelihood(x, K, gen)).item<double>();
    seen += x.size(0);
    bar.update();
  }
  bar.close();
  return total / static_cast<double>(seen);
}

/// samples.png, reconstructions.png and interpolation.png (and samples_epoch_NNN.png).
void write_images(models::VAEBase& m, const data::Dataset& test, const Tensor& z_fixed, const std::string& out,
                  int epoch) {
  NoGradGuard ng;
  const Shape img{-1, 1, 28, 28};
  Tensor samples = reshape(m.decode_mean(z_fixed), img);  // (64, 1, 28, 28)
  Tensor grid = io::make_grid(samples, 8);
  io::save_png(out + "/samples.png", grid);
  char name[64];
  std::snprintf(name, sizeof name, "/samples_epoch_%03d.png", epoch);
  io::save_png(out + name, grid);

  std::vector<data::Example> ex;
  const int64_t n = std::min<int64_t>(16, test.size());
  for (int64_t i = 0; i < n; ++i) ex.push_back(test.get(i));
  Tensor x = data::collate(ex).input;         // (n, 1, 28, 28)
  Tensor r = reshape(m.reconstruct(x), img);  // (n, 1, 28, 28)
  TensorList rows;
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t k = std::min<int64_t>(8, n - i);
    rows.push_back(x.narrow(0, i, k));
    rows.push_back(r.narrow(0, i, k));
  }
  io::save_png(out + "/reconstructions.png", io::make_grid(cat(rows, 0), 8));

  if (n >= 2) {  // latent paths between test images 0 -> 1, 2 -> 3, ...
    const int64_t pairs = std::min<int64_t>(4, n / 2), steps = 10;
    Tensor path = m.interpolate(x.narrow(0, 0, pairs), x.narrow(0, pairs, pairs), steps);
    io::save_png(out + "/interpolation.png", io::make_grid(reshape(path, img), steps));
  }
}

}  // namespace

int run(int argc, char** argv) {
  Args a;
  CLI::App app{"Trains a VAE on Fashion-MNIST (Kingma & Welling 2014); writes metrics, PNGs and checkpoints."};
  app.add_option("--model", a.model, "mlp (784-400-20, the reference VAE) or conv (convolutional VAE)")
      ->check(CLI::IsMember({"mlp", "conv"}))
      ->capture_default_str();
  app.add_option("--epochs", a.epochs, "number of passes over the training set")->capture_default_str();
  app.add_option("--steps", a.steps, "stop after this many optimizer steps in total (smoke tests); -1: no limit")
      ->capture_default_str();
  app.add_option("--batch", a.batch, "images per training batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--beta", a.beta, "weight of the KL term (1: the ELBO; beta-VAE otherwise)")->capture_default_str();
  app.add_option("--likelihood", a.likelihood, "decoder distribution: bernoulli (BCE) or gaussian (sigma 1)")
      ->check(CLI::IsMember({"bernoulli", "gaussian"}))
      ->capture_default_str();
  app.add_option("--latent", a.latent, "latent dimensions")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", a.seed, "seeds initialization, shuffling and the reparameterization noise")
      ->capture_default_str();
  app.add_option("--out", a.out, "output directory (metrics.jsonl, PNGs, checkpoint.safetensors)")
      ->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from <out>/checkpoint.safetensors if it exists");
  app.add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process; rank 0 evaluates "
               "and writes)");
  app.add_option("--threads", a.threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--data", a.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--limit", a.limit, "use only the first N training images (and N/6 test images); -1: all")
      ->capture_default_str();
  app.add_option("--iwae-k", a.iwae_k, "importance samples per image for the final log-likelihood estimate (0: skip)")
      ->capture_default_str();
  app.add_option("--iwae-n", a.iwae_n, "test images for the IWAE estimate (-1: all)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (a.threads > 0) set_num_threads(a.threads);
  if (!data::FashionMNIST::available(a.data)) return examples::missing_fashion_mnist("vae", a.data);
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);

  data::FashionMNIST train_set(a.data, true, a.limit);
  data::FashionMNIST test_set(a.data, false, a.limit < 0 ? -1 : std::max<int64_t>(a.limit / 6, 16));
  // --distributed: each process visits its shard of every epoch's permutation (the sampler shuffles)
  distributed::DistributedSampler shard(train_set, dist.world(), dist.rank(), {.shuffle = true, .seed = a.seed});
  data::DataLoader loader(dist.on() ? static_cast<const data::Dataset&>(shard) : train_set,
                          {.batch_size = a.batch, .shuffle = !dist.on(), .seed = a.seed});

  const auto lik = models::parse_vae_likelihood(a.likelihood);
  std::unique_ptr<models::VAEBase> model;
  if (a.model == "mlp")
    model = std::make_unique<models::VAE>(models::VAEConfig{.latent_dim = a.latent, .likelihood = lik, .beta = a.beta});
  else
    model = std::make_unique<models::ConvVAE>(
        models::ConvVAEConfig{.latent_dim = a.latent, .likelihood = lik, .beta = a.beta});
  models::VAEBase& m = *model;
  optim::Adam opt(m.parameters(), {.lr = a.lr});
  Generator sample_gen(a.seed + 1000);
  Tensor z_fixed = randn({64, a.latent}, kFloat32, sample_gen);  // the same samples every epoch
  std::printf("%s: %lld parameters; %lld training / %lld test images\n", m.type_name().c_str(),
              static_cast<long long>(m.num_parameters()), static_cast<long long>(train_set.size()),
              static_cast<long long>(test_set.size()));

  // resume: the epoch in progress, the batches done in it, and the loader's state at its start
  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t start_epoch = 0, skip_batches = 0, step = 0;
  double first_loss = NAN;
  if (a.resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    GENAI_CHECK(ck.strings.count("model") && ck.get_string("model") == a.model, "vae: the checkpoint ", ckpt_path,
                " is for --model ", ck.strings.count("model") ? ck.get_string("model") : "?");
    m.load_state_dict(ck.model());
    opt.load_state_dict(ck.optim());
    ck.restore_generator("loader", loader.generator());
    ck.restore_generator("global", default_generator());
    start_epoch = ck.get_int("epoch");
    skip_batches = ck.get_int("batch");
    step = ck.get_int("step");
    first_loss = ck.get_float("first_loss", NAN);
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld\n", ckpt_path.c_str(),
                static_cast<long long>(start_epoch + 1), static_cast<long long>(skip_batches),
                static_cast<long long>(step));
  }
  dist.wrap(m);  // --distributed: rank 0's weights everywhere, gradients averaged
  // the reparameterization noise (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates, logs and writes
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;  // seconds in training steps

  auto save = [&](int64_t epoch, int64_t batch_in_epoch, const Generator& loader_state) {
    if (!dist.is_main()) return;
    io::Checkpoint ck;
    ck.model() = m.state_dict();
    ck.optim() = opt.state_dict();
    ck.set_generator("loader", loader_state);
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = epoch;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["step"] = step;
    ck.floats["first_loss"] = first_loss;
    ck.strings["model"] = a.model;
    ck.save(ckpt_path);  // atomic
  };

  double last_loss = NAN;
  bool stopped = false;
  for (int64_t epoch = start_epoch; epoch < a.epochs && !stopped; ++epoch) {
    if (a.steps >= 0 && step >= a.steps) break;
    const auto t0 = std::chrono::steady_clock::now();
    const Generator loader_at_start = loader.generator();  // to resume mid-epoch
    shard.set_epoch(epoch);
    int64_t todo = loader.size() - skip_batches;
    if (a.steps >= 0) todo = std::min(todo, a.steps - step);
    m.train();
    train::ProgressBar bar(todo, {.desc = "epoch " + std::to_string(epoch + 1), .stream = dist.progress_stream()});
    double loss_sum = 0;
    int64_t n = 0, consumed = 0;  // consumed: batches of this epoch done, before a resume too
    for (const data::Example& b : loader) {
      if (consumed < skip_batches) {  // done before the checkpoint (same shuffle: same batches)
        ++consumed;
        continue;
      }
      if (a.steps >= 0 && step >= a.steps) break;
      const auto ts = std::chrono::steady_clock::now();
      opt.zero_grad();
      Tensor loss = m.loss(b.input, m.forward(b.input)).loss;  // noise from the global generator
      loss.backward();  // --distributed: backward leaves the gradients' average over the processes
      opt.step();
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++step;
      ++consumed;
      last_loss = loss.item<double>();
      examples::check_finite_loss(last_loss, step);
      if (std::isnan(first_loss)) first_loss = last_loss;
      loss_sum += last_loss;
      ++n;
      char post[64];
      std::snprintf(post, sizeof post, "loss=%.2f", last_loss);
      bar.set_postfix(post);
      bar.update();
    }
    bar.close();
    stopped = consumed < loader.size();  // only the --steps limit ends an epoch early
    skip_batches = 0;
    if (!dist.is_main()) continue;  // rank 0 evaluates and writes

    m.eval();
    EvalResult ev = evaluate(m, test_set, a.seed + 2000);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("epoch %lld%s: train loss %.3f, test -ELBO %.3f nats (recon %.3f, KL %.3f), %.1f s\n",
                static_cast<long long>(epoch + 1), stopped ? " (stopped by --steps)" : "",
                n ? loss_sum / static_cast<double>(n) : NAN, ev.neg_elbo, ev.recon, ev.kl, secs);
    log->log({{"epoch", epoch + 1},
             {"step", step},
             {"train_loss", n ? loss_sum / static_cast<double>(n) : NAN},
             {"test_neg_elbo", ev.neg_elbo},
             {"test_recon", ev.recon},
             {"test_kl", ev.kl},
             {"seconds", secs}});
    write_images(m, test_set, z_fixed, a.out, static_cast<int>(epoch + 1));
    if (stopped)
      save(epoch, consumed, loader_at_start);  // --resume continues inside this epoch
    else
      save(epoch + 1, 0, loader.generator());
  }

  examples::report_step_time(dist, a.batch, step, t_steps);
  if (!dist.is_main()) return 0;
  if (a.iwae_k > 0) {
    m.eval();
    const int64_t n = a.iwae_n < 0 ? test_set.size() : std::min(a.iwae_n, test_set.size());
    const double nll = iwae_nll(m, test_set, a.iwae_k, n, a.seed + 3000);
    std::printf("test -log p(x) <= %.3f nats per image (IWAE bound, k = %lld, %lld images)\n", nll,
                static_cast<long long>(a.iwae_k), static_cast<long long>(n));
    log->log({{"step", step}, {"test_iwae_nll", nll}, {"iwae_k", a.iwae_k}, {"iwae_images", n}});
  }

  if (!std::isnan(first_loss) && !std::isnan(last_loss)) {
    std::printf("training loss: first step %.3f, last step %.3f\n", first_loss, last_loss);
    if (!(last_loss < first_loss)) {
      std::fprintf(stderr, "vae: the training loss did not fall (%.3f -> %.3f)\n", first_loss, last_loss);
      return 1;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "vae: %s\n", e.what());
    return 1;
  }
}
