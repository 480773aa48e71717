// Writing images, every file atomically: 8- and 16-bit PNG, TIFF pages (u8, u16, float), npy, and the
// overlay of a mask on an image. See unet/io.h and docs/io.md.
#include "unet/io.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/check.h"
#include "unet/io_detail.h"
#include "unet/stb_codec.h"

namespace unet {
namespace {

using namespace io_detail;

// ---- TIFF writer ---------------------------------------------------------------------------------

void write_tiff_pages(const std::string& path, const std::vector<const Image*>& pages, TiffSample type) {
  UNET_CHECK(!pages.empty(), "cannot write '", path, "': no pages");
  uint64_t total = 0;
  for (const Image* p : pages) {
    check_writable_image(path, *p, 65535);
    total += p->data.size();
  }
  const int bps = type == TiffSample::U8 ? 8 : type == TiffSample::U16 ? 16 : 32;
  const bool big = total * (bps / 8) > (uint64_t{3} << 30);  // classic TIFF offsets are 32-bit
  atomic_write_via_path(path, [&](const std::string& tmp) {
    TiffErrorScope scope;
    TiffPtr tif(TIFFOpen(tmp.c_str(), big ? "w8" : "w"));
    if (!tif) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
    const uint16_t compression =
        TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE;
    for (size_t pi = 0; pi < pages.size(); ++pi) {
      const Image& img = *pages[pi];
      const int c = img.channels;
      const bool rgb = type != TiffSample::F32 && (c == 3 || c == 4);
      TIFF* t = tif.get();
      TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(img.width));
      TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(img.height));
      TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(bps));
      TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(c));
      TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, type == TiffSample::F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
      TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
      const int extra = c - (rgb ? 3 : 1);
      if (extra > 0) {
        std::vector<uint16_t> kinds(extra, EXTRASAMPLE_UNSPECIFIED);
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, static_cast<uint16_t>(extra), kinds.data());
      }
      TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
      TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(t, 0));
      if (pages.size() > 1) {
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
        TIFFSetField(t, TIFFTAG_PAGENUMBER, static_cast<uint16_t>(pi), static_cast<uint16_t>(pages.size()));
      }
      std::vector<uint8_t> row(static_cast<size_t>(img.width) * c * (bps / 8));
      const size_t hw = static_cast<size_t>(img.height) * img.width;
      for (int y = 0; y < img.height; ++y) {
        for (int x = 0; x < img.width; ++x)
          for (int k = 0; k < c; ++k) {
            const float v = img.data[k * hw + static_cast<size_t>(y) * img.width + x];
            uint8_t* dst = row.data() + (static_cast<size_t>(x) * c + k) * (bps / 8);
            if (type == TiffSample::U8) {
              *dst = to_int_sample<uint8_t>(v, 255.0f);
            } else if (type == TiffSample::U16) {
              const uint16_t s = to_int_sample<uint16_t>(v, 65535.0f);
              std::memcpy(dst, &s, 2);
            } else {
              std::memcpy(dst, &v, 4);
            }
          }
        if (TIFFWriteScanline(t, row.data(), static_cast<uint32_t>(y), 0) < 0)
          UNET_FAIL("cannot write TIFF file '", path, "' page ", pi, ": ", scope.reason());
      }
      if (!TIFFWriteDirectory(t)) UNET_FAIL("cannot write TIFF file '", path, "' page ", pi, ": ", scope.reason());
    }
    TIFF* raw = tif.release();
    TIFFClose(raw);
    if (!t_tiff_errors.empty()) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
  });
}

void write_tiff_channels_as_pages(const std::string& path, const Image& img, TiffSample type) {
  check_writable_image(path, img, 65535);
  std::vector<Image> planes;
  planes.reserve(img.channels);
  const size_t hw = static_cast<size_t>(img.height) * img.width;
  for (int c = 0; c < img.channels; ++c) {
    Image p(1, img.height, img.width);
    std::copy(img.data.begin() + c * hw, img.data.begin() + (c + 1) * hw, p.data.begin());
    planes.push_back(std::move(p));
  }
  std::vector<const Image*> ptrs;
  for (const Image& p : planes) ptrs.push_back(&p);
  write_tiff_pages(path, ptrs, type);
}

}  // namespace

// ---- public: writing -----------------------------------------------------------------------------

void write_png(const std::string& path, const Image& img) {
  check_writable_image(path, img, 4);
  const std::vector<uint8_t> pixels = interleave<uint8_t>(img, 255.0f);
  std::vector<uint8_t> encoded;
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stb_codec::write_png(sink, &encoded, img.width, img.height, img.channels, pixels.data()))
    UNET_FAIL("cannot write PNG file '", path, "': encoder failed");
  atomic_write_bytes(path, encoded.data(), encoded.size());
}

