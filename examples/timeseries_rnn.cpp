// timeseries_rnn: probabilistic forecasting of a seasonal series with an LSTM and a
// Gaussian output head (models/rnn/timeseries.hpp), against a seasonal-naive
// baseline, with the forecast fan plotted as a PNG.
//
// Walkthrough:
//  1. The series: monthly means of the weekly Mauna Loa CO2 record 1958-2001
//     (statsmodels' co2.csv, Debian package python3-statsmodels), or --data CSV,
//     or, when neither is there, a synthetic monthly series (trend + season +
//     AR(1) noise). The last --horizon months are held out.
//  2. Training: random windows of --window months from the training part; the
//     model reads standardized first differences with the calendar phase
//     (sin, cos) and predicts a Gaussian over the next difference at every step;
//     loss = Gaussian negative log-likelihood; clip 1.0, Adam. Progress bar,
//     metrics.jsonl, checkpoint.safetensors (atomic), --resume.
//  3. Forecasts from the last --context months of the training part:
//     sequence-to-one (the predicted mean of the next month, rolled over the
//     held-out months with the true history) and autoregressive (--paths sampled
//     futures of --horizon months; their median and 5/25/75/95% quantiles).
//     Both are scored by mean absolute error against the seasonal-naive forecast.
//  4. OUT/forecast.csv, OUT/forecast.gp and, with gnuplot installed (Debian
//     gnuplot-nox), OUT/forecast.png: history, held-out truth, naive forecast,
//     median and the 50% / 90% fan.
//
//   timeseries_rnn [--data co2.csv] [--steps 1500] [--horizon 24] [--out DIR] [--resume]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/genai.hpp>
#include <genai/models/rnn/timeseries.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using namespace genai::models::rnn;

