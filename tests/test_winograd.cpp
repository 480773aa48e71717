// Winograd F(4x4, 3x3) for the CPU's conv3x3_forward, conv3x3_backward_data and
// conv3x3_backward_weight (kernels/cpu/winograd.h): against float64 references written as the formulas read, on small
// and odd shapes (ragged tiles, one-tile rows, panels across images, partial channel blocks) and on every 3x3 layer of
// the paper's network and of the base-16 network at their real sizes; the same results for 1, 2 and 3 threads; and the
// rule that chooses it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>

#include "engine/backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/winograd.h"
#include "tests/naive.h"
#include "tests/op_table.h"

using namespace unet;
using namespace unet::test;
using kernels::cpu::Conv3x3Algo;
using kernels::cpu::Conv3x3Pass;

namespace {

const kernels::KernelTable& cpu() { return kernels_for(Device::CPU); }

// Forces one algorithm for the scope.
struct ForceAlgo {
  explicit ForceAlgo(Conv3x3Algo a) : saved(kernels::cpu::conv3x3_algo()) { kernels::cpu::set_conv3x3_algo(a); }
  ~ForceAlgo() { kernels::cpu::set_conv3x3_algo(saved); }
  Conv3x3Algo saved;
};

// Measured with inputs and weights uniform in [-1, 1] (normalised L2 against float64): Winograd
// 1.2e-6 .. 2.6e-6 on the small shapes and the networks' layers, the direct product 1.5e-7 ..
// 1.3e-6; the weight gradient 1.1e-7 .. 1.9e-6 on the small shapes and 0.8e-6 .. 2.9e-6 on the
// layers (direct 0.8e-7 .. 2.4e-7). The tolerance leaves 1.7x to 2x.
constexpr double kWinogradTol = 5e-6;

constexpr int kGuard = 64;  // floats past each output that no kernel may touch
constexpr float kGuardValue = 1234.5f;

// An output of n floats poisoned with NaN, then kGuard guard values.
std::vector<float> poisoned(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n) + kGuard, std::numeric_limits<float>::quiet_NaN());
  std::fill(v.end() - kGuard, v.end(), kGuardValue);
  return v;
}
bool guard_intact(const std::vector<float>& v) {
  for (size_t i = v.size() - kGuard; i < v.size(); ++i)
    if (v[i] != kGuardValue) return false;
  return true;
}
std::vector<float> body(const std::vector<float>& v) { return std::vector<float>(v.begin(), v.end() - kGuard); }

struct ConvShape {
  int N, C, H, W, K;
};

std::vector<float> forward(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                           const std::vector<float>& b) {
  std::vector<float> y = poisoned(int64_t{s.N} * s.K * (s.H - 2) * (s.W - 2));
  cpu().conv3x3_forward(nullptr, kernels::Precision::FP32, x.data(), w.data(), b.data(), y.data(), s.N, s.C, s.H, s.W,
                        s.K);
  CHECK(guard_intact(y));
  return body(y);
}

std::vector<float> backward_data(const ConvShape& s, const std::vector<float>& dy, const std::vector<float>& w) {
  std::vector<float> dx = poisoned(int64_t{s.N} * s.C * s.H * s.W);
  cpu().conv3x3_backward_data(nullptr, kernels::Precision::FP32, dy.data(), w.data(), dx.data(), s.N, s.C, s.H, s.W,
                              s.K);
  CHECK(guard_intact(dx));
  return body(dx);
}

std::vector<float> backward_weight(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  std::vector<float> dw = poisoned(int64_t{s.K} * s.C * 9), db = poisoned(s.K);
  cpu().conv3x3_backward_weight(nullptr, kernels::Precision::FP32, x.data(), dy.data(), dw.data(), db.data(), s.N, s.C,
                                s.H, s.W, s.K);
  CHECK(guard_intact(dw));
  CHECK(guard_intact(db));
  CHECK(std::isfinite(db[0]));
  return body(dw);
}

