// The compute-sanitizer subset (tag [sanitize]; tools/gpu_check.sh runs memcheck, racecheck, synccheck and
// initcheck over it): every kernel of the table once at its smallest op-table shape, then the small GPU-only
// rows (split-K across images, null biases, the multi-pass loss), each checked against the CPU as in the
// full cross-check. The allocator, the copies, the dropout mask and three training steps carry the tag in
// their own files.
#include <catch2/catch.hpp>

#include <vector>

#include "tests/gpu/gpu_rows.h"

using namespace unet;

TEST_CASE("every kernel at a small shape matches the CPU", "[gpu][sanitize]") {
  const std::vector<test::OpCase> rows = gpu_test::sanitize_cases();
  for (size_t r = 0; r < rows.size(); ++r) {
    DYNAMIC_SECTION(rows[r].op << " " << rows[r].shape) { gpu_test::check_row(rows[r], 9000 + r); }
  }
}
