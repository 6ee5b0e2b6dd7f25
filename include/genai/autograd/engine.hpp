// genai/autograd/engine.hpp: the backward pass (Tensor::backward, autograd::backward,
// autograd::grad).
//
// The engine walks the graph once, iteratively (no recursion: a 100,000-op
// chain is fine): it counts each node's incoming edges from the roots, then runs
// nodes in dependency order (Kahn's algorithm; among the ready nodes the most
// recently created first, as PyTorch), summing gradients that meet at a node
// before calling it. Per-pass state lives in flat arrays indexed by a slot the
// pass writes into each node (no hash maps: the engine costs a few allocations
// per pass, not per node). Leaves accumulate into .grad(). Without retain_graph,
// each node frees its saved tensors after it ran. With create_graph, the backward
// formulas run with grad mode on, so the gradients have a graph of their own.
//
// autograd::grad(outputs, inputs) returns the gradients instead of accumulating
// them, and runs only the nodes on a path to the inputs (as torch.autograd.grad).
#pragma once

#include <algorithm>
#include <atomic>
#include <iterator>

#include "genai/autograd/anomaly.hpp"
#include "genai/autograd/function.hpp"
#include "genai/autograd/grad_mode.hpp"
#include "genai/autograd/node.hpp"
#include "genai/ops/all.hpp"

namespace genai {
namespace autograd {

namespace detail {

/// Sum of two gradients for the same slot (either may be undefined).
inline Tensor accumulate(const Tensor& acc, const Tensor& g) {
  if (!acc.defined()) return g;
  if (!g.defined()) return acc;
  return add(acc, g);
}

/// True if writing into t cannot affect any other tensor (sole owner of its memory).
inline bool exclusively_owned(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && t.is_contiguous() &&
         t.storage()->nbytes() == static_cast<size_t>(t.numel()) * t.element_size();
}

/// A unique id per backward pass (Node::engine_task_ records the last one that reached a node).
inline uint64_t next_task_id() {
  static std::atomic<uint64_t> id{0};
  return id.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// The nodes one backward pass reaches, each with a slot (Node::engine_slot_)
/// into flat arrays: no hash map, and one allocation per array, not per node.
/// When the pass ends (or throws) every node gets back the task and slot it had
/// before, so a backward nested inside a node's backward leaves the outer pass intact.
struct GraphTask {
  uint64_t id = next_task_id();
  std::vector<Node*> nodes;                             // slot -> node, in discovery order
  std::vector<std::pair<uint64_t, uint32_t>> previous;  // slot -> the node's earlier (task, slot)
  std::vector<int> deps;                                // slot -> edges from nodes that have not run yet
  std::vector<size_t> grad_off;                         // slot -> its output gradients' offset in grads
  std::vector<Tensor> grads;                            // every node's output gradients, flat
  std::vector<char> needed;                             // grad() only: slot -> leads to a requested input
  std::vector<char> captures;                           // grad() only: slot -> some requested input is here

  GraphTask() = default;
  GraphTask(const GraphTask&) = delete;
  GraphTask& operator=(const GraphTask&) = delete;
  ~GraphTask() {
    for (size_t i = 0; i < nodes.size(); ++i) {
      nodes[i]->engine_task_ = previous[i].first;
      nodes[i]->engine_slot_ = previous[i].second;
    }
  }
  bool has(const Node* n) const { return n->engine_task_ == id; }
  /// Adds n (once); true when it is new.
  bool discover(Node* n) {
    if (has(n)) return false;
    previous.push_back({n->engine_task_, n->engine_slot_});
    n->engine_task_ = id;
    n->engine_slot_ = static_cast<uint32_t>(nodes.size());
    nodes.push_back(n);
    deps.push_back(0);
    return true;
  }
  uint32_t slot(const Node* n) const {
    GENAI_ASSERT(has(n));
    return n->engine_slot_;
  }
  Tensor& grad_slot(const Node* n, uint32_t input_nr) { return grads[grad_off[slot(n)] + input_nr]; }
};

}  // namespace detail

inline TensorList AccumulateGrad::apply(TensorList&& grads) {
  Tensor g = std::move(grads[0]);
  if (!g.defined()) return {};
  TensorImpl* leaf = leaf_.impl();
  GENAI_CHECK(g.shape() == leaf->shape, "backward: the gradient for a leaf of shape ", shape_str(leaf->shape),
              " has shape ", shape_str(g.shape()), "; this is a bug in an op's backward formula");
  if (g.dtype() != leaf->dtype) g = to(g, leaf->dtype);
  if (!leaf->grad.defined()) {
    if (is_grad_enabled()) {
      leaf->grad = g;  // create_graph: keep the gradient's own graph
    } else {
      leaf->grad = detail::exclusively_owned(g) ? g.detach() : genai::detail::contig(clone(g.detach()));
    }
  } else if (is_grad_enabled()) {
    leaf->grad = add(leaf->grad, g);
  } else if (leaf->grad.requires_grad() || !leaf->grad.is_contiguous()) {
    leaf->grad = add(leaf->grad.detach(), g);
  } else {
    Tensor acc = leaf->grad;
    acc.add_(g);  // in place, as torch: a handle the user keeps to .grad() sees the sum
  }
  if (const GradAccumulatedHook& hook = grad_accumulated_hook(); hook.fn) hook.fn(hook.ctx, leaf_);
  return {};
}

namespace detail {

/// Runs the backward pass from `roots` (with their gradients). When `capture`
/// is non-empty (autograd::grad), gradients reaching those (node, slot) pairs are
/// returned instead of accumulated into leaves.
inline TensorList run_backward(const TensorList& roots, const TensorList& root_grads, bool keep_graph,
                               bool create_graph, const std::vector<Edge>& capture, bool allow_unused) {
  std::vector<std::pair<Edge, Tensor>> root_inputs;
  root_inputs.reserve(roots.size());
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    GENAI_CHECK(r.defined(), "backward: output ", i, " is an undefined tensor");
    GENAI_CHECK(r.requires_grad(), "backward: element ", i, " of the outputs (shape ", shape_str(r.shape()),
                ") does not require grad and has no grad_fn; hint: call requires_grad_() on the inputs before the "
                "forward pass, and make sure it does not run under NoGradGuard");
    root_inputs.push_back({gradient_edge(r), root_grads[i]});
  }
  // the roots' nodes own (through their edges) every node reached below; declared
  // before the task, so that they outlive its destructor
  std::vector<std::shared_ptr<Node>> keep;
  keep.reserve(root_inputs.size());
  for (auto& ri : root_inputs) keep.push_back(ri.first.fn);

