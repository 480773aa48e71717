// conv3x3 on the CPU: the U-Net's unpadded 3x3 convolution, forward and backward, as the blocked
// products of kernels/cpu/conv_gemm.h.
#include <cstddef>
#include <memory>
#include <vector>

#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cpu/conv_gemm.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/rounded.h"
#include "kernels/cpu/winograd.h"

namespace unet::kernels::cpu {

using namespace detail;

// y[n,k,i,j] = b[k] + sum_{c,di,dj} w[k,c,di,dj] * x[n,c,i+di,j+dj]
// = W[K, C*9] . im2col(x)[C*9, Ho*Wo]: A(k, (c,t)) = w[k*C*9 + c*9 + t].
// Winograd F(4x4, 3x3) where the rule of kernels/cpu/winograd.h says it pays (in FP32: at TF32/BF16 the CPU is
// the reference for the tensor cores, products of rounded operands); else the direct product.
namespace {

// dy * (mask > 0), for the BF16 products, which read their operands unmasked (null mask: nothing to do).
std::vector<float> masked(const float* dy, const float* mask, int64_t n) {
  std::vector<float> out;
  if (!mask) return out;
  out.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = mask[i] > 0.0f ? dy[i] : 0.0f;
  return out;
}

// The fused ReLU after the BF16 forward product.
void clamp_negative(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

// skip (FP32): the first skip.Cs input channels read in place from the skip tensor's crop (x holds the other
// C - skip.Cs), by the direct product's packing or Winograd's input transform. At TF32/BF16 the crop and x are
// first concatenated (the CPU is the reference there).
void forward(Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W,
             int K, bool relu, const SkipView& skip = {}) {
  if (prec == Precision::FP32 && conv3x3_uses_winograd(Conv3x3Pass::kForward, N, C, H, W, K)) {
    winograd_conv3x3(x, N, C, H, W, 0, {w, static_cast<int64_t>(C) * 9, 9, false}, K, b, y, relu, nullptr, skip);
    return;
  }
  if (prec == Precision::FP32) {
    const OperandA A{w, static_cast<int64_t>(C) * 9, 9, 1, 9};
    OperandB B{x, static_cast<int64_t>(C - skip.Cs) * H * W, C, H, W, 9, 0, false, H - 2, W - 2};
    B.skip = skip;
    return gemm_nn(A, K, B, N, b, y, relu);
  }
  std::vector<float> cat;
  if (skip.Cs > 0) {
    cat.resize(static_cast<std::size_t>(N) * C * H * W);
    crop_concat_forward(nullptr, skip.skip, x, cat.data(), N, skip.Cs, skip.Hs, skip.Ws, C - skip.Cs, H, W);
    x = cat.data();
  }
  const bool dot = use_bf16_dot(prec);  // BF16 products (kernels/cpu/bf16_gemm.h) round their operands
  const Rounded xr(x, static_cast<int64_t>(N) * C * H * W, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(K) * C * 9, dot ? Precision::FP32 : prec);
  x = xr.get();
  w = wr.get();
  const OperandA A{w, static_cast<int64_t>(C) * 9, 9, 1, 9};
  const OperandB B{x, static_cast<int64_t>(C) * H * W, C, H, W, 9, 0, false, H - 2, W - 2};
  if (dot) {
    gemm_nn_bf16(A, K, B, N, b, y);
    if (relu) clamp_negative(y, static_cast<int64_t>(N) * K * (H - 2) * (W - 2));
    return;
  }
  gemm_nn(A, K, B, N, b, y, relu);
}

// dx[n,c,i,j] = sum_{k,di,dj} w[k,c,di,dj] * dy[n,k,i-di,j-dj]   (dy zero outside its Ho x Wo)
// = A[C, K*9] . B[K*9, H*W] with A(c, (k,t)) = w[k*C*9 + c*9 + t] and B((k,t), (i,j)) =
// dy[k, i-di, j-dj]: the im2col view of dy zero-padded by 2 with the taps flipped, packed on the
// fly (no padded copy).
// As a Winograd correlation (FP32): dy padded by 2, filter (c, k) = w[k, c] rotated by 180 degrees.
// mask (the fused ReLU's output y, or null): dy read as dy * (mask > 0), as it is packed or transformed.
// c0, M: only input channels [c0, c0 + M) of dx are computed (dx holds those M); every output element is the
// same sum as in the whole product, so the decoder's skip and up-convolution halves come out as they would from
// one call.
void backward_data(Precision prec, const float* dy, const float* mask, const float* w, float* dx, int N, int C, int H,
                   int W, int K, int c0 = 0, int M = -1) {
  const int Ho = H - 2, Wo = W - 2;
  if (M < 0) M = C;
  if (prec == Precision::FP32 && conv3x3_uses_winograd(Conv3x3Pass::kBackwardData, N, C, H, W, K)) {
    winograd_conv3x3(dy, N, K, Ho, Wo, 2, {w + c0 * 9, 9, static_cast<int64_t>(C) * 9, true}, M, nullptr, dx, false,
                     mask);
    return;
  }
  const bool dot = use_bf16_dot(prec);
  const Rounded dyr(dy, static_cast<int64_t>(N) * K * Ho * Wo, dot ? Precision::FP32 : prec),
      wr(w, static_cast<int64_t>(K) * C * 9, dot ? Precision::FP32 : prec);
  dy = dyr.get();
  w = wr.get();
  const OperandA A{w + c0 * 9, 9, static_cast<int64_t>(C) * 9, 1, 9};
  if (dot) {  // the BF16 products convert dy as it is: mask it first
    const std::vector<float> dym = masked(dy, mask, static_cast<int64_t>(N) * K * Ho * Wo);
    const OperandB Bm{mask ? dym.data() : dy, static_cast<int64_t>(K) * Ho * Wo, K, Ho, Wo, 9, 2, true, H, W};
    return gemm_nn_bf16(A, M, Bm, N, nullptr, dx);
  }
  const OperandB B{dy, static_cast<int64_t>(K) * Ho * Wo, K, Ho, Wo, 9, 2, true, H, W, mask};
  gemm_nn(A, M, B, N, nullptr, dx);
}

// dw[k,c,di,dj] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+di,j+dj];  db[k] = sum_{n,i,j} dy[n,k,i,j]
// With dy read at the input's width W (zeros in columns Wo, Wo+1), pixel (i, j) is x = i*W + j on
// both sides and tap (di, dj) is x's plane shifted by di*W + dj: one dot product of length
// Ho*W - 2 per (k, c, tap), in fixed chunks (float within, double across).
// mask (the fused ReLU's output y, or null): dy read as dy * (mask > 0), as it is widened or transformed.
// skip: x's first skip.Cs channels read from the skip tensor's crop (Winograd reads it in place; the direct
// product, whose dot products run along whole rows of x's width, and TF32/BF16 read a concatenated copy).
void backward_weight(Precision prec, const float* x, const float* dy, const float* mask, float* dw, float* db, int N,
                     int C, int H, int W, int K, const SkipView& skip = {}) {
  const int Ho = H - 2, Wo = W - 2;
  const int64_t oplane = static_cast<int64_t>(Ho) * Wo, plane = static_cast<int64_t>(H) * W;
  if (prec == Precision::FP32 && conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, N, C, H, W, K)) {
    winograd_conv3x3_weight(x, dy, N, C, H, W, K, dw, mask, skip);
    bias_grad(dy, db, N, K, oplane, mask);
    return;
  }
  std::vector<float> cat;
  if (skip.Cs > 0) {
    cat.resize(static_cast<std::size_t>(N) * C * plane);
    crop_concat_forward(nullptr, skip.skip, x, cat.data(), N, skip.Cs, skip.Hs, skip.Ws, C - skip.Cs, H, W);
    x = cat.data();
  }
  const bool dot = use_bf16_dot(prec);
  std::vector<float> dym;  // the BF16 products widen dy as it is: mask it first
  if (dot && mask) dym = masked(dy, mask, N * K * oplane);
  const Rounded xr(x, N * C * plane, dot ? Precision::FP32 : prec),
      dyr(dot && mask ? dym.data() : dy, N * K * oplane, dot ? Precision::FP32 : prec);  // db sums the FP32 dy
  RowsA A{dyr.get(), K * oplane, oplane, Wo, W, dot ? nullptr : mask};
  RowsB B{xr.get(), C * plane, plane, 9, {}};
  for (int t = 0; t < 9; ++t) B.off[t] = (t / 3) * static_cast<int64_t>(W) + t % 3;
  if (dot) gemm_nt_bf16(A, K, B, C * 9, N, static_cast<int64_t>(Ho) * W - 2, dw, static_cast<int64_t>(C) * 9);
  else gemm_nt(A, K, B, C * 9, N, static_cast<int64_t>(Ho) * W - 2, dw, static_cast<int64_t>(C) * 9);
  bias_grad(dy, db, N, K, oplane, mask);
}

SkipView skip_view(const float* skip, int Cs, int Hs, int Ws, int H, int W) {
  return {skip, Cs, Hs, Ws, (Hs - H) / 2, (Ws - W) / 2};
}

}  // namespace

void conv3x3_forward(Stream, Precision prec, const float* x, const float* w, const float* b, float* y, int N, int C,
                     int H, int W, int K) {
  forward(prec, x, w, b, y, N, C, H, W, K, false);
}

// y = max(0, conv3x3_forward): the same products, the ReLU applied as each output tile is stored
// (Winograd's output transform, or the direct product's last reduction block), so y is written once.
void conv3x3_relu_forward(Stream, Precision prec, const float* x, const float* w, const float* b, float* y, int N,
                          int C, int H, int W, int K) {
  forward(prec, x, w, b, y, N, C, H, W, K, true);
}

void conv3x3_backward_data(Stream, Precision prec, const float* dy, const float* w, float* dx, int N, int C, int H,
                           int W, int K) {
  backward_data(prec, dy, nullptr, w, dx, N, C, H, W, K);
}

void conv3x3_backward_weight(Stream, Precision prec, const float* x, const float* dy, float* dw, float* db, int N,
                             int C, int H, int W, int K) {
  backward_weight(prec, x, dy, nullptr, dw, db, N, C, H, W, K);
}

// The backward of conv3x3_relu_forward from its output y: the passes above with dy * (y > 0) read in place of
// dy (packed, widened or transformed with the mask), so the masked gradient is never written.
void conv3x3_relu_backward_data(Stream, Precision prec, const float* dy, const float* y, const float* w, float* dx,
                                int N, int C, int H, int W, int K) {
  backward_data(prec, dy, y, w, dx, N, C, H, W, K);
}

void conv3x3_relu_backward_weight(Stream, Precision prec, const float* x, const float* dy, const float* y, float* dw,
                                  float* db, int N, int C, int H, int W, int K) {
  backward_weight(prec, x, dy, y, dw, db, N, C, H, W, K);
}

// Both passes: the CPU masks dy as it packs it in each, so one call is the two above.
void conv3x3_relu_backward(Stream s, Precision prec, const float* x, const float* dy, const float* y, const float* w,
                           float* dx, float* dw, float* db, int N, int C, int H, int W, int K) {
  if (dx) conv3x3_relu_backward_data(s, prec, dy, y, w, dx, N, C, H, W, K);
  if (dw) conv3x3_relu_backward_weight(s, prec, x, dy, y, dw, db, N, C, H, W, K);
}

// The decoder's first convolution over [crop(skip), up] (kernels/ops.inc): the crop is read in place by the
// forward and the weight gradient; the data gradient computes up's channels straight into dup and the skip's into
// a buffer of the window's size, placed into dskip (zero outside the window) by crop_concat_backward's code.
void conv3x3_relu_concat_forward(Stream, Precision prec, const float* skip, const float* up, const float* w,
                                 const float* b, float* y, int N, int Cs, int Hs, int Ws, int Cu, int H, int W, int K) {
  forward(prec, up, w, b, y, N, Cs + Cu, H, W, K, true, skip_view(skip, Cs, Hs, Ws, H, W));
}

void conv3x3_relu_concat_backward_data(Stream, Precision prec, const float* dy, const float* y, const float* w,
                                       float* dskip, float* dup, int N, int Cs, int Hs, int Ws, int Cu, int H, int W,
                                       int K) {
  const int C = Cs + Cu;
  backward_data(prec, dy, y, w, dup, N, C, H, W, K, Cs, Cu);
  // Every element is written by the product: no zero-filling (77 MB at the paper's top level).
  const std::unique_ptr<float[]> window(new float[static_cast<std::size_t>(N) * Cs * H * W]);
  backward_data(prec, dy, y, w, window.get(), N, C, H, W, K, 0, Cs);
  crop_concat_backward(nullptr, window.get(), dskip, nullptr, N, Cs, Hs, Ws, 0, H, W);
}

void conv3x3_relu_concat_backward_weight(Stream, Precision prec, const float* skip, const float* up, const float* dy,
                                         const float* y, float* dw, float* db, int N, int Cs, int Hs, int Ws, int Cu,
                                         int H, int W, int K) {
  backward_weight(prec, up, dy, y, dw, db, N, Cs + Cu, H, W, K, skip_view(skip, Cs, Hs, Ws, H, W));
}

void conv3x3_relu_concat_backward(Stream s, Precision prec, const float* skip, const float* up, const float* dy,
                                  const float* y, const float* w, float* dskip, float* dup, float* dw, float* db, int N,
                                  int Cs, int Hs, int Ws, int Cu, int H, int W, int K) {
  if (dskip) conv3x3_relu_concat_backward_data(s, prec, dy, y, w, dskip, dup, N, Cs, Hs, Ws, Cu, H, W, K);
  if (dw) conv3x3_relu_concat_backward_weight(s, prec, skip, up, dy, y, dw, db, N, Cs, Hs, Ws, Cu, H, W, K);
}

}  // namespace unet::kernels::cpu
