// conv3x3: unpadded 3x3 convolution, stride 1, x[N,C,H,W] * w[K,C,3,3] + b[K] -> y[N,K,Ho,Wo],
// Ho = H-2, Wo = W-2. In FP32, all three passes are implicit GEMMs on the tiled core of implicit_gemm.cuh
// (128x128 or 64x128 output tile per block, 8x8 outputs per thread, BK = 8 reduction steps with the
// A and B tiles double-buffered in shared memory). What each pass calls A, B, m, n and r:
//
//   forward          m = k,  n = output pixel (n,i,j),  r = c*9 + di*3 + dj        (the weight tile is A)
//   backward data    m = c,  n = input pixel (n,i,j),   r = k*9 + di*3 + dj        (the weight tile is A)
//   backward weight  m = k,  n = r = c*9 + di*3 + dj,   reduction over output pixels (split-K)
#include "kernels/cuda/implicit_gemm.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/tc_convs.cuh"

namespace unet::kernels::cuda {
namespace {

// y[n,k,i,j] = b[k] + sum_{c,di,dj} w[k,c,di,dj] * x[n,c,i+di,j+dj]
//   A[k, r] = w[k*9C + r] (the weights as stored, row-major), B[r, p] = x[n, c, i+di, j+dj].
// kSkip (conv3x3_relu_concat_forward): channels c < Cs read from the skip's window in place. A template flag, so
// that the plain forward keeps its registers (the choice per element costs the 128x128 variant a spill).
template <class T, bool kSkip>
struct Conv3x3FwdOf : T {
  using Out = gemm::ImageOut;
  using Args = Conv3x3Args;
  static constexpr bool A_KF = true, B_KF = false;

  const float* wa;   // &w[first A row of this thread][its reduction offset]
  int64_t a_stride;  // between the thread's A rows
  unsigned a_valid;  // bit e: the e-th A row exists
  int kk_a, kk_b0;   // the thread's reduction offsets (A: fixed; B: first of its rows)
  int Kred, HW, W;
  const float* xb;  // &x[n, 0, i, j] of the thread's B column
  const float* sb;  // &skip[n, 0, oy + i, ox + j] (conv3x3_relu_concat: channels c < Cs)
  int Cs, Ws;
  int64_t HsWs;
  bool b_valid;
  int64_t HoWo;

  __device__ Conv3x3FwdOf(const Args& a, int tid, int64_t m0, int64_t n0) {
    Kred = static_cast<int>(a.Kred);
    HW = a.H * a.W;
    W = a.W;
    kk_a = T::kf_kk(tid);
    const int64_t mrow0 = m0 + T::kf_mn(tid, 0);
    a_stride = static_cast<int64_t>(T::NT / gemm::BK) * Kred;
    wa = a.w + mrow0 * Kred + kk_a;
    a_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    HoWo = static_cast<int64_t>(a.Ho) * a.Wo;
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    b_valid = p < a.Ncols;
    xb = a.x;
    sb = a.skip;
    Cs = kSkip ? a.Cs : 0;
    Ws = a.Ws;
    HsWs = a.skip_plane();
    if (b_valid) {
      const int64_t n = p / HoWo, q = p - n * HoWo;
      const int i = static_cast<int>(q / a.Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * a.Wo);
      xb = a.x_pixel(n, i, j);
      if (kSkip) sb = a.skip_pixel(n, i, j);
    }
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int k = static_cast<int>(k0);
    const bool r_ok = k + kk_a < Kred;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) ra[e] = (r_ok && ((a_valid >> e) & 1u)) ? __ldg(wa + k + e * a_stride) : 0.0f;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int r = k + kk_b0 + e * (T::NT / T::BN);
      float v = 0.0f;
      if (b_valid && r < Kred) {
        const int c = r / 9, tap = r - 9 * c, di = tap / 3, dj = tap - 3 * di;
        if (kSkip && c < Cs) v = __ldg(sb + c * HsWs + di * Ws + dj);
        else v = __ldg(xb + static_cast<int64_t>(c - Cs) * HW + di * W + dj);
      }
      rb[e] = v;
    }
  }
};

