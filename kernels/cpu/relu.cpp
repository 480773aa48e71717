// relu on the CPU.
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

// y = max(x, 0)
void relu_forward(Stream, const float* x, float* y, int64_t n) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

// dx = dy where y > 0, else 0 (the subgradient at 0 is taken as 0, as PyTorch does). dy is read
// unconditionally: a select the loop vectorises, not a branch around a load (which it did not: 8x slower).
void relu_backward(Stream, const float* y, const float* dy, float* dx, int64_t n) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float g = dy[i];
      dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
  });
}

}  // namespace unet::kernels::cpu
