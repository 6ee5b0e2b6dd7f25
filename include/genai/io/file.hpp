// genai/io/file.hpp: the file primitives of genai's readers and writers (POSIX):
// reading a whole file or a byte range with errno-named errors, a shared
// read-only-on-disk memory map, and an atomic, durable file write.
//
// write_file_atomic follows the classic recipe (as in LevelDB's and SQLite's
// rename-based commits): write "<path>.tmp.<pid>", fsync it, rename it over the
// target (atomic on POSIX file systems), then fsync the directory so that the
// rename itself survives a power loss. A crash at any point leaves either the old
// file or the new one, never a half-written one; on an error the temporary file is
// removed. Two threads of one process must not write the same path at once (they
// would share the temporary name). The new file gets mode 0644 (less the umask),
// and a symbolic link at the path is replaced by the file, not followed.
//
// MappedFile maps a file MAP_PRIVATE with read and write access: pages are shared
// with the page cache until written, and a write (an in-place op on a tensor that
// aliases the map) copies the page, so the file on disk never changes. As with any
// memory map, another process truncating the file while it is mapped makes later
// reads fault (SIGBUS); genai's own writers replace files by rename, which is safe.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "genai/config.hpp"

namespace genai {
namespace io {

namespace detail {

/// The message of an errno value ("No such file or directory").
inline std::string errno_str(int e) { return std::generic_category().message(e); }

/// An open file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes and reports close()'s errno (0 when fine); a failed close can lose written data.
  int close_checked() {
    int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

/// Opens `path` read-only; throws "<who>: cannot open '<path>': <reason>".
inline Fd open_read(const std::string& path, const char* who) {
  int fd;
  do fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int e = errno;
    GENAI_FAIL(who, ": cannot open '", path, "': ", errno_str(e));
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    GENAI_FAIL(who, ": cannot open '", path, "': it is a directory");
  }
  return Fd(fd);
}

/// Size in bytes of an open file.
inline uint64_t file_size(const Fd& fd, const std::string& path, const char* who) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    int e = errno;
    GENAI_FAIL(who, ": cannot stat '", path, "': ", errno_str(e));
  }
  return static_cast<uint64_t>(st.st_size);
}

/// Reads exactly `n` bytes at `offset`; throws when the file ends first or a read fails.
inline void pread_exact(const Fd& fd, void* dst, size_t n, uint64_t offset, const std::string& path, const char* who) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    size_t chunk = n < (size_t(1) << 30) ? n : (size_t(1) << 30);
    ssize_t r = ::pread(fd.get(), p, chunk, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      GENAI_FAIL(who, ": cannot read '", path, "': ", errno_str(e));
    }
    if (r == 0) GENAI_FAIL(who, ": '", path, "' ended early (truncated while being read?) at byte ", offset);
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

/// Writes all `n` bytes; returns 0 or the errno of the failed write.
inline int write_all(int fd, const void* src, size_t n) {
  const char* p = static_cast<const char*>(src);
  while (n > 0) {
    size_t chunk = n < (size_t(1) << 30) ? n : (size_t(1) << 30);
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

/// Test hook of write_file_atomic: when set, it is called once the first half of
/// the temporary file is written (with the temporary's path). Tests throw from it
/// to simulate a crash in the middle of a save. Not for use outside tests.
inline std::function<void(const std::string& tmp_path)>& atomic_write_hook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}

/// The directory holding `path` ("." for a bare file name).
inline std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

/// True when the sizes of a shape read from a file, zeros counted as ones, multiply
/// past int64: the row-major strides of such a shape overflow even when it holds no
/// element (a size 0 elsewhere), so the readers refuse it (found by fuzzing).
inline bool shape_span_overflows(const std::vector<int64_t>& shape) {
  int64_t acc = 1;
  for (int64_t d : shape) {
    const int64_t e = d > 1 ? d : 1;
    if (acc > INT64_MAX / e) return true;
    acc *= e;
  }
  return false;
}

}  // namespace detail

/// A byte range to write: `size` bytes at `data`.
struct ConstBytes {
  const void* data;
  size_t size;
};

/// Writes the concatenation of `chunks` to `path` atomically and durably (see
/// the header comment): readers see the old file or the complete new one.
inline void write_file_atomic(const std::string& path, const std::vector<ConstBytes>& chunks) {
  GENAI_CHECK(!path.empty(), "write_file_atomic: empty path");
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  size_t total = 0;
  for (const auto& c : chunks) total += c.size;
  detail::Fd fd;
  {
    int f;
    do f = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    while (f < 0 && errno == EINTR);
    if (f < 0) {
      int e = errno;
      GENAI_FAIL("cannot write '", path, "': cannot create the temporary file '", tmp, "': ", detail::errno_str(e),
                 "; hint: check that the directory exists and is writable");
    }
    fd = detail::Fd(f);
  }
  try {
    size_t written = 0, half = total / 2;
    bool hooked = false;
    auto call_hook = [&] {
      if (!hooked && written >= half) {
        hooked = true;
        if (detail::atomic_write_hook()) detail::atomic_write_hook()(tmp);
      }
    };
    for (const auto& c : chunks) {
      const char* p = static_cast<const char*>(c.data);
      size_t left = c.size;
      while (left > 0) {
        // split the chunk at the half-way mark so that the hook sees exactly half the file
        size_t n = (!hooked && written < half && written + left > half) ? half - written : left;
        if (int e = detail::write_all(fd.get(), p, n))
          GENAI_FAIL("cannot write '", path, "': writing '", tmp, "' failed: ", detail::errno_str(e));
        p += n;
        left -= n;
        written += n;
        call_hook();
      }
    }
    call_hook();
    if (::fsync(fd.get()) != 0) {
      int e = errno;
      GENAI_FAIL("cannot write '", path, "': fsync of '", tmp, "' failed: ", detail::errno_str(e));
    }
    if (int e = fd.close_checked())
      GENAI_FAIL("cannot write '", path, "': closing '", tmp, "' failed: ", detail::errno_str(e));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = errno;
      GENAI_FAIL("cannot write '", path, "': renaming '", tmp, "' over it failed: ", detail::errno_str(e));
    }
  } catch (...) {
    fd.reset();
    ::unlink(tmp.c_str());
    throw;
  }
  // make the rename durable; file systems that cannot sync a directory say EINVAL
  int dfd = ::open(detail::parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int rc = ::fsync(dfd), e = errno;
    ::close(dfd);
    GENAI_CHECK(rc == 0 || e == EINVAL || e == EROFS, "wrote '", path, "' but fsync of its directory failed: ",
                detail::errno_str(e));
  }
}

