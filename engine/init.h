// He / Kaiming normal initialisation (He et al. 2015; the U-Net paper's Section 3):
// w ~ N(0, 2/N) with N the fan-in, e.g. 9 * 64 = 576 for a 3x3 convolution on 64 channels.
#pragma once
#include <cmath>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace unet {

// Fills `w` (any device) with N(0, 2/fan_in) drawn from rng on the host.
inline void he_normal_(Tensor& w, int64_t fan_in, Rng& rng) {
  UNET_CHECK(fan_in > 0, "he_normal_: fan-in must be positive, got ", fan_in);
  float std = std::sqrt(2.0f / static_cast<float>(fan_in));
  std::vector<float> v(static_cast<size_t>(w.numel()));
  for (float& e : v) e = std * rng.normal();
  w.copy_from(Tensor::from_vector(w.shape(), v));
}

}  // namespace unet
