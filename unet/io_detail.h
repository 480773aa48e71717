// Pieces shared by the image I/O translation units (io_decode.cpp, io_encode.cpp, io_stream.cpp,
// labels.cpp): libtiff's error capture, PNG chunk writing, sample conversion. Not an interface.
#pragma once
#include <tiffio.h>

#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "unet/image.h"

namespace unet::io_detail {

// Rounds and clamps; NaN -> 0.
template <typename T>
inline T to_int_sample(float v, float maxv) {
  if (!(v > 0.0f)) return 0;
  if (v >= maxv) return static_cast<T>(maxv);
  return static_cast<T>(std::lround(v));
}

template <typename T>
inline std::vector<T> interleave(const Image& img, float maxv) {
  std::vector<T> out(img.data.size());
  const size_t hw = static_cast<size_t>(img.height) * img.width;
  const int c = img.channels;
  for (int k = 0; k < c; ++k)
    for (size_t i = 0; i < hw; ++i) out[i * c + k] = to_int_sample<T>(img.data[k * hw + i], maxv);
  return out;
}

inline void check_writable_image(const std::string& path, const Image& img, int max_channels) {
  UNET_CHECK(img.channels >= 1 && img.height >= 1 && img.width >= 1, "cannot write '", path, "': image has zero size (",
             img.width, "x", img.height, ", ", img.channels, " channels)");
  UNET_CHECK(img.data.size() == static_cast<size_t>(img.channels) * img.height * img.width, "cannot write '", path,
             "': image data holds ", img.data.size(), " values, not channels*height*width");
  UNET_CHECK(img.channels <= max_channels, "cannot write '", path, "': ", img.channels,
             " channels (this format takes 1 to ", max_channels, ")");
}

// ---- libtiff -------------------------------------------------------------------------------------

// libtiff reports through process-wide handlers that print to stderr by default. Ours collect
// the text of errors in a per-thread buffer that the failing call turns into a unet::Error;
// warnings (unknown tags from ImageJ and the like) are dropped.
inline thread_local std::string t_tiff_errors;

inline void tiff_error_handler(const char* module, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (!t_tiff_errors.empty()) t_tiff_errors += "; ";
  if (module && *module) {
    t_tiff_errors += module;
    t_tiff_errors += ": ";
  }
  t_tiff_errors += buf;
}
inline void tiff_warning_handler(const char*, const char*, va_list) {}

struct TiffErrorScope {
  TiffErrorScope() {
    static std::once_flag once;
    std::call_once(once, [] {
      TIFFSetErrorHandler(tiff_error_handler);
      TIFFSetWarningHandler(tiff_warning_handler);
    });
    t_tiff_errors.clear();
  }
  ~TiffErrorScope() { t_tiff_errors.clear(); }
  std::string reason() const { return t_tiff_errors.empty() ? std::string("unknown libtiff error") : t_tiff_errors; }
};

struct TiffCloser {
  void operator()(TIFF* t) const {
    if (t) TIFFClose(t);
  }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

// ---- PNG chunks ----------------------------------------------------------------------------------

inline uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

inline void png_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put_be32(out, static_cast<uint32_t>(n));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (n) out.insert(out.end(), data, data + n);
  const uint32_t crc = crc32_update(0xffffffffu, out.data() + start, n + 4) ^ 0xffffffffu;
  put_be32(out, crc);
}

inline std::string format_value(float v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace unet::io_detail
