// conv3x3 in TF32 and BF16 on tensor cores (tc_gemm.cuh): the products of conv3x3.cu, with the operand
// tiles gathered by cp.async (im2col on the fly, never materialised):
//
//   forward          out[k, p] = sum_r w[k, r] x[n, c, i+di, j+dj]        r = c*9 + di*3 + dj
//                    A rows of w (K-major), B Im2col (MN-major)
//   backward data    out[c, p] = sum_r w[k, c, di, dj] dy[n, k, i-di, j-dj] r = k*9 + di*3 + dj, dy zero outside
//                    A WeightsT (K-major), B Im2colFlip (MN-major)
//   backward weight  out[k, r] = sum_p dy[n, k, p] x[n, c, i+di, j+dj]   p = (n, i, j) output pixels
//                    A channels of dy (K-major), B Im2colK (K-major)
#include "kernels/cuda/tc_convs.cuh"
#include "kernels/cuda/tc_operands.cuh"

namespace unet::kernels::cuda::tc {
namespace {

// op(mn, r) = x[n, c, i+di, j+dj] for the output pixel p = (n, i, j) = n0 + mn, r = c*9 + di*3 + dj.
// kSkip (conv3x3_relu_concat), channels c < Cs come from skip[n, c, oy+i+di, ox+j+dj] in place (a template
// flag: the plain gather keeps its registers).
template <class T, bool kSkip>
struct Im2col {
  const float* base;
  const float* pix;   // &x[n, 0, i, j]
  const float* spix;  // &skip[n, 0, oy+i, ox+j]
  int64_t HsWs;
  int HW, W, Cs, Ws, Kred, kk0, dst;
  bool valid;
  __device__ Im2col(const Conv3x3Args& a, int tid, int64_t n0)
      : base(a.x), pix(a.x), spix(a.x), HsWs(a.skip_plane()), HW(a.H * a.W), W(a.W), Cs(kSkip ? a.Cs : 0), Ws(a.Ws) {
    Kred = static_cast<int>(a.Kred);
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid), HoWo = static_cast<int64_t>(a.Ho) * a.Wo;
    valid = p < a.Ncols;
    if (valid) {
      const int64_t n = p / HoWo, q = p - n * HoWo;
      const int i = static_cast<int>(q / a.Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * a.Wo);
      pix = a.x_pixel(n, i, j);
      if (kSkip) spix = a.skip_pixel(n, i, j);
    }
    kk0 = T::template mf_kk<T::BN>(tid, 0);
    dst = T::template mf_dst<T::BN>(tid);
  }
  __device__ void load(int64_t k0, float* tile) const {
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int r = static_cast<int>(k0) + kk0 + e * (T::NT / T::BN);
      const int c = r / 9, tap = r - 9 * c, di = tap / 3, dj = tap - 3 * di;
      const bool ok = valid && r < Kred;
      const float* src =
          kSkip && c < Cs ? spix + c * HsWs + di * Ws + dj : pix + static_cast<int64_t>(c - Cs) * HW + di * W + dj;
      ptx::cp_async4(tile + dst + e * T::template mf_step<T::BN>(), ok ? src : base, ok);
    }
  }
};

// op(mn, r) = w[k, c, di, dj] = w[(k*C + c)*9 + tap] for c = m0 + mn, r = k*9 + tap.
template <class T>
struct WeightsT {
  const float* base;
  int64_t row0;  // 9 * (m0 + the thread's first row)
  int C, Kred, dst;
  unsigned valid;
  __device__ WeightsT(const Conv3x3Args& a, int tid, int64_t m0) : base(a.w), C(a.C) {
    Kred = static_cast<int>(a.Kred);
    row0 = 9 * (m0 + T::kf_mn(tid, 0));
    valid = 0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) valid |= (m0 + T::kf_mn(tid, e) < a.M ? 1u : 0u) << e;
    dst = T::template kf_dst<T::BM>(tid);
  }
  __device__ void load(int64_t k0, float* tile, int tid) const {
    const int r = static_cast<int>(k0) + T::kf_kk(tid), ko = r / 9, tap = r - 9 * ko;
    const float* at = base + static_cast<int64_t>(ko) * 9 * C + tap + row0;
#pragma unroll
    for (int e = 0; e < T::A_PER; ++e) {
      const bool ok = r < Kred && ((valid >> e) & 1u);
      ptx::cp_async4(tile + dst + e * T::KF_STEP, ok ? at + e * (T::NT / BK) * 9 : base, ok);
    }
  }
};

