// gpt: train a GPT (models/transformer/gpt.hpp) on a text file, character-level or
// with a byte-level BPE, and generate from it or from a Hugging Face GPT-2 folder.
//
// Walkthrough (nanoGPT's train.py and sample.py, in C++):
//  1. `gpt train --text FILE`: the text is tokenized (characters by default, the
//     sorted set of the file's characters; --tokenizer bpe learns a byte-level BPE
//     of --bpe-vocab-size tokens, or --vocab DIR reuses vocab.json + merges.txt).
//     The first 90% of the characters is the training split, the last 10% validation.
//  2. Each iteration draws --batch-size random windows of --block-size tokens
//     (nanoGPT's get_batch), computes the next-token cross-entropy, clips the
//     gradient norm and takes an AdamW step (weight decay on matrices only) with a
//     linear warmup + cosine learning-rate schedule.
//  3. Every --eval-interval iterations the mean loss of --eval-iters batches of
//     each split is printed and logged to OUT/metrics.jsonl, a checkpoint
//     (model, optimizer, schedule, random state) is written atomically to
//     OUT/checkpoint.safetensors (--resume continues from it), and when the
//     validation loss improved the model is exported to OUT in the Hugging Face
//     GPT-2 layout (config.json + model.safetensors) with its tokenizer files.
//  4. `gpt generate --model DIR --prompt "..."` loads such a folder, or the four
//     files of the Hugging Face hub's gpt2 (config.json, model.safetensors,
//     vocab.json, merges.txt), and streams --max-new-tokens tokens sampled with
//     --temperature / --top-k / --top-p / --repetition-penalty (seeded), or greedily.
//     --prompt-ids 1,2,3 takes token ids and --print-ids prints the generated ids
//     (one line per sample, comma-separated) to compare with another implementation.
//
//   gpt train --text input.txt [--n-layer 4 --n-head 4 --n-embd 128 --block-size 64 --batch-size 12]
//             [--max-iters 2000 --lr 1e-3 --out gpt_out --resume]
//   gpt generate --model gpt_out --prompt "ROMEO:" --max-new-tokens 200 --temperature 0.8 --top-k 40 --seed 1
//   gpt generate --model gpt2/ --prompt-ids 15496,995 --max-new-tokens 20 --greedy --print-ids
//
// Tiny Shakespeare (1 MB) is the classic text for the character-level model; see docs/gpt.md.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <genai/genai.hpp>
#include <genai/models/transformer/generate.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/kv_cache.hpp>
#include <genai/text/bpe.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using models::GPT;
using models::GPTConfig;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
/// CPU time of the process (all threads), seconds: on a shared machine, the fairer clock.
double cpu_s() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// ---- tokenizers: characters or byte-level BPE, behind one interface ----------------------

struct Tokenizer {
  std::string kind;  // "char" or "bpe"
  data::CharTokenizer chars;
  text::BPETokenizer bpe;

