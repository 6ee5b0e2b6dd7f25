// Every primitive op of genai/ops/fwd.hpp against PyTorch 1.13, on the stored
// fixtures of tests/fixtures/ops.safetensors (made by make_ops_fixtures.py).
//
// Each case applies the same function as the Python case of the same name to the
// stored inputs (cast to the dtype under test; a case that transposes or slices an
// input first, to feed the op a non-contiguous tensor, says so in its name and
// does the same as its Python twin), then compares
//   - every output with NAME.out<j>   (floating: CHECK_CLOSE; int64/bool: exactly, with the dtype),
//   - after backward of sum_j <out_j, NAME.gout<j>>, the gradient of every
//     floating-point input with NAME.grad<i> (an input that got no gradient counts as zeros).
// Tolerances (|actual - expected| <= atol + rtol |expected|): float64 rtol 1e-10,
// atol 1e-12; float32 rtol 1e-4, atol 1e-5 (the inputs are float32-representable,
// so the float32 run only adds float32 rounding inside the op). Cases listed more
// than once check an alias (member function, operator) of the same op.
#include <limits>
#include <set>

#include "test_util.hpp"

using namespace genai;

namespace {

const char* const kFile = "ops.safetensors";

using CaseFn = TensorList (*)(const TensorList& x);

struct Tol {
  double rtol64 = 1e-10, atol64 = 1e-12;
  double rtol32 = 1e-4, atol32 = 1e-5;
  bool f32 = true;  // also run in float32
};

struct OpCase {
  const char* name;  // the fixture case
  CaseFn fn;
  Tol tol;
};

TensorList as_list(const Tensor& t) { return {t}; }
TensorList as_list(const TensorList& t) { return t; }
TensorList as_list(const ValuesIndices& v) { return {v.values, v.indices}; }

#define CASE(name, ...) OpCase{name, [](const TensorList& x) -> TensorList { return as_list(__VA_ARGS__); }, Tol{}}
#define CASE_TOL(name, tol, ...) OpCase{name, [](const TensorList& x) -> TensorList { return as_list(__VA_ARGS__); }, tol}

bool has(const std::string& key) { return genai_test::fixtures(kFile).count(key) > 0; }

/// The dtype an op's floating output must have when its floating inputs have dtype dt.
Dtype expected_float_dtype(const std::string& name, Dtype dt, const TensorList& ins) {
  if (name == "to_f32") return kFloat32;
  if (name == "to_f64") return kFloat64;
  for (const Tensor& t : ins)
    if (t.is_floating_point()) return dt;
  return kFloat32;  // integer inputs, floating result (true division): the default dtype, as torch
}

void run_case(const OpCase& c, Dtype dt) {
  const std::string nm = c.name;
  const bool f64 = dt == kFloat64;
  const double rtol = f64 ? c.tol.rtol64 : c.tol.rtol32, atol = f64 ? c.tol.atol64 : c.tol.atol32;
  INFO("case " << nm << " in " << dtype_name(dt));

  // inputs: fresh leaves (never the cached fixture tensors themselves)
  TensorList ins;
  for (int i = 0; has(nm + ".in" + std::to_string(i)); ++i) {
    Tensor v = genai_test::fixture(kFile, nm + ".in" + std::to_string(i));
    if (v.is_floating_point()) {
      v = v.to(dt).clone();
      v.requires_grad_();
    } else {
      v = v.clone();
    }
    ins.push_back(v);
  }
  REQUIRE(!ins.empty());

  TensorList outs = c.fn(ins);
  int n_out = 0;
  while (has(nm + ".out" + std::to_string(n_out))) ++n_out;
  REQUIRE(static_cast<int>(outs.size()) == n_out);

  TensorList roots, gouts;
  for (int j = 0; j < n_out; ++j) {
    const std::string oj = nm + ".out" + std::to_string(j);
    Tensor e = genai_test::fixture(kFile, oj);
    const Tensor& a = outs[static_cast<size_t>(j)];
    INFO("output " << j);
    REQUIRE(a.defined());
    if (e.is_floating_point()) {
      CHECK(a.dtype() == expected_float_dtype(nm, dt, ins));
      CHECK_CLOSE(a, e, rtol, atol);
    } else {  // indices, masks, one-hot: exact, with the dtype
      CHECK(a.dtype() == e.dtype());
      REQUIRE(a.shape() == e.shape());
      CHECK(a.to_vector<int64_t>() == e.to_vector<int64_t>());
    }
    const std::string gj = nm + ".gout" + std::to_string(j);
    if (has(gj) && a.requires_grad()) {
      roots.push_back(a);
      gouts.push_back(genai_test::fixture(kFile, gj).to(a.dtype()));
    }
  }
  if (!roots.empty()) autograd::backward(roots, gouts);

  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].is_floating_point()) continue;
    const std::string gi = nm + ".grad" + std::to_string(i);
    INFO("gradient of input " << i);
    REQUIRE(has(gi));
    Tensor g = ins[i].grad();
    if (!g.defined()) g = zeros_like(ins[i]);  // no path from the outputs: zero gradient
    CHECK(g.dtype() == dt);
    CHECK_CLOSE(g, genai_test::fixture(kFile, gi), rtol, atol);
  }
}

