// genai/ops/elementwise.hpp: elementwise arithmetic with NumPy broadcasting,
// unary math, activations, comparisons, logical ops and where.
//
// Semantics as torch (including the gradient conventions at kinks: relu'(0) = 0,
// abs'(0) = 0, clamp passes the gradient where lo <= x <= hi, maximum/minimum
// split it evenly on ties). Binary ops promote to the wider dtype (float64 >
// float32 > int64 > bool); a float scalar with an int64 tensor gives float32.
// Backward formulas are tensor ops, so they are differentiable again
// (create_graph); when grad mode is off during backward, the hot activations use
// a fused kernel instead (one pass, no temporaries).
#pragma once

#include <cmath>
#include <string_view>

#include <unsupported/Eigen/SpecialFunctions>

#include "genai/ops/common.hpp"

namespace genai {

namespace detail {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;

/// Broadcasting binary arithmetic on the promoted dtype (bool computes as int64).
inline Tensor binary_arith(const Tensor& a, const Tensor& b, const char* op, BinaryOp k) {
  check_defined(a, op, "first operand");
  check_defined(b, op, "second operand");
  Dtype d = promote_types(a.dtype(), b.dtype());
  if (d == kBool) d = kInt64;
  if (a.shape() == b.shape()) return kernels::binary(k, as_dtype(a, d), as_dtype(b, d), a.shape());
  return kernels::binary(k, as_dtype(a, d), as_dtype(b, d), broadcast_shapes(a.shape(), b.shape(), op));
}

/// The dtype of `x op scalar`: x's, except int64 with a fractional scalar gives float32.
inline Dtype scalar_result_dtype(const Tensor& x, double s) {
  Dtype d = x.dtype();
  if (d == kBool || (d == kInt64 && s != std::floor(s))) d = kFloat32;
  return d;
}

/// x op s (or s op x when `scalar_first`), keeping x's dtype where possible.
inline Tensor scalar_arith(const Tensor& x, double s, const char* op, BinaryOp k, bool scalar_first = false) {
  check_defined(x, op, "input");
  Dtype d = scalar_result_dtype(x, s);
  Tensor xs = as_dtype(x, d), sv = full({}, s, d);
  return scalar_first ? kernels::binary(k, sv, xs, x.shape()) : kernels::binary(k, xs, sv, x.shape());
}

/// Fused activation backward (see kernels::unary_backward).
inline Tensor fused_backward(UnaryOp k, const Tensor& g, const Tensor& t) {
  Tensor tt = t.shape() == g.shape() ? t : contig(expand(t.detach(), g.shape()));
  return kernels::unary_backward(k, contig(g), contig(as_dtype(tt, g.dtype())));
}

/// Comparison producing a bool tensor.
inline Tensor compare(const Tensor& a, const Tensor& b, const char* op, CompareOp k) {
  check_defined(a, op, "first operand");
  check_defined(b, op, "second operand");
  Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  Dtype d = promote_types(a.dtype(), b.dtype());
  return kernels::compare(k, as_dtype(a, d), as_dtype(b, d), out_shape);
}

inline Tensor compare_scalar(const Tensor& a, double s, const char* op, CompareOp k) {
  check_defined(a, op, "input");
  Dtype d = a.dtype() == kBool ? kFloat64 : (a.dtype() == kInt64 && s != std::floor(s) ? kFloat64 : a.dtype());
  return kernels::compare(k, as_dtype(a, d), full({}, s, d), a.shape());
}

}  // namespace detail

// ---- binary arithmetic ----------------------------------------------------------

namespace detail {
using autograd::OpNode;

/// Records a two-input op whose backward needs the input shapes (and maybe the inputs).
/// The shapes are stored only when an input was broadcast (n.shapes empty: both
/// inputs have the output's shape), which saves allocations on the hot path.
inline OpNode& record_binary(const char* name, const Tensor& a, const Tensor& b, Tensor& out, OpNode::BackwardFn fn,
                             bool save_inputs) {
  OpNode& n = autograd::record(name, {a, b}, out, fn);
  if (a.shape() != out.shape() || b.shape() != out.shape()) {
    n.shapes.reserve(2);
    n.shapes.push_back(a.shape());
    n.shapes.push_back(b.shape());
  }
  if (save_inputs) {
    n.save(a);
    n.save(b);
  }
  return n;
}

/// The gradient x of a record_binary op's output, summed back to input i's shape
/// (the adjoint of broadcasting; x itself when nothing was broadcast).
inline Tensor sum_to_input(const OpNode& n, size_t i, const Tensor& x) {
  return n.shapes.empty() ? x : sum_to(x, n.shapes[i]);
}
}  // namespace detail

inline Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_arith(a, b, "add", detail::BinaryOp::Add);
  if (autograd::needs_grad(a, b))
    detail::record_binary("add", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = a + b  =>  da = dout, db = dout (summed over broadcast dims)
      return TensorList{n.needs_input_grad(0) ? detail::sum_to_input(n, 0, g[0]) : Tensor(),
                        n.needs_input_grad(1) ? detail::sum_to_input(n, 1, g[0]) : Tensor()};
    }, false);
  return out;
}

