// genai/ops/loss.hpp: loss functions, as torch.nn.functional: mse_loss, l1_loss,
// binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
// nll_loss, kl_div; and gaussian_kl, the KL term of a VAE.
//
// Reference: PyTorch 1.13. Every loss takes reduction = "mean" | "sum" | "none"
// (kl_div and gaussian_kl also "batchmean": the sum divided by the batch size).
// cross_entropy and nll_loss with class weights and reduction "mean" divide by
// the summed weight of the non-ignored targets (PyTorch's weighted mean), so a
// batch whose targets are all ignore_index gives NaN, as in PyTorch.
//
// cross_entropy with class-index targets is one fused log_softmax + nll kernel
// (one pass per row: max, log-sum-exp, the picked logit and, with label
// smoothing, the weighted row sum); its backward is fused too,
//   dx = g [(1 - ls) w_t (softmax(x) - onehot(t)) + ls / C (sum(w) softmax(x) - w)],
// and written in tensor ops under create_graph so double backward works.
// binary_cross_entropy(_with_logits) record their own backward (PyTorch's
// formulas); the others are compositions of differentiable ops.
//
// Differences from PyTorch:
// - mse_loss and l1_loss require input and target of the same shape (PyTorch
//   broadcasts them with a warning, a frequent silent bug).
// - binary_cross_entropy_with_logits takes (weight, pos_weight, reduction) in
//   ATen's order (Python's F puts reduction before pos_weight).
// - class weights, weight and pos_weight get no gradient (as PyTorch).
// - kl_div: where target = 0, the gradient w.r.t. target is -input, not NaN.
#pragma once

#include <cmath>
#include <limits>
#include <string_view>

#include "genai/ops/all.hpp"

namespace genai {

namespace detail {

enum class Reduction : int64_t { None = 0, Mean = 1, Sum = 2, BatchMean = 3 };

inline Reduction parse_reduction(std::string_view r, const char* op, bool allow_batchmean = false) {
  if (r == "mean") return Reduction::Mean;
  if (r == "sum") return Reduction::Sum;
  if (r == "none") return Reduction::None;
  if (allow_batchmean && r == "batchmean") return Reduction::BatchMean;
  GENAI_FAIL(op, ": reduction must be \"mean\", \"sum\"", allow_batchmean ? ", \"batchmean\"" : "", " or \"none\", got \"",
             r, "\"");
}

/// Applies the reduction to an elementwise loss.
inline Tensor reduce_loss(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Sum: return sum(l);
    case Reduction::Mean: return mean(l);
    case Reduction::BatchMean: return l.dim() == 0 ? sum(l) : div(sum(l), full({}, static_cast<double>(l.size(0)), l.dtype()));
  }
  return l;
}

inline void check_float(const Tensor& t, const char* op, const char* what) {
  check_defined(t, op, what);
  GENAI_CHECK(is_floating(t.dtype()), op, ": expected a floating-point ", what, ", got ", dtype_name(t.dtype()),
              " (shape ", shape_str(t.shape()), "); hint: convert with .to(genai::kFloat32)");
}

/// Input and target of an elementwise loss: floating point, same shape.
inline void check_loss_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_float(input, op, "input");
  check_float(target, op, "target");
  GENAI_CHECK(input.shape() == target.shape(), op, ": target of shape ", shape_str(target.shape()),
              " does not match the input shape ", shape_str(input.shape()),
              "; hint: both must have the same shape (reshape or unsqueeze the target)");
}

/// An optional tensor `what` that must broadcast to the input's shape.
inline void check_broadcast_to(const Tensor& t, const Tensor& input, const char* op, const char* what) {
  if (!t.defined()) return;
  check_float(t, op, what);
  const Shape &ts = t.shape(), &xs = input.shape();
  bool ok = ts.size() <= xs.size();
  for (size_t i = 0; ok && i < ts.size(); ++i) {
    const int64_t d = ts[ts.size() - 1 - i];
    ok = d == 1 || d == xs[xs.size() - 1 - i];
  }
  GENAI_CHECK(ok, op, ": ", what, " of shape ", shape_str(ts), " cannot be broadcast to the input shape ",
              shape_str(xs));
}

