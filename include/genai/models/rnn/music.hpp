// genai/models/rnn/music.hpp: a note-event LSTM for monophonic melodies, a
// synthetic melody corpus, and the conversion to a Standard MIDI File.
//
// A melody is a list of events (pitch or rest, duration). Pitches are tokens
// 1 .. n_pitch-1 for MIDI notes low_pitch .. high_pitch, token 0 is a rest;
// durations are tokens over a fixed set of lengths in sixteenth notes
// (1, 2, 3, 4, 6, 8, 12, 16 by default). The model (in the spirit of Magenta's
// Melody RNN, with the factorization p(pitch) p(duration | pitch) of event-based
// models):
//
//   x_t = [pitch_embedding(pitch_t), dur_embedding(dur_t)] -> LSTM -> o_t
//   p(pitch_{t+1}) = softmax(pitch_head(o_t))
//   p(dur_{t+1} | pitch_{t+1}) = softmax(dur_head([o_t, pitch_embedding(pitch_{t+1})]))
//
// trained with the sum of the two cross-entropies (teacher forcing) and
// truncated BPTT over streams of the concatenated corpus (as char_lstm.hpp; an
// event is one id, pitch * n_dur + dur, so the same StreamBatcher serves it).
// Generation primes with some events, then draws a pitch, then its duration.
//
// The synthetic corpus (synthetic_melodies) is a documented stand-in for a real
// melody collection (docs/rnn.md explains why): 4/4 melodies of 8 bars in a random
// major or harmonic-minor key, each bar one of a few rhythm/contour patterns
// (scale runs in eighths, arpeggios in quarters, dotted rhythms, held notes, a
// rest at phrase ends), ending on the tonic. Parameter names match the PyTorch
// NoteLSTM in tests/fixtures/make_rnn_fixtures.py.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "genai/io/midi.hpp"
#include "genai/models/rnn/char_lstm.hpp"

namespace genai {
namespace models {
namespace rnn {

struct NoteEvent {
  int pitch = -1;    // MIDI note number, -1 = rest
  int duration = 4;  // in sixteenth notes
  bool operator==(const NoteEvent& o) const { return pitch == o.pitch && duration == o.duration; }
};

/// The token sets of pitches and durations.
struct NoteVocab {
  int low_pitch = 48, high_pitch = 88;                 // C3 .. E6
  std::vector<int> durations = {1, 2, 3, 4, 6, 8, 12, 16};  // sixteenths

