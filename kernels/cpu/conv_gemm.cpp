// The blocked convolution products of kernels/cpu/conv_gemm.h.
#include "kernels/cpu/conv_gemm.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu::detail {

float* scratch(int slot, int64_t floats) {
  struct Buffers {
    float* p[kScratchSlots] = {};
    int64_t n[kScratchSlots] = {};
    ~Buffers() {
      for (float* q : p) std::free(q);
    }
  };
  thread_local Buffers s;
  if (floats > s.n[slot]) {
    std::free(s.p[slot]);
    const int64_t n = (floats + 15) / 16 * 16;
    s.p[slot] = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(n) * sizeof(float)));
    if (!s.p[slot]) {  // the pool hands the exception to the thread that started the loop
      s.n[slot] = 0;
      throw std::bad_alloc();
    }
    s.n[slot] = n;
  }
  return s.p[slot];
}

namespace {

// ---- gemm_nn --------------------------------------------------------------------------------------

// Reduction block. A task packs its kc x (at most 8 x 32) block of B once (<= 256 KiB, in L2) and
// runs every row block of the task over it; the 8 x kc micro-panel of A stays in L1 meanwhile.
constexpr int kKc = 256;
constexpr int kMaxPanelsPerTask = 8;      // pixels per task: at most 8 x 32
constexpr int kMaxRowBlocksPerTask = 16;  // rows per task: at most 16 x 8
constexpr int kMaxRuns = NR + 1;          // runs of a panel (rows of one pixel when Wo == 1)

// Row block mb of A (rows mb*MR ..) as R x MR floats, zero rows past M.
void pack_a_block(const OperandA& A, int M, int R, int mb, float* dst) {
  for (int r = 0; r < R; ++r) {
    const int64_t roff = (r / A.taps) * A.k_stride + (r % A.taps) * A.t_stride;
    for (int i = 0; i < MR; ++i) {
      const int m = mb * MR + i;
      dst[r * MR + i] = m < M ? A.a[m * A.m_stride + roff] : 0.0f;
    }
  }
}

// Rows [r0, r0 + kc) of B_n for the pixels of `runs` into one panel (kc x NR, row rr at
// dst + rr*NR), zero in lanes past the runs: each run is a piece of one shifted input row.
void pack_panel(const OperandB& B, int n, const float* xn, const float* mn, int r0, int kc, const Run* runs, int nruns,
                float* dst) {
  const int64_t plane = static_cast<int64_t>(B.H) * B.W;
  const int filled = runs[nruns - 1].lane + runs[nruns - 1].len;
  for (int rr = 0; rr < kc; ++rr) {
    const int r = r0 + rr, c = r / B.taps, t = r % B.taps;
    int di = 0, dj = 0;
    if (B.taps == 9) {
      di = B.flip ? 2 - t / 3 : t / 3;
      dj = B.flip ? 2 - t % 3 : t % 3;
    }
    const bool from_skip = c < B.skip.Cs;  // the skip connection's crop, read in place
    const float* xc = from_skip ? B.skip.plane(n, c) : xn + (c - B.skip.Cs) * plane;
    const int64_t ld = from_skip ? B.skip.Ws : B.W;
    const float* mc = mn ? mn + c * plane : nullptr;
    float* d = dst + rr * NR;
    for (int u = 0; u < nruns; ++u) {
      const Run& run = runs[u];
      const int si = run.i + di - B.pad, sj = run.j + dj - B.pad;
      float* o = d + run.lane;
      if (si < 0 || si >= B.H) {
        std::fill(o, o + run.len, 0.0f);
        continue;
      }
      const float* row = xc + si * ld;
      const float* mrow = mc ? mc + static_cast<int64_t>(si) * B.W : nullptr;
      // The next panels read on along the same rows: ask for them now, since nothing else would
      // (hundreds of interleaved rows are more streams than the hardware prefetcher follows).
      if (dj == 0) {
        __builtin_prefetch(row + sj + 2 * NR);
        __builtin_prefetch(row + sj + 2 * NR + 16);
      }
      if (sj >= 0 && sj + run.len <= B.W) {
        if (mrow) masked_run(o, row + sj, mrow + sj, run.len);
        else copy_run(o, row + sj, run.len);
      } else {  // the zero padding of the data gradient: zeros, the row's overlap, zeros
        const int lo = std::clamp(-sj, 0, run.len), hi = std::clamp(B.W - sj, lo, run.len);
        std::fill(o, o + lo, 0.0f);
        if (hi > lo) {
          if (mrow) masked_run(o + lo, row + sj + lo, mrow + sj + lo, hi - lo);
          else copy_run(o + lo, row + sj + lo, hi - lo);
        }
        std::fill(o + hi, o + run.len, 0.0f);
      }
    }
    if (filled < NR) std::fill(d + filled, d + NR, 0.0f);
  }
}

}  // namespace

