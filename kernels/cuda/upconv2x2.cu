// upconv2x2: transposed convolution, kernel 2, stride 2 (PyTorch's ConvTranspose2d layout w[C,K,2,2]):
//   x[N,C,H,W] -> y[N,K,2H,2W],  y[n,k,2i+a,2j+e] = b[k] + sum_c x[n,c,i,j] * w[c,k,a,e].
// The windows do not overlap, so each pass is one matrix product with the tap t = a*2+e folded into a
// matrix index, run on the tiled core of implicit_gemm.cuh (see there for the tiling):
//
//   forward          m = k*4 + t,  n = input pixel (n,i,j),  r = c          (A = w read along m)
//   backward data    m = c,        n = input pixel (n,i,j),  r = k*4 + t
//   backward weight  m = c,        n = k*4 + t,              reduction over input pixels (split-K)
#include "kernels/cuda/implicit_gemm.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/tc_convs.cuh"

namespace unet::kernels::cuda {
namespace {

// Offset of dy/y[n, k, 2i+a, 2j+e] from y[n, 0, 2i, 2j]: k*4HW + a*2W + e, for m = k*4 + a*2 + e.
__device__ inline int64_t tap_offset(int64_t m, int64_t HW4, int W2) {
  const int64_t k = m >> 2;
  const int t = static_cast<int>(m & 3);
  return k * HW4 + (t >> 1) * W2 + (t & 1);
}

// y[n, k, 2i+a, 2j+e] = b[k] + sum_c w[c, k, a, e] * x[n, c, i, j]
//   A[m, c] = w[c*4K + m] (contiguous along m: loaded m-fastest), B[c, p] = x[n, c, i, j]
template <class T>
struct UpconvFwd : T {
  using Out = gemm::UpconvOut;
  using Args = UpconvArgs;
  static constexpr bool A_KF = false, B_KF = false;

  const float* w;
  int64_t m;  // the thread's A row
  bool a_valid;
  int kk_a0, kk_b0, C;
  int64_t K4;
  const float* xb;
  bool b_valid;
  int64_t HW;

  __device__ UpconvFwd(const Args& a, int tid, int64_t m0, int64_t n0) {
    w = a.w;
    C = a.C;
    K4 = 4 * static_cast<int64_t>(a.K);
    m = m0 + T::template mf_mn<T::BM>(tid);
    a_valid = m < a.M;
    kk_a0 = T::template mf_kk<T::BM>(tid, 0);
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    HW = static_cast<int64_t>(a.H) * a.W;
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    b_valid = p < a.Ncols;
    xb = a.x;
    if (b_valid) {
      const int64_t n = p / HW;
      xb = a.x + n * a.C * HW + (p - n * HW);
    }
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int k = static_cast<int>(k0);
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) {
      const int c = k + kk_a0 + e * (T::NT / T::BM);
      ra[e] = (a_valid && c < C) ? __ldg(w + c * K4 + m) : 0.0f;
    }
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int c = k + kk_b0 + e * (T::NT / T::BN);
      rb[e] = (b_valid && c < C) ? __ldg(xb + c * HW) : 0.0f;
    }
  }
};

// dx[n, c, i, j] = sum_{k,a,e} w[c, k, a, e] * dy[n, k, 2i+a, 2j+e]
//   A[c, r] = w[c*4K + r], B[r, p] = dy[n, k, 2i+a, 2j+e]  (r = k*4 + a*2 + e)
template <class T>
struct UpconvBwdData : T {
  using Out = gemm::ImageOut;
  using Args = UpconvArgs;
  static constexpr bool A_KF = true, B_KF = false;

  const float* wa;
  int64_t a_stride;
  unsigned a_valid;
  int kk_a, kk_b0;
  int64_t Kred;
  const float* dyb;  // &dy[n, 0, 2i, 2j] of the thread's column
  bool b_valid;
  int64_t HW, HW4;
  int W2;

  __device__ UpconvBwdData(const Args& a, int tid, int64_t m0, int64_t n0) {
    Kred = a.Kred;
    kk_a = T::kf_kk(tid);
    a_stride = static_cast<int64_t>(T::NT / gemm::BK) * Kred;
    wa = a.w + (m0 + T::kf_mn(tid, 0)) * Kred + kk_a;
    a_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    HW = static_cast<int64_t>(a.H) * a.W;
    HW4 = 4 * HW;
    W2 = 2 * a.W;
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    b_valid = p < a.Ncols;
    dyb = a.dy;
    if (b_valid) {
      const int64_t n = p / HW, q = p - n * HW;
      const int64_t i = q / a.W, j = q - i * a.W;
      dyb = a.dy + n * a.K * HW4 + 2 * i * W2 + 2 * j;
    }
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const bool r_ok = k0 + kk_a < Kred;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) ra[e] = (r_ok && ((a_valid >> e) & 1u)) ? __ldg(wa + k0 + e * a_stride) : 0.0f;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t r = k0 + kk_b0 + e * (T::NT / T::BN);
      rb[e] = (b_valid && r < Kred) ? __ldg(dyb + tap_offset(r, HW4, W2)) : 0.0f;
    }
  }
};

