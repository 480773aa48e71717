// Mirror extrapolation (the paper's Fig. 2): index i reflected into [0, n) without repeating the
// edge pixel: -1 -> 1, -2 -> 2, n -> n-2, n+1 -> n-3, repeated for far points (period 2(n-1));
// n == 1 gives 0. Inline, with the common in-range case first: it runs once per sample of every
// tile and every augmented pixel. Callers make sure n >= 1 (mirror_index in unet/augment.h checks).
#pragma once
#include <cstdint>

namespace unet {

inline int mirror(int i, int n) {
  if (static_cast<unsigned>(i) < static_cast<unsigned>(n)) return i;
  if (n == 1) return 0;
  const int64_t period = 2 * static_cast<int64_t>(n - 1);
  int64_t m = static_cast<int64_t>(i) % period;
  if (m < 0) m += period;
  return static_cast<int>(m < n ? m : period - m);
}

}  // namespace unet
