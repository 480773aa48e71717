// upconv2x2 on the CPU: the expanding path's 2x2 "up-convolution" (transposed convolution,
// stride 2), whose output pixel (2i+a, 2j+e) sees exactly one input pixel (i, j) and one tap (a, e).
#include <cstddef>
#include <vector>

#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cpu/conv_gemm.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rounded.h"

namespace unet::kernels::cpu {

using namespace detail;

// y[n,k,2i+a,2j+e] = b[k] + sum_c x[n,c,i,j] w[c,k,a,e]
// One product for the four taps: T[(k,t), p] = b[k] + sum_c w[c, k*4 + t] x[c, p] (rows m = k*4+t,
// so A(m, c) = w[c*4K + m]), then interleaved into y.
void upconv2x2_forward(Stream, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                       int H, int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  const bool dot = use_bf16_dot(prec);  // BF16 products (kernels/cpu/bf16_gemm.h) round their operands
  const Rounded xr(x, N * C * P, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(C) * K * 4, dot ? Precision::FP32 : prec);
  x = xr.get();
  w = wr.get();
  const int M = 4 * K;
  std::vector<float> bias4(static_cast<size_t>(M));
  for (int m = 0; m < M; ++m) bias4[m] = b ? b[m / 4] : 0.0f;  // b may be null (no bias)
  float* tap = scratch(kScratchTmp, static_cast<int64_t>(N) * M * P);
  const OperandA A{w, 1, M, 0, 1};
  const OperandB B{x, C * P, C, H, W, 1, 0, false, H, W};
  if (dot) gemm_nn_bf16(A, M, B, N, bias4.data(), tap);
  else gemm_nn(A, M, B, N, bias4.data(), tap);
  const int64_t rows = static_cast<int64_t>(N) * K * 2 * H;  // output rows (n, k, 2i+a)
  parallel_for(rows, grain_for(rows, 4 * W), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t nk = r / (2 * H);
      const int yi = static_cast<int>(r % (2 * H)), i = yi / 2, a = yi % 2;
      const float* s0 = tap + (nk * 4 + a * 2) * P + static_cast<int64_t>(i) * W;
      const float* s1 = s0 + P;
      float* dst = y + r * 2 * W;
      for (int j = 0; j < W; ++j) {
        dst[2 * j] = s0[j];
        dst[2 * j + 1] = s1[j];
      }
    }
  });
}

namespace {
// dyd[n, (k*4 + a*2 + e), i, j] = dy[n, k, 2i+a, 2j+e]: the four taps as separate planes.
float* split_taps(const float* dy, int N, int H, int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  float* dyd = scratch(kScratchTmp, static_cast<int64_t>(N) * K * 4 * P);
  const int64_t rows = static_cast<int64_t>(N) * K * H;
  parallel_for(rows, grain_for(rows, 8 * W), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t nk = r / H;
      const int i = static_cast<int>(r % H);
      for (int t = 0; t < 4; ++t) {
        const int a = t / 2, e = t % 2;
        const float* src = dy + (nk * 2 * H + 2 * i + a) * 2 * W + e;
        float* dst = dyd + (nk * 4 + t) * P + static_cast<int64_t>(i) * W;
        for (int j = 0; j < W; ++j) dst[j] = src[2 * j];
      }
    }
  });
  return dyd;
}
}  // namespace

// dx[n,c,i,j] = sum_{k,a,e} w[c,k,a,e] dy[n,k,2i+a,2j+e]: a product over the split taps,
// A(c, r) = w[c*4K + r], B(r, p) = dyd[r, p].
void upconv2x2_backward_data(Stream, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                             int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  const bool dot = use_bf16_dot(prec);
  const Rounded dyr(dy, N * K * 4 * P, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(C) * K * 4, dot ? Precision::FP32 : prec);
  w = wr.get();
  const float* dyd = split_taps(dyr.get(), N, H, W, K);
  const OperandA A{w, static_cast<int64_t>(K) * 4, 1, 0, 1};
  const OperandB B{dyd, 4 * K * P, 4 * K, H, W, 1, 0, false, H, W};
  if (dot) return gemm_nn_bf16(A, C, B, N, nullptr, dx);
  gemm_nn(A, C, B, N, nullptr, dx);
}

// dw[c,k,a,e] = sum_{n,i,j} x[n,c,i,j] dy[n,k,2i+a,2j+e];  db[k] = sum_{n,y,x} dy[n,k,y,x]
// = dot products of x's planes with the split taps' planes.
void upconv2x2_backward_weight(Stream, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                               int C, int H, int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  const bool dot = use_bf16_dot(prec);
  const Rounded xr(x, N * C * P, dot ? Precision::FP32 : prec),
      dyr(dy, N * K * 4 * P, dot ? Precision::FP32 : prec);  // db sums the FP32 dy
  const float* dyd = split_taps(dyr.get(), N, H, W, K);
  const RowsA A{xr.get(), C * P, P};
  const RowsB B{dyd, 4 * K * P, P, 1, {0}};
  if (dot) gemm_nt_bf16(A, C, B, 4 * K, N, P, dw, 4 * K);
  else gemm_nt(A, C, B, 4 * K, N, P, dw, 4 * K);
  bias_grad(dy, db, N, K, 4 * P);
}

}  // namespace unet::kernels::cpu
