// The CUDA restoration table: restore/kernels/ops.inc's entries, in its order (an op without a
// launcher fails to link).
#include "restore/kernels/kernels.h"

namespace unet::restore::kernels {

const RestoreKernelTable& cuda_table() {
  static const RestoreKernelTable table = {
      "cuda",
#define RESTORE_OP(name, params) &cuda::name,
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
  };
  return table;
}

}  // namespace unet::restore::kernels
