// genai/data/dataloader.hpp: batches of a Dataset, as torch.utils.data.DataLoader
// (map-style dataset, default collation, single process).
//
//   data::DataLoader loader(dataset, {.batch_size = 64, .shuffle = true, .seed = 1});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const data::Example& batch : loader) {  // batch.input (B, ...), batch.target (B, ...)
//       ...
//     }
//
// Each range-for (each begin()) is one epoch. With `shuffle`, every epoch visits
// the examples in a new order, a randperm drawn from the loader's own Generator
// (seeded by `seed`): the sequence of epochs is reproducible, and saving
// generator()'s state in a checkpoint resumes it. Collation stacks the examples'
// inputs and targets along a new dimension 0 (as torch's default_collate for
// tensors); the last batch is smaller unless `drop_last`.
//
// With `prefetch`, a background thread prepares the next batch (calls
// Dataset::get and stacks) while the caller works on the current one; an
// exception thrown there is rethrown by the iterator, in order. Leaving the loop
// early stops the thread. Differences from PyTorch: no worker processes, no
// samplers, no pin_memory; the loader refers to the dataset (keep it alive).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/rng.hpp"
#include "genai/data/dataset.hpp"
#include "genai/ops/index.hpp"

namespace genai {
namespace data {

struct DataLoaderOptions {
  int64_t batch_size = 1;   // examples per batch
  bool shuffle = false;     // a new random order every epoch
  bool drop_last = false;   // drop the last batch when it is smaller than batch_size
  uint64_t seed = 0;        // seeds the loader's generator (used when shuffling)
  bool prefetch = false;    // prepare the next batch on a background thread
};

/// Stacks examples into a batch: inputs (B, ...) and targets (B, ...) (undefined
/// targets stay undefined); shapes must agree.
inline Example collate(const std::vector<Example>& examples) {
  GENAI_CHECK(!examples.empty(), "collate: no examples");
  TensorList inputs, targets;
  const bool has_target = examples[0].target.defined();
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& e = examples[i];
    GENAI_CHECK(e.input.defined(), "collate: example ", i, " has an undefined input");
    GENAI_CHECK(e.target.defined() == has_target, "collate: example ", i, (has_target ? " has no" : " has a"),
                " target but example 0 ", (has_target ? "has one" : "has none"));
    GENAI_CHECK(e.input.shape() == examples[0].input.shape(), "collate: example ", i, " has input shape ",
                shape_str(e.input.shape()), " but example 0 has ", shape_str(examples[0].input.shape()),
                "; hint: make the dataset return equally sized examples (crop, pad or resize)");
    inputs.push_back(e.input.detach());
    if (has_target) targets.push_back(e.target.detach());
  }
  NoGradGuard ng;
  return {stack(inputs, 0), has_target ? stack(targets, 0) : Tensor()};
}

namespace detail {

/// The state of one pass over the dataset (one epoch), shared by its iterators.
class LoaderEpoch {
 public:
  LoaderEpoch(const Dataset& ds, std::vector<int64_t> order, int64_t batch_size, int64_t n_batches, bool prefetch)
      : ds_(ds), order_(std::move(order)), batch_size_(batch_size), n_batches_(n_batches) {
    if (prefetch && n_batches_ > 0) worker_ = std::thread([this] { run_worker(); });
  }
  ~LoaderEpoch() {
    if (worker_.joinable()) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      worker_.join();
    }
  }
  LoaderEpoch(const LoaderEpoch&) = delete;
  LoaderEpoch& operator=(const LoaderEpoch&) = delete;

