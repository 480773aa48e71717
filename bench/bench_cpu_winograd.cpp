// The CPU's two algorithms for the 3x3 convolutions side by side: the direct blocked product and
// Winograd F(4x4, 3x3) (kernels/cpu/winograd.h), each forced, for the forward pass and the data
// gradient of every 3x3 layer of the paper's network (base 64, tile 572) and of the base-16 network
// at tiles 572 and 316, plus a few input-channel counts where the choice flips. The rule that
// chooses between them (conv3x3_uses_winograd) was derived from these rows
// (bench/results/cpu-winograd-2026-11-29.md). Rows:
//   conv3x3_algo/pass:P/C:C/K:K/H:H/winograd:A     P 0 forward, 1 data gradient; A 0 direct, 1 Winograd
// Run: build/bench/bench_cpu --benchmark_filter=conv3x3_algo
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

void algo_rows(benchmark::internal::Benchmark* b) {
  b->ArgNames({"pass", "C", "K", "H", "winograd"});
  std::set<std::tuple<int, int, int>> seen;
  std::vector<std::tuple<int, int, int>> shapes;
  for (auto [base, tile] : {std::pair{64, 572}, {16, 572}, {16, 316}})
    for (auto s : unet_layers(base, tile))
      if (seen.insert(s).second) shapes.push_back(s);
  for (int c : {2, 3, 4, 8}) shapes.emplace_back(c, 64, 284);  // few input channels (RGB inputs, ...)
  for (int pass : {0, 1})
    for (auto [C, K, H] : shapes)
      for (int a : {0, 1}) b->Args({pass, C, K, H, a});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void conv3x3_algo(benchmark::State& st) {
  const int pass = st.range(0), C = st.range(1), K = st.range(2), H = st.range(3), W = H;
  const Conv3x3Algo saved = unet::kernels::cpu::conv3x3_algo();
  unet::kernels::cpu::set_conv3x3_algo(st.range(4) ? Conv3x3Algo::kWinograd : Conv3x3Algo::kDirect);
  const auto& T = unet::kernels_for(unet::Device::CPU);
  Tensor w = random_tensor({K, C, 3, 3}, 2), b = random_tensor({K}, 3);
  Tensor in = pass == 0 ? random_tensor({1, C, H, W}, 1) : random_tensor({1, K, H - 2, W - 2}, 1);
  Tensor out = pass == 0 ? Tensor::empty({1, K, H - 2, W - 2}) : Tensor::empty({1, C, H, W});
  for (auto _ : st) {
    if (pass == 0)
      T.conv3x3_forward(nullptr, in.f32(), w.f32(), b.f32(), out.f32(), 1, C, H, W, K);
    else
      T.conv3x3_backward_data(nullptr, in.f32(), w.f32(), out.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  unet::kernels::cpu::set_conv3x3_algo(saved);
  // The direct product's flops, for both: Winograd's rate is then its speed-up times the direct's.
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * K * C * 9 * (H - 2.0) * (W - 2.0) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(conv3x3_algo)->Apply(algo_rows);

}  // namespace
