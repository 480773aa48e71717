// The tensor-core core of the TF32 and BF16 convolutions: the implicit GEMM of implicit_gemm.cuh,
//
//     out[m, n] = sum_{r < Kred} A[m, r] * B[r, n],
//
// with the products on tensor cores (mma.sync, ptx.cuh) and the operand tiles brought into shared
// memory by asynchronous copies (cp.async) several steps ahead. A Problem gathers A and B straight
// from the NCHW tensors, as in the FP32 core; its Out (gemm_out.cuh) scatters the result.
//
//   * Block tile BM x BN = 128 x 128 (8 warps) or 64 x 128 (M <= 64: 4 warps); each warp owns a
//     64 x 32 piece: 4 x 4 mma tiles of 16 x 8, 64 FP32 accumulators a thread.
//   * Reduction stages of BK = 16 (two TF32 m16n8k8 steps, one BF16 m16n8k16 step), STAGES = 4 of
//     them in flight in shared memory: while the warps multiply stage s, the copies of stages s+1..s+3
//     are landing. One __syncthreads per stage: after it, every thread has finished the stage that the
//     next copies overwrite.
//   * Copies are 4-byte cp.async with zero fill: the gathered activations are contiguous along pixels
//     but shifted by a tap (no 16-byte alignment), and a zero-filled copy makes every edge (M, N and
//     Kred not multiples of a tile, dy outside its plane) a predicate instead of a branch.
//   * A tile is stored as the operand runs in memory: "K-major" [mn][BK + 8] when the reduction index
//     is contiguous (weights row by row, the pixels of a weight gradient), "MN-major" [BK][mn + 4] when
//     m or n is (pixels). The paddings make the fragment loads of a warp conflict-free: K-major rows
//     of 24 floats put the 8-byte loads of lanes (g, t) on banks 24g + 2t (all distinct per half warp),
//     MN-major rows of mn + 4 put the 4-byte loads on banks 8t + g.
//   * Operands are converted while fragments are loaded from shared memory (the tiles hold FP32):
//     TF32 by cvt.rna (ties away), BF16 by cvt.rn (ties to even), exactly as the CPU reference
//     rounds them (kernels/precision.h). Accumulation is FP32 in the tensor cores.
//   * Within a TF32 step, the mma's k slots t and t + 4 of lane (g, t) are given the stage's columns 2t
//     and 2t + 1 (any pairing of A's and B's k is the same sum as long as both use it), so a K-major
//     fragment is one 8-byte load.
//   * Split-K as in the FP32 core (gemm_plan.h chooses it, with this kernel's occupancy): partial tiles
//     to a workspace, summed in order by splitk_reduce. No atomics.
//   * Row sums (the weight gradients' bias gradient) as in the FP32 core: the first column of blocks adds
//     its A tiles' rows from shared memory, in FP32 before any rounding, two threads a row.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv_args.cuh"
#include "kernels/cuda/gemm_out.cuh"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/ptx.cuh"
#include "kernels/kernels.h"

namespace unet::kernels::cuda::tc {

constexpr int BK = 16;      // reduction elements per stage
constexpr int STAGES = 4;   // stages in shared memory
constexpr int SK = BK + 8;  // row stride of a K-major tile (floats)
constexpr int PAD = 4;      // extra floats per row of an MN-major tile

// Tile geometry, shared-memory layout and the thread -> element maps of the copies.
template <int BM_, int BN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int WM = 64, WN = 32;  // a warp's piece
  static constexpr int WARPS_N = BN / WN, WARPS_M = BM / WM;
  static constexpr int NT = WARPS_M * WARPS_N * 32;
  static constexpr int MI = WM / 16, NI = WN / 8;                   // mma tiles per warp
  static constexpr int A_PER = BM * BK / NT, B_PER = BN * BK / NT;  // 4-byte copies per thread and stage
  static_assert(BM % WM == 0 && BN % WN == 0, "warps must tile the block");
  static_assert(NT % BK == 0 && NT % BM == 0 && NT % BN == 0, "copy maps need NT divisible by BK, BM, BN");

  // Floats of one operand tile (D = BM or BN rows of m or n), and where element (mn, kk) sits in it.
  template <bool KMAJOR, int D>
  static constexpr int floats() {
    return KMAJOR ? D * SK : BK * (D + PAD);
  }
  template <bool KMAJOR, int D>
  __device__ static int at(int mn, int kk) {
    return KMAJOR ? mn * SK + kk : kk * (D + PAD) + mn;
  }

