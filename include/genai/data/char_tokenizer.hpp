// genai/data/char_tokenizer.hpp: a character-level tokenizer over Unicode code
// points, as nanoGPT's data/shakespeare_char/prepare.py (stoi / itos over the
// sorted set of the text's characters).
//
// Characters are Unicode code points decoded from UTF-8 (not bytes), so "é" is
// one token, as a Python str character. The vocabulary is the sorted set of code
// points of the text it is built from; id i is the i-th smallest code point.
// Strict UTF-8: malformed input (stray continuation bytes, overlong forms,
// surrogates, truncated sequences) raises genai::Error with the byte offset.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/tensor.hpp"

namespace genai {
namespace data {

/// Decodes UTF-8 into code points; `what` names the source in errors.
inline std::u32string utf8_decode(const std::string& s, const std::string& what = "text") {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int len;
    char32_t cp;
    if (b < 0x80) {
      len = 1;
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      GENAI_FAIL("utf8_decode: ", what, " is not valid UTF-8: byte ", static_cast<int>(b), " at offset ", i,
                 " cannot start a character");
    }
    GENAI_CHECK(i + static_cast<size_t>(len) <= s.size(), "utf8_decode: ", what,
                " is not valid UTF-8: the character at offset ", i, " is cut off by the end of the text");
    for (int k = 1; k < len; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      GENAI_CHECK((c & 0xC0) == 0x80, "utf8_decode: ", what, " is not valid UTF-8: byte ", static_cast<int>(c),
                  " at offset ", i + static_cast<size_t>(k), " should continue the character at offset ", i);
      cp = (cp << 6) | (c & 0x3F);
    }
    static const char32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    GENAI_CHECK(cp >= min_cp[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF), "utf8_decode: ", what,
                " is not valid UTF-8: overlong, surrogate or out-of-range character at offset ", i);
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

/// Encodes one code point as UTF-8, appending to `out`.
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class CharTokenizer {
 public:
  CharTokenizer() = default;
  /// The vocabulary of `text`: its distinct code points, sorted.
  explicit CharTokenizer(const std::u32string& text) : chars_(text) {
    std::sort(chars_.begin(), chars_.end());
    chars_.erase(std::unique(chars_.begin(), chars_.end()), chars_.end());
  }
  /// The vocabulary of a UTF-8 string.
  static CharTokenizer from_utf8(const std::string& text) { return CharTokenizer(utf8_decode(text)); }

  int64_t vocab_size() const { return static_cast<int64_t>(chars_.size()); }
  /// The vocabulary, id order.
  const std::u32string& chars() const { return chars_; }

  /// The id of a code point; throws for characters outside the vocabulary.
  int64_t id(char32_t c) const {
    auto it = std::lower_bound(chars_.begin(), chars_.end(), c);
    if (it == chars_.end() || *it != c) {
      std::string ch;
      utf8_append(ch, c);
      GENAI_FAIL("CharTokenizer: character '", ch, "' (U+", std::hex, static_cast<uint32_t>(c), std::dec,
                 ") is not in the vocabulary of ", chars_.size(), " characters");
    }
    return static_cast<int64_t>(it - chars_.begin());
  }
  std::vector<int64_t> encode(const std::u32string& text) const {
    std::vector<int64_t> ids;
    ids.reserve(text.size());
    for (char32_t c : text) ids.push_back(id(c));
    return ids;
  }
  /// UTF-8 text -> ids.
  std::vector<int64_t> encode(const std::string& utf8) const { return encode(utf8_decode(utf8)); }
  /// UTF-8 text -> int64 tensor (T,).
  Tensor encode_tensor(const std::string& utf8) const {
    std::vector<int64_t> ids = encode(utf8);
    return from_vector(ids, {static_cast<int64_t>(ids.size())}, kInt64);
  }

  /// ids -> UTF-8 text; throws for ids outside [0, vocab_size).
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string out;
    for (int64_t i : ids) {
      GENAI_CHECK(i >= 0 && i < vocab_size(), "CharTokenizer: id ", i, " is outside the vocabulary [0, ",
                  vocab_size(), ")");
      utf8_append(out, chars_[static_cast<size_t>(i)]);
    }
    return out;
  }
  /// An int64 tensor of ids (any shape, read row-major) -> UTF-8 text.
  std::string decode(const Tensor& ids) const {
    GENAI_CHECK(ids.defined() && ids.dtype() == kInt64, "CharTokenizer::decode: expected an int64 tensor of ids");
    return decode(ids.to_vector<int64_t>());
  }

 private:
  std::u32string chars_;  // sorted distinct code points
};

}  // namespace data
}  // namespace genai
