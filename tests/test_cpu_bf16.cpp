// The CPU's BF16 convolutions on AVX-512 BF16 (kernels/cpu/bf16_gemm.h): against the CPU reference (the FP32
// products of operands rounded to BF16) and against float64, on small, odd and real layer shapes, in the three
// passes of conv3x3, conv1x1 and upconv2x2; bit-identical for 1, 2 and 3 threads. On a CPU without the
// instructions the cases check that the BF16 convolutions are the reference, and say so.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/precision.h"
#include "tests/naive.h"
#include "tests/op_table.h"

using namespace unet;
using kernels::Precision;
namespace dot = kernels::cpu::detail;

namespace {

enum class Kind { k3x3, k1x1, up2x2 };
enum class Pass { forward, data, weight };

struct ConvShape {
  int N, C, H, W, K;
};

const char* kind_name(Kind k) { return k == Kind::k3x3 ? "conv3x3" : k == Kind::k1x1 ? "conv1x1" : "upconv2x2"; }
const char* pass_name(Pass p) { return p == Pass::forward ? "forward" : p == Pass::data ? "data" : "weight"; }

// Output spatial size (per image and channel) of the forward pass.
int64_t out_plane(Kind k, const ConvShape& s) {
  if (k == Kind::k3x3) return static_cast<int64_t>(s.H - 2) * (s.W - 2);
  if (k == Kind::k1x1) return static_cast<int64_t>(s.H) * s.W;
  return static_cast<int64_t>(4) * s.H * s.W;
}
int64_t weight_size(Kind k, const ConvShape& s) {
  return static_cast<int64_t>(s.K) * s.C * (k == Kind::k3x3 ? 9 : k == Kind::k1x1 ? 1 : 4);
}

struct Inputs {
  std::vector<float> x, w, b, dy;
};

Inputs inputs(Kind k, const ConvShape& s, uint64_t seed) {
  return {test::random_values(static_cast<int64_t>(s.N) * s.C * s.H * s.W, seed),
          test::random_values(weight_size(k, s), seed + 1, -0.2f, 0.2f), test::random_values(s.K, seed + 2),
          test::random_values(s.N * s.K * out_plane(k, s), seed + 3)};
}

// One pass at `prec` through the CPU table: the forward's y, the data gradient's dx, or dw then db.
std::vector<float> run(Kind k, Pass p, Precision prec, const Inputs& in, const ConvShape& s) {
  const kernels::KernelTable& t = kernels::cpu_table();
  const int N = s.N, C = s.C, H = s.H, W = s.W, K = s.K;
  std::vector<float> out;
  if (p == Pass::forward) {
    out.assign(in.dy.size(), 0.0f);
    auto f = k == Kind::k3x3 ? t.conv3x3_forward : k == Kind::k1x1 ? t.conv1x1_forward : t.upconv2x2_forward;
    f(nullptr, prec, in.x.data(), in.w.data(), in.b.data(), out.data(), N, C, H, W, K);
  } else if (p == Pass::data) {
    out.assign(in.x.size(), 0.0f);
    auto f = k == Kind::k3x3   ? t.conv3x3_backward_data
             : k == Kind::k1x1 ? t.conv1x1_backward_data
                               : t.upconv2x2_backward_data;
    f(nullptr, prec, in.dy.data(), in.w.data(), out.data(), N, C, H, W, K);
  } else {
    out.assign(in.w.size() + K, 0.0f);
    auto f = k == Kind::k3x3   ? t.conv3x3_backward_weight
             : k == Kind::k1x1 ? t.conv1x1_backward_weight
                               : t.upconv2x2_backward_weight;
    f(nullptr, prec, in.x.data(), in.dy.data(), out.data(), out.data() + in.w.size(), N, C, H, W, K);
  }
  return out;
}

// The reference BF16 (rounded operands, FP32 products), whatever the CPU.
std::vector<float> run_reference(Kind k, Pass p, const Inputs& in, const ConvShape& s) {
  const bool was = dot::set_bf16_dot_products(false);
  std::vector<float> r = run(k, p, Precision::BF16, in, s);
  dot::set_bf16_dot_products(was);
  return r;
}

std::vector<double> f64(const std::vector<float>& v, bool round) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = round ? kernels::round_bf16(v[i]) : v[i];
  return d;
}
std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// conv3x3's three passes in float64 (operands rounded to BF16 first when `round`); db from the FP32 dy.
std::vector<float> conv3x3_f64(Pass p, const Inputs& in, const ConvShape& s, bool round) {
  const int N = s.N, C = s.C, H = s.H, W = s.W, K = s.K, Ho = H - 2, Wo = W - 2;
  const std::vector<double> x = f64(in.x, round), w = f64(in.w, round), b = f64(in.b, false), dy = f64(in.dy, round);
  if (p == Pass::forward) return to_float(naive::conv3x3(x, w, b, N, C, H, W, K));
  auto X = [&](int n, int c, int i, int j) { return x[((static_cast<size_t>(n) * C + c) * H + i) * W + j]; };
  auto D = [&](int n, int k, int i, int j) { return dy[((static_cast<size_t>(n) * K + k) * Ho + i) * Wo + j]; };
  auto Wt = [&](int k, int c, int t) { return w[(static_cast<size_t>(k) * C + c) * 9 + t]; };
  if (p == Pass::data) {
    std::vector<double> dx(in.x.size(), 0.0);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k)
        for (int i = 0; i < Ho; ++i)
          for (int j = 0; j < Wo; ++j)
            for (int c = 0; c < C; ++c)
              for (int t = 0; t < 9; ++t)
                dx[((static_cast<size_t>(n) * C + c) * H + i + t / 3) * W + j + t % 3] += Wt(k, c, t) * D(n, k, i, j);
    return to_float(dx);
  }
  std::vector<double> dw(in.w.size() + K, 0.0);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < Ho; ++i)
        for (int j = 0; j < Wo; ++j) {
          for (int c = 0; c < C; ++c)
            for (int t = 0; t < 9; ++t)
              dw[(static_cast<size_t>(k) * C + c) * 9 + t] += D(n, k, i, j) * X(n, c, i + t / 3, j + t % 3);
          dw[in.w.size() + k] += in.dy[((static_cast<size_t>(n) * K + k) * Ho + i) * Wo + j];
        }
  return to_float(dw);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

