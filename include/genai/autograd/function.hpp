// genai/autograd/function.hpp: how an op records itself in the graph.
//
//   Tensor out = kernel(x, y);
//   if (autograd::needs_grad(x, y)) {
//     auto& n = autograd::record("mul", {x, y}, out, [](autograd::OpNode& n, const TensorList& g) {
//       // out = x * y  =>  dx = dout * y, dy = dout * x
//       return TensorList{mul(g[0], n.saved(1)), mul(g[0], n.saved(0))};
//     });
//     n.save(x);
//     n.save(y);
//   }
//
// Every op records the same node type, OpNode, with a plain function pointer for
// its backward (a captureless lambda) and generic slots for what backward needs:
// saved tensors (version-checked), shapes, integers and reals. One node type for
// all ops keeps compile times down (no class template per op). The backward
// receives the gradients of the outputs (undefined = zero) and returns one
// gradient per input (undefined = none); it may test n.needs_input_grad(i).
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "genai/autograd/anomaly.hpp"
#include "genai/autograd/node.hpp"

namespace genai {
namespace autograd {

class OpNode final : public Node {
 public:
  using BackwardFn = TensorList (*)(OpNode& node, const TensorList& grads);

  OpNode(const char* name, BackwardFn fn, uint32_t num_outputs) : Node(num_outputs), name_(name), fn_(fn) {}
  std::string name() const override { return name_; }
  TensorList apply(TensorList&& grads) override { return fn_(*this, grads); }
  void release_saved() override {
    if (!saved_.empty()) released_ = true;
    saved_.clear();
  }

  /// Saves an input (or any tensor that is not an output of this node).
  void save(const Tensor& t) { saved_.emplace_back(t, false); }
  /// Saves output `output_nr` of this node.
  void save_output(const Tensor& t, uint32_t output_nr = 0) { saved_.emplace_back(t, true, output_nr); }
  /// Saved tensor k, checked against in-place modification since it was saved.
  Tensor saved(size_t k) const {
    GENAI_CHECK(!released_, "trying to backward through the graph a second time (op '", name_,
                "'), or to use saved tensors after they were freed; saved values are freed by backward() and "
                "autograd::grad(). hint: pass retain_graph=true to the first backward");
    GENAI_ASSERT(k < saved_.size());
    return saved_[k].unpack(*this);
  }

  std::vector<Shape> shapes;   // e.g. input shapes, for sum_to in backward
  std::vector<int64_t> ints;   // integer parameters (dims, sizes, ...)
  std::vector<double> reals;   // real parameters (scalars, slopes, ...)

 private:
  const char* name_;
  BackwardFn fn_;
  std::vector<SavedTensor> saved_;
  bool released_ = false;
};

/// True when grad mode is on and any argument requires grad.
template <class... Ts>
inline bool needs_grad(const Ts&... ts) {
  if (!is_grad_enabled()) return false;
  return ((ts.defined() && ts.requires_grad()) || ...);
}

inline bool needs_grad_list(const TensorList& ts) {
  if (!is_grad_enabled()) return false;
  for (const auto& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace detail {
inline void set_history(Tensor& out, const std::shared_ptr<Node>& node, uint32_t nr) {
  GENAI_ASSERT(out.defined());
  out.impl()->grad_fn = node;
  out.impl()->output_nr = nr;
}
template <class Inputs>
inline void collect_edges(Node& n, const Inputs& inputs) {
  auto& edges = n.next_edges();
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) edges.push_back(gradient_edge(t));
}
}  // namespace detail

/// Records a node with one output; returns it so the op can save what backward needs.
/// In anomaly mode (anomaly.hpp), throws if an output holds NaN/Inf: every recorded
/// op's outputs pass through here, so the check costs one branch when it is off.
inline OpNode& record(const char* name, std::initializer_list<Tensor> inputs, Tensor& out, OpNode::BackwardFn fn) {
  auto node = std::make_shared<OpNode>(name, fn, 1);
  detail::collect_edges(*node, inputs);
  detail::set_history(out, node, 0);
  if (is_anomaly_enabled()) [[unlikely]]
    detail::anomaly_check_forward(name, inputs.begin(), inputs.size(), &out, 1, *node);
  return *node;
}

/// Records a node with one output and a runtime list of inputs.
inline OpNode& record(const char* name, const TensorList& inputs, Tensor& out, OpNode::BackwardFn fn) {
  auto node = std::make_shared<OpNode>(name, fn, 1);
  detail::collect_edges(*node, inputs);
  detail::set_history(out, node, 0);
  if (is_anomaly_enabled()) [[unlikely]]
    detail::anomaly_check_forward(name, inputs.data(), inputs.size(), &out, 1, *node);
  return *node;
}

/// Records a node with several outputs (output i gets output_nr i).
inline OpNode& record_multi(const char* name, const TensorList& inputs, TensorList& outs, OpNode::BackwardFn fn) {
  auto node = std::make_shared<OpNode>(name, fn, static_cast<uint32_t>(outs.size()));
  detail::collect_edges(*node, inputs);
  for (size_t i = 0; i < outs.size(); ++i) detail::set_history(outs[i], node, static_cast<uint32_t>(i));
  if (is_anomaly_enabled()) [[unlikely]]
    detail::anomaly_check_forward(name, inputs.data(), inputs.size(), outs.data(), outs.size(), *node);
  return *node;
}

}  // namespace autograd
}  // namespace genai
