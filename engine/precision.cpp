#include "engine/precision.h"

#include "engine/backend.h"
#include "engine/check.h"
#include "kernels/cpu/bf16_gemm.h"
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
  if (device != Device::CUDA) {
    // BF16 on a CPU with AVX-512 BF16 (vdpbf16ps: kernels/cpu/bf16_gemm.h); TF32 has no CPU instructions.
    if (*asked == Precision::BF16) {
      if (kernels::cpu::detail::cpu_has_avx512_bf16()) return *asked;
      UNET_FAIL_AS(Unsupported,
                   "precision bf16 needs a CPU with AVX-512 BF16 (the avx512_bf16 instructions, which this CPU "
                   "lacks) or a CUDA GPU with tensor cores (compute capability 8.0 or newer); ask for fp32, or "
                   "for the cuda device");
    }
    UNET_FAIL_AS(Unsupported, "precision ", kernels::precision_name(*asked),
                 " needs a CUDA GPU with tensor cores (compute capability 8.0 or newer); the CPU computes the "
                 "convolutions in fp32, or in bf16 where it has AVX-512 BF16 (ask for fp32, or for the cuda "
                 "device)");
  }
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
