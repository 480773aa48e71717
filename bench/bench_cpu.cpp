// CPU benchmarks: every op at real U-Net shapes, with GFLOP/s or GB/s; the whole network's
// forward pass and training step are in bench_cpu_network.cpp. Rows are named as the kernels (one
// op = one name). Run: build/bench/bench_cpu [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <vector>

#include "engine/backend.h"
#include "engine/rng.h"

namespace {

using unet::Device;
using unet::DType;
using unet::Tensor;

Tensor random_tensor(unet::Shape s, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(unet::shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.0f * unet::philox::uniform(seed, 0, i) - 1.0f;
  return Tensor::from_vector(std::move(s), v);
}

const unet::kernels::KernelTable& T() { return unet::kernels_for(Device::CPU); }

// The 3x3 convolutions of the paper's network at its 572 tile, (C, K, H) of each layer's input,
// contracting path then expanding path, and three smaller shapes of the base-16 network.
void conv3x3_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "K", "H"});
  const int shapes[][3] = {{1, 64, 572},    {64, 64, 570},    {64, 128, 284},   {128, 128, 282},  {128, 256, 140},
                           {256, 256, 138}, {256, 512, 68},   {512, 512, 66},   {512, 1024, 32},  {1024, 1024, 30},
                           {1024, 512, 56}, {512, 512, 54},   {512, 256, 104},  {256, 256, 102},  {256, 128, 200},
                           {128, 128, 198}, {128, 64, 392},   {64, 64, 390},    {64, 64, 284},    {1, 16, 188},
                           {16, 16, 186},   {256, 256, 30}};
  for (auto& s : shapes) b->Args({s[0], s[1], s[2]});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// Each convolution direction does 2 * K * C * taps * (output pixels) flops.
void set_flops(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void conv3x3_forward(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), w = random_tensor({K, C, 3, 3}, 2), b = random_tensor({K}, 3);
  Tensor y = Tensor::empty({1, K, H - 2, W - 2});
  for (auto _ : st) {
    T().conv3x3_forward(nullptr, unet::kernels::Precision::FP32, x.f32(), w.f32(), b.f32(), y.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * K * C * 9 * (H - 2.0) * (W - 2.0));
}
BENCHMARK(conv3x3_forward)->Apply(conv3x3_shapes);

void conv3x3_backward_data(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor dy = random_tensor({1, K, H - 2, W - 2}, 1), w = random_tensor({K, C, 3, 3}, 2), dx = Tensor::empty({1, C, H, W});
  for (auto _ : st) {
    T().conv3x3_backward_data(nullptr, unet::kernels::Precision::FP32, dy.f32(), w.f32(), dx.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * K * C * 9 * (H - 2.0) * (W - 2.0));
}
BENCHMARK(conv3x3_backward_data)->Apply(conv3x3_shapes);

void conv3x3_backward_weight(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), dy = random_tensor({1, K, H - 2, W - 2}, 2);
  Tensor dw = Tensor::empty({K, C, 3, 3}), db = Tensor::empty({K});
  for (auto _ : st) {
    T().conv3x3_backward_weight(nullptr, unet::kernels::Precision::FP32, x.f32(), dy.f32(), dw.f32(), db.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * K * C * 9 * (H - 2.0) * (W - 2.0));
}
BENCHMARK(conv3x3_backward_weight)->Apply(conv3x3_shapes);

// The up-convolutions of the paper's network: (C, K, H) of the input, 2 * C * K * 4 * H * W flops.
void upconv2x2_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "K", "H"})->Args({1024, 512, 28})->Args({512, 256, 52})->Args({256, 128, 100})->Args({128, 64, 196});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void upconv2x2_forward(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), w = random_tensor({C, K, 2, 2}, 2), b = random_tensor({K}, 3);
  Tensor y = Tensor::empty({1, K, 2 * H, 2 * W});
  for (auto _ : st) {
    T().upconv2x2_forward(nullptr, unet::kernels::Precision::FP32, x.f32(), w.f32(), b.f32(), y.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * 4.0 * H * W);
}
BENCHMARK(upconv2x2_forward)->Apply(upconv2x2_shapes);

