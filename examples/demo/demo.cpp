// genai_demo: the five-minute tour of genai. It trains small generative models on
// Fashion-MNIST on the CPU and writes a folder worth opening (genai-demo/ by default):
//
//   report.md, index.html   what was trained, for how long, with which losses and scores
//   real_images.png         training images, for comparison
//   vae_samples.png, vae_reconstructions.png, vae_latent_walk.png
//   dcgan_samples.png, dcgan_latent_walk.png
//   *_loss.png              training curves drawn by gnuplot (skipped if gnuplot is missing)
//   *_loss.dat, *_loss.gp   the data and gnuplot scripts behind them
//
// Walkthrough:
//  1. Data: Fashion-MNIST (Debian package dataset-fashion-mnist, or --data DIR); without it
//     a synthetic set of ten shape classes, with a clear message in the terminal and report.
//  2. Sections, from a small registry (demo.hpp; one file per model family in examples/demo/):
//     the evaluation classifier (for FMNIST-FID; trained briefly, or --classifier W), a VAE
//     and a DCGAN. Each gets a share of what is left of --budget seconds (default 270) for its
//     training and evaluation, so the whole run takes about five minutes on two cores however
//     fast the machine is (a slower machine trains fewer steps); --quick runs a few steps each
//     (smoke test).
//  3. The report: an overview table, then per section its pictures, numbers and loss plot.
//
//   genai_demo                       # ~5 minutes, writes genai-demo/
//   genai_demo --quick --out /tmp/d  # seconds
//   genai_demo --classifier runs/clf/fmnist_classifier.safetensors   # FID with the fully trained classifier
#include "demo.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include <genai/data/fashion_mnist.hpp>
#include <genai/io/image.hpp>
#include <genai/train/progress.hpp>

using namespace genai;
namespace fs = std::filesystem;

namespace demo {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double seconds_since(double t0) { return now_seconds() - t0; }

std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

void Context::save_png(const std::string& file, const Tensor& img) const { io::save_png(path(file), img); }

Tensor Batcher::next(int64_t B, Tensor* labels) {
  std::vector<int64_t> idx;
  idx.reserve(static_cast<size_t>(B));
  while (static_cast<int64_t>(idx.size()) < B) {
    if (pos_ >= order_.size()) {
      order_ = randperm(x_.size(0), gen_).to_vector<int64_t>();
      pos_ = 0;
      ++epochs_;
    }
    idx.push_back(order_[pos_++]);
  }
  Tensor i = tensor(idx, {B});
  if (labels) *labels = index_select(y_, 0, i);
  return index_select(x_, 0, i);
}

int64_t run_steps(const Context& ctx, const std::string& desc, int64_t max_steps,
                  const std::function<std::string(int64_t)>& step) {
  const double t0 = now_seconds();
  const int64_t calib = ctx.opt.quick ? 0 : std::min<int64_t>(10, max_steps);
  int64_t planned = max_steps, i = 0;
  for (; i < calib; ++i) step(i);  // measure the speed
  if (!ctx.opt.quick && calib > 0) {
    // 85% of the section's time for training, the rest for evaluation and pictures
    const double per = seconds_since(t0) / static_cast<double>(calib);
    planned = std::clamp<int64_t>(static_cast<int64_t>(0.85 * ctx.section_seconds / std::max(per, 1e-6)), calib, max_steps);
  }
  train::ProgressBar bar(planned, {.desc = desc});
  bar.update(i);
  for (; i < planned; ++i) {
    // the machine may slow down after the estimate: stop at 95% of the section's time
    if (!ctx.opt.quick && seconds_since(t0) > 0.95 * ctx.section_seconds) break;
    bar.set_postfix(step(i));
    bar.update();
  }
  bar.close();
  return i;
}

}  // namespace demo