void run_all(const std::vector<OpCase>& cases) {
  for (size_t k = 0; k < cases.size(); ++k) {
    const OpCase& c = cases[k];
    DYNAMIC_SECTION(c.name << " #" << k << " float64") { run_case(c, kFloat64); }
    if (c.tol.f32) DYNAMIC_SECTION(c.name << " #" << k << " float32") { run_case(c, kFloat32); }
  }
}

// ---- the cases, one table per op family ------------------------------------------------

std::vector<OpCase> copy_view_cases() {
  return {
      CASE("to_f32", to(x[0], kFloat32)),
      CASE("to_f32", x[0].to(kFloat32)),
      CASE("to_f64", to(x[0], kFloat64)),
      CASE("to_i64", to(x[0], kInt64)),
      CASE("clone_noncontig", clone(x[0].t())),  // non-contiguous input
      CASE("clone_noncontig", x[0].t().clone()),
      CASE("contiguous_noncontig", contiguous(transpose(x[0], 0, 1))),
      CASE("contiguous_noncontig", x[0].t().contiguous()),
      CASE("view", view(x[0], {6, 4})),
      CASE("view", x[0].view({6, 4})),
      CASE("view_infer", view(x[0], {-1, 3, 2})),
      CASE("view_of_transposed", view(x[0].t(), {6, 2, 2})),
      CASE("reshape_copy", reshape(transpose(x[0], 0, 1), {-1})),
      CASE("reshape_0d", reshape(x[0], {1, 1})),
      CASE("flatten", flatten(x[0], 1)),
      CASE("flatten_range", flatten(x[0], 0, -2)),
      CASE("flatten_0d", flatten(x[0])),
      CASE("transpose_neg", transpose(x[0], -1, 0)),
      CASE("t_member", x[0].t()),
      CASE("permute", permute(x[0], {2, 0, 1})),
      CASE("permute_neg", permute(x[0], {-1, 0, -2})),
      CASE("narrow", narrow(x[0], -1, 1, 3)),
      CASE("narrow_neg_start", narrow(x[0], 1, -2, 2)),
      CASE("slice_step", slice(x[0], 1, 1, 6, 2)),
      CASE("slice_neg_start", slice(x[0], 0, -3, std::numeric_limits<int64_t>::max())),
      CASE("select", select(x[0], 1, -1)),
      CASE("index_op", x[0][1]),
      CASE("expand", expand(x[0], {2, 3, 4})),
      CASE("expand_neg1", expand(x[0], {3, -1})),
      CASE("expand_0d", expand(x[0], {2, 3})),
      CASE("squeeze_all", squeeze(x[0])),
      CASE("squeeze_dim", squeeze(x[0], -2)),
      CASE("squeeze_dim_noop", squeeze(x[0], 0)),
      CASE("unsqueeze_last", unsqueeze(x[0], -1)),
      CASE("unsqueeze_first", unsqueeze(x[0], 0)),
      CASE("split", split(x[0], 2, 0)),
      CASE("split_with_sizes", split_with_sizes(x[0], {1, 3, 1}, -1)),
      CASE("chunk", chunk(x[0], 3, 1)),
      CASE("chunk_uneven", chunk(x[0], 4)),
  };
}