  int64_t n_pitch() const { return high_pitch - low_pitch + 2; }  // + rest
  int64_t n_dur() const { return static_cast<int64_t>(durations.size()); }
  int64_t n_events() const { return n_pitch() * n_dur(); }
  /// 0 for a rest, 1 + (pitch - low) for a note; pitches outside the range fold by octaves.
  int64_t pitch_token(int pitch) const {
    if (pitch < 0) return 0;
    while (pitch < low_pitch) pitch += 12;
    while (pitch > high_pitch) pitch -= 12;
    return 1 + pitch - low_pitch;
  }
  int pitch_of(int64_t tok) const { return tok == 0 ? -1 : low_pitch + static_cast<int>(tok) - 1; }
  /// The nearest duration token.
  int64_t dur_token(int d) const {
    int64_t best = 0;
    for (int64_t k = 1; k < n_dur(); ++k)
      if (std::abs(durations[static_cast<size_t>(k)] - d) < std::abs(durations[static_cast<size_t>(best)] - d)) best = k;
    return best;
  }
  int dur_of(int64_t tok) const { return durations[static_cast<size_t>(tok)]; }
  int64_t event_id(const NoteEvent& e) const { return pitch_token(e.pitch) * n_dur() + dur_token(e.duration); }
  NoteEvent event_of(int64_t id) const { return {pitch_of(id / n_dur()), dur_of(id % n_dur())}; }
};

/// `n` synthetic melodies (see the header comment), reproducible from `gen`.
inline std::vector<std::vector<NoteEvent>> synthetic_melodies(int64_t n, Generator& gen, int bars = 8) {
  static const int major[7] = {0, 2, 4, 5, 7, 9, 11}, minor[7] = {0, 2, 3, 5, 7, 8, 11};
  auto pick = [&](int k) { return static_cast<int>(gen.below(static_cast<uint64_t>(k))); };
  std::vector<std::vector<NoteEvent>> out;
  for (int64_t m = 0; m < n; ++m) {
    const int root = 55 + pick(10);  // G3 .. E4
    const int* sc = pick(3) == 0 ? minor : major;
    // pitch of scale degree d (any integer; 7 = the octave)
    auto deg = [&](int d) {
      const int oct = d >= 0 ? d / 7 : -((-d + 6) / 7);
      return root + 12 * oct + sc[((d % 7) + 7) % 7];
    };
    std::vector<NoteEvent> mel;
    int d = pick(3) * 2;  // start on degree 0, 2 or 4
    for (int bar = 0; bar < bars; ++bar) {
      const bool last = bar == bars - 1, phrase_end = bar % 4 == 3;
      if (last) {  // cadence: degrees 5 4 3 2 in eighths, then the tonic as a half note
        for (int k : {4, 3, 2, 1}) mel.push_back({deg(k), 2});
        mel.push_back({deg(0), 8});
        break;
      }
      int pattern = pick(5);
      if (phrase_end) pattern = 5;
      switch (pattern) {
        case 0: {  // scale run up or down in eighths
          const int dir = d >= 3 && pick(2) ? -1 : 1;  // down only from degree 3 up: stays >= -4
          for (int k = 0; k < 8; ++k, d += dir) mel.push_back({deg(d), 2});
          break;
        }
        case 1: {  // arpeggio of the chord on the current degree, quarters
          const int base = d - d % 2;
          for (int k : {0, 2, 4, 7}) mel.push_back({deg(base + k), 4});
          d = base + 4;
          break;
        }
        case 2:  // dotted rhythm: (dotted eighth, sixteenth) x 2, then a half note
          mel.push_back({deg(d), 3});
          mel.push_back({deg(d + 1), 1});
          mel.push_back({deg(d + 2), 3});
          mel.push_back({deg(d + 1), 1});
          mel.push_back({deg(d), 8});
          break;
        case 3:  // neighbour figure in sixteenths then quarters
          for (int k : {0, 1, 0, -1}) mel.push_back({deg(d + k), 1});
          mel.push_back({deg(d), 4});
          mel.push_back({deg(d + 2), 4});
          mel.push_back({deg(d + 4), 4});
          d += 4;
          break;
        case 4:  // leap and step back: half, quarter, quarter
          mel.push_back({deg(d), 8});
          mel.push_back({deg(d + 4), 4});
          mel.push_back({deg(d + 3), 4});
          d += 3;
          break;
        default:  // phrase end: a held note on the dominant or tonic, then a rest
          d = pick(2) ? 4 : 0;
          mel.push_back({deg(d), 12});
          mel.push_back({-1, 4});
          break;
      }
      d = std::max(-2, std::min(6, d));  // with the patterns above: degrees -4 .. 13, pitches root - 7 .. root + 23
    }
    out.push_back(std::move(mel));
  }
  return out;
}

/// The corpus as one stream of event ids, melodies separated by a whole-note rest.
inline Tensor encode_corpus(const std::vector<std::vector<NoteEvent>>& melodies, const NoteVocab& v) {
  std::vector<int64_t> ids;
  for (const auto& m : melodies) {
    for (const auto& e : m) ids.push_back(v.event_id(e));
    ids.push_back(v.event_id({-1, 16}));
  }
  return tensor(ids, {static_cast<int64_t>(ids.size())});
}

/// Events as MIDI notes (rests advance time), ticks_per_quarter / 4 ticks per sixteenth.
inline std::vector<io::MidiNote> events_to_notes(const std::vector<NoteEvent>& events, int ticks_per_quarter = 480,
                                                 int velocity = 80) {
  std::vector<io::MidiNote> notes;
  int64_t t = 0;
  const int64_t tps = ticks_per_quarter / 4;
  for (const auto& e : events) {
    if (e.pitch >= 0) notes.push_back({t, e.duration * tps, e.pitch, velocity, 0});
    t += e.duration * tps;
  }
  return notes;
}

struct NoteLSTMConfig {
  NoteVocab vocab;
  int64_t pitch_embd = 32, dur_embd = 8, hidden_size = 256, num_layers = 2;
  double dropout = 0.0;
};

class NoteLSTM : public nn::Module {
 public:
  explicit NoteLSTM(const NoteLSTMConfig& cfg = {}) : cfg_(cfg) {
    const int64_t np = cfg.vocab.n_pitch(), nd = cfg.vocab.n_dur();
    pitch_embedding = register_module("pitch_embedding", std::make_shared<nn::Embedding>(np, cfg.pitch_embd));
    dur_embedding = register_module("dur_embedding", std::make_shared<nn::Embedding>(nd, cfg.dur_embd));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(
                                       cfg.pitch_embd + cfg.dur_embd, cfg.hidden_size,
                                       nn::RNNOptions{.num_layers = cfg.num_layers, .batch_first = true,
                                                      .dropout = cfg.dropout}));
    pitch_head = register_module("pitch_head", std::make_shared<nn::Linear>(cfg.hidden_size, np));
    dur_head = register_module("dur_head", std::make_shared<nn::Linear>(cfg.hidden_size + cfg.pitch_embd, nd));
  }
  std::string type_name() const override { return "NoteLSTM"; }
  const NoteLSTMConfig& config() const { return cfg_; }

