// upconv2x2 in TF32 and BF16 on tensor cores (tc_gemm.cuh): the products of upconv2x2.cu (the tap
// t = a*2 + e folded into a matrix index), with the operand tiles gathered by cp.async:
//
//   forward          out[k*4 + t, p] = sum_c w[c, k*4 + t] x[n, c, i, j]   A columns of w (MN-major), B pixels of x
//   backward data    out[c, p] = sum_r w[c, r] dy[n, k, 2i+a, 2j+e]        A rows of w (K-major), B Taps (MN-major)
//   backward weight  out[c, r] = sum_p x[n, c, i, j] dy[n, k, 2i+a, 2j+e]  A channels of x, B TapsK (both K-major)
// with r = k*4 + a*2 + e and p = (n, i, j) an input pixel.
#include "kernels/cuda/tc_convs.cuh"
#include "kernels/cuda/tc_operands.cuh"

namespace unet::kernels::cuda::tc {
namespace {

// Offset of dy[n, k, 2i+a, 2j+e] from dy[n, 0, 2i, 2j] for r = k*4 + a*2 + e (4HW pixels a plane, 2W a row).
__device__ inline int64_t tap_offset(int64_t r, int64_t HW, int W) {
  const int t = static_cast<int>(r & 3);
  return (r >> 2) * 4 * HW + (t >> 1) * 2 * W + (t & 1);
}

// op(mn, r) = dy[n, k, 2i+a, 2j+e] for the input pixel p = (n, i, j) = n0 + mn and r = k*4 + a*2 + e.
template <class T>
struct Taps {
  const float* base;
  const float* pix;  // &dy[n, 0, 2i, 2j]
  int64_t HW, Kred;
  int W, kk0, dst;
  bool valid;
  __device__ Taps(const UpconvArgs& a, int tid, int64_t n0)
      : base(a.dy), pix(a.dy), HW(static_cast<int64_t>(a.H) * a.W), Kred(a.Kred), W(a.W) {
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid);
    valid = p < a.Ncols;
    if (valid) {
      const int64_t n = p / HW, q = p - n * HW, i = q / a.W, j = q - i * a.W;
      pix = a.dy + n * a.K * 4 * HW + 4 * i * a.W + 2 * j;
    }
    kk0 = T::template mf_kk<T::BN>(tid, 0);
    dst = T::template mf_dst<T::BN>(tid);
  }
  __device__ void load(int64_t k0, float* tile) const {
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t r = k0 + kk0 + e * (T::NT / T::BN);
      const bool ok = valid && r < Kred;
      ptx::cp_async4(tile + dst + e * T::template mf_step<T::BN>(), ok ? pix + tap_offset(r, HW, W) : base, ok);
    }
  }
};

// op(mn, p) = dy[n, k, 2i+a, 2j+e] for the column n0 + mn = k*4 + a*2 + e and the input pixel
// p = (n, i, j) (the weight gradient's B, reduced over p).
template <class T>
struct TapsK {
  const float* base;
  int64_t roff[T::B_PER];  // tap_offset of the thread's columns, -1 past the last
  int64_t Kred, HW, KHW4;
  int W, dst;
  __device__ TapsK(const UpconvArgs& a, int tid, int64_t n0)
      : base(a.dy), Kred(a.Kred), HW(static_cast<int64_t>(a.H) * a.W), KHW4(4 * HW * a.K), W(a.W) {
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t col = n0 + T::kf_mn(tid, e);
      roff[e] = col < a.Ncols ? tap_offset(col, HW, a.W) : -1;
    }
    dst = T::template kf_dst<T::BN>(tid);
  }
  __device__ void load(int64_t k0, float* tile, int tid) const {
    const int64_t p = k0 + T::kf_kk(tid);
    const bool p_ok = p < Kred;
    const int64_t n = p_ok ? p / HW : 0, q = p_ok ? p - n * HW : 0, i = q / W, j = q - i * W;
    const float* at = base + n * KHW4 + 4 * i * W + 2 * j;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const bool ok = p_ok && roff[e] >= 0;
      ptx::cp_async4(tile + dst + e * T::KF_STEP, ok ? at + roff[e] : base, ok);
    }
  }
};

template <class T>
struct UpconvFwd : T {
  using Args = UpconvArgs;
  using Out = gemm::UpconvOut;
  static constexpr bool A_KMAJOR = false, B_KMAJOR = false;
  int tid;
  ColsMN<T, T::BM> a;
  PixelsMN<T, T::BN> b;
  __device__ UpconvFwd(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_),
        a(g.w, g.M, g.M, g.Kred, tid_, m0),
        b(g.x, g.C, static_cast<int64_t>(g.H) * g.W, g.Ncols, g.Kred, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

template <class T>
struct UpconvBwdData : T {
  using Args = UpconvArgs;
  using Out = gemm::ImageOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = false;
  int tid;
  RowsK<T, T::BM> a;
  Taps<T> b;
  __device__ UpconvBwdData(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.w, g.Kred, g.M, g.Kred, tid_, m0), b(g, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs);
  }
};

template <class T>
struct UpconvBwdWeight : T {
  using Args = UpconvArgs;
  using Out = gemm::TapsMatrixOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = true;
  int tid;
  PixelsK<T, T::BM> a;
  TapsK<T> b;
  __device__ UpconvBwdWeight(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.x, g.C, static_cast<int64_t>(g.H) * g.W, g.Kred, tid_, m0), b(g, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

}  // namespace

void upconv2x2_forward(cudaStream_t s, Precision p, const UpconvArgs& a, const gemm::UpconvOut& out) {
  launch<UpconvFwd>(s, p, a, out);
}
void upconv2x2_backward_data(cudaStream_t s, Precision p, const UpconvArgs& a, const gemm::ImageOut& out) {
  launch<UpconvBwdData>(s, p, a, out);
}
void upconv2x2_backward_weight(cudaStream_t s, Precision p, const UpconvArgs& a, const gemm::TapsMatrixOut& out) {
  launch<UpconvBwdWeight>(s, p, a, out);
}

}  // namespace unet::kernels::cuda::tc