  int64_t vocab_size() const { return kind == "char" ? chars.vocab_size() : bpe.vocab_size(); }
  std::vector<int64_t> encode(const std::string& s) const { return kind == "char" ? chars.encode(s) : bpe.encode(s, true); }
  /// Raw bytes of the tokens (a BPE token may hold part of a UTF-8 character).
  std::string decode(const std::vector<int64_t>& ids) const { return kind == "char" ? chars.decode(ids) : bpe.decode(ids); }
  /// The token generation starts from when the prompt is empty.
  int64_t start_token() const {
    if (kind == "bpe") return bpe.eot_id() >= 0 ? bpe.eot_id() : 0;
    for (int64_t i = 0; i < chars.vocab_size(); ++i)
      if (chars.chars()[static_cast<size_t>(i)] == U'\n') return i;
    return 0;
  }
  /// Writes the tokenizer next to config.json: chars.json, or vocab.json + merges.txt.
  void save(const std::string& dir) const {
    if (kind == "bpe") {
      bpe.save(dir);
      return;
    }
    std::string s;
    for (char32_t c : chars.chars()) data::utf8_append(s, c);
    const std::string js = nlohmann::json{{"chars", s}}.dump() + "\n";
    io::write_file_atomic((std::filesystem::path(dir) / "chars.json").string(), js.data(), js.size());
  }
  /// The tokenizer of a model folder, if it has one.
  static std::optional<Tokenizer> load(const std::string& dir) {
    Tokenizer t;
    if (text::BPETokenizer::available(dir)) {
      t.kind = "bpe";
      t.bpe = text::BPETokenizer::from_dir(dir);
      return t;
    }
    const std::string cj = (std::filesystem::path(dir) / "chars.json").string();
    if (std::filesystem::exists(cj)) {
      std::vector<unsigned char> b = io::read_file(cj, "gpt");
      nlohmann::json j = nlohmann::json::parse(b.begin(), b.end());
      t.kind = "char";
      t.chars = data::CharTokenizer::from_utf8(j.at("chars").get<std::string>());
      return t;
    }
    return std::nullopt;
  }
};

// ---- train ----------------------------------------------------------------------------------

struct TrainArgs {
  std::string text, out = "gpt_out", tokenizer = "char", vocab_dir;
  int64_t bpe_vocab_size = 512;
  int64_t n_layer = 4, n_head = 4, n_embd = 128, block_size = 64, batch_size = 12;
  double dropout = 0.0;
  bool no_bias = false;
  int64_t max_iters = 2000, warmup_iters = 100, lr_decay_iters = 0, eval_interval = 250, eval_iters = 20;
  int64_t final_eval_iters = 200;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.99, grad_clip = 1.0;
  double val_fraction = 0.1, minutes = 0;
  int64_t sample_tokens = 200;
  uint64_t seed = 1337;
  bool resume = false;
  bool distributed = false;
};

/// nanoGPT's get_batch: `B` windows of T + 1 tokens at uniform offsets -> x, y (B, T).
std::pair<Tensor, Tensor> get_batch(const std::vector<int64_t>& data, int64_t B, int64_t T, Generator& gen) {
  Tensor x = empty({B, T}, kInt64), y = empty({B, T}, kInt64);
  int64_t* px = x.data_ptr<int64_t>();
  int64_t* py = y.data_ptr<int64_t>();
  const uint64_t n = static_cast<uint64_t>(data.size()) - static_cast<uint64_t>(T);
  for (int64_t b = 0; b < B; ++b) {
    const auto i = static_cast<int64_t>(gen.below(n));
    for (int64_t t = 0; t < T; ++t) {
      px[b * T + t] = data[static_cast<size_t>(i + t)];
      py[b * T + t] = data[static_cast<size_t>(i + t + 1)];
    }
  }
  return {x, y};
}

std::vector<int64_t> split_ids(const Tokenizer& tok, const std::u32string& text, size_t begin, size_t end) {
  std::string s;
  for (size_t i = begin; i < end; ++i) data::utf8_append(s, text[i]);
  return tok.encode(s);
}

