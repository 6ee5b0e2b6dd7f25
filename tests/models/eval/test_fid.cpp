// Tests of the sample-quality metrics (include/genai/models/eval/fid.hpp): Gaussian
// statistics, tr sqrt(S1 S2) and the Frechet distance against numpy
// (tests/fixtures/make_fid_fixtures.py, two independent numpy computations) and against
// closed forms (diagonal and commuting covariances, scalar multiples), FID of a set with
// itself, invariances (rotation, translation, scaling, symmetry), the classifier score on
// known distributions and a numpy fixture, and error handling.
#include "test_util.hpp"

#include <genai/models/eval/fid.hpp>

using namespace genai;
static const char* kFile = "fid.safetensors";

namespace {

Tensor fx(const std::string& name, Dtype d = kFloat64) { return genai_test::fixture(kFile, name).to(d).clone(); }

double scalar(const std::string& name) { return genai_test::fixture(kFile, name).item<double>(); }

/// A random orthogonal (D, D) matrix (Gram-Schmidt of a Gaussian matrix), float64.
Tensor random_orthogonal(int64_t D, Generator& g) {
  std::vector<double> a = randn({D, D}, kFloat64, g).to_vector<double>();
  for (int64_t i = 0; i < D; ++i) {
    for (int64_t j = 0; j < i; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < D; ++k) dot += a[i * D + k] * a[j * D + k];
      for (int64_t k = 0; k < D; ++k) a[i * D + k] -= dot * a[j * D + k];
    }
    double n = 0;
    for (int64_t k = 0; k < D; ++k) n += a[i * D + k] * a[i * D + k];
    for (int64_t k = 0; k < D; ++k) a[i * D + k] /= std::sqrt(n);
  }
  return tensor(a, {D, D}, kFloat64);
}

/// Q diag(v) Q^T.
Tensor rotate_diag(const Tensor& Q, const std::vector<double>& v) {
  Tensor d = mul(Q, unsqueeze(tensor(v, {static_cast<int64_t>(v.size())}, kFloat64), 0));  // Q diag(v)
  return matmul(d, Q.t());
}

double closed_form_commuting(const std::vector<double>& m1, const std::vector<double>& m2, const std::vector<double>& a,
                             const std::vector<double>& b) {
  double r = 0;
  for (size_t i = 0; i < m1.size(); ++i) r += (m1[i] - m2[i]) * (m1[i] - m2[i]);
  for (size_t i = 0; i < a.size(); ++i) r += (std::sqrt(a[i]) - std::sqrt(b[i])) * (std::sqrt(a[i]) - std::sqrt(b[i]));
  return r;
}

}  // namespace

TEST_CASE("gaussian_stats matches numpy.mean and numpy.cov") {
  for (const char* c : {"full", "lowrank"}) {
    for (Dtype d : {kFloat64, kFloat32}) {
      INFO(c << " " << dtype_name(d));
      const std::string p = std::string("fid.") + c + ".";
      // float32 features: the statistics are computed in double from the rounded values
      const double rtol = d == kFloat64 ? 1e-12 : 1e-5, atol = d == kFloat64 ? 1e-12 : 1e-5;
      models::GaussianStats s1 = models::gaussian_stats(fx(p + "x1", d));
      models::GaussianStats s2 = models::gaussian_stats(fx(p + "x2", d));
      CHECK(s1.mean.dtype() == kFloat64);
      CHECK(s1.n == fx(p + "x1").size(0));
      CHECK_CLOSE(s1.mean, fx(p + "mu1"), rtol, atol);
      CHECK_CLOSE(s1.cov, fx(p + "cov1"), rtol, atol);
      CHECK_CLOSE(s2.mean, fx(p + "mu2"), rtol, atol);
      CHECK_CLOSE(s2.cov, fx(p + "cov2"), rtol, atol);
    }
  }
}

TEST_CASE("trace_sqrt_product and frechet_distance match numpy") {
  // full covariances: numpy's eigvals(S1 S2) and eigh agree to 1e-10; ours to 1e-10 too
  {
    const double ts = models::trace_sqrt_product(fx("fid.full.cov1"), fx("fid.full.cov2"));
    CHECK(ts == Approx(scalar("fid.full.trace_sqrt")).epsilon(1e-10));
    const double fd = models::frechet_distance(fx("fid.full.mu1"), fx("fid.full.cov1"), fx("fid.full.mu2"),
                                               fx("fid.full.cov2"));
    CHECK(fd == Approx(scalar("fid.full.fid")).epsilon(1e-10));
    // from the raw features
    CHECK(models::frechet_distance(models::gaussian_stats(fx("fid.full.x1")), models::gaussian_stats(fx("fid.full.x2"))) ==
          Approx(scalar("fid.full.fid")).epsilon(1e-10));
  }
  // singular covariances (4 and 5 samples in 7 dimensions): the zero eigenvalues of
  // A S2 A come out as +-1e-16 and their square roots as up to 1e-8, hence 1e-7
  {
    const double fd = models::frechet_distance(fx("fid.lowrank.mu1"), fx("fid.lowrank.cov1"), fx("fid.lowrank.mu2"),
                                               fx("fid.lowrank.cov2"));
    CHECK(fd == Approx(scalar("fid.lowrank.fid")).margin(1e-7));
    CHECK(models::trace_sqrt_product(fx("fid.lowrank.cov1"), fx("fid.lowrank.cov2")) ==
          Approx(scalar("fid.lowrank.trace_sqrt")).margin(1e-7));
  }
}

