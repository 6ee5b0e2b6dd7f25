// cyclegan: unpaired image-to-image translation with CycleGAN (Zhu et al. 2017).
//
// Walkthrough:
//  1. Data: two unpaired domains. A domain is a Fashion-MNIST class (a name such as
//     `sneaker`, `ankle-boot`, `sandal`, or its label 0-9; Debian package
//     dataset-fashion-mnist, or --data DIR), so it runs with no download, or a directory of
//     images (PNG/JPEG, resized to --image-size, the last 10% held out for evaluation).
//     Images are scaled to [-1, 1] (the generators end in tanh).
//  2. Models (include/genai/models/gan/cyclegan.hpp): generators G_A: A -> B and G_B: B -> A
//     (ResNet generators: reflection padding, instance norm, residual blocks) and PatchGAN
//     discriminators D_A (on B images) and D_B (on A images). The Fashion-MNIST default is
//     small (ngf = ndf = 16, 4 residual blocks, 2-layer PatchGAN); --paper selects the
//     paper's 256 x 256 networks (ngf = ndf = 64, 9 blocks, 70 x 70 PatchGAN).
//  3. Training as the paper: per iteration a G step (LSGAN + lambda 10 cycle + 0.5 x 10
//     identity losses) then a D step on fakes drawn from 50-image history pools; Adam(2e-4,
//     betas (0.5, 0.999)); the lr is constant for --n-epochs, then decays linearly to 0 over
//     --n-epochs-decay. An epoch is one pass over domain A (B images drawn at random).
//  4. Every epoch: metrics.jsonl (losses; on held-out test images the cycle reconstruction
//     error mean |G_B(G_A(a)) - a| and mean |G_A(G_B(b)) - b| in [-1, 1] units, and, with
//     --classifier, the fraction of translated images the Fashion-MNIST classifier assigns to
//     the target class), a2b2a.png and b2a2b.png (rows: input, translation, reconstruction),
//     and an atomic checkpoint that --resume continues from.
//  5. `translate` maps one image with a trained checkpoint.
//
//   cyclegan train --domain-a sneaker --domain-b ankle-boot --out runs/cyclegan
//                  --classifier runs/clf/fmnist_classifier.safetensors
//   cyclegan translate --checkpoint runs/cyclegan/checkpoint.safetensors --input shoe.png
//                      --direction a2b --output boot.png
//   cyclegan train --domain-a photos/ --domain-b paintings/ --paper --image-size 256 --channels 3
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <genai/data/fashion_mnist.hpp>
#include <genai/io/checkpoint.hpp>
#include <genai/io/image.hpp>
#include <genai/models/eval/fmnist_classifier.hpp>
#include <genai/models/gan/cyclegan.hpp>
#include <genai/optim/adam.hpp>
#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
namespace fs = std::filesystem;

namespace {

struct Args {
  std::string domain_a = "sneaker", domain_b = "ankle-boot";
  std::string data = data::FashionMNIST::kDefaultRoot;
  int64_t image_size = 0;  // 0: 28 for Fashion-MNIST, 128 for directories
  int64_t channels = 0;    // 0: 1 for Fashion-MNIST, 3 for directories
  int64_t limit = -1, test_n = 500;
  int64_t batch = 1;
  int64_t n_epochs = 1, n_epochs_decay = 1;
  int64_t steps = -1;
  double lr = 2e-4, beta1 = 0.5;
  double lambda_a = 10, lambda_b = 10, lambda_identity = 0.5;
  int64_t pool_size = 50;
  int64_t ngf = 16, ndf = 16, n_blocks = 4, n_layers_d = 2, n_downsampling = 2;
  bool paper = false, no_flip = false;
  std::string classifier;
  std::string out = "cyclegan_out";
  bool resume = false;
  bool distributed = false;
  int threads = 0;
  uint64_t seed = 0;
  int64_t log_every = 100;
};

int64_t fmnist_class(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::replace(s.begin(), s.end(), '_', '-');
  if (s.size() == 1 && s[0] >= '0' && s[0] <= '9') return s[0] - '0';
  static const char* names[] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};
  for (int i = 0; i < 10; ++i)
    if (s == names[i]) return i;
  if (s == "top" || s == "tshirt" || s == "t-shirt/top") return 0;
  if (s == "boot" || s == "ankle boot") return 9;
  return -1;
}

