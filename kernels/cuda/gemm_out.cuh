// The output side shared by the convolutions' matrix products (implicit_gemm.cuh: FP32 FMA;
// tc_gemm.cuh: tensor cores): where out[m, n] lives, its bias, and split-K without atomics.
//
// An Out is a plain struct built on the host and passed to the kernels by value:
//   float* ptr() const;  int64_t row(int64_t m) const;  int64_t col(int64_t n) const;
//       out[m, n] is ptr()[row(m) + col(n)]
//   float bias(int64_t m) const;   added once to every out[m, n] (0 without a bias)
//   float act(float v) const;      the epilogue's activation, applied to bias + sum as it is stored:
//                                  the identity, or max(v, 0) for an ImageOut with relu (the fused
//                                  ReLU of conv3x3_relu_forward)
//   float* row_sums() const;       where sum_r A[m, r] goes, or null: the weight gradients whose A is dy
//                                  (conv3x3, conv1x1) get their bias gradient db[k] from the A tiles
//                                  already in shared memory, with no pass of their own over dy
//   float* col_sums() const;       where the sums of B's columns go in groups of kColGroup,
//                                  sum_{c < G} sum_r B[r, G g + c] for group g, or null: the up-convolution's
//                                  weight gradient, whose B is dy with the four taps of a channel side by side
//
// Split-K: a product whose reduction is cut into S ranges writes each range's partial tile to
// ws[s][m][n] (a workspace of S * M * N floats, plain stores), then splitk_reduce sums the S partials
// in order s = 0, 1, ..., adds the bias and stores through the Out: the same bits on every run. The
// row sums' partials follow the tiles, at ws[S * M * N + s * M + m] (workspace_floats), reduced alike; so do
// the column groups' (ws[S * M * N + s * G + g], G = N / kColGroup groups).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace unet::kernels::cuda::gemm {

// out[m, p] of an [images, channels, plane] tensor: m a channel, p = n * plane + q a pixel of image n
// (every forward pass and data gradient); bias b[m], or none when b is null; relu: max(v, 0) is stored.
struct ImageOut {
  float* out = nullptr;
  const float* b = nullptr;
  int64_t plane = 1, image = 1;  // image = channels * plane
  bool relu = false;
  static ImageOut make(float* out, const float* b, int64_t plane, int64_t channels, bool relu = false) {
    return {out, b, plane, channels * plane, relu};
  }
  __device__ float* ptr() const { return out; }
  __device__ int64_t row(int64_t m) const { return m * plane; }
  __device__ int64_t col(int64_t p) const {
    const int64_t n = p / plane;
    return n * image + (p - n * plane);
  }
  __device__ float bias(int64_t m) const { return b ? __ldg(b + m) : 0.0f; }
  __device__ float act(float v) const { return relu && !(v > 0.0f) ? 0.0f : v; }  // NaN -> 0, as relu_forward
  __host__ __device__ float* row_sums() const { return nullptr; }
  __host__ __device__ float* col_sums() const { return nullptr; }
  static constexpr int kColGroup = 1;
};

// out[m, n] of a row-major [M, cols] matrix (every weight gradient); no bias. sums: sums[m] = sum_r A[m, r]
// (the bias gradient, when A is the output gradient), or null.
struct MatrixOut {
  float* out = nullptr;
  int64_t cols = 1;
  float* sums = nullptr;
  __device__ float* ptr() const { return out; }
  __device__ int64_t row(int64_t m) const { return m * cols; }
  __device__ int64_t col(int64_t n) const { return n; }
  __device__ float bias(int64_t) const { return 0.0f; }
  __device__ float act(float v) const { return v; }
  __host__ __device__ float* row_sums() const { return sums; }
  __host__ __device__ float* col_sums() const { return nullptr; }
  static constexpr int kColGroup = 1;
};

// The up-convolution's weight gradient: a MatrixOut (without row sums) whose columns are (k, tap), four taps a
// channel, and whose B is dy: db[k] = the sum of B's columns 4k .. 4k + 3 (all of dy's pixels of channel k),
// taken from the B tiles.
struct TapsMatrixOut : MatrixOut {
  float* db = nullptr;
  __host__ __device__ float* row_sums() const { return nullptr; }  // never both: one region after the tiles
  __host__ __device__ float* col_sums() const { return db; }
  static constexpr int kColGroup = 4;
};

// The up-convolution's output y[n, k, 2i+a, 2j+e] for m = k*4 + a*2 + e and the input pixel p = (n, i, j)
// (y has 4*H*W pixels a plane, 2W a row); bias b[k], or none when b is null.
struct UpconvOut {
  float* out = nullptr;
  const float* b = nullptr;
  int64_t HW = 1, KHW4 = 1;  // input pixels a plane; one output image (K * 4HW)
  int W = 1;
  static UpconvOut make(float* out, const float* b, int H, int W, int K) {
    const int64_t hw = static_cast<int64_t>(H) * W;
    return {out, b, hw, 4 * hw * K, W};
  }
  __device__ float* ptr() const { return out; }
  __device__ int64_t row(int64_t m) const {
    const int t = static_cast<int>(m & 3);
    return (m >> 2) * 4 * HW + (t >> 1) * 2 * W + (t & 1);
  }
  __device__ int64_t col(int64_t p) const {
    const int64_t n = p / HW, q = p - n * HW;
    const int64_t i = q / W, j = q - i * W;
    return n * KHW4 + 4 * i * W + 2 * j;
  }
  __device__ float bias(int64_t m) const { return b ? __ldg(b + (m >> 2)) : 0.0f; }
  __device__ float act(float v) const { return v; }
  __host__ __device__ float* row_sums() const { return nullptr; }
  __host__ __device__ float* col_sums() const { return nullptr; }
  static constexpr int kColGroup = 1;
};

