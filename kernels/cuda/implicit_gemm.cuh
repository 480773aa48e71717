// The tiled matrix-product core of the FP32 convolutions (conv3x3, conv1x1, upconv2x2, forward and
// both backward passes): "implicit GEMM" with fused multiply-adds (the Precision::FP32 path; the
// TF32/BF16 tensor-core core is tc_gemm.cuh). Each op is a product
//
//     out[m, n] = sum_{r < Kred} A[m, r] * B[r, n]        (m < M, n < Ncols)
//
// whose operands are never built: a Problem class gathers A and B tiles straight from the NCHW tensors
// (an im2col on the fly); its Out (gemm_out.cuh) scatters the result back. The core does the rest, as
// in a classic shared-memory SGEMM:
//
//   * a block computes a BM x BN tile of `out` with (BM/8)*(BN/8) threads, each thread an 8x8 register
//     block: rows {ty*4..ty*4+3} and {BM/2+ty*4..+3}, columns likewise with tx. The split halves make the
//     float4 reads of shared memory conflict-free (a quarter-warp reads 32 consecutive words);
//   * the reduction runs in steps of BK = 8: the A tile (BK x BM, the weights in the forward pass) and the
//     B tile (BK x BN) sit in shared memory, double-buffered: the next step's tile is loaded from global
//     memory into registers while the current one is multiplied, then stored to the other buffer, with a
//     single __syncthreads per step;
//   * split-K (gemm_plan.h chooses it): grid.z splits the reduction into contiguous ranges whose partial
//     tiles go to a workspace, summed in a fixed order by splitk_reduce (gemm_out.cuh). No atomics: every
//     result is bitwise reproducible;
//   * row sums (an Out with row_sums(): the weight gradients, whose A is dy): the first column of blocks
//     also sums its A tiles' rows as they sit in shared memory, two threads a row, and writes
//     sum_r A[m, r] (the bias gradient) beside the tile, so db costs no pass of its own over dy; column sums
//     (col_sums(): the up-convolution's weight gradient, whose B is dy) likewise from the first row of blocks'
//     B tiles, in groups of the Out's kColGroup columns.
//
// Every load is bounds-checked (zero outside M, Ncols, Kred), so no size needs to be a multiple of a tile.
// Indices that can pass 2^31 (pixels across a batch, element offsets) are 64-bit.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv_args.cuh"
#include "kernels/cuda/gemm_out.cuh"
#include "kernels/cuda/gemm_plan.h"

namespace unet::kernels::cuda::gemm {

constexpr int BK = 8;   // reduction step
constexpr int PAD = 4;  // shared-memory row padding (floats): keeps float4 alignment, spreads the banks

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
  template <int D>
  __device__ static int mf_mn(int tid) {
    return tid % D;
  }
  template <int D>
  __device__ static int mf_kk(int tid, int e) {
    return tid / D + e * (NT / D);
  }
};

// A Problem<T> (T = Tile<BM, BN>) derives from T and provides:
//   using Args = ...;                          derived from GemmDims (conv_args.cuh): the tensors and sizes
//   static constexpr bool A_KF, B_KF;          true: kk-fastest, false: mn-fastest load layout
//   __device__ Problem(const Args&, int tid, int64_t m0, int64_t n0);    per-thread setup
//   __device__ void load(int64_t k0, float (&ra)[A_PER], float (&rb)[B_PER]) const;
//                                              the thread's elements of the A and B tiles of step k0
//   using Out = ...;                           where out[m, n] lives (gemm_out.cuh), built by the launcher

