// The fused kernels against the unfused ops they replace, on every op-table row of theirs: conv3x3_relu_forward
// against conv3x3_forward then relu_forward, conv3x3_relu_backward_data (_weight) against relu_backward then
// conv3x3_backward_data (_weight), on the CPU (the CUDA kernels are held to the CPU's fused kernels
// by the GPU cross-check and the host emulation). And the engine's fused op against the two ops it replaces:
// the same values and the same gradients.
#include <catch2/catch.hpp>

#include <string>

#include "engine/backend.h"
#include "engine/ops.h"
#include "tests/grad_check.h"
#include "tests/op_table.h"

using namespace unet;
using namespace unet::test;

namespace {

constexpr uint64_t kSeed = 1234;

kernels::Precision kernel_precision(Precision p) {
  return p == Precision::tf32   ? kernels::Precision::TF32
         : p == Precision::bf16 ? kernels::Precision::BF16
                                : kernels::Precision::FP32;
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The row's outputs from its own launch on the CPU.
std::vector<Readback> run_row(const OpCase& row) {
  Prepared p = prepare(row, cpu_backend(), kSeed);
  p.launch();
  return p.read();
}

// The row's inputs as Buffers draws them: key kSeed + i for the i-th, uniform in [-1, 1).
std::vector<float> draw(int i, int64_t n) { return random_values(n, kSeed + i); }

// conv3x3_relu_forward's row against conv3x3_forward then relu_forward on the same inputs.
void check_forward(const OpCase& row) {
  const int N = int(row.dims[0]), C = int(row.dims[1]), H = int(row.dims[2]), W = int(row.dims[3]),
            K = int(row.dims[4]);
  const int64_t nx = int64_t{N} * C * H * W, nw = int64_t{K} * C * 9, ny = int64_t{N} * K * (H - 2) * (W - 2);
  const std::vector<float> x = draw(0, nx), w = draw(1, nw), b = draw(2, K);
  const bool bias = !has(row.variant, "no bias");
  std::vector<float> conv(ny), ref(ny);
  const kernels::KernelTable& t = kernels::cpu_table();
  t.conv3x3_forward(nullptr, kernel_precision(row.precision), x.data(), w.data(), bias ? b.data() : nullptr,
                    conv.data(), N, C, H, W, K);
  t.relu_forward(nullptr, conv.data(), ref.data(), ny);
  const std::vector<Readback> out = run_row(row);
  REQUIRE(out.size() == 1);
  CHECK(out[0].guard_overwritten == 0);
  CHECK(rel_error(out[0].values, ref) <= tolerance(Precision::fp32));
}

std::vector<float> relu_out(int i, int64_t n) {
  std::vector<float> v = draw(i, n);
  for (float& e : v) e = e > 0.0f ? e : 0.0f;
  return v;
}

// The backward rows against relu_backward then the unfused pass.
void check_backward(const OpCase& row) {
  const int N = int(row.dims[0]), C = int(row.dims[1]), H = int(row.dims[2]), W = int(row.dims[3]),
            K = int(row.dims[4]);
  const int64_t nx = int64_t{N} * C * H * W, nw = int64_t{K} * C * 9, ny = int64_t{N} * K * (H - 2) * (W - 2);
  const kernels::KernelTable& t = kernels::cpu_table();
  const kernels::Precision prec = kernel_precision(row.precision);
  const std::vector<Readback> out = run_row(row);
  std::vector<float> g(ny);
  if (row.op == "conv3x3_relu_backward_data") {
    const std::vector<float> dy = draw(0, ny), y = relu_out(1, ny), w = draw(2, nw);
    t.relu_backward(nullptr, y.data(), dy.data(), g.data(), ny);
    std::vector<float> dx(nx);
    t.conv3x3_backward_data(nullptr, prec, g.data(), w.data(), dx.data(), N, C, H, W, K);
    REQUIRE(out.size() == 1);
    CHECK(out[0].guard_overwritten == 0);
    CHECK(rel_error(out[0].values, dx) <= tolerance(Precision::fp32));
  } else {
    const std::vector<float> x = draw(0, nx), dy = draw(1, ny), y = relu_out(2, ny);
    t.relu_backward(nullptr, y.data(), dy.data(), g.data(), ny);
    std::vector<float> dw(nw), db(K);
    t.conv3x3_backward_weight(nullptr, prec, x.data(), g.data(), dw.data(), db.data(), N, C, H, W, K);
    REQUIRE(out.size() == 2);
    CHECK(out[0].guard_overwritten + out[1].guard_overwritten == 0);
    CHECK(rel_error(out[0].values, dw) <= tolerance(Precision::fp32));
    CHECK(rel_error(out[1].values, db) <= tolerance(Precision::fp32));
  }
}

void check(const OpCase& row) {
  INFO(row.op << " " << row.title());
  if (row.op == "conv3x3_relu_forward") check_forward(row);
  else check_backward(row);
}

bool fused(const OpCase& row) { return row.op.rfind("conv3x3_relu_", 0) == 0; }

}  // namespace

TEST_CASE("conv3x3_relu_*: the unfused ops' results on the fused kernels' tiny and small rows", "[fusion]") {
  int rows = 0;
  for (const OpCase& row : op_cases({Size::tiny, Size::small}))
    if (fused(row)) {
      check(row);
      ++rows;
    }
  CHECK(rows >= 30);
}

TEST_CASE("conv3x3_relu_*: the unfused ops' results on the fused kernels' large and bench rows", "[fusion][slow]") {
  for (const OpCase& row : op_cases({Size::large, Size::bench}))
    if (fused(row) && row.precision == Precision::fp32) check(row);
}

TEST_CASE("ops::conv3x3_relu: the values and gradients of relu(conv3x3)", "[fusion][grad]") {
  struct S {
    int N, C, H, W, K;
  };
  // A direct product (one channel), Winograd on the CPU (16 channels, ragged tiles), a batch.
  for (S s : {S{1, 1, 9, 8, 3}, S{1, 16, 22, 19, 17}, S{2, 3, 7, 9, 5}}) {
    INFO(s.N << "x" << s.C << "x" << s.H << "x" << s.W << " -> " << s.K);
    Tensor x0 = rnd({s.N, s.C, s.H, s.W}, 1), w0 = rnd({s.K, s.C, 3, 3}, 2), b0 = rnd({s.K}, 3);
    Var x1 = Var::parameter(x0.clone(), "x"), w1 = Var::parameter(w0.clone(), "w"),
        b1 = Var::parameter(b0.clone(), "b");
    Var x2 = Var::parameter(x0.clone(), "x"), w2 = Var::parameter(w0.clone(), "w"),
        b2 = Var::parameter(b0.clone(), "b");
    // One graph on the tape at a time: a backward pass runs (and frees) every node recorded.
    Var fused = ops::conv3x3_relu(x1, w1, b1);
    Tensor r = rnd(fused.shape(), 4);
    backprop_with(fused, r);
    Var plain = ops::relu(ops::conv3x3(x2, w2, b2));
    REQUIRE(fused.shape() == plain.shape());
    CHECK(rel_error(fused.value().to_vector(), plain.value().to_vector()) <= 1e-6);
    backprop_with(plain, r);
    CHECK(rel_error(x1.grad().to_vector(), x2.grad().to_vector()) <= 1e-6);
    CHECK(rel_error(w1.grad().to_vector(), w2.grad().to_vector()) <= 1e-6);
    CHECK(rel_error(b1.grad().to_vector(), b2.grad().to_vector()) <= 1e-6);
  }
}
