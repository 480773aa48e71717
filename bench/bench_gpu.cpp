// bench_gpu: every kernel of the CUDA table at the paper's U-Net shapes (batch 1), each timed with CUDA
// events (Google Benchmark's manual time), with the baselines measured in the same run:
//   * convolutions (conv3x3, conv1x1, upconv2x2; forward, backward data, backward weight): cuDNN's fastest
//     algorithm as cudnnFind*Algorithm reports it, restricted to fp32 FMA math (CUDNN_FMA_MATH: on sm_80+
//     CUDNN_DEFAULT_MATH would allow TF32 tensor cores, which is not fp32 arithmetic). Our rows report
//     ratio_to_cudnn = our time / cuDNN's time, and the conv3x3 forward rows also ratio_to_sgemm against a
//     cuBLAS SGEMM of the same implicit-GEMM dimensions (M = K, N = pixels, K = 9C);
//   * relu, maxpool2x2, softmax: cudnnActivation*/cudnnPooling*/cudnnSoftmaxForward (ratio_to_cudnn);
//   * the ops cuDNN has no counterpart for (crop_concat, dropout with our Philox mask, sgd_momentum, add,
//     fill, check_finite): ratio_to_memcpy = our time / a cudaMemcpyAsync moving the same bytes (read +
//     written).
// Counters: ms (mean GPU time per call), GFLOP/s or GB/s, the ratios. Without a CUDA device it prints
// "SKIPPED: no CUDA device" and exits 0.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#if UNET_BENCH_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/kernels.h"

