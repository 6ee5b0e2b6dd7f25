// kernel/... benchmarks: the kernels behind every model (REFERENCE_MODELS.md),
// each with a rate counter (FLOP/s for compute-bound kernels, bytes/s for
// memory-bound ones) and, for the memory-bound ones, a plain baseline next to it.
//
//   kernel/sgemm/n            C = A B through kernels::gemm, n x n row-major, n = 128 ... 2048
//   kernel/sgemm_tn/n         C = A^T B (A given row-major; the product dW = X^T dY of backward)
//   kernel/sgemm_nt/n         C = A B^T (dX = dY W^T)
//   kernel/matmul{,_tn,_nt}/n the same three through genai::matmul on (transposed) views,
//                             i.e. with the op's dispatch and output allocation
//   kernel/conv2d_3x3/...     3x3, 64 -> 64 channels, 56x56, batch 8, padding 1 (genai::conv2d):
//                             forward (no graph), backward (autograd: dx and dw), and its two
//                             halves backward_data (conv_transpose2d) and backward_weights
//                             (conv2d_weight_grad)
//   kernel/attention/...      causal scaled_dot_product_attention, B 8, H 8, T 256, D 64:
//                             forward (no graph), forward_backward; gemm_reference: the two
//                             batched GEMMs of unmasked attention on those shapes (q k^T, s v)
//   kernel/layernorm          layer_norm over the last dim of 4096 x 1024 (with weight and bias)
//   kernel/softmax            softmax over the last dim of 4096 x 1024
//   kernel/add, kernel/gelu   on 16 Mi floats (64 MiB per array)
//   kernel/copy_baseline      a plain copy loop over 16 Mi floats, split over the genai threads
//   kernel/copy_baseline/memcpy   one std::memcpy of 16 Mi floats on one thread
//   kernel/add_baseline       a plain c[i] = a[i] + b[i] loop, split over the genai threads
//   kernel/op_overhead        1000 adds on 16-element tensors with autograd, forward + backward
//
// FLOP conventions (one FMA = 2 FLOP): GEMM 2 n^3. conv2d forward 2 N Cout Ho Wo Cin 9;
// backward (dx and dw) twice that; backward_data and backward_weights once each.
// Causal attention counts only the score entries that are not masked, T (T + 1) / 2
// per head (the diagonal included): forward 2 GEMMs (Q K^T and P V), each
// 2 D T (T + 1) / 2 FLOP per head; backward 4 (dV = P^T dO, dP = dO V^T, dQ = dS K,
// dK = dS^T Q), so forward + backward = 3x forward. The recomputation of Q K^T in
// backward (FlashAttention-2 style) is work we chose to do, so it is not counted:
// FlashAttention's papers count backward as 2.5x forward (3.5x in all), which
// would make our rate 17% higher.
// Byte conventions (no write-allocate traffic, as STREAM): add 3 x 4 n, gelu 2 x 4 n,
// copy 2 x 4 n, layernorm and softmax 2 x 4 x 4096 x 1024 (read x, write y; the
// 4096 x 1024 arrays are 16 MiB each, so they partly stay in the 32 MiB L3 between
// iterations: rates above DRAM bandwidth are possible).
//
// Every benchmark reports wall time (UseRealTime) and the CPU time of the whole
// process (MeasureProcessCPUTime: all threads), so cpu/real shows how busy the
// threads really were on a shared machine.
#include <benchmark/benchmark.h>

#include <cstring>

#include <genai/genai.hpp>

using namespace genai;

namespace {

constexpr int64_t kElems = int64_t(16) << 20;  // 16 Mi floats, 64 MiB

void rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- GEMM ---------------------------------------------------------------------------------

enum class Trans { NN, TN, NT };

// kernel/sgemm{,_tn,_nt}/n through kernels::gemm: transposition is a stride swap.
template <Trans tr>
void BM_sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  manual_seed(0);
  Tensor a = randn({n, n}), b = randn({n, n}), c = zeros({n, n});
  const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
  // A^T (i, k) = A[k n + i]: row stride 1, column stride n
  const int64_t ars = tr == Trans::TN ? 1 : n, acs = tr == Trans::TN ? n : 1;
  const int64_t brs = tr == Trans::NT ? 1 : n, bcs = tr == Trans::NT ? n : 1;
  for (auto _ : state) {
    kernels::gemm<float>(n, n, n, pa, ars, acs, pb, brs, bcs, c.data_ptr<float>(), n);
    benchmark::DoNotOptimize(c.data_ptr<float>());
    benchmark::ClobberMemory();
  }
  rate(state, "FLOP/s", 2.0 * n * n * n);
}

