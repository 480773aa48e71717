#include "unet/io.h"

#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/check.h"

#include "unet/stb_codec.h"

namespace unet {
namespace {

// ---- small helpers ------------------------------------------------------------------------------

std::vector<uint8_t> read_file_bytes(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot read ", what, " '", path, "': it is a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) UNET_FAIL("cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) UNET_FAIL("cannot read ", what, " '", path, "': read error");
  if (bytes.empty()) UNET_FAIL(what, " '", path, "' is empty (0 bytes)");
  return bytes;
}

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t n) {
  return b.size() >= n && std::memcmp(b.data(), magic, n) == 0;
}

bool is_tiff(const std::vector<uint8_t>& b) {
  return starts_with(b, "II*\0", 4) || starts_with(b, "MM\0*", 4) ||  // classic TIFF
         starts_with(b, "II+\0", 4) || starts_with(b, "MM\0+", 4);    // BigTIFF
}
bool is_npy(const std::vector<uint8_t>& b) { return starts_with(b, "\x93NUMPY", 6); }

const char* format_name(const std::vector<uint8_t>& b) {
  if (starts_with(b, "\x89PNG", 4)) return "PNG";
  if (starts_with(b, "\xff\xd8", 2)) return "JPEG";
  if (starts_with(b, "BM", 2)) return "BMP";
  if (starts_with(b, "GIF8", 4)) return "GIF";
  if (starts_with(b, "8BPS", 4)) return "PSD";
  if (starts_with(b, "#?", 2)) return "HDR";
  if (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') return "PNM";
  return "image";
}

// The most samples (width x height x channels) an image file may declare: 2^32, a 65536 x 65536
// image of 1 channel (4 GiB at 8 bits, 16 GiB as floats). Larger declarations are refused before
// anything is allocated.
constexpr uint64_t kMaxSamples = uint64_t{1} << 32;

// `where` names the file (and page): "image file 'x.png'".
void check_size(const std::string& where, int64_t c, int64_t h, int64_t w) {
  if (w <= 0 || h <= 0 || c <= 0) UNET_FAIL(where, " has zero size (", w, "x", h, ", ", c, " channels)");
  if (static_cast<uint64_t>(w) * static_cast<uint64_t>(h) * static_cast<uint64_t>(c) > kMaxSamples)
    UNET_FAIL(where, " declares ", w, " x ", h, " pixels with ", c, " channel(s), ",
              static_cast<uint64_t>(w) * h * c, " samples: more than the limit of ", kMaxSamples, " (2^32) samples");
}

// A file's data cannot decode to more than `ratio` times its length (the codec's best compression):
// a declaration beyond that is a damaged or crafted header, refused before anything is allocated.
void check_declared_bytes(const std::string& where, uint64_t declared, uint64_t stored, uint64_t ratio,
                          const char* codec) {
  if (declared <= stored * ratio + 4096) return;
  UNET_FAIL(where, " declares ", declared, " bytes of image data but holds ", stored, " bytes of ", codec,
            " data, which decode to at most ", stored * ratio + 4096, ": the file is truncated or its header is corrupt");
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Width, height and channels a PNG or JPEG header declares, read without decoding (stb_image refuses
// to report sizes it will not decode; the user should still hear what the file claims).
bool declared_size(const std::vector<uint8_t>& b, int64_t& w, int64_t& h, int64_t& c) {
  if (b.size() >= 26 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(b.data() + 12, "IHDR", 4) == 0) {
    w = be32(b.data() + 16);
    h = be32(b.data() + 20);
    static const int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type
    c = b[25] <= 6 && kChannels[b[25]] ? kChannels[b[25]] : 1;
    return true;
  }
  if (b.size() >= 4 && b[0] == 0xff && b[1] == 0xd8) {
    for (size_t p = 2; p + 9 < b.size();) {  // walk the marker segments to the frame header
      if (b[p] != 0xff) return false;
      const uint8_t m = b[p + 1];
      if (m == 0xff) { ++p; continue; }
      const size_t len = (size_t{b[p + 2]} << 8) | b[p + 3];
      if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
        h = (int64_t{b[p + 5]} << 8) | b[p + 6];
        w = (int64_t{b[p + 7]} << 8) | b[p + 8];
        c = b[p + 9];
        return true;
      }
      p += 2 + len;
    }
  }
  return false;
}

// Decoded bytes per stored byte, at most, for the formats stb_image reads: deflate 1032:1 (PNG),
// a DC-only JPEG about 1024:1, GIF's LZW 4096:1, run-length codings (BMP, TGA, PSD, HDR) 128:1.
uint64_t stb_max_ratio(const std::vector<uint8_t>& b) {
  const std::string f = format_name(b);
  if (f == "PNG") return 1100;
  if (f == "JPEG") return 2048;
  if (f == "GIF") return 4200;
  return 130;
}

// Every input sample must be a number: one NaN or inf would turn the whole map (and a training run's
// weights) into NaN. Names the first offender.
void check_finite_samples(const RawImage& img, const std::string& where) {
  if (!img.info.is_float) return;
  const size_t hw = static_cast<size_t>(img.height) * img.width;
  for (size_t i = 0; i < img.f32.size(); ++i)
    if (!std::isfinite(img.f32[i]))
      UNET_FAIL(where, " holds ", std::isnan(img.f32[i]) ? "NaN" : "an infinite value", " at x=", i % hw % img.width,
                ", y=", i % hw / img.width, img.channels > 1 ? ", channel " + std::to_string(i / hw) : std::string(),
                ": inputs must be finite numbers");
}

// Rounds and clamps; NaN -> 0.
template <typename T>
T to_int_sample(float v, float maxv) {
  if (!(v > 0.0f)) return 0;
  if (v >= maxv) return static_cast<T>(maxv);
  return static_cast<T>(std::lround(v));
}

template <typename T>
std::vector<T> interleave(const Image& img, float maxv) {
  std::vector<T> out(img.data.size());
  const size_t hw = static_cast<size_t>(img.height) * img.width;
  const int c = img.channels;
  for (int k = 0; k < c; ++k)
    for (size_t i = 0; i < hw; ++i) out[i * c + k] = to_int_sample<T>(img.data[k * hw + i], maxv);
  return out;
}

void check_writable_image(const std::string& path, const Image& img, int max_channels) {
  UNET_CHECK(img.channels >= 1 && img.height >= 1 && img.width >= 1, "cannot write '", path,
             "': image has zero size (", img.width, "x", img.height, ", ", img.channels, " channels)");
  UNET_CHECK(img.data.size() == static_cast<size_t>(img.channels) * img.height * img.width, "cannot write '",
             path, "': image data holds ", img.data.size(), " values, not channels*height*width");
  UNET_CHECK(img.channels <= max_channels, "cannot write '", path, "': ", img.channels,
             " channels (this format takes 1 to ", max_channels, ")");
}

// ---- compact storage -----------------------------------------------------------------------------

// Allocates the one storage vector `info` selects.
void allocate_raw(RawImage& img, int c, int h, int w, const ImageInfo& info) {
  img.channels = c;
  img.height = h;
  img.width = w;
  img.info = info;
  const size_t n = static_cast<size_t>(c) * h * w;
  if (info.is_float) img.f32.assign(n, 0.0f);
  else if (info.bits == 16) img.u16.assign(n, 0);
  else if (info.bits == 8) img.u8.assign(n, 0);
  else UNET_FAIL("raw image: unsupported sample type: ", info.bits, "-bit integer (8- or 16-bit integers, or float)");
}

// The bytes of the storage (the samples in the file's type, native byte order).
uint8_t* raw_bytes(RawImage& img) {
  if (img.info.is_float) return reinterpret_cast<uint8_t*>(img.f32.data());
  if (img.info.bits == 16) return reinterpret_cast<uint8_t*>(img.u16.data());
  return img.u8.data();
}

template <typename T>
void planar_from_interleaved(const T* src, T* dst, int c, int h, int w) {
  const size_t hw = static_cast<size_t>(h) * w;
  for (size_t i = 0; i < hw; ++i)
    for (int k = 0; k < c; ++k) dst[k * hw + i] = src[i * c + k];
}

// expand_raw for a page that is no longer needed: it is freed on return, and float samples are
// moved rather than copied.
Image image_from_raw(RawImage raw) {
  if (!raw.info.is_float) return expand_raw(raw);
  Image out;
  out.channels = raw.channels;
  out.height = raw.height;
  out.width = raw.width;
  out.data = std::move(raw.f32);
  return out;
}

// ---- stb_image -----------------------------------------------------------------------------------

RawImage read_stb(const std::string& path, const std::vector<uint8_t>& bytes, ImageInfo& info) {
  const auto* buf = bytes.data();
  const int len = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, c = 0;
  const char* fmt = format_name(bytes);
  if (!stb_codec::info(buf, len, &w, &h, &c)) {
    int64_t dw = 0, dh = 0, dc = 0;
    if (declared_size(bytes, dw, dh, dc)) {  // a header stb_image will not take: say what it claims
      check_size("image file '" + path + "'", dc, dh, dw);
      check_declared_bytes("image file '" + path + "'", static_cast<uint64_t>(dw * dh * dc), bytes.size(),
                           stb_max_ratio(bytes), fmt);
    }
    UNET_FAIL("cannot read image file '", path, "': ", std::string(fmt) == "image" ? "unsupported or unrecognised format" : "cannot decode its header",
              " (", stb_codec::failure_reason() ? stb_codec::failure_reason() : "unknown", "); supported: PNG, JPEG, BMP, ",
              "PGM/PPM, TGA, GIF, PSD, HDR, TIFF, NPY");
  }
  check_size("image file '" + path + "'", c, h, w);
  check_declared_bytes("image file '" + path + "'", static_cast<uint64_t>(w) * h * c, bytes.size(), stb_max_ratio(bytes),
                       fmt);
  info = ImageInfo{};
  void* pixels = nullptr;
  if (stb_codec::is_hdr(buf, len)) {
    pixels = stb_codec::load_f32(buf, len, &w, &h, &c);
    info.bits = 32;
    info.is_float = true;
  } else if (stb_codec::is_16_bit(buf, len)) {
    pixels = stb_codec::load_u16(buf, len, &w, &h, &c);
    info.bits = 16;
  } else {
    pixels = stb_codec::load_u8(buf, len, &w, &h, &c);
    info.bits = 8;
  }
  if (!pixels)
    UNET_FAIL("cannot decode ", fmt, " file '", path, "': ",
              stb_codec::failure_reason() ? stb_codec::failure_reason() : "unknown error", " (corrupt or truncated?)");
  std::unique_ptr<void, void (*)(void*)> guard(pixels, stb_codec::free_pixels);
  check_size("image file '" + path + "'", c, h, w);
  RawImage img;
  allocate_raw(img, c, h, w, info);
  if (info.is_float) planar_from_interleaved(static_cast<const float*>(pixels), img.f32.data(), c, h, w);
  else if (info.bits == 16) planar_from_interleaved(static_cast<const uint16_t*>(pixels), img.u16.data(), c, h, w);
  else planar_from_interleaved(static_cast<const uint8_t*>(pixels), img.u8.data(), c, h, w);
  return img;
}

// ---- libtiff -------------------------------------------------------------------------------------

// libtiff reports through process-wide handlers that print to stderr by default. Ours collect
// the text of errors in a per-thread buffer that the failing call turns into a unet::Error;
// warnings (unknown tags from ImageJ and the like) are dropped.
thread_local std::string t_tiff_errors;

void tiff_error_handler(const char* module, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (!t_tiff_errors.empty()) t_tiff_errors += "; ";
  if (module && *module) {
    t_tiff_errors += module;
    t_tiff_errors += ": ";
  }
  t_tiff_errors += buf;
}
void tiff_warning_handler(const char*, const char*, va_list) {}

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
  void operator()(TIFF* t) const { if (t) TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

const char* sample_format_name(uint16_t f) {
  switch (f) {
    case SAMPLEFORMAT_UINT: return "unsigned integer";
    case SAMPLEFORMAT_INT: return "signed integer";
    case SAMPLEFORMAT_IEEEFP: return "floating point";
    case SAMPLEFORMAT_VOID: return "untyped";
    case SAMPLEFORMAT_COMPLEXINT: return "complex integer";
    case SAMPLEFORMAT_COMPLEXIEEEFP: return "complex floating point";
    default: return "unknown sample format";
  }
}

// Checks the page's declared size (`declared` bytes once decoded) against the strip or tile data the
// file (of `file` bytes) holds: each block's byte count, cut at the end of the file, times the codec's best ratio.
void check_tiff_data(TIFF* tif, const std::string& where, uint64_t file, uint64_t declared, uint16_t compression) {
  const bool tiled = TIFFIsTiled(tif);
  const uint32_t blocks = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  uint64_t *offsets = nullptr, *counts = nullptr;
  if (!TIFFGetField(tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
      !TIFFGetField(tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) || !offsets || !counts)
    UNET_FAIL(where, " has no ", tiled ? "tile" : "strip", " offsets or byte counts: corrupt TIFF");
  uint64_t stored = 0;
  for (uint32_t i = 0; i < blocks; ++i)
    if (offsets[i] < file) stored += std::min(counts[i], file - offsets[i]);
  // Decoded bytes per stored byte, at most: none 1, PackBits 64 (2 bytes -> 128), deflate 1032,
  // LZW 4096 (one 9-bit code per 4 KiB string); any other codec 65536.
  uint64_t ratio = 65536;
  if (compression == COMPRESSION_NONE) ratio = 1;
  else if (compression == COMPRESSION_PACKBITS) ratio = 64;
  else if (compression == COMPRESSION_ADOBE_DEFLATE || compression == COMPRESSION_DEFLATE) ratio = 1100;
  else if (compression == COMPRESSION_LZW) ratio = 4096;
  check_declared_bytes(where, declared, stored, ratio, compression == COMPRESSION_NONE ? "uncompressed" : "compressed");
}

// The current directory of `tif` with its samples in their own type (8-bit, 16-bit or float).
RawImage read_tiff_page(TIFF* tif, const std::string& path, int page, const TiffErrorScope& scope) {
  const std::string where = "TIFF file '" + path + "' page " + std::to_string(page);
  uint32_t w = 0, h = 0;
  uint16_t bps = 1, spp = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG,
           photo = PHOTOMETRIC_MINISBLACK, compression = COMPRESSION_NONE;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = PHOTOMETRIC_MINISBLACK;
  if (w == 0 || h == 0 || spp == 0)
    UNET_FAIL(where, " has zero size (", w, "x", h, ", ", spp, " samples per pixel)");
  check_size(where, spp, h, w);
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  check_tiff_data(tif, where, ec ? 0 : file_bytes, static_cast<uint64_t>(w) * h * spp * std::max<uint16_t>(bps / 8, 1), compression);

  if (fmt == SAMPLEFORMAT_VOID) fmt = SAMPLEFORMAT_UINT;
  const bool ok = (fmt == SAMPLEFORMAT_UINT && (bps == 8 || bps == 16)) || (fmt == SAMPLEFORMAT_IEEEFP && bps == 32);
  if (!ok)
    UNET_FAIL(where, ": unsupported sample type: ", bps, " bits per sample, ", sample_format_name(fmt),
              " (supported: 8- or 16-bit unsigned integer, 32-bit float)");

  // Colour spaces that need conversion (YCbCr, CMYK, CIELab): let libtiff make 8-bit RGBA; keep RGB.
  if (photo == PHOTOMETRIC_YCBCR || photo == PHOTOMETRIC_SEPARATED || photo == PHOTOMETRIC_CIELAB) {
    if (bps != 8) UNET_FAIL(where, ": colour space ", photo, " is supported with 8-bit samples only");
    if (photo == PHOTOMETRIC_YCBCR && compression == COMPRESSION_JPEG)
      TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
    if (!TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 0))
      UNET_FAIL(where, ": cannot decode: ", scope.reason());
    RawImage img;
    allocate_raw(img, 3, static_cast<int>(h), static_cast<int>(w), ImageInfo{8, false, 1});
    const size_t hw = raster.size();
    for (size_t i = 0; i < hw; ++i) {
      img.u8[i] = static_cast<uint8_t>(TIFFGetR(raster[i]));
      img.u8[hw + i] = static_cast<uint8_t>(TIFFGetG(raster[i]));
      img.u8[2 * hw + i] = static_cast<uint8_t>(TIFFGetB(raster[i]));
    }
    return img;
  }

  RawImage img;
  allocate_raw(img, spp, static_cast<int>(h), static_cast<int>(w), ImageInfo{bps, fmt == SAMPLEFORMAT_IEEEFP, 1});
  const bool separate = planar == PLANARCONFIG_SEPARATE && spp > 1;
  const int planes = separate ? spp : 1;
  const int per_pixel = separate ? 1 : spp;   // samples per pixel inside one strip / tile
  const int bytes = bps / 8;
  uint8_t* dst = raw_bytes(img);
  const size_t hw = static_cast<size_t>(w) * h;
  // Copy a decoded block (strip or tile, `bw` pixels wide) whose top-left is (x0, y0): `rows` x `cols` of it.
  auto copy_block = [&](const std::vector<uint8_t>& buf, tmsize_t got, uint32_t x0, uint32_t y0, uint32_t bw,
                        uint32_t rows, uint32_t cols, int plane) {
    const uint64_t need = ((static_cast<uint64_t>(rows) - 1) * bw + cols) * per_pixel * bytes;
    if (got < 0 || static_cast<uint64_t>(got) < need)
      UNET_FAIL(where, ": cannot decode image data at row ", y0, ": ", scope.reason(), " (corrupt or truncated?)");
    for (uint32_t yy = 0; yy < rows; ++yy)
      for (uint32_t xx = 0; xx < cols; ++xx) {
        const uint8_t* p = buf.data() + (static_cast<size_t>(yy) * bw + xx) * per_pixel * bytes;
        const size_t pix = static_cast<size_t>(y0 + yy) * w + (x0 + xx);
        for (int s = 0; s < per_pixel; ++s)
          std::memcpy(dst + ((separate ? plane : s) * hw + pix) * bytes, p + s * bytes, bytes);
      }
  };
  if (TIFFIsTiled(tif)) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    const tmsize_t tsize = TIFFTileSize(tif);
    if (tw == 0 || th == 0 || tsize <= 0) UNET_FAIL(where, ": invalid tile layout: ", scope.reason());
    std::vector<uint8_t> buf(static_cast<size_t>(tsize));
    for (int plane = 0; plane < planes; ++plane)
      for (uint32_t y0 = 0; y0 < h; y0 += th)
        for (uint32_t x0 = 0; x0 < w; x0 += tw) {
          const ttile_t t = TIFFComputeTile(tif, x0, y0, 0, static_cast<uint16_t>(plane));
          const tmsize_t got = TIFFReadEncodedTile(tif, t, buf.data(), tsize);
          copy_block(buf, got, x0, y0, tw, std::min(th, h - y0), std::min(tw, w - x0), plane);
        }
  } else {
    uint32_t rps = h;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0 || rps > h) rps = h;
    const tmsize_t ssize = TIFFStripSize(tif);
    if (ssize <= 0) UNET_FAIL(where, ": invalid strip layout: ", scope.reason());
    std::vector<uint8_t> buf(static_cast<size_t>(ssize));
    for (int plane = 0; plane < planes; ++plane)
      for (uint32_t y0 = 0; y0 < h; y0 += rps) {
        const tstrip_t s = TIFFComputeStrip(tif, y0, static_cast<uint16_t>(plane));
        const tmsize_t got = TIFFReadEncodedStrip(tif, s, buf.data(), ssize);
        copy_block(buf, got, 0, y0, w, std::min(rps, h - y0), w, plane);
      }
  }
  if (photo == PHOTOMETRIC_MINISWHITE && !img.info.is_float) {  // keep "bigger = brighter"
    for (uint8_t& v : img.u8) v = static_cast<uint8_t>(255 - v);
    for (uint16_t& v : img.u16) v = static_cast<uint16_t>(65535 - v);
  }
  return img;
}

bool is_reduced_resolution(TIFF* tif) {
  uint32_t subfile = 0;
  return TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &subfile) && (subfile & FILETYPE_REDUCEDIMAGE);
}

TiffPtr open_tiff_for_reading(const std::string& path, const TiffErrorScope& scope) {
  TiffPtr tif(TIFFOpen(path.c_str(), "r"));
  if (!tif) UNET_FAIL("cannot read TIFF file '", path, "': ", scope.reason());
  return tif;
}

std::vector<RawImage> read_tiff(const std::string& path, ImageInfo& info, bool first_only) {
  TiffErrorScope scope;
  TiffPtr tif = open_tiff_for_reading(path, scope);
  std::vector<RawImage> pages;
  int page = 0, counted = 0;
  do {
    if (is_reduced_resolution(tif.get())) {  // thumbnails and pyramid levels are not slices
      ++page;
      continue;
    }
    ++counted;
    if (first_only && !pages.empty()) {
      ++page;
      continue;
    }
    RawImage p = read_tiff_page(tif.get(), path, page, scope);
    if (pages.empty()) {
      info.bits = p.info.bits;
      info.is_float = p.info.is_float;
    } else {
      const RawImage& a = pages.front();
      if (a.width != p.width || a.height != p.height || a.channels != p.channels)
        UNET_FAIL("TIFF file '", path, "' page ", page, " (counting from 0) is ", p.width, "x", p.height, " with ",
                  p.channels, " channel(s), but the first page is ", a.width, "x", a.height, " with ", a.channels,
                  " channel(s): every page of a stack must have the same size");
      if (p.info.bits != info.bits || p.info.is_float != info.is_float)
        UNET_FAIL("TIFF file '", path, "' page ", page, " has ", p.info.bits, "-bit ",
                  p.info.is_float ? "float" : "integer", " samples, but the first page has ", info.bits, "-bit ",
                  info.is_float ? "float" : "integer");
    }
    pages.push_back(std::move(p));
    ++page;
    // TIFFReadDirectory returns 0 at the end of the chain and on a broken directory alike; only
    // the latter reports an error, so look at the errors of this call alone.
  } while ((t_tiff_errors.clear(), TIFFReadDirectory(tif.get())));
  if (!t_tiff_errors.empty() && !first_only)
    UNET_FAIL("TIFF file '", path, "': cannot read page ", page, ": ", scope.reason());
  if (pages.empty()) UNET_FAIL("TIFF file '", path, "' holds no full-resolution image");
  info.pages = counted;
  for (RawImage& p : pages) p.info = info;
  return pages;
}

// ---- npy -----------------------------------------------------------------------------------------

std::string npy_field(const std::string& header, const std::string& key, const std::string& path) {
  const std::string k1 = "'" + key + "'", k2 = "\"" + key + "\"";
  size_t pos = header.find(k1);
  size_t klen = k1.size();
  if (pos == std::string::npos) {
    pos = header.find(k2);
    klen = k2.size();
  }
  if (pos == std::string::npos) UNET_FAIL("npy file '", path, "': header has no '", key, "' field");
  pos = header.find(':', pos + klen);
  if (pos == std::string::npos) UNET_FAIL("npy file '", path, "': malformed header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  if (pos >= header.size()) UNET_FAIL("npy file '", path, "': malformed header");
  size_t end;
  if (header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) UNET_FAIL("npy file '", path, "': malformed shape in header");
    return header.substr(pos, end - pos + 1);
  }
  if (header[pos] == '\'' || header[pos] == '"') {
    end = header.find(header[pos], pos + 1);
    if (end == std::string::npos) UNET_FAIL("npy file '", path, "': malformed header");
    return header.substr(pos + 1, end - pos - 1);
  }
  end = header.find_first_of(",}", pos);
  std::string v = header.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

Image decode_npy(const std::string& path, const std::vector<uint8_t>& b) {
  if (!is_npy(b) || b.size() < 10) UNET_FAIL("'", path, "' is not a NumPy .npy file");
  const int major = b[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = b[8] | (static_cast<size_t>(b[9]) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) UNET_FAIL("npy file '", path, "' is truncated");
    header_len = b[8] | (static_cast<size_t>(b[9]) << 8) | (static_cast<size_t>(b[10]) << 16) |
                 (static_cast<size_t>(b[11]) << 24);
    start = 12;
  } else {
    UNET_FAIL("npy file '", path, "': unsupported format version ", major);
  }
  if (start + header_len > b.size()) UNET_FAIL("npy file '", path, "' is truncated (header)");
  const std::string header(reinterpret_cast<const char*>(b.data() + start), header_len);
  const std::string descr = npy_field(header, "descr", path);
  if (descr != "<f4")
    UNET_FAIL("npy file '", path, "': dtype '", descr, "' is not supported (only '<f4', float32 little-endian)");
  if (npy_field(header, "fortran_order", path) != "False")
    UNET_FAIL("npy file '", path, "': Fortran-order arrays are not supported");
  const std::string shape_text = npy_field(header, "shape", path);
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
    UNET_FAIL("npy file '", path, "': shape \"", shape_text, "\" is not a tuple such as (H, W)");
  std::vector<int64_t> shape;
  {
    std::string t = shape_text.substr(1, shape_text.size() - 2);
    std::stringstream ss(t);
    std::string item;
    while (std::getline(ss, item, ',')) {
      size_t a = item.find_first_not_of(' ');
      if (a == std::string::npos) continue;
      char* endp = nullptr;
      const long long v = std::strtoll(item.c_str() + a, &endp, 10);
      while (*endp == ' ') ++endp;
      if (endp == item.c_str() + a || *endp != '\0' || v < 0 || v >= (1ll << 31))
        UNET_FAIL("npy file '", path, "': bad shape ", shape_text);
      shape.push_back(v);
    }
  }
  int c = 1, h = 0, w = 0;
  if (shape.size() == 2) {
    h = static_cast<int>(shape[0]);
    w = static_cast<int>(shape[1]);
  } else if (shape.size() == 3) {
    c = static_cast<int>(shape[0]);
    h = static_cast<int>(shape[1]);
    w = static_cast<int>(shape[2]);
  } else {
    UNET_FAIL("npy file '", path, "': shape ", shape_text, " is not (H, W) or (C, H, W)");
  }
  check_size("npy file '" + path + "'", c, h, w);
  const size_t nbytes = static_cast<size_t>(c) * h * w * 4;
  if (b.size() - start - header_len < nbytes)
    UNET_FAIL("npy file '", path, "' is truncated: shape ", shape_text, " needs ", nbytes, " bytes of data, found ",
              b.size() - start - header_len);
  Image img(c, h, w);
  std::memcpy(img.data.data(), b.data() + start + header_len, nbytes);
  return img;
}

// ---- PNG 16-bit writer (stb_image_write does 8-bit only) -----------------------------------------

uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
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

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put_be32(out, static_cast<uint32_t>(n));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (n) out.insert(out.end(), data, data + n);
  const uint32_t crc = crc32_update(0xffffffffu, out.data() + start, n + 4) ^ 0xffffffffu;
  put_be32(out, crc);
}

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

std::string format_value(float v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

// ---- public: reading -----------------------------------------------------------------------------

// The first bytes of `path` (to tell a TIFF, which libtiff reads itself, from the rest).
static std::vector<uint8_t> peek_magic(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot read image file '", path, "': it is a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) UNET_FAIL("cannot open image file '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> magic(8, 0);
  magic.resize(std::fread(magic.data(), 1, magic.size(), f));
  std::fclose(f);
  if (magic.empty()) UNET_FAIL("image file '", path, "' is empty (0 bytes)");
  return magic;
}

// Every reader decodes through these two: one decoding path per format, samples in their own type.
RawImage read_image_raw(const std::string& path, ImageInfo* info) {
  ImageInfo local;
  RawImage img;
  if (is_tiff(peek_magic(path))) {
    img = std::move(read_tiff(path, local, /*first_only=*/true).front());
  } else {
    const std::vector<uint8_t> bytes = read_file_bytes(path, "image file");
    if (is_npy(bytes)) {
      Image f = decode_npy(path, bytes);
      local = ImageInfo{32, true, 1};
      img.channels = f.channels;
      img.height = f.height;
      img.width = f.width;
      img.f32 = std::move(f.data);
    } else {
      img = read_stb(path, bytes, local);
    }
  }
  img.info = local;
  check_finite_samples(img, "image file '" + path + "'");
  if (info) *info = local;
  return img;
}

std::vector<RawImage> read_stack_raw(const std::string& path, ImageInfo* info) {
  ImageInfo local;
  std::vector<RawImage> pages;
  if (is_tiff(peek_magic(path))) {
    pages = read_tiff(path, local, /*first_only=*/false);
    for (size_t i = 0; i < pages.size(); ++i)
      check_finite_samples(pages[i], "image file '" + path + "'" + (pages.size() > 1 ? " page " + std::to_string(i) : ""));
  } else {
    pages.push_back(read_image_raw(path, &local));
  }
  if (info) *info = local;
  return pages;
}

Image read_image(const std::string& path, ImageInfo* info) { return image_from_raw(read_image_raw(path, info)); }

std::vector<Image> read_stack(const std::string& path, ImageInfo* info) {
  std::vector<RawImage> raw = read_stack_raw(path, info);
  std::vector<Image> pages;
  pages.reserve(raw.size());
  for (RawImage& p : raw) pages.push_back(image_from_raw(std::move(p)));
  return pages;
}

RawImage compact_raw(const Image& raw, const ImageInfo& info) {
  UNET_CHECK(raw.data.size() == static_cast<size_t>(raw.channels) * raw.height * raw.width,
             "compact_raw: image data holds ", raw.data.size(), " values, not channels*height*width");
  RawImage out;
  allocate_raw(out, raw.channels, raw.height, raw.width, info);
  if (info.is_float) {
    out.f32 = raw.data;
    return out;
  }
  const float maxv = info.bits == 16 ? 65535.0f : 255.0f;
  for (size_t i = 0; i < raw.data.size(); ++i) {
    const float v = raw.data[i];
    if (!(v >= 0.0f && v <= maxv && v == std::floor(v))) {
      const size_t hw = static_cast<size_t>(raw.height) * raw.width;
      UNET_FAIL("compact_raw: ", info.bits, "-bit image has the value ", format_value(v), " at channel ", i / hw,
                ", x=", i % hw % raw.width, ", y=", i % hw / raw.width, " (expected a whole number 0..",
                static_cast<int>(maxv), ")");
    }
    if (info.bits == 16) out.u16[i] = static_cast<uint16_t>(v);
    else out.u8[i] = static_cast<uint8_t>(v);
  }
  return out;
}

Image expand_raw(const RawImage& raw) {
  Image out(raw.channels, raw.height, raw.width);
  if (raw.info.is_float) out.data = raw.f32;
  else if (raw.info.bits == 16) std::copy(raw.u16.begin(), raw.u16.end(), out.data.begin());
  else std::copy(raw.u8.begin(), raw.u8.end(), out.data.begin());
  return out;
}

Image normalise_intensity(const Image& raw, int bits, bool is_float) {
  Image out = raw;
  if (is_float) return out;
  float scale;
  if (bits == 8) scale = 1.0f / 255.0f;
  else if (bits == 16) scale = 1.0f / 65535.0f;
  else UNET_FAIL("normalise_intensity: unsupported bit depth ", bits, " (8- or 16-bit integers, or float)");
  for (float& v : out.data) v *= scale;
  return out;
}

Image normalise_intensity(const RawImage& raw) { return normalise_intensity(expand_raw(raw), raw.info); }

Image read_image_normalised(const std::string& path) {
  ImageInfo info;
  Image raw = read_image(path, &info);
  return normalise_intensity(raw, info);
}

Image stack_channels(const std::vector<Image>& pages) {
  UNET_CHECK(!pages.empty(), "stack_channels: no images");
  int c = 0;
  for (const Image& p : pages) {
    UNET_CHECK(p.height == pages[0].height && p.width == pages[0].width, "stack_channels: image of ", p.width, "x",
               p.height, " does not match ", pages[0].width, "x", pages[0].height);
    c += p.channels;
  }
  Image out(c, pages[0].height, pages[0].width);
  size_t off = 0;
  for (const Image& p : pages) {
    std::copy(p.data.begin(), p.data.end(), out.data.begin() + off);
    off += p.data.size();
  }
  return out;
}

Image read_npy(const std::string& path) { return decode_npy(path, read_file_bytes(path, "npy file")); }

// ---- public: labels ------------------------------------------------------------------------------

Image labels_from_image(const Image& raw, int num_classes, const std::string& source_name) {
  UNET_CHECK(num_classes >= 2, "labels_from_image: num_classes must be at least 2, got ", num_classes);
  UNET_CHECK(!raw.empty() && raw.channels >= 1, "label file '", source_name, "' is empty");
  const size_t hw = static_cast<size_t>(raw.height) * raw.width;
  if (raw.channels >= 3) {
    for (size_t i = 0; i < hw; ++i)
      if (raw.data[i] != raw.data[hw + i] || raw.data[i] != raw.data[2 * hw + i])
        UNET_FAIL("label file '", source_name, "' is a colour image (R, G, B differ at pixel x=", i % raw.width,
                  ", y=", i / raw.width, "): labels must be gray class indices or a 0/255 mask");
  }
  const float* v = raw.data.data();  // channel 0 (gray, the gray of gray+alpha, or R == G == B)

  std::vector<int64_t> small(65536, 0);  // counts of the integers 0..65535
  std::map<float, int64_t> other;        // counts of everything else
  for (size_t i = 0; i < hw; ++i) {
    const float x = v[i];
    if (!std::isfinite(x))
      UNET_FAIL("label file '", source_name, "' contains a non-finite value at pixel x=", i % raw.width, ", y=",
                i / raw.width);
    if (x >= 0.0f && x <= 65535.0f && x == std::floor(x)) ++small[static_cast<size_t>(x)];
    else ++other[x];
  }
  std::vector<std::pair<float, int64_t>> values;  // sorted distinct values with counts
  for (const auto& [x, n] : other)
    if (x < 0) values.emplace_back(x, n);
  for (size_t k = 0; k < small.size(); ++k)
    if (small[k]) values.emplace_back(static_cast<float>(k), small[k]);
  for (const auto& [x, n] : other)
    if (x >= 0) values.emplace_back(x, n);
  std::sort(values.begin(), values.end());

  auto all_in = [&](auto pred) {
    return std::all_of(values.begin(), values.end(), [&](const auto& p) { return pred(p.first); });
  };
  auto is_index = [&](float x) { return x >= 0 && x < num_classes && x == std::floor(x); };
  Image out(1, raw.height, raw.width);
  if (all_in(is_index)) {
    std::copy(v, v + hw, out.data.begin());
    return out;
  }
  if (num_classes == 2) {
    for (float maxv : {255.0f, 65535.0f}) {
      if (all_in([&](float x) { return x == 0.0f || x == maxv; })) {
        for (size_t i = 0; i < hw; ++i) out.data[i] = v[i] == maxv ? 1.0f : 0.0f;
        return out;
      }
    }
  }

  // Not decodable: say what was found and what is wrong with it.
  auto has = [&](float x) {
    return std::any_of(values.begin(), values.end(), [&](const auto& p) { return p.first == x; });
  };
  std::function<bool(float)> offending = [&](float x) { return !is_index(x); };
  if (num_classes == 2 && has(65535.0f)) offending = [](float x) { return x != 0.0f && x != 65535.0f; };
  else if (num_classes == 2 && has(255.0f)) offending = [](float x) { return x != 0.0f && x != 255.0f; };
  std::ostringstream os;
  os << "label file '" << source_name << "' has values {";
  const size_t show = 8;
  for (size_t i = 0; i < values.size() && i < show; ++i) os << (i ? ", " : "") << format_value(values[i].first);
  if (values.size() > show) os << ", ... (" << values.size() << " distinct values)";
  os << "}: expected class indices 0.." << num_classes - 1;
  if (num_classes == 2) os << " or a 0/255 (or 0/65535) mask";
  os << "; unexpected values: ";
  size_t listed = 0, bad = 0;
  for (const auto& [x, n] : values) {
    if (!offending(x)) continue;
    ++bad;
    if (listed < 5) {
      os << (listed ? ", " : "") << format_value(x) << " (" << n << " pixel" << (n == 1 ? "" : "s") << ")";
      ++listed;
    }
  }
  if (bad > listed) os << " and " << bad - listed << " more";
  throw Error(os.str());
}

Image read_label(const std::string& path, int num_classes) {
  return labels_from_image(read_image(path), num_classes, path);
}

std::vector<Image> read_label_stack(const std::string& path, int num_classes) {
  std::vector<Image> pages = read_stack(path);
  for (size_t i = 0; i < pages.size(); ++i)
    pages[i] = labels_from_image(pages[i], num_classes,
                                 pages.size() == 1 ? path : path + " page " + std::to_string(i));
  return pages;
}

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
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xff),
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

// =================================================================================================
// Streaming writers (declared at the end of io.h).
// =================================================================================================

namespace unet {
namespace {

// ---- a temporary file that becomes `path` on commit ------------------------------------------------

// For writers that fill a file piece by piece (and out of order): the data goes to tmp() next to
// `path`; commit() (the file closed) fsyncs it and renames it over `path` through
// atomic_write_via_path; destroyed uncommitted, it removes tmp().
class PendingFile {
 public:
  explicit PendingFile(const std::string& path) : path_(path) {
    UNET_CHECK(!path.empty(), "cannot write a file with an empty path");
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot write '", path, "': it is a directory");
    tmp_ = atomic_temp_path(path);
  }
  ~PendingFile() {
    if (!committed_) (void)std::remove(tmp_.c_str());
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  const std::string& path() const { return path_; }
  const std::string& tmp() const { return tmp_; }
  void commit() {
    atomic_write_via_path(path_, [&](const std::string& final_tmp) {
      if (std::rename(tmp_.c_str(), final_tmp.c_str()) != 0)
        UNET_FAIL("cannot write '", path_, "': cannot move temporary file '", tmp_, "': ", std::strerror(errno));
    });
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

struct FileCloser {
  void operator()(std::FILE* f) const { if (f) std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_for_writing(const std::string& tmp, const std::string& path, const char* mode = "wb") {
  FilePtr f(std::fopen(tmp.c_str(), mode));
  if (!f) UNET_FAIL("cannot write '", path, "': cannot create temporary file '", tmp, "': ", std::strerror(errno));
  return f;
}

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n > 0 && std::fwrite(data, 1, n, f) != n) UNET_FAIL("cannot write '", path, "': ", std::strerror(errno));
}

void seek_to(std::FILE* f, uint64_t offset, const std::string& path) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0)
    UNET_FAIL("cannot write '", path, "': seek failed: ", std::strerror(errno));
}

// Flushes and closes `f`, throwing when any write failed.
void close_checked(FilePtr& f, const std::string& path) {
  const bool ok = std::fflush(f.get()) == 0 && !std::ferror(f.get());
  const int e = errno;
  const bool closed = std::fclose(f.release()) == 0;
  if (!ok || !closed) UNET_FAIL("cannot write '", path, "': write failed: ", std::strerror(e));
}

// Checks a band handed to a streaming writer.
void check_band(const std::string& path, int y0, int rows_done, int rows, int height, int width_got, int width,
                int channels_got, int channels) {
  UNET_CHECK(y0 == rows_done, "cannot write '", path, "': rows must arrive in order: got row ", y0, ", expected row ",
             rows_done);
  UNET_CHECK(rows >= 0 && y0 + rows <= height, "cannot write '", path, "': rows ", y0, "..", y0 + rows - 1,
             " are past the picture's ", height, " rows");
  UNET_CHECK(width_got == width && channels_got == channels, "cannot write '", path, "': band of ", width_got,
             " px x ", channels_got, " channel(s) for a picture of ", width, " px x ", channels, " channel(s)");
}

// ---- deflate, streamed -------------------------------------------------------------------------------

// A zlib stream (RFC 1950/1951) produced incrementally: one deflate block with the fixed Huffman
// codes; greedy LZ77 matching over a 32 KiB window through hash chains of 3-byte prefixes.
// Holds the window plus the input not yet encoded.
class DeflateStream {
 public:
  using Sink = std::function<void(const uint8_t*, size_t)>;
  explicit DeflateStream(Sink sink) : sink_(std::move(sink)), head_(size_t{1} << kHashBits, -1), prev_(kWindow, -1) {
    out_ = {0x78, 0x01};  // deflate, 32 KiB window, no dictionary; (0x78 * 256 + 0x01) % 31 == 0
    put_bits(1, 1);       // BFINAL: this one block is the last
    put_bits(1, 2);       // BTYPE 01: fixed Huffman codes
  }