#define CUBLAS_CHECK(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t st_ = (call);                                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                   \
      throw std::runtime_error(std::string(#call) + " failed: cuBLAS status " + std::to_string(st_)); \
  } while (0)

#if UNET_BENCH_HAVE_CUDNN
#define CUDNN_CHECK(call)                                                                       \
  do {                                                                                          \
    cudnnStatus_t st_ = (call);                                                                 \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                            \
      throw std::runtime_error(std::string(#call) + " failed: " + cudnnGetErrorString(st_)); \
  } while (0)
#endif

namespace {

using unet::kernels::KernelTable;

cudaStream_t g_stream = nullptr;
const KernelTable* g_k = nullptr;

// --- buffers and timing --------------------------------------------------------------------------------

// A device buffer of n floats, filled with uniform values in [lo, hi) (xorshift on the host).
class Buf {
 public:
  explicit Buf(int64_t n, float lo = -1.0f, float hi = 1.0f, uint64_t seed = 1) : n_(n) {
    UNET_CUDA_CHECK(cudaMalloc(&p_, static_cast<size_t>(n > 0 ? n : 1) * sizeof(float)));
    std::vector<float> h(static_cast<size_t>(n));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (float& v : h) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      v = lo + (hi - lo) * static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
    }
    if (n > 0) UNET_CUDA_CHECK(cudaMemcpy(p_, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Buf() { cudaFree(p_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* f() const { return static_cast<float*>(p_); }
  int32_t* i() const { return static_cast<int32_t*>(p_); }
  int64_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  int64_t n_;
};

class Events {
 public:
  Events() {
    UNET_CUDA_CHECK(cudaEventCreate(&a_));
    UNET_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~Events() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  // GPU milliseconds of `reps` calls of f on g_stream.
  template <class F>
  float time(F&& f, int reps = 1) {
    UNET_CUDA_CHECK(cudaEventRecord(a_, g_stream));
    for (int r = 0; r < reps; ++r) f();
    UNET_CUDA_CHECK(cudaEventRecord(b_, g_stream));
    UNET_CUDA_CHECK(cudaEventSynchronize(b_));
    float ms = 0.0f;
    UNET_CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
    return ms / static_cast<float>(reps);
  }

 private:
  cudaEvent_t a_ = nullptr, b_ = nullptr;
};

// Mean GPU time of a baseline (after warm-up), for the ratio counters.
template <class F>
double baseline_ms(F&& f) {
  f();
  UNET_CUDA_CHECK(cudaStreamSynchronize(g_stream));
  Events ev;
  float one = ev.time(f, 1);
  int reps = one > 0.0f ? static_cast<int>(200.0f / one) : 50;  // about 0.2 s
  if (reps < 3) reps = 3;
  if (reps > 200) reps = 200;
  return ev.time(f, reps);
}

// The benchmark loop: one call per iteration, timed with events; sets ms and GFLOP/s or GB/s. Returns ms.
template <class F>
double measure(benchmark::State& st, F&& f, double flops, double bytes) {
  f();  // warm-up (and first-launch costs)
  UNET_CUDA_CHECK(cudaStreamSynchronize(g_stream));
  Events ev;
  double total = 0.0;
  int64_t iters = 0;
  for (auto _ : st) {
    const float ms = ev.time(f);
    st.SetIterationTime(ms * 1e-3);
    total += ms;
    ++iters;
  }
  const double ms = iters > 0 ? total / static_cast<double>(iters) : 0.0;
  st.counters["ms"] = ms;
  if (ms > 0 && flops > 0) st.counters["GFLOP/s"] = flops / (ms * 1e-3) / 1e9;
  if (ms > 0 && bytes > 0) st.counters["GB/s"] = bytes / (ms * 1e-3) / 1e9;
  return ms;
}

// Runs body(st), turning any exception into a skipped row with the message.
void guarded(benchmark::State& st, const std::function<void(benchmark::State&)>& body) {
  try {
    body(st);
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
  }
}

std::map<std::string, double>& memo() {
  static std::map<std::string, double> m;
  return m;
}

// A device-to-device copy with the same traffic (bytes read + written) as a memory-bound op.
double memcpy_ms(double traffic_bytes) {
  const std::string key = "memcpy/" + std::to_string(static_cast<int64_t>(traffic_bytes));
  auto it = memo().find(key);
  if (it != memo().end()) return it->second;
  const int64_t n = static_cast<int64_t>(traffic_bytes / 2 / sizeof(float));
  Buf a(n), b(n);
  const double ms = baseline_ms([&] {
    UNET_CUDA_CHECK(cudaMemcpyAsync(b.f(), a.f(), static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice,
                                    g_stream));
  });
  memo()[key] = ms;
  return ms;
}

// --- cuBLAS ---------------------------------------------------------------------------------------------

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    CUBLAS_CHECK(cublasCreate(&x));
    CUBLAS_CHECK(cublasSetStream(x, g_stream));
    CUBLAS_CHECK(cublasSetMathMode(x, CUBLAS_DEFAULT_MATH));  // fp32 SGEMM, no TF32
    return x;
  }();
  return h;
}

struct Sgemm {
  int m, n, k;
  std::unique_ptr<Buf> a, b, c;
  Sgemm(int m_, int n_, int k_) : m(m_), n(n_), k(k_) {
    a = std::make_unique<Buf>(static_cast<int64_t>(m) * k);
    b = std::make_unique<Buf>(static_cast<int64_t>(k) * n);
    c = std::make_unique<Buf>(static_cast<int64_t>(m) * n);
  }
  void operator()() const {
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a->f(), m, b->f(), k, &zero, c->f(), m));
  }
};

double sgemm_ms(int m, int n, int k) {
  const std::string key = "sgemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  auto it = memo().find(key);
  if (it != memo().end()) return it->second;
  Sgemm g(m, n, k);
  const double ms = baseline_ms([&] { g(); });
  memo()[key] = ms;
  return ms;
}

// --- cuDNN ----------------------------------------------------------------------------------------------

#if UNET_BENCH_HAVE_CUDNN
cudnnHandle_t cudnn() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t x = nullptr;
    CUDNN_CHECK(cudnnCreate(&x));
    CUDNN_CHECK(cudnnSetStream(x, g_stream));
    return x;
  }();
  return h;
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int n, int c, int h, int w) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

bool fp32_math(cudnnMathType_t m) { return m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH; }

enum class Pass { Forward, BackwardData, BackwardFilter };

// A cuDNN convolution input[N,Ci,Hi,Wi] * filter[Co,Ci,R,R] (stride s, no padding) -> output[N,Co,Ho,Wo],
// set up for one pass with the fastest fp32 algorithm cudnnFind*Algorithm reports. For BackwardFilter the
// bias gradient (cudnnConvolutionBackwardBias of the tensor named by bias_of_input) is timed with it, as our
// backward_weight kernels compute db too.
class CudnnConv {
 public:
  CudnnConv(Pass pass, int N, int Ci, int Hi, int Wi, int Co, int R, int stride, bool bias_of_input = false)
      : pass_(pass),
        Ho_((Hi - R) / stride + 1),
        Wo_((Wi - R) / stride + 1),
        in_(N, Ci, Hi, Wi),
        out_(N, Co, Ho_, Wo_),
        bias_(1, bias_of_input ? Ci : Co, 1, 1),
        bias_of_input_(bias_of_input),
        x_(static_cast<int64_t>(N) * Ci * Hi * Wi),
        w_(static_cast<int64_t>(Co) * Ci * R * R, -0.1f, 0.1f, 2),
        y_(static_cast<int64_t>(N) * Co * Ho_ * Wo_, -1.0f, 1.0f, 3),
        b_(bias_of_input ? Ci : Co) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd_));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, Co, Ci, R, R));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd_));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd_, 0, 0, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(cd_, CUDNN_FMA_MATH));
    constexpr int kMax = 16;
    int found = 0;
    size_t memory = 0;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    bool ok = false;
    if (pass == Pass::Forward) {
      cudnnConvolutionFwdAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(cudnn(), in_.d, wd_, cd_, out_.d, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && fp32_math(perf[i].mathType)) {
          fwd_ = perf[i].algo; memory = perf[i].memory; math = perf[i].mathType; ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    } else if (pass == Pass::BackwardData) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(cudnn(), wd_, out_.d, cd_, in_.d, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && fp32_math(perf[i].mathType)) {
          bwd_data_ = perf[i].algo; memory = perf[i].memory; math = perf[i].mathType; ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(cudnn(), in_.d, out_.d, cd_, wd_, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && fp32_math(perf[i].mathType)) {
          bwd_filter_ = perf[i].algo; memory = perf[i].memory; math = perf[i].mathType; ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    }
    if (!ok) throw std::runtime_error("cuDNN found no fp32 (FMA) algorithm for this convolution");
    CUDNN_CHECK(cudnnSetConvolutionMathType(cd_, math));
    ws_bytes_ = memory;
    if (ws_bytes_ > 0) UNET_CUDA_CHECK(cudaMalloc(&ws_, ws_bytes_));
  }
  ~CudnnConv() {
    cudaFree(ws_);
    cudnnDestroyConvolutionDescriptor(cd_);
    cudnnDestroyFilterDescriptor(wd_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  void operator()() const {
    const float one = 1.0f, zero = 0.0f;
    if (pass_ == Pass::Forward) {
      CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, in_.d, x_.f(), wd_, w_.f(), cd_, fwd_, ws_, ws_bytes_, &zero,
                                          out_.d, y_.f()));
    } else if (pass_ == Pass::BackwardData) {
      CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, wd_, w_.f(), out_.d, y_.f(), cd_, bwd_data_, ws_,
                                               ws_bytes_, &zero, in_.d, x_.f()));
    } else {
      CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, in_.d, x_.f(), out_.d, y_.f(), cd_, bwd_filter_, ws_,
                                                 ws_bytes_, &zero, wd_, w_.f()));
      CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), &one, bias_of_input_ ? in_.d : out_.d,
                                               bias_of_input_ ? x_.f() : y_.f(), &zero, bias_.d, b_.f()));
    }
  }
  int algo() const { return algo_; }

 private:
  Pass pass_;
  int Ho_, Wo_;
  TensorDesc in_, out_, bias_;
  bool bias_of_input_;
  Buf x_, w_, y_, b_;
  cudnnFilterDescriptor_t wd_ = nullptr;
  cudnnConvolutionDescriptor_t cd_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_{};
  int algo_ = -1;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
};
#endif

