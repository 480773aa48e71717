// Elementwise helpers the engine needs (add, fill, check_finite) and the per-channel sum that every
// convolution's bias gradient uses. Grid-stride loops over 64-bit counts.
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

// y[i] += x[i]
__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  for (int64_t i : grid_stride(n)) y[i] += x[i];
}

// y[i] = value
__global__ void fill_kernel(float* __restrict__ y, float value, int64_t n) {
  for (int64_t i : grid_stride(n)) y[i] = value;
}

// *flag = 1 if any x[i] is NaN or +-inf (left alone otherwise). Each thread writes at most once; all
// writers store the same value, so the race is benign.
__global__ void check_finite_kernel(const float* __restrict__ x, int64_t n, int32_t* flag) {
  bool bad = false;
  for (int64_t i : grid_stride(n)) bad |= !isfinite(x[i]);
  if (bad) *flag = 1;
}

constexpr int kSumThreads = 512;

// db[k] = sum_{n < N, q < plane} dy[n, k, q] (where mask[n, k, q] > 0, with a mask): one block per channel, four
// independent partial sums per thread, then cub::BlockReduce. The order of the additions is fixed: the result is
// deterministic.
__device__ __forceinline__ float masked(const float* p, const float* m, int64_t q) {
  return m && !(m[q] > 0.0f) ? 0.0f : p[q];
}
__global__ void __launch_bounds__(kSumThreads)
    channel_sum_kernel(const float* __restrict__ dy, const float* __restrict__ mask, float* __restrict__ db, int N,
                       int K, int64_t plane) {
  using BlockReduce = cub::BlockReduce<float, kSumThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const int k = blockIdx.x;
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  for (int n = 0; n < N; ++n) {
    const float* p = dy + (static_cast<int64_t>(n) * K + k) * plane;
    const float* m = mask ? mask + (static_cast<int64_t>(n) * K + k) * plane : nullptr;
    int64_t q = threadIdx.x;
    for (; q + 3 * kSumThreads < plane; q += 4 * kSumThreads) {
      s0 += masked(p, m, q);
      s1 += masked(p, m, q + kSumThreads);
      s2 += masked(p, m, q + 2 * kSumThreads);
      s3 += masked(p, m, q + 3 * kSumThreads);
    }
    for (; q < plane; q += kSumThreads) s0 += masked(p, m, q);
  }
  const float total = BlockReduce(temp).Sum((s0 + s1) + (s2 + s3));
  if (threadIdx.x == 0) db[k] = total;
}

}  // namespace

void add(Stream s, float* y, const float* x, int64_t n) { launch_over(n, s, add_kernel, y, x, n); }

void fill(Stream s, float* y, float value, int64_t n) { launch_over(n, s, fill_kernel, y, value, n); }

void check_finite(Stream s, const float* x, int64_t n, int32_t* flag) {
  launch_over(n, s, check_finite_kernel, x, n, flag);
}

void channel_sum(cudaStream_t stream, const float* dy, float* db, int N, int K, int64_t plane, const float* mask) {
  if (K <= 0) return;
  channel_sum_kernel<<<K, kSumThreads, 0, stream>>>(dy, mask, db, N, K, plane);
  UNET_CUDA_CHECK_LAUNCH();
}

}  // namespace unet::kernels::cuda