// dw[k,c,di,dj] = sum_{n,i,j} dy[n,k,i,j] * x[n,c,i+di,j+dj] in float64.
double ref_dw(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& dy, int k, int c, int t) {
  const int Ho = s.H - 2, Wo = s.W - 2, di = t / 3, dj = t % 3;
  double acc = 0.0;
  for (int n = 0; n < s.N; ++n)
    for (int i = 0; i < Ho; ++i) {
      const float* g = &dy[((static_cast<size_t>(n) * s.K + k) * Ho + i) * Wo];
      const float* xr = &x[((static_cast<size_t>(n) * s.C + c) * s.H + i + di) * s.W + dj];
      for (int j = 0; j < Wo; ++j) acc += static_cast<double>(g[j]) * xr[j];
    }
  return acc;
}

// dx[n,c,i,j] = sum_{k,di,dj} w[k,c,di,dj] * dy[n,k,i-di,j-dj] in float64 at one pixel.
double ref_dx(const ConvShape& s, const std::vector<float>& dy, const std::vector<float>& w, int n, int c, int i,
              int j) {
  const int Ho = s.H - 2, Wo = s.W - 2;
  double acc = 0.0;
  for (int k = 0; k < s.K; ++k)
    for (int di = 0; di < 3; ++di)
      for (int dj = 0; dj < 3; ++dj) {
        const int u = i - di, v = j - dj;
        if (u < 0 || u >= Ho || v < 0 || v >= Wo) continue;
        acc += static_cast<double>(w[((static_cast<size_t>(k) * s.C + c) * 3 + di) * 3 + dj]) *
               dy[((static_cast<size_t>(n) * s.K + k) * Ho + u) * Wo + v];
      }
  return acc;
}

// y[n,k,i,j] = b[k] + sum_{c,di,dj} w[k,c,di,dj] * x[n,c,i+di,j+dj] in float64 at one pixel.
double ref_y(const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
             int n, int k, int i, int j) {
  double acc = b[k];
  for (int c = 0; c < s.C; ++c)
    for (int di = 0; di < 3; ++di)
      for (int dj = 0; dj < 3; ++dj)
        acc += static_cast<double>(w[((static_cast<size_t>(k) * s.C + c) * 3 + di) * 3 + dj]) *
               x[((static_cast<size_t>(n) * s.C + c) * s.H + i + di) * s.W + j + dj];
  return acc;
}

// Every output of both passes against float64 (small shapes).
void check_small(const ConvShape& s) {
  INFO("N,C,H,W,K = " << s.N << "," << s.C << "," << s.H << "," << s.W << "," << s.K);
  const int Ho = s.H - 2, Wo = s.W - 2;
  const std::vector<float> x = random_values(int64_t{s.N} * s.C * s.H * s.W, 31),
                           w = random_values(int64_t{s.K} * s.C * 9, 32), b = random_values(s.K, 33),
                           dy = random_values(int64_t{s.N} * s.K * Ho * Wo, 34);
  const std::vector<float> y = forward(s, x, w, b), dx = backward_data(s, dy, w), dw = backward_weight(s, x, dy);
  std::vector<float> ry(y.size()), rdx(dx.size()), rdw(dw.size());
  for (int k = 0; k < s.K; ++k)
    for (int c = 0; c < s.C; ++c)
      for (int t = 0; t < 9; ++t)
        rdw[(static_cast<size_t>(k) * s.C + c) * 9 + t] = static_cast<float>(ref_dw(s, x, dy, k, c, t));
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      for (int i = 0; i < Ho; ++i)
        for (int j = 0; j < Wo; ++j)
          ry[((static_cast<size_t>(n) * s.K + k) * Ho + i) * Wo + j] =
              static_cast<float>(ref_y(s, x, w, b, n, k, i, j));
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c)
      for (int i = 0; i < s.H; ++i)
        for (int j = 0; j < s.W; ++j)
          rdx[((static_cast<size_t>(n) * s.C + c) * s.H + i) * s.W + j] =
              static_cast<float>(ref_dx(s, dy, w, n, c, i, j));
  CHECK(rel_error(y, ry) < kWinogradTol);
  CHECK(rel_error(dx, rdx) < kWinogradTol);
  CHECK(rel_error(dw, rdw) < kWinogradTol);
}

}  // namespace

