// --distributed for the example programs: data-parallel training on genai::distributed
// (MPI) when this build found MPI, else a clear message. Not part of the library.
//
//   examples::Distributed dist(args.distributed);   // starts MPI (launched by mpirun -np N)
//   dist.wrap(model);                               // rank 0's weights everywhere + gradient averaging
//   ... loss.backward(); dist.synchronize(); opt.step(); ...
//   if (dist.is_main()) save(...);                  // checkpoints, logs and pictures: rank 0
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <streambuf>

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
  /// `sync_bn`: batch norm over the global batch.
  void wrap([[maybe_unused]] genai::nn::Module& m, [[maybe_unused]] bool sync_bn = false) {
#ifdef GENAI_EXAMPLES_MPI
    if (!on_) return;
    if (sync_bn) genai::distributed::convert_sync_batchnorm(m);
    ddp_ = std::make_unique<genai::distributed::DataParallel>(m);
#endif
  }
  /// After backward: gradients = their average over the processes.
  void synchronize() {
#ifdef GENAI_EXAMPLES_MPI
    if (ddp_) ddp_->synchronize();
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
    if (ddp_) return ddp_->stats().sync_seconds;
#endif
    return 0;
  }

 private:
  bool on_ = false;
  int rank_ = 0, world_ = 1;
#ifdef GENAI_EXAMPLES_MPI
  std::unique_ptr<genai::distributed::DataParallel> ddp_;
#endif
};

}  // namespace examples
