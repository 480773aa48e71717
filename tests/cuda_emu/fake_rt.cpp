// The few CUDA runtime calls the kernels make, for the host emulation.
#include "emu.h"
#include <cstdint>
#include <cstdio>
extern "C" {
cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) { *v = emu::fake_sms; return cudaSuccess; }
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { std::memset(p, v, n); return cudaSuccess; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t) { return "emu"; }
const char* cudaGetErrorName(cudaError_t) { return "emu"; }
}
