// The image-restoration kernels on the CPU (restore/, docs/restore.md): 'same'-size stencils with
// the half-sample mirror boundary and their exact transpose, the 8-neighbour graph Laplacian, the
// non-negative multiplicative update and its elementwise helpers, two reductions. Deterministic: no
// result depends on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "restore/kernels/kernels.h"

namespace unet::restore::kernels::cpu {

using ::unet::kernels::cpu::parallel_for;

namespace {

// Small images (the solver's usual case) run serially: a parallel loop per call costs more than the
// work below these sizes, and far more when the cores are shared with other processes.
constexpr int64_t kParallelElems = int64_t{1} << 16;  // elementwise ops and reductions
constexpr int64_t kParallelMacs = int64_t{1} << 25;   // stencils: pixels * taps

// parallel_for over [0, n) when `par`, in chunks of about n / 64 items; serially otherwise.
template <typename F>
void maybe_parallel(bool par, int64_t n, F&& body) {
  if (par) parallel_for(n, (n + 63) / 64, body);
  else if (n > 0) body(int64_t{0}, n);
}

// m(t): the half-sample symmetric reflection into [0, n) (edge pixel repeated), any t.
inline int mirror(int t, int n) {
  const int p = 2 * n;
  int u = t % p;
  if (u < 0) u += p;
  return u < n ? u : p - 1 - u;
}

// dst[i, j] = sum_{a<kh, b<kw} k[a, b] * src[i + a, j + b]  for i < H, j < W  (src row stride sw).
// Zero taps are skipped (the phase-contrast kernel drops its small taps).
void correlate_valid(const float* src, int sw, const float* k, int kh, int kw, float* dst, int H, int W) {
  const bool par = static_cast<int64_t>(H) * W * kh * kw >= kParallelMacs;
  maybe_parallel(par, H, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* out = dst + static_cast<int64_t>(i) * W;
      std::fill(out, out + W, 0.0f);
      for (int a = 0; a < kh; ++a) {
        const float* row = src + static_cast<int64_t>(i + a) * sw;
        for (int b = 0; b < kw; ++b) {
          const float kab = k[a * kw + b];
          if (kab == 0.0f) continue;
          const float* s = row + b;
#pragma omp simd
          for (int j = 0; j < W; ++j) out[j] += kab * s[j];
        }
      }
    }
  });
}

// Fixed-size chunks summed in double, then the chunks in order: the same sum for any thread count.
constexpr int64_t kChunk = 4096;

template <typename Term>
void chunked_sum(int64_t n, Term term, float* out) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0);
  maybe_parallel(n >= kParallelElems, chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0.0;
      const int64_t end = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < end; ++i) s += term(i);
      part[static_cast<size_t>(c)] = s;
    }
  });
  double s = 0.0;
  for (int64_t c = 0; c < chunks; ++c) s += part[static_cast<size_t>(c)];
  out[0] = static_cast<float>(s);
  out[1] = static_cast<float>(s - static_cast<double>(out[0]));
}

}  // namespace

// y[n,i,j] = sum_{a,b} k[a,b] x[n, m(i+a-rh), m(j+b-rw)]
// as a valid correlation of the mirror-padded plane P[u,v] = x[m(u-rh), m(v-rw)], (H+2rh) x (W+2rw).
void stencil2d(Stream, const float* x, const float* k, float* y, int N, int H, int W, int kh, int kw) {
  const int rh = kh / 2, rw = kw / 2, PH = H + 2 * rh, PW = W + 2 * rw;
  const int64_t plane = static_cast<int64_t>(H) * W;
  std::vector<float> pad(static_cast<size_t>(PH) * PW);
  std::vector<int> col(static_cast<size_t>(PW));
  for (int v = 0; v < PW; ++v) col[v] = mirror(v - rw, W);
  const bool par = static_cast<int64_t>(PH) * PW >= kParallelElems;
  for (int n = 0; n < N; ++n) {
    const float* xn = x + n * plane;
    maybe_parallel(par, PH, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const float* src = xn + static_cast<int64_t>(mirror(static_cast<int>(u) - rh, H)) * W;
        float* dst = pad.data() + u * PW;
        for (int v = 0; v < PW; ++v) dst[v] = src[col[v]];
      }
    });
    correlate_valid(pad.data(), PW, k, kh, kw, y + n * plane, H, W);
  }
}

