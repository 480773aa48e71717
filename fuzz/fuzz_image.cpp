// Fuzz target of the image decoders, built once per format (UNET_FUZZ_FORMAT_png / _tiff / _npy):
// the input's first bytes are overwritten with that format's magic so that every mutation reaches
// its decoder. Whatever the bytes, reading must either return an image whose every sample is as
// declared (and finite) or throw unet::Error: no crash, no sanitizer report, no huge allocation.
#include <cmath>
#include <cstring>
#include <vector>

#include "fuzz/fuzz_io.h"
#include "unet/io.h"

namespace {
#if defined(UNET_FUZZ_FORMAT_png)
const char kMagic[] = "\x89PNG\r\n\x1a\n";
const char* kExt = ".png";
#elif defined(UNET_FUZZ_FORMAT_tiff)
const char kMagic[] = "II*";  // + '\0' (the terminator); big-endian inputs are kept as they come
const char* kExt = ".tif";
#else
const char kMagic[] = "\x93NUMPY";
const char* kExt = ".npy";
#endif
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  const size_t n = sizeof kMagic;  // the magic with its terminating zero, as TIFF's "II*\0"
#if defined(UNET_FUZZ_FORMAT_tiff)
  const bool big_endian = size >= 4 && std::memcmp(data, "MM\0*", 4) == 0;
  if (!big_endian && bytes.size() >= n) std::memcpy(bytes.data(), kMagic, n);
#else
  if (bytes.size() >= n - 1) std::memcpy(bytes.data(), kMagic, n - 1);
#endif
  const std::string& path = unet::fuzz::input_path(kExt);
  unet::fuzz::write_input(path, bytes.data(), bytes.size());
  try {
    unet::ImageInfo info;
    std::vector<unet::RawImage> pages = unet::read_stack_raw(path, &info);
    for (const unet::RawImage& p : pages) {
      unet::Image img = unet::normalise_intensity(p);
      for (float v : img.data)
        if (!std::isfinite(v)) std::abort();  // the reader promised finite samples
      (void)unet::labels_from_image(unet::expand_raw(p), 2, path);
    }
  } catch (const unet::Error&) {}
  return 0;
}
