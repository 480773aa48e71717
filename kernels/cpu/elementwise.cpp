// sgd_momentum and the engine's elementwise helpers on the CPU.
#include <atomic>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

// g' = g + wd * w;  v = mu * v + g';  w = w - lr * v   (torch.optim.SGD, dampening 0)
void sgd_momentum(Stream, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      float gi = g[i] + wd * w[i];
      v[i] = mu * v[i] + gi;
      w[i] -= lr * v[i];
    }
  });
}

// y += x
void add(Stream, float* y, const float* x, int64_t n) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

// y = value
void fill(Stream, float* y, float value, int64_t n) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] = value;
  });
}

// *flag = 1 if any x[i] is NaN or +-inf
void check_finite(Stream, const float* x, int64_t n, int32_t* flag) {
  std::atomic<bool> bad{false};
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
    bool local = false;
    for (int64_t i = b; i < e; ++i) local = local || !std::isfinite(x[i]);
    if (local) bad.store(true, std::memory_order_relaxed);
  });
  if (bad.load()) *flag = 1;
}

}  // namespace unet::kernels::cpu
