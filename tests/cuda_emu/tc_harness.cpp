// The tensor-core convolutions (kernels/cuda/*_tc.cu on tc_gemm.cuh) on the host emulation, against the
// CPU reference at the same precision: conv3x3, conv1x1 and upconv2x2, forward (with and without a
// bias), backward data and backward weight, in TF32 and BF16, on small, odd and real-ish shapes, with 1
// SM (few splits) and 132 (split-K through the workspace). The emulated mma computes what the CPU
// reference computes up to the order of the sums (both take the same rounded operands), so the
// tolerance is FP32's: a missed rounding, a wrong fragment layout, a stage read before its copies
// landed or a wrong gather all fail it. Every output is NaN before the call and has a guard of 64
// floats past its end. Also: the fragment layouts of mma_layouts.h are one-to-one.
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emu.h"
#include "kernels/cpu/bf16_gemm.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/kernels.h"
#include "kernels/precision.h"
#include "mma_layouts.h"

using namespace unet::kernels;

namespace {

std::mt19937 rng(7);
int fails = 0;
constexpr int kGuard = 64;
constexpr float kSentinel = 12345.0f;

std::vector<float> rnd(int64_t n) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

// n NaNs, then the guard.
std::vector<float> poisoned(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n + kGuard), std::nanf(""));
  std::fill(v.end() - kGuard, v.end(), kSentinel);
  return v;
}

double rel(const std::vector<float>& a, const std::vector<float>& r, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    const double d = static_cast<double>(a[i]) - r[i];
    num += d * d;
    den += static_cast<double>(r[i]) * r[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

bool guard_intact(const std::vector<float>& v) {
  for (size_t i = v.size() - kGuard; i < v.size(); ++i)
    if (v[i] != kSentinel) return false;
  return true;
}

void report(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref, int64_t n) {
  const double e = rel(got, ref, n);
  const bool ok = e <= 1e-5 && guard_intact(got);
  fails += !ok;
  std::printf("%-64s %.3e %s%s\n", what.c_str(), e, guard_intact(got) ? "" : "guard overwritten ", ok ? "ok" : "FAIL");
}

enum Kind { K3, K1, UP };

void conv(Kind kind, int N, int C, int H, int W, int K, Precision prec, int sms) {
  emu::fake_sms = sms;
  const KernelTable& cpu = cpu_table();
  const int64_t xs = int64_t(N) * C * H * W;
  const int64_t ws = kind == K3 ? int64_t(K) * C * 9 : int64_t(K) * C * (kind == K1 ? 1 : 4);
  const int64_t ys = kind == K3 ? int64_t(N) * K * (H - 2) * (W - 2) : int64_t(N) * K * H * W * (kind == K1 ? 1 : 4);
  const auto x = rnd(xs), w = rnd(ws), b = rnd(K), dy = rnd(ys);
  const std::string tag = std::string(kind == K3   ? "conv3x3"
                                      : kind == K1 ? "conv1x1"
                                                   : "upconv2x2") +
                          " " + precision_name(prec) + " N" + std::to_string(N) + " C" + std::to_string(C) + " H" +
                          std::to_string(H) + " W" + std::to_string(W) + " K" + std::to_string(K) + " sms" +
                          std::to_string(sms);
  auto F = kind == K3 ? cpu.conv3x3_forward : kind == K1 ? cpu.conv1x1_forward : cpu.upconv2x2_forward;
  auto G = kind == K3 ? cuda::conv3x3_forward : kind == K1 ? cuda::conv1x1_forward : cuda::upconv2x2_forward;
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    auto y1 = poisoned(ys), y2 = poisoned(ys);
    F(nullptr, prec, x.data(), w.data(), bias, y1.data(), N, C, H, W, K);
    G(nullptr, prec, x.data(), w.data(), bias, y2.data(), N, C, H, W, K);
    report(tag + (bias ? " fwd" : " fwd null bias"), y2, y1, ys);
  }
  auto FD = kind == K3   ? cpu.conv3x3_backward_data
            : kind == K1 ? cpu.conv1x1_backward_data
                         : cpu.upconv2x2_backward_data;
  auto GD = kind == K3   ? cuda::conv3x3_backward_data
            : kind == K1 ? cuda::conv1x1_backward_data
                         : cuda::upconv2x2_backward_data;
  auto dx1 = poisoned(xs), dx2 = poisoned(xs);
  FD(nullptr, prec, dy.data(), w.data(), dx1.data(), N, C, H, W, K);
  GD(nullptr, prec, dy.data(), w.data(), dx2.data(), N, C, H, W, K);
  report(tag + " bwd_data", dx2, dx1, xs);
  auto FW = kind == K3   ? cpu.conv3x3_backward_weight
            : kind == K1 ? cpu.conv1x1_backward_weight
                         : cpu.upconv2x2_backward_weight;
  auto GW = kind == K3   ? cuda::conv3x3_backward_weight
            : kind == K1 ? cuda::conv1x1_backward_weight
                         : cuda::upconv2x2_backward_weight;
  auto dw1 = poisoned(ws), dw2 = poisoned(ws), db1 = poisoned(K), db2 = poisoned(K);
  FW(nullptr, prec, x.data(), dy.data(), dw1.data(), db1.data(), N, C, H, W, K);
  GW(nullptr, prec, x.data(), dy.data(), dw2.data(), db2.data(), N, C, H, W, K);
  report(tag + " bwd_weight dw", dw2, dw1, ws);
  report(tag + " bwd_weight db", db2, db1, K);
}

// Every element of A, B and C/D is held by exactly one (lane, element) of the fragments.
void layouts_are_one_to_one() {
  auto check = [](const char* what, int rows, int cols, int per_lane, auto layout) {
    std::vector<int> seen(static_cast<size_t>(rows * cols), 0);
    bool ok = true;
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < per_lane; ++i) {
        const auto rc = layout(lane, i);
        if (rc.row < 0 || rc.row >= rows || rc.col < 0 || rc.col >= cols) ok = false;
        else ++seen[static_cast<size_t>(rc.row * cols + rc.col)];
      }
    for (int s : seen) ok = ok && s == 1;
    fails += !ok;
    std::printf("fragment layout %-40s %s\n", what, ok ? "ok" : "FAIL");
  };
  namespace L = emu::mma_layout;
  check("m16n8k8 tf32 A (16 x 8)", 16, 8, 4, L::a_tf32);
  check("m16n8k8 tf32 B (8 x 8)", 8, 8, 2, L::b_tf32);
  check("m16n8k16 bf16 A (16 x 16)", 16, 16, 8, L::a_bf16);
  check("m16n8k16 bf16 B (16 x 8)", 16, 8, 4, L::b_bf16);
  check("C/D f32 (16 x 8)", 16, 8, 4, L::c_f32);
}

}  // namespace