namespace {

// ---- data ------------------------------------------------------------------------------

Tensor stack_images(const data::Dataset& ds, int64_t n, Tensor* labels) {
  TensorList xs, ys;
  for (int64_t i = 0; i < n; ++i) {
    data::Example e = ds.get(i);
    xs.push_back(e.input);
    ys.push_back(e.target);
  }
  *labels = stack(ys, 0);
  return stack(xs, 0);
}

/// Ten classes of simple shapes (disc, ring, square, frame, bars, cross, diagonal,
/// triangle, two dots) with random size, position and brightness plus a little noise:
/// a stand-in with visible structure when Fashion-MNIST is not installed.
Tensor synthetic_shapes(int64_t n, Generator& g, Tensor* labels) {
  Tensor x = zeros({n, 1, 28, 28});
  std::vector<int64_t> y(static_cast<size_t>(n));
  float* p = x.data_ptr<float>();
  auto u = [&] { return static_cast<double>(g.next_u64() >> 11) * (1.0 / 9007199254740992.0); };
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(g.next_u64() % 10);
    y[static_cast<size_t>(i)] = c;
    const double cx = 14 + (u() - 0.5) * 6, cy = 14 + (u() - 0.5) * 6, r = 5 + u() * 4, v = 0.6 + 0.4 * u();
    float* img = p + i * 784;
    for (int64_t yy = 0; yy < 28; ++yy)
      for (int64_t xx = 0; xx < 28; ++xx) {
        const double dx = xx - cx, dy = yy - cy, d = std::sqrt(dx * dx + dy * dy);
        bool on = false;
        switch (c) {
          case 0: on = d < r; break;                                                  // disc
          case 1: on = d < r && d > r - 2.5; break;                                   // ring
          case 2: on = std::abs(dx) < r * 0.8 && std::abs(dy) < r * 0.8; break;       // square
          case 3: on = std::max(std::abs(dx), std::abs(dy)) < r && std::max(std::abs(dx), std::abs(dy)) > r - 2; break;
          case 4: on = std::abs(dy) < 2 && std::abs(dx) < r + 3; break;               // horizontal bar
          case 5: on = std::abs(dx) < 2 && std::abs(dy) < r + 3; break;               // vertical bar
          case 6: on = (std::abs(dx) < 1.5 || std::abs(dy) < 1.5) && d < r + 2; break;  // cross
          case 7: on = std::abs(dx - dy) < 2 && d < r + 2; break;                     // diagonal
          case 8: on = dy > -r && dy < r && std::abs(dx) < (dy + r) * 0.5; break;     // triangle
          default: on = std::hypot(dx - r * 0.6, dy) < 2.5 || std::hypot(dx + r * 0.6, dy) < 2.5; break;  // two dots
        }
        const double noise = 0.05 * u();
        img[yy * 28 + xx] = static_cast<float>(std::min(1.0, (on ? v : 0.0) + noise));
      }
  }
  *labels = tensor(y, {n});
  return x;
}

demo::Data load_data(const demo::Options& o) {
  demo::Data d;
  const int64_t n_train = o.quick ? 2048 : -1, n_test = o.quick ? 1000 : -1;
  if (data::FashionMNIST::available(o.data)) {
    data::FashionMNIST tr(o.data, true, n_train), te(o.data, false, n_test);
    d.train_images = stack_images(tr, tr.size(), &d.train_labels);
    d.test_images = stack_images(te, te.size(), &d.test_labels);
    d.description = demo::fmt("Fashion-MNIST from %s: %lld training and %lld test images (28x28 greyscale, 10 classes).",
                              o.data.c_str(), static_cast<long long>(tr.size()), static_cast<long long>(te.size()));
  } else {
    std::fprintf(stderr,
                 "\n*** Fashion-MNIST was not found in %s.\n"
                 "*** The demo continues on a SYNTHETIC dataset of simple shapes (10 classes).\n"
                 "*** For the real thing: sudo apt-get install dataset-fashion-mnist   (or run .ci/install-deps)\n\n",
                 o.data.c_str());
    Generator g(o.seed + 77);
    d.train_images = synthetic_shapes(o.quick ? 2048 : 20000, g, &d.train_labels);
    d.test_images = synthetic_shapes(o.quick ? 1000 : 5000, g, &d.test_labels);
    d.synthetic = true;
    d.description = demo::fmt(
        "SYNTHETIC shapes (Fashion-MNIST was not found in %s; install the Debian package dataset-fashion-mnist): "
        "%lld training and %lld test images of 10 shape classes. Numbers are not comparable with Fashion-MNIST ones.",
        o.data.c_str(), static_cast<long long>(d.train_images.size(0)), static_cast<long long>(d.test_images.size(0)));
  }
  return d;
}

// ---- report ------------------------------------------------------------------------------

std::string html_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

/// Plain text with `code` spans -> HTML.
std::string html_text(const std::string& s) {
  std::string e = html_escape(s), r;
  bool in_code = false;
  for (char c : e) {
    if (c == '`') {
      r += in_code ? "</code>" : "<code>";
      in_code = !in_code;
    } else {
      r += c;
    }
  }
  if (in_code) r += "</code>";
  return r;
}

