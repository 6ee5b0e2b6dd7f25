// libFuzzer target: GPT-2's tokenizer files (text::BPETokenizer::from_bytes, behind
// from_files / from_dir). The input is "vocab.json \0 merges.txt \0 text": the two
// files are parsed and, when they form a tokenizer, the text is encoded.
// Invariant: when encode succeeds, decode(encode(text)) == text (byte-level BPE
// loses nothing), with and without special tokens.
#include <genai/text/bpe.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parts = genai_fuzz::split_parts(data, size, 3);
  try {
    auto tok = genai::text::BPETokenizer::from_bytes(parts[0], parts[1], "vocab.json", "merges.txt");
    for (bool special : {false, true}) {
      try {
        std::vector<int64_t> ids = tok.encode(parts[2], special);
        genai_fuzz::require(tok.decode(ids) == parts[2], "decode(encode(text)) != text");
      } catch (const genai::Error&) {
      }
    }
  } catch (const genai::Error&) {
  }
  return 0;
}