inline Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_arith(a, b, "sub", detail::BinaryOp::Sub);
  if (autograd::needs_grad(a, b))
    detail::record_binary("sub", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = a - b  =>  da = dout, db = -dout
      return TensorList{n.needs_input_grad(0) ? detail::sum_to_input(n, 0, g[0]) : Tensor(),
                        n.needs_input_grad(1) ? neg(detail::sum_to_input(n, 1, g[0])) : Tensor()};
    }, false);
  return out;
}

inline Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_arith(a, b, "mul", detail::BinaryOp::Mul);
  if (autograd::needs_grad(a, b))
    detail::record_binary("mul", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = a * b  =>  da = dout * b, db = dout * a
      return TensorList{n.needs_input_grad(0) ? detail::sum_to_input(n, 0, mul(g[0], n.saved(1))) : Tensor(),
                        n.needs_input_grad(1) ? detail::sum_to_input(n, 1, mul(g[0], n.saved(0))) : Tensor()};
    }, true);
  return out;
}

inline Tensor div(const Tensor& a, const Tensor& b) {
  // true division, as torch: integer and bool operands divide as float32
  if (a.defined() && b.defined() && !is_floating(promote_types(a.dtype(), b.dtype())))
    return div(to(a, kFloat32), to(b, kFloat32));
  Tensor out = detail::binary_arith(a, b, "div", detail::BinaryOp::Div);
  GENAI_CHECK(is_floating(out.dtype()) || !autograd::needs_grad(a, b), "div: integer division has no gradient");
  if (autograd::needs_grad(a, b))
    detail::record_binary("div", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor bv = n.saved(1);
      // out = a / b  =>  da = dout / b, db = -dout a / b^2
      Tensor ga = n.needs_input_grad(0) ? detail::sum_to_input(n, 0, div(g[0], bv)) : Tensor();
      Tensor gb =
          n.needs_input_grad(1) ? detail::sum_to_input(n, 1, neg(div(mul(g[0], n.saved(0)), mul(bv, bv)))) : Tensor();
      return TensorList{ga, gb};
    }, true);
  return out;
}

inline Tensor add(const Tensor& a, double s) {
  Tensor out = detail::scalar_arith(a, s, "add", detail::BinaryOp::Add);
  if (autograd::needs_grad(a))
    autograd::record("add", {a}, out, [](autograd::OpNode&, const TensorList& g) { return TensorList{g[0]}; });
  return out;
}

inline Tensor mul(const Tensor& a, double s) {
  Tensor out = detail::scalar_arith(a, s, "mul", detail::BinaryOp::Mul);
  if (autograd::needs_grad(a)) {
    auto& n = autograd::record("mul", {a}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{mul(g[0], n.reals[0])};  // out = a s  =>  da = dout s
    });
    n.reals = {s};
  }
  return out;
}