/// softplus(-x) = log(1 + e^-x), stable for any x (PyTorch's formulation:
/// m + log(e^-m + e^(-x - m)) with m = max(-x, 0)); differentiable everywhere.
inline Tensor softplus_neg_stable(const Tensor& x) {
  Tensor m = clamp_min(neg(x), 0.0);
  return add(m, log(add(exp(neg(m)), exp(sub(neg(x), m)))));
}

}  // namespace detail

/// Mean squared error (input - target)^2.
inline Tensor mse_loss(const Tensor& input, const Tensor& target, std::string_view reduction = "mean") {
  detail::Reduction r = detail::parse_reduction(reduction, "mse_loss");
  detail::check_loss_pair(input, target, "mse_loss");
  return detail::reduce_loss(square(sub(input, target)), r);
}

/// Mean absolute error |input - target| (gradient 0 where they are equal, as PyTorch).
inline Tensor l1_loss(const Tensor& input, const Tensor& target, std::string_view reduction = "mean") {
  detail::Reduction r = detail::parse_reduction(reduction, "l1_loss");
  detail::check_loss_pair(input, target, "l1_loss");
  return detail::reduce_loss(abs(sub(input, target)), r);
}

/// Binary cross-entropy of probabilities: -w (t log x + (1 - t) log(1 - x)),
/// each log clamped to >= -100 (as PyTorch, so x = 0 or 1 gives a finite loss).
/// input must lie in [0, 1]; weight broadcasts to the input.
inline Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                   std::string_view reduction = "mean") {
  const char* op = "binary_cross_entropy";
  detail::Reduction red = detail::parse_reduction(reduction, op);
  detail::check_loss_pair(input, target, op);
  detail::check_broadcast_to(weight, input, op, "weight");
  {
    std::vector<double> v = input.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i)
      GENAI_CHECK(v[i] >= 0.0 && v[i] <= 1.0, op, ": all elements of the input must be probabilities in [0, 1], got ",
                  v[i], " at flat position ", i, " (input shape ", shape_str(input.shape()),
                  "); hint: apply sigmoid first, or use binary_cross_entropy_with_logits on the logits");
  }
  Tensor l;
  {
    NoGradGuard ng;
    Tensor x = input.detach(), t = target.detach();
    // l = -(t max(log x, -100) + (1 - t) max(log(1 - x), -100))
    l = neg(add(mul(t, clamp_min(log(x), -100.0)), mul(1.0 - t, clamp_min(log(1.0 - x), -100.0))));
    if (weight.defined()) l = mul(l, weight.detach());
  }
  if (autograd::needs_grad(input, target)) {
    auto& n = autograd::record(op, {input, target}, l, [](autograd::OpNode& n, const TensorList& g) {
      Tensor x = n.saved(0), t = n.saved(1), w = n.saved(2);
      Tensor gw = w.defined() ? mul(g[0], w) : g[0];
      Tensor dx, dt;
      // l = -w (t log x + (1 - t) log(1 - x))  =>  dx = g w (x - t) / max(x (1 - x), eps), with PyTorch's
      // eps = 1e-12 rounded to float (it is a float constant in ATen), so gradients at x = 0 or 1 match
      if (n.needs_input_grad(0))
        dx = div(mul(gw, sub(x, t)), clamp_min(mul(x, 1.0 - x), static_cast<double>(1e-12f)));
      // dt = g w (log(1 - x) - log x)
      if (n.needs_input_grad(1)) dt = mul(gw, sub(log(1.0 - x), log(x)));
      return TensorList{dx, dt};
    });
    n.save(input);
    n.save(target);
    n.save(weight.defined() ? weight.detach() : Tensor());
  }
  return detail::reduce_loss(l, red);
}

