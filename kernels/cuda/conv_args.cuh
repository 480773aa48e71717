// The arguments of the convolutions' matrix products, shared by the FP32 problems (conv3x3.cu,
// conv1x1.cu, upconv2x2.cu) and the tensor-core ones (*_tc.cu): the tensors, their sizes and the
// product's dimensions M x Ncols over Kred. The output side (where out[m, n] goes, the bias) is the
// launcher's Out (gemm_out.cuh).
#pragma once
#include <cstdint>

namespace unet::kernels::cuda {

// The product's dimensions: out[M, Ncols] = sum over Kred.
struct GemmDims {
  int64_t M = 0, Ncols = 0, Kred = 0;
};

// conv3x3: x[N,C,H,W], w[K,C,3,3], dy[N,K,Ho,Wo] with Ho = H-2, Wo = W-2.
struct Conv3x3Args : GemmDims {
  const float* x = nullptr;   // forward input (forward, backward weight)
  const float* w = nullptr;   // weights (forward, backward data)
  const float* dy = nullptr;  // output gradient (backward)
  const float* y = nullptr;   // the fused ReLU's output (conv3x3_relu_backward_*): dy read as dy * (y > 0)
  int C = 0, H = 0, W = 0, K = 0, Ho = 0, Wo = 0;
  static Conv3x3Args make(int C, int H, int W, int K) {
    Conv3x3Args a;
    a.C = C;
    a.H = H;
    a.W = W;
    a.K = K;
    a.Ho = H > 2 ? H - 2 : 0;
    a.Wo = W > 2 ? W - 2 : 0;
    return a;
  }
};

// conv1x1: x[N,C,HW], w[K,C], dy[N,K,HW].
struct Conv1x1Args : GemmDims {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* dy = nullptr;
  int C = 0, K = 0;
  int64_t HW = 0;
  static Conv1x1Args make(int C, int H, int W, int K) {
    Conv1x1Args a;
    a.C = C;
    a.K = K;
    a.HW = static_cast<int64_t>(H) * W;
    return a;
  }
};

// upconv2x2: x[N,C,H,W], w[C,K,2,2] (w[c*4K + k*4 + t], t = a*2 + e), dy[N,K,2H,2W].
struct UpconvArgs : GemmDims {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* dy = nullptr;
  int C = 0, H = 0, W = 0, K = 0;
  static UpconvArgs make(int C, int H, int W, int K) {
    UpconvArgs a;
    a.C = C;
    a.H = H;
    a.W = W;
    a.K = K;
    return a;
  }
};

}  // namespace unet::kernels::cuda
