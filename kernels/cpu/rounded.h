// The CPU reference of the TF32 and BF16 convolutions (internal to kernels/cpu): their operands are
// rounded copies (kernels/precision.h), then the FP32 products run on them. The product of two rounded
// operands is exact in FP32, so the result differs from the GPU's only in the order of the sums.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace unet::kernels::cpu {

// `p` itself for FP32; otherwise a copy of its n values rounded to `prec`, kept while this lives.
class Rounded {
 public:
  Rounded(const float* p, int64_t n, Precision prec);
  const float* get() const { return p_; }
  Rounded(const Rounded&) = delete;
  Rounded& operator=(const Rounded&) = delete;

 private:
  std::vector<float> copy_;
  const float* p_;
};

}  // namespace unet::kernels::cpu