// kernel/matmul{,_tn,_nt}/n through genai::matmul on views (a.t() is a view, not a copy).
template <Trans tr>
void BM_matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  manual_seed(0);
  Tensor a = randn({n, n}), b = randn({n, n});
  Tensor av = tr == Trans::TN ? a.t() : a, bv = tr == Trans::NT ? b.t() : b;
  for (auto _ : state) benchmark::DoNotOptimize(matmul(av, bv).raw_data());
  rate(state, "FLOP/s", 2.0 * n * n * n);
}

void gemm_sizes(benchmark::internal::Benchmark* b) {
  for (int n : {128, 256, 512, 1024, 2048}) b->Arg(n);
  b->Unit(benchmark::kMicrosecond)->UseRealTime()->MeasureProcessCPUTime();
}

BENCHMARK(BM_sgemm<Trans::NN>)->Name("kernel/sgemm")->Apply(gemm_sizes);
BENCHMARK(BM_sgemm<Trans::TN>)->Name("kernel/sgemm_tn")->Apply(gemm_sizes);
BENCHMARK(BM_sgemm<Trans::NT>)->Name("kernel/sgemm_nt")->Apply(gemm_sizes);
BENCHMARK(BM_matmul<Trans::NN>)->Name("kernel/matmul")->Apply(gemm_sizes);
BENCHMARK(BM_matmul<Trans::TN>)->Name("kernel/matmul_tn")->Apply(gemm_sizes);
BENCHMARK(BM_matmul<Trans::NT>)->Name("kernel/matmul_nt")->Apply(gemm_sizes);

// ---- conv2d 3x3 ---------------------------------------------------------------------------

constexpr int64_t kConvN = 8, kConvC = 64, kConvO = 64, kConvH = 56, kConvW = 56;
constexpr double kConvFlops = 2.0 * kConvN * kConvO * kConvH * kConvW * kConvC * 9;  // Ho = H, Wo = W (padding 1)

// kernel/conv2d_3x3/forward: y = conv2d(x, w, padding 1), no graph recorded.
void BM_conv_forward(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kConvN, kConvC, kConvH, kConvW}), w = randn({kConvO, kConvC, 3, 3});
  for (auto _ : state) benchmark::DoNotOptimize(conv2d(x, w, Tensor(), 1, 1).raw_data());
  rate(state, "FLOP/s", kConvFlops);
}
BENCHMARK(BM_conv_forward)->Name("kernel/conv2d_3x3/forward")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/conv2d_3x3/backward: dx and dw of y = conv2d(x, w) for a given dy, through autograd
// (the graph is built once and kept: retain_graph).
void BM_conv_backward(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kConvN, kConvC, kConvH, kConvW}).requires_grad_(),
         w = randn({kConvO, kConvC, 3, 3}).requires_grad_();
  Tensor y = conv2d(x, w, Tensor(), 1, 1);
  Tensor dy = randn_like(y);
  for (auto _ : state) {
    TensorList g = autograd::grad({y}, {x, w}, {dy}, /*retain_graph=*/true);
    benchmark::DoNotOptimize(g[0].raw_data());
  }
  rate(state, "FLOP/s", 2 * kConvFlops);
}
BENCHMARK(BM_conv_backward)->Name("kernel/conv2d_3x3/backward")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/conv2d_3x3/backward_data: dx = conv_transpose2d(dy, w, padding 1) (what backward runs for dx).
void BM_conv_backward_data(benchmark::State& state) {
  manual_seed(0);
  Tensor dy = randn({kConvN, kConvO, kConvH, kConvW}), w = randn({kConvO, kConvC, 3, 3});
  for (auto _ : state) benchmark::DoNotOptimize(conv_transpose2d(dy, w, Tensor(), 1, 1).raw_data());
  rate(state, "FLOP/s", kConvFlops);
}
BENCHMARK(BM_conv_backward_data)->Name("kernel/conv2d_3x3/backward_data")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MeasureProcessCPUTime();

