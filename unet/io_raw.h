// The image readers' checks and the stb_image decoding, without libtiff (unet/io_raw.cpp): used by
// unet/io_decode.cpp and by libunet's image reader. Not an interface of its own; see unet/io.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unet/io.h"

namespace unet::io_raw {

// The whole file. Throws IoError naming `what` ("image file") and the path when it cannot be opened
// or read or is a directory, Error when it is empty.
std::vector<uint8_t> read_file_bytes(const std::string& path, const char* what);

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t n);
bool is_tiff(const std::vector<uint8_t>& b);
bool is_npy(const std::vector<uint8_t>& b);
// "PNG", "JPEG", ... by the magic bytes; "image" when none matches.
const char* format_name(const std::vector<uint8_t>& b);

// The most samples (width x height x channels) an image file may declare: 2^32, a 65536 x 65536
// image of 1 channel (4 GiB at 8 bits, 16 GiB as floats). Larger declarations are refused before
// anything is allocated.
constexpr uint64_t kMaxSamples = uint64_t{1} << 32;
// `where` names the file (and page): "image file 'x.png'".
void check_size(const std::string& where, int64_t c, int64_t h, int64_t w);
// A file's data cannot decode to more than `ratio` times its length (the codec's best compression):
// a declaration beyond that is a damaged or crafted header, refused before anything is allocated.
void check_declared_bytes(const std::string& where, uint64_t declared, uint64_t stored, uint64_t ratio,
                          const char* codec);
// Every input sample must be a number: one NaN or inf would turn the whole map (and a training run's
// weights) into NaN. Names the first offender.
void check_finite_samples(const RawImage& img, const std::string& where);

// Allocates the one storage vector `info` selects; the bytes of that storage.
void allocate_raw(RawImage& img, int c, int h, int w, const ImageInfo& info);
uint8_t* raw_bytes(RawImage& img);

// A PNG, JPEG, BMP, PNM, TGA, GIF, PSD or HDR file's content, decoded to the compact planar form;
// `supported` lists the formats of the caller for the message about an unknown one.
RawImage decode_stb(const std::string& path, const std::vector<uint8_t>& bytes, ImageInfo& info, const char* supported);

}  // namespace unet::io_raw