int run_train(const TrainArgs& a) {
  if (a.text.empty() || !std::filesystem::exists(a.text)) {
    std::fprintf(stderr,
                 "gpt train: pass --text FILE, a UTF-8 text (e.g. tiny Shakespeare: "
                 "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt)%s\n",
                 a.text.empty() ? "" : (" -- '" + a.text + "' not found").c_str());
    return 2;
  }
  examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
  std::filesystem::create_directories(a.out);
  manual_seed(a.seed);
  const std::string ckpt_path = a.out + "/checkpoint.safetensors";
  const bool resuming = a.resume && std::filesystem::exists(ckpt_path);
  std::optional<io::Checkpoint> ck;
  if (resuming) ck = io::Checkpoint::load(ckpt_path);

  // data and tokenizer
  std::vector<unsigned char> bytes = io::read_file(a.text, "gpt train");
  const std::string raw(bytes.begin(), bytes.end());
  const std::u32string text = data::utf8_decode(raw, "'" + a.text + "'");
  Tokenizer tok;
  if (resuming && Tokenizer::load(a.out)) {
    tok = *Tokenizer::load(a.out);  // the tokenizer the checkpoint was trained with
  } else if (a.tokenizer == "char") {
    tok.kind = "char";
    tok.chars = data::CharTokenizer(text);
  } else if (a.tokenizer == "bpe") {
    tok.kind = "bpe";
    if (!a.vocab_dir.empty()) {
      tok.bpe = text::BPETokenizer::from_dir(a.vocab_dir);
    } else {
      const double t0 = now_s();
      tok.bpe = text::BPETokenizer::train(raw, a.bpe_vocab_size);
      std::printf("learned a byte-level BPE of %lld tokens in %.1f s\n", static_cast<long long>(tok.vocab_size()),
                  now_s() - t0);
    }
  } else {
    std::fprintf(stderr, "gpt train: --tokenizer must be char or bpe, got '%s'\n", a.tokenizer.c_str());
    return 2;
  }
  const size_t n_train = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - a.val_fraction));
  std::vector<int64_t> train_ids = split_ids(tok, text, 0, n_train), val_ids = split_ids(tok, text, n_train, text.size());

  // model: from the checkpoint's config when resuming
  GPTConfig cfg{.block_size = a.block_size, .vocab_size = tok.vocab_size(), .n_layer = a.n_layer, .n_head = a.n_head,
                .n_embd = a.n_embd, .dropout = a.dropout, .bias = !a.no_bias};
  if (ck) cfg = GPTConfig::from_hf_json(nlohmann::json::parse(ck->get_string("config")));
  const int64_t T = cfg.block_size;
  if (static_cast<int64_t>(train_ids.size()) <= T + 1 || static_cast<int64_t>(val_ids.size()) <= T + 1) {
    std::fprintf(stderr, "gpt train: the text is too short for --block-size %lld (%zu train / %zu validation tokens)\n",
                 static_cast<long long>(T), train_ids.size(), val_ids.size());
    return 2;
  }
  if (dist.is_main())
    std::printf("text: %s, %zu characters; %s tokenizer, %lld tokens in the vocabulary; %zu train / %zu val tokens\n",
              a.text.c_str(), text.size(), tok.kind.c_str(), static_cast<long long>(tok.vocab_size()), train_ids.size(),
              val_ids.size());
  Generator init_gen(a.seed);
  GPT model(cfg, init_gen);
  auto opt = model.configure_optimizers(a.weight_decay, a.lr, {a.beta1, a.beta2});
  const int64_t decay_iters = a.lr_decay_iters > 0 ? a.lr_decay_iters : a.max_iters;
  optim::WarmupCosineLR sched(*opt, std::min(a.warmup_iters, decay_iters - 1), decay_iters, a.min_lr);
  if (dist.is_main())
    std::printf("model: %lld parameters (%.2fM), %lld layers, %lld heads, %lld wide, context %lld\n",
              static_cast<long long>(model.num_parameters()), static_cast<double>(model.num_params()) / 1e6,
              static_cast<long long>(cfg.n_layer), static_cast<long long>(cfg.n_head),
              static_cast<long long>(cfg.n_embd), static_cast<long long>(cfg.block_size));
  // each process draws its own batches (as nanoGPT's DDP: another seed per rank)
  Generator data_gen(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()));
  int64_t iter = 0;
  double best_val = INFINITY, elapsed0 = 0;
  if (ck) {
    model.load_state_dict(ck->model());
    opt->load_state_dict(ck->optim());
    sched.load_state_dict(ck->sched());
    ck->restore_generator("data", data_gen);
    ck->restore_generator("global", default_generator());
    iter = ck->get_int("iter");
    best_val = ck->get_float("best_val_loss", INFINITY);
    elapsed0 = ck->get_float("elapsed_s", 0.0);
    std::printf("resumed from %s at iteration %lld\n", ckpt_path.c_str(), static_cast<long long>(iter));
    // the checkpoint holds rank 0's batch generator: the others draw a new stream
    if (dist.rank() > 0) data_gen.manual_seed(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(iter));
  }
  dist.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged
  std::optional<train::MetricsLogger> log;  // rank 0 writes the metrics, checkpoints and model
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/resuming);
  const double cpu0 = (ck ? ck->get_float("cpu_s", 0.0) : 0.0) - cpu_s();  // CPU seconds of earlier runs

  auto estimate_loss = [&](const std::vector<int64_t>& ids, int64_t n_batches) {
    NoGradGuard ng;
    model.eval();
    double s = 0;
    for (int64_t k = 0; k < n_batches; ++k) {
      auto [x, y] = get_batch(ids, a.batch_size, T, data_gen);
      s += GPT::loss(model.forward(x), y).item<double>();
    }
    model.train();
    return dist.mean(s / static_cast<double>(std::max<int64_t>(n_batches, 1)));  // over all processes' batches
  };
  auto save_all = [&](double elapsed, bool export_model) {
    if (!dist.is_main()) return;
    io::Checkpoint c;
    c.model() = model.state_dict();
    c.optim() = opt->state_dict();
    c.sched() = sched.state_dict();
    c.set_generator("data", data_gen);
    c.set_generator("global", default_generator());
    c.ints["iter"] = iter;
    c.floats["best_val_loss"] = best_val;
    c.floats["elapsed_s"] = elapsed;
    c.floats["cpu_s"] = cpu0 + cpu_s();
    c.strings["config"] = cfg.to_hf_json().dump();
    c.save(ckpt_path);  // atomic
    if (export_model) {
      models::save_gpt2_pretrained(model, a.out, {{"genai_tokenizer", tok.kind}});
      tok.save(a.out);
    }
  };

  const double t0 = now_s() - elapsed0;
  double t_train = 0;  // seconds inside training iterations (excludes evaluation)
  int64_t n_timed = 0;
  train::ProgressBar bar(a.max_iters - iter, {.desc = "train", .stream = dist.progress_stream()});
  model.train();
  double last_loss = NAN;
  while (true) {
    const bool last = dist.from_main(iter >= a.max_iters || (a.minutes > 0 && now_s() - t0 >= a.minutes * 60));
    if (a.eval_interval > 0 && (iter % a.eval_interval == 0 || last)) {
      const int64_t nb = last ? std::max(a.eval_iters, a.final_eval_iters) : a.eval_iters;
      const double tr = estimate_loss(train_ids, nb), va = estimate_loss(val_ids, nb);
      const double elapsed = now_s() - t0;
      const bool improved = va < best_val;
      best_val = std::min(best_val, va);
      const double cpu = cpu0 + cpu_s();
      if (dist.is_main())
        std::fprintf(stderr, "\nstep %lld: train loss %.4f, val loss %.4f (%.1f s, %.1f s CPU, %.2f ms/iter)\n",
                     static_cast<long long>(iter), tr, va, elapsed, cpu, n_timed ? 1e3 * t_train / n_timed : 0.0);
      if (log) log->log({{"iter", iter}, {"train_loss", tr}, {"val_loss", va}, {"lr", sched.get_last_lr()[0]},
               {"elapsed_s", elapsed}, {"cpu_s", cpu},
               {"ms_per_iter", n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0}});
      save_all(elapsed, improved || !std::filesystem::exists(a.out + "/model.safetensors"));
    }
    if (last) break;
    const double ts = now_s();
    auto [x, y] = get_batch(train_ids, a.batch_size, T, data_gen);
    Tensor loss = GPT::loss(model.forward(x), y);
    opt->zero_grad();
    loss.backward();  // --distributed: backward leaves the gradients' average over the processes
    if (a.grad_clip > 0) optim::clip_grad_norm_(model.parameters(), a.grad_clip);
    opt->step();
    sched.step();
    ++iter;
    t_train += now_s() - ts;
    ++n_timed;
    last_loss = loss.item<double>();
    examples::check_finite_loss(last_loss, iter);
    char post[64];
    std::snprintf(post, sizeof post, "loss=%.4f lr=%.2e", last_loss, sched.get_last_lr()[0]);
    bar.set_postfix(post);
    bar.update();
  }
  bar.close();
  if (!dist.is_main()) return 0;
  std::printf("done: %lld iterations, %.1f s in training steps (%.2f ms/iter), best val loss %.4f; model in %s\n",
              static_cast<long long>(iter), t_train, n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0,
              best_val, a.out.c_str());
  if (dist.on()) examples::report_step_time(dist, a.batch_size, n_timed, t_train);
  if (a.sample_tokens > 0) {  // a short sample from the final weights
    model.eval();
    models::GPTDecoder dec(model);
    Generator gen(a.seed);
    std::printf("--- sample (temperature 0.8, top-k 200) ---\n");
    text::Utf8StreamBuffer out;
    models::generate(dec, {{tok.start_token()}}, {.max_new_tokens = a.sample_tokens, .sampling = {.temperature = 0.8, .top_k = 200}},
                     gen, [&](int64_t, int64_t t) {
                       std::fputs(out.push(tok.decode({t})).c_str(), stdout);
                       return true;
                     });
    std::printf("%s\n", out.flush().c_str());
  }
  return 0;
}

