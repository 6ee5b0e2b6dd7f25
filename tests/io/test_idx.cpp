// Tests of the IDX reader (MNIST format): small files built here, plain and
// gzip-compressed (with zlib), every element type, the `limit` option, and the
// errors for bad magic numbers, truncation, trailing bytes and corrupt gzip.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <zlib.h>

#include <cstring>

#include <genai/io/idx.hpp>

using namespace genai;
using genai_test::TempDir;

namespace {

/// IDX bytes: magic {0, 0, type, ndim}, big-endian sizes, then `data` (already big-endian).
std::vector<unsigned char> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                                     const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims) {
    out.push_back(static_cast<unsigned char>(d >> 24));
    out.push_back(static_cast<unsigned char>(d >> 16));
    out.push_back(static_cast<unsigned char>(d >> 8));
    out.push_back(static_cast<unsigned char>(d));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// Big-endian bytes of values of type T.
template <class T>
std::vector<unsigned char> be(const std::vector<T>& v) {
  std::vector<unsigned char> out;
  for (T x : v) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    for (size_t i = sizeof(T); i-- > 0;) out.push_back(b[i]);
  }
  return out;
}

/// Writes `bytes` gzip-compressed with zlib.
void write_gz(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

/// Writes both a plain and a gzip file of `bytes`; returns their paths.
std::vector<std::string> write_both(const TempDir& dir, const std::string& name, const std::vector<unsigned char>& bytes) {
  genai_test::write_bytes(dir.file(name), bytes);
  write_gz(dir.file(name + ".gz"), bytes);
  return {dir.file(name), dir.file(name + ".gz")};
}

}  // namespace

TEST_CASE("IDX files of every element type load, plain and gzipped") {
  TempDir dir;
  std::vector<unsigned char> u8{0, 1, 2, 127, 128, 200, 254, 255, 9, 8, 7, 6};
  for (const auto& path : write_both(dir, "u8.idx", idx_bytes(0x08, {3, 2, 2}, u8))) {
    INFO(path);
    Tensor t = io::load_idx(path);
    CHECK(t.dtype() == kInt64);
    CHECK(t.shape() == Shape{3, 2, 2});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>(u8.begin(), u8.end()));
    io::IdxArray raw = io::read_idx(path);
    CHECK(raw.type == 0x08);
    CHECK(raw.data == u8);
  }
  for (const auto& path : write_both(dir, "i8.idx", idx_bytes(0x09, {3}, {0x80, 0xFF, 0x05}))) {
    CHECK(io::load_idx(path).to_vector<int64_t>() == std::vector<int64_t>{-128, -1, 5});
  }
  for (const auto& path : write_both(dir, "i16.idx", idx_bytes(0x0B, {2}, be<int16_t>({-300, 32767})))) {
    CHECK(io::load_idx(path).to_vector<int64_t>() == std::vector<int64_t>{-300, 32767});
  }
  std::vector<int32_t> i32{-2147483647 - 1, 2147483647, 60000, -1, 0, 42};
  for (const auto& path : write_both(dir, "i32.idx", idx_bytes(0x0C, {2, 3}, be(i32)))) {
    Tensor t = io::load_idx(path);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>(i32.begin(), i32.end()));
  }
  std::vector<float> f32{1.5f, -0.25f, 3e38f, 1e-40f};
  for (const auto& path : write_both(dir, "f32.idx", idx_bytes(0x0D, {4}, be(f32)))) {
    Tensor t = io::load_idx(path);
    CHECK(t.dtype() == kFloat32);
    CHECK(t.to_vector() == f32);
  }
  std::vector<double> f64{0.1, -1e300, 5e-324};
  for (const auto& path : write_both(dir, "f64.idx", idx_bytes(0x0E, {1, 3}, be(f64)))) {
    Tensor t = io::load_idx(path);
    CHECK(t.dtype() == kFloat64);
    CHECK(t.shape() == Shape{1, 3});
    CHECK(t.to_vector<double>() == f64);
  }
  for (const auto& path : write_both(dir, "empty.idx", idx_bytes(0x08, {0, 28, 28}, {}))) {
    CHECK(io::load_idx(path).shape() == Shape{0, 28, 28});
  }
}

TEST_CASE("IDX limit reads only the first items") {
  TempDir dir;
  std::vector<unsigned char> data(5 * 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i);
  for (const auto& path : write_both(dir, "lim.idx", idx_bytes(0x08, {5, 2, 2}, data))) {
    Tensor t = io::load_idx(path, 2);
    CHECK(t.shape() == Shape{2, 2, 2});
    CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(io::load_idx(path, 0).shape() == Shape{0, 2, 2});
    CHECK(io::load_idx(path, 99).shape() == Shape{5, 2, 2});
  }
}

