// bench_gpu: the CUDA kernels on every timed row of the op table (tests/op_table.h: the paper's 23 convolutions
// in their three passes at the 572x572 tile, batch 1, and the real-size rows of every other kernel), each timed
// with CUDA events, one call at a time, and reported as the median of --iters calls (default 20), with the
// baselines measured in the same run:
//   * per convolution of the paper's network (the op table's list, paper_layers()) and pass, cuDNN's fastest
//     algorithm from cudnnFind*Algorithm in three arithmetics (bench/cudnn_conv.h): fma (FP32 FMA only: our
//     arithmetic), tf32 (TF32 tensor cores permitted) and bf16 (bfloat16 data, tensor cores). Our rows report
//     ratio_fma / ratio_tf32 / ratio_bf16 = our time / cuDNN's (below 1: ours is faster); the 3x3 forwards
//     also ratio_sgemm against a cuBLAS SGEMM of the same implicit-GEMM dimensions;
//   * the memory-bound rows (fewer flops than bytes: relu, maxpool2x2, crop_concat, dropout, softmax_xent,
//     softmax_forward, sgd_momentum, add, fill, check_finite, the restoration's elementwise kernels) with
//     ratio_memcpy = our time / a device-to-device copy moving the row's bytes, and ratio_cudnn where cuDNN
//     has the op (activation, pooling, softmax);
//   * our convolutions also in TF32 and BF16 (tensor cores, FP32 tensors; paper_conv_rows()): ours_tf32/ and
//     ours_bf16/ report the ratio to cuDNN in their own arithmetic (cuDNN's bf16 moves BF16 tensors, half our
//     bytes); the 3x3 forwards are also timed in cuDNN with NHWC tensors (cudnn_tf32_nhwc/, cudnn_bf16_nhwc/):
//     what the layout is worth to the vendor library (docs/gpu.md, the choice of NCHW);
//   * the other rows (batch 4, null bias, the stencils) with their GFLOP/s.
// Rows are named ours/<the row's bench_name()> (ours_tf32/, ours_bf16/ for the paper's layers) and
// cudnn_<math>/<op>/<layer>/<CtoK@HxW>. Counters: ms (median GPU time per call), GFLOP/s and GB/s from the row's flop
// and byte counts, the ratios, and for cuDNN rows the algorithm and math type chosen. Extra flags (before Google
// Benchmark's own): --iters N, --jsonl FILE (every finished row appended as one JSON line, so a run cut short keeps
// what it measured). Without a CUDA device it prints "SKIPPED: no CUDA device" and exits 0 (--benchmark_list_tests
// still lists the rows).
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/gpu_timing.h"
#if UNET_BENCH_HAVE_CUDNN
#include "bench/cudnn_conv.h"
#endif
#include "engine/backend.h"
#include "tests/op_table.h"

#define CUBLAS_CHECK(call)                                                                            \
  do {                                                                                                \
    cublasStatus_t st_ = (call);                                                                      \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                 \
      throw std::runtime_error(std::string(#call) + " failed: cuBLAS status " + std::to_string(st_)); \
  } while (0)

namespace {

using namespace bench_gpu;
using unet::test::Conv;
using unet::test::OpCase;
using unet::test::PaperLayer;

// --- cuBLAS ---------------------------------------------------------------------------------------------

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    CUBLAS_CHECK(cublasCreate(&x));
    CUBLAS_CHECK(cublasSetStream(x, g_stream));
    CUBLAS_CHECK(cublasSetMathMode(x, CUBLAS_DEFAULT_MATH));  // fp32 SGEMM (TF32 only with CUBLAS_TF32_TENSOR_OP_MATH)
    return x;
  }();
  return h;
}

double sgemm_ms(int m, int n, int k) {
  return memoized("sgemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k), [&] {
    Buf a(static_cast<int64_t>(m) * k), b(static_cast<int64_t>(k) * n), c(static_cast<int64_t>(m) * n);
    const float one = 1.0f, zero = 0.0f;
    return median_ms([&] {
      CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a.f(), m, b.f(), k, &zero, c.f(), m));
    });
  });
}

// --- cuDNN beside the paper's convolutions -------------------------------------------------------------------

const char* pass_name(int p) { return p == 0 ? "forward" : p == 1 ? "backward_data" : "backward_weight"; }
std::string conv_op(const PaperLayer& l, int pass) {
  return std::string(unet::test::conv_name(l.kind)) + "_" + pass_name(pass);
}

