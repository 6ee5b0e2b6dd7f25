// Golden tests of the models in genai/models/rnn against PyTorch
// (tests/fixtures/make_rnn_fixtures.py, rnn_models.safetensors): CharLSTM,
// NoteLSTM and GaussianLSTM load PyTorch's initial weights; their outputs, loss
// and gradients of the first step and the losses of three truncated-BPTT steps
// (carried state, clip_grad_norm_ 1.0, Adam) match, in float64 and float32.
// Plus the pieces around them: sampling truncation, the stream batcher,
// evaluate(), the synthetic melody corpus, the forecaster's helpers.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <genai/models/rnn/char_lstm.hpp>
#include <genai/models/rnn/music.hpp>
#include <genai/models/rnn/timeseries.hpp>
#include <genai/optim/adam.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace genai;
using namespace genai::models::rnn;
using Catch::Matchers::Contains;

namespace {

const char* kFile = "rnn_models.safetensors";
Tensor fx(const std::string& name) { return genai_test::fixture(kFile, name); }

io::TensorMap with_prefix(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix, 0) == 0) m.emplace(k.substr(prefix.size()), v);
  return m;
}

struct Tol {
  double out, grad, loss;
};
Tol tol_for(Dtype dt) { return dt == kFloat64 ? Tol{1e-10, 1e-10, 1e-10} : Tol{1e-4, 2e-4, 1e-4}; }

/// Loads "<name>.w.*" into m (converted to dt first).
void load(nn::Module& m, const std::string& name, Dtype dt) {
  m.to(dt);
  m.load_state_dict(with_prefix(name + ".w."));
}

void check_grads(nn::Module& m, const std::string& name, double tol) {
  for (auto& [k, p] : m.named_parameters()) {
    INFO("parameter " << k);
    REQUIRE(p.grad().defined());
    CHECK_CLOSE(p.grad(), fx(name + ".g." + k), tol, tol);
  }
}

/// Runs three TBPTT steps with `loss_fn(step, state) -> loss` and compares with PyTorch.
template <class LossFn>
void check_training(nn::Module& m, const std::string& name, Dtype dt, LossFn loss_fn) {
  const Tol t = tol_for(dt);
  optim::Adam opt(m.parameters(), {.lr = 2e-2});
  std::vector<double> want = fx(name + ".loss").to_vector<double>();
  LSTMState state;
  for (int k = 0; k < 3; ++k) {
    INFO("step " << k);
    LSTMState s = state;
    Tensor loss = loss_fn(k, s);
    opt.zero_grad();
    loss.backward();
    if (k == 0) check_grads(m, name, t.grad);
    optim::clip_grad_norm_(m.parameters(), 1.0);
    opt.step();
    state = s.detach();
    CHECK(loss.item<double>() == Approx(want[static_cast<size_t>(k)]).epsilon(t.loss).margin(t.loss));
  }
}

}  // namespace

TEST_CASE("CharLSTM matches PyTorch: logits, gradients, three TBPTT steps", "[models][rnn][golden]") {
  for (Dtype dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    CharLSTM model({.vocab_size = 11, .n_embd = 5, .hidden_size = 7, .num_layers = 2});
    load(model, "char", dt);
    check_training(model, "char", dt, [&](int k, LSTMState& s) {
      const std::string sk = std::to_string(k);
      CharLSTM::Output o = model.forward(fx("char.x." + sk), s);
      if (k == 0) CHECK_CLOSE(o.logits, fx("char.logits"), tol_for(dt).out, tol_for(dt).out);
      s = o.state;
      return cross_entropy(reshape(o.logits, {-1, 11}), reshape(fx("char.y." + sk), {-1}));
    });
  }
}

TEST_CASE("CharLSTM train_step is the golden training step", "[models][rnn][golden]") {
  CharLSTM model({.vocab_size = 11, .n_embd = 5, .hidden_size = 7, .num_layers = 2});
  load(model, "char", kFloat64);
  optim::Adam opt(model.parameters(), {.lr = 2e-2});
  std::vector<double> want = fx("char.loss").to_vector<double>();
  LSTMState state;
  for (int k = 0; k < 3; ++k) {
    const std::string sk = std::to_string(k);
    double loss = train_step(model, opt, fx("char.x." + sk), fx("char.y." + sk), state, 1.0);
    CHECK(loss == Approx(want[static_cast<size_t>(k)]).epsilon(1e-10));
    CHECK_FALSE(state.h.requires_grad());  // detached: the TBPTT boundary
  }
}