namespace detail {
inline Tensor div_scalar(const Tensor& a, double s) {
  check_defined(a, "div", "input");
  if (!is_floating(a.dtype())) return div_scalar(to(a, kFloat32), s);  // true division, as torch
  Tensor out = scalar_arith(a, s, "div", BinaryOp::Div);
  if (autograd::needs_grad(a)) {
    auto& n = autograd::record("div", {a}, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{div_scalar(g[0], n.reals[0])};  // out = a / s  =>  da = dout / s
    });
    n.reals = {s};
  }
  return out;
}
inline Tensor rsub_scalar(double s, const Tensor& a) {
  Tensor out = scalar_arith(a, s, "sub", BinaryOp::Sub, /*scalar_first=*/true);
  if (autograd::needs_grad(a))
    autograd::record("rsub", {a}, out, [](autograd::OpNode&, const TensorList& g) { return TensorList{neg(g[0])}; });
  return out;
}
}  // namespace detail

inline Tensor div(double s, const Tensor& b) {
  Tensor bf = is_floating(b.dtype()) ? b : to(b, kFloat32);
  Tensor out = detail::unary_float(bf, "div", detail::UnaryOp::RDiv, s);
  if (autograd::needs_grad(bf)) {
    auto& n = autograd::record("reciprocal", {bf}, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor bv = n.saved(0);  // out = s / b  =>  db = -dout s / b^2
      return TensorList{neg(div(mul(g[0], n.reals[0]), mul(bv, bv)))};
    });
    n.reals = {s};
    n.save(bf);
  }
  return out;
}

inline Tensor neg(const Tensor& x) {
  detail::check_defined(x, "neg", "input");
  GENAI_CHECK(x.dtype() != kBool, "neg: negation of a bool tensor is not supported; hint: use logical_not");
  Tensor out = detail::scalar_arith(x, 0.0, "neg", detail::BinaryOp::Sub, /*scalar_first=*/true);
  if (autograd::needs_grad(x))
    autograd::record("neg", {x}, out, [](autograd::OpNode&, const TensorList& g) { return TensorList{neg(g[0])}; });
  return out;
}

namespace detail {
/// Backward of maximum (is_max) or minimum: the gradient goes to the selected input, halved on ties.
inline TensorList max_min_backward(autograd::OpNode& n, const Tensor& g, bool is_max) {
  Tensor av = n.saved(0), bv = n.saved(1);
  Tensor half = where(eq(av, bv), mul(g, 0.5), g);
  Tensor a_loses = is_max ? lt(av, bv) : gt(av, bv);
  Tensor b_loses = is_max ? gt(av, bv) : lt(av, bv);
  return TensorList{n.needs_input_grad(0) ? detail::sum_to_input(n, 0, where(a_loses, 0.0, half)) : Tensor(),
                    n.needs_input_grad(1) ? detail::sum_to_input(n, 1, where(b_loses, 0.0, half)) : Tensor()};
}
}  // namespace detail

inline Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_arith(a, b, "maximum", detail::BinaryOp::Max);
  if (autograd::needs_grad(a, b))
    detail::record_binary("maximum", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      return detail::max_min_backward(n, g[0], true);
    }, true);
  return out;
}

inline Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_arith(a, b, "minimum", detail::BinaryOp::Min);
  if (autograd::needs_grad(a, b))
    detail::record_binary("minimum", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      return detail::max_min_backward(n, g[0], false);
    }, true);
  return out;
}

// ---- unary math -----------------------------------------------------------------

namespace detail {
/// Records a one-input op saving its input (save_out = false) or its output.
inline autograd::OpNode& record_unary(const char* name, const Tensor& x, Tensor& out, autograd::OpNode::BackwardFn fn,
                                      bool save_out) {
  auto& n = autograd::record(name, {x}, out, fn);
  if (save_out)
    n.save_output(out);
  else
    n.save(x);
  return n;
}
}  // namespace detail

inline Tensor exp(const Tensor& x) {
  Tensor out = detail::unary_float(x, "exp", detail::UnaryOp::Exp);
  if (autograd::needs_grad(x))
    detail::record_unary("exp", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{mul(g[0], n.saved(0))};  // out = e^x  =>  dx = dout out
    }, true);
  return out;
}

inline Tensor log(const Tensor& x) {
  Tensor out = detail::unary_float(x, "log", detail::UnaryOp::Log);
  if (autograd::needs_grad(x))
    detail::record_unary("log", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{div(g[0], n.saved(0))};  // out = log x  =>  dx = dout / x
    }, false);
  return out;
}

