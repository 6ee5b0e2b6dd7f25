// genai/nn/rnn.hpp: recurrent modules as torch.nn (PyTorch 1.13): RNN (tanh or
// relu), LSTM and GRU layers (multi-layer, bidirectional, batch_first, dropout
// between layers, initial and final states, variable-length batches), the cells
// RNNCell, LSTMCell and GRUCell, and pack_padded_sequence / pad_packed_sequence.
//
// Parameters have PyTorch's names, shapes, order and init, so a state dict
// written by PyTorch loads: weight_ih_l{k}[_reverse] (G H, in), weight_hh_l{k}
// (G H, H), bias_ih_l{k}, bias_hh_l{k} (G H), G = 1 (RNN), 4 (LSTM: i f g o),
// 3 (GRU: r z n); all drawn from U(-1/sqrt(H), 1/sqrt(H)). Layer k > 0 takes the
// concatenated directions (num_directions H) as input.
//
// The layers run each (layer, direction) through the fused genai::rnn_layer
// (ops/rnn.hpp: one GEMM for the whole input sequence, one per step, fused gate
// math, hand-written backward through time). set_fused(false) switches a module
// to the same computation written with the differentiable cells (slower; for
// reference). Double backward works on both paths (the fused node differentiates
// the composite form when create_graph is on).
//
// Variable lengths. PackedSequence here holds the padded, time-major batch and
// the lengths (the masking equivalent of PyTorch's packed layout): the results
// are PyTorch's for pack_padded_sequence(..., enforce_sorted=False) — outputs past
// a sequence's end are 0 and h_n / c_n are the states at its last valid step (the
// first step for the reverse direction), in the original batch order.
// packed_data() and batch_sizes() give PyTorch's flat layout when needed.
// The modules also take `lengths` directly: forward(input, h0, c0, lengths).
//
// Differences from PyTorch: the states are separate arguments (h0, c0) and
// results (RNNOutput{output, h_n, c_n}) instead of tuples; no proj_size; the
// dropout masks between layers come from genai's generator.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "genai/nn/init.hpp"
#include "genai/nn/module.hpp"
#include "genai/ops/embedding.hpp"
#include "genai/ops/rnn.hpp"

namespace genai {
namespace nn {

// ---- variable-length batches ----------------------------------------------------------

/// A batch of variable-length sequences: the padded data, time-major, and the lengths.
struct PackedSequence {
  Tensor data;                   // (T, B, *) padded, time-major (T = max length)
  std::vector<int64_t> lengths;  // (B): lengths in [1, T], original batch order

  /// Number of sequences that have step t, for t = 0 .. T-1 (PyTorch's batch_sizes).
  std::vector<int64_t> batch_sizes() const {
    std::vector<int64_t> bs;
    const int64_t T = data.defined() ? data.size(0) : 0;
    for (int64_t t = 0; t < T; ++t) {
      int64_t n = 0;
      for (int64_t L : lengths) n += t < L ? 1 : 0;
      bs.push_back(n);
    }
    return bs;
  }
  /// The order of the batch by decreasing length (stable): PyTorch's sorted_indices.
  std::vector<int64_t> sorted_indices() const {
    std::vector<int64_t> idx(lengths.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      return lengths[static_cast<size_t>(a)] > lengths[static_cast<size_t>(b)];
    });
    return idx;
  }
  /// PyTorch's packed layout (sum(lengths), *): step by step, sequences by decreasing length.
  Tensor packed_data() const {
    const int64_t B = static_cast<int64_t>(lengths.size()), T = data.size(0);
    std::vector<int64_t> rows;
    std::vector<int64_t> order = sorted_indices();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b : order)
        if (t < lengths[static_cast<size_t>(b)]) rows.push_back(t * B + b);
    Shape flat = data.shape();
    flat.erase(flat.begin());
    flat[0] = T * B;
    return index_select(reshape(data, flat), 0, tensor(rows, {static_cast<int64_t>(rows.size())}));
  }
};

