// The CPU backend: one function per entry of kernels/kernels.h, same names, same math. Parallel
// through the pool of kernels/cpu/parallel.h; the convolutions are blocked matrix products with
// register-blocked micro-kernels (kernels/cpu/conv_gemm.h). Deterministic: no result depends on
// the number of threads.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace unet::kernels::cpu {

void conv3x3_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W, int K);
void conv3x3_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K);
void conv3x3_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H, int W, int K);
void conv1x1_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W, int K);
void conv1x1_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K);
void conv1x1_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H, int W, int K);
void relu_forward(Stream, const float* x, float* y, int64_t n);
void relu_backward(Stream, const float* y, const float* dy, float* dx, int64_t n);
void maxpool2x2_forward(Stream, const float* x, float* y, int N, int C, int H, int W);
void maxpool2x2_backward(Stream, const float* x, const float* dy, float* dx, int N, int C, int H, int W);
void upconv2x2_forward(Stream, const float* x, const float* w, const float* b, float* y, int N, int C, int H, int W, int K);
void upconv2x2_backward_data(Stream, const float* dy, const float* w, float* dx, int N, int C, int H, int W, int K);
void upconv2x2_backward_weight(Stream, const float* x, const float* dy, float* dw, float* db, int N, int C, int H, int W, int K);
void crop_concat_forward(Stream, const float* skip, const float* up, float* y, int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu);
void crop_concat_backward(Stream, const float* dy, float* dskip, float* dup, int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu);
void dropout_forward(Stream, const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward(Stream, const float* dy, float* dx, int64_t n, float p, uint64_t seed, uint64_t offset);
void softmax_xent(Stream, const float* logits, const int32_t* labels, const float* weights, float* loss, float* dlogits,
                  int N, int K, int H, int W);
void softmax_forward(Stream, const float* logits, float* probs, int N, int K, int H, int W);
void sgd_momentum(Stream, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd);
void add(Stream, float* y, const float* x, int64_t n);
void fill(Stream, float* y, float value, int64_t n);
void check_finite(Stream, const float* x, int64_t n, int32_t* flag);
void stencil2d(Stream, const float* x, const float* k, float* y, int N, int H, int W, int kh, int kw);
void stencil2d_adjoint(Stream, const float* y, const float* k, float* x, int N, int H, int W, int kh, int kw);
void laplacian8_apply(Stream, const float* x, const float* wgt, float* deg_x, float* adj_x, int N, int H, int W);
void nnmu_update(Stream, float* f, const float* ap, const float* an, const float* b, int64_t n, float eps);
void axpby(Stream, float* y, const float* x, float a, float b, int64_t n);
void l1_reweight(Stream, const float* f, const float* b0, float* b, int64_t n, float c, float gamma);
void dot(Stream, const float* x, const float* y, int64_t n, float* out);
void sum_log1p(Stream, const float* x, int64_t n, float scale, float* out);

// Shared by the three convolutions: db[k] = sum_{n,p} dy[n,k,p] over `plane` pixels.
void bias_grad(const float* dy, float* db, int N, int K, int64_t plane);

}  // namespace unet::kernels::cpu
