// sgd_nesterov, adam_update (formulas in kernels/ops.inc; torch.optim's), one thread per element in a
// grid-stride loop, as sgd_momentum; and optim_update_list, any of the three over many tensors in one launch.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/optim_math.cuh"

namespace unet::kernels::cuda {
namespace {

__global__ void sgd_nesterov_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ v,
                                    int64_t n, float lr, float mu, float wd) {
  for (int64_t i : grid_stride(n)) sgd_nesterov_at(w, g, v, i, lr, mu, wd);
}

__global__ void adam_update_kernel(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                                   float* __restrict__ s, int64_t n, float step, float b1, float b2, float eps,
                                   float inv_sqrt_bc2, float wd) {
  for (int64_t i : grid_stride(n)) adam_at(w, g, m, s, i, step, b1, b2, eps, inv_sqrt_bc2, wd);
}

// Where each listed tensor starts in the concatenation of all of them: start[count] is the total.
struct ListStarts {
  int64_t start[kMaxListTensors + 1];
};

// One grid-stride loop over the concatenation of the listed tensors; a thread's indices only grow, so it finds
// each one's tensor by moving a cursor on. __grid_constant__: the lists are read from the launch's parameter
// space, never copied per thread.
__global__ void optim_update_list_kernel(const __grid_constant__ ParamList list, const __grid_constant__ ListStarts at,
                                         OptimStep p) {
  if (p.scalars) p.lr = p.step = p.scalars[0], p.inv_sqrt_bc2 = p.scalars[1];  // this step's, written by the host
  int t = 0;
  for (int64_t i : grid_stride(at.start[list.count])) {
    while (i >= at.start[t + 1]) ++t;
    const int64_t j = i - at.start[t];
    if (p.kind == OptimKind::kSgd) sgd_momentum_at(list.w[t], list.g[t], list.s0[t], j, p.lr, p.mu, p.wd);
    else if (p.kind == OptimKind::kNesterov) sgd_nesterov_at(list.w[t], list.g[t], list.s0[t], j, p.lr, p.mu, p.wd);
    else adam_at(list.w[t], list.g[t], list.s0[t], list.s1[t], j, p.step, p.b1, p.b2, p.eps, p.inv_sqrt_bc2, p.wd);
  }
}

}  // namespace

void sgd_nesterov(Stream st, float* w, const float* g, float* v, int64_t n, float lr, float mu, float wd) {
  launch_over(n, st, sgd_nesterov_kernel, w, g, v, n, lr, mu, wd);
}

void adam_update(Stream st, float* w, const float* g, float* m, float* s, int64_t n, float step, float b1, float b2,
                 float eps, float inv_sqrt_bc2, float wd) {
  launch_over(n, st, adam_update_kernel, w, g, m, s, n, step, b1, b2, eps, inv_sqrt_bc2, wd);
}

void optim_update_list(Stream st, const ParamList& list, const OptimStep& p) {
  ListStarts at{};
  for (int i = 0; i < list.count; ++i) at.start[i + 1] = at.start[i] + list.n[i];
  launch_over(at.start[list.count], st, optim_update_list_kernel, list, at, p);
}

}  // namespace unet::kernels::cuda
