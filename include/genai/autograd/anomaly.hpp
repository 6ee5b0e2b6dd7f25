// genai/autograd/anomaly.hpp: anomaly detection, as torch.autograd.detect_anomaly /
// set_detect_anomaly: find the first op that produces NaN or Inf.
//
//   autograd::DetectAnomalyGuard anomaly;        // or: auto g = autograd::detect_anomaly();
//   Tensor loss = model.forward(x);              // throws genai::Error naming the first op
//   loss.backward();                             //   whose output is NaN/Inf (forward), or the
//                                                //   first backward node whose gradient is (backward)
//
// When anomaly mode is on:
// - forward: every op recorded in the graph (autograd::record / record_multi, the
//   one place every recorded op's outputs pass through) scans its floating-point
//   outputs. NaN in an output, or +-Inf in an output of an op whose inputs were all
//   finite, throws, naming the op, the output index, shape, dtype, how many values
//   are bad and the first bad position. Inf that comes from an input (masked_fill
//   with -inf, an additive attention mask) flows on silently; an op that turns it
//   into NaN (inf - inf, a softmax over a fully masked row) is reported. When an
//   input already holds NaN (the user's data, or a tensor computed outside the
//   graph), the message says so and names the input.
// - backward: the engine scans every gradient a node returns and throws naming the
//   backward function ("Function 'SqrtBackward' returned inf values in its 0th
//   output", PyTorch's words) and the forward op that created it (its inputs'
//   shapes and dtypes, its position in the recording order, and the AnomalyScope
//   labels active when it was recorded). Gradients passed to backward() by the
//   caller are checked too.
// - GENAI_DETECT_ANOMALY=1 in the environment turns the mode on from the start (the
//   example programs' message on a non-finite loss points to it).
// - AnomalyScope("encoder.block3") labels the ops recorded in a scope (like the
//   forward traceback PyTorch prints); it costs nothing when anomaly mode is off.
//
// Cost: off, one predictable branch on a global flag per recorded op and per
// backward node. On, one extra pass over every output and gradient (and node
// metadata strings): a debugging mode, as in PyTorch.
//
// Differences from PyTorch: the flag is process-wide, as PyTorch's AnomalyMode
// (not thread-local like grad mode). PyTorch checks only backward outputs and only
// for NaN; genai also checks forward outputs, and Inf as well as NaN. PyTorch
// prints the Python traceback of the forward call; genai names the forward op, its
// input shapes and the AnomalyScope labels instead. Ops that are not recorded (run
// under NoGradGuard, or on inputs that do not require grad) are not checked: their
// NaN is reported when a recorded op first consumes it ("input 0 already contained
// nan ... not produced by a recorded op").
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "genai/autograd/node.hpp"

