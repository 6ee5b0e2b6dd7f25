// tests/fuzz/bad_inputs.cpp: feeds one example of each class of bad input to each
// reader of outside data and prints the genai::Error message the user sees, as a
// Markdown table (the table "Bad inputs and the errors users see" of
// docs/fuzzing.md is this program's output). Files are written to a temporary
// folder that is removed at the end. Exits non-zero if any input does not raise
// genai::Error.
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <genai/io/checkpoint.hpp>
#include <genai/io/idx.hpp>
#include <genai/io/image.hpp>
#include <genai/io/json_fields.hpp>
#include <genai/io/midi.hpp>
#include <genai/io/safetensors.hpp>
#include <genai/models/transformer/bert.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/t5.hpp>
#include <genai/text/bpe.hpp>
#include <genai/text/wordpiece.hpp>

namespace fs = std::filesystem;
using namespace genai;

static int g_failures = 0;
static std::string g_dir;

static void row(const char* type, const char* defect, const std::function<void()>& f) {
  std::string msg;
  try {
    f();
    msg = "NO ERROR RAISED";
    ++g_failures;
  } catch (const Error& e) {
    msg = e.message();
  } catch (const std::exception& e) {
    msg = std::string("NON-GENAI EXCEPTION: ") + e.what();
    ++g_failures;
  }
  // the temporary folder's name varies: print it as <dir>
  for (size_t p; (p = msg.find(g_dir)) != std::string::npos;) msg.replace(p, g_dir.size(), "<dir>");
  for (size_t p = 0; (p = msg.find('|', p)) != std::string::npos; p += 2) msg.replace(p, 1, "\\|");
  std::printf("| %s | %s | `%s` |\n", type, defect, msg.c_str());
}

static std::string file(const std::string& name, const std::string& bytes) {
  const std::string p = g_dir + "/" + name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}
