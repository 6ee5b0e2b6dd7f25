// genai/train/metrics.hpp: a metrics logger writing one record per call, as JSON
// lines (one JSON object per line, keys in the order given) or CSV (RFC 4180;
// the columns are the keys of the first record), flushed after every record so
// that a crash loses nothing and `tail -f` shows progress.
//
//   train::MetricsLogger log("runs/gan/metrics.jsonl");   // ".csv" -> CSV
//   log.log({{"step", step}, {"loss_d", ld}, {"loss_g", lg}, {"phase", "train"}});
//
// Values are integers, floating-point numbers (written in the shortest form that
// reads back exactly) or strings. In JSON, NaN and infinities are written as null
// (JSON has no such numbers); in CSV as nan / inf / -inf. In CSV, a later record
// may omit columns (empty cells) but not add new ones. With `append`, an existing
// file is continued (for resumed runs); a CSV file's columns are read from its
// header line.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/config.hpp"

namespace genai {
namespace train {

/// One value of a record: an integer, a float or a string.
class MetricValue {
 public:
  enum class Kind { Int, Real, Str };
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  MetricValue(T v) : kind_(Kind::Int), i_(static_cast<int64_t>(v)) {}  // NOLINT: implicit on purpose
  template <class T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  MetricValue(T v) : kind_(Kind::Real), d_(static_cast<double>(v)) {}  // NOLINT
  MetricValue(const char* s) : kind_(Kind::Str), s_(s) {}              // NOLINT
  MetricValue(std::string s) : kind_(Kind::Str), s_(std::move(s)) {}   // NOLINT

  Kind kind() const { return kind_; }
  int64_t as_int() const { return i_; }
  double as_real() const { return d_; }
  const std::string& as_str() const { return s_; }

  /// The value as text (no quoting): shortest round-trip form for floats.
  std::string text() const {
    switch (kind_) {
      case Kind::Int: return std::to_string(i_);
      case Kind::Real: {
        if (std::isnan(d_)) return "nan";
        if (std::isinf(d_)) return d_ > 0 ? "inf" : "-inf";
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, d_);
        return std::string(buf, r.ptr);
      }
      case Kind::Str: return s_;
    }
    return "";
  }

 private:
  Kind kind_;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
};

using MetricRecord = std::vector<std::pair<std::string, MetricValue>>;

enum class MetricsFormat { Auto, JsonLines, Csv };  // Auto: CSV for a ".csv" path, JSON lines otherwise

class MetricsLogger {
 public:
  explicit MetricsLogger(const std::string& path, MetricsFormat format = MetricsFormat::Auto, bool append = false)
      : path_(path), format_(format) {
    if (format_ == MetricsFormat::Auto)
      format_ = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0 ? MetricsFormat::Csv
                                                                                  : MetricsFormat::JsonLines;
    if (append && format_ == MetricsFormat::Csv) {
      std::ifstream in(path);
      std::string header;
      if (in && std::getline(in, header) && !header.empty()) columns_ = parse_csv_line(header);
    }
    out_.open(path, append ? std::ios::app : std::ios::trunc);
    GENAI_CHECK(out_.good(), "MetricsLogger: cannot open '", path, "' for writing");
    header_written_ = !columns_.empty();
  }

  /// Writes one record and flushes.
  void log(const MetricRecord& record) {
    GENAI_CHECK(!record.empty(), "MetricsLogger::log: empty record");
    if (format_ == MetricsFormat::JsonLines) {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      for (const auto& [k, v] : record) {
        GENAI_CHECK(!j.contains(k), "MetricsLogger::log: key '", k, "' given twice");
        switch (v.kind()) {
          case MetricValue::Kind::Int: j[k] = v.as_int(); break;
          case MetricValue::Kind::Real:
            if (std::isfinite(v.as_real())) j[k] = v.as_real();
            else j[k] = nullptr;
            break;
          case MetricValue::Kind::Str: j[k] = v.as_str(); break;
        }
      }
      out_ << j.dump() << '\n';
    } else {
      if (columns_.empty()) {
        for (const auto& kv : record) {
          for (const auto& c : columns_)
            GENAI_CHECK(c != kv.first, "MetricsLogger::log: key '", kv.first, "' given twice");
          columns_.push_back(kv.first);
        }
      }
      std::vector<std::string> cells(columns_.size());
      std::vector<bool> seen(columns_.size(), false);
      for (const auto& [k, v] : record) {
        size_t c = 0;
        while (c < columns_.size() && columns_[c] != k) ++c;
        GENAI_CHECK(c < columns_.size(), "MetricsLogger::log: '", path_, "': key '", k,
                    "' is not a column of this CSV file (the first record fixes the columns: ", join(columns_),
                    "); hint: give every key in the first record, or use JSON lines");
        GENAI_CHECK(!seen[c], "MetricsLogger::log: key '", k, "' given twice");
        seen[c] = true;
        cells[c] = csv_quote(v.text());
      }
      if (!header_written_) {
        std::vector<std::string> head;
        for (const auto& c : columns_) head.push_back(csv_quote(c));
        out_ << join(head) << '\n';
        header_written_ = true;
      }
      out_ << join(cells) << '\n';
    }
    out_.flush();
    GENAI_CHECK(out_.good(), "MetricsLogger: writing to '", path_, "' failed");
  }

  const std::string& path() const { return path_; }
  MetricsFormat format() const { return format_; }

 private:
  static std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  static std::vector<std::string> parse_csv_line(const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
        else if (c == '"') quoted = false;
        else out.back() += c;
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        out.emplace_back();
      } else if (c != '\r') {
        out.back() += c;
      }
    }
    return out;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    return s;
  }

  std::string path_;
  MetricsFormat format_;
  std::ofstream out_;
  std::vector<std::string> columns_;
  bool header_written_ = false;
};

}  // namespace train
}  // namespace genai
