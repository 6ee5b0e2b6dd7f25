// t5: train a T5 (models/transformer/t5.hpp) on a toy text-to-text task it generates
// itself, and generate from it or from a Hugging Face T5 folder (token ids in and out).
//
// Walkthrough:
//  1. `t5 train --task reverse|sort|add`: examples are drawn on the fly, as text-to-text
//     pairs with a task prefix, as T5 frames every task:
//        "reverse: hello"   -> "olleh"        (--min-len .. --max-len letters)
//        "sort: dbca"       -> "abcd"
//        "add: 123+45"      -> "168"          (numbers of up to --max-len / 2 digits)
//     The vocabulary is character-level: <pad> = 0, </s> = 1 (eos), <unk> = 2, then
//     a-z, 0-9, ' ', ':', '+'. Inputs end with eos, targets too; the decoder inputs are
//     the targets shifted right (T5's shift_right, the decoder start token is pad).
//  2. Each step draws --batch-size examples, computes the cross-entropy (pad labels are
//     -100), and takes an AdamW step (linear warmup, then constant --lr).
//  3. Every --eval-interval steps: greedy decoding (encoder once, KV cache) of --eval-size
//     held-out examples (drawn from their own seed, so fresh and the same each eval),
//     exact-match accuracy and loss logged to OUT/metrics.jsonl; a checkpoint (model,
//     optimizer, random state) is written atomically to OUT/checkpoint.safetensors
//     (--resume continues from it) and the model exported in the Hugging Face layout
//     (config.json + model.safetensors) with vocab.json.
//  4. `t5 generate --model DIR --input "reverse: abc"` (a folder written by train) or
//     `--input-ids 1,2,3` (any Hugging Face T5 folder: config.json + model.safetensors;
//     SentencePiece's spiece.model is not read) decodes greedily, with --num-beams N
//     beam search, or samples with --temperature / --top-k / --top-p (seeded).
//     --print-ids prints the generated ids comma-separated.
//
//   t5 train --task reverse [--num-layers 2 --d-model 64 --num-heads 4 --d-ff 256 --steps 2000 --batch-size 32]
//            [--lr 1e-3 --out t5_out --resume --threads 1 --seed 1]
//   t5 generate --model t5_out --input "reverse: genai" [--num-beams 4]
//   t5 generate --model t5-small/ --input-ids 13959,1566,12,2968,10,37,629,19,1627,5,1 --print-ids
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <genai/genai.hpp>
#include <genai/models/transformer/t5.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using models::T5Config;
using models::T5ForConditionalGeneration;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_s() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// ---- the character vocabulary ---------------------------------------------------------------

struct Vocab {
  std::vector<std::string> tokens;  // id -> token
  static Vocab chars() {
    Vocab v;
    v.tokens = {"<pad>", "</s>", "<unk>"};
    for (char c = 'a'; c <= 'z'; ++c) v.tokens.push_back(std::string(1, c));
    for (char c = '0'; c <= '9'; ++c) v.tokens.push_back(std::string(1, c));
    for (char c : std::string(" :+")) v.tokens.push_back(std::string(1, c));
    return v;
  }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  /// Characters -> ids (unknown -> 2), + eos.
  std::vector<int64_t> encode(const std::string& s) const {
    std::vector<int64_t> ids;
    for (char c : s) {
      int64_t id = 2;
      for (size_t i = 3; i < tokens.size(); ++i)
        if (tokens[i].size() == 1 && tokens[i][0] == c) id = static_cast<int64_t>(i);
      ids.push_back(id);
    }
    ids.push_back(1);
    return ids;
  }
  /// Ids -> text, stopping at eos, skipping pad.
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string s;
    for (int64_t t : ids) {
      if (t == 1) break;
      if (t == 0) continue;
      s += t >= 0 && t < size() ? (t == 2 ? std::string("?") : tokens[static_cast<size_t>(t)]) : std::string("?");
    }
    return s;
  }
  void save(const std::string& dir) const {
    const std::string js = nlohmann::json{{"tokens", tokens}}.dump() + "\n";
    io::write_file_atomic((std::filesystem::path(dir) / "vocab.json").string(), js.data(), js.size());
  }
  static std::optional<Vocab> load(const std::string& dir) {
    const std::string p = (std::filesystem::path(dir) / "vocab.json").string();
    if (!std::filesystem::exists(p)) return std::nullopt;
    std::vector<unsigned char> b = io::read_file(p, "t5");
    nlohmann::json j = nlohmann::json::parse(b.begin(), b.end(), nullptr, false);
    if (j.is_discarded() || !j.contains("tokens")) return std::nullopt;
    Vocab v;
    v.tokens = j["tokens"].get<std::vector<std::string>>();
    return v;
  }
};

