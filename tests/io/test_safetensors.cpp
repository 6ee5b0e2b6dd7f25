// Tests of safetensors reading and writing: round trips, a file written by Python
// (tests/fixtures/io_torch.safetensors, made by make_io_fixtures.py), memory-mapped
// loading, and one test per structural defect (bad bytes built here), each
// checking that the error names the file and the defect, on both read paths.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>

using namespace genai;
using genai_test::TempDir;

namespace {

/// Exact equality of values, NaN == NaN and -0 != +0.
bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (x[i] != y[i] || std::signbit(x[i]) != std::signbit(y[i])) return false;
  }
  return true;
}

/// A safetensors file from a header text and a data section (the 8-byte prefix is
/// the header's length unless `declared_len` is given).
std::vector<unsigned char> st_file(const std::string& header, const std::vector<unsigned char>& body,
                                   int64_t declared_len = -1) {
  uint64_t n = declared_len >= 0 ? static_cast<uint64_t>(declared_len) : header.size();
  std::vector<unsigned char> out(8 + header.size() + body.size());
  std::memcpy(out.data(), &n, 8);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!body.empty()) std::memcpy(out.data() + 8 + header.size(), body.data(), body.size());
  return out;
}

const io::SafetensorsLoadOptions kCopy{SIZE_MAX};  // read into memory
const io::SafetensorsLoadOptions kMmap{0};         // memory-map

/// Loads `bytes` from a file through both read paths; both must fail with the same message parts.
#define CHECK_DEFECT(bytes, ...)                                                                 \
  do {                                                                                           \
    TempDir dir_;                                                                                \
    const std::string path_ = dir_.file("bad.safetensors");                                      \
    genai_test::write_bytes(path_, bytes);                                                       \
    for (const auto* opt_ : {&kCopy, &kMmap}) {                                                  \
      INFO((opt_ == &kCopy ? "copy path" : "mmap path"));                                        \
      CHECK_ERROR_CONTAINS(io::load_safetensors(path_, nullptr, *opt_), path_, __VA_ARGS__);     \
    }                                                                                            \
  } while (0)

std::vector<unsigned char> zeros_bytes(size_t n) { return std::vector<unsigned char>(n, 0); }

}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, dtypes, values and metadata") {
  manual_seed(1);
  io::TensorMap m{{"encoder.layers.0.weight", randn({3, 4})},
                  {"encoder.layers.0.bias", randn({4}, kFloat64)},
                  {"steps", tensor({7}, {1}, kInt64)},
                  {"mask", tensor({1, 0, 1}, {3}, kBool)},
                  {"scalar", scalar_tensor(2.5)},
                  {"empty", zeros({0, 3})}};
  TempDir dir;
  for (const auto* opt : {&kCopy, &kMmap}) {
    std::string path = dir.file("roundtrip.safetensors");
    io::save_safetensors(path, m, {{"format", "pt"}});
    std::map<std::string, std::string> meta;
    io::TensorMap r = io::load_safetensors(path, &meta, *opt);
    CHECK(meta.at("format") == "pt");
    REQUIRE(r.size() == m.size());
    for (const auto& [k, t] : m) {
      INFO(k);
      REQUIRE(r.count(k) == 1);
      CHECK(r.at(k).shape() == t.shape());
      CHECK(r.at(k).dtype() == t.dtype());
      CHECK(r.at(k).to_vector<double>() == t.to_vector<double>());
    }
  }
}

TEST_CASE("safetensors writes a non-contiguous tensor's values in row-major order") {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).t();
  auto bytes = io::safetensors_bytes({{"t", t}});
  io::TensorMap r = io::load_safetensors_bytes(bytes.data(), bytes.size(), "buffer");
  CHECK(r.at("t").to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
}

