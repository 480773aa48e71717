// Checks every CUDA kernel's logic on the host against the CPU table: the real kernel sources (the
// launches rewritten by transform.py) run under emu.h, each block as blockDim threads with a barrier.
// Small and odd shapes, with 1 SM (no split-K) and 132 SMs (split-K where the reduction allows).
#include "emu.h"
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <array>
#include <cstring>
#include <vector>
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/kernels.h"
#include "restore/kernels/kernels.h"
using namespace unet::kernels;
namespace rk = unet::restore::kernels;
static std::mt19937 rng(1);
std::vector<float> rnd(int64_t n, float lo = -1, float hi = 1) { std::uniform_real_distribution<float> u(lo, hi); std::vector<float> v(n); for (auto& x : v) x = u(rng); return v; }
std::vector<float> nanv(int64_t n) { return std::vector<float>(n, NAN); }
double rel(const std::vector<float>& a, const std::vector<float>& r) {
  double num = 0, den = 0; for (size_t i = 0; i < a.size(); ++i) { if (!std::isfinite(a[i])) return INFINITY; double d = a[i] - r[i]; num += d*d; den += (double)r[i]*r[i]; }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}
int fails = 0;
void report(const std::string& what, double e, double tol) { bool ok = e <= tol; fails += !ok; printf("%-60s %.3e %s\n", what.c_str(), e, ok ? "ok" : "FAIL"); }

enum Kind { K3, K1, UP };
void conv(Kind kind, int N, int C, int H, int W, int K, int sms) {
  emu::fake_sms = sms;
  const KernelTable& cpu = cpu_table();
  int64_t xs = (int64_t)N*C*H*W, ws = kind==K3 ? (int64_t)K*C*9 : kind==K1 ? (int64_t)K*C : (int64_t)C*K*4;
  int64_t ys = kind==K3 ? (int64_t)N*K*(H-2)*(W-2) : kind==K1 ? (int64_t)N*K*H*W : (int64_t)N*K*4*H*W;
  auto x = rnd(xs), w = rnd(ws), b = rnd(K), dy = rnd(ys);
  std::string tag = std::string(kind==K3?"conv3x3":kind==K1?"conv1x1":"upconv") + " N" + std::to_string(N) + " C" + std::to_string(C) + " H" + std::to_string(H) + " W" + std::to_string(W) + " K" + std::to_string(K) + " sms" + std::to_string(sms);
  auto y1 = nanv(ys), y2 = nanv(ys), dx1 = nanv(xs), dx2 = nanv(xs), dw1 = nanv(ws), dw2 = nanv(ws), db1 = nanv(K), db2 = nanv(K);
  auto F = kind==K3 ? cpu.conv3x3_forward : kind==K1 ? cpu.conv1x1_forward : cpu.upconv2x2_forward;
  auto G = kind==K3 ? cuda::conv3x3_forward : kind==K1 ? cuda::conv1x1_forward : cuda::upconv2x2_forward;
  F(nullptr, Precision::FP32, x.data(), w.data(), b.data(), y1.data(), N, C, H, W, K); G(nullptr, Precision::FP32, x.data(), w.data(), b.data(), y2.data(), N, C, H, W, K);
  report(tag + " fwd", rel(y2, y1), 1e-5);
  y1 = nanv(ys); y2 = nanv(ys);  // no bias (b == nullptr)
  F(nullptr, Precision::FP32, x.data(), w.data(), nullptr, y1.data(), N, C, H, W, K); G(nullptr, Precision::FP32, x.data(), w.data(), nullptr, y2.data(), N, C, H, W, K);
  report(tag + " fwd null bias", rel(y2, y1), 1e-5);
  auto FD = kind==K3 ? cpu.conv3x3_backward_data : kind==K1 ? cpu.conv1x1_backward_data : cpu.upconv2x2_backward_data;
  auto GD = kind==K3 ? cuda::conv3x3_backward_data : kind==K1 ? cuda::conv1x1_backward_data : cuda::upconv2x2_backward_data;
  FD(nullptr, Precision::FP32, dy.data(), w.data(), dx1.data(), N, C, H, W, K); GD(nullptr, Precision::FP32, dy.data(), w.data(), dx2.data(), N, C, H, W, K);
  report(tag + " bwd_data", rel(dx2, dx1), 1e-5);
  auto FW = kind==K3 ? cpu.conv3x3_backward_weight : kind==K1 ? cpu.conv1x1_backward_weight : cpu.upconv2x2_backward_weight;
  auto GW = kind==K3 ? cuda::conv3x3_backward_weight : kind==K1 ? cuda::conv1x1_backward_weight : cuda::upconv2x2_backward_weight;
  FW(nullptr, Precision::FP32, x.data(), dy.data(), dw1.data(), db1.data(), N, C, H, W, K); GW(nullptr, Precision::FP32, x.data(), dy.data(), dw2.data(), db2.data(), N, C, H, W, K);
  report(tag + " bwd_weight dw", rel(dw2, dw1), 1e-5);
  report(tag + " bwd_weight db", rel(db2, db1), 1e-5);
}