// The transpose of stencil2d = (mirror padding)^T (valid correlation)^T:
//   z[t,s] = sum_{a,b} k[a,b] y[t-a, s-b]   (t < H+2rh, s < W+2rw; y zero outside), the full
//            convolution, computed as a valid correlation of y zero-padded by (kh-1, kw-1) with the
//            flipped kernel;
//   x[p,q] = sum_{t: m(t-rh)=p} sum_{s: m(s-rw)=q} z[t,s]   (folding the padding back, columns first).
void stencil2d_adjoint(Stream, const float* y, const float* k, float* x, int N, int H, int W, int kh, int kw) {
  const int rh = kh / 2, rw = kw / 2;
  const int ZH = H + 2 * rh, ZW = W + 2 * rw;  // = H + kh - 1, W + kw - 1
  const int YH = H + 2 * (kh - 1), YW = W + 2 * (kw - 1);
  const int64_t plane = static_cast<int64_t>(H) * W;
  std::vector<float> kf(static_cast<size_t>(kh) * kw);
  for (int a = 0; a < kh; ++a)
    for (int b = 0; b < kw; ++b) kf[a * kw + b] = k[(kh - 1 - a) * kw + (kw - 1 - b)];
  std::vector<float> ypad(static_cast<size_t>(YH) * YW, 0.0f), z(static_cast<size_t>(ZH) * ZW),
      zc(static_cast<size_t>(ZH) * W);
  std::vector<int> mrow(static_cast<size_t>(ZH)), mcol(static_cast<size_t>(ZW));
  for (int t = 0; t < ZH; ++t) mrow[t] = mirror(t - rh, H);
  for (int s = 0; s < ZW; ++s) mcol[s] = mirror(s - rw, W);
  const bool par = static_cast<int64_t>(ZH) * ZW >= kParallelElems;
  for (int n = 0; n < N; ++n) {
    const float* yn = y + n * plane;
    float* xn = x + n * plane;
    maybe_parallel(par, H, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::copy(yn + i * W, yn + (i + 1) * W, ypad.data() + (i + kh - 1) * YW + (kw - 1));
    });
    correlate_valid(ypad.data(), YW, kf.data(), kh, kw, z.data(), ZH, ZW);
    maybe_parallel(par, ZH, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* zr = z.data() + t * ZW;
        float* out = zc.data() + t * W;
        std::fill(out, out + W, 0.0f);
        for (int s = 0; s < ZW; ++s) out[mcol[s]] += zr[s];
      }
    });
    std::fill(xn, xn + plane, 0.0f);
    for (int t = 0; t < ZH; ++t) {
      float* out = xn + static_cast<int64_t>(mrow[t]) * W;
      const float* in = zc.data() + static_cast<int64_t>(t) * W;
      for (int q = 0; q < W; ++q) out[q] += in[q];
    }
  }
}

