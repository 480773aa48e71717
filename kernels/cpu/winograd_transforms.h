// The three transforms and the product of Winograd's F(4x4, 3x3) (internal to kernels/cpu), with the
// matrices of Lavin & Gray (2016), interpolation points 0, 1, -1, 2, -2 and infinity:
//
//   one 4x4 output tile:  Y = A^T [ (G g G^T) (.) (B^T d B) ] A      (.) elementwise, 6x6
//   g the 3x3 filter, d the 6x6 input tile whose top-left pixel is the output tile's,
//
//         | 4  0 -5  0  1  0 |          | 1/4    0     0   |
//         | 0 -4 -4  1  1  0 |          | -1/6 -1/6  -1/6  |         | 1  1  1  1  1  0 |
//   B^T = | 0  4 -4 -1  1  0 |     G =  | -1/6  1/6  -1/6  |   A^T = | 0  1 -1  2 -2  0 |
//         | 0 -2 -1  2  1  0 |          | 1/24  1/12  1/6  |         | 0  1  1  4  4  0 |
//         | 0  2 -1 -2  1  0 |          | 1/24 -1/12  1/6  |         | 0  1 -1  8 -8  1 |
//         | 0  4  0 -5  0  1 |          | 0      0     1   |
//
// Y[i][j] = sum_{di,dj} g[di][dj] d[i+di][j+dj] exactly in real arithmetic: 36 multiplications for
// 16 outputs instead of 144. Over C input channels the elementwise products become 36 matrix
// products, M[xi] = U[xi] . V[xi] (xi = a * 6 + b), one per point of the 6x6 transformed tile.
//
// Every transform here works on 16 tiles at once, one tile per vector lane, so each lane runs the
// same operations: a tile's result does not depend on its lane or on its neighbours.
#pragma once
#include <cstdint>

#include "kernels/cpu/microkernels.h"