  void write(const uint8_t* p, size_t n) {
    buf_.insert(buf_.end(), p, p + n);
    for (size_t i = 0; i < n;) {  // Adler-32, in runs short enough for 32-bit sums
      const size_t run = std::min<size_t>(n - i, 5552);
      for (size_t j = 0; j < run; ++j) {
        a_ += p[i + j];
        b_ += a_;
      }
      a_ %= 65521;
      b_ %= 65521;
      i += run;
    }
    encode(false);
  }

  void finish() {
    encode(true);
    symbol(256);                          // end of block
    put_bits(0, (8 - nbits_ % 8) % 8);    // to a byte boundary
    const uint32_t adler = (b_ << 16) | a_;
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(adler >> s));
    flush_out();
  }

 private:
  static constexpr int kWindow = 32768, kMinMatch = 3, kMaxMatch = 258, kHashBits = 15, kMaxChain = 24;

  const uint8_t* at(int64_t pos) const { return buf_.data() + (pos - base_); }
  static uint32_t hash(const uint8_t* p) {
    const uint32_t v = (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 8) | p[2];
    return (v * 2654435761u) >> (32 - kHashBits);
  }
  void insert(int64_t pos, int64_t end) {
    if (pos + kMinMatch > end) return;
    const uint32_t h = hash(at(pos));
    prev_[pos & (kWindow - 1)] = head_[h];
    head_[h] = pos;
  }

