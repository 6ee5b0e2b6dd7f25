// Tests of the progress bar (with a fake clock, on a string stream) and of the
// metrics logger (JSON lines and CSV, flushed per record).
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <genai/train/metrics.hpp>
#include <genai/train/progress.hpp>

using namespace genai;
using genai_test::TempDir;

namespace {
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);) out.push_back(l);
  return out;
}
std::string read_text(const std::string& path) {
  auto b = genai_test::read_bytes(path);
  return std::string(b.begin(), b.end());
}
}  // namespace

TEST_CASE("progress bar prints occasional lines with rate and ETA when not a terminal") {
  std::ostringstream os;
  double now = 100.0;
  {
    train::ProgressBar bar(10, {.desc = "train", .stream = &os, .tty = 0, .line_interval = 5.0,
                                .clock = [&] { return now; }});
    CHECK(os.str().empty());  // nothing before the first interval
    for (int i = 0; i < 10; ++i) {
      now += 1.0;  // one step per second
      if (i == 4) bar.set_postfix("loss=0.5");
      bar.update();
    }
    bar.close();
    bar.close();  // idempotent
  }
  std::vector<std::string> lines = lines_of(os.str());
  REQUIRE(lines.size() == 3);  // at 5 s, at 10 s, and at close
  CHECK(lines[0] == "train:  50%|###############               | 5/10 [00:05<00:05, 1.00it/s, loss=0.5]");
  CHECK(lines[1] == "train: 100%|##############################| 10/10 [00:10<00:00, 1.00it/s, loss=0.5]");
  CHECK(lines[2] == lines[1]);
  CHECK(os.str().find('\r') == std::string::npos);
}

TEST_CASE("progress bar redraws in place on a terminal and handles unknown totals and slow steps") {
  std::ostringstream os;
  double now = 0.0;
  {
    train::ProgressBar bar(0, {.desc = "", .stream = &os, .tty = 1, .min_interval = 0.0, .clock = [&] { return now; }});
    now = 4.0;
    bar.update(2);  // 0.5 it/s
  }  // the destructor closes
  std::string s = os.str();
  CHECK(s.find("\r0it [00:00, ?it/s]") != std::string::npos);
  CHECK(s.find("\r2it [00:04, 2.00s/it]") != std::string::npos);
  CHECK(s.back() == '\n');
  CHECK(train::ProgressBar::format_duration(59.6) == "01:00");
  CHECK(train::ProgressBar::format_duration(3725) == "1:02:05");
  CHECK(train::ProgressBar::format_duration(NAN) == "?");
}

TEST_CASE("metrics logger writes flushed JSON lines") {
  TempDir dir;
  const std::string path = dir.file("m.jsonl");
  train::MetricsLogger log(path);
  CHECK(log.format() == train::MetricsFormat::JsonLines);
  log.log({{"step", 1}, {"loss", 0.5}, {"phase", "train"}});
  // flushed: readable while the logger is open
  CHECK(read_text(path) == "{\"step\":1,\"loss\":0.5,\"phase\":\"train\"}\n");
  log.log({{"step", size_t(2)}, {"loss", NAN}, {"lr", 1e-4f}, {"ok", true}});
  std::vector<std::string> lines = lines_of(read_text(path));
  REQUIRE(lines.size() == 2);
  auto j = nlohmann::json::parse(lines[1]);
  CHECK(j["step"] == 2);
  CHECK(j["loss"].is_null());  // JSON has no NaN
  CHECK(j["lr"].get<double>() == static_cast<double>(1e-4f));
  CHECK(j["ok"] == 1);
  CHECK_ERROR_CONTAINS(log.log({{"a", 1}, {"a", 2}}), "key 'a' given twice");
}

TEST_CASE("metrics logger writes CSV with fixed columns, quoting, and appends") {
  TempDir dir;
  const std::string path = dir.file("m.csv");
  {
    train::MetricsLogger log(path);
    CHECK(log.format() == train::MetricsFormat::Csv);
    log.log({{"step", 1}, {"loss", 0.25}, {"note", "a,b \"c\""}});
    log.log({{"step", 2}, {"loss", -INFINITY}});  // a missing column is an empty cell
    CHECK(read_text(path) == "step,loss,note\n1,0.25,\"a,b \"\"c\"\"\"\n2,-inf,\n");
    CHECK_ERROR_CONTAINS(log.log({{"step", 3}, {"acc", 0.9}}), path, "key 'acc' is not a column", "step,loss,note");
  }
  {
    train::MetricsLogger log(path, train::MetricsFormat::Auto, /*append=*/true);
    log.log({{"note", "resumed"}, {"step", 3}});  // columns come from the existing header
  }
  CHECK(read_text(path) == "step,loss,note\n1,0.25,\"a,b \"\"c\"\"\"\n2,-inf,\n3,,resumed\n");
  CHECK_ERROR_CONTAINS(train::MetricsLogger(dir.file("no/dir/m.csv")), "cannot open", "no/dir/m.csv");
}