// The sums an Out takes beside the product (row sums or column groups, never both) and how many there are.
template <class Out>
__host__ __device__ float* extra_sums(const Out& out) {
  return out.row_sums() ? out.row_sums() : out.col_sums();
}
template <class Out>
__host__ __device__ int64_t extra_count(const Out& out, int64_t M, int64_t N) {
  return out.row_sums() ? M : out.col_sums() ? N / Out::kColGroup : 0;
}

// out[m, n] = act(bias(m) + sum_{s < splits} ws[(s * M + m) * N + n]), s in increasing order; with row sums or
// column groups (E of them), sums[i] = sum_s ws[splits * M * N + s * E + i] alike (elements MN..MN+E-1 of the
// grid).
template <class Out>
__global__ void splitk_reduce_kernel(const float* ws, int64_t splits, int64_t M, int64_t N, Out out) {
  const int64_t MN = M * N, E = extra_count(out, M, N);
  float* const sums = extra_sums(out);
  for (int64_t e : grid_stride(MN + E)) {
    if (e >= MN) {
      const float* part = ws + splits * MN + (e - MN);
      float sum = 0.0f;
      for (int64_t s = 0; s < splits; ++s) sum += __ldg(part + s * E);
      sums[e - MN] = sum;
      continue;
    }
    const int64_t m = e / N, n = e - m * N;
    float sum = out.bias(m);
    for (int64_t s = 0; s < splits; ++s) sum += __ldg(ws + s * MN + e);
    out.ptr()[out.row(m) + out.col(n)] = out.act(sum);
  }
}

template <class Out>
void splitk_reduce(cudaStream_t stream, const float* ws, int64_t splits, int64_t M, int64_t N, const Out& out) {
  launch_over(M * N + extra_count(out, M, N), stream, splitk_reduce_kernel<Out>, ws, splits, M, N, out);
}

// The row sums' epilogue, shared by both cores: red is a free shared-memory buffer of 2 BM floats (after a
// barrier), rsum the thread's half of row tid % BM. The two halves are added in order and stored to sums (one
// split) or after the workspace's tiles (split blockIdx.z).
template <int BM>
__device__ void store_row_sums(float* red, float rsum, int64_t m0, int64_t M, int64_t N, float* ws, float* sums) {
  const int tid = static_cast<int>(threadIdx.x);
  red[tid] = rsum;
  __syncthreads();
  const int64_t m = m0 + tid;
  if (tid < BM && m < M) {
    const float v = red[tid] + red[tid + BM];
    if (ws) ws[gridDim.z * M * N + blockIdx.z * M + m] = v;
    else sums[m] = v;
  }
}

// The column groups' epilogue, shared by both cores: red is a free shared-memory buffer of NT floats (after a
// barrier), csum the thread's share of column tid % BN (NT / BN threads a column, reducing consecutive ranges).
// The BN / G groups of the block's columns (n0 is a multiple of BN, BN of G) are summed in a fixed order, column
// by column and share by share, and stored to sums (one split) or after the workspace's tiles (split
// blockIdx.z).
template <int BN, int NT, int G>
__device__ void store_col_sums(float* red, float csum, int64_t n0, int64_t M, int64_t N, float* ws, float* sums) {
  static_assert(NT % BN == 0 && BN % G == 0, "whole columns a thread share, whole groups a block");
  const int tid = static_cast<int>(threadIdx.x);
  red[tid] = csum;
  __syncthreads();
  const int64_t n = n0 + static_cast<int64_t>(tid) * G;
  if (tid < BN / G && n < N) {
    float v = 0.0f;
#pragma unroll
    for (int c = 0; c < G; ++c)
#pragma unroll
      for (int h = 0; h < NT / BN; ++h) v += red[tid * G + c + h * BN];
    const int64_t gi = n / G;
    if (ws) ws[gridDim.z * M * N + blockIdx.z * (N / G) + gi] = v;
    else sums[gi] = v;
  }
}

// Floats of a split-K workspace: the partial tiles, and the partial row sums or column groups of the Out.
template <class Out>
int64_t workspace_floats(int64_t splits, int64_t M, int64_t N, const Out& out) {
  return splits * (M * N + extra_count(out, M, N));
}

// A workspace of `floats` floats from the stream-ordered allocator: allocated in stream order on the
// product's stream and freed in stream order after the reduction, so it needs no host synchronisation,
// is reused from the pool call after call, and can be captured in a CUDA graph. The pool keeps what it
// holds across synchronisations (release threshold raised once, below).
class Workspace {
 public:
  Workspace(int64_t floats, cudaStream_t stream) : stream_(stream) {
    keep_pool_memory();
    UNET_CUDA_CHECK(
        cudaMallocAsync(reinterpret_cast<void**>(&p_), static_cast<size_t>(floats) * sizeof(float), stream));
  }
  ~Workspace() {
    if (p_) cudaFreeAsync(p_, stream_);  // only on an error path: release() frees and checks
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  float* get() const { return p_; }
  void release() {
    float* p = p_;
    p_ = nullptr;
    UNET_CUDA_CHECK(cudaFreeAsync(p, stream_));
  }

 private:
  static void keep_pool_memory() {
    static const bool done = [] {
      int dev = 0;
      cudaMemPool_t pool;
      UNET_CUDA_CHECK(cudaGetDevice(&dev));
      UNET_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
      uint64_t keep = uint64_t{1} << 30;  // up to 1 GiB of workspace stays in the pool between steps
      UNET_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
      return true;
    }();
    (void)done;
  }
  float* p_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace unet::kernels::cuda::gemm