  void put_bits(uint32_t v, int n) {
    bits_ |= static_cast<uint64_t>(v) << nbits_;
    nbits_ += n;
    while (nbits_ >= 8) {
      out_.push_back(static_cast<uint8_t>(bits_));
      bits_ >>= 8;
      nbits_ -= 8;
    }
  }
  // Huffman codes are defined most significant bit first; the stream is packed LSB first.
  void put_code(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; ++i) r |= ((code >> i) & 1u) << (len - 1 - i);
    put_bits(r, len);
  }
  void symbol(int s) {  // the fixed literal/length code (RFC 1951, 3.2.6)
    if (s < 144) put_code(0x30 + s, 8);
    else if (s < 256) put_code(0x190 + (s - 144), 9);
    else if (s < 280) put_code(s - 256, 7);
    else put_code(0xC0 + (s - 280), 8);
  }
  void match(int len, int dist) {
    static const int lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                  31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const int lextra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const int dbase[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                  193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const int dextra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    const int li = static_cast<int>(std::upper_bound(lbase, lbase + 29, len) - lbase) - 1;
    symbol(257 + li);
    put_bits(static_cast<uint32_t>(len - lbase[li]), lextra[li]);
    const int di = static_cast<int>(std::upper_bound(dbase, dbase + 30, dist) - dbase) - 1;
    put_code(static_cast<uint32_t>(di), 5);
    put_bits(static_cast<uint32_t>(dist - dbase[di]), dextra[di]);
  }

  // Encodes the buffered input, all of it when `final`, otherwise keeping a full match length of
  // look-ahead; then drops what the window no longer needs.
  void encode(bool final) {
    const int64_t end = base_ + static_cast<int64_t>(buf_.size());
    const int64_t limit = final ? end : end - kMaxMatch;
    while (pos_ < limit) {
      const int avail = static_cast<int>(std::min<int64_t>(kMaxMatch, end - pos_));
      int best_len = 0, best_dist = 0;
      if (avail >= kMinMatch) {
        const uint8_t* cur = at(pos_);
        int64_t cand = head_[hash(cur)];
        for (int chain = kMaxChain; cand >= 0 && pos_ - cand <= kWindow && chain > 0; --chain) {
          const uint8_t* old = at(cand);
          if (old[best_len] == cur[best_len]) {
            int l = 0;
            while (l < avail && old[l] == cur[l]) ++l;
            if (l > best_len) {
              best_len = l;
              best_dist = static_cast<int>(pos_ - cand);
              if (l == avail) break;
            }
          }
          const int64_t next = prev_[cand & (kWindow - 1)];
          if (next >= cand) break;
          cand = next;
        }
      }
      if (best_len >= kMinMatch) {
        match(best_len, best_dist);
        for (int i = 0; i < best_len; ++i) insert(pos_ + i, end);
        pos_ += best_len;
      } else {
        symbol(*at(pos_));
        insert(pos_, end);
        ++pos_;
      }
      if (out_.size() >= (size_t{1} << 16)) flush_out();
    }
    if (pos_ - base_ > 2 * kWindow) {  // keep one window of history
      const int64_t drop = pos_ - base_ - kWindow;
      buf_.erase(buf_.begin(), buf_.begin() + drop);
      base_ += drop;
    }
  }

  void flush_out() {
    if (!out_.empty()) sink_(out_.data(), out_.size());
    out_.clear();
  }

  Sink sink_;
  std::vector<uint8_t> buf_, out_;
  int64_t base_ = 0, pos_ = 0;        // buf_[0] is stream byte base_; pos_ is the next to encode
  std::vector<int64_t> head_, prev_;  // hash chains of stream positions, -1 = none
  uint64_t bits_ = 0;
  int nbits_ = 0;
  uint32_t a_ = 1, b_ = 0;            // Adler-32
};

}  // namespace

// ---- public: streaming TIFF ----------------------------------------------------------------------------

struct TiffFloatPagesWriter::Impl {
  PendingFile file;
  int pages, height, width, rps;
  uint16_t compression = COMPRESSION_NONE;
  TiffPtr tif;                 // declared after `file`: closed before the temporary file is removed
  FilePtr spool;               // pages 1.. as raw floats, page-major; unlinked at creation
  std::vector<float> strip;    // rows of page 0 waiting for a full strip
  int strip_rows = 0, rows_done = 0;
  bool finished = false;

