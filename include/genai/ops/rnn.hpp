// genai/ops/rnn.hpp: recurrent cells and fused recurrent layers (Elman RNN with
// tanh or relu, LSTM, GRU), with a hand-written backward through time.
//
// Cells (rnn_tanh_cell, rnn_relu_cell, lstm_cell, gru_cell) are as torch's
// functional cells (torch.rnn_tanh_cell, torch.lstm_cell, torch.gru_cell), one
// time step written with differentiable ops, so any order of derivative works.
// Gate layouts and equations are PyTorch's (nn.LSTM / nn.GRU documentation):
//   RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
//   LSTM: [i, f, g, o] = split(W_ih x + b_ih + W_hh h + b_hh, 4)      (gates stacked in rows)
//         c' = sigmoid(f) c + sigmoid(i) tanh(g),  h' = sigmoid(o) tanh(c')
//   GRU:  [r, z] = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
//         n = tanh(W_in x + b_in + r (W_hn h + b_hn)),  h' = (1 - z) n + z h
//
// rnn_layer runs one direction of one layer over a whole sequence as one graph
// node (the scheme of cuDNN and of PyTorch's CPU LSTM):
//  - forward: one GEMM for the input projections of all time steps
//    (T B x I) x (I x G H), then per step one GEMM for the recurrence
//    (B x H) x (H x G H) and the gate math fused in raw loops (vectorized
//    sigmoid/tanh through the elementwise kernels). The post-activation gates,
//    the states before each step (and for LSTM c_{t-1} and tanh(c_t), for GRU
//    W_hn h + b_hn) are kept for backward.
//  - backward through time: per step the gate derivatives in raw loops and one
//    GEMM (B x G H) x (G H x H) for dh_{t-1}; then the weight gradients as two
//    large GEMMs over all steps (dW_ih = dG^T X, dW_hh = dG^T H_prev), the
//    bias gradients as column sums, and dX = dG W_ih as one GEMM.
// Variable lengths: `lengths` (B values in [1, T]) gives each batch element its
// own sequence length, with PyTorch's packed-sequence semantics: steps
// t >= lengths[b] leave that element's state unchanged and output zeros, so the
// final state is the state after its last valid step (forward direction) or
// after step 0 (reverse direction, which starts at lengths[b] - 1).
//
// Double backward: the fused node's own backward is a raw-loop kernel when grad
// mode is off (the usual case). With create_graph it recomputes the layer with
// the differentiable cells (detail::rnn_layer_composite) and differentiates
// that, so gradients of gradients are correct too, at the composite's speed.
//
// Differences from PyTorch: rnn_layer is an internal building block (PyTorch's
// equivalent is the private _VF.lstm / _VF.gru); it takes a time-major input
// (T, B, I) and lengths as a vector instead of a PackedSequence (nn/rnn.hpp
// provides the PyTorch-style modules and packing). No proj_size (LSTM
// projections).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "genai/kernels/gemm.hpp"
#include "genai/ops/all.hpp"

namespace genai {

/// The recurrence of a layer (cuDNN's and PyTorch's mode names).
enum class RNNMode { RnnTanh, RnnRelu, LSTM, GRU };

/// Number of stacked gates in W_ih / W_hh (rows = gates * hidden_size).
inline int64_t rnn_num_gates(RNNMode m) { return m == RNNMode::LSTM ? 4 : (m == RNNMode::GRU ? 3 : 1); }

inline const char* rnn_mode_name(RNNMode m) {
  switch (m) {
    case RNNMode::RnnTanh: return "RNN_TANH";
    case RNNMode::RnnRelu: return "RNN_RELU";
    case RNNMode::LSTM: return "LSTM";
    case RNNMode::GRU: return "GRU";
  }
  return "?";
}

// ---- cells: one step, differentiable ops ---------------------------------------------

namespace detail {

/// Checks the operands of a cell: input (B, I), hx (B, H), w_ih (G H, I), w_hh (G H, H), biases (G H).
inline void rnn_cell_check(const char* op, int64_t gates, const Tensor& input, const Tensor& hx, const Tensor& w_ih,
                           const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  check_defined(input, op, "input");
  check_defined(hx, op, "hx");
  check_defined(w_ih, op, "w_ih");
  check_defined(w_hh, op, "w_hh");
  GENAI_CHECK(input.dim() == 2 && hx.dim() == 2, op, ": expected input (B, input_size) and hx (B, hidden_size), got ",
              shape_str(input.shape()), " and ", shape_str(hx.shape()),
              "; hint: add a batch dimension with unsqueeze(0)");
  const int64_t H = hx.size(1);
  GENAI_CHECK(w_ih.dim() == 2 && w_ih.size(0) == gates * H && w_ih.size(1) == input.size(1), op, ": w_ih ",
              shape_str(w_ih.shape()), " should be (", gates * H, ", ", input.size(1), ") for input ",
              shape_str(input.shape()), " and hx ", shape_str(hx.shape()));
  GENAI_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * H && w_hh.size(1) == H, op, ": w_hh ",
              shape_str(w_hh.shape()), " should be (", gates * H, ", ", H, ") for hx ", shape_str(hx.shape()));
  GENAI_CHECK(input.size(0) == hx.size(0), op, ": input ", shape_str(input.shape()), " and hx ",
              shape_str(hx.shape()), " have different batch sizes");
  for (const Tensor* b : {&b_ih, &b_hh})
    GENAI_CHECK(!b->defined() || (b->dim() == 1 && b->size(0) == gates * H), op, ": bias ", shape_str(b->shape()),
                " should be (", gates * H, ")");
}

inline Tensor rnn_simple_cell(const char* op, bool relu_act, const Tensor& input, const Tensor& hx,
                              const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  rnn_cell_check(op, 1, input, hx, w_ih, w_hh, b_ih, b_hh);
  Tensor pre = add(linear(input, w_ih, b_ih), linear(hx, w_hh, b_hh));  // (B, H)
  return relu_act ? relu(pre) : tanh(pre);
}

}  // namespace detail

