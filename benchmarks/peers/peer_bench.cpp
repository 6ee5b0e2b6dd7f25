// peer_bench: genai_bench's kernels timed in the libraries genai is measured
// against, on the same machine and with the same thread count:
//
//   peer/openblas/sgemm{,_tn,_nt}/n   cblas_sgemm, row-major, n = 128 ... 2048
//   peer/eigen/sgemm{,_tn,_nt}/n      Eigen's own product (Map'ed row-major matrices)
//   peer/onednn/sgemm{,_tn,_nt}/n     dnnl_sgemm (row-major)
//   peer/onednn/conv2d_3x3/{forward,backward_data,backward_weights,backward}
//                                     3x3, 64 -> 64 channels, 56x56, batch 8, padding 1
//
// sgemm_tn is C = A^T B and sgemm_nt is C = A B^T (the products backward needs),
// all operands n x n. Rates are FLOP/s counters (2 n^3 per GEMM; conv forward
// 2 N Cout Ho Wo Cin 9, backward_data and backward_weights the same each,
// backward = both = 2x forward), as in genai_bench.
//
// oneDNN is given its best case: every tensor in the layout the primitive asks
// for (format_tag::any, e.g. blocked nChw8c), reorders done once outside the
// timed loop. A framework holding NCHW tensors (PyTorch) pays reorders on top.
//
// The thread count is GENAI_NUM_THREADS (default: all hardware threads), handed
// to OpenBLAS (openblas_set_num_threads), OpenMP (oneDNN, Debian's build uses
// OpenMP) and Eigen (setNbThreads). Run one library per process
// (--benchmark_filter=peer/openblas ...), as compare.py does, so that idle
// OpenBLAS threads and OpenMP threads do not spin against each other.
// Unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE when timing OpenBLAS. As in
// genai_bench, every benchmark reports wall time and the process's CPU time.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef GENAI_PEER_OPENBLAS
#include <cblas.h>
#endif
#ifdef GENAI_PEER_DNNL
#include <dnnl.hpp>
#endif

namespace {

int peer_threads() {
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (const char* e = std::getenv("GENAI_NUM_THREADS"))
    if (std::atoi(e) > 0) n = std::atoi(e);
  return n;
}

std::vector<float> random_vector(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

enum class Trans { NN, TN, NT };

void set_gemm_counters(benchmark::State& state, int64_t n) {
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- Eigen ------------------------------------------------------------------------------

template <Trans tr>
void BM_eigen_sgemm(benchmark::State& state) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = state.range(0);
  std::vector<float> a = random_vector(n * n, 1), b = random_vector(n * n, 2), c(n * n);
  Eigen::Map<const Mat> A(a.data(), n, n), B(b.data(), n, n);
  Eigen::Map<Mat> C(c.data(), n, n);
  for (auto _ : state) {
    if constexpr (tr == Trans::NN) C.noalias() = A * B;
    if constexpr (tr == Trans::TN) C.noalias() = A.transpose() * B;
    if constexpr (tr == Trans::NT) C.noalias() = A * B.transpose();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, n);
}

// ---- OpenBLAS ---------------------------------------------------------------------------

#ifdef GENAI_PEER_OPENBLAS
template <Trans tr>
void BM_openblas_sgemm(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<float> a = random_vector(size_t(n) * n, 1), b = random_vector(size_t(n) * n, 2), c(size_t(n) * n);
  const CBLAS_TRANSPOSE ta = tr == Trans::TN ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = tr == Trans::NT ? CblasTrans : CblasNoTrans;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, ta, tb, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, n);
}
#endif

// ---- oneDNN -----------------------------------------------------------------------------

#ifdef GENAI_PEER_DNNL
template <Trans tr>
void BM_onednn_sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> a = random_vector(n * n, 1), b = random_vector(n * n, 2), c(n * n);
  const char ta = tr == Trans::TN ? 'T' : 'N', tb = tr == Trans::NT ? 'T' : 'N';
  for (auto _ : state) {
    dnnl_sgemm(ta, tb, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, n);
}

/// 3x3 convolution 64 -> 64, 56x56, batch 8, padding 1, in oneDNN's preferred layouts.
struct OnednnConv {
  static constexpr int64_t N = 8, C = 64, O = 64, H = 56, W = 56, K = 3;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::memory src, wei, dst, diff_dst, diff_src, diff_wei;       // in the primitives' layouts
  dnnl::memory bwd_src, bwd_diff_dst, bwd_wei, bwdw_diff_dst;     // where backward wants other layouts

  static double flops() { return 2.0 * N * O * H * W * C * K * K; }

