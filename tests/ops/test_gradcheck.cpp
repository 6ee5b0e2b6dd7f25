// Finite-difference checks of every differentiable primitive op (genai::gradcheck,
// float64, central differences with eps 1e-6, |analytical - numerical| <= 1e-5 +
// 1e-3 |numerical|), second derivatives through create_graph (genai::gradgradcheck)
// for the ops the models differentiate twice, and the fused (grad-mode-off) backward
// kernels against the composite (create_graph) backward in float32 and float64.
//
// Inputs are drawn away from kinks: relu/leaky_relu/elu/abs away from 0, clamp away
// from its bounds, softplus away from its threshold, maximum/minimum/amax/max
// without ties, log/sqrt/pow on positive values, div away from 0.
#include "test_util.hpp"

using namespace genai;

namespace {

Generator& gen() {
  static Generator g(20240611);
  return g;
}

/// A float64 leaf requiring grad: normal values times `scale`.
Tensor rn(const Shape& s, double scale = 1.0) { return mul(randn(s, kFloat64, gen()), scale).requires_grad_(); }
/// Uniform in [lo, hi).
Tensor un(const Shape& s, double lo, double hi) {
  return add(mul(rand(s, kFloat64, gen()), hi - lo), lo).requires_grad_();
}
/// |x| in [lo, hi) with a random sign (away from 0).
Tensor away(const Shape& s, double lo, double hi) {
  Tensor sgn = sub(mul(to(gt(rand(s, kFloat64, gen()), 0.5), kFloat64), 2.0), ones({}, kFloat64));
  return mul(add(mul(rand(s, kFloat64, gen()), hi - lo), lo), sgn).requires_grad_();
}
/// Distinct values (no ties, gaps >= 0.1), shuffled, in a tensor of shape s.
Tensor distinct(const Shape& s) {
  int64_t n = shape_numel(s);
  Tensor perm = to(randperm(n, gen()), kFloat64);
  return reshape(add(mul(perm, 0.37), -0.37 * static_cast<double>(n) / 2), s).detach().requires_grad_();
}
Tensor ix(std::vector<int64_t> v, const Shape& s) { return tensor(v, s); }

void check_grad(const std::string& what, const autograd::GradcheckFn& fn, const TensorList& in, bool second = false) {
  INFO(what);
  auto r = gradcheck(fn, in);
  INFO("gradcheck: " << r.message << " (max abs err " << r.max_abs_err << ")");
  CHECK(r.ok);
  if (second) {
    auto r2 = gradgradcheck(fn, in);
    INFO("gradgradcheck: " << r2.message << " (max abs err " << r2.max_abs_err << ")");
    CHECK(r2.ok);
  }
}

constexpr bool kSecond = true;  // also run gradgradcheck

}  // namespace

TEST_CASE("gradcheck and gradgradcheck detect wrong derivatives", "[ops][gradcheck]") {
  // x * detach(x): the value is x^2 but backward sees only one factor (analytical x, numerical 2x)
  CHECK(!gradcheck([](const TensorList& x) { return mul(x[0], x[0].detach()); }, {rn({2, 3})}).ok);
  // 3 detach(x^2) x - 2 detach(x^3): the value is x^3 and the first derivative 3 x^2 is right, but the
  // gradient has no path back to x, so its derivative (6 x v) is missed
  auto f = [](const TensorList& x) {
    return sub(mul(mul(square(x[0]).detach(), x[0]), 3.0), mul(pow(x[0], 3.0).detach(), 2.0));
  };
  Tensor x = un({2, 3}, 0.5, 2.0);
  CHECK(gradcheck(f, {x}).ok);
  CHECK(!gradgradcheck(f, {x}).ok);
}