/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh); input (B, I), hx (B, H) -> (B, H).
inline Tensor rnn_tanh_cell(const Tensor& input, const Tensor& hx, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor()) {
  return detail::rnn_simple_cell("rnn_tanh_cell", false, input, hx, w_ih, w_hh, b_ih, b_hh);
}

/// h' = relu(W_ih x + b_ih + W_hh h + b_hh); input (B, I), hx (B, H) -> (B, H).
inline Tensor rnn_relu_cell(const Tensor& input, const Tensor& hx, const Tensor& w_ih, const Tensor& w_hh,
                            const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor()) {
  return detail::rnn_simple_cell("rnn_relu_cell", true, input, hx, w_ih, w_hh, b_ih, b_hh);
}

/// One LSTM step: input (B, I), hx and cx (B, H), w_ih (4H, I), w_hh (4H, H) ->
/// (h', c'), each (B, H). Gates in PyTorch's order i, f, g, o.
inline std::pair<Tensor, Tensor> lstm_cell(const Tensor& input, const Tensor& hx, const Tensor& cx,
                                           const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih = Tensor(),
                                           const Tensor& b_hh = Tensor()) {
  detail::rnn_cell_check("lstm_cell", 4, input, hx, w_ih, w_hh, b_ih, b_hh);
  detail::check_defined(cx, "lstm_cell", "cx");
  GENAI_CHECK(cx.shape() == hx.shape(), "lstm_cell: cx ", shape_str(cx.shape()), " must have the shape of hx ",
              shape_str(hx.shape()));
  Tensor gates = add(linear(input, w_ih, b_ih), linear(hx, w_hh, b_hh));  // (B, 4H)
  TensorList q = chunk(gates, 4, 1);                                       // i, f, g, o: (B, H) each
  Tensor i = sigmoid(q[0]), f = sigmoid(q[1]), g = tanh(q[2]), o = sigmoid(q[3]);
  Tensor c = add(mul(f, cx), mul(i, g));  // c' = f c + i g
  Tensor h = mul(o, tanh(c));             // h' = o tanh(c')
  return {h, c};
}

/// One GRU step: input (B, I), hx (B, H), w_ih (3H, I), w_hh (3H, H) -> h' (B, H).
/// Gates in PyTorch's order r, z, n.
inline Tensor gru_cell(const Tensor& input, const Tensor& hx, const Tensor& w_ih, const Tensor& w_hh,
                       const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor()) {
  detail::rnn_cell_check("gru_cell", 3, input, hx, w_ih, w_hh, b_ih, b_hh);
  TensorList gi = chunk(linear(input, w_ih, b_ih), 3, 1);  // x side: r, z, n (B, H) each
  TensorList gh = chunk(linear(hx, w_hh, b_hh), 3, 1);     // h side
  Tensor r = sigmoid(add(gi[0], gh[0]));
  Tensor z = sigmoid(add(gi[1], gh[1]));
  Tensor n = tanh(add(gi[2], mul(r, gh[2])));
  return add(n, mul(z, sub(hx, n)));  // h' = (1 - z) n + z h = n + z (h - n)
}

// ---- layer over a sequence -----------------------------------------------------------

/// Output of one direction of one recurrent layer.
struct RNNLayerOutput {
  Tensor output;  // (T, B, H): the hidden state after every step (0 past an element's length)
  Tensor h_n;     // (B, H): the final hidden state
  Tensor c_n;     // (B, H): the final cell state (LSTM only, else undefined)
};