void md_table(std::ostream& os, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  for (size_t r = 0; r < rows.size(); ++r) {
    os << "|";
    for (const auto& c : rows[r]) os << " " << c << " |";
    os << "\n";
    if (r == 0) {
      os << "|";
      for (size_t c = 0; c < rows[0].size(); ++c) os << "---|";
      os << "\n";
    }
  }
  os << "\n";
}

void html_table(std::ostream& os, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  os << "<table>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    os << "<tr>";
    for (const auto& c : rows[r]) os << (r == 0 ? "<th>" : "<td>") << html_text(c) << (r == 0 ? "</th>" : "</td>");
    os << "</tr>\n";
  }
  os << "</table>\n";
}

bool have_gnuplot() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

std::string shell_quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

/// Writes <key>_loss.dat and <key>_loss.gp and runs gnuplot to draw <key>_loss.png.
/// Returns the PNG's file name, or "" if gnuplot failed.
std::string plot_curves(const demo::Context& ctx, const demo::SectionReport& rep) {
  if (rep.curves.empty()) return "";
  const std::string base = rep.key + "_loss";
  std::ofstream dat(ctx.path(base + ".dat"));
  // one gnuplot data block per curve (separated by two blank lines): x y moving-average
  for (const demo::Curve& c : rep.curves) {
    dat << "# " << c.name << "\n";
    const size_t w = std::max<size_t>(1, c.y.size() / 50);  // window: 2% of the points
    double acc = 0;
    for (size_t i = 0; i < c.y.size(); ++i) {
      acc += c.y[i];
      if (i >= w) acc -= c.y[i - w];
      const double avg = acc / static_cast<double>(std::min(i + 1, w));
      dat << c.x[i] << " " << c.y[i] << " " << avg << "\n";
    }
    dat << "\n\n";
  }
  dat.close();
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  for (const char* term : {"pngcairo size 900,420 font 'Sans,10'", "png size 900,420"}) {
    std::ofstream gp(ctx.path(base + ".gp"));
    gp << "# gnuplot script written by genai_demo: gnuplot " << base << ".gp\n"
       << "set terminal " << term << "\n"
       << "set output '" << base << ".png'\n"
       << "set title \"" << rep.title << ": training curves\"\n"
       << "set xlabel '" << rep.xlabel << "'\nset ylabel '" << rep.ylabel << "'\n"
       << "set key outside right\nset grid\n"
       << "plot ";
    for (size_t i = 0; i < rep.curves.size(); ++i) {
      const demo::Curve& c = rep.curves[i];
      const char* col = colors[i % 5];
      if (i) gp << ", \\\n     ";
      if (c.smooth && c.y.size() > 100) {
        gp << "'" << base << ".dat' index " << i << " using 1:2 with lines lc rgb '" << col
           << "' lw 0.5 dt 1 notitle, \\\n     '" << base << ".dat' index " << i << " using 1:3 with lines lc rgb '"
           << col << "' lw 2 title '" << c.name << " (moving average)'";
      } else {
        gp << "'" << base << ".dat' index " << i << " using 1:2 with linespoints lc rgb '" << col << "' lw 2 pt 7 title '"
           << c.name << "'";
      }
    }
    gp << "\n";
    gp.close();
    const std::string cmd = "cd " + shell_quote(ctx.opt.out) + " && gnuplot " + shell_quote(base + ".gp") + " 2> " +
                            shell_quote(base + ".gnuplot.log");
    if (std::system(cmd.c_str()) == 0 && fs::exists(ctx.path(base + ".png"))) {
      fs::remove(ctx.path(base + ".gnuplot.log"));
      return base + ".png";
    }
  }
  std::fprintf(stderr, "gnuplot failed for %s (see %s)\n", base.c_str(), ctx.path(base + ".gnuplot.log").c_str());
  return "";
}

std::string time_str(double s) { return s < 90 ? demo::fmt("%.0f s", s) : demo::fmt("%.1f min", s / 60); }