void write_png16(const std::string& path, const Image& img) {
  check_writable_image(path, img, 4);
  const std::vector<uint16_t> pixels = interleave<uint16_t>(img, 65535.0f);
  const int c = img.channels;
  const size_t row_bytes = static_cast<size_t>(img.width) * c * 2;
  std::vector<uint8_t> raw((row_bytes + 1) * img.height);
  for (int y = 0; y < img.height; ++y) {
    uint8_t* dst = raw.data() + y * (row_bytes + 1);
    *dst++ = 0;  // filter type: none
    const uint16_t* src = pixels.data() + static_cast<size_t>(y) * img.width * c;
    for (size_t i = 0; i < static_cast<size_t>(img.width) * c; ++i) {
      *dst++ = static_cast<uint8_t>(src[i] >> 8);  // PNG samples are big-endian
      *dst++ = static_cast<uint8_t>(src[i] & 0xff);
    }
  }
  UNET_CHECK(raw.size() < static_cast<size_t>(INT32_MAX), "cannot write '", path, "': image too large for PNG");
  int zlen = 0;
  unsigned char* z = stb_codec::zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen);
  UNET_CHECK(z != nullptr, "cannot write PNG file '", path, "': compression failed");
  std::unique_ptr<unsigned char, void (*)(void*)> zguard(z, std::free);

  static const uint8_t kColorType[5] = {0, 0, 4, 2, 6};  // gray, gray+alpha, RGB, RGBA
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, static_cast<uint32_t>(img.width));
  put_be32(ihdr, static_cast<uint32_t>(img.height));
  ihdr.insert(ihdr.end(), {16, kColorType[c], 0, 0, 0});  // depth, colour type, deflate, filter, no interlace
  png_chunk(out, "IHDR", ihdr.data(), ihdr.size());
  png_chunk(out, "IDAT", z, static_cast<size_t>(zlen));
  png_chunk(out, "IEND", nullptr, 0);
  atomic_write_bytes(path, out.data(), out.size());
}

void write_tiff_float(const std::string& path, const Image& img) {
  write_tiff_channels_as_pages(path, img, TiffSample::F32);
}
void write_tiff_u8(const std::string& path, const Image& img) {
  write_tiff_channels_as_pages(path, img, TiffSample::U8);
}
void write_tiff_u16(const std::string& path, const Image& img) {
  write_tiff_channels_as_pages(path, img, TiffSample::U16);
}

void write_tiff_stack(const std::string& path, const std::vector<Image>& pages, TiffSample type) {
  std::vector<const Image*> ptrs;
  for (const Image& p : pages) ptrs.push_back(&p);
  write_tiff_pages(path, ptrs, type);
}

void write_npy(const std::string& path, const Image& img) {
  check_writable_image(path, img, 1 << 30);
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  if (img.channels == 1) dict << img.height << ", " << img.width << "), }";
  else dict << img.channels << ", " << img.height << ", " << img.width << "), }";
  std::string header = dict.str();
  // Magic (6) + version (2) + length (2) + header, padded with spaces and ended by '\n' to a
  // multiple of 64 bytes so the data is aligned.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  UNET_CHECK(header.size() <= 65535, "cannot write '", path, "': npy header too long");
  std::vector<uint8_t> out = {0x93,
                              'N',
                              'U',
                              'M',
                              'P',
                              'Y',
                              1,
                              0,
                              static_cast<uint8_t>(header.size() & 0xff),
                              static_cast<uint8_t>(header.size() >> 8)};
  out.insert(out.end(), header.begin(), header.end());
  const auto* data = reinterpret_cast<const uint8_t*>(img.data.data());
  out.insert(out.end(), data, data + img.data.size() * sizeof(float));
  atomic_write_bytes(path, out.data(), out.size());
}

void overlay_png(const std::string& path, const Image& gray01, const Image& mask, const OverlayOptions& opt) {
  UNET_CHECK(gray01.channels == 1 || gray01.channels == 3, "overlay_png '", path,
             "': the image must have 1 or 3 channels, not ", gray01.channels);
  UNET_CHECK(mask.channels == 1, "overlay_png '", path, "': the mask must have 1 channel, not ", mask.channels);
  UNET_CHECK(mask.height == gray01.height && mask.width == gray01.width, "overlay_png '", path, "': mask is ",
             mask.width, "x", mask.height, " but the image is ", gray01.width, "x", gray01.height);
  check_writable_image(path, gray01, 3);
  const int h = gray01.height, w = gray01.width;
  const size_t hw = static_cast<size_t>(h) * w;
  Image rgb(3, h, w);
  for (int k = 0; k < 3; ++k) {
    const float* src = gray01.plane(gray01.channels == 1 ? 0 : k);
    for (size_t i = 0; i < hw; ++i) rgb.data[k * hw + i] = std::clamp(src[i], 0.0f, 1.0f) * 255.0f;
  }
  const float tint = static_cast<float>(opt.tint_class);
  auto in_class = [&](int y, int x) { return std::lround(mask.at(0, y, x)) == std::lround(tint); };
  const float colour[3] = {static_cast<float>(opt.r), static_cast<float>(opt.g), static_cast<float>(opt.b)};
  const float a = std::clamp(opt.alpha, 0.0f, 1.0f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (!in_class(y, x)) continue;
      if (opt.boundary_only) {
        const bool edge = (y > 0 && !in_class(y - 1, x)) || (y + 1 < h && !in_class(y + 1, x)) ||
                          (x > 0 && !in_class(y, x - 1)) || (x + 1 < w && !in_class(y, x + 1));
        if (!edge) continue;
        for (int k = 0; k < 3; ++k) rgb.at(k, y, x) = colour[k];
      } else {
        for (int k = 0; k < 3; ++k) rgb.at(k, y, x) = (1.0f - a) * rgb.at(k, y, x) + a * colour[k];
      }
    }
  write_png(path, rgb);
}

}  // namespace unet
