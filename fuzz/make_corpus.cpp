// Writes fuzz/corpus: a few small, valid files of every kind the fuzz targets read, through the
// project's own writers. Usage: make_corpus DIR (run from a build with UNET_FUZZ=ON).
#include <cstdio>
#include <filesystem>

#include "engine/optim.h"
#include "unet/checkpoint.h"
#include "unet/io.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {
Image ramp(int c, int h, int w, float scale) {
  Image img(c, h, w);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<float>((i * 37) % 256) * scale;
  return img;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const fs::path dir(argv[1]);
  for (const char* t : {"fuzz_png", "fuzz_tiff", "fuzz_npy", "fuzz_safetensors"}) fs::create_directories(dir / t);
  write_png((dir / "fuzz_png" / "gray.png").string(), ramp(1, 6, 8, 1.0f));
  write_png((dir / "fuzz_png" / "rgba.png").string(), ramp(4, 3, 5, 1.0f));
  write_png16((dir / "fuzz_png" / "gray16.png").string(), ramp(1, 4, 4, 250.0f));
  write_tiff_u8((dir / "fuzz_tiff" / "u8.tif").string(), ramp(1, 6, 8, 1.0f));
  write_tiff_stack((dir / "fuzz_tiff" / "u16_rgb.tif").string(), {ramp(3, 4, 4, 250.0f), ramp(3, 4, 4, 100.0f)},
                   TiffSample::U16);
  write_tiff_float((dir / "fuzz_tiff" / "float_pages.tif").string(), ramp(2, 5, 3, 0.01f));
  write_npy((dir / "fuzz_npy" / "hw.npy").string(), ramp(1, 4, 6, 0.1f));
  write_npy((dir / "fuzz_npy" / "chw.npy").string(), ramp(2, 3, 3, 0.1f));
  UNetConfig cfg;
  cfg.depth = 1;
  cfg.base = 1;
  Rng rng(1);
  UNet net(cfg, Device::CPU, rng);
  SGD opt(net.parameters(), 0.01f);
  TrainState st;
  st.iteration = 1;
  st.total_iterations = 2;
  st.extra = {{"tile", "92"}};
  save_checkpoint((dir / "fuzz_safetensors" / "train.safetensors").string(), net, &opt, st);
  save_checkpoint((dir / "fuzz_safetensors" / "weights.safetensors").string(), net, nullptr, st);
  std::printf("wrote the corpus under %s\n", dir.c_str());
  return 0;
}
