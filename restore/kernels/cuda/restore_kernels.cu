// The image-restoration kernels on the GPU (restore/, docs/restore.md); the math of each entry is in
// restore/kernels/ops.inc and, line for line, in restore/kernels/cpu/restore_kernels.cpp. One thread per output element
// (grid-stride), the reductions in one block (deterministic: a fixed launch shape and a fixed tree).
//
//   stencil2d           gather: y[n,i,j] = sum_{a,b} k[a,b] x[n, m(i+a-rh), m(j+b-rw)]
//   stencil2d_adjoint   gather over the preimages of the mirror: for tap offset d and output p, the
//                       inputs i with m(i+d) = p are i = (p-d) mod 2n and i = (-1-p-d) mod 2n, each
//                       counted when it lies in [0, n) (the CPU computes the same sum as a full
//                       convolution followed by folding the padding back).
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "kernels/cuda/common.cuh"
#include "restore/kernels/kernels.h"

namespace unet::restore::kernels::cuda {
using namespace ::unet::kernels::cuda;  // the launch helpers of kernels/cuda/common.cuh
namespace {

// m(t): the half-sample symmetric reflection into [0, n) (edge pixel repeated), any t.
__device__ __forceinline__ int mirror(int t, int n) {
  if (t >= 0 && t < n) return t;
  const int p = 2 * n;
  int u = t % p;
  if (u < 0) u += p;
  return u < n ? u : p - 1 - u;
}

// The representative of v mod 2n in [0, 2n).
__device__ __forceinline__ int mod2n(int v, int n) {
  const int p = 2 * n;
  int u = v % p;
  return u < 0 ? u + p : u;
}

__global__ void stencil2d_kernel(const float* __restrict__ x, const float* __restrict__ k, float* __restrict__ y, int N,
                                 int H, int W, int kh, int kw) {
  const int64_t plane = static_cast<int64_t>(H) * W, total = N * plane;
  const int rh = kh / 2, rw = kw / 2;
  for (int64_t e : grid_stride(total)) {
    const int64_t n = e / plane;
    const int rem = static_cast<int>(e - n * plane), i = rem / W, j = rem - i * W;
    const float* xn = x + n * plane;
    float acc = 0.0f;
    for (int a = 0; a < kh; ++a) {
      const float* row = xn + static_cast<int64_t>(mirror(i + a - rh, H)) * W;
      for (int b = 0; b < kw; ++b) {
        const float kab = __ldg(k + a * kw + b);
        if (kab == 0.0f) continue;
        acc += kab * row[mirror(j + b - rw, W)];
      }
    }
    y[e] = acc;
  }
}

__global__ void stencil2d_adjoint_kernel(const float* __restrict__ y, const float* __restrict__ k,
                                         float* __restrict__ x, int N, int H, int W, int kh, int kw) {
  const int64_t plane = static_cast<int64_t>(H) * W, total = N * plane;
  const int rh = kh / 2, rw = kw / 2;
  for (int64_t e : grid_stride(total)) {
    const int64_t n = e / plane;
    const int rem = static_cast<int>(e - n * plane), p = rem / W, q = rem - p * W;
    const float* yn = y + n * plane;
    float acc = 0.0f;
    for (int a = 0; a < kh; ++a) {
      const int da = a - rh;
      const int i1 = mod2n(p - da, H), i2 = mod2n(-1 - p - da, H);
      const bool v1 = i1 < H, v2 = i2 < H;
      if (!v1 && !v2) continue;
      for (int b = 0; b < kw; ++b) {
        const float kab = __ldg(k + a * kw + b);
        if (kab == 0.0f) continue;
        const int db = b - rw;
        const int j1 = mod2n(q - db, W), j2 = mod2n(-1 - q - db, W);
        float s = 0.0f;
        if (v1) {
          const float* r = yn + static_cast<int64_t>(i1) * W;
          if (j1 < W) s += r[j1];
          if (j2 < W) s += r[j2];
        }
        if (v2) {
          const float* r = yn + static_cast<int64_t>(i2) * W;
          if (j1 < W) s += r[j1];
          if (j2 < W) s += r[j2];
        }
        acc += kab * s;
      }
    }
    x[e] = acc;
  }
}

// deg_x[p] = (sum_q w_pq) x[p], adj_x[p] = sum_q w_pq x[q]; forward edges first, as on the CPU.
__global__ void laplacian8_kernel(const float* __restrict__ x, const float* __restrict__ wgt, float* __restrict__ deg_x,
                                  float* __restrict__ adj_x, int N, int H, int W) {
  const int di[4] = {0, 1, 1, 1}, dj[4] = {1, 0, 1, -1};
  const int64_t plane = static_cast<int64_t>(H) * W, total = N * plane;
  for (int64_t e : grid_stride(total)) {
    const int64_t n = e / plane;
    const int rem = static_cast<int>(e - n * plane), i = rem / W, j = rem - i * W;
    const float* xn = x + n * plane;
    const float* wn = wgt + n * 4 * plane;
    float deg = 0.0f, adj = 0.0f;
#pragma unroll
    for (int d = 0; d < 4; ++d) {
      const int qi = i + di[d], qj = j + dj[d];
      if (qi < 0 || qi >= H || qj < 0 || qj >= W) continue;
      const float w = wn[d * plane + rem];
      deg += w;
      adj += w * xn[static_cast<int64_t>(qi) * W + qj];
    }
#pragma unroll
    for (int d = 0; d < 4; ++d) {
      const int qi = i - di[d], qj = j - dj[d];
      if (qi < 0 || qi >= H || qj < 0 || qj >= W) continue;
      const int64_t q = static_cast<int64_t>(qi) * W + qj;
      const float w = wn[d * plane + q];
      deg += w;
      adj += w * xn[q];
    }
    deg_x[e] = deg * x[e];
    adj_x[e] = adj;
  }
}

__global__ void nnmu_update_kernel(float* __restrict__ f, const float* __restrict__ ap, const float* __restrict__ an,
                                   const float* __restrict__ b, int64_t n, float eps) {
  for (int64_t i : grid_stride(n)) {
    const float fi = f[i];
    if (fi <= 0.0f) {
      f[i] = 0.0f;
      continue;
    }
    const float bi = b[i], pn = fmaxf(ap[i] * an[i], 0.0f);
    const float s = sqrtf(bi * bi + 4.0f * pn);
    const float num = bi > 0.0f ? 4.0f * pn / (bi + s) : s - bi;
    const float v = fi * (num / (2.0f * ap[i] + eps));
    f[i] = v < 1e-30f ? 0.0f : v;  // kept out of the denormal range, as on the CPU
  }
}

__global__ void axpby_kernel(float* __restrict__ y, const float* __restrict__ x, float a, float b, int64_t n) {
  for (int64_t i : grid_stride(n)) y[i] = b == 0.0f ? a * x[i] : a * x[i] + b * y[i];  // b == 0: y is not read
}

__global__ void l1_reweight_kernel(const float* __restrict__ f, const float* __restrict__ b0, float* __restrict__ b,
                                   int64_t n, float c, float gamma) {
  for (int64_t i : grid_stride(n)) b[i] = b0[i] + c / (f[i] + gamma);
}

constexpr int kReduceThreads = 512;

// One block: each thread sums its strided elements in double, then cub::BlockReduce (fixed tree).
template <bool kLog>
__global__ void __launch_bounds__(kReduceThreads)
    reduce_kernel(const float* __restrict__ x, const float* __restrict__ y, float scale, int64_t n,
                  float* __restrict__ out) {
  using BlockReduce = cub::BlockReduce<double, kReduceThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads)
    s += kLog ? log1p(static_cast<double>(scale) * static_cast<double>(x[i]))
              : static_cast<double>(x[i]) * static_cast<double>(y[i]);
  const double total = BlockReduce(temp).Sum(s);
  if (threadIdx.x == 0) {
    const float hi = static_cast<float>(total);
    out[0] = hi;
    out[1] = static_cast<float>(total - static_cast<double>(hi));
  }
}

}  // namespace

