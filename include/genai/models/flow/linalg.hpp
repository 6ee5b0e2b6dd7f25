// genai/models/flow/linalg.hpp: the small dense linear algebra that normalizing flows
// need: an LU factorization with partial pivoting, the matrix inverse and the log
// absolute determinant (differentiable), the P L U decomposition and random
// orthogonal matrices (for initializing invertible 1x1 convolutions).
//
//   linalg::SlogdetResult r = linalg::slogdet(W);   // W (C, C): r.sign, r.logabsdet (0-d)
//   Tensor Winv = linalg::inv(W);                    // (C, C), differentiable
//   linalg::PLU f = linalg::lu(W);                   // W = f.P f.L f.U (not recorded)
//   Tensor Q = linalg::random_orthogonal(C);         // Haar-distributed (C, C)
//
// Reference: Golub & Van Loan, "Matrix Computations", 4th ed., algorithm 3.4.1 (LU with
// partial pivoting). Names and results as torch.linalg.inv / torch.linalg.slogdet /
// torch.linalg.lu (scipy.linalg.lu's P L U convention). Backward formulas:
//   Y = A^{-1}               =>  dA = -Y^T dY Y^T
//   l = log |det A|          =>  dA = dl A^{-T}
// both written with differentiable ops (matmul, inv), so gradients of gradients work.
//
// Differences from PyTorch: 2-d matrices only (no batches); the factorization always runs
// in double precision (results are converted back to the input's dtype), which is cheap
// for the sizes flows use (C <= a few hundred) and makes float32 determinants accurate;
// inv of a singular matrix throws genai::Error (torch raises too); slogdet of a singular
// matrix gives sign 0 and logabsdet -inf, as torch. Not part of genai/genai.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "genai/tensor.hpp"

