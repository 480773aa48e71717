// sgd_momentum, PyTorch's convention (so momentum buffers move between the CPU and the GPU):
//   g' = g + wd * w;  v = mu * v + g';  w = w - lr * v
// Written as the three fused multiply-adds that GCC contracts the CPU loop into (-O3, -march=native on a CPU
// with FMA, the default build): the same bits as the CPU there, and within an ulp of an unfused CPU build.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

__global__ void sgd_momentum_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                    int64_t n, float lr, float mu, float wd) {
  for (int64_t i : grid_stride(n)) {
    const float wi = w[i];
    const float gi = fmaf(wd, wi, g[i]);  // g' = g + wd * w
    const float vi = fmaf(mu, v[i], gi);  // v  = mu * v + g'
    v[i] = vi;
    w[i] = fmaf(-lr, vi, wi);  // w  = w - lr * v
  }
}

}  // namespace

void sgd_momentum(Stream s, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  launch_over(n, s, sgd_momentum_kernel, w, g, v, n, lr, mu, wd);
}

}  // namespace unet::kernels::cuda
