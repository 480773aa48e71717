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
  // conv3x3_relu_concat: input channels c < Cs are the H x W window at (oy, ox) of skip[N, Cs, Hs, Ws], read in
  // place; x then holds the other C - Cs channels. Cs = 0: x alone.
  const float* skip = nullptr;
  int Cs = 0, Hs = 0, Ws = 0, oy = 0, ox = 0;
  __host__ __device__ int64_t skip_plane() const { return static_cast<int64_t>(Hs) * Ws; }
  // &input[n, 0, i, j] of each source: the skip's window and x's channels (channel c adds c * its plane).
  __host__ __device__ const float* skip_pixel(int64_t n, int i, int j) const {
    return skip + n * Cs * skip_plane() + static_cast<int64_t>(oy + i) * Ws + ox + j;
  }
  __host__ __device__ const float* x_pixel(int64_t n, int i, int j) const {
    return x + n * (C - Cs) * static_cast<int64_t>(H) * W + static_cast<int64_t>(i) * W + j;
  }
  void set_skip(const float* s, int cs, int hs, int ws) {
    skip = s, Cs = cs, Hs = hs, Ws = ws, oy = (hs - H) / 2, ox = (ws - W) / 2;
  }
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
