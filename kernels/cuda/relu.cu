// relu: y = max(x, 0); backward from the output: dx = dy where y > 0, else 0.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

// y[i] = max(x[i], 0)   (x > 0 ? x : 0, so a NaN input gives 0 only where the CPU's comparison would)
__global__ void relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i : grid_stride(n)) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

// dx[i] = dy[i] * (y[i] > 0)
__global__ void relu_backward_kernel(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx,
                                     int64_t n) {
  for (int64_t i : grid_stride(n)) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

void relu_forward(Stream s, const float* x, float* y, int64_t n) { launch_over(n, s, relu_forward_kernel, x, y, n); }

void relu_backward(Stream s, const float* y, const float* dy, float* dx, int64_t n) {
  launch_over(n, s, relu_backward_kernel, y, dy, dx, n);
}

}  // namespace unet::kernels::cuda
