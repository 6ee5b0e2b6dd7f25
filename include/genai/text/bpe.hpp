// genai/text/bpe.hpp: GPT-2's byte-level byte-pair-encoding tokenizer (Radford et
// al. 2019; OpenAI's gpt-2/src/encoder.py, which Hugging Face's GPT2Tokenizer and
// tiktoken's "gpt2" encoding reproduce), reading the vocab.json + merges.txt files
// of a Hugging Face GPT-2 folder, and a small byte-level BPE trainer.
//
//   auto tok = text::BPETokenizer::from_dir("gpt2/");     // vocab.json + merges.txt
//   std::vector<int64_t> ids = tok.encode("Hello world");  // {15496, 995}
//   std::string s = tok.decode(ids);                        // "Hello world"
//
// Encoding: the text is split into pre-tokens by GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matched here without a regex library (gpt2_pretokenize: the alternatives are
// tried in order at each position, as a backtracking engine does; "\s+(?!\S)"
// gives a whitespace run minus its last character when a non-space follows).
// \p{L}, \p{N} and \s are Unicode's letter and number categories and the
// White_Space property, from the range tables of unicode_classes.hpp (Unicode 17.0,
// generated from the Python `regex` module's tables; see that file for coverage).
// Each pre-token's UTF-8 bytes become one symbol per byte; the adjacent pair with
// the lowest merge rank is merged everywhere in the word (left to right, without
// overlap), until no pair has a rank. Symbols are then looked up in vocab.json.
// Decoding concatenates the tokens' bytes, so decode(encode(s)) == s for every
// byte string s (invalid UTF-8 bytes are pre-tokenized as "other" characters).
//
// vocab.json maps tokens in GPT-2's printable byte encoding (bytes_to_unicode: byte
// 0x20 is 'Ġ', 0x0A is 'Ċ', ...) to ids; internally tokens are raw bytes. Entries
// that are not in that encoding (added special tokens) are kept as their UTF-8 text.
// merges.txt: an optional "#version" line, then one "left right" pair per line,
// rank = order.
//
// Special tokens (e.g. "<|endoftext|>", id 50256 in GPT-2) are ordinary text to
// encode() (as encoder.py; tiktoken refuses them by default); encode(text, true)
// turns their occurrences into their ids.
//
// Training (BPETokenizer::train): byte-level BPE on the same pre-tokens: ids 0..255
// are the bytes, each step merges the most frequent adjacent pair (ties: the
// smallest (id, id)), a merge whose bytes are already a token reuses its id, and
// "<|endoftext|>" is appended. save() writes vocab.json and merges.txt.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/config.hpp"
#include "genai/io/file.hpp"
#include "genai/text/unicode_classes.hpp"

namespace genai {
namespace text {

// ---- Unicode classes and UTF-8 ----------------------------------------------------------

namespace detail {
template <size_t N>
inline bool in_ranges(const unicode::CodeRange (&r)[N], uint32_t cp) {
  size_t lo = 0, hi = N;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (r[mid].hi < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < N && r[lo].lo <= cp;
}
}  // namespace detail

/// A code point that decoding could not produce: an invalid UTF-8 byte.
constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

/// `\p{L}`: letters (Lu, Ll, Lt, Lm, Lo).
inline bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return cp != kInvalidCodePoint && detail::in_ranges(unicode::kLetterRanges, cp);
}
/// `\p{N}`: numbers (Nd, Nl, No).
inline bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return cp != kInvalidCodePoint && detail::in_ranges(unicode::kNumberRanges, cp);
}
/// `\s`: the White_Space property.
inline bool is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 9 && cp <= 13);
  return cp != kInvalidCodePoint && detail::in_ranges(unicode::kSpaceRanges, cp);
}

/// Decodes the UTF-8 character at s[i]: its code point and byte length. A byte that
/// does not start a valid character (stray continuation, overlong, surrogate, cut
/// off) gives kInvalidCodePoint and length 1.
inline std::pair<uint32_t, int> utf8_next(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {b, 1};
  int len;
  uint32_t cp;
  if ((b & 0xE0) == 0xC0) {
    len = 2;
    cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3;
    cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4;
    cp = b & 0x07;
  } else {
    return {kInvalidCodePoint, 1};
  }
  if (i + static_cast<size_t>(len) > s.size()) return {kInvalidCodePoint, 1};
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((c & 0xC0) != 0x80) return {kInvalidCodePoint, 1};
    cp = (cp << 6) | (c & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalidCodePoint, 1};
  return {cp, len};
}

