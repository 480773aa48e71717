// The op table itself (tests/op_table.h): it covers every kernel of both tables, its names are unique, its
// flop and byte counts are right where counted by hand, its input generator is Philox's, and its comparison
// (tests/row_check.h) catches a kernel that writes past its output, one that leaves an element unwritten
// and one that does not repeat its bits. The comparison's use against the GPU is tests/gpu/; the rows'
// determinism and thread-count independence on the CPU are in test_engine and test_conv_shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "kernels/philox.h"
#include "tests/op_table.h"
#include "tests/row_check.h"

using namespace unet;
using namespace unet::test;

namespace {

std::vector<std::string> table_ops() {
  std::vector<std::string> ops;
#define UNET_OP(name, params) ops.push_back(#name);
#include "kernels/ops.inc"
#undef UNET_OP
#define RESTORE_OP(name, params) ops.push_back(#name);
#include "restore/kernels/ops.inc"
#undef RESTORE_OP
  return ops;
}

const OpCase& find_row(const std::vector<OpCase>& rows, const std::string& op, const std::string& shape) {
  for (const OpCase& r : rows)
    if (r.op == op && r.shape() == shape) return r;
  FAIL("no row " << op << " " << shape);
  return rows.front();
}

}  // namespace

TEST_CASE("every kernel of both tables has a tiny row and a timed row, and every row names a kernel", "[op_table]") {
  const std::vector<std::string> ops = table_ops();
  const std::vector<OpCase> rows = op_cases();
  REQUIRE(ops.size() >= 29);
  for (const std::string& op : ops) {
    INFO(op);
    CHECK(std::any_of(rows.begin(), rows.end(), [&](const OpCase& r) { return r.op == op && r.size == Size::tiny; }));
    CHECK(std::any_of(rows.begin(), rows.end(), [&](const OpCase& r) { return r.op == op && timed(r); }));
  }
  for (const OpCase& r : rows) {
    INFO(r.op << " " << r.title());
    CHECK(std::find(ops.begin(), ops.end(), r.op) != ops.end());
    CHECK(r.bytes > 0);
    CHECK(r.flops >= 0);
    CHECK(r.tol() == tolerance(r.precision));
  }
}

TEST_CASE("row titles and benchmark names are unique", "[op_table]") {
  std::set<std::string> titles, names;
  for (const OpCase& r : op_cases()) {
    INFO(r.op << " " << r.title());
    CHECK(titles.insert(r.op + " " + r.shape()).second);
    if (timed(r)) CHECK(names.insert(r.bench_name()).second);
    CHECK(r.bench_name().find(' ') == std::string::npos);
  }
}

TEST_CASE("flop and byte counts of rows counted by hand", "[op_table]") {
  const std::vector<OpCase> rows = op_cases();
  // conv3x3 1x3x7x9 -> 5 channels at 5x7: 5*7 outputs x 5 channels x 27 taps = 4725 multiply-adds;
  // x 189, w 135, b 5, y 175 floats.
  const OpCase& conv = find_row(rows, "conv3x3_forward", "N,C,H,W,K=1x3x7x9x5");
  CHECK(conv.flops == 9450);
  CHECK(conv.bytes == 4 * (189 + 135 + 5 + 175));
  const OpCase& dw = find_row(rows, "conv3x3_backward_weight", "N,C,H,W,K=1x3x7x9x5");
  CHECK(dw.flops == 9450);
  CHECK(dw.bytes == 4 * (189 + 175 + 135 + 5));  // x, dy read; dw, db written
  // upconv2x2 2x6x5x7 -> 3 channels at 10x14: 2 images x 140 outputs x 3 channels x 6 inputs = 5040;
  // x 420, w 72, y 840 floats, and no bias.
  const OpCase& up = find_row(rows, "upconv2x2_forward", "N,C,H,W,K=2x6x5x7x3 no bias");
  CHECK(up.flops == 10080);
  CHECK(up.bytes == 4 * (420 + 72 + 840));
  // crop_concat 2x3x12x14 cropped to 8x9 beside 2x5x8x9: reads 2*3*72 + 2*5*72, writes 2*8*72.
  CHECK(find_row(rows, "crop_concat_forward", "N,Cs,Hs,Ws,Cu,Hu,Wu=2x3x12x14x5x8x9").bytes == 4 * (432 + 720 + 1152));
  // softmax_xent 2x3x5x7 weighted: logits 210, labels 70, weights 70 read; loss 1, gradient 210 written.
  CHECK(find_row(rows, "softmax_xent", "N,K,H,W=2x3x5x7 weighted").bytes == 4 * (210 + 70 + 70 + 1 + 210));
  // sgd_momentum: three multiply-adds per element; w, g, v read, w, v written.
  const OpCase& sgd = find_row(rows, "sgd_momentum", "n=1001");
  CHECK(sgd.flops == 6 * 1001);
  CHECK(sgd.bytes == 4 * 5 * 1001);
}

