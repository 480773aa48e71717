// The optimizers' per-element updates (formulas in kernels/ops.inc; torch.optim's), shared by the single-tensor
// kernels (sgd_momentum.cu, optim_update.cu) and optim_update_list, so a listed tensor gets the same bits.
// Written as the fused multiply-adds that GCC contracts the CPU loops into (-O3, -march=native on a CPU with
// FMA, the default build): the same bits as the CPU there, and within an ulp of an unfused CPU build.
#pragma once
#include <cstdint>

namespace unet::kernels::cuda {

//   g' = g + wd * w;  v = mu * v + g';  w = w - lr * v
__device__ __forceinline__ void sgd_momentum_at(float* __restrict__ w, const float* __restrict__ g,
                                                float* __restrict__ v, int64_t i, float lr, float mu, float wd) {
  const float wi = w[i];
  const float gi = fmaf(wd, wi, g[i]);  // g' = g + wd * w
  const float vi = fmaf(mu, v[i], gi);  // v  = mu * v + g'
  v[i] = vi;
  w[i] = fmaf(-lr, vi, wi);  // w  = w - lr * v
}

//   g' = g + wd * w;  v = mu * v + g';  w = w - lr * (g' + mu * v)
__device__ __forceinline__ void sgd_nesterov_at(float* __restrict__ w, const float* __restrict__ g,
                                                float* __restrict__ v, int64_t i, float lr, float mu, float wd) {
  const float wi = w[i];
  const float gi = fmaf(wd, wi, g[i]);
  const float vi = fmaf(mu, v[i], gi);
  v[i] = vi;
  w[i] = fmaf(-lr, fmaf(mu, vi, gi), wi);
}

//   g' = g + wd * w;  m = b1 m + (1 - b1) g';  s = b2 s + (1 - b2) g'^2;  w -= step m / (sqrt(s) inv_sqrt_bc2 + eps)
__device__ __forceinline__ void adam_at(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                                        float* __restrict__ s, int64_t i, float step, float b1, float b2, float eps,
                                        float inv_sqrt_bc2, float wd) {
  const float wi = w[i];
  const float gi = fmaf(wd, wi, g[i]);
  const float mi = fmaf(b1, m[i], (1.0f - b1) * gi);
  const float si = fmaf(b2, s[i], (1.0f - b2) * gi * gi);
  m[i] = mi;
  s[i] = si;
  w[i] = wi - step * mi / fmaf(sqrtf(si), inv_sqrt_bc2, eps);
}

}  // namespace unet::kernels::cuda