void upconv2x2_backward_data(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor dy = random_tensor({1, K, 2 * H, 2 * W}, 1), w = random_tensor({C, K, 2, 2}, 2), dx = Tensor::empty({1, C, H, W});
  for (auto _ : st) {
    T().upconv2x2_backward_data(nullptr, unet::kernels::Precision::FP32, dy.f32(), w.f32(), dx.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * 4.0 * H * W);
}
BENCHMARK(upconv2x2_backward_data)->Apply(upconv2x2_shapes);

void upconv2x2_backward_weight(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), dy = random_tensor({1, K, 2 * H, 2 * W}, 2);
  Tensor dw = Tensor::empty({C, K, 2, 2}), db = Tensor::empty({K});
  for (auto _ : st) {
    T().upconv2x2_backward_weight(nullptr, unet::kernels::Precision::FP32, x.f32(), dy.f32(), dw.f32(), db.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * 4.0 * H * W);
}
BENCHMARK(upconv2x2_backward_weight)->Apply(upconv2x2_shapes);

// conv1x1: the head, 64 -> 2 classes at 388x388; its backward passes.
void conv1x1_forward(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), w = random_tensor({K, C, 1, 1}, 2), b = random_tensor({K}, 3);
  Tensor y = Tensor::empty({1, K, H, W});
  for (auto _ : st) {
    T().conv1x1_forward(nullptr, unet::kernels::Precision::FP32, x.f32(), w.f32(), b.f32(), y.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * H * W);
}
BENCHMARK(conv1x1_forward)->ArgNames({"C", "K", "H"})->Args({64, 2, 388})->Unit(benchmark::kMillisecond)->UseRealTime();

void conv1x1_backward_data(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor dy = random_tensor({1, K, H, W}, 1), w = random_tensor({K, C, 1, 1}, 2), dx = Tensor::empty({1, C, H, W});
  for (auto _ : st) {
    T().conv1x1_backward_data(nullptr, unet::kernels::Precision::FP32, dy.f32(), w.f32(), dx.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * H * W);
}
BENCHMARK(conv1x1_backward_data)->ArgNames({"C", "K", "H"})->Args({64, 2, 388})->Unit(benchmark::kMillisecond)->UseRealTime();

void conv1x1_backward_weight(benchmark::State& st) {
  int C = st.range(0), K = st.range(1), H = st.range(2), W = H;
  Tensor x = random_tensor({1, C, H, W}, 1), dy = random_tensor({1, K, H, W}, 2);
  Tensor dw = Tensor::empty({K, C, 1, 1}), db = Tensor::empty({K});
  for (auto _ : st) {
    T().conv1x1_backward_weight(nullptr, unet::kernels::Precision::FP32, x.f32(), dy.f32(), dw.f32(), db.f32(), 1, C, H, W, K);
    benchmark::ClobberMemory();
  }
  set_flops(st, 2.0 * C * K * H * W);
}
BENCHMARK(conv1x1_backward_weight)->ArgNames({"C", "K", "H"})->Args({64, 2, 388})->Unit(benchmark::kMillisecond)->UseRealTime();

// Memory-bound ops: bytes read + written per iteration.
void maxpool2x2_forward(benchmark::State& st) {
  int C = 64, H = 568, W = 568;
  Tensor x = random_tensor({1, C, H, W}, 1), y = Tensor::empty({1, C, H / 2, W / 2});
  for (auto _ : st) {
    T().maxpool2x2_forward(nullptr, x.f32(), y.f32(), 1, C, H, W);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((x.nbytes() + y.nbytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(maxpool2x2_forward)->Unit(benchmark::kMillisecond)->UseRealTime();

void relu_forward(benchmark::State& st) {
  Tensor x = random_tensor({1, 64, 570, 570}, 1), y = Tensor::empty(x.shape());
  for (auto _ : st) {
    T().relu_forward(nullptr, x.f32(), y.f32(), x.numel());
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * x.nbytes() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(relu_forward)->Unit(benchmark::kMillisecond)->UseRealTime();

void crop_concat_forward(benchmark::State& st) {
  Tensor s = random_tensor({1, 64, 568, 568}, 1), u = random_tensor({1, 64, 392, 392}, 2);
  Tensor y = Tensor::empty({1, 128, 392, 392});
  for (auto _ : st) {
    T().crop_concat_forward(nullptr, s.f32(), u.f32(), y.f32(), 1, 64, 568, 568, 64, 392, 392);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * y.nbytes() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(crop_concat_forward)->Unit(benchmark::kMillisecond)->UseRealTime();

void softmax_xent(benchmark::State& st) {
  int K = 2, H = 388, W = 388;
  Tensor a = random_tensor({1, K, H, W}, 1), wm = random_tensor({1, H, W}, 2), g = Tensor::empty(a.shape());
  std::vector<int32_t> l(static_cast<size_t>(H) * W);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(i % 2);
  Tensor lab = Tensor::from_vector_i32({1, H, W}, l), loss = Tensor::empty({1});
  for (auto _ : st) {
    T().softmax_xent(nullptr, a.f32(), lab.i32(), wm.f32(), loss.f32(), g.f32(), 1, K, H, W);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((2.0 * a.nbytes() + lab.nbytes() + wm.nbytes()) * 1e-9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(softmax_xent)->Unit(benchmark::kMillisecond)->UseRealTime();

void sgd_momentum(benchmark::State& st) {
  int64_t n = 31'000'000;  // the paper's U-Net has ~31M parameters
  Tensor w = random_tensor({n}, 1), g = random_tensor({n}, 2), v = random_tensor({n}, 3);
  for (auto _ : st) {
    T().sgd_momentum(nullptr, w.f32(), g.f32(), v.f32(), n, 1e-6f, 0.99f, 0.0f);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(5.0 * 4 * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(sgd_momentum)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