int main() {
  // op-table small shapes, with few SMs (no split) and many (split-K where the reduction allows)
  for (int sms : {1, 132}) {
    conv(K3, 1, 3, 7, 9, 5, sms);
    conv(K3, 2, 5, 13, 11, 7, sms);
    conv(K3, 1, 16, 34, 35, 17, sms);
    conv(K3, 1, 3, 40, 37, 70, sms);   // M > 64: the 128x128 tile
    conv(K3, 1, 70, 12, 10, 130, sms);  // C > 64: 128 tile in backward data; split forward
    conv(K1, 2, 7, 5, 9, 3, sms);
    conv(K1, 1, 64, 38, 38, 2, sms);
    conv(K1, 1, 130, 9, 7, 66, sms);
    conv(UP, 2, 6, 5, 7, 3, sms);
    conv(UP, 1, 64, 16, 16, 32, sms);
    conv(UP, 1, 33, 5, 3, 17, sms);
    conv(K3, 3, 4, 20, 20, 8, sms);    // weight gradients: with 132 SMs, split-K ranges that cross images
    conv(K1, 3, 8, 24, 24, 4, sms);
    conv(UP, 3, 16, 13, 12, 8, sms);
  }
  const KernelTable& cpu = cpu_table();
  { // relu, maxpool, crop, dropout, sgd
    int64_t n = 1001; auto x = rnd(n), dy = rnd(n); auto a = nanv(n), b = nanv(n);
    cpu.relu_forward(nullptr, x.data(), a.data(), n); cuda::relu_forward(nullptr, x.data(), b.data(), n); report("relu fwd", rel(b, a), 0);
    a = nanv(n); b = nanv(n); cpu.relu_backward(nullptr, x.data(), dy.data(), a.data(), n); cuda::relu_backward(nullptr, x.data(), dy.data(), b.data(), n); report("relu bwd", rel(b, a), 0);
    for (uint64_t off : {0ull, 1ull, 3ull, 12345ull, 0xFFFFFFFEull, (1ull << 34) - 6}) {
      a = nanv(n); b = nanv(n); cpu.dropout_forward(nullptr, x.data(), a.data(), n, 0.5f, 77, off); cuda::dropout_forward(nullptr, x.data(), b.data(), n, 0.5f, 77, off);
      report("dropout fwd off " + std::to_string(off), memcmp(a.data(), b.data(), n*4) ? 1.0 : 0.0, 0);
      a = nanv(n); b = nanv(n); cpu.dropout_backward(nullptr, x.data(), a.data(), n, 0.3f, 77, off); cuda::dropout_backward(nullptr, x.data(), b.data(), n, 0.3f, 77, off);
      report("dropout bwd off " + std::to_string(off), memcmp(a.data(), b.data(), n*4) ? 1.0 : 0.0, 0);
    }
    auto w1 = rnd(n), g = rnd(n), v1 = rnd(n); auto w2 = w1, v2 = v1;
    cpu.sgd_momentum(nullptr, w1.data(), g.data(), v1.data(), n, 0.01f, 0.99f, 1e-4f); cuda::sgd_momentum(nullptr, w2.data(), g.data(), v2.data(), n, 0.01f, 0.99f, 1e-4f);
    report("sgd w (bitwise?)", memcmp(w1.data(), w2.data(), n*4) ? rel(w2, w1) : 0.0, 1e-6); report("sgd v", memcmp(v1.data(), v2.data(), n*4) ? rel(v2, v1) : 0.0, 1e-6);
  }
  for (auto [N, C, H, W] : std::vector<std::array<int,4>>{{2, 3, 6, 10}, {1, 5, 36, 36}}) {
    int64_t xs = (int64_t)N*C*H*W, ys = xs / 4; auto x = rnd(xs), dy = rnd(ys);
    // plant ties
    for (int64_t i = 0; i + 1 < xs; i += 7) x[i+1] = x[i];
    auto a = nanv(ys), b = nanv(ys); cpu.maxpool2x2_forward(nullptr, x.data(), a.data(), N, C, H, W); cuda::maxpool2x2_forward(nullptr, x.data(), b.data(), N, C, H, W); report("maxpool fwd", rel(b, a), 0);
    auto c = nanv(xs), d = nanv(xs); cpu.maxpool2x2_backward(nullptr, x.data(), dy.data(), c.data(), N, C, H, W); cuda::maxpool2x2_backward(nullptr, x.data(), dy.data(), d.data(), N, C, H, W); report("maxpool bwd", rel(d, c), 0);
  }
  for (auto [N, Cs, Hs, Ws, Cu, Hu, Wu] : std::vector<std::array<int,7>>{{2, 3, 12, 14, 5, 8, 9}, {1, 4, 17, 16, 3, 17, 16}, {2, 2, 9, 9, 3, 4, 6}}) {
    int64_t ns = (int64_t)N*Cs*Hs*Ws, nu = (int64_t)N*Cu*Hu*Wu, ny = (int64_t)N*(Cs+Cu)*Hu*Wu;
    auto s = rnd(ns), u = rnd(nu), dy = rnd(ny);
    auto a = nanv(ny), b = nanv(ny); cpu.crop_concat_forward(nullptr, s.data(), u.data(), a.data(), N, Cs, Hs, Ws, Cu, Hu, Wu); cuda::crop_concat_forward(nullptr, s.data(), u.data(), b.data(), N, Cs, Hs, Ws, Cu, Hu, Wu); report("crop fwd", rel(b, a), 0);
    auto ds1 = nanv(ns), ds2 = nanv(ns), du1 = nanv(nu), du2 = nanv(nu);
    cpu.crop_concat_backward(nullptr, dy.data(), ds1.data(), du1.data(), N, Cs, Hs, Ws, Cu, Hu, Wu); cuda::crop_concat_backward(nullptr, dy.data(), ds2.data(), du2.data(), N, Cs, Hs, Ws, Cu, Hu, Wu);
    report("crop bwd skip", rel(ds2, ds1), 0); report("crop bwd up", rel(du2, du1), 0);
  }
  // the last shape has more pixels than the 1024 x 256 threads of one pass of the loss kernel
  for (auto [N, K, H, W, weighted] : std::vector<std::array<int,5>>{{2,3,5,7,1},{1,2,17,19,0},{1,2,60,70,1},{1,2,513,517,1}}) {
    int64_t P = (int64_t)N*H*W, n = P*K; auto a = rnd(n, -4, 4), w = rnd(P, 0.5, 11);
    std::vector<int32_t> l(P); for (auto& x : l) x = rng() % K;
    std::vector<float> loss1(1, NAN), loss2(1, NAN), g1(n, NAN), g2(n, NAN);
    cpu.softmax_xent(nullptr, a.data(), l.data(), weighted ? w.data() : nullptr, loss1.data(), g1.data(), N, K, H, W);
    cuda::softmax_xent(nullptr, a.data(), l.data(), weighted ? w.data() : nullptr, loss2.data(), g2.data(), N, K, H, W);
    double e1 = rel(loss2, loss1), e2 = rel(g2, g1); printf("xent loss %.3e grad %.3e (%f vs %f)\n", e1, e2, loss1[0], loss2[0]); fails += e1 > 1e-5 || e2 > 1e-5;
    std::vector<float> p1(n, NAN), p2(n, NAN);
    cpu.softmax_forward(nullptr, a.data(), p1.data(), N, K, H, W); cuda::softmax_forward(nullptr, a.data(), p2.data(), N, K, H, W);
    printf("softmax %.3e\n", rel(p2, p1)); fails += rel(p2, p1) > 1e-5;
    l[P/2] = K; cuda::softmax_xent(nullptr, a.data(), l.data(), nullptr, loss2.data(), g2.data(), N, K, H, W);
    printf("bad label -> loss %f\n", loss2[0]); fails += !std::isnan(loss2[0]);
  }
  { int N=2,K=5; int64_t plane = 1237; auto dy = rnd(N*K*plane); std::vector<float> db(K, NAN), ref(K);
    unet::kernels::cuda::channel_sum(nullptr, dy.data(), db.data(), N, K, plane);
    for (int k=0;k<K;++k){ double s=0; for(int n2=0;n2<N;++n2) for(int64_t q=0;q<plane;++q) s+=dy[(n2*K+k)*plane+q]; ref[k]=s; }
    printf("channel_sum %.3e\n", rel(db, ref)); fails += rel(db, ref) > 1e-6; }
  { int64_t n = 3001; auto x = rnd(n), y = rnd(n); auto y2 = y; cpu.add(nullptr, y.data(), x.data(), n); cuda::add(nullptr, y2.data(), x.data(), n); printf("add %.3e\n", rel(y2, y)); fails += rel(y2,y) != 0;
    cuda::fill(nullptr, y2.data(), 0.25f, n); int bad=0; for (float v : y2) bad += v != 0.25f; printf("fill bad %d\n", bad); fails += bad;
    int32_t f1 = 0, f2 = 0; cuda::check_finite(nullptr, x.data(), n, &f1); x[n-1] = INFINITY; cuda::check_finite(nullptr, x.data(), n, &f2); printf("finite %d %d\n", f1, f2); fails += f1 != 0 || f2 != 1; }
  const rk::RestoreKernelTable& rcpu = rk::cpu_table();
  // The restoration kernels (restore/kernels/cuda/restore_kernels.cu): stencils with the mirror boundary (odd shapes, a kernel
  // larger than the image), the Laplacian, the multiplicative update and its helpers, the reductions.
  for (auto [N, H, W, kh, kw] : std::vector<std::array<int,5>>{{2, 13, 11, 5, 3}, {1, 7, 5, 25, 25}, {1, 31, 29, 13, 13}}) {
    int64_t n = (int64_t)N*H*W; auto x = rnd(n), k = rnd((int64_t)kh*kw);
    std::string tag = " N" + std::to_string(N) + " H" + std::to_string(H) + " W" + std::to_string(W) + " k" + std::to_string(kh) + "x" + std::to_string(kw);
    auto a = nanv(n), b = nanv(n); rcpu.stencil2d(nullptr, x.data(), k.data(), a.data(), N, H, W, kh, kw); rk::cuda::stencil2d(nullptr, x.data(), k.data(), b.data(), N, H, W, kh, kw); report("stencil2d" + tag, rel(b, a), 1e-5);
    a = nanv(n); b = nanv(n); rcpu.stencil2d_adjoint(nullptr, x.data(), k.data(), a.data(), N, H, W, kh, kw); rk::cuda::stencil2d_adjoint(nullptr, x.data(), k.data(), b.data(), N, H, W, kh, kw); report("stencil2d_adjoint" + tag, rel(b, a), 1e-5);
  }
  for (auto [N, H, W] : std::vector<std::array<int,3>>{{2, 9, 13}, {1, 1, 7}, {1, 6, 1}}) {
    int64_t n = (int64_t)N*H*W; auto x = rnd(n), w = rnd(4*n, 0, 1);
    auto d1 = nanv(n), d2 = nanv(n), a1 = nanv(n), a2 = nanv(n);
    rcpu.laplacian8_apply(nullptr, x.data(), w.data(), d1.data(), a1.data(), N, H, W); rk::cuda::laplacian8_apply(nullptr, x.data(), w.data(), d2.data(), a2.data(), N, H, W);
    report("laplacian8 deg N" + std::to_string(N) + " " + std::to_string(H) + "x" + std::to_string(W), rel(d2, d1), 1e-6);
    report("laplacian8 adj N" + std::to_string(N) + " " + std::to_string(H) + "x" + std::to_string(W), rel(a2, a1), 1e-6);
  }
  { int64_t n = 3001; auto f = rnd(n, 0.05f, 1), ap = rnd(n, 0.1f, 2), an = rnd(n, 0, 2), bb = rnd(n); f[5] = 0; f[6] = 1e-31f; an[7] = 0;
    auto f1 = f, f2 = f; rcpu.nnmu_update(nullptr, f1.data(), ap.data(), an.data(), bb.data(), n, 1e-12f); rk::cuda::nnmu_update(nullptr, f2.data(), ap.data(), an.data(), bb.data(), n, 1e-12f); report("nnmu_update", rel(f2, f1), 1e-6);
    auto y1 = rnd(n), y2 = y1, x = rnd(n); rcpu.axpby(nullptr, y1.data(), x.data(), 0.75f, -1.5f, n); rk::cuda::axpby(nullptr, y2.data(), x.data(), 0.75f, -1.5f, n); report("axpby", rel(y2, y1), 1e-6);
    y1 = nanv(n); y2 = nanv(n); rcpu.axpby(nullptr, y1.data(), x.data(), 2.0f, 0.0f, n); rk::cuda::axpby(nullptr, y2.data(), x.data(), 2.0f, 0.0f, n); report("axpby b=0 over NaN", rel(y2, y1), 0);
    auto g = rnd(n, 0, 2), b0 = rnd(n); y1 = nanv(n); y2 = nanv(n); rcpu.l1_reweight(nullptr, g.data(), b0.data(), y1.data(), n, 0.5f, 3.0f); rk::cuda::l1_reweight(nullptr, g.data(), b0.data(), y2.data(), n, 0.5f, 3.0f); report("l1_reweight", rel(y2, y1), 1e-6);
    std::vector<float> o1(2, NAN), o2(2, NAN); rcpu.dot(nullptr, x.data(), g.data(), n, o1.data()); rk::cuda::dot(nullptr, x.data(), g.data(), n, o2.data()); report("dot", std::abs(((double)o1[0] + o1[1]) - ((double)o2[0] + o2[1])) / std::abs((double)o1[0]), 1e-12);
    o1 = {NAN, NAN}; o2 = {NAN, NAN}; rcpu.sum_log1p(nullptr, g.data(), n, 1.0f / 3, o1.data()); rk::cuda::sum_log1p(nullptr, g.data(), n, 1.0f / 3, o2.data()); report("sum_log1p", std::abs(((double)o1[0] + o1[1]) - ((double)o2[0] + o2[1])) / std::abs((double)o1[0]), 1e-12); }
  printf("%d failures\n", fails);
  return fails != 0;
}
