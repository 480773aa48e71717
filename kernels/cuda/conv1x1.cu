// conv1x1: a per-pixel linear map, x[N,C,H,W] -> y[N,K,H,W] with w[K,C,1,1], b[K]. Each pass is a plain
// matrix product over the pixels, run on the tiled core of implicit_gemm.cuh (see there for the tiling):
//
//   forward          m = k,  n = pixel (n,q),  r = c          y  = W  . X   (+ b)
//   backward data    m = c,  n = pixel (n,q),  r = k          dx = W^T . dY
//   backward weight  m = k,  n = c,            reduction over pixels (split-K)   dw = dY . X^T
#include "kernels/cuda/implicit_gemm.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/tc_convs.cuh"

namespace unet::kernels::cuda {
namespace {

// y[n,k,q] = b[k] + sum_c w[k,c] * x[n,c,q]
//   A[k, c] = w[k*C + c], B[c, p] = x[n, c, q]   (p = n*HW + q)
template <class T>
struct Conv1x1Fwd : T {
  using Out = gemm::ImageOut;
  using Args = Conv1x1Args;
  static constexpr bool A_KF = true, B_KF = false;

  const float* wa;
  int64_t a_stride;
  unsigned a_valid;
  int kk_a, kk_b0, Kred;
  const float* xb;
  bool b_valid;
  int64_t HW;

  __device__ Conv1x1Fwd(const Args& a, int tid, int64_t m0, int64_t n0) {
    Kred = a.C;
    kk_a = T::kf_kk(tid);
    a_stride = static_cast<int64_t>(T::NT / gemm::BK) * a.C;
    wa = a.w + (m0 + T::kf_mn(tid, 0)) * a.C + kk_a;
    a_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    HW = a.HW;
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
    const bool r_ok = k + kk_a < Kred;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) ra[e] = (r_ok && ((a_valid >> e) & 1u)) ? __ldg(wa + k + e * a_stride) : 0.0f;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int c = k + kk_b0 + e * (T::NT / T::BN);
      rb[e] = (b_valid && c < Kred) ? __ldg(xb + c * HW) : 0.0f;
    }
  }
};

// dx[n,c,q] = sum_k w[k,c] * dy[n,k,q]
//   A[c, k] = w[k*C + c] (contiguous along c: loaded m-fastest), B[k, p] = dy[n, k, q]
template <class T>
struct Conv1x1BwdData : T {
  using Out = gemm::ImageOut;
  using Args = Conv1x1Args;
  static constexpr bool A_KF = false, B_KF = false;

  const float* w;
  int64_t c;  // the thread's A row
  bool a_valid;
  int C, kk_a0, kk_b0, Kred;
  const float* dyb;
  bool b_valid;
  int64_t HW;

  __device__ Conv1x1BwdData(const Args& a, int tid, int64_t m0, int64_t n0) {
    w = a.w;
    C = a.C;
    Kred = a.K;
    c = m0 + T::template mf_mn<T::BM>(tid);
    a_valid = c < a.M;
    kk_a0 = T::template mf_kk<T::BM>(tid, 0);
    kk_b0 = T::template mf_kk<T::BN>(tid, 0);
    HW = a.HW;
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    b_valid = p < a.Ncols;
    dyb = a.dy;
    if (b_valid) {
      const int64_t n = p / HW;
      dyb = a.dy + n * a.K * HW + (p - n * HW);
    }
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int k = static_cast<int>(k0);
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) {
      const int ko = k + kk_a0 + e * (T::NT / T::BM);
      ra[e] = (a_valid && ko < Kred) ? __ldg(w + static_cast<int64_t>(ko) * C + c) : 0.0f;
    }
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int ko = k + kk_b0 + e * (T::NT / T::BN);
      rb[e] = (b_valid && ko < Kred) ? __ldg(dyb + ko * HW) : 0.0f;
    }
  }
};

// dw[k,c] = sum_{n,q} dy[n,k,q] * x[n,c,q]
//   A[k, p] = dy[n, k, q], B[p, c] = x[n, c, q], reduction over p < N*HW (both loaded kk-fastest).
template <class T>
struct Conv1x1BwdWeight : T {
  using Out = gemm::MatrixOut;
  using Args = Conv1x1Args;
  static constexpr bool A_KF = true, B_KF = true;

  const float* dy;
  const float* x;
  int kk;
  int64_t krow0, ccol0;
  unsigned a_valid, b_valid;
  int64_t P, HW, KHW, CHW;

  __device__ Conv1x1BwdWeight(const Args& a, int tid, int64_t m0, int64_t n0) {
    dy = a.dy;
    x = a.x;
    kk = T::kf_kk(tid);
    krow0 = m0 + T::kf_mn(tid, 0);
    ccol0 = n0 + T::kf_mn(tid, 0);
    a_valid = b_valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      if (m0 + T::kf_mn(tid, e) < a.M) a_valid |= 1u << e;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e)
      if (n0 + T::kf_mn(tid, e) < a.Ncols) b_valid |= 1u << e;
    P = a.Kred;
    HW = a.HW;
    KHW = a.HW * a.K;
    CHW = a.HW * a.C;
  }

  __device__ void load(int64_t k0, float (&ra)[T::A_PER], float (&rb)[T::B_PER]) const {
    const int64_t p = k0 + kk;
    const bool ok = p < P;
    const int64_t n = ok ? p / HW : 0, q = p - n * HW;
    const float* dyp = dy + n * KHW + q;
    const float* xp = x + n * CHW + q;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e)
      ra[e] = (ok && ((a_valid >> e) & 1u)) ? __ldg(dyp + (krow0 + e * (T::NT / gemm::BK)) * HW) : 0.0f;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e)
      rb[e] = (ok && ((b_valid >> e) & 1u)) ? __ldg(xp + (ccol0 + e * (T::NT / gemm::BK)) * HW) : 0.0f;
  }
};

}  // namespace

void conv1x1_forward(Stream s, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                     int H, int W, int K) {
  Conv1x1Args a = Conv1x1Args::make(C, H, W, K);
  a.x = x, a.w = w, a.M = K, a.Ncols = N * a.HW, a.Kred = C;
  const auto out = gemm::ImageOut::make(y, b, a.HW, K);
  if (prec == Precision::FP32) gemm::launch<Conv1x1Fwd>(as_stream(s), a, out);
  else tc::conv1x1_forward(as_stream(s), prec, a, out);
}

void conv1x1_backward_data(Stream s, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                           int W, int K) {
  Conv1x1Args a = Conv1x1Args::make(C, H, W, K);
  a.dy = dy, a.w = w, a.M = C, a.Ncols = N * a.HW, a.Kred = K;
  const auto out = gemm::ImageOut::make(dx, nullptr, a.HW, C);
  if (prec == Precision::FP32) gemm::launch<Conv1x1BwdData>(as_stream(s), a, out);
  else tc::conv1x1_backward_data(as_stream(s), prec, a, out);
}

// dw: the product over every pixel (split-K, reduced in order); db: the sums of its A rows (dy), in the same kernel.
void conv1x1_backward_weight(Stream s, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                             int C, int H, int W, int K) {
  Conv1x1Args a = Conv1x1Args::make(C, H, W, K);
  a.x = x, a.dy = dy, a.M = K, a.Ncols = C, a.Kred = N * a.HW;
  const gemm::MatrixOut out{dw, a.Ncols, db};
  if (prec == Precision::FP32) gemm::launch<Conv1x1BwdWeight>(as_stream(s), a, out);
  else tc::conv1x1_backward_weight(as_stream(s), prec, a, out);
}

}  // namespace unet::kernels::cuda
