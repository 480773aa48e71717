// maxpool2x2 on the CPU: the contracting path's downsampling.
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

// y[n,c,i,j] = max(x[n,c,2i,2j], x[n,c,2i,2j+1], x[n,c,2i+1,2j], x[n,c,2i+1,2j+1])
void maxpool2x2_forward(Stream, const float* x, float* y, int N, int C, int H, int W) {
  const int Ho = H / 2, Wo = W / 2;
  const int64_t rows = static_cast<int64_t>(N) * C * Ho;  // output rows, (n, c, i) flattened
  parallel_for(rows, grain_for(rows, 5 * Wo), [&](int64_t r0_, int64_t r1_) {
    for (int64_t row = r0_; row < r1_; ++row) {
      const int64_t nc = row / Ho, i = row % Ho;
      const float* r0 = x + (nc * H + 2 * i) * W;
      const float* r1 = r0 + W;
      float* out = y + row * Wo;
      for (int j = 0; j < Wo; ++j) {
        float m = r0[2 * j];
        m = r0[2 * j + 1] > m ? r0[2 * j + 1] : m;
        m = r1[2 * j] > m ? r1[2 * j] : m;
        m = r1[2 * j + 1] > m ? r1[2 * j + 1] : m;
        out[j] = m;
      }
    }
  });
}

// dx = dy at the first maximum of each window (order: (0,0), (0,1), (1,0), (1,1)), 0 elsewhere (added to dx with
// accumulate). The argmax is recomputed from x, so nothing but x is kept between forward and backward.
void maxpool2x2_backward(Stream, const float* x, const float* dy, float* dx, int N, int C, int H, int W,
                         bool accumulate) {
  const int Ho = H / 2, Wo = W / 2;
  const int64_t rows = static_cast<int64_t>(N) * C * Ho;
  parallel_for(rows, grain_for(rows, 9 * Wo), [&](int64_t r0_, int64_t r1_) {
    for (int64_t row = r0_; row < r1_; ++row) {
      const int64_t nc = row / Ho, i = row % Ho;
      const int64_t row0 = (nc * H + 2 * i) * W;
      const float* g = dy + row * Wo;
      for (int j = 0; j < Wo; ++j) {
        const int64_t idx[4] = {row0 + 2 * j, row0 + 2 * j + 1, row0 + W + 2 * j, row0 + W + 2 * j + 1};
        int best = 0;
        for (int t = 1; t < 4; ++t)
          if (x[idx[t]] > x[idx[best]]) best = t;
        if (accumulate) dx[idx[best]] += g[j];
        else
          for (int t = 0; t < 4; ++t) dx[idx[t]] = t == best ? g[j] : 0.0f;
      }
    }
  });
}

}  // namespace unet::kernels::cpu
