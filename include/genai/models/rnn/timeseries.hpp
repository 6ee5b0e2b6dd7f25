// genai/models/rnn/timeseries.hpp: probabilistic time-series forecasting with an
// LSTM and a Gaussian output head (in the spirit of DeepAR: D. Salinas et al.,
// "DeepAR: probabilistic forecasting with autoregressive recurrent networks", 2020).
//
// GaussianLSTM maps a sequence of feature vectors (B, T, F) to the parameters of
// a Gaussian over the next value at every step: mu (B, T) and log sigma (B, T);
// it is trained with the Gaussian negative log-likelihood (gaussian_nll).
//
// Forecaster wraps it for one seasonal series:
//  - the model works on first differences z_t = y_t - y_{t-1}, standardized with
//    the training part's mean and standard deviation (so a trend is a mean, and
//    the forecast does not leave the range the model saw);
//  - features at step t: [z_t, sin(2 pi t / P), cos(2 pi t / P)] for the seasonal
//    period P (the phase of the calendar);
//  - sequence-to-one: predict_next(history) runs the LSTM over the history and
//    returns the mean and standard deviation of the next value;
//  - autoregressive: sample_paths(history, horizon, n) draws n future paths, each
//    step sampling z from the predicted Gaussian and feeding it back (the paths
//    run as one batch); quantiles of the paths give the forecast fan.
// seasonal_naive() is the baseline: y_{T+h} = y_{T+h-kP} (the same season of the
// last observed cycle).
//
// Parameter names match the PyTorch GaussianLSTM in tests/fixtures/make_rnn_fixtures.py.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "genai/models/rnn/char_lstm.hpp"

namespace genai {
namespace models {
namespace rnn {

struct GaussianLSTMConfig {
  int64_t n_features = 3;
  int64_t hidden_size = 64;
  int64_t num_layers = 2;
};

class GaussianLSTM : public nn::Module {
 public:
  explicit GaussianLSTM(const GaussianLSTMConfig& cfg = {}) : cfg_(cfg) {
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(cfg.n_features, cfg.hidden_size,
                                                              nn::RNNOptions{.num_layers = cfg.num_layers,
                                                                             .batch_first = true}));
    head = register_module("head", std::make_shared<nn::Linear>(cfg.hidden_size, 2));
  }
  std::string type_name() const override { return "GaussianLSTM"; }
  const GaussianLSTMConfig& config() const { return cfg_; }

  struct Output {
    Tensor mu, log_sigma;  // (B, T): the Gaussian over the next value at every step
    LSTMState state;
  };
  /// x (B, T, F) -> mu, log_sigma (B, T).
  Output forward(const Tensor& x, const LSTMState& state = {}) {
    GENAI_CHECK(x.defined() && x.dim() == 3 && x.size(2) == cfg_.n_features, "GaussianLSTM: expected x (B, T, ",
                cfg_.n_features, "), got ", x.defined() ? shape_str(x.shape()) : std::string("undefined"));
    nn::RNNOutput r = lstm->forward(x, state.h, state.c);
    Tensor p = head->forward(r.output);  // (B, T, 2)
    return {select(p, 2, 0), select(p, 2, 1), {r.h_n, r.c_n}};
  }

  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> head;