namespace genai {
namespace autograd {

namespace detail {
/// GENAI_DETECT_ANOMALY=1 in the environment starts a program with anomaly mode on (any
/// value but empty or "0"), so a training run can be debugged without recompiling it.
inline bool anomaly_from_environment() {
  const char* e = std::getenv("GENAI_DETECT_ANOMALY");
  return e != nullptr && e[0] != '\0' && !(e[0] == '0' && e[1] == '\0');
}
/// The anomaly flag (process-wide, as PyTorch's AnomalyMode); relaxed loads cost a plain load.
inline std::atomic<bool> anomaly_enabled_flag{anomaly_from_environment()};
/// Labels pushed by AnomalyScope (only while anomaly mode is on).
inline std::vector<std::string>& anomaly_scopes() {
  thread_local std::vector<std::string> s;
  return s;
}
/// The backward node the engine is running on this thread (anomaly mode only), so
/// that a forward check inside a create_graph backward can say where it is.
inline const Node*& anomaly_current_backward() {
  thread_local const Node* n = nullptr;
  return n;
}
}  // namespace detail

/// True when anomaly detection is on (as torch.is_anomaly_enabled).
inline bool is_anomaly_enabled() { return detail::anomaly_enabled_flag.load(std::memory_order_relaxed); }
/// Turns anomaly detection on or off for the whole process (as torch.autograd.set_detect_anomaly).
inline void set_detect_anomaly(bool on) { detail::anomaly_enabled_flag.store(on, std::memory_order_relaxed); }

/// RAII: sets anomaly mode for a scope and restores the previous mode (as
/// `with torch.autograd.detect_anomaly():` / set_detect_anomaly(mode)).
class DetectAnomalyGuard {
 public:
  explicit DetectAnomalyGuard(bool on = true) : prev_(is_anomaly_enabled()) { set_detect_anomaly(on); }
  ~DetectAnomalyGuard() { set_detect_anomaly(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

/// A guard that turns anomaly mode on until the end of the scope:
/// `auto anomaly = autograd::detect_anomaly();`.
[[nodiscard]] inline DetectAnomalyGuard detect_anomaly(bool on = true) { return DetectAnomalyGuard(on); }

/// RAII: labels the ops recorded in this scope in anomaly messages, e.g.
/// AnomalyScope s("decoder.block3.attn"); nested scopes are joined with " > ".
/// Does nothing (and costs nothing) when anomaly mode is off at construction.
class AnomalyScope {
 public:
  explicit AnomalyScope(const char* label) : pushed_(is_anomaly_enabled()) {
    if (pushed_) detail::anomaly_scopes().emplace_back(label);
  }
  explicit AnomalyScope(const std::string& label) : AnomalyScope(label.c_str()) {}
  ~AnomalyScope() {
    if (pushed_ && !detail::anomaly_scopes().empty()) detail::anomaly_scopes().pop_back();
  }
  AnomalyScope(const AnomalyScope&) = delete;
  AnomalyScope& operator=(const AnomalyScope&) = delete;

 private:
  bool pushed_;
};

/// How many values of a tensor are NaN / +Inf / -Inf, and the first bad one (row-major).
struct NonFiniteCount {
  int64_t nan = 0, pos_inf = 0, neg_inf = 0;
  int64_t first = -1;  // flat row-major index of the first non-finite value, -1 if none
  int64_t numel = 0;
  bool any() const { return first >= 0; }
  int64_t inf() const { return pos_inf + neg_inf; }
};

namespace detail {

template <class T>
inline void count_non_finite_impl(const T* base, const Shape& shape, const std::vector<int64_t>& strides,
                                  bool contiguous, NonFiniteCount& c) {
  auto visit = [&c](T v, int64_t i) {
    if (std::isfinite(v)) [[likely]]
      return;
    if (std::isnan(v))
      ++c.nan;
    else if (v > 0)
      ++c.pos_inf;
    else
      ++c.neg_inf;
    if (c.first < 0) c.first = i;
  };
  const int64_t n = c.numel;
  if (contiguous) {
    for (int64_t i = 0; i < n; ++i) visit(base[i], i);
    return;
  }
  const size_t nd = shape.size();
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    visit(base[off], i);
    for (size_t d = nd; d-- > 0;) {  // next row-major position
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

/// "[1, 0, 2]": the row-major position of flat index i in shape s.
inline std::string position_str(const Shape& s, int64_t i) {
  std::vector<int64_t> idx(s.size(), 0);
  for (size_t d = s.size(); d-- > 0;) {
    if (s[d] > 0) {
      idx[d] = i % s[d];
      i /= s[d];
    }
  }
  std::string r = "[";
  for (size_t d = 0; d < idx.size(); ++d) r += (d ? ", " : "") + std::to_string(idx[d]);
  return r + "]";
}

/// "2 nan and 1 +inf among 6 values (shape (2, 3), float32), the first at [0, 1]".
inline std::string non_finite_str(const Tensor& t, const NonFiniteCount& c) {
  std::string r;
  auto part = [&r](int64_t k, const char* what) {
    if (k == 0) return;
    r += (r.empty() ? "" : " and ") + std::to_string(k) + " " + what;
  };
  part(c.nan, "nan");
  part(c.pos_inf, "+inf");
  part(c.neg_inf, "-inf");
  r += " among " + std::to_string(c.numel) + (c.numel == 1 ? " value" : " values") + " (shape " +
       shape_str(t.shape()) + ", " + dtype_name(t.dtype()) + ")";
  if (c.first >= 0) r += t.dim() == 0 ? ", the only value" : ", the first at " + position_str(t.shape(), c.first);
  return r;
}

/// "nan", "inf" or "nan and inf": the kinds of bad values in c.
inline const char* kinds_str(const NonFiniteCount& c) {
  if (c.nan > 0 && c.inf() > 0) return "nan and inf";
  return c.nan > 0 ? "nan" : "inf";
}

/// "LogBackward" for op "log", "MaxPool2dBackward" for "max_pool2d" (PyTorch's
/// naming of backward functions, without its version suffix); names that are
/// already CamelCase (AccumulateGrad) are kept.
inline std::string backward_name(const std::string& op) {
  if (op.empty() || (op[0] >= 'A' && op[0] <= 'Z')) return op;
  std::string r;
  bool up = true;
  for (char ch : op) {
    if (ch == '_') {
      up = true;
      continue;
    }
    r += up && ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
    up = false;
  }
  return r + "Backward";
}

/// "(4, 8) float32" or "undefined".
inline std::string tensor_brief(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return shape_str(t.shape()) + " " + dtype_name(t.dtype());
}

/// The description of a forward call stored in its node: recording order, input
/// and output shapes, AnomalyScope labels.
inline std::string forward_context(const char* op, const Tensor* in, size_t n_in, const Tensor* out, size_t n_out,
                                   const Node& node) {
  std::string r = "op #" + std::to_string(node.sequence_nr()) + " '" + op + "' recorded on this thread; inputs ";
  if (n_in == 0) r += "none";
  for (size_t i = 0; i < n_in; ++i) r += (i ? ", " : "") + tensor_brief(in[i]);
  r += "; output";
  r += n_out == 1 ? " " : "s ";
  for (size_t i = 0; i < n_out; ++i) r += (i ? ", " : "") + tensor_brief(out[i]);
  const auto& sc = anomaly_scopes();
  if (!sc.empty()) {
    r += "; scope ";
    for (size_t i = 0; i < sc.size(); ++i) r += (i ? " > " : "") + sc[i];
  }
  return r;
}

/// " (while running the backward of op 'x', XBackward, with create_graph)" or "".
inline std::string in_backward_str() {
  const Node* b = anomaly_current_backward();
  if (!b) return "";
  return " (while computing the gradient in Function '" + backward_name(b->name()) + "', the backward of op '" +
         b->name() + "', with create_graph)";
}

}  // namespace detail

/// Counts the NaN and Inf values of a floating-point tensor (zero counts for other dtypes).
inline NonFiniteCount count_non_finite(const Tensor& t) {
  NonFiniteCount c;
  if (!t.defined() || !is_floating(t.dtype())) return c;
  c.numel = t.numel();
  if (c.numel == 0) return c;
  if (t.dtype() == kFloat32)
    detail::count_non_finite_impl(static_cast<const float*>(t.raw_data()), t.shape(), t.strides(), t.is_contiguous(), c);
  else
    detail::count_non_finite_impl(static_cast<const double*>(t.raw_data()), t.shape(), t.strides(), t.is_contiguous(),
                                  c);
  return c;
}

/// True when every value of t is finite (always true for integer and bool tensors).
inline bool all_finite(const Tensor& t) { return !count_non_finite(t).any(); }

namespace detail {

/// Anomaly mode, forward: called by record()/record_multi() after an op's outputs
/// are computed and its node is created; stores the forward context in the node and
/// throws if an output is NaN/Inf (see the header comment for the rules).
inline void anomaly_check_forward(const char* op, const Tensor* in, size_t n_in, const Tensor* out, size_t n_out,
                                  Node& node) {
  node.set_forward_context(forward_context(op, in, n_in, out, n_out, node));
  for (size_t k = 0; k < n_out; ++k) {
    const NonFiniteCount c = count_non_finite(out[k]);
    if (!c.any()) continue;
    // which inputs were already non-finite
    std::vector<NonFiniteCount> ic(n_in);
    bool in_nan = false, in_inf = false;
    for (size_t i = 0; i < n_in; ++i) {
      ic[i] = count_non_finite(in[i]);
      in_nan = in_nan || ic[i].nan > 0;
      in_inf = in_inf || ic[i].inf() > 0;
    }
    if (c.nan == 0 && in_inf) continue;  // inf carried over from an input (e.g. a -inf mask): not an anomaly here
    const std::string where = "op '" + std::string(op) + "' (Function '" + backward_name(op) + "')" + in_backward_str();
    if (in_nan) {
      for (size_t i = 0; i < n_in; ++i) {
        if (ic[i].nan == 0) continue;
        const std::string origin =
            in[i].grad_fn() ? "it was produced by op '" + in[i].grad_fn()->name() +
                                  "', recorded before anomaly mode was enabled or modified in place since"
                            : "it was not produced by a recorded op: it is input data, a parameter, or a tensor "
                              "computed under NoGradGuard or from tensors that do not require grad";
        GENAI_FAIL("anomaly detected in forward: input ", i, " of ", where, " already contains ",
                   non_finite_str(in[i], ic[i]), "; ", origin, ". hint: check the data (e.g. with "
                   "autograd::all_finite) before the forward pass");
      }
    }
    std::string inputs_state = "its inputs were finite";
    for (size_t i = 0; i < n_in; ++i)
      if (ic[i].any()) {
        inputs_state = "input " + std::to_string(i) + " contained " + non_finite_str(in[i], ic[i]);
        break;
      }
    GENAI_FAIL("anomaly detected in forward: ", where, " produced ", kinds_str(c), " in its output ", k, ": ",
               non_finite_str(out[k], c), "; ", inputs_state, ". Forward call: ", node.forward_context(),
               ". hint: look for log/sqrt/pow of negative or zero values, division by zero, overflow of exp, "
               "or inf - inf in this op's inputs; autograd::set_detect_anomaly(false) turns these checks off");
  }
}

/// Anomaly mode, backward: checks the gradients node n returned.
inline void anomaly_check_backward(const Node& n, const TensorList& grads) {
  for (size_t k = 0; k < grads.size(); ++k) {
    const NonFiniteCount c = count_non_finite(grads[k]);
    if (!c.any()) continue;
    const std::string& ctx = n.forward_context();
    GENAI_FAIL("anomaly detected in backward: Function '", backward_name(n.name()), "' returned ", kinds_str(c),
               " values in its ", k, "th output (the gradient for input ", k, " of op '", n.name(),
               "'): ", non_finite_str(grads[k], c), ". It was created by ",
               ctx.empty() ? "op '" + n.name() + "', recorded before anomaly mode was enabled" : ctx,
               ". hint: the op's derivative is infinite or undefined at its input (e.g. sqrt or log at 0, "
               "pow with a negative exponent at 0, division by a tiny value); clamp the input or add an epsilon");
  }
}

/// Anomaly mode: the gradients a caller passes to backward()/grad() for the roots.
inline void anomaly_check_root_grad(const Tensor& g, size_t i) {
  const NonFiniteCount c = count_non_finite(g);
  GENAI_CHECK(!c.any(), "anomaly detected in backward: the gradient given for output ", i, " contains ",
              non_finite_str(g, c));
}

/// Anomaly mode: runs n's backward with n noted as the current backward node, and
/// checks the gradients it returns.
inline TensorList anomaly_apply(Node& n, TensorList&& grads) {
  struct Restore {
    const Node* prev;
    ~Restore() { anomaly_current_backward() = prev; }
  } restore{anomaly_current_backward()};
  anomaly_current_backward() = &n;
  TensorList out = n.apply(std::move(grads));
  anomaly_check_backward(n, out);
  return out;
}

}  // namespace detail
}  // namespace autograd
}  // namespace genai
