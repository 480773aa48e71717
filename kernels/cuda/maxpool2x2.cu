// maxpool2x2: 2x2 windows, stride 2 (H and W even). x[N,C,H,W] -> y[N,C,H/2,W/2].
// One thread per output (window); the windows tile x exactly, so backward writes every dx element once.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

// Index within the window (row-major: 0 = (0,0), 1 = (0,1), 2 = (1,0), 3 = (1,1)) of its FIRST maximum:
// a later element wins only when strictly greater.
__device__ inline int window_argmax(float v0, float v1, float v2, float v3, float* best) {
  int arg = 0;
  float m = v0;
  if (v1 > m) {
    m = v1;
    arg = 1;
  }
  if (v2 > m) {
    m = v2;
    arg = 2;
  }
  if (v3 > m) {
    m = v3;
    arg = 3;
  }
  *best = m;
  return arg;
}

// y[n,c,i,j] = max_{a,e in {0,1}} x[n,c,2i+a,2j+e]
__global__ void maxpool2x2_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t total, int H,
                                          int W) {
  const int Ho = H / 2, Wo = W / 2;
  const int64_t HoWo = static_cast<int64_t>(Ho) * Wo;
  for (int64_t o : grid_stride(total)) {
    const int64_t plane = o / HoWo;
    const int64_t q = o - plane * HoWo;
    const int i = static_cast<int>(q / Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * Wo);
    const float* p = x + plane * H * W + static_cast<int64_t>(2 * i) * W + 2 * j;
    float m;
    window_argmax(p[0], p[1], p[W], p[W + 1], &m);
    y[o] = m;
  }
}

// dx[n,c,2i+a,2j+e] = dy[n,c,i,j] at the window's first maximum (recomputed from x), 0 elsewhere; with accumulate
// added to dx (only the maximum's element is read and written).
__global__ void maxpool2x2_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dx, int64_t total, int H, int W, bool accumulate) {
  const int Ho = H / 2, Wo = W / 2;
  const int64_t HoWo = static_cast<int64_t>(Ho) * Wo;
  for (int64_t o : grid_stride(total)) {
    const int64_t plane = o / HoWo;
    const int64_t q = o - plane * HoWo;
    const int i = static_cast<int>(q / Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * Wo);
    const int64_t base = plane * H * W + static_cast<int64_t>(2 * i) * W + 2 * j;
    const float* p = x + base;
    float m;
    const int arg = window_argmax(p[0], p[1], p[W], p[W + 1], &m);
    const float g = dy[o];
    float* d = dx + base;
    if (accumulate) {
      float* at = d + (arg & 1) + (arg >> 1) * W;
      *at += g;
      continue;
    }
    d[0] = arg == 0 ? g : 0.0f;
    d[1] = arg == 1 ? g : 0.0f;
    d[W] = arg == 2 ? g : 0.0f;
    d[W + 1] = arg == 3 ? g : 0.0f;
  }
}

}  // namespace

void maxpool2x2_forward(Stream s, const float* x, float* y, int N, int C, int H, int W) {
  const int64_t total = static_cast<int64_t>(N) * C * (H / 2) * (W / 2);
  launch_over(total, s, maxpool2x2_forward_kernel, x, y, total, H, W);
}

void maxpool2x2_backward(Stream s, const float* x, const float* dy, float* dx, int N, int C, int H, int W,
                         bool accumulate) {
  const int64_t total = static_cast<int64_t>(N) * C * (H / 2) * (W / 2);
  launch_over(total, s, maxpool2x2_backward_kernel, x, dy, dx, total, H, W, accumulate);
}

}  // namespace unet::kernels::cuda