 private:
  GaussianLSTMConfig cfg_;
};

/// Mean Gaussian negative log-likelihood: log(2 pi)/2 + log sigma + (y - mu)^2 / (2 sigma^2).
inline Tensor gaussian_nll(const Tensor& mu, const Tensor& log_sigma, const Tensor& y) {
  Tensor z = mul(sub(y, mu), exp(neg(log_sigma)));  // (y - mu) / sigma
  return mean(add(add(log_sigma, mul(square(z), 0.5)), 0.9189385332046727));
}

/// A univariate series with a seasonal period.
struct Series {
  std::string name;
  std::vector<double> values;
  int64_t period = 12;
  std::vector<std::string> labels;  // optional time labels ("1958-03"), same length as values
};

/// Monthly means of a "date,value" CSV with dates as YYYYMMDD (as statsmodels'
/// co2.csv: weekly Mauna Loa CO2, 1958-2001); empty values (missing weeks) are
/// skipped; a month without any value is filled by linear interpolation.
inline Series load_monthly_csv(const std::string& path, const std::string& name = "") {
  std::ifstream in(path);
  GENAI_CHECK(in.good(), "load_monthly_csv: cannot open '", path, "'");
  std::string line;
  std::getline(in, line);  // header
  std::map<int64_t, std::pair<double, int64_t>> months;  // YYYYMM -> (sum, count)
  int64_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const size_t comma = line.find(',');
    GENAI_CHECK(comma != std::string::npos && comma >= 6, "load_monthly_csv: '", path, "' line ", lineno,
                ": expected 'YYYYMMDD,value', got '", line, "'");
    std::string v = line.substr(comma + 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    const int64_t ym = std::stoll(line.substr(0, 6));
    auto& m = months[ym];
    if (v.empty()) continue;  // missing measurement
    m.first += std::stod(v);
    m.second += 1;
  }
  GENAI_CHECK(!months.empty(), "load_monthly_csv: '", path, "' has no data");
  Series s;
  s.name = name.empty() ? path : name;
  s.period = 12;
  // every month from the first to the last, in order
  const int64_t first = months.begin()->first, last = months.rbegin()->first;
  for (int64_t ym = first; ym <= last;) {
    auto it = months.find(ym);
    s.values.push_back(it != months.end() && it->second.second > 0 ? it->second.first / it->second.second : NAN);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04lld-%02lld", static_cast<long long>(ym / 100), static_cast<long long>(ym % 100));
    s.labels.push_back(buf);
    ym = ym % 100 == 12 ? (ym / 100 + 1) * 100 + 1 : ym + 1;
  }
  // interpolate missing months
  for (size_t i = 0; i < s.values.size(); ++i) {
    if (!std::isnan(s.values[i])) continue;
    size_t j = i;
    while (j < s.values.size() && std::isnan(s.values[j])) ++j;
    GENAI_CHECK(i > 0 && j < s.values.size(), "load_monthly_csv: '", path, "': missing months at the ends");
    for (size_t k = i; k < j; ++k)
      s.values[k] = s.values[i - 1] + (s.values[j] - s.values[i - 1]) * double(k - i + 1) / double(j - i + 1);
    i = j;
  }
  return s;
}

/// A synthetic monthly series: linear trend + yearly season (two harmonics) + AR(1) noise.
inline Series synthetic_series(int64_t n, Generator& gen, int64_t period = 12) {
  Series s;
  s.name = "synthetic (trend + season + AR(1) noise)";
  s.period = period;
  double ar = 0;
  for (int64_t t = 0; t < n; ++t) {
    const double ph = 2 * M_PI * static_cast<double>(t) / static_cast<double>(period);
    ar = 0.6 * ar + 0.3 * gen.normal();
    s.values.push_back(100 + 0.12 * static_cast<double>(t) + 3 * std::sin(ph) + 1.2 * std::cos(2 * ph) + ar);
  }
  return s;
}

/// Seasonal-naive forecast of the `horizon` values after `history`: y_{T+h} = y_{T+h-kP}.
inline std::vector<double> seasonal_naive(const std::vector<double>& history, int64_t horizon, int64_t period) {
  GENAI_CHECK(static_cast<int64_t>(history.size()) >= period, "seasonal_naive: need at least one period of history");
  std::vector<double> f;
  const int64_t T = static_cast<int64_t>(history.size());
  for (int64_t h = 1; h <= horizon; ++h) {
    const int64_t k = (h + period - 1) / period;
    f.push_back(history[static_cast<size_t>(T + h - k * period - 1)]);
  }
  return f;
}

inline double mean_abs_error(const std::vector<double>& a, const std::vector<double>& b) {
  GENAI_CHECK(a.size() == b.size() && !a.empty(), "mean_abs_error: sizes differ or are empty");
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(a[i] - b[i]);
  return s / static_cast<double>(a.size());
}

/// GaussianLSTM on the standardized first differences of a seasonal series (see the header).
class Forecaster {
 public:
  Forecaster(const GaussianLSTMConfig& cfg, int64_t period) : model(cfg), period_(period) {
    GENAI_CHECK(cfg.n_features == 3, "Forecaster: the features are [z, sin, cos]: n_features must be 3");
    GENAI_CHECK(period >= 2, "Forecaster: the seasonal period must be >= 2");
  }

  /// Fixes the standardization from the training part of the series.
  void fit_scaler(const std::vector<double>& train_values) {
    GENAI_CHECK(train_values.size() >= 3, "Forecaster::fit_scaler: need at least 3 values");
    double s = 0, s2 = 0;
    const size_t n = train_values.size() - 1;
    for (size_t i = 1; i < train_values.size(); ++i) s += train_values[i] - train_values[i - 1];
    mean_ = s / static_cast<double>(n);
    for (size_t i = 1; i < train_values.size(); ++i) {
      const double d = train_values[i] - train_values[i - 1] - mean_;
      s2 += d * d;
    }
    std_ = std::max(1e-8, std::sqrt(s2 / static_cast<double>(n)));
  }
  double scale_mean() const { return mean_; }
  double scale_std() const { return std_; }
  void set_scale(double mean, double std) {
    mean_ = mean;
    std_ = std;
  }

  /// Features (T - 1, 3) for values y_0 .. y_{T-1} starting at absolute index t0:
  /// row i is step t0 + i + 1 (the difference y_{i+1} - y_i), and targets (T - 2,)
  /// the next standardized differences.
  Tensor features(const std::vector<double>& values, int64_t t0) const {
    std::vector<float> f;
    for (size_t i = 1; i < values.size(); ++i) {
      const double ph = 2 * M_PI * static_cast<double>(t0 + static_cast<int64_t>(i)) / static_cast<double>(period_);
      f.push_back(static_cast<float>((values[i] - values[i - 1] - mean_) / std_));
      f.push_back(static_cast<float>(std::sin(ph)));
      f.push_back(static_cast<float>(std::cos(ph)));
    }
    return tensor(f, {static_cast<int64_t>(values.size()) - 1, 3});
  }