void write_reports(const demo::Context& ctx, const std::vector<demo::SectionReport>& reps, double total_seconds,
                   bool gnuplot_ok) {
  // ---- Markdown
  std::ofstream md(ctx.path("report.md"));
  std::time_t t = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&t));
  md << "# genai demo\n\n";
  const std::string threads = get_num_threads() == 1 ? "1 thread" : std::to_string(get_num_threads()) + " threads";
  md << "Generated by `genai_demo` on " << date << " in " << time_str(total_seconds) << " on " << threads << (ctx.opt.quick ? " (--quick: a few steps per model, pictures are noise)" : "")
     << ".\n\n";
  md << "**Data.** " << ctx.data.description << "\n\n";
  md << "![training images](real_images.png)\n\n*Training images, for comparison.*\n\n";
  std::vector<std::vector<std::string>> overview{{"section", "time", "key numbers"}};
  for (const auto& r : reps) {
    std::string nums;
    for (const auto& [k, v] : r.summary) nums += (nums.empty() ? "" : "; ") + k + " " + v;
    overview.push_back({"[" + r.title + "](#" + r.key + ")", time_str(r.seconds), r.failed ? "FAILED" : nums});
  }
  md << "## Overview\n\n";
  md_table(md, overview);
  if (!ctx.scorer_note.empty()) md << ctx.scorer_note << "\n\n";
  if (!gnuplot_ok) md << "Loss plots were skipped: gnuplot was not found (Debian package gnuplot-nox).\n\n";
  for (const auto& r : reps) {
    md << "<a id=\"" << r.key << "\"></a>\n\n## " << r.title << "\n\n";
    for (const auto& b : r.blocks) {
      if (b.kind == demo::Block::Kind::Text) md << b.text << "\n\n";
      if (b.kind == demo::Block::Kind::Image) md << "![" << b.text << "](" << b.file << ")\n\n*" << b.text << "*\n\n";
      if (b.kind == demo::Block::Kind::Table) md_table(md, b.rows);
    }
  }
  md << "## Going further\n\n"
     << "Each model has a full training program: `build/release/examples/vae`, `dcgan`, `fmnist_classifier` "
     << "(`--help` lists the flags); `fmnist_eval` scores any generator's samples (docs/evaluation.md). "
     << "This demo is described in docs/demo.md.\n";
  md.close();

  // ---- HTML
  std::ofstream h(ctx.path("index.html"));
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>genai demo</title>\n<style>"
    << "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;line-height:1.45}"
    << "img{image-rendering:pixelated;max-width:100%;border:1px solid #ccc}"
    << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    << "figcaption{color:#555;font-size:90%}figure{margin:1em 0}code{background:#f3f3f3;padding:1px 3px}"
    << "</style></head><body>\n<h1>genai demo</h1>\n";
  h << "<p>Generated by <code>genai_demo</code> on " << date << " in " << time_str(total_seconds) << " on " << threads << (ctx.opt.quick ? " (--quick: a few steps per model)" : "") << ".</p>\n";
  h << "<p><b>Data.</b> " << html_text(ctx.data.description) << "</p>\n";
  h << "<figure><img src=\"real_images.png\" width=\"300\"><figcaption>Training images, for comparison."
    << "</figcaption></figure>\n<h2>Overview</h2>\n<table>\n<tr><th>section</th><th>time</th><th>key numbers</th></tr>\n";
  for (size_t i = 1; i < overview.size(); ++i)
    h << "<tr><td><a href=\"#" << reps[i - 1].key << "\">" << html_escape(reps[i - 1].title) << "</a></td><td>"
      << overview[i][1] << "</td><td>" << html_text(overview[i][2]) << "</td></tr>\n";
  h << "</table>\n";
  if (!ctx.scorer_note.empty()) h << "<p>" << html_text(ctx.scorer_note) << "</p>\n";
  if (!gnuplot_ok) h << "<p>Loss plots were skipped: gnuplot was not found (Debian package gnuplot-nox).</p>\n";
  for (const auto& r : reps) {
    h << "<h2 id=\"" << r.key << "\">" << html_escape(r.title) << "</h2>\n";
    for (const auto& b : r.blocks) {
      if (b.kind == demo::Block::Kind::Text) h << "<p>" << html_text(b.text) << "</p>\n";
      if (b.kind == demo::Block::Kind::Image) {
        const bool plot = b.file.find("_loss.png") != std::string::npos;
        h << "<figure><img src=\"" << html_escape(b.file) << "\"" << (plot ? "" : " width=\"300\"") << "><figcaption>"
          << html_text(b.text) << "</figcaption></figure>\n";
      }
      if (b.kind == demo::Block::Kind::Table) html_table(h, b.rows);
    }
  }
  h << "</body></html>\n";
}

}  // namespace