/// Appends the UTF-8 encoding of code point cp.
inline void utf8_put(std::string& out, uint32_t cp) {
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

/// The length of the longest prefix of `bytes` that ends on a UTF-8 character
/// boundary, leaving out at most 3 trailing bytes of a character still incomplete
/// (for streaming: print the prefix, keep the rest for the next token).
inline size_t utf8_complete_prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    int need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
    return static_cast<int>(back) < need ? n - back : n;
  }
  return n;
}

// ---- pre-tokenization ---------------------------------------------------------------------

/// Splits UTF-8 text into GPT-2's pre-tokens (byte ranges of `s`, in order, covering it).
inline std::vector<std::string_view> gpt2_pretokenize(std::string_view s) {
  std::vector<std::string_view> out;
  const size_t n = s.size();
  // classes: 0 letter, 1 number, 2 space, 3 other
  auto cls_at = [&](size_t i, int* len) {
    auto [cp, l] = utf8_next(s, i);
    *len = l;
    return is_letter(cp) ? 0 : is_number(cp) ? 1 : is_space(cp) ? 2 : 3;
  };
  size_t i = 0;
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (s[i] == '\'' && i + 1 < n) {
      static const char* const kContr[] = {"s", "t", "re", "ve", "m", "ll", "d"};
      size_t m = 0;
      for (const char* c : kContr) {
        const size_t cl = std::char_traits<char>::length(c);
        if (s.compare(i + 1, cl, c) == 0) {
          m = 1 + cl;
          break;
        }
      }
      if (m) {
        out.push_back(s.substr(i, m));
        i += m;
        continue;
      }
    }
    int len0;
    const int c0 = cls_at(i, &len0);
    // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class
    size_t j = i;
    int cls = c0;
    if (s[i] == ' ' && i + 1 < n) {
      int l1;
      const int c1 = cls_at(i + 1, &l1);
      if (c1 != 2) {
        j = i + 1;
        cls = c1;
      }
    }
    if (cls != 2) {
      size_t k = j;
      while (k < n) {
        int l;
        if (cls_at(k, &l) != cls) break;
        k += static_cast<size_t>(l);
      }
      out.push_back(s.substr(i, k - i));
      i = k;
      continue;
    }
    // '\s+(?!\S)' then '\s+': a whitespace run; when a non-space follows, its last
    // character is left for the next pre-token (unless the run is one character)
    size_t k = i, last = i;
    while (k < n) {
      int l;
      if (cls_at(k, &l) != 2) break;
      last = k;
      k += static_cast<size_t>(l);
    }
    if (k < n && last > i) k = last;
    out.push_back(s.substr(i, k - i));
    i = k;
  }
  return out;
}

// ---- byte <-> printable character map -----------------------------------------------------

/// OpenAI's bytes_to_unicode: byte b -> the code point vocab.json uses for it.
inline const std::array<uint32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) t[b] = printable[b] ? static_cast<uint32_t>(b) : 256 + n++;
    return t;
  }();
  return table;
}

/// Raw bytes -> GPT-2's printable form (as stored in vocab.json / merges.txt).
inline std::string gpt2_bytes_to_printable(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) utf8_put(out, gpt2_byte_to_unicode()[b]);
  return out;
}

/// GPT-2's printable form -> raw bytes; nullopt if a character is not in the byte map.
inline std::optional<std::string> gpt2_printable_to_bytes(std::string_view s) {
  static const std::unordered_map<uint32_t, unsigned char> inv = [] {
    std::unordered_map<uint32_t, unsigned char> m;
    for (int b = 0; b < 256; ++b) m[gpt2_byte_to_unicode()[b]] = static_cast<unsigned char>(b);
    return m;
  }();
  std::string out;
  for (size_t i = 0; i < s.size();) {
    auto [cp, l] = utf8_next(s, i);
    auto it = inv.find(cp);
    if (it == inv.end()) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
    i += static_cast<size_t>(l);
  }
  return out;
}

// ---- the tokenizer ------------------------------------------------------------------------

class BPETokenizer {
 public:
  BPETokenizer() = default;

