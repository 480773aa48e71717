// Image, label and array files: reading, normalising, writing. See docs/io.md.
//
// Reading keeps RAW sample values (0..255 for 8-bit, 0..65535 for 16-bit, floats as stored) in
// an Image (planar CHW float) and reports the bit depth in an ImageInfo; normalise_intensity()
// is the ONE place where raw values become network inputs in [0, 1] (training and prediction
// both call it). Formats are recognised by their content, not their extension:
//   PNG, JPEG, BMP, PGM/PPM (8- and 16-bit), TGA, GIF (first frame), PSD, HDR  -- via stb_image
//   TIFF (8-/16-bit unsigned, 32-bit float; any samples per pixel; strips or tiles; contiguous
//   or separate planes; any codec libtiff was built with; multi-page)           -- via libtiff
//
// Every write is atomic (temporary file + fsync + rename, engine/atomic_file.h): the target is
// either the complete new file or untouched. Every failure throws unet::Error naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

struct ImageInfo {
  int bits = 8;           // bits per sample in the file: 8, 16 or 32
  bool is_float = false;  // samples are IEEE floats (32-bit float TIFF, Radiance HDR)
  int pages = 1;          // pages (TIFF directories) in the file; 1 for every other format
};

// ---- reading --------------------------------------------------------------------------------
// The image in `path` (the first page of a multi-page TIFF) with its raw values, one channel per
// sample (gray = 1, gray+alpha = 2, RGB = 3, RGBA = 4). Fills *info when given.
Image read_image(const std::string& path, ImageInfo* info = nullptr);

// Every page of a multi-page TIFF, or a single-image file as one slice. All pages must have the
// same width, height and channel count (an error names the file, the page and both sizes).
// info->pages is the page count; all pages must share one bit depth and sample format.
std::vector<Image> read_stack(const std::string& path, ImageInfo* info = nullptr);

// Raw values -> [0, 1]: 8-bit / 255, 16-bit / 65535. Float data (is_float) is returned
// UNCHANGED: it is assumed to be scaled already (no clamping, no min-max stretch).
Image normalise_intensity(const Image& raw, int bits, bool is_float);
inline Image normalise_intensity(const Image& raw, const ImageInfo& info) {
  return normalise_intensity(raw, info.bits, info.is_float);
}
// read_image followed by normalise_intensity.
Image read_image_normalised(const std::string& path);

// The single-channel images of `pages` (or multi-channel ones) stacked as channels of one Image:
// the inverse of the one-page-per-channel TIFF writers below. All must have one height x width.
Image stack_channels(const std::vector<Image>& pages);

// A NumPy .npy file of dtype '<f4' (float32, little-endian, C order) with shape (H, W) or
// (C, H, W), as written by write_npy.
Image read_npy(const std::string& path);

// ---- labels ---------------------------------------------------------------------------------
// Raw label pixels -> one-channel image of class indices 0..num_classes-1. Accepted encodings:
//  (a) class indices already: every value an integer in [0, num_classes);
//  (b) num_classes == 2 and values within {0, 255}: 8-bit binary mask, 255 -> 1, 0 -> 0;
//  (c) num_classes == 2 and values within {0, 65535}: 16-bit binary mask, 65535 -> 1.
// ISBI 2012: white (255) = cell interior -> class 1, black (0) = membrane -> class 0.
// A multi-channel input is accepted when it is gray stored as gray+alpha or RGB(A) with
// R == G == B (the first channel is used). Any other value set is an error naming
// `source_name`, the values found and up to 5 offending values with their pixel counts.
Image labels_from_image(const Image& raw, int num_classes, const std::string& source_name);
Image read_label(const std::string& path, int num_classes = 2);
// Every page of a label stack (e.g. ISBI train-labels.tif), each decoded as read_label does.
std::vector<Image> read_label_stack(const std::string& path, int num_classes = 2);

// ---- writing (all atomic) ---------------------------------------------------------------------
// 8-bit PNG of 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels; values are rounded and
// clamped to 0..255 (NaN -> 0). Scale [0,1] data by 255 first.
void write_png(const std::string& path, const Image& img);
// 16-bit PNG of 1..4 channels; values rounded and clamped to 0..65535.
void write_png16(const std::string& path, const Image& img);