template <class P>
__global__ void __launch_bounds__(P::NT, P::MIN_BLOCKS)
    implicit_gemm_kernel(typename P::Args args, typename P::Out out, float* ws, int64_t tiles_per_split) {
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

  // Row sums of A: thread tid adds row tid % BM over half the step's columns (NT = 2 BM), in a fixed order.
  static_assert(P::NT == 2 * BM, "row sums take two threads a row");
  float* const sums = blockIdx.x == 0 ? out.row_sums() : nullptr;  // uniform over the block
  const int srow = tid % BM, skk = (tid / BM) * (BK / 2);
  float rsum = 0.0f;
  // Column sums of B: thread tid adds column tid % BN over its share of the step's rows (NT / BN shares).
  constexpr int CSHARE = BK / (P::NT / BN);
  float* const csums = blockIdx.y == 0 ? out.col_sums() : nullptr;  // uniform over the block
  const int scol = tid % BN, ckk = (tid / BN) * CSHARE;
  float csum = 0.0f;

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
    if (sums) {
#pragma unroll
      for (int kk = 0; kk < BK / 2; ++kk) rsum += As[buf][skk + kk][srow];
    }
    if (csums) {
#pragma unroll
      for (int kk = 0; kk < CSHARE; ++kk) csum += Bs[buf][ckk + kk][scol];
    }
    if (more) stash(buf ^ 1);  // that buffer was last read before the previous barrier
    __syncthreads();
  }
  // As and Bs are free for the sums' epilogues: the loop ended with a barrier.
  if (sums) store_row_sums<BM>(&As[0][0][0], rsum, m0, args.M, args.Ncols, ws, sums);
  if (csums) store_col_sums<BN, P::NT, P::Out::kColGroup>(&Bs[0][0][0], csum, n0, args.M, args.Ncols, ws, csums);

  // Epilogue: the 8x8 block with its bias, through the Out's activation, to the output (one split), or as
  // this split's partial tile to the workspace ws[z][m][n] (several; splitk_reduce activates), plain stores.
  float* dst = ws ? ws + static_cast<int64_t>(blockIdx.z) * args.M * args.Ncols : out.ptr();
  int64_t row_off[8];
  float row_bias[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t m = m0 + P::row(ty, i);
    row_off[i] = m < args.M ? (ws ? m * args.Ncols : out.row(m)) : -1;
    row_bias[i] = (m < args.M && !ws) ? out.bias(m) : 0.0f;
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int64_t n = n0 + P::col(tx, j);
    if (n >= args.Ncols) continue;
    const int64_t cbase = ws ? n : out.col(n);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (row_off[i] < 0) continue;
      const float v = acc[i][j] + row_bias[i];
      dst[cbase + row_off[i]] = ws ? v : out.act(v);
    }
  }
}

// Launches Problem over its output: a 64x128 tile (128 threads) for M <= 64, else 128x128 (256 threads);
// the reduction split as gemm_plan.h models it for this device, the partial sums reduced in order.
template <template <class> class Problem>
void launch(cudaStream_t stream, const typename Problem<Tile<128, 128>>::Args& args,
            const typename Problem<Tile<128, 128>>::Out& out) {
  if (args.M <= 0 || args.Ncols <= 0) return;
  auto run = [&](auto tile_tag) {
    using P = Problem<decltype(tile_tag)>;
    // FP32 FMA: about 0.5 TFLOP/s per SM on an H100 (67 TFLOP/s over 132 SMs).
    const Machine machine{sm_count(), P::MIN_BLOCKS, 500.0, 3000.0};
    Shape dims;
    dims.M = args.M, dims.N = args.Ncols, dims.Kred = args.Kred, dims.BM = P::BM, dims.BN = P::BN, dims.BK = BK;
    const Plan plan = plan_splits(dims, machine, 16);
    const int64_t row_tiles = ceil_div(args.M, P::BM), col_tiles = ceil_div(args.Ncols, P::BN);
    if (row_tiles > 65535) throw std::runtime_error("implicit_gemm: too many output rows for one launch");
    const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles),
                    static_cast<unsigned>(plan.splits));
    if (plan.splits == 1) {
      implicit_gemm_kernel<P><<<grid, P::NT, 0, stream>>>(args, out, nullptr, plan.steps_per_split);
      UNET_CUDA_CHECK_LAUNCH();
      return;
    }
    Workspace ws(workspace_floats(plan.splits, args.M, args.Ncols, out), stream);
    implicit_gemm_kernel<P><<<grid, P::NT, 0, stream>>>(args, out, ws.get(), plan.steps_per_split);
    UNET_CUDA_CHECK_LAUNCH();
    splitk_reduce(stream, ws.get(), plan.splits, args.M, args.Ncols, out);
    ws.release();
  };
  if (args.M <= 64) run(Tile<64, 128>{});
  else run(Tile<128, 128>{});
}

}  // namespace unet::kernels::cuda::gemm