TEST_CASE("NoteLSTM matches PyTorch", "[models][rnn][golden]") {
  for (Dtype dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    NoteLSTMConfig cfg;
    cfg.vocab.low_pitch = 60;
    cfg.vocab.high_pitch = 67;  // 8 pitches + rest = 9 tokens
    cfg.vocab.durations = {1, 2, 4, 8};
    cfg.pitch_embd = 3;
    cfg.dur_embd = 2;
    cfg.hidden_size = 6;
    cfg.num_layers = 1;
    NoteLSTM model(cfg);
    REQUIRE(cfg.vocab.n_pitch() == 9);
    load(model, "note", dt);
    check_training(model, "note", dt, [&](int k, LSTMState& s) {
      const std::string sk = std::to_string(k);
      Tensor np = fx("note.next_pitch." + sk), nd = fx("note.next_dur." + sk);
      NoteLSTM::Output o = model.forward(fx("note.pitch." + sk), fx("note.dur." + sk), np, s);
      if (k == 0) {
        CHECK_CLOSE(o.pitch_logits, fx("note.pitch_logits"), tol_for(dt).out, tol_for(dt).out);
        CHECK_CLOSE(o.dur_logits, fx("note.dur_logits"), tol_for(dt).out, tol_for(dt).out);
      }
      s = o.state;
      return add(cross_entropy(reshape(o.pitch_logits, {-1, 9}), reshape(np, {-1})),
                 cross_entropy(reshape(o.dur_logits, {-1, 4}), reshape(nd, {-1})));
    });
  }
}

TEST_CASE("note_loss on event ids is the golden loss", "[models][rnn][golden]") {
  NoteLSTMConfig cfg;
  cfg.vocab.low_pitch = 60;
  cfg.vocab.high_pitch = 67;
  cfg.vocab.durations = {1, 2, 4, 8};
  cfg.pitch_embd = 3;
  cfg.dur_embd = 2;
  cfg.hidden_size = 6;
  cfg.num_layers = 1;
  NoteLSTM model(cfg);
  load(model, "note", kFloat64);
  // event id = pitch * n_dur + dur; targets are the next events
  Tensor x = add(mul(fx("note.pitch.0"), 4.0), fx("note.dur.0")).to(kInt64);
  Tensor y = add(mul(fx("note.next_pitch.0"), 4.0), fx("note.next_dur.0")).to(kInt64);
  LSTMState st;
  CHECK(note_loss(model, x, y, st).item<double>() == Approx(fx("note.loss").to_vector<double>()[0]).epsilon(1e-10));
}

TEST_CASE("GaussianLSTM and gaussian_nll match PyTorch", "[models][rnn][golden]") {
  for (Dtype dt : {kFloat64, kFloat32}) {
    INFO(dtype_name(dt));
    GaussianLSTM model({.n_features = 3, .hidden_size = 5, .num_layers = 2});
    load(model, "gauss", dt);
    check_training(model, "gauss", dt, [&](int k, LSTMState& s) {
      const std::string sk = std::to_string(k);
      GaussianLSTM::Output o = model.forward(fx("gauss.x." + sk).to(dt), s);
      if (k == 0) {
        CHECK_CLOSE(o.mu, fx("gauss.mu"), tol_for(dt).out, tol_for(dt).out);
        CHECK_CLOSE(o.log_sigma, fx("gauss.log_sigma"), tol_for(dt).out, tol_for(dt).out);
      }
      s = o.state;
      return gaussian_nll(o.mu, o.log_sigma, fx("gauss.y." + sk).to(dt));
    });
  }
}

