// genai_bench: Google Benchmark binary for genai's kernels (kernel/...) and whole
// training steps (train_step/...). The thread count comes from GENAI_NUM_THREADS
// (default: all cores). Rates are reported as FLOP/s or bytes/s counters.
#include <benchmark/benchmark.h>

#include <genai/genai.hpp>

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("genai_threads", std::to_string(genai::get_num_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