int run(int argc, char** argv) {
  demo::Options o;
  o.data = data::FashionMNIST::kDefaultRoot;
  int threads = 0;
  std::string only;
  bool list = false;
  CLI::App app{"genai_demo: trains small generative models on Fashion-MNIST in about five minutes and writes a report "
               "folder (pictures, loss plots, FID)."};
  app.add_option("--out", o.out, "output folder")->capture_default_str();
  app.add_flag("--quick", o.quick, "a few steps per model (seconds; for smoke tests)");
  app.add_option("--budget", o.budget,
                 "seconds for the whole run: each section gets a share of what is left for its training and evaluation")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seeds everything")->capture_default_str();
  app.add_option("--threads", threads, "worker threads (0: GENAI_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--data", o.data, "directory with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--classifier", o.classifier,
                 "weights of a trained classifier (fmnist_classifier.safetensors) for FID, instead of training one briefly");
  app.add_flag("--no-fid", o.no_fid, "skip the classifier and the FID / classifier-score numbers");
  app.add_option("--fid-samples", o.fid_samples, "samples per FID estimate")->capture_default_str();
  app.add_option("--sections", only, "comma-separated sections to run (default: all; see --list)");
  app.add_flag("--list", list, "list the sections and exit");
  CLI11_PARSE(app, argc, argv);

  std::vector<demo::Section> sections = demo::registry();
  std::sort(sections.begin(), sections.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  if (list) {
    for (const auto& s : sections) std::printf("%-12s %s\n", s.key.c_str(), s.title.c_str());
    return 0;
  }
  if (!only.empty()) {
    std::set<std::string> keep;
    std::stringstream ss(only);
    for (std::string k; std::getline(ss, k, ',');) keep.insert(k);
    for (const auto& k : keep)
      GENAI_CHECK(std::any_of(sections.begin(), sections.end(), [&](const auto& s) { return s.key == k; }),
                  "genai_demo: unknown section '", k, "'; --list shows them");
    std::erase_if(sections, [&](const auto& s) { return !keep.count(s.key); });
  }
  if (threads > 0) set_num_threads(threads);
  fs::create_directories(o.out);
  manual_seed(o.seed);
  const double t0 = demo::now_seconds();
  const bool gnuplot_ok = have_gnuplot();
  if (!gnuplot_ok) std::fprintf(stderr, "note: gnuplot not found (apt-get install gnuplot-nox): loss plots are skipped\n");

  demo::Context ctx;
  ctx.opt = o;
  std::printf("genai demo: writing to %s/ (%d threads, budget %.0f s%s)\n", o.out.c_str(), get_num_threads(), o.budget,
              o.quick ? ", --quick" : "");
  ctx.data = load_data(o);
  std::printf("data: %s\n", ctx.data.description.c_str());
  ctx.save_png("real_images.png", io::make_grid(ctx.data.train_images.narrow(0, 0, 64), 8));

  double share_sum = 0;
  for (const auto& s : sections) share_sum += s.budget_share;
  std::vector<demo::SectionReport> reps;
  const double t_sections = t0;  // the budget counts from the start (data loading included)
  for (const auto& s : sections) {
    demo::SectionReport rep;
    rep.key = s.key;
    rep.title = s.title;
    // this section's share of what is left: time a section does not use goes to the next ones
    const double left = std::max(0.0, o.budget - demo::seconds_since(t_sections));
    ctx.section_seconds = left * s.budget_share / std::max(share_sum, 1e-9);
    share_sum -= s.budget_share;
    if (o.quick)
      std::printf("\n== %s (--quick) ==\n", s.title.c_str());
    else
      std::printf("\n== %s (budget %.0f s) ==\n", s.title.c_str(), ctx.section_seconds);
    const double ts = demo::now_seconds();
    try {
      s.run(ctx, rep);
    } catch (const std::exception& e) {  // one failing section does not lose the others
      std::fprintf(stderr, "section %s failed: %s\n", s.key.c_str(), e.what());
      rep.failed = true;
      rep.text(std::string("This section failed: ") + e.what());
    }
    rep.seconds = demo::seconds_since(ts);
    if (gnuplot_ok && !rep.curves.empty()) {
      const std::string png = plot_curves(ctx, rep);
      if (!png.empty()) rep.image(png, "Training curves (thin: per step; thick: moving average)");
    }
    std::printf("%s: done in %.1f s\n", s.key.c_str(), rep.seconds);
    reps.push_back(std::move(rep));
  }
  const double total = demo::seconds_since(t0);
  write_reports(ctx, reps, total, gnuplot_ok);
  std::printf("\nwrote %s/report.md and %s/index.html\n", o.out.c_str(), o.out.c_str());
  std::printf("total time: %.1f s (%s)\n", total, time_str(total).c_str());
  bool any_failed = false;
  for (const auto& r : reps) any_failed |= r.failed;
  return any_failed ? 1 : 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genai_demo: %s\n", e.what());
    return 1;
  }
}