// --- the rows -------------------------------------------------------------------------------------------

enum class ConvKind { k3x3, k1x1, up2x2 };
const char* pass_name(int p) { return p == 0 ? "forward" : p == 1 ? "backward_data" : "backward_weight"; }

struct ConvShape {
  ConvKind kind;
  int C, K, H, W;  // our kernels' arguments (forward input), batch 1
};

std::string conv_label(const ConvShape& s) {
  return std::to_string(s.C) + "to" + std::to_string(s.K) + "@" + std::to_string(s.H) + "x" + std::to_string(s.W);
}
const char* conv_name(ConvKind k) { return k == ConvKind::k3x3 ? "conv3x3" : k == ConvKind::k1x1 ? "conv1x1" : "upconv2x2"; }

double conv_flops(const ConvShape& s) {
  const double taps = s.kind == ConvKind::k3x3 ? 9 : s.kind == ConvKind::k1x1 ? 1 : 4;
  const double pixels = s.kind == ConvKind::k3x3 ? double(s.H - 2) * (s.W - 2) : double(s.H) * s.W;  // per tap
  return 2.0 * s.C * s.K * taps * pixels;
}

#if UNET_BENCH_HAVE_CUDNN
// The cuDNN equivalent of one pass of one of our convolutions. upconv2x2 (C -> K, H -> 2H) is the
// transpose of the stride-2 convolution G: input [1,K,2H,2W] * filter [C,K,2,2] -> [1,C,H,W], so
// upconv forward = G's backward data, upconv backward data = G's forward, upconv backward weight =
// G's backward filter (bias gradient over G's input).
std::unique_ptr<CudnnConv> cudnn_for(const ConvShape& s, int pass) {
  if (s.kind == ConvKind::up2x2) {
    const Pass p = pass == 0 ? Pass::BackwardData : pass == 1 ? Pass::Forward : Pass::BackwardFilter;
    return std::make_unique<CudnnConv>(p, 1, s.K, 2 * s.H, 2 * s.W, s.C, 2, 2, /*bias_of_input=*/true);
  }
  const Pass p = pass == 0 ? Pass::Forward : pass == 1 ? Pass::BackwardData : Pass::BackwardFilter;
  return std::make_unique<CudnnConv>(p, 1, s.C, s.H, s.W, s.K, s.kind == ConvKind::k3x3 ? 3 : 1, 1);
}