inline Tensor log1p(const Tensor& x) {
  Tensor out = detail::unary_float(x, "log1p", detail::UnaryOp::Log1p);
  if (autograd::needs_grad(x))
    detail::record_unary("log1p", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{div(g[0], add(n.saved(0), 1.0))};  // out = log(1 + x)  =>  dx = dout / (1 + x)
    }, false);
  return out;
}

inline Tensor sqrt(const Tensor& x) {
  Tensor out = detail::unary_float(x, "sqrt", detail::UnaryOp::Sqrt);
  if (autograd::needs_grad(x))
    detail::record_unary("sqrt", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{div(mul(g[0], 0.5), n.saved(0))};  // out = sqrt x  =>  dx = dout / (2 out)
    }, true);
  return out;
}

inline Tensor rsqrt(const Tensor& x) {
  Tensor out = detail::unary_float(x, "rsqrt", detail::UnaryOp::Rsqrt);
  if (autograd::needs_grad(x))
    detail::record_unary("rsqrt", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor o = n.saved(0);  // out = x^-1/2  =>  dx = -dout out^3 / 2
      return TensorList{mul(mul(g[0], -0.5), mul(o, mul(o, o)))};
    }, true);
  return out;
}

inline Tensor square(const Tensor& x) {
  Tensor out = detail::unary_float(x, "square", detail::UnaryOp::Square);
  if (autograd::needs_grad(x))
    detail::record_unary("square", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{mul(g[0], mul(n.saved(0), 2.0))};  // out = x^2  =>  dx = 2 x dout
    }, false);
  return out;
}

inline Tensor pow(const Tensor& x, double p) {
  Tensor out = detail::unary_float(x, "pow", detail::UnaryOp::PowScalar, p);
  if (autograd::needs_grad(x)) {
    auto& n = detail::record_unary("pow", x, out, [](autograd::OpNode& n, const TensorList& g) {
      const double p = n.reals[0];
      if (p == 0.0) return TensorList{zeros_like(g[0])};
      return TensorList{mul(g[0], mul(pow(n.saved(0), p - 1.0), p))};  // out = x^p  =>  dx = dout p x^(p-1)
    }, false);
    n.reals = {p};
  }
  return out;
}

inline Tensor pow(const Tensor& x, const Tensor& p) {
  Tensor out = detail::binary_arith(x, p, "pow", detail::BinaryOp::Pow);
  GENAI_CHECK(is_floating(out.dtype()) || !autograd::needs_grad(x, p), "pow: integer pow has no gradient");
  if (autograd::needs_grad(x, p)) {
    auto& n = detail::record_binary("pow", x, p, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor xv = n.saved(0), pv = n.saved(1);
      // out = x^p  =>  dx = dout p x^(p-1), dp = dout out log x (0 where x = 0 and p >= 0)
      Tensor gx, gp;
      if (n.needs_input_grad(0)) {
        Tensor d = mul(pv, pow(xv, sub(pv, ones({}, pv.dtype()))));
        gx = detail::sum_to_input(n, 0, mul(g[0], where(eq(pv, 0.0), 0.0, d)));
      }
      if (n.needs_input_grad(1)) {
        Tensor d = mul(n.saved(2), log(xv));
        gp = detail::sum_to_input(n, 1, mul(g[0], where(logical_and(eq(xv, 0.0), ge(pv, 0.0)), 0.0, d)));
      }
      return TensorList{gx, gp};
    }, true);
    n.save_output(out);
  }
  return out;
}

inline Tensor sign(const Tensor& x) {
  detail::check_defined(x, "sign", "input");
  if (!is_floating(x.dtype())) return sub(to(gt(x, 0.0), kInt64), to(lt(x, 0.0), kInt64));
  Tensor out = detail::unary_float(x, "sign", detail::UnaryOp::Sign);
  if (autograd::needs_grad(x))  // piecewise constant: a zero gradient (the output requires grad, as in torch)
    autograd::record("sign", {x}, out, [](autograd::OpNode&, const TensorList& g) {
      return TensorList{zeros_like(g[0])};  // out = sign(x)  =>  dx = 0
    });
  return out;
}