int panel_runs(const OperandB& B, int64_t p0, int g, int nc, Run* runs) {
  int lane = 0, count = 0;
  const int end = std::min(NR, nc - g * NR);
  int64_t p = p0 + static_cast<int64_t>(g) * NR;
  while (lane < end) {
    const int i = static_cast<int>(p / B.Wo), j = static_cast<int>(p % B.Wo);
    const int len = std::min(B.Wo - j, end - lane);
    runs[count++] = {lane, len, i, j};
    lane += len;
    p += len;
  }
  return count;
}

void gemm_nn(const OperandA& A, int M, const OperandB& B, int N, const float* bias, float* y, bool relu) {
  assert(!B.mask || B.skip.Cs == 0);  // a mask is laid out as the whole input: no skip beside it
  const int R = B.C * B.taps;
  const int64_t P = static_cast<int64_t>(B.Ho) * B.Wo;
  const int MB = (M + MR - 1) / MR;
  if (P <= 0 || M <= 0 || N <= 0) return;

  // A row-major with contiguous rows (the forward's weights [K, C*9]) is read in place; any other
  // layout is packed once per call: row block mb as R x MR floats at ap + mb * R * MR.
  const bool in_place = A.taps == 1 ? A.k_stride == 1 : A.k_stride == A.taps && A.t_stride == 1;
  float* ap = in_place ? nullptr : scratch(kScratchA, static_cast<int64_t>(MB) * R * MR);
  if (!in_place)
    parallel_for(MB, grain_for(MB, static_cast<int64_t>(R) * MR), [&](int64_t b0, int64_t b1) {
      for (int64_t mb = b0; mb < b1; ++mb) pack_a_block(A, M, R, static_cast<int>(mb), ap + mb * R * MR);
    });
  std::vector<float> init(static_cast<size_t>(MB) * MR);  // bias (or zeros) per padded row
  for (int m = 0; m < MB * MR; ++m) init[m] = bias && m < M ? bias[m] : 0.0f;

  // Tasks: (image, block of pixels, block of rows), claimed dynamically. Blocks are split evenly
  // so that a small layer still gives every thread a fair share.
  const int64_t G = (P + NR - 1) / NR;  // pixel panels per image
  const int64_t PB = (G + kMaxPanelsPerTask - 1) / kMaxPanelsPerTask;
  const int nc = static_cast<int>((G + PB - 1) / PB) * NR;
  const int MT = (MB + kMaxRowBlocksPerTask - 1) / kMaxRowBlocksPerTask;
  const int mbt = (MB + MT - 1) / MT;
  const int64_t tasks = static_cast<int64_t>(N) * PB * MT;
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    float* bp = scratch(kScratchB, static_cast<int64_t>(kKc) * nc);
    Run runs[kMaxPanelsPerTask * kMaxRuns];
    int nruns[kMaxPanelsPerTask];
    for (int64_t task = t0; task < t1; ++task) {
      const int n = static_cast<int>(task / (PB * MT));
      const int64_t pb = task / MT % PB;
      const int mt = static_cast<int>(task % MT);
      const int64_t p0 = pb * nc;
      const int ncur = static_cast<int>(std::min<int64_t>(nc, P - p0));
      const int mb0 = mt * mbt, mb1 = std::min(MB, mb0 + mbt);
      const float* xn = B.x + n * B.n_stride;
      const float* mn = B.mask ? B.mask + n * B.n_stride : nullptr;
      float* yn = y + static_cast<int64_t>(n) * M * P;
      const int panels = (ncur + NR - 1) / NR;
      for (int g = 0; g < panels; ++g) nruns[g] = panel_runs(B, p0, g, ncur, runs + g * kMaxRuns);
      for (int pc = 0; pc < R; pc += kKc) {
        const int kc = std::min(kKc, R - pc);
        const bool last = relu && pc + kc == R;  // the ReLU goes with the sum's last store
        for (int g = 0; g < panels; ++g)
          pack_panel(B, n, xn, mn, pc, kc, runs + g * kMaxRuns, nruns[g], bp + static_cast<int64_t>(g) * kc * NR);
        for (int mb = mb0; mb < mb1; ++mb) {
          const int rows = std::min(MR, M - mb * MR);
          const float* in = pc == 0 ? init.data() + mb * MR : nullptr;
          for (int g = 0; g < panels; ++g) {
            const int q = g * NR, cols = std::min(NR, ncur - q);
            const float* bpanel = bp + static_cast<int64_t>(g) * kc * NR;
            float* c = yn + static_cast<int64_t>(mb) * MR * P + p0 + q;
            if (in_place)
              tile_nn_8x32<false>(kc, A.a + static_cast<int64_t>(mb) * MR * A.m_stride + pc, A.m_stride, bpanel, c, P,
                                  rows, cols, in, last);
            else
              tile_nn_8x32<true>(kc, ap + (static_cast<int64_t>(mb) * R + pc) * MR, 0, bpanel, c, P, rows, cols, in,
                                 last);
          }
        }
      }
    }
  });
}

