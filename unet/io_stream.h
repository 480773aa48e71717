// Streaming writers: each writes a picture of known size handed over top to bottom in bands of whole
// rows, keeping only about one band in memory (unet predict's outputs, docs/predict.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "unet/image.h"

namespace unet {

// ---- streaming writers --------------------------------------------------------------------------
// Each writes a picture of known size handed over top to bottom in bands of whole rows, keeping
// only about one band in memory. Each is atomic like every writer of this file: the data goes to
// a temporary file next to `path`, and finish() fsyncs it and renames it over `path`. A writer
// destroyed without finish() (say an exception unwinds past it) removes its temporary files and
// leaves `path` untouched. Rows must arrive in order: write_rows(y0, ...) needs y0 == rows so far.

// The layout of write_tiff_float: one page per channel, each one sample per pixel, 32-bit IEEE
// float, deflate-compressed when libtiff has the codec, strips of `rows_per_strip` rows (0: a
// band of about 1 MiB); BigTIFF past 3 GiB. TIFF directories are written one after the other, so
// page 0 is encoded as the rows arrive and pages 1.. are spooled uncompressed to an unlinked
// temporary file in the target's directory until finish() encodes them (disk, not memory).
class TiffFloatPagesWriter {
 public:
  TiffFloatPagesWriter(const std::string& path, int pages, int height, int width, int rows_per_strip = 0);
  ~TiffFloatPagesWriter();
  TiffFloatPagesWriter(const TiffFloatPagesWriter&) = delete;
  TiffFloatPagesWriter& operator=(const TiffFloatPagesWriter&) = delete;
  // band: `pages` channels x rows x width; its rows are rows y0.. of every page.
  void write_rows(int y0, const Image& band);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An 8-bit PNG (1 gray, 2 gray+alpha, 3 RGB or 4 RGBA channels) encoded as the rows arrive: each
// row gets the PNG filter with the smallest sum of absolute differences, and the filtered rows go
// through this project's own streaming deflate encoder (LZ77 over a 32 KiB window with hash
// chains, fixed Huffman codes; the compression stb_image_write gives), in IDAT chunks of
// 256 KiB. Any PNG reader decodes it.
class PngStreamWriter {
 public:
  PngStreamWriter(const std::string& path, int width, int height, int channels);
  ~PngStreamWriter();
  PngStreamWriter(const PngStreamWriter&) = delete;
  PngStreamWriter& operator=(const PngStreamWriter&) = delete;
  // `rows` rows of interleaved samples (width * channels bytes each, no padding).
  void write_rows(int y0, const uint8_t* pixels, int rows);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The NumPy .npy file of write_npy (float32, C order, shape (C, H, W), or (H, W) for one
// channel), filled band by band: each band's rows are written at their offset within every
// channel's plane of the (sparse until filled) temporary file.
class NpyStreamWriter {
 public:
  NpyStreamWriter(const std::string& path, int channels, int height, int width);
  ~NpyStreamWriter();
  NpyStreamWriter(const NpyStreamWriter&) = delete;
  NpyStreamWriter& operator=(const NpyStreamWriter&) = delete;
  void write_rows(int y0, const Image& band);  // band: channels x rows x width
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unet