void stencil2d(Stream s, const float* x, const float* k, float* y, int N, int H, int W, int kh, int kw) {
  const int64_t total = static_cast<int64_t>(N) * H * W;
  launch_over(total, s, stencil2d_kernel, x, k, y, N, H, W, kh, kw);
}

void stencil2d_adjoint(Stream s, const float* y, const float* k, float* x, int N, int H, int W, int kh, int kw) {
  const int64_t total = static_cast<int64_t>(N) * H * W;
  launch_over(total, s, stencil2d_adjoint_kernel, y, k, x, N, H, W, kh, kw);
}

void laplacian8_apply(Stream s, const float* x, const float* wgt, float* deg_x, float* adj_x, int N, int H, int W) {
  const int64_t total = static_cast<int64_t>(N) * H * W;
  launch_over(total, s, laplacian8_kernel, x, wgt, deg_x, adj_x, N, H, W);
}

void nnmu_update(Stream s, float* f, const float* ap, const float* an, const float* b, int64_t n, float eps) {
  launch_over(n, s, nnmu_update_kernel, f, ap, an, b, n, eps);
}

void axpby(Stream s, float* y, const float* x, float a, float b, int64_t n) {
  launch_over(n, s, axpby_kernel, y, x, a, b, n);
}

void l1_reweight(Stream s, const float* f, const float* b0, float* b, int64_t n, float c, float gamma) {
  launch_over(n, s, l1_reweight_kernel, f, b0, b, n, c, gamma);
}

void dot(Stream s, const float* x, const float* y, int64_t n, float* out) {
  reduce_kernel<false><<<1, kReduceThreads, 0, as_stream(s)>>>(x, y, 0.0f, n < 0 ? 0 : n, out);
  UNET_CUDA_CHECK_LAUNCH();
}

void sum_log1p(Stream s, const float* x, int64_t n, float scale, float* out) {
  reduce_kernel<true><<<1, kReduceThreads, 0, as_stream(s)>>>(x, nullptr, scale, n < 0 ? 0 : n, out);
  UNET_CUDA_CHECK_LAUNCH();
}

}  // namespace unet::restore::kernels::cuda
