// Checks every CUDA kernel's logic on the host: the real kernel sources (launches rewritten by transform.py)
// run under emu.h, each block as blockDim threads with a barrier, filling the emulated CUDA tables. The
// op table's tiny rows run on that backend and on the CPU and are compared as the GPU cross-check compares
// them (tests/row_check.h: within the tolerance of the row's precision, guards intact, and the same bits when
// run again), with the SM count the launchers see given on the command line:
//   cuda_emu SMS     1 SM: no split-K, grid-stride loops that go round; 132 SMs (an H100/H200): split-K where
//                    the reduction allows (the launchers read the SM count once per process)
// Then the check rows cannot express: a label outside [0, K) makes the loss NaN. Prints "N failures".
#include "emu.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"
#include "tests/op_table.h"
#include "tests/row_check.h"

// The emulated CUDA tables (kernels/cuda/table.cu and restore/kernels/cuda/table.cu, compiled as host C++).
namespace unet::kernels {
const KernelTable& cuda_table();
}
namespace unet::restore::kernels {
const RestoreKernelTable& cuda_table();
}

using namespace unet;

namespace {

int failures = 0;

void report(const char* what, double error, double tol) {
  const bool ok = error <= tol;
  failures += !ok;
  std::printf("%-8s %-60s %12.3e %10.3e  %s\n", "extra", what, error, tol, ok ? "ok" : "FAIL");
}

// A label outside [0, K) makes the loss NaN, as on the CPU (a row's comparison takes only finite outputs).
void bad_label(const test::Backend& emu) {
  const int N = 1, K = 3, H = 5, W = 7;
  const int64_t P = N * H * W;
  const std::vector<float> logits = test::random_values(P * K, 3, -4.0f, 4.0f);
  for (int32_t bad : {K, -1}) {
    std::vector<int32_t> labels(static_cast<size_t>(P));
    for (int64_t i = 0; i < P; ++i) labels[i] = static_cast<int32_t>(philox::word(4, 0x1AB, i) % K);
    labels[P / 2] = bad;
    std::vector<float> loss(1, 0.0f), grad(static_cast<size_t>(P * K));
    emu.unet->softmax_xent(emu.stream, logits.data(), labels.data(), nullptr, loss.data(), grad.data(), N, K, H, W);
    report(bad == K ? "softmax_xent: label K gives a NaN loss" : "softmax_xent: label -1 gives a NaN loss",
           std::isnan(loss[0]) ? 0.0 : 1.0, 0.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::atoi(argv[1]) < 1) {
    std::fprintf(stderr, "usage: %s SMS\n", argv[0]);
    return 2;
  }
  emu::fake_sms = std::atoi(argv[1]);
  // The CPU side of the BF16 rows is the reference (rounded operands, FP32 products), also on a CPU with
  // AVX-512 BF16.
  unet::kernels::cpu::detail::set_bf16_dot_products(false);
  const test::Backend cpu = test::cpu_backend();
  const test::Backend emu{"cuda-emu-" + std::to_string(emu::fake_sms) + "sm", Device::CPU, &kernels::cuda_table(),
                          &restore::kernels::cuda_table(), nullptr};
  const std::vector<test::OpCase> rows = test::op_cases({test::Size::tiny});
  for (size_t r = 0; r < rows.size(); ++r) {
    const test::RowCheck check = test::check_row(rows[r], cpu, emu, 1000 + r, true);
    if (!check.ok)
      std::printf("FAILED: %s %s on %s: %s\n", rows[r].op.c_str(), rows[r].title().c_str(), emu.name.c_str(),
                  check.failure.c_str());
    failures += !check.ok;
  }
  bad_label(emu);
  std::printf("%s: %zu tiny rows and 2 extra checks; %d failures\n", emu.name.c_str(), rows.size(), failures);
  return failures != 0;
}
