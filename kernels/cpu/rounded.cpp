#include "kernels/cpu/rounded.h"

#include "kernels/cpu/parallel.h"
#include "kernels/precision.h"

namespace unet::kernels::cpu {

Rounded::Rounded(const float* p, int64_t n, Precision prec) : p_(p) {
  if (prec == Precision::FP32 || n <= 0) return;
  copy_.resize(static_cast<size_t>(n));
  float* out = copy_.data();
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = round_operand(p[i], prec);
  });
  p_ = out;
}

}  // namespace unet::kernels::cpu