#if UNET_BENCH_HAVE_CUDNN
double conv_flops(const PaperLayer& s) {
  const double taps = s.kind == Conv::k3x3 ? 9 : s.kind == Conv::k1x1 ? 1 : 4;
  const double pixels = s.kind == Conv::k3x3 ? double(s.H - 2) * (s.W - 2) : double(s.H) * s.W;  // per tap
  return 2.0 * s.C * s.K * taps * pixels;
}

// The cuDNN equivalent of one pass of one of our convolutions. upconv2x2 (C -> K, H -> 2H) is the
// transpose of the stride-2 convolution G: input [1,K,2H,2W] * filter [C,K,2,2] -> [1,C,H,W], so
// upconv forward = G's backward data, upconv backward data = G's forward, upconv backward weight =
// G's backward filter (bias gradient over G's input).
std::unique_ptr<CudnnConv> cudnn_for(const PaperLayer& s, int pass, Math math) {
  if (s.kind == Conv::up2x2) {
    const Pass p = pass == 0 ? Pass::BackwardData : pass == 1 ? Pass::Forward : Pass::BackwardFilter;
    return std::make_unique<CudnnConv>(p, math, 1, s.K, 2 * s.H, 2 * s.W, s.C, 2, 2, /*bias_of_input=*/true);
  }
  const Pass p = pass == 0 ? Pass::Forward : pass == 1 ? Pass::BackwardData : Pass::BackwardFilter;
  return std::make_unique<CudnnConv>(p, math, 1, s.C, s.H, s.W, s.K, s.kind == Conv::k3x3 ? 3 : 1, 1);
}

std::string cudnn_key(const PaperLayer& s, int pass, Math math) {
  return std::string("cudnn_") + math_name(math) + "/" + conv_op(s, pass) + "/" + s.label();
}

void cudnn_conv(benchmark::State& st, const PaperLayer& s, int pass, Math math) {
  auto conv = cudnn_for(s, pass, math);
  const double ms = measure(
      st, [&] { (*conv)(); }, conv_flops(s), 0.0);
  st.counters["algo"] = conv->algo();
  st.counters["math_type"] = conv->math_used();
  st.counters["workspace_MiB"] = conv->workspace_mib();
  memo()[cudnn_key(s, pass, math)] = ms;
}

// --- cuDNN's versions of the memory-bound ops, on buffers of their own --------------------------------------

double cudnn_relu_ms(int N, int C, int H, int W, bool backward) {
  const int64_t n = int64_t{N} * C * H * W;
  Buf x(n), y(n), dy(n, -1, 1, 5), dx(n);
  TensorDesc d(N, C, H, W);
  cudnnActivationDescriptor_t a;
  CUDNN_CHECK(cudnnCreateActivationDescriptor(&a));
  CUDNN_CHECK(cudnnSetActivationDescriptor(a, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  const float one = 1.0f, zero = 0.0f;
  const double ms = median_ms([&] {
    if (!backward) CUDNN_CHECK(cudnnActivationForward(cudnn(), a, &one, d.d, x.f(), &zero, d.d, y.f()));
    else
      CUDNN_CHECK(cudnnActivationBackward(cudnn(), a, &one, d.d, y.f(), d.d, dy.f(), d.d, y.f(), &zero, d.d, dx.f()));
  });
  cudnnDestroyActivationDescriptor(a);
  return ms;
}

double cudnn_pool_ms(int N, int C, int H, int W, bool backward) {
  const int64_t n = int64_t{N} * C * H * W, m = n / 4;
  Buf x(n), y(m), dy(m, -1, 1, 4), dx(n);
  TensorDesc xd(N, C, H, W), yd(N, C, H / 2, W / 2);
  cudnnPoolingDescriptor_t p;
  CUDNN_CHECK(cudnnCreatePoolingDescriptor(&p));
  CUDNN_CHECK(
      cudnnSetPooling2dDescriptor(p, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2));
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
  const double ms = median_ms([&] {
    if (!backward) CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
    else
      CUDNN_CHECK(cudnnPoolingBackward(cudnn(), p, &one, yd.d, y.f(), yd.d, dy.f(), xd.d, x.f(), &zero, xd.d, dx.f()));
  });
  cudnnDestroyPoolingDescriptor(p);
  return ms;
}

// softmax_xent beside cudnnSoftmaxForward(LOG) (the log-probabilities alone, no loss, no gradient);
// softmax_forward beside cudnnSoftmaxForward(ACCURATE).
double cudnn_softmax_ms(int N, int K, int H, int W, bool log) {
  const int64_t n = int64_t{N} * K * H * W;
  Buf in(n, -4, 4), out(n);
  TensorDesc d(N, K, H, W);
  const float one = 1.0f, zero = 0.0f;
  return median_ms([&] {
    CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                                    CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d, in.f(), &zero, d.d, out.f()));
  });
}

