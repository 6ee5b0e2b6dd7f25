// Regression tests for the tokenizer file readers (issue 14): vocab.json /
// merges.txt (BPETokenizer::from_bytes) and vocab.txt (WordPieceTokenizer::from_bytes)
// must raise genai::Error, never allocate beyond what the files' sizes imply.
// Inputs found by the libFuzzer targets of tests/fuzz/ or by reading the parsers.
#include "test_util.hpp"

#include <genai/text/bpe.hpp>
#include <genai/text/wordpiece.hpp>

using namespace genai;

TEST_CASE("BPE vocab.json: an id beyond the number of tokens is refused before allocating", "[bpe][hardening]") {
  // used to resize the token table to 16 million entries for a 15-byte file
  CHECK_THROWS_WITH(text::BPETokenizer::from_bytes(R"({"a": 16777215})", "", "v.json", "m.txt"),
                    Catch::Contains("'v.json': token 'a' has id 16777215 but there are only 1 tokens: no token has id 0"));
  CHECK_THROWS_WITH(text::BPETokenizer::from_bytes(R"({"a": 0, "b": -1})", "", "v.json", "m.txt"),
                    Catch::Contains("token 'b' has a negative id -1"));
  CHECK_THROWS_WITH(text::BPETokenizer::from_bytes(R"({"a": 0, "b": 18446744073709551615})", "", "v.json", "m.txt"),
                    Catch::Contains("token 'b' has a negative id -1"));
  text::BPETokenizer t = text::BPETokenizer::from_bytes(R"({"a": 0, "b": 1, "ab": 2})", "#version: 0.2\na b\n");
  CHECK(t.encode("abab") == std::vector<int64_t>{2, 2});
}

TEST_CASE("WordPiece vocab.txt from memory: same parsing as from_file", "[wordpiece][hardening]") {
  auto tok = text::WordPieceTokenizer::from_bytes("[UNK]\r\n[CLS]\n[SEP]\nhello\n##s");
  CHECK(tok.vocab_size() == 5);
  CHECK(tok.encode("hellos") == std::vector<int64_t>{1, 3, 4, 2});
  CHECK_THROWS_WITH(text::WordPieceTokenizer::from_bytes("a\nb\n"), Catch::Contains("no unknown token"));
}