/// Packs a padded batch (T, B, *) (or (B, T, *) with batch_first) with the given lengths.
/// enforce_sorted: require decreasing lengths (as torch); genai does not need it.
inline PackedSequence pack_padded_sequence(const Tensor& input, const std::vector<int64_t>& lengths,
                                           bool batch_first = false, bool enforce_sorted = true) {
  GENAI_CHECK(input.defined() && input.dim() >= 2, "pack_padded_sequence: expected a padded batch (T, B, *) or "
              "(B, T, *) with batch_first, got ", input.defined() ? shape_str(input.shape()) : std::string("undefined"));
  Tensor x = batch_first ? transpose(input, 0, 1) : input;
  const int64_t T = x.size(0), B = x.size(1);
  GENAI_CHECK(static_cast<int64_t>(lengths.size()) == B, "pack_padded_sequence: got ", lengths.size(),
              " lengths for a batch of ", B, " (input ", shape_str(input.shape()), ", batch_first=", batch_first, ")");
  int64_t maxlen = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    GENAI_CHECK(lengths[i] >= 1 && lengths[i] <= T, "pack_padded_sequence: length ", lengths[i], " of sequence ", i,
                " is not in [1, ", T, "]");
    GENAI_CHECK(!enforce_sorted || i == 0 || lengths[i] <= lengths[i - 1], "pack_padded_sequence: `lengths` must be "
                "sorted in decreasing order when enforce_sorted is true; hint: pass enforce_sorted=false");
    maxlen = std::max(maxlen, lengths[i]);
  }
  return {narrow(x, 0, 0, maxlen), lengths};
}

inline PackedSequence pack_padded_sequence(const Tensor& input, const Tensor& lengths, bool batch_first = false,
                                           bool enforce_sorted = true) {
  GENAI_CHECK(lengths.defined() && lengths.dim() == 1, "pack_padded_sequence: lengths must be a 1-d tensor");
  return pack_padded_sequence(input, lengths.to(kInt64).to_vector<int64_t>(), batch_first, enforce_sorted);
}

/// Pads a PackedSequence back: (T, B, *) (or (B, T, *)) with padding_value past each
/// length, T = total_length when given (>= the longest sequence), and the lengths (int64 (B)).
inline std::pair<Tensor, Tensor> pad_packed_sequence(const PackedSequence& seq, bool batch_first = false,
                                                     double padding_value = 0.0, int64_t total_length = -1) {
  GENAI_CHECK(seq.data.defined(), "pad_packed_sequence: the sequence has no data");
  Tensor x = seq.data;
  const int64_t T = x.size(0), B = x.size(1);
  if (total_length >= 0) {
    GENAI_CHECK(total_length >= T, "pad_packed_sequence: total_length ", total_length,
                " is smaller than the longest sequence ", T);
    if (total_length > T) {
      Shape pad = x.shape();
      pad[0] = total_length - T;
      x = cat({x, zeros(pad, x.dtype())}, 0);
    }
  }
  std::vector<int64_t> valid;
  for (int64_t t = 0; t < x.size(0); ++t)
    for (int64_t b = 0; b < B; ++b) valid.push_back(t < seq.lengths[static_cast<size_t>(b)] ? 1 : 0);
  Shape ms(static_cast<size_t>(x.dim()), 1);
  ms[0] = x.size(0);
  ms[1] = B;
  Tensor m = to(tensor(valid, ms), kBool);
  x = where(m, x, padding_value);
  if (batch_first) x = transpose(x, 0, 1);
  return {x, tensor(seq.lengths, {B})};
}

// ---- layers -------------------------------------------------------------------------------

struct RNNOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;  // input and output (B, T, *) instead of (T, B, *)
  double dropout = 0.0;      // on the outputs of every layer but the last, in training
  bool bidirectional = false;
  std::string nonlinearity = "tanh";  // RNN only: "tanh" or "relu"
};

/// The result of a recurrent layer.
struct RNNOutput {
  Tensor output;  // (T, B, D H) ((B, T, D H) with batch_first; (T, D H) unbatched); D = 2 if bidirectional
  Tensor h_n;     // (num_layers D, B, H): final hidden state of every layer and direction
  Tensor c_n;     // LSTM: final cell state, same shape; undefined otherwise
};

/// The result of a recurrent layer run on a PackedSequence.
struct PackedRNNOutput {
  PackedSequence output;  // data (T, B, D H), time-major
  Tensor h_n, c_n;
};

