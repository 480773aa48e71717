// Winograd F(4x4, 3x3) for the 3x3 weight gradient on the CPU (kernels/cpu/winograd.h).
//
//   dw[k, c] = G^T [ sum_{n, tiles} E[n, k, tile] (.) D[n, c, tile] ] G       (6x6 -> 3x3)
//   E = A e A^T of the tile's 4x4 dy (zero past Ho x Wo), D = B^T d B of its 6x6 x.
//
// For each of the 36 points xi this is a product over tiles, M[xi](c, k) = sum_t D[xi](c, t)
// E[xi](t, k): D is the forward's input transform (16 tiles per vector, rows of channels), E is
// transformed 16 output channels per vector (gathered from their planes), packed as 32-channel
// panels, so the forward's 8 x 32 tile serves: rows c, columns k, reduction over 128 tiles per
// call, each call's sum added to M (blocked summation). A task owns up to 128 x 128 (c, k) and a
// range of tiles; when there are several ranges (small layers, for enough tasks), their partial
// M are added in range order afterwards. Nothing depends on the thread count.
#include <algorithm>

#include "kernels/cpu/conv_gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/winograd.h"
#include "kernels/cpu/winograd_transforms.h"

namespace unet::kernels::cpu::detail {

namespace {

using namespace wino;

constexpr int kChunk = 128;    // tiles per product call (the reduction block)
constexpr int kMaxRows = 128;  // input channels per task (rows of M)
constexpr int kMaxCols = 128;  // output channels per task (columns of M, multiple of 32)
constexpr int kMinTasks = 8;

}  // namespace

void winograd_conv3x3_weight(const float* x, const float* dy, int N, int C, int H, int W, int K, float* dw,
                             const float* mask, const SkipView& skip) {
  const int Ho = H - 2, Wo = W - 2;
  const int64_t ldw = static_cast<int64_t>(C) * 9;
  if (N <= 0 || C <= 0 || K <= 0 || Ho <= 0 || Wo <= 0) {
    for (int k = 0; k < K; ++k) std::fill_n(dw + k * ldw, static_cast<int64_t>(C) * 9, 0.0f);
    return;
  }
  const int TH = (Ho + kTile - 1) / kTile, TW = (Wo + kTile - 1) / kTile;
  const int64_t per_image = static_cast<int64_t>(TH) * TW, tiles = N * per_image;
  const int64_t chunks = (tiles + kChunk - 1) / kChunk;
  const int64_t plane = static_cast<int64_t>(H) * W, oplane = static_cast<int64_t>(Ho) * Wo;
  // Blocking: rows (c) in multiples of 8, columns (k) in multiples of 32, then ranges of chunks.
  const int cr = std::min((C + 7) / 8 * 8, kMaxRows), kc = std::min((K + 31) / 32 * 32, kMaxCols);
  const int CR = (C + cr - 1) / cr, KC = (K + kc - 1) / kc;
  const int64_t units = static_cast<int64_t>(CR) * KC;
  int64_t per_range = chunks;
  if (units < kMinTasks) per_range = std::max<int64_t>(1, (chunks * units + kMinTasks - 1) / kMinTasks);
  const int64_t ranges = (chunks + per_range - 1) / per_range;
  const int64_t mfloats = int64_t{kPoints} * cr * kc;  // a unit's M: [xi][k / 32][c][32]
  float* partial = ranges > 1 ? scratch(kScratchWinoUShared, units * ranges * mfloats) : nullptr;
  const int64_t plen = static_cast<int64_t>(kChunk);  // D rows and E panels: kChunk tiles long

  // dw[k, c] for one unit from its M.
  auto finish = [&](int64_t unit, const float* m) {
    const int c0 = static_cast<int>(unit / KC) * cr, k0 = static_cast<int>(unit % KC) * kc;
    for (int kb = 0; kb < kc / 32; ++kb)
      for (int c = c0; c < std::min(C, c0 + cr); ++c)
        for (int h = 0; h < 2; ++h) {
          const int kf = k0 + kb * 32 + h * 16;
          if (kf >= K) continue;
          v16 t[9];
          dw_lanes(m + (static_cast<int64_t>(kb) * cr + (c - c0)) * 32 + h * 16, static_cast<int64_t>(cr) * kc, t);
          alignas(64) float o[9][16];
          for (int tap = 0; tap < 9; ++tap) store16(o[tap], t[tap]);
          for (int l = 0; l < std::min(16, K - kf); ++l)
            for (int tap = 0; tap < 9; ++tap) dw[(kf + l) * ldw + c * 9 + tap] = o[tap][l];
        }
  };

  parallel_for(units * ranges, 1, [&](int64_t t0, int64_t t1) {
    float* db = scratch(kScratchWinoV, int64_t{kPoints} * cr * plen);  // D: [xi][c - c0][tile]
    float* eb = scratch(kScratchWinoU, int64_t{kPoints} * kc * plen);  // E: [xi][k / 32][tile][32]
    float* local = ranges > 1 ? nullptr : scratch(kScratchWinoM, mfloats);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t unit = task / ranges, range = task % ranges;
      const int c0 = static_cast<int>(unit / KC) * cr, k0 = static_cast<int>(unit % KC) * kc;
      float* m = ranges > 1 ? partial + (unit * ranges + range) * mfloats : local;
      const int64_t ch0 = range * per_range, ch1 = std::min(chunks, ch0 + per_range);
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const int64_t q0 = ch * kChunk, q1 = std::min(tiles, q0 + kChunk);
        const int used = static_cast<int>(q1 - q0), padded = (used + kPanel - 1) / kPanel * kPanel;
        const int64_t dxi = static_cast<int64_t>(cr) * plen, exi = static_cast<int64_t>(kc) * plen;
        // D rows for this unit's channels: runs of up to 16 tiles of one tile row.
        for (int cc = 0; cc < cr; ++cc) {
          float* drow = db + static_cast<int64_t>(cc) * plen;
          if (c0 + cc >= C) {
            for (int xi = 0; xi < kPoints; ++xi) std::fill_n(drow + xi * dxi, padded, 0.0f);
            continue;
          }
          for (int64_t q = q0; q < q1;) {
            const int n = static_cast<int>(q / per_image);
            const int64_t rem = q % per_image;
            const int ty = static_cast<int>(rem / TW), tx = static_cast<int>(rem % TW);
            const int len = static_cast<int>(std::min<int64_t>({TW - tx, q1 - q, kLanes}));
            const int c = c0 + cc;
            const bool from_skip = c < skip.Cs;  // the skip connection's crop, read in place
            const float* xp =
                from_skip ? skip.plane(n, c) : x + (static_cast<int64_t>(n) * (C - skip.Cs) + c - skip.Cs) * plane;
            const int64_t ld = from_skip ? skip.Ws : W, ahead = from_skip ? int64_t{skip.Hs} * skip.Ws : plane;
            const bool same_source = from_skip == (c + 2 < skip.Cs);  // two channels on, still in this tensor
            input_tiles(xp, H, W, ld, ty * kTile, tx * kTile, len, drow + (q - q0), dxi,
                        c + 2 < std::min(C, c0 + cr) && same_source ? 2 * ahead : 0);
            q += len;
          }
          if (used < padded)
            for (int xi = 0; xi < kPoints; ++xi) std::fill(drow + xi * dxi + used, drow + xi * dxi + padded, 0.0f);
        }
        // E panels for this unit's output channels, 16 per vector.
        for (int64_t q = q0; q < q0 + padded; ++q)
          for (int kk = 0; kk < kc; kk += 16) {
            float* e = eb + static_cast<int64_t>(kk / 32) * plen * 32 + (q - q0) * 32 + kk % 32;
            const int n16 = std::clamp(K - (k0 + kk), 0, 16);
            if (q >= q1 || n16 == 0) {
              for (int xi = 0; xi < kPoints; ++xi) store16(e + xi * exi, v16{});
              continue;
            }
            const int n = static_cast<int>(q / per_image);
            const int64_t rem = q % per_image;
            const int ty = static_cast<int>(rem / TW), tx = static_cast<int>(rem % TW);
            const int64_t off = (static_cast<int64_t>(n) * K + k0 + kk) * oplane;
            dy_tile_channels(dy + off, oplane, n16, Ho, Wo, ty * kTile, tx * kTile, e, exi,
                             mask ? mask + off : nullptr);
          }
        // M[xi](c, k) (+)= D[xi](c, tiles) . E[xi](tiles, k)
        const bool first = ch == ch0;
        for (int xi = 0; xi < kPoints; ++xi)
          for (int kb = 0; kb < kc / 32; ++kb) {
            const float* bp = eb + xi * exi + static_cast<int64_t>(kb) * plen * 32;
            for (int rb = 0; rb < cr / 8; ++rb)
              tile_8xw<2>(padded, db + xi * dxi + static_cast<int64_t>(rb) * 8 * plen, plen, bp,
                          m + xi * mfloats / kPoints + (static_cast<int64_t>(kb) * cr + rb * 8) * 32, first);
          }
      }
      if (ranges == 1) finish(unit, m);
    }
  });
  if (ranges > 1)
    parallel_for(units, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t unit = u0; unit < u1; ++unit) {
        float* m0 = partial + unit * ranges * mfloats;
        for (int64_t r = 1; r < ranges; ++r) {  // in range order, whatever the threads
          const float* mr = m0 + r * mfloats;
          for (int64_t i = 0; i < mfloats; ++i) m0[i] += mr[i];
        }
        finish(unit, m0);
      }
    });
}

}  // namespace unet::kernels::cpu::detail
