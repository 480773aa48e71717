// The GPU tests' entry point: without a CUDA device (or in a build without CUDA) it says so
// and exits 77, which CTest reports as "Skipped". Listing the tests (-l, --list-test-names-only, -t) works
// without a device.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "engine/backend.h"
#include "kernels/cpu/bf16_gemm.h"

int main(int argc, char** argv) {
  // Listing the tests needs no device (tools/gpu_check.sh --dry-run lists what each phase would run).
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-l" || a == "--list-tests" || a == "--list-test-names-only" || a == "-t" || a == "--list-tags")
      return Catch::Session().run(argc, argv);
  }
  if (!unet::cuda_available()) {
    std::printf("SKIPPED: no CUDA device present (or built without CUDA): the GPU cross-checks did not run\n");
    return 77;
  }
  unet::DeviceInfo info = unet::cuda_device_info();
  std::printf("GPU: %s, %d SMs, compute capability %d.%d\n", info.name.c_str(), info.sm_count, info.cc_major,
              info.cc_minor);
  // The CPU side of the BF16 rows is the reference (rounded operands, FP32 products), also on a CPU whose
  // AVX-512 BF16 products would sum in another order.
  unet::kernels::cpu::detail::set_bf16_dot_products(false);
  return Catch::Session().run(argc, argv);
}