// cuDNN's version of a row's op at its sizes, where there is one.
std::function<double()> cudnn_baseline(const OpCase& row) {
  if (row.dims.size() != 4) return nullptr;
  if (row.variant.find("accumulate") != std::string::npos) return nullptr;  // cuDNN's pooling backward overwrites
  const int N = static_cast<int>(row.dims[0]), C = static_cast<int>(row.dims[1]), H = static_cast<int>(row.dims[2]),
            W = static_cast<int>(row.dims[3]);
  if (row.op == "relu_forward" || row.op == "relu_backward")
    return [=] { return cudnn_relu_ms(N, C, H, W, row.op == "relu_backward"); };
  if (row.op == "maxpool2x2_forward" || row.op == "maxpool2x2_backward")
    return [=] { return cudnn_pool_ms(N, C, H, W, row.op == "maxpool2x2_backward"); };
  if (row.op == "softmax_xent" || row.op == "softmax_forward")
    return [=] { return cudnn_softmax_ms(N, C, H, W, row.op == "softmax_xent"); };
  return nullptr;
}
#endif

// --- our rows ------------------------------------------------------------------------------------------------

// Times the row's launch on buffers prepared once (inputs from Philox, outputs poisoned and guarded), then
// checks the guards (a row whose kernel wrote past an output becomes an error row).
// `layer`: the paper's layer it is, for the cuDNN and SGEMM ratios.
void our_row(benchmark::State& st, const OpCase& row, const PaperLayer* layer, int pass) {
  unet::test::Prepared p = unet::test::prepare(row, unet::test::cuda_backend(), 1);
  const double ms = measure(
      st, [&] { p.launch(); }, row.flops, row.bytes);
  for (const unet::test::Readback& out : p.read())
    if (out.guard_overwritten) throw std::runtime_error("the kernel wrote past an output (its guard is overwritten)");
  if (layer) {
#if UNET_BENCH_HAVE_CUDNN
    // The baselines: from the cuDNN rows just before (memo), or measured now when those were filtered out
    // or failed (a failure leaves the ratio out rather than the row). An FP32 row takes all three; a TF32 or
    // BF16 row cuDNN in its own arithmetic.
    for (Math m : {Math::FMA, Math::TF32, Math::BF16}) {
      if (row.precision == unet::test::Precision::tf32 && m != Math::TF32) continue;
      if (row.precision == unet::test::Precision::bf16 && m != Math::BF16) continue;
      try {
        const double base = memoized(cudnn_key(*layer, pass, m), [&] {
          auto conv = cudnn_for(*layer, pass, m);
          return median_ms([&] { (*conv)(); });
        });
        st.counters[std::string("ratio_") + math_name(m)] = ms / base;
      } catch (const std::exception&) {}
    }
#endif
    if (layer->kind == Conv::k3x3 && pass == 0 && row.precision == unet::test::Precision::fp32)
      st.counters["ratio_sgemm"] = ms / sgemm_ms((layer->H - 2) * (layer->W - 2), layer->K, 9 * layer->C);
    return;
  }
  if (row.flops < row.bytes) st.counters["ratio_memcpy"] = ms / memcpy_ms(row.bytes);
#if UNET_BENCH_HAVE_CUDNN
  if (auto base = cudnn_baseline(row)) st.counters["ratio_cudnn"] = ms / base();
#endif
}