TEST_CASE("sampling: temperature, top-k and top-p truncation", "[models][rnn][sampling]") {
  const std::vector<double> logits = {std::log(0.1), std::log(0.2), std::log(0.4), std::log(0.3)};
  std::vector<double> p = sampling_probs(logits, {1.0, 0, 1.0});
  CHECK(p[2] == Approx(0.4));
  CHECK(p[0] == Approx(0.1));
  p = sampling_probs(logits, {1.0, 2, 1.0});  // top-2: 0.4 and 0.3, renormalized
  CHECK(p[2] == Approx(0.4 / 0.7));
  CHECK(p[3] == Approx(0.3 / 0.7));
  CHECK(p[0] == 0.0);
  CHECK(p[1] == 0.0);
  p = sampling_probs(logits, {1.0, 0, 0.65});  // 0.4 + 0.3 >= 0.65: two tokens
  CHECK(p[2] == Approx(0.4 / 0.7));
  CHECK(p[1] == 0.0);
  p = sampling_probs(logits, {1.0, 0, 0.3});  // the top token alone reaches 0.3
  CHECK(p[2] == 1.0);
  p = sampling_probs(logits, {0.0, 0, 1.0});  // greedy
  CHECK(p[2] == 1.0);
  p = sampling_probs(logits, {0.5, 0, 1.0});  // temperature 0.5 squares the odds
  CHECK(p[2] / p[3] == Approx((0.4 / 0.3) * (0.4 / 0.3)));
  // empirical frequencies follow the probabilities
  Generator g(5);
  std::vector<int> count(4, 0);
  for (int i = 0; i < 20000; ++i) ++count[static_cast<size_t>(sample_logits(logits, {1.0, 0, 1.0}, g))];
  CHECK(count[2] / 20000.0 == Approx(0.4).margin(0.02));
  CHECK(count[0] / 20000.0 == Approx(0.1).margin(0.02));
  CHECK_THROWS_WITH(sampling_probs(logits, {1.0, 0, 0.0}), Contains("top_p"));
  CHECK_THROWS_WITH(sampling_probs(logits, {-1.0, 0, 1.0}), Contains("temperature"));
}

TEST_CASE("StreamBatcher serves consecutive windows of contiguous streams", "[models][rnn]") {
  std::vector<int64_t> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
  StreamBatcher sb(tensor(v, {1000}), 4, 10, 7);
  StreamBatcher::Batch b1 = sb.next(), b2 = sb.next();
  CHECK(b1.reset);
  CHECK_FALSE(b2.reset);
  CHECK(b1.x.shape() == Shape{4, 10});
  const int64_t off = b1.x[0][0].item<int64_t>(), len = (1000 - off) / 4;
  CHECK(off < 10);
  for (int64_t s = 0; s < 4; ++s) {
    CHECK(b1.x[s][0].item<int64_t>() == off + s * len);                // stream s starts at off + s len
    CHECK(b1.y[s][9].item<int64_t>() == b1.x[s][9].item<int64_t>() + 1);  // targets: the next tokens
    CHECK(b2.x[s][0].item<int64_t>() == b1.x[s][9].item<int64_t>() + 1);  // windows follow each other
  }
  for (int64_t i = 2; i < sb.steps_per_epoch(); ++i) sb.next();
  CHECK(sb.next().reset);  // a new pass
  CHECK(sb.epoch() == 1);
  CHECK_THROWS_WITH(StreamBatcher(tensor(v, {1000}).narrow(0, 0, 30), 4, 10), Contains("too few"));
}

TEST_CASE("evaluate: a uniform model scores log(vocab) nats per character", "[models][rnn]") {
  CharLSTM model({.vocab_size = 7, .n_embd = 3, .hidden_size = 4, .num_layers = 1});
  {
    NoGradGuard ng;
    model.head->weight.zero_();
    model.head->bias.zero_();
  }
  Tensor ids = randint(0, 7, {500});
  CHECK(evaluate(model, ids, 4, 16) == Approx(std::log(7.0)).epsilon(1e-6));
  CHECK(model.is_training());  // restored
}

TEST_CASE("CharLSTM learns a repeating text, and sample() streams tokens", "[models][rnn]") {
  manual_seed(0);
  CharLSTM model({.vocab_size = 5, .n_embd = 8, .hidden_size = 32, .num_layers = 1});
  std::vector<int64_t> v;
  for (int i = 0; i < 2000; ++i) v.push_back(i % 5);  // 0 1 2 3 4 0 1 ...
  StreamBatcher sb(tensor(v, {2000}), 8, 16, 1);
  optim::Adam opt(model.parameters(), {.lr = 1e-2});
  LSTMState st;
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    StreamBatcher::Batch b = sb.next();
    if (b.reset) st = LSTMState();
    last = train_step(model, opt, b.x, b.y, st, 1.0);
    if (i == 0) first = last;
  }
  CHECK(last < 0.2 * first);
  Generator g(1);
  std::vector<int64_t> streamed;
  std::vector<int64_t> out = sample(model, {0, 1}, 8, {0.0, 0, 1.0}, g, [&](int64_t id) { streamed.push_back(id); });
  CHECK(out == streamed);
  CHECK(out == std::vector<int64_t>{2, 3, 4, 0, 1, 2, 3, 4});
}