namespace detail {

/// Checks rnn_layer's operands; returns {T, B, I, H}.
inline std::vector<int64_t> rnn_layer_check(RNNMode mode, const Tensor& input, const Tensor& h0, const Tensor& c0,
                                            const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                            const Tensor& b_hh, const std::vector<int64_t>& lengths) {
  const char* op = "rnn_layer";
  check_defined(input, op, "input");
  check_defined(w_ih, op, "w_ih");
  check_defined(w_hh, op, "w_hh");
  GENAI_CHECK(input.dim() == 3, op, " (", rnn_mode_name(mode), "): expected a time-major input (T, B, input_size), got ",
              shape_str(input.shape()), "; hint: the nn modules accept batch_first and unbatched inputs");
  GENAI_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  const int64_t T = input.size(0), B = input.size(1), I = input.size(2);
  const int64_t G = rnn_num_gates(mode);
  GENAI_CHECK(w_hh.dim() == 2 && w_hh.size(0) % G == 0 && w_hh.size(1) * G == w_hh.size(0), op, " (",
              rnn_mode_name(mode), "): w_hh must be (", G, " hidden_size, hidden_size), got ", shape_str(w_hh.shape()));
  const int64_t H = w_hh.size(1);
  GENAI_CHECK(w_ih.dim() == 2 && w_ih.size(0) == G * H && w_ih.size(1) == I, op, " (", rnn_mode_name(mode),
              "): w_ih ", shape_str(w_ih.shape()), " should be (", G * H, ", ", I, ") for input ",
              shape_str(input.shape()), " and hidden_size ", H);
  for (const Tensor* b : {&b_ih, &b_hh})
    GENAI_CHECK(!b->defined() || (b->dim() == 1 && b->size(0) == G * H), op, ": bias ", shape_str(b->shape()),
                " should be (", G * H, ")");
  for (const Tensor* s : {&h0, &c0})
    GENAI_CHECK(!s->defined() || s->shape() == Shape({B, H}), op, " (", rnn_mode_name(mode), "): initial state ",
                shape_str(s->shape()), " should be (", B, ", ", H, ") for input ", shape_str(input.shape()));
  GENAI_CHECK(!c0.defined() || mode == RNNMode::LSTM, op, ": only an LSTM has a cell state c0");
  const Tensor* all[] = {&h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh};
  for (const Tensor* t : all)
    GENAI_CHECK(!t->defined() || t->dtype() == input.dtype(), op, ": all operands must have the input's dtype ",
                dtype_name(input.dtype()), ", got a ", dtype_name(t->dtype()), " tensor of shape ",
                shape_str(t->shape()));
  if (!lengths.empty()) {
    GENAI_CHECK(static_cast<int64_t>(lengths.size()) == B, op, ": got ", lengths.size(), " lengths for a batch of ", B);
    for (int64_t L : lengths)
      GENAI_CHECK(L >= 1 && L <= T, op, ": every length must be in [1, T = ", T, "], got ", L);
  }
  return {T, B, I, H};
}

/// The layer written with the differentiable cells (reference for the fused kernel,
/// and the create_graph path of its backward).
inline RNNLayerOutput rnn_layer_composite(RNNMode mode, const Tensor& input, const Tensor& h0, const Tensor& c0,
                                          const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                          const Tensor& b_hh, const std::vector<int64_t>& lengths, bool reverse) {
  std::vector<int64_t> d = rnn_layer_check(mode, input, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths);
  const int64_t T = d[0], B = d[1], H = d[3];
  Tensor h = h0.defined() ? h0 : zeros({B, H}, input.dtype());
  Tensor c = mode == RNNMode::LSTM ? (c0.defined() ? c0 : zeros({B, H}, input.dtype())) : Tensor();
  TensorList outs(static_cast<size_t>(T));
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    Tensor x = select(input, 0, t);  // (B, I)
    Tensor hn, cn;
    switch (mode) {
      case RNNMode::RnnTanh: hn = rnn_tanh_cell(x, h, w_ih, w_hh, b_ih, b_hh); break;
      case RNNMode::RnnRelu: hn = rnn_relu_cell(x, h, w_ih, w_hh, b_ih, b_hh); break;
      case RNNMode::LSTM: std::tie(hn, cn) = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh); break;
      case RNNMode::GRU: hn = gru_cell(x, h, w_ih, w_hh, b_ih, b_hh); break;
    }
    if (lengths.empty()) {
      h = hn;
      c = cn;
      outs[static_cast<size_t>(t)] = hn;
    } else {
      std::vector<int64_t> valid(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) valid[static_cast<size_t>(b)] = t < lengths[static_cast<size_t>(b)] ? 1 : 0;
      Tensor m = to(tensor(valid, {B, 1}), kBool);  // (B, 1): step t is inside element b's sequence
      h = where(m, hn, h);                          // past the end the state is carried unchanged
      if (cn.defined()) c = where(m, cn, c);
      outs[static_cast<size_t>(t)] = where(m, hn, 0.0);  // and the output is 0
    }
  }
  Tensor out = T > 0 ? stack(outs, 0) : zeros({0, B, H}, input.dtype());
  return {out, h, c};
}

