// tests/fuzz/fuzz_common.hpp: helpers shared by the libFuzzer targets.
//
// Every target feeds the fuzzer's bytes to one of genai's readers of outside data
// and accepts exactly one outcome besides success: a genai::Error. Any other
// exception escapes and libFuzzer reports it ("uncaught exception"), as it reports
// crashes, sanitizer findings, hangs (-timeout) and large allocations
// (-malloc_limit_mb / -rss_limit_mb): each of those is a bug.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <genai/config.hpp>

namespace genai_fuzz {

/// A file holding the fuzzer's bytes, for readers that only take a path: an
/// anonymous memory file (memfd) reached through /proc/self/fd, so nothing touches
/// the disk. Reused (truncated and rewritten) across inputs.
class MemFile {
 public:
  MemFile() {
    fd_ = ::memfd_create("genai_fuzz", 0);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  /// Replaces the content with `size` bytes at `data`; returns the path.
  const std::string& write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      ssize_t w = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (w <= 0) std::abort();
      done += static_cast<size_t>(w);
    }
    return path_;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

/// Splits the input at NUL bytes into at most `n` parts (the last keeps the rest);
/// missing parts are empty. Used by targets that read several files at once.
inline std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t n) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    size_t z = s.find('\0');
    if (z == std::string_view::npos) break;
    parts.push_back(s.substr(0, z));
    s.remove_prefix(z + 1);
  }
  parts.push_back(s);
  parts.resize(n);
  return parts;
}

/// Fails the run (libFuzzer reports a crash with this input) when an invariant is broken.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace genai_fuzz
