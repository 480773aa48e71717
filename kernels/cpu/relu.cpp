// relu on the CPU.
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace unet::kernels::cpu {

// y = max(x, 0)
void relu_forward(Stream, const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

// dx = dy where y > 0, else 0 (the subgradient at 0 is taken as 0, as PyTorch does)
void relu_backward(Stream, const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace unet::kernels::cpu