// ---- gemm_nt --------------------------------------------------------------------------------------

namespace {
constexpr int64_t kChunkNT = 2048;   // pixels per float partial sum (then double)
constexpr int64_t kBudgetA = 24576;  // floats of A rows per chunk and task (96 KiB)
constexpr int64_t kBudgetB = 65536;  // floats of B rows per chunk and task (256 KiB)
}  // namespace

void store_nt_tiles(const double* acc, int ib0, int ib1, int jb0, int jb1, int M, int J, float* out, int64_t ldo) {
  for (int ib = ib0; ib < ib1; ++ib)
    for (int jb = jb0; jb < jb1; ++jb) {
      const double* t = acc + (static_cast<size_t>(ib - ib0) * (jb1 - jb0) + (jb - jb0)) * 27;
      for (int u = 0; u < 3 && ib * 3 + u < M; ++u)
        for (int v = 0; v < 9 && jb * 9 + v < J; ++v)
          out[(ib * 3 + u) * ldo + jb * 9 + v] = static_cast<float>(t[u * 9 + v]);
    }
}

void gemm_nt(const RowsA& A, int M, const RowsB& B, int J, int N, int64_t L, float* out, int64_t ldo) {
  if (M <= 0 || J <= 0) return;
  const int IB = (M + 2) / 3, JB = (J + 8) / 9;
  // Equal chunks of at most kChunkNT pixels (a multiple of 16 but for the last): a short last chunk
  // would pay a whole tile's fixed cost for a few pixels.
  const int64_t nchunks = std::max<int64_t>((L + kChunkNT - 1) / kChunkNT, 1);
  const int64_t Lc = std::min(L, ((L + nchunks - 1) / nchunks + 15) / 16 * 16);
  // Task = (group of i blocks, group of j blocks) whose rows of one chunk fit in L2.
  const int64_t bplanes = B.taps == 9 ? 1 : 9;  // distinct B rows per j block
  const int64_t halo = B.taps == 9 ? B.off[8] : 0;
  int ig = static_cast<int>(std::clamp<int64_t>(kBudgetA / (3 * std::max<int64_t>(Lc, 1)), 1, IB));
  int jg = static_cast<int>(std::clamp<int64_t>(kBudgetB / (bplanes * (Lc + halo) + 1), 1, JB));
  // Enough tasks for every thread, several times over, to balance when cores are shared.
  while (static_cast<int64_t>((IB + ig - 1) / ig) * ((JB + jg - 1) / jg) < 16 && (ig > 1 || jg > 1)) {
    if (jg >= ig) jg = (jg + 1) / 2;
    else ig = (ig + 1) / 2;
  }
  const int IT = (IB + ig - 1) / ig, JT = (JB + jg - 1) / jg;
  const bool widen = A.widen_from > 0;
  parallel_for(static_cast<int64_t>(IT) * JT, 1, [&](int64_t t0, int64_t t1) {
    std::vector<double> acc;
    float* wide = widen ? scratch(kScratchWide, static_cast<int64_t>(ig) * 3 * (Lc + 16)) : nullptr;
    for (int64_t task = t0; task < t1; ++task) {
      const int ib0 = static_cast<int>(task / JT) * ig, ib1 = std::min(IB, ib0 + ig);
      const int jb0 = static_cast<int>(task % JT) * jg, jb1 = std::min(JB, jb0 + jg);
      acc.assign(static_cast<size_t>(ib1 - ib0) * (jb1 - jb0) * 27, 0.0);
      for (int n = 0; n < N; ++n)
        for (int64_t x0 = 0; x0 < L; x0 += Lc) {
          const int64_t len = std::min(Lc, L - x0);
          for (int ib = ib0; ib < ib1; ++ib) {
            const float* a[3];
            for (int u = 0; u < 3; ++u) {
              const int i = std::min(ib * 3 + u, M - 1);
              const float* row = A.a + n * A.n_stride + i * A.i_stride;
              const float* mrow = A.mask ? A.mask + n * A.n_stride + i * A.i_stride : nullptr;
              if (!widen) {
                a[u] = row + x0;
                continue;
              }
              // The chunk's pixels of this row at width widen_to, zero in the extra columns.
              float* w = wide + (static_cast<int64_t>(ib - ib0) * 3 + u) * (Lc + 16);
              const int Wt = A.widen_to, Wf = A.widen_from;
              for (int64_t x = x0; x < x0 + len;) {
                const int64_t rowi = x / Wt;
                const int col = static_cast<int>(x % Wt);
                const int64_t run = std::min<int64_t>(Wt - col, x0 + len - x);
                const int valid = static_cast<int>(std::clamp<int64_t>(Wf - col, 0, run));
                if (mrow) masked_run(w + (x - x0), row + rowi * Wf + col, mrow + rowi * Wf + col, valid);
                else std::copy(row + rowi * Wf + col, row + rowi * Wf + col + valid, w + (x - x0));
                std::fill(w + (x - x0) + valid, w + (x - x0) + run, 0.0f);
                x += run;
              }
              a[u] = w;
            }
            for (int jb = jb0; jb < jb1; ++jb) {
              const float* b[9];
              for (int v = 0; v < 9; ++v) {
                const int j = std::min(jb * 9 + v, J - 1);
                b[v] = B.b + n * B.n_stride + (j / B.taps) * B.c_stride + B.off[j % B.taps] + x0;
              }
              double(*t)[9] = reinterpret_cast<double(*)[9]>(
                  acc.data() + (static_cast<size_t>(ib - ib0) * (jb1 - jb0) + (jb - jb0)) * 27);
              tile_nt_3x9(a, b, len, t);
            }
          }
        }
      store_nt_tiles(acc.data(), ib0, ib1, jb0, jb1, M, J, out, ldo);
    }
  });
}

}  // namespace unet::kernels::cpu::detail