// op(mn, r) = dy[n, k, i-di, j-dj] (zero outside Ho x Wo) for the input pixel p = (n, i, j) = n0 + mn,
// r = k*9 + di*3 + dj.
template <class T>
struct Im2colFlip {
  const float* base;
  const float* img;  // &dy[n, 0, 0, 0]
  int i, j, Ho, Wo, HoWo, Kred, kk0, dst;
  bool valid;
  __device__ Im2colFlip(const Conv3x3Args& a, int tid, int64_t n0)
      : base(a.dy), img(a.dy), i(0), j(0), Ho(a.Ho), Wo(a.Wo), HoWo(a.Ho * a.Wo) {
    Kred = static_cast<int>(a.Kred);
    const int64_t p = n0 + T::template mf_mn<T::BN>(tid), HW = static_cast<int64_t>(a.H) * a.W;
    valid = p < a.Ncols;
    if (valid) {
      const int64_t n = p / HW, q = p - n * HW;
      i = static_cast<int>(q / a.W);
      j = static_cast<int>(q - static_cast<int64_t>(i) * a.W);
      img = a.dy + n * a.K * static_cast<int64_t>(HoWo);
    }
    kk0 = T::template mf_kk<T::BN>(tid, 0);
    dst = T::template mf_dst<T::BN>(tid);
  }
  __device__ void load(int64_t k0, float* tile) const {
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int r = static_cast<int>(k0) + kk0 + e * (T::NT / T::BN);
      const int ko = r / 9, tap = r - 9 * ko, ii = i - tap / 3, jj = j - (tap - 3 * (tap / 3));
      const bool ok = valid && r < Kred && ii >= 0 && ii < Ho && jj >= 0 && jj < Wo;
      ptx::cp_async4(tile + dst + e * T::template mf_step<T::BN>(),
                     ok ? img + static_cast<int64_t>(ko) * HoWo + ii * Wo + jj : base, ok);
    }
  }
};

// op(mn, p) = x[n, c, i+di, j+dj] for the column n0 + mn = c*9 + di*3 + dj and the output pixel
// p = (n, i, j) (the weight gradient's B, reduced over p).
// kSkip (conv3x3_relu_concat), columns of channels c < Cs read skip[n, c, oy+i+di, ox+j+dj] in place.
template <class T, bool kSkip>
struct Im2colK {
  const float* base;
  const float* skip;
  int roff[T::B_PER];  // c*HW + di*W + dj of the thread's columns (from the skip: c*HsWs + di*Ws + dj), -1 past the
                       // last
  unsigned from_skip;  // bit e: column e reads the skip
  int64_t Kred, HoWo, CHW, CsHsWs;
  int Wo, W, Ws, oy, ox, dst;
  __device__ Im2colK(const Conv3x3Args& a, int tid, int64_t n0)
      : base(a.x),
        skip(a.skip),
        Kred(a.Kred),
        HoWo(static_cast<int64_t>(a.Ho) * a.Wo),
        CHW(static_cast<int64_t>(a.C - a.Cs) * a.H * a.W),
        CsHsWs(a.Cs * a.skip_plane()),
        Wo(a.Wo),
        W(a.W),
        Ws(a.Ws),
        oy(a.oy),
        ox(a.ox) {
    from_skip = 0;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const int64_t col = n0 + T::kf_mn(tid, e);
      const int c = static_cast<int>(col / 9), tap = static_cast<int>(col - 9 * (col / 9));
      if (col >= a.Ncols) {
        roff[e] = -1;
      } else if (kSkip && c < a.Cs) {
        roff[e] = c * a.Hs * a.Ws + (tap / 3) * a.Ws + tap % 3;
        from_skip |= 1u << e;
      } else {
        roff[e] = (c - a.Cs) * a.H * a.W + (tap / 3) * a.W + tap % 3;
      }
    }
    dst = T::template kf_dst<T::BN>(tid);
  }
  __device__ void load(int64_t k0, float* tile, int tid) const {
    const int64_t p = k0 + T::kf_kk(tid);
    const bool p_ok = p < Kred;
    const int64_t n = p_ok ? p / HoWo : 0, q = p_ok ? p - n * HoWo : 0;
    const int i = static_cast<int>(q / Wo), j = static_cast<int>(q - static_cast<int64_t>(i) * Wo);
    const float* at = base + n * CHW + static_cast<int64_t>(i) * W + j;
    const float* sat = kSkip && from_skip ? skip + n * CsHsWs + static_cast<int64_t>(oy + i) * Ws + ox + j : at;
#pragma unroll
    for (int e = 0; e < T::B_PER; ++e) {
      const bool ok = p_ok && roff[e] >= 0;
      ptx::cp_async4(tile + dst + e * T::KF_STEP, ok ? (kSkip && ((from_skip >> e) & 1u) ? sat : at) + roff[e] : base,
                     ok);
    }
  }
};