TEST_CASE("frechet_distance matches the closed form for diagonal and commuting covariances") {
  Generator g(7);
  for (int64_t D : {1, 3, 50}) {
    INFO("D = " << D);
    std::vector<double> m1 = randn({D}, kFloat64, g).to_vector<double>(), m2 = randn({D}, kFloat64, g).to_vector<double>();
    std::vector<double> a = add(rand({D}, kFloat64, g), 0.05).to_vector<double>();
    std::vector<double> b = mul(rand({D}, kFloat64, g), 3.0).to_vector<double>();
    b[0] = 0;  // a zero variance (singular S2)
    const double expected = closed_form_commuting(m1, m2, a, b);
    Tensor mu1 = tensor(m1, {D}, kFloat64), mu2 = tensor(m2, {D}, kFloat64);
    // diagonal: sum (sqrt a - sqrt b)^2
    Tensor A = rotate_diag(eye(D, -1, kFloat64), a), B = rotate_diag(eye(D, -1, kFloat64), b);
    CHECK(models::frechet_distance(mu1, A, mu2, B) == Approx(expected).epsilon(1e-10).margin(1e-10));
    // commuting: S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T has the same distance (the zero
    // eigenvalue of A S2 A comes out as ~1e-16, its square root as ~1e-8: margin 1e-7)
    Tensor Q = random_orthogonal(D, g);
    CHECK(models::frechet_distance(mu1, rotate_diag(Q, a), mu2, rotate_diag(Q, b)) ==
          Approx(expected).epsilon(1e-9).margin(1e-7));
    // S2 = c^2 S1: tr sqrt(S1 S2) = c tr S1
    double trA = 0;
    for (double v : a) trA += v;
    CHECK(models::trace_sqrt_product(rotate_diag(Q, a), mul(rotate_diag(Q, a), 6.25)) == Approx(2.5 * trA).epsilon(1e-10));
  }
}

TEST_CASE("sqrtm_psd squares back to the matrix") {
  Generator g(3);
  Tensor X = randn({40, 12}, kFloat64, g);
  Tensor S = models::gaussian_stats(X).cov;  // (12, 12) positive definite
  Tensor R = models::sqrtm_psd(S);
  CHECK_CLOSE(matmul(R, R), S, 1e-10, 1e-12);
  CHECK_CLOSE(R, R.t(), 0, 1e-12);
}

TEST_CASE("FID of a distribution with itself is 0; FID is symmetric and invariant") {
  Generator g(11);
  const int64_t N = 500, D = 16;
  Tensor mix = randn({D, D}, kFloat64, g);
  Tensor X = matmul(randn({N, D}, kFloat64, g), mix);                             // correlated features
  Tensor Y = add(matmul(randn({N, D}, kFloat64, g), mul(mix, 1.5)), 1.0);         // another distribution
  models::GaussianStats sx = models::gaussian_stats(X), sy = models::gaussian_stats(Y);
  double scale = 0;  // tr of the covariance: the size of the numbers involved
  for (int64_t i = 0; i < D; ++i) scale += sx.cov.to_vector<double>()[i * D + i];

  CHECK(models::frechet_distance(sx, sx) == Approx(0).margin(1e-10 * scale));
  // two samples of the same Gaussian: small compared with a different distribution
  Tensor X2 = matmul(randn({N, D}, kFloat64, g), mix);
  const double same = models::frechet_distance(sx, models::gaussian_stats(X2));
  const double diff = models::frechet_distance(sx, sy);
  CHECK(same < 0.2 * diff);

  // symmetric
  CHECK(models::frechet_distance(sy, sx) == Approx(diff).epsilon(1e-10));
  // invariant under a common rotation and translation of the features
  Tensor Q = random_orthogonal(D, g), shift = randn({1, D}, kFloat64, g);
  Tensor Xr = add(matmul(X, Q), shift), Yr = add(matmul(Y, Q), shift);
  CHECK(models::frechet_distance(models::gaussian_stats(Xr), models::gaussian_stats(Yr)) == Approx(diff).epsilon(1e-9));
  // scaling the features by c scales the (squared) distance by c^2
  CHECK(models::frechet_distance(models::gaussian_stats(mul(X, 3.0)), models::gaussian_stats(mul(Y, 3.0))) ==
        Approx(9 * diff).epsilon(1e-9));
  // a pure mean shift t of one set adds ||t||^2 when the covariances are equal
  Tensor t = randn({1, D}, kFloat64, g);
  const double t2 = sum(square(t)).item<double>();
  CHECK(models::frechet_distance(sx, models::gaussian_stats(add(X, t))) == Approx(t2).epsilon(1e-9));
}

