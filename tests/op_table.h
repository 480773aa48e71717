// The op table (in the manner of ggml's test-backend-ops): one row per kernel and shape.
// Each row runs its kernel through a backend's KernelTable on inputs drawn afresh from a seed
// (never zeros), with every output poisoned with NaN first, and returns the outputs on the host.
// The CPU tests use it for known properties; tests/gpu runs every row on the CPU and on the GPU
// and compares them by normalised error against the row's tolerance.
// Adding an op (or a shape) means adding rows in op_table.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "kernels/kernels.h"

namespace unet::test {

struct OpCase {
  std::string op;     // the kernel's name in the table, e.g. "conv3x3_forward"
  std::string shape;  // what the shapes are, for the report
  double tol;         // largest accepted rel_error against the CPU (fp32: ~1e-5 of the norm)
  // Runs the kernel on `device`; returns every output, copied to the host, in a fixed order.
  std::function<std::vector<std::vector<float>>(Device device, uint64_t seed)> run;
};

// small, odd and real U-Net shapes; `large` adds the biggest real layers (572x572 input,
// 64 channels at 570x570, 1024 channels at 30x30), too slow for the CPU in CI.
std::vector<OpCase> op_cases(bool large);

// The accepted normalised error of a convolution row against the CPU reference at its precision (the
// reference rounds the operands as the GPU does; what is left is the order and the hardware's rounding
// of the sums): fp32 1e-5, tf32 1e-3, bf16 1e-2.
double conv_tolerance(kernels::Precision p);

// ||a - ref||_2 / max(||ref||_2, tiny); infinity if any element of a is not finite.
double rel_error(const std::vector<float>& a, const std::vector<float>& ref);

// Uniform values in [-1, 1) from Philox: reproducible on every backend.
std::vector<float> random_values(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

}  // namespace unet::test