// ---- fused kernels ---------------------------------------------------------------------

/// In place: p[0, n) = sigmoid / tanh / relu of itself (vectorized for float).
template <class T>
inline void rnn_act(kernels::UnaryOp op, T* p, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    kernels::detail::unary_f32(op, p, p, n, 0.f, 0.f);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = kernels::detail::unary_scalar<T>(op, p[i], T(0), T(0));
  }
}

/// dst (cols, rows) = src (rows, cols)^T, both row-major.
template <class T>
inline void rnn_transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += 32)
    for (int64_t c0 = 0; c0 < cols; c0 += 32)
      for (int64_t r = r0; r < std::min(rows, r0 + 32); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + 32); ++c) dst[c * rows + r] = src[r * cols + c];
}

/// Rows per parallel chunk of the per-step gate loops (about 8K elements each).
inline int64_t rnn_row_grain(int64_t H) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(H, 1)); }

struct RnnDims {
  RNNMode mode;
  int64_t T, B, I, H;
  bool reverse;
  const int64_t* len;  // (B) or nullptr: all T
  bool valid(int64_t t, int64_t b) const { return len == nullptr || t < len[b]; }
};

/// Forward of one layer direction. gates (T, B, G H): post-activation gates (for
/// RNN: the new state); hprev (T, B, H): state before each step; aux: LSTM
/// (2, T, B, H) = c_{t-1} and tanh(c_t); GRU (T, B, H) = W_hn h + b_hn.
template <class T>
inline void rnn_forward_kernel(const RnnDims& d, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                               const T* b_ih, const T* b_hh, T* out, T* hn, T* cn, T* gates, T* hprev, T* aux) {
  using kernels::UnaryOp;
  const int64_t Tn = d.T, B = d.B, I = d.I, H = d.H, G = rnn_num_gates(d.mode), GH = G * H;
  const bool lstm = d.mode == RNNMode::LSTM, gru = d.mode == RNNMode::GRU;
  std::vector<T> wih_t(static_cast<size_t>(I * GH)), whh_t(static_cast<size_t>(H * GH));
  rnn_transpose(w_ih, GH, I, wih_t.data());  // (I, G H)
  rnn_transpose(w_hh, GH, H, whh_t.data());  // (H, G H)
  // input projections of every step at once: gates (T B, G H) = X W_ih^T + b_ih (+ b_hh)
  kernels::gemm<T>(Tn * B, GH, I, x, I, 1, wih_t.data(), GH, 1, gates, GH);
  std::vector<T> bias(static_cast<size_t>(GH), T(0));
  for (int64_t j = 0; j < GH; ++j) {
    if (b_ih) bias[static_cast<size_t>(j)] += b_ih[j];
    // GRU: b_hr, b_hz add to the pre-activations like b_ih; b_hn stays inside r (W_hn h + b_hn)
    if (b_hh && (!gru || j < 2 * H)) bias[static_cast<size_t>(j)] += b_hh[j];
  }
  parallel_for(0, Tn * B, std::max<int64_t>(1, 32768 / std::max<int64_t>(GH, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* g = gates + r * GH;
      for (int64_t j = 0; j < GH; ++j) g[j] += bias[static_cast<size_t>(j)];
    }
  });
  std::vector<T> h(static_cast<size_t>(B * H), T(0)), c(lstm ? static_cast<size_t>(B * H) : 0, T(0));
  std::vector<T> gh(gru ? static_cast<size_t>(B * GH) : 0);
  if (h0) std::copy(h0, h0 + B * H, h.begin());
  if (lstm && c0) std::copy(c0, c0 + B * H, c.begin());
  T* cprev = lstm ? aux : nullptr;
  T* tanhc = lstm ? aux + Tn * B * H : nullptr;
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t t = d.reverse ? Tn - 1 - s : s;
    T* gt = gates + t * B * GH;  // (B, G H)
    std::copy(h.begin(), h.end(), hprev + t * B * H);
    if (gru) {
      // gh (B, 3H) = h W_hh^T: the h side stays separate (n needs r * (W_hn h + b_hn))
      kernels::gemm<T>(B, GH, H, h.data(), H, 1, whh_t.data(), GH, 1, gh.data(), GH);
    } else {
      kernels::gemm<T>(B, GH, H, h.data(), H, 1, whh_t.data(), GH, 1, gt, GH, /*accumulate=*/true);
    }
    parallel_for(0, B, rnn_row_grain(GH), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        T* o = out + (t * B + b) * H;
        T* hb = h.data() + b * H;
        T* g = gt + b * GH;
        if (!d.valid(t, b)) {  // past this element's end: state carried, output 0
          std::fill(o, o + H, T(0));
          continue;
        }
        switch (d.mode) {
          case RNNMode::RnnTanh:
          case RNNMode::RnnRelu:
            rnn_act<T>(d.mode == RNNMode::RnnTanh ? UnaryOp::Tanh : UnaryOp::Relu, g, H);  // h' = act(pre)
            std::copy(g, g + H, hb);
            std::copy(g, g + H, o);
            break;
          case RNNMode::LSTM: {
            rnn_act<T>(UnaryOp::Sigmoid, g, 2 * H);      // i, f
            rnn_act<T>(UnaryOp::Tanh, g + 2 * H, H);     // g
            rnn_act<T>(UnaryOp::Sigmoid, g + 3 * H, H);  // o
            T* cb = c.data() + b * H;
            T* cp = cprev + (t * B + b) * H;
            T* tc = tanhc + (t * B + b) * H;
            for (int64_t j = 0; j < H; ++j) {
              cp[j] = cb[j];
              cb[j] = g[H + j] * cb[j] + g[j] * g[2 * H + j];  // c' = f c + i g
              tc[j] = cb[j];
            }
            rnn_act<T>(UnaryOp::Tanh, tc, H);
            for (int64_t j = 0; j < H; ++j) o[j] = hb[j] = g[3 * H + j] * tc[j];  // h' = o tanh(c')
            break;
          }
          case RNNMode::GRU: {
            const T* ghb = gh.data() + b * GH;
            T* hnb = aux + (t * B + b) * H;
            for (int64_t j = 0; j < 2 * H; ++j) g[j] += ghb[j];  // r, z pre-activations
            rnn_act<T>(UnaryOp::Sigmoid, g, 2 * H);
            for (int64_t j = 0; j < H; ++j) {
              hnb[j] = ghb[2 * H + j] + (b_hh ? b_hh[2 * H + j] : T(0));  // W_hn h + b_hn
              g[2 * H + j] += g[j] * hnb[j];                            // n pre-activation
            }
            rnn_act<T>(UnaryOp::Tanh, g + 2 * H, H);
            for (int64_t j = 0; j < H; ++j) {
              const T n = g[2 * H + j];
              o[j] = hb[j] = n + g[H + j] * (hb[j] - n);  // h' = (1 - z) n + z h
            }
            break;
          }
        }
      }
    });
  }
  std::copy(h.begin(), h.end(), hn);
  if (lstm) std::copy(c.begin(), c.end(), cn);
}

