// The BF16 convolution products of kernels/cpu/bf16_gemm.h.
#include "kernels/cpu/bf16_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/precision.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UNET_BF16_DOT 1
#include <immintrin.h>
// The instruction sets of the functions that use AVX-512 BF16: only these are compiled for them (no
// inline function of a header is, so none can reach the rest of the library compiled for them).
#define UNET_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#else
#define UNET_BF16_DOT 0
#endif

namespace unet::kernels::cpu::detail {

bool cpu_has_avx512_bf16() {
#if UNET_BF16_DOT
  // __builtin_cpu_supports also checks that the OS saves the zmm registers (XCR0).
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

namespace {
std::atomic<bool> g_bf16_dot_on{true};
}  // namespace

bool bf16_dot_products() { return g_bf16_dot_on.load(std::memory_order_relaxed) && cpu_has_avx512_bf16(); }

bool set_bf16_dot_products(bool on) { return g_bf16_dot_on.exchange(on); }

#if UNET_BF16_DOT

namespace {

// ---- operands ---------------------------------------------------------------------------------------

// The BF16 bits of round_bf16(x).
inline uint32_t bf16_bits(float x) { return float_bits(round_bf16(x)) >> 16; }
// A pair of BF16 in one 32-bit word: lo in the low half (the even reduction element), as vdpbf16ps pairs them.
inline uint32_t bf16_pair(float lo, float hi) { return bf16_bits(lo) | (bf16_bits(hi) << 16); }

// dst[0:n) = the BF16 of src[0:n) (vcvtne2ps2bf16: to nearest even).
UNET_BF16_TARGET void to_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t x = 0;
  for (; x + 32 <= n; x += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + x + 16), _mm512_loadu_ps(src + x));
    _mm512_storeu_si512(dst + x, (__m512i)v);
  }
  for (; x < n; x += 16) {
    const int k = static_cast<int>(std::min<int64_t>(16, n - x));
    const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + x));
    _mm256_mask_storeu_epi16(dst + x, m, (__m256i)v);
  }
}

// n floats to BF16 on the pool, in fixed chunks.
void to_bf16_parallel(const float* src, uint16_t* dst, int64_t n) {
  constexpr int64_t kGrain = 1 << 15;
  parallel_for((n + kGrain - 1) / kGrain, 1, [&](int64_t c0, int64_t c1) {
    const int64_t x0 = c0 * kGrain, x1 = std::min(n, c1 * kGrain);
    to_bf16(src + x0, dst + x0, x1 - x0);
  });
}

// ---- gemm_nn_bf16 -----------------------------------------------------------------------------------
//
// The reduction runs over pairs of channels: pair q = (channel pair cp, tap t) = (q / taps, q % taps) holds
// r = 2cp * taps + t and (2cp + 1) * taps + t (zero past the last channel). B_n is converted once per call
// to planes of channel pairs, one 32-bit word a pixel (BF16 of channel 2cp low, 2cp + 1 high); a panel of
// pairs is then a copy of words from shifted rows of these planes, as the FP32 product copies floats.

constexpr int kKc2 = 128;  // reduction block: pairs
constexpr int kMaxPanelsPerTask = 8;
constexpr int kMaxRowBlocksPerTask = 64;  // rows per task: at most 64 x 8 over each packed block of B
constexpr int kMaxRuns = NR + 1;

// The products' BF16 words live in conv_gemm.h's per-thread scratch slots (4 bytes a float there).
void* pair_scratch(int slot, int64_t bytes) { return scratch(slot, (bytes + 3) / 4); }

// Row block mb of A as R2 = C2 * taps pairs x MR words (word q * MR + i: the pair q of row m), zero past M
// and past the last channel.
void pack_a_pairs(const OperandA& A, int M, int C, int taps, int mb, uint32_t* dst) {
  const int C2 = (C + 1) / 2, R2 = C2 * taps;
  for (int q = 0; q < R2; ++q) {
    const int cp = q / taps, t = q % taps;
    float v[2][MR];
    for (int h = 0; h < 2; ++h) {
      const int c = 2 * cp + h;
      const int64_t roff = c < C ? c * A.k_stride + t * A.t_stride : 0;
      for (int i = 0; i < MR; ++i) {
        const int m = mb * MR + i;
        v[h][i] = m < M && c < C ? A.a[m * A.m_stride + roff] : 0.0f;
      }
    }
    for (int i = 0; i < MR; ++i) dst[q * MR + i] = bf16_pair(v[0][i], v[1][i]);
  }
}