namespace genai {
namespace linalg {

/// An LU factorization P A = L U of an n x n matrix, row-major, in double precision.
struct DenseLU {
  int64_t n = 0;
  std::vector<double> lu;     // (n, n): L below the diagonal (unit diagonal implied), U on and above
  std::vector<int64_t> perm;  // row i of P A is row perm[i] of A
  int perm_sign = 1;          // the determinant of P: +1 or -1
  int64_t zero_pivot = -1;    // the first column with an exactly zero pivot (-1: none, A non-singular)
};

/// LU factorization with partial pivoting of the row-major n x n matrix `a`.
inline DenseLU lu_factor_dense(std::vector<double> a, int64_t n) {
  GENAI_ASSERT(static_cast<int64_t>(a.size()) == n * n);
  DenseLU f;
  f.n = n;
  f.lu = std::move(a);
  f.perm.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) f.perm[static_cast<size_t>(i)] = i;
  double* A = f.lu.data();
  for (int64_t k = 0; k < n; ++k) {
    // pivot: the largest |A[i, k]| for i >= k
    int64_t p = k;
    double best = std::abs(A[k * n + k]);
    for (int64_t i = k + 1; i < n; ++i)
      if (std::abs(A[i * n + k]) > best) {
        best = std::abs(A[i * n + k]);
        p = i;
      }
    if (p != k) {
      for (int64_t j = 0; j < n; ++j) std::swap(A[k * n + j], A[p * n + j]);
      std::swap(f.perm[static_cast<size_t>(k)], f.perm[static_cast<size_t>(p)]);
      f.perm_sign = -f.perm_sign;
    }
    const double piv = A[k * n + k];
    if (piv == 0.0) {  // the column is zero below the diagonal: nothing to eliminate
      if (f.zero_pivot < 0) f.zero_pivot = k;
      continue;
    }
    for (int64_t i = k + 1; i < n; ++i) {
      const double l = A[i * n + k] / piv;  // L[i, k]
      A[i * n + k] = l;
      if (l == 0.0) continue;
      for (int64_t j = k + 1; j < n; ++j) A[i * n + j] -= l * A[k * n + j];  // row_i -= L[i, k] row_k
    }
  }
  return f;
}

/// Solves A x = b in place (b has n entries) with a factorization of A (non-singular).
inline void lu_solve_dense(const DenseLU& f, double* b) {
  const int64_t n = f.n;
  const double* A = f.lu.data();
  std::vector<double> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = b[f.perm[static_cast<size_t>(i)]];  // P b
  for (int64_t i = 0; i < n; ++i)  // L y = P b (unit lower triangular)
    for (int64_t j = 0; j < i; ++j) y[static_cast<size_t>(i)] -= A[i * n + j] * y[static_cast<size_t>(j)];
  for (int64_t i = n - 1; i >= 0; --i) {  // U x = y
    double s = y[static_cast<size_t>(i)];
    for (int64_t j = i + 1; j < n; ++j) s -= A[i * n + j] * b[j];
    b[i] = s / A[i * n + i];
  }
}

namespace detail {
/// Checks that A is a defined, floating-point, square 2-d matrix; returns n.
inline int64_t check_square(const Tensor& A, const char* op) {
  GENAI_CHECK(A.defined(), op, ": the matrix is an undefined tensor");
  GENAI_CHECK(A.dim() == 2 && A.size(0) == A.size(1), op, ": expected a square matrix (n, n), got shape ",
              shape_str(A.shape()), "; hint: batches of matrices are not supported, loop over them");
  GENAI_CHECK(is_floating(A.dtype()), op, ": expected a float32 or float64 matrix, got ", dtype_name(A.dtype()));
  return A.size(0);
}
}  // namespace detail

/// The inverse of a square matrix (n, n), as torch.linalg.inv; differentiable.
inline Tensor inv(const Tensor& A) {
  const int64_t n = detail::check_square(A, "linalg::inv");
  DenseLU f = lu_factor_dense(A.detach().to_vector<double>(), n);
  GENAI_CHECK(f.zero_pivot < 0, "linalg::inv: the matrix of shape ", shape_str(A.shape()),
              " is singular (zero pivot in column ", f.zero_pivot, "); hint: an invertible layer's weight must stay "
              "invertible (use the LU-parameterized form)");
  std::vector<double> out(static_cast<size_t>(n * n)), col(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {  // column j of A^{-1} solves A x = e_j
    std::fill(col.begin(), col.end(), 0.0);
    col[static_cast<size_t>(j)] = 1.0;
    lu_solve_dense(f, col.data());
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i * n + j)] = col[static_cast<size_t>(i)];
  }
  Tensor Y = from_vector(out, {n, n}, A.dtype());  // (n, n)
  if (autograd::needs_grad(A)) {
    auto& node = autograd::record("linalg_inv", {A}, Y, [](autograd::OpNode& nd, const TensorList& g) {
      Tensor Yt = transpose(nd.saved(0), 0, 1);
      // Y = A^{-1}  =>  dA = -Y^T dY Y^T
      return TensorList{neg(mm(mm(Yt, g[0]), Yt))};
    });
    node.save_output(Y);
  }
  return Y;
}

/// sign(det A) and log |det A| (0-d tensors), as torch.linalg.slogdet.
struct SlogdetResult {
  Tensor sign;       // () -1, 0 or +1; never requires grad
  Tensor logabsdet;  // () log |det A| (-inf when A is singular); differentiable
};

/// sign and log |det A| of a square matrix (n, n), computed through LU in double precision.
inline SlogdetResult slogdet(const Tensor& A) {
  const int64_t n = detail::check_square(A, "linalg::slogdet");
  DenseLU f = lu_factor_dense(A.detach().to_vector<double>(), n);
  double sign = f.perm_sign, logabs = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double u = f.lu[static_cast<size_t>(i * n + i)];  // det A = det P^T prod_i U[i, i]
    if (u < 0) sign = -sign;
    logabs += std::log(std::abs(u));
  }
  if (f.zero_pivot >= 0) {
    sign = 0.0;
    logabs = -std::numeric_limits<double>::infinity();
  }
  Tensor out = scalar_tensor(logabs, A.dtype());  // ()
  if (autograd::needs_grad(A)) {
    auto& node = autograd::record("linalg_slogdet", {A}, out, [](autograd::OpNode& nd, const TensorList& g) {
      // l = log |det A|  =>  dA = dl A^{-T}   (inv is differentiable, so double backward works)
      return TensorList{mul(transpose(inv(nd.saved(0)), 0, 1), g[0])};
    });
    node.save(A);
  }
  return {scalar_tensor(sign, A.dtype()), out};
}

