// --distributed for the example programs: data-parallel training on genai::distributed
// (MPI) when this build found MPI, else a clear message. Not part of the library.
//
//   examples::Distributed dist(args.distributed);   // starts MPI (launched by mpirun -np N)
//   dist.wrap(model);                               // rank 0's weights everywhere + gradient averaging
//   ... loss.backward(); dist.synchronize(); opt.step(); ...
//   if (dist.is_main()) save(...);                  // checkpoints, logs and pictures: rank 0
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <streambuf>
#include <vector>

#include <genai/nn/module.hpp>
#ifdef GENAI_EXAMPLES_MPI
#include <genai/distributed/data_parallel.hpp>
#endif

namespace examples {

/// A stream that drops everything (progress bars of ranks other than 0).
inline std::ostream* null_stream() {
  struct NullBuf : std::streambuf {
    int overflow(int c) override { return c; }
  };
  static NullBuf buf;
  static std::ostream os(&buf);
  return &os;
}

class Distributed {
 public:
  explicit Distributed(bool on) : on_(on) {
    if (!on_) return;
#ifdef GENAI_EXAMPLES_MPI
    genai::distributed::init();
    rank_ = genai::distributed::rank();
    world_ = genai::distributed::world_size();
#else
    std::fprintf(stderr,
                 "--distributed: this build has no MPI. Install Debian's libopenmpi-dev and openmpi-bin, "
                 "reconfigure with CMake, and launch with mpirun -np N.\n");
    std::exit(2);
#endif
  }
  bool on() const { return on_; }
  int rank() const { return rank_; }
  int world() const { return world_; }
  bool is_main() const { return rank_ == 0; }
  /// Where rank 0 prints progress; the others print nothing.
  std::ostream* progress_stream() const { return is_main() ? nullptr : null_stream(); }

  /// Broadcasts rank 0's parameters and buffers and averages gradients from now on;
  /// `sync_bn`: batch norm over the global batch. Several models may be wrapped (a GAN's
  /// generator and discriminator); each is then synchronized after its own backward.
  void wrap([[maybe_unused]] genai::nn::Module& m, [[maybe_unused]] bool sync_bn = false) {
#ifdef GENAI_EXAMPLES_MPI
    if (!on_) return;
    if (sync_bn) genai::distributed::convert_sync_batchnorm(m);
    ddp_.push_back(std::make_unique<genai::distributed::DataParallel>(m));
#endif
  }
  /// After backward: gradients = their average over the processes (every wrapped model).
  void synchronize() {
#ifdef GENAI_EXAMPLES_MPI
    for (auto& d : ddp_) d->synchronize();
#endif
  }
  /// After a backward that produced gradients for `m` only (one of the wrapped models).
  void synchronize([[maybe_unused]] const genai::nn::Module& m) {
#ifdef GENAI_EXAMPLES_MPI
    for (auto& d : ddp_)
      if (&d->module() == &m) d->synchronize();
#endif
  }
  /// The average of v over the processes (v itself when not distributed).
  double mean(double v) const {
#ifdef GENAI_EXAMPLES_MPI
    if (on_ && world_ > 1) {
      genai::Tensor t = genai::full({1}, v, genai::kFloat64);
      genai::distributed::all_reduce_(t);
      return t.item<double>() / world_;
    }
#endif
    return v;
  }
  /// Rank 0's value of a decision every rank must take the same way (e.g. a time limit).
  bool from_main(bool v) const {
#ifdef GENAI_EXAMPLES_MPI
    if (on_ && world_ > 1) {
      genai::Tensor t = genai::full({1}, v ? 1.0 : 0.0, genai::kFloat64);
      genai::distributed::broadcast_(t, 0);
      return t.item<double>() != 0;
    }
#endif
    return v;
  }
  void barrier() const {
#ifdef GENAI_EXAMPLES_MPI
    if (on_) genai::distributed::barrier();
#endif
  }
  /// Seconds spent waiting for gradient reductions (the part backward did not hide).
  double sync_seconds() const {
#ifdef GENAI_EXAMPLES_MPI
    double s = 0;
    for (const auto& d : ddp_) s += d->stats().sync_seconds;
    return s;
#else
    return 0;
#endif
  }

 private:
  bool on_ = false;
  int rank_ = 0, world_ = 1;
#ifdef GENAI_EXAMPLES_MPI
  std::vector<std::unique_ptr<genai::distributed::DataParallel>> ddp_;
#endif
};

/// The end-of-training timing line: milliseconds per training step (`seconds` in `steps`
/// steps) and, when distributed, the processes, the global batch and the share of the step
/// spent waiting for gradient reductions (rank 0 prints).
inline void report_step_time(const Distributed& dist, int64_t batch_per_process, int64_t steps, double seconds) {
  const double per_step = 1e3 * seconds / static_cast<double>(std::max<int64_t>(steps, 1));
  if (!dist.on()) {
    std::printf("%.2f ms per training step\n", per_step);
  } else if (dist.is_main()) {
    const double wait = 1e3 * dist.sync_seconds() / static_cast<double>(std::max<int64_t>(steps, 1));
    std::printf("distributed: %d processes, global batch %lld; %.2f ms per training step, of which waiting for "
                "gradient reductions %.2f ms (%.1f%%)\n",
                dist.world(), static_cast<long long>(batch_per_process) * dist.world(), per_step, wait,
                seconds > 0 ? 100.0 * dist.sync_seconds() / seconds : 0.0);
  }
}

}  // namespace examples
