// The CUDA backend's host launchers: one per entry of kernels/ops.inc, same name and signature (the
// Stream is a cudaStream_t), declared by expanding the op list; each is defined in the .cu file of
// its op and gathered in table.cu.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace unet::kernels::cuda {

#define UNET_OP(name, params) void name params;
#include "kernels/ops.inc"
#undef UNET_OP

}  // namespace unet::kernels::cuda
