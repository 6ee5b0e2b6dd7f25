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
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Runs body(t) on `nt` threads at once and returns the wall time of the slowest.
double run_threads(int nt, const std::function<void(int)>& body) {
  std::vector<std::thread> th;
  auto t0 = Clock::now();
  for (int t = 1; t < nt; ++t) th.emplace_back(body, t);
  body(0);
  for (auto& x : th) x.join();
  return seconds_since(t0);
}

// ---- FMA peak ------------------------------------------------------------------------

constexpr int64_t kFmaIters = 100'000'000;  // per thread; ~0.5 s at 2.5 GHz with 12 FMA per iteration / 2 per cycle

/// 12 independent 8-wide FMA chains: c = c * m + a (m slightly below 1, so the values stay finite and normal).
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters, float seed) {
  __m256 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm256_set1_ps(seed + 0.01f * i);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
    // the asm barrier keeps the compiler from folding iterations (it cannot see through it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) c[i] = _mm256_fmadd_ps(c[i], m, a);
    __asm__ volatile("" : "+x"(c[0]), "+x"(c[1]), "+x"(c[2]), "+x"(c[3]), "+x"(c[4]), "+x"(c[5]));
    __asm__ volatile("" : "+x"(c[6]), "+x"(c[7]), "+x"(c[8]), "+x"(c[9]), "+x"(c[10]), "+x"(c[11]));
  }
  __m256 s = c[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, c[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}
constexpr double kFlopPerIterAvx2 = 12 * 8 * 2;

/// 16 independent 16-wide FMA chains.
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters, float seed) {
  __m512 c[16];
  for (int i = 0; i < 16; ++i) c[i] = _mm512_set1_ps(seed + 0.01f * i);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) c[i] = _mm512_fmadd_ps(c[i], m, a);
    __asm__ volatile("" : "+v"(c[0]), "+v"(c[1]), "+v"(c[2]), "+v"(c[3]), "+v"(c[4]), "+v"(c[5]), "+v"(c[6]),
                     "+v"(c[7]));
    __asm__ volatile("" : "+v"(c[8]), "+v"(c[9]), "+v"(c[10]), "+v"(c[11]), "+v"(c[12]), "+v"(c[13]),
                     "+v"(c[14]), "+v"(c[15]));
  }
  __m512 s = c[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, c[i]);
  float out[16];
  _mm512_storeu_ps(out, s);  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  return out[0];
}
constexpr double kFlopPerIterAvx512 = 16 * 16 * 2;

/// Best of `trials` runs of the FMA loop on nt threads; GFLOP/s of all threads together.
double fma_peak(bool avx512, int nt, int trials) {
  double best = 0;
  for (int r = 0; r < trials; ++r) {
    std::vector<float> sink(static_cast<size_t>(nt));
    const int64_t iters = avx512 ? kFmaIters / 2 : kFmaIters;
    double t = run_threads(nt, [&](int i) {
      sink[static_cast<size_t>(i)] = avx512 ? fma_loop_avx512(iters, 1.0f + i) : fma_loop_avx2(iters, 1.0f + i);
    });
    double flop = double(iters) * nt * (avx512 ? kFlopPerIterAvx512 : kFlopPerIterAvx2);
    if (sink[0] == 12345.f) std::printf(" ");  // keep the result alive
    best = std::max(best, flop / t * 1e-9);
  }
  return best;
}

// ---- STREAM --------------------------------------------------------------------------

constexpr int64_t kStreamN = int64_t(16) << 20;  // doubles per array: 128 MiB
constexpr int kStreamTrials = 10;

struct StreamResult {
  double copy = 0, scale = 0, add = 0, triad = 0, copy_nt = 0;  // GB/s (1e9 bytes/s), best of the trials
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
  auto best = [&](double& slot, double bytes, const std::function<void(int)>& body) {
    for (int k = 0; k < kStreamTrials; ++k) slot = std::max(slot, bytes / run_threads(nt, body) * 1e-9);
  };
  const double B = sizeof(double) * double(n);
  best(r.copy, 2 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) c[i] = a[i];
  });
  best(r.scale, 2 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) b[i] = s * c[i];
  });
  best(r.add, 3 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) c[i] = a[i] + b[i];
  });
  best(r.triad, 3 * B, [&](int t) {
    for (int64_t i = lo(t); i < hi(t); ++i) a[i] = b[i] + s * c[i];
  });
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
    double avx2, avx512, copy, scale, add, triad, copy_nt;
  };
  std::vector<Row> rows;
  for (int nt : threads) {
    Row r{nt, fma_peak(false, nt, 5), has_avx512 ? fma_peak(true, nt, 5) : 0.0, 0, 0, 0, 0, 0};
    StreamResult s = stream(nt);
    r.copy = s.copy, r.scale = s.scale, r.add = s.add, r.triad = s.triad, r.copy_nt = s.copy_nt;
    rows.push_back(r);
  }
  if (json) {
    std::printf("{\"cpu\": \"%s\", \"hardware_threads\": %u, \"avx2\": true, \"avx512f\": %s, \"rows\": [",
                cpu_model().c_str(), std::thread::hardware_concurrency(), has_avx512 ? "true" : "false");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf(
          "%s\n  {\"threads\": %d, \"fma_gflops_avx2\": %.2f, \"fma_gflops_avx512\": %.2f, \"stream_copy_gbs\": %.2f, "
          "\"stream_scale_gbs\": %.2f, \"stream_add_gbs\": %.2f, \"stream_triad_gbs\": %.2f, \"copy_nt_gbs\": %.2f}",
          i ? "," : "", r.threads, r.avx2, r.avx512, r.copy, r.scale, r.add, r.triad, r.copy_nt);
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("CPU: %s, %u hardware threads, AVX2+FMA yes, AVX-512F %s\n", cpu_model().c_str(),
              std::thread::hardware_concurrency(), has_avx512 ? "yes" : "no");
  std::printf("%7s %14s %16s %12s %12s %12s %12s %14s\n", "threads", "FMA avx2 GF/s", "FMA avx512 GF/s", "copy GB/s",
              "scale GB/s", "add GB/s", "triad GB/s", "copy_nt GB/s");
  for (const Row& r : rows)
    std::printf("%7d %14.1f %16s %12.1f %12.1f %12.1f %12.1f %14.1f\n", r.threads, r.avx2,
                has_avx512 ? std::to_string(r.avx512).substr(0, 6).c_str() : "n/a", r.copy, r.scale, r.add, r.triad,
                r.copy_nt);
  std::printf("(FMA: 2 FLOP per lane; STREAM bytes exclude write-allocate traffic; best of several trials)\n");
  return 0;
}
