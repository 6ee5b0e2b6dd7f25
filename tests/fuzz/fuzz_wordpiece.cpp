// libFuzzer target: BERT's vocab.txt (text::WordPieceTokenizer::from_bytes, behind
// from_file / from_dir). The input is "vocab.txt \0 text": the vocabulary is read
// and, when it is usable, the text is tokenized, encoded as a pair and decoded.
#include <genai/text/wordpiece.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = genai_fuzz::split_parts(data, size, 2);
  for (bool lower : {true, false}) {
    try {
      genai::text::WordPieceOptions o;
      o.do_lower_case = lower;
      o.strip_accents = lower;
      auto tok = genai::text::WordPieceTokenizer::from_bytes(parts[0], o);
      std::vector<int64_t> ids = tok.encode(parts[1]);
      for (int64_t id : ids) genai_fuzz::require(id >= 0 && id < tok.vocab_size(), "token id outside the vocabulary");
      (void)tok.decode(ids, true);
      (void)tok.encode_pair(parts[1], parts[1]);
    } catch (const genai::Error&) {
    }
  }
  return 0;
}