TEST_CASE("IDX errors: bad magic") {
  TempDir dir;
  auto bytes = idx_bytes(0x08, {2}, {1, 2});
  bytes[1] = 0x01;  // second magic byte must be 0
  for (const auto& path : write_both(dir, "m1.idx", bytes))
    CHECK_ERROR_CONTAINS(io::load_idx(path), path, "bad magic number 0 1 8 1");
  for (const auto& path : write_both(dir, "m2.idx", idx_bytes(0x07, {2}, {1, 2})))
    CHECK_ERROR_CONTAINS(io::load_idx(path), path, "bad magic number 0 0 7 1");
  for (const auto& path : write_both(dir, "m3.idx", idx_bytes(0x08, {}, {})))
    CHECK_ERROR_CONTAINS(io::load_idx(path), path, "0 dimensions");
  genai_test::write_text(dir.file("text.idx"), "hello world, not IDX");
  CHECK_ERROR_CONTAINS(io::load_idx(dir.file("text.idx")), "bad magic number 104 101 108 108");
}

TEST_CASE("IDX errors: truncated and oversized files") {
  TempDir dir;
  auto bytes = idx_bytes(0x0C, {2, 3}, be<int32_t>({1, 2, 3, 4, 5, 6}));
  SECTION("plain, cut in the data") {
    genai_test::write_bytes(dir.file("t.idx"), std::vector<unsigned char>(bytes.begin(), bytes.end() - 5));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("t.idx")), dir.file("t.idx"), "(2, 3)", "24 bytes of data",
                         "is 31 bytes long", "truncated");
  }
  SECTION("plain, cut in the header") {
    genai_test::write_bytes(dir.file("h.idx"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + 6));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("h.idx")), dir.file("h.idx"), "truncated", "dimension sizes");
    genai_test::write_bytes(dir.file("h2.idx"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + 2));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("h2.idx")), "truncated", "magic");
  }
  SECTION("plain, trailing bytes") {
    auto longer = bytes;
    longer.push_back(0);
    genai_test::write_bytes(dir.file("l.idx"), longer);
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("l.idx")), dir.file("l.idx"), "trailing bytes");
  }
  SECTION("gzip, data shorter than the header declares") {
    write_gz(dir.file("t.idx.gz"), std::vector<unsigned char>(bytes.begin(), bytes.end() - 5));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("t.idx.gz")), dir.file("t.idx.gz"), "truncated", "the data",
                         "5 more bytes expected");
  }
  SECTION("gzip, data longer than the header declares") {
    auto longer = bytes;
    longer.insert(longer.end(), 100, 0);
    write_gz(dir.file("l.idx.gz"), longer);
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("l.idx.gz")), dir.file("l.idx.gz"), "bytes after the data");
  }
  SECTION("gzip file itself cut") {
    // incompressible data so that the compressed stream is long enough to cut in the middle
    std::vector<unsigned char> data(4000);
    uint32_t s = 1;
    for (auto& b : data) b = static_cast<unsigned char>((s = s * 1664525u + 1013904223u) >> 24);
    write_gz(dir.file("full.gz"), idx_bytes(0x08, {4000}, data));
    auto gz = genai_test::read_bytes(dir.file("full.gz"));
    genai_test::write_bytes(dir.file("cut.gz"), std::vector<unsigned char>(gz.begin(), gz.begin() + gz.size() / 2));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("cut.gz")), dir.file("cut.gz"), "truncated", "unexpected end of file");
    // cut inside the 8-byte trailer: all data arrives, the stream is still incomplete
    genai_test::write_bytes(dir.file("trailer.gz"), std::vector<unsigned char>(gz.begin(), gz.end() - 3));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("trailer.gz")), dir.file("trailer.gz"), "truncated gzip stream");
  }
  SECTION("gzip with a corrupt checksum") {
    write_gz(dir.file("c.gz"), bytes);
    auto gz = genai_test::read_bytes(dir.file("c.gz"));
    gz[gz.size() - 8] ^= 0xFF;  // first byte of the CRC32 in the trailer
    genai_test::write_bytes(dir.file("c.gz"), gz);
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("c.gz")), dir.file("c.gz"), "corrupt gzip stream", "incorrect data check");
  }
  SECTION("sizes no file could hold are refused before allocating") {
    write_gz(dir.file("big.gz"), idx_bytes(0x0E, {60000, 60000, 60000}, {}));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("big.gz")), dir.file("big.gz"), "cannot hold");
    genai_test::write_bytes(dir.file("big.idx"), idx_bytes(0x0E, {60000, 60000, 60000}, {}));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("big.idx")), dir.file("big.idx"), "truncated");
    genai_test::write_bytes(dir.file("ovf.idx"), idx_bytes(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("ovf.idx")), dir.file("ovf.idx"), "overflows");
  }
  SECTION("missing file") {
    CHECK_ERROR_CONTAINS(io::load_idx(dir.file("none.idx")), "read_idx", dir.file("none.idx"), "No such file");
  }
}
