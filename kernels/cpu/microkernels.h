// Register-blocked inner loops shared by the CPU convolutions (internal to kernels/cpu).
//
// Every convolution of the U-Net is a matrix product once its operands are seen the right way:
//   rows_nn: C[m, 0:n] = sum_r A[m, r] * B_r[0:n]     (forward passes, data gradients)
//   rows_nt: C[m, r]  += sum_x A_m[x] * B_r[x]        (weight gradients: reductions over pixels)
// where each B_r is a row given by pointer, so a 3x3 convolution needs no im2col copy: the row
// for (c, di, dj) is simply the input row shifted by (di, dj).
// GCC/Clang vector extensions keep the kernels portable: with -march=native they become AVX2/512
// FMAs; without, SSE pairs.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace unet::kernels::cpu::detail {

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));  // unaligned access

inline v8 load8(const float* p) { return *reinterpret_cast<const v8u*>(p); }
inline void store8(float* p, v8 v) { *reinterpret_cast<v8u*>(p) = v; }
inline v8 splat8(float a) { return v8{a, a, a, a, a, a, a, a}; }
inline float hsum8(v8 v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

constexpr int MR = 6;   // output rows per micro-tile
constexpr int NR = 16;  // output columns per micro-tile (two 8-wide vectors)

// Packs rows [m0, m0+MR) of A (A(m, r) = a[m * a_m + r * a_r]) into ap[r * MR + i], zero-padding
// rows past M, so the micro-kernel reads MR consecutive values per r.
inline void pack_a(const float* a, int64_t a_m, int64_t a_r, int M, int m0, int R, float* ap) {
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < MR; ++i) {
      int m = m0 + i;
      ap[r * MR + i] = m < M ? a[m * a_m + r * a_r] : 0.0f;
    }
}

// C[i, 0:NR] = init[i] + sum_r ap[r, i] * B_r[col : col + NR] for the MR rows of one packed block.
// Rows i >= rows are computed but not stored.
inline void tile_nn_full(const float* ap, const float* const* brow, int64_t col, int R, const float* init,
                         float* const* crow, int rows) {
  v8 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = splat8(init[i]);
  for (int r = 0; r < R; ++r) {
    const float* b = brow[r] + col;
    v8 b0 = load8(b), b1 = load8(b + 8);
    const float* a = ap + r * MR;
    for (int i = 0; i < MR; ++i) {
      v8 ai = splat8(a[i]);
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
    }
  }
  for (int i = 0; i < rows; ++i) {
    store8(crow[i] + col, acc[i][0]);
    store8(crow[i] + col + 8, acc[i][1]);
  }
}

// The same for the last n < NR columns, scalar.
inline void tile_nn_tail(const float* ap, const float* const* brow, int64_t col, int n, int R,
                         const float* init, float* const* crow, int rows) {
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < n; ++j) acc[i][j] = init[i];
  for (int r = 0; r < R; ++r) {
    const float* b = brow[r] + col;
    const float* a = ap + r * MR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < n; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < n; ++j) crow[i][col + j] = acc[i][j];
}

// rows_nn over all M (in packed blocks) and n columns. `apacked` holds ceil(M/MR) blocks of R*MR
// floats (see pack_a); bias may be null. C row m is crow_base + m * c_m.
inline void rows_nn(const float* apacked, int M, int R, const float* const* brow, int64_t n, const float* bias,
                    float* crow_base, int64_t c_m) {
  // Column strips outermost: one strip of every B row (R x NR floats) stays in L1 while the
  // packed A blocks stream past it.
  for (int64_t col = 0; col < n; col += NR) {
    for (int m0 = 0; m0 < M; m0 += MR) {
      const float* ap = apacked + static_cast<int64_t>(m0 / MR) * R * MR;
      int rows = std::min(MR, M - m0);
      float init[MR];
      float* crow[MR];
      for (int i = 0; i < MR; ++i) {
        init[i] = (bias && i < rows) ? bias[m0 + i] : 0.0f;
        crow[i] = crow_base + static_cast<int64_t>(std::min(m0 + i, M - 1)) * c_m;
      }
      if (col + NR <= n) tile_nn_full(ap, brow, col, R, init, crow, rows);
      else tile_nn_tail(ap, brow, col, static_cast<int>(n - col), R, init, crow, rows);
    }
  }
}

// Packs all of A (M x R) into ceil(M/MR) blocks.
inline std::vector<float> pack_all(const float* a, int64_t a_m, int64_t a_r, int M, int R) {
  int blocks = (M + MR - 1) / MR;
  std::vector<float> ap(static_cast<size_t>(blocks) * R * MR);
  for (int b = 0; b < blocks; ++b) pack_a(a, a_m, a_r, M, b * MR, R, ap.data() + static_cast<int64_t>(b) * R * MR);
  return ap;
}

constexpr int64_t kStrip = 1024;  // pixels per task: B rows of one strip stay in cache

// y[n, m, p] = bias[m] + sum_r a(m, r) * x[n, r, p] over P pixels, parallel over pixel strips.
inline void channel_mix(const float* a, int64_t a_m, int64_t a_r, const float* bias, const float* x, float* y, int N, int R,
                 int M, int64_t P) {
  std::vector<float> ap = pack_all(a, a_m, a_r, M, R);
  const int64_t strips = (P + kStrip - 1) / kStrip;
#pragma omp parallel
  {
    std::vector<const float*> brow(R);
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < N; ++n)
      for (int64_t s = 0; s < strips; ++s) {
        int64_t p0 = s * kStrip, len = std::min(kStrip, P - p0);
        for (int r = 0; r < R; ++r) brow[r] = x + (static_cast<int64_t>(n) * R + r) * P + p0;
        rows_nn(ap.data(), M, R, brow.data(), len, bias, y + static_cast<int64_t>(n) * M * P + p0, P);
      }
  }
}

// acc[i][j] += sum_{x < L} A_i[x] * B_j[x] for 4 A rows and 3 B rows: the weight-gradient tile.
inline void tile_nt_4x3(const float* const* a, const float* const* b, int64_t L, double acc[4][3]) {
  v8 s[4][3];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) s[i][j] = splat8(0.0f);
  int64_t x = 0;
  for (; x + 8 <= L; x += 8) {
    v8 b0 = load8(b[0] + x), b1 = load8(b[1] + x), b2 = load8(b[2] + x);
    for (int i = 0; i < 4; ++i) {
      v8 ai = load8(a[i] + x);
      s[i][0] += ai * b0;
      s[i][1] += ai * b1;
      s[i][2] += ai * b2;
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) {
      float t = hsum8(s[i][j]);
      for (int64_t xx = x; xx < L; ++xx) t += a[i][xx] * b[j][xx];
      acc[i][j] += t;
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

}  // namespace unet::kernels::cpu::detail
