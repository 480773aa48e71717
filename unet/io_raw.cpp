// Decoding the image formats stb_image reads, with the checks every image file goes through (size
// limits, declared size against the file's length, finite samples): the part of the image readers
// that needs no libtiff, shared by unet/io_decode.cpp and libunet's image reader.
#include "unet/io_raw.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "engine/check.h"
#include "unet/stb_codec.h"

namespace unet::io_raw {

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Width, height and channels a PNG or JPEG header declares, read without decoding (stb_image refuses
// to report sizes it will not decode; the user should still hear what the file claims).
bool declared_size(const std::vector<uint8_t>& b, int64_t& w, int64_t& h, int64_t& c) {
  if (b.size() >= 26 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0 &&
      std::memcmp(b.data() + 12, "IHDR", 4) == 0) {
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
      if (m == 0xff) {
        ++p;
        continue;
      }
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

// Where the samples of a binary PNM (P5 gray, P6 RGB) start, and their layout, from its header:
// "P5", then width, height and maxval separated by whitespace (and # comments), then one whitespace
// character. False when the header is not that.
struct PnmLayout {
  size_t offset = 0;
  int64_t width = 0, height = 0, channels = 0, sample_bytes = 0;
};
bool pnm_layout(const std::vector<uint8_t>& b, PnmLayout& out) {
  if (b.size() < 3 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return false;
  size_t i = 2;
  int64_t field[3];
  for (int64_t& f : field) {
    for (;;) {  // whitespace and comments
      while (i < b.size() && std::isspace(b[i])) ++i;
      if (i < b.size() && b[i] == '#') {
        while (i < b.size() && b[i] != '\n') ++i;
        continue;
      }
      break;
    }
    if (i >= b.size() || !std::isdigit(b[i])) return false;
    f = 0;
    while (i < b.size() && std::isdigit(b[i]) && f < (int64_t{1} << 40)) f = f * 10 + (b[i++] - '0');
  }
  if (i >= b.size() || !std::isspace(b[i])) return false;
  out.offset = i + 1;
  out.width = field[0];
  out.height = field[1];
  out.channels = b[1] == '5' ? 1 : 3;
  out.sample_bytes = field[2] > 255 ? 2 : 1;
  return true;
}

template <typename T>
void planar_from_interleaved(const T* src, T* dst, int c, int h, int w) {
  const size_t hw = static_cast<size_t>(h) * w;
  for (size_t i = 0; i < hw; ++i)
    for (int k = 0; k < c; ++k) dst[k * hw + i] = src[i * c + k];
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    UNET_FAIL_AS(IoError, "cannot read ", what, " '", path, "': it is a directory");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) UNET_FAIL_AS(IoError, "cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) UNET_FAIL_AS(IoError, "cannot read ", what, " '", path, "': read error");
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

void check_size(const std::string& where, int64_t c, int64_t h, int64_t w) {
  if (w <= 0 || h <= 0 || c <= 0) UNET_FAIL(where, " has zero size (", w, "x", h, ", ", c, " channels)");
  if (static_cast<uint64_t>(w) * static_cast<uint64_t>(h) * static_cast<uint64_t>(c) > kMaxSamples)
    UNET_FAIL(where, " declares ", w, " x ", h, " pixels with ", c, " channel(s), ", static_cast<uint64_t>(w) * h * c,
              " samples: more than the limit of ", kMaxSamples, " (2^32) samples");
}

void check_declared_bytes(const std::string& where, uint64_t declared, uint64_t stored, uint64_t ratio,
                          const char* codec) {
  if (declared <= stored * ratio + 4096) return;
  UNET_FAIL(where, " declares ", declared, " bytes of image data but holds ", stored, " bytes of ", codec,
            " data, which decode to at most ", stored * ratio + 4096,
            ": the file is truncated or its header is corrupt");
}

void check_finite_samples(const RawImage& img, const std::string& where) {
  if (!img.info.is_float) return;
  const size_t hw = static_cast<size_t>(img.height) * img.width;
  for (size_t i = 0; i < img.f32.size(); ++i)
    if (!std::isfinite(img.f32[i]))
      UNET_FAIL(where, " holds ", std::isnan(img.f32[i]) ? "NaN" : "an infinite value", " at x=", i % hw % img.width,
                ", y=", i % hw / img.width, img.channels > 1 ? ", channel " + std::to_string(i / hw) : std::string(),
                ": inputs must be finite numbers");
}

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

uint8_t* raw_bytes(RawImage& img) {
  if (img.info.is_float) return reinterpret_cast<uint8_t*>(img.f32.data());
  if (img.info.bits == 16) return reinterpret_cast<uint8_t*>(img.u16.data());
  return img.u8.data();
}

RawImage decode_stb(const std::string& path, const std::vector<uint8_t>& bytes, ImageInfo& info,
                    const char* supported) {
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
    UNET_FAIL("cannot read image file '", path,
              "': ", std::string(fmt) == "image" ? "unsupported or unrecognised format" : "cannot decode its header",
              " (", stb_codec::failure_reason() ? stb_codec::failure_reason() : "unknown", "); supported: ", supported);
  }
  check_size("image file '" + path + "'", c, h, w);
  check_declared_bytes("image file '" + path + "'", static_cast<uint64_t>(w) * h * c, bytes.size(),
                       stb_max_ratio(bytes), fmt);
  // Binary PNM is stored raw: every sample must be in the file (stb_image would leave the missing
  // ones unset).
  PnmLayout pnm;
  const bool is_pnm = pnm_layout(bytes, pnm);
  if (is_pnm) {
    const uint64_t need = static_cast<uint64_t>(pnm.width) * pnm.height * pnm.channels * pnm.sample_bytes;
    if (need > bytes.size() - pnm.offset)
      UNET_FAIL("image file '", path, "' is truncated: a ", pnm.width, " x ", pnm.height, " PNM image of ",
                pnm.channels, " channel(s) and ", 8 * pnm.sample_bytes, "-bit samples needs ", need,
                " bytes of data, the file holds ", bytes.size() - pnm.offset);
  }
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
    UNET_FAIL("cannot decode ", fmt, " file '", path,
              "': ", stb_codec::failure_reason() ? stb_codec::failure_reason() : "unknown error",
              " (corrupt or truncated?)");
  std::unique_ptr<void, void (*)(void*)> guard(pixels, stb_codec::free_pixels);
  check_size("image file '" + path + "'", c, h, w);
  RawImage img;
  allocate_raw(img, c, h, w, info);
  if (info.is_float) planar_from_interleaved(static_cast<const float*>(pixels), img.f32.data(), c, h, w);
  else if (info.bits == 16) planar_from_interleaved(static_cast<const uint16_t*>(pixels), img.u16.data(), c, h, w);
  else planar_from_interleaved(static_cast<const uint8_t*>(pixels), img.u8.data(), c, h, w);
  // 16-bit PNM samples are big-endian; some stb_image versions (2.27 among them) return them byte-
  // swapped on a little-endian machine. Taken from the file itself, whatever stb_image did.
  if (is_pnm && info.bits == 16 && pnm.width == w && pnm.height == h && pnm.channels == c && pnm.sample_bytes == 2) {
    const uint8_t* s = bytes.data() + pnm.offset;
    const size_t hw = static_cast<size_t>(h) * w;
    for (size_t i = 0; i < hw; ++i)
      for (int k = 0; k < c; ++k, s += 2) img.u16[k * hw + i] = static_cast<uint16_t>((s[0] << 8) | s[1]);
  }
  return img;
}

}  // namespace unet::io_raw