std::vector<OpCase> binary_cases() {
  return {
      CASE("add", add(x[0], x[1])),
      CASE("add", x[0] + x[1]),
      CASE("add_bcast", add(x[0], x[1])),
      CASE("add_0d", add(x[0], x[1])),
      CASE("add_0d_0d", add(x[0], x[1])),
      CASE("add_noncontig", add(x[0].t(), x[1])),  // transposed first operand
      CASE("add_scalar", add(x[0], 2.5)),
      CASE("add_scalar", x[0] + 2.5),
      CASE("radd_scalar", 2.5 + x[0]),
      CASE("add_self", add(x[0], x[0])),
      CASE("sub_bcast", sub(x[0], x[1])),
      CASE("sub_bcast", x[0] - x[1]),
      CASE("sub_scalar", x[0] - 1.5),
      CASE("rsub_scalar", 1.5 - x[0]),
      CASE("mul", mul(x[0], x[1])),
      CASE("mul", x[0] * x[1]),
      CASE("mul_bcast", mul(x[0], x[1])),
      CASE("mul_self", mul(x[0], x[0])),
      CASE("mul_scalar", mul(x[0], -3.0)),
      CASE("mul_scalar", x[0] * -3.0),
      CASE("rmul_scalar", -3.0 * x[0]),
      CASE("mul_noncontig", mul(slice(x[0], 1, 0, 4, 2), x[1].t())),  // strided and transposed
      CASE("div", div(x[0], x[1])),
      CASE("div", x[0] / x[1]),
      CASE("div_bcast", div(x[0], x[1])),
      CASE("div_scalar", x[0] / 4.0),
      CASE("rdiv_scalar", div(2.0, x[0])),
      CASE("rdiv_scalar", 2.0 / x[0]),
      CASE("div_int", div(x[0], x[1])),
      CASE("div_int", x[0] / x[1]),
      CASE("div_int_scalar", x[0] / 2.0),
      CASE("rdiv_int", 2.0 / x[0]),
      CASE("neg", neg(x[0])),
      CASE("neg", -x[0]),
      CASE("neg", x[0].neg()),
      CASE("maximum_ties", maximum(x[0], x[1])),
      CASE("minimum_ties", minimum(x[0], x[1])),
      CASE("maximum_nan", maximum(x[0], x[1])),
      CASE("minimum_nan", minimum(x[0], x[1])),
  };
}

std::vector<OpCase> unary_cases() {
  Tol no_f32;
  no_f32.f32 = false;
  return {
      CASE("exp", exp(x[0])),
      CASE("exp", x[0].exp()),
      CASE("exp_large", exp(x[0])),
      CASE_TOL("exp_huge", no_f32, exp(x[0])),  // e^700 overflows float32
      CASE("log", log(x[0])),
      CASE("log", x[0].log()),
      CASE("log_wide", log(x[0])),
      CASE("log1p", log1p(x[0])),
      CASE("log1p_tiny", x[0].log1p()),
      CASE("sqrt", sqrt(x[0])),
      CASE("rsqrt", rsqrt(x[0])),
      CASE("square", square(x[0])),
      CASE("pow_3", pow(x[0], 3.0)),
      CASE("pow_3", x[0].pow(3.0)),
      CASE("pow_half", pow(x[0], 0.5)),
      CASE("pow_0", pow(x[0], 0.0)),
      CASE("pow_neg2", pow(x[0], -2.0)),
      CASE("pow_2_negative_base", pow(x[0], 2.0)),
      CASE("pow_tensor", pow(x[0], x[1])),
      CASE("pow_tensor", x[0].pow(x[1])),
      CASE("pow_tensor_bcast", pow(x[0], x[1])),
      CASE("pow_tensor_zero_base", pow(x[0], x[1])),
      CASE("pow_tensor_negative_base", pow(x[0], x[1])),
      CASE("abs", abs(x[0])),
      CASE("sign", sign(x[0])),
      CASE("clamp_bounds", clamp(x[0], -1.0, 1.0)),
      CASE("clamp_min", clamp_min(x[0], 0.0)),
      CASE("clamp_max", clamp_max(x[0], 0.5)),
      CASE("clamp_max", x[0].clamp_max(0.5)),
      CASE("sin", sin(x[0])),
      CASE("cos", cos(x[0])),
      CASE("erf", erf(x[0])),
      CASE("erf_large", erf(x[0])),
      CASE("tanh", tanh(x[0])),
      CASE("tanh_large", tanh(x[0])),
      CASE("sigmoid", sigmoid(x[0])),
      CASE("sigmoid_large", sigmoid(x[0])),
      CASE("relu", relu(x[0])),
      CASE("relu_nan", relu(x[0])),
      CASE("leaky_relu", leaky_relu(x[0], 0.2)),
      CASE("leaky_relu_default", leaky_relu(x[0])),
      CASE("elu", elu(x[0], 1.5)),
      CASE("elu_default", elu(x[0])),
      CASE("gelu_none", gelu(x[0])),
      CASE("gelu_tanh", gelu(x[0], "tanh")),
      CASE("gelu_none_large", gelu(x[0], "none")),
      CASE("gelu_tanh_large", gelu(x[0], "tanh")),
      CASE("silu", silu(x[0])),
      CASE("silu_large", silu(x[0])),
      CASE("softplus", softplus(x[0])),
      CASE("softplus_threshold", softplus(x[0], 2.0, 5.0)),
      CASE("softplus_large", softplus(x[0])),
  };
}

