// genai/models/rnn/char_lstm.hpp: a character-level LSTM language model (as
// A. Karpathy's char-rnn, "The unreasonable effectiveness of recurrent neural
// networks", 2015), with truncated backpropagation through time.
//
//   Embedding(vocab -> n_embd) -> LSTM(n_embd -> hidden, num_layers) -> Linear(hidden -> vocab)
//
// The defaults are the `char_lstm` reference configuration (REFERENCE_MODELS.md):
// vocab 65, n_embd 64, 2 layers of hidden 256; trained on 32 sequences x 64 steps
// with cross-entropy, gradient clipping at norm 1.0 and Adam 2e-3.
//
// Training (TBPTT, as PyTorch's word_language_model example): the token stream
// is cut into `batch` contiguous streams (StreamBatcher); each step takes the next
// `seq_len` tokens of every stream, starts from the state the previous step ended
// with (detached, so gradients stop at the window boundary), and updates once.
// Each pass over the data starts the streams at a fresh random offset and from a
// zero state. evaluate() runs the same scheme without gradients over a whole
// split and returns the mean cross-entropy in nats per character.
// Sampling primes the state with the prompt, then draws one token at a time
// (temperature, top-k, top-p; models/rnn/sampling.hpp), calling a callback for
// each token as it is produced (streaming output).
//
// Parameter names match the PyTorch module of the same structure
// (embedding.weight, lstm.weight_ih_l0, ..., head.weight, head.bias): see
// tests/fixtures/make_rnn_fixtures.py (CharLSTM) and
// benchmarks/pytorch/char_lstm_shakespeare.py.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genai/models/rnn/sampling.hpp"
#include "genai/nn/linear.hpp"
#include "genai/nn/norm.hpp"
#include "genai/nn/rnn.hpp"
#include "genai/ops/loss.hpp"
#include "genai/optim/clip.hpp"
#include "genai/optim/optimizer.hpp"

namespace genai {
namespace models {
namespace rnn {

/// The hidden and cell states of an LSTM stack, (num_layers, B, H) each; undefined = zeros.
struct LSTMState {
  Tensor h, c;
  bool defined() const { return h.defined(); }
  /// The same values cut from the graph (the TBPTT boundary).
  LSTMState detach() const { return {h.defined() ? h.detach() : h, c.defined() ? c.detach() : c}; }
};

struct CharLSTMConfig {
  int64_t vocab_size = 65;   // distinct characters (tiny Shakespeare has 65)
  int64_t n_embd = 64;       // embedding size
  int64_t hidden_size = 256;
  int64_t num_layers = 2;
  double dropout = 0.0;      // between LSTM layers, in training
};

class CharLSTM : public nn::Module {
 public:
  explicit CharLSTM(const CharLSTMConfig& cfg = {}) : cfg_(cfg) {
    GENAI_CHECK(cfg.vocab_size > 0 && cfg.n_embd > 0 && cfg.hidden_size > 0 && cfg.num_layers > 0,
                "CharLSTM: every size must be positive, got vocab ", cfg.vocab_size, ", n_embd ", cfg.n_embd,
                ", hidden ", cfg.hidden_size, ", layers ", cfg.num_layers);
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(cfg.vocab_size, cfg.n_embd));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(cfg.n_embd, cfg.hidden_size,
                                                              nn::RNNOptions{.num_layers = cfg.num_layers,
                                                                             .batch_first = true,
                                                                             .dropout = cfg.dropout}));
    head = register_module("head", std::make_shared<nn::Linear>(cfg.hidden_size, cfg.vocab_size));
  }
  std::string type_name() const override { return "CharLSTM"; }
  const CharLSTMConfig& config() const { return cfg_; }

  struct Output {
    Tensor logits;      // (B, T, vocab)
    LSTMState state;    // after the last step
  };
  /// idx int64 (B, T) -> logits (B, T, vocab), starting from `state` (zeros when undefined).
  Output forward(const Tensor& idx, const LSTMState& state = {}) {
    GENAI_CHECK(idx.defined() && idx.dim() == 2 && idx.dtype() == kInt64, "CharLSTM: expected int64 ids (B, T), got ",
                idx.defined() ? shape_str(idx.shape()) + " " + dtype_name(idx.dtype()) : std::string("undefined"));
    nn::RNNOutput r = lstm->forward(embedding->forward(idx), state.h, state.c);  // (B, T, H)
    return {head->forward(r.output), {r.h_n, r.c_n}};
  }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;

 private:
  CharLSTMConfig cfg_;
};

/// Cuts a token sequence into `batch` contiguous streams and serves consecutive
/// windows of `seq_len` tokens of all streams (inputs and next-token targets).
class StreamBatcher {
 public:
  StreamBatcher(const Tensor& ids, int64_t batch, int64_t seq_len, uint64_t seed = 0)
      : ids_(ids), batch_(batch), seq_len_(seq_len), gen_(seed) {
    GENAI_CHECK(ids.defined() && ids.dim() == 1 && ids.dtype() == kInt64, "StreamBatcher: expected int64 ids (N,)");
    GENAI_CHECK(batch >= 1 && seq_len >= 1, "StreamBatcher: batch and seq_len must be >= 1, got ", batch, " and ",
                seq_len);
    GENAI_CHECK(ids.size(0) >= batch * (seq_len + 1) + seq_len, "StreamBatcher: ", ids.size(0), " tokens are too few for ",
                batch, " streams of ", seq_len, " + 1 tokens; hint: use a longer text or smaller --batch / --seq-len");
    new_epoch();
  }

