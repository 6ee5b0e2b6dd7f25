// char_rnn: a character-level LSTM language model (models/rnn/char_lstm.hpp),
// trained with truncated backpropagation through time on any UTF-8 text, and
// sampled with temperature, top-k and top-p, streaming characters as they come.
//
// Walkthrough:
//  1. The text is read as Unicode characters; its sorted set of characters is the
//     vocabulary. The first 90% is the training split, the last 10% validation.
//  2. The training split is cut into --batch contiguous streams; every step takes
//     the next --seq-len characters of each stream, starts from the LSTM state the
//     previous step ended with (detached), computes the cross-entropy of the next
//     character, clips the gradient norm and takes an Adam step.
//  3. Every --eval-every steps the validation loss (nats per character, the same
//     streaming scheme without gradients) is logged to metrics.jsonl with the
//     wall-clock time since the start, and a checkpoint is written (atomically);
//     --resume continues from it. --minutes stops after a time budget.
//  4. --sample loads a checkpoint, primes the LSTM with --prompt and prints
//     --length generated characters as they are drawn.
//
//   char_rnn --text FILE [--out DIR] [--steps N] [--minutes M] [--resume]
//   char_rnn --sample --checkpoint DIR/checkpoint.safetensors --prompt "ROMEO:" --temperature 0.8
//
// The char_lstm reference configuration is the default (Embedding(65 -> 64),
// 2-layer LSTM hidden 256, 32 x 64, clip 1.0, Adam 2e-3). Tiny Shakespeare is the
// classic text for it (docs/rnn.md says where to get it).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/genai.hpp>
#include <genai/models/rnn/char_lstm.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using namespace genai::models::rnn;

namespace {

struct Args {
  std::string text, out = "char_rnn_out", checkpoint, prompt = "\n";
  int64_t steps = 0, batch = 32, seq_len = 64, hidden = 256, layers = 2, embd = 64, eval_every = 200, length = 500;
  int64_t top_k = 0, eval_limit = 0;
  double minutes = 0, lr = 2e-3, clip = 1.0, dropout = 0.0, val_fraction = 0.1, temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  bool resume = false, sample = false, distributed = false;
  int threads = 0;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// CPU seconds of the whole process (all threads): on a shared machine, the work actually done.
double cpu_s() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

/// Saves model, optimizer, data position, generators and the vocabulary.
void save_checkpoint(const std::string& path, CharLSTM& model, optim::Optimizer& opt, StreamBatcher& batcher,
                     const data::CharTokenizer& tok, int64_t step, double elapsed, double cpu, double best_val) {
  io::Checkpoint ck;
  ck.model() = model.state_dict();
  ck.optim() = opt.state_dict();
  ck.set_generator("batcher", batcher.generator());
  ck.set_generator("global", default_generator());
  std::vector<int64_t> pos = batcher.position();
  ck.ints["step"] = step;
  ck.ints["epoch"] = pos[0];
  ck.ints["offset"] = pos[1];
  ck.ints["pos"] = pos[2];
  const CharLSTMConfig& c = model.config();
  ck.ints["vocab_size"] = c.vocab_size;
  ck.ints["n_embd"] = c.n_embd;
  ck.ints["hidden_size"] = c.hidden_size;
  ck.ints["num_layers"] = c.num_layers;
  ck.floats["dropout"] = c.dropout;
  ck.floats["elapsed_s"] = elapsed;
  ck.floats["cpu_s"] = cpu;
  ck.floats["best_val_loss"] = best_val;
  std::string vocab;
  for (char32_t ch : tok.chars()) data::utf8_append(vocab, ch);
  ck.strings["vocab"] = vocab;
  ck.save(path);
}

CharLSTMConfig config_of(const io::Checkpoint& ck) {
  return {ck.get_int("vocab_size"), ck.get_int("n_embd"), ck.get_int("hidden_size"), ck.get_int("num_layers"),
          ck.get_float("dropout", 0.0)};
}

int run_sample(const Args& a) {
  if (a.checkpoint.empty()) {
    std::fprintf(stderr, "char_rnn --sample needs --checkpoint FILE (written by a training run in --out)\n");
    return 2;
  }
  io::Checkpoint ck = io::Checkpoint::load(a.checkpoint);
  data::CharTokenizer tok = data::CharTokenizer::from_utf8(ck.get_string("vocab"));
  CharLSTM model(config_of(ck));
  model.load_state_dict(ck.model());
  std::vector<int64_t> prompt;
  try {
    prompt = tok.encode(a.prompt.empty() ? std::string("\n") : a.prompt);
  } catch (const Error& e) {
    std::fprintf(stderr, "char_rnn: the prompt has a character the model has never seen: %s\n", e.what());
    return 2;
  }
  Generator gen(a.seed);
  SampleOptions so{a.temperature, a.top_k, a.top_p};
  std::fputs(a.prompt.c_str(), stdout);
  sample(model, prompt, a.length, so, gen, [&](int64_t id) {
    std::fputs(tok.decode(std::vector<int64_t>{id}).c_str(), stdout);
    std::fflush(stdout);  // streaming: each character as soon as it is drawn
  });
  std::fputs("\n", stdout);
  return 0;
}

int run_train(const Args& a) {
  if (a.text.empty()) {
    std::fprintf(stderr,
                 "char_rnn: pass --text FILE (any UTF-8 text; e.g. tiny Shakespeare, see docs/rnn.md), or --sample "
                 "--checkpoint FILE\n");
    return 2;
  }
  if (!std::filesystem::exists(a.text)) {
    std::fprintf(stderr, "char_rnn: text file '%s' not found\n", a.text.c_str());
    return 2;
  }
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);
  data::CharDataset train_set(a.text, a.seq_len, data::Split::Train, a.val_fraction);
  data::CharDataset val_set(a.text, a.seq_len, data::Split::Val, a.val_fraction);
  const data::CharTokenizer& tok = train_set.tokenizer();
  if (dist.is_main())
    std::printf("text: %s, %lld characters in the vocabulary, %lld train / %lld validation characters\n", a.text.c_str(),
              static_cast<long long>(tok.vocab_size()), static_cast<long long>(train_set.ids().size(0)),
              static_cast<long long>(val_set.ids().size(0)));

