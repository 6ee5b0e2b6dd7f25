// genai_peak: the machine's measured limits, the denominators of the "% of peak"
// columns in docs/benchmarks.md.
//
//  - FMA peak (fp32 GFLOP/s): a register-resident loop of independent fused
//    multiply-adds, 1 and 2 threads, for each vector ISA the CPU has (AVX2+FMA,
//    and AVX-512F when present; chosen at run time, so the binary runs
//    everywhere). 12 (AVX2) or 16 (AVX-512) independent accumulators cover the
//    FMA latency (4-5 cycles) times the FMA throughput (2 per cycle) of current
//    x86 cores. One FMA on 8 (16) floats counts 16 (32) FLOP.
//  - Memory bandwidth: STREAM (J. McCalpin, https://www.cs.virginia.edu/stream/)
//    copy, scale, add and triad on three double arrays of 16 Mi elements (128 MiB
//    each, >= 4x the last-level cache), 1 and 2 threads, best of 10 trials.
//    Bytes are counted as STREAM does (copy 16 B per element, triad 24 B): the
//    write-allocate read of the destination is not counted. "copy_nt" is copy
//    with non-temporal (streaming) stores, which skip the write-allocate; large
//    memcpy calls in glibc use them too.
//
//   genai_peak [--threads 1,2] [--json]
//
// Threads are plain std::threads (one per worker, started once per measurement);
// nothing here depends on genai, so the numbers are the machine's, not ours.
//
// On a shared machine the wall-clock rates fall with the load. Each probe is
// therefore also timed by the CPU time of its threads (CLOCK_THREAD_CPUTIME_ID):
// the "_cpu" figures are what the threads achieved while they held a core, which
// for the register-resident FMA loop is the core's rate whatever else runs.
// compare.py takes the larger of the two as the denominator of "% of peak".
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <immintrin.h>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// Wall time of a parallel run and the largest CPU time of one of its threads.
struct Timing {
  double wall = 0, cpu = 0;
};

/// Runs body(t) on `nt` threads at once; wall time of the slowest and the largest thread CPU time.
Timing run_threads_timed(int nt, const std::function<void(int)>& body) {
  std::vector<double> cpu(static_cast<size_t>(nt), 0.0);
  auto timed = [&](int t) {
    const double c0 = thread_cpu_seconds();
    body(t);
    cpu[static_cast<size_t>(t)] = thread_cpu_seconds() - c0;
  };
  std::vector<std::thread> th;
  auto t0 = Clock::now();
  for (int t = 1; t < nt; ++t) th.emplace_back(timed, t);
  timed(0);
  for (auto& x : th) x.join();
  Timing r;
  r.wall = seconds_since(t0);
  r.cpu = *std::max_element(cpu.begin(), cpu.end());
  return r;
}

/// Runs body(t) on `nt` threads at once and returns the wall time of the slowest.
double run_threads(int nt, const std::function<void(int)>& body) { return run_threads_timed(nt, body).wall; }

// ---- FMA peak ------------------------------------------------------------------------

constexpr int64_t kFmaIters = 100'000'000;  // per thread; ~0.5 s at 2.5 GHz with 12 FMA per iteration / 2 per cycle

/// 12 independent 8-wide FMA chains: c = c * m + a (m slightly below 1, so the values stay finite and normal).
/// The chains are named variables, not an array: GCC keeps an array that an asm statement
/// touches in memory, and the store-to-load latency would then be what is measured.
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters, float seed) {
  __m256 c0 = _mm256_set1_ps(seed), c1 = _mm256_set1_ps(seed + 0.01f), c2 = _mm256_set1_ps(seed + 0.02f),
         c3 = _mm256_set1_ps(seed + 0.03f), c4 = _mm256_set1_ps(seed + 0.04f), c5 = _mm256_set1_ps(seed + 0.05f),
         c6 = _mm256_set1_ps(seed + 0.06f), c7 = _mm256_set1_ps(seed + 0.07f), c8 = _mm256_set1_ps(seed + 0.08f),
         c9 = _mm256_set1_ps(seed + 0.09f), c10 = _mm256_set1_ps(seed + 0.10f), c11 = _mm256_set1_ps(seed + 0.11f);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm256_fmadd_ps(c0, m, a), c1 = _mm256_fmadd_ps(c1, m, a), c2 = _mm256_fmadd_ps(c2, m, a);
    c3 = _mm256_fmadd_ps(c3, m, a), c4 = _mm256_fmadd_ps(c4, m, a), c5 = _mm256_fmadd_ps(c5, m, a);
    c6 = _mm256_fmadd_ps(c6, m, a), c7 = _mm256_fmadd_ps(c7, m, a), c8 = _mm256_fmadd_ps(c8, m, a);
    c9 = _mm256_fmadd_ps(c9, m, a), c10 = _mm256_fmadd_ps(c10, m, a), c11 = _mm256_fmadd_ps(c11, m, a);
    // the asm barrier keeps the compiler from folding iterations (it cannot see through it)
    __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}