// ---- the toy tasks ----------------------------------------------------------------------------

struct Example {
  std::string input, target;
};

Example make_example(const std::string& task, int64_t min_len, int64_t max_len, Generator& g) {
  const int64_t L = min_len + static_cast<int64_t>(g.below(static_cast<uint64_t>(max_len - min_len + 1)));
  if (task == "add") {
    auto number = [&](int64_t digits) {
      std::string s(1, static_cast<char>('1' + g.below(9)));
      for (int64_t i = 1; i < digits; ++i) s += static_cast<char>('0' + g.below(10));
      return s;
    };
    const int64_t half = std::max<int64_t>(1, L / 2);
    const std::string a = number(1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(half)))),
                      b = number(1 + static_cast<int64_t>(g.below(static_cast<uint64_t>(half))));
    return {"add: " + a + "+" + b, std::to_string(std::stoll(a) + std::stoll(b))};
  }
  std::string s;
  for (int64_t i = 0; i < L; ++i) s += static_cast<char>('a' + g.below(26));
  std::string t = s;
  if (task == "reverse") std::reverse(t.begin(), t.end());
  else std::sort(t.begin(), t.end());
  return {task + ": " + s, t};
}

/// A batch: input ids + mask (B, S), labels (B, T) with -100 for padding.
struct Batch {
  Tensor ids, mask, labels;
};
Batch make_batch(const std::vector<Example>& ex, const Vocab& v) {
  std::vector<std::vector<int64_t>> in, out;
  for (const auto& e : ex) in.push_back(v.encode(e.input)), out.push_back(v.encode(e.target));
  auto [ids, mask] = models::detail::t5_pad_batch(in, 0);
  auto [lab, lmask] = models::detail::t5_pad_batch(out, -100);
  return {ids, mask, lab};
}

// ---- train ----------------------------------------------------------------------------------

struct TrainArgs {
  std::string task = "reverse", out = "t5_out";
  int64_t num_layers = 2, d_model = 64, num_heads = 4, d_ff = 256, d_kv = 0;
  std::string ff = "relu";
  int64_t steps = 2000, batch_size = 32, eval_interval = 200, eval_size = 200, warmup = 100;
  int64_t min_len = 5, max_len = 10;
  double lr = 1e-3, weight_decay = 0.01, dropout = 0.0;
  uint64_t seed = 1;
  bool resume = false;
  bool distributed = false;
};

