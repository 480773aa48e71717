// The kernel table: every U-Net primitive, forward and backward, under one name per op. The op list
// itself is kernels/ops.inc (name, parameters and math of each op, kept once); kernels/cpu and
// kernels/cuda each fill one table with functions of exactly those signatures, and the engine
// dispatches through it by the tensors' device. Kernels hold no state: they read and write the raw
// buffers they are given (device pointers for the CUDA table) and return.
#pragma once
#include <cstdint>

namespace unet::kernels {

using Stream = void*;

struct KernelTable {
  const char* backend;  // "cpu" or "cuda"
#define UNET_OP(name, params) void(*name) params;
#include "kernels/ops.inc"
#undef UNET_OP
};

const KernelTable& cpu_table();
#if defined(UNET_WITH_CUDA)
const KernelTable& cuda_table();
#endif

}  // namespace unet::kernels