/// Writes `size` bytes atomically (see the other overload).
inline void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_file_atomic(path, std::vector<ConstBytes>{{data, size}});
}

/// Writes `size` bytes to `path` (created or truncated), plainly: no temporary
/// file and no fsync (for outputs such as sample images; checkpoints use
/// write_file_atomic). `who` names the caller in errors.
inline void write_file(const std::string& path, const void* data, size_t size, const char* who = "write_file") {
  int f;
  do f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  while (f < 0 && errno == EINTR);
  if (f < 0) {
    int e = errno;
    GENAI_FAIL(who, ": cannot open '", path, "' for writing: ", detail::errno_str(e));
  }
  detail::Fd fd(f);
  if (int e = detail::write_all(fd.get(), data, size))
    GENAI_FAIL(who, ": writing '", path, "' failed: ", detail::errno_str(e));
  if (int e = fd.close_checked()) GENAI_FAIL(who, ": closing '", path, "' failed: ", detail::errno_str(e));
}

/// The whole content of a file. `who` names the caller in errors.
inline std::vector<unsigned char> read_file(const std::string& path, const char* who = "read_file") {
  detail::Fd fd = detail::open_read(path, who);
  uint64_t size = detail::file_size(fd, path, who);
  GENAI_CHECK(size <= static_cast<uint64_t>(SIZE_MAX / 2), who, ": '", path, "' is too large (", size, " bytes)");
  std::vector<unsigned char> buf(static_cast<size_t>(size));
  if (size) detail::pread_exact(fd, buf.data(), buf.size(), 0, path, who);
  return buf;
}

/// A whole file mapped into memory (private, copy-on-write); see the header comment.
class MappedFile {
 public:
  /// Maps `path`; `who` names the caller in errors. An empty file maps to no memory.
  static std::shared_ptr<MappedFile> open(const std::string& path, const char* who = "MappedFile") {
    detail::Fd fd = detail::open_read(path, who);
    uint64_t size = detail::file_size(fd, path, who);
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->size_ = static_cast<size_t>(size);
    if (size == 0) return m;
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) {
      int e = errno;
      GENAI_FAIL(who, ": cannot memory-map '", path, "' (", size, " bytes): ", detail::errno_str(e));
    }
    m->data_ = static_cast<unsigned char*>(p);
    return m;  // the mapping outlives the descriptor
  }
  ~MappedFile() {
    if (data_) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace io
}  // namespace genai