  CharLSTMConfig cfg{tok.vocab_size(), a.embd, a.hidden, a.layers, a.dropout};
  CharLSTM model(cfg);
  optim::Adam opt(model.parameters(), {.lr = a.lr});
  // --distributed: each process reads its own contiguous part of the training text
  Tensor train_ids = train_set.ids();
  if (dist.world() > 1) {
    const int64_t part = train_ids.size(0) / dist.world();
    train_ids = train_ids.narrow(0, dist.rank() * part, part);
  }
  StreamBatcher batcher(train_ids, a.batch, a.seq_len, a.seed + 1);
  if (dist.is_main())
    std::printf("model: %lld parameters; %lld steps per pass over the training text\n",
              static_cast<long long>(model.num_parameters()), static_cast<long long>(batcher.steps_per_epoch()));

  const std::string ckpt = a.out + "/checkpoint.safetensors";
  int64_t step = 0;
  double elapsed0 = 0, cpu0 = 0, best_val = INFINITY;
  if (a.resume && std::filesystem::exists(ckpt)) {
    io::Checkpoint ck = io::Checkpoint::load(ckpt);
    GENAI_CHECK(ck.get_int("vocab_size") == cfg.vocab_size && ck.get_int("hidden_size") == cfg.hidden_size,
                "char_rnn --resume: the checkpoint was trained on another text or configuration");
    model.load_state_dict(ck.model());
    opt.load_state_dict(ck.optim());
    ck.restore_generator("batcher", batcher.generator());
    ck.restore_generator("global", default_generator());
    batcher.set_position({ck.get_int("epoch"), ck.get_int("offset"), ck.get_int("pos")});
    step = ck.get_int("step");
    elapsed0 = ck.get_float("elapsed_s", 0.0);
    cpu0 = ck.get_float("cpu_s", 0.0);
    best_val = ck.get_float("best_val_loss", INFINITY);
    std::printf("resumed from %s at step %lld (%.0f s of training)\n", ckpt.c_str(), static_cast<long long>(step),
                elapsed0);
  }
  dist.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged by backward
  // dropout's noise (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates, logs and writes
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/a.resume);
  Tensor val_ids = val_set.ids();
  if (a.eval_limit > 0 && val_ids.size(0) > a.eval_limit) val_ids = val_ids.narrow(0, 0, a.eval_limit);

