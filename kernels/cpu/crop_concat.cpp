// crop_concat on the CPU: the skip connection of the U-Net (the paper's "copy and crop").
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

// y[n, c, i, j]      = skip[n, c, i + oy, j + ox]   for c < Cs, (oy, ox) = ((Hs-Hu)/2, (Ws-Wu)/2)
// y[n, Cs + c, i, j] = up[n, c, i, j]
void crop_concat_forward(Stream, const float* skip, const float* up, float* y, int N, int Cs, int Hs, int Ws, int Cu,
                         int Hu, int Wu) {
  const int oy = (Hs - Hu) / 2, ox = (Ws - Wu) / 2, Cy = Cs + Cu;
  const int64_t planes = static_cast<int64_t>(N) * Cy;
  parallel_for(planes, grain_for(planes, 2 * static_cast<int64_t>(Hu) * Wu), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const int64_t n = pl / Cy, c = pl % Cy;
      for (int i = 0; i < Hu; ++i) {
        float* dst = y + (pl * Hu + i) * Wu;
        const float* src =
            c < Cs ? skip + ((n * Cs + c) * Hs + i + oy) * Ws + ox : up + ((n * Cu + c - Cs) * Hu + i) * Wu;
        std::copy(src, src + Wu, dst);
      }
    }
  });
}

// dskip = dy's first Cs channels placed in the crop window (zero outside); dup = the rest.
void crop_concat_backward(Stream, const float* dy, float* dskip, float* dup, int N, int Cs, int Hs, int Ws, int Cu,
                          int Hu, int Wu) {
  const int oy = (Hs - Hu) / 2, ox = (Ws - Wu) / 2, Cy = Cs + Cu;
  const int64_t planes = static_cast<int64_t>(N) * Cy;
  parallel_for(planes, grain_for(planes, 2 * static_cast<int64_t>(Hu) * Wu), [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl) {
      const int64_t n = pl / Cy, c = pl % Cy;
      if (c < Cs) {
        float* plane = dskip + (static_cast<int64_t>(n) * Cs + c) * Hs * Ws;
        std::fill(plane, plane + static_cast<int64_t>(Hs) * Ws, 0.0f);
        for (int i = 0; i < Hu; ++i) {
          const float* src = dy + ((static_cast<int64_t>(n) * Cy + c) * Hu + i) * Wu;
          std::copy(src, src + Wu, plane + static_cast<int64_t>(i + oy) * Ws + ox);
        }
      } else {
        const float* src = dy + (static_cast<int64_t>(n) * Cy + c) * Hu * Wu;
        std::copy(src, src + static_cast<int64_t>(Hu) * Wu, dup + (static_cast<int64_t>(n) * Cu + c - Cs) * Hu * Wu);
      }
    }
  });
}

}  // namespace unet::kernels::cpu