// deg_x[p] = (sum_q w_pq) x[p],  adj_x[p] = sum_q w_pq x[q]  over the 8 neighbours q inside the image;
// forward edges (E, S, SE, SW) read wgt[d] at p, backward ones wgt[d] at the neighbour.
void laplacian8_apply(Stream, const float* x, const float* wgt, float* deg_x, float* adj_x, int N, int H, int W) {
  static const int di[4] = {0, 1, 1, 1}, dj[4] = {1, 0, 1, -1};
  const int64_t plane = static_cast<int64_t>(H) * W;
  maybe_parallel(N * plane >= kParallelElems, static_cast<int64_t>(N) * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int n = static_cast<int>(r / H), i = static_cast<int>(r % H);
      const float* xn = x + n * plane;
      const float* wn = wgt + n * 4 * plane;
      for (int j = 0; j < W; ++j) {
        float deg = 0.0f, adj = 0.0f;
        for (int d = 0; d < 4; ++d) {  // forward edges p -> p + off_d
          const int qi = i + di[d], qj = j + dj[d];
          if (qi < 0 || qi >= H || qj < 0 || qj >= W) continue;
          const float w = wn[d * plane + static_cast<int64_t>(i) * W + j];
          deg += w;
          adj += w * xn[static_cast<int64_t>(qi) * W + qj];
        }
        for (int d = 0; d < 4; ++d) {  // backward edges p - off_d -> p
          const int qi = i - di[d], qj = j - dj[d];
          if (qi < 0 || qi >= H || qj < 0 || qj >= W) continue;
          const int64_t q = static_cast<int64_t>(qi) * W + qj;
          const float w = wn[d * plane + q];
          deg += w;
          adj += w * xn[q];
        }
        const int64_t p = n * plane + static_cast<int64_t>(i) * W + j;
        deg_x[p] = deg * x[p];
        adj_x[p] = adj;
      }
    }
  });
}

// f <- f * (-b + sqrt(b^2 + 4 ap an)) / (2 ap + eps); for b > 0 the numerator is 4 ap an / (b + sqrt(..)).
// Results below 1e-30 become 0: background pixels decay geometrically towards 0 and would otherwise
// reach the denormal range, where CPU arithmetic is many times slower (0 is a fixed point anyway).
constexpr float kFlushBelow = 1e-30f;
void nnmu_update(Stream, float* f, const float* ap, const float* an, const float* b, int64_t n, float eps) {
  maybe_parallel(n >= kParallelElems, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (f[i] <= 0.0f) {  // (a NaN stays NaN: check_finite catches it)
        f[i] = 0.0f;
        continue;
      }
      const float bi = b[i], pn = std::max(ap[i] * an[i], 0.0f);
      const float s = std::sqrt(bi * bi + 4.0f * pn);
      const float num = bi > 0.0f ? 4.0f * pn / (bi + s) : s - bi;
      const float v = f[i] * (num / (2.0f * ap[i] + eps));
      f[i] = v < kFlushBelow ? 0.0f : v;
    }
  });
}

// y = a x + b y; b == 0: y = a x, y not read (the BLAS convention: y may be uninitialised)
void axpby(Stream, float* y, const float* x, float a, float b, int64_t n) {
  maybe_parallel(n >= kParallelElems, n, [&](int64_t i0, int64_t i1) {
    if (b == 0.0f) {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) y[i] = a * x[i];
    } else {
#pragma omp simd
      for (int64_t i = i0; i < i1; ++i) y[i] = a * x[i] + b * y[i];
    }
  });
}

// b = b0 + c / (f + gamma)
void l1_reweight(Stream, const float* f, const float* b0, float* b, int64_t n, float c, float gamma) {
  maybe_parallel(n >= kParallelElems, n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) b[i] = b0[i] + c / (f[i] + gamma);
  });
}

// out = sum_i x[i] y[i] (double, fixed chunks), as a float pair
void dot(Stream, const float* x, const float* y, int64_t n, float* out) {
  chunked_sum(
      n, [&](int64_t i) { return static_cast<double>(x[i]) * static_cast<double>(y[i]); }, out);
}

// out = sum_i log(1 + scale x[i]) (double, fixed chunks), as a float pair
void sum_log1p(Stream, const float* x, int64_t n, float scale, float* out) {
  chunked_sum(
      n, [&](int64_t i) { return std::log1p(static_cast<double>(scale) * static_cast<double>(x[i])); }, out);
}

}  // namespace unet::restore::kernels::cpu