// dst[p] = the BF16 pair (lo[p], hi[p]) for p < n (hi == nullptr: zeros).
UNET_BF16_TARGET void to_pair_plane(const float* lo, const float* hi, uint32_t* dst, int64_t n) {
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t p = 0; p < n; p += 16) {
    const int k = static_cast<int>(std::min<int64_t>(16, n - p));
    const __mmask16 m = static_cast<__mmask16>((1u << k) - 1u);
    const __m512 l = _mm512_maskz_loadu_ps(m, lo + p), h = hi ? _mm512_maskz_loadu_ps(m, hi + p) : _mm512_setzero_ps();
    const __m512i w = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(h, l));
    _mm512_mask_storeu_epi32(dst + p, m, w);
  }
}

// d[0:n) = s[0:n) for n <= NR words (copy_run moves the bits of floats unchanged).
inline void copy_words(uint32_t* d, const uint32_t* s, int n) {
  copy_run(reinterpret_cast<float*>(d), reinterpret_cast<const float*>(s), n);
}

// Pairs [q0, q0 + kc2) of B_n for the pixels of `runs` (pair row qq at dst + qq * NR), zero in lanes past
// the runs and outside the input (as conv_gemm.cpp's pack_panel, on the pair planes xn of B.H x B.W words).
void pack_panel_pairs(const OperandB& B, const uint32_t* xn, int q0, int kc2, const Run* runs, int nruns,
                      uint32_t* dst) {
  const int64_t plane = static_cast<int64_t>(B.H) * B.W;
  const int filled = runs[nruns - 1].lane + runs[nruns - 1].len;
  for (int qq = 0; qq < kc2; ++qq) {
    const int q = q0 + qq, cp = q / B.taps, t = q % B.taps;
    int di = 0, dj = 0;
    if (B.taps == 9) {
      di = B.flip ? 2 - t / 3 : t / 3;
      dj = B.flip ? 2 - t % 3 : t % 3;
    }
    const uint32_t* xc = xn + cp * plane;
    uint32_t* d = dst + qq * NR;
    for (int u = 0; u < nruns; ++u) {
      const Run& run = runs[u];
      const int si = run.i + di - B.pad, sj = run.j + dj - B.pad;
      uint32_t* o = d + run.lane;
      if (si < 0 || si >= B.H) {
        std::fill(o, o + run.len, 0u);
        continue;
      }
      const uint32_t* row = xc + static_cast<int64_t>(si) * B.W;
      if (dj == 0) {
        __builtin_prefetch(row + sj + 2 * NR);
        __builtin_prefetch(row + sj + 2 * NR + 16);
      }
      if (sj >= 0 && sj + run.len <= B.W) {
        copy_words(o, row + sj, run.len);
      } else {
        const int lo = std::clamp(-sj, 0, run.len), hi = std::clamp(B.W - sj, lo, run.len);
        std::fill(o, o + lo, 0u);
        if (hi > lo) copy_words(o + lo, row + sj + lo, hi - lo);
        std::fill(o + hi, o + run.len, 0u);
      }
    }
    if (filled < NR) std::fill(d + filled, d + NR, 0u);
  }
}

// C[i, 0:NR] for i < rows, as tile_nn_8x32 (microkernels.h), over kc2 pairs: ap a packed pair panel
// (word q * MR + i), bp a packed pair panel (words q * NR + 0:NR, 64-byte aligned).
UNET_BF16_TARGET void tile_bf16_8x32(int kc2, const uint32_t* ap, const uint32_t* bp, float* c, int64_t ldc, int rows,
                                     int cols, const float* init) {
  __m512 acc[MR][2];
  const bool full = rows == MR && cols == NR;
  if (init) {
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_set1_ps(init[i]);
  } else if (full) {
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_loadu_ps(c + i * ldc);
      acc[i][1] = _mm512_loadu_ps(c + i * ldc + 16);
    }
  } else {
    alignas(64) float t[MR][NR] = {};
    for (int i = 0; i < rows; ++i) std::copy(c + i * ldc, c + i * ldc + cols, t[i]);
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = _mm512_load_ps(t[i]);
      acc[i][1] = _mm512_load_ps(t[i] + 16);
    }
  }
  for (int q = 0; q < kc2; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
    ap += MR;
    bp += NR;
  }
  if (full) {
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(c + i * ldc, acc[i][0]);
      _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
    }
  } else {
    alignas(64) float t[MR][NR];
    for (int i = 0; i < MR; ++i) {
      _mm512_store_ps(t[i], acc[i][0]);
      _mm512_store_ps(t[i] + 16, acc[i][1]);
    }
    for (int i = 0; i < rows; ++i) std::copy(t[i], t[i] + cols, c + i * ldc);
  }
}

