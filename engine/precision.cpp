#include "engine/precision.h"

#include "engine/backend.h"
#include "engine/check.h"
#include "kernels/precision.h"

namespace unet {

kernels::Precision choose_precision(Device device, std::optional<kernels::Precision> asked) {
  using kernels::Precision;
  int cc = 0;  // compute capability x 10; 0 on the CPU
  if (device == Device::CUDA) {
    const DeviceInfo info = cuda_device_info();
    cc = info.cc_major * 10 + info.cc_minor;
  }
  if (!asked) return cc >= 80 ? Precision::TF32 : Precision::FP32;
  if (*asked == Precision::FP32) return *asked;
  if (device != Device::CUDA)
    UNET_FAIL_AS(Unsupported, "precision ", kernels::precision_name(*asked),
                 " needs a CUDA GPU with tensor cores (compute capability 8.0 or newer); the CPU computes the "
                 "convolutions in fp32 only (ask for fp32, or for the cuda device)");
  if (cc < 80)
    UNET_FAIL_AS(Unsupported, "precision ", kernels::precision_name(*asked),
                 " needs tensor cores of compute "
                 "capability 8.0 or newer; this GPU has ",
                 cc / 10, ".", cc % 10, " (ask for fp32)");
  return *asked;
}

kernels::Precision parse_precision_option(const std::string& text) {
  const std::optional<kernels::Precision> p = kernels::parse_precision(text);
  UNET_CHECK(p.has_value(), "--precision must be fp32, tf32 or bf16, got '", text, "'");
  return *p;
}

}  // namespace unet
