// The kernel table: every U-Net primitive, forward and backward, under one name per op.
// kernels/cpu and kernels/cuda each fill one table with functions of exactly these signatures;
// the engine dispatches through it by the tensors' device. Kernels hold no state: they read and
// write the raw buffers they are given (device pointers for the CUDA table) and return.
//
// Conventions (all NCHW, float32, contiguous):
//   * backward kernels OVERWRITE their outputs; the engine accumulates when a tensor feeds two ops;
//   * `stream` is a cudaStream_t for the CUDA table and ignored by the CPU table;
//   * shapes are those of the forward inputs; outputs' shapes follow from them as documented;
//   * a forward bias `b` may be nullptr (no bias).
#pragma once
#include <cstdint>

namespace unet::kernels {

using Stream = void*;

struct KernelTable {
  const char* backend;  // "cpu" or "cuda"

  // conv3x3: unpadded 3x3 convolution, stride 1.  x[N,C,H,W], w[K,C,3,3], b[K] -> y[N,K,H-2,W-2]
  //   y[n,k,i,j] = b[k] + sum_{c,di,dj} w[k,c,di,dj] * x[n,c,i+di,j+dj]
  void (*conv3x3_forward)(Stream, const float* x, const float* w, const float* b, float* y,
                          int N, int C, int H, int W, int K);
  //   dx[n,c,i,j] = sum_{k,di,dj} w[k,c,di,dj] * dy[n,k,i-di,j-dj]   (dy zero outside its range)
  void (*conv3x3_backward_data)(Stream, const float* dy, const float* w, float* dx,
                                int N, int C, int H, int W, int K);
  //   dw[k,c,di,dj] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+di,j+dj];  db[k] = sum_{n,i,j} dy[n,k,i,j]
  void (*conv3x3_backward_weight)(Stream, const float* x, const float* dy, float* dw, float* db,
                                  int N, int C, int H, int W, int K);

  // conv1x1: per-pixel linear map.  x[N,C,H,W], w[K,C,1,1], b[K] -> y[N,K,H,W]
  void (*conv1x1_forward)(Stream, const float* x, const float* w, const float* b, float* y,
                          int N, int C, int H, int W, int K);
  void (*conv1x1_backward_data)(Stream, const float* dy, const float* w, float* dx,
                                int N, int C, int H, int W, int K);
  void (*conv1x1_backward_weight)(Stream, const float* x, const float* dy, float* dw, float* db,
                                  int N, int C, int H, int W, int K);

  // relu: y = max(x, 0); backward from the output: dx = dy * (y > 0).
  void (*relu_forward)(Stream, const float* x, float* y, int64_t n);
  void (*relu_backward)(Stream, const float* y, const float* dy, float* dx, int64_t n);

  // maxpool2x2: stride 2, H and W even.  x[N,C,H,W] -> y[N,C,H/2,W/2]
  // backward routes dy to the first maximum of each window (row-major order), recomputed from x.
  void (*maxpool2x2_forward)(Stream, const float* x, float* y, int N, int C, int H, int W);
  void (*maxpool2x2_backward)(Stream, const float* x, const float* dy, float* dx,
                              int N, int C, int H, int W);

  // upconv2x2: transposed convolution, kernel 2, stride 2 (PyTorch ConvTranspose2d layout).
  //   x[N,C,H,W], w[C,K,2,2], b[K] -> y[N,K,2H,2W];  y[n,k,2i+a,2j+e] = b[k] + sum_c x[n,c,i,j] w[c,k,a,e]
  void (*upconv2x2_forward)(Stream, const float* x, const float* w, const float* b, float* y,
                            int N, int C, int H, int W, int K);
  void (*upconv2x2_backward_data)(Stream, const float* dy, const float* w, float* dx,
                                  int N, int C, int H, int W, int K);
  void (*upconv2x2_backward_weight)(Stream, const float* x, const float* dy, float* dw, float* db,
                                    int N, int C, int H, int W, int K);

  // crop_concat: the skip connection. skip[N,Cs,Hs,Ws] is centre-cropped to [Hu,Wu]
  // (offset ((Hs-Hu)/2, (Ws-Wu)/2)) and stacked before up[N,Cu,Hu,Wu] -> y[N,Cs+Cu,Hu,Wu].
  void (*crop_concat_forward)(Stream, const float* skip, const float* up, float* y,
                              int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu);
  // dskip is zero outside the crop window.
  void (*crop_concat_backward)(Stream, const float* dy, float* dskip, float* dup,
                               int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu);

  // dropout (inverted): keep element i iff philox::uniform(seed, offset, i) >= p, scale by 1/(1-p).
  // The mask is regenerated from (seed, offset) in backward, never stored.
  void (*dropout_forward)(Stream, const float* x, float* y, int64_t n, float p,
                          uint64_t seed, uint64_t offset);
  void (*dropout_backward)(Stream, const float* dy, float* dx, int64_t n, float p,
                           uint64_t seed, uint64_t offset);

  // softmax_xent: weighted pixel-wise softmax cross-entropy (the paper's Eq. 1), in one pass.
  //   logits[N,K,H,W], labels[N,H,W] in [0,K), weights[N,H,W] (nullptr = all ones)
  //   loss[0]   = -(1/(N*H*W)) sum_x w(x) log p_{l(x)}(x)       (normalised by the pixel count)
  //   dlogits   = (1/(N*H*W)) w(x) (p_k(x) - [k == l(x)])
  // log-sum-exp with the max subtracted keeps it finite for any finite logits.
  void (*softmax_xent)(Stream, const float* logits, const int32_t* labels, const float* weights,
                       float* loss, float* dlogits, int N, int K, int H, int W);
  // softmax over the channel axis: probabilities for prediction.
  void (*softmax_forward)(Stream, const float* logits, float* probs, int N, int K, int H, int W);

