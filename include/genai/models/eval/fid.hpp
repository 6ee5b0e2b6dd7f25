// genai/models/eval/fid.hpp: sample-quality metrics for generators of Fashion-MNIST-like
// images, computed on the features and predictions of models::FMNISTClassifier:
//
//  * "FMNIST-FID": the Frechet distance between Gaussians fitted to the classifier's
//    penultimate features of generated samples and of the test set (Heusel et al. 2017,
//    "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"):
//      d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2).
//  * the classifier score, the Inception score's analogue (Salimans et al. 2016,
//    "Improved Techniques for Training GANs"): exp(E_x KL(p(y|x) || p(y))), between 1
//    (every sample gets the same prediction) and the number of classes (confident
//    predictions, classes balanced).
//
//   models::FMNISTClassifier clf;  clf.load_state_dict(io::load_safetensors(path));
//   models::GaussianStats ref = models::dataset_stats(clf, data::FashionMNIST(root, false));
//   models::SampleScores s = models::score_samples(clf, samples, ref);   // samples (N, 1, 28, 28) in [0, 1]
//   std::printf("FID %.2f, score %.2f\n", s.fid, s.score.mean);
//
// Numerics: statistics and the distance are computed in double precision. The covariance
// uses the unbiased (N - 1) denominator, as numpy.cov and pytorch-fid. tr sqrt(S1 S2) is
// computed as tr sqrt(A S2 A) with A = S1^{1/2}: A S2 A is symmetric positive semi-definite
// and has the eigenvalues of S1 S2, so two symmetric eigendecompositions (Eigen's
// SelfAdjointEigenSolver) give it, with eigenvalues below 0 (rounding) clamped to 0. This
// needs no regularization for singular covariances (fewer samples than feature
// dimensions, dead features), unlike pytorch-fid's scipy.linalg.sqrtm of the non-symmetric
// S1 S2, which adds eps to the diagonals when the product is near singular.
//
// Differences from the Inception score: the classifier is Fashion-MNIST's own (10
// classes), and score() defaults to one split (pass splits = 10 for the customary mean and
// standard deviation over 10 splits).
#pragma once

#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "genai/data/dataloader.hpp"
#include "genai/data/dataset.hpp"
#include "genai/models/eval/fmnist_classifier.hpp"