  struct Batch {
    Tensor x, y;         // int64 (B, T): inputs and targets (the next tokens)
    bool reset = false;  // first window of a pass over the data: start from a zero state
  };
  Batch next() {
    Batch b;
    if (pos_ + seq_len_ + 1 > streams_.size(1)) {
      ++epoch_;
      new_epoch();
    }
    b.reset = pos_ == 0;
    b.x = streams_.narrow(1, pos_, seq_len_);
    b.y = streams_.narrow(1, pos_ + 1, seq_len_);
    pos_ += seq_len_;
    return b;
  }
  int64_t epoch() const { return epoch_; }
  /// Steps in one pass over the data.
  int64_t steps_per_epoch() const { return (streams_.size(1) - 1) / seq_len_; }
  Generator& generator() { return gen_; }
  /// Position for checkpoints: (epoch, offset of this pass, position in the streams).
  std::vector<int64_t> position() const { return {epoch_, offset_, pos_}; }
  void set_position(const std::vector<int64_t>& p) {
    GENAI_CHECK(p.size() == 3, "StreamBatcher::set_position: expected 3 values");
    epoch_ = p[0];
    make_streams(p[1]);
    pos_ = p[2];
  }

 private:
  void new_epoch() { make_streams(static_cast<int64_t>(gen_.below(static_cast<uint64_t>(seq_len_)))); }
  void make_streams(int64_t offset) {
    offset_ = offset;
    const int64_t len = (ids_.size(0) - offset) / batch_;
    streams_ = reshape(ids_.narrow(0, offset, len * batch_), {batch_, len});  // (B, len)
    pos_ = 0;
  }
  Tensor ids_, streams_;
  int64_t batch_, seq_len_, pos_ = 0, epoch_ = 0, offset_ = 0;
  Generator gen_;
};

/// One TBPTT step: forward from `state`, mean cross-entropy over all B x T tokens,
/// backward, clip_grad_norm_(max_norm) when max_norm > 0, optimizer step; `state`
/// becomes the final state, detached. Returns the loss (before the update).
inline double train_step(CharLSTM& model, optim::Optimizer& opt, const Tensor& x, const Tensor& y, LSTMState& state,
                         double max_norm = 1.0) {
  CharLSTM::Output o = model.forward(x, state);
  const int64_t V = model.config().vocab_size;
  Tensor loss = cross_entropy(reshape(o.logits, {-1, V}), reshape(y, {-1}));
  opt.zero_grad();
  loss.backward();
  if (max_norm > 0) optim::clip_grad_norm_(model.parameters(), max_norm);
  opt.step();
  state = o.state.detach();
  return loss.item<double>();
}

/// Mean cross-entropy (nats per token) of the model over `ids` (N,), read as `batch`
/// contiguous streams with the state carried across windows of seq_len, no gradients.
/// Every token of every stream but its first is scored (the last N mod batch tokens
/// of `ids` are dropped).
inline double evaluate(CharLSTM& model, const Tensor& ids, int64_t batch = 32, int64_t seq_len = 64) {
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  GENAI_CHECK(ids.defined() && ids.dim() == 1 && ids.size(0) >= 2 * batch, "evaluate: need at least ", 2 * batch,
              " tokens");
  const int64_t len = ids.size(0) / batch, V = model.config().vocab_size;
  Tensor streams = reshape(ids.narrow(0, 0, len * batch), {batch, len});
  LSTMState state;
  double total = 0;
  int64_t count = 0;
  for (int64_t p = 0; p + 1 < len; p += seq_len) {
    const int64_t t = std::min(seq_len, len - 1 - p);
    CharLSTM::Output o = model.forward(streams.narrow(1, p, t).contiguous(), state);
    Tensor l = cross_entropy(reshape(o.logits, {-1, V}), reshape(streams.narrow(1, p + 1, t).contiguous(), {-1}),
                             Tensor(), -100, "sum");
    total += l.item<double>();
    count += batch * t;
    state = o.state;
  }
  model.train(was_training);
  return total / static_cast<double>(count);
}

/// Generates `max_new_tokens` ids after priming with `prompt` (at least one id);
/// on_token(id) is called for each new id as soon as it is drawn.
inline std::vector<int64_t> sample(CharLSTM& model, const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                                   const SampleOptions& opt, Generator& gen,
                                   const std::function<void(int64_t)>& on_token = {}) {
  GENAI_CHECK(!prompt.empty(), "sample: the prompt must have at least one token");
  for (int64_t id : prompt)
    GENAI_CHECK(id >= 0 && id < model.config().vocab_size, "sample: prompt id ", id, " outside the vocabulary");
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  // prime: all but the last prompt token in one pass, then one token at a time
  LSTMState state;
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n > 1) state = model.forward(tensor(std::vector<int64_t>(prompt.begin(), prompt.end() - 1), {1, n - 1}), state).state;
  std::vector<int64_t> out;
  int64_t cur = prompt.back();
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    CharLSTM::Output o = model.forward(tensor(std::vector<int64_t>{cur}, {1, 1}), state);
    state = o.state;
    cur = sample_logits(reshape(o.logits, {-1}), opt, gen);
    out.push_back(cur);
    if (on_token) on_token(cur);
  }
  model.train(was_training);
  return out;
}

}  // namespace rnn
}  // namespace models
}  // namespace genai