TEST_CASE("winograd conv3x3 matches float64 on small and odd shapes", "[winograd]") {
  ForceAlgo force(Conv3x3Algo::kWinograd);
  const ConvShape shapes[] = {
      {1, 1, 3, 3, 1},      // one output pixel: one tile, 15 of its 16 pixels cut off
      {1, 2, 4, 5, 3},      // 2 x 3 output: ragged in both directions
      {2, 3, 7, 9, 5},      // a batch: tiles of both images in one panel
      {1, 5, 6, 70, 4},     // one tile row of 17 tiles: a row split across the 16-tile vectors
      {3, 4, 19, 6, 9},     // one tile per row: a panel of many one-tile pieces, across images
      {1, 70, 12, 13, 11},  // 70 channels: a full reduction block and a partial one
      {1, 13, 38, 38, 17},  // 81 tiles: three panels, the last partly empty
      {1, 9, 30, 30, 140},  // 140 output channels: two ranges of rows, 8 x 8 tiles
      {2, 136, 10, 10, 3},  // the data gradient's 136 output channels, from 3 channels
  };
  for (const ConvShape& s : shapes) check_small(s);
}

TEST_CASE("winograd conv3x3 gives the same bits for 1, 2 and 3 threads", "[winograd][threads]") {
  ForceAlgo force(Conv3x3Algo::kWinograd);
  // Shapes that take each path of the driver: filters and inputs transformed once for all tasks
  // or by each task, several ranges of output channels and groups of panels, a half last panel.
  const ConvShape shapes[] = {
      {1, 70, 34, 34, 140}, {2, 33, 60, 61, 24}, {1, 256, 16, 16, 256}, {1, 64, 182, 182, 136}, {1, 1024, 50, 50, 128}};
  for (const ConvShape& s : shapes) {
    INFO("N,C,H,W,K = " << s.N << "," << s.C << "," << s.H << "," << s.W << "," << s.K);
    const std::vector<float> x = random_values(int64_t{s.N} * s.C * s.H * s.W, 41),
                             w = random_values(int64_t{s.K} * s.C * 9, 42), b = random_values(s.K, 43),
                             dy = random_values(int64_t{s.N} * s.K * (s.H - 2) * (s.W - 2), 44);
    kernels::cpu::set_num_threads(1);
    const std::vector<float> y1 = forward(s, x, w, b), dx1 = backward_data(s, dy, w), dw1 = backward_weight(s, x, dy);
    for (int threads : {2, 3}) {
      kernels::cpu::set_num_threads(threads);
      REQUIRE(kernels::cpu::num_threads() == threads);
      const std::vector<float> y = forward(s, x, w, b), dx = backward_data(s, dy, w), dw = backward_weight(s, x, dy);
      CHECK(y == y1);
      CHECK(dx == dx1);
      CHECK(dw == dw1);
    }
    kernels::cpu::set_num_threads(0);
  }
}