TEST_CASE("synthetic melodies: bars of 16 sixteenths, tokens round-trip", "[models][rnn][music]") {
  Generator g(3);
  auto mels = synthetic_melodies(50, g);
  NoteVocab v;
  for (const auto& m : mels) {
    int total = 0;
    for (const auto& e : m) {
      total += e.duration;
      if (e.pitch >= 0) {
        CHECK(e.pitch >= v.low_pitch);
        CHECK(e.pitch <= v.high_pitch);
      }
      CHECK(v.event_of(v.event_id(e)) == e);  // every event is in the vocabulary
    }
    CHECK(total == 8 * 16);
  }
  Tensor ids = encode_corpus(mels, v);
  CHECK(max(ids).item<int64_t>() < v.n_events());
  auto [p, d] = split_events(ids.narrow(0, 0, 6).reshape({2, 3}), v);
  CHECK(p.shape() == Shape{2, 3});
  std::vector<io::MidiNote> notes = events_to_notes({{60, 4}, {-1, 2}, {64, 2}}, 480);
  REQUIRE(notes.size() == 2);
  CHECK(notes[1].start == 6 * 120);
  CHECK(notes[1].duration == 240);
}

TEST_CASE("forecaster helpers: seasonal naive, quantiles, features, CSV", "[models][rnn][timeseries]") {
  std::vector<double> h = {1, 2, 3, 4, 5, 6};
  CHECK(seasonal_naive(h, 5, 3) == std::vector<double>{4, 5, 6, 4, 5});
  std::vector<std::vector<double>> paths = {{1, 10}, {2, 20}, {3, 30}};
  CHECK(path_quantile(paths, 0.5) == std::vector<double>{2, 20});
  CHECK(path_quantile(paths, 0.25)[0] == Approx(1.5));
  Forecaster fc({.n_features = 3, .hidden_size = 4, .num_layers = 1}, 12);
  fc.fit_scaler({0, 1, 3, 6});  // differences 1, 2, 3
  CHECK(fc.scale_mean() == Approx(2.0));
  CHECK(fc.scale_std() == Approx(std::sqrt(2.0 / 3.0)));
  Tensor f = fc.features({0, 1, 3}, 0);
  CHECK(f.shape() == Shape{2, 3});
  CHECK(f[0][0].item<double>() == Approx((1 - 2.0) / std::sqrt(2.0 / 3.0)).epsilon(1e-6));
  CHECK(f[0][1].item<double>() == Approx(std::sin(2 * M_PI / 12)).epsilon(1e-6));
  Generator g(2);
  auto [x, y] = fc.sample_batch(synthetic_series(60, g).values, 60, 5, 10, g);
  CHECK(x.shape() == Shape{5, 10, 3});
  CHECK(y.shape() == Shape{5, 10});
  CHECK_CLOSE(y.narrow(1, 0, 9), select(x, 2, 0).narrow(1, 1, 9), 0, 0);  // y = the next z
  auto paths2 = fc.sample_paths({1, 2, 3, 4, 5}, 0, 6, 7, g);
  CHECK(paths2.size() == 7);
  CHECK(paths2[0].size() == 6);
  // a weekly CSV with a missing week and a missing month
  const std::string csv = std::filesystem::temp_directory_path() / "genai_test_monthly.csv";
  {
    std::ofstream o(csv);
    o << "date,co2\n19580105,310\n19580112,\n19580119,312\n19580302,316\n";
  }
  Series s = load_monthly_csv(csv, "test");
  REQUIRE(s.values.size() == 3);
  CHECK(s.values[0] == Approx(311));
  CHECK(s.values[1] == Approx(313.5));  // February interpolated
  CHECK(s.values[2] == Approx(316));
  CHECK(s.labels[1] == "1958-02");
  std::filesystem::remove(csv);
  CHECK_THROWS_WITH(load_monthly_csv("/nonexistent/x.csv"), Contains("cannot open"));
}