inline Tensor abs(const Tensor& x) {
  Tensor out = is_floating(x.dtype()) ? detail::unary_float(x, "abs", detail::UnaryOp::Abs)
                                      : maximum(x.detach(), neg(x.detach()));
  if (autograd::needs_grad(x))
    detail::record_unary("abs", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{mul(g[0], sign(n.saved(0)))};  // out = |x|  =>  dx = dout sign(x), 0 at 0
    }, false);
  return out;
}

namespace detail {
/// clamp to [lo, hi] (either may be infinite); the gradient passes where lo <= x <= hi.
inline Tensor clamp_impl(const Tensor& x, double lo, double hi, const char* op) {
  // integers: an infinite bound (clamp_min/clamp_max) is no bound; converting it to int64 is undefined
  auto int_bound = [&](double v) { return full({}, std::isfinite(v) ? v : 0.0, x.dtype()); };
  Tensor out = is_floating(x.dtype()) ? unary_float(x, op, UnaryOp::Clamp, lo, hi)
               : std::isfinite(lo) && std::isfinite(hi) ? minimum(maximum(x.detach(), int_bound(lo)), int_bound(hi))
               : std::isfinite(lo)                      ? maximum(x.detach(), int_bound(lo))
               : std::isfinite(hi)                      ? minimum(x.detach(), int_bound(hi))
                                                        : clone(x.detach());
  if (autograd::needs_grad(x)) {
    auto& n = record_unary(op, x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor xv = n.saved(0);
      return TensorList{where(logical_and(ge(xv, n.reals[0]), le(xv, n.reals[1])), g[0], 0.0)};
    }, false);
    n.reals = {lo, hi};
  }
  return out;
}
}  // namespace detail

inline Tensor clamp(const Tensor& x, double lo, double hi) {
  GENAI_CHECK(lo <= hi, "clamp: min ", lo, " is greater than max ", hi);
  return detail::clamp_impl(x, lo, hi, "clamp");
}
inline Tensor clamp_min(const Tensor& x, double lo) { return detail::clamp_impl(x, lo, INFINITY, "clamp_min"); }
inline Tensor clamp_max(const Tensor& x, double hi) { return detail::clamp_impl(x, -INFINITY, hi, "clamp_max"); }

inline Tensor sin(const Tensor& x) {
  Tensor out = detail::unary_float(x, "sin", detail::UnaryOp::Sin);
  if (autograd::needs_grad(x))
    detail::record_unary("sin", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{mul(g[0], cos(n.saved(0)))};  // dx = dout cos x
    }, false);
  return out;
}

inline Tensor cos(const Tensor& x) {
  Tensor out = detail::unary_float(x, "cos", detail::UnaryOp::Cos);
  if (autograd::needs_grad(x))
    detail::record_unary("cos", x, out, [](autograd::OpNode& n, const TensorList& g) {
      return TensorList{neg(mul(g[0], sin(n.saved(0))))};  // dx = -dout sin x
    }, false);
  return out;
}

inline Tensor erf(const Tensor& x) {
  Tensor out = detail::unary_float(x, "erf", detail::UnaryOp::Erf);
  if (autograd::needs_grad(x))
    detail::record_unary("erf", x, out, [](autograd::OpNode& n, const TensorList& g) {
      // dx = dout 2/sqrt(pi) e^(-x^2)
      return TensorList{mul(g[0], mul(exp(neg(square(n.saved(0)))), 1.1283791670955126))};
    }, false);
  return out;
}

inline Tensor tanh(const Tensor& x) {
  Tensor out = detail::unary_float(x, "tanh", detail::UnaryOp::Tanh);
  if (autograd::needs_grad(x))
    detail::record_unary("tanh", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor o = n.saved(0);  // dx = dout (1 - out^2)
      if (!autograd::is_grad_enabled()) return TensorList{detail::fused_backward(detail::UnaryOp::Tanh, g[0], o)};
      return TensorList{mul(g[0], detail::rsub_scalar(1.0, square(o)))};
    }, true);
  return out;
}

