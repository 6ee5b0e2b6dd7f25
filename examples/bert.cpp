// bert: pre-train a small BERT (models/transformer/bert.hpp) with masked language
// modelling on a text file, and fill in [MASK] tokens with it or with a Hugging Face
// BERT folder (bert-base-uncased: config.json, model.safetensors, vocab.txt).
//
// Walkthrough (the MLM half of BERT's pre-training, Devlin et al. 2019):
//  1. `bert train --text FILE`: a WordPiece vocabulary is built from the text
//     (text/wordpiece.hpp). --tokenizer char (default) keeps only characters: every
//     character c of the text and its continuation "##c", so a word is spelled
//     t ##h ##e and whitespace separates words (it is not a token); --tokenizer
//     wordpiece adds the --vocab-size most frequent words (lower-cased), or --vocab DIR
//     reuses a vocab.txt (e.g. bert-base-uncased's). The first 90% of the text is the
//     training split, the rest validation.
//  2. Each iteration draws --batch-size windows of --seq-len - 2 tokens, wrapped as
//     [CLS] ... [SEP]; mask_tokens selects 15% of the non-special positions (80%
//     [MASK], 10% a random token, 10% unchanged, as Hugging Face's
//     DataCollatorForLanguageModeling) and the loss is the cross-entropy at the
//     selected positions. AdamW (no decay on biases and LayerNorm), linear warmup +
//     cosine decay, gradient clipping.
//  3. Every --eval-interval iterations: MLM loss and masked-token accuracy on
//     --eval-iters fixed batches of each split (the same masks every time), logged to
//     OUT/metrics.jsonl; an atomic checkpoint OUT/checkpoint.safetensors (--resume
//     continues from it); and the model exported in the Hugging Face layout (OUT/
//     config.json, model.safetensors, vocab.txt, tokenizer_config.json).
//     At the end, the masked accuracy is printed next to the unigram baseline: always
//     predicting the most frequent token of the training split.
//  4. `bert fill-mask --model DIR --text "the [MASK] sat"` prints the --top-k tokens
//     and probabilities of each [MASK].
//
//   bert train --text input.txt [--layers 4 --hidden 128 --heads 4 --intermediate 512 --seq-len 64]
//              [--batch-size 32 --max-iters 2000 --lr 1e-3 --out bert_out --resume]
//   bert fill-mask --model bert_out --text "ROMEO: what [MASK] thou" --top-k 5
//   bert fill-mask --model bert-base-uncased/ --text "the capital of france is [MASK]."
//
// Tiny Shakespeare (1 MB) is a good first text; see docs/bert.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <genai/genai.hpp>
#include <genai/models/transformer/bert.hpp>
#include <genai/text/wordpiece.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using models::BertConfig;
using models::BertForMaskedLM;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
/// CPU time of the process (all threads), seconds: on a shared machine, the fairer clock.
double cpu_s() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

struct TrainArgs {
  std::string text, out = "bert_out", tokenizer = "char", vocab_dir;
  int64_t vocab_size = 2000;
  int64_t layers = 4, hidden = 128, heads = 4, intermediate = 512, seq_len = 64, batch_size = 32;
  double dropout = 0.0, mlm_prob = 0.15;
  int64_t max_iters = 2000, warmup_iters = 100, eval_interval = 250, eval_iters = 20;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.01, grad_clip = 1.0, val_fraction = 0.1;
  uint64_t seed = 1337;
  bool resume = false;
  bool distributed = false;
};

/// `B` windows of T - 2 tokens at uniform offsets, as [CLS] ... [SEP] (B, T), and the
/// special-token mask.
std::pair<Tensor, Tensor> get_batch(const std::vector<int64_t>& data, int64_t B, int64_t T, int64_t cls, int64_t sep,
                                    Generator& gen) {
  Tensor x = empty({B, T}, kInt64), sp = zeros({B, T}, kBool);
  int64_t* px = x.data_ptr<int64_t>();
  bool* ps = sp.data_ptr<bool>();
  const uint64_t n = static_cast<uint64_t>(data.size()) - static_cast<uint64_t>(T - 2) + 1;
  for (int64_t b = 0; b < B; ++b) {
    const auto i = static_cast<int64_t>(gen.below(n));
    px[b * T] = cls;
    for (int64_t t = 0; t < T - 2; ++t) px[b * T + 1 + t] = data[static_cast<size_t>(i + t)];
    px[b * T + T - 1] = sep;
    ps[b * T] = ps[b * T + T - 1] = true;
  }
  return {x, sp};
}

