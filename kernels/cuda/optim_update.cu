// sgd_nesterov and adam_update (formulas in kernels/ops.inc; torch.optim's), one thread per
// element in a grid-stride loop, as sgd_momentum.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

__global__ void sgd_nesterov_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                    int64_t n, float lr, float mu, float wd) {
  for (int64_t i : grid_stride(n)) {
    const float wi = w[i];
    const float gi = fmaf(wd, wi, g[i]);  // g' = g + wd * w
    const float vi = fmaf(mu, v[i], gi);  // v  = mu * v + g'
    v[i] = vi;
    w[i] = fmaf(-lr, fmaf(mu, vi, gi), wi);  // w -= lr * (g' + mu * v)
  }
}

__global__ void adam_update_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                                   float* __restrict__ s, int64_t n, float step, float b1, float b2, float eps,
                                   float inv_sqrt_bc2, float wd) {
  for (int64_t i : grid_stride(n)) {
    const float wi = w[i];
    const float gi = fmaf(wd, wi, g[i]);
    const float mi = fmaf(b1, m[i], (1.0f - b1) * gi);
    const float si = fmaf(b2, s[i], (1.0f - b2) * gi * gi);
    m[i] = mi;
    s[i] = si;
    w[i] = wi - step * mi / fmaf(sqrtf(si), inv_sqrt_bc2, eps);
  }
}

}  // namespace

void sgd_nesterov(Stream st, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  launch_over(n, st, sgd_nesterov_kernel, w, g, v, n, lr, mu, wd);
}

void adam_update(Stream st, float* w, const float* g, float* m, float* s, int64_t n, float step, float b1, float b2,
                 float eps, float inv_sqrt_bc2, float wd) {
  launch_over(n, st, adam_update_kernel, w, g, m, s, n, step, b1, b2, eps, inv_sqrt_bc2, wd);
}

}  // namespace unet::kernels::cuda