TEST_CASE("gradcheck: copies and views", "[ops][gradcheck]") {
  {  // to: linear, so eps 1e-2 is exact up to float32 rounding (~1e-7 / 1e-2)
    auto r = gradcheck([](const TensorList& x) { return mul(to(to(x[0], kFloat32), kFloat64), 3.0); }, {rn({2, 3})},
                       1e-2, 1e-4, 1e-3);
    INFO(r.message);
    CHECK(r.ok);
  }
  check_grad("clone", [](const TensorList& x) { return clone(x[0].t()); }, {rn({3, 2})});
  check_grad("contiguous of a transpose", [](const TensorList& x) { return contiguous(x[0].t()); }, {rn({3, 2})});
  check_grad("view", [](const TensorList& x) { return view(x[0], {3, -1}); }, {rn({2, 3, 2})}, kSecond);
  check_grad("reshape (copy path)", [](const TensorList& x) { return reshape(x[0].t(), {-1}); }, {rn({3, 4})}, kSecond);
  check_grad("reshape (view path)", [](const TensorList& x) { return reshape(x[0], {4, 3}); }, {rn({2, 6})}, kSecond);
  check_grad("flatten", [](const TensorList& x) { return flatten(x[0], 1); }, {rn({2, 3, 2})});
  check_grad("transpose", [](const TensorList& x) { return transpose(x[0], -1, 0); }, {rn({2, 3, 4})}, kSecond);
  check_grad("permute", [](const TensorList& x) { return permute(x[0], {2, 0, 1}); }, {rn({2, 3, 4})}, kSecond);
  check_grad("narrow", [](const TensorList& x) { return narrow(x[0], 1, 1, 3); }, {rn({3, 5})}, kSecond);
  check_grad("slice with step", [](const TensorList& x) { return slice(x[0], 1, 1, 6, 2); }, {rn({3, 6})}, kSecond);
  check_grad("select", [](const TensorList& x) { return select(x[0], 1, -1); }, {rn({2, 3, 4})}, kSecond);
  check_grad("expand", [](const TensorList& x) { return expand(x[0], {2, 3, 4}); }, {rn({3, 1})}, kSecond);
  check_grad("expand of a 0-d tensor", [](const TensorList& x) { return expand(x[0], {2, 3}); }, {rn({})}, kSecond);
  check_grad("squeeze", [](const TensorList& x) { return squeeze(x[0]); }, {rn({1, 3, 1, 2})}, kSecond);
  check_grad("squeeze(dim)", [](const TensorList& x) { return squeeze(x[0], -2); }, {rn({1, 3, 1, 2})});
  check_grad("unsqueeze", [](const TensorList& x) { return unsqueeze(x[0], 1); }, {rn({2, 3})}, kSecond);
  check_grad("split (outputs weighted and joined)",
             [](const TensorList& x) {
               TensorList p = split(x[0], 2, 0);
               return cat({p[0], mul(p[1], 2.0), mul(p[2], -3.0)}, 0);
             },
             {rn({5, 2})}, kSecond);
  check_grad("split_with_sizes",
             [](const TensorList& x) {
               TensorList p = split_with_sizes(x[0], {1, 3, 1}, -1);
               return cat({mul(p[2], 2.0), p[0], square(p[1])}, 1);
             },
             {rn({2, 5})}, kSecond);
  check_grad("chunk",
             [](const TensorList& x) {
               TensorList p = chunk(x[0], 3, 1);
               return cat({exp(p[0]), p[1], mul(p[2], 0.5)}, 1);
             },
             {rn({2, 5})}, kSecond);
  check_grad("a chain of views then a nonlinearity",
             [](const TensorList& x) { return square(permute(reshape(narrow(x[0].t(), 0, 1, 2), {2, 2, 2}), {1, 2, 0})); },
             {rn({4, 3})}, kSecond);
}

