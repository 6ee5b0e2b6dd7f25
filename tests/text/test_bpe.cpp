// Tests for genai/text/bpe.hpp: GPT-2's byte-level BPE against the Python reference
// (tests/fixtures/make_gpt_fixtures.py: OpenAI's encoder.py algorithm with the `regex`
// module's pre-tokenization), on the tiny vocabulary of tests/fixtures/gpt2_tiny_hf.
#include "test_util.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include <genai/text/bpe.hpp>

using namespace genai;
using text::BPETokenizer;

namespace {

const std::string kDir = std::string(GENAI_FIXTURE_DIR) + "/gpt2_tiny_hf";

const nlohmann::json& cases() {
  static nlohmann::json j = [] {
    std::ifstream f(std::string(GENAI_FIXTURE_DIR) + "/gpt_bpe_cases.json");
    return nlohmann::json::parse(f);
  }();
  return j;
}

const BPETokenizer& tok() {
  static BPETokenizer t = BPETokenizer::from_dir(kDir);
  return t;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("genai_test_bpe_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

void write(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  f << s;
}

}  // namespace

TEST_CASE("unicode classes: letters, numbers, White_Space", "[bpe]") {
  using namespace text;
  CHECK(is_letter('a'));
  CHECK(is_letter('Z'));
  CHECK_FALSE(is_letter('1'));
  CHECK(is_letter(0xE9));     // é
  CHECK(is_letter(0x65E5));   // 日
  CHECK(is_letter(0x3042));   // あ
  CHECK(is_letter(0x02B0));   // ʰ (Lm)
  CHECK_FALSE(is_letter(0x0301));  // combining acute (Mn)
  CHECK(is_number('7'));
  CHECK(is_number(0xBD));     // ½ (No)
  CHECK(is_number(0x216B));   // Ⅻ (Nl)
  CHECK(is_number(0x0967));   // १ (Nd)
  CHECK_FALSE(is_number('x'));
  CHECK(is_space(' '));
  CHECK(is_space('\t'));
  CHECK(is_space(0x85));
  CHECK(is_space(0xA0));
  CHECK(is_space(0x3000));
  CHECK_FALSE(is_space(0x1C));  // a Python isspace() character that regex's \s excludes
  CHECK_FALSE(is_space(0x200B));
  CHECK_FALSE(is_letter(kInvalidCodePoint));
  CHECK_FALSE(is_space(kInvalidCodePoint));
}

TEST_CASE("pre-tokenization matches the regex pattern on the reference cases", "[bpe]") {
  for (const auto& c : cases()["cases"]) {
    const std::string s = c["text"].get<std::string>();
    std::vector<std::string> expected = c["pieces"].get<std::vector<std::string>>();
    std::vector<std::string> got;
    for (auto p : text::gpt2_pretokenize(s)) got.emplace_back(p);
    INFO("text: " << nlohmann::json(s).dump());
    CHECK(got == expected);
  }
}

TEST_CASE("encode gives the reference ids and decode round-trips", "[bpe]") {
  REQUIRE(tok().vocab_size() == 377);
  REQUIRE(tok().num_merges() == 120);
  REQUIRE(cases()["cases"].size() > 60);
  for (const auto& c : cases()["cases"]) {
    const std::string s = c["text"].get<std::string>();
    std::vector<int64_t> expected = c["ids"].get<std::vector<int64_t>>();
    INFO("text: " << nlohmann::json(s).dump());
    std::vector<int64_t> ids = tok().encode(s);
    CHECK(ids == expected);
    CHECK(tok().decode(ids) == s);
    CHECK(tok().encode(s) == ids);  // second call: from the cache
  }
}

TEST_CASE("round trip on arbitrary bytes and random unicode", "[bpe]") {
  std::mt19937 rng(7);
  // arbitrary bytes, invalid UTF-8 included
  for (int t = 0; t < 200; ++t) {
    std::string s(static_cast<size_t>(rng() % 40), '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() % 256);
    std::vector<int64_t> ids = tok().encode(s);
    REQUIRE(tok().decode(ids) == s);
    size_t total = 0;
    for (auto p : text::gpt2_pretokenize(s)) total += p.size();
    REQUIRE(total == s.size());
  }
  // random code points from several scripts, spaces and digits
  const uint32_t pools[][2] = {{0x20, 0x7E}, {0xA0, 0x24F}, {0x370, 0x3FF}, {0x400, 0x4FF}, {0x3040, 0x30FF},
                               {0x4E00, 0x4E80}, {0x1F300, 0x1F64F}, {0x2000, 0x206F}, {9, 13}, {0x660, 0x669}};
  for (int t = 0; t < 200; ++t) {
    std::string s;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) {
      const auto& p = pools[rng() % 10];
      text::utf8_put(s, p[0] + static_cast<uint32_t>(rng() % (p[1] - p[0] + 1)));
    }
    REQUIRE(tok().decode(tok().encode(s)) == s);
  }
}

TEST_CASE("special tokens are text unless allowed", "[bpe]") {
  const int64_t eot = tok().eot_id();
  REQUIRE(eot == 376);
  std::vector<int64_t> plain = tok().encode("a<|endoftext|>b");
  CHECK(std::find(plain.begin(), plain.end(), eot) == plain.end());
  std::vector<int64_t> sp = tok().encode("a<|endoftext|>b", true);
  std::vector<int64_t> expected = tok().encode("a");
  expected.push_back(eot);
  for (int64_t i : tok().encode("b")) expected.push_back(i);
  CHECK(sp == expected);
  CHECK(tok().decode(sp) == "a<|endoftext|>b");
  CHECK(tok().encode("<|endoftext|><|endoftext|>", true) == std::vector<int64_t>{eot, eot});
}

TEST_CASE("the trainer learns the reference merges; save and reload", "[bpe]") {
  const std::string corpus = cases()["corpus"].get<std::string>();
  const int64_t n = cases()["train_vocab_size"].get<int64_t>();
  BPETokenizer t = BPETokenizer::train(corpus, n + 1);  // + <|endoftext|>
  CHECK(t.vocab_size() == n + 1);
  CHECK(t.merges() == tok().merges());  // the Python trainer wrote gpt2_tiny_hf/merges.txt
  for (int64_t i = 0; i < t.vocab_size(); ++i) CHECK(t.token_bytes(i) == tok().token_bytes(i));
  const std::string dir = temp_dir("save");
  t.save(dir);
  BPETokenizer r = BPETokenizer::from_dir(dir);
  CHECK(r.vocab_size() == t.vocab_size());
  CHECK(r.merges() == t.merges());
  CHECK(r.eot_id() == n);
  for (const auto& c : cases()["cases"]) {
    const std::string s = c["text"].get<std::string>();
    CHECK(r.encode(s) == c["ids"].get<std::vector<int64_t>>());
  }
  // fewer tokens than bytes on the training text
  CHECK(t.encode(corpus).size() * 3 < corpus.size() * 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("streaming decode never splits a UTF-8 character", "[bpe]") {
  const std::string s = "naïve café 日本語 👋🏽 ok";
  std::vector<int64_t> ids = tok().encode(s);
  text::Utf8StreamBuffer buf;
  std::string out;
  for (int64_t id : ids) {
    std::string chunk = buf.push(tok().token_bytes(id));
    // every chunk is complete UTF-8
    for (size_t i = 0; i < chunk.size();) {
      auto [cp, l] = text::utf8_next(chunk, i);
      REQUIRE(cp != text::kInvalidCodePoint);
      i += static_cast<size_t>(l);
    }
    out += chunk;
  }
  out += buf.flush();
  CHECK(out == s);
  CHECK(text::utf8_complete_prefix("ab\xE6\x97") == 2);
  CHECK(text::utf8_complete_prefix("ab\xE6\x97\xA5") == 5);
  CHECK(text::utf8_complete_prefix("\xF0\x9F\x91") == 0);
}

TEST_CASE("bad tokenizer files raise clear errors", "[bpe]") {
  const std::string dir = temp_dir("bad");
  CHECK_THROWS_WITH(BPETokenizer::from_dir(dir), Catch::Contains("vocab.json and merges.txt"));
  write(dir + "/vocab.json", "[1, 2]");
  write(dir + "/merges.txt", "#version: 0.2\n");
  CHECK_THROWS_WITH(BPETokenizer::from_dir(dir), Catch::Contains("not a JSON object"));
  write(dir + "/vocab.json", R"({"a": 0, "b": 2})");
  CHECK_THROWS_WITH(BPETokenizer::from_dir(dir), Catch::Contains("no token has id 1"));
  write(dir + "/vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  write(dir + "/merges.txt", "#version: 0.2\na b c\n");
  CHECK_THROWS_WITH(BPETokenizer::from_dir(dir), Catch::Contains("line 2"));
  write(dir + "/merges.txt", "#version: 0.2\na b\n");
  BPETokenizer t = BPETokenizer::from_dir(dir);
  CHECK(t.encode("ab") == std::vector<int64_t>{2});
  CHECK(t.encode("ba") == std::vector<int64_t>{1, 0});
  CHECK_THROWS_WITH(t.encode("abc"), Catch::Contains("not in the vocabulary"));
  CHECK_THROWS_WITH(t.decode({5}), Catch::Contains("outside the vocabulary"));
  std::filesystem::remove_all(dir);
}
