#include "unet/stb_codec.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include "stb_image.h"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

namespace unet::stb_codec {

bool info(const uint8_t* data, int len, int* w, int* h, int* c) {
  return stbi_info_from_memory(data, len, w, h, c) != 0;
}
bool is_hdr(const uint8_t* data, int len) { return stbi_is_hdr_from_memory(data, len) != 0; }
bool is_16_bit(const uint8_t* data, int len) { return stbi_is_16_bit_from_memory(data, len) != 0; }
float* load_f32(const uint8_t* data, int len, int* w, int* h, int* c) {
  return stbi_loadf_from_memory(data, len, w, h, c, 0);
}
uint16_t* load_u16(const uint8_t* data, int len, int* w, int* h, int* c) {
  return stbi_load_16_from_memory(data, len, w, h, c, 0);
}
uint8_t* load_u8(const uint8_t* data, int len, int* w, int* h, int* c) {
  return stbi_load_from_memory(data, len, w, h, c, 0);
}
void free_pixels(void* pixels) { stbi_image_free(pixels); }
const char* failure_reason() { return stbi_failure_reason(); }

bool write_png(void (*sink)(void* ctx, void* data, int size), void* ctx, int w, int h, int c, const uint8_t* pixels) {
  return stbi_write_png_to_func(sink, ctx, w, h, c, pixels, w * c) != 0;
}
unsigned char* zlib_compress(const uint8_t* data, int len, int* out_len) {
  return stbi_zlib_compress(const_cast<uint8_t*>(data), len, out_len, 8);
}

}  // namespace unet::stb_codec