std::vector<OpCase> logic_cases() {
  return {
      CASE("eq", eq(x[0], x[1])),
      CASE("ne", ne(x[0], x[1])),
      CASE("lt", lt(x[0], x[1])),
      CASE("lt", x[0] < x[1]),
      CASE("le", le(x[0], x[1])),
      CASE("le", x[0] <= x[1]),
      CASE("gt", gt(x[0], x[1])),
      CASE("gt", x[0] > x[1]),
      CASE("ge", ge(x[0], x[1])),
      CASE("ge", x[0] >= x[1]),
      CASE("eq_scalar", eq(x[0], 0.5)),
      CASE("ne_scalar", ne(x[0], 0.5)),
      CASE("lt_scalar", lt(x[0], 0.5)),
      CASE("lt_scalar", x[0] < 0.5),
      CASE("le_scalar", le(x[0], 0.5)),
      CASE("le_scalar", x[0] <= 0.5),
      CASE("gt_scalar", gt(x[0], 0.5)),
      CASE("gt_scalar", x[0] > 0.5),
      CASE("ge_scalar", ge(x[0], 0.5)),
      CASE("ge_scalar", x[0] >= 0.5),
      CASE("logical_not", logical_not(x[0])),
      CASE("logical_and", logical_and(x[0], x[1])),
      CASE("logical_or", logical_or(x[0], x[1])),
      CASE("where_bcast", where(x[0], x[1], x[2])),
      CASE("where_scalar_other", where(x[0], x[1], 0.5)),
      CASE("where_scalar_self", where(x[0], -0.5, x[1])),
      CASE("allclose", to(tensor(std::vector<int64_t>{allclose(x[0], x[1]), allclose(x[0], x[1], 1e-3),
                                                      allclose(x[0], x[1], 1e-2), allclose(x[0], x[1], 0.0, 1e-2),
                                                      allclose(x[0], x[0])},
                                 {5}),
                          kBool)),
  };
}

std::vector<OpCase> reduce_cases() {
  Tol offset;        // var of values ~100 +- 0.01: float32 cancellation in x - mean(x) (as in PyTorch)
  offset.rtol32 = 5e-3;
  return {
      CASE("sum_all", sum(x[0])),
      CASE("sum_all", x[0].sum()),
      CASE("sum_dim", sum(x[0], {1})),
      CASE("sum_dim_keepdim", sum(x[0], {1}, true)),
      CASE("sum_dim_keepdim", x[0].sum({1}, true)),
      CASE("sum_dims", sum(x[0], {0, 2})),
      CASE("sum_dims_keepdim", sum(x[0], {0, -1}, true)),
      CASE("sum_negdim", sum(x[0], {-1})),
      CASE("sum_dims_empty", sum(x[0], std::vector<int64_t>{})),
      CASE("sum_0d", sum(x[0])),
      CASE("sum_0d_dim", sum(x[0], {0})),
      CASE("sum_noncontig", sum(x[0].t(), {0})),  // transposed input
      CASE("sum_size1", sum(x[0], {1})),
      CASE("sum_leading", sum(x[0], {0, 1})),
      CASE("mean_all", mean(x[0])),
      CASE("mean_all", x[0].mean()),
      CASE("mean_dims_keepdim", mean(x[0], {0, 2}, true)),
      CASE("mean_negdim", mean(x[0], {-2})),
      CASE("var_dim", var(x[0], {1})),
      CASE("var_dim", x[0].var({1})),
      CASE("var_dims_keepdim", var(x[0], {0, 2}, 1, true)),
      CASE("var_correction0", var(x[0], {-1}, 0)),
      CASE("var_correction2", var(x[0], {1}, 2)),
      CASE("var_all", var(x[0], std::vector<int64_t>{})),
      CASE_TOL("var_offset", offset, var(x[0], {1})),
      CASE("amax_ties", amax(x[0], {1})),
      CASE("amax_ties", x[0].amax({1})),
      CASE("amin_ties", amin(x[0], {1})),
      CASE("amax_ties_dim0", amax(x[0], {0}, true)),
      CASE("amax_dims", amax(x[0], {0, 2})),
      CASE("amax_dims_keepdim", amax(x[0], {-1, 0}, true)),
      CASE("amin_negdim", amin(x[0], {-1})),
      CASE("amax_all", amax(x[0], std::vector<int64_t>{})),
      CASE("max_all_ties", max(x[0])),
      CASE("max_all_ties", x[0].max()),
      CASE("min_all_ties", min(x[0])),
      CASE("max_dim_ties", max(x[0], 1)),
      CASE("max_dim_keepdim", max(x[0], 0, true)),
      CASE("min_dim_ties", min(x[0], 1)),
      CASE("min_dim_negdim", min(x[0], -3)),
      CASE("max_dim_0d", max(x[0], 0)),
      CASE("argmax_all", argmax(x[0])),
      CASE("argmax_all", x[0].argmax()),
      CASE("argmax_dim", argmax(x[0], 1)),
      CASE("argmax_dim_keepdim", argmax(x[0], 0, true)),
      CASE("argmin_all", argmin(x[0])),
      CASE("argmin_dim", argmin(x[0], -1)),
      CASE("argmax_3d", argmax(x[0], 1)),
      CASE("logsumexp_dim", logsumexp(x[0], {1})),
      CASE("logsumexp_dims_keepdim", logsumexp(x[0], {0, 2}, true)),
      CASE("logsumexp_large", logsumexp(x[0], {-1})),
      CASE("logsumexp_large", x[0].logsumexp({-1})),
      CASE("logsumexp_large_dim0", logsumexp(x[0], {0})),
      CASE("sum_to", sum_to(x[0], {3, 1})),
      CASE("sum_to_keep_leading", sum_to(x[0], {1, 3, 4})),
      CASE("sum_to_same", sum_to(x[0], {2, 3})),
  };
}

