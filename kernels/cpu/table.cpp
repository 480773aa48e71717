// The CPU kernel table: kernels/ops.inc's entries, in its order, filled with kernels/cpu's functions.
#include "kernels/cpu/ops.h"

namespace unet::kernels {

const KernelTable& cpu_table() {
  static const KernelTable table = {
      "cpu",
#define UNET_OP(name, params) &cpu::name,
#include "kernels/ops.inc"
#undef UNET_OP
  };
  return table;
}

}  // namespace unet::kernels
