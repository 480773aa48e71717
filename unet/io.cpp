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

// The one translation unit holding stb's implementations; static so that no other library's copy
// of stb can clash with ours.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include "stb_image.h"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

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

void check_size(const std::string& path, int c, int h, int w) {
  if (w <= 0 || h <= 0 || c <= 0)
    UNET_FAIL("image file '", path, "' has zero size (", w, "x", h, ", ", c, " channels)");
  if (static_cast<int64_t>(w) * h * c > (int64_t{1} << 32))
    UNET_FAIL("image file '", path, "' is too large (", w, "x", h, "x", c, ")");
}

template <typename T>
Image planar_from_interleaved(const T* src, int c, int h, int w) {
  Image img(c, h, w);
  const size_t hw = static_cast<size_t>(h) * w;
  for (size_t i = 0; i < hw; ++i)
    for (int k = 0; k < c; ++k) img.data[k * hw + i] = static_cast<float>(src[i * c + k]);
  return img;
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

// ---- stb_image -----------------------------------------------------------------------------------

Image read_stb(const std::string& path, const std::vector<uint8_t>& bytes, ImageInfo& info) {
  const auto* buf = bytes.data();
  const int len = static_cast<int>(std::min<size_t>(bytes.size(), INT32_MAX));
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(buf, len, &w, &h, &c))
    UNET_FAIL("cannot read image file '", path, "': unsupported or unrecognised format (",
              stbi_failure_reason() ? stbi_failure_reason() : "unknown", "); supported: PNG, JPEG, BMP, ",
              "PGM/PPM, TGA, GIF, PSD, HDR, TIFF, NPY");
  const char* fmt = format_name(bytes);
  info = ImageInfo{};
  void* pixels = nullptr;
  if (stbi_is_hdr_from_memory(buf, len)) {
    pixels = stbi_loadf_from_memory(buf, len, &w, &h, &c, 0);
    info.bits = 32;
    info.is_float = true;
  } else if (stbi_is_16_bit_from_memory(buf, len)) {
    pixels = stbi_load_16_from_memory(buf, len, &w, &h, &c, 0);
    info.bits = 16;
  } else {
    pixels = stbi_load_from_memory(buf, len, &w, &h, &c, 0);
    info.bits = 8;
  }
  if (!pixels)
    UNET_FAIL("cannot decode ", fmt, " file '", path, "': ",
              stbi_failure_reason() ? stbi_failure_reason() : "unknown error", " (corrupt or truncated?)");
  std::unique_ptr<void, void (*)(void*)> guard(pixels, stbi_image_free);
  check_size(path, c, h, w);
  if (info.is_float) return planar_from_interleaved(static_cast<const float*>(pixels), c, h, w);
  if (info.bits == 16) return planar_from_interleaved(static_cast<const uint16_t*>(pixels), c, h, w);
  return planar_from_interleaved(static_cast<const uint8_t*>(pixels), c, h, w);
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

struct TiffPage {
  Image image;
  int bits = 8;
  bool is_float = false;
};

// The current directory of `tif` as an Image of raw values.
TiffPage read_tiff_page(TIFF* tif, const std::string& path, int page, const TiffErrorScope& scope) {
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
  if (w > (1u << 20) || h > (1u << 20) || static_cast<uint64_t>(w) * h * spp > (uint64_t{1} << 32))
    UNET_FAIL(where, " is too large (", w, "x", h, "x", spp, ")");

  if (fmt == SAMPLEFORMAT_VOID) fmt = SAMPLEFORMAT_UINT;
  const bool ok = (fmt == SAMPLEFORMAT_UINT && (bps == 8 || bps == 16)) || (fmt == SAMPLEFORMAT_IEEEFP && bps == 32);
  if (!ok)
    UNET_FAIL(where, ": unsupported sample type: ", bps, " bits per sample, ", sample_format_name(fmt),
              " (supported: 8- or 16-bit unsigned integer, 32-bit float)");

  TiffPage out;
  out.bits = bps;
  out.is_float = fmt == SAMPLEFORMAT_IEEEFP;

  // Colour spaces that need conversion (YCbCr, CMYK, CIELab): let libtiff make 8-bit RGBA.
  if (photo == PHOTOMETRIC_YCBCR || photo == PHOTOMETRIC_SEPARATED || photo == PHOTOMETRIC_CIELAB) {
    if (bps != 8) UNET_FAIL(where, ": colour space ", photo, " is supported with 8-bit samples only");
    if (photo == PHOTOMETRIC_YCBCR && compression == COMPRESSION_JPEG)
      TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
    if (!TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 0))
      UNET_FAIL(where, ": cannot decode: ", scope.reason());
    out.image = Image(3, static_cast<int>(h), static_cast<int>(w));
    for (size_t i = 0; i < raster.size(); ++i) {
      out.image.data[i] = static_cast<float>(TIFFGetR(raster[i]));
      out.image.data[raster.size() + i] = static_cast<float>(TIFFGetG(raster[i]));
      out.image.data[2 * raster.size() + i] = static_cast<float>(TIFFGetB(raster[i]));
    }
    return out;
  }

  const bool separate = planar == PLANARCONFIG_SEPARATE && spp > 1;
  const int planes = separate ? spp : 1;
  const int per_pixel = separate ? 1 : spp;   // samples per pixel inside one strip / tile
  const int bytes = bps / 8;
  Image img(spp, static_cast<int>(h), static_cast<int>(w));
  auto sample = [&](const uint8_t* p) -> float {
    if (bps == 8) return static_cast<float>(*p);
    if (bps == 16) {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return static_cast<float>(v);
    }
    float v;
    std::memcpy(&v, p, 4);
    return v;
  };
  // Copy a decoded block (strip or tile) of `bw` x `bh` pixels whose top-left is (x0, y0).
  auto copy_block = [&](const std::vector<uint8_t>& buf, tmsize_t got, uint32_t x0, uint32_t y0, uint32_t bw,
                        uint32_t rows, uint32_t cols, int plane) {
    const uint64_t need = ((static_cast<uint64_t>(rows) - 1) * bw + cols) * per_pixel * bytes;
    if (got < 0 || static_cast<uint64_t>(got) < need)
      UNET_FAIL(where, ": cannot decode image data at row ", y0, ": ", scope.reason(), " (corrupt or truncated?)");
    for (uint32_t yy = 0; yy < rows; ++yy)
      for (uint32_t xx = 0; xx < cols; ++xx) {
        const uint8_t* p = buf.data() + (static_cast<size_t>(yy) * bw + xx) * per_pixel * bytes;
        for (int s = 0; s < per_pixel; ++s)
          img.at(separate ? plane : s, static_cast<int>(y0 + yy), static_cast<int>(x0 + xx)) = sample(p + s * bytes);
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
  if (photo == PHOTOMETRIC_MINISWHITE && !out.is_float) {  // keep "bigger = brighter"
    const float maxv = bps == 8 ? 255.0f : 65535.0f;
    for (float& v : img.data) v = maxv - v;
  }
  out.image = std::move(img);
  return out;
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

std::vector<Image> read_tiff(const std::string& path, ImageInfo& info, bool first_only) {
  TiffErrorScope scope;
  TiffPtr tif = open_tiff_for_reading(path, scope);
  std::vector<Image> pages;
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
    TiffPage p = read_tiff_page(tif.get(), path, page, scope);
    if (pages.empty()) {
      info.bits = p.bits;
      info.is_float = p.is_float;
    } else {
      const Image& a = pages.front();
      const Image& b = p.image;
      if (a.width != b.width || a.height != b.height || a.channels != b.channels)
        UNET_FAIL("TIFF file '", path, "' page ", page, " (counting from 0) is ", b.width, "x", b.height, " with ", b.channels,
                  " channel(s), but the first page is ", a.width, "x", a.height, " with ", a.channels,
                  " channel(s): every page of a stack must have the same size");
      if (p.bits != info.bits || p.is_float != info.is_float)
        UNET_FAIL("TIFF file '", path, "' page ", page, " has ", p.bits, "-bit ", p.is_float ? "float" : "integer",
                  " samples, but the first page has ", info.bits, "-bit ", info.is_float ? "float" : "integer");
    }
    pages.push_back(std::move(p.image));
    ++page;
    // TIFFReadDirectory returns 0 at the end of the chain and on a broken directory alike; only
    // the latter reports an error, so look at the errors of this call alone.
  } while ((t_tiff_errors.clear(), TIFFReadDirectory(tif.get())));
  if (!t_tiff_errors.empty() && !first_only)
    UNET_FAIL("TIFF file '", path, "': cannot read page ", page, ": ", scope.reason());
  if (pages.empty()) UNET_FAIL("TIFF file '", path, "' holds no full-resolution image");
  info.pages = counted;
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
      if (endp == item.c_str() + a || v < 0 || v > (1ll << 31))
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
  check_size(path, c, h, w);
  Image img(c, h, w);
  const size_t nbytes = img.data.size() * 4;
  if (b.size() - start - header_len < nbytes)
    UNET_FAIL("npy file '", path, "' is truncated: shape ", shape_text, " needs ", nbytes, " bytes of data, found ",
              b.size() - start - header_len);
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

Image read_image(const std::string& path, ImageInfo* info) {
  ImageInfo local;
  Image img;
  if (is_tiff(peek_magic(path))) {
    img = std::move(read_tiff(path, local, /*first_only=*/true).front());
  } else {
    const std::vector<uint8_t> bytes = read_file_bytes(path, "image file");
    if (is_npy(bytes)) {
      img = decode_npy(path, bytes);
      local = ImageInfo{32, true, 1};
    } else {
      img = read_stb(path, bytes, local);
    }
  }
  if (info) *info = local;
  return img;
}

std::vector<Image> read_stack(const std::string& path, ImageInfo* info) {
  ImageInfo local;
  std::vector<Image> pages;
  if (is_tiff(peek_magic(path))) {
    pages = read_tiff(path, local, /*first_only=*/false);
  } else {
    pages.push_back(read_image(path, &local));
  }
  if (info) *info = local;
  return pages;
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
  if (!stbi_write_png_to_func(sink, &encoded, img.width, img.height, img.channels, pixels.data(),
                              img.width * img.channels))
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
  unsigned char* z = stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 8);
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