namespace {

// The 3x3 layers of the U-Net at tile 572 (the paper's, base 64) and of the base-16 network at
// tile 316 (its default on the CPU): (C, K, H) of each layer's input, square.
struct Layer {
  int C, K, H;
};
const Layer kPaperLayers[] = {{1, 64, 572},    {64, 64, 570},  {64, 128, 284},  {128, 128, 282}, {128, 256, 140},
                              {256, 256, 138}, {256, 512, 68}, {512, 512, 66},  {512, 1024, 32}, {1024, 1024, 30},
                              {1024, 512, 56}, {512, 512, 54}, {512, 256, 104}, {256, 256, 102}, {256, 128, 200},
                              {128, 128, 198}, {128, 64, 392}, {64, 64, 390}};
const Layer kBase16Layers[] = {{1, 16, 316},   {16, 16, 314},  {16, 32, 156},  {32, 32, 154},  {32, 64, 76},
                               {64, 64, 74},   {64, 128, 36},  {128, 128, 34}, {128, 256, 16}, {256, 256, 14},
                               {256, 128, 24}, {128, 128, 22}, {128, 64, 40},  {64, 64, 38},   {64, 32, 72},
                               {32, 32, 70},   {32, 16, 136},  {16, 16, 134}};

// Output rows sampled for the float64 reference: the first tile row, the middle, and the last
// rows (the ragged tile row); every column of each.
std::vector<int> sampled_rows(int n) {
  std::vector<int> r;
  for (int i : {0, 1, 2, 3, n / 2, n / 2 + 1, n - 4, n - 3, n - 2, n - 1})
    if (i >= 0 && i < n && (r.empty() || i > r.back())) r.push_back(i);
  return r;
}
std::vector<int> sampled_channels(int n) {
  std::vector<int> r;
  for (int i : {0, n / 3, n / 2, n - 1})
    if (r.empty() || i > r.back()) r.push_back(i);
  return r;
}

// Normalised L2 error of one pass of one layer at the sampled outputs (all columns of the sampled
// rows of the sampled channels), with the algorithm in force.
double layer_error(Conv3x3Pass pass, const Layer& l) {
  const ConvShape s{1, l.C, l.H, l.H, l.K};
  const int Ho = s.H - 2;
  const std::vector<float> w = random_values(int64_t{s.K} * s.C * 9, 52);
  std::vector<float> got, ref;
  if (pass == Conv3x3Pass::kForward) {
    const std::vector<float> x = random_values(int64_t{s.C} * s.H * s.W, 51), b = random_values(s.K, 53);
    const std::vector<float> y = forward(s, x, w, b);
    for (int k : sampled_channels(s.K))
      for (int i : sampled_rows(Ho))
        for (int j = 0; j < Ho; ++j) {
          got.push_back(y[(static_cast<size_t>(k) * Ho + i) * Ho + j]);
          ref.push_back(static_cast<float>(ref_y(s, x, w, b, 0, k, i, j)));
        }
  } else if (pass == Conv3x3Pass::kBackwardWeight) {
    const std::vector<float> x = random_values(int64_t{s.C} * s.H * s.W, 51),
                             dy = random_values(int64_t{s.K} * Ho * Ho, 54);
    const std::vector<float> dw = backward_weight(s, x, dy);
    for (int k : sampled_channels(s.K))
      for (int c : sampled_channels(s.C))
        for (int t = 0; t < 9; ++t) {
          got.push_back(dw[(static_cast<size_t>(k) * s.C + c) * 9 + t]);
          ref.push_back(static_cast<float>(ref_dw(s, x, dy, k, c, t)));
        }
  } else {
    const std::vector<float> dy = random_values(int64_t{s.K} * Ho * Ho, 54);
    const std::vector<float> dx = backward_data(s, dy, w);
    for (int c : sampled_channels(s.C))
      for (int i : sampled_rows(s.H))
        for (int j = 0; j < s.W; ++j) {
          got.push_back(dx[(static_cast<size_t>(c) * s.H + i) * s.W + j]);
          ref.push_back(static_cast<float>(ref_dx(s, dy, w, 0, c, i, j)));
        }
  }
  return rel_error(got, ref);
}

void check_layers(const Layer* layers, int n, const char* net) {
  ForceAlgo force(Conv3x3Algo::kWinograd);
  for (int i = 0; i < n; ++i) {
    const Layer& l = layers[i];
    INFO(net << " layer " << l.C << "->" << l.K << " @ " << l.H);
    const double ef = layer_error(Conv3x3Pass::kForward, l);
    CHECK(ef < kWinogradTol);
    // The network never computes the input's data gradient (one channel): left out.
    const double eb = l.C > 1 ? layer_error(Conv3x3Pass::kBackwardData, l) : 0.0;
    CHECK(eb < kWinogradTol);
    const double ew = layer_error(Conv3x3Pass::kBackwardWeight, l);
    CHECK(ew < kWinogradTol);
    std::printf("winograd error %s %d->%d @ %d: forward %.2e, data gradient %.2e, weight gradient %.2e\n", net, l.C,
                l.K, l.H, ef, eb, ew);
  }
}

}  // namespace