TEST_CASE("the paper's 23 convolutions: its layer list and its 300.9 GFLOP forward", "[op_table]") {
  const std::vector<PaperLayer> layers = paper_layers();
  REQUIRE(layers.size() == 23);
  CHECK(layers.front().label() == "down.0.conv1/1to64@572x572");
  CHECK(layers.back().label() == "head/64to2@388x388");
  double forward = 0;
  int rows = 0;
  for (const OpCase& r : op_cases())
    if (!r.layer.empty()) {
      ++rows;
      if (r.op.size() > 8 && r.op.compare(r.op.size() - 8, 8, "_forward") == 0) forward += r.flops;
    }
  CHECK(rows == 3 * 23);
  CHECK(std::abs(forward - 300.9e9) < 0.05e9);  // the figure of bench_cpu_network.cpp and bench/results
}

TEST_CASE("random inputs are Philox's, the same for any split over threads", "[op_table]") {
  for (int64_t n : {int64_t{7}, int64_t{3} << 20}) {
    const std::vector<float> v = random_values(n, 42, -2.0f, 3.0f);
    REQUIRE(static_cast<int64_t>(v.size()) == n);
    for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{3}, n / 3, n / 2 + 1, n - 1}) {
      INFO("n " << n << " i " << i);
      CHECK(v[i] == -2.0f + 5.0f * philox::uniform(42, 0x5EED, static_cast<uint64_t>(i)));
    }
  }
  CHECK(random_values(1000, 1) != random_values(1000, 2));
}

namespace {

// relu_forward done right but for one flaw, for the comparison to catch.
void relu_one_past_end(kernels::Stream, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  y[n] = 0.0f;  // the first guard float
}
void relu_skips_last(kernels::Stream, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i + 1 < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void relu_differs_on_second_call(kernels::Stream, const float* x, float* y, int64_t n) {
  static int calls = 0;
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  if (calls++ % 2 == 1) y[0] = std::nextafter(y[0], 1.0f);
}

Backend with_relu(kernels::KernelTable& table, void (*relu)(kernels::Stream, const float*, float*, int64_t),
                  const char* name) {
  table = kernels::cpu_table();
  table.relu_forward = relu;
  Backend b = cpu_backend();
  b.name = name;
  b.unet = &table;
  return b;
}

}  // namespace

TEST_CASE("the comparison catches a write past the end, an unwritten element and unrepeatable bits", "[op_table]") {
  const std::vector<OpCase> rows = op_cases({Size::tiny});
  const OpCase& relu = find_row(rows, "relu_forward", "n=1001");
  const Backend cpu = cpu_backend();
  REQUIRE(check_row(relu, cpu, cpu, 5, true).ok);

  kernels::KernelTable table;
  const RowCheck past = check_row(relu, cpu, with_relu(table, relu_one_past_end, "past-end"), 5, false);
  CHECK_FALSE(past.ok);
  CHECK_THAT(past.failure, Catch::Contains("FAIL guard past-end"));

  const RowCheck skipped = check_row(relu, cpu, with_relu(table, relu_skips_last, "skips-last"), 5, false);
  CHECK_FALSE(skipped.ok);
  CHECK_THAT(skipped.failure, Catch::Contains("rel_error inf"));

  const RowCheck flaky = check_row(relu, cpu, with_relu(table, relu_differs_on_second_call, "flaky"), 5, true);
  CHECK_FALSE(flaky.ok);
  CHECK_THAT(flaky.failure, Catch::Contains("two runs differ"));

  // A guard the reference itself overwrites is reported against the reference.
  const RowCheck reference_bad = check_row(relu, with_relu(table, relu_one_past_end, "bad-reference"), cpu, 5, false);
  CHECK_FALSE(reference_bad.ok);
  CHECK_THAT(reference_bad.failure, Catch::Contains("FAIL guard bad-reference"));
}

// The large rows (real U-Net sizes, batch 4 at 570x570): minutes and gigabytes on the CPU, so not in CI. Run
// it by name (./test_op_table "[.large]") after changing them ([slow]: also kept out of the sanitizer build).
TEST_CASE("the large rows run on the CPU with their guards intact", "[.large][slow]") {
  const Backend cpu = cpu_backend();
  for (const OpCase& row : op_cases({Size::large})) {
    INFO(row.op << " " << row.title());
    Prepared p = prepare(row, cpu, 77);
    p.launch();
    for (const Readback& r : p.read()) {
      REQUIRE(std::count_if(r.values.begin(), r.values.end(), [](float v) { return !std::isfinite(v); }) == 0);
      REQUIRE(r.guard_overwritten == 0);
    }
  }
}