/// Binary cross-entropy on logits, stable for any |x|:
///   l = w ((1 - t) x + lw softplus(-x)),  lw = 1 + (pos_weight - 1) t.
/// weight broadcasts to the input; pos_weight (per class, e.g. (C)) too.
inline Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                               const Tensor& pos_weight = Tensor(), std::string_view reduction = "mean") {
  const char* op = "binary_cross_entropy_with_logits";
  detail::Reduction red = detail::parse_reduction(reduction, op);
  detail::check_loss_pair(input, target, op);
  detail::check_broadcast_to(weight, input, op, "weight");
  detail::check_broadcast_to(pos_weight, input, op, "pos_weight");
  Tensor l;
  {
    NoGradGuard ng;
    Tensor x = input.detach(), t = target.detach();
    Tensor sp = detail::softplus_neg_stable(x);                                      // softplus(-x) = -log sigmoid(x)
    if (pos_weight.defined()) sp = mul(add(mul(add(pos_weight.detach(), -1.0), t), 1.0), sp);  // lw softplus(-x)
    l = add(mul(1.0 - t, x), sp);
    if (weight.defined()) l = mul(l, weight.detach());
  }
  if (autograd::needs_grad(input, target)) {
    auto& n = autograd::record(op, {input, target}, l, [](autograd::OpNode& n, const TensorList& g) {
      Tensor x = n.saved(0), t = n.saved(1), w = n.saved(2), pw = n.saved(3);
      Tensor gw = w.defined() ? mul(g[0], w) : g[0];
      Tensor dx, dt;
      if (n.needs_input_grad(0)) {
        // l = (1 - t) x + lw softplus(-x)  =>  dx = g w (lw sigmoid(x) - pw t)   (no pos_weight: sigmoid(x) - t)
        Tensor s = sigmoid(x);
        dx = pw.defined() ? mul(gw, sub(mul(add(mul(add(pw, -1.0), t), 1.0), s), mul(pw, t))) : mul(gw, sub(s, t));
      }
      if (n.needs_input_grad(1)) {
        // dt = g w (-x + (pw - 1) softplus(-x))   (no pos_weight: -x)
        dt = pw.defined() ? mul(gw, sub(mul(add(pw, -1.0), detail::softplus_neg_stable(x)), x)) : neg(mul(gw, x));
      }
      return TensorList{dx, dt};
    });
    n.save(input);
    n.save(target);
    n.save(weight.defined() ? weight.detach() : Tensor());
    n.save(pos_weight.defined() ? pos_weight.detach() : Tensor());
  }
  return detail::reduce_loss(l, red);
}

namespace detail {

/// The class dimension of a classification input: 1 for (N, C, d...), 0 for an unbatched (C).
inline int64_t class_dim(const Tensor& input) { return input.dim() == 1 ? 0 : 1; }

/// The target shape for class indices: the input's shape without the class dimension.
inline Shape class_target_shape(const Tensor& input) {
  Shape s = input.shape();
  s.erase(s.begin() + class_dim(input));
  return s;
}

/// Checks int64 class-index targets (shape and range) and an optional class weight (C).
inline void check_class_target(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                               const char* op) {
  check_float(input, op, "input");
  check_defined(target, op, "target");
  GENAI_CHECK(input.dim() >= 1, op, ": expected an input of shape (N, C, d1, ...) or (C), got shape ",
              shape_str(input.shape()));
  const int64_t C = input.size(class_dim(input));
  GENAI_CHECK(target.dtype() == kInt64, op, ": expected int64 class indices as target, got ", dtype_name(target.dtype()),
              " (shape ", shape_str(target.shape()), ")",
              std::string_view(op) == "cross_entropy"
                  ? "; hint: class probabilities must have the input's shape and a floating dtype"
                  : "; hint: convert the labels with .to(genai::kInt64)");
  const Shape want = class_target_shape(input);
  GENAI_CHECK(target.shape() == want, op, ": target of shape ", shape_str(target.shape()),
              " does not match the input of shape ", shape_str(input.shape()), "; expected class indices of shape ",
              shape_str(want));
  if (weight.defined()) {
    check_float(weight, op, "weight");
    GENAI_CHECK(weight.shape() == Shape{C}, op, ": class weight must have shape ", shape_str({C}), " for ", C,
                " classes, got ", shape_str(weight.shape()));
  }
  Tensor tc = contig(target);
  const int64_t* pt = tc.data_ptr<const int64_t>();
  for (int64_t i = 0; i < tc.numel(); ++i)
    GENAI_CHECK(pt[i] == ignore_index || (pt[i] >= 0 && pt[i] < C), op, ": target ", pt[i], " at flat position ", i,
                " is out of range for ", C, " classes (expected 0 <= target < ", C, ", or ignore_index = ", ignore_index,
                "); target shape ", shape_str(target.shape()));
}

/// The input with the class dimension moved last, as contiguous (R, C) rows in target order.
inline Tensor class_rows(const Tensor& x) {
  const int64_t cd = class_dim(x), C = x.size(cd);
  if (x.dim() <= 2) return contig(reshape(x.detach(), {-1, C}));
  std::vector<int64_t> inv;
  return reshape(move_dim_last(x.detach(), cd, inv), {-1, C});
}

// The kernels avoid new Eigen expressions (each costs compile time in every TU):
// float rows use the library's vectorized exp (kernels::detail::unary_f32), and the
// row max and sums the same Eigen reductions as reduce.hpp's kernel (instantiated
// in any TU that sums a tensor); the rest are plain loops.

/// out[i] = exp(x[i] - m) over a row (out may alias x).
inline void exp_shifted(const float* x, float* out, int64_t n, double m) {
  const float mf = static_cast<float>(m);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - mf;
  kernels::detail::unary_f32(kernels::UnaryOp::Exp, out, out, n, 0.0f, 0.0f);
}
inline void exp_shifted(const double* x, double* out, int64_t n, double m) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i] - m);
}