  struct Output {
    Tensor pitch_logits;  // (B, T, n_pitch): the next event's pitch
    Tensor dur_logits;    // (B, T, n_dur): the next event's duration given next_pitch
    LSTMState state;
  };
  /// pitch, dur: int64 (B, T) tokens of the current events; next_pitch (B, T): the
  /// pitch the duration is conditioned on (the true next pitch in training).
  Output forward(const Tensor& pitch, const Tensor& dur, const Tensor& next_pitch, const LSTMState& state = {}) {
    nn::RNNOutput r = run(pitch, dur, state);
    return {pitch_head->forward(r.output), duration_logits(r.output, next_pitch), {r.h_n, r.c_n}};
  }
  /// The LSTM over the events: output (B, T, H) and states.
  nn::RNNOutput run(const Tensor& pitch, const Tensor& dur, const LSTMState& state = {}) {
    GENAI_CHECK(pitch.defined() && dur.defined() && pitch.dim() == 2 && pitch.shape() == dur.shape(),
                "NoteLSTM: expected pitch and duration tokens of the same shape (B, T)");
    Tensor x = cat({pitch_embedding->forward(pitch), dur_embedding->forward(dur)}, -1);
    return lstm->forward(x, state.h, state.c);
  }
  /// dur_head([o, pitch_embedding(next_pitch)]): o (B, T, H), next_pitch (B, T).
  Tensor duration_logits(const Tensor& o, const Tensor& next_pitch) {
    return dur_head->forward(cat({o, pitch_embedding->forward(next_pitch)}, -1));
  }

  std::shared_ptr<nn::Embedding> pitch_embedding, dur_embedding;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> pitch_head, dur_head;

 private:
  NoteLSTMConfig cfg_;
};

/// Event ids (B, T) -> pitch and duration tokens (B, T) each.
inline std::pair<Tensor, Tensor> split_events(const Tensor& ids, const NoteVocab& v) {
  std::vector<int64_t> id = ids.contiguous().to_vector<int64_t>(), p(id.size()), d(id.size());
  for (size_t i = 0; i < id.size(); ++i) {
    p[i] = id[i] / v.n_dur();
    d[i] = id[i] % v.n_dur();
  }
  return {tensor(p, ids.shape()), tensor(d, ids.shape())};
}

/// The loss of a batch: cross-entropy of the next pitch + of the next duration (teacher forcing).
inline Tensor note_loss(NoteLSTM& model, const Tensor& x_ids, const Tensor& y_ids, LSTMState& state) {
  const NoteVocab& v = model.config().vocab;
  auto [p, d] = split_events(x_ids, v);
  auto [np, nd] = split_events(y_ids, v);
  NoteLSTM::Output o = model.forward(p, d, np, state);
  state = o.state;
  return add(cross_entropy(reshape(o.pitch_logits, {-1, v.n_pitch()}), reshape(np, {-1})),
             cross_entropy(reshape(o.dur_logits, {-1, v.n_dur()}), reshape(nd, {-1})));
}

/// One TBPTT step (see char_lstm.hpp's train_step); returns the loss.
inline double note_train_step(NoteLSTM& model, optim::Optimizer& opt, const Tensor& x_ids, const Tensor& y_ids,
                              LSTMState& state, double max_norm = 1.0) {
  LSTMState s = state;
  Tensor loss = note_loss(model, x_ids, y_ids, s);
  opt.zero_grad();
  loss.backward();
  if (max_norm > 0) optim::clip_grad_norm_(model.parameters(), max_norm);
  opt.step();
  state = s.detach();
  return loss.item<double>();
}

/// Generates `n_events` events after priming with `prime` (at least one event).
inline std::vector<NoteEvent> generate_melody(NoteLSTM& model, const std::vector<NoteEvent>& prime, int64_t n_events,
                                              const SampleOptions& opt, Generator& gen,
                                              const std::function<void(const NoteEvent&)>& on_event = {}) {
  GENAI_CHECK(!prime.empty(), "generate_melody: need at least one priming event");
  NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  const NoteVocab& v = model.config().vocab;
  LSTMState state;
  std::vector<NoteEvent> out;
  NoteEvent cur = prime[0];
  for (size_t i = 1; i <= prime.size() - 1 + static_cast<size_t>(n_events); ++i) {
    Tensor p = tensor(std::vector<int64_t>{v.pitch_token(cur.pitch)}, {1, 1});
    Tensor d = tensor(std::vector<int64_t>{v.dur_token(cur.duration)}, {1, 1});
    nn::RNNOutput r = model.run(p, d, state);
    state = {r.h_n, r.c_n};
    if (i < prime.size()) {  // still priming
      cur = prime[i];
      continue;
    }
    const int64_t pt = sample_logits(reshape(model.pitch_head->forward(r.output), {-1}), opt, gen);
    Tensor dl = model.duration_logits(r.output, tensor(std::vector<int64_t>{pt}, {1, 1}));
    const int64_t dt = sample_logits(reshape(dl, {-1}), opt, gen);
    cur = {v.pitch_of(pt), v.dur_of(dt)};
    out.push_back(cur);
    if (on_event) on_event(cur);
  }
  model.train(was_training);
  return out;
}

}  // namespace rnn
}  // namespace models
}  // namespace genai