TEST_CASE("classifier_score: known distributions and numpy") {
  const int64_t K = 10;
  // balanced one-hot predictions over K classes: p(y) uniform, each KL = log K -> score K
  Tensor onehot = zeros({5 * K, K}, kFloat64);
  for (int64_t i = 0; i < 5 * K; ++i) onehot.data_ptr<double>()[i * K + i % K] = 1.0;
  CHECK(models::classifier_score(onehot).mean == Approx(static_cast<double>(K)).epsilon(1e-12));
  // 5 splits of 10 rows, each balanced: every split scores K, std 0
  models::ClassifierScore s5 = models::classifier_score(onehot, 5);
  CHECK(s5.mean == Approx(static_cast<double>(K)).epsilon(1e-12));
  CHECK(s5.std == Approx(0).margin(1e-12));
  // the same class for every sample: score 1
  Tensor constant = zeros({20, K}, kFloat64);
  for (int64_t i = 0; i < 20; ++i) constant.data_ptr<double>()[i * K + 3] = 1.0;
  CHECK(models::classifier_score(constant).mean == Approx(1.0).epsilon(1e-12));
  // uninformative predictions (uniform p(y|x)): score 1
  CHECK(models::classifier_score(full({8, K}, 1.0 / K, kFloat64)).mean == Approx(1.0).epsilon(1e-12));
  // one-hot over 4 of the K classes, balanced: score 4 (float32 input)
  Tensor four = zeros({40, K}, kFloat32);
  for (int64_t i = 0; i < 40; ++i) four.data_ptr<float>()[i * K + 2 * (i % 4)] = 1.0f;
  CHECK(models::classifier_score(four).mean == Approx(4.0).epsilon(1e-6));
  // numpy fixture: softmax of random logits, 1 and 4 splits
  CHECK(models::classifier_score(fx("score.probs")).mean == Approx(scalar("score.split1")).epsilon(1e-12));
  models::ClassifierScore s4 = models::classifier_score(fx("score.probs"), 4);
  std::vector<double> e4 = fx("score.split4").to_vector<double>();
  CHECK(s4.mean == Approx(e4[0]).epsilon(1e-12));
  CHECK(s4.std == Approx(e4[1]).epsilon(1e-10));
}

TEST_CASE("images_to_unit_range detects [-1, 1] and [0, 1]") {
  Tensor x01 = rand({2, 1, 28, 28});
  CHECK_CLOSE(models::images_to_unit_range(x01), x01, 0, 0);
  Tensor xpm = add(mul(x01, 2.0), -1.0);
  CHECK_CLOSE(models::images_to_unit_range(xpm), x01, 1e-6, 1e-6);
  CHECK_CLOSE(models::images_to_unit_range(xpm, models::ImageRange::MinusOneOne), x01, 1e-6, 1e-6);
  CHECK(models::images_to_unit_range(reshape(x01, {2, 28, 28})).shape() == Shape{2, 1, 28, 28});
  CHECK_THROWS_WITH(models::images_to_unit_range(rand({2, 3, 28, 28})), Catch::Contains("(2, 3, 28, 28)"));
}

TEST_CASE("FID and score functions reject bad input with clear errors") {
  Tensor mu = zeros({3}, kFloat64), S = eye(3, -1, kFloat64);
  CHECK_THROWS_WITH(models::frechet_distance(mu, S, zeros({4}, kFloat64), S), Catch::Contains("(3,)") && Catch::Contains("(4,)"));
  CHECK_THROWS_WITH(models::frechet_distance(mu, eye(4, -1, kFloat64), mu, S), Catch::Contains("(4, 4)"));
  CHECK_THROWS_WITH(models::trace_sqrt_product(zeros({3, 2}, kFloat64), zeros({3, 2}, kFloat64)),
                    Catch::Contains("square"));
  CHECK_THROWS_WITH(models::gaussian_stats(zeros({1, 5})), Catch::Contains("N >= 2"));
  Tensor bad = eye(3, -1, kFloat64);
  bad.data_ptr<double>()[4] = NAN;
  CHECK_THROWS_WITH(models::frechet_distance(mu, S, mu, bad), Catch::Contains("NaN"));
  CHECK_THROWS_WITH(models::classifier_score(full({4, 3}, 2.0)), Catch::Contains("softmax"));
  CHECK_THROWS_WITH(models::classifier_score(full({4, 3}, 1.0 / 3), 5), Catch::Contains("splits"));
}
