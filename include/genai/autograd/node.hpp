// genai/autograd/node.hpp: graph nodes, edges and saved tensors.
//
// Define-by-run as in PyTorch: every op on tensors that require grad creates one
// Node per op (never per scalar). A node knows, for each differentiable input,
// the Edge to the node that produced it (or to the leaf's AccumulateGrad node),
// and computes the gradients of its inputs from the gradients of its outputs.
// Backward formulas are written with ordinary tensor ops, so when the engine runs
// them with grad mode on (create_graph) they record a graph of their own and
// gradients of gradients work.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "genai/autograd/grad_mode.hpp"
#include "genai/core/tensor.hpp"

namespace genai {
namespace autograd {

class Node;

/// Where a gradient goes: input slot `input_nr` of node `fn` (fn null: nowhere).
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

namespace detail {
inline uint64_t next_sequence_nr() {
  thread_local uint64_t n = 0;
  return n++;
}
}  // namespace detail

class Node : public std::enable_shared_from_this<Node> {
 public:
  explicit Node(uint32_t num_outputs = 1) : num_outputs_(num_outputs), seq_(detail::next_sequence_nr()) {}
  virtual ~Node() {
    for (auto& e : next_) genai::detail::release_graph_ref(std::shared_ptr<void>(std::move(e.fn)));
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Gradients of the inputs (one per next edge; undefined = no gradient) from
  /// the gradients of the outputs (one per output; undefined = zero).
  virtual TensorList apply(TensorList&& grad_outputs) = 0;
  /// The op's name, used in error messages ("mul", "matmul", ...).
  virtual std::string name() const = 0;
  /// Frees saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  const std::vector<Edge>& next_edges() const { return next_; }
  std::vector<Edge>& next_edges() { return next_; }
  uint32_t num_outputs() const { return num_outputs_; }
  uint64_t sequence_nr() const { return seq_; }

  /// Whether the gradient of input i is wanted in the current backward pass.
  bool needs_input_grad(size_t i) const {
    if (i >= next_.size() || !next_[i].valid()) return false;
    return mask_.empty() || mask_[i];
  }
  /// Set by the engine before apply(): which inputs' gradients are wanted.
  void set_needs_input_grad(std::vector<bool> mask) { mask_ = std::move(mask); }
  /// Set by the engine before apply(): every input's gradient is wanted.
  void clear_needs_input_grad() {
    if (!mask_.empty()) mask_.clear();
  }

  /// Engine bookkeeping (not API): the backward pass that last reached this node
  /// and the node's index in that pass's arrays, so the engine needs no hash map
  /// (engine.hpp; a nested backward restores both when it ends).
  uint64_t engine_task_ = 0;
  uint32_t engine_slot_ = 0;

  /// Anomaly mode (anomaly.hpp) only: a description of the forward call that
  /// recorded this node (input/output shapes, recording order, scope labels).
  const std::string& forward_context() const { return forward_context_; }
  void set_forward_context(std::string s) { forward_context_ = std::move(s); }

 private:
  std::vector<Edge> next_;
  std::vector<bool> mask_;
  uint32_t num_outputs_;
  uint64_t seq_;
  std::string forward_context_;  // empty unless recorded in anomaly mode
};

/// Process-wide callbacks of backward passes: `fn` runs right after a pass has added
/// into a leaf's .grad() (once per leaf and pass; not for autograd::grad, which
/// returns gradients instead), `finished` when a backward() pass has completed.
/// genai/distributed sets them to start reducing a bucket of gradients while the rest
/// of backward runs, and to finish the reductions at its end (as the hooks and the
/// end-of-backward callback of torch's DDP).
struct GradAccumulatedHook {
  void (*fn)(void* ctx, const Tensor& leaf) = nullptr;
  void* ctx = nullptr;
  void (*finished)(void* ctx) = nullptr;
};
inline GradAccumulatedHook& grad_accumulated_hook() {
  static GradAccumulatedHook hook;
  return hook;
}

/// Adds gradients into a leaf tensor's .grad (the end of every backward path).
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf) : Node(1), leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  const Tensor& leaf() const { return leaf_; }
  TensorList apply(TensorList&& grads) override;  // defined in engine.hpp

 private:
  Tensor leaf_;
};

/// The AccumulateGrad node of a leaf that requires grad, created once and shared,
/// so that every use of the leaf in a graph adds into the same node.
inline std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  TensorImpl* im = leaf.impl();
  if (auto n = im->grad_accumulator.lock()) return n;
  auto n = std::make_shared<AccumulateGrad>(leaf);
  im->grad_accumulator = n;
  return n;
}

/// The edge along which a gradient for `t` flows (invalid if t needs none).
inline Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  return {grad_accumulator(t), 0};
}

/// A tensor kept by a node for its backward, with the version it had when saved.
/// Outputs of the node itself are kept without their grad_fn (no reference cycle)
/// and get it back on unpack, so double backward sees the full graph.
class SavedTensor {
 public:
  SavedTensor() = default;
  /// Saves `t`; for an output of the saving node, `is_output` is true and
  /// `output_nr` its slot.
  SavedTensor(const Tensor& t, bool is_output, uint32_t output_nr = 0) : is_output_(is_output) {
    if (!t.defined()) return;
    version_ = t.version();
    if (is_output) {
      output_nr_ = output_nr;
      data_ = genai::detail::make_view(t, t.shape(), t.strides(), t.offset());
      data_.impl()->is_view = t.impl()->is_view;
    } else if (t.is_leaf() && t.requires_grad()) {
      data_ = t;  // keeps the leaf's identity (its AccumulateGrad node); in-place writes to such a
                  // leaf are refused under autograd, so it never moves to another buffer
    } else {
      // a shallow alias with t's history: a recorded in-place op later moves t itself to a new
      // buffer (ops/common.hpp commit_inplace), and the alias keeps the values that were saved
      data_ = genai::detail::make_view(t, t.shape(), t.strides(), t.offset());
      data_.impl()->is_view = t.impl()->is_view;
      data_.impl()->grad_fn = t.grad_fn();
      data_.impl()->output_nr = t.output_nr();
    }
  }
  bool defined() const { return data_.defined(); }

  /// The saved tensor; `self` is the node that saved it. Throws if it was
  /// modified in place since it was saved.
  Tensor unpack(const Node& self) const {
    if (!data_.defined()) return data_;
    GENAI_CHECK(data_.version() == version_,
                "one of the tensors needed for gradient computation has been modified by an in-place "
                "operation: a ", shape_str(data_.shape()), " ", dtype_name(data_.dtype()), " tensor saved by '",
                self.name(), "' is at version ", data_.version(), "; expected version ", version_,
                ". hint: use the out-of-place form of the op (e.g. x = x + y instead of x += y)");
    if (!is_output_ || !is_grad_enabled()) return data_;
    // double backward: the output again with its place in the graph
    Tensor t = genai::detail::make_view(data_, data_.shape(), data_.strides(), data_.offset());
    t.impl()->grad_fn = std::const_pointer_cast<Node>(self.shared_from_this());
    t.impl()->output_nr = output_nr_;
    return t;
  }
  void reset() { data_ = Tensor(); }

 private:
  Tensor data_;
  uint32_t version_ = 0;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
};

}  // namespace autograd
}  // namespace genai
