// The tiled matrix-product core behind every convolution here (conv3x3, conv1x1, upconv2x2, forward and
// both backward passes): "implicit GEMM". Each op is a product
//
//     out[m, n] = sum_{r < Kred} A[m, r] * B[r, n]        (m < M, n < Ncols)
//
// whose operands are never built: a Problem class gathers A and B tiles straight from the NCHW tensors
// (an im2col on the fly) and scatters the result back to NCHW. The core does the rest, as in a
// classic shared-memory SGEMM:
//
//   * a block computes a BM x BN tile of `out` with (BM/8)*(BN/8) threads, each thread an 8x8 register
//     block: rows {ty*4..ty*4+3} and {BM/2+ty*4..+3}, columns likewise with tx. The split halves make the
//     float4 reads of shared memory conflict-free (a quarter-warp reads 32 consecutive words);
//   * the reduction runs in steps of BK = 8: the A tile (BK x BM, the weights in the forward pass) and the
//     B tile (BK x BN) sit in shared memory, double-buffered: the next step's tile is loaded from global
//     memory into registers while the current one is multiplied, then stored to the other buffer, with a
//     single __syncthreads per step;
//   * split-K: when the output tiles alone cannot fill the GPU (deep layers, and the weight gradients whose
//     reduction runs over every pixel), grid.z splits the reduction into contiguous ranges. The launcher
//     then zeroes `out` first and each split adds its partial tile with atomicAdd (the bias, if any, is
//     added by split 0). Such results are correct to rounding but not bitwise reproducible from run to
//     run; with one split (the output tiles fill the GPU) the result is deterministic.
//
// Every load is bounds-checked (zero outside M, Ncols, Kred), so no size needs to be a multiple of a tile.
// Indices that can pass 2^31 (pixels across a batch, element offsets) are 64-bit.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

#include "kernels/cuda/common.cuh"

namespace unet::kernels::cuda::gemm {

constexpr int BK = 8;   // reduction step
constexpr int PAD = 4;  // shared-memory row padding (floats): keeps float4 alignment, spreads the banks

// The problem sizes every Problem's arguments carry.
struct Dims {
  int64_t M = 0, Ncols = 0, Kred = 0;
};

// Tile geometry and how a thread's share of a tile load maps to (kk, m-or-n) positions.
template <int BM_, int BN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int NT = (BM / 8) * (BN / 8);  // threads per block
  static constexpr int TX = BN / 8;               // threads along a row of the tile
  static constexpr int A_PER = BM * BK / NT;      // A elements each thread loads per step
  static constexpr int B_PER = BN * BK / NT;      // B elements each thread loads per step
  // Blocks per SM the register budget is set for: 2 x 256 threads (128 registers each), or 3 x 128 threads
  // (170 registers: the 64x128 tile loads twice as many B elements per thread and would spill at 128).
  static constexpr int MIN_BLOCKS = NT >= 256 ? 2 : 3;
  static_assert(NT % BK == 0, "kk-fastest loads need NT % BK == 0");
  static_assert(NT % BM == 0 && NT % BN == 0, "mn-fastest loads need NT % BM == 0 and NT % BN == 0");
  static_assert(A_PER >= 1 && B_PER >= 1, "tile too small for its threads");

  // Tile-local row / column of a thread's i-th (0..7) accumulator row / column.
  __device__ static int row(int ty, int i) { return i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + (i - 4); }
  __device__ static int col(int tx, int j) { return j < 4 ? tx * 4 + j : BN / 2 + tx * 4 + (j - 4); }

  // "kk-fastest" loads (consecutive threads walk the reduction index; for operands contiguous along it):
  // the thread's reduction offset is fixed, its e-th element sits at m-or-n = kf_mn(tid, e).
  __device__ static int kf_kk(int tid) { return tid % BK; }
  __device__ static int kf_mn(int tid, int e) { return tid / BK + e * (NT / BK); }
  // "mn-fastest" loads (consecutive threads walk m or n; for operands contiguous along it), D = BM or BN:
  // the thread's m-or-n is fixed, its e-th element sits at reduction offset mf_kk<D>(tid, e).
  template <int D> __device__ static int mf_mn(int tid) { return tid % D; }
  template <int D> __device__ static int mf_kk(int tid, int e) { return tid / D + e * (NT / D); }
};