template <class T, bool kSkip>
struct Conv3x3FwdOf : T {
  using Args = Conv3x3Args;
  using Out = gemm::ImageOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = false;
  int tid;
  RowsK<T, T::BM> a;
  Im2col<T, kSkip> b;
  __device__ Conv3x3FwdOf(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.w, g.Kred, g.M, g.Kred, tid_, m0), b(g, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs);
  }
};

template <class T>
struct Conv3x3BwdData : T {
  using Args = Conv3x3Args;
  using Out = gemm::ImageOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = false;
  int tid;
  WeightsT<T> a;
  Im2colFlip<T> b;
  __device__ Conv3x3BwdData(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g, tid_, m0), b(g, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs);
  }
};

template <class T, bool kSkip>
struct Conv3x3BwdWeightOf : T {
  using Args = Conv3x3Args;
  using Out = gemm::MatrixOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = true;
  int tid;
  PixelsK<T, T::BM> a;
  Im2colK<T, kSkip> b;
  __device__ Conv3x3BwdWeightOf(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.dy, g.K, static_cast<int64_t>(g.Ho) * g.Wo, g.Kred, tid_, m0), b(g, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

template <class T>
using Conv3x3Fwd = Conv3x3FwdOf<T, false>;
template <class T>
using Conv3x3FwdSkip = Conv3x3FwdOf<T, true>;
template <class T>
using Conv3x3BwdWeight = Conv3x3BwdWeightOf<T, false>;
template <class T>
using Conv3x3BwdWeightSkip = Conv3x3BwdWeightOf<T, true>;

}  // namespace

// a.Cs > 0 (conv3x3_relu_concat): the gathers that read the skip's window in place.
void conv3x3_forward(cudaStream_t s, Precision p, const Conv3x3Args& a, const gemm::ImageOut& out) {
  if (a.Cs > 0) launch<Conv3x3FwdSkip>(s, p, a, out);
  else launch<Conv3x3Fwd>(s, p, a, out);
}
void conv3x3_backward_data(cudaStream_t s, Precision p, const Conv3x3Args& a, const gemm::ImageOut& out) {
  launch<Conv3x3BwdData>(s, p, a, out);
}
void conv3x3_backward_weight(cudaStream_t s, Precision p, const Conv3x3Args& a, const gemm::MatrixOut& out) {
  if (a.Cs > 0) launch<Conv3x3BwdWeightSkip>(s, p, a, out);
  else launch<Conv3x3BwdWeight>(s, p, a, out);
}

}  // namespace unet::kernels::cuda::tc
