// Winograd F(4x4, 3x3) on the CPU (kernels/cpu/winograd.h): the driver of the forward and the data
// gradient, and the rule (the weight gradient: kernels/cpu/winograd_weight.cpp).
//
// The output planes are cut into 4 x 4 tiles, numbered across rows and images; 32 consecutive tiles
// form a panel, the column block of the 36 products M[xi] = U[xi] . V[xi] (U: M x R transformed
// filters, V: R x tiles transformed inputs). A task owns a group of panels and a range of output
// channels; for each block of 64 input channels it transforms (or finds transformed) its rows'
// filters and its panels' inputs, multiplies, and adds into its M, then turns M into output
// pixels. Everything a task writes is its own, and only the channel block enters the arithmetic,
// so results do not depend on the blocking or the thread count.
//
// The ragged edge (outputs of 570, 30 or 54 pixels: a last tile row and column of 2 pixels) reads
// zeros past the input and writes only the pixels inside the output. Such a tile still costs its 36
// products, but for 8 outputs (4.5 a pixel) that is what F(2x2, 3x3) would spend (4), so smaller
// tiles at the edge would not save work; what is worth saving is a mostly empty last panel, which
// takes a half-width product when it holds at most 16 tiles.
#include "kernels/cpu/winograd.h"

#include <algorithm>
#include <cassert>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/conv_gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/winograd_transforms.h"

namespace unet::kernels::cpu {

namespace {

Conv3x3Algo algo_from_env() {
  const char* v = std::getenv("UNET_CONV3X3");
  if (v && std::strcmp(v, "direct") == 0) return Conv3x3Algo::kDirect;
  if (v && std::strcmp(v, "winograd") == 0) return Conv3x3Algo::kWinograd;
  return Conv3x3Algo::kAuto;
}

std::atomic<int>& algo_slot() {
  static std::atomic<int> a{static_cast<int>(algo_from_env())};
  return a;
}

}  // namespace

void set_conv3x3_algo(Conv3x3Algo algo) { algo_slot().store(static_cast<int>(algo)); }
Conv3x3Algo conv3x3_algo() { return static_cast<Conv3x3Algo>(algo_slot().load()); }

bool conv3x3_uses_winograd(Conv3x3Pass pass, int N, int C, int H, int W, int K) {
  switch (conv3x3_algo()) {
    case Conv3x3Algo::kDirect:
      return false;
    case Conv3x3Algo::kWinograd:
      return true;
    case Conv3x3Algo::kAuto:
      break;
  }
  if (pass == Conv3x3Pass::kBackwardWeight) {
    const int64_t tiles = int64_t{N} * ((H - 2 + 3) / 4) * ((W - 2 + 3) / 4);
    return C >= kWinogradWeightMinInputs && K >= kWinogradWeightMinOutputs && tiles >= kWinogradWeightMinTiles;
  }
  const bool fwd = pass == Conv3x3Pass::kForward;
  const int R = fwd ? C : K;                             // the products' reduction
  const int Ho = fwd ? H - 2 : H, Wo = fwd ? W - 2 : W;  // the pass's output
  const int64_t tiles = int64_t{N} * ((Ho + 3) / 4) * ((Wo + 3) / 4);
  return R >= kWinogradMinChannels && tiles >= kWinogradMinTiles;
}

namespace detail {

namespace {

using namespace wino;

constexpr int kChannelBlock = 64;     // input channels per reduction block (the error: see tile_8xw)
constexpr int kMaxRowsPerTask = 128;  // output channels per task
constexpr int kMaxPanelsPerTask = 4;
constexpr int kMinTasks = 8;                         // enough to balance two threads on shared cores
constexpr int64_t kSharedFloats = int64_t{1} << 22;  // 16 MiB: the largest transform done once for all tasks
constexpr int kPrefetchChannels = 2;                 // input planes read ahead of the transform
constexpr int kMaxPieces = kPanel;                   // a panel's pieces (one per tile when tile rows are one tile long)

// Up to 16 consecutive tiles of one tile row of one image, at lanes [lane, lane + len) of a panel.
struct Piece {
  int lane, len, n, ty, tx;
};

struct Geometry {
  int N, R, H, W, pad, M;
  int Ho, Wo, TH, TW;
  int64_t tiles, panels;
  int MB;  // 8-row blocks of output channels
};

struct Plan {
  int cb;          // input channels per reduction block
  int kbt, KT;     // 8-row blocks per task, ranges of output channels
  int gp;          // panels per task
  int64_t groups;  // panel groups
  bool shared_u;   // filters transformed once before the tasks (else by each group of panels)
  bool shared_v;   // inputs transformed once before the tasks (else by each range of rows)
};

// Tasks of up to 4 panels and 128 rows, smaller until there are enough of them. A transform that
// several tasks would repeat is done once beforehand when its result fits in kSharedFloats: the
// filters when there are several panel groups (large images), the inputs when there are several
// row ranges (deep layers). The blocking changes which task computes an output, never how: only
// cb enters the arithmetic.
Plan plan_for(const Geometry& g) {
  Plan p;
  p.cb = std::min(g.R, kChannelBlock);
  p.gp = static_cast<int>(std::min<int64_t>(g.panels, kMaxPanelsPerTask));
  p.kbt = std::min(g.MB, kMaxRowsPerTask / 8);
  auto tasks = [&] {
    p.KT = (g.MB + p.kbt - 1) / p.kbt;
    p.groups = (g.panels + p.gp - 1) / p.gp;
    return p.groups * p.KT;
  };
  while (tasks() < kMinTasks && p.kbt > 8) p.kbt = (p.kbt + 1) / 2;
  while (tasks() < kMinTasks && p.gp > 2) p.gp = (p.gp + 1) / 2;
  while (tasks() < kMinTasks && p.kbt > 1) p.kbt = (p.kbt + 1) / 2;
  tasks();
  p.shared_u = p.groups > 1 && int64_t{kPoints} * g.MB * 8 * g.R <= kSharedFloats;
  p.shared_v = p.KT > 1 && int64_t{kPoints} * kPanel * g.panels * g.R <= kSharedFloats;
  return p;
}

int panel_pieces(const Geometry& g, int64_t panel, Piece* out) {
  const int64_t per_image = static_cast<int64_t>(g.TH) * g.TW;
  const int64_t q0 = panel * kPanel, end = std::min(q0 + kPanel, g.tiles);
  int count = 0;
  for (int64_t q = q0; q < end;) {
    const int n = static_cast<int>(q / per_image);
    const int64_t rem = q % per_image;
    const int ty = static_cast<int>(rem / g.TW), tx = static_cast<int>(rem % g.TW);
    const int len = static_cast<int>(std::min<int64_t>({g.TW - tx, end - q, kLanes}));
    out[count++] = {static_cast<int>(q - q0), len, n, ty, tx};
    q += len;
  }
  return count;
}

// The taps of filters (m, c .. c + n), n <= 16: g[t][l] = tap t of filter (m, c + l), zero for l >= n.
void load_filters(const WinoFilters& f, int m, int c, int n, v16 g[9]) {
  const float* w = f.w + m * f.m_stride + c * f.r_stride;
#if defined(__AVX512F__)
  if (15 * f.r_stride + 8 <= INT32_MAX) {  // one gather per tap
    const __mmask16 mask = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
    const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int>(f.r_stride)));
    for (int t = 0; t < 9; ++t) {
      const __m512i idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(f.flip ? 8 - t : t));
      g[t] = reinterpret_cast<v16>(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, w, 4));
    }
    return;
  }