constexpr double kFlopPerIterAvx2 = 12 * 8 * 2;

/// 16 independent 16-wide FMA chains (named variables, as above).
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters, float seed) {
#define GENAI_PEAK_C(i) __m512 c##i = _mm512_set1_ps(seed + 0.01f * i)
  GENAI_PEAK_C(0); GENAI_PEAK_C(1); GENAI_PEAK_C(2); GENAI_PEAK_C(3); GENAI_PEAK_C(4); GENAI_PEAK_C(5);
  GENAI_PEAK_C(6); GENAI_PEAK_C(7); GENAI_PEAK_C(8); GENAI_PEAK_C(9); GENAI_PEAK_C(10); GENAI_PEAK_C(11);
  GENAI_PEAK_C(12); GENAI_PEAK_C(13); GENAI_PEAK_C(14); GENAI_PEAK_C(15);
#undef GENAI_PEAK_C
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
    c0 = _mm512_fmadd_ps(c0, m, a), c1 = _mm512_fmadd_ps(c1, m, a), c2 = _mm512_fmadd_ps(c2, m, a);
    c3 = _mm512_fmadd_ps(c3, m, a), c4 = _mm512_fmadd_ps(c4, m, a), c5 = _mm512_fmadd_ps(c5, m, a);
    c6 = _mm512_fmadd_ps(c6, m, a), c7 = _mm512_fmadd_ps(c7, m, a), c8 = _mm512_fmadd_ps(c8, m, a);
    c9 = _mm512_fmadd_ps(c9, m, a), c10 = _mm512_fmadd_ps(c10, m, a), c11 = _mm512_fmadd_ps(c11, m, a);
    c12 = _mm512_fmadd_ps(c12, m, a), c13 = _mm512_fmadd_ps(c13, m, a), c14 = _mm512_fmadd_ps(c14, m, a);
    c15 = _mm512_fmadd_ps(c15, m, a);
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7));
    __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13), "+v"(c14), "+v"(c15));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                     _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
  float out[16];
  _mm512_storeu_ps(out, s);  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  return out[0];
}
constexpr double kFlopPerIterAvx512 = 16 * 16 * 2;

/// A rate measured against wall time and against the threads' CPU time.
struct Rate {
  double wall = 0, cpu = 0;
};

/// Best of `trials` runs of the FMA loop on nt threads; GFLOP/s of all threads together.
Rate fma_peak(bool avx512, int nt, int trials) {
  Rate best;
  for (int r = 0; r < trials; ++r) {
    std::vector<float> sink(static_cast<size_t>(nt));
    const int64_t iters = avx512 ? kFmaIters / 2 : kFmaIters;
    Timing t = run_threads_timed(nt, [&](int i) {
      sink[static_cast<size_t>(i)] = avx512 ? fma_loop_avx512(iters, 1.0f + i) : fma_loop_avx2(iters, 1.0f + i);
    });
    double flop = double(iters) * nt * (avx512 ? kFlopPerIterAvx512 : kFlopPerIterAvx2);
    if (sink[0] == 12345.f) std::printf(" ");  // keep the result alive
    best.wall = std::max(best.wall, flop / t.wall * 1e-9);
    best.cpu = std::max(best.cpu, flop / t.cpu * 1e-9);
  }
  return best;
}

// ---- STREAM --------------------------------------------------------------------------

constexpr int64_t kStreamN = int64_t(16) << 20;  // doubles per array: 128 MiB
constexpr int kStreamTrials = 10;

struct StreamResult {
  double copy = 0, scale = 0, add = 0, triad = 0, copy_nt = 0;  // GB/s (1e9 bytes/s), best of the trials
  double copy_cpu = 0, add_cpu = 0, triad_cpu = 0;               // the same against the threads' CPU time
};

__attribute__((target("avx2"))) void copy_nt_range(const double* a, double* c, int64_t b, int64_t e) {
  int64_t i = b;
  for (; i < e && (reinterpret_cast<uintptr_t>(c + i) & 31); ++i) c[i] = a[i];
  for (; i + 4 <= e; i += 4) _mm256_stream_pd(c + i, _mm256_loadu_pd(a + i));
  for (; i < e; ++i) c[i] = a[i];
  _mm_sfence();
}

