// tests/fuzz/make_corpus.cpp: writes the seed corpus of the fuzz targets,
// tests/fuzz/corpus/<target>/, small valid files made with genai's own writers
// (and stb_image_write for the image formats genai does not write). Run it from
// the fuzz build: `build/fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus`
// (run_fuzzers.sh does so when the corpus folder is missing). The seeds are
// committed; the corpora that fuzzing grows are not.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <genai/genai.hpp>
#include <genai/io/json_fields.hpp>
#include <genai/io/midi.hpp>
#include <genai/models/transformer/bert.hpp>
#include <genai/models/transformer/gpt.hpp>
#include <genai/models/transformer/t5.hpp>
#include <genai/text/bpe.hpp>
#include <genai/text/wordpiece.hpp>

namespace fs = std::filesystem;
using namespace genai;

static std::string g_root;

static void put(const std::string& target, const std::string& name, const void* data, size_t size) {
  fs::create_directories(g_root + "/" + target);
  std::ofstream f(g_root + "/" + target + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f) {
    std::fprintf(stderr, "cannot write %s/%s\n", target.c_str(), name.c_str());
    std::exit(1);
  }
}
static void put(const std::string& target, const std::string& name, const std::string& s) {
  put(target, name, s.data(), s.size());
}
static void put(const std::string& target, const std::string& name, const std::vector<unsigned char>& b) {
  put(target, name, b.data(), b.size());
}
static std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// A safetensors file written by hand (any dtype): entries of (name, dtype, shape, raw bytes).
struct RawEntry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
static std::string raw_safetensors(const std::vector<RawEntry>& es, const std::string& meta_json = "") {
  std::string hdr = "{";
  if (!meta_json.empty()) hdr += "\"__metadata__\":" + meta_json;
  uint64_t off = 0;
  std::string body;
  for (const auto& e : es) {
    if (hdr.size() > 1) hdr += ",";
    std::string shape;
    for (int64_t d : e.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    hdr += "\"" + e.name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
           std::to_string(off) + "," + std::to_string(off + e.bytes.size()) + "]}";
    off += e.bytes.size();
    body += e.bytes;
  }
  hdr += "}";
  while (hdr.size() % 8) hdr += ' ';
  uint64_t n = hdr.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + hdr + body;
}
static std::string pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 37 + static_cast<size_t>(seed) * 11) & 0xFF);
  return s;
}

static void safetensors_seeds() {
  io::TensorMap m;
  m["weight"] = arange(6, kFloat32).reshape({2, 3});
  m["bias"] = arange(3, kFloat64);
  m["steps"] = arange(4, kInt64);
  m["mask"] = gt(arange(5, kFloat32), 2.0);
  put("safetensors", "writer_f32_f64_i64_bool.safetensors", io::safetensors_bytes(m, {{"format", "pt"}}));
  put("safetensors", "all_dtypes.safetensors",
      raw_safetensors({{"a_f16", "F16", {2, 2}, pattern(8, 1)},
                       {"b_bf16", "BF16", {3}, pattern(6, 2)},
                       {"c_i32", "I32", {2}, pattern(8, 3)},
                       {"d_i16", "I16", {1, 2}, pattern(4, 4)},
                       {"e_i8", "I8", {4}, pattern(4, 5)},
                       {"f_u8", "U8", {2, 2}, pattern(4, 6)},
                       {"g_bool", "BOOL", {3}, std::string("\x01\x00\x02", 3)},
                       {"h_f64", "F64", {1}, pattern(8, 7)}},
                      "{\"note\":\"seed\"}"));
  put("safetensors", "scalar_and_empty.safetensors",
      raw_safetensors({{"empty", "F32", {0, 4}, ""}, {"scalar", "F32", {}, pattern(4, 8)}}));
  put("safetensors", "header_only.safetensors", raw_safetensors({}));
}