#endif
  alignas(64) float t[9][kLanes] = {};
  for (int l = 0; l < n; ++l)
    for (int tap = 0; tap < 9; ++tap) t[tap][l] = w[l * f.r_stride + (f.flip ? 8 - tap : tap)];
  for (int tap = 0; tap < 9; ++tap) g[tap] = load16a(t[tap]);
}

// U[xi][m - m0][c - c0] for rows m in [m0, m0 + rows), channels c in [c0, c0 + cbk): at
// out + xi * xi_stride + (m - m0) * cbk + (c - c0). Rows past M are zero.
void transform_filters(const WinoFilters& f, int M, int m0, int rows, int c0, int cbk, float* out, int64_t xi_stride) {
  for (int m = m0; m < m0 + rows; ++m) {
    // Two rows on: the gathers wait on memory otherwise (the filters are read once, tens of MB).
    if (m + 2 < M) {
      const float* w = f.w + (m + 2) * f.m_stride + c0 * f.r_stride;
      if (f.r_stride <= 16)
        for (int64_t q = 0; q < cbk * f.r_stride; q += 16) __builtin_prefetch(w + q);
      else
        for (int l = 0; l < cbk; ++l) __builtin_prefetch(w + l * f.r_stride);
    }
    for (int c = c0; c < c0 + cbk; c += kLanes) {
      const int n = std::min(kLanes, c0 + cbk - c);
      float* o = out + static_cast<int64_t>(m - m0) * cbk + (c - c0);
      if (m >= M) {
        for (int xi = 0; xi < kPoints; ++xi) std::fill_n(o + xi * xi_stride, n, 0.0f);
        continue;
      }
      v16 g[9];
      load_filters(f, m, c, n, g);
      weight_tiles(g, n, o, xi_stride);
    }
  }
}