/// The factors of A = P L U (scipy.linalg.lu / torch.linalg.lu): P a permutation
/// matrix, L unit lower triangular, U upper triangular; all (n, n), not recorded.
struct PLU {
  Tensor P, L, U;
};

inline PLU lu(const Tensor& A) {
  const int64_t n = detail::check_square(A, "linalg::lu");
  DenseLU f = lu_factor_dense(A.detach().to_vector<double>(), n);
  std::vector<double> P(static_cast<size_t>(n * n), 0.0), L(P), U(P);
  for (int64_t i = 0; i < n; ++i) {
    // row i of P^T A is row perm[i] of A, so A = P (L U) with P[perm[i], i] = 1
    P[static_cast<size_t>(f.perm[static_cast<size_t>(i)] * n + i)] = 1.0;
    for (int64_t j = 0; j < n; ++j) {
      const double v = f.lu[static_cast<size_t>(i * n + j)];
      if (j < i) L[static_cast<size_t>(i * n + j)] = v;
      else U[static_cast<size_t>(i * n + j)] = v;
    }
    L[static_cast<size_t>(i * n + i)] = 1.0;
  }
  return {from_vector(P, {n, n}, A.dtype()), from_vector(L, {n, n}, A.dtype()), from_vector(U, {n, n}, A.dtype())};
}

/// A random orthogonal matrix (n, n), Haar-distributed: the Q of the QR decomposition
/// of a standard normal matrix, with the signs fixed so that diag(R) > 0 (Mezzadri 2007).
/// Computed by Householder reflections in double precision; not recorded.
inline Tensor random_orthogonal(int64_t n, Dtype dtype = kFloat32, Generator& gen = default_generator()) {
  GENAI_CHECK(n >= 1, "linalg::random_orthogonal: n must be positive, got ", n);
  std::vector<double> a = randn({n, n}, kFloat64, gen).to_vector<double>();  // (n, n), becomes R
  std::vector<double> q(static_cast<size_t>(n * n), 0.0);                      // Q, starts as I
  for (int64_t i = 0; i < n; ++i) q[static_cast<size_t>(i * n + i)] = 1.0;
  auto at = [n](std::vector<double>& m, int64_t i, int64_t j) -> double& { return m[static_cast<size_t>(i * n + j)]; };
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t k = 0; k + 1 < n; ++k) {
    double norm = 0;
    for (int64_t i = k; i < n; ++i) norm += at(a, i, k) * at(a, i, k);
    norm = std::sqrt(norm);
    if (norm == 0) continue;
    const double alpha = at(a, k, k) > 0 ? -norm : norm;  // reflect column k onto alpha e_k
    double vnorm2 = 0;
    for (int64_t i = k; i < n; ++i) {
      v[static_cast<size_t>(i)] = at(a, i, k) - (i == k ? alpha : 0.0);
      vnorm2 += v[static_cast<size_t>(i)] * v[static_cast<size_t>(i)];
    }
    if (vnorm2 == 0) continue;
    for (int64_t j = 0; j < n; ++j) {  // R = H R, H = I - 2 v v^T / (v^T v)
      double s = 0;
      for (int64_t i = k; i < n; ++i) s += v[static_cast<size_t>(i)] * at(a, i, j);
      s *= 2 / vnorm2;
      for (int64_t i = k; i < n; ++i) at(a, i, j) -= s * v[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < n; ++i) {  // Q = Q H
      double s = 0;
      for (int64_t j = k; j < n; ++j) s += at(q, i, j) * v[static_cast<size_t>(j)];
      s *= 2 / vnorm2;
      for (int64_t j = k; j < n; ++j) at(q, i, j) -= s * v[static_cast<size_t>(j)];
    }
  }
  for (int64_t j = 0; j < n; ++j)  // Q diag(sign(diag R)): the unique QR with diag(R) > 0
    if (at(a, j, j) < 0)
      for (int64_t i = 0; i < n; ++i) at(q, i, j) = -at(q, i, j);
  return from_vector(q, {n, n}, dtype);
}

}  // namespace linalg
}  // namespace genai
