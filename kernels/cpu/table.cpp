// The CPU kernel table: kernels/kernels.h's entries, filled with kernels/cpu's functions.
#include "kernels/cpu/cpu_kernels.h"

namespace unet::kernels {

const KernelTable& cpu_table() {
  static const KernelTable table = {
      "cpu",
      cpu::conv3x3_forward,   cpu::conv3x3_backward_data,   cpu::conv3x3_backward_weight,
      cpu::conv1x1_forward,   cpu::conv1x1_backward_data,   cpu::conv1x1_backward_weight,
      cpu::relu_forward,      cpu::relu_backward,
      cpu::maxpool2x2_forward, cpu::maxpool2x2_backward,
      cpu::upconv2x2_forward, cpu::upconv2x2_backward_data, cpu::upconv2x2_backward_weight,
      cpu::crop_concat_forward, cpu::crop_concat_backward,
      cpu::dropout_forward,   cpu::dropout_backward,
      cpu::softmax_xent,      cpu::softmax_forward,
      cpu::sgd_momentum,
      cpu::add,               cpu::fill,                    cpu::check_finite,
      cpu::stencil2d,         cpu::stencil2d_adjoint,       cpu::laplacian8_apply,
      cpu::nnmu_update,       cpu::axpby,                   cpu::l1_reweight,
      cpu::dot,               cpu::sum_log1p,
  };
  return table;
}

}  // namespace unet::kernels