int run_train(const TrainArgs& a) {
  if (a.task != "reverse" && a.task != "sort" && a.task != "add") {
    std::fprintf(stderr, "t5 train: --task must be reverse, sort or add, got '%s'\n", a.task.c_str());
    return 2;
  }
  if (a.min_len < 1 || a.max_len < a.min_len) {
    std::fprintf(stderr, "t5 train: need 1 <= --min-len <= --max-len\n");
    return 2;
  }
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);
  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  const bool resuming = a.resume && std::filesystem::exists(ckpt_path);
  std::optional<io::Checkpoint> ck;
  if (resuming) ck = io::Checkpoint::load(ckpt_path);
  const Vocab vocab = Vocab::chars();
  T5Config cfg{.vocab_size = vocab.size(), .d_model = a.d_model, .d_kv = a.d_kv > 0 ? a.d_kv : a.d_model / a.num_heads,
               .d_ff = a.d_ff, .num_layers = a.num_layers, .num_heads = a.num_heads, .dropout_rate = a.dropout,
               .feed_forward_proj = a.ff, .tie_word_embeddings = a.ff == "relu"};
  std::string task = a.task;
  if (ck) {
    cfg = T5Config::from_hf_json(nlohmann::json::parse(ck->get_string("config")));
    task = ck->get_string("task");
  }
  Generator init_gen(a.seed);
  T5ForConditionalGeneration model(cfg, init_gen);
  optim::AdamW opt(model.parameters(), optim::AdamWOptions{.lr = a.lr, .weight_decay = a.weight_decay});
  if (dist.is_main())
    std::printf("task %s; T5 of %lld parameters: %lld + %lld layers, d_model %lld, %lld heads of %lld, d_ff %lld, %s\n",
              task.c_str(), static_cast<long long>(model.num_parameters()), static_cast<long long>(cfg.num_layers),
              static_cast<long long>(cfg.decoder_layers()), static_cast<long long>(cfg.d_model),
              static_cast<long long>(cfg.num_heads), static_cast<long long>(cfg.d_kv), static_cast<long long>(cfg.d_ff),
              cfg.feed_forward_proj.c_str());
  // each process draws its own examples (another seed per rank; rank 0's is the single-process one), so a
  // step trains on world x --batch-size distinct examples
  Generator data_gen(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()));
  int64_t step = 0;
  double elapsed0 = 0, cpu0 = 0;
  if (ck) {
    model.load_state_dict(ck->model());
    opt.load_state_dict(ck->optim());
    ck->restore_generator("data", data_gen);
    ck->restore_generator("global", default_generator());
    step = ck->get_int("step");
    elapsed0 = ck->get_float("elapsed_s", 0.0);
    cpu0 = ck->get_float("cpu_s", 0.0);
    std::printf("resumed from %s at step %lld\n", ckpt_path.c_str(), static_cast<long long>(step));
    // the checkpoint holds rank 0's example generator: the others draw a new stream
    if (dist.rank() > 0)
      data_gen.manual_seed(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  }
  dist.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged
  // the dropout masks (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
  cpu0 -= cpu_s();
  // the held-out set: its own seed, the same at every evaluation
  std::vector<Example> held;
  {
    Generator g(a.seed + 1000003);
    for (int64_t i = 0; i < a.eval_size; ++i) held.push_back(make_example(task, a.min_len, a.max_len, g));
  }
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates and writes the metrics, checkpoints and model
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/resuming);

  auto evaluate = [&]() {
    NoGradGuard ng;
    model.eval();
    int64_t correct = 0;
    double loss = 0;
    int64_t nb = 0;
    for (size_t b0 = 0; b0 < held.size(); b0 += 64) {
      std::vector<Example> chunk(held.begin() + static_cast<std::ptrdiff_t>(b0),
                                 held.begin() + static_cast<std::ptrdiff_t>(std::min(held.size(), b0 + 64)));
      Batch bt = make_batch(chunk, vocab);
      loss += T5ForConditionalGeneration::loss(model.forward(bt.ids, bt.mask, model.shift_right(bt.labels)), bt.labels)
                  .item<double>();
      ++nb;
      std::vector<std::vector<int64_t>> in;
      int64_t max_t = 0;
      for (const auto& e : chunk) {
        in.push_back(vocab.encode(e.input));
        max_t = std::max<int64_t>(max_t, static_cast<int64_t>(e.target.size()) + 1);
      }
      auto out = models::t5_generate(model, in, {.max_new_tokens = max_t + 2});
      for (size_t i = 0; i < chunk.size(); ++i) correct += vocab.decode(out[i]) == chunk[i].target;
    }
    model.train();
    return std::pair<double, double>{static_cast<double>(correct) / static_cast<double>(std::max<size_t>(held.size(), 1)),
                                     loss / static_cast<double>(std::max<int64_t>(nb, 1))};
  };
  auto save_all = [&](double elapsed) {
    if (!dist.is_main()) return;
    io::Checkpoint c;
    c.model() = model.state_dict();
    c.optim() = opt.state_dict();
    c.set_generator("data", data_gen);
    c.set_generator("global", default_generator());
    c.ints["step"] = step;
    c.floats["elapsed_s"] = elapsed;
    c.floats["cpu_s"] = cpu0 + cpu_s();
    c.strings["config"] = cfg.to_hf_json().dump();
    c.strings["task"] = task;
    c.save(ckpt_path);  // atomic
    models::save_t5_pretrained(model, a.out, {{"genai_task", task}});
    vocab.save(a.out);
  };

  const double t0 = now_s() - elapsed0;
  double t_train = 0;
  int64_t n_timed = 0;
  train::ProgressBar bar(std::max<int64_t>(a.steps - step, 0), {.desc = "train", .stream = dist.progress_stream()});
  model.train();
  while (true) {
    const bool last = step >= a.steps;
    if (dist.is_main() && a.eval_interval > 0 && (step % a.eval_interval == 0 || last)) {  // rank 0 evaluates
      auto [acc, vloss] = evaluate();
      const double elapsed = now_s() - t0, cpu = cpu0 + cpu_s();
      std::fprintf(stderr, "\nstep %lld: held-out loss %.4f, exact-match accuracy %.1f%% (%zu examples; %.1f s, %.1f s CPU, %.2f ms/step)\n",
                   static_cast<long long>(step), vloss, 100.0 * acc, held.size(), elapsed, cpu,
                   n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0);
      log->log({{"step", step}, {"val_loss", vloss}, {"exact_match", acc}, {"elapsed_s", elapsed}, {"cpu_s", cpu}});
      save_all(elapsed);
    }
    if (last) break;
    const double ts = now_s();
    std::vector<Example> ex;
    for (int64_t i = 0; i < a.batch_size; ++i) ex.push_back(make_example(task, a.min_len, a.max_len, data_gen));
    Batch bt = make_batch(ex, vocab);
    const double lr = a.warmup > 0 && step < a.warmup ? a.lr * static_cast<double>(step + 1) / static_cast<double>(a.warmup) : a.lr;
    for (auto& g : opt.param_groups()) g.set_lr(lr);
    Tensor loss = T5ForConditionalGeneration::loss(model.forward(bt.ids, bt.mask, model.shift_right(bt.labels)), bt.labels);
    opt.zero_grad();
    loss.backward();  // --distributed: backward leaves the gradients' average over the processes
    opt.step();
    ++step;
    t_train += now_s() - ts;
    ++n_timed;
    examples::check_finite_loss(loss.item<double>(), step);
    char post[64];
    std::snprintf(post, sizeof post, "loss=%.4f", loss.item<double>());
    bar.set_postfix(post);
    bar.update();
    if (log && a.eval_interval <= 0) log->log({{"step", step}, {"loss", loss.item<double>()}});
  }
  bar.close();
  if (!dist.is_main()) return 0;
  std::printf("done: %lld steps, %.1f s in training steps (%.2f ms/step); model in %s\n", static_cast<long long>(step),
              t_train, n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0, a.out.c_str());
  if (dist.on()) examples::report_step_time(dist, a.batch_size, n_timed, t_train);
  for (size_t i = 0; i < std::min<size_t>(3, held.size()); ++i) {
    auto out = models::t5_generate(model, {vocab.encode(held[i].input)}, {.max_new_tokens = a.max_len + 4});
    std::printf("  %s -> %s (expected %s)\n", held[i].input.c_str(), vocab.decode(out[0]).c_str(), held[i].target.c_str());
  }
  return 0;
}

