// train_classifier: a complete small training program with genai's modules,
// optimizer, learning-rate schedule, data loader, checkpoints and metrics log.
//
// It trains an MLP (784 -> 256 -> 10) on Fashion-MNIST (Debian package
// dataset-fashion-mnist), evaluates test accuracy after every epoch, writes
// metrics.jsonl and a checkpoint to --out, and resumes from that checkpoint
// with --resume. Without the package it trains on a synthetic stand-in
// (random prototypes plus noise) so the program still runs.
//
//   train_classifier [--epochs 2] [--batch 128] [--lr 1e-3] [--limit N] [--out DIR] [--resume] [--seed 0]
#include <cstdio>
#include <filesystem>
#include <string>

#include <genai/genai.hpp>

using namespace genai;

struct MLP : nn::Module {
  std::shared_ptr<nn::Sequential> net;
  MLP() {
    net = register_module("net", std::make_shared<nn::Sequential>());
    net->push_back(std::make_shared<nn::Flatten>());
    net->push_back(std::make_shared<nn::Linear>(784, 256));
    net->push_back(std::make_shared<nn::ReLU>());
    net->push_back(std::make_shared<nn::Dropout>(0.1));
    net->push_back(std::make_shared<nn::Linear>(256, 10));
  }
  std::string type_name() const override { return "MLP"; }
  Tensor forward(const Tensor& x) { return net->forward(x); }  // (B, 1, 28, 28) -> (B, 10)
};

/// Ten noisy prototypes standing in for Fashion-MNIST when it is not installed.
static std::shared_ptr<data::TensorDataset> synthetic(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor protos = rand({10, 1, 28, 28}, kFloat32, g);
  Tensor labels = randint(0, 10, {n}, kInt64, g);
  Tensor images = clamp(index_select(protos, 0, labels) + randn({n, 1, 28, 28}, kFloat32, g) * 0.3, 0.0, 1.0);
  return std::make_shared<data::TensorDataset>(images, labels);
}

int main(int argc, char** argv) {
  int epochs = 2;
  int64_t batch = 128, limit = -1;
  double lr = 1e-3;
  std::string out = "train_classifier_out";
  bool resume = false;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--batch") batch = std::stoll(next());
    else if (a == "--lr") lr = std::stod(next());
    else if (a == "--limit") limit = std::stoll(next());
    else if (a == "--out") out = next();
    else if (a == "--resume") resume = true;
    else if (a == "--seed") seed = std::stoull(next());
    else {
      std::printf("usage: train_classifier [--epochs N] [--batch B] [--lr LR] [--limit N] [--out DIR] [--resume] [--seed S]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  std::filesystem::create_directories(out);
  manual_seed(seed);

  // data
  std::shared_ptr<data::Dataset> train_set, test_set;
  if (data::FashionMNIST::available()) {
    train_set = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, true, limit);
    test_set = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, false, limit < 0 ? -1 : limit / 6);
  } else {
    std::fprintf(stderr, "Fashion-MNIST not found (apt-get install dataset-fashion-mnist); using synthetic data\n");
    train_set = synthetic(limit < 0 ? 6000 : limit, 1);
    test_set = synthetic(1000, 2);
  }
  data::DataLoader train_loader(*train_set, {.batch_size = batch, .shuffle = true, .seed = seed});
  data::DataLoader test_loader(*test_set, {.batch_size = 512});

  // model, optimizer, schedule
  MLP model;
  optim::AdamW opt(model.parameters(), {.lr = lr, .weight_decay = 1e-4});
  const int64_t steps_per_epoch = (train_set->size() + batch - 1) / batch;
  optim::CosineAnnealingLR sched(opt, epochs * steps_per_epoch);
  int start_epoch = 0;
  const std::string ckpt_path = out + "/checkpoint.safetensors";
  if (resume && std::filesystem::exists(ckpt_path)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt_path);
    model.load_state_dict(ck.model());
    opt.load_state_dict(ck.optim());
    sched.load_state_dict(ck.sched());
    ck.restore_generator("loader", train_loader.generator());
    ck.restore_generator("global", default_generator());
    start_epoch = static_cast<int>(ck.get_int("epoch"));
    std::printf("resumed from %s at epoch %d\n", ckpt_path.c_str(), start_epoch);
  }
  train::MetricsLogger log(out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/resume);

  for (int epoch = start_epoch; epoch < epochs; ++epoch) {
    model.train();
    train::ProgressBar bar(steps_per_epoch, {.desc = "epoch " + std::to_string(epoch + 1)});
    double loss_sum = 0;
    int64_t n = 0;
    for (const data::Example& b : train_loader) {
      opt.zero_grad();
      Tensor loss = cross_entropy(model.forward(b.input), b.target);
      loss.backward();
      opt.step();
      sched.step();
      loss_sum += loss.item<double>();
      ++n;
      bar.set_postfix("loss=" + std::to_string(loss.item()));
      bar.update();
    }
    bar.close();

    model.eval();
    NoGradGuard no_grad;
    int64_t correct = 0;
    for (const data::Example& b : test_loader)
      correct += eq(argmax(model.forward(b.input), 1), b.target).sum().item<int64_t>();
    double acc = static_cast<double>(correct) / static_cast<double>(test_set->size());
    std::printf("epoch %d: train loss %.4f, test accuracy %.2f%%\n", epoch + 1, loss_sum / n, 100 * acc);
    log.log({{"epoch", epoch + 1}, {"train_loss", loss_sum / n}, {"test_accuracy", acc}, {"lr", sched.get_last_lr()[0]}});

    io::Checkpoint ck;
    ck.model() = model.state_dict();
    ck.optim() = opt.state_dict();
    ck.sched() = sched.state_dict();
    ck.set_generator("loader", train_loader.generator());
    ck.set_generator("global", default_generator());
    ck.ints["epoch"] = epoch + 1;
    ck.save(ckpt_path);  // atomic: a crash never leaves a half-written file
  }
  return 0;
}