  Impl(const std::string& path, int p, int h, int w, int r) : file(path), pages(p), height(h), width(w), rps(r) {}

  void set_tags(int page) {
    TIFF* t = tif.get();
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(width));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(height));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(32));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(1));
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, static_cast<uint32_t>(rps));
    if (pages > 1) {
      TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
      TIFFSetField(t, TIFFTAG_PAGENUMBER, static_cast<uint16_t>(page), static_cast<uint16_t>(pages));
    }
  }

  void write_strip(int page, int first_row, int rows, const TiffErrorScope& scope) {
    const tmsize_t n = static_cast<tmsize_t>(rows) * width * 4;
    if (TIFFWriteEncodedStrip(tif.get(), static_cast<tstrip_t>(first_row / rps), strip.data(), n) < 0)
      UNET_FAIL("cannot write TIFF file '", file.path(), "' page ", page, ": ", scope.reason());
  }
};

TiffFloatPagesWriter::TiffFloatPagesWriter(const std::string& path, int pages, int height, int width,
                                           int rows_per_strip) {
  UNET_CHECK(pages >= 1 && height >= 1 && width >= 1 && pages <= 65535, "cannot write '", path,
             "': image has zero size (", width, "x", height, ", ", pages, " pages)");
  int rps = rows_per_strip > 0 ? rows_per_strip : std::max(1, (1 << 20) / (width * 4));
  rps = std::min(rps, height);
  impl_ = std::make_unique<Impl>(path, pages, height, width, rps);
  Impl& m = *impl_;
  const bool big = static_cast<uint64_t>(pages) * height * width * 4 > (uint64_t{3} << 30);
  TiffErrorScope scope;
  m.tif.reset(TIFFOpen(m.file.tmp().c_str(), big ? "w8" : "w"));
  if (!m.tif) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
  m.compression = TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE;
  m.set_tags(0);
  m.strip.resize(static_cast<size_t>(rps) * width);
  if (pages > 1) {
    const std::string spool = m.file.tmp() + ".spool";
    m.spool = open_for_writing(spool, path, "w+b");
    (void)std::remove(spool.c_str());  // the open stream keeps the data; nothing is left behind
  }
}

