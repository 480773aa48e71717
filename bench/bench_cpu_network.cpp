// Whole-network CPU benchmarks: one forward pass (inference, no tape) and one training step
// (forward with dropout, weighted loss, backward, SGD) of the U-Net at its usual tiles, with the
// convolutions' flop count as GFLOP/s.
//   unet_forward/base:64/tile:572      the paper's network (300.9 GFLOP)
//   unet_forward/base:16/tile:572 and /tile:316, unet_train_step/... likewise
//   unet_forward_bf16/..., unet_train_step_bf16/...   the same with the convolutions in BF16 (on a CPU
//                                     without AVX-512 BF16: the reference, the FP32 products of rounded operands)
#include <benchmark/benchmark.h>

#include <vector>

#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "unet/model.h"

namespace {

using namespace unet;

// Convolution flops of one forward pass (train = false) or of forward + backward (train = true:
// data and weight gradients of every convolution, except the data gradient of the input).
double network_flops(const UNetConfig& cfg, int tile, bool train) {
  double fwd = 0, bwd = 0;
  auto conv = [&](double macs, bool first) {
    fwd += 2 * macs;
    bwd += 2 * macs * (first ? 1 : 2);
  };
  int s = tile, c = cfg.in_channels;
  std::vector<int> skip_ch;
  for (int l = 0; l < cfg.depth; ++l) {
    const int out = cfg.base << l;
    conv(9.0 * c * out * (s - 2) * (s - 2), l == 0);
    conv(9.0 * out * out * (s - 4) * (s - 4), false);
    s = (s - 4) / 2;
    c = out;
  }
  const int bottom = cfg.base << cfg.depth;
  conv(9.0 * c * bottom * (s - 2) * (s - 2), false);
  conv(9.0 * bottom * bottom * (s - 4) * (s - 4), false);
  s -= 4;
  c = bottom;
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int out = cfg.base << l;
    conv(4.0 * c * out * s * s, false);  // up-convolution
    s *= 2;
    conv(9.0 * 2 * out * out * (s - 2) * (s - 2), false);
    conv(9.0 * out * out * (s - 4) * (s - 4), false);
    s -= 4;
    c = out;
  }
  conv(1.0 * c * cfg.classes * s * s, false);
  return train ? fwd + bwd : fwd;
}

Tensor random_input(int channels, int tile) {
  std::vector<float> v(static_cast<size_t>(channels) * tile * tile);
  for (size_t i = 0; i < v.size(); ++i) v[i] = philox::uniform(7, 0, i);
  return Tensor::from_vector({1, channels, tile, tile}, v);
}

// The paper's network and the base-16 one at their tiles, timed over at least 2 s each.
void network_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"base", "tile"})->Args({64, 572})->Args({16, 572})->Args({16, 316});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
}

void unet_forward_at(benchmark::State& st, kernels::Precision precision) {
  ops::ConvPrecision scope(precision);
  UNetConfig cfg;
  cfg.base = static_cast<int>(st.range(0));
  const int tile = static_cast<int>(st.range(1));
  Rng rng(1);
  UNet net(cfg, Device::CPU, rng);
  Tensor x = random_input(cfg.in_channels, tile);
  for (auto _ : st) {
    NoGrad no_grad;
    Var y = net.forward(Var(x), false);
    benchmark::DoNotOptimize(y.value().f32());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(network_flops(cfg, tile, false) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void unet_forward(benchmark::State& st) { unet_forward_at(st, kernels::Precision::FP32); }
void unet_forward_bf16(benchmark::State& st) { unet_forward_at(st, kernels::Precision::BF16); }
BENCHMARK(unet_forward)->Apply(network_shapes);
BENCHMARK(unet_forward_bf16)->Apply(network_shapes);

void unet_train_step_at(benchmark::State& st, kernels::Precision precision) {
  ops::ConvPrecision scope(precision);
  UNetConfig cfg;
  cfg.base = static_cast<int>(st.range(0));
  const int tile = static_cast<int>(st.range(1)), out = TileSizes::output_for_input(tile, cfg.depth);
  Rng rng(1);
  UNet net(cfg, Device::CPU, rng);
  SGD opt(net.parameters(), 1e-4f, 0.99f);
  Tensor x = random_input(cfg.in_channels, tile);
  std::vector<int32_t> lab(static_cast<size_t>(out) * out);
  std::vector<float> wm(lab.size());
  for (size_t i = 0; i < lab.size(); ++i) {
    lab[i] = static_cast<int32_t>(philox::word(3, 0, i) % 2);
    wm[i] = 1.0f + 9.0f * philox::uniform(4, 0, i);
  }
  Tensor l = Tensor::from_vector_i32({1, out, out}, lab), w = Tensor::from_vector({1, out, out}, wm);
  for (auto _ : st) {
    opt.zero_grad();
    Var loss = ops::softmax_xent(net.forward(Var(x), true, &rng), l, w);
    backward(loss);
    opt.step();
    benchmark::DoNotOptimize(loss.value().f32());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(network_flops(cfg, tile, true) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void unet_train_step(benchmark::State& st) { unet_train_step_at(st, kernels::Precision::FP32); }
void unet_train_step_bf16(benchmark::State& st) { unet_train_step_at(st, kernels::Precision::BF16); }
BENCHMARK(unet_train_step)->Apply(network_shapes);
BENCHMARK(unet_train_step_bf16)->Apply(network_shapes);

}  // namespace

BENCHMARK_MAIN();