/// Shared implementation of RNN, LSTM and GRU (as torch.nn.RNNBase).
class RNNBase : public Module {
 public:
  RNNBase(RNNMode mode, int64_t input_size, int64_t hidden_size, const RNNOptions& options)
      : mode_(mode), input_size_(input_size), hidden_size_(hidden_size), opt_(options) {
    const char* name = type_name_of(mode);
    GENAI_CHECK(input_size >= 0 && hidden_size > 0, name, ": hidden_size must be positive and input_size >= 0, got ",
                input_size, " and ", hidden_size);
    GENAI_CHECK(options.num_layers >= 1, name, ": num_layers must be >= 1, got ", options.num_layers);
    GENAI_CHECK(options.dropout >= 0.0 && options.dropout <= 1.0, name, ": dropout must be in [0, 1], got ",
                options.dropout);
    const int64_t G = rnn_num_gates(mode), D = num_directions(), H = hidden_size;
    const double bound = 1.0 / std::sqrt(static_cast<double>(H));
    for (int64_t l = 0; l < options.num_layers; ++l) {
      for (int64_t dir = 0; dir < D; ++dir) {
        const std::string sfx = "_l" + std::to_string(l) + (dir == 1 ? "_reverse" : "");
        const int64_t in = l == 0 ? input_size : D * H;
        Params p;
        p.w_ih = register_parameter("weight_ih" + sfx, empty({G * H, in}));
        p.w_hh = register_parameter("weight_hh" + sfx, empty({G * H, H}));
        if (options.bias) {
          p.b_ih = register_parameter("bias_ih" + sfx, empty({G * H}));
          p.b_hh = register_parameter("bias_hh" + sfx, empty({G * H}));
        }
        params_.push_back(p);
      }
    }
    // torch's reset_parameters: every weight U(-1/sqrt(H), 1/sqrt(H)), in registration order
    for (auto& p : parameters()) init::uniform_(p, -bound, bound);
  }

  std::string type_name() const override { return type_name_of(mode_); }
  std::string extra_repr() const override {
    std::string s = std::to_string(input_size_) + ", " + std::to_string(hidden_size_);
    if (opt_.num_layers != 1) s += ", num_layers=" + std::to_string(opt_.num_layers);
    if (!opt_.bias) s += ", bias=False";
    if (opt_.batch_first) s += ", batch_first=True";
    if (opt_.dropout != 0) s += ", dropout=" + std::to_string(opt_.dropout);
    if (opt_.bidirectional) s += ", bidirectional=True";
    if (mode_ == RNNMode::RnnRelu) s += ", nonlinearity='relu'";
    return s;
  }

  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int64_t num_layers() const { return opt_.num_layers; }
  int64_t num_directions() const { return opt_.bidirectional ? 2 : 1; }
  const RNNOptions& options() const { return opt_; }
  RNNMode mode() const { return mode_; }
  /// Fused kernels (default) or the composite form built from the cells.
  void set_fused(bool on) { fused_ = on; }
  bool fused() const { return fused_; }

 protected:
  /// input (T, B, I) / (B, T, I) / (T, I); h0, c0 (L D, B, H) / (L D, H) or undefined.
  RNNOutput run(const Tensor& input, const Tensor& h0, const Tensor& c0, const std::vector<int64_t>& lengths) {
    return run(input, h0, c0, lengths, opt_.batch_first);
  }
  RNNOutput run(const Tensor& input, const Tensor& h0, const Tensor& c0, const std::vector<int64_t>& lengths,
                bool batch_first) {
    const char* name = type_name_of(mode_);
    GENAI_CHECK(input.defined(), name, ": the input is undefined");
    GENAI_CHECK(input.dim() == 2 || input.dim() == 3, name, ": expected a 3-d input (", batch_first ?
                "B, T, input_size" : "T, B, input_size", ") or a 2-d unbatched input (T, input_size), got ",
                shape_str(input.shape()));
    const bool unbatched = input.dim() == 2;
    GENAI_CHECK(input.size(-1) == input_size_, name, ": input ", shape_str(input.shape()), " has ", input.size(-1),
                " features, expected input_size = ", input_size_);
    Tensor x = unbatched ? unsqueeze(input, 1) : (batch_first ? transpose(input, 0, 1) : input);  // (T, B, I)
    const int64_t B = x.size(1), L = opt_.num_layers, D = num_directions(), H = hidden_size_;
    GENAI_CHECK(!unbatched || lengths.empty(), name, ": lengths need a batched input");
    auto state = [&](const Tensor& s, const char* what) -> Tensor {
      if (!s.defined()) return s;
      const Shape want = unbatched ? Shape{L * D, H} : Shape{L * D, B, H};
      GENAI_CHECK(s.shape() == want, name, ": expected ", what, " of shape ", shape_str(want), ", got ",
                  shape_str(s.shape()), " (input ", shape_str(input.shape()), ")");
      return unbatched ? unsqueeze(s, 1) : s;
    };
    Tensor h0b = state(h0, "h0"), c0b = state(c0, "c0");
    GENAI_CHECK(!c0b.defined() || mode_ == RNNMode::LSTM, name, ": only an LSTM takes a cell state c0");
    TensorList hs, cs;
    for (int64_t l = 0; l < L; ++l) {
      TensorList outs;
      for (int64_t dir = 0; dir < D; ++dir) {
        const int64_t k = l * D + dir;
        const Params& p = params_[static_cast<size_t>(k)];
        Tensor hk = h0b.defined() ? select(h0b, 0, k) : Tensor();
        Tensor ck = c0b.defined() ? select(c0b, 0, k) : Tensor();
        RNNLayerOutput r = fused_ ? rnn_layer(mode_, x, hk, ck, p.w_ih, p.w_hh, p.b_ih, p.b_hh, lengths, dir == 1)
                                  : genai::detail::rnn_layer_composite(mode_, x, hk, ck, p.w_ih, p.w_hh, p.b_ih, p.b_hh,
                                                                lengths, dir == 1);
        outs.push_back(r.output);
        hs.push_back(r.h_n);
        if (r.c_n.defined()) cs.push_back(r.c_n);
      }
      x = D == 1 ? outs[0] : cat(outs, 2);  // (T, B, D H)
      if (l + 1 < L && opt_.dropout > 0 && is_training()) x = dropout(x, opt_.dropout, true);
    }
    RNNOutput res;
    res.h_n = stack(hs, 0);  // (L D, B, H)
    if (!cs.empty()) res.c_n = stack(cs, 0);
    if (unbatched) {
      res.output = squeeze(x, 1);
      res.h_n = squeeze(res.h_n, 1);
      if (res.c_n.defined()) res.c_n = squeeze(res.c_n, 1);
    } else {
      res.output = batch_first ? transpose(x, 0, 1) : x;
    }
    return res;
  }