StreamResult stream(int nt) {
  const int64_t n = kStreamN;
  double* a = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* b = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* c = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  auto lo = [&](int t) { return n * t / nt; };
  auto hi = [&](int t) { return n * (t + 1) / nt; };
  // first touch by the thread that will use the pages
  run_threads(nt, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) a[i] = 1.0, b[i] = 2.0, c[i] = 0.0;
  });
  const double s = 3.0;
  StreamResult r;
  auto best = [&](double& slot, double bytes, const std::function<void(int)>& body, double* cpu_slot = nullptr) {
    for (int k = 0; k < kStreamTrials; ++k) {
      Timing t = run_threads_timed(nt, body);
      slot = std::max(slot, bytes / t.wall * 1e-9);
      if (cpu_slot) *cpu_slot = std::max(*cpu_slot, bytes / t.cpu * 1e-9);
    }
  };
  const double B = sizeof(double) * double(n);
  best(r.copy, 2 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) c[i] = a[i];
  }, &r.copy_cpu);
  best(r.scale, 2 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) b[i] = s * c[i];
  });
  best(r.add, 3 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) c[i] = a[i] + b[i];
  }, &r.add_cpu);
  best(r.triad, 3 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) a[i] = b[i] + s * c[i];
  }, &r.triad_cpu);
  best(r.copy_nt, 2 * B, [&](int t) { copy_nt_range(a, c, lo(t), hi(t)); });
  // STREAM's check, loosely: the arrays hold what the kernels computed
  volatile double check = a[n / 2] + b[n / 3] + c[n / 5];
  (void)check;
  std::free(a);
  std::free(b);
  std::free(c);
  return r;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::vector<int> parse_threads(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::max(1, std::atoi(p)));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = parse_threads(argv[++i]);
    } else if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else {
      std::printf(
          "usage: genai_peak [--threads 1,2] [--json]\n"
          "Measures the fp32 FMA peak (GFLOP/s) and the STREAM memory bandwidth (GB/s)\n"
          "at each thread count; --json prints one JSON object for compare.py.\n");
      return !std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h") ? 0 : 1;
    }
  }
  __builtin_cpu_init();
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool has_avx512 = __builtin_cpu_supports("avx512f");
  if (!has_avx2) {
    std::fprintf(stderr, "genai_peak: this CPU has no AVX2+FMA; nothing to measure\n");
    return 1;
  }
  struct Row {
    int threads;
    Rate avx2, avx512;
    StreamResult s;
  };
  std::vector<Row> rows;
  for (int nt : threads) {
    Row r{nt, fma_peak(false, nt, 5), has_avx512 ? fma_peak(true, nt, 5) : Rate{}, stream(nt)};
    rows.push_back(r);
  }
  if (json) {
    std::printf("{\"cpu\": \"%s\", \"hardware_threads\": %u, \"avx2\": true, \"avx512f\": %s, \"rows\": [",
                cpu_model().c_str(), std::thread::hardware_concurrency(), has_avx512 ? "true" : "false");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf(
          "%s\n  {\"threads\": %d, \"fma_gflops_avx2\": %.2f, \"fma_gflops_avx512\": %.2f, "
          "\"fma_gflops_avx2_cpu\": %.2f, \"fma_gflops_avx512_cpu\": %.2f, \"stream_copy_gbs\": %.2f, "
          "\"stream_scale_gbs\": %.2f, \"stream_add_gbs\": %.2f, \"stream_triad_gbs\": %.2f, \"copy_nt_gbs\": %.2f, "
          "\"stream_copy_gbs_cpu\": %.2f, \"stream_add_gbs_cpu\": %.2f, \"stream_triad_gbs_cpu\": %.2f}",
          i ? "," : "", r.threads, r.avx2.wall, r.avx512.wall, r.avx2.cpu, r.avx512.cpu, r.s.copy, r.s.scale, r.s.add,
          r.s.triad, r.s.copy_nt, r.s.copy_cpu, r.s.add_cpu, r.s.triad_cpu);
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("CPU: %s, %u hardware threads, AVX2+FMA yes, AVX-512F %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), has_avx512 ? "yes" : "no");
  std::printf("%7s %16s %18s %12s %12s %12s %12s %14s\n", "threads", "FMA avx2 GF/s", "FMA avx512 GF/s", "copy GB/s",
              "scale GB/s", "add GB/s", "triad GB/s", "copy_nt GB/s");
  for (const Row& r : rows) {
    char f2[32], f5[32];
    std::snprintf(f2, sizeof f2, "%.1f (%.1f)", r.avx2.wall, r.avx2.cpu);
    std::snprintf(f5, sizeof f5, "%.1f (%.1f)", r.avx512.wall, r.avx512.cpu);
    std::printf("%7d %16s %18s %12.1f %12.1f %12.1f %12.1f %14.1f\n", r.threads, f2, has_avx512 ? f5 : "n/a",
                r.s.copy, r.s.scale, r.s.add, r.s.triad, r.s.copy_nt);
  }
  std::printf("(FMA: 2 FLOP per lane, wall-clock rate and, in parentheses, the rate per CPU time of the threads;\n"
              " STREAM bytes exclude write-allocate traffic; best of several trials)\n");
  return 0;
}
