// genai/train/progress.hpp: a progress bar for training loops, after tqdm.
//
//   train::ProgressBar bar(n_steps, {.desc = "train"});
//   for (...) { ...; bar.set_postfix("loss=" + std::to_string(loss)); bar.update(); }
//   bar.close();
//
// prints  "train:  45%|#############                | 450/1000 [00:12<00:15, 36.20it/s, loss=0.12]"
// (or "450it [00:12, 36.20it/s]" when the total is unknown). On a terminal the
// line is redrawn in place (carriage return) at most every `min_interval`
// seconds; when the stream is not a terminal (a log file, CI), a full line is
// printed every `line_interval` seconds and at close(), so logs stay short.
// The rate is the average since the start (tqdm smooths it; we do not).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <utility>

#include "genai/config.hpp"

namespace genai {
namespace train {

struct ProgressOptions {
  std::string desc;                 // printed before the bar ("desc: ")
  std::ostream* stream = nullptr;   // nullptr: std::cerr
  int tty = -1;                     // 1: redraw in place; 0: occasional lines; -1: detect (isatty of stderr)
  double min_interval = 0.1;        // seconds between redraws on a terminal
  double line_interval = 10.0;      // seconds between lines when not a terminal
  int bar_width = 30;               // characters of the bar
  std::function<double()> clock = {};  // seconds on a monotonic clock; empty: std::chrono::steady_clock
};

class ProgressBar {
 public:
  /// A bar for `total` steps (total <= 0: unknown, no percentage or ETA).
  explicit ProgressBar(int64_t total, ProgressOptions options = {}) : total_(total), opt_(std::move(options)) {
    if (!opt_.stream) opt_.stream = &std::cerr;
    if (opt_.tty < 0) opt_.tty = (opt_.stream == &std::cerr && ::isatty(STDERR_FILENO)) ? 1 : 0;
    if (!opt_.clock)
      opt_.clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      };
    start_ = last_print_ = opt_.clock();
    if (opt_.tty) print(false);
  }
  ~ProgressBar() {
    try {
      close();
    } catch (...) {
    }
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Advances by n steps and redraws when due.
  void update(int64_t n = 1) {
    n_ += n;
    const double now = opt_.clock();
    const double interval = opt_.tty ? opt_.min_interval : opt_.line_interval;
    if (now - last_print_ >= interval || (opt_.tty && total_ > 0 && n_ >= total_)) {
      last_print_ = now;
      print(false);
    }
  }
  /// Text shown after the rate ("loss=0.12"); shown at the next redraw.
  void set_postfix(const std::string& s) { postfix_ = s; }
  /// Prints the final state and a newline (once; also done by the destructor).
  void close() {
    if (closed_) return;
    closed_ = true;
    print(true);
  }

  int64_t n() const { return n_; }
  int64_t total() const { return total_; }

  /// The current line, without carriage return or newline.
  std::string line() const {
    const double elapsed = std::max(0.0, opt_.clock() - start_);
    const double rate = elapsed > 0 ? static_cast<double>(n_) / elapsed : 0.0;
    std::string s = opt_.desc.empty() ? "" : opt_.desc + ": ";
    char buf[64];
    std::string rate_str;
    if (rate <= 0) {
      rate_str = "?it/s";
    } else if (rate >= 1.0) {
      std::snprintf(buf, sizeof buf, "%.2fit/s", rate);
      rate_str = buf;
    } else {
      std::snprintf(buf, sizeof buf, "%.2fs/it", 1.0 / rate);
      rate_str = buf;
    }
    if (total_ > 0) {
      const double frac = std::min(1.0, static_cast<double>(n_) / static_cast<double>(total_));
      std::snprintf(buf, sizeof buf, "%3d%%|", static_cast<int>(frac * 100.0));
      s += buf;
      const int w = std::max(1, opt_.bar_width), filled = static_cast<int>(frac * w);
      s += std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(w - filled), ' ');
      s += "| " + std::to_string(n_) + "/" + std::to_string(total_) + " [" + format_duration(elapsed) + "<";
      s += rate > 0 && n_ <= total_ ? format_duration(static_cast<double>(total_ - n_) / rate) : std::string("?");
      s += ", " + rate_str;
    } else {
      s += std::to_string(n_) + "it [" + format_duration(elapsed) + ", " + rate_str;
    }
    if (!postfix_.empty()) s += ", " + postfix_;
    return s + "]";
  }

  /// "MM:SS", or "H:MM:SS" from an hour on.
  static std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const int64_t t = static_cast<int64_t>(seconds + 0.5);
    char buf[48];
    if (t >= 3600)
      std::snprintf(buf, sizeof buf, "%lld:%02d:%02d", static_cast<long long>(t / 3600), static_cast<int>(t / 60 % 60),
                    static_cast<int>(t % 60));
    else
      std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(t / 60), static_cast<int>(t % 60));
    return buf;
  }

 private:
  void print(bool final_line) {
    std::ostream& os = *opt_.stream;
    const std::string l = line();
    if (opt_.tty) {
      // pad with spaces to erase a longer previous line
      os << '\r' << l;
      if (l.size() < last_len_) os << std::string(last_len_ - l.size(), ' ');
      last_len_ = l.size();
      if (final_line) os << '\n';
    } else {
      os << l << '\n';
    }
    os.flush();
  }

  int64_t total_, n_ = 0;
  ProgressOptions opt_;
  double start_ = 0, last_print_ = 0;
  std::string postfix_;
  size_t last_len_ = 0;
  bool closed_ = false;
};

}  // namespace train
}  // namespace genai
