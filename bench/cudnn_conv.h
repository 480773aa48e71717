// cuDNN baselines for bench_gpu: one pass of a convolution, set up with the fastest algorithm that
// cudnnFind*Algorithm reports in this run, in one of three arithmetics:
//   fma   FP32 data, CUDNN_FMA_MATH (found and run with it): FP32 fused multiply-adds only, our arithmetic;
//   tf32  FP32 data, CUDNN_DEFAULT_MATH: TF32 tensor cores permitted (sm_80+), FP32 accumulation;
//   bf16  BF16 data, FP32 compute, CUDNN_TENSOR_OP_MATH: bfloat16 tensor cores.
// For the backward-filter pass the bias gradient (cudnnConvolutionBackwardBias) is timed with it, as our
// backward_weight kernels compute db too; in bf16 the bias gradient is left out (FP32 only in cuDNN's
// legacy API), which the row's name says.
#pragma once
#include <cudnn.h>

#include <stdexcept>
#include <string>

#include "bench/gpu_timing.h"

#define CUDNN_CHECK(call)                                                                    \
  do {                                                                                       \
    cudnnStatus_t st_ = (call);                                                              \
    if (st_ != CUDNN_STATUS_SUCCESS)                                                         \
      throw std::runtime_error(std::string(#call) + " failed: " + cudnnGetErrorString(st_)); \
  } while (0)

namespace bench_gpu {

inline cudnnHandle_t cudnn() {
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
  TensorDesc(int n, int c, int h, int w, cudnnDataType_t t = CUDNN_DATA_FLOAT,
             cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, format, t, n, c, h, w));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

enum class Pass { Forward, BackwardData, BackwardFilter };
enum class Math { FMA, TF32, BF16 };
inline const char* math_name(Math m) { return m == Math::FMA ? "fma" : m == Math::TF32 ? "tf32" : "bf16"; }

// input[N,Ci,Hi,Wi] * filter[Co,Ci,R,R] (stride s, no padding) -> output[N,Co,Ho,Wo], one pass; tensors
// and filter NCHW, or NHWC (channels last) when `nhwc`.
class CudnnConv {
 public:
  CudnnConv(Pass pass, Math math, int N, int Ci, int Hi, int Wi, int Co, int R, int stride, bool bias_of_input = false,
            bool nhwc = false)
      : pass_(pass),
        math_(math),
        dt_(math == Math::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT),
        Ho_((Hi - R) / stride + 1),
        Wo_((Wi - R) / stride + 1),
        in_(N, Ci, Hi, Wi, dt_, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW),
        out_(N, Co, Ho_, Wo_, dt_, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW),
        in32_(N, Ci, Hi, Wi),
        out32_(N, Co, Ho_, Wo_),
        bias_(1, bias_of_input ? Ci : Co, 1, 1),
        bias_of_input_(bias_of_input),
        x_(static_cast<int64_t>(N) * Ci * Hi * Wi, -1.0f, 1.0f, 1, math == Math::BF16),
        w_(static_cast<int64_t>(Co) * Ci * R * R, -0.1f, 0.1f, 2, math == Math::BF16),
        y_(static_cast<int64_t>(N) * Co * Ho_ * Wo_, -1.0f, 1.0f, 3, math == Math::BF16),
        b_(bias_of_input ? Ci : Co) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd_));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd_, dt_, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, Co, Ci, R, R));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd_));
    CUDNN_CHECK(
        cudnnSetConvolution2dDescriptor(cd_, 0, 0, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    const cudnnMathType_t wanted = math == Math::FMA    ? CUDNN_FMA_MATH
                                   : math == Math::TF32 ? CUDNN_DEFAULT_MATH
                                                        : CUDNN_TENSOR_OP_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(cd_, wanted));
    constexpr int kMax = 16;
    int found = 0;
    bool ok = false;
    cudnnMathType_t got = wanted;
    size_t memory = 0;
    // The fastest that succeeded. With an FMA descriptor cudnnFind tries FMA kernels only, but may report
    // another math type for them; the descriptor is then kept at FMA (as PyTorch does with TF32 off), so
    // the timed algorithm cannot take TF32 tensor cores.
    auto accept = [&](cudnnStatus_t s, cudnnMathType_t) { return s == CUDNN_STATUS_SUCCESS; };
    if (pass == Pass::Forward) {
      cudnnConvolutionFwdAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(cudnn(), in_.d, wd_, cd_, out_.d, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (accept(perf[i].status, perf[i].mathType)) {
          fwd_ = perf[i].algo;
          memory = perf[i].memory;
          got = perf[i].mathType;
          ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    } else if (pass == Pass::BackwardData) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(cudnn(), wd_, out_.d, cd_, in_.d, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (accept(perf[i].status, perf[i].mathType)) {
          bwd_data_ = perf[i].algo;
          memory = perf[i].memory;
          got = perf[i].mathType;
          ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(cudnn(), in_.d, out_.d, cd_, wd_, kMax, &found, perf));
      for (int i = 0; i < found && !ok; ++i)
        if (accept(perf[i].status, perf[i].mathType)) {
          bwd_filter_ = perf[i].algo;
          memory = perf[i].memory;
          got = perf[i].mathType;
          ok = true;
          algo_ = static_cast<int>(perf[i].algo);
        }
    }
    if (!ok)
      throw std::runtime_error(std::string("cuDNN found no ") + math_name(math) + " algorithm for this convolution");
    if (math == Math::FMA) got = CUDNN_FMA_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(cd_, got));
    math_used_ = static_cast<int>(got);
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
      CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, in_.d, x_.raw(), wd_, w_.raw(), cd_, fwd_, ws_, ws_bytes_,
                                          &zero, out_.d, y_.raw()));
    } else if (pass_ == Pass::BackwardData) {
      CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), &one, wd_, w_.raw(), out_.d, y_.raw(), cd_, bwd_data_, ws_,
                                               ws_bytes_, &zero, in_.d, x_.raw()));
    } else {
      CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), &one, in_.d, x_.raw(), out_.d, y_.raw(), cd_, bwd_filter_,
                                                 ws_, ws_bytes_, &zero, wd_, w_.raw()));
      if (math_ != Math::BF16)
        CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), &one, bias_of_input_ ? in32_.d : out32_.d,
                                                 bias_of_input_ ? x_.raw() : y_.raw(), &zero, bias_.d, b_.raw()));
    }
  }
  int algo() const { return algo_; }
  int math_used() const { return math_used_; }  // the cudnnMathType_t the chosen algorithm runs with
  double workspace_mib() const { return static_cast<double>(ws_bytes_) / (1 << 20); }

 private:
  Pass pass_;
  Math math_;
  cudnnDataType_t dt_;
  int Ho_, Wo_;
  TensorDesc in_, out_, in32_, out32_, bias_;
  bool bias_of_input_;
  Buf x_, w_, y_, b_;
  cudnnFilterDescriptor_t wd_ = nullptr;
  cudnnConvolutionDescriptor_t cd_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_{};
  int algo_ = -1, math_used_ = -1;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
};

}  // namespace bench_gpu
