// sgd_momentum, PyTorch's convention (so momentum buffers move between the CPU and the GPU):
//   g' = g + wd * w;  v = mu * v + g';  w = w - lr * v
// one thread per element in a grid-stride loop; the update itself is optim_math.cuh's.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/optim_math.cuh"

namespace unet::kernels::cuda {
namespace {

__global__ void sgd_momentum_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                    int64_t n, float lr, float mu, float wd) {
  for (int64_t i : grid_stride(n)) sgd_momentum_at(w, g, v, i, lr, mu, wd);
}

}  // namespace

void sgd_momentum(Stream s, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  launch_over(n, s, sgd_momentum_kernel, w, g, v, n, lr, mu, wd);
}

}  // namespace unet::kernels::cuda