template <class T>
using Conv3x3Fwd = Conv3x3FwdOf<T, false>;
template <class T>
using Conv3x3FwdSkip = Conv3x3FwdOf<T, true>;

// dx[n,c,i,j] = sum_{k,di,dj} w[k,c,di,dj] * dy[n,k,i-di,j-dj]   (dy is zero outside [0,Ho)x[0,Wo))
//   A[c, r] = w[k, c, di, dj] = w[(k*C + c)*9 + tap],  B[r, p] = dy[n, k, i-di, j-dj].
template <class T>
struct Conv3x3BwdData : T {
  using Out = gemm::ImageOut;
  using Args = Conv3x3Args;
  static constexpr bool A_KF = true, B_KF = false;

  const float* w;
  int C, kk_a, kk_b0, Kred;
  int64_t crow0;  // the thread's first A row (input channel)
  int64_t M;
  const float* dyb;  // &dy[n, 0, 0, 0] of the thread's B column
  const float* yb;   // &y[n, 0, 0, 0] likewise, the ReLU mask of the fused backward; null without one
  int i, j, Ho, Wo;
  bool b_valid;
  int64_t HoWo, HW;

  __device__ Conv3x3BwdData(const Args& a, int tid, int64_t m0, int64_t n0) {
    w = a.w;
    C = a.C;
    Kred = static_cast<int>(a.Kred);
    M = a.M;
    kk_a = T::kf_kk(tid);
    crow0 = m0 + T::kf_mn(tid, 0);
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    Ho = a.Ho;
    Wo = a.Wo;
    HoWo = static_cast<int64_t>(a.Ho) * a.Wo;
    HW = static_cast<int64_t>(a.H) * a.W;
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    b_valid = p < a.Ncols;
    dyb = a.dy;
    yb = a.y;
    i = j = 0;
    if (b_valid) {
      const int64_t n = p / HW, q = p - n * HW;
      i = static_cast<int>(q / a.W);
      j = static_cast<int>(q - static_cast<int64_t>(i) * a.W);
      dyb = a.dy + n * a.K * HoWo;
      if (a.y) yb = a.y + n * a.K * HoWo;
    }
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int k = static_cast<int>(k0);
    {
      const int r = k + kk_a;
      const bool r_ok = r < Kred;
      const int ko = r / 9, tap = r - 9 * ko;
      const float* wk = w + static_cast<int64_t>(ko) * C * 9 + tap;
#pragma unroll
      for (int e = 0; e < T::A_PER; ++e) {
        const int64_t c = crow0 + e * (T::NT / gemm::BK);
        ra[e] = (r_ok && c < M) ? __ldg(wk + c * 9) : 0.0f;
      }
    }
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int r = k + kk_b0 + e * (T::NT / T::BN);
      float v = 0.0f;
      if (b_valid && r < Kred) {
        const int ko = r / 9, tap = r - 9 * ko, di = tap / 3, dj = tap - 3 * di;
        const int ii = i - di, jj = j - dj;
        if (ii >= 0 && ii < Ho && jj >= 0 && jj < Wo) {
          const int64_t o = ko * HoWo + ii * Wo + jj;
          v = __ldg(dyb + o);
          if (yb && !(__ldg(yb + o) > 0.0f)) v = 0.0f;  // the fused ReLU's mask
        }
      }
      rb[e] = v;
    }
  }
};

// dw[k,c,di,dj] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+di,j+dj]
//   A[k, p] = dy[n, k, i, j],  B[p, r] = x[n, c, i+di, j+dj],  reduction over p = (n,i,j) < N*Ho*Wo.
// Both tiles load kk-fastest: consecutive threads read consecutive pixels.
// kSkip (conv3x3_relu_concat_backward_weight): columns of channels c < Cs read the skip's window in place.
template <class T, bool kSkip>
struct Conv3x3BwdWeightOf : T {
  using Out = gemm::MatrixOut;
  using Args = Conv3x3Args;
  static constexpr bool A_KF = true, B_KF = true;