  /// From tokens as raw bytes (id -> bytes) and merges as pairs of raw byte strings,
  /// in rank order. `special` lists tokens (raw text) encode(text, true) matches.
  BPETokenizer(const std::vector<std::string>& tokens, const std::vector<std::pair<std::string, std::string>>& merges,
               std::vector<std::string> special = {"<|endoftext|>"}) {
    build(tokens, merges, std::move(special), "BPETokenizer");
  }

  /// Reads a Hugging Face GPT-2 tokenizer: vocab.json and merges.txt.
  static BPETokenizer from_files(const std::string& vocab_json, const std::string& merges_txt) {
    std::vector<unsigned char> vb = io::read_file(vocab_json, "BPETokenizer");
    std::vector<unsigned char> mb = io::read_file(merges_txt, "BPETokenizer");
    return from_bytes(std::string_view(reinterpret_cast<const char*>(vb.data()), vb.size()),
                      std::string_view(reinterpret_cast<const char*>(mb.data()), mb.size()), vocab_json, merges_txt);
  }

  /// From the contents of vocab.json and merges.txt held in memory; `vocab_name` and
  /// `merges_name` name them in errors. Nothing is allocated beyond what the sizes of
  /// the two texts imply: ids must lie in [0, number of entries of vocab.json).
  static BPETokenizer from_bytes(std::string_view vocab_text, std::string_view merges_text,
                                 const std::string& vocab_name = "vocab.json",
                                 const std::string& merges_name = "merges.txt") {
    const std::string& vocab_json = vocab_name;
    const std::string& merges_txt = merges_name;
    nlohmann::json j = nlohmann::json::parse(vocab_text.begin(), vocab_text.end(), nullptr, false);
    GENAI_CHECK(!j.is_discarded() && j.is_object(), "BPETokenizer: '", vocab_json,
                "' is not a JSON object mapping tokens to ids");
    std::vector<std::string> tokens;
    std::vector<std::string> special;
    for (auto it = j.begin(); it != j.end(); ++it) {
      GENAI_CHECK(it.value().is_number_integer(), "BPETokenizer: '", vocab_json, "': the id of token '", it.key(),
                  "' is not an integer");
      const int64_t id = it.value().get<int64_t>();
      GENAI_CHECK(id >= 0, "BPETokenizer: '", vocab_json, "': token '", it.key(), "' has a negative id ", id);
      if (id >= static_cast<int64_t>(j.size())) {  // some id below it has no token: name the first
        std::vector<char> seen(j.size(), 0);
        for (auto jt = j.begin(); jt != j.end(); ++jt)
          if (jt.value().is_number_integer() && jt.value().get<int64_t>() >= 0 &&
              jt.value().get<int64_t>() < static_cast<int64_t>(j.size()))
            seen[static_cast<size_t>(jt.value().get<int64_t>())] = 1;
        const size_t missing = static_cast<size_t>(std::find(seen.begin(), seen.end(), 0) - seen.begin());
        GENAI_FAIL("BPETokenizer: '", vocab_json, "': token '", it.key(), "' has id ", id, " but there are only ",
                   j.size(), " tokens: no token has id ", missing, " (ids must be 0 .. vocab_size - 1)");
      }
      if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(static_cast<size_t>(id) + 1);
      std::optional<std::string> raw = gpt2_printable_to_bytes(it.key());
      const std::string& k = it.key();
      if (!raw || (k.size() >= 5 && k.compare(0, 2, "<|") == 0 && k.compare(k.size() - 2, 2, "|>") == 0)) {
        special.push_back(it.key());  // added tokens such as <|endoftext|>: matched as text
        raw = it.key();
      }
      GENAI_CHECK(tokens[static_cast<size_t>(id)].empty(), "BPETokenizer: '", vocab_json, "': id ", id,
                  " is used twice");
      tokens[static_cast<size_t>(id)] = *raw;
    }
    std::string_view m = merges_text;
    std::vector<std::pair<std::string, std::string>> merges;
    size_t line_no = 0;
    for (size_t p = 0; p < m.size();) {
      size_t e = m.find('\n', p);
      if (e == std::string_view::npos) e = m.size();
      std::string_view line = m.substr(p, e - p);
      p = e + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
      const size_t sp = line.find(' ');
      GENAI_CHECK(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                      line.find(' ', sp + 1) == std::string_view::npos,
                  "BPETokenizer: '", merges_txt, "' line ", line_no, " is not a pair \"left right\": '",
                  std::string(line), "'");
      auto a = gpt2_printable_to_bytes(line.substr(0, sp)), b = gpt2_printable_to_bytes(line.substr(sp + 1));
      GENAI_CHECK(a && b, "BPETokenizer: '", merges_txt, "' line ", line_no,
                  " has a character outside GPT-2's byte encoding: '", std::string(line), "'");
      merges.emplace_back(std::move(*a), std::move(*b));
    }
    BPETokenizer t;
    t.build(tokens, merges, special, "'" + vocab_json + "'");
    return t;
  }