const ConvShape kSmallShapes[] = {
    {1, 3, 7, 9, 5},      // nothing fills a tile
    {2, 5, 13, 11, 7},    // batched, odd
    {1, 1, 20, 17, 16},   // one input channel: a reduction of 9 (odd) in the forward
    {3, 7, 5, 4, 9},      // rows of 2 px: a micro-tile spans rows and images
    {2, 29, 9, 12, 10},   // a reduction of 261: one past a block
    {1, 70, 12, 10, 130}  // several row blocks and tiles each way
};

}  // namespace

TEST_CASE("BF16 products: the CPU's BF16 choice follows its instructions", "[bf16]") {
  INFO("avx512_bf16: " << dot::cpu_has_avx512_bf16());
  CHECK(dot::bf16_dot_products() == dot::cpu_has_avx512_bf16());
  CHECK(dot::use_bf16_dot(Precision::BF16) == dot::cpu_has_avx512_bf16());
  CHECK_FALSE(dot::use_bf16_dot(Precision::FP32));
  CHECK_FALSE(dot::use_bf16_dot(Precision::TF32));
  const bool was = dot::set_bf16_dot_products(false);
  CHECK_FALSE(dot::bf16_dot_products());
  dot::set_bf16_dot_products(was);
  if (!dot::cpu_has_avx512_bf16()) WARN("this CPU has no avx512_bf16: the BF16 convolutions are the reference");
}

TEST_CASE("BF16 products round both operands to nearest even, as round_bf16", "[bf16]") {
  // conv1x1 with one pixel row of values at and near BF16 ties, times 1 (the other channel 0): each output is
  // the BF16 of one operand, exactly. Inputs through the input's conversion, then through the weights'.
  const std::vector<float> v = {1.0f + std::ldexp(1.0f, -8),                          // a tie: to the even 1.0
                                1.0f + 3 * std::ldexp(1.0f, -8),                      // a tie: up to even
                                1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20),  // just above a tie
                                -(1.0f + 3 * std::ldexp(1.0f, -8)),
                                kernels::bits_float(0xC0497FFFu),
                                kernels::bits_float(0xC0498000u),
                                3.14159265f,
                                -0.0f,
                                1e-3f,
                                65504.0f,
                                0.1f,
                                -7.3e5f};
  const int P = static_cast<int>(v.size());
  const kernels::KernelTable& t = kernels::cpu_table();
  std::vector<float> x(2 * P, 0.0f), w = {1.0f, 0.0f}, y(P);
  std::copy(v.begin(), v.end(), x.begin());
  t.conv1x1_forward(nullptr, Precision::BF16, x.data(), w.data(), nullptr, y.data(), 1, 2, 1, P, 1);
  for (int p = 0; p < P; ++p) {
    INFO("x = " << v[p]);
    CHECK(kernels::float_bits(y[p] + 0.0f) == kernels::float_bits(kernels::round_bf16(v[p]) + 0.0f));
  }
  // The weights' side: K = P outputs of one pixel, w[k] = v[k], x = 1.
  std::vector<float> x1 = {1.0f, 0.0f}, wk(2 * P, 0.0f), yk(P);
  for (int k = 0; k < P; ++k) wk[2 * k] = v[k];
  t.conv1x1_forward(nullptr, Precision::BF16, x1.data(), wk.data(), nullptr, yk.data(), 1, 2, 1, 1, P);
  for (int k = 0; k < P; ++k) {
    INFO("w = " << v[k]);
    CHECK(kernels::float_bits(yk[k] + 0.0f) == kernels::float_bits(kernels::round_bf16(v[k]) + 0.0f));
  }
}