// kernel/conv2d_3x3/backward_weights: dw = conv2d_weight_grad(x, dy) (what backward runs for dw).
void BM_conv_backward_weights(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kConvN, kConvC, kConvH, kConvW}), dy = randn({kConvN, kConvO, kConvH, kConvW});
  for (auto _ : state) benchmark::DoNotOptimize(conv2d_weight_grad(x, dy, {kConvO, kConvC, 3, 3}, 1, 1).raw_data());
  rate(state, "FLOP/s", kConvFlops);
}
BENCHMARK(BM_conv_backward_weights)->Name("kernel/conv2d_3x3/backward_weights")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MeasureProcessCPUTime();

// ---- attention ----------------------------------------------------------------------------

constexpr int64_t kAttB = 8, kAttH = 8, kAttT = 256, kAttD = 64;
// causal: T (T + 1) / 2 unmasked scores per head; 2 GEMMs of 2 D FLOP per score
constexpr double kAttFwdFlops = 2.0 * 2.0 * kAttD * (kAttT * (kAttT + 1) / 2) * kAttB * kAttH;

// kernel/attention/forward: causal scaled_dot_product_attention, no graph recorded.
void BM_attention_forward(benchmark::State& state) {
  manual_seed(0);
  Tensor q = randn({kAttB, kAttH, kAttT, kAttD}), k = randn({kAttB, kAttH, kAttT, kAttD}),
         v = randn({kAttB, kAttH, kAttT, kAttD});
  for (auto _ : state)
    benchmark::DoNotOptimize(scaled_dot_product_attention(q, k, v, Tensor(), 0.0, /*is_causal=*/true).raw_data());
  rate(state, "FLOP/s", kAttFwdFlops);
}
BENCHMARK(BM_attention_forward)->Name("kernel/attention/forward")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/attention/forward_backward: out = sdpa(q, k, v, causal); out.backward(ones).
void BM_attention_forward_backward(benchmark::State& state) {
  manual_seed(0);
  Tensor q = randn({kAttB, kAttH, kAttT, kAttD}).requires_grad_(),
         k = randn({kAttB, kAttH, kAttT, kAttD}).requires_grad_(),
         v = randn({kAttB, kAttH, kAttT, kAttD}).requires_grad_();
  Tensor dout = ones({kAttB, kAttH, kAttT, kAttD});
  for (auto _ : state) {
    Tensor out = scaled_dot_product_attention(q, k, v, Tensor(), 0.0, /*is_causal=*/true);
    out.backward(dout);
    benchmark::DoNotOptimize(q.grad().raw_data());
  }
  rate(state, "FLOP/s", 3 * kAttFwdFlops);
}
BENCHMARK(BM_attention_forward_backward)->Name("kernel/attention/forward_backward")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MeasureProcessCPUTime();

// kernel/attention/gemm_reference: the GEMMs of unfused, unmasked attention on the same
// shapes, s = q k^T (B H, T, T) and o = s v (B H, T, D), through genai::matmul on the
// batched tensors: the GEMM rate at attention's own sizes, the yardstick of the
// "within 1.5x of the GEMM time for the same FLOPs" target (compare.py).
void BM_attention_gemm_reference(benchmark::State& state) {
  manual_seed(0);
  Tensor q = randn({kAttB, kAttH, kAttT, kAttD}), k = randn({kAttB, kAttH, kAttT, kAttD}),
         v = randn({kAttB, kAttH, kAttT, kAttD});
  Tensor kt = k.transpose(-2, -1);
  for (auto _ : state) {
    Tensor sc = matmul(q, kt);
    benchmark::DoNotOptimize(matmul(sc, v).raw_data());
  }
  rate(state, "FLOP/s", 2.0 * 2.0 * kAttD * kAttT * kAttT * kAttB * kAttH);
}
BENCHMARK(BM_attention_gemm_reference)->Name("kernel/attention/gemm_reference")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MeasureProcessCPUTime();

// ---- norms and softmax (4096 x 1024) ------------------------------------------------------

constexpr int64_t kRows = 4096, kCols = 1024;

