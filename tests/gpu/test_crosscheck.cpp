// The GPU against the CPU reference: every op-table row but the bench-only ones (tiny, small and large:
// odd shapes, the paper's, batch 4, split-K across images, multi-pass loss, null biases) runs on both
// backends from the same seed; every output must agree within the tolerance of the row's precision with
// its guard intact, and a second GPU run must reproduce the bits of every op without atomics. One report
// line per output (tests/row_check.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "tests/op_table.h"
#include "tests/row_check.h"

using namespace unet;

TEST_CASE("every op-table row on the GPU matches the CPU", "[gpu][crosscheck]") {
  const std::vector<test::OpCase> rows = test::op_cases({test::Size::tiny, test::Size::small, test::Size::large});
  const test::Backend cpu = test::cpu_backend(), gpu = test::cuda_backend();
  for (size_t r = 0; r < rows.size(); ++r) {
    DYNAMIC_SECTION(rows[r].op << " " << rows[r].title()) {
      const test::RowCheck check = test::check_row(rows[r], cpu, gpu, 1000 + r, true);
      INFO(check.failure);
      REQUIRE(check.ok);
    }
  }
}

TEST_CASE("softmax_xent on the GPU turns a label outside [0,K) into a NaN loss", "[gpu][softmax_xent]") {
  const int N = 1, K = 3, H = 4, W = 5;
  const int64_t P = N * H * W;
  Tensor logits = Tensor::from_vector({N, K, H, W}, test::random_values(N * K * H * W, 7)).to(Device::CUDA);
  for (int32_t bad : {K, -1}) {
    std::vector<int32_t> lab(static_cast<size_t>(P), 1);
    lab[7] = bad;
    Tensor labels = Tensor::from_vector_i32({N, H, W}, lab).to(Device::CUDA);
    Tensor loss = Tensor::zeros({1}, DType::F32, Device::CUDA);
    Tensor dlogits = Tensor::zeros({N, K, H, W}, DType::F32, Device::CUDA);
    kernels_for(Device::CUDA)
        .softmax_xent(stream_for(Device::CUDA), logits.f32(), labels.i32(), nullptr, loss.f32(), dlogits.f32(), N, K, H,
                      W);
    INFO("bad label " << bad);
    REQUIRE(std::isnan(loss.to_vector()[0]));
  }
}

namespace {

// A miniature U-Net step (every op with parameters, a skip connection and dropout) on one device;
// returns the loss of each of `steps` SGD steps.
std::vector<float> train_tiny(Device d, int steps) {
  Rng init(42);
  auto param = [&](Shape s, float scale) {
    std::vector<float> v(static_cast<size_t>(shape_numel(s)));
    for (float& e : v) e = scale * (2.0f * init.uniform() - 1.0f);
    return Var::parameter(Tensor::from_vector(s, v).to(d), "p");
  };
  Var w1 = param({8, 2, 3, 3}, 0.3f), b1 = param({8}, 0.1f);
  Var w2 = param({16, 8, 3, 3}, 0.15f), b2 = param({16}, 0.1f);
  Var wu = param({16, 8, 2, 2}, 0.2f), bu = param({8}, 0.1f);
  Var w3 = param({8, 16, 3, 3}, 0.1f), b3 = param({8}, 0.1f);
  Var wo = param({2, 8, 1, 1}, 0.3f), bo = param({2}, 0.1f);
  SGD opt({w1, b1, w2, b2, wu, bu, w3, b3, wo, bo}, 0.05f, 0.9f, 1e-4f);
  Tensor x = Tensor::from_vector({1, 2, 24, 24}, test::random_values(2 * 24 * 24, 3)).to(d);
  std::vector<int32_t> lab(18 * 18);
  for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<int32_t>((i / 18 / 4 + i % 18 / 4) % 2);
  Tensor labels = Tensor::from_vector_i32({1, 18, 18}, lab).to(d);
  Rng drop(7);
  std::vector<float> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Var h = ops::relu(ops::conv3x3(Var(x), w1, b1));  // 8 x 22x22
    Var h2 = ops::relu(ops::conv3x3(h, w2, b2));      // 16 x 20x20
    Var q = ops::maxpool2x2(h2);                      // 16 x 10x10
    q = ops::dropout(q, 0.25f, drop);
    Var u = ops::upconv2x2(q, wu, bu);            // 8 x 20x20
    Var c = ops::crop_concat(h, u);               // 16 x 20x20 (the skip: h cropped 22 -> 20)
    Var h3 = ops::relu(ops::conv3x3(c, w3, b3));  // 8 x 18x18
    Var logits = ops::conv1x1(h3, wo, bo);        // 2 x 18x18
    Var loss = ops::softmax_xent(logits, labels);
    losses.push_back(loss.value().to_vector()[0]);
    backward(loss);
    opt.step();
  }
  synchronize(d);
  return losses;
}

}  // namespace

static void same_training_on_both(int steps) {
  const std::vector<float> cpu = train_tiny(Device::CPU, steps);
  const std::vector<float> gpu = train_tiny(Device::CUDA, steps);
  for (int s = 0; s < steps; ++s) {
    std::printf("step %d  loss cpu %.7f  gpu %.7f\n", s, cpu[s], gpu[s]);
    INFO("step " << s);
    REQUIRE(std::isfinite(gpu[s]));
    REQUIRE(std::abs(gpu[s] - cpu[s]) <= 1e-4f * std::max(1.0f, std::abs(cpu[s])));
  }
}

TEST_CASE("a small network trains identically on the GPU and the CPU", "[gpu][train]") { same_training_on_both(5); }

// The compute-sanitizer run's training: every op with parameters, forward and backward, the optimiser.
TEST_CASE("three training steps of a small network match the CPU", "[gpu][train][sanitize]") {
  same_training_on_both(3);
}

TEST_CASE("a training step makes no cudaMalloc after its first iteration", "[gpu][allocator][train]") {
  REQUIRE_FALSE(cuda_allocator_stats().exact);  // caching is what this checks: run without UNET_CUDA_ALLOCATOR=exact
  train_tiny(Device::CUDA, 2);                  // warm-up: fills the free lists
  const AllocatorStats before = cuda_allocator_stats();
  train_tiny(Device::CUDA, 3);
  const AllocatorStats after = cuda_allocator_stats();
  std::printf("allocator: %zu cudaMalloc calls, %zu bytes reserved, %zu in use\n", after.device_mallocs,
              after.bytes_reserved, after.bytes_in_use);
  REQUIRE(after.device_mallocs == before.device_mallocs);
  REQUIRE(after.bytes_in_use == before.bytes_in_use);
}
