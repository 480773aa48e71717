// Operand gathers of the tensor-core products (tc_gemm.cuh) that several convolutions share. Each
// fills one operand tile of a stage (D = BM rows for A, BN columns for B) with this thread's cp.async
// copies: element (mn, r) of the operand, mn < D the tile's row (A) or column (B), r the reduction
// index, zero outside the product. Built once per thread (the offsets that do not change along the
// reduction), then load(k0, tile) per stage. The convolution-specific gathers (3x3 taps, up-convolution
// taps) are in the op's *_tc.cu.
#pragma once
#include <cstdint>

#include "kernels/cuda/ptx.cuh"
#include "kernels/cuda/tc_gemm.cuh"

namespace unet::kernels::cuda::tc {

// op(mn, r) = base[(mn0 + mn) * ld + r] for mn0 + mn < rows, r < Kred: rows of a row-major matrix
// (weights), K-major. 16-byte copies when every row starts 16-byte aligned and Kred is a multiple of 4
// (then a group of 4 is wholly inside or outside), else 4-byte ones.
template <class T, int D>
struct RowsK {
  const float* base;
  const float* row0;   // &base[(mn0 + first row) * ld + first k] of this thread
  int64_t Kred, step;  // step: between the thread's rows
  unsigned valid;      // bit e: the thread's e-th row exists
  int dst;
  bool vec;

  __device__ RowsK(const float* b, int64_t ld, int64_t rows, int64_t kred, int tid, int64_t mn0) : base(b), Kred(kred) {
    vec = ld % 4 == 0 && kred % 4 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0;
    valid = 0;
    if (vec) {
      row0 = b + (mn0 + T::kv_mn(tid, 0)) * ld + T::kv_kk(tid);
      step = (T::NT / 4) * ld;
      dst = T::template at<true, D>(T::kv_mn(tid, 0), T::kv_kk(tid));
#pragma unroll
      for (int e = 0; e < D * BK / (4 * T::NT); ++e) valid |= (mn0 + T::kv_mn(tid, e) < rows ? 1u : 0u) << e;
    } else {
      row0 = b + (mn0 + T::kf_mn(tid, 0)) * ld + T::kf_kk(tid);
      step = (T::NT / BK) * ld;
      dst = T::template kf_dst<D>(tid);
#pragma unroll
      for (int e = 0; e < D * BK / T::NT; ++e) valid |= (mn0 + T::kf_mn(tid, e) < rows ? 1u : 0u) << e;
    }
  }

  __device__ void load(int64_t k0, float* tile, int tid) const {
    if (vec) {
      const bool r_ok = k0 + T::kv_kk(tid) < Kred;
#pragma unroll
      for (int e = 0; e < D * BK / (4 * T::NT); ++e) {
        const bool ok = r_ok && ((valid >> e) & 1u);
        ptx::cp_async16(tile + dst + e * (T::NT / 4) * SK, ok ? row0 + k0 + e * step : base, ok);
      }
    } else {
      const bool r_ok = k0 + T::kf_kk(tid) < Kred;
#pragma unroll
      for (int e = 0; e < D * BK / T::NT; ++e) {
        const bool ok = r_ok && ((valid >> e) & 1u);
        ptx::cp_async4(tile + dst + e * T::KF_STEP, ok ? row0 + k0 + e * step : base, ok);
      }
    }
  }
};

// op(mn, r) = base[r * ld + mn0 + mn] for mn0 + mn < cols, r < Kred: columns of a row-major matrix
// (weights read transposed), MN-major.
template <class T, int D>
struct ColsMN {
  const float* base;
  const float* col;  // &base[mn0 + this thread's column]
  int64_t ld, Kred;
  int kk0, dst;
  bool valid;

  __device__ ColsMN(const float* b, int64_t ld_, int64_t cols, int64_t kred, int tid, int64_t mn0)
      : base(b), ld(ld_), Kred(kred) {
    col = b + mn0 + T::template mf_mn<D>(tid);
    valid = mn0 + T::template mf_mn<D>(tid) < cols;
    kk0 = T::template mf_kk<D>(tid, 0);
    dst = T::template mf_dst<D>(tid);
  }

  __device__ void load(int64_t k0, float* tile, int) const {
#pragma unroll
    for (int e = 0; e < D * BK / T::NT; ++e) {
      const int64_t r = k0 + kk0 + e * (T::NT / D);
      const bool ok = valid && r < Kred;
      ptx::cp_async4(tile + dst + e * T::template mf_step<D>(), ok ? col + r * ld : base, ok);
    }
  }
};

// op(mn, r) = img[n, r, q] with mn0 + mn = p = n * plane + q < pixels, r < Kred: the pixels of an
// [images, channels, plane] tensor as columns, a channel per reduction index, MN-major.
template <class T, int D>
struct PixelsMN {
  const float* base;
  const float* pix;  // &img[n, 0, q] of this thread's pixel
  int64_t plane, Kred;
  int kk0, dst;
  bool valid;

  __device__ PixelsMN(const float* img, int64_t channels, int64_t plane_, int64_t pixels, int64_t kred, int tid,
                      int64_t mn0)
      : base(img), pix(img), plane(plane_), Kred(kred) {
    const int64_t p = mn0 + T::template mf_mn<D>(tid);
    valid = p < pixels;
    if (valid) {
      const int64_t n = p / plane;
      pix = img + n * channels * plane + (p - n * plane);
    }
    kk0 = T::template mf_kk<D>(tid, 0);
    dst = T::template mf_dst<D>(tid);
  }

  __device__ void load(int64_t k0, float* tile, int) const {
#pragma unroll
    for (int e = 0; e < D * BK / T::NT; ++e) {
      const int64_t r = k0 + kk0 + e * (T::NT / D);
      const bool ok = valid && r < Kred;
      ptx::cp_async4(tile + dst + e * T::template mf_step<D>(), ok ? pix + r * plane : base, ok);
    }
  }
};

// op(mn, r) = img[n, mn0 + mn, q] with r = p = n * plane + q < Kred pixels, mn0 + mn < channels: the
// channels of an [images, channels, plane] tensor as rows, reduced over every pixel of every image
// (the weight gradients), K-major.
template <class T, int D>
struct PixelsK {
  const float* base;
  int64_t plane, image, Kred;  // image = channels * plane
  int64_t row0;                // (mn0 + first row) * plane
  unsigned valid;
  int dst;

  __device__ PixelsK(const float* img, int64_t channels, int64_t plane_, int64_t kred, int tid, int64_t mn0)
      : base(img), plane(plane_), image(channels * plane_), Kred(kred) {
    row0 = (mn0 + T::kf_mn(tid, 0)) * plane_;
    valid = 0;
#pragma unroll
    for (int e = 0; e < D * BK / T::NT; ++e) valid |= (mn0 + T::kf_mn(tid, e) < channels ? 1u : 0u) << e;
    dst = T::template kf_dst<D>(tid);
  }

  __device__ void load(int64_t k0, float* tile, int tid) const {
    const int64_t p = k0 + T::kf_kk(tid);
    const bool p_ok = p < Kred;
    const int64_t n = p_ok ? p / plane : 0;
    const float* at = base + n * image + (p - n * plane) + row0;
#pragma unroll
    for (int e = 0; e < D * BK / T::NT; ++e) {
      const bool ok = p_ok && ((valid >> e) & 1u);
      ptx::cp_async4(tile + dst + e * T::KF_STEP, ok ? at + e * (T::NT / BK) * plane : base, ok);
    }
  }
};

}  // namespace unet::kernels::cuda::tc
