// genai/data/char_dataset.hpp: a character-level language-modelling dataset over
// a UTF-8 text file, as nanoGPT's shakespeare_char (Karpathy): the vocabulary is
// the sorted set of the file's characters (Unicode code points, see
// char_tokenizer.hpp), the first (1 - val_fraction) of the characters
// (int(n * 0.9) by default) are the training split, the rest the validation split.
//
// Example i is the window of block_size + 1 characters starting at i:
// input = ids[i, i + T), target = ids[i + 1, i + T + 1) (next-character
// prediction), both int64 (T,), views of the split's ids. A DataLoader with
// shuffle draws random windows without replacement; sample_batch draws them
// with replacement, as nanoGPT's get_batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/rng.hpp"
#include "genai/data/char_tokenizer.hpp"
#include "genai/data/dataset.hpp"
#include "genai/io/file.hpp"
#include "genai/ops/index.hpp"

namespace genai {
namespace data {

enum class Split { Train, Val };

class CharDataset : public Dataset {
 public:
  /// Reads `path` (UTF-8) and keeps `split`; windows of block_size + 1 characters.
  CharDataset(const std::string& path, int64_t block_size, Split split = Split::Train, double val_fraction = 0.1)
      : block_size_(block_size) {
    GENAI_CHECK(block_size >= 1, "CharDataset: block_size must be >= 1, got ", block_size);
    GENAI_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "CharDataset: val_fraction must be in [0, 1), got ",
                val_fraction);
    std::vector<unsigned char> bytes = io::read_file(path, "CharDataset");
    std::u32string text = utf8_decode(std::string(bytes.begin(), bytes.end()), "'" + path + "'");
    tok_ = CharTokenizer(text);
    const int64_t n = static_cast<int64_t>(text.size());
    const int64_t n_train = static_cast<int64_t>(static_cast<double>(n) * (1.0 - val_fraction));
    const int64_t begin = split == Split::Train ? 0 : n_train, end = split == Split::Train ? n_train : n;
    GENAI_CHECK(end - begin >= block_size + 1, "CharDataset: the ", split == Split::Train ? "training" : "validation",
                " split of '", path, "' has ", end - begin, " characters, fewer than block_size + 1 = ",
                block_size + 1, "; hint: use a longer text or a smaller block_size");
    std::vector<int64_t> ids = tok_.encode(text.substr(static_cast<size_t>(begin), static_cast<size_t>(end - begin)));
    data_ = from_vector(ids, {end - begin}, kInt64);
  }

  /// Number of windows: len(split) - block_size.
  int64_t size() const override { return data_.size(0) - block_size_; }

  /// input ids[i, i + T), target ids[i + 1, i + T + 1); int64 (T,).
  Example get(int64_t index) const override {
    GENAI_CHECK(index >= 0 && index < size(), "CharDataset: index ", index, " out of range for ", size(),
                " windows");
    return {data_.narrow(0, index, block_size_), data_.narrow(0, index + 1, block_size_)};
  }

  /// nanoGPT's get_batch: `batch_size` windows at uniformly random offsets (with
  /// replacement); input and target int64 (B, T).
  Example sample_batch(int64_t batch_size, Generator& gen) const {
    GENAI_CHECK(batch_size >= 1, "CharDataset::sample_batch: batch_size must be >= 1, got ", batch_size);
    TensorList xs, ys;
    for (int64_t b = 0; b < batch_size; ++b) {
      Example e = get(static_cast<int64_t>(gen.below(static_cast<uint64_t>(size()))));
      xs.push_back(e.input);
      ys.push_back(e.target);
    }
    return {stack(xs, 0), stack(ys, 0)};
  }

  /// UTF-8 text -> ids, and back (the tokenizer's encode / decode).
  std::vector<int64_t> encode(const std::string& utf8) const { return tok_.encode(utf8); }
  std::string decode(const std::vector<int64_t>& ids) const { return tok_.decode(ids); }
  std::string decode(const Tensor& ids) const { return tok_.decode(ids); }

  const CharTokenizer& tokenizer() const { return tok_; }
  int64_t vocab_size() const { return tok_.vocab_size(); }
  int64_t block_size() const { return block_size_; }
  /// The split's character ids, int64 (N,).
  const Tensor& ids() const { return data_; }

 private:
  CharTokenizer tok_;
  Tensor data_;  // (N,) int64 ids of the split
  int64_t block_size_;
};

}  // namespace data
}  // namespace genai