  // K-major copies: consecutive threads walk the reduction (a row's 16 floats are 64 contiguous bytes);
  // the thread's reduction offset is fixed, its e-th element is in row kf_mn(tid, e).
  __device__ static int kf_kk(int tid) { return tid % BK; }
  __device__ static int kf_mn(int tid, int e) { return tid / BK + e * (NT / BK); }
  // MN-major copies (D = BM or BN): consecutive threads walk m or n; the thread's m-or-n is fixed, its
  // e-th element is at reduction offset mf_kk<D>(tid, e).
  template <int D>
  __device__ static int mf_mn(int tid) {
    return tid % D;
  }
  template <int D>
  __device__ static int mf_kk(int tid, int e) {
    return tid / D + e * (NT / D);
  }
  // Where a thread's first element of each map lands in its tile, and the distance between its elements.
  template <int D>
  __device__ static int kf_dst(int tid) {
    return at<true, D>(kf_mn(tid, 0), kf_kk(tid));
  }
  static constexpr int KF_STEP = (NT / BK) * SK;
  template <int D>
  __device__ static int mf_dst(int tid) {
    return at<false, D>(mf_mn<D>(tid), mf_kk<D>(tid, 0));
  }
  template <int D>
  static constexpr int mf_step() {
    return (NT / D) * (D + PAD);
  }
  // K-major copies of 16 bytes (4 consecutive k): 4 threads a row; element e of the thread is row
  // kv_mn(tid, e), reduction offset kv_kk(tid); D * BK / (4 * NT) of them.
  __device__ static int kv_kk(int tid) { return (tid % 4) * 4; }
  __device__ static int kv_mn(int tid, int e) { return tid / 4 + e * (NT / 4); }
  static constexpr int MIN_BLOCKS = NT >= 256 ? 2 : 3;  // resident blocks per SM the registers are set for
};

// A Problem<T> (T = Tile<BM, BN>) derives from T and provides
//   using Args = ...; using Out = ...;            as in implicit_gemm.cuh
//   static constexpr bool A_KMAJOR, B_KMAJOR;     the layout of its A and B tiles in shared memory
//   __device__ Problem(const Args&, int tid, int64_t m0, int64_t n0);
//   __device__ void load(int64_t k0, float* As, float* Bs) const;
//       issues this thread's cp.async copies of the A and B tiles of reduction offset k0 into one
//       stage (zero-filled outside the product), through T::at<> and the copy maps above.

template <class P>
constexpr int stage_floats() {
  return P::template floats<P::A_KMAJOR, P::BM>() + P::template floats<P::B_KMAJOR, P::BN>();
}
template <class P>
constexpr int smem_bytes() {
  return STAGES * stage_floats<P>() * static_cast<int>(sizeof(float));
}

// The fragments of one warp for one mma step starting at column ks of a stage, converted to the mma's
// operand format. Lane (g, t) = (lane / 4, lane % 4) holds, by the PTX ISA's tables:
//   TF32 m16n8k8:  A a0 (g, t) a1 (g+8, t) a2 (g, t+4) a3 (g+8, t+4);  B b0 (t, g) b1 (t+4, g)
//   BF16 m16n8k16: A a0 (g, 2t..2t+1) a1 (g+8, 2t..) a2 (g, 2t+8..) a3 (g+8, 2t+8..);
//                  B b0 (2t..2t+1, g) b1 (2t+8..2t+9, g)                (rows of A = m, of B = k)
// with the TF32 k slots t, t+4 mapped to stage columns ks+2t, ks+2t+1 (see the header).
template <bool KMAJOR, int D, Precision PREC>
struct Frag;