// A Problem<T> (T = Tile<BM, BN>) derives from T and provides:
//   using Args = ...;                          derived from Dims; the tensors and sizes
//   static constexpr bool A_KF, B_KF;          true: kk-fastest, false: mn-fastest load layout
//   __device__ Problem(const Args&, int tid, int64_t m0, int64_t n0);    per-thread setup
//   __device__ void load(int64_t k0, float (&ra)[A_PER], float (&rb)[B_PER]) const;
//                                              the thread's elements of the A and B tiles of step k0
//   __device__ int64_t out_row(int64_t m) const, out_col(int64_t n) const;
//                                              out[m, n] lives at out_ptr()[out_row(m) + out_col(n)]
//   __device__ float bias(int64_t m) const;    added once to every out[m, n] (0 when none)
//   __device__ float* out_ptr() const;
// The output side usually comes from the mixins below (ImageOut or MatrixOut, NoBias or RowBias).

// out[m, p] of an [N, channels, plane] tensor: m a channel, p = n * plane + q a pixel of image n
// (every forward and data gradient).
struct ImageOut {
  float* out_;
  int64_t plane_, image_;  // image_ = channels * plane
  __device__ void set_out(float* out, int64_t plane, int64_t channels) {
    out_ = out;
    plane_ = plane;
    image_ = channels * plane;
  }
  __device__ int64_t out_row(int64_t m) const { return m * plane_; }
  __device__ int64_t out_col(int64_t p) const {
    const int64_t n = p / plane_;
    return n * image_ + (p - n * plane_);
  }
  __device__ float* out_ptr() const { return out_; }
};

// out[m, n] of a row-major [M, cols] matrix (every weight gradient).
struct MatrixOut {
  float* out_;
  int64_t cols_;
  __device__ void set_out(float* out, int64_t cols) {
    out_ = out;
    cols_ = cols;
  }
  __device__ int64_t out_row(int64_t m) const { return m * cols_; }
  __device__ int64_t out_col(int64_t n) const { return n; }
  __device__ float* out_ptr() const { return out_; }
};

struct NoBias {
  __device__ float bias(int64_t) const { return 0.0f; }
};

// b[m], one value per output row (channel); a null b adds nothing, as on the CPU.
struct RowBias {
  const float* bias_;
  __device__ float bias(int64_t m) const { return bias_ ? __ldg(bias_ + m) : 0.0f; }
};

