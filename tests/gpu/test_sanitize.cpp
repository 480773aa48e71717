// The compute-sanitizer subset (tag [sanitize]; tools/gpu_check.sh runs memcheck, racecheck, synccheck and
// initcheck over it): the op table's tiny rows, every kernel of both tables at the shapes the host emulation
// also runs (odd sizes, the CUDA tiles' edges, split-K across images, null biases, the multi-pass loss), each
// checked against the CPU as in the full cross-check but run once (the bitwise repeat is the cross-check's;
// under the sanitizer every launch is slow). The allocator, the copies, the dropout mask and three
// training steps carry the tag in their own files.
#include <catch2/catch.hpp>

#include <vector>

#include "tests/op_table.h"
#include "tests/row_check.h"

using namespace unet;

TEST_CASE("every kernel at its tiny shapes matches the CPU", "[gpu][sanitize]") {
  const std::vector<test::OpCase> rows = test::op_cases({test::Size::tiny});
  const test::Backend cpu = test::cpu_backend(), gpu = test::cuda_backend();
  for (size_t r = 0; r < rows.size(); ++r) {
    DYNAMIC_SECTION(rows[r].op << " " << rows[r].title()) {
      const test::RowCheck check = test::check_row(rows[r], cpu, gpu, 9000 + r, false);
      INFO(check.failure);
      REQUIRE(check.ok);
    }
  }
}
