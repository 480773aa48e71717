// The restoration kernel table: the primitives of the phase contrast + DIC co-restoration solver
// (restore/, docs/restore.md), beside the U-Net's table and built the same way: the op list is
// restore/kernels/ops.inc, restore/kernels/cpu and restore/kernels/cuda each fill one table.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace unet::restore::kernels {

using Stream = unet::kernels::Stream;

struct RestoreKernelTable {
  const char* backend;  // "cpu" or "cuda"
#define RESTORE_OP(name, params) void(*name) params;
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
};

const RestoreKernelTable& cpu_table();
#if defined(UNET_WITH_CUDA)
const RestoreKernelTable& cuda_table();
#endif

namespace cpu {
#define RESTORE_OP(name, params) void name params;
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
}  // namespace cpu

namespace cuda {
#define RESTORE_OP(name, params) void name params;
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
}  // namespace cuda

}  // namespace unet::restore::kernels