static void checkpoint_seeds(const std::string& tmp) {
  io::Checkpoint ck;
  ck.model()["linear.weight"] = arange(6, kFloat32).reshape({3, 2});
  ck.model()["linear.bias"] = zeros({3}, kFloat32);
  ck.optim()["state.0.exp_avg"] = ones({3, 2}, kFloat32);
  ck.sched()["last_epoch"] = arange(1, kInt64);
  Generator gen(42);
  ck.set_generator("torch", gen);
  ck.ints["step"] = 100;
  ck.ints["epoch"] = -3;
  ck.floats["best_loss"] = 0.125;
  ck.floats["lr"] = 3e-4;
  ck.strings["run"] = "seed run";
  ck.save(tmp + "/ck.safetensors");
  put("checkpoint", "full.ckpt.safetensors", slurp(tmp + "/ck.safetensors"));
  io::Checkpoint small;
  small.ints["step"] = 1;
  small.floats["nan"] = std::nan("");
  small.model()["w"] = ones({1}, kFloat64);
  small.save(tmp + "/small.safetensors");
  put("checkpoint", "small.ckpt.safetensors", slurp(tmp + "/small.safetensors"));
}

static std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, size_t esize) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>((d >> (8 * k)) & 0xFF));
    n *= d;
  }
  return s + pattern(n * esize, type);
}
static std::string gzip_bytes(const std::string& tmp, const std::string& plain) {
  const std::string p = tmp + "/x.gz";
  gzFile g = gzopen(p.c_str(), "wb9");
  gzwrite(g, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(g);
  return slurp(p);
}
static void idx_seeds(const std::string& tmp) {
  const std::string u8 = idx_bytes(0x08, {3, 4, 4}, 1);
  put("idx", "images_u8.idx", u8);
  put("idx", "labels_u8.idx", idx_bytes(0x08, {10}, 1));
  put("idx", "i8.idx", idx_bytes(0x09, {2, 3}, 1));
  put("idx", "i16.idx", idx_bytes(0x0B, {2, 2}, 2));
  put("idx", "i32.idx", idx_bytes(0x0C, {3}, 4));
  put("idx", "f32.idx", idx_bytes(0x0D, {2, 2}, 4));
  put("idx", "f64.idx", idx_bytes(0x0E, {1, 2, 1}, 8));
  put("idx", "images_u8.idx.gz", gzip_bytes(tmp, u8));
  put("idx", "labels.idx.gz", gzip_bytes(tmp, idx_bytes(0x08, {10}, 1)));
}

static void image_seeds() {
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(ctx);
    out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  };
  Tensor rgb = mul(arange(3 * 8 * 8, kFloat32), 1.0 / 191.0).reshape({3, 8, 8});
  put("image", "rgb8x8.png", io::encode_png(rgb));
  put("image", "grey5x3.png", io::encode_png(mul(arange(15, kFloat32), 1.0 / 14.0).reshape({5, 3})));
  put("image", "rgba4x4.png", io::encode_png(full({4, 4, 4}, 0.5, kFloat32)));
  put("image", "greyalpha2x2.png", io::encode_png(full({2, 2, 2}, 0.25, kFloat32)));
  std::vector<unsigned char> px(8 * 8 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 4);
  std::vector<unsigned char> out;
  stbi_write_jpg_to_func(sink, &out, 8, 8, 3, px.data(), 90);
  put("image", "rgb8x8.jpg", out);
  out.clear();
  stbi_write_jpg_to_func(sink, &out, 16, 9, 1, px.data(), 50);
  put("image", "grey16x9.jpg", out);
  out.clear();
  stbi_write_bmp_to_func(sink, &out, 4, 4, 3, px.data());
  put("image", "rgb4x4.bmp", out);
  out.clear();
  stbi_write_tga_to_func(sink, &out, 4, 4, 4, px.data());
  put("image", "rgba4x4.tga", out);
  std::vector<float> hdr(4 * 4 * 3);
  for (size_t i = 0; i < hdr.size(); ++i) hdr[i] = static_cast<float>(i) / 7.0f;
  out.clear();
  stbi_write_hdr_to_func(sink, &out, 4, 4, 3, hdr.data());
  put("image", "rgb4x4.hdr", out);
  put("image", "grey3x2.pgm", std::string("P5 3 2 255\n\x01\x02\x03\x04\x05\x06", 17));
}