TiffFloatPagesWriter::~TiffFloatPagesWriter() = default;

void TiffFloatPagesWriter::write_rows(int y0, const Image& band) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, band.height, m.height, band.width, m.width, band.channels, m.pages);
  TiffErrorScope scope;
  const size_t w = static_cast<size_t>(m.width);
  // Page 0: through the strip buffer into the TIFF.
  for (int r = 0; r < band.height;) {
    const int take = std::min(band.height - r, m.rps - m.strip_rows);
    std::copy(band.plane(0) + r * w, band.plane(0) + (r + take) * w, m.strip.begin() + m.strip_rows * w);
    m.strip_rows += take;
    r += take;
    const int first = y0 + r - m.strip_rows;
    if (m.strip_rows == m.rps || first + m.strip_rows == m.height) {
      m.write_strip(0, first, m.strip_rows, scope);
      m.strip_rows = 0;
    }
  }
  // Pages 1..: at their place in the spool.
  for (int k = 1; k < m.pages; ++k) {
    seek_to(m.spool.get(), ((static_cast<uint64_t>(k - 1) * m.height + y0) * w) * 4, m.file.path());
    write_all(m.spool.get(), band.plane(k), static_cast<size_t>(band.height) * w * 4, m.file.path());
  }
  m.rows_done += band.height;
}

void TiffFloatPagesWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  TiffErrorScope scope;
  const std::string& path = m.file.path();
  if (!TIFFWriteDirectory(m.tif.get())) UNET_FAIL("cannot write TIFF file '", path, "' page 0: ", scope.reason());
  if (m.pages > 1 && std::fflush(m.spool.get()) != 0)
    UNET_FAIL("cannot write '", path, "': spool file: ", std::strerror(errno));
  for (int k = 1; k < m.pages; ++k) {
    m.set_tags(k);
    for (int y0 = 0; y0 < m.height; y0 += m.rps) {
      const int rows = std::min(m.rps, m.height - y0);
      const size_t n = static_cast<size_t>(rows) * m.width;
      if (fseeko(m.spool.get(), static_cast<off_t>(((static_cast<uint64_t>(k - 1) * m.height + y0) * m.width) * 4),
                 SEEK_SET) != 0 ||
          std::fread(m.strip.data(), 4, n, m.spool.get()) != n)
        UNET_FAIL("cannot write TIFF file '", path, "': cannot read back the spooled page ", k);
      m.write_strip(k, y0, rows, scope);
    }
    if (!TIFFWriteDirectory(m.tif.get())) UNET_FAIL("cannot write TIFF file '", path, "' page ", k, ": ", scope.reason());
  }
  m.spool.reset();
  TIFFClose(m.tif.release());
  if (!t_tiff_errors.empty()) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
  m.file.commit();
  m.finished = true;
  m.strip = std::vector<float>();
}