/// Forward kernel of cross_entropy with class indices: per row r the loss and
/// the log-sum-exp, and the row's weight in the mean's denominator (0 if ignored).
template <class T>
inline void ce_forward_kernel(const T* px, const int64_t* pt, const T* pw, T* ploss, T* plse, double* pden, int64_t R,
                              int64_t C, int64_t ignore_index, double ls) {
  double wsum = 0;
  if (pw)
    for (int64_t c = 0; c < C; ++c) wsum += static_cast<double>(pw[c]);
  else
    wsum = static_cast<double>(C);
  parallel_for(0, R, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<T> buf(static_cast<size_t>(C));
    for (int64_t r = r0; r < r1; ++r) {
      const T* row = px + r * C;
      // the row max (NaN propagates; an infinite max shifts by 0), then lse = m + log(sum(exp(x - m)))
      const T m = kernels::ConstArrayMap<T>(row, C).template maxCoeff<Eigen::PropagateNaN>();
      const double md = std::isfinite(m) || std::isnan(m) ? static_cast<double>(m) : 0.0;
      exp_shifted(row, buf.data(), C, md);
      const double lse = md + std::log(static_cast<double>(kernels::ConstArrayMap<T>(buf.data(), C).sum()));
      double wx = 0;
      plse[r] = static_cast<T>(lse);
      const int64_t t = pt[r];
      if (t == ignore_index) {
        ploss[r] = T(0);
        pden[r] = 0;
        continue;
      }
      const double wt = pw ? static_cast<double>(pw[t]) : 1.0;
      double loss = (1.0 - ls) * wt * (lse - static_cast<double>(row[t]));  // -w_t log_softmax(x)_t
      if (ls > 0) {  // smoothing: sum_c w_c (lse - x_c) / C
        for (int64_t c = 0; c < C; ++c) wx += (pw ? static_cast<double>(pw[c]) : 1.0) * static_cast<double>(row[c]);
        loss += ls / static_cast<double>(C) * (wsum * lse - wx);
      }
      ploss[r] = static_cast<T>(loss);
      pden[r] = wt;
    }
  });
}

/// Fused backward: dx (R, C) = g_r [(1 - ls) w_t (p - onehot(t)) + ls / C (W p - w)], p = softmax(x).
template <class T>
inline void ce_backward_kernel(const T* px, const int64_t* pt, const T* pw, const T* plse, const T* pg, bool g_per_row,
                               double g_scale, T* pdx, int64_t R, int64_t C, int64_t ignore_index, double ls) {
  double wsum = 0;
  if (pw)
    for (int64_t c = 0; c < C; ++c) wsum += static_cast<double>(pw[c]);
  else
    wsum = static_cast<double>(C);
  parallel_for(0, R, std::max<int64_t>(1, kernels::kGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* d = pdx + r * C;
      const int64_t t = pt[r];
      if (t == ignore_index) {
        std::fill(d, d + C, T(0));
        continue;
      }
      const double gr = static_cast<double>(g_per_row ? pg[r] : pg[0]) * g_scale;
      const double wt = pw ? static_cast<double>(pw[t]) : 1.0;
      const T a = static_cast<T>(gr * ((1.0 - ls) * wt + ls / static_cast<double>(C) * wsum));  // coefficient of p
      exp_shifted(px + r * C, d, C, static_cast<double>(plse[r]));                                // p = softmax(x)
      for (int64_t c = 0; c < C; ++c) d[c] *= a;
      if (ls > 0) {
        const T b = static_cast<T>(gr * ls / static_cast<double>(C));
        if (pw)
          for (int64_t c = 0; c < C; ++c) d[c] -= pw[c] * b;
        else
          for (int64_t c = 0; c < C; ++c) d[c] -= b;
      }
      d[t] -= static_cast<T>(gr * (1.0 - ls) * wt);
    }
  });
}