// V[xi][c - c0][lane] of one panel for channels [c0, c0 + cbk): at out + xi * cbk * 32 +
// (c - c0) * 32 + lane. Lanes past the panel's tiles are zero (not stale scratch).
void transform_inputs(const Geometry& g, const float* x, const float* mask, const SkipView& skip, int64_t panel, int c0,
                      int cbk, float* out) {
  Piece pc[kMaxPieces];
  const int np = panel_pieces(g, panel, pc);
  const int64_t plane = static_cast<int64_t>(g.H) * g.W, xi_stride = static_cast<int64_t>(cbk) * kPanel;
  for (int cc = 0; cc < cbk; ++cc)
    for (int k = 0; k < np; ++k) {
      const Piece& q = pc[k];
      const int c = c0 + cc;
      if (c < skip.Cs) {  // the skip connection's crop, read in place
        input_tiles(skip.plane(q.n, c), g.H, g.W, skip.Ws, q.ty * kTile, q.tx * kTile, q.len,
                    out + cc * kPanel + q.lane, xi_stride,
                    cc + kPrefetchChannels < cbk && c + kPrefetchChannels < skip.Cs
                        ? kPrefetchChannels * static_cast<int64_t>(skip.Hs) * skip.Ws
                        : 0);
        continue;
      }
      const int64_t off = (static_cast<int64_t>(q.n) * (g.R - skip.Cs) + c - skip.Cs) * plane;
      input_tiles(x + off, g.H, g.W, g.W, q.ty * kTile - g.pad, q.tx * kTile - g.pad, q.len, out + cc * kPanel + q.lane,
                  xi_stride, cc + kPrefetchChannels < cbk ? kPrefetchChannels * plane : 0, mask ? mask + off : nullptr);
    }
  const int filled = pc[np - 1].lane + pc[np - 1].len;
  if (filled < kPanel)
    for (int xi = 0; xi < kPoints; ++xi)
      for (int cc = 0; cc < cbk; ++cc) {
        float* row = out + xi * xi_stride + cc * kPanel;
        std::fill(row + filled, row + kPanel, 0.0f);
      }
}

}  // namespace