  /// The next batch, or false at the end of the epoch.
  bool next(Example& out) {
    if (!worker_.joinable()) {
      if (next_batch_ >= n_batches_) return false;
      out = make_batch(next_batch_++);
      return true;
    }
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return slot_.has_value() || finished_; });
    if (slot_) {
      out = std::move(*slot_);
      slot_.reset();
      cv_.notify_all();
      return true;
    }
    if (error_) {
      std::exception_ptr e = std::exchange(error_, nullptr);
      lk.unlock();
      std::rethrow_exception(e);
    }
    return false;
  }

 private:
  Example make_batch(int64_t b) const {
    const int64_t n = static_cast<int64_t>(order_.size());
    const int64_t begin = b * batch_size_, end = std::min(n, begin + batch_size_);
    std::vector<Example> ex;
    ex.reserve(static_cast<size_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) ex.push_back(ds_.get(order_[static_cast<size_t>(i)]));
    return collate(ex);
  }

  void run_worker() {
    for (int64_t b = 0; b < n_batches_; ++b) {
      Example e;
      try {
        e = make_batch(b);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        error_ = std::current_exception();
        finished_ = true;
        cv_.notify_all();
        return;
      }
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return !slot_.has_value() || stop_; });
      if (stop_) return;
      slot_ = std::move(e);
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lk(mu_);
    finished_ = true;
    cv_.notify_all();
  }

  const Dataset& ds_;
  std::vector<int64_t> order_;  // example indices in visiting order
  int64_t batch_size_, n_batches_;
  int64_t next_batch_ = 0;  // without prefetch
  // prefetch: a one-batch slot between the worker and the consumer
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Example> slot_;
  bool finished_ = false, stop_ = false;
  std::exception_ptr error_;
};

}  // namespace detail

class DataLoader {
 public:
  /// Input iterator over the batches of one epoch; equal to end() when exhausted.
  class Iterator {
   public:
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using reference = const Example&;
    using pointer = const Example*;
    using iterator_category = std::input_iterator_tag;

    Iterator() = default;
    explicit Iterator(std::shared_ptr<detail::LoaderEpoch> ep) : ep_(std::move(ep)) { advance(); }
    const Example& operator*() const { return cur_; }
    const Example* operator->() const { return &cur_; }
    Iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(const Iterator& o) const { return ep_ == o.ep_; }
    bool operator!=(const Iterator& o) const { return ep_ != o.ep_; }

   private:
    void advance() {
      if (ep_ && !ep_->next(cur_)) {
        ep_.reset();  // the end
        cur_ = Example();
      }
    }
    std::shared_ptr<detail::LoaderEpoch> ep_;
    Example cur_;
  };

  /// Batches of `dataset`, which must outlive the loader and its iterators.
  explicit DataLoader(const Dataset& dataset, DataLoaderOptions options = {})
      : ds_(dataset), opt_(options), gen_(options.seed) {
    GENAI_CHECK(opt_.batch_size >= 1, "DataLoader: batch_size must be >= 1, got ", opt_.batch_size);
  }

  /// Starts a new epoch (reshuffling when `shuffle`) and returns its first batch.
  Iterator begin() {
    const int64_t n = ds_.size();
    GENAI_CHECK(n >= 0, "DataLoader: the dataset reports a negative size ", n);
    std::vector<int64_t> order(static_cast<size_t>(n));
    if (opt_.shuffle) {
      Tensor perm = randperm(n, gen_);
      const int64_t* p = perm.data_ptr<const int64_t>();
      for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = p[i];
    } else {
      for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    }
    ++epoch_;
    return Iterator(std::make_shared<detail::LoaderEpoch>(ds_, std::move(order), opt_.batch_size, size(),
                                                          opt_.prefetch));
  }
  Iterator end() const { return Iterator(); }

  /// Batches per epoch (as len(loader)).
  int64_t size() const {
    const int64_t n = ds_.size();
    return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
  }
  /// Epochs started so far.
  int64_t epoch() const { return epoch_; }
  const DataLoaderOptions& options() const { return opt_; }
  /// The generator that draws the shuffles (save its state to resume).
  Generator& generator() { return gen_; }

 private:
  const Dataset& ds_;
  DataLoaderOptions opt_;
  Generator gen_;
  int64_t epoch_ = 0;
};

}  // namespace data
}  // namespace genai