  const double t0 = now_s() - elapsed0;
  const int64_t total = a.steps > 0 ? a.steps : -1;
  train::ProgressBar bar(total > 0 ? total - step : 0, {.desc = "train", .stream = dist.progress_stream()});
  LSTMState state;
  double loss_sum = 0;
  int64_t loss_n = 0, tokens = 0;
  double t_last = now_s(), t_steps = 0;
  int64_t steps_here = 0;
  auto evaluate_and_save = [&](bool final_eval) {
    // the training loss over all processes' batches (every process calls this at the same step)
    const double train_loss = dist.mean(loss_n ? loss_sum / static_cast<double>(loss_n) : NAN);
    loss_sum = 0;
    loss_n = 0;
    if (!dist.is_main()) return;
    const double val = evaluate(model, val_ids, a.batch, a.seq_len);
    const double elapsed = now_s() - t0, dt = now_s() - t_last;
    const bool improved = val < best_val;  // the long run overfits: keep the best weights apart
    best_val = std::min(best_val, val);
    log->log({{"step", step}, {"elapsed_s", elapsed}, {"cpu_s", cpu0 + cpu_s()}, {"train_loss", train_loss}, {"val_loss", val},
             {"tokens_per_s", dt > 0 ? static_cast<double>(tokens) / dt : 0.0}, {"epoch", batcher.epoch()}});
    std::fprintf(stderr, "\nstep %lld, %.0f s: train loss %.4f, validation loss %.4f nats/char%s\n",
                 static_cast<long long>(step), elapsed, train_loss, val, final_eval ? " (final)" : "");
    save_checkpoint(ckpt, model, opt, batcher, tok, step, elapsed, cpu0 + cpu_s(), best_val);
    if (improved) save_checkpoint(a.out + "/best.safetensors", model, opt, batcher, tok, step, elapsed, cpu0 + cpu_s(), best_val);
    tokens = 0;
    t_last = now_s();
  };
  while (true) {
    if (total > 0 && step >= total) break;
    if (a.minutes > 0 && dist.from_main(now_s() - t0 >= a.minutes * 60)) break;  // every process stops together
    StreamBatcher::Batch b = batcher.next();
    if (b.reset) state = LSTMState();
    const double ts = now_s();
    const double loss = train_step(model, opt, b.x, b.y, state, a.clip);
    t_steps += now_s() - ts;
    ++steps_here;
    ++step;
    examples::check_finite_loss(loss, step);
    loss_sum += loss;
    ++loss_n;
    tokens += a.batch * a.seq_len;
    char post[64];
    std::snprintf(post, sizeof post, "loss=%.4f", loss);
    bar.set_postfix(post);
    bar.update();
    if (a.eval_every > 0 && step % a.eval_every == 0) evaluate_and_save(false);
  }
  bar.close();
  if (loss_n > 0 || step == 0) evaluate_and_save(true);
  examples::report_step_time(dist, a.batch, steps_here, t_steps);
  if (!dist.is_main()) return 0;
  std::printf("best validation loss %.4f nats/char (%s/best.safetensors); last checkpoint %s\n", best_val,
              a.out.c_str(), ckpt.c_str());
  // a short sample, streamed
  Generator gen(a.seed);
  std::printf("--- sample (temperature 0.8) ---\n");
  sample(model, tok.encode(std::string("\n")), 200, {0.8, 0, 1.0}, gen,
         [&](int64_t id) { std::fputs(tok.decode(std::vector<int64_t>{id}).c_str(), stdout); });
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"char_rnn: train a character-level LSTM on a UTF-8 text, or sample from a checkpoint"};
  app.add_option("--text", a.text, "UTF-8 text file to train on (first 90% train, last 10% validation)");
  app.add_option("--out", a.out, "output directory: metrics.jsonl, checkpoint.safetensors (last), best.safetensors (lowest validation loss)")->capture_default_str();
  app.add_option("--steps", a.steps, "training steps (0: until --minutes runs out)")->capture_default_str();
  app.add_option("--minutes", a.minutes, "wall-clock training budget in minutes (0: none)")->capture_default_str();
  app.add_option("--batch", a.batch, "parallel streams per step")->capture_default_str();
  app.add_option("--seq-len", a.seq_len, "characters per stream per step (TBPTT window)")->capture_default_str();
  app.add_option("--embd", a.embd, "embedding size")->capture_default_str();
  app.add_option("--hidden", a.hidden, "LSTM hidden size")->capture_default_str();
  app.add_option("--layers", a.layers, "LSTM layers")->capture_default_str();
  app.add_option("--dropout", a.dropout, "dropout between LSTM layers")->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--clip", a.clip, "gradient norm clipping (0: off)")->capture_default_str();
  app.add_option("--eval-every", a.eval_every, "steps between validation + checkpoint")->capture_default_str();
  app.add_option("--eval-limit", a.eval_limit, "validate on the first N characters only (0: all)");
  app.add_option("--val-fraction", a.val_fraction, "fraction of the text held out")->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from OUT/checkpoint.safetensors");
  app.add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N`: each reads its own part of the text "
               "with --batch streams; rank 0 evaluates and writes");
  app.add_flag("--sample", a.sample, "generate text from --checkpoint instead of training");
  app.add_option("--checkpoint", a.checkpoint, "checkpoint to sample from");
  app.add_option("--prompt", a.prompt, "text to prime the LSTM with before sampling");
  app.add_option("--length", a.length, "characters to generate")->capture_default_str();
  app.add_option("--temperature", a.temperature, "sampling temperature (0: greedy)")->capture_default_str();
  app.add_option("--top-k", a.top_k, "sample among the k most likely characters (0: all)")->capture_default_str();
  app.add_option("--top-p", a.top_p, "nucleus sampling threshold (1: off)")->capture_default_str();
  app.add_option("--seed", a.seed, "random seed")->capture_default_str();
  app.add_option("--threads", a.threads, "threads (0: GENAI_NUM_THREADS or all cores)");
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  try {
    return a.sample ? run_sample(a) : run_train(a);
  } catch (const Error& e) {
    std::fprintf(stderr, "char_rnn: %s\n", e.what());
    return 1;
  }
}