TEST_CASE("gradcheck: binary arithmetic", "[ops][gradcheck]") {
  check_grad("add (broadcast)", [](const TensorList& x) { return add(x[0], x[1]); }, {rn({2, 1, 3}), rn({4, 1})}, kSecond);
  check_grad("add (0-d)", [](const TensorList& x) { return add(x[0], x[1]); }, {rn({}), rn({2, 3})}, kSecond);
  check_grad("sub (broadcast)", [](const TensorList& x) { return sub(x[0], x[1]); }, {rn({3}), rn({2, 1})}, kSecond);
  check_grad("mul (broadcast)", [](const TensorList& x) { return mul(x[0], x[1]); }, {rn({2, 3, 1}), rn({1, 4})},
             kSecond);
  check_grad("mul (same input twice)", [](const TensorList& x) { return mul(x[0], x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("div (broadcast)", [](const TensorList& x) { return div(x[0], x[1]); }, {rn({2, 3}), away({3}, 0.5, 2.0)},
             kSecond);
  check_grad("div (broadcast numerator)", [](const TensorList& x) { return div(x[0], x[1]); },
             {rn({3}), away({2, 3}, 0.5, 2.0)}, kSecond);
  check_grad("add scalar", [](const TensorList& x) { return add(x[0], 2.5); }, {rn({2, 3})}, kSecond);
  check_grad("mul scalar", [](const TensorList& x) { return mul(x[0], -3.0); }, {rn({2, 3})}, kSecond);
  check_grad("div by scalar", [](const TensorList& x) { return x[0] / 4.0; }, {rn({2, 3})}, kSecond);
  check_grad("scalar - tensor", [](const TensorList& x) { return 1.5 - x[0]; }, {rn({2, 3})}, kSecond);
  check_grad("scalar / tensor", [](const TensorList& x) { return div(2.0, x[0]); }, {away({2, 3}, 0.5, 2.0)}, kSecond);
  check_grad("neg", [](const TensorList& x) { return neg(x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("maximum (no ties)", [](const TensorList& x) { return maximum(x[0], x[1]); },
             {distinct({2, 3}), add(distinct({3}), 0.05).detach().requires_grad_()});
  check_grad("minimum (no ties)", [](const TensorList& x) { return minimum(x[0], x[1]); },
             {distinct({2, 3}), add(distinct({3}), 0.05).detach().requires_grad_()});
}

TEST_CASE("gradcheck: unary math and activations", "[ops][gradcheck]") {
  check_grad("exp", [](const TensorList& x) { return exp(x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("log", [](const TensorList& x) { return log(x[0]); }, {un({2, 3}, 0.5, 3.0)}, kSecond);
  check_grad("log1p", [](const TensorList& x) { return log1p(x[0]); }, {un({2, 3}, -0.5, 3.0)}, kSecond);
  check_grad("sqrt", [](const TensorList& x) { return sqrt(x[0]); }, {un({2, 3}, 0.5, 3.0)}, kSecond);
  check_grad("rsqrt", [](const TensorList& x) { return rsqrt(x[0]); }, {un({2, 3}, 0.5, 3.0)}, kSecond);
  check_grad("square", [](const TensorList& x) { return square(x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("pow 3", [](const TensorList& x) { return pow(x[0], 3.0); }, {rn({2, 3})}, kSecond);
  check_grad("pow 0.5", [](const TensorList& x) { return pow(x[0], 0.5); }, {un({2, 3}, 0.5, 3.0)}, kSecond);
  check_grad("pow -2", [](const TensorList& x) { return pow(x[0], -2.0); }, {away({2, 3}, 0.5, 2.0)}, kSecond);
  check_grad("pow 0", [](const TensorList& x) { return pow(x[0], 0.0); }, {rn({2, 3})}, kSecond);
  check_grad("pow tensor (broadcast exponent)", [](const TensorList& x) { return pow(x[0], x[1]); },
             {un({2, 3}, 0.5, 2.0), rn({3})}, kSecond);
  check_grad("abs", [](const TensorList& x) { return abs(x[0]); }, {away({2, 3}, 0.1, 2.0)}, kSecond);
  check_grad("sign (zero gradient)", [](const TensorList& x) { return sign(x[0]); }, {away({2, 3}, 0.1, 2.0)});
  check_grad("clamp", [](const TensorList& x) { return clamp(x[0], -0.5, 0.5); },
             {tensor({-2.0, -0.7, -0.3, 0.0, 0.2, 0.45, 0.6, 1.5}, kFloat64).requires_grad_()}, kSecond);
  check_grad("clamp_min", [](const TensorList& x) { return clamp_min(x[0], 0.1); }, {away({2, 3}, 0.2, 2.0)});
  check_grad("clamp_max", [](const TensorList& x) { return clamp_max(x[0], -0.1); }, {away({2, 3}, 0.2, 2.0)});
  check_grad("sin", [](const TensorList& x) { return sin(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("cos", [](const TensorList& x) { return cos(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("erf", [](const TensorList& x) { return erf(x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("tanh", [](const TensorList& x) { return tanh(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("sigmoid", [](const TensorList& x) { return sigmoid(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("relu (away from 0)", [](const TensorList& x) { return relu(x[0]); }, {away({2, 3}, 0.1, 2.0)}, kSecond);
  check_grad("leaky_relu", [](const TensorList& x) { return leaky_relu(x[0], 0.2); }, {away({2, 3}, 0.1, 2.0)},
             kSecond);
  check_grad("elu", [](const TensorList& x) { return elu(x[0], 1.5); }, {away({2, 3}, 0.1, 2.0)}, kSecond);
  check_grad("gelu (erf)", [](const TensorList& x) { return gelu(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("gelu (tanh)", [](const TensorList& x) { return gelu(x[0], "tanh"); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("silu", [](const TensorList& x) { return silu(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("softplus", [](const TensorList& x) { return softplus(x[0]); }, {rn({2, 3}, 2.0)}, kSecond);
  check_grad("softplus (both sides of the threshold)", [](const TensorList& x) { return softplus(x[0], 2.0, 5.0); },
             {tensor({-3.0, -1.0, 0.3, 1.0, 2.3, 2.7, 4.0}, kFloat64).requires_grad_()}, kSecond);
}

TEST_CASE("gradcheck: where and masked_fill", "[ops][gradcheck]") {
  Tensor c = tensor(std::vector<int64_t>{1, 0, 1}, {3, 1}).to(kBool);
  check_grad("where (broadcast condition and values)",
             [c](const TensorList& x) { return where(c, x[0], x[1]); }, {rn({1, 4}), rn({3, 4})}, kSecond);
  check_grad("where with a scalar", [c](const TensorList& x) { return where(c, x[0], 0.5); }, {rn({3, 2})}, kSecond);
  check_grad("masked_fill", [c](const TensorList& x) { return masked_fill(x[0], c, -2.0); }, {rn({2, 3, 4})},
             kSecond);
  check_grad("triu", [](const TensorList& x) { return triu(x[0], -1); }, {rn({2, 3, 4})});
  check_grad("tril", [](const TensorList& x) { return tril(x[0], 1); }, {rn({4, 3})});
}

TEST_CASE("gradcheck: reductions", "[ops][gradcheck]") {
  check_grad("sum", [](const TensorList& x) { return sum(x[0]); }, {rn({2, 3, 2})}, kSecond);
  check_grad("sum over dims", [](const TensorList& x) { return sum(x[0], {0, 2}); }, {rn({2, 3, 2})}, kSecond);
  check_grad("sum keepdim, negative dim", [](const TensorList& x) { return sum(x[0], {-1}, true); }, {rn({2, 3, 2})},
             kSecond);
  check_grad("mean", [](const TensorList& x) { return mean(x[0]); }, {rn({2, 3})}, kSecond);
  check_grad("mean over dims keepdim", [](const TensorList& x) { return mean(x[0], {0, 2}, true); }, {rn({2, 3, 2})},
             kSecond);
  check_grad("var", [](const TensorList& x) { return var(x[0], {1}); }, {rn({2, 4})}, kSecond);
  check_grad("var correction 0 over dims", [](const TensorList& x) { return var(x[0], {0, -1}, 0, true); },
             {rn({2, 3, 2})}, kSecond);
  check_grad("amax (no ties)", [](const TensorList& x) { return amax(x[0], {1}); }, {distinct({3, 4})}, kSecond);
  check_grad("amax over dims keepdim", [](const TensorList& x) { return amax(x[0], {0, 2}, true); },
             {distinct({2, 3, 2})}, kSecond);
  check_grad("amin", [](const TensorList& x) { return amin(x[0], {-1}); }, {distinct({3, 4})}, kSecond);
  check_grad("max()", [](const TensorList& x) { return max(x[0]); }, {distinct({3, 4})});
  check_grad("min()", [](const TensorList& x) { return min(x[0]); }, {distinct({3, 4})});
  check_grad("max(dim) values", [](const TensorList& x) { return max(x[0], 1).values; }, {distinct({3, 4})}, kSecond);
  check_grad("min(dim) values keepdim", [](const TensorList& x) { return min(x[0], 0, true).values; },
             {distinct({3, 4})});
  check_grad("logsumexp", [](const TensorList& x) { return logsumexp(x[0], {1}); }, {rn({2, 4, 2}, 2.0)}, kSecond);
  check_grad("logsumexp over dims keepdim", [](const TensorList& x) { return logsumexp(x[0], {0, 2}, true); },
             {rn({2, 3, 2}, 2.0)}, kSecond);
  check_grad("sum_to", [](const TensorList& x) { return sum_to(x[0], {3, 1}); }, {rn({2, 3, 4})}, kSecond);
}

TEST_CASE("gradcheck: matmul, mm, bmm, linear", "[ops][gradcheck]") {
  check_grad("matmul 2-d", [](const TensorList& x) { return matmul(x[0], x[1]); }, {rn({3, 4}), rn({4, 2})}, kSecond);
  check_grad("matmul broadcast batch", [](const TensorList& x) { return matmul(x[0], x[1]); },
             {rn({2, 1, 2, 3}), rn({3, 3, 2})}, kSecond);
  check_grad("matmul 1-d x 1-d", [](const TensorList& x) { return matmul(x[0], x[1]); }, {rn({4}), rn({4})}, kSecond);
  check_grad("matmul 1-d x 3-d", [](const TensorList& x) { return matmul(x[0], x[1]); }, {rn({3}), rn({2, 3, 2})},
             kSecond);
  check_grad("matmul 3-d x 1-d", [](const TensorList& x) { return matmul(x[0], x[1]); }, {rn({2, 2, 3}), rn({3})},
             kSecond);
  check_grad("matmul of transposed operands", [](const TensorList& x) { return matmul(x[0].t(), x[1].t()); },
             {rn({4, 3}), rn({2, 4})}, kSecond);
  check_grad("mm", [](const TensorList& x) { return mm(x[0], x[1]); }, {rn({2, 3}), rn({3, 2})});
  check_grad("bmm", [](const TensorList& x) { return bmm(x[0], x[1]); }, {rn({2, 2, 3}), rn({2, 3, 2})}, kSecond);
  check_grad("linear", [](const TensorList& x) { return linear(x[0], x[1], x[2]); },
             {rn({2, 2, 3}), rn({4, 3}), rn({4})}, kSecond);
  check_grad("linear without bias, 1-d input", [](const TensorList& x) { return linear(x[0], x[1]); },
             {rn({3}), rn({4, 3})});
}

TEST_CASE("gradcheck: softmax and log_softmax", "[ops][gradcheck]") {
  check_grad("softmax last dim", [](const TensorList& x) { return softmax(x[0], -1); }, {rn({2, 4}, 2.0)}, kSecond);
  check_grad("softmax middle dim", [](const TensorList& x) { return softmax(x[0], 1); }, {rn({2, 3, 2}, 2.0)},
             kSecond);
  check_grad("softmax of a transpose", [](const TensorList& x) { return softmax(x[0].t(), -1); }, {rn({4, 2})});
  check_grad("log_softmax last dim", [](const TensorList& x) { return log_softmax(x[0], -1); }, {rn({2, 4}, 2.0)},
             kSecond);
  check_grad("log_softmax dim 0", [](const TensorList& x) { return log_softmax(x[0], 0); }, {rn({3, 2, 2}, 2.0)},
             kSecond);
  check_grad("softmax with large offsets", [](const TensorList& x) { return softmax(add(x[0], 500.0), 1); },
             {rn({2, 3})}, kSecond);
}

TEST_CASE("gradcheck: cat, stack and indexing", "[ops][gradcheck]") {
  check_grad("cat of differently sized parts", [](const TensorList& x) { return cat({x[0], x[1], x[2]}, 1); },
             {rn({2, 1}), rn({2, 3}), rn({2, 2})}, kSecond);
  check_grad("cat negative dim, transposed part", [](const TensorList& x) { return cat({x[0].t(), x[1]}, -2); },
             {rn({3, 2}), rn({1, 3})}, kSecond);
  check_grad("stack", [](const TensorList& x) { return stack({x[0], x[1]}, -1); }, {rn({2, 3}), rn({2, 3})}, kSecond);
  Tensor isel = ix({2, 0, 2, 3}, {4});
  check_grad("index_select (repeated indices)", [isel](const TensorList& x) { return index_select(x[0], 0, isel); },
             {rn({4, 3})}, kSecond);
  Tensor iadd = ix({0, 2, 0}, {3});
  check_grad("index_add", [iadd](const TensorList& x) { return index_add(x[0], 1, iadd, x[1]); },
             {rn({2, 4}), rn({2, 3})}, kSecond);
  Tensor ig = ix({0, 0, 3, 1, 2, 2}, {3, 2});
  check_grad("gather (repeated indices)", [ig](const TensorList& x) { return gather(x[0], 1, ig); },
             {rn({3, 4})}, kSecond);
  Tensor isc = ix({0, 1, 2, 0, 0, 1, 0, 0}, {2, 4});
  check_grad("scatter_add (repeated indices)", [isc](const TensorList& x) { return scatter_add(x[0], 0, isc, x[1]); },
             {rn({3, 4}), rn({2, 4})}, kSecond);
  Tensor ismall = ix({3, 3, 0, 1}, {2, 2});
  check_grad("scatter_add with a source larger than the index",
             [ismall](const TensorList& x) { return scatter_add(x[0], 1, ismall, x[1]); }, {rn({3, 4}), rn({3, 3})},
             kSecond);
}

// The hot activations and softmax have a fused backward kernel, used when grad
// mode is off during backward (the usual case), and a composite one made of
// tensor ops, used with create_graph. Both must give the same gradient.
TEST_CASE("fused backward kernels agree with the composite backward", "[ops][gradcheck]") {
  using Fn = Tensor (*)(const Tensor&);
  const std::vector<std::pair<const char*, Fn>> ops = {
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu (erf)", [](const Tensor& x) { return gelu(x); }},
      {"gelu (tanh)", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"softmax last dim", [](const Tensor& x) { return softmax(x, -1); }},
      {"softmax dim 0", [](const Tensor& x) { return softmax(x, 0); }},
      {"log_softmax last dim", [](const Tensor& x) { return log_softmax(x, -1); }},
      {"log_softmax dim 1", [](const Tensor& x) { return log_softmax(x, 1); }},
  };
  Generator g(7);
  // away from 0 (relu's kink), a few large values; a (3, 4, 5) and a transposed (non-contiguous) input
  Tensor x64 = mul(randn({3, 4, 5}, kFloat64, g), 3.0);
  x64 = where(lt(abs(x64), 0.05), 0.5, x64);
  Tensor g64 = randn({3, 4, 5}, kFloat64, g);
  for (const auto& [name, fn] : ops) {
    for (bool transposed : {false, true}) {
      INFO(name << (transposed ? " (transposed input)" : ""));
      for (Dtype dt : {kFloat32, kFloat64}) {
        INFO(dtype_name(dt));
        auto grads = [&](bool create_graph) {
          Tensor x = x64.to(dt).clone().requires_grad_();
          Tensor xin = transposed ? transpose(x, 0, 2) : x;
          // the upstream gradient requires grad, so that the composite result has a graph for every op
          // (relu's composite backward does not depend on x differentiably)
          Tensor go = (transposed ? transpose(g64, 0, 2) : g64).to(dt).clone().requires_grad_();
          Tensor y = fn(xin);
          return autograd::grad({y}, {x}, {go}, false, create_graph)[0];
        };
        Tensor fused = grads(false), composite = grads(true);
        CHECK(!fused.requires_grad());    // the fused kernel records nothing
        CHECK(composite.requires_grad());  // the composite backward has a graph
        // the float64 composite gradient is the reference for both
        Tensor ref;
        {
          Tensor x = x64.clone().requires_grad_();
          Tensor xin = transposed ? transpose(x, 0, 2) : x;
          Tensor go = transposed ? transpose(g64, 0, 2) : g64;
          ref = autograd::grad({fn(xin)}, {x}, {go}, false, true)[0].detach();
        }
        const double tol = dt == kFloat32 ? 2e-5 : 1e-12;
        CHECK_CLOSE(fused, ref, tol, tol);
        CHECK_CLOSE(composite.detach(), ref, tol, tol);
      }
    }
  }
}