template <class P>
__global__ void __launch_bounds__(P::NT, P::MIN_BLOCKS) implicit_gemm_kernel(typename P::Args args, int64_t tiles_per_split) {
  constexpr int BM = P::BM, BN = P::BN;
  __shared__ __align__(16) float As[2][BK][BM + PAD];
  __shared__ __align__(16) float Bs[2][BK][BN + PAD];

  const int tid = threadIdx.x;
  const int tx = tid % P::TX, ty = tid / P::TX;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const P prob(args, tid, m0, n0);

  const int64_t ktiles = ceil_div(args.Kred, BK) > 0 ? ceil_div(args.Kred, BK) : 1;
  const int64_t kt_begin = static_cast<int64_t>(blockIdx.z) * tiles_per_split;
  int64_t kt_end = kt_begin + tiles_per_split;
  if (kt_end > ktiles) kt_end = ktiles;
  if (kt_begin >= kt_end) return;  // uniform over the block (cannot happen with the launcher's split)

  float ra[P::A_PER], rb[P::B_PER];
  auto stash = [&](int buf) {
#pragma unroll
    for (int e = 0; e < P::A_PER; ++e) {
      if constexpr (P::A_KF) As[buf][P::kf_kk(tid)][P::kf_mn(tid, e)] = ra[e];
      else As[buf][P::template mf_kk<BM>(tid, e)][P::template mf_mn<BM>(tid)] = ra[e];
    }
#pragma unroll
    for (int e = 0; e < P::B_PER; ++e) {
      if constexpr (P::B_KF) Bs[buf][P::kf_kk(tid)][P::kf_mn(tid, e)] = rb[e];
      else Bs[buf][P::template mf_kk<BN>(tid, e)][P::template mf_mn<BN>(tid)] = rb[e];
    }
  };

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  prob.load(kt_begin * BK, ra, rb);
  stash(0);
  __syncthreads();

  for (int64_t kt = kt_begin; kt < kt_end; ++kt) {
    const int buf = static_cast<int>((kt - kt_begin) & 1);
    const bool more = kt + 1 < kt_end;
    if (more) prob.load((kt + 1) * BK, ra, rb);  // in flight while this step multiplies
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][BM / 2 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][BN / 2 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    if (more) stash(buf ^ 1);  // that buffer was last read before the previous barrier
    __syncthreads();
  }

  // Epilogue: scatter the 8x8 block to NCHW (plain stores with one split, atomicAdd into the zeroed output
  // with several; split 0 adds the bias).
  const bool split = gridDim.z > 1;
  const bool with_bias = blockIdx.z == 0;
  float* out = prob.out_ptr();
  int64_t row_off[8];
  float row_bias[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t m = m0 + P::row(ty, i);
    row_off[i] = m < args.M ? prob.out_row(m) : -1;
    row_bias[i] = (m < args.M && with_bias) ? prob.bias(m) : 0.0f;
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int64_t n = n0 + P::col(tx, j);
    if (n >= args.Ncols) continue;
    const int64_t cbase = prob.out_col(n);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (row_off[i] < 0) continue;
      const float v = acc[i][j] + row_bias[i];
      if (split) atomicAdd(out + cbase + row_off[i], v);
      else out[cbase + row_off[i]] = v;
    }
  }
}

// Launches Problem over its output; `out_count` floats at the problem's output are zeroed first when the
// reduction is split. Chooses a 64x128 tile (128 threads) for M <= 64, else 128x128 (256 threads).
template <template <class> class Problem>
void launch(cudaStream_t stream, const typename Problem<Tile<128, 128>>::Args& args, float* out,
            int64_t out_count) {
  if (args.M <= 0 || args.Ncols <= 0) return;
  auto run = [&](auto tile_tag) {
    using P = Problem<decltype(tile_tag)>;
    const int64_t row_tiles = ceil_div(args.M, P::BM), col_tiles = ceil_div(args.Ncols, P::BN);
    const int64_t ktiles = args.Kred > 0 ? ceil_div(args.Kred, BK) : 1;
    const int64_t blocks = row_tiles * col_tiles;
    // Resident blocks the GPU holds at once: fill it at least once.
    const int64_t target = static_cast<int64_t>(sm_count()) * P::MIN_BLOCKS;
    int64_t splits = 1;
    if (blocks < target) {
      splits = ceil_div(target, blocks);
      const int64_t max_by_work = ktiles / 16;  // keep at least 16 steps (128 of the reduction) per split
      if (splits > max_by_work) splits = max_by_work;
      if (splits > 4096) splits = 4096;
      if (splits < 1) splits = 1;
    }
    const int64_t per_split = ceil_div(ktiles, splits);
    splits = ceil_div(ktiles, per_split);  // no empty split
    if (row_tiles > 65535) throw std::runtime_error("implicit_gemm: too many output rows for one launch");
    if (splits > 1) UNET_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(out_count) * sizeof(float), stream));
    dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles), static_cast<unsigned>(splits));
    implicit_gemm_kernel<P><<<grid, P::NT, 0, stream>>>(args, per_split);
    UNET_CUDA_CHECK_LAUNCH();
  };
  if (args.M <= 64) run(Tile<64, 128>{});
  else run(Tile<128, 128>{});
}

}  // namespace unet::kernels::cuda::gemm