TEST_CASE("safetensors file and bytes agree, header padded to 8 bytes") {
  TempDir dir;
  io::TensorMap m{{"a", tensor({1, 2, 3})}, {"b", tensor({4, 5}, kFloat64)}};
  io::save_safetensors(dir.file("x.safetensors"), m, {{"k", "v"}});
  auto file = genai_test::read_bytes(dir.file("x.safetensors"));
  CHECK(file == io::safetensors_bytes(m, {{"k", "v"}}));
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  CHECK((8 + n) % 8 == 0);
  CHECK(file.size() == 8 + n + 3 * 4 + 2 * 8);
}

// ---- a file written by Python --------------------------------------------------

TEST_CASE("safetensors written by Python loads every dtype with the right values") {
  const std::string path = std::string(GENAI_FIXTURE_DIR) + "/io_torch.safetensors";
  for (const auto* opt : {&kCopy, &kMmap}) {
    INFO((opt == &kCopy ? "copy path" : "mmap path"));
    std::map<std::string, std::string> meta;
    io::TensorMap m = io::load_safetensors(path, &meta, *opt);
    CHECK(meta.at("format") == "pt");
    CHECK(meta.at("source") == "make_io_fixtures.py");
    const std::map<std::string, Dtype> loaded_as{{"F32", kFloat32}, {"F64", kFloat64}, {"F16", kFloat32},
                                                 {"BF16", kFloat32}, {"I64", kInt64},  {"I32", kInt64},
                                                 {"I16", kInt64},    {"I8", kInt64},   {"U8", kInt64},
                                                 {"BOOL", kBool}};
    for (const auto& [dt, target] : loaded_as) {
      INFO("dtype " << dt);
      const Tensor& t = m.at("dtype." + dt);
      const Tensor& e = m.at("dtype." + dt + ".expected");
      CHECK(t.dtype() == target);
      CHECK(t.shape() == e.shape());
      CHECK(same_values(t, e));  // exact, including -0, subnormals, inf, nan, integer extremes
    }
    CHECK(m.at("dtype.I64").to_vector<int64_t>()[0] == INT64_MIN);
    CHECK(m.at("dtype.I64").to_vector<int64_t>()[1] == INT64_MAX);
    CHECK(m.at("scalar").dim() == 0);
    CHECK(m.at("scalar").item<double>() == 2.75);
    CHECK(m.at("empty").shape() == Shape{0, 3});
  }
}

// ---- memory-mapped loading -------------------------------------------------------

TEST_CASE("safetensors mmap: aligned native tensors alias the file, others are converted copies") {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  // "a": F32 at data offset 0, "b": F32 at offset 4 (4-byte aligned), "c": F64 at offset 12 (not 8-aligned)
  std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
      R"("c":{"dtype":"F64","shape":[1],"data_offsets":[12,20]},"h":{"dtype":"F16","shape":[2],"data_offsets":[20,24]}})";
  while ((header.size() + 8) % 8) header += ' ';
  std::vector<unsigned char> body(24);
  float a = 1.5f, b[2] = {-2.f, 3.25f};
  double c = 0.1;
  uint16_t h[2] = {0x3C00, 0xC000};  // 1.0, -2.0 in IEEE half
  std::memcpy(&body[0], &a, 4);
  std::memcpy(&body[4], b, 8);
  std::memcpy(&body[12], &c, 8);
  std::memcpy(&body[20], h, 4);
  genai_test::write_bytes(path, st_file(header, body));
  const uint64_t data_start = 8 + header.size();

  Tensor tb, tc;
  {
    io::TensorMap m = io::load_safetensors(path, nullptr, kMmap);
    tb = m.at("b");
    tc = m.at("c");
    CHECK(m.at("a").item<double>() == 1.5);
    CHECK(m.at("h").to_vector() == std::vector<float>{1.f, -2.f});
    // "b" aliases the page-aligned mapping: its address sits at its file offset modulo the page size
    // (fresh storage is 64-byte aligned, which offset data_start + 4 is not)
    CHECK(reinterpret_cast<uintptr_t>(tb.raw_data()) % 4096 == (data_start + 4) % 4096);
    CHECK(tb.storage()->nbytes() == 8);
    CHECK(reinterpret_cast<uintptr_t>(tc.raw_data()) % 64 == 0);  // unaligned F64: copied into fresh storage
  }
  // the map is gone but the mapping lives on in the tensors that alias it
  CHECK(tb.to_vector() == std::vector<float>{-2.f, 3.25f});
  CHECK(tc.item<double>() == 0.1);
  // writing to an aliasing tensor copies the page: the file does not change
  tb.fill_(7.0);
  CHECK(tb.to_vector() == std::vector<float>{7.f, 7.f});
  CHECK(genai_test::read_bytes(path) == st_file(header, body));
  CHECK(io::load_safetensors(path, nullptr, kMmap).at("b").to_vector() == std::vector<float>{-2.f, 3.25f});
}

