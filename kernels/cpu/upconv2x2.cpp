// upconv2x2 on the CPU: the expanding path's 2x2 "up-convolution" (transposed convolution,
// stride 2), whose output pixel (2i+a, 2j+e) sees exactly one input pixel (i, j) and one tap (a, e).
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/microkernels.h"

namespace unet::kernels::cpu {

using namespace detail;

// y[n,k,2i+a,2j+e] = b[k] + sum_c x[n,c,i,j] w[c,k,a,e]
// For each tap (a, e) a channel mix over the H*W input pixels, then interleaved into y.
void upconv2x2_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W,
                       int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  std::vector<float> tap(static_cast<size_t>(N) * K * P);
  for (int t = 0; t < 4; ++t) {
    const int a = t / 2, e = t % 2;
    channel_mix(w + t, 4, static_cast<int64_t>(K) * 4, b, x, tap.data(), N, C, K, P);
#pragma omp parallel for collapse(2) schedule(static)
    for (int nk = 0; nk < N * K; ++nk)
      for (int i = 0; i < H; ++i) {
        const float* src = tap.data() + static_cast<int64_t>(nk) * P + static_cast<int64_t>(i) * W;
        float* dst = y + (static_cast<int64_t>(nk) * 2 * H + 2 * i + a) * 2 * W + e;
        for (int j = 0; j < W; ++j) dst[2 * j] = src[j];
      }
  }
}

namespace {
// dyd[n, (k*4 + a*2 + e), i, j] = dy[n, k, 2i+a, 2j+e]: the four taps as separate planes.
std::vector<float> split_taps(const float* dy, int N, int H, int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  std::vector<float> dyd(static_cast<size_t>(N) * K * 4 * P);
#pragma omp parallel for collapse(2) schedule(static)
  for (int nk = 0; nk < N * K; ++nk)
    for (int i = 0; i < H; ++i)
      for (int t = 0; t < 4; ++t) {
        const int a = t / 2, e = t % 2;
        const float* src = dy + (static_cast<int64_t>(nk) * 2 * H + 2 * i + a) * 2 * W + e;
        float* dst = dyd.data() + (static_cast<int64_t>(nk) * 4 + t) * P + static_cast<int64_t>(i) * W;
        for (int j = 0; j < W; ++j) dst[j] = src[2 * j];
      }
  return dyd;
}
}  // namespace

// dx[n,c,i,j] = sum_{k,a,e} w[c,k,a,e] dy[n,k,2i+a,2j+e]: a channel mix over the split taps.
void upconv2x2_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K) {
  std::vector<float> dyd = split_taps(dy, N, H, W, K);
  channel_mix(w, static_cast<int64_t>(K) * 4, 1, nullptr, dyd.data(), dx, N, K * 4, C, static_cast<int64_t>(H) * W);
}

// dw[c,k,a,e] = sum_{n,i,j} x[n,c,i,j] dy[n,k,2i+a,2j+e];  db[k] = sum_{n,y,x} dy[n,k,y,x]
void upconv2x2_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H,
                               int W, int K) {
  const int64_t P = static_cast<int64_t>(H) * W;
  const int R = K * 4;
  std::vector<float> dyd = split_taps(dy, N, H, W, K);
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) {
      double s = 0.0;
      for (int n = 0; n < N; ++n)
        s += dot_f64(x + (static_cast<int64_t>(n) * C + c) * P, dyd.data() + (static_cast<int64_t>(n) * R + r) * P, P);
      dw[static_cast<int64_t>(c) * R + r] = static_cast<float>(s);
    }
  bias_grad(dy, db, N, K, 4 * P);
}

}  // namespace unet::kernels::cpu