// ---- generate -------------------------------------------------------------------------------

struct GenArgs {
  std::string model, prompt, prompt_ids;
  std::vector<std::string> stop;
  int64_t max_new_tokens = 100, top_k = 0, num_samples = 1;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
  uint64_t seed = 1337;
  bool greedy = false, print_ids = false, bf16 = false;
};

int run_generate(const GenArgs& a) {
  if (a.model.empty()) {
    std::fprintf(stderr, "gpt generate: pass --model DIR (a folder with config.json and model.safetensors: written by "
                         "`gpt train`, or Hugging Face's gpt2 with vocab.json and merges.txt)\n");
    return 2;
  }
  const double t_load = now_s();
  auto model = models::load_gpt2_pretrained(a.model);
  std::optional<Tokenizer> tok = Tokenizer::load(a.model);
  std::fprintf(stderr, "loaded %s: %.1fM parameters, %s tokenizer (%.2f s)\n", a.model.c_str(),
               static_cast<double>(model->num_parameters()) / 1e6, tok ? tok->kind.c_str() : "no", now_s() - t_load);
  std::vector<int64_t> prompt;
  if (!a.prompt_ids.empty()) {
    std::stringstream ss(a.prompt_ids);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) prompt.push_back(std::stoll(item));
  } else if (!a.prompt.empty()) {
    if (!tok) {
      std::fprintf(stderr, "gpt generate: %s has no tokenizer (vocab.json + merges.txt or chars.json); use --prompt-ids\n",
                   a.model.c_str());
      return 2;
    }
    prompt = tok->encode(a.prompt);
  }
  if (prompt.empty()) prompt.push_back(tok ? tok->start_token() : 0);
  for (int64_t t : prompt)
    if (t < 0 || t >= model->config().vocab_size) {
      std::fprintf(stderr, "gpt generate: prompt token %lld is outside the vocabulary [0, %lld)\n",
                   static_cast<long long>(t), static_cast<long long>(model->config().vocab_size));
      return 2;
    }
  models::GPTDecoder dec(*model, {.bf16 = a.bf16});
  models::GenerationOptions o{.max_new_tokens = a.max_new_tokens,
                              .sampling = {.temperature = a.temperature, .top_k = a.top_k, .top_p = a.top_p,
                                           .repetition_penalty = a.repetition_penalty, .greedy = a.greedy}};
  Generator gen(a.seed);
  const bool stream = tok && !a.print_ids && a.num_samples == 1;
  std::vector<std::string> texts(static_cast<size_t>(a.num_samples));
  std::vector<size_t> printed(static_cast<size_t>(a.num_samples), 0);
  size_t max_stop = 0;
  for (const auto& s : a.stop) max_stop = std::max(max_stop, s.size());
  if (stream) std::fputs(tok->decode(prompt).c_str(), stdout);
  const double t0 = now_s();
  auto res = models::generate(dec, std::vector<std::vector<int64_t>>(static_cast<size_t>(a.num_samples), prompt), o, gen,
                              [&](int64_t b, int64_t t) {
                                if (!tok) return true;
                                std::string& s = texts[static_cast<size_t>(b)];
                                s += tok->decode({t});
                                // text stop strings: stop at the first occurrence
                                size_t cut = std::string::npos;
                                for (const auto& st : a.stop)
                                  if (!st.empty()) cut = std::min(cut, s.find(st));
                                if (cut != std::string::npos) s.resize(cut);
                                if (stream) {  // print what can no longer be part of a stop string
                                  size_t safe = cut != std::string::npos || max_stop == 0
                                                    ? s.size()
                                                    : (s.size() >= max_stop ? s.size() - (max_stop - 1) : 0);
                                  safe = std::max(safe, printed[0]);
                                  safe = printed[0] + text::utf8_complete_prefix(
                                                          std::string_view(s).substr(printed[0], safe - printed[0]));
                                  std::fwrite(s.data() + printed[0], 1, safe - printed[0], stdout);
                                  std::fflush(stdout);
                                  printed[0] = safe;
                                }
                                return cut == std::string::npos;
                              });
  const double dt = now_s() - t0;
  int64_t n_tok = 0;
  for (const auto& t : res.tokens) n_tok += static_cast<int64_t>(t.size());
  if (stream) {
    std::fwrite(texts[0].data() + printed[0], 1, texts[0].size() - printed[0], stdout);
    std::printf("\n");
  } else {
    for (int64_t b = 0; b < a.num_samples; ++b) {
      const auto& ids = res.tokens[static_cast<size_t>(b)];
      if (a.print_ids) {
        for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%lld", i ? "," : "", static_cast<long long>(ids[i]));
        std::printf("\n");
      } else {
        std::printf("%s%s\n", tok->decode(prompt).c_str(), texts[static_cast<size_t>(b)].c_str());
        if (b + 1 < a.num_samples) std::printf("---------------\n");
      }
    }
  }
  std::fprintf(stderr, "%lld tokens in %.2f s (%.2f ms/token, prompt of %zu tokens included)\n",
               static_cast<long long>(n_tok), dt, n_tok ? 1e3 * dt / static_cast<double>(n_tok) : 0.0, prompt.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gpt: train a GPT on a text file, or generate from a trained model or a Hugging Face GPT-2 folder"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "threads (0: GENAI_NUM_THREADS or all cores)");

  TrainArgs t;
  CLI::App* tr = app.add_subcommand("train", "train a GPT on a UTF-8 text (char-level or byte-level BPE)");
  tr->add_option("--text", t.text, "UTF-8 text to train on (first 90% train, last 10% validation)")->required();
  tr->add_option("--out", t.out, "output folder: checkpoint, metrics.jsonl, config.json + model.safetensors")
      ->capture_default_str();
  tr->add_option("--tokenizer", t.tokenizer, "char or bpe")->capture_default_str();
  tr->add_option("--bpe-vocab-size", t.bpe_vocab_size, "tokens of the learned BPE (256 bytes + merges + <|endoftext|>)")
      ->capture_default_str();
  tr->add_option("--vocab", t.vocab_dir, "use this folder's vocab.json + merges.txt instead of learning a BPE");
  tr->add_option("--n-layer", t.n_layer, "Transformer blocks")->capture_default_str();
  tr->add_option("--n-head", t.n_head, "attention heads")->capture_default_str();
  tr->add_option("--n-embd", t.n_embd, "model width")->capture_default_str();
  tr->add_option("--block-size", t.block_size, "context length")->capture_default_str();
  tr->add_option("--batch-size", t.batch_size, "sequences per iteration")->capture_default_str();
  tr->add_option("--dropout", t.dropout, "dropout rate")->capture_default_str();
  tr->add_flag("--no-bias", t.no_bias, "no biases in Linear and LayerNorm");
  tr->add_option("--max-iters", t.max_iters, "training iterations")->capture_default_str();
  tr->add_option("--minutes", t.minutes, "stop after this many minutes (0: no limit)")->capture_default_str();
  tr->add_option("--lr", t.lr, "peak learning rate")->capture_default_str();
  tr->add_option("--min-lr", t.min_lr, "learning rate at the end of the cosine decay")->capture_default_str();
  tr->add_option("--warmup-iters", t.warmup_iters, "linear warmup iterations")->capture_default_str();
  tr->add_option("--lr-decay-iters", t.lr_decay_iters, "cosine decay length (0: max-iters)")->capture_default_str();
  tr->add_option("--weight-decay", t.weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  tr->add_option("--beta1", t.beta1, "AdamW beta1")->capture_default_str();
  tr->add_option("--beta2", t.beta2, "AdamW beta2")->capture_default_str();
  tr->add_option("--grad-clip", t.grad_clip, "gradient norm clipping (0: off)")->capture_default_str();
  tr->add_option("--eval-interval", t.eval_interval, "iterations between evaluation + checkpoint")->capture_default_str();
  tr->add_option("--eval-iters", t.eval_iters, "batches per split in an evaluation")->capture_default_str();
  tr->add_option("--final-eval-iters", t.final_eval_iters, "batches per split in the last evaluation")
      ->capture_default_str();
  tr->add_option("--val-fraction", t.val_fraction, "fraction of the text held out")->capture_default_str();
  tr->add_option("--sample-tokens", t.sample_tokens, "tokens to sample at the end (0: none)")->capture_default_str();
  tr->add_option("--seed", t.seed, "random seed")->capture_default_str();
  tr->add_flag("--resume", t.resume, "continue from OUT/checkpoint.safetensors");
  tr->add_flag("--distributed", t.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch-size per process; rank 0 writes)");

  GenArgs g;
  CLI::App* ge = app.add_subcommand("generate", "generate text from a model folder");
  ge->add_option("--model", g.model, "folder with config.json + model.safetensors (+ tokenizer files)")->required();
  ge->add_option("--prompt", g.prompt, "text to continue (default: <|endoftext|> or a newline)");
  ge->add_option("--prompt-ids", g.prompt_ids, "token ids to continue, comma-separated (instead of --prompt)");
  ge->add_option("--max-new-tokens", g.max_new_tokens, "tokens to generate")->capture_default_str();
  ge->add_option("--temperature", g.temperature, "sampling temperature (0: greedy)")->capture_default_str();
  ge->add_option("--top-k", g.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  ge->add_option("--top-p", g.top_p, "nucleus sampling threshold (1: off)")->capture_default_str();
  ge->add_option("--repetition-penalty", g.repetition_penalty, "penalty for tokens already present (1: off)")
      ->capture_default_str();
  ge->add_option("--stop", g.stop, "stop when the generated text contains this string (repeatable)");
  ge->add_option("--num-samples", g.num_samples, "independent samples, generated as one batch")->capture_default_str();
  ge->add_option("--seed", g.seed, "random seed")->capture_default_str();
  ge->add_flag("--greedy", g.greedy, "argmax decoding");
  ge->add_flag("--print-ids", g.print_ids, "print the generated token ids, comma-separated, one line per sample");
  ge->add_flag("--bf16", g.bf16, "bfloat16 weights for generation (half the memory traffic)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);
  try {
    if (tr->parsed()) return run_train(t);
    return run_generate(g);
  } catch (const Error& e) {
    std::fprintf(stderr, "gpt: %s\n", e.what());
    return 1;
  }
}
