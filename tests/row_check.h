// The one comparison of an op-table row across two backends, for the GPU cross-check (tests/gpu/) and the
// host emulation of the CUDA kernels (tests/cuda_emu/): the row runs on the reference backend (the CPU)
// and on the other from the same seed; every output must be within the row's tolerance of the
// reference's, and every guard intact on both. With `repeat`, the other backend runs the row again after
// reset() and the two results are compared bit for bit: every op must reproduce its bits (no kernel uses
// atomics; the convolutions' split-K partial sums are reduced in a fixed order through a workspace).
// One line per comparison on stdout and, when UNET_GPU_REPORT names a file, appended to it as TSV:
//   row      op shape out rel_error tol ok|FAIL|FAIL guard <backend>
//   bitwise  op shape out 1|0 - bitwise|not bitwise
// (shape: the row's title, its sizes and why it exists).
#pragma once
#include <cstdint>
#include <string>

#include "tests/op_table.h"

namespace unet::test {

struct RowCheck {
  bool ok = true;
  std::string failure;  // what failed first, for the test's message
};

RowCheck check_row(const OpCase& row, const Backend& reference, const Backend& other, uint64_t seed, bool repeat);

}  // namespace unet::test
