// genai/distributed/comm.hpp: processes and collectives for data-parallel training,
// on MPI (Open MPI from Debian's libopenmpi-dev / openmpi-bin; launched with mpirun),
// the transport of Horovod and of PyTorch's "mpi" backend. No home-made networking.
//
//   distributed::init(&argc, &argv);        // once, first thing in main (MPI_Init_thread)
//   int r = distributed::rank(), n = distributed::world_size();
//   distributed::all_reduce_(t);             // t <- the sum of t over all processes, in place
//   distributed::broadcast_(t, 0);           // t <- rank 0's t
//   distributed::barrier();
//
// init() finalizes MPI at exit. Every collective runs as a non-blocking MPI call that
// this header polls with a deadline (GENAI_DIST_TIMEOUT seconds, default 600): when
// another process has died or hangs, the others do not wait forever but print which
// collective did not complete and abort the whole job (MPI_Abort), which mpirun reports.
// MPI errors are returned, not fatal inside MPI, and turned into the same clear message.
// Threads: MPI is called from the thread that called init() only (MPI_THREAD_FUNNELED);
// genai's OpenMP kernels never call MPI.
//
// Differences from torch.distributed: one backend (MPI), one group (COMM_WORLD), sum
// and max reductions only, and collectives abort the job on failure instead of raising.
// This header needs <mpi.h>: it is part of the genai::distributed CMake target, which
// exists only when CMake found MPI.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "genai/core/tensor.hpp"

namespace genai {
namespace distributed {

namespace detail {

inline bool& we_initialized() {
  static bool v = false;
  return v;
}

/// Prints why the job cannot go on and aborts every process of it.
[[noreturn]] inline void fail(const std::string& what) {
  int r = -1;
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  std::fprintf(stderr, "genai::distributed: rank %d: %s; aborting the job\n", r, what.c_str());
  std::fflush(stderr);
  if (inited) MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

inline void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(std::string(call) + " failed: " + std::string(msg, static_cast<size_t>(len)));
}

inline MPI_Datatype mpi_type(Dtype d, const char* op) {
  switch (d) {
    case kFloat32: return MPI_FLOAT;
    case kFloat64: return MPI_DOUBLE;
    case kInt64: return MPI_INT64_T;
    default: break;
  }
  GENAI_CHECK(false, op, ": dtype ", dtype_name(d), " is not supported (float32, float64, int64 are)");
  return MPI_DATATYPE_NULL;
}

}  // namespace detail

/// Seconds a collective may take before the job is declared broken (GENAI_DIST_TIMEOUT,
/// default 600: long enough for a slow rank to finish its step, short enough not to
/// hold a dead job's machines for hours).
inline double timeout_seconds() {
  static const double t = [] {
    const char* e = std::getenv("GENAI_DIST_TIMEOUT");
    const double v = e ? std::atof(e) : 0.0;
    return v > 0 ? v : 600.0;
  }();
  return t;
}

/// True once MPI is initialized (by init() or by the program itself).
inline bool is_initialized() {
  int v = 0;
  MPI_Initialized(&v);
  int fin = 0;
  MPI_Finalized(&fin);
  return v && !fin;
}

/// Initializes MPI (once; later calls do nothing) and registers MPI_Finalize at exit.
inline void init(int* argc = nullptr, char*** argv = nullptr) {
  if (is_initialized()) return;
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  detail::we_initialized() = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::atexit([] {
    if (is_initialized() && detail::we_initialized()) MPI_Finalize();
  });
}

/// This process's index in [0, world_size()); 0 without MPI initialized.
inline int rank() {
  if (!is_initialized()) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

/// Number of processes; 1 without MPI initialized.
inline int world_size() {
  if (!is_initialized()) return 1;
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

/// Rank 0: the process that writes checkpoints, logs and pictures.
inline bool is_main() { return rank() == 0; }

/// Waits for `n` requests, polling; past timeout_seconds() the job is aborted with a
/// message naming `what`.
inline void wait_all(MPI_Request* reqs, int n, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(timeout_seconds());
  int spins = 0;
  for (;;) {
    int done = 0;
    detail::check_mpi(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE), ("MPI_Testall (" + what + ")").c_str());
    if (done) return;
    if (clock::now() > deadline)
      detail::fail(what + " did not complete within " + std::to_string(static_cast<int>(timeout_seconds())) +
                   " s: another process has probably died or hangs (GENAI_DIST_TIMEOUT sets the limit)");
    if (++spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));  // a long wait: stop spinning
  }
}

/// t <- the elementwise sum (or max) of t over all processes; t must be contiguous.
inline void all_reduce_(Tensor& t, bool max = false) {
  GENAI_CHECK(t.defined() && t.is_contiguous(), "all_reduce_: expected a defined contiguous tensor");
  if (world_size() == 1 || t.numel() == 0) return;
  MPI_Request req;
  detail::check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()),
                                   detail::mpi_type(t.dtype(), "all_reduce_"), max ? MPI_MAX : MPI_SUM,
                                   MPI_COMM_WORLD, &req),
                    "MPI_Iallreduce");
  wait_all(&req, 1, "all_reduce of " + shape_str(t.shape()));
}

/// t <- process `root`'s t (same shape and dtype on every process); t must be contiguous.
inline void broadcast_(Tensor& t, int root = 0) {
  GENAI_CHECK(t.defined() && t.is_contiguous(), "broadcast_: expected a defined contiguous tensor");
  if (world_size() == 1 || t.numel() == 0) return;
  MPI_Request req;
  detail::check_mpi(MPI_Ibcast(t.raw_data(), static_cast<int>(t.numel()), detail::mpi_type(t.dtype(), "broadcast_"),
                               root, MPI_COMM_WORLD, &req),
                    "MPI_Ibcast");
  wait_all(&req, 1, "broadcast of " + shape_str(t.shape()));
}

/// Returns when every process has called barrier().
inline void barrier() {
  if (world_size() == 1) return;
  MPI_Request req;
  detail::check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
  wait_all(&req, 1, "barrier");
}

}  // namespace distributed
}  // namespace genai
