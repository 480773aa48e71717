// The BF16 convolution products on CPUs with AVX-512 BF16 (internal to kernels/cpu).
//
// The products of kernels/cpu/conv_gemm.h (the same operand views, micro-tiles and task split) with the
// operands rounded to BF16 (to nearest even, as kernels/precision.h's round_bf16) and packed as pairs,
// multiplied by vdpbf16ps (_mm512_dpbf16_ps): per FP32 lane, acc += a.lo * b.lo + a.hi * b.hi, two
// products a lane, twice the work of an FP32 FMA an instruction.
//   gemm_nn_bf16 pairs two input channels at the same tap: the input is converted once per call to planes
// of channel pairs (one 32-bit word a pixel), and a panel of pairs is a copy of words from shifted rows of
// those planes, as gemm_nn copies floats; the weights are packed as the same pairs.
//   gemm_nt_bf16 pairs two neighbouring pixels: both operands are converted once per call to BF16 rows,
// and the dot products run over them as gemm_nt's do (FP32 within a chunk of pixels, double across).
// The sums are FP32. The result differs from the reference (the FP32 products of the rounded operands,
// kernels/cpu/rounded.h) in the order and rounding of the sums only, and in BF16 denormals, which
// vdpbf16ps reads as zero. Every output is the same chain of instructions whatever the thread count: the
// results are bit-identical for any number of threads.
//
// The code is compiled for AVX-512 BF16 with target attributes (the rest of the library keeps its own
// flags) and runs only when the CPU reports avx512_bf16 (bf16_dot_products()). Its converted operands
// live in per-thread buffers of its own, kept between calls (about the size of the FP32 input).
#pragma once
#include <cstdint>

#include "kernels/cpu/conv_gemm.h"
#include "kernels/kernels.h"

namespace unet::kernels::cpu::detail {

// Whether this build has the BF16 products and the CPU (and the OS) runs them: AVX-512 F, BW and BF16.
bool cpu_has_avx512_bf16();

// Whether the BF16 convolutions use these products: cpu_has_avx512_bf16(), unless switched off.
bool bf16_dot_products();
// Switches the BF16 products off (the BF16 convolutions then run the reference) or back on, for all
// threads; returns the previous setting. For tests and benchmarks that compare the two.
bool set_bf16_dot_products(bool on);
// Whether a convolution at `prec` runs these products (then its operands go to them unrounded).
inline bool use_bf16_dot(Precision prec) { return prec == Precision::BF16 && bf16_dot_products(); }

// gemm_nn (conv_gemm.h) in BF16: y_n[m, p] = bias[m] + sum_r bf16(A(m, r)) * bf16(B_n(r, p)).
// Only when bf16_dot_products().
void gemm_nn_bf16(const OperandA& A, int M, const OperandB& B, int N, const float* bias, float* y);

// gemm_nt (conv_gemm.h) in BF16: out[i * ldo + j] = sum_n sum_{x < L} bf16(A_n,i[x]) * bf16(B_n,j[x]).
// B_n,j is read at B.b + n * n_stride + ... as gemm_nt reads it. Only when bf16_dot_products().
void gemm_nt_bf16(const RowsA& A, int M, const RowsB& B, int J, int N, int64_t L, float* out, int64_t ldo);

}  // namespace unet::kernels::cpu::detail