/// Backward of cross_entropy with class indices in tensor ops (differentiable; used under create_graph).
inline Tensor ce_backward_composite(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& w,
                                    Reduction red, int64_t ignore_index, double ls, double denom) {
  const int64_t cd = class_dim(x), C = x.size(cd), nd = x.dim();
  Tensor valid = ne(target, static_cast<double>(ignore_index));                 // target's shape
  Tensor tt = where(valid, target, zeros({}, kInt64));                          // ignored -> class 0
  Tensor validf = to(valid, x.dtype());
  Tensor oh = to(one_hot(tt, C), x.dtype());                                    // (N, d..., C)
  if (nd > 1) {  // class dim back to position 1
    std::vector<int64_t> perm{0, nd - 1};
    for (int64_t i = 1; i < nd - 1; ++i) perm.push_back(i);
    oh = permute(oh, perm);
  }
  Tensor wt = w.defined() ? mul(reshape(index_select(w, 0, reshape(tt, {-1})), target.shape()), validf) : validf;
  Tensor gr = red == Reduction::None ? g : expand(red == Reduction::Mean ? div(g, full({}, denom, g.dtype())) : g, target.shape());
  Tensor p = softmax(x, cd);
  // l = (1 - ls) w_t (lse - x_t)  =>  dx = g (1 - ls) w_t (p - onehot(t))
  Tensor dx = mul(unsqueeze(mul(mul(gr, wt), 1.0 - ls), cd), sub(p, oh));
  if (ls > 0) {
    // l += ls / C sum_c w_c (lse - x_c)  =>  dx += g ls / C (sum(w) p - w)
    Shape ws(static_cast<size_t>(nd), 1);
    ws[static_cast<size_t>(cd)] = C;
    Tensor wp = w.defined() ? sub(mul(p, sum(w)), reshape(w, ws)) : add(mul(p, static_cast<double>(C)), -1.0);
    dx = add(dx, mul(unsqueeze(mul(mul(gr, validf), ls / static_cast<double>(C)), cd), wp));
  }
  return dx;
}