std::vector<OpCase> matmul_cases() {
  return {
      CASE("mm", mm(x[0], x[1])),
      CASE("matmul_2d", matmul(x[0], x[1])),
      CASE("matmul_1d_1d", matmul(x[0], x[1])),
      CASE("matmul_1d_2d", matmul(x[0], x[1])),
      CASE("matmul_2d_1d", matmul(x[0], x[1])),
      CASE("matmul_1d_3d", matmul(x[0], x[1])),
      CASE("matmul_3d_1d", matmul(x[0], x[1])),
      CASE("matmul_bcast", matmul(x[0], x[1])),
      CASE("matmul_3d_2d", matmul(x[0], x[1])),
      CASE("matmul_2d_3d", matmul(x[0], x[1])),
      CASE("matmul_bcast_size1", matmul(x[0], x[1])),
      CASE("matmul_noncontig", matmul(x[0].t(), x[1].t())),  // both transposed
      CASE("matmul_batch_noncontig", matmul(transpose(x[0], 1, 2), slice(x[1], 2, 0, 6, 2))),
      CASE("matmul_size1", matmul(x[0], x[1])),
      CASE("bmm", bmm(x[0], x[1])),
      CASE("linear_bias", linear(x[0], x[1], x[2])),
      CASE("linear_nobias", linear(x[0], x[1])),
      CASE("linear_1d", linear(x[0], x[1], x[2])),
      CASE("matmul_member", x[0].matmul(x[1])),
  };
}

std::vector<OpCase> softmax_cases() {
  return {
      CASE("softmax_last", softmax(x[0], -1)),
      CASE("softmax_last", x[0].softmax(-1)),
      CASE("softmax_dim0", softmax(x[0], 0)),
      CASE("softmax_dim1", softmax(x[0], 1)),
      CASE("softmax_large", softmax(x[0], 1)),
      CASE("softmax_large_dim0", softmax(x[0], 0)),
      CASE("softmax_noncontig", softmax(x[0].t(), -1)),  // transposed input
      CASE("softmax_0d", softmax(x[0], 0)),
      CASE("softmax_size1", softmax(x[0], 1)),
      CASE("log_softmax_last", log_softmax(x[0], -1)),
      CASE("log_softmax_last", x[0].log_softmax(-1)),
      CASE("log_softmax_dim0", log_softmax(x[0], 0)),
      CASE("log_softmax_dim1", log_softmax(x[0], 1)),
      CASE("log_softmax_large", log_softmax(x[0], 1)),
      CASE("log_softmax_large_dim0", log_softmax(x[0], 0)),
      CASE("log_softmax_noncontig", log_softmax(x[0].t(), -1)),  // transposed input
      CASE("log_softmax_0d", log_softmax(x[0], 0)),
      CASE("log_softmax_size1", log_softmax(x[0], 1)),
  };
}

