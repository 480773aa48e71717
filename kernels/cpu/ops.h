// The CPU backend's functions: one per entry of kernels/ops.inc, same name, same math, declared by
// expanding the op list. Readable first, OpenMP-parallel, register-blocked where the U-Net spends
// its time (the convolutions). Deterministic: no result depends on the number of threads.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace unet::kernels::cpu {

#define UNET_OP(name, params) void name params;
#include "kernels/ops.inc"
#undef UNET_OP

// Shared by the three convolutions: db[k] = sum_{n,p} dy[n,k,p] over `plane` pixels; with a mask (the ReLU's
// output y, laid out as dy) the sum of dy[n,k,p] where mask[n,k,p] > 0.
void bias_grad(const float* dy, float* db, int N, int K, int64_t plane, const float* mask = nullptr);

}  // namespace unet::kernels::cpu
