// Small helpers shared by the CUDA kernels: stream cast, launch sizes, the device's SM count.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/kernels.h"

namespace unet::kernels::cuda {

inline cudaStream_t as_stream(Stream s) { return static_cast<cudaStream_t>(s); }

// Multiprocessors of the current device, read once per device.
inline int sm_count() {
  constexpr int kDevices = 16;
  static std::atomic<int> counts[kDevices] = {};
  int dev = 0;
  UNET_CUDA_CHECK(cudaGetDevice(&dev));
  const bool cached = dev >= 0 && dev < kDevices;
  int v = cached ? counts[dev].load(std::memory_order_relaxed) : 0;
  if (v > 0) return v;
  UNET_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
  if (v < 1) v = 1;
  if (cached) counts[dev].store(v, std::memory_order_relaxed);
  return v;
}

constexpr int kThreads = 256;  // block size of the elementwise kernels

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than the work needs.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(sm_count()) * 32;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The indices of a grid-stride loop: `for (int64_t i : grid_stride(n))` visits this thread's share of
// [0, n): consecutive threads take consecutive i (coalesced), each thread steps by the grid's size.
struct GridStride {
  struct Iterator {
    int64_t i, step;
    __device__ int64_t operator*() const { return i; }
    __device__ Iterator& operator++() {
      i += step;
      return *this;
    }
    __device__ bool operator!=(const Iterator& end) const { return i < end.i; }
  };
  int64_t first, step, n;
  __device__ Iterator begin() const { return {first, step}; }
  __device__ Iterator end() const { return {n, 0}; }
};
__device__ inline GridStride grid_stride(int64_t n) {
  return {blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x, static_cast<int64_t>(gridDim.x) * blockDim.x, n};
}

// The launch every elementwise kernel shares: nothing for n <= 0; otherwise grid_for(n) blocks of
// kThreads, the launch on the stream, and the launch check. The kernel loops over grid_stride(n).
template <typename... Params, typename... Args>
void launch_over(int64_t n, Stream s, void (*kernel)(Params...), Args... args) {
  if (n <= 0) return;
  kernel<<<grid_for(n), kThreads, 0, as_stream(s)>>>(args...);
  UNET_CUDA_CHECK_LAUNCH();
}

}  // namespace unet::kernels::cuda