// ---- gemm_nt_bf16 -----------------------------------------------------------------------------------

constexpr int64_t kChunkNT = 4096;  // pixels per FP32 partial sum (then double): twice gemm_nt's, as cheap
constexpr int64_t kBudgetA = 24576;
constexpr int64_t kBudgetB = 65536;

// acc[i][j] += sum_{x < L} a[i][x] * b[j][x] for 3 BF16 rows a and 9 BF16 rows b (FP32 in the lanes within
// the call, the lane sums added in double).
UNET_BF16_TARGET void tile_nt_bf16_3x9(const uint16_t* const* a, const uint16_t* const* b, int64_t L,
                                       double acc[3][9]) {
  __m512 s[3][9];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 9; ++j) s[i][j] = _mm512_setzero_ps();
  int64_t x = 0;
  for (; x + 32 <= L; x += 32) {
    const __m512bh u0 = (__m512bh)_mm512_loadu_si512(a[0] + x), u1 = (__m512bh)_mm512_loadu_si512(a[1] + x),
                   u2 = (__m512bh)_mm512_loadu_si512(a[2] + x);
    for (int j = 0; j < 9; ++j) {
      const __m512bh bj = (__m512bh)_mm512_loadu_si512(b[j] + x);
      s[0][j] = _mm512_dpbf16_ps(s[0][j], u0, bj);
      s[1][j] = _mm512_dpbf16_ps(s[1][j], u1, bj);
      s[2][j] = _mm512_dpbf16_ps(s[2][j], u2, bj);
    }
  }
  if (x < L) {  // the last partial vector, zero-extended
    const __mmask32 m = static_cast<__mmask32>((1ull << (L - x)) - 1u);
    __m512bh u[3];
    for (int i = 0; i < 3; ++i) u[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, a[i] + x);
    for (int j = 0; j < 9; ++j) {
      const __m512bh bj = (__m512bh)_mm512_maskz_loadu_epi16(m, b[j] + x);
      for (int i = 0; i < 3; ++i) s[i][j] = _mm512_dpbf16_ps(s[i][j], u[i], bj);
    }
  }
  for (int i = 0; i < 3; ++i) {  // the lane sums in microkernels.h's fixed orders, as tile_nt_3x9
    v16 t[9];
    for (int j = 0; j < 9; ++j) t[j] = (v16)s[i][j];
    const v8 h = hsum16x8(t);
    for (int j = 0; j < 8; ++j) acc[i][j] += static_cast<double>(h[j]);
    acc[i][8] += static_cast<double>(hsum16(t[8]));
  }
}

}  // namespace

