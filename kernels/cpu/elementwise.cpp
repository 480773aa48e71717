// sgd_momentum and the engine's elementwise helpers on the CPU.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace unet::kernels::cpu {

// g' = g + wd * w;  v = mu * v + g';  w = w - lr * v   (torch.optim.SGD, dampening 0)
void sgd_momentum(Stream, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[i] + wd * w[i];
    v[i] = mu * v[i] + gi;
    w[i] -= lr * v[i];
  }
}

// y += x
void add(Stream, float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

// y = value
void fill(Stream, float* y, float value, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

// *flag = 1 if any x[i] is NaN or +-inf
void check_finite(Stream, const float* x, int64_t n, int32_t* flag) {
  bool bad = false;
#pragma omp parallel for reduction(|| : bad) schedule(static)
  for (int64_t i = 0; i < n; ++i) bad = bad || !std::isfinite(x[i]);
  if (bad) *flag = 1;
}

}  // namespace unet::kernels::cpu
