// genai/io/idx.hpp: the IDX format of MNIST and Fashion-MNIST
// (http://yann.lecun.com/exdb/mnist/), plain or gzip-compressed.
//
// Layout: a 4-byte magic {0, 0, type, ndim}, ndim big-endian uint32 sizes, then
// the row-major big-endian data. Types: 0x08 uint8, 0x09 int8, 0x0B int16,
// 0x0C int32, 0x0D float32, 0x0E float64. A file starting with the gzip magic
// (1f 8b) is decompressed with zlib while being read.
//
// Checks, each a genai::Error naming the file: the magic, the type, the sizes
// (their product must not overflow), the data length against the file (plain
// files: exactly the file size; gzip: the decompressed stream must hold the data
// and end right after it, with a valid CRC), and zlib's errors by name. Nothing
// is allocated before the sizes are checked against the file: for gzip, whose
// decompressed size is unknown up front, against deflate's maximal ratio (1032:1).
//
// read_idx returns the raw bytes (native byte order) so that large uint8 arrays
// (60000 images) stay one byte per value; load_idx converts to a tensor: integer
// types to int64, float32 to float32, float64 to float64.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/tensor.hpp"
#include "genai/io/file.hpp"

namespace genai {
namespace io {

/// The contents of an IDX file.
struct IdxArray {
  uint8_t type = 0x08;              // 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
  Shape shape;                      // as stored (dim 0 possibly cut by read_idx's `limit`)
  std::vector<unsigned char> data;  // row-major, native byte order

  size_t element_size() const { return type == 0x0B ? 2 : type == 0x0C || type == 0x0D ? 4 : type == 0x0E ? 8 : 1; }
  int64_t numel() const { return shape_numel(shape); }
};

namespace detail {

inline bool idx_type_ok(uint8_t t) { return t == 0x08 || t == 0x09 || t == 0x0B || t == 0x0C || t == 0x0D || t == 0x0E; }

/// A byte source over a plain file or a gzip stream, with errors that name the file.
class IdxSource {
 public:
  explicit IdxSource(const std::string& path) : path_(path) {
    fd_ = open_read(path, "read_idx");
    size_ = detail::file_size(fd_, path, "read_idx");
    unsigned char magic[2] = {0, 0};
    if (size_ >= 2) pread_exact(fd_, magic, 2, 0, path, "read_idx");
    gzip_ = magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzip_) {
      int dup = ::dup(fd_.get());
      GENAI_CHECK(dup >= 0, "read_idx: cannot duplicate the descriptor of '", path, "'");
      gz_ = gzdopen(dup, "rb");  // owns `dup`
      if (!gz_) {
        ::close(dup);
        GENAI_FAIL("read_idx: zlib cannot open '", path, "' as a gzip stream");
      }
      gzbuffer(gz_, 1 << 17);
    }
  }
  ~IdxSource() {
    if (gz_) gzclose(gz_);
  }
  IdxSource(const IdxSource&) = delete;
  IdxSource& operator=(const IdxSource&) = delete;

  bool gzip() const { return gzip_; }
  uint64_t file_size() const { return size_; }
  uint64_t position() const { return pos_; }

  /// Reads up to n bytes; returns how many were read (less only at the end).
  size_t read_some(void* dst, size_t n) {
    size_t got = 0;
    char* p = static_cast<char*>(dst);
    while (got < n) {
      size_t want = std::min<size_t>(n - got, size_t(1) << 30);
      if (gzip_) {
        int r = gzread(gz_, p + got, static_cast<unsigned>(want));
        if (r < 0) {
          int err = 0;
          const char* msg = gzerror(gz_, &err);
          GENAI_FAIL("read_idx: '", path_, "' is a corrupt gzip stream: ", msg ? msg : "unknown zlib error",
                     " (zlib error ", err, ")");
        }
        if (r == 0) {
          int err = 0;
          const char* msg = gzerror(gz_, &err);
          if (err != Z_OK && err != Z_BUF_ERROR)
            GENAI_FAIL("read_idx: '", path_, "' is a corrupt gzip stream: ", msg, " (zlib error ", err, ")");
          if (err == Z_BUF_ERROR) gz_note_ = std::string(" (zlib: ") + (msg ? msg : "unexpected end of file") + ")";
          break;
        }
        got += static_cast<size_t>(r);
      } else {
        if (pos_ + got >= size_) break;
        size_t avail = static_cast<size_t>(std::min<uint64_t>(want, size_ - pos_ - got));
        pread_exact(fd_, p + got, avail, pos_ + got, path_, "read_idx");
        got += avail;
      }
    }
    pos_ += got;
    return got;
  }

  /// Reads exactly n bytes; `what` says what they are, for the truncation error.
  void read_exact(void* dst, size_t n, const char* what) {
    size_t got = read_some(dst, n);
    if (got != n)
      GENAI_FAIL("read_idx: '", path_, "' is truncated: it ends after ", pos_, (gzip_ ? " decompressed" : ""),
                 " bytes, in the middle of ", what, " (", n - got, " more bytes expected)", gz_note_);
  }

  /// Throws unless the stream ends here (for gzip this also verifies the CRC).
  void expect_end() {
    unsigned char b[64];
    size_t extra = read_some(b, sizeof b);
    if (extra == 0) {
      // a gzip stream cut inside its 8-byte trailer still yields all the data
      GENAI_CHECK(gz_note_.empty(), "read_idx: '", path_, "' is a truncated gzip stream", gz_note_);
      return;
    }
    uint64_t total_extra = extra;
    if (!gzip_) total_extra = size_ - (pos_ - extra);
    GENAI_FAIL("read_idx: '", path_, "' has ", (gzip_ ? "at least " : ""), total_extra,
               " bytes after the data its header declares; the sizes in the header are wrong or the file is "
               "not IDX");
  }