double cudnn_conv_ms(const ConvShape& s, int pass) {
  const std::string key = std::string("cudnn/") + conv_name(s.kind) + "/" + pass_name(pass) + "/" + conv_label(s);
  auto it = memo().find(key);
  if (it != memo().end()) return it->second;
  auto conv = cudnn_for(s, pass);
  const double ms = baseline_ms([&] { (*conv)(); });
  memo()[key] = ms;
  return ms;
}
#endif

void our_conv(benchmark::State& st, ConvShape s, int pass) {
  const int N = 1, C = s.C, K = s.K, H = s.H, W = s.W;
  const int64_t xs = int64_t(N) * C * H * W;
  const int64_t ws = s.kind == ConvKind::k3x3 ? int64_t(K) * C * 9 : s.kind == ConvKind::k1x1 ? int64_t(K) * C : int64_t(C) * K * 4;
  const int64_t ys = s.kind == ConvKind::k3x3 ? int64_t(N) * K * (H - 2) * (W - 2)
                     : s.kind == ConvKind::k1x1 ? int64_t(N) * K * H * W : int64_t(N) * K * 4 * H * W;
  Buf x(xs), w(ws, -0.1f, 0.1f, 2), b(K), y(ys, -1.0f, 1.0f, 3), dw(ws), db(K);
  const KernelTable& k = *g_k;
  std::function<void()> f;
  if (s.kind == ConvKind::k3x3) {
    if (pass == 0) f = [&] { k.conv3x3_forward(g_stream, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.conv3x3_backward_data(g_stream, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.conv3x3_backward_weight(g_stream, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  } else if (s.kind == ConvKind::k1x1) {
    if (pass == 0) f = [&] { k.conv1x1_forward(g_stream, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.conv1x1_backward_data(g_stream, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.conv1x1_backward_weight(g_stream, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  } else {
    if (pass == 0) f = [&] { k.upconv2x2_forward(g_stream, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.upconv2x2_backward_data(g_stream, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.upconv2x2_backward_weight(g_stream, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  }
  const double ms = measure(st, f, conv_flops(s), 0.0);
#if UNET_BENCH_HAVE_CUDNN
  st.counters["ratio_to_cudnn"] = ms / cudnn_conv_ms(s, pass);
#endif
  if (s.kind == ConvKind::k3x3 && pass == 0)
    st.counters["ratio_to_sgemm"] = ms / sgemm_ms((H - 2) * (W - 2), K, 9 * C);
}

#if UNET_BENCH_HAVE_CUDNN
void cudnn_conv(benchmark::State& st, ConvShape s, int pass) {
  auto conv = cudnn_for(s, pass);
  const double ms = measure(st, [&] { (*conv)(); }, conv_flops(s), 0.0);
  st.counters["algo"] = conv->algo();
  memo()[std::string("cudnn/") + conv_name(s.kind) + "/" + pass_name(pass) + "/" + conv_label(s)] = ms;
}
#endif

void cublas_sgemm(benchmark::State& st, int m, int n, int k) {
  Sgemm g(m, n, k);
  const double ms = measure(st, [&] { g(); }, 2.0 * m * n * k, 0.0);
  memo()["sgemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k)] = ms;
}

// A memory-bound row: time f, report GB/s of `traffic` bytes, and the ratio to a baseline.
void memory_row(benchmark::State& st, const std::function<void()>& f, double traffic,
                const std::function<double()>& cudnn_baseline) {
  const double ms = measure(st, f, 0.0, traffic);
  if (cudnn_baseline) st.counters["ratio_to_cudnn"] = ms / cudnn_baseline();
  else st.counters["ratio_to_memcpy"] = ms / memcpy_ms(traffic);
}

void register_all() {
  auto reg = [](const std::string& name, std::function<void(benchmark::State&)> body) {
    benchmark::RegisterBenchmark(name.c_str(), [body](benchmark::State& st) { guarded(st, body); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3);
  };

  // The convolutions of the paper's network (batch 1, 572x572 input tile).
  const std::vector<ConvShape> convs = {
      {ConvKind::k3x3, 1, 64, 572, 572},   {ConvKind::k3x3, 64, 64, 570, 570},   {ConvKind::k3x3, 128, 128, 282, 282},
      {ConvKind::k3x3, 256, 256, 138, 138}, {ConvKind::k3x3, 512, 512, 66, 66},  {ConvKind::k3x3, 1024, 1024, 30, 30},
      {ConvKind::up2x2, 1024, 512, 28, 28}, {ConvKind::k1x1, 64, 2, 388, 388}};
  for (const ConvShape& s : convs) {
    for (int pass = 0; pass < 3; ++pass) {
      const std::string tail = std::string(conv_name(s.kind)) + "_" + pass_name(pass) + "/" + conv_label(s);
#if UNET_BENCH_HAVE_CUDNN
      reg("cudnn/" + tail, [s, pass](benchmark::State& st) { cudnn_conv(st, s, pass); });
#endif
      reg("ours/" + tail, [s, pass](benchmark::State& st) { our_conv(st, s, pass); });
    }
    if (s.kind == ConvKind::k3x3) {
      const int m = (s.H - 2) * (s.W - 2), n = s.K, k = 9 * s.C;
      reg("cublas/sgemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k),
          [m, n, k](benchmark::State& st) { cublas_sgemm(st, m, n, k); });
    }
  }

  // relu at 64x570x570.
  {
    const int C = 64, H = 570, W = 570;
    const int64_t n = int64_t(C) * H * W;
    reg("ours/relu_forward/64x570x570", [=](benchmark::State& st) {
      Buf x(n), y(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, C, H, W);
        cudnnActivationDescriptor_t a;
        CUDNN_CHECK(cudnnCreateActivationDescriptor(&a));
        CUDNN_CHECK(cudnnSetActivationDescriptor(a, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
        const float one = 1.0f, zero = 0.0f;
        const double ms = baseline_ms([&] { CUDNN_CHECK(cudnnActivationForward(cudnn(), a, &one, d.d, x.f(), &zero, d.d, y.f())); });
        cudnnDestroyActivationDescriptor(a);
        return ms;
      };
#endif
      memory_row(st, [&] { g_k->relu_forward(g_stream, x.f(), y.f(), n); }, 2.0 * n * 4, base);
    });
    reg("ours/relu_backward/64x570x570", [=](benchmark::State& st) {
      Buf y(n), dy(n, -1, 1, 5), dx(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, C, H, W);
        cudnnActivationDescriptor_t a;
        CUDNN_CHECK(cudnnCreateActivationDescriptor(&a));
        CUDNN_CHECK(cudnnSetActivationDescriptor(a, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
        const float one = 1.0f, zero = 0.0f;
        const double ms = baseline_ms([&] {
          CUDNN_CHECK(cudnnActivationBackward(cudnn(), a, &one, d.d, y.f(), d.d, dy.f(), d.d, y.f(), &zero, d.d, dx.f()));
        });
        cudnnDestroyActivationDescriptor(a);
        return ms;
      };
#endif
      memory_row(st, [&] { g_k->relu_backward(g_stream, y.f(), dy.f(), dx.f(), n); }, 3.0 * n * 4, base);
    });
  }

  // maxpool2x2 at 64x568x568.
  {
    const int C = 64, H = 568, W = 568;
    const int64_t n = int64_t(C) * H * W, m = n / 4;
    for (int pass = 0; pass < 2; ++pass) {
      reg(std::string("ours/maxpool2x2_") + (pass ? "backward" : "forward") + "/64x568x568", [=](benchmark::State& st) {
        Buf x(n), y(m), dy(m, -1, 1, 4), dx(n);
        std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
        base = [&] {
          TensorDesc xd(1, C, H, W), yd(1, C, H / 2, W / 2);
          cudnnPoolingDescriptor_t p;
          CUDNN_CHECK(cudnnCreatePoolingDescriptor(&p));
          CUDNN_CHECK(cudnnSetPooling2dDescriptor(p, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0,
                                                  0, 2, 2));
          const float one = 1.0f, zero = 0.0f;
          CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
          const double ms = baseline_ms([&] {
            if (pass == 0) CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
            else CUDNN_CHECK(cudnnPoolingBackward(cudnn(), p, &one, yd.d, y.f(), yd.d, dy.f(), xd.d, x.f(), &zero, xd.d, dx.f()));
          });
          cudnnDestroyPoolingDescriptor(p);
          return ms;
        };
#endif
        if (pass == 0)
          memory_row(st, [&] { g_k->maxpool2x2_forward(g_stream, x.f(), y.f(), 1, C, H, W); }, double(n + m) * 4, base);
        else
          memory_row(st, [&] { g_k->maxpool2x2_backward(g_stream, x.f(), dy.f(), dx.f(), 1, C, H, W); },
                     double(2 * n + m) * 4, base);
      });
    }
  }

  // crop_concat: the last skip connection, 64x568x568 cropped to 392x392, stacked with 64x392x392.
  {
    const int Cs = 64, Hs = 568, Ws = 568, Cu = 64, Hu = 392, Wu = 392;
    const int64_t ns = int64_t(Cs) * Hs * Ws, nu = int64_t(Cu) * Hu * Wu, ny = int64_t(Cs + Cu) * Hu * Wu;
    reg("ours/crop_concat_forward/64x568x568+64x392x392", [=](benchmark::State& st) {
      Buf s(ns), u(nu), y(ny);
      memory_row(st, [&] { g_k->crop_concat_forward(g_stream, s.f(), u.f(), y.f(), 1, Cs, Hs, Ws, Cu, Hu, Wu); },
                 2.0 * ny * 4, nullptr);
    });
    reg("ours/crop_concat_backward/64x568x568+64x392x392", [=](benchmark::State& st) {
      Buf dy(ny), ds(ns), du(nu);
      memory_row(st, [&] { g_k->crop_concat_backward(g_stream, dy.f(), ds.f(), du.f(), 1, Cs, Hs, Ws, Cu, Hu, Wu); },
                 double(ny + ns + nu) * 4, nullptr);
    });
  }

  // dropout before the bottleneck: 1024x28x28, p = 0.5.
  {
    const int64_t n = 1024LL * 28 * 28;
    reg("ours/dropout_forward/1024x28x28", [=](benchmark::State& st) {
      Buf x(n), y(n);
      memory_row(st, [&] { g_k->dropout_forward(g_stream, x.f(), y.f(), n, 0.5f, 42, 12345); }, 2.0 * n * 4, nullptr);
    });
    reg("ours/dropout_backward/1024x28x28", [=](benchmark::State& st) {
      Buf dy(n), dx(n);
      memory_row(st, [&] { g_k->dropout_backward(g_stream, dy.f(), dx.f(), n, 0.5f, 42, 12345); }, 2.0 * n * 4, nullptr);
    });
  }

  // softmax_xent and softmax on the 2x388x388 output map.
  {
    const int K = 2, H = 388, W = 388;
    const int64_t P = int64_t(H) * W, n = K * P;
    reg("ours/softmax_xent/2x388x388", [=](benchmark::State& st) {
      Buf logits(n, -4, 4), weights(P, 0.5f, 11.0f), loss(1), dlogits(n);
      Buf labels(P);
      {
        std::vector<int32_t> h(static_cast<size_t>(P));
        for (int64_t i = 0; i < P; ++i) h[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % K);
        UNET_CUDA_CHECK(cudaMemcpy(labels.i(), h.data(), h.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
      }
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {  // cudnnSoftmaxForward(LOG): the log-probabilities alone, no loss, no gradient
        TensorDesc d(1, K, H, W);
        const float one = 1.0f, zero = 0.0f;
        return baseline_ms([&] {
          CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d, logits.f(),
                                          &zero, d.d, dlogits.f()));
        });
      };
#endif
      memory_row(st, [&] {
        g_k->softmax_xent(g_stream, logits.f(), labels.i(), weights.f(), loss.f(), dlogits.f(), 1, K, H, W);
      }, double(2 * n + 2 * P) * 4, base);
    });
    reg("ours/softmax_forward/2x388x388", [=](benchmark::State& st) {
      Buf logits(n, -4, 4), probs(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, K, H, W);
        const float one = 1.0f, zero = 0.0f;
        return baseline_ms([&] {
          CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d,
                                          logits.f(), &zero, d.d, probs.f()));
        });
      };
#endif
      memory_row(st, [&] { g_k->softmax_forward(g_stream, logits.f(), probs.f(), 1, K, H, W); }, 2.0 * n * 4, base);
    });
  }

  // The optimiser and helpers over all 31,030,658 parameters of the paper's network.
  {
    const int64_t n = 31030658;
    reg("ours/sgd_momentum/31030658", [=](benchmark::State& st) {
      Buf w(n), g(n, -1, 1, 2), v(n, -1, 1, 3);
      memory_row(st, [&] { g_k->sgd_momentum(g_stream, w.f(), g.f(), v.f(), n, 1e-6f, 0.99f, 0.0f); }, 5.0 * n * 4,
                 nullptr);
    });
    reg("ours/add/31030658", [=](benchmark::State& st) {
      Buf y(n), x(n, -1, 1, 2);
      memory_row(st, [&] { g_k->add(g_stream, y.f(), x.f(), n); }, 3.0 * n * 4, nullptr);
    });
    reg("ours/fill/31030658", [=](benchmark::State& st) {
      Buf y(n);
      memory_row(st, [&] { g_k->fill(g_stream, y.f(), 0.0f, n); }, 1.0 * n * 4, nullptr);
    });
    reg("ours/check_finite/31030658", [=](benchmark::State& st) {
      Buf x(n), flag(1);
      memory_row(st, [&] { g_k->check_finite(g_stream, x.f(), n, flag.i()); }, 1.0 * n * 4, nullptr);
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!unet::cuda_available()) {
    std::printf("SKIPPED: no CUDA device\n");
    return 0;
  }
  try {
    g_stream = static_cast<cudaStream_t>(unet::stream_for(unet::Device::CUDA));
    g_k = &unet::kernels_for(unet::Device::CUDA);
    const unet::DeviceInfo info = unet::cuda_device_info();
    std::printf("GPU: %s, %d SMs, compute capability %d.%d\n", info.name.c_str(), info.sm_count, info.cc_major,
                info.cc_minor);
#if UNET_BENCH_HAVE_CUDNN
    std::printf("baselines: cuDNN %zu (fastest fp32 FMA algorithm from cudnnFind*), cuBLAS SGEMM, cudaMemcpy\n",
                cudnnGetVersion());
#else
    std::printf("baselines: cuBLAS SGEMM and cudaMemcpy (built without cuDNN: no ratio_to_cudnn)\n");
#endif
    register_all();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
