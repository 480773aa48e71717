// The CPU restoration table: restore/kernels/ops.inc's entries, in its order.
#include "restore/kernels/kernels.h"

namespace unet::restore::kernels {

const RestoreKernelTable& cpu_table() {
  static const RestoreKernelTable table = {
      "cpu",
#define RESTORE_OP(name, params) &cpu::name,
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
  };
  return table;
}

}  // namespace unet::restore::kernels