namespace genai {
namespace models {

/// A Gaussian fitted to N feature vectors.
struct GaussianStats {
  Tensor mean;    // (D) float64
  Tensor cov;     // (D, D) float64, unbiased (N - 1 denominator)
  int64_t n = 0;  // number of samples it was fitted to
};

/// Mean and covariance of features (N, D), N >= 2, in double precision.
inline GaussianStats gaussian_stats(const Tensor& features) {
  GENAI_CHECK(features.defined() && features.dim() == 2 && features.size(0) >= 2 && features.size(1) >= 1,
              "gaussian_stats: expected features (N, D) with N >= 2, got ",
              features.defined() ? shape_str(features.shape()) : std::string("(undefined)"));
  NoGradGuard ng;
  const int64_t N = features.size(0);
  Tensor x = features.detach().to(kFloat64);                        // (N, D)
  Tensor mu = mean(x, {0});                                         // (D)
  Tensor xc = sub(x, unsqueeze(mu, 0));                             // (N, D)
  Tensor cov = mul(matmul(xc.t(), xc), 1.0 / static_cast<double>(N - 1));  // (D, D)
  return {mu.contiguous(), mul(add(cov, cov.t()), 0.5).contiguous(), N};    // exactly symmetric
}

namespace detail {

inline Eigen::MatrixXd fid_to_eigen(const Tensor& t, const char* who, const char* what) {
  GENAI_CHECK(t.defined() && t.dim() == 2 && t.size(0) == t.size(1), who, ": ", what,
              " must be a square matrix (D, D), got ", t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
  const int64_t D = t.size(0);
  std::vector<double> v = t.to_vector<double>();
  Eigen::MatrixXd m(D, D);
  for (int64_t i = 0; i < D; ++i)
    for (int64_t j = 0; j < D; ++j) m(i, j) = v[static_cast<size_t>(i * D + j)];
  return m;
}

inline Tensor fid_from_eigen(const Eigen::MatrixXd& m) {
  const int64_t D = m.rows();
  std::vector<double> v(static_cast<size_t>(D * D));
  for (int64_t i = 0; i < D; ++i)
    for (int64_t j = 0; j < D; ++j) v[static_cast<size_t>(i * D + j)] = m(i, j);
  return tensor(v, {D, D}, kFloat64);
}

/// Eigenvalues and eigenvectors of the symmetric part of s (checks finiteness).
inline Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> fid_eigh(const Eigen::MatrixXd& s, const char* who, bool vectors) {
  GENAI_CHECK(s.allFinite(), who, ": the covariance holds NaN or infinite values; hint: check the features");
  Eigen::MatrixXd sym = 0.5 * (s + s.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sym, vectors ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
  GENAI_CHECK(es.info() == Eigen::Success, who, ": the symmetric eigendecomposition did not converge");
  return es;
}

}  // namespace detail

/// The principal square root of a symmetric positive semi-definite matrix s (D, D),
/// float64: V diag(sqrt(max(lambda, 0))) V^T.
inline Tensor sqrtm_psd(const Tensor& s) {
  auto es = detail::fid_eigh(detail::fid_to_eigen(s, "sqrtm_psd", "s"), "sqrtm_psd", true);
  Eigen::VectorXd r = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  const Eigen::MatrixXd& V = es.eigenvectors();
  return matmul(detail::fid_from_eigen(V * r.asDiagonal()), detail::fid_from_eigen(V).t());
}

/// tr sqrt(S1 S2) for symmetric positive semi-definite S1, S2 (D, D) = sum of the square
/// roots of the eigenvalues of S1 S2, computed as tr sqrt(A S2 A), A = S1^{1/2}.
inline double trace_sqrt_product(const Tensor& s1, const Tensor& s2) {
  GENAI_CHECK(s1.defined() && s2.defined() && s1.shape() == s2.shape(), "trace_sqrt_product: S1 ",
              s1.defined() ? shape_str(s1.shape()) : std::string("(undefined)"), " and S2 ",
              s2.defined() ? shape_str(s2.shape()) : std::string("(undefined)"), " must have the same shape (D, D)");
  NoGradGuard ng;
  Tensor a = sqrtm_psd(s1.detach().to(kFloat64));                   // (D, D) S1^{1/2}
  Tensor m = matmul(matmul(a, s2.detach().to(kFloat64)), a);         // (D, D) A S2 A
  auto es = detail::fid_eigh(detail::fid_to_eigen(m, "trace_sqrt_product", "A S2 A"), "trace_sqrt_product", false);
  return es.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}

/// The squared Frechet distance between N(mu1, s1) and N(mu2, s2) (what FID reports):
/// ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr sqrt(s1 s2); mu (D), s (D, D). Clamped at 0
/// (rounding can give tiny negative values for identical distributions).
inline double frechet_distance(const Tensor& mu1, const Tensor& s1, const Tensor& mu2, const Tensor& s2) {
  GENAI_CHECK(mu1.defined() && mu2.defined() && mu1.dim() == 1 && mu1.shape() == mu2.shape(),
              "frechet_distance: the means must be vectors (D) of the same size, got ",
              mu1.defined() ? shape_str(mu1.shape()) : std::string("(undefined)"), " and ",
              mu2.defined() ? shape_str(mu2.shape()) : std::string("(undefined)"));
  const int64_t D = mu1.size(0);
  GENAI_CHECK(s1.defined() && s2.defined() && s1.shape() == Shape({D, D}) && s2.shape() == Shape({D, D}),
              "frechet_distance: the covariances must be (", D, ", ", D, ") to match the means, got ",
              s1.defined() ? shape_str(s1.shape()) : std::string("(undefined)"), " and ",
              s2.defined() ? shape_str(s2.shape()) : std::string("(undefined)"));
  NoGradGuard ng;
  std::vector<double> m1 = mu1.to_vector<double>(), m2 = mu2.to_vector<double>();
  double d2 = 0;
  for (int64_t i = 0; i < D; ++i) d2 += (m1[i] - m2[i]) * (m1[i] - m2[i]);
  std::vector<double> a = s1.to_vector<double>(), b = s2.to_vector<double>();
  double tr = 0;
  for (int64_t i = 0; i < D; ++i) tr += a[static_cast<size_t>(i * D + i)] + b[static_cast<size_t>(i * D + i)];
  const double fd = d2 + tr - 2.0 * trace_sqrt_product(s1, s2);
  GENAI_CHECK(std::isfinite(fd), "frechet_distance: the result is not finite; hint: check the statistics");
  return std::max(0.0, fd);
}
inline double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  return frechet_distance(a.mean, a.cov, b.mean, b.cov);
}

/// The classifier score: mean and (population) standard deviation over `splits` equal
/// chunks of exp(mean_x KL(p(y|x) || p(y))), p(y) the mean prediction of the chunk.
struct ClassifierScore {
  double mean = 0;
  double std = 0;
};

/// probs (N, K): rows are probability vectors (p(y|x)); 0 log 0 = 0.
inline ClassifierScore classifier_score(const Tensor& probs, int64_t splits = 1) {
  GENAI_CHECK(probs.defined() && probs.dim() == 2 && probs.size(0) >= 1 && probs.size(1) >= 1,
              "classifier_score: expected probabilities (N, K), got ",
              probs.defined() ? shape_str(probs.shape()) : std::string("(undefined)"));
  const int64_t N = probs.size(0), K = probs.size(1);
  GENAI_CHECK(splits >= 1 && splits <= N, "classifier_score: splits must be in [1, N = ", N, "], got ", splits);
  std::vector<double> p = probs.to_vector<double>();
  for (double v : p)
    GENAI_CHECK(v >= 0 && v <= 1 + 1e-6, "classifier_score: probabilities must be in [0, 1], got ", v,
                "; hint: pass softmax(logits, 1), not logits");
  std::vector<double> scores;
  for (int64_t s = 0; s < splits; ++s) {
    const int64_t lo = s * N / splits, hi = (s + 1) * N / splits;
    std::vector<double> py(static_cast<size_t>(K), 0.0);
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t k = 0; k < K; ++k) py[k] += p[static_cast<size_t>(i * K + k)];
    for (double& v : py) v /= static_cast<double>(hi - lo);
    double kl = 0;  // sum over the chunk of KL(p(y|x) || p(y))
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const double q = p[static_cast<size_t>(i * K + k)];
        if (q > 0) kl += q * (std::log(q) - std::log(py[k]));
      }
    scores.push_back(std::exp(kl / static_cast<double>(hi - lo)));
  }
  ClassifierScore r;
  for (double v : scores) r.mean += v;
  r.mean /= static_cast<double>(splits);
  for (double v : scores) r.std += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(r.std / static_cast<double>(splits));
  return r;
}

// ---- running the classifier -------------------------------------------------------------

/// How images handed to the evaluation are scaled.
enum class ImageRange {
  Auto,       // [-1, 1] if any value is below -0.01, else [0, 1]
  ZeroOne,    // [0, 1]
  MinusOneOne // [-1, 1] (tanh generators)
};

/// Images (N, 1, 28, 28) (or (N, 28, 28)) in `range` -> float32 (N, 1, 28, 28) in [0, 1], clamped.
inline Tensor images_to_unit_range(const Tensor& images, ImageRange range = ImageRange::Auto) {
  GENAI_CHECK(images.defined() && images.is_floating_point() &&
                  ((images.dim() == 4 && images.size(1) == 1) || images.dim() == 3) && images.size(-1) == 28 &&
                  images.size(-2) == 28,
              "images_to_unit_range: expected float images (N, 1, 28, 28) or (N, 28, 28), got ",
              images.defined() ? shape_str(images.shape()) : std::string("(undefined)"),
              "; hint: resize other sizes with io::resize, convert colour to one channel");
  NoGradGuard ng;
  Tensor x = images.detach().to(kFloat32);
  if (x.dim() == 3) x = unsqueeze(x, 1);
  if (range == ImageRange::Auto && x.numel() > 0) range = x.min().item<double>() < -0.01 ? ImageRange::MinusOneOne : ImageRange::ZeroOne;
  if (range == ImageRange::MinusOneOne) x = mul(add(x, 1.0), 0.5);
  return clamp(x, 0.0, 1.0).contiguous();
}

/// What the classifier says about a set of images.
struct ClassifierOutputs {
  Tensor features;  // (N, feature_dim) float32
  Tensor probs;     // (N, num_classes) float32, softmax of the logits
};

/// Runs the classifier in eval mode (restoring its mode after) without gradients, in
/// batches: images (N, 1, 28, 28) in [0, 1].
inline ClassifierOutputs classify(FMNISTClassifier& clf, const Tensor& images, int64_t batch = 500) {
  GENAI_CHECK(batch >= 1, "classify: batch must be positive, got ", batch);
  GENAI_CHECK(images.defined() && images.dim() == 4 && images.size(0) >= 1, "classify: expected images (N, 1, 28, 28), got ",
              images.defined() ? shape_str(images.shape()) : std::string("(undefined)"));
  NoGradGuard ng;
  const bool was_training = clf.is_training();
  clf.eval();
  TensorList feats, probs;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    Tensor x = images.narrow(0, i, std::min(batch, images.size(0) - i)).to(clf.parameters()[0].dtype());
    Tensor f = clf.features(x);  // (b, F)
    feats.push_back(f.to(kFloat32));
    probs.push_back(softmax(clf.head(f), 1).to(kFloat32));
  }
  if (was_training) clf.train();
  return {cat(feats, 0), cat(probs, 0)};
}