  GraphTask task;

  // 1. discover the graph and count dependencies (iterative DFS)
  std::vector<Node*> stack;
  for (auto& ri : root_inputs)
    if (task.discover(ri.first.fn.get())) stack.push_back(ri.first.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      if (task.discover(c)) stack.push_back(c);
      task.deps[task.slot(c)] += 1;
    }
  }
  const size_t nn = task.nodes.size();
  task.grad_off.resize(nn);
  size_t total = 0;
  for (size_t i = 0; i < nn; ++i) {
    task.grad_off[i] = total;
    total += task.nodes[i]->num_outputs();
  }
  task.grads.resize(total);

  // 2. for autograd::grad: which nodes lead to a requested input (post-order DFS)
  if (!capture.empty()) {
    task.needed.assign(nn, 0);
    task.captures.assign(nn, 0);
    for (const Edge& c : capture)
      if (c.valid() && task.has(c.fn.get())) task.captures[task.slot(c.fn.get())] = 1;
    std::vector<char> state(nn, 0);  // 0 new, 1 open, 2 done
    std::vector<std::pair<Node*, size_t>> st;
    for (auto& ri : root_inputs) {
      st.push_back({ri.first.fn.get(), 0});
      while (!st.empty()) {
        auto& [n, i] = st.back();
        const uint32_t sn = task.slot(n);
        if (i == 0 && state[sn] == 2) {
          st.pop_back();
          continue;
        }
        state[sn] = 1;
        const auto& edges = n->next_edges();
        if (i < edges.size()) {
          Node* c = edges[i].fn.get();
          ++i;
          if (c && state[task.slot(c)] == 0) st.push_back({c, 0});
          continue;
        }
        bool need = task.captures[sn] != 0;
        for (const Edge& e : edges)
          if (e.valid() && task.needed[task.slot(e.fn.get())]) need = true;
        task.needed[sn] = need;
        state[sn] = 2;
        st.pop_back();
      }
    }
  }

  // 3. seed root gradients
  if (is_anomaly_enabled())
    for (size_t i = 0; i < root_grads.size(); ++i) anomaly_check_root_grad(root_grads[i], i);
  for (auto& ri : root_inputs) {
    Tensor& slot = task.grad_slot(ri.first.fn.get(), ri.first.input_nr);
    slot = accumulate(slot, ri.second);
  }

  TensorList captured(capture.size());
  std::vector<bool> got(capture.size(), false);

  // 4. run nodes whose dependencies are satisfied, the most recently created first
  // (as PyTorch, for memory locality): a max-heap on the sequence number
  GradModeGuard mode(create_graph);
  std::vector<std::pair<uint64_t, uint32_t>> ready;  // (sequence_nr, slot)
  for (uint32_t i = 0; i < nn; ++i)
    if (task.deps[i] == 0) ready.push_back({task.nodes[i]->sequence_nr(), i});
  std::make_heap(ready.begin(), ready.end());

  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end());
    const uint32_t sn = ready.back().second;
    ready.pop_back();
    Node* n = task.nodes[sn];
    const uint32_t no = n->num_outputs();
    auto first = task.grads.begin() + static_cast<std::ptrdiff_t>(task.grad_off[sn]);
    TensorList buf(std::make_move_iterator(first), std::make_move_iterator(first + no));