void register_all() {
  auto reg = [](const std::string& name, std::function<void(benchmark::State&)> body) {
    benchmark::RegisterBenchmark(name.c_str(), [body](benchmark::State& st) { guarded(st, body); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(g_iters);
  };
  static const std::vector<OpCase> rows = [] {
    std::vector<OpCase> timed;
    for (OpCase& r : unet::test::op_cases())
      if (unet::test::timed(r)) timed.push_back(std::move(r));
    return timed;
  }();
  std::map<std::string, const OpCase*> by_name;
  for (const OpCase& r : rows) by_name[r.bench_name()] = &r;
  // The paper's convolutions in TF32 and BF16, by their layer's name (without the precision's suffix).
  static const std::vector<OpCase> tc_rows = [] {
    std::vector<OpCase> v = unet::test::paper_conv_rows(unet::kernels::Precision::TF32);
    for (OpCase& r : unet::test::paper_conv_rows(unet::kernels::Precision::BF16)) v.push_back(std::move(r));
    return v;
  }();
  std::map<std::string, const OpCase*> tc_by_name;
  for (const OpCase& r : tc_rows) {  // bench_name(): op/layer/label/<precision>
    const std::string prec = precision_name(r.precision), name = r.bench_name();
    tc_by_name["ours_" + prec + "/" + name.substr(0, name.size() - prec.size() - 1)] = &r;
  }

  // Per layer and pass: cuDNN in its three arithmetics, then ours (whose ratios read their times).
  static const std::vector<PaperLayer> layers = unet::test::paper_layers();
  for (const PaperLayer& l : layers) {
    for (int pass = 0; pass < 3; ++pass) {
      const std::string tail = conv_op(l, pass) + "/" + l.label();
#if UNET_BENCH_HAVE_CUDNN
      for (Math m : {Math::FMA, Math::TF32, Math::BF16}) {
        const bool no_bias = m == Math::BF16 && pass == 2;
        reg(std::string("cudnn_") + math_name(m) + "/" + tail + (no_bias ? "/no_db" : ""),
            [&l, pass, m](benchmark::State& st) { cudnn_conv(st, l, pass, m); });
      }
#endif
      const auto it = by_name.find(tail);
      if (it == by_name.end()) throw std::runtime_error("the op table has no row " + tail);
      const OpCase* row = it->second;
      reg("ours/" + tail, [row, &l, pass](benchmark::State& st) { our_row(st, *row, &l, pass); });
      by_name.erase(it);
#if UNET_BENCH_HAVE_CUDNN
      if (l.kind == Conv::k3x3 && pass == 0)
        for (Math m : {Math::TF32, Math::BF16})
          reg(std::string("cudnn_") + math_name(m) + "_nhwc/" + tail, [&l, m](benchmark::State& st) {
            CudnnConv conv(Pass::Forward, m, 1, l.C, l.H, l.W, l.K, 3, 1, false, /*nhwc=*/true);
            measure(
                st, [&] { conv(); }, conv_flops(l), 0.0);
            st.counters["algo"] = conv.algo();
            st.counters["math_type"] = conv.math_used();
          });
#endif
      for (const char* prec : {"tf32", "bf16"}) {
        const std::string name = std::string("ours_") + prec + "/" + tail;
        const auto tc = tc_by_name.find(name);
        if (tc == tc_by_name.end()) throw std::runtime_error("the op table has no row " + name);
        const OpCase* tc_row = tc->second;
        reg(name, [tc_row, &l, pass](benchmark::State& st) { our_row(st, *tc_row, &l, pass); });
      }
    }
  }
  // Every other timed row, in the table's order.
  for (const OpCase& r : rows)
    if (by_name.count(r.bench_name()))
      reg("ours/" + r.bench_name(), [&r](benchmark::State& st) { our_row(st, r, nullptr, 0); });
}

}  // namespace

int main(int argc, char** argv) {
  // Our flags first; the rest is Google Benchmark's.
  std::string jsonl;
  bool list = false;
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) {
      g_iters = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--jsonl" && i + 1 < argc) {
      jsonl = argv[++i];
    } else {
      list = list || a == "--benchmark_list_tests" || a == "--benchmark_list_tests=true";
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  const bool device = unet::cuda_available();
  if (!device && !list) {
    std::printf("SKIPPED: no CUDA device\n");
    return 0;
  }
  try {
    if (device) {
      g_stream = static_cast<cudaStream_t>(unet::stream_for(unet::Device::CUDA));
      const unet::DeviceInfo info = unet::cuda_device_info();
      std::printf("GPU: %s, %d SMs, compute capability %d.%d\n", info.name.c_str(), info.sm_count, info.cc_major,
                  info.cc_minor);
#if UNET_BENCH_HAVE_CUDNN
      std::printf(
          "baselines: cuDNN %zu (fastest algorithm from cudnnFind*, in fma, tf32 and bf16), cuBLAS SGEMM, "
          "cudaMemcpy; medians of %d calls\n",
          cudnnGetVersion(), g_iters);
#else
      std::printf(
          "baselines: cuBLAS SGEMM and cudaMemcpy (built without cuDNN: no cuDNN ratios); medians of %d calls\n",
          g_iters);
#endif
    }
    register_all();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  JsonLinesReporter reporter(jsonl);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
