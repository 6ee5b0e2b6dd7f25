// Helpers for the I/O and data tests: a temporary directory, raw file bytes, and
// checking that a call throws genai::Error whose message contains given parts.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <genai/config.hpp>

namespace genai_test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its content at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/genai_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    REQUIRE(::mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  REQUIRE(f.good());
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

inline std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_text(const std::string& path, const std::string& text) {
  write_bytes(path, std::vector<unsigned char>(text.begin(), text.end()));
}

/// The genai::Error message of f(), or "" (and a failed check) when it does not throw one.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const genai::Error& e) {
    return e.message();
  } catch (const std::exception& e) {
    FAIL_CHECK("threw a non-genai exception: " << e.what());
    return "";
  }
  FAIL_CHECK("expected a genai::Error, nothing was thrown");
  return "";
}

}  // namespace genai_test

/// CHECKs that `expr` throws genai::Error whose message contains every string given.
#define CHECK_ERROR_CONTAINS(expr, ...)                                                         \
  do {                                                                                          \
    std::string msg_ = genai_test::error_of([&] { (void)(expr); });                             \
    INFO("error message: " << msg_);                                                            \
    for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__})            \
      CHECK_THAT(msg_, Catch::Matchers::Contains(part_));                                       \
  } while (0)
