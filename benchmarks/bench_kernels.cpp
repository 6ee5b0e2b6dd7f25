// kernel/... benchmarks: GEMM and elementwise kernels, with a plain baseline
// (a copy loop) to compare memory-bound rates against.
#include <benchmark/benchmark.h>

#include <cstring>

#include <genai/genai.hpp>

using namespace genai;

// kernel/sgemm/n: C = A B, all n x n, row-major float32.
static void BM_sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  manual_seed(0);
  Tensor a = randn({n, n}), b = randn({n, n});
  Tensor c = zeros({n, n});
  for (auto _ : state) {
    kernels::gemm<float>(n, n, n, a.data_ptr<float>(), n, 1, b.data_ptr<float>(), n, 1, c.data_ptr<float>(), n);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_sgemm)->Name("kernel/sgemm")->Arg(128)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();

// kernel/add: out = a + b on 16 Mi floats (memory bound: 3 x 64 MiB moved).
static void BM_add(benchmark::State& state) {
  const int64_t n = int64_t(16) << 20;
  Tensor a = randn({n}), b = randn({n});
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  state.counters["bytes/s"] = benchmark::Counter(3.0 * 4 * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_add)->Name("kernel/add")->Unit(benchmark::kMillisecond)->UseRealTime();

// kernel/gelu: out = gelu(x) on 16 Mi floats.
static void BM_gelu(benchmark::State& state) {
  const int64_t n = int64_t(16) << 20;
  Tensor x = randn({n});
  for (auto _ : state) benchmark::DoNotOptimize(gelu(x).raw_data());
  state.counters["bytes/s"] = benchmark::Counter(2.0 * 4 * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_gelu)->Name("kernel/gelu")->Unit(benchmark::kMillisecond)->UseRealTime();

// kernel/copy_baseline: memcpy of 16 Mi floats into a fresh buffer (the plain baseline).
static void BM_copy(benchmark::State& state) {
  const int64_t n = int64_t(16) << 20;
  Tensor x = randn({n});
  for (auto _ : state) {
    Tensor y = empty({n});
    std::memcpy(y.raw_data(), x.raw_data(), static_cast<size_t>(n) * 4);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.counters["bytes/s"] = benchmark::Counter(2.0 * 4 * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_copy)->Name("kernel/copy_baseline")->Unit(benchmark::kMillisecond)->UseRealTime();