inline Tensor sigmoid(const Tensor& x) {
  Tensor out = detail::unary_float(x, "sigmoid", detail::UnaryOp::Sigmoid);
  if (autograd::needs_grad(x))
    detail::record_unary("sigmoid", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor o = n.saved(0);  // dx = dout out (1 - out)
      if (!autograd::is_grad_enabled()) return TensorList{detail::fused_backward(detail::UnaryOp::Sigmoid, g[0], o)};
      return TensorList{mul(g[0], mul(o, detail::rsub_scalar(1.0, o)))};
    }, true);
  return out;
}

inline Tensor relu(const Tensor& x) {
  Tensor out = detail::unary_float(x, "relu", detail::UnaryOp::Relu);
  if (autograd::needs_grad(x))
    detail::record_unary("relu", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor o = n.saved(0);  // dx = dout where out > 0 (or NaN, as torch), else 0
      if (!autograd::is_grad_enabled()) return TensorList{detail::fused_backward(detail::UnaryOp::Relu, g[0], o)};
      return TensorList{where(le(o, 0.0), 0.0, g[0])};
    }, true);
  return out;
}

inline Tensor leaky_relu(const Tensor& x, double slope) {
  Tensor out = detail::unary_float(x, "leaky_relu", detail::UnaryOp::LeakyRelu, slope);
  if (autograd::needs_grad(x)) {
    auto& n = detail::record_unary("leaky_relu", x, out, [](autograd::OpNode& n, const TensorList& g) {
      // dx = dout where x > 0, dout * slope elsewhere
      return TensorList{where(gt(n.saved(0), 0.0), g[0], mul(g[0], n.reals[0]))};
    }, false);
    n.reals = {slope};
  }
  return out;
}

inline Tensor elu(const Tensor& x, double alpha) {
  Tensor out = detail::unary_float(x, "elu", detail::UnaryOp::Elu, alpha);
  if (autograd::needs_grad(x)) {
    auto& n = detail::record_unary("elu", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor xv = n.saved(0);  // dx = dout where x > 0, dout alpha e^x elsewhere
      return TensorList{where(gt(xv, 0.0), g[0], mul(g[0], mul(exp(xv), n.reals[0])))};
    }, false);
    n.reals = {alpha};
  }
  return out;
}

namespace detail {
using kernels::detail::kGeluC;
using kernels::detail::kInvSqrt2Pi;
using kernels::detail::kSqrt1_2;
using kernels::detail::kSqrt2OverPi;

/// d gelu / dx as tensor ops (differentiable).
inline Tensor gelu_grad(const Tensor& x, bool tanh_form) {
  if (!tanh_form) {  // Phi(x) + x phi(x)
    Tensor cdf = mul(add(erf(mul(x, kSqrt1_2)), 1.0), 0.5);
    Tensor pdf = mul(exp(mul(square(x), -0.5)), kInvSqrt2Pi);
    return add(cdf, mul(x, pdf));
  }
  Tensor u = mul(add(x, mul(pow(x, 3.0), kGeluC)), kSqrt2OverPi);
  Tensor t = tanh(u);
  Tensor du = mul(add(mul(square(x), 3.0 * kGeluC), 1.0), kSqrt2OverPi);
  return add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, 0.5), rsub_scalar(1.0, square(t))), du));
}
}  // namespace detail

inline Tensor gelu(const Tensor& x, std::string_view approximate) {
  GENAI_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"",
              approximate, "\"");
  const bool tanh_form = approximate == "tanh";
  Tensor out = detail::unary_float(x, "gelu", tanh_form ? detail::UnaryOp::GeluTanh : detail::UnaryOp::GeluErf);
  if (autograd::needs_grad(x)) {
    auto& n = detail::record_unary("gelu", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor xv = n.saved(0);
      const bool tanh_form = n.ints[0] != 0;
      if (!autograd::is_grad_enabled() && !tanh_form)
        return TensorList{detail::fused_backward(detail::UnaryOp::GeluErf, g[0], xv)};
      return TensorList{mul(g[0], detail::gelu_grad(xv, tanh_form))};
    }, false);
    n.ints = {tanh_form ? 1 : 0};
  }
  return out;
}

