// genai/text/wordpiece.hpp: BERT's WordPiece tokenizer (Wu et al. 2016; Devlin et
// al. 2019), as Hugging Face's BertTokenizer (tokenization_bert.py: BasicTokenizer +
// WordpieceTokenizer), reading the vocab.txt of a BERT folder, and a small vocabulary
// builder.
//
//   auto tok = text::WordPieceTokenizer::from_dir("bert-base-uncased/");  // vocab.txt
//   std::vector<int64_t> ids = tok.encode("Hello, world!");  // [CLS] hello , world ! [SEP]
//   auto pair = tok.encode_pair("the cat", "sat");           // ids + token_type_ids
//   std::string s = tok.decode(ids, true);                   // "hello , world !"
//
// BasicTokenizer: drop NUL, U+FFFD and control characters (category C*, except \t \n
// \r), whitespace (\t \n \r, Zs) -> ' '; spaces around CJK ideographs; split on
// whitespace; with do_lower_case: str.lower() then accent stripping (NFD, drop the
// non-spacing marks Mn); split off every punctuation character (ASCII symbols
// !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and category P*) as its own token.
// WordpieceTokenizer: greedy longest-match-first over each word's code points,
// continuations prefixed "##"; a word longer than 100 code points, or with a piece
// no vocabulary entry matches, becomes [UNK]. The special tokens present in the
// vocabulary ([PAD] [UNK] [CLS] [SEP] [MASK]) are kept whole when they occur in the
// text, case-sensitively (HF's added-token split), so "the [MASK] sat" works.
//
// The Unicode data (wordpiece_tables.hpp) is generated from Python's unicodedata
// (Unicode 14.0, what HF runs on Python 3.11): lower-case and NFD + strip maps over
// every code point (Hangul syllables decomposed arithmetically). Differences from HF:
// no NFC normalization of the input (transformers >= 4.3x applies it first: a
// decomposed "e\u0301" is the same after accent stripping, but a cased model sees the
// two characters), str.lower()'s context rules (final sigma) are not applied, decode()
// does not "clean up tokenization spaces" ("hello , world" stays), invalid UTF-8 bytes
// are dropped.
//
// Building (WordPieceTokenizer::build): the special tokens, every character of the
// text (c and "##c"), then the most frequent basic tokens (whole words, at least 2
// occurrences) up to vocab_size: a valid WordPiece vocabulary (character-level when
// vocab_size leaves no room for words).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "genai/config.hpp"
#include "genai/io/file.hpp"
#include "genai/text/bpe.hpp"  // UTF-8 helpers and range search
#include "genai/text/wordpiece_tables.hpp"

namespace genai {
namespace text {

// ---- character classes (BasicTokenizer's) ------------------------------------------------

namespace detail {
template <size_t N>
inline const unicode::CodeMap* find_map(const unicode::CodeMap (&m)[N], uint32_t cp) {
  size_t lo = 0, hi = N;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (m[mid].from < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < N && m[lo].from == cp ? &m[lo] : nullptr;
}
}  // namespace detail

/// BERT's _is_whitespace: `\t`, `\n`, `\r`, space, or category Zs.
inline bool bert_is_whitespace(uint32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  return cp >= 0x80 && detail::in_ranges(unicode::kZsRanges, cp);
}
/// BERT's _is_control: category C* except `\t`, `\n`, `\r`.
inline bool bert_is_control(uint32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return detail::in_ranges(unicode::kControlRanges, cp);
}
/// BERT's _is_punctuation: the ASCII symbols, or category P*.
inline bool bert_is_punctuation(uint32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return cp >= 0x80 && detail::in_ranges(unicode::kPunctRanges, cp);
}
/// BERT's _is_chinese_char (the CJK Unified Ideographs blocks).
inline bool bert_is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/// Appends str.lower() of cp.
inline void bert_lower(std::u32string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  if (const unicode::CodeMap* m = detail::find_map(unicode::kLowerMap, cp)) {
    for (uint32_t c : m->to)
      if (c) out.push_back(c);
    return;
  }
  out.push_back(cp);
}
/// Appends cp's NFD decomposition without non-spacing marks (nothing for a mark).
inline void bert_strip_accent(std::u32string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(cp);
    return;
  }
  if (cp >= 0xAC00 && cp <= 0xD7A3) {  // Hangul syllable -> L V (T) jamo
    const uint32_t s = cp - 0xAC00;
    out.push_back(0x1100 + s / 588);
    out.push_back(0x1161 + (s % 588) / 28);
    if (s % 28) out.push_back(0x11A7 + s % 28);
    return;
  }
  if (const unicode::CodeMap* m = detail::find_map(unicode::kStripMap, cp)) {
    for (uint32_t c : m->to)
      if (c) out.push_back(c);
    return;
  }
  if (detail::in_ranges(unicode::kMnRanges, cp)) return;
  out.push_back(cp);
}

// ---- tokenizer ---------------------------------------------------------------------------

struct WordPieceOptions {
  bool do_lower_case = true;
  std::optional<bool> strip_accents = {};    // default: do_lower_case (HF)
  bool tokenize_chinese_chars = true;
  int64_t max_input_chars_per_word = 100;
  std::string unk_token = "[UNK]";
};

/// ids and segment ids of one or two sequences.
struct WordPieceEncoding {
  std::vector<int64_t> ids, token_type_ids;
};

class WordPieceTokenizer {
 public:
  WordPieceTokenizer() = default;
  /// `vocab`: the tokens, id = position (vocab.txt's lines).
  explicit WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions o = {})
      : vocab_(std::move(vocab)), opt_(std::move(o)) {
    for (size_t i = 0; i < vocab_.size(); ++i) index_.emplace(vocab_[i], static_cast<int64_t>(i));
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
      if (index_.count(s)) specials_.emplace_back(s);
    GENAI_CHECK(index_.count(opt_.unk_token), "WordPieceTokenizer: the vocabulary has no unknown token '", opt_.unk_token,
                "'");
  }