// ---- public: streaming PNG -------------------------------------------------------------------------------

struct PngStreamWriter::Impl {
  PendingFile file;
  FilePtr f;
  int width, height, channels, rows_done = 0;
  bool finished = false;
  std::vector<uint8_t> prev, best, trial, idat;
  DeflateStream z;

  Impl(const std::string& path, int w, int h, int c)
      : file(path), width(w), height(h), channels(c), z([this](const uint8_t* p, size_t n) {
          idat.insert(idat.end(), p, p + n);
          if (idat.size() >= (size_t{1} << 18)) flush_idat();
        }) {}

  void chunk(const char type[4], const uint8_t* data, size_t n) {
    uint8_t head[8];
    for (int i = 0; i < 4; ++i) head[i] = static_cast<uint8_t>(static_cast<uint32_t>(n) >> (24 - 8 * i));
    std::memcpy(head + 4, type, 4);
    uint32_t crc = crc32_update(0xffffffffu, head + 4, 4);
    crc = crc32_update(crc, data, n) ^ 0xffffffffu;
    uint8_t tail[4];
    for (int i = 0; i < 4; ++i) tail[i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    write_all(f.get(), head, 8, file.path());
    write_all(f.get(), data, n, file.path());
    write_all(f.get(), tail, 4, file.path());
  }
  void flush_idat() {
    if (idat.empty()) return;
    chunk("IDAT", idat.data(), idat.size());
    idat.clear();
  }

  // One row, filtered with whichever of the five PNG filters gives the smallest sum of absolute
  // (signed) differences, into the deflate stream.
  void row(const uint8_t* cur) {
    const size_t n = static_cast<size_t>(width) * channels;
    const int bpp = channels;
    best.resize(n + 1);
    trial.resize(n + 1);
    uint64_t best_cost = UINT64_MAX;
    for (int type = 0; type < 5; ++type) {
      trial[0] = static_cast<uint8_t>(type);
      uint64_t cost = 0;
      for (size_t i = 0; i < n; ++i) {
        const int a = i >= static_cast<size_t>(bpp) ? cur[i - bpp] : 0, b = prev[i],
                  c = i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
        int pred = 0;
        if (type == 1) pred = a;
        else if (type == 2) pred = b;
        else if (type == 3) pred = (a + b) / 2;
        else if (type == 4) {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
        }
        const uint8_t v = static_cast<uint8_t>(cur[i] - pred);
        trial[i + 1] = v;
        cost += static_cast<uint64_t>(std::abs(static_cast<int>(static_cast<int8_t>(v))));
      }
      if (cost < best_cost) {
        best_cost = cost;
        best.swap(trial);
        trial.resize(n + 1);
      }
    }
    z.write(best.data(), best.size());
    prev.assign(cur, cur + n);
  }
};

PngStreamWriter::PngStreamWriter(const std::string& path, int width, int height, int channels) {
  UNET_CHECK(width >= 1 && height >= 1 && channels >= 1, "cannot write '", path, "': image has zero size (", width,
             "x", height, ", ", channels, " channels)");
  UNET_CHECK(channels <= 4, "cannot write '", path, "': ", channels, " channels (this format takes 1 to 4)");
  UNET_CHECK(static_cast<int64_t>(width) * channels < (int64_t{1} << 30), "cannot write '", path,
             "': rows too wide for PNG");
  impl_ = std::make_unique<Impl>(path, width, height, channels);
  Impl& m = *impl_;
  m.f = open_for_writing(m.file.tmp(), path);
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const uint8_t kColorType[5] = {0, 0, 4, 2, 6};  // gray, gray+alpha, RGB, RGBA
  write_all(m.f.get(), kSignature, 8, path);
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, kColorType[channels], 0, 0, 0});  // depth, colour type, deflate, filter, no interlace
  m.chunk("IHDR", ihdr.data(), ihdr.size());
  m.prev.assign(static_cast<size_t>(width) * channels, 0);
}

