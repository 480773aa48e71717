// The differentiable ops. Each runs the kernel of the same name on the inputs' device, checks
// shapes with an error that names the op, and records its backward on the tape when any input
// needs a gradient and recording is on.
#pragma once
#include "engine/autograd.h"
#include "engine/rng.h"
#include "kernels/kernels.h"

namespace unet::ops {

// The arithmetic of the convolutions' products (kernels/kernels.h): FP32 unless a ConvPrecision is in
// force on this thread. A backward pass uses the precision its forward ran with.
kernels::Precision conv_precision();
// RAII: the convolutions on this thread run in `p` until it ends (the previous choice is restored).
// TF32 and BF16 run on the GPU's tensor cores; on the CPU they are the reference (rounded operands,
// FP32 products), slower than FP32 and meant for tests.
class ConvPrecision {
 public:
  explicit ConvPrecision(kernels::Precision p);
  ~ConvPrecision();
  ConvPrecision(const ConvPrecision&) = delete;
  ConvPrecision& operator=(const ConvPrecision&) = delete;

 private:
  kernels::Precision prev_;
};

Var conv3x3(const Var& x, const Var& w, const Var& b);  // unpadded: H,W shrink by 2
// relu(conv3x3(x, w, b)) as one op (the kernels' conv3x3_relu_*): the same values and gradients, without the
// separate ReLU pass; its output is the ReLU's, which its backward reads for the mask.
Var conv3x3_relu(const Var& x, const Var& w, const Var& b);
// relu(conv3x3(crop_concat(skip, up), w, b)) as one op (the kernels' conv3x3_relu_concat_*): the U-Net decoder's
// first convolution, reading the skip's crop in place; no concatenated tensor is made or kept for the backward.
Var conv3x3_relu_concat(const Var& skip, const Var& up, const Var& w, const Var& b);
Var conv1x1(const Var& x, const Var& w, const Var& b);
Var relu(const Var& x);
Var maxpool2x2(const Var& x);                             // H, W must be even
Var upconv2x2(const Var& x, const Var& w, const Var& b);  // H, W double
Var crop_concat(const Var& skip, const Var& up);          // [crop(skip), up] along channels
// Inverted dropout with probability p, drawing its mask from rng (the rng advances by numel).
Var dropout(const Var& x, float p, Rng& rng);
// Weighted softmax cross-entropy normalised by the pixel count; labels I32 [N,H,W] on the same
// device; weights F32 [N,H,W] or undefined for all ones. Returns a scalar Var.
Var softmax_xent(const Var& logits, const Tensor& labels, const Tensor& weights = Tensor());
// Class probabilities (no gradient): for prediction.
Tensor softmax(const Tensor& logits);

}  // namespace unet::ops
