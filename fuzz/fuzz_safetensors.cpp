// Fuzz target of the checkpoint loader: safetensors parsing, then (when the file parses) the
// architecture its metadata declares, a network of that architecture, and the weights and momentum
// loaded into it. A damaged file must be refused with unet::Error before any allocation the file's
// own length does not justify.
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "fuzz/fuzz_io.h"
#include "unet/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = unet::fuzz::input_path(".safetensors");
  unet::fuzz::write_input(path, data, size);
  try {
    unet::load_safetensors(path);
    const unet::UNetConfig cfg = unet::read_checkpoint_config(path);
    unet::Rng rng(1);
    unet::UNet net(cfg, unet::Device::CPU, rng);
    unet::SGD opt(net.parameters(), 0.01f);
    try {
      unet::load_checkpoint(path, net, &opt);
    } catch (const unet::Error&) {
      unet::load_checkpoint(path, net, nullptr);  // a weights-only file
    }
  } catch (const unet::Error&) {}
  return 0;
}
