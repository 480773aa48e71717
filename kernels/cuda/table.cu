// The CUDA kernel table: kernels/ops.inc's entries, in its order, filled with the launchers of
// kernels/cuda/<op>.cu. An op without a CUDA launcher fails to link.
#include "kernels/cuda/ops.cuh"

namespace unet::kernels {

const KernelTable& cuda_table() {
  static const KernelTable table = {
      "cuda",
#define UNET_OP(name, params) &cuda::name,
#include "kernels/ops.inc"
#undef UNET_OP
  };
  return table;
}

}  // namespace unet::kernels
