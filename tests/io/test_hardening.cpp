// Regression tests for the readers of outside data (issue 14, "resource limits"):
// files whose headers claim more data than the file can hold must raise
// genai::Error naming the defect before anything large is allocated. Inputs found
// by the libFuzzer targets of tests/fuzz/ (docs/fuzzing.md) or by reading the
// parsers; each case names the defect.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <cstring>
#include <string>

#include <genai/io/checkpoint.hpp>
#include <genai/io/idx.hpp>
#include <genai/io/image.hpp>
#include <genai/io/json_fields.hpp>
#include <genai/io/midi.hpp>
#include <genai/io/safetensors.hpp>

using namespace genai;
using genai_test::TempDir;

namespace {

std::vector<unsigned char> hardening_safetensors(const std::string& header, const std::string& body = "") {
  std::string h = header;
  uint64_t n = h.size();
  std::vector<unsigned char> out(8 + h.size() + body.size());
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  std::memcpy(out.data() + 8 + h.size(), body.data(), body.size());
  return out;
}

std::string hardening_load_st(const std::vector<unsigned char>& b) {
  return genai_test::error_of([&] { io::load_safetensors_bytes(b.data(), b.size(), "'x.safetensors'"); });
}

}  // namespace

TEST_CASE("safetensors: headers claiming more than the file holds are refused before allocating",
          "[io][hardening]") {
  // a 1 TB tensor described by a 100-byte file
  CHECK_THAT(hardening_load_st(hardening_safetensors(
                 R"({"w":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}})")),
             Catch::Matchers::Contains("beyond the end of the data section"));
  // a shape whose element count overflows int64, with offsets that fit
  CHECK_THAT(hardening_load_st(hardening_safetensors(
                 R"({"w":{"dtype":"U8","shape":[1099511627777],"data_offsets":[0,4]}})", "abcd")),
             Catch::Matchers::Contains("absurd dimension 1099511627777"));
  CHECK_THAT(hardening_load_st(hardening_safetensors(
                 R"({"w":{"dtype":"U8","shape":[4194304,4194304,4194304],"data_offsets":[0,4]}})", "abcd")),
             Catch::Matchers::Contains("overflows"));
  // a JSON header length larger than the file
  std::vector<unsigned char> b = hardening_safetensors(R"({})");
  const uint64_t huge = 50'000'000;
  std::memcpy(b.data(), &huge, 8);
  CHECK_THAT(hardening_load_st(b), Catch::Matchers::Contains("is longer than the file"));
  // the same defect as fuzz_idx's first crash: a size 0 hides sizes whose product overflows the strides
  CHECK_THAT(hardening_load_st(hardening_safetensors(
                 R"({"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})")),
             Catch::Matchers::Contains("whose strides overflow"));
  // negative shape entries and offsets, dtype/size mismatch
  CHECK_THAT(hardening_load_st(hardening_safetensors(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd")),
             Catch::Matchers::Contains("not a non-negative integer"));
  CHECK_THAT(hardening_load_st(hardening_safetensors(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,4]}})", "abcd")),
             Catch::Matchers::Contains("needs 8 bytes but its data_offsets span 4"));
}

