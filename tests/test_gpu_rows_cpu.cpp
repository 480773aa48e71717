// The GPU cross-check's own rows (tests/gpu/gpu_rows.h) run on the CPU, where no GPU is needed: every
// output finite, every guard past an output intact (the sizes the rows allocate match what the kernels
// write), and a second run identical. The GPU tests compare the same rows with the GPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/gpu/gpu_rows.h"

using namespace unet;

namespace {

void run_on_cpu(const std::vector<test::OpCase>& rows) {
  for (size_t r = 0; r < rows.size(); ++r) {
    const test::OpCase& row = rows[r];
    INFO(row.op << " " << row.shape);
    const auto a = row.run(Device::CPU, 77 + r), b = row.run(Device::CPU, 77 + r);
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() >= 2);
    for (size_t o = 0; o < a.size(); ++o) {
      INFO("output " << o);
      REQUIRE(!a[o].empty());
      REQUIRE(std::count_if(a[o].begin(), a[o].end(), [](float v) { return !std::isfinite(v); }) == 0);
      REQUIRE(test::rel_error(b[o], a[o]) == 0.0);
    }
  }
}

}  // namespace

TEST_CASE("the GPU-only small rows run on the CPU with their guards intact", "[gpu_rows]") {
  const std::vector<test::OpCase> rows = gpu_test::extra_cases_small();
  REQUIRE(rows.size() >= 14);
  run_on_cpu(rows);
  // A guard that is overwritten shows as 1s: write one float past a guarded output.
  Tensor t = gpu_test::guarded(Device::CPU, 10);
  t.f32()[10] = 0.0f;
  std::vector<std::vector<float>> out;
  gpu_test::take(Device::CPU, t, 10, out);
  REQUIRE(out.size() == 2);
  REQUIRE(out[1][0] == 1.0f);
  REQUIRE(test::rel_error(out[1], std::vector<float>(gpu_test::kGuard, 0.0f)) > 1.0);
}

TEST_CASE("the sanitizer subset holds every op of the table once, at its smallest shape", "[gpu_rows]") {
  const std::vector<test::OpCase> rows = gpu_test::sanitize_cases();
  std::vector<std::string> ops;
  for (const test::OpCase& r : test::op_cases(false))
    if (std::find(ops.begin(), ops.end(), r.op) == ops.end()) ops.push_back(r.op);
  for (const std::string& op : ops) {
    INFO(op);
    REQUIRE(std::count_if(rows.begin(), rows.begin() + static_cast<long>(ops.size()),
                          [&](const test::OpCase& r) { return r.op == op; }) == 1);
  }
}

// The large rows (batch 4 at 570x570 and more): minutes and gigabytes on the CPU, so not in CI. Run it by
// name (./test_gpu_rows_cpu "[.large]") after changing them ([slow]: also kept out of the sanitizer build).
TEST_CASE("the GPU-only large rows run on the CPU with their guards intact", "[.large][slow]") {
  run_on_cpu(gpu_test::extra_cases_large());
}