// dw[c, k, a, e] = sum_{n,i,j} x[n, c, i, j] * dy[n, k, 2i+a, 2j+e]
//   A[c, p] = x[n, c, i, j], B[p, r] = dy[n, k, 2i+a, 2j+e], reduction over p < N*H*W (both kk-fastest).
template <class T>
struct UpconvBwdWeight : T {
  using Out = gemm::TapsMatrixOut;
  using Args = UpconvArgs;
  static constexpr bool A_KF = true, B_KF = true;

  const float* x;
  const float* dy;
  int kk;
  int64_t crow0;
  unsigned a_valid;
  int64_t roff[T::B_PER];  // tap_offset of each B column (-1: none)
  int64_t P, HW, HW4, CHW, KHW4;
  int W, W2;

  __device__ UpconvBwdWeight(const Args& a, int tid, int64_t m0, int64_t n0) {
    x = a.x;
    dy = a.dy;
    kk = T::kf_kk(tid);
    crow0 = m0 + T::kf_mn(tid, 0);
    a_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
    HW = static_cast<int64_t>(a.H) * a.W;
    HW4 = 4 * HW;
    CHW = HW * a.C;
    KHW4 = HW4 * a.K;
    W = a.W;
    W2 = 2 * a.W;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t r = n0 + T::kf_mn(tid, e);
      roff[e] = r < a.Ncols ? tap_offset(r, HW4, W2) : -1;
    }
    P = a.Kred;
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int64_t p = k0 + kk;
    const bool ok = p < P;
    const int64_t n = ok ? p / HW : 0, q = p - n * HW;
    const int64_t i = ok ? q / W : 0, j = q - i * W;
    const float* xp = x + n * CHW + q;
    const float* dyp = dy + n * KHW4 + 2 * i * W2 + 2 * j;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      ra[e] = (ok && ((a_valid >> e) & 1u)) ? __ldg(xp + (crow0 + e * (T::NT / gemm::BK)) * HW) : 0.0f;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) rb[e] = (ok && roff[e] >= 0) ? __ldg(dyp + roff[e]) : 0.0f;
  }
};

}  // namespace

void upconv2x2_forward(Stream s, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                       int H, int W, int K) {
  UpconvArgs a = UpconvArgs::make(C, H, W, K);
  a.x = x, a.w = w, a.M = 4 * static_cast<int64_t>(K), a.Ncols = static_cast<int64_t>(N) * H * W, a.Kred = C;
  const auto out = gemm::UpconvOut::make(y, b, H, W, K);
  if (prec == Precision::FP32) gemm::launch<UpconvFwd>(as_stream(s), a, out);
  else tc::upconv2x2_forward(as_stream(s), prec, a, out);
}

void upconv2x2_backward_data(Stream s, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                             int W, int K) {
  UpconvArgs a = UpconvArgs::make(C, H, W, K);
  a.dy = dy, a.w = w, a.M = C, a.Ncols = static_cast<int64_t>(N) * H * W, a.Kred = 4 * static_cast<int64_t>(K);
  const auto out = gemm::ImageOut::make(dx, nullptr, static_cast<int64_t>(H) * W, C);
  if (prec == Precision::FP32) gemm::launch<UpconvBwdData>(as_stream(s), a, out);
  else tc::upconv2x2_backward_data(as_stream(s), prec, a, out);
}

// dw: the product over every input pixel (split-K, reduced in order); db: the sums of its B columns (dy, the
// four taps of a channel side by side), taken in the same kernel (gemm_out.cuh, TapsMatrixOut).
void upconv2x2_backward_weight(Stream s, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                               int C, int H, int W, int K) {
  UpconvArgs a = UpconvArgs::make(C, H, W, K);
  a.x = x, a.dy = dy, a.M = C, a.Ncols = 4 * static_cast<int64_t>(K), a.Kred = static_cast<int64_t>(N) * H * W;
  const gemm::TapsMatrixOut out{{dw, a.Ncols}, db};
  if (prec == Precision::FP32) gemm::launch<UpconvBwdWeight>(as_stream(s), a, out);
  else tc::upconv2x2_backward_weight(as_stream(s), prec, a, out);
}

}  // namespace unet::kernels::cuda