static void bpe_seeds(const std::string& tmp) {
  const std::string text =
      "Hello world! The quick brown fox jumps over the lazy dog's back, 12345 times.\n  Hello again, world.";
  auto tok = text::BPETokenizer::train(text, 300);
  tok.save(tmp + "/bpe");
  const std::string vocab = slurp(tmp + "/bpe/vocab.json"), merges = slurp(tmp + "/bpe/merges.txt");
  const std::string z(1, '\0');
  put("bpe", "trained.bin", vocab + z + merges + z + "Hello world, it's 2026<|endoftext|> caf\xc3\xa9 \xe4\xb8\xad!");
  // a hand-written GPT-2 style pair: only the byte tokens, "He", "Ġw", and the end token
  std::string v = "{";
  for (int b = 0; b < 256; ++b) {
    std::string k = text::gpt2_bytes_to_printable(std::string(1, static_cast<char>(b)));
    std::string esc;
    for (char c : k) {
      if (c == '"' || c == '\\') esc += '\\';
      esc += c;
    }
    v += "\"" + esc + "\": " + std::to_string(b) + ", ";
  }
  v += "\"He\": 256, \"\xc4\xa0w\": 257, \"<|endoftext|>\": 258}";
  put("bpe", "handmade.bin", v + z + "#version: 0.2\nH e\n\xc4\xa0 w\n" + z + "Hello world");
}

static void wordpiece_seeds() {
  const std::string vocab =
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nquick\nbrown\nfox\n##es\n##s\nhello\nworld\n,\n.\n!\ncafe\n\xe4\xb8\xad\n"
      "un\n##aff\n##able\n";
  const std::string z(1, '\0');
  put("wordpiece", "basic.bin", vocab + z + "Hello, World! The quick brown foxes. Caf\xc3\xa9 \xe4\xb8\xad unaffable");
  put("wordpiece", "crlf.bin", std::string("[UNK]\r\n[CLS]\r\n[SEP]\r\na\r\n##b\r\n") + z + "ab ba\tA\xcc\x81");
}

static void config_seeds() {
  put("config", "gpt2.json", models::GPTConfig::gpt2().to_hf_json().dump(2));
  put("config", "bert.json", models::BertConfig{}.to_hf_json().dump(2));
  put("config", "t5.json", models::T5Config{}.to_hf_json().dump(2));
  put("config", "hf_gpt2_extra.json",
      std::string("{\"architectures\": [\"GPT2LMHeadModel\"], \"n_inner\": null, \"n_ctx\": 64, \"n_embd\": 32, "
                  "\"n_head\": 4, \"n_layer\": 2, \"layer_norm_epsilon\": 1e-05, \"id2label\": {\"0\": \"a\", "
                  "\"1\": \"b\", \"2\": \"c\"}, \"tie_word_embeddings\": false, \"activation_function\": "
                  "\"gelu_new\"}"));
}

static void midi_seeds() {
  std::vector<io::MidiNote> notes;
  for (int i = 0; i < 6; ++i) notes.push_back({i * 240, 200, 60 + 2 * i, 90, 0});
  notes.push_back({0, 960, 48, 70, 1});
  put("midi", "notes.mid", io::encode_midi(io::midi_from_notes(notes, 480, 100, 5, "seed")));
  // format 0, running status, a sysex, a velocity-0 note-off, an unknown chunk
  std::string trk = std::string("\x00\x90\x3c\x40", 4) + std::string("\x60\x3e\x40", 3) +
                    std::string("\x60\x3c\x00", 3) + std::string("\x00\x3e\x00", 3) +
                    std::string("\x00\xf0\x03\x7e\x09\xf7", 6) + std::string("\x00\xc0\x05", 3) +
                    std::string("\x00\xe0\x00\x40", 4) + std::string("\x00\xff\x2f\x00", 4);
  std::string f = std::string("MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60", 14) +
                  std::string("XYZW\x00\x00\x00\x02\xab\xcd", 10) + std::string("MTrk\x00\x00\x00", 7) +
                  static_cast<char>(trk.size()) + trk;
  put("midi", "format0_running_status.mid", f);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (writes CORPUS_DIR/<target>/ seed files)\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  const std::string tmp = (fs::temp_directory_path() / ("genai_corpus_" + std::to_string(::getpid()))).string();
  fs::create_directories(tmp);
  safetensors_seeds();
  checkpoint_seeds(tmp);
  idx_seeds(tmp);
  image_seeds();
  bpe_seeds(tmp);
  wordpiece_seeds();
  config_seeds();
  midi_seeds();
  fs::remove_all(tmp);
  std::printf("seed corpus written to %s\n", g_root.c_str());
  return 0;
}