  // sgd_momentum (PyTorch's convention, so momentum buffers move between the two):
  //   g' = g + wd * w;  v = mu * v + g';  w = w - lr * v
  void (*sgd_momentum)(Stream, float* w, const float* g, float* v, int64_t n,
                       float lr, float mu, float wd);

  // Elementwise helpers the engine needs: y += x; y = value; and a finiteness check
  // (writes 1 to *flag when any element is NaN or inf, leaves it alone otherwise).
  void (*add)(Stream, float* y, const float* x, int64_t n);
  void (*fill)(Stream, float* y, float value, int64_t n);
  void (*check_finite)(Stream, const float* x, int64_t n, int32_t* flag);

  // ---- Image restoration (unet/restore: phase contrast + DIC co-restoration, docs/restore.md) -------
  // Mirror boundary: index t of a row of n pixels reads m(t), the half-sample symmetric reflection
  // that REPEATS the edge pixel (MATLAB padarray 'symmetric'): ... x1 x0 | x0 x1 ... x(n-1) | x(n-1)
  // x(n-2) ...;  m(t) = u < n ? u : 2n-1-u  with  u = t mod 2n, so any kernel size is allowed.
  //
  // stencil2d: 'same'-size 2-D correlation of N single-channel planes with one odd-sized kernel.
  //   x[N,H,W], k[kh,kw] (kh, kw odd; rh = kh/2, rw = kw/2) -> y[N,H,W]
  //   y[n,i,j] = sum_{a,b} k[a,b] * x[n, m(i+a-rh), m(j+b-rw)]
  void (*stencil2d)(Stream, const float* x, const float* k, float* y, int N, int H, int W, int kh, int kw);
  // stencil2d_adjoint: the EXACT transpose of stencil2d with the same kernel (not flipped by the caller):
  //   x[n,p,q] = sum_{a,b} k[a,b] * sum_{i: m(i+a-rh)=p} sum_{j: m(j+b-rw)=q} y[n,i,j]
  // so <stencil2d(x), y> = <x, stencil2d_adjoint(y)> for all x, y. (With the mirror boundary the
  // flipped-kernel stencil2d is the transpose only away from the borders, or for kernels that are
  // even along each axis separately.)
  void (*stencil2d_adjoint)(Stream, const float* y, const float* k, float* x, int N, int H, int W, int kh,
                            int kw);
  // laplacian8_apply: the graph Laplacian L = D - G of the 8-neighbourhood with per-pixel edge weights,
  // as its two non-negative parts. wgt[N,4,H,W] holds, for direction d in {E (0,+1), S (+1,0),
  // SE (+1,+1), SW (+1,-1)}, the weight (>= 0) of the edge between (i,j) and (i,j)+off_d; weights of
  // edges that leave the image are ignored. With w_pq the weight of edge p-q (w_pq = w_qp):
  //   deg_x[p] = (sum_q w_pq) * x[p]        adj_x[p] = sum_q w_pq * x[q]       (L x = deg_x - adj_x)
  void (*laplacian8_apply)(Stream, const float* x, const float* wgt, float* deg_x, float* adj_x, int N, int H,
                           int W);
  // nnmu_update: the non-negative multiplicative update of Sha, Saul and Lee for
  //   min_{f>=0} 1/2 f'Af + b'f,  A = A+ - A- (both with non-negative entries), ap = A+ f, an = A- f:
  //   f <- f * (-b + sqrt(b^2 + 4 ap an)) / (2 ap + eps)
  // For b > 0 the numerator is evaluated as 4 ap an / (b + sqrt(b^2 + 4 ap an)) (the same value without
  // the cancellation; ap * an is taken as max(ap * an, 0), a guard against rounding where a caller forms
  // A+ f and A- f as differences); an element with f <= 0, or whose new value is below 1e-30 (out of the slow denormal
  // range), becomes 0 (zeros are fixed points of the update).
  void (*nnmu_update)(Stream, float* f, const float* ap, const float* an, const float* b, int64_t n, float eps);
  // y = a * x + b * y; with b == 0 y is not read (y = a * x even where y held NaN: the BLAS convention)
  void (*axpby)(Stream, float* y, const float* x, float a, float b, int64_t n);
  // l1_reweight: the reweighted-L1 term of the restoration's linear part, b = b0 + c / (f + gamma)
  // (c = w_r * w0: the weights w = w0 / (f + gamma) scaled by w_r).
  void (*l1_reweight)(Stream, const float* f, const float* b0, float* b, int64_t n, float c, float gamma);
  // dot: s = sum_i x[i] y[i], accumulated in double in a fixed order (deterministic);
  // out[0] = float(s), out[1] = float(s - double(out[0])): out[0] + out[1] in double carries s to ~1e-14.
  void (*dot)(Stream, const float* x, const float* y, int64_t n, float* out);
  // sum_log1p: s = sum_i log(1 + scale * x[i]) (needs scale * x > -1), in double; out[0..1] as for dot.
  void (*sum_log1p)(Stream, const float* x, int64_t n, float scale, float* out);
};

const KernelTable& cpu_table();
#if defined(UNET_WITH_CUDA)
const KernelTable& cuda_table();
#endif

}  // namespace unet::kernels
