// genai/distributed/data_parallel.hpp: data-parallel training over MPI processes, as
// torch.nn.parallel.DistributedDataParallel: every process holds a copy of the model,
// trains on its shard of each batch (distributed/sampler.hpp), and the gradients are
// averaged over the processes before each optimizer step, so every process takes the
// same step and the copies stay identical.
//
//   distributed::init(&argc, &argv);
//   MyModel model;                                 // any nn::Module, unchanged
//   distributed::DataParallel ddp(model);          // broadcasts rank 0's parameters and buffers
//   ...
//   loss.backward();                               // .grad() = the average over the processes
//   opt.step();
//
// Gradients are reduced in buckets of about `bucket_mb` MiB, parameters taken in
// reverse registration order (the order backward tends to finish them in, as torch's
// DDP). A backward hook (autograd::grad_accumulated_hook) notes each parameter whose
// gradient is complete; when a bucket is complete it is packed into one flat buffer
// and its MPI_Iallreduce starts, overlapping the rest of backward; when backward() has
// finished (autograd's end-of-backward callback) the rest is started, waited for, and the
// averages are written back, so a training loop needs no change: gradient clipping,
// logging and optimizer steps after backward() see the averaged gradients.
// synchronize() does the same by hand (a no-op when backward already did it). Gradients
// accumulated over several backward() passes are averaged correctly (each pass averages
// what it added); no_sync() only saves the communication of the passes but the last.
// Every process must run the same backward passes over the same parameters (as in torch). A parameter that got no gradient
// on any process keeps none (as torch's find_unused_parameters); one that got a
// gradient on some processes gets their sum divided by the number of processes.
// Gradient accumulation: as in torch, the passes but the last may run inside
// ddp.no_sync() to skip their communication.
//
// convert_sync_batchnorm(model) makes its BatchNorm layers use the statistics of the
// global batch (torch.nn.SyncBatchNorm); all_reduce_sum is the differentiable sum
// over processes it uses. Checkpoints: write them on rank 0 only (is_main()), then
// barrier(), then every rank may load them.
//
// Several DataParallel objects may live at once, over disjoint sets of parameters (a
// GAN's generator and discriminator, each synchronized after its own backward): one
// process-wide backward hook passes each finished gradient to all of them.
//
// Differences from torch: no gradient-as-bucket-view (gradients are copied into the
// buckets and back); buffers are broadcast once, at construction (torch also
// rebroadcasts them before every forward unless broadcast_buffers=False: use
// convert_sync_batchnorm, or broadcast_buffers(), when buffers must agree).
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

#include "genai/autograd/engine.hpp"
#include "genai/core/factory.hpp"
#include "genai/distributed/comm.hpp"
#include "genai/nn/module.hpp"
#include "genai/nn/norm.hpp"