// One-page-per-channel TIFF stacks (an ImageJ/Fiji-friendly layout for probability maps and
// masks): channel c of `img` becomes page c, each page one sample per pixel, deflate-compressed
// when libtiff has the codec. read_stack() + stack_channels() read them back.
void write_tiff_float(const std::string& path, const Image& img);  // 32-bit IEEE float, as is
void write_tiff_u8(const std::string& path, const Image& img);     // rounded, clamped 0..255
void write_tiff_u16(const std::string& path, const Image& img);    // rounded, clamped 0..65535

enum class TiffSample { U8, U16, F32 };
// One page per Image (e.g. a volume of slices); an Image's channels become samples per pixel
// (3 channels of U8/U16 are tagged RGB, anything else min-is-black with extra samples).
// Pages may differ in size (readers of this project reject that, other tools may not).
void write_tiff_stack(const std::string& path, const std::vector<Image>& pages, TiffSample type);

// NumPy .npy v1.0, dtype '<f4', C order, shape (H, W) when img.channels == 1 else (C, H, W).
void write_npy(const std::string& path, const Image& img);

struct OverlayOptions {
  int tint_class = 1;          // the class of `mask` that is drawn
  bool boundary_only = false;  // true: only the class's edge pixels (4-neighbourhood), opaque
  float alpha = 0.4f;          // region mode: blend weight of the colour
  uint8_t r = 255, g = 0, b = 0;
};
// RGB PNG of `gray01` (1 channel, or 3 channels RGB, values in [0, 1]) with the pixels of class
// `tint_class` in `mask` (1 channel of class indices, same height x width) tinted.
void overlay_png(const std::string& path, const Image& gray01, const Image& mask, const OverlayOptions& opt = {});

// ---- compact raw images -----------------------------------------------------------------------
// What `unet predict` reads, so that an image of any size (10000 x 10000 and beyond) is segmented
// in memory bounded by a band of rows (with the streaming writers of unet/io_stream.h), not by the
// image. See docs/predict.md.
// The samples of an image exactly as stored, planar (CHW), in the file's own sample type:
// 1 byte per sample for 8-bit files, 2 for 16-bit, 4 for float (a 4096 x 4096 8-bit image takes
// 16 MiB here, 64 MiB as an Image). Exactly one of u8 / u16 / f32 is filled, chosen by `info`.
struct RawImage {
  int channels = 0, height = 0, width = 0;
  ImageInfo info;  // bits 8 -> u8, bits 16 -> u16, is_float -> f32
  std::vector<uint8_t> u8;
  std::vector<uint16_t> u16;
  std::vector<float> f32;

  bool empty() const { return channels == 0 || height == 0 || width == 0; }
  int64_t pixels() const { return static_cast<int64_t>(height) * width; }
  size_t bytes() const { return u8.size() + 2 * u16.size() + 4 * f32.size(); }
  size_t index(int c, int y, int x) const { return (static_cast<size_t>(c) * height + y) * width + x; }
  // The raw value of one sample (0..255, 0..65535 or the stored float).
  float raw(int c, int y, int x) const {
    const size_t i = index(c, y, x);
    return info.is_float ? f32[i] : info.bits == 16 ? static_cast<float>(u16[i]) : static_cast<float>(u8[i]);
  }
  // The sample normalised exactly as normalise_intensity() does it (8-bit * (1/255),
  // 16-bit * (1/65535), float unchanged), so both give bit-identical network inputs.
  float normalised(int c, int y, int x) const {
    return info.is_float ? f32[index(c, y, x)] : raw(c, y, x) * (info.bits == 16 ? 1.0f / 65535.0f : 1.0f / 255.0f);
  }
};

// Raw values (as read_image returns them, with their ImageInfo) -> compact form. Integer samples
// must be whole numbers in the type's range (an error says where one is not).
RawImage compact_raw(const Image& raw, const ImageInfo& info);
// Compact form -> raw values as an Image (what read_image would have returned).
Image expand_raw(const RawImage& raw);
// Compact form -> network input in [0, 1]: the same as normalise_intensity(expand_raw(raw), raw.info).
Image normalise_intensity(const RawImage& raw);

// read_image / read_stack that keep the samples compact: the one decoding path, which read_image /
// read_stack widen with expand_raw (so files are recognised, checked and rejected alike). The
// decoder writes straight into the compact form (no float copy of the whole image is made on the way).
RawImage read_image_raw(const std::string& path, ImageInfo* info = nullptr);
std::vector<RawImage> read_stack_raw(const std::string& path, ImageInfo* info = nullptr);

}  // namespace unet
