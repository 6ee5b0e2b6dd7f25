// genai/data/dataset.hpp: the map-style dataset interface (as torch.utils.data.Dataset)
// and TensorDataset (as torch.utils.data.TensorDataset, with one input and one
// target tensor).
//
// A Dataset has size() examples; get(i) returns one Example {input, target}
// (target may be undefined for unlabelled data). get() is const and must be safe
// to call from a background thread (DataLoader's prefetch calls it there while
// the caller trains): it must not modify shared state.
#pragma once

#include <cstdint>

#include "genai/core/tensor.hpp"
#include "genai/ops/view.hpp"

namespace genai {
namespace data {

/// One example, or (after DataLoader's collation) one batch.
struct Example {
  Tensor input;   // e.g. (C, H, W) for an image; (B, C, H, W) in a batch
  Tensor target;  // e.g. () int64 class; (B,) in a batch; undefined when unlabelled
};

/// A map-style dataset: examples 0 .. size()-1.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// Example `index` in [0, size()); thread-safe (see the header comment).
  virtual Example get(int64_t index) const = 0;
};

/// Examples are the slices along dimension 0 of `inputs` and `targets` (views, no copy).
class TensorDataset : public Dataset {
 public:
  /// `inputs` (N, ...) and optionally `targets` (N, ...), with the same N.
  explicit TensorDataset(Tensor inputs, Tensor targets = Tensor())
      : inputs_(std::move(inputs)), targets_(std::move(targets)) {
    GENAI_CHECK(inputs_.defined() && inputs_.dim() >= 1,
                "TensorDataset: inputs must be a tensor with at least one dimension (N, ...)");
    GENAI_CHECK(!targets_.defined() || (targets_.dim() >= 1 && targets_.size(0) == inputs_.size(0)),
                "TensorDataset: inputs ", shape_str(inputs_.shape()), " and targets ",
                targets_.defined() ? shape_str(targets_.shape()) : std::string("()"),
                " must have the same size in dimension 0");
    inputs_ = inputs_.detach();
    if (targets_.defined()) targets_ = targets_.detach();
  }
  int64_t size() const override { return inputs_.size(0); }
  Example get(int64_t index) const override {
    GENAI_CHECK(index >= 0 && index < size(), "TensorDataset: index ", index, " out of range for ", size(),
                " examples");
    return {inputs_.select(0, index), targets_.defined() ? targets_.select(0, index) : Tensor()};
  }
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_;   // (N, ...)
  Tensor targets_;  // (N, ...) or undefined
};

}  // namespace data
}  // namespace genai