namespace genai {
namespace distributed {

/// Sets every parameter and buffer of `m` to process `root`'s values.
inline void broadcast_parameters(nn::Module& m, int root = 0) {
  NoGradGuard ng;
  for (auto list : {m.parameters(), m.buffers()})
    for (Tensor t : list) {
      if (t.is_contiguous()) {
        broadcast_(t, root);
      } else {
        Tensor c = contiguous(t);
        broadcast_(c, root);
        t.copy_(c);
      }
    }
}

/// Sets every buffer of `m` (batch-norm statistics, ...) to process `root`'s values.
inline void broadcast_buffers(nn::Module& m, int root = 0) {
  NoGradGuard ng;
  for (Tensor t : m.buffers()) {
    Tensor c = contiguous(t);
    broadcast_(c, root);
    if (c.impl() != t.impl()) t.copy_(c);
  }
}

/// The elementwise sum of t over all processes, differentiable: the gradient of each
/// process's input is the sum of the processes' output gradients (torch's
/// differentiable all_reduce). Every process must call it, in the same order.
inline Tensor all_reduce_sum(const Tensor& t) {
  Tensor out = clone(t.detach());
  out = contiguous(out);
  all_reduce_(out);
  if (autograd::needs_grad(t))
    autograd::record("all_reduce_sum", {t}, out, [](autograd::OpNode&, const TensorList& g) {
      return TensorList{all_reduce_sum(g[0])};  // dx_r = sum over processes s of dy_s
    });
  return out;
}

/// Makes every BatchNorm layer of `m` compute its training statistics over the global
/// batch (all processes' batches together). Returns how many layers it converted.
inline int convert_sync_batchnorm(nn::Module& m) {
  int n = 0;
  for (auto& [name, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(const_cast<nn::Module*>(mod))) {
      bn->sync_sum = [](const Tensor& t) { return all_reduce_sum(t); };
      ++n;
    }
  return n;
}

struct DataParallelOptions {
  double bucket_mb = 25;        // gradient bucket size in MiB (torch's default bucket_cap_mb)
  bool overlap = true;          // start a bucket's reduction as soon as backward completes it
  bool broadcast = true;        // broadcast rank 0's parameters and buffers at construction
};

/// Averages gradients over the processes (see the header comment).
class DataParallel {
 public:
  /// Time spent in synchronize() (waiting for and unpacking reductions), and steps.
  struct Stats {
    double sync_seconds = 0;  // inside synchronize(): the part of the reductions backward did not hide
    double pack_seconds = 0;  // copying gradients into buckets (inside backward when overlapping)
    int64_t steps = 0;
  };

  explicit DataParallel(nn::Module& model, DataParallelOptions options = {}) : model_(model), opt_(options) {
    GENAI_CHECK(opt_.bucket_mb > 0, "DataParallel: bucket_mb must be > 0, got ", opt_.bucket_mb);
    const autograd::GradAccumulatedHook& hook = autograd::grad_accumulated_hook();
    GENAI_CHECK(hook.fn == nullptr || hook.fn == &DataParallel::dispatch,
                "DataParallel: another backward hook (autograd::grad_accumulated_hook) is installed");
    for (const Tensor& p : model_.parameters())
      for (const DataParallel* other : instances())
        GENAI_CHECK(!other->index_.count(p.impl()), "DataParallel: a parameter of shape ", shape_str(p.shape()),
                    " already belongs to another DataParallel; their parameter sets must be disjoint");
    if (opt_.broadcast) broadcast_parameters(model_);
    // buckets: parameters in reverse registration order, one dtype per bucket
    std::vector<Tensor> params;
    for (const Tensor& p : model_.parameters())
      if (p.requires_grad()) params.push_back(p);
    const double cap = opt_.bucket_mb * 1024.0 * 1024.0;
    for (auto it = params.rbegin(); it != params.rend(); ++it) {
      const Tensor& p = *it;
      if (buckets_.empty() || buckets_.back().dtype != p.dtype() ||
          static_cast<double>(buckets_.back().numel + p.numel()) * static_cast<double>(p.element_size()) > cap) {
        buckets_.push_back(Bucket{});
        buckets_.back().dtype = p.dtype();
      }
      Bucket& b = buckets_.back();
      index_[p.impl()] = {static_cast<int>(buckets_.size() - 1), static_cast<int>(b.params.size())};
      b.params.push_back(p);
      b.offsets.push_back(b.numel);
      b.numel += p.numel();
    }
    for (Bucket& b : buckets_) {
      // gradients, then one "had a gradient" count per parameter
      b.buffer = zeros({b.numel + static_cast<int64_t>(b.params.size())}, b.dtype);
      b.ready.assign(b.params.size(), 0);
    }
    instances().push_back(this);
    if (world_size() > 1) autograd::grad_accumulated_hook() = {&DataParallel::dispatch, nullptr, &DataParallel::finish};
  }
  ~DataParallel() {
    auto& all = instances();
    all.erase(std::remove(all.begin(), all.end(), this), all.end());
    if (all.empty() && autograd::grad_accumulated_hook().fn == &DataParallel::dispatch)
      autograd::grad_accumulated_hook() = {};
  }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  /// Waits for the reductions the last backward started and sets each parameter's .grad()
  /// to the average over the processes; backward() calls it when it ends, so calling it
  /// again does nothing until new gradients arrive.
  void synchronize() {
    if (!sync_) return;  // inside no_sync(): the gradients stay local and keep accumulating
    if (!pending_) return;  // no gradient since the last synchronization
    pending_ = false;
    const auto t0 = std::chrono::steady_clock::now();
    ++stats_.steps;
    if (world_size() > 1) {
      while (next_ < buckets_.size()) launch(next_++);  // the rest, in bucket order
      std::vector<MPI_Request> reqs;
      for (Bucket& b : buckets_) reqs.push_back(b.request);
      wait_all(reqs.data(), static_cast<int>(reqs.size()), "all_reduce of the gradients");
      const double inv = 1.0 / world_size();
      NoGradGuard ng;
      for (Bucket& b : buckets_) {
        b.request = MPI_REQUEST_NULL;
        for (size_t j = 0; j < b.params.size(); ++j) {
          const Tensor& p = b.params[j];
          const double had = b.buffer.narrow(0, b.numel + static_cast<int64_t>(j), 1).item<double>();
          if (had == 0) continue;  // no process had a gradient
          Tensor avg = mul(b.buffer.narrow(0, b.offsets[j], p.numel()).view(p.shape()), inv);
          Tensor g = p.grad();
          if (g.defined() && !g.requires_grad()) {
            g.copy_(avg);
          } else {
            p.set_grad(avg);
          }
        }
        b.launched = false;
        std::fill(b.ready.begin(), b.ready.end(), 0);
        b.n_ready = 0;
      }
      next_ = 0;
    }
    stats_.sync_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// While the returned guard lives, backward passes do not reduce and synchronize()
  /// does nothing: gradients accumulate locally (torch's DDP.no_sync()); the next
  /// backward outside it reduces the accumulated gradients.
  class NoSync {
   public:
    explicit NoSync(DataParallel& d) : d_(d), prev_(d.sync_) { d_.sync_ = false; }
    ~NoSync() { d_.sync_ = prev_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& d_;
    bool prev_;
  };
  [[nodiscard]] NoSync no_sync() { return NoSync(*this); }

  const Stats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  nn::Module& module() { return model_; }

 private:
  struct Bucket {
    Dtype dtype = kFloat32;
    std::vector<Tensor> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    Tensor buffer;            // (numel + params): packed gradients, then the "had a gradient" counts
    std::vector<char> ready;  // per parameter: its gradient is complete in this step
    size_t n_ready = 0;
    bool launched = false;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  /// The DataParallel objects alive in this process (the backward hook serves them all).
  static std::vector<DataParallel*>& instances() {
    static std::vector<DataParallel*> all;
    return all;
  }
  static void dispatch(void*, const Tensor& leaf) {
    for (DataParallel* d : instances()) on_grad(d, leaf);
  }
  static void finish(void*) {
    for (DataParallel* d : instances()) d->synchronize();
  }

  static void on_grad(void* ctx, const Tensor& leaf) {
    auto* self = static_cast<DataParallel*>(ctx);
    if (!self->sync_) return;
    auto it = self->index_.find(leaf.impl());
    if (it == self->index_.end()) return;  // not one of this model's parameters
    Bucket& b = self->buckets_[static_cast<size_t>(it->second.first)];
    const auto j = static_cast<size_t>(it->second.second);
    GENAI_CHECK(!b.launched, "DataParallel: a gradient changed after its bucket's reduction had started (the "
                "parameter received gradients twice before the end of the backward pass)");
    self->pending_ = true;
    if (!b.ready[j]) {
      b.ready[j] = 1;
      ++b.n_ready;
    }
    // buckets start in bucket order on every process (MPI collectives must match in order)
    if (self->opt_.overlap)
      while (self->next_ < self->buckets_.size() &&
             self->buckets_[self->next_].n_ready == self->buckets_[self->next_].params.size())
        self->launch(self->next_++);
    // let MPI progress the reductions already started
    for (Bucket& o : self->buckets_)
      if (o.launched && o.request != MPI_REQUEST_NULL) {
        int done = 0;
        MPI_Test(&o.request, &done, MPI_STATUS_IGNORE);
      }
  }

  /// Packs bucket i's gradients (zeros for missing ones) and starts its reduction.
  void launch(size_t i) {
    const auto t0 = std::chrono::steady_clock::now();
    Bucket& b = buckets_[i];
    {
      NoGradGuard ng;
      for (size_t j = 0; j < b.params.size(); ++j) {
        const Tensor& p = b.params[j];
        Tensor g = p.grad();
        Tensor dst = b.buffer.narrow(0, b.offsets[j], p.numel());
        Tensor flag = b.buffer.narrow(0, b.numel + static_cast<int64_t>(j), 1);
        if (g.defined()) {
          dst.copy_(g.detach().reshape({p.numel()}));
          flag.fill_(1.0);
        } else {
          dst.fill_(0.0);
          flag.fill_(0.0);
        }
      }
    }
    detail::check_mpi(MPI_Iallreduce(MPI_IN_PLACE, b.buffer.raw_data(), static_cast<int>(b.buffer.numel()),
                                     detail::mpi_type(b.dtype, "DataParallel"), MPI_SUM, MPI_COMM_WORLD, &b.request),
                      "MPI_Iallreduce (gradient bucket)");
    b.launched = true;
    stats_.pack_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  nn::Module& model_;
  DataParallelOptions opt_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const void*, std::pair<int, int>> index_;  // parameter impl -> (bucket, slot)
  Stats stats_;
  size_t next_ = 0;   // the next bucket to start
  bool sync_ = true;  // false inside no_sync()
  bool pending_ = false;  // gradients arrived since the last synchronization
};

}  // namespace distributed
}  // namespace genai