    if (!capture.empty() && task.captures[sn])
      for (size_t i = 0; i < capture.size(); ++i)
        if (capture[i].fn.get() == n) {
          captured[i] = buf[capture[i].input_nr];
          got[i] = true;
        }

    bool run = std::any_of(buf.begin(), buf.end(), [](const Tensor& t) { return t.defined(); });
    const auto& edges = n->next_edges();
    if (run && !capture.empty()) {  // grad(): only nodes with a path to a requested input
      run = dynamic_cast<AccumulateGrad*>(n) == nullptr;
      bool child_needed = false;
      for (const Edge& e : edges)
        if (e.valid() && task.needed[task.slot(e.fn.get())]) child_needed = true;
      run = run && child_needed;
    }
    TensorList out;
    if (run) {
      if (!capture.empty()) {
        std::vector<bool> mask(edges.size());
        for (size_t i = 0; i < edges.size(); ++i)
          mask[i] = edges[i].valid() && task.needed[task.slot(edges[i].fn.get())];
        n->set_needs_input_grad(std::move(mask));
      } else {
        n->clear_needs_input_grad();
      }
      // anomaly mode: the gradients the node returns are checked (one branch when off)
      out = is_anomaly_enabled() ? anomaly_apply(*n, std::move(buf)) : n->apply(std::move(buf));
      if (!keep_graph) n->release_saved();
      GENAI_CHECK(out.empty() || out.size() == edges.size(), "backward: op '", n->name(), "' returned ", out.size(),
                  " gradients for ", edges.size(), " inputs; this is a bug in its backward formula");
    }
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      if (i < out.size() && out[i].defined()) {
        Tensor& slot = task.grad_slot(c, e.input_nr);
        slot = accumulate(slot, out[i]);
      }
      const uint32_t sc = task.slot(c);
      if (--task.deps[sc] == 0) {
        ready.push_back({c->sequence_nr(), sc});
        std::push_heap(ready.begin(), ready.end());
      }
    }
  }

  if (!capture.empty()) {
    for (size_t i = 0; i < capture.size(); ++i)
      GENAI_CHECK(allow_unused || got[i] || !capture[i].valid(), "grad: input ", i,
                  " was not used in the graph of the outputs (or does not require grad); hint: pass "
                  "allow_unused=true to get an undefined gradient for it");
  }
  return captured;
}

inline TensorList default_root_grads(const TensorList& outputs, const TensorList& grads, const char* op) {
  GENAI_CHECK(grads.empty() || grads.size() == outputs.size(), op, ": got ", grads.size(), " gradients for ",
              outputs.size(), " outputs");
  TensorList r(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!grads.empty() && grads[i].defined()) {
      GENAI_CHECK(grads[i].shape() == outputs[i].shape(), op, ": the gradient for output ", i, " has shape ",
                  shape_str(grads[i].shape()), " but the output has shape ", shape_str(outputs[i].shape()));
      r[i] = grads[i];
    } else {
      GENAI_CHECK(outputs[i].defined() && outputs[i].numel() == 1, op, ": grad can be implicitly created only for "
                  "one-element outputs, but output ", i, " has shape ",
                  outputs[i].defined() ? shape_str(outputs[i].shape()) : std::string("(undefined)"),
                  "; hint: pass a gradient tensor of the output's shape, or reduce the output first (e.g. .sum())");
      r[i] = ones(outputs[i].shape(), outputs[i].dtype());
    }
  }
  return r;
}

}  // namespace detail

/// Accumulates into .grad() of every leaf the gradients of `outputs` (weighted by `grads`).
inline void backward(const TensorList& outputs, const TensorList& grads = {}, bool retain_graph = false,
                     bool create_graph = false) {
  TensorList rg = detail::default_root_grads(outputs, grads, "backward");
  detail::run_backward(outputs, rg, retain_graph || create_graph, create_graph, {}, false);
  if (const GradAccumulatedHook& hook = grad_accumulated_hook(); hook.finished) hook.finished(hook.ctx);
}

/// The gradients of `outputs` with respect to `inputs` (as torch.autograd.grad).
/// With create_graph, the result has a graph, so it can be differentiated again.
inline TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                       bool retain_graph = false, bool create_graph = false, bool allow_unused = false) {
  GENAI_CHECK(!inputs.empty(), "grad: expected at least one input");
  TensorList rg = detail::default_root_grads(outputs, grad_outputs, "grad");
  std::vector<Edge> capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    GENAI_CHECK(inputs[i].defined() && inputs[i].requires_grad(), "grad: input ", i,
                " does not require grad; hint: call requires_grad_() on it before the forward pass");
    capture.push_back(gradient_edge(inputs[i]));
  }
  return detail::run_backward(outputs, rg, retain_graph || create_graph, create_graph, capture, allow_unused);
}

}  // namespace autograd

inline void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, gradient.defined() ? TensorList{gradient} : TensorList{}, retain_graph, create_graph);
}

}  // namespace genai
