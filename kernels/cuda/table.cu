// The CUDA kernel table: every slot points at the launcher of kernels/cuda/<op>.cu (declared in ops.cuh).
#include "kernels/cuda/ops.cuh"
#include "kernels/kernels.h"

namespace unet::kernels {

const KernelTable& cuda_table() {
  static const KernelTable table = [] {
    KernelTable t{};
    t.backend = "cuda";
    t.conv3x3_forward = &cuda::conv3x3_forward;
    t.conv3x3_backward_data = &cuda::conv3x3_backward_data;
    t.conv3x3_backward_weight = &cuda::conv3x3_backward_weight;
    t.conv1x1_forward = &cuda::conv1x1_forward;
    t.conv1x1_backward_data = &cuda::conv1x1_backward_data;
    t.conv1x1_backward_weight = &cuda::conv1x1_backward_weight;
    t.relu_forward = &cuda::relu_forward;
    t.relu_backward = &cuda::relu_backward;
    t.maxpool2x2_forward = &cuda::maxpool2x2_forward;
    t.maxpool2x2_backward = &cuda::maxpool2x2_backward;
    t.upconv2x2_forward = &cuda::upconv2x2_forward;
    t.upconv2x2_backward_data = &cuda::upconv2x2_backward_data;
    t.upconv2x2_backward_weight = &cuda::upconv2x2_backward_weight;
    t.crop_concat_forward = &cuda::crop_concat_forward;
    t.crop_concat_backward = &cuda::crop_concat_backward;
    t.dropout_forward = &cuda::dropout_forward;
    t.dropout_backward = &cuda::dropout_backward;
    t.softmax_xent = &cuda::softmax_xent;
    t.softmax_forward = &cuda::softmax_forward;
    t.sgd_momentum = &cuda::sgd_momentum;
    t.add = &cuda::add;
    t.fill = &cuda::fill;
    t.check_finite = &cuda::check_finite;
    t.stencil2d = &cuda::stencil2d;
    t.stencil2d_adjoint = &cuda::stencil2d_adjoint;
    t.laplacian8_apply = &cuda::laplacian8_apply;
    t.nnmu_update = &cuda::nnmu_update;
    t.axpby = &cuda::axpby;
    t.l1_reweight = &cuda::l1_reweight;
    t.dot = &cuda::dot;
    t.sum_log1p = &cuda::sum_log1p;
    return t;
  }();
  return table;
}

}  // namespace unet::kernels