/// Pointers for rnn_backward_kernel; outputs are written (not accumulated), null when not wanted.
template <class T>
struct RnnGrads {
  T *dx = nullptr, *dh0 = nullptr, *dc0 = nullptr, *dw_ih = nullptr, *dw_hh = nullptr, *db_ih = nullptr,
    *db_hh = nullptr;
};

/// Backward through time of rnn_forward_kernel. dout (T, B, H), dhn, dcn (B, H) may be null (zero).
template <class T>
inline void rnn_backward_kernel(const RnnDims& d, const T* x, const T* w_ih, const T* w_hh, const T* gates,
                                const T* hprev, const T* aux, const T* dout, const T* dhn, const T* dcn,
                                const RnnGrads<T>& r) {
  const int64_t Tn = d.T, B = d.B, I = d.I, H = d.H, G = rnn_num_gates(d.mode), GH = G * H, TB = Tn * B;
  const bool lstm = d.mode == RNNMode::LSTM, gru = d.mode == RNNMode::GRU;
  // dG (T B, G H): gradients of the pre-activations of the x side (incl. b_ih);
  // GRU keeps the h side's separately (they differ in the n gate: dn_pre * r)
  std::vector<T> dG(static_cast<size_t>(TB * GH)), dGh(gru ? static_cast<size_t>(TB * GH) : 0);
  std::vector<T> dh(static_cast<size_t>(B * H), T(0)), dc(lstm ? static_cast<size_t>(B * H) : 0, T(0));
  std::vector<T> dprev(static_cast<size_t>(B * H)), direct(gru ? static_cast<size_t>(B * H) : 0);
  if (dhn) std::copy(dhn, dhn + B * H, dh.begin());
  if (lstm && dcn) std::copy(dcn, dcn + B * H, dc.begin());
  const T* cprev = lstm ? aux : nullptr;
  const T* tanhc = lstm ? aux + TB * H : nullptr;
  for (int64_t s = 0; s < Tn; ++s) {
    const int64_t t = d.reverse ? s : Tn - 1 - s;  // the forward order, reversed
    T* dgt = dG.data() + t * B * GH;
    T* dght = gru ? dGh.data() + t * B * GH : dgt;
    parallel_for(0, B, rnn_row_grain(GH), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        T* dg = dgt + b * GH;
        T* dgh = dght + b * GH;
        if (!d.valid(t, b)) {  // the state passed through unchanged: dh, dc too
          std::fill(dg, dg + GH, T(0));
          if (gru) std::fill(dgh, dgh + GH, T(0));
          continue;
        }
        const T* g = gates + (t * B + b) * GH;
        T* dhb = dh.data() + b * H;
        if (dout) {
          const T* go = dout + (t * B + b) * H;
          for (int64_t j = 0; j < H; ++j) dhb[j] += go[j];  // out_t = h_t
        }
        switch (d.mode) {
          case RNNMode::RnnTanh:  // h = tanh(a)  =>  da = dh (1 - h^2)
            for (int64_t j = 0; j < H; ++j) dg[j] = dhb[j] * (T(1) - g[j] * g[j]);
            break;
          case RNNMode::RnnRelu:  // h = relu(a)  =>  da = dh where h > 0
            for (int64_t j = 0; j < H; ++j) dg[j] = g[j] > T(0) ? dhb[j] : T(0);
            break;
          case RNNMode::LSTM: {
            const T* cp = cprev + (t * B + b) * H;
            const T* tc = tanhc + (t * B + b) * H;
            T* dcb = dc.data() + b * H;
            for (int64_t j = 0; j < H; ++j) {
              const T ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
              const T dct = dcb[j] + dhb[j] * og * (T(1) - tc[j] * tc[j]);  // h = o tanh(c)  =>  dc += dh o tanh'(c)
              dg[3 * H + j] = dhb[j] * tc[j] * og * (T(1) - og);             // do = dh tanh(c), o = sigmoid(.)
              dg[j] = dct * gg * ig * (T(1) - ig);                           // c = f c_prev + i g  =>  di = dc g
              dg[H + j] = dct * cp[j] * fg * (T(1) - fg);                    //   df = dc c_prev
              dg[2 * H + j] = dct * ig * (T(1) - gg * gg);                   //   dg = dc i, g = tanh(.)
              dcb[j] = dct * fg;                                             //   dc_prev = dc f
            }
            break;
          }
          case RNNMode::GRU: {
            const T* hp = hprev + (t * B + b) * H;
            const T* hnb = aux + (t * B + b) * H;
            T* db = direct.data() + b * H;
            for (int64_t j = 0; j < H; ++j) {
              const T rg = g[j], zg = g[H + j], ng = g[2 * H + j];
              const T dn = dhb[j] * (T(1) - zg);             // h' = (1 - z) n + z h  =>  dn = dh (1 - z)
              const T dz = dhb[j] * (hp[j] - ng);            //   dz = dh (h - n)
              db[j] = dhb[j] * zg;                           //   dh_prev (direct) = dh z
              const T dnp = dn * (T(1) - ng * ng);           // n = tanh(a_n)
              const T dr = dnp * hnb[j];                     // a_n = x_n + r (W_hn h + b_hn)  =>  dr = da_n hn
              dg[j] = dgh[j] = dr * rg * (T(1) - rg);        // r = sigmoid(x_r + h_r)
              dg[H + j] = dgh[H + j] = dz * zg * (T(1) - zg);  // z = sigmoid(x_z + h_z)
              dg[2 * H + j] = dnp;                           // d(x_n) = da_n
              dgh[2 * H + j] = dnp * rg;                     // d(W_hn h + b_hn) = da_n r
            }
            break;
          }
        }
      }
    });
    // pre = ... + h_prev W_hh^T  =>  dh_prev = dpre W_hh  (B, G H) x (G H, H)
    kernels::gemm<T>(B, H, GH, dght, GH, 1, w_hh, H, 1, dprev.data(), H);
    parallel_for(0, B, rnn_row_grain(H), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        if (!d.valid(t, b)) continue;
        T* dhb = dh.data() + b * H;
        const T* dp = dprev.data() + b * H;
        if (gru) {
          const T* db = direct.data() + b * H;
          for (int64_t j = 0; j < H; ++j) dhb[j] = dp[j] + db[j];
        } else {
          std::copy(dp, dp + H, dhb);
        }
      }
    });
  }
  if (r.dh0) std::copy(dh.begin(), dh.end(), r.dh0);
  if (r.dc0 && lstm) std::copy(dc.begin(), dc.end(), r.dc0);
  const T* dgh_all = gru ? dGh.data() : dG.data();
  // pre = X W_ih^T + ...  =>  dX = dG W_ih (T B, I);  dW_ih = dG^T X (G H, I)
  if (r.dx) kernels::gemm<T>(TB, I, GH, dG.data(), GH, 1, w_ih, I, 1, r.dx, I);
  if (r.dw_ih) kernels::gemm<T>(GH, I, TB, dG.data(), 1, GH, x, I, 1, r.dw_ih, I);
  // pre = ... + H_prev W_hh^T  =>  dW_hh = dG_h^T H_prev (G H, H)
  if (r.dw_hh) kernels::gemm<T>(GH, H, TB, dgh_all, 1, GH, hprev, H, 1, r.dw_hh, H);
  // biases: column sums over all steps and batch elements
  auto colsum = [&](const T* m, T* outp) {
    parallel_for(0, GH, 256, [&](int64_t j0, int64_t j1) {
      std::fill(outp + j0, outp + j1, T(0));
      for (int64_t row = 0; row < TB; ++row) {
        const T* mr = m + row * GH;
        for (int64_t j = j0; j < j1; ++j) outp[j] += mr[j];
      }
    });
  };
  if (r.db_ih) colsum(dG.data(), r.db_ih);
  if (r.db_hh) colsum(dgh_all, r.db_hh);
}