TEST_CASE("IDX: sizes claiming more data than the file holds are refused before allocating", "[io][hardening]") {
  TempDir dir;
  // 2^31 - 1 images of 28 x 28 in a 16-byte file
  std::vector<unsigned char> b = {0, 0, 8, 3, 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 28, 0, 0, 0, 28};
  genai_test::write_bytes(dir.file("huge.idx"), b);
  CHECK_ERROR_CONTAINS(io::read_idx(dir.file("huge.idx")), "the file is truncated");
  // the same header gzip-compressed: the decompressed size is unknown, the ratio bounds it
  const std::string gz = dir.file("huge.idx.gz");
  gzFile g = gzopen(gz.c_str(), "wb");
  REQUIRE(g != nullptr);
  gzwrite(g, b.data(), static_cast<unsigned>(b.size()));
  gzclose(g);
  CHECK_ERROR_CONTAINS(io::read_idx(gz), "that a gzip file of", "cannot hold: corrupt header");
  // dimensions whose product overflows int64
  std::vector<unsigned char> o = {0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  genai_test::write_bytes(dir.file("overflow.idx"), o);
  CHECK_ERROR_CONTAINS(io::read_idx(dir.file("overflow.idx")), "whose product overflows");
  // fuzz_idx crash-9b1664324e3c: a size 0 makes the element count 0, but the other sizes'
  // product overflowed contiguous_strides (UBSan: signed integer overflow in shape.hpp)
  std::vector<unsigned char> z = {0, 0, 9, 6, 0, 0xF1, 0xFF, 0xFF, 0x40, 0xFF, 0, 0, 0, 0, 0, 2,
                                  0, 0, 0, 0, 0, 0, 0xC6, 0xC6, 0xC6, 0, 0xCA, 0xC6};
  genai_test::write_bytes(dir.file("zero_dim.idx"), z);
  CHECK_ERROR_CONTAINS(io::read_idx(dir.file("zero_dim.idx")), "zero_dim.idx", "multiply past int64");
}

TEST_CASE("load_image: a small file declaring a huge image is refused before decoding", "[io][hardening]") {
  std::vector<unsigned char> png = io::encode_png(full({3, 4, 4}, 0.5, kFloat32));
  REQUIRE(png.size() > 24);
  // IHDR width and height (big-endian, bytes 16..23) -> 16000 x 16000 (stb does not check
  // CRCs); 768 MB of RGB, under stb's own 1 GB limit, from a file of about 100 bytes
  const unsigned char dims[8] = {0, 0, 0x3E, 0x80, 0, 0, 0x3E, 0x80};
  std::memcpy(png.data() + 16, dims, 8);
  CHECK_ERROR_CONTAINS(io::decode_image(png.data(), png.size(), "'bomb.png'"), "'bomb.png'",
                       "declares 16000 x 16000 pixels", "decompression bomb");
}

TEST_CASE("load_image: PNM headers with numbers stb 2.27 would overflow are refused", "[io][hardening]") {
  // fuzz_image crash-3a15c1cd3e1b: stb_image 2.27 read the maximum value "2555...5" into an
  // int without an overflow check (UBSan: signed integer overflow in stbi__pnm_getinteger);
  // the fuzzer's input exactly
  const std::string pnm = "P5 3 2 2" + std::string(81, '5') + "\n\x01\x02\x03\x04\x05\x06";
  CHECK_ERROR_CONTAINS(io::decode_image(reinterpret_cast<const unsigned char*>(pnm.data()), pnm.size(), "'x.pgm'"),
                       "'x.pgm'", "PNM header holds a maximum value of 82 digits");
  const std::string wide = "P6\n# comment\n1234567890 2 255\n";
  CHECK_ERROR_CONTAINS(io::decode_image(reinterpret_cast<const unsigned char*>(wide.data()), wide.size(), "'w.ppm'"),
                       "width of 10 digits");
  const std::string good = std::string("P5 3 2 255\n") + std::string("\x00\x33\x66\x99\xcc\xff", 6);
  Tensor t = io::decode_image(reinterpret_cast<const unsigned char*>(good.data()), good.size(), "'g.pgm'");
  CHECK(t.shape() == Shape{1, 2, 3});
  CHECK(t.to_vector<float>()[5] == 1.0f);
}

TEST_CASE("load_image: a JPEG Huffman table with more than 256 codes is refused before stb", "[io][hardening]") {
  // fuzz_image crash-033c9df6fcd1: stb_image 2.27 summed the 16 code counts of a DHT
  // segment without a limit and wrote past its 257-entry table (UBSan: index 257 out of
  // bounds in stbi__build_huffman); the minimal form of that input:
  std::string jpg = std::string("\xFF\xD8\xFF\xC4\x00\x13\x00", 7) + std::string(16, '\xFF');
  CHECK_ERROR_CONTAINS(io::decode_image(reinterpret_cast<const unsigned char*>(jpg.data()), jpg.size(), "'h.jpg'"),
                       "'h.jpg'", "JPEG Huffman table (DHT segment at byte 2) declares 4080 codes, more than 256");
  // fuzz_image crash-d33b742b8911 (second 10-minute run): the same table behind fill
  // bytes before the SOI marker ("FF FF FF FF D8"), which stb accepts
  std::string filled = std::string(3, '\xFF') + jpg;
  CHECK_ERROR_CONTAINS(io::decode_image(reinterpret_cast<const unsigned char*>(filled.data()), filled.size(), "'f.jpg'"),
                       "'f.jpg'", "declares 4080 codes, more than 256");
  // a valid JPEG (stb_image_write's, with its standard tables) still decodes
  std::vector<unsigned char> px(8 * 8 * 3, 128), out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* o = static_cast<std::vector<unsigned char>*>(ctx);
    o->insert(o->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  };
  REQUIRE(stbi_write_jpg_to_func(sink, &out, 8, 8, 3, px.data(), 90) != 0);
  CHECK(io::decode_image(out.data(), out.size(), "'ok.jpg'").shape() == Shape{3, 8, 8});
}

TEST_CASE("load_image: a PNG chunk longer than the file is refused before stb allocates it", "[io][hardening]") {
  // fuzz_image oom-2cab4518e6ed: an 8 x 8 PNG whose IDAT chunk declares 1073741885 bytes made
  // stb_image 2.27 allocate 1 GB before finding the file too short
  std::vector<unsigned char> png = io::encode_png(full({3, 8, 8}, 0.25, kFloat32));
  REQUIRE(png.size() > 41);
  REQUIRE(std::memcmp(png.data() + 37, "IDAT", 4) == 0);
  const unsigned char len[4] = {0x40, 0x00, 0x00, 0x3D};
  std::memcpy(png.data() + 33, len, 4);
  CHECK_ERROR_CONTAINS(io::decode_image(png.data(), png.size(), "'big.png'"), "'big.png'",
                       "PNG chunk 'IDAT' at byte 33 declares 1073741885 bytes");
  // cut inside a chunk header: stb's reason was the cut chunk type's first letter ("I")
  std::vector<unsigned char> cut = io::encode_png(full({3, 8, 8}, 0.25, kFloat32));
  cut.resize(38);
  CHECK_ERROR_CONTAINS(io::decode_image(cut.data(), cut.size(), "'cut.png'"), "'cut.png'",
                       "the PNG ends at byte 38 before its IEND chunk (the file is truncated)");
  // the last chunk's CRC may be missing (stb does not read it): still decodes
  std::vector<unsigned char> ok = io::encode_png(full({3, 8, 8}, 0.25, kFloat32));
  ok.resize(ok.size() - 4);
  CHECK(io::decode_image(ok.data(), ok.size(), "'ok.png'").shape() == Shape{3, 8, 8});
}

TEST_CASE("load_image: 16-bit PNM files are refused", "[io][hardening]") {
  // fuzz_image crash-ab5ea62ecd77 (10-minute run): "P6 3 2 893" is a 16-bit PPM; with a
  // channel conversion stb_image 2.27 returned an 8-bit-sized buffer that was read as
  // 16-bit (AddressSanitizer: heap-buffer-overflow in decode_image)
  const std::string ppm = std::string("P6 3 2 893\n\x01\x02\x03\x04\x05\x06", 17);
  for (int channels : {0, 1, 4})
    CHECK_ERROR_CONTAINS(io::decode_image(reinterpret_cast<const unsigned char*>(ppm.data()), ppm.size(), "'x.ppm'",
                                          channels),
                         "'x.ppm'", "16-bit PNM files (maximum value above 255) are not supported");
}

TEST_CASE("JSON readers refuse absurdly deep nesting", "[io][hardening]") {
  std::string deep(100000, '[');
  CHECK_ERROR_CONTAINS(io::parse_json_bytes(reinterpret_cast<const unsigned char*>(deep.data()), deep.size(), "load_x",
                                            "'config.json'"),
                       "load_x", "more than 512 levels deep");
  std::string ok = std::string(100, '[') + std::string(100, ']');
  CHECK(io::parse_json_bytes(reinterpret_cast<const unsigned char*>(ok.data()), ok.size(), "load_x", "'c.json'")
            .is_array());
}
