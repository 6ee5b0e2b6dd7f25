// genai/distributed/sampler.hpp: each process's shard of a dataset, as
// torch.utils.data.DistributedSampler, in the form of a Dataset view that any
// DataLoader batches (with shuffle off: the sampler shuffles).
//
//   distributed::DistributedSampler shard(train_set, distributed::world_size(), distributed::rank(),
//                                         {.shuffle = true, .seed = 0});
//   data::DataLoader loader(shard, {.batch_size = 64});   // per-process batch
//   for (int epoch = 0; ...; ++epoch) {
//     shard.set_epoch(epoch);                              // a new permutation, the same on every process
//     for (const data::Example& b : loader) ...
//   }
//
// Each epoch: a permutation of [0, N) drawn from a generator seeded by seed + epoch
// (identical on every process, no communication), padded by repeating its start
// until its length divides by the number of processes (or cut, with drop_last);
// process r takes the entries r, r + world, r + 2 world, ... So the k-th batches of
// all processes together hold the entries [k B world, (k+1) B world) of the
// permutation: the global batch a single process with batch B * world would see.
// The permutation differs from torch's (another generator). Needs no MPI.
#pragma once

#include <cstdint>
#include <vector>

#include "genai/core/factory.hpp"
#include "genai/core/rng.hpp"
#include "genai/data/dataset.hpp"

namespace genai {
namespace distributed {

struct DistributedSamplerOptions {
  bool shuffle = true;     // a new permutation every epoch (else 0, 1, 2, ...)
  uint64_t seed = 0;       // must be the same on every process
  bool drop_last = false;  // cut the tail instead of padding it with repeated examples
};

class DistributedSampler : public data::Dataset {
 public:
  DistributedSampler(const data::Dataset& dataset, int64_t num_replicas, int64_t rank,
                     DistributedSamplerOptions options = {})
      : ds_(dataset), world_(num_replicas), rank_(rank), opt_(options) {
    GENAI_CHECK(num_replicas >= 1 && rank >= 0 && rank < num_replicas, "DistributedSampler: rank ", rank,
                " must be in [0, num_replicas = ", num_replicas, ")");
    set_epoch(0);
  }

  /// Draws epoch e's shard (call at the start of every epoch, with the same e everywhere).
  void set_epoch(int64_t e) {
    epoch_ = e;
    const int64_t n = ds_.size();
    std::vector<int64_t> perm(static_cast<size_t>(n));
    if (opt_.shuffle) {
      Generator g(opt_.seed + static_cast<uint64_t>(e));
      Tensor p = randperm(n, g);
      const int64_t* pp = p.data_ptr<const int64_t>();
      for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = pp[i];
    } else {
      for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
    }
    const int64_t per = opt_.drop_last ? n / world_ : (n + world_ - 1) / world_;
    const int64_t total = per * world_;
    for (int64_t i = n; i < total && n > 0; ++i) perm.push_back(perm[static_cast<size_t>((i - n) % n)]);
    indices_.clear();
    for (int64_t i = rank_; i < total; i += world_) indices_.push_back(perm[static_cast<size_t>(i)]);
  }

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  data::Example get(int64_t index) const override {
    GENAI_CHECK(index >= 0 && index < size(), "DistributedSampler: index ", index, " out of range for ", size());
    return ds_.get(indices_[static_cast<size_t>(index)]);
  }
  /// The dataset indices this process visits this epoch, in order.
  const std::vector<int64_t>& indices() const { return indices_; }
  int64_t epoch() const { return epoch_; }

 private:
  const data::Dataset& ds_;
  int64_t world_, rank_;
  DistributedSamplerOptions opt_;
  int64_t epoch_ = 0;
  std::vector<int64_t> indices_;
};

}  // namespace distributed
}  // namespace genai