  const float* dy;
  const float* ym;  // the fused ReLU's output y (its mask on dy), or null
  const float* x;
  int kk;         // the thread's pixel offset within a step (both tiles)
  int64_t krow0;  // the thread's first A row (output channel)
  unsigned a_valid;
  int64_t roff[T::B_PER];  // x offset of each of the thread's B columns from x[n,0,i,j] (-1: no column)
  unsigned from_skip;      // bit e: column e reads the skip's window (offset from skip[n,0,oy+i,ox+j])
  const float* skip;
  int64_t P, HoWo, KHoWo, CHW, CsHsWs;
  int Wo, W, Ws, oy, ox;

  __device__ Conv3x3BwdWeightOf(const Args& a, int tid, int64_t m0, int64_t n0) {
    dy = a.dy;
    ym = a.y;
    x = a.x;
    kk = T::kf_kk(tid);
    krow0 = m0 + T::kf_mn(tid, 0);
    a_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
    const int64_t HW = static_cast<int64_t>(a.H) * a.W;
    from_skip = 0;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t r = n0 + T::kf_mn(tid, e);
      if (r < a.Ncols) {
        const int c = static_cast<int>(r / 9), tap = static_cast<int>(r - 9 * c), di = tap / 3, dj = tap - 3 * di;
        if (kSkip && c < a.Cs) {
          roff[e] = c * a.skip_plane() + di * a.Ws + dj;
          from_skip |= 1u << e;
        } else {
          roff[e] = (c - a.Cs) * HW + di * a.W + dj;
        }
      } else {
        roff[e] = -1;
      }
    }
    P = a.Kred;
    HoWo = static_cast<int64_t>(a.Ho) * a.Wo;
    KHoWo = HoWo * a.K;
    CHW = HW * (a.C - a.Cs);
    CsHsWs = a.Cs * a.skip_plane();
    skip = a.skip;
    Wo = a.Wo;
    W = a.W;
    Ws = a.Ws;
    oy = a.oy;
    ox = a.ox;
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int64_t p = k0 + kk;
    if (p >= P) {
#pragma unroll
      for (int e = 0; e < T::A_PER; ++e) ra[e] = 0.0f;
#pragma unroll
      for (int e = 0; e < T::B_PER; ++e) rb[e] = 0.0f;
      return;
    }
    const int64_t n = p / HoWo, q = p - n * HoWo;
    const int i = static_cast<int>(q / Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * Wo);
    const float* dyp = dy + n * KHoWo + q;
    const float* xp = x + n * CHW + static_cast<int64_t>(i) * W + j;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      ra[e] = ((a_valid >> e) & 1u) ? __ldg(dyp + (krow0 + e * (T::NT / gemm::BK)) * HoWo) : 0.0f;
    if (ym) {  // the fused ReLU's mask
      const float* yp = ym + n * KHoWo + q;
#pragma unroll
      for (int e = 0; e < T::A_PER; ++e)
        if (((a_valid >> e) & 1u) && !(__ldg(yp + (krow0 + e * (T::NT / gemm::BK)) * HoWo) > 0.0f)) ra[e] = 0.0f;
    }
    if (!kSkip) {
#pragma unroll
      for (int e = 0; e < T::B_PER; ++e) rb[e] = roff[e] >= 0 ? __ldg(xp + roff[e]) : 0.0f;
      return;
    }
    const float* sp = from_skip ? skip + n * CsHsWs + static_cast<int64_t>(oy + i) * Ws + ox + j : xp;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) rb[e] = roff[e] >= 0 ? __ldg(((from_skip >> e) & 1u ? sp : xp) + roff[e]) : 0.0f;
  }
};

