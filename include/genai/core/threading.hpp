// genai/core/threading.hpp: the library's thread count and its parallel loop.
//
// One setting governs every parallel loop in genai: set_num_threads(n), or the
// GENAI_NUM_THREADS environment variable read on first use; the default is the
// number of hardware threads. Loops run on OpenMP when the compiler has it (the
// CMake target links OpenMP when found), serially otherwise. parallel_for takes
// a non-owning function reference, so the whole library has one OpenMP region
// (this keeps compile times down: every template-instantiated OpenMP region is
// outlined and compiled separately).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include "genai/config.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace genai {

/// A non-owning reference to a callable (as llvm::function_ref): no allocation,
/// one indirect call. The referenced callable must outlive the call.
template <class Sig>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor)
      : obj_(const_cast<void*>(static_cast<const void*>(&f))),
        cb_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...); }) {}
  R operator()(Args... a) const { return cb_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_;
  R (*cb_)(void*, Args...);
};

namespace detail {
inline int& num_threads_ref() {
  static int n = [] {
    int def = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (const char* env = std::getenv("GENAI_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) def = v;
    }
    return def;
  }();
  return n;
}
}  // namespace detail

/// Number of threads used by parallel loops and GEMM.
inline int get_num_threads() { return detail::num_threads_ref(); }

/// Sets the number of threads used by parallel loops and GEMM (n >= 1).
inline void set_num_threads(int n) {
  GENAI_CHECK(n >= 1, "set_num_threads: expected n >= 1, got ", n);
  detail::num_threads_ref() = n;
}

inline bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

/// Runs f(b, e) over [begin, end) split into at most get_num_threads() contiguous
/// chunks of at least `grain` iterations. Runs inline when the range is small,
/// one thread is set, or we are already inside a parallel region. An exception
/// thrown by f is rethrown on the calling thread.
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, FunctionRef<void(int64_t, int64_t)> f) {
  int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(get_num_threads(), (n + grain - 1) / grain);
  if (chunks <= 1 || in_parallel_region()) {
    f(begin, end);
    return;
  }
#ifdef _OPENMP
  std::exception_ptr err;
  std::mutex mu;
#pragma omp parallel num_threads(static_cast<int>(chunks))
  {
    int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t b = begin + n * t / T, e = begin + n * (t + 1) / T;
    try {
      if (b < e) f(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu);
      if (!err) err = std::current_exception();
    }
  }
  if (err) std::rethrow_exception(err);
#else
  f(begin, end);
#endif
}

}  // namespace genai
