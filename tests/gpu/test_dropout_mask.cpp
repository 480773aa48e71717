// The dropout mask is a pure function of (seed, offset, i): the GPU must draw the CPU's mask bit for bit,
// for any offset (also one that does not start a Philox block) and any length.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "engine/backend.h"
#include "kernels/philox.h"

using namespace unet;

TEST_CASE("the GPU's dropout mask equals the CPU's bit for bit", "[gpu][dropout][sanitize]") {
  struct Case {
    int64_t n;
    float p;
    uint64_t seed, offset;
  };
  const std::vector<Case> cases = {{1, 0.5f, 1, 0},
                                   {7, 0.5f, 2, 3},
                                   {1001, 0.5f, 3, 12345},
                                   {802816, 0.5f, 4, 1},
                                   {4096, 0.1f, 5, (1ull << 34) - 6},  // Philox block index crosses 2^32
                                   {333, 0.0f, 6, 2},
                                   {333, 0.9f, 7, 5}};
  for (const Case& c : cases) {
    INFO("n " << c.n << " p " << c.p << " seed " << c.seed << " offset " << c.offset);
    std::vector<float> ones(static_cast<size_t>(c.n), 1.0f);
    Tensor x = Tensor::from_vector({c.n}, ones);
    Tensor y_cpu = Tensor::empty({c.n});
    kernels_for(Device::CPU).dropout_forward(nullptr, x.f32(), y_cpu.f32(), c.n, c.p, c.seed, c.offset, nullptr);
    Tensor xd = x.to(Device::CUDA), yd = Tensor::empty({c.n}, DType::F32, Device::CUDA);
    kernels_for(Device::CUDA)
        .dropout_forward(stream_for(Device::CUDA), xd.f32(), yd.f32(), c.n, c.p, c.seed, c.offset, nullptr);
    Tensor y_gpu = yd.to(Device::CPU);

    int64_t kept = 0, mismatched = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      const bool keep_cpu = y_cpu.f32()[i] != 0.0f, keep_gpu = y_gpu.f32()[i] != 0.0f;
      const bool keep_ref = philox::uniform(c.seed, c.offset, static_cast<uint64_t>(i)) >= c.p;
      mismatched += (keep_cpu != keep_gpu) || (keep_ref != keep_gpu);
      kept += keep_gpu;
    }
    REQUIRE(mismatched == 0);
    // Same values too (same scale, same single multiply): the outputs are identical bytes.
    REQUIRE(std::memcmp(y_cpu.raw(), y_gpu.raw(), static_cast<size_t>(c.n) * sizeof(float)) == 0);
    if (c.p == 0.0f) REQUIRE(kept == c.n);

    // Backward regenerates the same mask.
    Tensor dx = Tensor::empty({c.n}, DType::F32, Device::CUDA);
    kernels_for(Device::CUDA)
        .dropout_backward(stream_for(Device::CUDA), xd.f32(), dx.f32(), c.n, c.p, c.seed, c.offset, nullptr);
    Tensor dx_h = dx.to(Device::CPU);
    REQUIRE(std::memcmp(dx_h.raw(), y_gpu.raw(), static_cast<size_t>(c.n) * sizeof(float)) == 0);
  }
}