TEST_CASE("safetensors: saving over a memory-mapped file leaves the mapped tensors intact") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  io::save_safetensors(path, {{"w", tensor({1, 2, 3, 4})}});
  Tensor w = io::load_safetensors(path, nullptr, kMmap).at("w");
  io::save_safetensors(path, {{"w", tensor({9, 9, 9, 9})}, {"v", tensor({5})}});  // atomic replace
  CHECK(w.to_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK(io::load_safetensors(path).at("w").to_vector() == std::vector<float>{9, 9, 9, 9});
}

TEST_CASE("safetensors: BOOL bytes other than 0/1 load as true") {
  std::string header = R"({"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})";
  auto bytes = st_file(header, {0, 1, 2, 255});
  io::TensorMap r = io::load_safetensors_bytes(bytes.data(), bytes.size(), "buffer");
  CHECK(r.at("m").to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 1});
}

// ---- one test per defect ---------------------------------------------------------

TEST_CASE("safetensors defect: truncated file") {
  auto good = io::safetensors_bytes({{"a", tensor({1, 2, 3, 4})}, {"b", tensor({5, 6})}});
  SECTION("shorter than the length prefix") {
    CHECK_DEFECT(std::vector<unsigned char>(good.begin(), good.begin() + 5), "5 bytes, too short", "truncated");
  }
  SECTION("empty file") { CHECK_DEFECT(std::vector<unsigned char>{}, "0 bytes, too short"); }
  SECTION("cut inside the data section") {
    CHECK_DEFECT(std::vector<unsigned char>(good.begin(), good.end() - 3), "beyond the end of the data section",
                 "truncated");
  }
  SECTION("cut inside the header") {
    CHECK_DEFECT(std::vector<unsigned char>(good.begin(), good.begin() + 20), "longer than the file", "truncated");
  }
}

TEST_CASE("safetensors defect: header length longer than the file") {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(4), 1000), "header length 1000 is longer than the file");
}

TEST_CASE("safetensors defect: absurd header length") {
  std::string header = R"({})";
  CHECK_DEFECT(st_file(header, {}, int64_t(1) << 40), "header length 1099511627776 exceeds the limit of 100000000");
  CHECK_DEFECT(st_file(header, {}, 100'000'001), "exceeds the limit");
}

TEST_CASE("safetensors defect: offsets out of range") {
  std::string header = R"({"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(16)), "tensor 'a'", "data_offsets [0, 400] beyond the end of the data section (16 bytes)");
  std::string backwards = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})";
  CHECK_DEFECT(st_file(backwards, zeros_bytes(8)), "tensor 'a'", "end before they begin");
  std::string negative = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})";
  CHECK_DEFECT(st_file(negative, zeros_bytes(4)), "tensor 'a'", "not non-negative integers");
}

TEST_CASE("safetensors defect: overlapping offsets") {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(12)), "tensor 'b'", "overlaps tensor 'a'");
  std::string same = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(same, zeros_bytes(4)), "overlaps");
}

TEST_CASE("safetensors defect: gaps in the data section") {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(12)), "gap of 4 bytes at offset 4", "before tensor 'b'");
  std::string leading = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  CHECK_DEFECT(st_file(leading, zeros_bytes(8)), "gap of 4 bytes at offset 0");
  std::string trailing = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(trailing, zeros_bytes(10)), "data section is 10 bytes but the tensors cover only 4",
               "6 trailing bytes");
}