/// cross_entropy with class-index targets: the fused log_softmax + nll kernel, recorded for autograd.
inline Tensor cross_entropy_indices(const Tensor& input, const Tensor& target, const Tensor& weight,
                                    int64_t ignore_index, Reduction red, double ls) {
  const int64_t C = input.size(class_dim(input));
  Tensor xl = class_rows(input);                                    // (R, C)
  Tensor tl = contig(reshape(target, {-1}));                        // (R)
  Tensor wc = weight.defined() ? contig(as_dtype(weight.detach(), input.dtype())) : Tensor();
  const int64_t R = xl.size(0);
  Tensor loss_rows = make_tensor({R}, input.dtype()), lse = make_tensor({R}, input.dtype());
  std::vector<double> den(static_cast<size_t>(R));
  dispatch_float(input.dtype(), "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ce_forward_kernel<T>(xl.data_ptr<const T>(), tl.data_ptr<const int64_t>(), wc.defined() ? wc.data_ptr<const T>() : nullptr,
                         loss_rows.data_ptr<T>(), lse.data_ptr<T>(), den.data(), R, C, ignore_index, ls);
  });
  double denom = 0, total = 0;
  for (int64_t r = 0; r < R; ++r) denom += den[static_cast<size_t>(r)];
  Tensor out;
  if (red == Reduction::None) {
    out = reshape(loss_rows, target.shape());
  } else {
    std::vector<double> lv = loss_rows.to_vector<double>();
    for (double v : lv) total += v;
    out = full({}, red == Reduction::Mean ? total / denom : total, input.dtype());
  }
  if (autograd::needs_grad(input)) {
    auto& n = autograd::record("cross_entropy", {input}, out, [](autograd::OpNode& n, const TensorList& g) {
      Tensor x = n.saved(0), t = n.saved(1), w = n.saved(2), lse = n.saved(3);
      const Reduction red = static_cast<Reduction>(n.ints[0]);
      const int64_t ignore = n.ints[1];
      const double ls = n.reals[0], denom = n.reals[1];
      if (autograd::is_grad_enabled()) return TensorList{ce_backward_composite(g[0], x, t, w, red, ignore, ls, denom)};
      const int64_t cd = class_dim(x), C = x.size(cd);
      Tensor xl = class_rows(x), tl = contig(reshape(t, {-1}));
      const int64_t R = xl.size(0);
      Tensor gc = contig(as_dtype(g[0].detach(), x.dtype()));
      Tensor dl = make_tensor({R, C}, x.dtype());
      dispatch_float(x.dtype(), "cross_entropy backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        ce_backward_kernel<T>(xl.data_ptr<const T>(), tl.data_ptr<const int64_t>(), w.defined() ? w.data_ptr<const T>() : nullptr,
                              lse.data_ptr<const T>(), gc.data_ptr<const T>(), red == Reduction::None,
                              red == Reduction::Mean ? 1.0 / denom : 1.0, dl.data_ptr<T>(), R, C, ignore, ls);
      });
      if (x.dim() <= 2) return TensorList{reshape(dl, x.shape())};
      // (N, d..., C) rows back to (N, C, d...)
      const int64_t nd = x.dim();
      Shape s{x.size(0)};
      for (int64_t i = 2; i < nd; ++i) s.push_back(x.size(i));
      s.push_back(C);
      std::vector<int64_t> perm{0, nd - 1};
      for (int64_t i = 1; i < nd - 1; ++i) perm.push_back(i);
      return TensorList{contig(permute(reshape(dl, s), perm))};
    });
    n.save(input);
    n.save(target);
    n.save(wc);
    n.save(lse);
    n.ints = {static_cast<int64_t>(red), ignore_index};
    n.reals = {ls, denom};
  }
  return out;
}

}  // namespace detail

/// Cross-entropy between logits and targets (as F.cross_entropy). input is
/// (N, C), (N, C, d1, ...) or unbatched (C). target is either int64 class
/// indices of shape (N), (N, d1, ...) or () -- with class `weight` (C),
/// `ignore_index` and PyTorch's weighted mean -- or class probabilities of the
/// input's shape (floating point; "mean" then divides by N d1 ...).
/// label_smoothing in [0, 1] mixes the target with the uniform distribution.
inline Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                            int64_t ignore_index = -100, std::string_view reduction = "mean",
                            double label_smoothing = 0.0) {
  const char* op = "cross_entropy";
  detail::Reduction red = detail::parse_reduction(reduction, op);
  detail::check_float(input, op, "input");
  detail::check_defined(target, op, "target");
  GENAI_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
              label_smoothing);
  if (is_floating(target.dtype())) {  // class probabilities
    GENAI_CHECK(input.dim() >= 1 && target.shape() == input.shape(), op, ": probability target of shape ",
                shape_str(target.shape()), " does not match the input shape ", shape_str(input.shape()),
                "; hint: class-index targets must be int64 of shape ", input.dim() >= 1 ? shape_str(detail::class_target_shape(input)) : "()");
    const int64_t cd = detail::class_dim(input), C = input.size(cd);
    if (weight.defined()) {
      detail::check_float(weight, op, "weight");
      GENAI_CHECK(weight.shape() == Shape{C}, op, ": class weight must have shape ", shape_str({C}), " for ", C,
                  " classes, got ", shape_str(weight.shape()));
    }
    Tensor t = label_smoothing > 0 ? add(mul(target, 1.0 - label_smoothing), label_smoothing / static_cast<double>(C))
                                   : target;
    Tensor p = mul(log_softmax(input, cd), t);
    if (weight.defined()) {
      Shape ws(static_cast<size_t>(input.dim()), 1);
      ws[static_cast<size_t>(cd)] = C;
      p = mul(p, reshape(weight.detach(), ws));
    }
    Tensor l = neg(sum(p, {cd}));  // -sum_c w_c t_c log_softmax(x)_c
    if (red == detail::Reduction::Mean)
      return div(sum(l), full({}, static_cast<double>(input.numel() / std::max<int64_t>(C, 1)), l.dtype()));
    return detail::reduce_loss(l, red);
  }
  detail::check_class_target(input, target, weight, ignore_index, op);
  return detail::cross_entropy_indices(input, target, weight, ignore_index, red, label_smoothing);
}

