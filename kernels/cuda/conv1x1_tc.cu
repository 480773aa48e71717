// conv1x1 in TF32 and BF16 on tensor cores (tc_gemm.cuh): the products of conv1x1.cu, with the operand
// tiles gathered by cp.async (tc_operands.cuh):
//
//   forward          out[k, p] = sum_c w[k, c] x[n, c, q]     A rows of w (K-major),    B pixels of x (MN-major)
//   backward data    out[c, p] = sum_k w[k, c] dy[n, k, q]    A columns of w (MN-major), B pixels of dy
//   backward weight  out[k, c] = sum_p dy[n, k, q] x[n, c, q] A and B channels of dy and x (K-major)
#include "kernels/cuda/tc_convs.cuh"
#include "kernels/cuda/tc_operands.cuh"

namespace unet::kernels::cuda::tc {
namespace {

template <class T>
struct Conv1x1Fwd : T {
  using Args = Conv1x1Args;
  using Out = gemm::ImageOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = false;
  int tid;
  RowsK<T, T::BM> a;
  PixelsMN<T, T::BN> b;
  __device__ Conv1x1Fwd(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.w, g.C, g.K, g.Kred, tid_, m0), b(g.x, g.C, g.HW, g.Ncols, g.Kred, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

template <class T>
struct Conv1x1BwdData : T {
  using Args = Conv1x1Args;
  using Out = gemm::ImageOut;
  static constexpr bool A_KMAJOR = false, B_KMAJOR = false;
  int tid;
  ColsMN<T, T::BM> a;
  PixelsMN<T, T::BN> b;
  __device__ Conv1x1BwdData(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.w, g.C, g.C, g.Kred, tid_, m0), b(g.dy, g.K, g.HW, g.Ncols, g.Kred, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

template <class T>
struct Conv1x1BwdWeight : T {
  using Args = Conv1x1Args;
  using Out = gemm::MatrixOut;
  static constexpr bool A_KMAJOR = true, B_KMAJOR = true;
  int tid;
  PixelsK<T, T::BM> a;
  PixelsK<T, T::BN> b;
  __device__ Conv1x1BwdWeight(const Args& g, int tid_, int64_t m0, int64_t n0)
      : tid(tid_), a(g.dy, g.K, g.HW, g.Kred, tid_, m0), b(g.x, g.C, g.HW, g.Kred, tid_, n0) {}
  __device__ void load(int64_t k0, float* As, float* Bs) const {
    a.load(k0, As, tid);
    b.load(k0, Bs, tid);
  }
};

}  // namespace

void conv1x1_forward(cudaStream_t s, Precision p, const Conv1x1Args& a, const gemm::ImageOut& out) {
  launch<Conv1x1Fwd>(s, p, a, out);
}
void conv1x1_backward_data(cudaStream_t s, Precision p, const Conv1x1Args& a, const gemm::ImageOut& out) {
  launch<Conv1x1BwdData>(s, p, a, out);
}
void conv1x1_backward_weight(cudaStream_t s, Precision p, const Conv1x1Args& a, const gemm::MatrixOut& out) {
  launch<Conv1x1BwdWeight>(s, p, a, out);
}

}  // namespace unet::kernels::cuda::tc