template <class T>
using Conv3x3BwdWeight = Conv3x3BwdWeightOf<T, false>;
template <class T>
using Conv3x3BwdWeightSkip = Conv3x3BwdWeightOf<T, true>;

}  // namespace

void conv3x3_forward(Stream s, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                     int H, int W, int K) {
  Conv3x3Args a = Conv3x3Args::make(C, H, W, K);
  a.x = x, a.w = w, a.M = K, a.Ncols = static_cast<int64_t>(N) * a.Ho * a.Wo, a.Kred = 9 * static_cast<int64_t>(C);
  const auto out = gemm::ImageOut::make(y, b, static_cast<int64_t>(a.Ho) * a.Wo, K);
  if (prec == Precision::FP32) gemm::launch<Conv3x3Fwd>(as_stream(s), a, out);
  else tc::conv3x3_forward(as_stream(s), prec, a, out);
}

// The forward with the ReLU in its epilogue: the same product, max(0, bias + sum) stored (ImageOut::act),
// on the FP32 core and the tensor-core one alike; split-K applies it in the reduction.
void conv3x3_relu_forward(Stream s, Precision prec, const float* x, const float* w, const float* b, float* y, int N,
                          int C, int H, int W, int K) {
  Conv3x3Args a = Conv3x3Args::make(C, H, W, K);
  a.x = x, a.w = w, a.M = K, a.Ncols = static_cast<int64_t>(N) * a.Ho * a.Wo, a.Kred = 9 * static_cast<int64_t>(C);
  const auto out = gemm::ImageOut::make(y, b, static_cast<int64_t>(a.Ho) * a.Wo, K, true);
  if (prec == Precision::FP32) gemm::launch<Conv3x3Fwd>(as_stream(s), a, out);
  else tc::conv3x3_forward(as_stream(s), prec, a, out);
}