/// Negative log-likelihood of log-probabilities (as F.nll_loss): -w_t input[t],
/// input (N, C), (N, C, d1, ...) or (C); int64 target as for cross_entropy.
inline Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                       int64_t ignore_index = -100, std::string_view reduction = "mean") {
  const char* op = "nll_loss";
  detail::Reduction red = detail::parse_reduction(reduction, op);
  detail::check_class_target(input, target, weight, ignore_index, op);
  Tensor valid = ne(target, static_cast<double>(ignore_index));
  Tensor tt = where(valid, target, zeros({}, kInt64));  // ignored -> class 0 (masked out below)
  Tensor validf = to(valid, input.dtype());
  Tensor wt = weight.defined() ? mul(reshape(index_select(detail::as_dtype(weight.detach(), input.dtype()), 0,
                                                          reshape(tt, {-1})), target.shape()), validf)
                               : validf;                                     // w_t, 0 where ignored
  Tensor picked = input.dim() == 1 ? reshape(gather(input, 0, reshape(tt, {1})), {})
                                   : squeeze(gather(input, 1, unsqueeze(tt, 1)), 1);  // input[t]
  Tensor l = neg(mul(picked, wt));
  if (red == detail::Reduction::Mean) return div(sum(l), sum(wt));  // PyTorch's weighted mean
  return detail::reduce_loss(l, red);
}

/// Kullback-Leibler divergence KL(target || exp(input)) with `input` log-probabilities
/// (as F.kl_div): target (log target - input), 0 where target = 0; with log_target,
/// exp(target) (target - input). reduction "batchmean" divides the sum by the batch size.
/// Where target = 0 the target's gradient is -input (PyTorch gives NaN there).
inline Tensor kl_div(const Tensor& input, const Tensor& target, std::string_view reduction = "mean",
                     bool log_target = false) {
  const char* op = "kl_div";
  detail::Reduction red = detail::parse_reduction(reduction, op, true);
  detail::check_loss_pair(input, target, op);
  Tensor l;
  if (log_target) {
    l = mul(exp(target), sub(target, input));
  } else {
    // xlogy(t, t) - t x, with 0 log 0 = 0 (the log's argument is 1 there, so the gradient stays finite)
    Tensor safe = where(eq(target, 0.0), full({}, 1.0, target.dtype()), target);
    l = sub(mul(target, log(safe)), mul(target, input));
  }
  return detail::reduce_loss(l, red);
}

/// KL divergence of the VAE posterior N(mu, exp(logvar)) from the prior N(0, 1),
/// per element: -0.5 (1 + logvar - mu^2 - exp(logvar)). With reduction "sum" this
/// is the classic -0.5 sum(1 + logvar - mu^2 - exp(logvar)) (Kingma & Welling 2014,
/// appendix B); "batchmean" divides that by the batch size (the per-sample KL
/// averaged over the batch, what VAE training usually wants); "mean" averages
/// over all elements; "none" keeps the elementwise terms.
inline Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, std::string_view reduction = "mean") {
  const char* op = "gaussian_kl";
  detail::Reduction red = detail::parse_reduction(reduction, op, true);
  detail::check_float(mu, op, "mu");
  detail::check_float(logvar, op, "logvar");
  GENAI_CHECK(mu.shape() == logvar.shape(), op, ": mu of shape ", shape_str(mu.shape()),
              " and logvar of shape ", shape_str(logvar.shape()), " must have the same shape");
  Tensor l = mul(sub(sub(add(logvar, 1.0), square(mu)), exp(logvar)), -0.5);
  return detail::reduce_loss(l, red);
}

}  // namespace genai
