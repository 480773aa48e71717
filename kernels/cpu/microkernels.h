// Register-blocked inner loops of the CPU convolutions (internal to kernels/cpu).
//
// Every convolution of the U-Net is a matrix product once its operands are seen the right way
// (kernels/cpu/conv_gemm.h says how):
//   tile_nn_8x32: C[i, 0:32] (+)= sum_r A[i, r] * B[r, 0:32]  for 8 rows i, both operands packed
//                 (forward passes and data gradients: an outer product per r);
//   tile_nt_3x9:  acc[i][j] += sum_x A_i[x] * B_j[x]           for 3 x 9 rows given by pointer
//                 (weight gradients: dot products over pixels).
// GCC/Clang vector extensions keep the kernels portable: with -march=native on an AVX-512 machine a
// v16 is one zmm register, with AVX2 two ymm, without either SSE quadruples.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace unet::kernels::cpu::detail {

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // unaligned access

inline v16 load16(const float* p) { return *reinterpret_cast<const v16u*>(p); }
inline v16 load16a(const float* p) { return *reinterpret_cast<const v16*>(p); }  // 64-byte aligned
inline void store16(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }
inline v16 splat16(float a) { return v16{a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a}; }
// Fixed pairwise order: the same sum wherever it is called.
inline float hsum16(v16 v) {
  float s[8];
  for (int i = 0; i < 8; ++i) s[i] = v[i] + v[i + 8];
  return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

// Keeps v in a register: stops the compiler from folding its load into every use.
inline void in_register(v16& v) { asm("" : "+v"(v)); }

constexpr int MR = 8;   // rows of an nn micro-tile
constexpr int NR = 32;  // columns of an nn micro-tile (two v16)

// d[0:n) = s[0:n) for n <= NR (the runs that packing copies).
inline void copy_run(float* d, const float* s, int n) {
#if defined(__AVX512F__)
  if (n >= 16) {
    _mm512_storeu_ps(d, _mm512_loadu_ps(s));
    d += 16, s += 16, n -= 16;
  }
  if (n >= 16) {
    _mm512_storeu_ps(d, _mm512_loadu_ps(s));
    return;
  }
  const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
  _mm512_mask_storeu_ps(d, m, _mm512_maskz_loadu_ps(m, s));
#else
  for (int q = 0; q < n; ++q) d[q] = s[q];
#endif
}

// C[i, 0:NR] for i < 8, C row i at c + i * ldc:
//   C = init + sum_{r < kc} A(i, r) * bp[r * NR + 0:NR]      (init given: a bias or zeros)
//   C = C    + sum_{r < kc} ...                              (init == nullptr: accumulate)
// A(i, r) = ap[r * MR + i] (kPacked: a packed panel) or ap[i * lda + r] (rows of a row-major
// matrix, read in place; row i >= rows reads row rows - 1). bp: a packed panel, 64-byte aligned.
// Only rows < rows and columns < cols are read and written. The accumulation continues the C
// values as they were stored, so splitting the sum over r into successive calls gives exactly the
// single-call result. relu: the last call of a sum stores max(C, 0) instead (the fused ReLU epilogue).
template <bool kPacked>
inline void tile_nn_8x32(int kc, const float* ap, int64_t lda, const float* bp, float* c, int64_t ldc, int rows,
                         int cols, const float* init, bool relu = false) {
  v16 acc[MR][2];
  const bool full = rows == MR && cols == NR;
  if (init) {
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = splat16(init[i]);
  } else if (full) {
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = load16(c + i * ldc);
      acc[i][1] = load16(c + i * ldc + 16);
    }
  } else {
    alignas(64) float t[MR][NR] = {};
    for (int i = 0; i < rows; ++i) std::copy(c + i * ldc, c + i * ldc + cols, t[i]);
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = load16a(t[i]);
      acc[i][1] = load16a(t[i] + 16);
    }
  }
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = ap + (i < rows ? i : rows - 1) * lda;
  for (int r = 0; r < kc; ++r) {
    const v16 b0 = load16a(bp), b1 = load16a(bp + 16);
    for (int i = 0; i < MR; ++i) {
      const v16 a = splat16(kPacked ? ap[i] : ar[i][r]);
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
    if (kPacked) ap += MR;
    bp += NR;
  }
  if (relu) {
    const v16 zero = splat16(0.0f);
    for (int i = 0; i < MR; ++i)
      for (int h = 0; h < 2; ++h) acc[i][h] = acc[i][h] > zero ? acc[i][h] : zero;  // NaN -> 0, as relu_forward
  }
  if (full) {
    for (int i = 0; i < MR; ++i) {
      store16(c + i * ldc, acc[i][0]);
      store16(c + i * ldc + 16, acc[i][1]);
    }
  } else {
    alignas(64) float t[MR][NR];
    for (int i = 0; i < MR; ++i) {
      store16(t[i], acc[i][0]);
      store16(t[i] + 16, acc[i][1]);
    }
    for (int i = 0; i < rows; ++i) std::copy(t[i], t[i] + cols, c + i * ldc);
  }
}

typedef float v8 __attribute__((vector_size(32)));

