// Tests of the character-level tokenizer and text dataset on small temporary files.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <genai/data/char_dataset.hpp>
#include <genai/data/dataloader.hpp>

using namespace genai;
using namespace genai::data;
using genai_test::TempDir;

TEST_CASE("CharTokenizer: sorted code-point vocabulary, encode/decode round trip") {
  // "é" is two bytes and "→" three in UTF-8, but one character each
  CharTokenizer tok = CharTokenizer::from_utf8("héllo → wörld");
  CHECK(tok.vocab_size() == 10);  // ' ', d, h, l, o, r, w, é, ö, →
  CHECK(tok.chars() == std::u32string(U" dhlorwéö→"));
  CHECK(tok.encode("hé→") == std::vector<int64_t>{2, 7, 9});
  CHECK(tok.decode(std::vector<int64_t>{2, 7, 9}) == "hé→");
  CHECK(tok.decode(tok.encode_tensor("wörld → hollow")) == "wörld → hollow");
  CHECK_ERROR_CONTAINS(tok.encode("x"), "CharTokenizer", "'x'", "U+78", "not in the vocabulary");
  CHECK_ERROR_CONTAINS(tok.decode(std::vector<int64_t>{10}), "id 10 is outside the vocabulary [0, 10)");
}

TEST_CASE("utf8_decode refuses malformed UTF-8 with the byte offset") {
  CHECK(utf8_decode("a\xF0\x9F\x98\x80") == std::u32string(U"a\U0001F600"));
  CHECK_ERROR_CONTAINS(utf8_decode("ab\x80"), "byte 128 at offset 2 cannot start a character");
  CHECK_ERROR_CONTAINS(utf8_decode("a\xC3"), "offset 1 is cut off");
  CHECK_ERROR_CONTAINS(utf8_decode("\xC3x"), "should continue the character at offset 0");
  CHECK_ERROR_CONTAINS(utf8_decode("\xC0\xAF"), "overlong");
  CHECK_ERROR_CONTAINS(utf8_decode("\xED\xA0\x80"), "surrogate");
}

TEST_CASE("CharDataset: 90/10 split, next-character windows, shared vocabulary") {
  TempDir dir;
  // 40 characters, 3 of them non-ASCII
  const std::string text = "abcdefghij\nà la plage, ça va → bien! xyz";
  const std::u32string chars = utf8_decode(text);
  REQUIRE(chars.size() == 40);
  genai_test::write_text(dir.file("t.txt"), text);
  CharDataset train(dir.file("t.txt"), 4, Split::Train);
  // int(40 * 0.9) = 36 training characters, 4 + ... validation: the last 4 characters -> too short for T = 4
  CHECK(train.ids().numel() == 36);
  CHECK(train.size() == 32);
  CHECK(train.vocab_size() == CharTokenizer(chars).vocab_size());
  CHECK_ERROR_CONTAINS(CharDataset(dir.file("t.txt"), 4, Split::Val), "validation split", "has 4 characters",
                       "block_size + 1 = 5");
  CharDataset val2(dir.file("t.txt"), 2, Split::Val, 0.25);  // last 10 characters
  CHECK(val2.ids().numel() == 10);
  CHECK(val2.decode(val2.ids()) == " bien! xyz");
  CHECK(val2.tokenizer().chars() == train.tokenizer().chars());  // the vocabulary of the whole file

  Example e = train.get(11);
  CHECK(e.input.dtype() == kInt64);
  CHECK(e.input.shape() == Shape{4});
  CHECK(train.decode(e.input) == "à la");
  CHECK(train.decode(e.target) == " la ");
  CHECK(train.decode(train.get(31).target) == "ien!");  // the last window ends at character 36
  CHECK_ERROR_CONTAINS(train.get(32), "CharDataset", "index 32 out of range for 32");
}

TEST_CASE("CharDataset: random windows through DataLoader and sample_batch") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 20; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  genai_test::write_text(dir.file("fox.txt"), text);
  CharDataset ds(dir.file("fox.txt"), 8);
  CHECK(ds.size() == static_cast<int64_t>(text.size() * 9 / 10) - 8);
  DataLoader loader(ds, {.batch_size = 16, .shuffle = true, .seed = 3});
  Example b = *loader.begin();
  REQUIRE(b.input.shape() == Shape{16, 8});
  REQUIRE(b.target.shape() == Shape{16, 8});
  // target is input shifted by one character
  std::vector<int64_t> x = b.input.to_vector<int64_t>(), y = b.target.to_vector<int64_t>();
  for (int r = 0; r < 16; ++r)
    for (int t = 0; t + 1 < 8; ++t) CHECK(y[static_cast<size_t>(r * 8 + t)] == x[static_cast<size_t>(r * 8 + t + 1)]);

  Generator g1(5), g2(5);
  Example s1 = ds.sample_batch(4, g1), s2 = ds.sample_batch(4, g2);
  CHECK(s1.input.shape() == Shape{4, 8});
  CHECK(s1.input.to_vector<int64_t>() == s2.input.to_vector<int64_t>());  // reproducible from the generator
  std::string row = ds.decode(s1.input.select(0, 0));
  CHECK(text.find(row) != std::string::npos);  // a real window of the text
}

TEST_CASE("CharDataset errors name the file") {
  TempDir dir;
  CHECK_ERROR_CONTAINS(CharDataset(dir.file("none.txt"), 4), "CharDataset", dir.file("none.txt"), "No such file");
  genai_test::write_text(dir.file("bad.txt"), "ok\xFF");
  CHECK_ERROR_CONTAINS(CharDataset(dir.file("bad.txt"), 1), dir.file("bad.txt"), "not valid UTF-8", "offset 2");
  CHECK_ERROR_CONTAINS(CharDataset(dir.file("bad.txt"), 0), "block_size must be >= 1");
}
