// The CUDA caching allocator and the copies between host and device.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "engine/backend.h"
#include "tests/op_table.h"

using namespace unet;

TEST_CASE("after a warm-up, repeated allocations of the same sizes make no cudaMalloc", "[gpu][allocator][sanitize]") {
  // Small, 512-byte-class, just over 1 MiB, large (a 64x570x570 activation) and empty.
  const std::vector<int64_t> sizes = {1, 127, 1000, 4097, (1 << 18) + 1, 5000000, 64LL * 570 * 570, 0};
  auto round = [&] {
    std::vector<Tensor> live;
    for (int64_t n : sizes) {
      live.push_back(Tensor::empty({n}, DType::F32, Device::CUDA));
      live.back().fill_(1.0f);
    }
    synchronize(Device::CUDA);
  };  // every tensor freed here
  round();
  const AllocatorStats warm = cuda_allocator_stats();
  for (int i = 0; i < 20; ++i) round();
  const AllocatorStats after = cuda_allocator_stats();
  if (after.exact) {
    // UNET_CUDA_ALLOCATOR=exact (the compute-sanitizer runs): every tensor is its own cudaMalloc, returned
    // at once, so nothing stays reserved.
    REQUIRE(after.device_mallocs == warm.device_mallocs + 20 * sizes.size());
    REQUIRE(after.bytes_reserved == warm.bytes_reserved);
    REQUIRE(after.bytes_in_use == warm.bytes_in_use);
    return;
  }
  REQUIRE(after.device_mallocs == warm.device_mallocs);
  REQUIRE(after.bytes_reserved == warm.bytes_reserved);
  REQUIRE(after.bytes_in_use == warm.bytes_in_use);
  REQUIRE(after.peak_bytes_in_use >= after.bytes_in_use + 4 * static_cast<size_t>(64LL * 570 * 570));

  // Live blocks are distinct, and a freed block is handed out again for its own size class.
  Tensor a = Tensor::empty({1000}, DType::F32, Device::CUDA), b = Tensor::empty({1000}, DType::F32, Device::CUDA);
  REQUIRE(a.raw() != b.raw());
  REQUIRE(cuda_allocator_stats().bytes_in_use >= 2 * 4000);
  void* pa = a.raw();
  a = Tensor();
  Tensor c = Tensor::empty({1000}, DType::F32, Device::CUDA);
  REQUIRE(c.raw() == pa);
}

TEST_CASE("copies between host and device round-trip exactly", "[gpu][copy][sanitize]") {
  for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{1} << 22}) {
    std::vector<float> v = test::random_values(n, 11 + n, -1e6f, 1e6f);
    v[0] = -0.0f;
    Tensor host = Tensor::from_vector({n}, v);
    Tensor dev = host.to(Device::CUDA);
    Tensor dev2 = dev.clone();  // device to device
    Tensor back = dev2.to(Device::CPU);
    INFO("n = " << n);
    REQUIRE(std::memcmp(back.raw(), v.data(), v.size() * sizeof(float)) == 0);
    REQUIRE(dev.device() == Device::CUDA);

    Tensor dst = Tensor::empty({n}, DType::F32, Device::CUDA);
    dst.copy_from(host);
    REQUIRE(dst.to_vector() == v);
  }
  std::vector<int32_t> labels = {0, 1, -5, 1 << 30};
  Tensor li = Tensor::from_vector_i32({4}, labels).to(Device::CUDA).to(Device::CPU);
  REQUIRE(std::memcmp(li.raw(), labels.data(), labels.size() * sizeof(int32_t)) == 0);
}
