// A 2-D, multi-channel float image in planar (CHW) layout: the unit of data of unet/.
// Images are kept in float whatever their file held; labels are images of small integers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/check.h"

namespace unet {

struct Image {
  int channels = 0, height = 0, width = 0;
  std::vector<float> data;  // data[(c * height + y) * width + x]

  Image() = default;
  Image(int c, int h, int w, float v = 0.0f)
      : channels(c), height(h), width(w), data(static_cast<size_t>(c) * h * w, v) {}

  bool empty() const { return data.empty(); }
  int64_t pixels() const { return static_cast<int64_t>(height) * width; }
  float& at(int c, int y, int x) { return data[(static_cast<size_t>(c) * height + y) * width + x]; }
  float at(int c, int y, int x) const { return data[(static_cast<size_t>(c) * height + y) * width + x]; }
  float* plane(int c) { return data.data() + static_cast<size_t>(c) * height * width; }
  const float* plane(int c) const { return data.data() + static_cast<size_t>(c) * height * width; }
};

}  // namespace unet