// kernel/layernorm: layer_norm(x, {1024}, weight, bias) as nn.LayerNorm(1024), no graph.
void BM_layernorm(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kRows, kCols}), w = ones({kCols}), b = zeros({kCols});
  for (auto _ : state) benchmark::DoNotOptimize(layer_norm(x, {kCols}, w, b).raw_data());
  rate(state, "bytes/s", 2.0 * 4 * kRows * kCols);
}
BENCHMARK(BM_layernorm)->Name("kernel/layernorm")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/softmax: softmax(x, -1), no graph.
void BM_softmax(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kRows, kCols});
  for (auto _ : state) benchmark::DoNotOptimize(softmax(x, -1).raw_data());
  rate(state, "bytes/s", 2.0 * 4 * kRows * kCols);
}
BENCHMARK(BM_softmax)->Name("kernel/softmax")->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// ---- elementwise (16 Mi floats) and the plain baselines ----------------------------------

// kernel/add: out = a + b (3 x 64 MiB moved).
void BM_add(benchmark::State& state) {
  manual_seed(0);
  Tensor a = randn({kElems}), b = randn({kElems});
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  rate(state, "bytes/s", 3.0 * 4 * kElems);
}
BENCHMARK(BM_add)->Name("kernel/add")->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// kernel/gelu: out = gelu(x) (exact, erf form; 2 x 64 MiB moved).
void BM_gelu(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kElems});
  for (auto _ : state) benchmark::DoNotOptimize(gelu(x).raw_data());
  rate(state, "bytes/s", 2.0 * 4 * kElems);
}
BENCHMARK(BM_gelu)->Name("kernel/gelu")->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// kernel/copy_baseline: y[i] = x[i], a plain loop split over get_num_threads() chunks
// (genai::parallel_for), into an output allocated once.
void BM_copy_loop(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kElems}), y = empty({kElems});
  const float* px = x.data_ptr<float>();
  float* py = y.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(0, kElems, int64_t(1) << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) py[i] = px[i];
    });
    benchmark::DoNotOptimize(py);
    benchmark::ClobberMemory();
  }
  rate(state, "bytes/s", 2.0 * 4 * kElems);
}
BENCHMARK(BM_copy_loop)->Name("kernel/copy_baseline")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/copy_baseline/memcpy: one std::memcpy on the calling thread (glibc uses
// non-temporal stores at this size, which skip the write-allocate read).
void BM_copy_memcpy(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({kElems}), y = empty({kElems});
  for (auto _ : state) {
    std::memcpy(y.raw_data(), x.raw_data(), static_cast<size_t>(kElems) * 4);
    benchmark::DoNotOptimize(y.raw_data());
    benchmark::ClobberMemory();
  }
  rate(state, "bytes/s", 2.0 * 4 * kElems);
}
BENCHMARK(BM_copy_memcpy)->Name("kernel/copy_baseline/memcpy")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// kernel/add_baseline: c[i] = a[i] + b[i], a plain loop split over the genai threads,
// into an output allocated once (what kernel/add could reach).
void BM_add_loop(benchmark::State& state) {
  manual_seed(0);
  Tensor a = randn({kElems}), b = randn({kElems}), c = empty({kElems});
  const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  for (auto _ : state) {
    parallel_for(0, kElems, int64_t(1) << 16, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) pc[i] = pa[i] + pb[i];
    });
    benchmark::DoNotOptimize(pc);
    benchmark::ClobberMemory();
  }
  rate(state, "bytes/s", 3.0 * 4 * kElems);
}
BENCHMARK(BM_add_loop)->Name("kernel/add_baseline")->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MeasureProcessCPUTime();

// ---- per-op overhead ----------------------------------------------------------------------

// kernel/op_overhead: y = x; 1000 times y = y + c; y.sum().backward(), on 16-element
// tensors with autograd on. The "us/op" counter is the time of one iteration / 1000:
// one add's forward, graph recording and backward, all overhead at this size.
constexpr int kOverheadOps = 1000;
void BM_op_overhead(benchmark::State& state) {
  manual_seed(0);
  Tensor x = randn({16}).requires_grad_(), c = randn({16});
  for (auto _ : state) {
    Tensor y = x;
    for (int i = 0; i < kOverheadOps; ++i) y = add(y, c);
    y.sum().backward();
    benchmark::DoNotOptimize(x.grad().raw_data());
  }
  // rate of (kOverheadOps / 1e6) per second, inverted: microseconds per op
  state.counters["us/op"] = benchmark::Counter(kOverheadOps * 1e-6, benchmark::Counter::kIsIterationInvariantRate |
                                                                         benchmark::Counter::kInvert);
}
BENCHMARK(BM_op_overhead)->Name("kernel/op_overhead")->Unit(benchmark::kMicrosecond)->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