PngStreamWriter::~PngStreamWriter() = default;

void PngStreamWriter::write_rows(int y0, const uint8_t* pixels, int rows) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, rows, m.height, m.width, m.width, m.channels, m.channels);
  const size_t n = static_cast<size_t>(m.width) * m.channels;
  for (int r = 0; r < rows; ++r) m.row(pixels + r * n);
  m.rows_done += rows;
}

void PngStreamWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  m.z.finish();
  m.flush_idat();
  m.chunk("IEND", nullptr, 0);
  close_checked(m.f, m.file.path());
  m.file.commit();
  m.finished = true;
}

// ---- public: streaming npy ---------------------------------------------------------------------------------

struct NpyStreamWriter::Impl {
  PendingFile file;
  FilePtr f;
  int channels, height, width, rows_done = 0;
  uint64_t data_offset = 0;
  bool finished = false;
  Impl(const std::string& path, int c, int h, int w) : file(path), channels(c), height(h), width(w) {}
};

NpyStreamWriter::NpyStreamWriter(const std::string& path, int channels, int height, int width) {
  UNET_CHECK(channels >= 1 && height >= 1 && width >= 1, "cannot write '", path, "': image has zero size (", width,
             "x", height, ", ", channels, " channels)");
  impl_ = std::make_unique<Impl>(path, channels, height, width);
  Impl& m = *impl_;
  // The header of write_npy.
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  if (channels == 1) dict << height << ", " << width << "), }";
  else dict << channels << ", " << height << ", " << width << "), }";
  std::string header = dict.str();
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xff),
                              static_cast<uint8_t>(header.size() >> 8)};
  out.insert(out.end(), header.begin(), header.end());
  m.f = open_for_writing(m.file.tmp(), path);
  write_all(m.f.get(), out.data(), out.size(), path);
  m.data_offset = out.size();
}

NpyStreamWriter::~NpyStreamWriter() = default;

void NpyStreamWriter::write_rows(int y0, const Image& band) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, band.height, m.height, band.width, m.width, band.channels, m.channels);
  for (int k = 0; k < m.channels; ++k) {
    seek_to(m.f.get(), m.data_offset + ((static_cast<uint64_t>(k) * m.height + y0) * m.width) * 4, m.file.path());
    write_all(m.f.get(), band.plane(k), static_cast<size_t>(band.height) * m.width * 4, m.file.path());
  }
  m.rows_done += band.height;
}

void NpyStreamWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  close_checked(m.f, m.file.path());
  m.file.commit();
  m.finished = true;
}

}  // namespace unet