/// The first `limit` (all if < 0) images of a dataset of (1, 28, 28) images in [0, 1], stacked.
inline Tensor dataset_images(const data::Dataset& ds, int64_t limit = -1) {
  const int64_t n = limit < 0 ? ds.size() : std::min(limit, ds.size());
  GENAI_CHECK(n >= 1, "dataset_images: the dataset is empty");
  TensorList xs;
  xs.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xs.push_back(ds.get(i).input);
  return stack(xs, 0);
}

/// Reference statistics: the classifier's feature Gaussian over (the first `limit` of) a dataset.
inline GaussianStats dataset_stats(FMNISTClassifier& clf, const data::Dataset& ds, int64_t limit = -1) {
  return gaussian_stats(classify(clf, dataset_images(ds, limit)).features);
}

/// Everything fmnist_eval reports about a set of samples.
struct SampleScores {
  double fid = 0;                     // FMNIST-FID against the reference statistics
  ClassifierScore score;              // classifier score (Inception-score analogue)
  std::vector<int64_t> class_counts;  // how many samples the classifier puts in each class
  int64_t n = 0;                      // number of samples
};

/// Scores samples (N, 1, 28, 28) in [0, 1] (N >= 2) against reference statistics.
inline SampleScores score_samples(FMNISTClassifier& clf, const Tensor& samples, const GaussianStats& ref,
                                  int64_t splits = 1) {
  GENAI_CHECK(samples.defined() && samples.dim() == 4 && samples.size(0) >= 2,
              "score_samples: need at least 2 samples (N, 1, 28, 28), got ",
              samples.defined() ? shape_str(samples.shape()) : std::string("(undefined)"));
  ClassifierOutputs o = classify(clf, samples);
  SampleScores s;
  s.n = samples.size(0);
  s.fid = frechet_distance(gaussian_stats(o.features), ref);
  s.score = classifier_score(o.probs, splits);
  s.class_counts.assign(static_cast<size_t>(o.probs.size(1)), 0);
  for (int64_t c : argmax(o.probs, 1).to_vector<int64_t>()) ++s.class_counts[static_cast<size_t>(c)];
  return s;
}

}  // namespace models
}  // namespace genai
