// The PTX instructions of the tensor-core convolutions, one small device function each, so that the
// host emulation (tests/cuda_emu) can put its own versions of exactly these in their place: its
// mma fragment layouts are written from the PTX ISA's tables, never from the kernels' use of them.
//
//   cp_async4 / cp_async16   cp.async.{ca,cg}.shared.global: copy 4 (16) bytes global -> shared without
//                            passing through registers; `valid` false copies nothing and writes zeros
//                            (src-size 0), so a tile's edge costs no branch
//   cp_async_commit          cp.async.commit_group: the copies issued since the last commit form a group
//   cp_async_wait<N>         cp.async.wait_group N: all but the N most recent groups have landed
//   to_tf32                  cvt.rna.tf32.f32: round to TF32, to nearest with ties away from zero
//   to_bf16x2                cvt.rn.bf16x2.f32: two floats to BF16, to nearest even, packed lo | hi << 16
//   mma_tf32                 mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32:  d += a * b
//   mma_bf16                 mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d += a * b
//   dynamic_smem             the block's dynamic shared memory (extern __shared__)
//
// Fragments (which lane holds which element) are the PTX ISA's for these shapes; the kernels load them
// from shared memory accordingly (tc_gemm.cuh). Compute capability >= 8.0.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace unet::kernels::cuda::ptx {

__device__ inline uint32_t smem_address(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ inline void cp_async4(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(smem)), "l"(gmem),
               "r"(valid ? 4 : 0));
}

__device__ inline void cp_async16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}

__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ inline uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// lo in bits 0..15, hi in bits 16..31 (cvt puts its first source in the upper half).
__device__ inline uint32_t to_bf16x2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ inline void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ inline float* dynamic_smem() {
  extern __shared__ __align__(16) float unet_dynamic_smem[];
  return unet_dynamic_smem;
}

}  // namespace unet::kernels::cuda::ptx