  PackedRNNOutput run_packed(const PackedSequence& seq, const Tensor& h0, const Tensor& c0) {
    GENAI_CHECK(seq.data.defined() && seq.data.dim() == 3, type_name_of(mode_),
                ": a PackedSequence needs data of shape (T, B, input_size)");
    RNNOutput r = run(seq.data, h0, c0, seq.lengths, /*batch_first=*/false);  // packed data is time-major
    return {{r.output, seq.lengths}, r.h_n, r.c_n};
  }

 private:
  static const char* type_name_of(RNNMode m) {
    return m == RNNMode::LSTM ? "LSTM" : (m == RNNMode::GRU ? "GRU" : "RNN");
  }
  struct Params {
    Tensor w_ih, w_hh, b_ih, b_hh;
  };
  RNNMode mode_;
  int64_t input_size_, hidden_size_;
  RNNOptions opt_;
  std::vector<Params> params_;  // per (layer, direction)
  bool fused_ = true;
};

/// Elman RNN, h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh) (as torch.nn.RNN).
class RNN : public RNNBase {
 public:
  RNN(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {})
      : RNNBase(mode_of(options.nonlinearity), input_size, hidden_size, options) {}
  /// input (T, B, I) (or (B, T, I) with batch_first, or (T, I)); h0 (L D, B, H) or undefined (zeros).
  RNNOutput forward(const Tensor& input, const Tensor& h0 = Tensor(), const std::vector<int64_t>& lengths = {}) {
    return run(input, h0, Tensor(), lengths);
  }
  PackedRNNOutput forward(const PackedSequence& input, const Tensor& h0 = Tensor()) {
    return run_packed(input, h0, Tensor());
  }

 private:
  static RNNMode mode_of(const std::string& nl) {
    GENAI_CHECK(nl == "tanh" || nl == "relu", "RNN: unknown nonlinearity '", nl, "' (expected \"tanh\" or \"relu\")");
    return nl == "tanh" ? RNNMode::RnnTanh : RNNMode::RnnRelu;
  }
};

/// Long short-term memory (as torch.nn.LSTM, without proj_size).
class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {})
      : RNNBase(RNNMode::LSTM, input_size, hidden_size, options) {}
  /// input (T, B, I) (or (B, T, I) with batch_first, or (T, I)); h0, c0 (L D, B, H) or undefined (zeros).
  RNNOutput forward(const Tensor& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                    const std::vector<int64_t>& lengths = {}) {
    return run(input, h0, c0, lengths);
  }
  PackedRNNOutput forward(const PackedSequence& input, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor()) {
    return run_packed(input, h0, c0);
  }
};

/// Gated recurrent unit (as torch.nn.GRU).
class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RNNOptions& options = {})
      : RNNBase(RNNMode::GRU, input_size, hidden_size, options) {}
  RNNOutput forward(const Tensor& input, const Tensor& h0 = Tensor(), const std::vector<int64_t>& lengths = {}) {
    return run(input, h0, Tensor(), lengths);
  }
  PackedRNNOutput forward(const PackedSequence& input, const Tensor& h0 = Tensor()) {
    return run_packed(input, h0, Tensor());
  }
};

