// genai/autograd/engine.hpp: the backward pass (Tensor::backward, autograd::backward,
// autograd::grad).
//
// The engine walks the graph once, iteratively (no recursion: a 100,000-op
// chain is fine): it counts each node's incoming edges from the roots, then runs
// nodes in dependency order (Kahn's algorithm), summing gradients that meet at a
// node before calling it. Leaves accumulate into .grad(). Without retain_graph,
// each node frees its saved tensors after it ran. With create_graph, the backward
// formulas run with grad mode on, so the gradients have a graph of their own.
//
// autograd::grad(outputs, inputs) returns the gradients instead of accumulating
// them, and runs only the nodes on a path to the inputs (as torch.autograd.grad).
#pragma once

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

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

struct GraphTask {
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, TensorList> buffers;
  std::unordered_map<Node*, bool> needed;  // only for grad(): reaches a requested input
  bool keep_graph = false;
  bool create_graph = false;
  bool accumulate_leaves = true;
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
  return {};
}

namespace detail {

/// Runs the backward pass from `roots` (with their gradients). When `capture`
/// is non-empty (autograd::grad), gradients reaching those (node, slot) pairs are
/// returned instead of accumulated into leaves.
inline TensorList run_backward(const TensorList& roots, const TensorList& root_grads, bool keep_graph,
                               bool create_graph, const std::vector<Edge>& capture, bool allow_unused) {
  GraphTask task;
  task.keep_graph = keep_graph;
  task.create_graph = create_graph;
  task.accumulate_leaves = capture.empty();

  std::vector<std::shared_ptr<Node>> root_nodes;
  std::vector<std::pair<Edge, Tensor>> root_inputs;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    GENAI_CHECK(r.defined(), "backward: output ", i, " is an undefined tensor");
    GENAI_CHECK(r.requires_grad(), "backward: element ", i, " of the outputs (shape ", shape_str(r.shape()),
                ") does not require grad and has no grad_fn; hint: call requires_grad_() on the inputs before the "
                "forward pass, and make sure it does not run under NoGradGuard");
    Edge e = gradient_edge(r);
    root_inputs.push_back({e, root_grads[i]});
  }

  // 1. discover the graph and count dependencies (iterative DFS)
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  std::vector<Node*> order;  // discovery order
  for (auto& ri : root_inputs) {
    Node* n = ri.first.fn.get();
    if (seen.insert(n).second) {
      stack.push_back(n);
      task.deps[n];  // ensure an entry
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      task.deps[c] += 1;
      if (seen.insert(c).second) stack.push_back(c);
    }
  }

  // 2. for autograd::grad: which nodes lead to a requested input
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> capture_at;  // node -> (slot, result index)
  for (size_t i = 0; i < capture.size(); ++i)
    if (capture[i].valid()) capture_at[capture[i].fn.get()].push_back({capture[i].input_nr, i});
  if (!capture.empty()) {
    // reverse discovery order visits children before parents only in a DAG
    // topological sense if we compute by fixed point; do a post-order instead
    std::unordered_map<Node*, int> state;  // 0 new, 1 open, 2 done
    for (auto& ri : root_inputs) {
      std::vector<std::pair<Node*, size_t>> st{{ri.first.fn.get(), 0}};
      while (!st.empty()) {
        auto& [n, i] = st.back();
        if (i == 0 && state[n] == 2) {
          st.pop_back();
          continue;
        }
        state[n] = 1;
        const auto& edges = n->next_edges();
        if (i < edges.size()) {
          Node* c = edges[i].fn.get();
          ++i;
          if (c && state[c] == 0) st.push_back({c, 0});
          continue;
        }
        bool need = capture_at.count(n) > 0;
        for (const Edge& e : edges)
          if (e.valid() && task.needed[e.fn.get()]) need = true;
        task.needed[n] = need;
        state[n] = 2;
        st.pop_back();
      }
    }
  }

  // 3. seed root gradients
  for (auto& ri : root_inputs) {
    Node* n = ri.first.fn.get();
    auto& buf = task.buffers[n];
    if (buf.empty()) buf.resize(n->num_outputs());
    buf[ri.first.input_nr] = accumulate(buf[ri.first.input_nr], ri.second);
  }

  TensorList captured(capture.size());
  std::vector<bool> got(capture.size(), false);

  // 4. run nodes whose dependencies are satisfied
  GradModeGuard mode(create_graph);
  std::vector<Node*> ready;
  for (Node* n : order)
    if (task.deps[n] == 0) ready.push_back(n);
  // keep references alive: nodes are owned by tensors and by their parents' edges
  std::vector<std::shared_ptr<Node>> keep;
  for (auto& ri : root_inputs) keep.push_back(ri.first.fn);

  while (!ready.empty()) {
    // run the most recently created node first (as PyTorch), for memory locality
    auto it = std::max_element(ready.begin(), ready.end(),
                               [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); });
    Node* n = *it;
    *it = ready.back();
    ready.pop_back();

    TensorList buf;
    if (auto bi = task.buffers.find(n); bi != task.buffers.end()) {
      buf = std::move(bi->second);
      task.buffers.erase(bi);
    }
    if (buf.empty()) buf.resize(n->num_outputs());

    if (auto ci = capture_at.find(n); ci != capture_at.end())
      for (auto [slot, idx] : ci->second) {
        captured[idx] = buf[slot];
        got[idx] = true;
      }

    bool any = std::any_of(buf.begin(), buf.end(), [](const Tensor& t) { return t.defined(); });
    bool is_leaf_acc = dynamic_cast<AccumulateGrad*>(n) != nullptr;
    bool run = any;
    if (!capture.empty()) {  // grad(): only nodes with a path to a requested input
      run = run && !is_leaf_acc;
      bool child_needed = false;
      for (const Edge& e : n->next_edges())
        if (e.valid() && task.needed[e.fn.get()]) child_needed = true;
      run = run && child_needed;
    }
    TensorList out;
    if (run) {
      const auto& edges = n->next_edges();
      if (!capture.empty()) {
        std::vector<bool> mask(edges.size());
        for (size_t i = 0; i < edges.size(); ++i) mask[i] = edges[i].valid() && task.needed[edges[i].fn.get()];
        n->set_needs_input_grad(std::move(mask));
      } else {
        n->set_needs_input_grad({});
      }
      out = n->apply(std::move(buf));
      if (!keep_graph) n->release_saved();
      GENAI_CHECK(out.empty() || out.size() == edges.size(), "backward: op '", n->name(), "' returned ", out.size(),
                  " gradients for ", edges.size(), " inputs; this is a bug in its backward formula");
    }
    const auto& edges = n->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      if (i < out.size() && out[i].defined()) {
        auto& cb = task.buffers[c];
        if (cb.empty()) cb.resize(c->num_outputs());
        cb[e.input_nr] = accumulate(cb[e.input_nr], out[i]);
      }
      if (--task.deps[c] == 0) ready.push_back(c);
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