// The sums of 8 vectors' lanes, as one vector: out[j] = lane sum of v[j] (a fixed pairwise tree,
// about 5 operations a vector instead of a full horizontal sum each).
inline v8 hsum16x8(const v16* v) {
  v8 u[8];
  for (int j = 0; j < 8; ++j)
    u[j] = __builtin_shufflevector(v[j], v[j], 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v[j], v[j], 8, 9, 10, 11, 12, 13, 14, 15);
  v8 w[4], q[2];
  for (int j = 0; j < 4; ++j)  // [u_2j partial 4 | u_2j+1 partial 4]
    w[j] = __builtin_shufflevector(u[2 * j], u[2 * j + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(u[2 * j], u[2 * j + 1], 4, 5, 6, 7, 12, 13, 14, 15);
  for (int j = 0; j < 2; ++j)  // [u0 u0 u2 u2 u1 u1 u3 u3] partial 2 (for j = 0)
    q[j] = __builtin_shufflevector(w[2 * j], w[2 * j + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(w[2 * j], w[2 * j + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  // [u0 u2 u4 u6 u1 u3 u5 u7], then in order
  const v8 r = __builtin_shufflevector(q[0], q[1], 0, 2, 8, 10, 4, 6, 12, 14) +
               __builtin_shufflevector(q[0], q[1], 1, 3, 9, 11, 5, 7, 13, 15);
  return __builtin_shufflevector(r, r, 0, 4, 1, 5, 2, 6, 3, 7);
}

// acc[i][j] += sum_{x < L} a[i][x] * b[j][x]  for 3 rows a and 9 rows b: the weight-gradient tile.
// Float in 16 vector lanes within the call, then the lane sums (fixed order) added in double.
inline void tile_nt_3x9(const float* const* a, const float* const* b, int64_t L, double acc[3][9]) {
  v16 s[3][9];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 9; ++j) s[i][j] = v16{};
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2];
  int64_t x = 0;
  for (; x + 16 <= L; x += 16) {
    const v16 u0 = load16(a0 + x), u1 = load16(a1 + x), u2 = load16(a2 + x);
    for (int j = 0; j < 9; ++j) {
      v16 bj = load16(b[j] + x);
      in_register(bj);  // one load for three FMAs (folded into each, it would be three)
      s[0][j] += u0 * bj;
      s[1][j] += u1 * bj;
      s[2][j] += u2 * bj;
    }
  }
  if (x < L) {  // the last partial vector, zero-extended
    const int n = static_cast<int>(L - x);
    v16 u[3];
#if defined(__AVX512F__)
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    for (int i = 0; i < 3; ++i) u[i] = reinterpret_cast<v16>(_mm512_maskz_loadu_ps(m, a[i] + x));
    for (int j = 0; j < 9; ++j) {
      const v16 bj = reinterpret_cast<v16>(_mm512_maskz_loadu_ps(m, b[j] + x));
      for (int i = 0; i < 3; ++i) s[i][j] += u[i] * bj;
    }
#else
    alignas(64) float t[16] = {};
    for (int i = 0; i < 3; ++i) {
      std::copy(a[i] + x, a[i] + L, t);
      u[i] = load16a(t);
    }
    for (int j = 0; j < 9; ++j) {
      std::copy(b[j] + x, b[j] + L, t);
      const v16 bj = load16a(t);
      for (int i = 0; i < 3; ++i) s[i][j] += u[i] * bj;
    }
#endif
  }
  for (int i = 0; i < 3; ++i) {
    const v8 h = hsum16x8(s[i]);
    for (int j = 0; j < 8; ++j) acc[i][j] += static_cast<double>(h[j]);
    acc[i][8] += static_cast<double>(hsum16(s[i][8]));
  }
}

// sum_i a[i] * b[i] (b == nullptr: sum_i a[i]): float within 1024-element chunks (vectorised),
// double across chunks, so long reductions over a whole image keep ~1e-7 relative accuracy.
inline double dot_f64(const float* a, const float* b, int64_t n) {
  double s = 0.0;
  for (int64_t p0 = 0; p0 < n; p0 += 1024) {
    int64_t p1 = std::min(n, p0 + 1024);
    float t = 0.0f;
    if (b) {
#pragma omp simd reduction(+ : t)
      for (int64_t p = p0; p < p1; ++p) t += a[p] * b[p];
    } else {
#pragma omp simd reduction(+ : t)
      for (int64_t p = p0; p < p1; ++p) t += a[p];
    }
    s += t;
  }
  return s;
}

// sum_i (m[i] > 0 ? a[i] : 0), chunked as dot_f64 (the ReLU-masked sum of a fused backward's bias gradient).
inline double masked_sum_f64(const float* a, const float* m, int64_t n) {
  double s = 0.0;
  for (int64_t p0 = 0; p0 < n; p0 += 1024) {
    int64_t p1 = std::min(n, p0 + 1024);
    float t = 0.0f;
#pragma omp simd reduction(+ : t)
    for (int64_t p = p0; p < p1; ++p) {
      const float v = a[p];  // read unconditionally: a select, not a branch around a load
      t += m[p] > 0.0f ? v : 0.0f;
    }
    s += t;
  }
  return s;
}

// d[q] = m[q] > 0 ? s[q] : 0 for q < n: a run of dy with the ReLU's mask (dy * (y > 0)).
inline void masked_run(float* d, const float* s, const float* m, int n) {
#pragma omp simd
  for (int q = 0; q < n; ++q) {
    const float v = s[q];  // read unconditionally: a select, not a branch around a load
    d[q] = m[q] > 0.0f ? v : 0.0f;
  }
}

}  // namespace unet::kernels::cpu::detail
