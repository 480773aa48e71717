// The fused kernels against the unfused ops they replace, on every op-table row of theirs: conv3x3_relu_forward
// against conv3x3_forward then relu_forward, conv3x3_relu_backward_data (_weight, and conv3x3_relu_backward, both)
// against relu_backward then conv3x3_backward_data (_weight), conv3x3_relu_concat_* against crop_concat then
// conv3x3_relu_*, on the CPU (the CUDA
// kernels are held to the CPU's fused kernels by the GPU cross-check and the host emulation). And the engine's fused op
// against the two ops it replaces: the same values and the same gradients.
#include <catch2/catch.hpp>

#include <string>

#include "engine/backend.h"
#include "engine/ops.h"
#include "kernels/cpu/winograd.h"
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
  if (row.op == "conv3x3_relu_backward") {  // both passes: dx (unless "no dx"), dw, db
    const std::vector<float> x = draw(0, nx), dy = draw(1, ny), y = relu_out(2, ny), w = draw(3, nw);
    t.relu_backward(nullptr, y.data(), dy.data(), g.data(), ny);
    std::vector<std::vector<float>> ref;
    if (!has(row.variant, "no dx")) {
      ref.emplace_back(nx);
      t.conv3x3_backward_data(nullptr, prec, g.data(), w.data(), ref.back().data(), N, C, H, W, K);
    }
    ref.emplace_back(nw);
    ref.emplace_back(K);
    t.conv3x3_backward_weight(nullptr, prec, x.data(), g.data(), ref[ref.size() - 2].data(), ref.back().data(), N, C, H,
                              W, K);
    REQUIRE(out.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      CHECK(out[i].guard_overwritten == 0);
      CHECK(rel_error(out[i].values, ref[i]) <= tolerance(Precision::fp32));
    }
  } else if (row.op == "conv3x3_relu_backward_data") {
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

bool fused(const OpCase& row) {
  return row.op.rfind("conv3x3_relu_", 0) == 0 && row.op.rfind("conv3x3_relu_concat_", 0) != 0;
}
bool concat(const OpCase& row) { return row.op.rfind("conv3x3_relu_concat_", 0) == 0; }

// A conv3x3_relu_concat_* row against crop_concat then the conv3x3_relu_* kernel on the concatenated input.
// In FP32 the sums are the same chains of operations in the same order (the crop is only read from elsewhere),
// so the results must be the same bits; at TF32/BF16 the CPU concatenates first and runs the same code.
void check_concat(const OpCase& row) {
  INFO(row.op << " " << row.title());
  const int N = int(row.dims[0]), Cs = int(row.dims[1]), Hs = int(row.dims[2]), Ws = int(row.dims[3]),
            Cu = int(row.dims[4]), H = int(row.dims[5]), W = int(row.dims[6]), K = int(row.dims[7]), C = Cs + Cu;
  const int64_t ns = int64_t{N} * Cs * Hs * Ws, nu = int64_t{N} * Cu * H * W, nx = int64_t{N} * C * H * W,
                nw = int64_t{K} * C * 9, ny = int64_t{N} * K * (H - 2) * (W - 2);
  const kernels::KernelTable& t = kernels::cpu_table();
  const kernels::Precision prec = kernel_precision(row.precision);
  const std::vector<Readback> out = run_row(row);
  std::vector<float> cat(nx);
  std::vector<std::vector<float>> ref;
  if (row.op == "conv3x3_relu_concat_forward") {
    const std::vector<float> sk = draw(0, ns), up = draw(1, nu), w = draw(2, nw), b = draw(3, K);
    t.crop_concat_forward(nullptr, sk.data(), up.data(), cat.data(), N, Cs, Hs, Ws, Cu, H, W);
    ref.emplace_back(ny);
    t.conv3x3_relu_forward(nullptr, prec, cat.data(), w.data(), b.data(), ref[0].data(), N, C, H, W, K);
  } else if (row.op == "conv3x3_relu_concat_backward_data") {
    const std::vector<float> dy = draw(0, ny), y = relu_out(1, ny), w = draw(2, nw);
    t.conv3x3_relu_backward_data(nullptr, prec, dy.data(), y.data(), w.data(), cat.data(), N, C, H, W, K);
    ref.emplace_back(ns);
    ref.emplace_back(nu);
    t.crop_concat_backward(nullptr, cat.data(), ref[0].data(), ref[1].data(), N, Cs, Hs, Ws, Cu, H, W);
  } else if (row.op == "conv3x3_relu_concat_backward") {  // both passes: dskip, dup, dw, db
    const std::vector<float> sk = draw(0, ns), up = draw(1, nu), dy = draw(2, ny), y = relu_out(3, ny), w = draw(4, nw);
    t.conv3x3_relu_backward_data(nullptr, prec, dy.data(), y.data(), w.data(), cat.data(), N, C, H, W, K);
    ref.emplace_back(ns);
    ref.emplace_back(nu);
    t.crop_concat_backward(nullptr, cat.data(), ref[0].data(), ref[1].data(), N, Cs, Hs, Ws, Cu, H, W);
    t.crop_concat_forward(nullptr, sk.data(), up.data(), cat.data(), N, Cs, Hs, Ws, Cu, H, W);
    ref.emplace_back(nw);
    ref.emplace_back(K);
    t.conv3x3_relu_backward_weight(nullptr, prec, cat.data(), dy.data(), y.data(), ref[2].data(), ref[3].data(), N, C,
                                   H, W, K);
  } else {
    const std::vector<float> sk = draw(0, ns), up = draw(1, nu), dy = draw(2, ny), y = relu_out(3, ny);
    t.crop_concat_forward(nullptr, sk.data(), up.data(), cat.data(), N, Cs, Hs, Ws, Cu, H, W);
    ref.emplace_back(nw);
    ref.emplace_back(K);
    t.conv3x3_relu_backward_weight(nullptr, prec, cat.data(), dy.data(), y.data(), ref[0].data(), ref[1].data(), N, C,
                                   H, W, K);
  }
  REQUIRE(out.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO("output " << i);
    CHECK(out[i].guard_overwritten == 0);
    CHECK(out[i].values == ref[i]);
  }
}

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

TEST_CASE("conv3x3_relu_concat_*: crop_concat then conv3x3_relu_*, bit for bit, on the tiny and small rows",
          "[fusion]") {
  int rows = 0;
  for (kernels::cpu::Conv3x3Algo algo : {kernels::cpu::Conv3x3Algo::kAuto, kernels::cpu::Conv3x3Algo::kDirect}) {
    INFO((algo == kernels::cpu::Conv3x3Algo::kAuto ? "the rule's algorithm" : "the direct product everywhere"));
    const kernels::cpu::Conv3x3Algo before = kernels::cpu::conv3x3_algo();
    kernels::cpu::set_conv3x3_algo(algo);
    for (const OpCase& row : op_cases({Size::tiny, Size::small}))
      if (concat(row)) {
        check_concat(row);
        ++rows;
      }
    kernels::cpu::set_conv3x3_algo(before);
  }
  CHECK(rows >= 2 * 30);
}

TEST_CASE("conv3x3_relu_concat_*: crop_concat then conv3x3_relu_* on the large and bench rows", "[fusion][slow]") {
  for (const OpCase& row : op_cases({Size::large, Size::bench}))
    if (concat(row) && row.precision == Precision::fp32) check_concat(row);
}

TEST_CASE("ops::conv3x3_relu_concat: the values and gradients of relu(conv3x3(crop_concat))", "[fusion][grad]") {
  struct S {
    int N, Cs, Hs, Ws, Cu, H, W, K;
  };
  // The direct product, Winograd on the CPU, a batch with odd margins.
  for (S s : {S{1, 1, 12, 11, 2, 9, 8, 3}, S{1, 8, 26, 25, 8, 22, 19, 17}, S{2, 2, 10, 12, 3, 7, 9, 5}}) {
    INFO(s.N << "x(" << s.Cs << "," << s.Cu << ") " << s.H << "x" << s.W << " -> " << s.K);
    const int C = s.Cs + s.Cu;
    Tensor sk0 = rnd({s.N, s.Cs, s.Hs, s.Ws}, 11), up0 = rnd({s.N, s.Cu, s.H, s.W}, 12), w0 = rnd({s.K, C, 3, 3}, 13),
           b0 = rnd({s.K}, 14);
    Var sk = Var::parameter(sk0.clone(), "skip"), up = Var::parameter(up0.clone(), "up"),
        w = Var::parameter(w0.clone(), "w"), b = Var::parameter(b0.clone(), "b");
    Var fused = ops::conv3x3_relu_concat(sk, up, w, b);
    Tensor r = rnd(fused.shape(), 15);
    backprop_with(fused, r);
    naive::V rd = to_d(r);
    // The float64 reference: relu(conv3x3(crop_concat)).
    auto L = [&](const std::vector<naive::V>& v) {
      const naive::V cat = naive::crop_concat(v[0], v[1], s.N, s.Cs, s.Hs, s.Ws, s.Cu, s.H, s.W);
      return dot(naive::relu(naive::conv3x3(cat, v[2], v[3], s.N, C, s.H, s.W, s.K)), rd);
    };
    const naive::V ref =
        naive::relu(naive::conv3x3(naive::crop_concat(to_d(sk0), to_d(up0), s.N, s.Cs, s.Hs, s.Ws, s.Cu, s.H, s.W),
                                   to_d(w0), to_d(b0), s.N, C, s.H, s.W, s.K));
    CHECK(rel_error(fused.value().to_vector(), to_f(ref)) < 5e-6);
    check_gradients("conv3x3_relu_concat", {sk, up, w, b}, L);
    // The same gradients as the two ops it replaces.
    Var sk2 = Var::parameter(sk0.clone(), "skip"), up2 = Var::parameter(up0.clone(), "up"),
        w2 = Var::parameter(w0.clone(), "w"), b2 = Var::parameter(b0.clone(), "b");
    Var plain = ops::conv3x3_relu(ops::crop_concat(sk2, up2), w2, b2);
    CHECK(fused.value().to_vector() == plain.value().to_vector());
    backprop_with(plain, r);
    CHECK(sk.grad().to_vector() == sk2.grad().to_vector());
    CHECK(up.grad().to_vector() == up2.grad().to_vector());
    CHECK(w.grad().to_vector() == w2.grad().to_vector());
    CHECK(b.grad().to_vector() == b2.grad().to_vector());
  }
}

TEST_CASE("ops::conv3x3_relu_concat: shapes that do not fit are errors naming the op", "[fusion][errors]") {
  Var sk(rnd({1, 2, 10, 10}, 1)), up(rnd({1, 3, 8, 8}, 2)), w(rnd({4, 5, 3, 3}, 3)), b(rnd({4}, 4));
  CHECK_THROWS_WITH(ops::conv3x3_relu_concat(Var(rnd({1, 2, 6, 6}, 5)), up, w, b),
                    Catch::Contains("conv3x3_relu_concat") && Catch::Contains("cannot be cropped"));
  CHECK_THROWS_WITH(ops::conv3x3_relu_concat(sk, up, Var(rnd({4, 4, 3, 3}, 6)), b),
                    Catch::Contains("conv3x3_relu_concat") && Catch::Contains("want [K,5,3,3]"));
  CHECK_THROWS_WITH(ops::conv3x3_relu_concat(sk, up, w, Var(rnd({3}, 7))), Catch::Contains("bias has 3"));
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