/// Masked positions and how many of them argmax(logits) gets right (and `baseline_token`).
struct MaskedCounts {
  int64_t n = 0, correct = 0, baseline = 0;
};
MaskedCounts count_masked(const Tensor& logits, const Tensor& labels, int64_t baseline_token) {
  Tensor lg = logits.to(kFloat32).contiguous();
  const float* pl = lg.data_ptr<float>();
  const int64_t* py = labels.data_ptr<int64_t>();
  const int64_t V = lg.size(-1), N = labels.numel();
  MaskedCounts c;
  for (int64_t i = 0; i < N; ++i) {
    if (py[i] == -100) continue;
    const float* row = pl + i * V;
    const int64_t arg = std::max_element(row, row + V) - row;
    ++c.n;
    c.correct += arg == py[i];
    c.baseline += baseline_token == py[i];
  }
  return c;
}

int run_train(const TrainArgs& a) {
  if (a.text.empty() || !std::filesystem::exists(a.text)) {
    std::fprintf(stderr,
                 "bert train: pass --text FILE, a UTF-8 text (e.g. tiny Shakespeare: "
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

  std::vector<unsigned char> bytes = io::read_file(a.text, "bert train");
  const std::string raw(bytes.begin(), bytes.end());
  // split at a UTF-8 character boundary near 90%
  size_t cut = static_cast<size_t>(static_cast<double>(raw.size()) * (1.0 - a.val_fraction));
  while (cut < raw.size() && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) ++cut;
  const std::string train_text = raw.substr(0, cut), val_text = raw.substr(cut);

  text::WordPieceTokenizer tok;
  if (resuming && text::WordPieceTokenizer::available(a.out)) {
    tok = text::WordPieceTokenizer::from_dir(a.out);  // the vocabulary the checkpoint was trained with
  } else if (!a.vocab_dir.empty()) {
    tok = text::WordPieceTokenizer::from_dir(a.vocab_dir);
  } else if (a.tokenizer == "char") {
    tok = text::WordPieceTokenizer::build(raw, 0, {.do_lower_case = false});
  } else if (a.tokenizer == "wordpiece") {
    tok = text::WordPieceTokenizer::build(raw, a.vocab_size, {.do_lower_case = true});
  } else {
    std::fprintf(stderr, "bert train: --tokenizer must be char or wordpiece, got '%s'\n", a.tokenizer.c_str());
    return 2;
  }
  const double t_tok = now_s();
  std::vector<int64_t> train_ids = tok.tokenize_ids(train_text), val_ids = tok.tokenize_ids(val_text);
  if (dist.is_main())
    std::printf("text: %s, %zu bytes; %s vocabulary of %lld tokens; %zu train / %zu val tokens (%.1f s)\n",
                a.text.c_str(), raw.size(), a.tokenizer.c_str(), static_cast<long long>(tok.vocab_size()), train_ids.size(), val_ids.size(),
              now_s() - t_tok);

  BertConfig cfg{.vocab_size = tok.vocab_size(), .hidden_size = a.hidden, .num_hidden_layers = a.layers,
                 .num_attention_heads = a.heads, .intermediate_size = a.intermediate, .hidden_dropout_prob = a.dropout,
                 .attention_probs_dropout_prob = a.dropout, .max_position_embeddings = std::max<int64_t>(a.seq_len, 2),
                 .pad_token_id = tok.pad_id()};
  if (ck) cfg = BertConfig::from_hf_json(nlohmann::json::parse(ck->get_string("config")));
  const int64_t T = cfg.max_position_embeddings;
  if (static_cast<int64_t>(train_ids.size()) < T || static_cast<int64_t>(val_ids.size()) < T) {
    std::fprintf(stderr, "bert train: the text is too short for --seq-len %lld (%zu train / %zu validation tokens)\n",
                 static_cast<long long>(T), train_ids.size(), val_ids.size());
    return 2;
  }
  // the unigram baseline: the most frequent non-special training token
  std::vector<int64_t> freq(static_cast<size_t>(cfg.vocab_size), 0);
  for (int64_t t : train_ids) ++freq[static_cast<size_t>(t)];
  for (int64_t i = 0; i < cfg.vocab_size; ++i)
    if (tok.is_special(i)) freq[static_cast<size_t>(i)] = -1;
  const int64_t top_token = std::max_element(freq.begin(), freq.end()) - freq.begin();

  Generator init_gen(a.seed);
  BertForMaskedLM model(cfg, init_gen);
  optim::AdamW opt(model.param_groups(a.weight_decay),
                   optim::AdamWOptions{.lr = a.lr, .betas = {0.9, 0.999}, .eps = 1e-6, .weight_decay = a.weight_decay});
  optim::WarmupCosineLR sched(opt, std::max<int64_t>(0, std::min(a.warmup_iters, a.max_iters - 1)),
                             std::max<int64_t>(a.max_iters, 1), a.min_lr);
  if (dist.is_main())
    std::printf(
        "model: %lld parameters (%.2fM), %lld layers, %lld heads, %lld wide, intermediate %lld, sequence %lld\n",
              static_cast<long long>(model.num_parameters()), static_cast<double>(model.num_parameters()) / 1e6,
              static_cast<long long>(cfg.num_hidden_layers), static_cast<long long>(cfg.num_attention_heads),
              static_cast<long long>(cfg.hidden_size), static_cast<long long>(cfg.intermediate_size),
              static_cast<long long>(T));
  // each process draws its own batches and masks (another seed per rank; rank 0's is the single-process one)
  Generator data_gen(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()));
  int64_t iter = 0;
  double best_val = INFINITY, elapsed0 = 0;
  if (ck) {
    model.load_state_dict(ck->model());
    opt.load_state_dict(ck->optim());
    sched.load_state_dict(ck->sched());
    ck->restore_generator("data", data_gen);
    ck->restore_generator("global", default_generator());
    iter = ck->get_int("iter");
    best_val = ck->get_float("best_val_loss", INFINITY);
    elapsed0 = ck->get_float("elapsed_s", 0.0);
    std::printf("resumed from %s at iteration %lld\n", ckpt_path.c_str(), static_cast<long long>(iter));
    // the checkpoint holds rank 0's batch generator: the others draw a new stream
    if (dist.rank() > 0)
      data_gen.manual_seed(a.seed + 1 + 7919 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(iter));
  }
  dist.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged
  // the dropout masks (global generator) must differ between the processes
  if (dist.rank() > 0) manual_seed(a.seed + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(iter));
  std::optional<train::MetricsLogger> log;  // rank 0 evaluates and writes the metrics, checkpoints and model
  if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, /*append=*/resuming);
  const double cpu0 = (ck ? ck->get_float("cpu_s", 0.0) : 0.0) - cpu_s();
  const int64_t cls = tok.cls_id(), sep = tok.sep_id(), mask_id = tok.mask_id();

  struct Eval {
    double loss, acc, baseline;
  };
  // the same batches and masks at every evaluation (a generator seeded per split)
  auto evaluate = [&](const std::vector<int64_t>& ids, uint64_t seed) {
    NoGradGuard ng;
    model.eval();
    Generator g(seed);
    double s = 0;
    MaskedCounts tot;
    for (int64_t k = 0; k < a.eval_iters; ++k) {
      auto [x, sp] = get_batch(ids, a.batch_size, T, cls, sep, g);
      auto [inp, labels] = models::mask_tokens(x, sp, cfg.vocab_size, mask_id, a.mlm_prob, g);
      Tensor logits = model.forward(inp);
      s += BertForMaskedLM::loss(logits, labels).item<double>();
      MaskedCounts c = count_masked(logits, labels, top_token);
      tot.n += c.n;
      tot.correct += c.correct;
      tot.baseline += c.baseline;
    }
    model.train();
    const double n = static_cast<double>(std::max<int64_t>(tot.n, 1));
    return Eval{s / static_cast<double>(std::max<int64_t>(a.eval_iters, 1)), static_cast<double>(tot.correct) / n,
                static_cast<double>(tot.baseline) / n};
  };
  auto save_all = [&](double elapsed, bool export_model) {
    if (!dist.is_main()) return;
    io::Checkpoint c;
    c.model() = model.state_dict();
    c.optim() = opt.state_dict();
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
      models::save_bert_pretrained(model, a.out, {{"genai_tokenizer", a.tokenizer}});
      tok.save(a.out);
    }
  };

  const double t0 = now_s() - elapsed0;
  double t_train = 0;
  int64_t n_timed = 0;
  Eval last_val{NAN, NAN, NAN};
  train::ProgressBar bar(a.max_iters - iter, {.desc = "train", .stream = dist.progress_stream()});
  model.train();
  while (true) {
    const bool last = iter >= a.max_iters;
    if (dist.is_main() && a.eval_interval > 0 && (iter % a.eval_interval == 0 || last)) {  // rank 0 evaluates
      Eval tr = evaluate(train_ids, a.seed + 100), va = evaluate(val_ids, a.seed + 200);
      last_val = va;
      const double elapsed = now_s() - t0, cpu = cpu0 + cpu_s();
      const bool improved = va.loss < best_val;
      best_val = std::min(best_val, va.loss);
      std::fprintf(stderr,
                   "\nstep %lld: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.1f s, %.1f s CPU, %.2f ms/iter)\n",
                   static_cast<long long>(iter), tr.loss, tr.acc, va.loss, va.acc, elapsed, cpu,
                   n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0);
      log->log({{"iter", iter}, {"train_loss", tr.loss}, {"train_masked_acc", tr.acc}, {"val_loss", va.loss},
               {"val_masked_acc", va.acc}, {"val_unigram_acc", va.baseline}, {"lr", sched.get_last_lr()[0]},
               {"elapsed_s", elapsed}, {"cpu_s", cpu},
               {"ms_per_iter", n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0}});
      save_all(elapsed, improved || !std::filesystem::exists(a.out + "/model.safetensors"));
    }
    if (last) break;
    const double ts = now_s();
    auto [x, sp] = get_batch(train_ids, a.batch_size, T, cls, sep, data_gen);
    auto [inp, labels] = models::mask_tokens(x, sp, cfg.vocab_size, mask_id, a.mlm_prob, data_gen);
    Tensor loss = BertForMaskedLM::loss(model.forward(inp), labels);
    opt.zero_grad();
    loss.backward();  // --distributed: backward leaves the gradients' average over the processes
    if (a.grad_clip > 0) optim::clip_grad_norm_(model.parameters(), a.grad_clip);
    opt.step();
    sched.step();
    ++iter;
    t_train += now_s() - ts;
    ++n_timed;
    examples::check_finite_loss(loss.item<double>(), iter);
    char post[64];
    std::snprintf(post, sizeof post, "loss=%.4f lr=%.2e", loss.item<double>(), sched.get_last_lr()[0]);
    bar.set_postfix(post);
    bar.update();
  }
  bar.close();
  if (!dist.is_main()) return 0;
  std::printf("done: %lld iterations, %.1f s in training steps (%.2f ms/iter); model in %s\n",
              static_cast<long long>(iter), t_train, n_timed ? 1e3 * t_train / static_cast<double>(n_timed) : 0.0,
              a.out.c_str());
  if (dist.on()) examples::report_step_time(dist, a.batch_size, n_timed, t_train);
  std::printf("held-out masked-token accuracy %.4f (MLM loss %.4f) vs unigram baseline %.4f (always '%s')\n",
              last_val.acc, last_val.loss, last_val.baseline, tok.id_to_token(top_token).c_str());
  return 0;
}