struct Domain {
  std::string name;
  int64_t label = -1;  // Fashion-MNIST class, or -1 for a directory
  Tensor train, test;  // (N, C, S, S) float32 in [-1, 1]
};

/// x (N, C, H, W) mirrored left-right.
Tensor flip_w(const Tensor& x) {
  std::vector<int64_t> idx(static_cast<size_t>(x.size(3)));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(idx.size() - 1 - i);
  return index_select(x, 3, tensor(idx, {x.size(3)}));
}

Tensor stack_images(const std::vector<Tensor>& v) { return v.empty() ? Tensor() : stack(v, 0); }

Domain load_domain(const std::string& spec, const Args& a, int64_t size, int64_t channels) {
  Domain d;
  d.name = spec;
  if (fs::is_directory(spec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(spec)) {
      std::string ext = e.path().extension().string();
      for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
        files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    GENAI_CHECK(files.size() >= 2, "cyclegan: directory '", spec, "' holds ", files.size(),
                " images (png/jpg/bmp); need at least 2");
    if (a.limit > 0 && static_cast<int64_t>(files.size()) > a.limit) files.resize(static_cast<size_t>(a.limit));
    const size_t n_test = std::max<size_t>(1, files.size() / 10);
    std::vector<Tensor> tr, te;
    for (size_t i = 0; i < files.size(); ++i) {
      Tensor img = io::resize(io::load_image(files[i], static_cast<int>(channels)), size, size);  // (C, S, S)
      (i + n_test < files.size() ? tr : te).push_back(io::normalize_to_neg_one_to_one(img));
    }
    d.train = stack_images(tr);
    d.test = stack_images(te);
    return d;
  }
  d.label = fmnist_class(spec);
  GENAI_CHECK(d.label >= 0, "cyclegan: domain '", spec, "' is neither a directory nor a Fashion-MNIST class; hint: "
              "use t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle-boot or 0-9");
  GENAI_CHECK(channels == 1, "cyclegan: Fashion-MNIST domains have 1 channel, got --channels ", channels);
  d.name = data::FashionMNIST::classes()[static_cast<size_t>(d.label)];
  for (bool train : {true, false}) {
    data::FashionMNIST ds(a.data, train);
    std::vector<Tensor> v;
    const int64_t cap = train ? a.limit : a.test_n;
    for (int64_t i = 0; i < ds.size() && (cap < 0 || static_cast<int64_t>(v.size()) < cap); ++i)
      if (ds.label(i) == d.label) {
        Tensor img = ds.get(i).input;  // (1, 28, 28) in [0, 1]
        if (size != 28) img = io::resize(img, size, size);
        v.push_back(io::normalize_to_neg_one_to_one(img));
      }
    (train ? d.train : d.test) = stack_images(v);
  }
  return d;
}

/// Rows of n: inputs, translations, reconstructions, as a [0, 1] grid.
Tensor cycle_grid(models::CycleGAN& gan, const Tensor& x, bool a2b) {
  Tensor y = gan.translate(x, a2b), r = gan.translate(y, !a2b);
  return io::make_grid(io::unnormalize_to_zero_to_one(cat({x, y, r}, 0)), x.size(0));
}

struct EvalResult {
  double cycle_a = NAN, cycle_b = NAN;  // mean |G_B(G_A(a)) - a|, mean |G_A(G_B(b)) - b| in [-1, 1] units
  double rate_a2b = NAN, rate_b2a = NAN;  // fraction of G_A(a) classified as B, of G_B(b) classified as A
  double real_a = NAN, real_b = NAN;      // the classifier's accuracy on the real test images
};

/// Class predictions of x (N, 1, 28, 28) in [-1, 1].
Tensor predict(models::FMNISTClassifier& clf, const Tensor& x) {
  return argmax(clf.forward(io::unnormalize_to_zero_to_one(x)), 1);  // (N) int64
}

double rate_of(const Tensor& pred, int64_t label) {
  return mean(to(eq(pred, static_cast<double>(label)), kFloat64)).item<double>();
}

EvalResult evaluate(models::CycleGAN& gan, const Domain& A, const Domain& B, models::FMNISTClassifier* clf) {
  NoGradGuard ng;
  EvalResult r;
  double sa = 0, sb = 0, ra = 0, rb = 0, qa = 0, qb = 0;
  const int64_t chunk = 100;
  for (int pass = 0; pass < 2; ++pass) {
    const Domain& X = pass == 0 ? A : B;
    const Domain& Y = pass == 0 ? B : A;
    const int64_t n = X.test.size(0);
    for (int64_t i = 0; i < n; i += chunk) {
      Tensor x = narrow(X.test, 0, i, std::min(chunk, n - i));
      Tensor y = gan.translate(x, pass == 0), rec = gan.translate(y, pass != 0);
      const double l1 = sum(abs(sub(rec, x))).item<double>() / static_cast<double>(x.numel() / x.size(0));
      (pass == 0 ? sa : sb) += l1;
      if (clf && X.label >= 0 && Y.label >= 0) {
        (pass == 0 ? ra : rb) += rate_of(predict(*clf, y), Y.label) * static_cast<double>(x.size(0));
        (pass == 0 ? qa : qb) += rate_of(predict(*clf, x), X.label) * static_cast<double>(x.size(0));
      }
    }
  }
  const double na = static_cast<double>(A.test.size(0)), nb = static_cast<double>(B.test.size(0));
  r.cycle_a = sa / na;
  r.cycle_b = sb / nb;
  if (clf && A.label >= 0 && B.label >= 0) {
    r.rate_a2b = ra / na;
    r.rate_b2a = rb / nb;
    r.real_a = qa / na;
    r.real_b = qb / nb;
  }
  return r;
}

void put_config(io::Checkpoint& ck, const models::CycleGANConfig& c, int64_t image_size) {
  ck.ints["cfg.input_nc"] = c.input_nc;
  ck.ints["cfg.output_nc"] = c.output_nc;
  ck.ints["cfg.ngf"] = c.ngf;
  ck.ints["cfg.ndf"] = c.ndf;
  ck.ints["cfg.n_blocks"] = c.n_blocks;
  ck.ints["cfg.n_downsampling"] = c.n_downsampling;
  ck.ints["cfg.n_layers_d"] = c.n_layers_d;
  ck.ints["cfg.image_size"] = image_size;
}

models::CycleGANConfig get_config(const io::Checkpoint& ck) {
  models::CycleGANConfig c;
  c.input_nc = ck.get_int("cfg.input_nc");
  c.output_nc = ck.get_int("cfg.output_nc");
  c.ngf = ck.get_int("cfg.ngf");
  c.ndf = ck.get_int("cfg.ndf");
  c.n_blocks = ck.get_int("cfg.n_blocks");
  c.n_downsampling = ck.get_int("cfg.n_downsampling");
  c.n_layers_d = ck.get_int("cfg.n_layers_d");
  return c;
}

int run_train(Args a) {
  if (a.threads > 0) set_num_threads(a.threads);
  const bool fm = !fs::is_directory(a.domain_a) || !fs::is_directory(a.domain_b);
  if (fm && !data::FashionMNIST::available(a.data))
    return examples::missing_fashion_mnist("cyclegan", a.data, " (a domain is a Fashion-MNIST class)");
  if (a.image_size == 0) a.image_size = fm ? 28 : 128;
  if (a.channels == 0) a.channels = fm ? 1 : 3;
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  manual_seed(a.seed);
  fs::create_directories(a.out);

  Domain A = load_domain(a.domain_a, a, a.image_size, a.channels);
  Domain B = load_domain(a.domain_b, a, a.image_size, a.channels);
  GENAI_CHECK(A.train.defined() && B.train.defined() && A.test.defined() && B.test.defined(),
              "cyclegan: a domain has no training or test images");
  const int64_t nA = A.train.size(0), nB = B.train.size(0);
  const int64_t global_batch = a.batch * dist.world();  // --distributed: process r takes part r of each
  GENAI_CHECK(nA >= global_batch, "cyclegan: domain A has ", nA, " training images, fewer than the (global) batch ",
              global_batch);

  models::CycleGANConfig cfg = a.paper ? models::CycleGANConfig::paper() : models::CycleGANConfig{};
  if (!a.paper) {
    cfg.ngf = a.ngf;
    cfg.ndf = a.ndf;
    cfg.n_blocks = a.n_blocks;
    cfg.n_layers_d = a.n_layers_d;
    cfg.n_downsampling = a.n_downsampling;
  }
  cfg.input_nc = cfg.output_nc = a.channels;
  models::CycleGAN gan(cfg, {.lambda_A = a.lambda_a, .lambda_B = a.lambda_b, .lambda_identity = a.lambda_identity},
                       a.pool_size);
  optim::Adam opt_G(gan.generator_parameters(), {.lr = a.lr, .betas = {a.beta1, 0.999}});
  optim::Adam opt_D(gan.discriminator_parameters(), {.lr = a.lr, .betas = {a.beta1, 0.999}});

  std::unique_ptr<models::FMNISTClassifier> clf;
  if (!a.classifier.empty()) {
    clf = std::make_unique<models::FMNISTClassifier>();
    clf->load_state_dict(io::load_safetensors(a.classifier));
    clf->eval();
  }
  const int64_t per_epoch = nA / global_batch, epochs = a.n_epochs + a.n_epochs_decay;
  if (dist.is_main()) {
    std::printf("CycleGAN %s (%lld train / %lld test) <-> %s (%lld / %lld), %lldx%lld, %lld channel(s)\n", A.name.c_str(),
                static_cast<long long>(nA), static_cast<long long>(A.test.size(0)), B.name.c_str(),
                static_cast<long long>(nB), static_cast<long long>(B.test.size(0)), static_cast<long long>(a.image_size),
                static_cast<long long>(a.image_size), static_cast<long long>(a.channels));
    std::printf("G: 2 x %lld parameters (ngf %lld, %lld blocks), D: 2 x %lld (ndf %lld, %lld layers); %lld iterations "
                "per epoch, %lld + %lld epochs\n",
                static_cast<long long>(gan.netG_A->num_parameters()), static_cast<long long>(cfg.ngf),
                static_cast<long long>(cfg.n_blocks), static_cast<long long>(gan.netD_A->num_parameters()),
                static_cast<long long>(cfg.ndf), static_cast<long long>(cfg.n_layers_d),
                static_cast<long long>(per_epoch), static_cast<long long>(a.n_epochs),
                static_cast<long long>(a.n_epochs_decay));
  }

  Generator data_gen(a.seed + 17), pool_gen(a.seed + 29);
  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  int64_t start_epoch = 0, skip = 0, step = 0;
  if (a.resume && fs::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    gan.load_state_dict(ck.group("gan"));
    opt_G.load_state_dict(ck.group("opt_G"));
    opt_D.load_state_dict(ck.group("opt_D"));
    ck.restore_generator("data", data_gen);
    ck.restore_generator("pool", pool_gen);
    ck.restore_generator("global", default_generator());
    start_epoch = ck.get_int("epoch");
    skip = ck.get_int("batch");
    step = ck.get_int("step");
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld\n", ckpt_path.c_str(),
                static_cast<long long>(start_epoch + 1), static_cast<long long>(skip), static_cast<long long>(step));
  }
  // --distributed: rank 0's weights everywhere; each network's gradients averaged by the
  // backward that computes them (the generators' pass, then each discriminator's)
  for (nn::Module* net : std::initializer_list<nn::Module*>{gan.netG_A.get(), gan.netG_B.get(), gan.netD_A.get(),
                                                            gan.netD_B.get()})
    dist.wrap(*net);
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates, logs and writes
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  double t_steps = 0;
  int64_t steps_here = 0;
  const Tensor show_a = narrow(A.test, 0, 0, std::min<int64_t>(8, A.test.size(0)));
  const Tensor show_b = narrow(B.test, 0, 0, std::min<int64_t>(8, B.test.size(0)));

  auto save = [&](int64_t epoch, int64_t batch_in_epoch, const Generator& data_state) {
    if (!dist.is_main()) return;
    io::Checkpoint ck;
    ck.group("gan") = gan.state_dict();
    ck.group("opt_G") = opt_G.state_dict();
    ck.group("opt_D") = opt_D.state_dict();
    ck.set_generator("data", data_state);
    ck.set_generator("pool", pool_gen);
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = epoch;
    ck.ints["batch"] = batch_in_epoch;
    ck.ints["step"] = step;
    put_config(ck, cfg, a.image_size);
    ck.strings["domain_a"] = A.name;
    ck.strings["domain_b"] = B.name;
    ck.save(ckpt_path);  // atomic
  };

  bool stopped = false;
  for (int64_t epoch = start_epoch; epoch < epochs && !stopped; ++epoch) {
    if (a.steps >= 0 && step >= a.steps) break;
    const double lr = a.lr * models::cyclegan_lr_factor(epoch, a.n_epochs, a.n_epochs_decay);
    for (auto* o : {&opt_G, &opt_D})
      for (auto& g : o->param_groups()) g.set_lr(lr);
    const Generator data_at_start = data_gen;
    // this epoch's order: a permutation of A, random B images (the reference's unaligned dataset)
    Tensor perm = randperm(nA, data_gen);  // (nA) int64
    std::vector<int64_t> b_idx(static_cast<size_t>(per_epoch * global_batch));
    for (auto& v : b_idx) v = static_cast<int64_t>(data_gen.below(static_cast<uint64_t>(nB)));
    int64_t todo = per_epoch - skip;
    if (a.steps >= 0) todo = std::min(todo, a.steps - step);
    train::ProgressBar bar(todo, {.desc = "epoch " + std::to_string(epoch + 1), .stream = dist.progress_stream()});
    const auto t0 = std::chrono::steady_clock::now();
    models::CycleGANStepStats sum_st;
    int64_t n = 0, it = skip;
    for (; it < per_epoch; ++it) {
      if (a.steps >= 0 && step >= a.steps) break;
      const int64_t first = it * global_batch + dist.rank() * a.batch;  // this process's part of the batch
      Tensor ia = narrow(perm, 0, first, a.batch);
      Tensor ib = tensor(std::vector<int64_t>(b_idx.begin() + first, b_idx.begin() + first + a.batch), {a.batch});
      Tensor real_a = index_select(A.train, 0, ia), real_b = index_select(B.train, 0, ib);  // (B, C, S, S)
      if (!a.no_flip) {  // the reference's random horizontal flips (per batch here)
        if (data_gen.uniform() < 0.5) real_a = flip_w(real_a);
        if (data_gen.uniform() < 0.5) real_b = flip_w(real_b);
      }
      const auto ts = std::chrono::steady_clock::now();
      models::CycleGANStepStats st = gan.train_step(opt_G, opt_D, real_a, real_b, pool_gen);
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++steps_here;
      ++step;
      ++n;
      examples::check_finite_loss(st.G, step, "generators' loss");
      examples::check_finite_loss(st.D_A + st.D_B, step, "discriminators' loss");
      sum_st.G += st.G;
      sum_st.cycle_A += st.cycle_A;
      sum_st.cycle_B += st.cycle_B;
      sum_st.G_A += st.G_A;
      sum_st.G_B += st.G_B;
      sum_st.idt_A += st.idt_A;
      sum_st.idt_B += st.idt_B;
      sum_st.D_A += st.D_A;
      sum_st.D_B += st.D_B;
      char post[128];
      std::snprintf(post, sizeof post, "G=%.3f cyc=%.3f/%.3f D=%.3f/%.3f", st.G, st.cycle_A, st.cycle_B, st.D_A,
                    st.D_B);
      bar.set_postfix(post);
      bar.update();
      if (log && a.log_every > 0 && step % a.log_every == 0)
        log->log({{"step", step}, {"loss_G", st.G}, {"loss_G_A", st.G_A}, {"loss_G_B", st.G_B},
                 {"cycle_A", st.cycle_A}, {"cycle_B", st.cycle_B}, {"idt_A", st.idt_A}, {"idt_B", st.idt_B},
                 {"loss_D_A", st.D_A}, {"loss_D_B", st.D_B}, {"lr", lr}});
    }
    bar.close();
    stopped = it < per_epoch;
    skip = 0;
    if (!dist.is_main()) continue;  // rank 0 evaluates and writes
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double dn = n ? static_cast<double>(n) : NAN;
    EvalResult ev = evaluate(gan, A, B, clf.get());
    std::printf("epoch %lld%s: G %.3f (GAN %.3f/%.3f, cycle %.3f/%.3f, idt %.3f/%.3f), D %.3f/%.3f, %.1f s "
                "(%.1f ms/it)\n"
                "  test: cycle L1 A->B->A %.4f, B->A->B %.4f",
                static_cast<long long>(epoch + 1), stopped ? " (stopped by --steps)" : "", sum_st.G / dn,
                sum_st.G_A / dn, sum_st.G_B / dn, sum_st.cycle_A / dn, sum_st.cycle_B / dn, sum_st.idt_A / dn,
                sum_st.idt_B / dn, sum_st.D_A / dn, sum_st.D_B / dn, secs, 1000 * secs / dn, ev.cycle_a, ev.cycle_b);
    if (!std::isnan(ev.rate_a2b))
      std::printf("; classified as target: A->B %.1f%%, B->A %.1f%% (real test images: %.1f%% / %.1f%%)",
                  100 * ev.rate_a2b, 100 * ev.rate_b2a, 100 * ev.real_a, 100 * ev.real_b);
    std::printf("\n");
    log->log({{"epoch", epoch + 1}, {"step", step}, {"loss_G", sum_st.G / dn}, {"loss_D_A", sum_st.D_A / dn},
             {"loss_D_B", sum_st.D_B / dn}, {"cycle_A", sum_st.cycle_A / dn}, {"cycle_B", sum_st.cycle_B / dn},
             {"test_cycle_l1_A", ev.cycle_a}, {"test_cycle_l1_B", ev.cycle_b}, {"rate_a2b", ev.rate_a2b},
             {"rate_b2a", ev.rate_b2a}, {"lr", lr}, {"seconds", secs}});
    io::save_png(a.out + "/a2b2a.png", cycle_grid(gan, show_a, true));
    io::save_png(a.out + "/b2a2b.png", cycle_grid(gan, show_b, false));
    if (stopped)
      save(epoch, it, data_at_start);
    else
      save(epoch + 1, 0, data_gen);
  }
  examples::report_step_time(dist, a.batch, steps_here, t_steps);
  return 0;
}

