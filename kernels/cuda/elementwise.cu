// Elementwise helpers the engine needs (add, fill, check_finite). Grid-stride loops over 64-bit counts.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

// y[i] += x[i]
__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i : grid_stride(n)) y[i] += x[i];
}

// y[i] = value
__global__ void fill_kernel(float* __restrict__ y, float value, int64_t n) {
  for (int64_t i : grid_stride(n)) y[i] = value;
}

// *flag = 1 if any x[i] is NaN or +-inf (left alone otherwise). Each thread writes at most once; all
// writers store the same value, so the race is benign.
__global__ void check_finite_kernel(const float* __restrict__ x, int64_t n, int32_t* flag) {
  bool bad = false;
  for (int64_t i : grid_stride(n)) bad |= !isfinite(x[i]);
  if (bad) *flag = 1;
}

}  // namespace

void add(Stream s, float* y, const float* x, int64_t n) { launch_over(n, s, add_kernel, y, x, n); }

void fill(Stream s, float* y, float value, int64_t n) { launch_over(n, s, fill_kernel, y, value, n); }

void check_finite(Stream s, const float* x, int64_t n, int32_t* flag) {
  launch_over(n, s, check_finite_kernel, x, n, flag);
}

}  // namespace unet::kernels::cuda
