// The convolutions' precisions on the CPU: the operand rounding (TF32: to nearest, ties away; BF16: to
// nearest even) against values worked out by hand, the CPU reference of TF32/BF16 (the FP32 product of
// rounded operands), the engine's ConvPrecision scope through forward and backward, the choice of the
// precision per device, and the split-K plans of the GPU products. (The BF16 products of CPUs with
// AVX-512 BF16 are tests/test_cpu_bf16.cpp's.)
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/precision.h"
#include "tests/op_table.h"

using namespace unet;
using kernels::Precision;

namespace {

float bits(uint32_t u) { return kernels::bits_float(u); }
uint32_t word(float f) { return kernels::float_bits(f); }

}  // namespace

TEST_CASE("TF32 rounding: to nearest with ties away from zero, 10 mantissa bits", "[precision]") {
  using kernels::round_tf32;
  REQUIRE(round_tf32(1.0f) == 1.0f);
  REQUIRE(round_tf32(1.0f + std::ldexp(1.0f, -12)) == 1.0f);                          // below half an ulp
  REQUIRE(round_tf32(1.0f + std::ldexp(1.0f, -11)) == 1.0f + std::ldexp(1.0f, -10));  // a tie: away
  REQUIRE(round_tf32(-(1.0f + std::ldexp(1.0f, -11))) == -(1.0f + std::ldexp(1.0f, -10)));
  REQUIRE(round_tf32(1.0f + 3 * std::ldexp(1.0f, -11)) == 1.0f + std::ldexp(1.0f, -9));  // a tie from an odd one
  REQUIRE(word(round_tf32(bits(0x3F801234u))) == 0x3F802000u);
  REQUIRE(word(round_tf32(bits(0x3F800FFFu))) == 0x3F800000u);
  REQUIRE(round_tf32(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());
  REQUIRE(round_tf32(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  REQUIRE(std::isnan(round_tf32(std::numeric_limits<float>::quiet_NaN())));
  REQUIRE(word(round_tf32(bits(0x00001800u))) == 0x00002000u);  // subnormals round the same way
}

TEST_CASE("BF16 rounding: to nearest even, 7 mantissa bits", "[precision]") {
  using kernels::round_bf16;
  REQUIRE(round_bf16(1.0f) == 1.0f);
  REQUIRE(round_bf16(1.0f + std::ldexp(1.0f, -8)) == 1.0f);                             // a tie to the even 1.0
  REQUIRE(round_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 1.0f + std::ldexp(1.0f, -6));  // a tie up to even
  REQUIRE(round_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 1.0f + std::ldexp(1.0f, -7));
  REQUIRE(word(round_bf16(bits(0xC0497FFFu))) == 0xC0490000u);
  REQUIRE(word(round_bf16(bits(0xC0498000u))) == 0xC04A0000u);  // tie, odd: up (away from the odd)
  REQUIRE(word(round_bf16(-0.0f)) == 0x80000000u);
  REQUIRE(round_bf16(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());
  const float nan = round_bf16(bits(0x7F800001u));  // a signalling NaN stays a NaN
  REQUIRE(std::isnan(nan));
  REQUIRE((word(nan) & 0xFFFFu) == 0u);
}

TEST_CASE("the CPU's TF32 and BF16 convolutions are the FP32 products of rounded operands", "[precision]") {
  // The reference, also on a CPU with AVX-512 BF16 (whose BF16 products sum in another order).
  struct Reference {
    bool was = kernels::cpu::detail::set_bf16_dot_products(false);
    ~Reference() { kernels::cpu::detail::set_bf16_dot_products(was); }
  } reference;
  const kernels::KernelTable& k = kernels::cpu_table();
  const int N = 2, C = 5, H = 9, W = 8, K = 4;
  const std::vector<float> x = test::random_values(N * C * H * W, 3), w = test::random_values(K * C * 9, 4),
                           b = test::random_values(K, 5), dy = test::random_values(N * K * (H - 2) * (W - 2), 6);
  for (Precision p : {Precision::TF32, Precision::BF16}) {
    INFO(kernels::precision_name(p));
    std::vector<float> xr(x), wr(w), dyr(dy);
    for (float& v : xr) v = kernels::round_operand(v, p);
    for (float& v : wr) v = kernels::round_operand(v, p);
    for (float& v : dyr) v = kernels::round_operand(v, p);
    const size_t ys = dy.size();
    std::vector<float> y(ys), y_ref(ys), y32(ys);
    k.conv3x3_forward(nullptr, p, x.data(), w.data(), b.data(), y.data(), N, C, H, W, K);
    k.conv3x3_forward(nullptr, Precision::FP32, xr.data(), wr.data(), b.data(), y_ref.data(), N, C, H, W, K);
    k.conv3x3_forward(nullptr, Precision::FP32, x.data(), w.data(), b.data(), y32.data(), N, C, H, W, K);
    REQUIRE(std::memcmp(y.data(), y_ref.data(), ys * sizeof(float)) == 0);
    REQUIRE(test::rel_error(y, y32) > 1e-5);  // the rounding happened
    REQUIRE(test::rel_error(y, y32) < test::conv_tolerance(p));
    std::vector<float> dw(w.size()), dw_ref(w.size()), db(K), db32(K), dw32(w.size());
    k.conv3x3_backward_weight(nullptr, p, x.data(), dy.data(), dw.data(), db.data(), N, C, H, W, K);
    k.conv3x3_backward_weight(nullptr, Precision::FP32, xr.data(), dyr.data(), dw_ref.data(), db32.data(), N, C, H, W,
                              K);
    REQUIRE(std::memcmp(dw.data(), dw_ref.data(), dw.size() * sizeof(float)) == 0);
    k.conv3x3_backward_weight(nullptr, Precision::FP32, x.data(), dy.data(), dw32.data(), db32.data(), N, C, H, W, K);
    REQUIRE(std::memcmp(db.data(), db32.data(), K * sizeof(float)) == 0);  // db sums the FP32 dy
  }
}

TEST_CASE("ConvPrecision reaches forward and backward, and ends with its scope", "[precision]") {
  REQUIRE(ops::conv_precision() == Precision::FP32);
  const kernels::KernelTable& k = kernels::cpu_table();
  const int C = 3, H = 7, K = 4, O = H - 2;
  const std::vector<float> xv = test::random_values(C * H * H, 11), wv = test::random_values(K * C * 9, 12);
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16}) {
    INFO(kernels::precision_name(p));
    Var x(Tensor::from_vector({1, C, H, H}, xv));
    Var w = Var::parameter(Tensor::from_vector({K, C, 3, 3}, wv), "w");
    Var b = Var::parameter(Tensor::zeros({K}, DType::F32, Device::CPU), "b");
    Var out;
    {
      ops::ConvPrecision scope(p);
      REQUIRE(ops::conv_precision() == p);
      out = ops::conv3x3(x, w, b);
    }
    REQUIRE(ops::conv_precision() == Precision::FP32);
    backward(ops::softmax_xent(out, Tensor::from_vector_i32({1, O, O}, std::vector<int32_t>(O * O, 1))));
    // outside the scope, the backward still runs in p: the table's own p gives the same bits
    std::vector<float> y(static_cast<size_t>(K * O * O)), dw(wv.size()), db(K), zero(K, 0.0f);
    k.conv3x3_forward(nullptr, p, xv.data(), wv.data(), zero.data(), y.data(), 1, C, H, H, K);
    const std::vector<float> dy = out.grad().to_vector();
    k.conv3x3_backward_weight(nullptr, p, xv.data(), dy.data(), dw.data(), db.data(), 1, C, H, H, K);
    REQUIRE(out.value().to_vector() == y);
    REQUIRE(w.grad().to_vector() == dw);
  }
}

TEST_CASE("the precision of a run: fp32 on the CPU (bf16 with AVX-512 BF16), tf32 only on a GPU", "[precision]") {
  REQUIRE(choose_precision(Device::CPU, std::nullopt) == Precision::FP32);
  REQUIRE(choose_precision(Device::CPU, Precision::FP32) == Precision::FP32);
  REQUIRE_THROWS_WITH(choose_precision(Device::CPU, Precision::TF32),
                      Catch::Contains("precision tf32") && Catch::Contains("the CPU computes"));
  if (kernels::cpu::detail::cpu_has_avx512_bf16()) {
    REQUIRE(choose_precision(Device::CPU, Precision::BF16) == Precision::BF16);
  } else {
    REQUIRE_THROWS_WITH(choose_precision(Device::CPU, Precision::BF16),
                        Catch::Contains("precision bf16") && Catch::Contains("avx512_bf16"));
  }
  REQUIRE(parse_precision_option("bf16") == Precision::BF16);
  REQUIRE_THROWS_WITH(parse_precision_option("fp16"), Catch::Contains("fp32, tf32 or bf16"));
  if (cuda_available()) {
    const DeviceInfo d = cuda_device_info();
    REQUIRE(choose_precision(Device::CUDA, std::nullopt) == (d.cc_major >= 8 ? Precision::TF32 : Precision::FP32));
  }
}

namespace {

// The paper's convolutions (572 tile) as products: forward, data and weight gradient of each 3x3 layer.
std::vector<kernels::cuda::gemm::Shape> paper_products() {
  std::vector<kernels::cuda::gemm::Shape> v;
  const int layers[][3] = {{1, 64, 572},    {64, 64, 570},  {64, 128, 284},  {128, 128, 282}, {128, 256, 140},
                           {256, 256, 138}, {256, 512, 68}, {512, 512, 66},  {512, 1024, 32}, {1024, 1024, 30},
                           {1024, 512, 56}, {512, 512, 54}, {512, 256, 104}, {256, 256, 102}, {256, 128, 200},
                           {128, 128, 198}, {128, 64, 392}, {64, 64, 390}};
  for (const auto& l : layers) {
    const int64_t C = l[0], K = l[1], S = l[2], O = (S - 2) * (S - 2);
    v.push_back({K, O, 9 * C, K <= 64 ? 64 : 128, 128, 16});
    v.push_back({C, S * S, 9 * K, C <= 64 ? 64 : 128, 128, 16});
    v.push_back({K, 9 * C, O, K <= 64 ? 64 : 128, 128, 16});
  }
  return v;
}

}  // namespace

TEST_CASE("split-K plans: no empty range, the GPU filled, whole waves", "[precision][plan]") {
  namespace g = kernels::cuda::gemm;
  const g::Machine m;  // 132 SMs, 2 blocks each
  const int64_t slots = m.sms * m.blocks_per_sm;
  for (const g::Shape& s : paper_products()) {
    INFO("M " << s.M << " N " << s.N << " Kred " << s.Kred);
    const g::Plan p = g::plan_splits(s, m);
    const int64_t steps = (s.Kred + s.BK - 1) / s.BK, tiles = ((s.M + s.BM - 1) / s.BM) * ((s.N + s.BN - 1) / s.BN);
    REQUIRE(p.splits >= 1);
    REQUIRE((p.splits - 1) * p.steps_per_split < steps);  // the last range is not empty
    REQUIRE(p.splits * p.steps_per_split >= steps);
    const int64_t blocks = tiles * p.splits;
    REQUIRE(p.waves == (blocks + slots - 1) / slots);
    // A product whose tiles alone leave SMs without a block is split until at least 90% of the SMs have one
    // (unless its reduction is too short), and a split product's waves are at least 60% busy. (A product of
    // many tiles may keep a partial last wave: splitting it costs more in partial sums than the wave.)
    INFO(p.splits << " splits, " << blocks << " blocks, " << p.waves << " waves");
    if (tiles < m.sms && steps >= 4 * slots / tiles) REQUIRE(blocks >= 0.9 * m.sms);
    if (p.splits > 1) REQUIRE(static_cast<double>(blocks) / (p.waves * slots) >= 0.6);
    // Never worse than not splitting, by the model's own measure.
    REQUIRE(p.cost_us <= g::plan_with_splits(s, m, 1).cost_us);
  }
}
