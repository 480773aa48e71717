// Helpers of the C API's tests: checkpoints written with the C++ side of the project (linked
// beside libunet.so, whose own copy of the engine stays private to it), and RAII over the handles.
#pragma once
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
#include "unet/unet.h"

namespace unet::test {

// A He-initialised network of `cfg` saved as a checkpoint with its training metadata.
inline std::string write_checkpoint(const TempDir& dir, const std::string& name, const UNetConfig& cfg,
                                    uint64_t seed = 3) {
  Rng rng(seed);
  UNet net(cfg, Device::CPU, rng);
  const std::string path = dir / name;
  save_checkpoint(path, net, nullptr, TrainState{});
  return path;
}

inline UNetConfig small_config(int in_channels = 1, int classes = 2) {
  UNetConfig c;
  c.in_channels = in_channels;
  c.classes = classes;
  c.depth = 2;
  c.base = 4;
  return c;
}

inline std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

struct ModelFree {
  void operator()(unet_model* m) const { unet_model_free(m); }
};
struct PredictorFree {
  void operator()(unet_predictor* p) const { unet_predictor_free(p); }
};
using ModelPtr = std::unique_ptr<unet_model, ModelFree>;
using PredictorPtr = std::unique_ptr<unet_predictor, PredictorFree>;

inline ModelPtr load_model(const std::string& path) {
  unet_model* m = nullptr;
  if (unet_model_load(path.c_str(), &m) != UNET_OK) return nullptr;
  return ModelPtr(m);
}

inline PredictorPtr make_predictor(const unet_model* m, const unet_predictor_options* o = nullptr) {
  unet_predictor* p = nullptr;
  if (unet_predictor_create(m, o, &p) != UNET_OK) return nullptr;
  return PredictorPtr(p);
}

// An interleaved image over `data` (row_stride 0).
template <typename T>
unet_image image_of(const std::vector<T>& data, int w, int h, int c, unet_dtype dtype) {
  unet_image img{};
  img.data = data.data();
  img.width = w;
  img.height = h;
  img.channels = c;
  img.dtype = dtype;
  return img;
}

}  // namespace unet::test