void gemm_nn_bf16(const OperandA& A, int M, const OperandB& B, int N, const float* bias, float* y) {
  const int C2 = (B.C + 1) / 2, R2 = C2 * B.taps;
  const int64_t P = static_cast<int64_t>(B.Ho) * B.Wo, plane = static_cast<int64_t>(B.H) * B.W;
  const int MB = (M + MR - 1) / MR;
  if (P <= 0 || M <= 0 || N <= 0) return;

  // A as pairs, row block mb at ap + mb * R2 * MR; B_n as C2 planes of pairs at xb + n * C2 * plane.
  uint32_t* ap = static_cast<uint32_t*>(pair_scratch(kScratchPairsA, static_cast<int64_t>(MB) * R2 * MR * 4));
  parallel_for(MB, grain_for(MB, static_cast<int64_t>(R2) * MR * 2), [&](int64_t b0, int64_t b1) {
    for (int64_t mb = b0; mb < b1; ++mb) pack_a_pairs(A, M, B.C, B.taps, static_cast<int>(mb), ap + mb * R2 * MR);
  });
  uint32_t* xb = static_cast<uint32_t*>(pair_scratch(kScratchPairsB, static_cast<int64_t>(N) * C2 * plane * 4));
  const int64_t planes = static_cast<int64_t>(N) * C2;
  parallel_for(planes, grain_for(planes, 2 * plane), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int n = static_cast<int>(q / C2), cp = static_cast<int>(q % C2);
      const float* lo = B.x + n * B.n_stride + 2 * cp * plane;
      to_pair_plane(lo, 2 * cp + 1 < B.C ? lo + plane : nullptr, xb + q * plane, plane);
    }
  });
  std::vector<float> init(static_cast<size_t>(MB) * MR);
  for (int m = 0; m < MB * MR; ++m) init[m] = bias && m < M ? bias[m] : 0.0f;

  // Tasks as gemm_nn: (image, block of pixels, block of rows).
  const int64_t G = (P + NR - 1) / NR;
  const int64_t PB = (G + kMaxPanelsPerTask - 1) / kMaxPanelsPerTask;
  const int nc = static_cast<int>((G + PB - 1) / PB) * NR;
  const int MT = (MB + kMaxRowBlocksPerTask - 1) / kMaxRowBlocksPerTask;
  const int mbt = (MB + MT - 1) / MT;
  const int64_t tasks = static_cast<int64_t>(N) * PB * MT;
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    uint32_t* bp = static_cast<uint32_t*>(pair_scratch(kScratchPairsPanel, static_cast<int64_t>(kKc2) * nc * 4));
    Run runs[kMaxPanelsPerTask * kMaxRuns];
    int nruns[kMaxPanelsPerTask];
    for (int64_t task = t0; task < t1; ++task) {
      const int n = static_cast<int>(task / (PB * MT));
      const int64_t pb = task / MT % PB;
      const int mt = static_cast<int>(task % MT);
      const int64_t p0 = pb * nc;
      const int ncur = static_cast<int>(std::min<int64_t>(nc, P - p0));
      const int mb0 = mt * mbt, mb1 = std::min(MB, mb0 + mbt);
      const uint32_t* xn = xb + static_cast<int64_t>(n) * C2 * plane;
      float* yn = y + static_cast<int64_t>(n) * M * P;
      const int panels = (ncur + NR - 1) / NR;
      for (int g = 0; g < panels; ++g) nruns[g] = panel_runs(B, p0, g, ncur, runs + g * kMaxRuns);
      for (int qc = 0; qc < R2; qc += kKc2) {
        const int kc2 = std::min(kKc2, R2 - qc);
        for (int g = 0; g < panels; ++g)
          pack_panel_pairs(B, xn, qc, kc2, runs + g * kMaxRuns, nruns[g], bp + static_cast<int64_t>(g) * kc2 * NR);
        for (int mb = mb0; mb < mb1; ++mb) {
          const int rows = std::min(MR, M - mb * MR);
          const float* in = qc == 0 ? init.data() + mb * MR : nullptr;
          const uint32_t* apanel = ap + (static_cast<int64_t>(mb) * R2 + qc) * MR;
          for (int g = 0; g < panels; ++g) {
            const int q = g * NR, cols = std::min(NR, ncur - q);
            float* c = yn + static_cast<int64_t>(mb) * MR * P + p0 + q;
            tile_bf16_8x32(kc2, apanel, bp + static_cast<int64_t>(g) * kc2 * NR, c, P, rows, cols, in);
          }
        }
      }
    }
  });
}