void winograd_conv3x3(const float* x, int N, int R, int H, int W, int pad, const WinoFilters& f, int M,
                      const float* bias, float* y, bool relu, const float* mask, const SkipView& skip) {
  assert(skip.Cs == 0 || (pad == 0 && !mask));
  Geometry g;
  g.N = N, g.R = R, g.H = H, g.W = W, g.pad = pad, g.M = M;
  g.Ho = H + 2 * pad - 2, g.Wo = W + 2 * pad - 2;
  if (N <= 0 || M <= 0 || g.Ho <= 0 || g.Wo <= 0) return;
  if (R <= 0) {  // no input channel: the bias alone
    for (int n = 0; n < N; ++n)
      for (int m = 0; m < M; ++m) {
        const float v = bias ? bias[m] : 0.0f;
        std::fill_n(y + (static_cast<int64_t>(n) * M + m) * g.Ho * g.Wo, static_cast<int64_t>(g.Ho) * g.Wo,
                    relu && !(v > 0.0f) ? 0.0f : v);
      }
    return;
  }
  g.TH = (g.Ho + kTile - 1) / kTile, g.TW = (g.Wo + kTile - 1) / kTile;
  g.tiles = static_cast<int64_t>(N) * g.TH * g.TW;
  g.panels = (g.tiles + kPanel - 1) / kPanel;
  g.MB = (M + 7) / 8;
  const Plan p = plan_for(g);
  const int MB8 = g.MB * 8, rows = p.kbt * 8;
  const int nblocks = (R + p.cb - 1) / p.cb;
  const int64_t oplane = static_cast<int64_t>(g.Ho) * g.Wo;
  // Whether the very last panel holds at most 16 tiles: it then takes the half-width product.
  const bool half_last = g.tiles - (g.panels - 1) * kPanel <= kLanes;

  // The shared transforms, block of input channels [c0, c0 + cbk) at offset c0 * (floats per
  // channel): U as [xi][m][c - c0] (all MB8 rows), V as [panel][xi][c - c0][32].
  float* us = p.shared_u ? scratch(kScratchWinoUShared, int64_t{kPoints} * MB8 * R) : nullptr;
  float* vs = p.shared_v ? scratch(kScratchWinoVShared, int64_t{kPoints} * kPanel * g.panels * R) : nullptr;
  {
    const int64_t urange = p.shared_u ? (g.MB + 7) / 8 : 0;  // 64 rows a unit
    const int64_t uunits = urange * nblocks, vunits = p.shared_v ? g.panels * nblocks : 0;
    parallel_for(uunits + vunits, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        if (u < uunits) {
          const int blk = static_cast<int>(u / urange), r0 = static_cast<int>(u % urange) * 64;
          const int c0 = blk * p.cb, cbk = std::min(p.cb, R - c0);
          transform_filters(f, M, r0, std::min(64, MB8 - r0), c0, cbk,
                            us + int64_t{kPoints} * MB8 * c0 + static_cast<int64_t>(r0) * cbk,
                            static_cast<int64_t>(MB8) * cbk);
        } else {
          const int64_t v = u - uunits, panel = v % g.panels;
          const int c0 = static_cast<int>(v / g.panels) * p.cb, cbk = std::min(p.cb, R - c0);
          transform_inputs(g, x, mask, skip, panel, c0, cbk,
                           vs + int64_t{kPoints} * kPanel * g.panels * c0 + panel * kPoints * cbk * kPanel);
        }
      }
    });
  }

  parallel_for(p.groups * p.KT, 1, [&](int64_t t0, int64_t t1) {
    float* vl = p.shared_v ? nullptr : scratch(kScratchWinoV, int64_t{p.gp} * kPoints * p.cb * kPanel);
    float* ul = p.shared_u ? nullptr : scratch(kScratchWinoU, int64_t{kPoints} * rows * p.cb);
    float* mbuf = scratch(kScratchWinoM, int64_t{p.gp} * kPoints * rows * kPanel);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t grp = task / p.KT;
      const int kr = static_cast<int>(task % p.KT);
      const int m0 = kr * rows, mrows = std::min(rows, MB8 - m0);
      const int64_t pan0 = grp * p.gp;
      const int gpn = static_cast<int>(std::min<int64_t>(p.gp, g.panels - pan0));
      const int64_t mxi = static_cast<int64_t>(mrows) * kPanel;  // M: [panel][xi][m - m0][32]
      for (int blk = 0; blk < nblocks; ++blk) {
        const int c0 = blk * p.cb, cbk = std::min(p.cb, R - c0);
        const int64_t vxi = static_cast<int64_t>(cbk) * kPanel;
        // This task's rows of U[xi]: row m - m0 at ub + xi * uxi + (m - m0) * cbk.
        const float* ub;
        int64_t uxi;
        if (p.shared_u) {
          uxi = static_cast<int64_t>(MB8) * cbk;
          ub = us + int64_t{kPoints} * MB8 * c0 + static_cast<int64_t>(m0) * cbk;
        } else {
          uxi = static_cast<int64_t>(mrows) * cbk;
          transform_filters(f, M, m0, mrows, c0, cbk, ul, uxi);
          ub = ul;
        }
        // This task's panels of V: panel gg's V[xi] at vb + (gg * 36 + xi) * vxi.
        const float* vb;
        if (p.shared_v) {
          vb = vs + int64_t{kPoints} * kPanel * g.panels * c0 + pan0 * kPoints * vxi;
        } else {
          for (int gg = 0; gg < gpn; ++gg)
            transform_inputs(g, x, mask, skip, pan0 + gg, c0, cbk, vl + gg * kPoints * vxi);
          vb = vl;
        }
        // M[xi] (+)= U[xi] . V[xi]
        for (int xi = 0; xi < kPoints; ++xi)
          for (int kb = 0; kb < mrows / 8; ++kb) {
            const float* a = ub + xi * uxi + static_cast<int64_t>(kb) * 8 * cbk;
            for (int gg = 0; gg < gpn; ++gg) {
              const float* bp = vb + (static_cast<int64_t>(gg) * kPoints + xi) * vxi;
              float* c = mbuf + (static_cast<int64_t>(gg) * kPoints + xi) * mxi + kb * 8 * kPanel;
              if (half_last && pan0 + gg == g.panels - 1) tile_8xw<1>(cbk, a, cbk, bp, c, blk == 0);
              else tile_8xw<2>(cbk, a, cbk, bp, c, blk == 0);
            }
          }
      }
      // Output pixels.
      for (int gg = 0; gg < gpn; ++gg) {
        Piece pc[kMaxPieces];
        const int np = panel_pieces(g, pan0 + gg, pc);
        const float* mg = mbuf + static_cast<int64_t>(gg) * kPoints * mxi;
        for (int m = m0; m < std::min(M, m0 + mrows); ++m)
          for (int k = 0; k < np; ++k) {
            const Piece& q = pc[k];
            output_tiles(mg + (m - m0) * kPanel + q.lane, mxi, q.len, bias ? bias[m] : 0.0f,
                         y + (static_cast<int64_t>(q.n) * M + m) * oplane, g.Ho, g.Wo, q.ty * kTile, q.tx * kTile,
                         relu);
          }
      }
    }
  });
}

}  // namespace detail
}  // namespace unet::kernels::cpu