int main() {
  // The reference of the BF16 convolutions (rounded operands, FP32 products) on CPUs with AVX-512 BF16 too.
  unet::kernels::cpu::detail::set_bf16_dot_products(false);
  layouts_are_one_to_one();
  for (Precision prec : {Precision::TF32, Precision::BF16}) {
    for (int sms : {1, 132}) {
      conv(K3, 1, 3, 7, 9, 5, prec, sms);      // smaller than every tile
      conv(K3, 2, 5, 13, 11, 7, prec, sms);    // odd sizes, a batch
      conv(K3, 1, 12, 14, 15, 70, prec, sms);  // M > 64: the 128 x 128 tile
      conv(K3, 1, 64, 12, 12, 64, prec, sms);  // a real layer's channels (16-byte weight copies)
      conv(K3, 3, 4, 20, 20, 8, prec, sms);    // weight-gradient ranges across images
      conv(K1, 2, 7, 5, 9, 3, prec, sms);
      conv(K1, 1, 64, 30, 30, 2, prec, sms);  // the head
      conv(K1, 1, 40, 7, 9, 70, prec, sms);
      conv(UP, 2, 6, 5, 7, 3, prec, sms);
      conv(UP, 1, 64, 8, 8, 32, prec, sms);  // a real up-convolution's channels
      conv(UP, 1, 33, 5, 3, 17, prec, sms);
      conv(UP, 1, 96, 5, 6, 40, prec, sms);  // M > 64: the 128 x 128 tile, its column sums in two shares
    }
  }
  // Real-ish: deep layers (long reductions, many splits), 64 and 128 channels over larger planes, a batch
  // of two, an up-convolution, the head.
  for (Precision prec : {Precision::TF32, Precision::BF16}) {
    conv(K3, 1, 256, 10, 10, 128, prec, 132);
    conv(K3, 1, 128, 10, 10, 256, prec, 132);
    conv(K3, 1, 64, 36, 36, 64, prec, 132);
    conv(K3, 2, 128, 16, 16, 128, prec, 132);
    conv(UP, 1, 128, 12, 12, 64, prec, 132);
    conv(K1, 1, 64, 60, 60, 2, prec, 132);
  }
  std::printf("%d failures\n", fails);
  return fails != 0;
}