inline Tensor silu(const Tensor& x) {
  Tensor out = detail::unary_float(x, "silu", detail::UnaryOp::Silu);
  if (autograd::needs_grad(x))
    detail::record_unary("silu", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor xv = n.saved(0);  // dx = dout s (1 + x (1 - s)), s = sigmoid(x)
      if (!autograd::is_grad_enabled()) return TensorList{detail::fused_backward(detail::UnaryOp::Silu, g[0], xv)};
      Tensor s = sigmoid(xv);
      return TensorList{mul(g[0], mul(s, add(mul(xv, detail::rsub_scalar(1.0, s)), 1.0)))};
    }, false);
  return out;
}

inline Tensor softplus(const Tensor& x, double beta, double threshold) {
  Tensor out = detail::unary_float(x, "softplus", detail::UnaryOp::Softplus, beta, threshold);
  if (autograd::needs_grad(x)) {
    auto& n = detail::record_unary("softplus", x, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor bx = mul(n.saved(0), n.reals[0]);
      // dx = dout sigmoid(beta x), or dout above the threshold (linear region)
      return TensorList{where(gt(bx, n.reals[1]), g[0], mul(g[0], sigmoid(bx)))};
    }, false);
    n.reals = {beta, threshold};
  }
  return out;
}

// ---- comparisons and logic --------------------------------------------------------

inline Tensor eq(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "eq", detail::CompareOp::Eq); }
inline Tensor ne(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "ne", detail::CompareOp::Ne); }
inline Tensor lt(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "lt", detail::CompareOp::Lt); }
inline Tensor le(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "le", detail::CompareOp::Le); }
inline Tensor gt(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "gt", detail::CompareOp::Gt); }
inline Tensor ge(const Tensor& a, const Tensor& b) { return detail::compare(a, b, "ge", detail::CompareOp::Ge); }
inline Tensor eq(const Tensor& a, double b) { return detail::compare_scalar(a, b, "eq", detail::CompareOp::Eq); }
inline Tensor ne(const Tensor& a, double b) { return detail::compare_scalar(a, b, "ne", detail::CompareOp::Ne); }
inline Tensor lt(const Tensor& a, double b) { return detail::compare_scalar(a, b, "lt", detail::CompareOp::Lt); }
inline Tensor le(const Tensor& a, double b) { return detail::compare_scalar(a, b, "le", detail::CompareOp::Le); }
inline Tensor gt(const Tensor& a, double b) { return detail::compare_scalar(a, b, "gt", detail::CompareOp::Gt); }
inline Tensor ge(const Tensor& a, double b) { return detail::compare_scalar(a, b, "ge", detail::CompareOp::Ge); }

inline Tensor logical_not(const Tensor& x) { return eq(x, 0.0); }
inline Tensor logical_and(const Tensor& a, const Tensor& b) {
  return detail::compare(a, b, "logical_and", detail::CompareOp::And);
}
inline Tensor logical_or(const Tensor& a, const Tensor& b) {
  return detail::compare(a, b, "logical_or", detail::CompareOp::Or);
}

inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where", "condition");
  detail::check_defined(a, "where", "first value");
  detail::check_defined(b, "where", "second value");
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Dtype d = promote_types(a.dtype(), b.dtype());
  Tensor c = cond.dtype() == kBool ? cond : ne(cond, 0.0);
  Tensor aa = detail::as_dtype(a, d), bb = detail::as_dtype(b, d);
  Tensor out = kernels::where(c, aa, bb, s);
  if (autograd::needs_grad(a, b)) {
    auto& n = detail::record_binary("where", a, b, out, [](autograd::OpNode& n, const TensorList& g) {
      // out = c ? a : b  =>  da = dout where c, db = dout where !c
      Tensor c = n.saved(0), z = zeros({}, g[0].dtype());
      return TensorList{n.needs_input_grad(0) ? detail::sum_to_input(n, 0, where(c, g[0], z)) : Tensor(),
                        n.needs_input_grad(1) ? detail::sum_to_input(n, 1, where(c, z, g[0])) : Tensor()};
    }, false);
    n.save(c);
  }
  return out;
}