std::vector<OpCase> index_cases() {
  return {
      CASE("cat_dim1", cat({x[0], x[1], x[2]}, 1)),
      CASE("cat_negdim", cat({x[0], x[1]}, -1)),
      CASE("cat_noncontig", cat({x[0].t(), x[1]}, 0)),  // transposed first part
      CASE("cat_skip_empty", cat({x[0], x[1], x[2]}, 0)),
      CASE("cat_single", cat({x[0]}, 0)),
      CASE("stack_0", stack({x[0], x[1], x[2]}, 0)),
      CASE("stack_neg", stack({x[0], x[1]}, -1)),
      CASE("index_select_repeat", index_select(x[0], 0, x[1])),
      CASE("index_select_negdim", index_select(x[0], -1, x[1])),
      CASE("index_select_0d_index", index_select(x[0], 0, x[1])),
      CASE("index_add_repeat", index_add(x[0], 0, x[1], x[2])),
      CASE("index_add_negdim", index_add(x[0], -1, x[1], x[2])),
      CASE("gather_repeat", gather(x[0], 1, x[1])),
      CASE("gather_dim0_small_index", gather(x[0], 0, x[1])),
      CASE("gather_negdim", gather(x[0], -1, x[1])),
      CASE("scatter_add_repeat", scatter_add(x[0], 0, x[1], x[2])),
      CASE("scatter_add_negdim", scatter_add(x[0], -1, x[1], x[2])),
      CASE("scatter_add_small_index", scatter_add(x[0], 1, x[1], x[2])),
      CASE("masked_fill_bcast", masked_fill(x[0], x[1], -2.5)),
      CASE("masked_fill_bcast", x[0].masked_fill(x[1], -2.5)),
      CASE("masked_fill_full", masked_fill(x[0], x[1], 1e9)),
      CASE("one_hot_infer", one_hot(x[0])),
      CASE("one_hot_classes", one_hot(x[0], 5)),
      CASE("triu", triu(x[0])),
      CASE("triu_diag1", triu(x[0], 1)),
      CASE("triu_diag_neg1_batch", triu(x[0], -1)),
      CASE("tril", tril(x[0])),
      CASE("tril_diag1", tril(x[0], 1)),
      CASE("tril_diag_neg1_batch", tril(x[0], -1)),
  };
}

}  // namespace

TEST_CASE("ops fixtures: copy and views match PyTorch", "[ops][fixtures]") { run_all(copy_view_cases()); }
TEST_CASE("ops fixtures: binary arithmetic matches PyTorch", "[ops][fixtures]") { run_all(binary_cases()); }
TEST_CASE("ops fixtures: unary math and activations match PyTorch", "[ops][fixtures]") { run_all(unary_cases()); }
TEST_CASE("ops fixtures: comparisons, logic and where match PyTorch", "[ops][fixtures]") { run_all(logic_cases()); }
TEST_CASE("ops fixtures: reductions match PyTorch", "[ops][fixtures]") { run_all(reduce_cases()); }
TEST_CASE("ops fixtures: matmul, mm, bmm, linear match PyTorch", "[ops][fixtures]") { run_all(matmul_cases()); }
TEST_CASE("ops fixtures: softmax and log_softmax match PyTorch", "[ops][fixtures]") { run_all(softmax_cases()); }
TEST_CASE("ops fixtures: cat, stack and indexing match PyTorch", "[ops][fixtures]") { run_all(index_cases()); }

TEST_CASE("ops fixtures: every stored case is run, every run case is stored", "[ops][fixtures]") {
  std::set<std::string> run;
  for (auto* table : {copy_view_cases, binary_cases, unary_cases, logic_cases, reduce_cases, matmul_cases,
                      softmax_cases, index_cases})
    for (const OpCase& c : table()) run.insert(c.name);
  std::set<std::string> stored;
  for (const auto& [key, value] : genai_test::fixtures(kFile)) stored.insert(key.substr(0, key.find('.')));
  for (const auto& s : stored) {
    INFO("fixture case " << s << " has no C++ case");
    CHECK(run.count(s) == 1);
  }
  for (const auto& s : run) {
    INFO("C++ case " << s << " has no fixture");
    CHECK(stored.count(s) == 1);
  }
}