template <bool KMAJOR, int D>
struct Frag<KMAJOR, D, Precision::TF32> {
  __device__ static float get(const float* s, int mn, int kk) { return s[KMAJOR ? mn * SK + kk : kk * (D + PAD) + mn]; }
  __device__ static void a(const float* s, int r0, int ks, int t, uint32_t (&a)[4]) {
    const int k = ks + 2 * t;
    if constexpr (KMAJOR) {
      const float2 lo = *reinterpret_cast<const float2*>(s + r0 * SK + k);
      const float2 hi = *reinterpret_cast<const float2*>(s + (r0 + 8) * SK + k);
      a[0] = ptx::to_tf32(lo.x), a[1] = ptx::to_tf32(hi.x), a[2] = ptx::to_tf32(lo.y), a[3] = ptx::to_tf32(hi.y);
    } else {
      a[0] = ptx::to_tf32(get(s, r0, k)), a[1] = ptx::to_tf32(get(s, r0 + 8, k));
      a[2] = ptx::to_tf32(get(s, r0, k + 1)), a[3] = ptx::to_tf32(get(s, r0 + 8, k + 1));
    }
  }
  __device__ static void b(const float* s, int c, int ks, int t, uint32_t (&b)[2]) {
    const int k = ks + 2 * t;
    if constexpr (KMAJOR) {
      const float2 v = *reinterpret_cast<const float2*>(s + c * SK + k);
      b[0] = ptx::to_tf32(v.x), b[1] = ptx::to_tf32(v.y);
    } else {
      b[0] = ptx::to_tf32(get(s, c, k)), b[1] = ptx::to_tf32(get(s, c, k + 1));
    }
  }
};

template <bool KMAJOR, int D>
struct Frag<KMAJOR, D, Precision::BF16> {
  // BF16 pair (k, k + 1) of row-or-column mn, packed lo | hi << 16.
  __device__ static uint32_t pair(const float* s, int mn, int k) {
    if constexpr (KMAJOR) {
      const float2 v = *reinterpret_cast<const float2*>(s + mn * SK + k);
      return ptx::to_bf16x2(v.x, v.y);
    } else {
      return ptx::to_bf16x2(s[k * (D + PAD) + mn], s[(k + 1) * (D + PAD) + mn]);
    }
  }
  __device__ static void a(const float* s, int r0, int ks, int t, uint32_t (&a)[4]) {
    const int k = ks + 2 * t;
    a[0] = pair(s, r0, k), a[1] = pair(s, r0 + 8, k), a[2] = pair(s, r0, k + 8), a[3] = pair(s, r0 + 8, k + 8);
  }
  __device__ static void b(const float* s, int c, int ks, int t, uint32_t (&b)[2]) {
    const int k = ks + 2 * t;
    b[0] = pair(s, c, k), b[1] = pair(s, c, k + 8);
  }
};

template <Precision PREC>
__device__ inline void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (PREC == Precision::TF32) ptx::mma_tf32(d, a, b);
  else ptx::mma_bf16(d, a, b);
}