struct FillArgs {
  std::string model, text;
  int64_t top_k = 5;
};

int run_fill_mask(const FillArgs& a) {
  auto model = models::load_bert_pretrained(a.model);
  GENAI_CHECK(text::WordPieceTokenizer::available(a.model), "bert fill-mask: ", a.model,
              " has no vocab.txt; hint: download vocab.txt next to config.json");
  text::WordPieceTokenizer tok = text::WordPieceTokenizer::from_dir(a.model);
  std::vector<int64_t> ids = tok.encode(a.text);
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T > model->config().max_position_embeddings) {
    std::fprintf(stderr, "bert fill-mask: %lld tokens, the model takes at most %lld\n", static_cast<long long>(T),
                 static_cast<long long>(model->config().max_position_embeddings));
    return 2;
  }
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < T; ++i)
    if (ids[static_cast<size_t>(i)] == tok.mask_id()) pos.push_back(i);
  if (pos.empty()) {
    std::fprintf(stderr, "bert fill-mask: the text has no [MASK] token\n");
    return 2;
  }
  std::printf("tokens:");
  for (int64_t t : ids) std::printf(" %s", tok.id_to_token(t).c_str());
  std::printf("\n");
  NoGradGuard ng;
  Tensor probs = softmax(model->forward(from_vector(ids, {1, T}, kInt64))[0], -1).to(kFloat64).contiguous();  // (T, V)
  const int64_t V = probs.size(1), k = std::min(a.top_k, V);
  for (size_t m = 0; m < pos.size(); ++m) {
    const double* row = probs.data_ptr<double>() + pos[m] * V;
    std::vector<int64_t> order(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) order[static_cast<size_t>(i)] = i;
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t x, int64_t y) { return row[x] > row[y]; });
    std::printf("[MASK] %zu (position %lld):\n", m + 1, static_cast<long long>(pos[m]));
    for (int64_t j = 0; j < k; ++j) {
      const int64_t t = order[static_cast<size_t>(j)];
      std::printf("  %-16s %.4f\n", tok.id_to_token(t).c_str(), row[t]);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bert: pre-train a BERT with masked language modelling, or fill in [MASK] tokens"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "threads (0: GENAI_NUM_THREADS or all cores)");

  TrainArgs t;
  CLI::App* tr = app.add_subcommand("train", "masked-language-model pre-training on a UTF-8 text");
  tr->add_option("--text", t.text, "UTF-8 text to train on (first 90% train, last 10% validation)")->required();
  tr->add_option("--out", t.out, "output folder: checkpoint, metrics.jsonl, Hugging Face files")->capture_default_str();
  tr->add_option("--tokenizer", t.tokenizer, "char (characters as WordPieces) or wordpiece (+ frequent words)")
      ->capture_default_str();
  tr->add_option("--vocab-size", t.vocab_size, "wordpiece: vocabulary size")->capture_default_str();
  tr->add_option("--vocab", t.vocab_dir, "use this folder's vocab.txt (+ tokenizer_config.json) instead");
  tr->add_option("--layers", t.layers, "encoder layers")->capture_default_str();
  tr->add_option("--hidden", t.hidden, "model width")->capture_default_str();
  tr->add_option("--heads", t.heads, "attention heads")->capture_default_str();
  tr->add_option("--intermediate", t.intermediate, "feed-forward width")->capture_default_str();
  tr->add_option("--seq-len", t.seq_len, "tokens per sequence, [CLS] and [SEP] included")->capture_default_str();
  tr->add_option("--batch-size", t.batch_size, "sequences per iteration")->capture_default_str();
  tr->add_option("--dropout", t.dropout, "hidden and attention dropout")->capture_default_str();
  tr->add_option("--mlm-prob", t.mlm_prob, "fraction of the tokens selected for prediction")->capture_default_str();
  tr->add_option("--max-iters", t.max_iters, "training iterations")->capture_default_str();
  tr->add_option("--lr", t.lr, "peak learning rate")->capture_default_str();
  tr->add_option("--min-lr", t.min_lr, "learning rate at the end of the cosine decay")->capture_default_str();
  tr->add_option("--warmup-iters", t.warmup_iters, "linear warmup iterations")->capture_default_str();
  tr->add_option("--weight-decay", t.weight_decay, "AdamW weight decay (not on biases and LayerNorm)")
      ->capture_default_str();
  tr->add_option("--grad-clip", t.grad_clip, "gradient norm clipping (0: off)")->capture_default_str();
  tr->add_option("--eval-interval", t.eval_interval, "iterations between evaluation + checkpoint")->capture_default_str();
  tr->add_option("--eval-iters", t.eval_iters, "batches per split in an evaluation")->capture_default_str();
  tr->add_option("--val-fraction", t.val_fraction, "fraction of the text held out")->capture_default_str();
  tr->add_option("--seed", t.seed, "random seed")->capture_default_str();
  tr->add_flag("--resume", t.resume, "continue from OUT/checkpoint.safetensors");
  tr->add_flag("--distributed", t.distributed,
               "data-parallel training over the processes of `mpirun -np N` (--batch-size per process; rank 0 "
               "evaluates and writes)");

  FillArgs f;
  CLI::App* fm = app.add_subcommand("fill-mask", "predict the [MASK] tokens of a text");
  fm->add_option("--model", f.model, "folder with config.json, model.safetensors and vocab.txt")->required();
  fm->add_option("--text", f.text, "text with [MASK] tokens")->required();
  fm->add_option("--top-k", f.top_k, "candidates per [MASK]")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) set_num_threads(threads);
  try {
    if (tr->parsed()) return run_train(t);
    return run_fill_mask(f);
  } catch (const Error& e) {
    std::fprintf(stderr, "bert: %s\n", e.what());
    return 1;
  }
}
