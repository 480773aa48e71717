// same_pixels A B: exit status 0 when the two image files decode (with the project's readers) to the
// same width, height, channels and sample values; otherwise 1, printing the first difference.
#include <cstdio>

#include "unet/io.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: same_pixels A B\n");
    return 2;
  }
  try {
    const unet::Image a = unet::read_image(argv[1]), b = unet::read_image(argv[2]);
    if (a.width != b.width || a.height != b.height || a.channels != b.channels) {
      std::fprintf(stderr, "%s is %dx%dx%d, %s is %dx%dx%d\n", argv[1], a.width, a.height, a.channels, argv[2], b.width,
                   b.height, b.channels);
      return 1;
    }
    for (size_t i = 0; i < a.data.size(); ++i)
      if (a.data[i] != b.data[i]) {
        const size_t hw = static_cast<size_t>(a.width) * a.height;
        std::fprintf(stderr, "first difference at x=%zu, y=%zu, channel %zu: %g in %s, %g in %s\n", i % hw % a.width,
                     i % hw / a.width, i / hw, a.data[i], argv[1], b.data[i], argv[2]);
        return 1;
      }
    return 0;
  } catch (const unet::Error& e) {
    std::fprintf(stderr, "same_pixels: %s\n", e.what());
    return 2;
  }
}