template <class P, Precision PREC>
__global__ void __launch_bounds__(P::NT, P::MIN_BLOCKS)
    tc_gemm_kernel(typename P::Args args, typename P::Out out, float* ws, int64_t steps_per_split) {
  constexpr int A_FLOATS = P::template floats<P::A_KMAJOR, P::BM>();
  constexpr int KSTEP = PREC == Precision::TF32 ? 8 : 16;
  using FragA = Frag<P::A_KMAJOR, P::BM, PREC>;
  using FragB = Frag<P::B_KMAJOR, P::BN, PREC>;
  float* smem = ptx::dynamic_smem();

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int wm0 = (warp / P::WARPS_N) * P::WM, wn0 = (warp % P::WARPS_N) * P::WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * P::BM, n0 = static_cast<int64_t>(blockIdx.x) * P::BN;
  const P prob(args, tid, m0, n0);

  const int64_t steps = args.Kred > 0 ? ceil_div(args.Kred, BK) : 1;
  const int64_t first = static_cast<int64_t>(blockIdx.z) * steps_per_split;
  const int64_t count = (first + steps_per_split < steps ? first + steps_per_split : steps) - first;
  auto stage_a = [&](int64_t i) { return smem + (i % STAGES) * stage_floats<P>(); };
  auto stage_b = [&](int64_t i) { return stage_a(i) + A_FLOATS; };

  float acc[P::MI][P::NI][4];
#pragma unroll
  for (int i = 0; i < P::MI; ++i)
#pragma unroll
    for (int j = 0; j < P::NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  // Row sums of A: thread tid adds row tid % BM over half of each stage's columns (NT = 2 BM), in order.
  static_assert(P::NT == 2 * P::BM && BK == 16, "row sums take two threads a row, 8 columns each");
  float* const sums = blockIdx.x == 0 ? out.row_sums() : nullptr;  // uniform over the block
  const int srow = tid % P::BM, skk = (tid / P::BM) * (BK / 2);
  float rsum = 0.0f;
  // Column sums of B (col_sums(): the up-convolution's weight gradient): thread tid adds column tid % BN over
  // its share of each stage's rows (NT / BN shares of 8 or 16), in order.
  constexpr int CSHARE = BK / (P::NT / P::BN);
  static_assert(CSHARE % 4 == 0, "column shares of whole float4s");
  float* const csums = blockIdx.y == 0 ? out.col_sums() : nullptr;  // uniform over the block
  const int scol = tid % P::BN, ckk = (tid / P::BN) * CSHARE;
  float csum = 0.0f;

  // Prologue: the first STAGES - 1 stages in flight (a group per stage, empty past the range, so that
  // "all but the newest STAGES - 2 groups" is always the stage about to be used).
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < count) prob.load((first + s) * BK, stage_a(s), stage_b(s));
    ptx::cp_async_commit();
  }
  for (int64_t i = 0; i < count; ++i) {
    ptx::cp_async_wait<STAGES - 2>();     // this thread's copies of stage i have landed ...
    __syncthreads();                      // ... and everyone's; stage i - 1 is no longer read
    const int64_t next = i + STAGES - 1;  // into the stage read at i - 1
    if (next < count) prob.load((first + next) * BK, stage_a(next), stage_b(next));
    ptx::cp_async_commit();
    const float* As = stage_a(i);
    const float* Bs = stage_b(i);
#pragma unroll
    for (int ks = 0; ks < BK; ks += KSTEP) {
      uint32_t a[P::MI][4], b[P::NI][2];
#pragma unroll
      for (int mi = 0; mi < P::MI; ++mi) FragA::a(As, wm0 + mi * 16 + g, ks, t, a[mi]);
#pragma unroll
      for (int ni = 0; ni < P::NI; ++ni) FragB::b(Bs, wn0 + ni * 8 + g, ks, t, b[ni]);
#pragma unroll
      for (int mi = 0; mi < P::MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < P::NI; ++ni) mma<PREC>(acc[mi][ni], a[mi], b[ni]);
    }
    if (sums) {
      if constexpr (P::A_KMAJOR) {  // a row's 8 floats as two float4 (rows of SK = 24 floats: 16-byte aligned)
        const float4 u = *reinterpret_cast<const float4*>(As + srow * SK + skk);
        const float4 v = *reinterpret_cast<const float4*>(As + srow * SK + skk + 4);
        const float r[8] = {u.x, u.y, u.z, u.w, v.x, v.y, v.z, v.w};
#pragma unroll
        for (int kk = 0; kk < 8; ++kk) rsum += r[kk];
      } else {
#pragma unroll
        for (int kk = 0; kk < BK / 2; ++kk) rsum += As[P::template at<false, P::BM>(srow, skk + kk)];
      }
    }
    if (csums) {
      if constexpr (P::B_KMAJOR) {  // the share as float4s (columns of SK = 24 floats: 16-byte aligned)
#pragma unroll
        for (int q = 0; q < CSHARE; q += 4) {
          const float4 u = *reinterpret_cast<const float4*>(Bs + scol * SK + ckk + q);
          csum += u.x, csum += u.y, csum += u.z, csum += u.w;
        }
      } else {
#pragma unroll
        for (int kk = 0; kk < CSHARE; ++kk) csum += Bs[P::template at<false, P::BN>(scol, ckk + kk)];
      }
    }
  }
  ptx::cp_async_wait<0>();  // nothing left in flight when the block ends
  if (sums) {
    __syncthreads();  // every warp is done with the stages: smem is free for the row sums' epilogue
    gemm::store_row_sums<P::BM>(smem, rsum, m0, args.M, args.Ncols, ws, sums);
  }
  if (csums) {
    __syncthreads();
    gemm::store_col_sums<P::BN, P::NT, P::Out::kColGroup>(smem + P::NT, csum, n0, args.M, args.Ncols, ws, csums);
  }

  // Epilogue: accumulator e of tile (mi, ni) is out[wm0 + mi*16 + g + 8*(e/2), wn0 + ni*8 + 2t + e%2];
  // with its bias, through the Out's activation, to the output (one split) or as this split's partial tile to
  // ws[z][m][n] (splitk_reduce activates).
  float* dst = ws ? ws + static_cast<int64_t>(blockIdx.z) * args.M * args.Ncols : out.ptr();
  int64_t coff[P::NI][2];  // the columns' offsets, once (an image column costs a division); -1: past the end