  /// A training batch: `batch` random windows of `len` + 2 values from values[0, end):
  /// x (B, len, 3) features and y (B, len) standardized next differences.
  std::pair<Tensor, Tensor> sample_batch(const std::vector<double>& values, int64_t end, int64_t batch, int64_t len,
                                         Generator& gen) const {
    GENAI_CHECK(end >= len + 2 && end <= static_cast<int64_t>(values.size()), "Forecaster::sample_batch: need ",
                len + 2, " values, have ", end);
    TensorList xs, ys;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s = static_cast<int64_t>(gen.below(static_cast<uint64_t>(end - len - 1)));
      std::vector<double> w(values.begin() + s, values.begin() + s + len + 2);
      Tensor f = features(w, s);  // (len + 1, 3)
      xs.push_back(f.narrow(0, 0, len));
      ys.push_back(select(f.narrow(0, 1, len), 1, 0));
    }
    return {stack(xs, 0), stack(ys, 0)};
  }

  /// Sequence-to-one: mean and standard deviation of the value after `history`
  /// (values of the series from absolute index t0).
  std::pair<double, double> predict_next(const std::vector<double>& history, int64_t t0) {
    NoGradGuard ng;
    model.eval();
    Tensor x = unsqueeze(features(history, t0), 0);
    GaussianLSTM::Output o = model.forward(x);
    const int64_t T = o.mu.size(1);
    const double mu = o.mu[0][T - 1].item<double>(), ls = o.log_sigma[0][T - 1].item<double>();
    return {history.back() + mean_ + std_ * mu, std_ * std::exp(ls)};
  }

  /// Autoregressive sampling: n_paths futures of `horizon` values after `history`
  /// (from absolute index t0); returns [path][h].
  std::vector<std::vector<double>> sample_paths(const std::vector<double>& history, int64_t t0, int64_t horizon,
                                                int64_t n_paths, Generator& gen) {
    NoGradGuard ng;
    model.eval();
    Tensor x = unsqueeze(features(history, t0), 0);  // (1, T - 1, 3)
    GaussianLSTM::Output o = model.forward(x);
    // the state of the single history, repeated for every path
    const int64_t L = o.state.h.size(0), H = o.state.h.size(2);
    LSTMState st{contiguous(expand(o.state.h, {L, n_paths, H})), contiguous(expand(o.state.c, {L, n_paths, H}))};
    const int64_t T = o.mu.size(1);
    std::vector<double> mu(static_cast<size_t>(n_paths), o.mu[0][T - 1].item<double>());
    std::vector<double> ls(static_cast<size_t>(n_paths), o.log_sigma[0][T - 1].item<double>());
    std::vector<std::vector<double>> paths(static_cast<size_t>(n_paths));
    std::vector<double> level(static_cast<size_t>(n_paths), history.back());
    const int64_t tlast = t0 + static_cast<int64_t>(history.size()) - 1;
    for (int64_t h = 1; h <= horizon; ++h) {
      const double ph = 2 * M_PI * static_cast<double>(tlast + h) / static_cast<double>(period_);
      std::vector<float> f;
      for (int64_t p = 0; p < n_paths; ++p) {
        const double z = mu[static_cast<size_t>(p)] + std::exp(ls[static_cast<size_t>(p)]) * gen.normal();
        level[static_cast<size_t>(p)] += mean_ + std_ * z;
        paths[static_cast<size_t>(p)].push_back(level[static_cast<size_t>(p)]);
        f.insert(f.end(), {static_cast<float>(z), static_cast<float>(std::sin(ph)), static_cast<float>(std::cos(ph))});
      }
      if (h == horizon) break;
      GaussianLSTM::Output s = model.forward(tensor(f, {n_paths, 1, 3}), st);
      st = s.state;
      std::vector<float> m = s.mu.to_vector<float>(), l = s.log_sigma.to_vector<float>();
      for (int64_t p = 0; p < n_paths; ++p) {
        mu[static_cast<size_t>(p)] = m[static_cast<size_t>(p)];
        ls[static_cast<size_t>(p)] = l[static_cast<size_t>(p)];
      }
    }
    model.train();
    return paths;
  }

  GaussianLSTM model;

 private:
  int64_t period_;
  double mean_ = 0, std_ = 1;
};

/// Quantile q in [0, 1] of each column of paths [path][h] (linear interpolation).
inline std::vector<double> path_quantile(const std::vector<std::vector<double>>& paths, double q) {
  GENAI_CHECK(!paths.empty(), "path_quantile: no paths");
  std::vector<double> out;
  for (size_t h = 0; h < paths[0].size(); ++h) {
    std::vector<double> col;
    for (const auto& p : paths) col.push_back(p[h]);
    std::sort(col.begin(), col.end());
    const double pos = q * static_cast<double>(col.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, col.size() - 1);
    out.push_back(col[lo] + (col[hi] - col[lo]) * (pos - static_cast<double>(lo)));
  }
  return out;
}

}  // namespace rnn
}  // namespace models
}  // namespace genai