void gemm_nt_bf16(const RowsA& A, int M, const RowsB& B, int J, int N, int64_t L, float* out, int64_t ldo) {
  if (M <= 0 || J <= 0) return;
  // A's rows (n, i) to BF16 at a16 + (n * M + i) * L, widened where asked; B's whole extent to BF16.
  const bool widen = A.widen_from > 0;
  const int64_t a_count = static_cast<int64_t>(N) * M * L;
  const int64_t b_extent = static_cast<int64_t>(N - 1) * B.n_stride +
                           static_cast<int64_t>((J - 1) / B.taps) * B.c_stride + B.off[B.taps - 1] + L;
  uint16_t* a16 = static_cast<uint16_t*>(pair_scratch(kScratchPairsA, a_count * 2 + 64));
  uint16_t* b16 = static_cast<uint16_t*>(pair_scratch(kScratchPairsB, b_extent * 2 + 64));
  to_bf16_parallel(B.b, b16, b_extent);
  const int64_t arows = static_cast<int64_t>(N) * M;
  parallel_for(arows, grain_for(arows, L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = A.a + (r / M) * A.n_stride + (r % M) * A.i_stride;
      uint16_t* d = a16 + r * L;
      if (!widen) {
        to_bf16(row, d, L);
        continue;
      }
      // Image rows of widen_from values at a pitch of widen_to, zeros between.
      const int Wt = A.widen_to, Wf = A.widen_from;
      for (int64_t x = 0; x < L; x += Wt) {
        const int64_t n = std::min<int64_t>(Wf, L - x);
        to_bf16(row + x / Wt * Wf, d + x, n);
        std::fill(d + x + n, d + std::min<int64_t>(x + Wt, L), uint16_t{0});
      }
    }
  });

  // Tasks and chunks as gemm_nt.
  const int IB = (M + 2) / 3, JB = (J + 8) / 9;
  const int64_t nchunks = std::max<int64_t>((L + kChunkNT - 1) / kChunkNT, 1);
  const int64_t Lc = std::min(L, ((L + nchunks - 1) / nchunks + 31) / 32 * 32);
  const int64_t bplanes = B.taps == 9 ? 1 : 9;
  const int64_t halo = B.taps == 9 ? B.off[8] : 0;
  int ig = static_cast<int>(std::clamp<int64_t>(2 * kBudgetA / (3 * std::max<int64_t>(Lc, 1)), 1, IB));
  int jg = static_cast<int>(std::clamp<int64_t>(2 * kBudgetB / (bplanes * (Lc + halo) + 1), 1, JB));
  while (static_cast<int64_t>((IB + ig - 1) / ig) * ((JB + jg - 1) / jg) < 16 && (ig > 1 || jg > 1)) {
    if (jg >= ig) jg = (jg + 1) / 2;
    else ig = (ig + 1) / 2;
  }
  const int IT = (IB + ig - 1) / ig, JT = (JB + jg - 1) / jg;
  parallel_for(static_cast<int64_t>(IT) * JT, 1, [&](int64_t t0, int64_t t1) {
    std::vector<double> acc;
    for (int64_t task = t0; task < t1; ++task) {
      const int ib0 = static_cast<int>(task / JT) * ig, ib1 = std::min(IB, ib0 + ig);
      const int jb0 = static_cast<int>(task % JT) * jg, jb1 = std::min(JB, jb0 + jg);
      acc.assign(static_cast<size_t>(ib1 - ib0) * (jb1 - jb0) * 27, 0.0);
      for (int n = 0; n < N; ++n)
        for (int64_t x0 = 0; x0 < L; x0 += Lc) {
          const int64_t len = std::min(Lc, L - x0);
          for (int ib = ib0; ib < ib1; ++ib) {
            const uint16_t* a[3];
            for (int u = 0; u < 3; ++u)
              a[u] = a16 + (static_cast<int64_t>(n) * M + std::min(ib * 3 + u, M - 1)) * L + x0;
            for (int jb = jb0; jb < jb1; ++jb) {
              const uint16_t* b[9];
              for (int v = 0; v < 9; ++v) {
                const int j = std::min(jb * 9 + v, J - 1);
                b[v] = b16 + n * B.n_stride + (j / B.taps) * B.c_stride + B.off[j % B.taps] + x0;
              }
              double(*t)[9] = reinterpret_cast<double(*)[9]>(
                  acc.data() + (static_cast<size_t>(ib - ib0) * (jb1 - jb0) + (jb - jb0)) * 27);
              tile_nt_bf16_3x9(a, b, len, t);
            }
          }
        }
      store_nt_tiles(acc.data(), ib0, ib1, jb0, jb1, M, J, out, ldo);
    }
  });
}

#else  // no AVX-512 BF16 in this build: bf16_dot_products() is false and nothing calls these

void gemm_nn_bf16(const OperandA&, int, const OperandB&, int, const float*, float*) {}
void gemm_nt_bf16(const RowsA&, int, const RowsB&, int, int, int64_t, float*, int64_t) {}

#endif

}  // namespace unet::kernels::cpu::detail
