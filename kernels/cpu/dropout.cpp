// dropout on the CPU: inverted dropout whose mask is a pure function of (seed, offset, i).
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/philox.h"

namespace unet::kernels::cpu {

// y[i] = x[i] / (1 - p) if uniform(seed, offset, i) >= p else 0
void dropout_forward(Stream, const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset,
                     const uint64_t* offset_base) {
  if (offset_base) offset += *offset_base;
  const float scale = 1.0f / (1.0f - p);
  parallel_for(n, grain_for(n, 16), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = philox::uniform(seed, offset, i) >= p ? x[i] * scale : 0.0f;
  });
}

// dx[i] = dy[i] / (1 - p) where the same mask kept element i, else 0
void dropout_backward(Stream, const float* dy, float* dx, int64_t n, float p, uint64_t seed, uint64_t offset,
                      const uint64_t* offset_base) {
  if (offset_base) offset += *offset_base;
  const float scale = 1.0f / (1.0f - p);
  parallel_for(n, grain_for(n, 16), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = philox::uniform(seed, offset, i) >= p ? dy[i] * scale : 0.0f;
  });
}

}  // namespace unet::kernels::cpu
