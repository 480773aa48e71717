// Reading images: recognising a file by its content, checking what it declares, decoding PNG/JPEG/
// BMP/PNM/... (stb_image), TIFF (libtiff) and npy into the compact raw form, and normalising raw
// samples into network inputs. The one decoding path every reader shares. See unet/io.h, docs/io.md.
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
#include "unet/io_raw.h"

namespace unet {
namespace {

using namespace io_detail;
using namespace io_raw;

// ---- helpers -------------------------------------------------------------------------------------

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

const char* sample_format_name(uint16_t f) {
  switch (f) {
    case SAMPLEFORMAT_UINT:
      return "unsigned integer";
    case SAMPLEFORMAT_INT:
      return "signed integer";
    case SAMPLEFORMAT_IEEEFP:
      return "floating point";
    case SAMPLEFORMAT_VOID:
      return "untyped";
    case SAMPLEFORMAT_COMPLEXINT:
      return "complex integer";
    case SAMPLEFORMAT_COMPLEXIEEEFP:
      return "complex floating point";
    default:
      return "unknown sample format";
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
  uint16_t bps = 1, spp = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG, photo = PHOTOMETRIC_MINISBLACK,
           compression = COMPRESSION_NONE;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = PHOTOMETRIC_MINISBLACK;
  if (w == 0 || h == 0 || spp == 0) UNET_FAIL(where, " has zero size (", w, "x", h, ", ", spp, " samples per pixel)");
  check_size(where, spp, h, w);
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  check_tiff_data(tif, where, ec ? 0 : file_bytes, static_cast<uint64_t>(w) * h * spp * std::max<uint16_t>(bps / 8, 1),
                  compression);

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
  const int per_pixel = separate ? 1 : spp;  // samples per pixel inside one strip / tile
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

}  // namespace

// ---- public: reading -----------------------------------------------------------------------------

const char* const kSupportedFormats = "PNG, JPEG, BMP, PGM/PPM, TGA, GIF, PSD, HDR, TIFF, NPY";

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
      img = decode_stb(path, bytes, local, kSupportedFormats);
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
      check_finite_samples(pages[i],
                           "image file '" + path + "'" + (pages.size() > 1 ? " page " + std::to_string(i) : ""));
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

}  // namespace unet
