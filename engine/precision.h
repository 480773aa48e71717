// Which arithmetic a run's convolutions use (kernels/kernels.h: fp32, tf32, bf16), chosen per device.
#pragma once
#include <optional>
#include <string>

#include "engine/tensor.h"
#include "kernels/kernels.h"

namespace unet {

// The precision of a run on `device`: `asked` when the device has it, the default when nothing is asked
// (TF32 on a GPU of compute capability >= 8.0, FP32 on older GPUs and on the CPU). The CPU has FP32, and
// BF16 where it has AVX-512 BF16 (avx512_bf16); it has no TF32. Throws Unsupported, naming the device and
// what it lacks, when the device has not the precision asked.
kernels::Precision choose_precision(Device device, std::optional<kernels::Precision> asked);

// "fp32", "tf32" or "bf16"; throws for anything else, listing the three.
kernels::Precision parse_precision_option(const std::string& text);

}  // namespace unet
