// genai_bench: Google Benchmark binary for genai's kernels (kernel/...) and whole
// training steps (train_step/...); every benchmarks/bench_*.cpp registers into it.
// The thread count comes from GENAI_NUM_THREADS (default: all cores). Rates are
// reported as FLOP/s or bytes/s counters. benchmarks/pytorch/compare.py runs it
// with --benchmark_format=json at 1 and 2 threads (docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <genai/genai.hpp>

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("genai_threads", std::to_string(genai::get_num_threads()));
  benchmark::AddCustomContext("genai_compiler", __VERSION__);
#if defined(__AVX512F__)
  benchmark::AddCustomContext("genai_simd", "avx512f");
#elif defined(__AVX2__) && defined(__FMA__)
  benchmark::AddCustomContext("genai_simd", "avx2+fma");
#else
  benchmark::AddCustomContext("genai_simd", "none (portable C++)");
#endif
#ifdef _OPENMP
  benchmark::AddCustomContext("genai_openmp", std::to_string(_OPENMP));
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
