// The stb_image / stb_image_write calls this project makes, behind functions of its own: the single
// translation unit that holds stb's code (unet/stb_codec.cpp, where it is static, so no other copy
// of stb in a program can clash with it) is the only place that sees stb's headers.
#pragma once
#include <cstdint>

namespace unet::stb_codec {

// Width, height and channels from the header alone; false when stb_image does not take the file.
bool info(const uint8_t* data, int len, int* w, int* h, int* c);
bool is_hdr(const uint8_t* data, int len);
bool is_16_bit(const uint8_t* data, int len);
// Interleaved samples in the file's own type (nullptr on failure); release with free_pixels.
float* load_f32(const uint8_t* data, int len, int* w, int* h, int* c);
uint16_t* load_u16(const uint8_t* data, int len, int* w, int* h, int* c);
uint8_t* load_u8(const uint8_t* data, int len, int* w, int* h, int* c);
void free_pixels(void* pixels);
// Why the last call failed, or nullptr.
const char* failure_reason();

// 8-bit PNG of interleaved rows to `sink(ctx, bytes, size)`; false on failure.
bool write_png(void (*sink)(void* ctx, void* data, int size), void* ctx, int w, int h, int c, const uint8_t* pixels);
// zlib stream of `data` (free with std::free), its length in *out_len; nullptr on failure.
unsigned char* zlib_compress(const uint8_t* data, int len, int* out_len);

}  // namespace unet::stb_codec