  OnednnConv() {
    using tag = dnnl::memory::format_tag;
    using dt = dnnl::memory::data_type;
    const dnnl::memory::dims src_dims{N, C, H, W}, wei_dims{O, C, K, K}, dst_dims{N, O, H, W}, strides{1, 1},
        pad{1, 1};
    dnnl::memory::desc src_any(src_dims, dt::f32, tag::any), wei_any(wei_dims, dt::f32, tag::any),
        dst_any(dst_dims, dt::f32, tag::any);
    dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                       src_any, wei_any, dst_any, strides, pad, pad);
    fwd_pd = dnnl::convolution_forward::primitive_desc(fd, eng);
    dnnl::convolution_backward_data::desc bd(dnnl::algorithm::convolution_direct, src_any, wei_any, dst_any, strides,
                                             pad, pad);
    bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(bd, eng, fwd_pd);
    dnnl::convolution_backward_weights::desc bw(dnnl::algorithm::convolution_direct, src_any, wei_any, dst_any,
                                                strides, pad, pad);
    bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(bw, eng, fwd_pd);
    src = filled(fwd_pd.src_desc(), 1);
    wei = filled(fwd_pd.weights_desc(), 2);
    dst = dnnl::memory(fwd_pd.dst_desc(), eng);
    diff_dst = filled(bwd_data_pd.diff_dst_desc(), 3);
    diff_src = dnnl::memory(bwd_data_pd.diff_src_desc(), eng);
    bwd_wei = filled(bwd_data_pd.weights_desc(), 2);
    bwd_src = filled(bwd_weights_pd.src_desc(), 1);
    bwdw_diff_dst = filled(bwd_weights_pd.diff_dst_desc(), 3);
    diff_wei = dnnl::memory(bwd_weights_pd.diff_weights_desc(), eng);
  }
  dnnl::memory filled(const dnnl::memory::desc& d, unsigned seed) {
    dnnl::memory m(d, eng);
    const size_t n = d.get_size() / sizeof(float);
    std::vector<float> v = random_vector(n, seed);
    std::copy(v.begin(), v.end(), static_cast<float*>(m.get_data_handle()));
    return m;
  }
  void forward(const dnnl::convolution_forward& p) {
    p.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  }
  void backward_data(const dnnl::convolution_backward_data& p) {
    p.execute(strm, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, bwd_wei}, {DNNL_ARG_DIFF_SRC, diff_src}});
  }
  void backward_weights(const dnnl::convolution_backward_weights& p) {
    p.execute(strm, {{DNNL_ARG_SRC, bwd_src}, {DNNL_ARG_DIFF_DST, bwdw_diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_wei}});
  }
};

void BM_onednn_conv(benchmark::State& state, int which) {  // 0 fwd, 1 bwd data, 2 bwd weights, 3 both
  OnednnConv c;
  dnnl::convolution_forward fwd(c.fwd_pd);
  dnnl::convolution_backward_data bd(c.bwd_data_pd);
  dnnl::convolution_backward_weights bw(c.bwd_weights_pd);
  for (auto _ : state) {
    if (which == 0) c.forward(fwd);
    if (which == 1 || which == 3) c.backward_data(bd);
    if (which == 2 || which == 3) c.backward_weights(bw);
    c.strm.wait();
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(OnednnConv::flops() * (which == 3 ? 2 : 1), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string("impl: ") +
                 (which == 0 ? c.fwd_pd.impl_info_str()
                             : which == 1 ? c.bwd_data_pd.impl_info_str() : c.bwd_weights_pd.impl_info_str()));
}
#endif

template <class F>
void register_gemm(const std::string& name, F fn) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  for (int n : {128, 256, 512, 1024, 2048}) b->Arg(n);
  b->Unit(benchmark::kMicrosecond)->UseRealTime()->MeasureProcessCPUTime();
}

}  // namespace

int main(int argc, char** argv) {
  const int nt = peer_threads();
#ifdef _OPENMP
  omp_set_num_threads(nt);
#endif
  Eigen::setNbThreads(nt);
  register_gemm("peer/eigen/sgemm", BM_eigen_sgemm<Trans::NN>);
  register_gemm("peer/eigen/sgemm_tn", BM_eigen_sgemm<Trans::TN>);
  register_gemm("peer/eigen/sgemm_nt", BM_eigen_sgemm<Trans::NT>);
#ifdef GENAI_PEER_OPENBLAS
  openblas_set_num_threads(nt);
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  register_gemm("peer/openblas/sgemm", BM_openblas_sgemm<Trans::NN>);
  register_gemm("peer/openblas/sgemm_tn", BM_openblas_sgemm<Trans::TN>);
  register_gemm("peer/openblas/sgemm_nt", BM_openblas_sgemm<Trans::NT>);
#endif
#ifdef GENAI_PEER_DNNL
  {
    const dnnl_version_t* v = dnnl_version();
    benchmark::AddCustomContext("onednn_version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                                      std::to_string(v->patch));
  }
  register_gemm("peer/onednn/sgemm", BM_onednn_sgemm<Trans::NN>);
  register_gemm("peer/onednn/sgemm_tn", BM_onednn_sgemm<Trans::TN>);
  register_gemm("peer/onednn/sgemm_nt", BM_onednn_sgemm<Trans::NT>);
  const char* conv_names[] = {"forward", "backward_data", "backward_weights", "backward"};
  for (int w = 0; w < 4; ++w)
    benchmark::RegisterBenchmark((std::string("peer/onednn/conv2d_3x3/") + conv_names[w]).c_str(),
                                 [w](benchmark::State& s) { BM_onednn_conv(s, w); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MeasureProcessCPUTime();
#endif
  benchmark::AddCustomContext("peer_threads", std::to_string(nt));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
