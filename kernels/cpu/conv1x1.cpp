// conv1x1 on the CPU: the U-Net's last layer, a per-pixel linear map from features to classes.
#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cpu/conv_gemm.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rounded.h"

namespace unet::kernels::cpu {

using namespace detail;

// db[k] = sum_{n,p} dy[n,k,p] (shared by the three convolutions); per k in a fixed order.
void bias_grad(const float* dy, float* db, int N, int K, int64_t plane, const float* mask) {
  parallel_for(K, grain_for(K, N * plane), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double s = 0.0;
      for (int n = 0; n < N; ++n)
        s += mask ? masked_sum_f64(dy + (n * K + k) * plane, mask + (n * K + k) * plane, plane)
                  : dot_f64(dy + (n * K + k) * plane, nullptr, plane);
      db[k] = static_cast<float>(s);
    }
  });
}

// y[n,k,p] = b[k] + sum_c w[k,c] x[n,c,p]
void conv1x1_forward(Stream, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                     int H, int W, int K) {
  const bool dot = use_bf16_dot(prec);  // BF16 products (kernels/cpu/bf16_gemm.h) round their operands
  const Rounded xr(x, static_cast<int64_t>(N) * C * H * W, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(K) * C, dot ? Precision::FP32 : prec);
  x = xr.get();
  w = wr.get();
  const OperandA A{w, C, 1, 0, 1};
  const OperandB B{x, static_cast<int64_t>(C) * H * W, C, H, W, 1, 0, false, H, W};
  if (dot) return gemm_nn_bf16(A, K, B, N, b, y);
  gemm_nn(A, K, B, N, b, y);
}

// dx[n,c,p] = sum_k w[k,c] dy[n,k,p]
void conv1x1_backward_data(Stream, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                           int W, int K) {
  const bool dot = use_bf16_dot(prec);
  const Rounded dyr(dy, static_cast<int64_t>(N) * K * H * W, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(K) * C, dot ? Precision::FP32 : prec);
  dy = dyr.get();
  w = wr.get();
  const OperandA A{w, 1, C, 0, 1};
  const OperandB B{dy, static_cast<int64_t>(K) * H * W, K, H, W, 1, 0, false, H, W};
  if (dot) return gemm_nn_bf16(A, C, B, N, nullptr, dx);
  gemm_nn(A, C, B, N, nullptr, dx);
}

// dw[k,c] = sum_{n,p} dy[n,k,p] x[n,c,p];  db[k] = sum_{n,p} dy[n,k,p]
void conv1x1_backward_weight(Stream, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                             int C, int H, int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  const bool dot = use_bf16_dot(prec);
  const Rounded xr(x, N * C * P, dot ? Precision::FP32 : prec),
      dyr(dy, N * K * P, dot ? Precision::FP32 : prec);  // db sums the FP32 dy
  const RowsA A{dyr.get(), K * P, P};
  const RowsB B{xr.get(), C * P, P, 1, {0}};
  if (dot) gemm_nt_bf16(A, K, B, C, N, P, dw, C);
  else gemm_nt(A, K, B, C, N, P, dw, C);
  bias_grad(dy, db, N, K, P);
}

}  // namespace unet::kernels::cpu