/// The fused layer's backward as a graph node: saved 0 input, 1 w_ih, 2 w_hh, 3 gates,
/// 4 hprev, 5 aux, 6 h0, 7 c0, 8 b_ih, 9 b_hh; ints = {mode, reverse, lengths...}.
inline TensorList rnn_layer_backward(autograd::OpNode& n, const TensorList& g) {
  const RNNMode mode = static_cast<RNNMode>(n.ints[0]);
  const bool reverse = n.ints[1] != 0;
  std::vector<int64_t> lengths(n.ints.begin() + 2, n.ints.end());
  Tensor x = n.saved(0), w_ih = n.saved(1), w_hh = n.saved(2);
  Tensor h0 = n.saved(6), c0 = n.saved(7), b_ih = n.saved(8), b_hh = n.saved(9);
  const bool lstm = mode == RNNMode::LSTM;
  TensorList res(7);
  if (autograd::is_grad_enabled()) {
    // create_graph: differentiate the composite form, so that the gradients have a graph
    RNNLayerOutput r = rnn_layer_composite(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse);
    TensorList outs{r.output, r.h_n}, gouts;
    if (lstm) outs.push_back(r.c_n);
    for (size_t k = 0; k < outs.size(); ++k)
      gouts.push_back(k < g.size() && g[k].defined() ? g[k] : zeros_like(outs[k]));
    const Tensor ins[7] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh};
    TensorList want;
    std::vector<size_t> slot;
    for (size_t k = 0; k < 7; ++k)
      if (n.needs_input_grad(k) && ins[k].defined() && ins[k].requires_grad()) {
        want.push_back(ins[k]);
        slot.push_back(k);
      }
    if (want.empty()) return res;
    TensorList gr = autograd::grad(outs, want, gouts, /*retain_graph=*/true, /*create_graph=*/true,
                                   /*allow_unused=*/true);
    for (size_t k = 0; k < slot.size(); ++k) res[slot[k]] = gr[k];
    return res;
  }
  const Dtype dt = x.dtype();
  const int64_t Tn = x.size(0), B = x.size(1), I = x.size(2), H = w_hh.size(1), GH = w_hh.size(0);
  Tensor xc = contig(x), wihc = contig(w_ih), whhc = contig(w_hh);
  Tensor gates = n.saved(3), hprev = n.saved(4), aux = n.saved(5);
  auto grad_in = [&](size_t k) { return k < g.size() && g[k].defined() ? contig(as_dtype(g[k], dt)) : Tensor(); };
  Tensor dout = grad_in(0), dhn = grad_in(1), dcn = lstm ? grad_in(2) : Tensor();
  auto want = [&](size_t k, const Shape& s) { return n.needs_input_grad(k) ? make_tensor(s, dt) : Tensor(); };
  res[0] = want(0, {Tn, B, I});
  res[1] = want(1, {B, H});
  res[2] = lstm ? want(2, {B, H}) : Tensor();
  res[3] = want(3, {GH, I});
  res[4] = want(4, {GH, H});
  res[5] = want(5, {GH});
  res[6] = want(6, {GH});
  dispatch_float(dt, "rnn_layer backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    RnnDims d{mode, Tn, B, I, H, reverse, lengths.empty() ? nullptr : lengths.data()};
    auto p = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
    auto cp = [](const Tensor& t) -> const T* { return t.defined() ? t.data_ptr<const T>() : nullptr; };
    RnnGrads<T> r{p(res[0]), p(res[1]), p(res[2]), p(res[3]), p(res[4]), p(res[5]), p(res[6])};
    rnn_backward_kernel<T>(d, cp(xc), cp(wihc), cp(whhc), cp(gates), cp(hprev), cp(aux), cp(dout), cp(dhn), cp(dcn),
                           r);
  });
  return res;
}

}  // namespace detail

