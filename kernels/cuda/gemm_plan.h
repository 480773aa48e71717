// How a convolution's matrix product is laid over the GPU (host code, no CUDA: tested on the CPU).
//
// The output's BM x BN block tiles alone rarely fill the device: the deep layers have few output
// tiles and long reductions (1024 channels at 28x28: 56 tiles of 128x128, a reduction of 9216), and
// the weight gradients reduce over every pixel (64->64 at 570x570: 5 tiles, a reduction of 324,900).
// The reduction is then split into S contiguous ranges ("split-K"): S times as many blocks, each
// writing its partial tile to a workspace that a second kernel sums in split order (no atomics:
// the result is the same bits on every run).
//
// S is chosen by a small cost model: the blocks run in waves of `slots` (SMs x resident blocks per
// SM), each wave as long as its blocks' reduction ranges (plus a fixed cost per block), and a split
// product pays for writing and re-reading its partial sums. A grid that ends in a nearly empty wave
// costs a whole wave, so the choice favours grids of whole waves. The machine figures are nominal
// (H100/H200 class) and serve to rank the choices only.
#pragma once
#include <cstdint>

namespace unet::kernels::cuda::gemm {

struct Machine {
  int64_t sms = 132;            // multiprocessors
  int64_t blocks_per_sm = 2;    // resident blocks of the kernel per SM (occupancy)
  double gflops_per_sm = 3750;  // sustained rate of one SM in the product's arithmetic
  double gbytes_per_s = 3000;   // memory bandwidth for the workspace traffic
};

struct Shape {
  int64_t M = 0, N = 0, Kred = 0;   // out[M, N] = sum over Kred
  int BM = 128, BN = 128, BK = 16;  // block tile and reduction step
};

struct Plan {
  int64_t splits = 1;           // S: ranges of the reduction (grid.z)
  int64_t steps_per_split = 1;  // reduction steps (of BK) in each range; the last may be shorter
  int64_t waves = 1;            // ceil(blocks / slots)
  double cost_us = 0;           // the model's estimate, for comparisons and reports only
};

inline int64_t plan_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The modelled time of S splits (after rounding S so that no range is empty).
inline Plan plan_with_splits(const Shape& p, const Machine& m, int64_t splits) {
  const int64_t steps = p.Kred > 0 ? plan_ceil_div(p.Kred, p.BK) : 1;
  if (splits < 1) splits = 1;
  if (splits > steps) splits = steps;
  Plan plan;
  plan.steps_per_split = plan_ceil_div(steps, splits);
  plan.splits = plan_ceil_div(steps, plan.steps_per_split);
  const int64_t tiles = plan_ceil_div(p.M, p.BM) * plan_ceil_div(p.N, p.BN);
  const int64_t slots = (m.sms > 0 ? m.sms : 1) * (m.blocks_per_sm > 0 ? m.blocks_per_sm : 1);
  plan.waves = plan_ceil_div(tiles * plan.splits, slots);
  // One reduction step of one block while the SM is shared by blocks_per_sm of them.
  const double step_us = 2.0 * p.BM * p.BN * p.BK / (m.gflops_per_sm * 1e3 / static_cast<double>(m.blocks_per_sm));
  constexpr double kFixedSteps = 3.0;  // prologue (the pipeline filling) and epilogue of a block
  double cost = static_cast<double>(plan.waves) * (static_cast<double>(plan.steps_per_split) + kFixedSteps) * step_us;
  if (plan.splits > 1) {
    // The partial tiles written, read back and the result written; plus the reduction's launch.
    const double bytes = (2.0 * static_cast<double>(plan.splits) + 1.0) * static_cast<double>(p.M) * p.N * 4.0;
    cost += bytes / (m.gbytes_per_s * 1e3) + 3.0;
  }
  plan.cost_us = cost;
  return plan;
}

// The split count of least modelled cost, from 1 up to the largest that keeps `min_steps` reduction
// steps per range, at most `max_workspace_floats` of partial sums and at most 4 waves of blocks (more
// never pays: the ranges only get shorter while the partial sums grow). Ties: fewer splits.
inline Plan plan_splits(const Shape& p, const Machine& m, int64_t min_steps = 4,
                        int64_t max_workspace_floats = int64_t{64} << 20) {
  const int64_t steps = p.Kred > 0 ? plan_ceil_div(p.Kred, p.BK) : 1;
  int64_t most = steps / (min_steps > 0 ? min_steps : 1);
  const int64_t per_split = p.M * p.N > 0 ? p.M * p.N : 1;
  if (most > max_workspace_floats / per_split) most = max_workspace_floats / per_split;
  const int64_t tiles = plan_ceil_div(p.M, p.BM) * plan_ceil_div(p.N, p.BN);
  const int64_t slots = (m.sms > 0 ? m.sms : 1) * (m.blocks_per_sm > 0 ? m.blocks_per_sm : 1);
  if (most > plan_ceil_div(4 * slots, tiles)) most = plan_ceil_div(4 * slots, tiles);
  if (most > 65535) most = 65535;  // grid.z
  Plan best = plan_with_splits(p, m, 1);
  for (int64_t s = 2; s <= most; ++s) {
    const Plan c = plan_with_splits(p, m, s);
    if (c.splits == s && c.cost_us < best.cost_us) best = c;
  }
  return best;
}

}  // namespace unet::kernels::cuda::gemm
