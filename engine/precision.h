// Which arithmetic a run's convolutions use (kernels/kernels.h: fp32, tf32, bf16), chosen per device.
#pragma once
#include <optional>
#include <string>

#include "engine/tensor.h"
#include "kernels/kernels.h"

namespace unet {

// The precision of a run on `device`: `asked` when the device has it, the default when nothing is asked
// (TF32 on a GPU of compute capability >= 8.0, FP32 on older GPUs and on the CPU). Throws Unsupported,
// naming the device, when TF32 or BF16 is asked of the CPU (which computes FP32 only) or of a GPU without them.
kernels::Precision choose_precision(Device device, std::optional<kernels::Precision> asked);

// "fp32", "tf32" or "bf16"; throws for anything else, listing the three.
kernels::Precision parse_precision_option(const std::string& text);

}  // namespace unet
