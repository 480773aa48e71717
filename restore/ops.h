// The image-restoration primitives (restore/kernels/ops.inc) on Tensors: each checks
// shapes, dtypes and devices with an error that names the op, then runs the kernel of the same name on
// the tensors' device (GPU when they live there, CPU otherwise). No autograd: the restoration solver
// (restore/restore.h) is a fixed-point iteration, not a trained model. Outputs are written in place into
// tensors the caller allocated (the solver reuses them every iteration); an undefined output is
// allocated here with the input's shape and device.
//
// Planes: a tensor of shape [H,W] is one plane, [N,H,W] (or [N,1,H,W]) is N planes.
#pragma once
#include "engine/tensor.h"

namespace unet::restore::kernels {
struct RestoreKernelTable;
}

namespace unet::rops {

// The restoration kernel table of a device (the CPU's, or the GPU's when this build has CUDA).
const restore::kernels::RestoreKernelTable& restore_kernels_for(Device d);

// y = x (*) k: 'same'-size correlation of every plane of x with the odd-sized kernel k[kh,kw] (on x's
// device), half-sample mirror boundary (the edge pixel repeated).
void stencil2d(const Tensor& x, const Tensor& k, Tensor& y);
// x = the exact transpose of stencil2d with the same kernel, applied to y.
void stencil2d_adjoint(const Tensor& y, const Tensor& k, Tensor& x);
// The 8-neighbour graph Laplacian with edge weights wgt[N,4,H,W] (E, S, SE, SW): deg_x = D x,
// adj_x = G x, L x = deg_x - adj_x.
void laplacian8(const Tensor& x, const Tensor& wgt, Tensor& deg_x, Tensor& adj_x);
// f <- f * (-b + sqrt(b^2 + 4 ap an)) / (2 ap + eps)   (all the same shape)
void nnmu_update_(Tensor& f, const Tensor& ap, const Tensor& an, const Tensor& b, float eps);
// y = a x + b y (b == 0: y = a x, y's old contents are not read)
void axpby_(Tensor& y, const Tensor& x, float a, float b);
// b = b0 + c / (f + gamma)
void l1_reweight(const Tensor& f, const Tensor& b0, Tensor& b, float c, float gamma);
// sum_i x_i y_i and sum_i log(1 + scale x_i), accumulated in double (these wait for the device).
double dot(const Tensor& x, const Tensor& y);
double sum_log1p(const Tensor& x, float scale);

}  // namespace unet::rops
