// Fixture harness for the nn op tests: runs one case of tests/fixtures/nn.safetensors
// (written by make_nn_fixtures.py) and compares the output and the input gradients
// with PyTorch's, through both backward paths: the fused kernels (create_graph
// false) and the differentiable tensor-op formulas (create_graph true).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <genai/ops/embedding.hpp>
#include <genai/ops/loss.hpp>
#include <genai/ops/norm.hpp>

#include "test_util.hpp"

namespace nn_test {

using namespace genai;

inline const char* kFile = "nn.safetensors";

inline bool has(const std::string& name) { return genai_test::fixtures(kFile).count(name) > 0; }

/// Fixture tensor `name`; floating tensors converted to dt.
inline Tensor fx(const std::string& name, Dtype dt = kFloat64) {
  Tensor t = genai_test::fixture(kFile, name);
  return is_floating(t.dtype()) ? t.to(dt) : t;
}

/// A case's inputs by name; a missing one is an undefined Tensor (None).
struct Inputs {
  std::map<std::string, Tensor> m;
  Tensor operator[](const std::string& k) const {
    auto it = m.find(k);
    return it == m.end() ? Tensor() : it->second;
  }
};

using CaseFn = std::function<Tensor(const Inputs&)>;

/// Tolerances: float64 compares at 1e-10, float32 at 1e-4 (relative and absolute).
inline double rtol_for(Dtype dt) { return dt == kFloat64 ? 1e-10 : 1e-4; }
inline double atol_for(Dtype dt) { return dt == kFloat64 ? 1e-10 : 1e-4; }

/// Runs case `name`: `diff` are the differentiable inputs (fixture <name>.<d>, gradient
/// <name>.d<d>), `consts` the others (fresh copies per call, so in-place running-stat
/// updates do not accumulate). Returns the inputs of the first (forward) call.
inline Inputs run_case(const std::string& name, const std::vector<std::string>& diff,
                       const std::vector<std::string>& consts, const CaseFn& fn, Dtype dt) {
  INFO("case " << name << " (" << dtype_name(dt) << ")");
  const double rtol = rtol_for(dt), atol = atol_for(dt);
  Inputs leaves;
  for (const auto& d : diff) {
    REQUIRE(has(name + "." + d));
    leaves.m[d] = fx(name + "." + d, dt).requires_grad_();
  }
  auto make = [&] {
    Inputs in = leaves;
    for (const auto& c : consts)
      if (has(name + "." + c)) in.m[c] = fx(name + "." + c, dt).clone();
    return in;
  };
  Inputs first = make();
  Tensor y = fn(first);
  CHECK(y.dtype() == dt);
  CHECK_CLOSE(y, fx(name + ".y"), rtol, atol);
  if (diff.empty()) return first;
  TensorList xs;
  for (const auto& d : diff) xs.push_back(leaves[d]);
  Tensor gy = fx(name + ".gy", dt);
  for (bool create_graph : {false, true}) {
    INFO("create_graph = " << create_graph);
    Tensor yy = fn(make());
    TensorList gs = autograd::grad({yy}, xs, {gy}, false, create_graph, true);
    for (size_t i = 0; i < diff.size(); ++i) {
      INFO("gradient of " << diff[i]);
      Tensor g = gs[i].defined() ? gs[i] : zeros(xs[i].shape(), dt);
      CHECK(g.dtype() == dt);
      CHECK_CLOSE(g, fx(name + ".d" + diff[i]), rtol, atol);
    }
  }
  return first;
}

/// run_case in float64 and float32.
inline void run_case_all(const std::string& name, const std::vector<std::string>& diff,
                         const std::vector<std::string>& consts, const CaseFn& fn) {
  for (Dtype dt : {kFloat64, kFloat32}) run_case(name, diff, consts, fn, dt);
}

/// gradcheck / gradgradcheck with the default tolerances (eps 1e-6, atol 1e-5, rtol 1e-3), reporting the message.
inline void check_grad(const autograd::GradcheckFn& fn, const TensorList& inputs, bool second_order = false) {
  auto r = gradcheck(fn, inputs);
  INFO(r.message);
  CHECK(r.ok);
  if (second_order) {
    auto r2 = gradgradcheck(fn, inputs);
    INFO("gradgradcheck: " << r2.message);
    CHECK(r2.ok);
  }
}

/// Gradients of sum(fn(xs) * gy) w.r.t. xs, through the fused (false) or the tensor-op (true) backward.
inline TensorList grads_via(const std::function<Tensor()>& fn, const TensorList& xs, const Tensor& gy,
                            bool create_graph) {
  Tensor y = fn();
  TensorList gs = autograd::grad({y}, xs, {gy}, false, create_graph, true);
  for (auto& g : gs)
    if (g.defined()) g = g.detach();
  return gs;
}

}  // namespace nn_test