// ---- generate -------------------------------------------------------------------------------

struct GenArgs {
  std::string model, input, input_ids;
  int64_t max_new_tokens = 32, num_beams = 1, top_k = 0;
  double temperature = 0.0, top_p = 1.0, length_penalty = 1.0;
  uint64_t seed = 1;
  bool greedy = false, print_ids = false;
};

int run_generate(const GenArgs& a) {
  auto model = models::load_t5_pretrained(a.model);
  std::optional<Vocab> vocab = Vocab::load(a.model);
  std::vector<int64_t> ids;
  if (!a.input_ids.empty()) {
    std::stringstream ss(a.input_ids);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) ids.push_back(std::stoll(item));
  } else if (!a.input.empty()) {
    if (!vocab) {
      std::fprintf(stderr, "t5 generate: %s has no vocab.json (SentencePiece is not supported); use --input-ids\n",
                   a.model.c_str());
      return 2;
    }
    ids = vocab->encode(a.input);
  } else {
    std::fprintf(stderr, "t5 generate: pass --input TEXT or --input-ids 1,2,3\n");
    return 2;
  }
  models::T5GenerationOptions o{.max_new_tokens = a.max_new_tokens, .num_beams = a.num_beams, .length_penalty = a.length_penalty};
  if (!a.greedy && a.num_beams == 1 && a.temperature > 0)
    o.sampling = {.temperature = a.temperature, .top_k = a.top_k, .top_p = a.top_p};
  Generator gen(a.seed);
  const double t0 = now_s();
  auto out = models::t5_generate(*model, {ids}, o, gen)[0];
  const double dt = now_s() - t0;
  if (a.print_ids || !vocab) {
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%lld", i ? "," : "", static_cast<long long>(out[i]));
    std::printf("\n");
  } else {
    std::printf("%s\n", vocab->decode(out).c_str());
  }
  std::fprintf(stderr, "%zu tokens in %.3f s\n", out.size(), dt);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"t5: train a T5 on a toy text-to-text task, or generate from a trained model or a Hugging Face T5 folder"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "threads (0: GENAI_NUM_THREADS or all cores)");

  TrainArgs t;
  CLI::App* tr = app.add_subcommand("train", "train a T5 on a generated toy task (character-level)");
  tr->add_option("--task", t.task, "reverse, sort or add")->capture_default_str();
  tr->add_option("--out", t.out, "output folder: checkpoint, metrics.jsonl, config.json + model.safetensors + vocab.json")
      ->capture_default_str();
  tr->add_option("--num-layers", t.num_layers, "encoder (and decoder) blocks")->capture_default_str();
  tr->add_option("--d-model", t.d_model, "model width")->capture_default_str();
  tr->add_option("--num-heads", t.num_heads, "attention heads")->capture_default_str();
  tr->add_option("--d-kv", t.d_kv, "head width (0: d_model / num_heads)")->capture_default_str();
  tr->add_option("--d-ff", t.d_ff, "feed-forward width")->capture_default_str();
  tr->add_option("--feed-forward", t.ff, "relu (T5 v1.0, tied head) or gated-gelu (v1.1, untied)")->capture_default_str();
  tr->add_option("--dropout", t.dropout, "dropout rate")->capture_default_str();
  tr->add_option("--steps", t.steps, "training steps")->capture_default_str();
  tr->add_option("--batch-size", t.batch_size, "examples per step")->capture_default_str();
  tr->add_option("--lr", t.lr, "AdamW learning rate (after the warmup)")->capture_default_str();
  tr->add_option("--warmup", t.warmup, "linear warmup steps")->capture_default_str();
  tr->add_option("--weight-decay", t.weight_decay, "AdamW weight decay")->capture_default_str();
  tr->add_option("--min-len", t.min_len, "shortest string (reverse, sort) / number length scale (add)")->capture_default_str();
  tr->add_option("--max-len", t.max_len, "longest string")->capture_default_str();
  tr->add_option("--eval-interval", t.eval_interval, "steps between evaluation + checkpoint")->capture_default_str();
  tr->add_option("--eval-size", t.eval_size, "held-out examples decoded at each evaluation")->capture_default_str();
  tr->add_option("--seed", t.seed, "random seed")->capture_default_str();
  tr->add_flag("--resume", t.resume, "continue from OUT/checkpoint.safetensors");
  tr->add_flag("--distributed", t.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch-size per process, each drawing "
               "its own examples; rank 0 evaluates and writes)");

  GenArgs g;
  CLI::App* ge = app.add_subcommand("generate", "decode from a model folder");
  ge->add_option("--model", g.model, "folder with config.json + model.safetensors (+ vocab.json from `t5 train`)")
      ->required();
  ge->add_option("--input", g.input, "input text (needs the folder's vocab.json)");
  ge->add_option("--input-ids", g.input_ids, "input token ids, comma-separated (end with eos, 1)");
  ge->add_option("--max-new-tokens", g.max_new_tokens, "tokens to generate at most")->capture_default_str();
  ge->add_flag("--greedy", g.greedy, "argmax decoding (the default)");
  ge->add_option("--num-beams", g.num_beams, "beam search with this many beams")->capture_default_str();
  ge->add_option("--length-penalty", g.length_penalty, "beam search length penalty")->capture_default_str();
  ge->add_option("--temperature", g.temperature, "sampling temperature (0: greedy)")->capture_default_str();
  ge->add_option("--top-k", g.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  ge->add_option("--top-p", g.top_p, "nucleus sampling threshold (1: off)")->capture_default_str();
  ge->add_option("--seed", g.seed, "random seed")->capture_default_str();
  ge->add_flag("--print-ids", g.print_ids, "print the generated token ids, comma-separated");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);
  try {
    if (tr->parsed()) return run_train(t);
    return run_generate(g);
  } catch (const Error& e) {
    std::fprintf(stderr, "t5: %s\n", e.what());
    return 1;
  }
}
