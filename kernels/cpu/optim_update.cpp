// sgd_nesterov, adam_update and optim_update_list on the CPU (formulas in kernels/ops.inc; torch.optim's).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

void sgd_nesterov(Stream, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i] + wd * w[i];
      const float vi = mu * v[i] + gi;
      v[i] = vi;
      w[i] -= lr * (gi + mu * vi);
    }
  });
}

void adam_update(Stream, float* w, const float* g, float* m, float* s, int64_t n, float step, float b1, float b2,
                 float eps, float inv_sqrt_bc2, float wd) {
  parallel_for(n, grain_for(n, 1), [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i] + wd * w[i];
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float si = b2 * s[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      s[i] = si;
      w[i] -= step * mi / (std::sqrt(si) * inv_sqrt_bc2 + eps);
    }
  });
}

// Tensor by tensor, through the single-tensor kernels: the same bits as the step they replace.
void optim_update_list(Stream st, const ParamList& list, const OptimStep& step) {
  OptimStep p = step;
  if (p.scalars) p.lr = p.step = p.scalars[0], p.inv_sqrt_bc2 = p.scalars[1];
  for (int i = 0; i < list.count; ++i) {
    if (p.kind == OptimKind::kSgd) sgd_momentum(st, list.w[i], list.g[i], list.s0[i], list.n[i], p.lr, p.mu, p.wd);
    else if (p.kind == OptimKind::kNesterov)
      sgd_nesterov(st, list.w[i], list.g[i], list.s0[i], list.n[i], p.lr, p.mu, p.wd);
    else
      adam_update(st, list.w[i], list.g[i], list.s0[i], list.s1[i], list.n[i], p.step, p.b1, p.b2, p.eps,
                  p.inv_sqrt_bc2, p.wd);
  }
}

}  // namespace unet::kernels::cpu