int run_translate(const std::string& ckpt_path, const std::string& input, const std::string& direction,
                  const std::string& output, int threads) {
  if (threads > 0) set_num_threads(threads);
  io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
  const models::CycleGANConfig cfg = get_config(ck);
  const int64_t size = ck.get_int("cfg.image_size");
  models::CycleGAN gan(cfg);
  gan.load_state_dict(ck.group("gan"));
  const bool a2b = direction == "a2b";
  Tensor img = io::load_image(input, static_cast<int>(a2b ? cfg.input_nc : cfg.output_nc));  // (C, H, W) in [0, 1]
  if (img.size(1) != size || img.size(2) != size) img = io::resize(img, size, size);
  Tensor x = unsqueeze(io::normalize_to_neg_one_to_one(img), 0);  // (1, C, S, S)
  Tensor y = gan.translate(x, a2b);
  io::save_png(output, io::unnormalize_to_zero_to_one(squeeze(y, 0)));
  std::printf("%s (%s) -> %s (%s)\n", input.c_str(), ck.strings.count(a2b ? "domain_a" : "domain_b")
                                                          ? ck.strings.at(a2b ? "domain_a" : "domain_b").c_str()
                                                          : "?",
              output.c_str(),
              ck.strings.count(a2b ? "domain_b" : "domain_a") ? ck.strings.at(a2b ? "domain_b" : "domain_a").c_str()
                                                              : "?");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"CycleGAN (Zhu et al. 2017): unpaired image-to-image translation between two Fashion-MNIST "
               "classes or two folders of images."};
  app.require_subcommand(1);
  CLI::App* tr = app.add_subcommand("train", "train the two generators and discriminators");
  tr->add_option("--domain-a", a.domain_a, "domain A: a directory of images, or a Fashion-MNIST class (name or 0-9)")
      ->capture_default_str();
  tr->add_option("--domain-b", a.domain_b, "domain B: as --domain-a")->capture_default_str();
  tr->add_option("--data", a.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  tr->add_option("--image-size", a.image_size, "image side (0: 28 for Fashion-MNIST, 128 for directories)")
      ->capture_default_str();
  tr->add_option("--channels", a.channels, "image channels (0: 1 for Fashion-MNIST, 3 for directories)")
      ->capture_default_str();
  tr->add_option("--limit", a.limit, "use at most N training images per domain; -1: all")->capture_default_str();
  tr->add_option("--test-n", a.test_n, "held-out Fashion-MNIST test images per domain for evaluation")
      ->capture_default_str();
  tr->add_option("--batch", a.batch, "images per domain per iteration (paper: 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tr->add_option("--n-epochs", a.n_epochs, "epochs at the initial learning rate")->capture_default_str();
  tr->add_option("--n-epochs-decay", a.n_epochs_decay, "epochs of linear decay of the learning rate to 0")
      ->capture_default_str();
  tr->add_option("--steps", a.steps, "stop after this many iterations in total; -1: no limit")->capture_default_str();
  tr->add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  tr->add_option("--beta1", a.beta1, "Adam beta1 (beta2 = 0.999)")->capture_default_str();
  tr->add_option("--lambda-a", a.lambda_a, "weight of the cycle loss A -> B -> A")->capture_default_str();
  tr->add_option("--lambda-b", a.lambda_b, "weight of the cycle loss B -> A -> B")->capture_default_str();
  tr->add_option("--lambda-identity", a.lambda_identity, "identity loss weight relative to lambda (0: off)")
      ->capture_default_str();
  tr->add_option("--pool-size", a.pool_size, "image history buffer size (0: no buffer)")->capture_default_str();
  tr->add_option("--ngf", a.ngf, "generator width")->check(CLI::PositiveNumber)->capture_default_str();
  tr->add_option("--ndf", a.ndf, "discriminator width")->check(CLI::PositiveNumber)->capture_default_str();
  tr->add_option("--n-blocks", a.n_blocks, "generator residual blocks")->capture_default_str();
  tr->add_option("--n-layers-d", a.n_layers_d, "PatchGAN stride-2 layers (3: the 70 x 70 PatchGAN)")
      ->capture_default_str();
  tr->add_option("--n-downsampling", a.n_downsampling, "generator down-samplings (image side divisible by 2^n)")
      ->capture_default_str();
  tr->add_flag("--paper", a.paper, "the paper's networks: ngf = ndf = 64, 9 residual blocks, 70 x 70 PatchGAN");
  tr->add_flag("--no-flip", a.no_flip, "no random horizontal flips");
  tr->add_option("--classifier", a.classifier,
                 "Fashion-MNIST classifier weights (fmnist_classifier example) to score translations")
      ->capture_default_str();
  tr->add_option("--seed", a.seed, "seeds initialization, data order and the pools")->capture_default_str();
  tr->add_option("--out", a.out, "output directory (metrics.jsonl, PNG grids, checkpoint)")->capture_default_str();
  tr->add_flag("--resume", a.resume, "continue from <out>/checkpoint.safetensors if it exists");
  tr->add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch per process: each takes its "
               "part of every global batch; rank 0 evaluates and writes)");
  tr->add_option("--threads", a.threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  tr->add_option("--log-every", a.log_every, "log the losses every N iterations (0: per epoch only)")
      ->capture_default_str();

  std::string ckpt, input, direction = "a2b", output = "translated.png";
  int tthreads = 0;
  CLI::App* tl = app.add_subcommand("translate", "translate one image with a trained checkpoint");
  tl->add_option("--checkpoint", ckpt, "checkpoint.safetensors written by train")->required();
  tl->add_option("--input", input, "input image (PNG/JPEG), resized to the trained size")->required();
  tl->add_option("--direction", direction, "a2b (G_A) or b2a (G_B)")
      ->check(CLI::IsMember({"a2b", "b2a"}))
      ->capture_default_str();
  tl->add_option("--output", output, "output PNG")->capture_default_str();
  tl->add_option("--threads", tthreads, "worker threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (tr->parsed()) return run_train(a);
    return run_translate(ckpt, input, direction, output, tthreads);
  } catch (const genai::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
