// Fuzz target of libunet's C API: a checkpoint from memory (unet_model_load_memory: the safetensors
// parser, the architecture and weight checks), then, for what loads, a predictor and a prediction.
// Every input must end in a status: UNET_OK, or a refusal with a message.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "unet/unet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  unet_model* model = nullptr;
  const unet_status s = unet_model_load_memory(data, size, "fuzz input", &model);
  if (s != UNET_OK) {
    if (model != nullptr || unet_last_error()[0] == '\0') std::abort();
    return 0;
  }
  unet_model_info info;
  if (unet_model_get_info(model, &info) != UNET_OK) std::abort();
  unet_predictor_options o;
  unet_predictor_options_init(&o);
  o.device = UNET_DEVICE_CPU;
  unet_predictor* p = nullptr;
  if (unet_predictor_create(model, &o, &p) == UNET_OK) {
    // A small image of the model's channels (a fuzzed file can only hold a small network).
    std::vector<uint8_t> pixels(static_cast<size_t>(20) * 20 * info.in_channels, 128);
    unet_image img{pixels.data(), 20, 20, info.in_channels, UNET_U8, 0};
    std::vector<uint8_t> labels(20 * 20);
    const unet_status ps = unet_predict_labels(p, &img, labels.data(), labels.size());
    if (ps != UNET_OK && unet_last_error()[0] == '\0') std::abort();
    unet_predictor_free(p);
  }
  unet_model_free(model);
  return 0;
}