// ---- cells ----------------------------------------------------------------------------------

/// Shared parameters of the cells: weight_ih (G H, I), weight_hh (G H, H), bias_ih, bias_hh (G H).
class RNNCellBase : public Module {
 public:
  RNNCellBase(const char* name, int64_t gates, int64_t input_size, int64_t hidden_size, bool bias)
      : name_(name), input_size_(input_size), hidden_size_(hidden_size) {
    GENAI_CHECK(input_size >= 0 && hidden_size > 0, name, ": hidden_size must be positive and input_size >= 0, got ",
                input_size, " and ", hidden_size);
    weight_ih = register_parameter("weight_ih", empty({gates * hidden_size, input_size}));
    weight_hh = register_parameter("weight_hh", empty({gates * hidden_size, hidden_size}));
    if (bias) {
      bias_ih = register_parameter("bias_ih", empty({gates * hidden_size}));
      bias_hh = register_parameter("bias_hh", empty({gates * hidden_size}));
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    for (auto& p : parameters()) init::uniform_(p, -bound, bound);
  }
  std::string type_name() const override { return name_; }
  std::string extra_repr() const override {
    return std::to_string(input_size_) + ", " + std::to_string(hidden_size_) + (bias_ih.defined() ? "" : ", bias=False");
  }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }

  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 protected:
  /// input (B, I) or (I); a state (B, H) / (H) or undefined (zeros). Returns the batched
  /// input and state and whether the call was unbatched.
  std::tuple<Tensor, Tensor, bool> batched(const Tensor& input, const Tensor& hx) const {
    GENAI_CHECK(input.defined() && (input.dim() == 1 || input.dim() == 2), name_,
                ": expected an input (B, input_size) or (input_size), got ",
                input.defined() ? shape_str(input.shape()) : std::string("undefined"));
    const bool unb = input.dim() == 1;
    Tensor x = unb ? unsqueeze(input, 0) : input;
    Tensor h = hx.defined() ? (unb ? unsqueeze(hx, 0) : hx) : zeros({x.size(0), hidden_size_}, x.dtype());
    return {x, h, unb};
  }

 private:
  const char* name_;
  int64_t input_size_, hidden_size_;
};

/// An Elman RNN cell (as torch.nn.RNNCell): input (B, I), hx (B, H) -> h' (B, H).
class RNNCell : public RNNCellBase {
 public:
  RNNCell(int64_t input_size, int64_t hidden_size, bool bias = true, const std::string& nonlinearity = "tanh")
      : RNNCellBase("RNNCell", 1, input_size, hidden_size, bias), relu_(nonlinearity == "relu") {
    GENAI_CHECK(nonlinearity == "tanh" || nonlinearity == "relu", "RNNCell: unknown nonlinearity '", nonlinearity,
                "' (expected \"tanh\" or \"relu\")");
  }
  Tensor forward(const Tensor& input, const Tensor& hx = Tensor()) {
    auto [x, h, unb] = batched(input, hx);
    Tensor r = relu_ ? rnn_relu_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
                     : rnn_tanh_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh);
    return unb ? squeeze(r, 0) : r;
  }

 private:
  bool relu_;
};

/// An LSTM cell (as torch.nn.LSTMCell): input (B, I), hx, cx (B, H) -> (h', c').
class LSTMCell : public RNNCellBase {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true)
      : RNNCellBase("LSTMCell", 4, input_size, hidden_size, bias) {}
  std::pair<Tensor, Tensor> forward(const Tensor& input, const Tensor& hx = Tensor(), const Tensor& cx = Tensor()) {
    auto [x, h, unb] = batched(input, hx);
    Tensor c = cx.defined() ? (unb ? unsqueeze(cx, 0) : cx) : zeros_like(h);
    auto [h1, c1] = lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh);
    if (unb) return {squeeze(h1, 0), squeeze(c1, 0)};
    return {h1, c1};
  }
};

/// A GRU cell (as torch.nn.GRUCell): input (B, I), hx (B, H) -> h' (B, H).
class GRUCell : public RNNCellBase {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true)
      : RNNCellBase("GRUCell", 3, input_size, hidden_size, bias) {}
  Tensor forward(const Tensor& input, const Tensor& hx = Tensor()) {
    auto [x, h, unb] = batched(input, hx);
    Tensor r = gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh);
    return unb ? squeeze(r, 0) : r;
  }
};

}  // namespace nn
}  // namespace genai