TEST_CASE("winograd conv3x3 error against float64 at every layer of the paper network", "[winograd][slow]") {
  check_layers(kPaperLayers, static_cast<int>(std::size(kPaperLayers)), "base64");
}

TEST_CASE("winograd conv3x3 error against float64 at every layer of the base-16 network", "[winograd][slow]") {
  check_layers(kBase16Layers, static_cast<int>(std::size(kBase16Layers)), "base16");
}

// Not run by default: the direct product's error at the same samples, for the results page.
TEST_CASE("direct conv3x3 error at every layer, for comparison", "[.][winograd][report]") {
  ForceAlgo force(Conv3x3Algo::kDirect);
  for (const auto& [layers, net] :
       {std::pair{std::vector<Layer>(std::begin(kPaperLayers), std::end(kPaperLayers)), "base64"},
        {std::vector<Layer>(std::begin(kBase16Layers), std::end(kBase16Layers)), "base16"}})
    for (const Layer& l : layers)
      std::printf("direct error %s %d->%d @ %d: forward %.2e, data gradient %.2e, weight gradient %.2e\n", net, l.C,
                  l.K, l.H, layer_error(Conv3x3Pass::kForward, l),
                  l.C > 1 ? layer_error(Conv3x3Pass::kBackwardData, l) : 0.0,
                  layer_error(Conv3x3Pass::kBackwardWeight, l));
  SUCCEED();
}

TEST_CASE("winograd conv3x3: the algorithm can be forced, and the forced one runs", "[winograd][rule]") {
  const ConvShape s{1, 32, 20, 20, 24};
  const std::vector<float> x = random_values(int64_t{s.C} * s.H * s.W, 61),
                           w = random_values(int64_t{s.K} * s.C * 9, 62), b = random_values(s.K, 63);
  std::vector<float> yd, yw;
  {
    ForceAlgo force(Conv3x3Algo::kDirect);
    CHECK_FALSE(kernels::cpu::conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 512, 66, 66, 512));
    CHECK_FALSE(kernels::cpu::conv3x3_uses_winograd(Conv3x3Pass::kBackwardData, 1, 512, 66, 66, 512));
    CHECK_FALSE(kernels::cpu::conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 512, 66, 66, 512));
    yd = forward(s, x, w, b);
  }
  {
    ForceAlgo force(Conv3x3Algo::kWinograd);
    CHECK(kernels::cpu::conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 1, 5, 5, 1));
    yw = forward(s, x, w, b);
  }
  {
    // The rule (kernels/cpu/winograd.h): at least 8 reduction channels and 16 output tiles.
    ForceAlgo force(Conv3x3Algo::kAuto);
    using kernels::cpu::conv3x3_uses_winograd;
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 1, 572, 572, 64));  // the first layer
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardData, 1, 1, 572, 572, 64));   // reduces over 64
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 4, 284, 284, 64));
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 8, 284, 284, 64));
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 1024, 30, 30, 1024));
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kForward, 1, 256, 14, 14, 256));  // 3 x 3 tiles
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kForward, 2, 256, 14, 14, 256));        // 2 images: 18
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardData, 1, 256, 14, 14, 256));   // 4 x 4 tiles
    // The weight gradient: at least 8 input channels, 16 output channels and 9 tiles.
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 1, 572, 572, 64));  // the first layer
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 4, 284, 284, 64));
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 8, 284, 284, 64));
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 64, 284, 284, 8));
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 16, 314, 314, 16));
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 256, 14, 14, 256));        // 3 x 3 tiles
    CHECK_FALSE(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 1, 256, 10, 10, 256));  // 2 x 2
    CHECK(conv3x3_uses_winograd(Conv3x3Pass::kBackwardWeight, 3, 256, 10, 10, 256));        // 3 images: 12
  }
  // Both are right, and they are different computations (rounding differs).
  CHECK(rel_error(yw, yd) < kWinogradTol);
  CHECK(yw != yd);
}