  /// vocab.json and merges.txt of a folder (a Hugging Face GPT-2 download).
  static BPETokenizer from_dir(const std::string& dir) {
    const std::filesystem::path d(dir);
    GENAI_CHECK(std::filesystem::exists(d / "vocab.json") && std::filesystem::exists(d / "merges.txt"),
                "BPETokenizer::from_dir: '", dir, "' needs vocab.json and merges.txt (the GPT-2 tokenizer files)");
    return from_files((d / "vocab.json").string(), (d / "merges.txt").string());
  }
  static bool available(const std::string& dir) {
    const std::filesystem::path d(dir);
    return std::filesystem::exists(d / "vocab.json") && std::filesystem::exists(d / "merges.txt");
  }

  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }
  /// The raw bytes of token `id`.
  const std::string& token_bytes(int64_t id) const {
    GENAI_CHECK(id >= 0 && id < vocab_size(), "BPETokenizer: id ", id, " is outside the vocabulary [0, ",
                vocab_size(), ")");
    return tokens_[static_cast<size_t>(id)];
  }
  /// The id of a token given as raw bytes (e.g. "<|endoftext|>"), if any.
  std::optional<int64_t> token_to_id(std::string_view bytes) const {
    auto it = sym_index_.find(std::string(bytes));
    if (it == sym_index_.end() || sym_vocab_[static_cast<size_t>(it->second)] < 0) return std::nullopt;
    return sym_vocab_[static_cast<size_t>(it->second)];
  }
  /// "<|endoftext|>"'s id, or -1.
  int64_t eot_id() const { return token_to_id("<|endoftext|>").value_or(-1); }
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }

  /// Text (UTF-8, or any bytes) -> ids. With allow_special, the special tokens'
  /// text becomes their ids; otherwise it is encoded as ordinary text.
  std::vector<int64_t> encode(std::string_view text, bool allow_special = false) const {
    std::vector<int64_t> ids;
    if (!allow_special || special_.empty()) {
      encode_ordinary(text, ids);
      return ids;
    }
    size_t p = 0;
    while (p < text.size()) {
      size_t best = std::string_view::npos, best_len = 0;
      int64_t best_id = -1;
      for (const auto& [s, id] : special_) {
        const size_t f = text.find(s, p);
        if (f != std::string_view::npos && (f < best || (f == best && s.size() > best_len))) {
          best = f;
          best_len = s.size();
          best_id = id;
        }
      }
      if (best == std::string_view::npos) {
        encode_ordinary(text.substr(p), ids);
        break;
      }
      encode_ordinary(text.substr(p, best - p), ids);
      ids.push_back(best_id);
      p = best + best_len;
    }
    return ids;
  }

  /// ids -> the concatenated bytes of their tokens.
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string out;
    for (int64_t id : ids) out += token_bytes(id);
    return out;
  }

  /// Writes vocab.json and merges.txt (GPT-2's format) to `dir`.
  void save(const std::string& dir) const {
    std::filesystem::create_directories(dir);
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const bool sp = std::any_of(special_.begin(), special_.end(),
                                  [&](const auto& s) { return s.second == static_cast<int64_t>(i); });
      j[sp ? tokens_[i] : gpt2_bytes_to_printable(tokens_[i])] = i;
    }
    const std::string vj = j.dump() + "\n";
    std::string mt = "#version: 0.2\n";
    for (const auto& [a, b] : merges_) mt += gpt2_bytes_to_printable(a) + " " + gpt2_bytes_to_printable(b) + "\n";
    const std::filesystem::path d(dir);
    io::write_file_atomic((d / "vocab.json").string(), vj.data(), vj.size());
    io::write_file_atomic((d / "merges.txt").string(), mt.data(), mt.size());
  }

  /// Learns a byte-level BPE of `vocab_size` tokens (256 bytes + merges, plus
  /// "<|endoftext|>") from `text`: the most frequent adjacent pair within GPT-2
  /// pre-tokens is merged at each step, ties to the smallest (id, id).
  static BPETokenizer train(std::string_view text, int64_t vocab_size) {
    GENAI_CHECK(vocab_size >= 257, "BPETokenizer::train: vocab_size must be at least 257 (256 bytes and "
                "<|endoftext|>), got ", vocab_size);
    std::unordered_map<std::string_view, int64_t> counts;
    for (std::string_view p : gpt2_pretokenize(text)) ++counts[p];
    std::vector<std::vector<int32_t>> words;
    std::vector<int64_t> freq;
    std::vector<std::string_view> keys;
    for (auto& [w, c] : counts) keys.push_back(w);
    std::sort(keys.begin(), keys.end());  // deterministic order
    for (std::string_view w : keys) {
      std::vector<int32_t> s;
      for (unsigned char b : w) s.push_back(b);
      words.push_back(std::move(s));
      freq.push_back(counts[w]);
    }
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
    std::unordered_map<std::string, int32_t> index;
    for (int b = 0; b < 256; ++b) index[tokens[static_cast<size_t>(b)]] = b;
    std::vector<std::pair<std::string, std::string>> merges;
    const int64_t target = vocab_size - 1;  // room for <|endoftext|>
    while (static_cast<int64_t>(tokens.size()) < target) {
      std::unordered_map<uint64_t, int64_t> pc;
      for (size_t w = 0; w < words.size(); ++w)
        for (size_t i = 0; i + 1 < words[w].size(); ++i) pc[pair_key(words[w][i], words[w][i + 1])] += freq[w];
      if (pc.empty()) break;
      uint64_t best = 0;
      int64_t best_c = -1;
      for (auto& [k, c] : pc)
        if (c > best_c || (c == best_c && k < best)) {
          best = k;
          best_c = c;
        }
      const int32_t a = static_cast<int32_t>(best >> 32), b = static_cast<int32_t>(best & 0xFFFFFFFFu);
      std::string merged = tokens[static_cast<size_t>(a)] + tokens[static_cast<size_t>(b)];
      auto it = index.find(merged);
      int32_t id;
      if (it == index.end()) {
        id = static_cast<int32_t>(tokens.size());
        index.emplace(merged, id);
        tokens.push_back(merged);
      } else {
        id = it->second;
      }
      merges.emplace_back(tokens[static_cast<size_t>(a)], tokens[static_cast<size_t>(b)]);
      for (auto& s : words) {
        size_t o = 0;
        for (size_t i = 0; i < s.size(); ++i) {
          if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
            s[o++] = id;
            ++i;
          } else {
            s[o++] = s[i];
          }
        }
        s.resize(o);
      }
    }
    tokens.push_back("<|endoftext|>");
    return BPETokenizer(tokens, merges);
  }

 private:
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  int32_t intern(const std::string& s) {
    auto it = sym_index_.find(s);
    if (it != sym_index_.end()) return it->second;
    const auto id = static_cast<int32_t>(sym_str_.size());
    sym_index_.emplace(s, id);
    sym_str_.push_back(s);
    sym_vocab_.push_back(-1);
    return id;
  }

  void build(const std::vector<std::string>& tokens, const std::vector<std::pair<std::string, std::string>>& merges,
             std::vector<std::string> special, const std::string& what) {
    tokens_ = tokens;
    merges_ = merges;
    for (size_t i = 0; i < tokens.size(); ++i) {
      GENAI_CHECK(!tokens[i].empty(), "BPETokenizer: ", what, ": no token has id ", i,
                  " (ids must be 0 .. vocab_size - 1)");
      const int32_t s = intern(tokens[i]);
      GENAI_CHECK(sym_vocab_[static_cast<size_t>(s)] < 0, "BPETokenizer: ", what, ": the token '",
                  gpt2_bytes_to_printable(tokens[i]), "' appears twice");
      sym_vocab_[static_cast<size_t>(s)] = static_cast<int64_t>(i);
    }
    for (int b = 0; b < 256; ++b) byte_sym_[static_cast<size_t>(b)] = intern(std::string(1, static_cast<char>(b)));
    for (size_t r = 0; r < merges.size(); ++r) {
      const int32_t a = intern(merges[r].first), b = intern(merges[r].second);
      const int32_t m = intern(merges[r].first + merges[r].second);
      ranks_[pair_key(a, b)] = {static_cast<int32_t>(r), m};  // a repeated pair takes its last rank, as encoder.py's dict
    }
    for (const auto& s : special)
      if (auto id = token_to_id(s)) special_.emplace_back(s, *id);
  }

  /// OpenAI's bpe(): merges the lowest-ranked pair everywhere until none is left.
  void bpe(std::string_view piece, std::vector<int64_t>& ids) const {
    std::vector<int32_t> w(piece.size()), tmp;
    for (size_t i = 0; i < piece.size(); ++i) w[i] = byte_sym_[static_cast<unsigned char>(piece[i])];
    while (w.size() > 1) {
      int32_t best_rank = std::numeric_limits<int32_t>::max(), a = -1, b = -1, m = -1;
      for (size_t i = 0; i + 1 < w.size(); ++i) {
        auto it = ranks_.find(pair_key(w[i], w[i + 1]));
        if (it != ranks_.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          a = w[i];
          b = w[i + 1];
          m = it->second.second;
        }
      }
      if (m < 0) break;
      tmp.clear();
      for (size_t i = 0; i < w.size(); ++i) {
        if (w[i] == a && i + 1 < w.size() && w[i + 1] == b) {
          tmp.push_back(m);
          ++i;
        } else {
          tmp.push_back(w[i]);
        }
      }
      w.swap(tmp);
    }
    for (int32_t s : w) {
      const int64_t id = sym_vocab_[static_cast<size_t>(s)];
      GENAI_CHECK(id >= 0, "BPETokenizer: the token '", gpt2_bytes_to_printable(sym_str_[static_cast<size_t>(s)]),
                  "' produced by the merges is not in the vocabulary; hint: vocab.json and merges.txt do not belong "
                  "together");
      ids.push_back(id);
    }
  }

  void encode_ordinary(std::string_view text, std::vector<int64_t>& ids) const {
    for (std::string_view piece : gpt2_pretokenize(text)) {
      Cache& c = *cache_;
      {
        std::lock_guard<std::mutex> lk(c.mu);
        auto it = c.map.find(std::string(piece));
        if (it != c.map.end()) {
          ids.insert(ids.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      const size_t start = ids.size();
      bpe(piece, ids);
      std::lock_guard<std::mutex> lk(c.mu);
      if (c.map.size() > 100000) c.map.clear();
      c.map.emplace(std::string(piece), std::vector<int64_t>(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end()));
    }
  }

  std::vector<std::string> tokens_;                                  // id -> raw bytes
  std::vector<std::pair<std::string, std::string>> merges_;          // rank order, raw bytes
  std::unordered_map<std::string, int32_t> sym_index_;               // symbol bytes -> symbol
  std::vector<std::string> sym_str_;                                 // symbol -> bytes
  std::vector<int64_t> sym_vocab_;                                   // symbol -> vocab id or -1
  std::array<int32_t, 256> byte_sym_{};                              // byte -> symbol
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> ranks_;  // (sym, sym) -> (rank, merged sym)
  std::vector<std::pair<std::string, int64_t>> special_;             // special token text -> id
  struct Cache {  // pre-token -> ids (shared by copies: they encode alike)
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int64_t>> map;
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

/// Turns a stream of token bytes into printable UTF-8 chunks: holds back the bytes
/// of a character that the next token will complete.
class Utf8StreamBuffer {
 public:
  /// Appends bytes and returns what can be printed now.
  std::string push(std::string_view bytes) {
    pending_ += bytes;
    const size_t k = utf8_complete_prefix(pending_);
    std::string out = pending_.substr(0, k);
    pending_.erase(0, k);
    return out;
  }
  /// The bytes held back (at the end of a stream).
  std::string flush() {
    std::string out;
    out.swap(pending_);
    return out;
  }

 private:
  std::string pending_;
};

}  // namespace text
}  // namespace genai