namespace unet::kernels::cpu::detail::wino {

constexpr int kAlpha = 6;  // transformed tile: 6 x 6
constexpr int kPoints = 36;
constexpr int kTile = 4;    // output tile: 4 x 4
constexpr int kLanes = 16;  // tiles per vector
constexpr int kPanel = 32;  // tiles per packed panel (two vectors): the product's column block

// Lanes [lo, hi) of row[j .. j + 16), zero elsewhere; only those lanes are read (j may point before
// the row or past its end when the zero padding or the ragged edge needs it).
inline v16 load_lanes(const float* row, int64_t j, int lo, int hi) {
  if (lo >= hi) return v16{};
#if defined(__AVX512F__)
  const unsigned m = ((hi >= 16 ? 0xFFFFu : (1u << hi) - 1u) >> lo) << lo;
  return reinterpret_cast<v16>(_mm512_maskz_loadu_ps(static_cast<__mmask16>(m), row + j));
#else
  alignas(64) float t[16] = {};
  for (int q = lo; q < hi; ++q) t[q] = row[j + q];
  return load16a(t);
#endif
}

// Lanes [0, n) of v to p[0 .. n).
inline void store_lanes(float* p, v16 v, int n) {
#if defined(__AVX512F__)
  const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
  _mm512_mask_storeu_ps(p, m, reinterpret_cast<__m512>(v));
#else
  alignas(64) float t[16];
  store16(t, v);
  for (int q = 0; q < n; ++q) p[q] = t[q];
#endif
}

// Lanes [0, n) of p[0 .. n), zero elsewhere.
inline v16 load_first(const float* p, int n) { return load_lanes(p, 0, 0, n); }

// B^T applied to six values per lane: h = B^T d.
inline void input_1d(const v16 d[6], v16 h[6]) {
  const v16 a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
  const v16 c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
  h[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  h[1] = a + b;
  h[2] = a - b;
  h[3] = c + e;
  h[4] = c - e;
  h[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T applied to six values per lane: o = A^T m (four values).
inline void output_1d(const v16 m[6], v16 o[4]) {
  const v16 p = m[1] + m[2], q = m[1] - m[2], u = m[3] + m[4], v = m[3] - m[4];
  o[0] = m[0] + p + u;
  o[1] = q + 2.0f * v;
  o[2] = p + 4.0f * u;
  o[3] = q + 8.0f * v + m[5];
}

// The six columns 4l + s (s < 6) of 16 tiles l, from the 66 input columns starting at tile 0's:
// v[0..3] hold columns 0..63, v[4] columns 64..79. d[s][l] = column 4l + s.
inline void deinterleave_6(const v16 v[5], v16 d[6]) {
  // Two pairs of columns per permutation: lanes 0-7 of one, 8-15 of the other, then halves joined.
  const v16 p01 = __builtin_shufflevector(v[0], v[1], 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const v16 q01 = __builtin_shufflevector(v[2], v[3], 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const v16 p23 = __builtin_shufflevector(v[0], v[1], 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  const v16 q23 = __builtin_shufflevector(v[2], v[3], 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  d[0] = __builtin_shufflevector(p01, q01, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  d[1] = __builtin_shufflevector(p01, q01, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  d[2] = __builtin_shufflevector(p23, q23, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  d[3] = __builtin_shufflevector(p23, q23, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  // Columns 4l + 4 and 4l + 5 are columns 0 and 1 of tile l + 1 (of the next 16 for the last lane).
  d[4] = __builtin_shufflevector(d[0], v[4], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  d[5] = __builtin_shufflevector(d[1], v[4], 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
}

// The inverse for output rows: w[q][4p + j] = y[j][4q + p], four columns per tile.
inline void interleave_4(const v16 y[4], v16 w[4]) {
  const v16 a0 = __builtin_shufflevector(y[0], y[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 a1 = __builtin_shufflevector(y[0], y[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const v16 b0 = __builtin_shufflevector(y[2], y[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const v16 b1 = __builtin_shufflevector(y[2], y[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  // a: (y0, y1) pairs per tile; b: (y2, y3) pairs. Join them two floats at a time.
  w[0] = __builtin_shufflevector(a0, b0, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  w[1] = __builtin_shufflevector(a0, b0, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  w[2] = __builtin_shufflevector(a1, b1, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  w[3] = __builtin_shufflevector(a1, b1, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

// Input transform of n <= 16 consecutive tiles of one tile row in one channel: V = B^T d B.
// plane: the channel's H x W input, rows ld floats apart (W, or the skip tensor's width where the input is a crop
// of it); i0, j0: the first tile's top-left input pixel (negative or past
// the plane where the zero padding or the ragged edge lies: those pixels read as zero).
// out[xi * xi_stride + l] = V_l[xi] for l < n (lanes past n are left alone).
// mplane (optional, laid out as plane): pixels where it is not > 0 read as zero (the ReLU's mask on dy).
inline void input_tiles(const float* plane, int H, int W, int64_t ld, int i0, int j0, int n, float* out,
                        int64_t xi_stride, int64_t prefetch, const float* mplane = nullptr) {
  const int ncols = 4 * n + 2;  // columns the n tiles read
  v16 h[6][6];                  // h[r][b]: row r of d times B
  for (int r = 0; r < 6; ++r) {
    const int i = i0 + r;
    if (i < 0 || i >= H) {
      for (int b = 0; b < 6; ++b) h[r][b] = v16{};
      continue;
    }
    const float* row = plane + i * ld;
    if (prefetch) {  // the same pixels a few channels on: hundreds of rows are too many streams
      const float* ahead = row + prefetch + j0;  // for the hardware prefetcher to follow
      for (int q = 0; q < ncols; q += 16) __builtin_prefetch(ahead + q);
    }
    v16 v[5], d[6];
    for (int q = 0; q < 5; ++q) {
      const int c0 = j0 + 16 * q;  // lanes valid where 0 <= column < W and column - j0 < ncols
      const int lo = std::max(0, -c0), hi = std::min({16, W - c0, ncols - 16 * q});
      v[q] = load_lanes(row, c0, lo, hi);
      if (mplane) {
        const v16 m = load_lanes(mplane + i * ld, c0, lo, hi);
        v[q] = m > v16{} ? v[q] : v16{};
      }
    }
    deinterleave_6(v, d);
    input_1d(d, h[r]);
  }
  for (int b = 0; b < 6; ++b) {
    const v16 col[6] = {h[0][b], h[1][b], h[2][b], h[3][b], h[4][b], h[5][b]};
    v16 t[6];
    input_1d(col, t);
    for (int a = 0; a < 6; ++a) store_lanes(out + (a * 6 + b) * xi_stride, t[a], n);
  }
}

// Output transform of n <= 16 consecutive tiles of one tile row in one output channel:
// Y = A^T M A + bias, M[xi] at m[xi * xi_stride + l]. Writes the tiles' pixels that lie inside the
// Ho x Wo plane `out` (the ragged edge of the last tile row and column is cut off), tile 0's
// top-left pixel at (i0, j0). relu: max(Y, 0) is written instead (the fused ReLU epilogue).
inline void output_tiles(const float* m, int64_t xi_stride, int n, float bias, float* out, int Ho, int Wo, int i0,
                         int j0, bool relu = false) {
  v16 s[4][6];  // s[a][b] = (A^T M)[a][b]
  for (int b = 0; b < 6; ++b) {
    v16 col[6];
    for (int a = 0; a < 6; ++a) col[a] = load_first(m + (a * 6 + b) * xi_stride, n);
    v16 o[4];
    output_1d(col, o);
    for (int a = 0; a < 4; ++a) s[a][b] = o[a];
  }
  const int cols = std::min(4 * n, Wo - j0);
  const v16 bv = splat16(bias);
  for (int a = 0; a < 4 && i0 + a < Ho; ++a) {
    v16 y[4], w[4];
    output_1d(s[a], y);
    for (int j = 0; j < 4; ++j) y[j] += bv;
    if (relu)
      for (int j = 0; j < 4; ++j) y[j] = y[j] > splat16(0.0f) ? y[j] : splat16(0.0f);  // NaN -> 0, as relu_forward
    interleave_4(y, w);
    float* row = out + static_cast<int64_t>(i0 + a) * Wo + j0;
    for (int q = 0; q < 4 && 16 * q < cols; ++q) store_lanes(row + 16 * q, w[q], std::min(16, cols - 16 * q));
  }
}

// Weight transform of 16 filters at once: U = G g G^T, g[t][l] = tap t of filter l.
// out[xi * xi_stride + l] = U_l[xi] for l < n.
inline void weight_tiles(const v16 g[9], int n, float* out, int64_t xi_stride) {
  auto g_1d = [](v16 a, v16 b, v16 c, v16 u[6]) {  // G (a, b, c)^T
    const v16 ac = a + c;
    const v16 e = (1.0f / 24.0f) * a + (1.0f / 6.0f) * c, f = (1.0f / 12.0f) * b;
    u[0] = 0.25f * a;
    u[1] = (-1.0f / 6.0f) * (ac + b);
    u[2] = (-1.0f / 6.0f) * (ac - b);
    u[3] = e + f;
    u[4] = e - f;
    u[5] = c;
  };
  v16 q[6][3];  // q[a][dj] = (G g)[a][dj]
  for (int dj = 0; dj < 3; ++dj) {
    v16 u[6];
    g_1d(g[dj], g[3 + dj], g[6 + dj], u);
    for (int a = 0; a < 6; ++a) q[a][dj] = u[a];
  }
  for (int a = 0; a < 6; ++a) {
    v16 u[6];
    g_1d(q[a][0], q[a][1], q[a][2], u);
    for (int b = 0; b < 6; ++b) store_lanes(out + (a * 6 + b) * xi_stride, u[b], n);
  }
}

// The weight gradient uses the same matrices the other way round. For a 4x4 tile e of dy and the
// 6x6 tile d of x at the same place, sum_{i,j<4} e[i][j] d[i+di][j+dj] = (G^T [(A e A^T) (.)
// (B^T d B)] G)[di][dj] (the trilinear identity behind F(4x4, 3x3), differentiated by the filter),
// so dw[k,c] = G^T [ sum_tiles E_k (.) D_c ] G with E = A e A^T and D the forward's input transform.

// A applied to four values per lane: o = A e (six values).
inline void dy_1d(const v16 e[4], v16 o[6]) {
  const v16 p = e[0] + e[2], q = e[1] + e[3], r = e[0] + 4.0f * e[2], t = 2.0f * e[1] + 8.0f * e[3];
  o[0] = e[0];
  o[1] = p + q;
  o[2] = p - q;
  o[3] = r + t;
  o[4] = r - t;
  o[5] = e[3];
}

// E = A e A^T of one 4x4 tile of dy in 16 channels at once (lane l: channel plane l, planes
// `plane_stride` floats apart), the tile's top-left pixel at (i0, j0) of the Ho x Wo planes (zero
// outside). out[xi * xi_stride + l] = E_l[xi] for l < 16. n: channels present (lanes past n zero).
// mask (optional, laid out as dy): dy reads as zero where it is not > 0 (the ReLU's mask).
inline void dy_tile_channels(const float* dy, int64_t plane_stride, int n, int Ho, int Wo, int i0, int j0, float* out,
                             int64_t xi_stride, const float* mask = nullptr) {
  v16 h[4][6];  // h[r][b]: row r of e times A^T
#if defined(__AVX512F__)
  const __mmask16 lanes = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int>(plane_stride)));
#endif
  for (int r = 0; r < 4; ++r) {
    v16 e[4];
    const int i = i0 + r;
    for (int s = 0; s < 4; ++s) {
      const int j = j0 + s;
      if (i >= Ho || j >= Wo) {
        e[s] = v16{};
        continue;
      }
      const int64_t off = static_cast<int64_t>(i) * Wo + j;
      const float* p = dy + off;
#if defined(__AVX512F__)
      e[s] = reinterpret_cast<v16>(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx, p, 4));
      if (mask) {
        const v16 m = reinterpret_cast<v16>(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx, mask + off, 4));
        e[s] = m > v16{} ? e[s] : v16{};
      }
#else
      alignas(64) float t[16] = {};
      for (int l = 0; l < n; ++l) t[l] = !mask || mask[off + l * plane_stride] > 0.0f ? p[l * plane_stride] : 0.0f;
      e[s] = load16a(t);
#endif
    }
    dy_1d(e, h[r]);
  }
  for (int b = 0; b < 6; ++b) {
    const v16 col[4] = {h[0][b], h[1][b], h[2][b], h[3][b]};
    v16 t[6];
    dy_1d(col, t);
    for (int a = 0; a < 6; ++a) store16(out + (a * 6 + b) * xi_stride, t[a]);
  }
}

// G^T applied to six values per lane (three values).
inline void dw_1d(const v16 m[6], v16 o[3]) {
  const v16 p = m[1] + m[2], q = m[2] - m[1], u = m[3] + m[4], v = m[3] - m[4];
  o[0] = 0.25f * m[0] - (1.0f / 6.0f) * p + (1.0f / 24.0f) * u;
  o[1] = (1.0f / 6.0f) * q + (1.0f / 12.0f) * v;
  o[2] = (1.0f / 6.0f) * (u - p) + m[5];
}

// dw = G^T M G for 16 lanes: M[xi] at m[xi * xi_stride], dw tap t to out[t] (lanes).
inline void dw_lanes(const float* m, int64_t xi_stride, v16 out[9]) {
  v16 s[3][6];  // s[a][b] = (G^T M)[a][b]
  for (int b = 0; b < 6; ++b) {
    v16 col[6];
    for (int a = 0; a < 6; ++a) col[a] = load16(m + (a * 6 + b) * xi_stride);
    v16 o[3];
    dw_1d(col, o);
    for (int a = 0; a < 3; ++a) s[a][b] = o[a];
  }
  for (int a = 0; a < 3; ++a) dw_1d(s[a], out + 3 * a);
}

// The product on one 8 x (16 kHalves) tile of one point xi, blocked so that long reductions stay
// accurate:
//   C[i][0:w] = (first ? 0 : C[i][0:w]) + sum_{r < kc} A_i[r] * bp[r * 32 + 0:w]     i < 8, w = 16 kHalves
// A_i = a + i * lda (rows of U[xi], read in place), bp a packed panel of V[xi] (64-byte aligned),
// C rows 32 floats apart. The block's sum is formed on its own and then added: over C = 1024
// channels the error stays that of a block of kc (about 2e-6 instead of 7e-6 for one long chain).
// kHalves = 1 serves a last panel of at most 16 tiles.
template <int kHalves>
inline void tile_8xw(int kc, const float* a, int64_t lda, const float* bp, float* c, bool first) {
  v16 acc[8][kHalves];
  for (int i = 0; i < 8; ++i)
    for (int h = 0; h < kHalves; ++h) acc[i][h] = v16{};
  const float* ar[8];
  for (int i = 0; i < 8; ++i) ar[i] = a + i * lda;
  for (int r = 0; r < kc; ++r) {
    v16 b[kHalves];
    for (int h = 0; h < kHalves; ++h) b[h] = load16a(bp + 16 * h);
    for (int i = 0; i < 8; ++i) {
      const v16 s = splat16(ar[i][r]);
      for (int h = 0; h < kHalves; ++h) acc[i][h] += s * b[h];
    }
    bp += kPanel;
  }
  for (int i = 0; i < 8; ++i)
    for (int h = 0; h < kHalves; ++h) {
      float* ci = c + i * kPanel + 16 * h;
      store16(ci, first ? acc[i][h] : load16(ci) + acc[i][h]);
    }
}

}  // namespace unet::kernels::cpu::detail::wino