static std::string st(const std::string& header, const std::string& body = "") {
  uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + body;
}
static std::string gz(const std::string& plain) {
  const std::string p = g_dir + "/tmp.gz";
  gzFile g = gzopen(p.c_str(), "wb");
  gzwrite(g, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(g);
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
static std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

int main() {
  g_dir = (fs::temp_directory_path() / ("genai_bad_inputs_" + std::to_string(::getpid()))).string();
  fs::create_directories(g_dir);
  std::printf("| file type | defect | error message |\n|---|---|---|\n");

  // ---- safetensors ----
  auto load_st = [](const std::string& name, const std::string& bytes) {
    return [=] { io::load_safetensors(file(name, bytes)); };
  };
  const std::string ok_hdr = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  row("safetensors", "empty file", load_st("a.safetensors", ""));
  row("safetensors", "truncated inside the length prefix", load_st("a.safetensors", std::string("\x10\0\0", 3)));
  row("safetensors", "wrong magic (a PNG renamed)", load_st("a.safetensors", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
  row("safetensors", "header length larger than the file",
      load_st("a.safetensors", std::string("\x00\x10\x00\x00\x00\x00\x00\x00{}", 10)));
  row("safetensors", "header length above 100 MB", load_st("a.safetensors", std::string("\0\0\0\0\x01\0\0\0{}", 10)));
  row("safetensors", "header is not JSON", load_st("a.safetensors", st("{not json}")));
  row("safetensors", "header is a JSON array", load_st("a.safetensors", st("[1,2]")));
  row("safetensors", "truncated data section", load_st("a.safetensors", st(ok_hdr, "abcd")));
  row("safetensors", "tensor claiming 1 TB", load_st("a.safetensors", st(
      R"({"w":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}})")));
  row("safetensors", "negative shape entry",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "abcdefgh")));
  row("safetensors", "overflowing shape",
      load_st("a.safetensors", st(R"({"w":{"dtype":"U8","shape":[4194304,4194304,4194304],"data_offsets":[0,8]}})",
                                  "abcdefgh")));
  row("safetensors", "zero-size shape whose strides overflow",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}})")));
  row("safetensors", "dtype / byte count mismatch",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", "abcdefgh")));
  row("safetensors", "unknown dtype",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", "abcdefgh")));
  row("safetensors", "shape given as a string",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", "abcdefgh")));
  row("safetensors", "offsets not numbers",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", "abcdefgh")));
  row("safetensors", "offsets reversed",
      load_st("a.safetensors", st(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", "abcdefgh")));
  row("safetensors", "overlapping tensors",
      load_st("a.safetensors", st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                  "abcdefgh")));
  row("safetensors", "trailing bytes after the tensors", load_st("a.safetensors", st(ok_hdr, "abcdefghXY")));
  row("safetensors", "duplicate tensor name",
      load_st("a.safetensors", st(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                  "ab")));
  row("safetensors", "bad UTF-8 in the header", load_st("a.safetensors", st("{\"w\xff\":1}")));
  row("safetensors", "__metadata__ value not a string",
      load_st("a.safetensors", st(R"({"__metadata__":{"step":3}})")));

  // ---- checkpoint ----
  row("checkpoint", "plain safetensors, not a checkpoint",
      [&] { io::Checkpoint::load(file("c.safetensors", st(ok_hdr, "abcdefgh"))); });
  row("checkpoint", "unknown format version",
      [&] { io::Checkpoint::load(file("c.safetensors", st(R"({"__metadata__":{"genai.checkpoint":"7"}})"))); });
  row("checkpoint", "non-numeric int metadata", [&] {
    io::Checkpoint::load(file("c.safetensors", st(R"({"__metadata__":{"genai.checkpoint":"1","int.step":"12x"}})")));
  });
  row("checkpoint", "int metadata overflowing int64", [&] {
    io::Checkpoint::load(
        file("c.safetensors", st(R"({"__metadata__":{"genai.checkpoint":"1","int.step":"99999999999999999999"}})")));
  });
  row("checkpoint", "tensor without a group prefix", [&] {
    io::Checkpoint::load(file("c.safetensors", st(R"({"__metadata__":{"genai.checkpoint":"1"},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "a")));
  });
  row("checkpoint", "generator state of the wrong shape", [&] {
    io::Checkpoint ck = io::Checkpoint::load(file("c.safetensors", st(R"({"__metadata__":{"genai.checkpoint":"1"},"rng.gen":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "a")));
    Generator g;
    ck.restore_generator("gen", g);
  });

  // ---- IDX ----
  auto load_idx = [](const std::string& name, const std::string& bytes) {
    return [=] { io::load_idx(file(name, bytes)); };
  };
  const std::string hdr3 = std::string("\0\0\x08\x03", 4) + be32(2) + be32(2) + be32(2);
  row("IDX", "empty file", load_idx("e.idx", ""));
  row("IDX", "wrong magic", load_idx("m.idx", "GIF89a......"));
  row("IDX", "unknown type byte", load_idx("t.idx", std::string("\0\0\x07\x01", 4) + be32(1) + "x"));
  row("IDX", "zero dimensions", load_idx("z.idx", std::string("\0\0\x08\x00", 4)));
  row("IDX", "truncated in the sizes", load_idx("s.idx", std::string("\0\0\x08\x03", 4) + be32(2)));
  row("IDX", "truncated data", load_idx("d.idx", hdr3 + "abc"));
  row("IDX", "trailing bytes", load_idx("x.idx", hdr3 + "abcdefghXY"));
  row("IDX", "header claiming 2^31 - 1 images", load_idx("h.idx", std::string("\0\0\x08\x03", 4) + be32(0x7FFFFFFF) + be32(28) + be32(28)));
  row("IDX", "sizes whose product overflows", load_idx("o.idx", std::string("\0\0\x08\x03", 4) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF)));
  row("IDX", "zero size hiding an overflow", load_idx("zo.idx", std::string("\0\0\x08\x05", 4) + be32(0) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF)));
  row("IDX (gzip)", "header claiming 2^31 - 1 images", load_idx("h.idx.gz", gz(std::string("\0\0\x08\x03", 4) + be32(0x7FFFFFFF) + be32(28) + be32(28))));
  const std::string good_gz = gz(hdr3 + "abcdefgh");
  row("IDX (gzip)", "truncated gzip stream", load_idx("t.idx.gz", good_gz.substr(0, good_gz.size() - 12)));
  std::string bad_crc = good_gz;
  bad_crc[bad_crc.size() - 6] ^= 0x55;
  row("IDX (gzip)", "corrupt CRC", load_idx("c.idx.gz", bad_crc));
  std::string bad_deflate = good_gz;
  bad_deflate[10] = static_cast<char>(0xFF);
  row("IDX (gzip)", "corrupt deflate data", load_idx("d.idx.gz", bad_deflate));

  // ---- images ----
  std::vector<unsigned char> png = io::encode_png(full({3, 4, 4}, 0.5, kFloat32));
  const std::string spng(png.begin(), png.end());
  auto load_img = [](const std::string& name, const std::string& bytes) {
    return [=] { io::load_image(file(name, bytes)); };
  };
  row("PNG", "empty file", load_img("e.png", ""));
  row("PNG", "truncated", load_img("t.png", spng.substr(0, spng.size() / 2)));
  row("PNG", "wrong magic (text)", load_img("w.png", "this is not an image"));
  std::string bomb = spng;
  std::memcpy(&bomb[16], "\0\0\x3e\x80\0\0\x3e\x80", 8);
  row("PNG", "100-byte file declaring 16000 x 16000", load_img("b.png", bomb));
  std::string huge = spng;
  std::memcpy(&huge[16], "\0\0\xea\x60\0\0\xea\x60", 8);
  row("PNG", "declaring 60000 x 60000 (> 1 GB)", load_img("h.png", huge));
  std::string badz = spng;
  for (size_t i = 41; i < 50 && i < badz.size(); ++i) badz[i] = static_cast<char>(0xFF);
  row("PNG", "corrupt compressed data", load_img("z.png", badz));
  row("JPEG", "truncated after the SOI marker", load_img("t.jpg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00"));
  row("PNM", "header number overflowing int", load_img("o.pgm", "P5 3 2 99999999999999999999\n\x01\x02"));
  row("PNM", "16-bit PPM", load_img("s.ppm", std::string("P6 3 2 893\n\x01\x02\x03\x04\x05\x06", 17)));
  row("image", "channels argument out of range", [&] { io::load_image(file("g.png", spng), 7); });

  // ---- GPT-2 tokenizer files ----
  auto bpe = [](const std::string& vocab, const std::string& merges) {
    return [=] { text::BPETokenizer::from_files(file("vocab.json", vocab), file("merges.txt", merges)); };
  };
  row("vocab.json", "not JSON", bpe("{\"a\": 0,", ""));
  row("vocab.json", "JSON array, not an object", bpe("[1, 2]", ""));
  row("vocab.json", "non-numeric id", bpe(R"({"a": "0"})", ""));
  row("vocab.json", "id beyond the vocabulary (16777215)", bpe(R"({"a": 16777215})", ""));
  row("vocab.json", "negative id", bpe(R"({"a": -1})", ""));
  row("vocab.json", "an id used twice", bpe(R"({"a": 0, "b": 0})", ""));
  row("vocab.json", "a gap in the ids", bpe(R"({"a": 0, "b": 2, "c": 3})", ""));
  row("vocab.json", "bad UTF-8", bpe("{\"\xc3\x28\": 0}", ""));
  row("merges.txt", "line without a pair", bpe(R"({"a": 0})", "#version: 0.2\nab\n"));
  row("merges.txt", "three symbols on a line", bpe(R"({"a": 0})", "a b c\n"));
  row("merges.txt", "character outside GPT-2's byte map", bpe(R"({"a": 0})", "a \xe4\xb8\xad\n"));

  // ---- BERT vocab.txt ----
  row("vocab.txt", "no [UNK] token", [&] { text::WordPieceTokenizer::from_file(file("vocab.txt", "a\nb\n")); });
  row("vocab.txt", "empty file", [&] { text::WordPieceTokenizer::from_file(file("vocab.txt", "")); });

  // ---- config.json ----
  row("config.json (GPT-2)", "not JSON", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g1"), file("g1/config.json", "{\"n_layer\": 2,"), g_dir + "/g1")); });
  row("config.json (GPT-2)", "non-numeric field", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g2"), file("g2/config.json", R"({"n_layer": "12"})"), g_dir + "/g2")); });
  row("config.json (GPT-2)", "negative size", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g3"), file("g3/config.json", R"({"n_embd": -768})"), g_dir + "/g3")); });
  row("config.json (GPT-2)", "float where an integer is expected", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g4"), file("g4/config.json", R"({"n_head": 12.5})"), g_dir + "/g4")); });
  row("config.json (GPT-2)", "JSON array, not an object", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g5"), file("g5/config.json", "[]"), g_dir + "/g5")); });
  row("config.json (GPT-2)", "nested 100000 levels deep", [&] { models::load_gpt2_config((fs::create_directories(g_dir + "/g6"), file("g6/config.json", std::string(100000, '[')), g_dir + "/g6")); });
  row("config.json (BERT)", "string where a number is expected", [&] { models::load_bert_config((fs::create_directories(g_dir + "/b1"), file("b1/config.json", R"({"layer_norm_eps": "1e-12"})"), g_dir + "/b1")); });
  row("config.json (BERT)", "unsupported position_embedding_type", [&] { models::load_bert_config((fs::create_directories(g_dir + "/b2"), file("b2/config.json", R"({"position_embedding_type": "relative_key"})"), g_dir + "/b2")); });
  row("config.json (T5)", "boolean where an integer is expected", [&] { models::load_t5_config((fs::create_directories(g_dir + "/t1"), file("t1/config.json", R"({"d_model": true})"), g_dir + "/t1")); });
  row("config.json (T5)", "missing file", [&] { models::load_t5_config(g_dir + "/none"); });

  // ---- MIDI ----
  auto midi = [](const std::string& name, const std::string& bytes) { return [=] { io::load_midi(file(name, bytes)); }; };
  const std::string mthd = std::string("MThd\0\0\0\x06\0\x01\0\x01\0\x60", 14);
  row("MIDI", "wrong magic", midi("w.mid", "RIFF....WAVEfmt "));
  row("MIDI", "unknown format", midi("f.mid", std::string("MThd\0\0\0\x06\0\x07\0\x01\0\x60", 14)));
  row("MIDI", "track chunk longer than the file", midi("t.mid", mthd + "MTrk" + be32(1000) + std::string("\0\xff\x2f\0", 4)));
  row("MIDI", "track without end-of-track", midi("e.mid", mthd + "MTrk" + be32(4) + std::string("\0\x90\x3c\x40", 4)));
  row("MIDI", "data byte without running status", midi("r.mid", mthd + "MTrk" + be32(4) + std::string("\0\x3c\x40\0", 4)));
  row("MIDI", "variable-length quantity over 4 bytes", midi("v.mid", mthd + "MTrk" + be32(6) + std::string("\xff\xff\xff\xff\xff\x00", 6)));
  row("MIDI", "fewer tracks than announced", midi("n.mid", std::string("MThd\0\0\0\x06\0\x01\0\x03\0\x60", 14) + "MTrk" + be32(4) + std::string("\0\xff\x2f\0", 4)));

  fs::remove_all(g_dir);
  if (g_failures) std::fprintf(stderr, "%d inputs did not raise genai::Error\n", g_failures);
  return g_failures ? 1 : 0;
}
