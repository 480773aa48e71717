// The kernel table: every U-Net primitive, forward and backward, under one name per op. The op list
// itself is kernels/ops.inc (name, parameters and math of each op, kept once); kernels/cpu and
// kernels/cuda each fill one table with functions of exactly those signatures, and the engine
// dispatches through it by the tensors' device. Kernels hold no state: they read and write the raw
// buffers they are given (device pointers for the CUDA table) and return.
#pragma once
#include <cstdint>

namespace unet::kernels {

using Stream = void*;

// The arithmetic of the convolutions' matrix products (every other op is FP32 throughout). Inputs,
// outputs, weights and gradients are FP32 tensors in every case; only the products' operands change:
//   FP32  fused multiply-adds of the FP32 values: the bit-faithful reference;
//   TF32  operands rounded to TF32 (10-bit mantissa, to nearest with ties away from zero, as PTX's
//         cvt.rna.tf32.f32), FP32 accumulation: tensor cores on compute capability >= 8.0;
//   BF16  operands rounded to BF16 (7-bit mantissa, to nearest even), FP32 accumulation.
// The CPU backend computes TF32 and BF16 as the reference does: the operands rounded the same way,
// then its FP32 products (kernels/precision.h), so the two backends are compared like with like.
enum class Precision : int32_t { FP32 = 0, TF32 = 1, BF16 = 2 };

// The optimizers' update over many parameter tensors in one call (optim_update_list): tensor i has n[i]
// elements at w[i], its gradient at g[i] and its state at s0[i] (SGD's momentum, Adam's first moment) and s1[i]
// (Adam's second moment; unused by SGD). Passed by value to the CUDA kernel (2.6 KB, with the tensors'
// offsets 3.1 KB: within a launch's 4 KB of parameters), so a step of the U-Net's 46 parameter tensors is one
// launch. A tensor may appear once only (the updates of one launch run concurrently).
constexpr int kMaxListTensors = 64;
struct ParamList {
  int count = 0;
  float* w[kMaxListTensors] = {};
  const float* g[kMaxListTensors] = {};
  float* s0[kMaxListTensors] = {};
  float* s1[kMaxListTensors] = {};
  int64_t n[kMaxListTensors] = {};
};

// Which update optim_update_list applies, with its hyperparameters (those of sgd_momentum, sgd_nesterov and
// adam_update in kernels/ops.inc; Adam's step and inv_sqrt_bc2 carry the bias corrections of its step t).
enum class OptimKind : int32_t { kSgd = 0, kNesterov = 1, kAdam = 2 };
// `scalars`: nullptr, or two floats in the backend's memory read when the update runs, in place of the
// values that change from step to step: [0] is lr (SGD, Nesterov) or step (Adam), [1] Adam's inv_sqrt_bc2.
// A CUDA graph captures the launch once and the host writes each step's two values before a replay.
struct OptimStep {
  OptimKind kind = OptimKind::kSgd;
  float lr = 0.0f, mu = 0.0f, wd = 0.0f;                                     // SGD, Nesterov
  float step = 0.0f, b1 = 0.0f, b2 = 0.0f, eps = 0.0f, inv_sqrt_bc2 = 0.0f;  // Adam (and wd)
  const float* scalars = nullptr;
};

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
