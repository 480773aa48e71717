// The convolutions as blocked matrix products (internal to kernels/cpu).
//
// gemm_nn, forward passes and data gradients:
//   y_n[m, p] = bias[m] + sum_r A(m, r) * B_n(r, p)       m < M, p < P = Ho * Wo, n < N
// with B the convolution's input seen as an im2col matrix that is never built whole: blocks of
// kc x nc of it are packed as they are needed, and a block of pixels runs across output rows, so
// an 8 x 32 micro-tile is full whatever the row length (the deep layers' rows are 28-66 px). The
// reduction over r is split into blocks of kc whose partial sums continue in y (see tile_nn_8x32),
// so every y element is the same chain of fused multiply-adds in r order for any blocking and any
// thread count: the result is bit-identical whatever the blocking and however many threads run it.
//
// gemm_nt, weight gradients:
//   out[i * ldo + j] = sum_n sum_{x < L} A_n,i[x] * B_n,j[x]        i < M, j < J
// as 3 x 9 tiles of dot products over long contiguous pixel runs, in fixed chunks of pixels
// (float within a chunk, double across chunks and images). A 3x3 weight gradient reads its dy rows
// widened to the input's width (two zero columns per row), so that the nine taps of one input
// channel are the same contiguous run shifted by di * W + dj: no row is short.
#pragma once
#include <cstdint>

namespace unet::kernels::cpu::detail {

// A(m, r) = a[m * m_stride + (r / taps) * k_stride + (r % taps) * t_stride]
struct OperandA {
  const float* a;
  int64_t m_stride, k_stride, t_stride;
  int taps;
};

// An input of a 3x3 convolution whose first Cs channels are the centre crop of a second tensor, read in place:
// the U-Net's skip connection, so crop_concat is never materialised. Channel c < Cs of image n is the window
// of skip[n, c] (Hs x Ws) at (oy, ox), rows Ws floats apart; the other channels are those of the operand's
// x, less Cs (x holds C - Cs channels). Cs = 0: no second input.
struct SkipView {
  const float* skip = nullptr;
  int Cs = 0, Hs = 0, Ws = 0, oy = 0, ox = 0;
  // The window's first pixel in channel c < Cs of image n.
  const float* plane(int64_t n, int c) const {
    return skip + (n * Cs + c) * static_cast<int64_t>(Hs) * Ws + static_cast<int64_t>(oy) * Ws + ox;
  }
};

// The im2col view of an input x[N, C, H, W] (image n at x + n * n_stride), r = c * taps + t,
// p = i * Wo + j:
//   taps == 9: B_n(r, p) = x[n, c, i + di - pad, j + dj - pad], zero outside the H x W plane, with
//              (di, dj) = (t / 3, t % 3), or (2 - t / 3, 2 - t % 3) when flip;
//   taps == 1: B_n(r, p) = x[n, c, i, j]  (Ho = H, Wo = W, pad = 0).
// mask (optional, laid out as x): B reads x where mask > 0 and zero elsewhere, the ReLU's mask applied to dy
// as a fused backward packs it.
struct OperandB {
  const float* x;
  int64_t n_stride;
  int C, H, W, taps, pad;
  bool flip;
  int Ho, Wo;
  const float* mask = nullptr;
  SkipView skip{};  // the first skip.Cs of the C channels read from a skip tensor (then x holds C - skip.Cs)
};

// A run of one packed panel of B's pixels: lanes [lane, lane + len) hold pixels (i, j .. j + len) of the
// output, a piece of one output row.
struct Run {
  int lane, len, i, j;
};

// The runs of panel g (pixels p0 + g*NR ..., nc pixels in the block), at most NR / Wo + 2 of them; returns
// their count. Shared by the FP32 and the BF16 products' panel packing.
int panel_runs(const OperandB& B, int64_t p0, int g, int nc, Run* runs);

// y[n * M * P + m * P + p] = bias[m] (0 when bias is null) + sum_r A(m, r) B_n(r, p), or with relu
// max(0, that), applied as the last reduction block's tile is stored (the fused ReLU epilogue).
void gemm_nn(const OperandA& A, int M, const OperandB& B, int N, const float* bias, float* y, bool relu = false);

// Rows of the weight-gradient product. A_n,i = a + n * n_stride + i * i_stride (length L).
// widen_from > 0: the rows hold images of width widen_from and are read widened to width
// `widen_to` with zeros (A_n,i[x] = a_row[(x / widen_to) * widen_from + x % widen_to] when
// x % widen_to < widen_from, else 0).
// mask (optional, laid out as a; widened rows only): A reads a where mask > 0 and zero elsewhere, the ReLU's
// mask applied to dy as a fused backward widens it.
struct RowsA {
  const float* a;
  int64_t n_stride, i_stride;
  int widen_from = 0, widen_to = 0;
  const float* mask = nullptr;
};
// B_n,j = b + n * n_stride + (j / taps) * c_stride + off[j % taps]   (taps 1 or 9).
struct RowsB {
  const float* b;
  int64_t n_stride, c_stride;
  int taps;
  int64_t off[9];
};

// out[i * ldo + j] = sum_n sum_{x < L} A_n,i[x] * B_n,j[x]
void gemm_nt(const RowsA& A, int M, const RowsB& B, int J, int N, int64_t L, float* out, int64_t ldo);

// A gemm_nt task's result: the double sums of its 3 x 9 tiles (i blocks [ib0, ib1) by j blocks [jb0, jb1), 27
// per tile, row-major over the tiles) stored as floats, rows past M and columns past J left out. Shared by the
// FP32 and the BF16 products.
void store_nt_tiles(const double* acc, int ib0, int ib1, int jb0, int jb1, int M, int J, float* out, int64_t ldo);

// Grow-only 64-byte aligned scratch memory of the calling thread, one buffer per slot: the
// convolutions' packed operands and temporaries, kept so that no call pays for fresh pages.
float* scratch(int slot, int64_t floats);
enum ScratchSlot {
  kScratchA = 0,
  kScratchB,
  kScratchTmp,
  kScratchWide,
  kScratchWinoU,  // kernels/cpu/winograd.cpp: transformed filters, inputs, products
  kScratchWinoV,
  kScratchWinoM,
  kScratchWinoUShared,
  kScratchWinoVShared,
  kScratchPairsA,  // kernels/cpu/bf16_gemm.cpp: BF16 pairs of A, of B's planes, of one panel
  kScratchPairsB,
  kScratchPairsPanel,
  kScratchSlots
};

}  // namespace unet::kernels::cpu::detail
