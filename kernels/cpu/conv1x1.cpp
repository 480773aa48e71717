// conv1x1 on the CPU: the U-Net's last layer, a per-pixel linear map from features to classes.
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/microkernels.h"

namespace unet::kernels::cpu {

using namespace detail;


void bias_grad(const float* dy, float* db, int N, int K, int64_t plane) {
#pragma omp parallel for schedule(static)
  for (int k = 0; k < K; ++k) {
    double s = 0.0;
    for (int n = 0; n < N; ++n) s += dot_f64(dy + (static_cast<int64_t>(n) * K + k) * plane, nullptr, plane);
    db[k] = static_cast<float>(s);
  }
}

// y[n,k,p] = b[k] + sum_c w[k,c] x[n,c,p]
void conv1x1_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W,
                     int K) {
  channel_mix(w, C, 1, b, x, y, N, C, K, static_cast<int64_t>(H) * W);
}

// dx[n,c,p] = sum_k w[k,c] dy[n,k,p]
void conv1x1_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K) {
  channel_mix(w, 1, C, nullptr, dy, dx, N, K, C, static_cast<int64_t>(H) * W);
}

// dw[k,c] = sum_{n,p} dy[n,k,p] x[n,c,p];  db[k] = sum_{n,p} dy[n,k,p]
void conv1x1_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H,
                             int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
#pragma omp parallel for collapse(2) schedule(static)
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < C; ++c) {
      double s = 0.0;
      for (int n = 0; n < N; ++n)
        s += dot_f64(dy + (static_cast<int64_t>(n) * K + k) * P, x + (static_cast<int64_t>(n) * C + c) * P, P);
      dw[static_cast<int64_t>(k) * C + c] = static_cast<float>(s);
    }
  bias_grad(dy, db, N, K, P);
}

}  // namespace unet::kernels::cpu
