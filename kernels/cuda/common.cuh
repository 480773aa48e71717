// Small helpers shared by the CUDA kernels: stream cast, launch sizes, the device's SM count.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.cuh"
#include "kernels/kernels.h"

namespace unet::kernels::cuda {

inline cudaStream_t as_stream(Stream s) { return static_cast<cudaStream_t>(s); }

// Multiprocessors of the current device, read once (the engine drives a single device).
inline int sm_count() {
  static const int count = [] {
    int dev = 0, v = 0;
    UNET_CUDA_CHECK(cudaGetDevice(&dev));
    UNET_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v > 0 ? v : 1;
  }();
  return count;
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

// db[k] = sum_{n, q < plane} dy[n, k, q]: the bias gradient of every convolution here (elementwise.cu).
void channel_sum(cudaStream_t stream, const float* dy, float* db, int N, int K, int64_t plane);

}  // namespace unet::kernels::cuda