inline Tensor where(const Tensor& cond, const Tensor& a, double b) {
  return where(cond, a, full({}, b, is_floating(a.dtype()) ? a.dtype() : kFloat32));
}
inline Tensor where(const Tensor& cond, double a, const Tensor& b) {
  return where(cond, full({}, a, is_floating(b.dtype()) ? b.dtype() : kFloat32), b);
}

inline bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return false;
    if (std::abs(x[i] - y[i]) > atol + rtol * std::abs(y[i])) return false;
  }
  return true;
}

// ---- operators ------------------------------------------------------------------

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return detail::rsub_scalar(s, a); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return detail::div_scalar(a, s); }
inline Tensor operator/(double s, const Tensor& a) { return div(s, a); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
inline Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }

// ---- members --------------------------------------------------------------------

inline Tensor Tensor::neg() const { return genai::neg(*this); }
inline Tensor Tensor::exp() const { return genai::exp(*this); }
inline Tensor Tensor::log() const { return genai::log(*this); }
inline Tensor Tensor::log1p() const { return genai::log1p(*this); }
inline Tensor Tensor::sqrt() const { return genai::sqrt(*this); }
inline Tensor Tensor::rsqrt() const { return genai::rsqrt(*this); }
inline Tensor Tensor::abs() const { return genai::abs(*this); }
inline Tensor Tensor::sin() const { return genai::sin(*this); }
inline Tensor Tensor::cos() const { return genai::cos(*this); }
inline Tensor Tensor::tanh() const { return genai::tanh(*this); }
inline Tensor Tensor::sigmoid() const { return genai::sigmoid(*this); }
inline Tensor Tensor::relu() const { return genai::relu(*this); }
inline Tensor Tensor::square() const { return genai::square(*this); }
inline Tensor Tensor::pow(double p) const { return genai::pow(*this, p); }
inline Tensor Tensor::pow(const Tensor& p) const { return genai::pow(*this, p); }
inline Tensor Tensor::clamp(double lo, double hi) const { return genai::clamp(*this, lo, hi); }
inline Tensor Tensor::clamp_min(double lo) const { return genai::clamp_min(*this, lo); }
inline Tensor Tensor::clamp_max(double hi) const { return genai::clamp_max(*this, hi); }

namespace detail {
/// Runs an in-place update: out-of-place compute, then commit (see copy.hpp).
template <class F>
inline Tensor& inplace(Tensor& self, const char* op, bool other_requires_grad, F compute) {
  bool rec = check_inplace(self, op, other_requires_grad);
  Tensor r;
  if (rec) {
    r = compute();
  } else {
    NoGradGuard ng;
    r = compute();
  }
  GENAI_CHECK(r.shape() == self.shape(), op, ": the result of shape ", shape_str(r.shape()),
              " does not fit the in-place destination of shape ", shape_str(self.shape()));
  if (!rec && r.dtype() != self.dtype()) r = as_dtype(r, self.dtype());
  commit_inplace(self, r, rec);
  return self;
}
}  // namespace detail

inline Tensor& Tensor::add_(const Tensor& o, double alpha) {
  return detail::inplace(*this, "add_", o.requires_grad(), [&] { return alpha == 1.0 ? add(*this, o) : add(*this, mul(o, alpha)); });
}
inline Tensor& Tensor::add_(double v) {
  return detail::inplace(*this, "add_", false, [&] { return add(*this, v); });
}
inline Tensor& Tensor::sub_(const Tensor& o) {
  return detail::inplace(*this, "sub_", o.requires_grad(), [&] { return sub(*this, o); });
}
inline Tensor& Tensor::mul_(const Tensor& o) {
  return detail::inplace(*this, "mul_", o.requires_grad(), [&] { return mul(*this, o); });
}
inline Tensor& Tensor::mul_(double v) {
  return detail::inplace(*this, "mul_", false, [&] { return mul(*this, v); });
}
inline Tensor& Tensor::div_(const Tensor& o) {
  return detail::inplace(*this, "div_", o.requires_grad(), [&] { return div(*this, o); });
}
inline Tensor& Tensor::div_(double v) {
  return detail::inplace(*this, "div_", false, [&] { return detail::div_scalar(*this, v); });
}

}  // namespace genai

#include "genai/ops/all.hpp"
