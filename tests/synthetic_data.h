// A small learnable segmentation problem for the training tests (CPU and GPU).
#pragma once
#include <string>

#include "engine/rng.h"
#include "unet/train.h"
#include "unet/weightmap.h"

namespace unet::test {

// Discs on a noisy background: class 1 inside the discs, image brighter there.
inline Dataset synthetic(int n, int size, uint64_t seed, const WeightMapParams& wm = {}) {
  Dataset d;
  for (int i = 0; i < n; ++i) {
    Image im(1, size, size), lb(1, size, size);
    Rng r(seed + i);
    for (int c = 0; c < 4; ++c) {
      float cy = r.uniform() * size, cx = r.uniform() * size, rad = 4 + r.uniform() * 6;
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
          if ((y - cy) * (y - cy) + (x - cx) * (x - cx) < rad * rad) lb.at(0, y, x) = 1.0f;
    }
    for (int64_t p = 0; p < im.pixels(); ++p) im.data[p] = 0.3f + 0.4f * lb.data[p] + 0.1f * (r.uniform() - 0.5f);
    d.names.push_back("synthetic" + std::to_string(i));
    d.images.push_back(im);
    d.labels.push_back(lb);
    d.weights.push_back(weight_map(lb, wm));
  }
  return d;
}

}  // namespace unet::test