/// One direction of one recurrent layer over a sequence, fused (see the header comment).
/// input (T, B, I) time-major; h0, c0 (B, H) or undefined (zeros; c0 for LSTM only);
/// w_ih (G H, I), w_hh (G H, H), b_ih, b_hh (G H) or undefined; lengths: B values in
/// [1, T] or empty (all T); reverse: run from the last valid step to the first.
/// Returns output (T, B, H), h_n (B, H) and, for LSTM, c_n (B, H).
inline RNNLayerOutput rnn_layer(RNNMode mode, const Tensor& input, const Tensor& h0, const Tensor& c0,
                                const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih = Tensor(),
                                const Tensor& b_hh = Tensor(), const std::vector<int64_t>& lengths = {},
                                bool reverse = false) {
  std::vector<int64_t> dims = detail::rnn_layer_check(mode, input, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths);
  const int64_t Tn = dims[0], B = dims[1], I = dims[2], H = dims[3], GH = rnn_num_gates(mode) * H;
  const bool lstm = mode == RNNMode::LSTM;
  const Dtype dt = input.dtype();
  bool all_full = true;
  for (int64_t L : lengths) all_full = all_full && L == Tn;
  const std::vector<int64_t> lens = all_full ? std::vector<int64_t>{} : lengths;  // full lengths: no masking
  using detail::contig;
  using detail::make_tensor;
  Tensor xc = contig(input), h0c = h0.defined() ? contig(h0) : Tensor(), c0c = c0.defined() ? contig(c0) : Tensor();
  Tensor wihc = contig(w_ih), whhc = contig(w_hh);
  Tensor bihc = b_ih.defined() ? contig(b_ih) : Tensor(), bhhc = b_hh.defined() ? contig(b_hh) : Tensor();
  Tensor out = make_tensor({Tn, B, H}, dt), hn = make_tensor({B, H}, dt);
  Tensor cn = lstm ? make_tensor({B, H}, dt) : Tensor();
  Tensor gates = make_tensor({Tn, B, GH}, dt), hprev = make_tensor({Tn, B, H}, dt);
  Tensor aux = make_tensor(lstm ? Shape{2, Tn, B, H} : (mode == RNNMode::GRU ? Shape{Tn, B, H} : Shape{0}), dt);
  dispatch_float(dt, "rnn_layer", [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::RnnDims d{mode, Tn, B, I, H, reverse, lens.empty() ? nullptr : lens.data()};
    auto cp = [](const Tensor& t) -> const T* { return t.defined() ? t.data_ptr<const T>() : nullptr; };
    detail::rnn_forward_kernel<T>(d, cp(xc), cp(h0c), cp(c0c), cp(wihc), cp(whhc), cp(bihc), cp(bhhc),
                                  out.data_ptr<T>(), hn.data_ptr<T>(), lstm ? cn.data_ptr<T>() : nullptr,
                                  gates.data_ptr<T>(), hprev.data_ptr<T>(), aux.numel() ? aux.data_ptr<T>() : nullptr);
  });
  if (autograd::needs_grad(input, h0, c0, w_ih, w_hh, b_ih, b_hh)) {
    TensorList outs{out, hn};
    if (lstm) outs.push_back(cn);
    auto& n = autograd::record_multi("rnn_layer", {input, h0, c0, w_ih, w_hh, b_ih, b_hh}, outs,
                                     detail::rnn_layer_backward);
    n.save(input);
    n.save(w_ih);
    n.save(w_hh);
    n.save(gates);
    n.save(hprev);
    n.save(aux);
    n.save(h0);
    n.save(c0);
    n.save(b_ih);
    n.save(b_hh);
    n.ints = {static_cast<int64_t>(mode), reverse ? 1 : 0};
    n.ints.insert(n.ints.end(), lens.begin(), lens.end());
    out = outs[0];
    hn = outs[1];
    if (lstm) cn = outs[2];
  }
  return {out, hn, cn};
}

}  // namespace genai