TEST_CASE("BF16 products against the reference and float64: small and odd shapes, three convolutions", "[bf16]") {
  int differ = 0;  // cases whose sums ran in another order than the reference's: the products ran
  for (Kind k : {Kind::k3x3, Kind::k1x1, Kind::up2x2})
    for (const ConvShape& s : kSmallShapes)
      for (Pass p : {Pass::forward, Pass::data, Pass::weight}) {
        if (k != Kind::k3x3 && s.H * s.W > 200) continue;
        INFO(kind_name(k) << " " << pass_name(p) << " N,C,H,W,K=" << s.N << "x" << s.C << "x" << s.H << "x" << s.W
                          << "x" << s.K);
        const Inputs in = inputs(k, s, 17 + s.C);
        const std::vector<float> fast = run(k, p, Precision::BF16, in, s), ref = run_reference(k, p, in, s);
        if (!dot::cpu_has_avx512_bf16()) {
          REQUIRE(same_bits(fast, ref));
          continue;
        }
        // The same rounded operands: only the order and rounding of the FP32 sums differ (a truncation
        // instead of rounding to nearest would be ~1e-3 away).
        CHECK(test::rel_error(fast, ref) < 1e-5);
        differ += !same_bits(fast, ref);
        CHECK(test::rel_error(fast, run(k, p, Precision::FP32, in, s)) < test::conv_tolerance(Precision::BF16));
        if (k == Kind::k3x3) {
          CHECK(test::rel_error(fast, conv3x3_f64(p, in, s, true)) < 1e-5);
          CHECK(test::rel_error(fast, conv3x3_f64(p, in, s, false)) < test::conv_tolerance(Precision::BF16));
        }
        if (p == Pass::weight)  // db sums the FP32 dy: the same bits as FP32's
          CHECK(std::memcmp(fast.data() + weight_size(k, s),
                            run(k, p, Precision::FP32, in, s).data() + weight_size(k, s), s.K * sizeof(float)) == 0);
      }
  if (dot::cpu_has_avx512_bf16()) CHECK(differ > 20);
}

TEST_CASE("BF16 products: real layer shapes against the reference", "[bf16][slow]") {
  if (!dot::cpu_has_avx512_bf16()) return;
  struct Case {
    Kind k;
    ConvShape s;
  };
  const Case cases[] = {{Kind::k3x3, {1, 64, 102, 102, 64}}, {Kind::k3x3, {1, 128, 66, 66, 256}},
                        {Kind::k3x3, {1, 512, 32, 32, 512}}, {Kind::k3x3, {1, 1, 188, 188, 16}},
                        {Kind::k1x1, {1, 64, 100, 100, 2}},  {Kind::up2x2, {1, 512, 28, 28, 256}},
                        {Kind::up2x2, {2, 128, 30, 30, 64}}};
  for (const Case& c : cases)
    for (Pass p : {Pass::forward, Pass::data, Pass::weight}) {
      const ConvShape& s = c.s;
      INFO(kind_name(c.k) << " " << pass_name(p) << " N,C,H,W,K=" << s.N << "x" << s.C << "x" << s.H << "x" << s.W
                          << "x" << s.K);
      const Inputs in = inputs(c.k, s, 99);
      const std::vector<float> fast = run(c.k, p, Precision::BF16, in, s);
      CHECK(test::rel_error(fast, run_reference(c.k, p, in, s)) < 1e-5);
      CHECK(test::rel_error(fast, run(c.k, p, Precision::FP32, in, s)) < test::conv_tolerance(Precision::BF16));
    }
}

TEST_CASE("BF16 products: the same bits for 1, 2 and 3 threads", "[bf16]") {
  const ConvShape shapes[] = {{2, 29, 9, 12, 10}, {1, 70, 34, 33, 130}, {3, 16, 24, 24, 8}};
  for (Kind k : {Kind::k3x3, Kind::k1x1, Kind::up2x2})
    for (const ConvShape& s : shapes)
      for (Pass p : {Pass::forward, Pass::data, Pass::weight}) {
        INFO(kind_name(k) << " " << pass_name(p) << " N,C,H,W,K=" << s.N << "x" << s.C << "x" << s.H << "x" << s.W
                          << "x" << s.K);
        const Inputs in = inputs(k, s, 5);
        std::vector<float> first;
        for (int threads : {1, 2, 3}) {
          kernels::cpu::set_num_threads(threads);
          const std::vector<float> r = run(k, p, Precision::BF16, in, s);
          if (threads == 1) first = r;
          else CHECK(same_bits(r, first));
        }
        kernels::cpu::set_num_threads(0);
      }
}