namespace {

const char* kCo2 = "/usr/lib/python3/dist-packages/statsmodels/datasets/co2/co2.csv";

struct Args {
  std::string data, out = "timeseries_rnn_out";
  int64_t steps = 1500, batch = 32, window = 48, horizon = 24, context = 120, hidden = 64, layers = 2, paths = 500;
  int64_t eval_every = 250;
  double lr = 3e-3;
  uint64_t seed = 0;
  bool resume = false, synthetic = false, distributed = false;
  int threads = 0;
};

/// Writes the gnuplot script and runs it when gnuplot is installed.
void plot(const std::string& out, const std::string& title) {
  const std::string gp = out + "/forecast.gp";
  std::ofstream g(gp);
  g << "# gnuplot script written by timeseries_rnn: gnuplot forecast.gp\n"
       "set terminal png size 1000,560\n"
       "set output '" << out << "/forecast.png'\n"
       "set datafile separator ','\n"
       "set title '" << title << "'\n"
       "set xlabel 'month index'\n"
       "set key left top\n"
       "set grid\n"
       "plot '" << out << "/forecast.csv' every ::1 using 1:5:8 with filledcurves lc rgb '#c6dbef' title '90% interval', \\\n"
       "     '' every ::1 using 1:6:7 with filledcurves lc rgb '#6baed6' title '50% interval', \\\n"
       "     '' every ::1 using 1:3 with lines lw 2 lc rgb 'black' title 'observed', \\\n"
       "     '' every ::1 using 1:4 with lines lw 2 dt 2 lc rgb '#d62728' title 'seasonal naive', \\\n"
       "     '' every ::1 using 1:9 with lines lw 2 lc rgb '#08519c' title 'LSTM median'\n";
  g.close();
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    std::printf("gnuplot not found (apt-get install gnuplot-nox): skipped %s/forecast.png; the script is %s\n",
                out.c_str(), gp.c_str());
    return;
  }
  const std::string cmd = "gnuplot '" + gp + "'";
  if (std::system(cmd.c_str()) == 0) std::printf("wrote %s/forecast.png\n", out.c_str());
  else std::printf("gnuplot failed on %s\n", gp.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"timeseries_rnn: LSTM forecaster with a Gaussian head, sampled future paths and a forecast fan"};
  app.add_option("--data", a.data, "CSV 'YYYYMMDD,value' (default: statsmodels' co2.csv when installed)");
  app.add_flag("--synthetic", a.synthetic, "use the synthetic series even when the data is there");
  app.add_option("--out", a.out, "output directory")->capture_default_str();
  app.add_option("--steps", a.steps, "training steps")->capture_default_str();
  app.add_option("--batch", a.batch, "windows per step")->capture_default_str();
  app.add_option("--window", a.window, "months per training window")->capture_default_str();
  app.add_option("--horizon", a.horizon, "months held out and forecast")->capture_default_str();
  app.add_option("--context", a.context, "months of history the forecasts read")->capture_default_str();
  app.add_option("--hidden", a.hidden, "LSTM hidden size")->capture_default_str();
  app.add_option("--layers", a.layers, "LSTM layers")->capture_default_str();
  app.add_option("--paths", a.paths, "sampled future paths")->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--eval-every", a.eval_every, "steps between metrics + checkpoint")->capture_default_str();
  app.add_option("--seed", a.seed, "random seed")->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from OUT/checkpoint.safetensors");
  app.add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N`: each draws its own --batch windows; "
               "rank 0 forecasts and writes");
  app.add_option("--threads", a.threads, "threads (0: GENAI_NUM_THREADS or all cores)");
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  try {
    examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
    std::filesystem::create_directories(a.out);
    manual_seed(a.seed);
    Generator gen(a.seed + 1);
    Series s;
    std::string path = a.data.empty() ? kCo2 : a.data;
    if (!a.synthetic && std::filesystem::exists(path)) {
      const bool co2 = path.size() >= 7 && path.compare(path.size() - 7, 7, "co2.csv") == 0;
      s = load_monthly_csv(path, co2 ? "Mauna Loa CO2 (ppm), monthly means 1958-2001" : path);
    } else {
      if (!a.synthetic)
        std::fprintf(stderr, "%s not found (apt-get install python3-statsmodels for the Mauna Loa CO2 series, or pass "
                     "--data); using a synthetic series\n", path.c_str());
      Generator sg(a.seed + 2);
      s = synthetic_series(360, sg);
    }
    const int64_t N = static_cast<int64_t>(s.values.size()), H = a.horizon, P = s.period;
    GENAI_CHECK(N > H + a.window + 2 && a.context >= P, "timeseries_rnn: the series has ", N,
                " values: too short for horizon ", H, " and window ", a.window);
    const int64_t n_train = N - H;
    std::vector<double> train(s.values.begin(), s.values.begin() + n_train);
    std::vector<double> test(s.values.begin() + n_train, s.values.end());
    if (dist.is_main())
      std::printf("series: %s, %lld values (period %lld); training on the first %lld, forecasting the last %lld\n",
                s.name.c_str(), static_cast<long long>(N), static_cast<long long>(P), static_cast<long long>(n_train),
                static_cast<long long>(H));

    Forecaster fc({.n_features = 3, .hidden_size = a.hidden, .num_layers = a.layers}, P);
    fc.fit_scaler(train);
    optim::Adam opt(fc.model.parameters(), {.lr = a.lr});
    const std::string ckpt = a.out + "/checkpoint.safetensors";
    int64_t step = 0;
    if (a.resume && std::filesystem::exists(ckpt)) {
      io::Checkpoint ck = io::Checkpoint::load(ckpt);
      fc.model.load_state_dict(ck.model());
      opt.load_state_dict(ck.optim());
      ck.restore_generator("data", gen);
      step = ck.get_int("step");
      std::printf("resumed from %s at step %lld\n", ckpt.c_str(), static_cast<long long>(step));
    }
    dist.wrap(fc.model);  // --distributed: rank 0's weights everywhere, gradients averaged by backward
    // each process draws its own training windows
    if (dist.rank() > 0) gen = Generator(a.seed + 1 + 104729 * static_cast<uint64_t>(dist.rank()) + static_cast<uint64_t>(step));
    std::optional<train::MetricsLogger> log;  // rank 0 logs, forecasts and writes
    if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, a.resume);
    train::ProgressBar bar(a.steps - step, {.desc = "train", .stream = dist.progress_stream()});
    double sum = 0, t_steps = 0;
    int64_t cnt = 0;
    const int64_t first_step = step;
    while (step < a.steps) {
      const auto ts = std::chrono::steady_clock::now();
      auto [x, y] = fc.sample_batch(train, n_train, a.batch, a.window, gen);
      GaussianLSTM::Output o = fc.model.forward(x);
      Tensor loss = gaussian_nll(o.mu, o.log_sigma, y);
      opt.zero_grad();
      loss.backward();
      optim::clip_grad_norm_(fc.model.parameters(), 1.0);
      opt.step();
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++step;
      examples::check_finite_loss(loss.item<double>(), step);
      sum += loss.item<double>();
      ++cnt;
      bar.set_postfix("nll=" + std::to_string(loss.item<double>()));
      bar.update();
      if (step % a.eval_every == 0 || step == a.steps) {
        const double train_nll = dist.mean(sum / static_cast<double>(cnt));  // over all processes' batches
        sum = 0;
        cnt = 0;
        if (!dist.is_main()) continue;  // rank 0 logs and writes
        log->log({{"step", step}, {"train_nll", train_nll}});
        io::Checkpoint ck;
        ck.model() = fc.model.state_dict();
        ck.optim() = opt.state_dict();
        ck.set_generator("data", gen);
        ck.ints["step"] = step;
        ck.floats["scale_mean"] = fc.scale_mean();
        ck.floats["scale_std"] = fc.scale_std();
        ck.save(ckpt);
      }
    }
    bar.close();
    examples::report_step_time(dist, a.batch, step - first_step, t_steps);
    if (!dist.is_main()) return 0;

    // forecasts from the last `context` training values
    const int64_t t0 = n_train - a.context;
    std::vector<double> hist(train.begin() + t0, train.end());
    std::vector<double> naive = seasonal_naive(train, H, P);
    // sequence-to-one, rolled over the held-out months with the true history
    std::vector<double> one_step, naive_one_step;
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> hh(s.values.begin() + t0 + h, s.values.begin() + n_train + h);
      one_step.push_back(fc.predict_next(hh, t0 + h).first);
      naive_one_step.push_back(s.values[static_cast<size_t>(n_train + h - P)]);
    }
    // autoregressive sampled paths
    Generator pg(a.seed + 3);
    auto paths = fc.sample_paths(hist, t0, H, a.paths, pg);
    std::vector<double> med = path_quantile(paths, 0.5), q05 = path_quantile(paths, 0.05),
                        q25 = path_quantile(paths, 0.25), q75 = path_quantile(paths, 0.75),
                        q95 = path_quantile(paths, 0.95);
    int64_t inside = 0;
    for (int64_t h = 0; h < H; ++h)
      inside += test[static_cast<size_t>(h)] >= q05[static_cast<size_t>(h)] &&
                test[static_cast<size_t>(h)] <= q95[static_cast<size_t>(h)];
    const double mae_model = mean_abs_error(med, test), mae_naive = mean_abs_error(naive, test);
    const double mae_1 = mean_abs_error(one_step, test), mae_1n = mean_abs_error(naive_one_step, test);
    std::printf("%lld-month forecast, mean absolute error: LSTM median of %lld paths %.4f, seasonal naive %.4f (%s)\n",
                static_cast<long long>(H), static_cast<long long>(a.paths), mae_model, mae_naive,
                mae_model < mae_naive ? "LSTM better" : "naive better");
    std::printf("one step ahead (sequence-to-one), mean absolute error: LSTM %.4f, seasonal naive %.4f\n", mae_1, mae_1n);
    std::printf("90%% interval covers %lld of %lld held-out months\n", static_cast<long long>(inside),
                static_cast<long long>(H));
    log->log({{"step", step},
             {"mae_lstm", mae_model},
             {"mae_seasonal_naive", mae_naive},
             {"mae_one_step_lstm", mae_1},
             {"mae_one_step_naive", mae_1n},
             {"coverage90", static_cast<double>(inside) / static_cast<double>(H)}});

    // CSV: index, label, observed, naive, q05, q25, q75, q95, median (history rows: forecast columns empty)
    std::ofstream csv(a.out + "/forecast.csv");
    csv << "t,label,observed,seasonal_naive,q05,q25,q75,q95,median\n";
    const int64_t show = std::max<int64_t>(0, n_train - 4 * P);
    for (int64_t t = show; t < N; ++t) {
      const std::string label = s.labels.empty() ? "" : s.labels[static_cast<size_t>(t)];
      csv << t << "," << label << "," << s.values[static_cast<size_t>(t)];
      if (t < n_train) {
        csv << ",,,,,,\n";
      } else {
        const size_t h = static_cast<size_t>(t - n_train);
        csv << "," << naive[h] << "," << q05[h] << "," << q25[h] << "," << q75[h] << "," << q95[h] << "," << med[h]
            << "\n";
      }
    }
    csv.close();
    std::printf("wrote %s/forecast.csv\n", a.out.c_str());
    plot(a.out, s.name + ": LSTM forecast fan vs seasonal naive");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "timeseries_rnn: %s\n", e.what());
    return 1;
  }
}
