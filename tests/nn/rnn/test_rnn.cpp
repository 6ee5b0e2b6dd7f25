// Tests of genai/ops/rnn.hpp and genai/nn/rnn.hpp: RNN (tanh, relu), LSTM and GRU
// layers and cells against PyTorch fixtures (tests/fixtures/make_rnn_fixtures.py:
// forward, input, state and weight gradients; multi-layer, bidirectional,
// batch_first, unbatched, no bias, variable lengths through packing), in float64
// and float32, on the fused and the composite paths; finite-difference gradchecks
// of the fused layer (and of its double backward); fused vs composite on random
// data; thread-count independence; bad input.
#include <genai/nn/rnn.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace genai;
using Catch::Matchers::Contains;

namespace {

const char* kFile = "rnn.safetensors";

const std::vector<std::string> kLayerCases = {
    "rnn_tanh",     "rnn_relu_2layer", "rnn_tanh_bidir_varlen", "lstm",           "lstm_2layer_bidir_bf",
    "lstm_varlen",  "lstm_varlen_bf_noh0", "lstm_nobias_t1",    "lstm_unbatched", "lstm_large_x",
    "gru",          "gru_2layer_bidir", "gru_varlen",           "gru_nobias_bf"};

Tensor fx(const std::string& name) { return genai_test::fixture(kFile, name); }
bool has(const std::string& name) { return genai_test::fixtures(kFile).count(name) > 0; }

/// The tensors "<prefix><key>" of the fixture file, keyed by <key>.
io::TensorMap with_prefix(const std::string& prefix) {
  io::TensorMap m;
  for (const auto& [k, v] : genai_test::fixtures(kFile))
    if (k.rfind(prefix, 0) == 0) m.emplace(k.substr(prefix.size()), v);
  return m;
}

Tensor leaf(const Tensor& t, Dtype dt) {
  Tensor x = t.detach().to(dt).clone();
  x.requires_grad_();
  return x;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(Dtype dt) { return dt == kFloat64 ? Tol{1e-10, 1e-11} : Tol{2e-4, 2e-5}; }

std::shared_ptr<nn::RNNBase> make_module(const std::vector<double>& p, int64_t I, int64_t H) {
  nn::RNNOptions o;
  o.num_layers = static_cast<int64_t>(p[1]);
  o.bidirectional = p[2] != 0;
  o.batch_first = p[3] != 0;
  o.bias = p[4] != 0;
  switch (static_cast<int>(p[0])) {
    case 0: return std::make_shared<nn::RNN>(I, H, o);
    case 1: o.nonlinearity = "relu"; return std::make_shared<nn::RNN>(I, H, o);
    case 2: return std::make_shared<nn::LSTM>(I, H, o);
    default: return std::make_shared<nn::GRU>(I, H, o);
  }
}

/// Runs layer case `name` through a genai module in dtype dt and compares with PyTorch.
void check_layer_case(const std::string& name, Dtype dt, bool fused, bool use_packed) {
  INFO("case " << name << ", " << dtype_name(dt) << (fused ? ", fused" : ", composite")
               << (use_packed ? ", PackedSequence" : ", lengths"));
  const std::string p = name + ".";
  std::vector<double> params = fx(p + "params").to_vector<double>();
  const bool is_lstm = params[0] == 2, has_h0 = params[5] != 0, batch_first = params[3] != 0;
  io::TensorMap w = with_prefix(p + "w.");
  const int64_t H = w.at("weight_hh_l0").size(1), I = w.at("weight_ih_l0").size(1);
  auto m = make_module(params, I, H);
  m->to(dt);  // first: load_state_dict copies into the parameters' dtype
  m->load_state_dict(w);
  m->set_fused(fused);
  Tensor x = leaf(fx(p + "x"), dt);
  Tensor h0 = has_h0 ? leaf(fx(p + "h0"), dt) : Tensor();
  Tensor c0 = has_h0 && is_lstm ? leaf(fx(p + "c0"), dt) : Tensor();
  std::vector<int64_t> lengths;
  if (has(p + "lengths")) lengths = fx(p + "lengths").to_vector<int64_t>();

  Tensor out, hn, cn;
  auto run = [&](auto& mod) {
    if (!lengths.empty() && use_packed) {
      nn::PackedSequence ps = nn::pack_padded_sequence(x, lengths, batch_first, /*enforce_sorted=*/false);
      // the packed layout matches PyTorch's
      CHECK_CLOSE(ps.packed_data(), fx(p + "packed_data"), 1e-7, 0);  // exact up to the dtype
      std::vector<int64_t> bs = ps.batch_sizes();
      CHECK(bs == fx(p + "batch_sizes").template to_vector<int64_t>());
      nn::PackedRNNOutput r;
      if constexpr (std::is_same_v<std::decay_t<decltype(mod)>, nn::LSTM>) r = mod.forward(ps, h0, c0);
      else r = mod.forward(ps, h0);
      out = nn::pad_packed_sequence(r.output, batch_first, 0.0, x.size(batch_first ? 1 : 0)).first;
      hn = r.h_n;
      cn = r.c_n;
    } else {
      nn::RNNOutput r;
      if constexpr (std::is_same_v<std::decay_t<decltype(mod)>, nn::LSTM>) r = mod.forward(x, h0, c0, lengths);
      else r = mod.forward(x, h0, lengths);
      out = r.output;
      hn = r.h_n;
      cn = r.c_n;
    }
  };
  if (auto* l = dynamic_cast<nn::LSTM*>(m.get())) run(*l);
  else if (auto* g = dynamic_cast<nn::GRU*>(m.get())) run(*g);
  else run(*dynamic_cast<nn::RNN*>(m.get()));

  const Tol t = tol_for(dt);
  CHECK(out.dtype() == dt);
  CHECK_CLOSE(out, fx(p + "out"), t.rtol, t.atol);
  CHECK_CLOSE(hn, fx(p + "hn"), t.rtol, t.atol);
  if (is_lstm) CHECK_CLOSE(cn, fx(p + "cn"), t.rtol, t.atol);
  else CHECK_FALSE(cn.defined());

  Tensor loss = sum(out * fx(p + "dout").to(dt)) + sum(hn * fx(p + "dhn").to(dt));
  if (is_lstm) loss = loss + sum(cn * fx(p + "dcn").to(dt));
  loss.backward();
  CHECK_CLOSE(x.grad(), fx(p + "dx"), t.rtol, t.atol);
  if (has_h0) CHECK_CLOSE(h0.grad(), fx(p + "dh0"), t.rtol, t.atol);
  if (has_h0 && is_lstm) CHECK_CLOSE(c0.grad(), fx(p + "dc0"), t.rtol, t.atol);
  for (auto& [k, param] : m->named_parameters()) {
    INFO("parameter " << k);
    REQUIRE(param.grad().defined());
    CHECK_CLOSE(param.grad(), fx(p + "g." + k), t.rtol, t.atol);
  }
}

}  // namespace

TEST_CASE("rnn layers match PyTorch (fused, float64 and float32)", "[rnn][fixtures]") {
  for (const auto& name : kLayerCases)
    for (Dtype dt : {kFloat64, kFloat32}) check_layer_case(name, dt, /*fused=*/true, /*use_packed=*/true);
}

TEST_CASE("rnn layers match PyTorch with lengths instead of packing", "[rnn][fixtures]") {
  for (const auto& name : kLayerCases)
    if (has(name + ".lengths")) check_layer_case(name, kFloat64, true, /*use_packed=*/false);
}

TEST_CASE("rnn layers match PyTorch on the composite (cell) path", "[rnn][fixtures]") {
  for (const auto& name : kLayerCases) check_layer_case(name, kFloat64, /*fused=*/false, true);
}

TEST_CASE("rnn layers: results do not depend on the thread count", "[rnn]") {
  const int prev = get_num_threads();
  set_num_threads(1);
  check_layer_case("lstm_varlen", kFloat32, true, true);
  check_layer_case("gru_2layer_bidir", kFloat32, true, true);
  set_num_threads(prev);
}

TEST_CASE("rnn cells match PyTorch", "[rnn][fixtures]") {
  for (const char* kind : {"rnncell_tanh", "rnncell_relu", "lstmcell", "grucell"}) {
    for (Dtype dt : {kFloat64, kFloat32}) {
      const std::string name = kind, p = name + ".";
      INFO("cell " << name << ", " << dtype_name(dt));
      io::TensorMap w = with_prefix(p + "w.");
      const int64_t H = w.at("weight_hh").size(1), I = w.at("weight_ih").size(1);
      std::shared_ptr<nn::RNNCellBase> cell;
      if (name == "lstmcell") cell = std::make_shared<nn::LSTMCell>(I, H);
      else if (name == "grucell") cell = std::make_shared<nn::GRUCell>(I, H);
      else cell = std::make_shared<nn::RNNCell>(I, H, true, name == "rnncell_relu" ? "relu" : "tanh");
      cell->to(dt);
      cell->load_state_dict(w);
      Tensor x = leaf(fx(p + "x"), dt), h0 = leaf(fx(p + "h0"), dt), c0;
      Tensor h1, c1, loss;
      if (auto* l = dynamic_cast<nn::LSTMCell*>(cell.get())) {
        c0 = leaf(fx(p + "c0"), dt);
        std::tie(h1, c1) = l->forward(x, h0, c0);
        loss = sum(h1 * fx(p + "dh").to(dt)) + sum(c1 * fx(p + "dc").to(dt));
      } else if (auto* g = dynamic_cast<nn::GRUCell*>(cell.get())) {
        h1 = g->forward(x, h0);
        loss = sum(h1 * fx(p + "dh").to(dt));
      } else {
        h1 = dynamic_cast<nn::RNNCell*>(cell.get())->forward(x, h0);
        loss = sum(h1 * fx(p + "dh").to(dt));
      }
      const Tol t = tol_for(dt);
      CHECK_CLOSE(h1, fx(p + "h1"), t.rtol, t.atol);
      if (c1.defined()) CHECK_CLOSE(c1, fx(p + "c1"), t.rtol, t.atol);
      loss.backward();
      CHECK_CLOSE(x.grad(), fx(p + "dx"), t.rtol, t.atol);
      CHECK_CLOSE(h0.grad(), fx(p + "dh0"), t.rtol, t.atol);
      if (c0.defined()) CHECK_CLOSE(c0.grad(), fx(p + "dc0"), t.rtol, t.atol);
      for (auto& [k, param] : cell->named_parameters()) {
        INFO("parameter " << k);
        CHECK_CLOSE(param.grad(), fx(p + "g." + k), t.rtol, t.atol);
      }
    }
  }
}

TEST_CASE("cells accept unbatched input and a missing state", "[rnn]") {
  manual_seed(3);
  nn::LSTMCell cell(3, 4);
  Tensor x = randn({3});
  auto [h, c] = cell.forward(x);
  CHECK(h.shape() == Shape{4});
  auto [hb, cb] = cell.forward(x.unsqueeze(0), zeros({1, 4}), zeros({1, 4}));
  CHECK_CLOSE(h, hb.squeeze(0), 0, 0);
  CHECK_CLOSE(c, cb.squeeze(0), 0, 0);
  nn::GRUCell g(3, 4);
  CHECK(g.forward(x).shape() == Shape{4});
}

namespace {

/// Random float64 operands of one layer direction.
struct LayerArgs {
  Tensor x, h0, c0, w_ih, w_hh, b_ih, b_hh;
};
LayerArgs random_layer(RNNMode mode, int64_t T, int64_t B, int64_t I, int64_t H, uint64_t seed, bool bias = true) {
  Generator g(seed);
  const int64_t G = rnn_num_gates(mode);
  auto r = [&](const Shape& s, double sc) { return leaf(randn(s, kFloat64, g) * sc, kFloat64); };
  LayerArgs a;
  a.x = r({T, B, I}, 1.0);
  a.h0 = r({B, H}, 0.5);
  if (mode == RNNMode::LSTM) a.c0 = r({B, H}, 0.5);
  a.w_ih = r({G * H, I}, 0.5);
  a.w_hh = r({G * H, H}, 0.5);
  if (bias) {
    a.b_ih = r({G * H}, 0.3);
    a.b_hh = r({G * H}, 0.3);
  }
  return a;
}

TensorList inputs_of(const LayerArgs& a) {
  TensorList v{a.x, a.h0};
  if (a.c0.defined()) v.push_back(a.c0);
  v.push_back(a.w_ih);
  v.push_back(a.w_hh);
  if (a.b_ih.defined()) {
    v.push_back(a.b_ih);
    v.push_back(a.b_hh);
  }
  return v;
}

/// A scalar-free function of the layer for gradcheck: output, h_n (and c_n) concatenated.
autograd::GradcheckFn layer_fn(RNNMode mode, std::vector<int64_t> lengths, bool reverse, bool bias, bool fused) {
  return [=](const TensorList& in) {
    size_t k = 0;
    Tensor x = in[k++], h0 = in[k++];
    Tensor c0 = mode == RNNMode::LSTM ? in[k++] : Tensor();
    Tensor w_ih = in[k++], w_hh = in[k++];
    Tensor b_ih = bias ? in[k++] : Tensor(), b_hh = bias ? in[k++] : Tensor();
    RNNLayerOutput r = fused ? rnn_layer(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse)
                             : detail::rnn_layer_composite(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse);
    TensorList parts{r.output.flatten(), r.h_n.flatten()};
    if (r.c_n.defined()) parts.push_back(r.c_n.flatten());
    return cat(parts, 0);
  };
}

}  // namespace

TEST_CASE("fused rnn_layer passes gradcheck (float64)", "[rnn][gradcheck]") {
  struct Case {
    RNNMode mode;
    std::vector<int64_t> lengths;
    bool reverse, bias;
  };
  const std::vector<Case> cases = {
      {RNNMode::RnnTanh, {}, false, true}, {RNNMode::RnnTanh, {3, 1}, true, true},
      {RNNMode::RnnRelu, {}, false, true}, {RNNMode::LSTM, {}, false, true},
      {RNNMode::LSTM, {}, true, false},    {RNNMode::LSTM, {2, 3}, false, true},
      {RNNMode::LSTM, {3, 1}, true, true}, {RNNMode::GRU, {}, false, true},
      {RNNMode::GRU, {1, 3}, true, true},  {RNNMode::GRU, {3, 2}, false, false}};
  uint64_t seed = 10;
  for (const auto& c : cases) {
    INFO(rnn_mode_name(c.mode) << " reverse=" << c.reverse << " bias=" << c.bias << " lengths=" << c.lengths.size());
    LayerArgs a = random_layer(c.mode, 3, 2, 2, 3, seed++, c.bias);
    auto res = autograd::gradcheck(layer_fn(c.mode, c.lengths, c.reverse, c.bias, true), inputs_of(a), 1e-6, 1e-7, 1e-5);
    INFO(res.message);
    CHECK(res.ok);
  }
}

TEST_CASE("fused rnn_layer double backward (create_graph) passes gradgradcheck", "[rnn][gradcheck]") {
  for (RNNMode mode : {RNNMode::LSTM, RNNMode::GRU, RNNMode::RnnTanh}) {
    INFO(rnn_mode_name(mode));
    LayerArgs a = random_layer(mode, 2, 2, 2, 2, 77);
    auto res = autograd::gradgradcheck(layer_fn(mode, {2, 1}, false, true, true), inputs_of(a), 1e-6, 1e-6, 1e-4);
    INFO(res.message);
    CHECK(res.ok);
  }
}

TEST_CASE("fused and composite rnn_layer agree on larger random data", "[rnn]") {
  for (RNNMode mode : {RNNMode::RnnTanh, RNNMode::RnnRelu, RNNMode::LSTM, RNNMode::GRU}) {
    for (bool reverse : {false, true}) {
      INFO(rnn_mode_name(mode) << " reverse=" << reverse);
      const std::vector<int64_t> lengths = {9, 4, 9, 1, 7};
      LayerArgs a = random_layer(mode, 9, 5, 6, 7, 5);
      LayerArgs b = a;
      TensorList ia = inputs_of(a), ib;
      for (auto& t : ia) ib.push_back(leaf(t, kFloat64));
      Tensor ya = layer_fn(mode, lengths, reverse, true, true)(ia);
      Tensor yb = layer_fn(mode, lengths, reverse, true, false)(ib);
      CHECK_CLOSE(ya, yb, 1e-12, 1e-12);
      Tensor gy = randn(ya.shape(), kFloat64);
      TensorList ga = autograd::grad({ya}, ia, {gy}), gb = autograd::grad({yb}, ib, {gy});
      for (size_t k = 0; k < ga.size(); ++k) CHECK_CLOSE(ga[k], gb[k], 1e-11, 1e-11);
    }
  }
}

TEST_CASE("LSTM module: dropout between layers, train and eval", "[rnn]") {
  manual_seed(1);
  nn::LSTM lstm(4, 6, {.num_layers = 3, .dropout = 0.5});
  Tensor x = randn({5, 2, 4});
  lstm.eval();
  Tensor y1 = lstm.forward(x).output, y2 = lstm.forward(x).output;
  CHECK_CLOSE(y1, y2, 0, 0);  // eval: deterministic
  lstm.train();
  Tensor y3 = lstm.forward(x).output;
  CHECK(max(abs(y3 - y1)).item<double>() > 1e-3);  // train: dropout changes the result
  // one layer: dropout is never applied (only between layers)
  nn::LSTM one(4, 6, {.dropout = 0.5});
  Tensor a = one.forward(x).output, b = one.forward(x).output;
  CHECK_CLOSE(a, b, 0, 0);
  CHECK(lstm.num_parameters() == 4 * 6 * (4 + 6) + 8 * 6 + 2 * (4 * 6 * 12 + 8 * 6));
}

TEST_CASE("rnn modules: parameter names follow PyTorch", "[rnn]") {
  nn::GRU gru(3, 4, {.num_layers = 2, .bidirectional = true});
  std::vector<std::string> names;
  for (auto& [n, p] : gru.named_parameters()) names.push_back(n);
  const std::vector<std::string> want = {
      "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
      "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
  CHECK(names == want);
  CHECK(gru.named_parameters()[8].second.shape() == Shape{12, 8});  // layer 1 takes both directions
  CHECK(gru.repr() == "GRU(3, 4, num_layers=2, bidirectional=True)");
}

TEST_CASE("rnn: bad input throws genai::Error naming the op and shapes", "[rnn][errors]") {
  nn::LSTM lstm(3, 4, {.num_layers = 2});
  CHECK_THROWS_WITH(lstm.forward(randn({5, 2, 7})), Contains("LSTM") && Contains("input_size = 3"));
  CHECK_THROWS_WITH(lstm.forward(randn({5, 4})), Contains("LSTM") && Contains("input_size"));
  CHECK_THROWS_WITH(lstm.forward(randn({2, 5, 2, 3})), Contains("3-d input"));
  CHECK_THROWS_WITH(lstm.forward(randn({5, 2, 3}), randn({1, 2, 4})), Contains("h0") && Contains("(2, 2, 4)"));
  CHECK_THROWS_WITH(lstm.forward(randn({5, 2, 3}), Tensor(), Tensor(), {5, 6}), Contains("[1, T = 5]"));
  CHECK_THROWS_WITH(lstm.forward(randn({5, 2, 3}), Tensor(), Tensor(), {5}), Contains("1 lengths for a batch of 2"));
  nn::GRU gru(3, 4);
  CHECK_THROWS_WITH(gru.forward(randn({5, 2, 3}).to(kFloat64)), Contains("dtype"));
  CHECK_THROWS_WITH(nn::pack_padded_sequence(randn({5, 3, 2}), {2, 5, 1}), Contains("decreasing"));
  CHECK_THROWS_WITH(nn::RNN(3, 4, {.nonlinearity = "gelu"}), Contains("nonlinearity"));
  CHECK_THROWS_WITH(rnn_layer(RNNMode::GRU, randn({2, 2, 3}), Tensor(), Tensor(), randn({9, 3}), randn({8, 4})),
                    Contains("rnn_layer") && Contains("w_hh"));
  CHECK_THROWS_WITH(lstm_cell(randn({2, 3}), randn({2, 4}), randn({2, 5}), randn({16, 3}), randn({16, 4})),
                    Contains("lstm_cell") && Contains("cx"));
  CHECK_THROWS_WITH(gru_cell(randn({2, 3}), randn({3, 4}), randn({12, 3}), randn({12, 4})),
                    Contains("gru_cell") && Contains("batch"));
}

TEST_CASE("rnn: empty batch and pad_packed_sequence", "[rnn]") {
  nn::LSTM lstm(3, 4);
  nn::RNNOutput r = lstm.forward(zeros({5, 0, 3}));
  CHECK(r.output.shape() == Shape{5, 0, 4});
  CHECK(r.h_n.shape() == Shape{1, 0, 4});
  Tensor x = randn({4, 2, 3});
  nn::PackedSequence ps = nn::pack_padded_sequence(x, {3, 2});
  CHECK(ps.data.size(0) == 3);  // trimmed to the longest sequence
  auto [padded, lens] = nn::pad_packed_sequence(ps, /*batch_first=*/true, -1.0, 4);
  CHECK(padded.shape() == Shape{2, 4, 3});
  CHECK(padded[1][3][0].item<double>() == -1.0);
  CHECK(padded[1][2][0].item<double>() == -1.0);
  CHECK(padded[1][1][0].item<double>() == x[1][1][0].item<double>());
  CHECK(lens.to_vector<int64_t>() == std::vector<int64_t>{3, 2});
}