 private:
  std::string path_;
  Fd fd_;
  uint64_t size_ = 0, pos_ = 0;
  bool gzip_ = false;
  gzFile gz_ = nullptr;
  std::string gz_note_;  // zlib's message after an unexpected end of the gzip stream
};

}  // namespace detail

/// Reads an IDX file (plain or gzip). With `limit` >= 0, only the first `limit`
/// items along dimension 0 are read (and the rest of the file is not checked).
inline IdxArray read_idx(const std::string& path, int64_t limit = -1) {
  detail::IdxSource src(path);
  unsigned char magic[4];
  src.read_exact(magic, 4, "the 4-byte magic number");
  IdxArray a;
  a.type = magic[2];
  const int ndim = magic[3];
  if (magic[0] != 0 || magic[1] != 0 || !detail::idx_type_ok(a.type))
    GENAI_FAIL("read_idx: '", path, "' has a bad magic number ", static_cast<int>(magic[0]), " ",
               static_cast<int>(magic[1]), " ", static_cast<int>(magic[2]), " ", static_cast<int>(magic[3]),
               "; an IDX file starts with 0 0 <type: 8, 9, 11, 12, 13 or 14> <number of dimensions>");
  GENAI_CHECK(ndim >= 1, "read_idx: '", path, "' declares 0 dimensions");
  std::vector<unsigned char> dims(static_cast<size_t>(ndim) * 4);
  src.read_exact(dims.data(), dims.size(), "the dimension sizes");
  for (int i = 0; i < ndim; ++i) {
    const unsigned char* d = &dims[static_cast<size_t>(i) * 4];
    uint32_t s = uint32_t(d[0]) << 24 | uint32_t(d[1]) << 16 | uint32_t(d[2]) << 8 | uint32_t(d[3]);
    a.shape.push_back(static_cast<int64_t>(s));
  }
  int64_t full_numel;
  try {
    full_numel = shape_numel(a.shape);
  } catch (const Error&) {
    GENAI_FAIL("read_idx: '", path, "' declares sizes ", shape_str(a.shape), " whose product overflows");
  }
  if (detail::shape_span_overflows(a.shape))
    GENAI_FAIL("read_idx: '", path, "' declares sizes ", shape_str(a.shape),
               " whose non-zero sizes multiply past int64 (no tensor can have them)");
  const uint64_t esize = a.element_size();
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndim);
  if (static_cast<uint64_t>(full_numel) > (UINT64_MAX - header) / esize)
    GENAI_FAIL("read_idx: '", path, "' declares sizes ", shape_str(a.shape), " too large for any file");
  const uint64_t full_bytes = static_cast<uint64_t>(full_numel) * esize;
  if (!src.gzip() && header + full_bytes != src.file_size())
    GENAI_FAIL("read_idx: '", path, "' has sizes ", shape_str(a.shape), " (", full_bytes,
               " bytes of data after a ", header, "-byte header) but is ", src.file_size(), " bytes long",
               header + full_bytes > src.file_size() ? ": the file is truncated" : ": it has trailing bytes");
  Shape shape = a.shape;
  if (limit >= 0 && limit < shape[0]) shape[0] = limit;
  const uint64_t want = static_cast<uint64_t>(shape_numel(shape)) * esize;
  if (src.gzip() && want > src.file_size() * 1032 + 1024)
    GENAI_FAIL("read_idx: '", path, "' declares sizes ", shape_str(a.shape), " (", want,
               " bytes) that a gzip file of ", src.file_size(), " bytes cannot hold: corrupt header");
  a.data.resize(static_cast<size_t>(want));
  src.read_exact(a.data.data(), a.data.size(), "the data");
  if (shape == a.shape) src.expect_end();
  a.shape = shape;
  // big-endian -> native
  if (esize > 1)
    for (size_t i = 0; i < a.data.size(); i += esize) std::reverse(a.data.begin() + i, a.data.begin() + i + esize);
  return a;
}

/// An IDX array as a tensor: integer types as int64, float32 as float32, float64 as float64.
inline Tensor idx_to_tensor(const IdxArray& a) {
  const int64_t n = a.numel();
  GENAI_CHECK(a.data.size() == static_cast<size_t>(n) * a.element_size(), "idx_to_tensor: ", a.data.size(),
              " bytes do not match shape ", shape_str(a.shape));
  const unsigned char* p = a.data.data();
  if (a.type == 0x0D || a.type == 0x0E) {
    Tensor t = empty(a.shape, a.type == 0x0D ? kFloat32 : kFloat64);
    if (n) std::memcpy(t.raw_data(), p, a.data.size());
    return t;
  }
  Tensor t = empty(a.shape, kInt64);
  int64_t* q = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    switch (a.type) {
      case 0x08: q[i] = p[i]; break;
      case 0x09: q[i] = static_cast<int8_t>(p[i]); break;
      case 0x0B: {
        int16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        q[i] = v;
        break;
      }
      default: {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        q[i] = v;
      }
    }
  }
  return t;
}

/// Reads an IDX file (plain or gzip) as a tensor; see read_idx and idx_to_tensor.
inline Tensor load_idx(const std::string& path, int64_t limit = -1) { return idx_to_tensor(read_idx(path, limit)); }

}  // namespace io
}  // namespace genai