TEST_CASE("safetensors defect: unknown dtype") {
  std::string header = R"({"q":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(2)), "tensor 'q'", "unknown or unsupported dtype 'Q4_K'");
  std::string not_string = R"({"q":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(not_string, zeros_bytes(4)), "tensor 'q' has no string 'dtype'");
}

TEST_CASE("safetensors defect: shape and size mismatch") {
  std::string header = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(8)), "tensor 'a' of shape (3,) and dtype F32 needs 12 bytes",
               "data_offsets span 8");
  std::string huge = R"({"a":{"dtype":"F64","shape":[1000000000000,1000000000000],"data_offsets":[0,8]}})";
  CHECK_DEFECT(st_file(huge, zeros_bytes(8)), "tensor 'a'", "overflows");
  std::string big = R"({"a":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,8]}})";
  CHECK_DEFECT(st_file(big, zeros_bytes(8)), "tensor 'a'", "more bytes than the data section holds");
  std::string bad_dim = R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(bad_dim, zeros_bytes(4)), "tensor 'a'", "not a non-negative integer");
}

TEST_CASE("safetensors defect: header that is not JSON") {
  CHECK_DEFECT(st_file("{not json at all}", {}), "header is not valid JSON");
  CHECK_DEFECT(st_file("[1, 2, 3]", {}), "header is not a JSON object");
  CHECK_DEFECT(st_file(R"({"a": )", {}), "header is not valid JSON");
  std::string nul = std::string("{\"a\":1", 6) + std::string(1, '\0') + "}";
  CHECK_DEFECT(st_file(nul, {}), "not valid JSON");
}

TEST_CASE("safetensors defect: duplicate names") {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  CHECK_DEFECT(st_file(header, zeros_bytes(8)), "the name 'a' appears twice");
  std::string inner = R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(inner, zeros_bytes(4)), "the key 'dtype' appears twice");
}

TEST_CASE("safetensors defect: malformed entries and metadata") {
  std::string no_offsets = R"({"a":{"dtype":"F32","shape":[1]}})";
  CHECK_DEFECT(st_file(no_offsets, {}), "tensor 'a' has no 'data_offsets' pair");
  std::string no_shape = R"({"a":{"dtype":"F32","data_offsets":[0,4]}})";
  CHECK_DEFECT(st_file(no_shape, zeros_bytes(4)), "tensor 'a' has no 'shape' array");
  std::string not_obj = R"({"a":[1,2]})";
  CHECK_DEFECT(st_file(not_obj, {}), "tensor 'a' is not an object");
  std::string meta = R"({"__metadata__":{"step":3}})";
  CHECK_DEFECT(st_file(meta, {}), "__metadata__ value for 'step' is not a string");
  CHECK_DEFECT(st_file("", {}), "empty JSON header");
}

TEST_CASE("safetensors: errors name the source for in-memory bytes and missing files") {
  std::vector<unsigned char> bytes{1, 2, 3};
  CHECK_ERROR_CONTAINS(io::load_safetensors_bytes(bytes.data(), bytes.size(), "my buffer"), "my buffer",
                       "too short");
  CHECK_ERROR_CONTAINS(io::load_safetensors("/nonexistent/dir/x.safetensors"), "/nonexistent/dir/x.safetensors",
                       "No such file or directory");
  TempDir dir;
  CHECK_ERROR_CONTAINS(io::load_safetensors(dir.path()), dir.path(), "is a directory");
  CHECK_ERROR_CONTAINS(io::save_safetensors("/nonexistent/dir/x.safetensors", {{"a", tensor({1})}}),
                       "save_safetensors", "/nonexistent/dir/x.safetensors", "No such file or directory");
  CHECK_ERROR_CONTAINS(io::save_safetensors(dir.file("u.safetensors"), {{"a", Tensor()}}), "tensor 'a' is undefined");
}