namespace {
// g = dy * (y > 0) into a workspace: the tensor-core kernels gather dy by cp.async straight into shared memory,
// with no register stage to apply the mask in.
__global__ void relu_mask_kernel(const float* __restrict__ dy, const float* __restrict__ y, float* __restrict__ g,
                                 int64_t n) {
  for (int64_t i : grid_stride(n)) g[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// Elements of dy for an H x W input (none below 3 x 3).
int64_t dy_elements(int N, int H, int W, int K) {
  const Conv3x3Args a = Conv3x3Args::make(1, H, W, K);
  return static_cast<int64_t>(N) * K * a.Ho * a.Wo;
}

// Runs body(g) with g = dy * (y > 0) of n elements in a stream-ordered workspace, freed after body's work.
template <class Body>
void with_masked(Stream s, const float* dy, const float* y, int64_t n, Body body) {
  gemm::Workspace g(n, as_stream(s));
  launch_over(n, s, relu_mask_kernel, dy, y, g.get(), n);
  body(static_cast<const float*>(g.get()));
  g.release();
}
}  // namespace

// y: the fused ReLU's output or null (conv3x3_relu_backward_data): the FP32 core masks dy as it loads it; the
// tensor cores read a masked copy.
// c0, M: only input channels [c0, c0 + M) of dx are computed (dx holds those M): the rows of the product from
// weight row c0 on (the decoder's skip and up-convolution halves, conv3x3_relu_concat).
static void backward_data(Stream s, Precision prec, const float* dy, const float* y, const float* w, float* dx, int N,
                          int C, int H, int W, int K, int c0 = 0, int M = -1) {
  if (M < 0) M = C;
  Conv3x3Args a = Conv3x3Args::make(C, H, W, K);
  a.dy = dy, a.w = w + static_cast<int64_t>(c0) * 9, a.M = M, a.Ncols = static_cast<int64_t>(N) * H * W,
  a.Kred = 9 * static_cast<int64_t>(K);
  const auto out = gemm::ImageOut::make(dx, nullptr, static_cast<int64_t>(H) * W, M);
  if (prec == Precision::FP32) {
    a.y = y;
    gemm::launch<Conv3x3BwdData>(as_stream(s), a, out);
    return;
  }
  if (!y) return tc::conv3x3_backward_data(as_stream(s), prec, a, out);
  with_masked(s, dy, y, dy_elements(N, H, W, K), [&](const float* g) {
    a.dy = g;
    tc::conv3x3_backward_data(as_stream(s), prec, a, out);
  });
}

void conv3x3_backward_data(Stream s, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                           int W, int K) {
  backward_data(s, prec, dy, nullptr, w, dx, N, C, H, W, K);
}

void conv3x3_relu_backward_data(Stream s, Precision prec, const float* dy, const float* y, const float* w, float* dx,
                                int N, int C, int H, int W, int K) {
  backward_data(s, prec, dy, y, w, dx, N, C, H, W, K);
}

// dw: the product over every output pixel (split-K, reduced in order); db: the sums of its A rows (dy), taken in
// the same kernel (gemm_out.cuh, MatrixOut::sums).
// y: the fused ReLU's output or null (conv3x3_relu_backward_weight), as in backward_data; db sums the masked dy.
// skip (conv3x3_relu_concat): x's first Cs channels read in place from the skip's window.
static void backward_weight(Stream s, Precision prec, const float* x, const float* dy, const float* y, float* dw,
                            float* db, int N, int C, int H, int W, int K, const float* skip = nullptr, int Cs = 0,
                            int Hs = 0, int Ws = 0) {
  Conv3x3Args a = Conv3x3Args::make(C, H, W, K);
  a.x = x, a.dy = dy, a.M = K, a.Ncols = 9 * static_cast<int64_t>(C), a.Kred = static_cast<int64_t>(N) * a.Ho * a.Wo;
  if (Cs > 0) a.set_skip(skip, Cs, Hs, Ws);
  const gemm::MatrixOut out{dw, a.Ncols, db};
  if (prec == Precision::FP32) {
    a.y = y;
    if (Cs > 0) gemm::launch<Conv3x3BwdWeightSkip>(as_stream(s), a, out);
    else gemm::launch<Conv3x3BwdWeight>(as_stream(s), a, out);
    return;
  }
  if (!y) return tc::conv3x3_backward_weight(as_stream(s), prec, a, out);
  with_masked(s, dy, y, dy_elements(N, H, W, K), [&](const float* g) {
    a.dy = g;
    tc::conv3x3_backward_weight(as_stream(s), prec, a, out);
  });
}

void conv3x3_backward_weight(Stream s, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                             int C, int H, int W, int K) {
  backward_weight(s, prec, x, dy, nullptr, dw, db, N, C, H, W, K);
}

void conv3x3_relu_backward_weight(Stream s, Precision prec, const float* x, const float* dy, const float* y, float* dw,
                                  float* db, int N, int C, int H, int W, int K) {
  backward_weight(s, prec, x, dy, y, dw, db, N, C, H, W, K);
}

// Both passes: the FP32 core masks dy in each product's gather; the tensor cores share one masked copy.
void conv3x3_relu_backward(Stream s, Precision prec, const float* x, const float* dy, const float* y, const float* w,
                           float* dx, float* dw, float* db, int N, int C, int H, int W, int K) {
  auto passes = [&](const float* g, const float* mask) {
    if (dx) backward_data(s, prec, g, mask, w, dx, N, C, H, W, K);
    if (dw) backward_weight(s, prec, x, g, mask, dw, db, N, C, H, W, K);
  };
  if (prec == Precision::FP32 || !(dx && dw)) return passes(dy, y);  // one pass: its own mask, if any
  with_masked(s, dy, y, dy_elements(N, H, W, K), [&](const float* g) { passes(g, nullptr); });
}

// conv3x3_relu_concat: the decoder's first convolution with the skip's crop read in place (Conv3x3Args::skip)
// by the forward's and the weight gradient's gathers, on the FP32 core and the tensor cores alike. The data
// gradient runs the product's up-convolution rows straight into dup and its skip rows into a window-sized
// workspace, which crop_concat_backward places into dskip (zero outside the window).
void conv3x3_relu_concat_forward(Stream s, Precision prec, const float* skip, const float* up, const float* w,
                                 const float* b, float* y, int N, int Cs, int Hs, int Ws, int Cu, int H, int W, int K) {
  const int C = Cs + Cu;
  Conv3x3Args a = Conv3x3Args::make(C, H, W, K);
  a.x = up, a.w = w, a.M = K, a.Ncols = static_cast<int64_t>(N) * a.Ho * a.Wo, a.Kred = 9 * static_cast<int64_t>(C);
  a.set_skip(skip, Cs, Hs, Ws);
  const auto out = gemm::ImageOut::make(y, b, static_cast<int64_t>(a.Ho) * a.Wo, K, true);
  if (prec == Precision::FP32) gemm::launch<Conv3x3FwdSkip>(as_stream(s), a, out);
  else tc::conv3x3_forward(as_stream(s), prec, a, out);
}

namespace {
// The concatenated convolution's data gradient from g (masked by `mask` as it is read, or already masked).
void concat_data(Stream s, Precision prec, const float* g, const float* mask, const float* w, float* dskip, float* dup,
                 int N, int Cs, int Hs, int Ws, int Cu, int H, int W, int K) {
  const int C = Cs + Cu;
  backward_data(s, prec, g, mask, w, dup, N, C, H, W, K, Cs, Cu);
  gemm::Workspace window(static_cast<int64_t>(N) * Cs * H * W, as_stream(s));
  backward_data(s, prec, g, mask, w, window.get(), N, C, H, W, K, 0, Cs);
  crop_concat_backward(s, window.get(), dskip, nullptr, N, Cs, Hs, Ws, 0, H, W);
  window.release();
}
}  // namespace

void conv3x3_relu_concat_backward_data(Stream s, Precision prec, const float* dy, const float* y, const float* w,
                                       float* dskip, float* dup, int N, int Cs, int Hs, int Ws, int Cu, int H, int W,
                                       int K) {
  if (prec == Precision::FP32) return concat_data(s, prec, dy, y, w, dskip, dup, N, Cs, Hs, Ws, Cu, H, W, K);
  // The tensor cores read a masked copy, made once for both halves.
  with_masked(s, dy, y, dy_elements(N, H, W, K),
              [&](const float* g) { concat_data(s, prec, g, nullptr, w, dskip, dup, N, Cs, Hs, Ws, Cu, H, W, K); });
}

void conv3x3_relu_concat_backward_weight(Stream s, Precision prec, const float* skip, const float* up, const float* dy,
                                         const float* y, float* dw, float* db, int N, int Cs, int Hs, int Ws, int Cu,
                                         int H, int W, int K) {
  backward_weight(s, prec, up, dy, y, dw, db, N, Cs + Cu, H, W, K, skip, Cs, Hs, Ws);
}

// Both passes, one masked copy on the tensor cores (three products: the two halves of the data gradient and
// the weight gradient).
void conv3x3_relu_concat_backward(Stream s, Precision prec, const float* skip, const float* up, const float* dy,
                                  const float* y, const float* w, float* dskip, float* dup, float* dw, float* db, int N,
                                  int Cs, int Hs, int Ws, int Cu, int H, int W, int K) {
  auto passes = [&](const float* g, const float* mask) {
    if (dskip) concat_data(s, prec, g, mask, w, dskip, dup, N, Cs, Hs, Ws, Cu, H, W, K);
    if (dw) backward_weight(s, prec, up, g, mask, dw, db, N, Cs + Cu, H, W, K, skip, Cs, Hs, Ws);
  };
  if (prec == Precision::FP32 || !(dskip && dw)) return passes(dy, y);  // one pass: its own mask, if any
  with_masked(s, dy, y, dy_elements(N, H, W, K), [&](const float* g) { passes(g, nullptr); });
}

}  // namespace unet::kernels::cuda
