// conv3x3 on the CPU: the U-Net's unpadded 3x3 convolution, forward and backward.
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/microkernels.h"

namespace unet::kernels::cpu {

using namespace detail;

namespace {

// y[n,k,i,j] = b[k] + sum_{c,di,dj} w[k,c,di,dj] * x[n,c,i+di,j+dj]   (b may be null)
// Each output row (n, i) is a product W[K, C*9] * B[C*9, Wo] whose row (c,di,dj) is the input row
// x[n, c, i+di, dj : dj+Wo]: a pointer, not a copy.
void conv3x3_valid(const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W, int K) {
  const int Ho = H - 2, Wo = W - 2, R = C * 9;
  const int64_t plane = static_cast<int64_t>(H) * W, oplane = static_cast<int64_t>(Ho) * Wo;
  std::vector<float> ap = pack_all(w, R, 1, K, R);
  std::vector<int64_t> off(R);
  for (int c = 0; c < C; ++c)
    for (int di = 0; di < 3; ++di)
      for (int dj = 0; dj < 3; ++dj) off[c * 9 + di * 3 + dj] = c * plane + di * W + dj;
#pragma omp parallel
  {
    std::vector<const float*> brow(R);
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < Ho; ++i) {
        const float* base = x + n * C * plane + static_cast<int64_t>(i) * W;
        for (int r = 0; r < R; ++r) brow[r] = base + off[r];
        rows_nn(ap.data(), K, R, brow.data(), Wo, b, y + n * K * oplane + static_cast<int64_t>(i) * Wo, oplane);
      }
  }
}

}  // namespace

void conv3x3_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W,
                     int K) {
  conv3x3_valid(x, w, b, y, N, C, H, W, K);
}

// dx[n,c,i,j] = sum_{k,di,dj} w[k,c,di,dj] * dy[n,k,i-di,j-dj]
// = a valid 3x3 convolution of dy zero-padded by 2 with the weights transposed (k <-> c) and
// flipped (di -> 2-di, dj -> 2-dj): the forward kernel does the work.
void conv3x3_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K) {
  const int Ho = H - 2, Wo = W - 2, Hp = H + 2, Wp = W + 2;
  std::vector<float> padded(static_cast<size_t>(N) * K * Hp * Wp, 0.0f);
#pragma omp parallel for collapse(2) schedule(static)
  for (int nk = 0; nk < N * K; ++nk)
    for (int i = 0; i < Ho; ++i) {
      const float* src = dy + (static_cast<int64_t>(nk) * Ho + i) * Wo;
      float* dst = padded.data() + (static_cast<int64_t>(nk) * Hp + i + 2) * Wp + 2;
      std::copy(src, src + Wo, dst);
    }
  std::vector<float> wt(static_cast<size_t>(C) * K * 9);
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < C; ++c)
      for (int t = 0; t < 9; ++t) wt[(static_cast<size_t>(c) * K + k) * 9 + (8 - t)] = w[(static_cast<size_t>(k) * C + c) * 9 + t];
  conv3x3_valid(padded.data(), wt.data(), nullptr, dx, N, K, Hp, Wp, C);
}

// dw[k,c,di,dj] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+di,j+dj];  db[k] = sum_{n,i,j} dy[n,k,i,j]
// One task per (block of 4 k, c): it owns dw[k0:k0+4, c, :, :], so no two threads write the same
// element and the result does not depend on the thread count. Partial sums: float within a row,
// double across rows.
void conv3x3_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H,
                             int W, int K) {
  const int Ho = H - 2, Wo = W - 2;
  const int64_t plane = static_cast<int64_t>(H) * W, oplane = static_cast<int64_t>(Ho) * Wo;
  const int KB = (K + 3) / 4;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int kb = 0; kb < KB; ++kb)
    for (int c = 0; c < C; ++c) {
      for (int di = 0; di < 3; ++di) {
        double acc[4][3] = {};
        for (int n = 0; n < N; ++n)
          for (int i = 0; i < Ho; ++i) {
            const float* a[4];
            const float* bb[3];
            for (int q = 0; q < 4; ++q) {
              int k = std::min(kb * 4 + q, K - 1);
              a[q] = dy + (static_cast<int64_t>(n) * K + k) * oplane + static_cast<int64_t>(i) * Wo;
            }
            for (int dj = 0; dj < 3; ++dj) bb[dj] = x + (static_cast<int64_t>(n) * C + c) * plane + static_cast<int64_t>(i + di) * W + dj;
            tile_nt_4x3(a, bb, Wo, acc);
          }
        for (int q = 0; q < 4 && kb * 4 + q < K; ++q)
          for (int dj = 0; dj < 3; ++dj)
            dw[((static_cast<int64_t>(kb * 4 + q) * C + c) * 3 + di) * 3 + dj] = static_cast<float>(acc[q][dj]);
      }
    }
  bias_grad(dy, db, N, K, oplane);
}

}  // namespace unet::kernels::cpu
