// The few CUDA runtime calls the kernels make, for the host emulation; and the fibers' context switch.
#include "emu.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

// emu_fiber_switch(save, to): saves the callee-saved registers and the stack pointer in *save, switches
// to the stack `to` (saved the same way, or prepared by emu::run_block) and returns there.
#if defined(__x86_64__)
asm(R"(
.text
.globl emu_fiber_switch
.type emu_fiber_switch,@function
emu_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size emu_fiber_switch,.-emu_fiber_switch
)");
#else
#error "the CUDA host emulation switches fibers with x86-64 code"
#endif

extern "C" {
cudaError_t cudaGetDevice(int* d) {
  *d = emu::current_device();
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int dev) {
  *v = attr == cudaDevAttrMultiProcessorCount ? emu::sms_of_device(dev) : 0;
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t) { return "emu"; }
const char* cudaGetErrorName(cudaError_t) { return "emu"; }
// The split-K workspace: NaN-filled, so a partial sum the kernel failed to write poisons the result.
cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t) {
  float* f = static_cast<float*>(std::malloc(n + 16));
  for (size_t i = 0; i < n / sizeof(float); ++i) f[i] = std::numeric_limits<float>::quiet_NaN();
  *p = f;
  return cudaSuccess;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
  *pool = nullptr;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }
// Two resident blocks per SM, as the tensor-core kernels' registers and shared memory are set for.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, const void*, int, size_t) {
  *n = 2;
  return cudaSuccess;
}
}