  /// Reads a vocab.txt (one token per line, UTF-8; a trailing carriage return is removed).
  static WordPieceTokenizer from_file(const std::string& path, WordPieceOptions o = {}) {
    GENAI_CHECK(std::filesystem::exists(path), "WordPieceTokenizer: '", path, "' not found; hint: BERT folders hold vocab.txt");
    std::vector<unsigned char> b = io::read_file(path, "WordPieceTokenizer");
    return from_bytes(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), std::move(o));
  }
  /// From the contents of a vocab.txt held in memory (one token per line, as from_file).
  static WordPieceTokenizer from_bytes(std::string_view b, WordPieceOptions o = {}) {
    std::vector<std::string> v;
    std::string cur;
    for (char ch : b) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '\n') {
        if (!cur.empty() && cur.back() == '\r') cur.pop_back();
        v.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(static_cast<char>(c));
      }
    }
    if (!cur.empty()) v.push_back(cur);
    return WordPieceTokenizer(std::move(v), std::move(o));
  }
  /// `dir`/vocab.txt, with do_lower_case / strip_accents / tokenize_chinese_chars from
  /// `dir`/tokenizer_config.json when present (default: lower case, as bert-base-uncased).
  static WordPieceTokenizer from_dir(const std::string& dir) {
    WordPieceOptions o;
    const std::string cfg = (std::filesystem::path(dir) / "tokenizer_config.json").string();
    if (std::filesystem::exists(cfg)) {
      std::vector<unsigned char> b = io::read_file(cfg, "WordPieceTokenizer");
      nlohmann::json j = nlohmann::json::parse(b.begin(), b.end(), nullptr, false);
      GENAI_CHECK(!j.is_discarded() && j.is_object(), "WordPieceTokenizer: '", cfg, "' is not a JSON object");
      if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean()) o.do_lower_case = j["do_lower_case"].get<bool>();
      if (j.contains("strip_accents") && j["strip_accents"].is_boolean()) o.strip_accents = j["strip_accents"].get<bool>();
      if (j.contains("tokenize_chinese_chars") && j["tokenize_chinese_chars"].is_boolean())
        o.tokenize_chinese_chars = j["tokenize_chinese_chars"].get<bool>();
    }
    return from_file((std::filesystem::path(dir) / "vocab.txt").string(), o);
  }
  static bool available(const std::string& dir) { return std::filesystem::exists(std::filesystem::path(dir) / "vocab.txt"); }

  /// Writes `dir`/vocab.txt and `dir`/tokenizer_config.json.
  void save(const std::string& dir) const {
    std::filesystem::create_directories(dir);
    std::string s;
    for (const auto& t : vocab_) s += t + "\n";
    io::write_file_atomic((std::filesystem::path(dir) / "vocab.txt").string(), s.data(), s.size());
    nlohmann::json j{{"do_lower_case", opt_.do_lower_case}, {"tokenize_chinese_chars", opt_.tokenize_chinese_chars},
                     {"tokenizer_class", "BertTokenizer"}, {"model_max_length", 512}};
    if (opt_.strip_accents) j["strip_accents"] = *opt_.strip_accents;
    const std::string js = j.dump(2) + "\n";
    io::write_file_atomic((std::filesystem::path(dir) / "tokenizer_config.json").string(), js.data(), js.size());
  }

  /// The basic tokens (words and punctuation) of `text`, before WordPiece.
  std::vector<std::string> basic_tokenize(std::string_view text) const {
    std::u32string cps;  // cleaned, CJK spaced
    for (size_t i = 0; i < text.size();) {
      auto [cp, len] = utf8_next(text, i);
      i += static_cast<size_t>(len);
      if (cp == kInvalidCodePoint || cp == 0 || cp == 0xFFFD || bert_is_control(cp)) continue;
      if (bert_is_whitespace(cp)) {
        cps.push_back(' ');
      } else if (opt_.tokenize_chinese_chars && bert_is_cjk(cp)) {
        cps.push_back(' ');
        cps.push_back(cp);
        cps.push_back(' ');
      } else {
        cps.push_back(cp);
      }
    }
    const bool strip = opt_.strip_accents.value_or(opt_.do_lower_case);
    std::vector<std::string> out;
    std::u32string word, tmp;
    auto flush_piece = [&](std::u32string& piece) {
      if (piece.empty()) return;
      std::string s;
      for (uint32_t c : piece) utf8_put(s, c);
      out.push_back(std::move(s));
      piece.clear();
    };
    auto finish_word = [&]() {
      if (word.empty()) return;
      if (opt_.do_lower_case) {
        tmp.clear();
        for (uint32_t c : word) bert_lower(tmp, c);
        word.swap(tmp);
      }
      if (strip) {
        tmp.clear();
        for (uint32_t c : word) bert_strip_accent(tmp, c);
        word.swap(tmp);
      }
      std::u32string piece;
      for (uint32_t c : word) {
        if (bert_is_punctuation(c)) {
          flush_piece(piece);
          piece.push_back(c);
          flush_piece(piece);
        } else {
          piece.push_back(c);
        }
      }
      flush_piece(piece);
      word.clear();
    };
    for (uint32_t c : cps) {
      if (c == ' ' || c == 0x2028 || c == 0x2029) {  // str.split()'s separators left after cleaning
        finish_word();
      } else {
        word.push_back(c);
      }
    }
    finish_word();
    return out;
  }

  /// WordPiece of one basic token: greedy longest match, "##" continuations, or [UNK].
  std::vector<std::string> wordpiece(const std::string& word) const {
    std::vector<std::pair<size_t, size_t>> chars;  // byte offset, length of each code point
    for (size_t i = 0; i < word.size();) {
      auto [cp, len] = utf8_next(word, i);
      chars.emplace_back(i, static_cast<size_t>(len));
      i += static_cast<size_t>(len);
    }
    if (static_cast<int64_t>(chars.size()) > opt_.max_input_chars_per_word) return {opt_.unk_token};
    std::vector<std::string> out;
    size_t start = 0;
    std::string sub;
    while (start < chars.size()) {
      size_t end = chars.size();
      bool found = false;
      while (start < end) {
        const size_t b0 = chars[start].first, b1 = chars[end - 1].first + chars[end - 1].second;
        sub.assign(start > 0 ? "##" : "");
        sub.append(word, b0, b1 - b0);
        if (index_.count(sub)) {
          found = true;
          break;
        }
        --end;
      }
      if (!found) return {opt_.unk_token};
      out.push_back(sub);
      start = end;
    }
    return out;
  }

  /// Tokens of `text` (no [CLS] / [SEP] added); special tokens in the text are kept.
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> out;
    size_t i = 0, seg = 0;
    auto run = [&](std::string_view part) {
      for (const auto& w : basic_tokenize(part))
        for (auto& p : wordpiece(w)) out.push_back(std::move(p));
    };
    while (i < text.size()) {
      const std::string* hit = nullptr;
      for (const auto& s : specials_)
        if (text.compare(i, s.size(), s) == 0) {
          hit = &s;
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      run(text.substr(seg, i - seg));
      out.push_back(*hit);
      i += hit->size();
      seg = i;
    }
    run(text.substr(seg));
    return out;
  }

  /// Ids of tokenize(text) (no [CLS] / [SEP]).
  std::vector<int64_t> tokenize_ids(std::string_view text) const {
    std::vector<int64_t> ids;
    for (const auto& t : tokenize(text)) ids.push_back(index_.at(t));
    return ids;
  }
  /// [CLS] text [SEP].
  std::vector<int64_t> encode(std::string_view text) const {
    std::vector<int64_t> ids{cls_id()};
    for (int64_t t : tokenize_ids(text)) ids.push_back(t);
    ids.push_back(sep_id());
    return ids;
  }
  /// [CLS] a [SEP] b [SEP], token types 0 up to the first [SEP] inclusive, then 1.
  WordPieceEncoding encode_pair(std::string_view a, std::string_view b) const {
    WordPieceEncoding e;
    e.ids = encode(a);
    e.token_type_ids.assign(e.ids.size(), 0);
    for (int64_t t : tokenize_ids(b)) e.ids.push_back(t);
    e.ids.push_back(sep_id());
    e.token_type_ids.resize(e.ids.size(), 1);
    return e;
  }
  /// Tokens joined by spaces, "##" continuations glued to the previous token (HF's
  /// convert_tokens_to_string); special tokens left out when skip_special_tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const {
    std::string s;
    for (int64_t id : ids) {
      const std::string& t = id_to_token(id);
      if (skip_special_tokens && std::find(specials_.begin(), specials_.end(), t) != specials_.end()) continue;
      if (t.rfind("##", 0) == 0 && !s.empty()) {
        s += t.substr(2);
      } else {
        if (!s.empty()) s += ' ';
        s += t;
      }
    }
    return s;
  }

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  /// The id of `token`, or -1.
  int64_t token_to_id(const std::string& token) const {
    auto it = index_.find(token);
    return it == index_.end() ? -1 : it->second;
  }
  const std::string& id_to_token(int64_t id) const {
    GENAI_CHECK(id >= 0 && id < vocab_size(), "WordPieceTokenizer: id ", id, " is outside the vocabulary of ", vocab_size());
    return vocab_[static_cast<size_t>(id)];
  }
  int64_t special_id(const char* name) const {
    const int64_t id = token_to_id(name);
    GENAI_CHECK(id >= 0, "WordPieceTokenizer: the vocabulary has no ", name, " token");
    return id;
  }
  int64_t cls_id() const { return special_id("[CLS]"); }
  int64_t sep_id() const { return special_id("[SEP]"); }
  int64_t pad_id() const { return special_id("[PAD]"); }
  int64_t mask_id() const { return special_id("[MASK]"); }
  int64_t unk_id() const { return token_to_id(opt_.unk_token); }
  /// True for [PAD] [UNK] [CLS] [SEP] [MASK] (the specials of the vocabulary).
  bool is_special(int64_t id) const {
    const std::string& t = id_to_token(id);
    return std::find(specials_.begin(), specials_.end(), t) != specials_.end();
  }
  const std::vector<std::string>& vocab() const { return vocab_; }
  const WordPieceOptions& options() const { return opt_; }

  /// A vocabulary for `text`: [PAD] [UNK] [CLS] [SEP] [MASK], every character c of the
  /// basic tokens and "##c", then the most frequent basic tokens with >= 2 occurrences
  /// (ties: alphabetical) until vocab_size entries.
  static WordPieceTokenizer build(std::string_view text, int64_t vocab_size, WordPieceOptions o = {}) {
    WordPieceTokenizer basic(std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, o);
    std::map<std::string, int64_t> words;
    std::map<uint32_t, int64_t> chars;
    for (const auto& w : basic.basic_tokenize(text)) {
      ++words[w];
      for (size_t i = 0; i < w.size();) {
        auto [cp, len] = utf8_next(w, i);
        i += static_cast<size_t>(len);
        ++chars[cp];
      }
    }
    std::vector<std::string> v = basic.vocab_;
    std::vector<std::string> cont;
    for (auto& [cp, n] : chars) {
      std::string s;
      utf8_put(s, cp);
      v.push_back(s);
      cont.push_back("##" + s);
    }
    v.insert(v.end(), cont.begin(), cont.end());
    std::vector<std::pair<int64_t, std::string>> ranked;
    for (auto& [w, n] : words)
      if (n >= 2 && w.size() > 1) ranked.emplace_back(-n, w);
    std::sort(ranked.begin(), ranked.end());
    std::unordered_map<std::string, int> seen;
    for (const auto& t : v) seen[t] = 1;
    for (const auto& [n, w] : ranked) {
      if (static_cast<int64_t>(v.size()) >= vocab_size) break;
      if (!seen.count(w)) v.push_back(w);
    }
    return WordPieceTokenizer(std::move(v), std::move(o));
  }

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> specials_;
  WordPieceOptions opt_;
};

}  // namespace text
}  // namespace genai