#pragma unroll
  for (int ni = 0; ni < P::NI; ++ni)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int64_t n = n0 + wn0 + ni * 8 + 2 * t + j;
      coff[ni][j] = n < args.Ncols ? (ws ? n : out.col(n)) : -1;
    }
#pragma unroll
  for (int mi = 0; mi < P::MI; ++mi)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm0 + mi * 16 + g + 8 * h;
      if (m >= args.M) continue;
      const int64_t roff = ws ? m * args.Ncols : out.row(m);
      const float bias = ws ? 0.0f : out.bias(m);
#pragma unroll
      for (int ni = 0; ni < P::NI; ++ni)
#pragma unroll
        for (int j = 0; j < 2; ++j)
          if (coff[ni][j] >= 0) {
            const float v = acc[mi][ni][2 * h + j] + bias;
            dst[roff + coff[ni][j]] = ws ? v : out.act(v);
          }
    }
}

// The kernel's shared memory (set once per instantiation: more than the default 48 KB) and how many of
// its blocks an SM holds, for the plan.
template <class P, Precision PREC>
int prepared_blocks_per_sm() {
  static const int blocks = [] {
    const void* kernel = reinterpret_cast<const void*>(&tc_gemm_kernel<P, PREC>);
    UNET_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<P>()));
    int n = 0;
    UNET_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, P::NT, smem_bytes<P>()));
    return n > 0 ? n : 1;
  }();
  return blocks;
}

template <class P, Precision PREC>
void run(cudaStream_t stream, const typename P::Args& args, const typename P::Out& out) {
  // Nominal dense rates of an H100 SM: TF32 495 and BF16 989 TFLOP/s over 132 SMs (for ranking plans).
  const gemm::Machine machine{sm_count(), prepared_blocks_per_sm<P, PREC>(), PREC == Precision::BF16 ? 7500.0 : 3750.0,
                              3000.0};
  gemm::Shape dims;
  dims.M = args.M, dims.N = args.Ncols, dims.Kred = args.Kred, dims.BM = P::BM, dims.BN = P::BN, dims.BK = BK;
  const gemm::Plan plan = gemm::plan_splits(dims, machine);
  const int64_t row_tiles = ceil_div(args.M, P::BM), col_tiles = ceil_div(args.Ncols, P::BN);
  if (row_tiles > 65535) throw std::runtime_error("tc_gemm: too many output rows for one launch");
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles),
                  static_cast<unsigned>(plan.splits));
  if (plan.splits == 1) {
    tc_gemm_kernel<P, PREC><<<grid, P::NT, smem_bytes<P>(), stream>>>(args, out, nullptr, plan.steps_per_split);
    UNET_CUDA_CHECK_LAUNCH();
    return;
  }
  gemm::Workspace ws(gemm::workspace_floats(plan.splits, args.M, args.Ncols, out), stream);
  tc_gemm_kernel<P, PREC><<<grid, P::NT, smem_bytes<P>(), stream>>>(args, out, ws.get(), plan.steps_per_split);
  UNET_CUDA_CHECK_LAUNCH();
  gemm::splitk_reduce(stream, ws.get(), plan.splits, args.M, args.Ncols, out);
  ws.release();
}

// Launches Problem in TF32 or BF16: a 64 x 128 block tile for M <= 64, else 128 x 128.
template <template <class> class Problem>
void launch(cudaStream_t stream, Precision prec, const typename Problem<Tile<128, 128>>::Args& args,
            const typename Problem<Tile<128, 128>>::Out& out) {
  if (args.M <= 0 || args.Ncols <= 0) return;
  if (prec != Precision::TF32 && prec != Precision::BF16) throw std::runtime_error("tc_gemm: TF32 or BF16 only");
  const bool small = args.M <= 64;
  if (prec == Precision::TF32) {
    if (small) run<Problem<Tile<64, 128>>, Precision::TF32>(stream, args, out);
    else run<Problem<Tile<128, 128>>, Precision::TF32>(stream, args, out);
  } else {
    if (small) run<Problem<Tile<64, 128>>, Precision::BF16>(stream, args, out);
    else run<Problem<Tile<128, 128>>, Precision::BF16>(stream, args, out);
  }
}

}  // namespace unet::kernels::cuda::tc
