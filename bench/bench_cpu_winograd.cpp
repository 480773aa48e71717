// The CPU's two algorithms for the 3x3 convolutions side by side: the direct blocked product and
// Winograd F(4x4, 3x3) (kernels/cpu/winograd.h), each forced, for the forward pass, the data
// gradient and the weight gradient of every 3x3 layer of the paper's network (base 64, tile 572)
// and of the base-16 network at tiles 572 and 316, plus a few channel and tile counts where the
// choice flips. The rule that
// chooses between them (conv3x3_uses_winograd) was derived from these rows
// (bench/results/cpu-winograd-2026-11-29.md). Rows, A 0 the direct product, 1 Winograd:
//   conv3x3_forward_algo/C:C/K:K/H:H/winograd:A   conv3x3_backward_data_algo/...   conv3x3_backward_weight_algo/...
// Run: build/bench/bench_cpu --benchmark_filter=_algo/
#include <benchmark/benchmark.h>

#include <set>
#include <tuple>
#include <vector>

#include "engine/backend.h"
#include "engine/rng.h"
#include "kernels/cpu/winograd.h"

namespace {

using unet::Tensor;
using unet::kernels::cpu::Conv3x3Algo;

Tensor random_tensor(unet::Shape s, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(unet::shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.0f * unet::philox::uniform(seed, 0, i) - 1.0f;
  return Tensor::from_vector(std::move(s), v);
}

// (C, K, H) of the input of every 3x3 layer of a U-Net of depth 4 with base channels `base` on an
// input tile of `tile` pixels (1 input channel).
std::vector<std::tuple<int, int, int>> unet_layers(int base, int tile) {
  std::vector<std::tuple<int, int, int>> v;
  int s = tile, c = 1;
  for (int l = 0; l <= 4; ++l) {
    const int out = base << l;
    v.emplace_back(c, out, s);
    v.emplace_back(out, out, s - 2);
    c = out;
    s = l < 4 ? (s - 4) / 2 : s - 4;
  }
  for (int l = 3; l >= 0; --l) {
    const int out = base << l;
    s *= 2;
    v.emplace_back(2 * out, out, s);
    v.emplace_back(out, out, s - 2);
    s -= 4;
  }
  return v;
}

// Rows for the 3x3 layers of some networks (each shape once), direct then Winograd, as (C, K, H, A).
// Families stay under google benchmark's 100 rows.
void add_rows(benchmark::internal::Benchmark* b, std::vector<std::tuple<int, int, int>> shapes) {
  b->ArgNames({"C", "K", "H", "winograd"});
  std::set<std::tuple<int, int, int>> seen;
  for (auto s : shapes)
    if (seen.insert(s).second)
      for (int a : {0, 1}) b->Args({std::get<0>(s), std::get<1>(s), std::get<2>(s), a});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void paper_rows(benchmark::internal::Benchmark* b) { add_rows(b, unet_layers(64, 572)); }
void base16_rows(benchmark::internal::Benchmark* b) {
  auto v = unet_layers(16, 572), w = unet_layers(16, 316);
  v.insert(v.end(), w.begin(), w.end());
  for (int c : {2, 3, 4, 8}) v.emplace_back(c, 64, 284);  // few input channels (RGB inputs, ...)
  for (int k : {2, 4, 8}) v.emplace_back(64, k, 284);     // few output channels
  for (int h : {6, 10}) v.emplace_back(256, 256, h);      // 1 and 4 output tiles
  add_rows(b, v);
}

// pass 0: conv3x3_forward, 1: conv3x3_backward_data, 2: conv3x3_backward_weight.
void run(benchmark::State& st, int pass) {
  const int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  const Conv3x3Algo saved = unet::kernels::cpu::conv3x3_algo();
  unet::kernels::cpu::set_conv3x3_algo(st.range(3) ? Conv3x3Algo::kWinograd : Conv3x3Algo::kDirect);
  const auto& T = unet::kernels_for(unet::Device::CPU);
  Tensor w = random_tensor({K, C, 3, 3}, 2), b = random_tensor({K}, 3);
  Tensor x = random_tensor({1, C, H, W}, 1), dy = random_tensor({1, K, H - 2, W - 2}, 4);
  Tensor y = Tensor::empty({1, K, H - 2, W - 2}), dx = Tensor::empty({1, C, H, W});
  Tensor dw = Tensor::empty({K, C, 3, 3}), db = Tensor::empty({K});
  for (auto _ : st) {
    if (pass == 0)
      T.conv3x3_forward(nullptr, unet::kernels::Precision::FP32, x.f32(), w.f32(), b.f32(), y.f32(), 1, C, H, W, K);
    else if (pass == 1)
      T.conv3x3_backward_data(nullptr, unet::kernels::Precision::FP32, dy.f32(), w.f32(), dx.f32(), 1, C, H, W, K);
    else
      T.conv3x3_backward_weight(nullptr, unet::kernels::Precision::FP32, x.f32(), dy.f32(), dw.f32(), db.f32(), 1, C, H,
                                W, K);
    benchmark::ClobberMemory();
  }
  unet::kernels::cpu::set_conv3x3_algo(saved);
  // The direct product's flops, for both: Winograd's rate is then its speed-up times the direct's.
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * K * C * 9 * (H - 2.0) * (W - 2.0) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void conv3x3_forward_algo(benchmark::State& st) { run(st, 0); }
void conv3x3_backward_data_algo(benchmark::State& st) { run(st, 1); }
BENCHMARK(conv3x3_forward_algo)->Apply(paper_rows);
BENCHMARK(conv3x3_forward_algo)->Apply(base16_rows);
BENCHMARK(conv3x3_backward_data_algo)->Apply(paper_rows);
BENCHMARK(conv3x3_backward_data_algo)->Apply(base16_rows);
void conv3x3_backward_weight_algo(benchmark::State& st) { run(st, 2); }
BENCHMARK(conv3x3_backward_weight_algo)->Apply(paper_rows);
BENCHMARK(conv3x3_backward_weight_algo)->Apply(base16_rows);

}  // namespace
