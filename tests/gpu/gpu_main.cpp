// The GPU tests' entry point: without a CUDA device (or in a build without CUDA) it says so
// and exits 77, which CTest reports as "Skipped".
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "engine/backend.h"

int main(int argc, char** argv) {
  if (!unet::cuda_available()) {
    std::printf("SKIPPED: no CUDA device present (or built without CUDA): the GPU cross-checks did not run\n");
    return 77;
  }
  unet::DeviceInfo info = unet::cuda_device_info();
  std::printf("GPU: %s, %d SMs, compute capability %d.%d\n", info.name.c_str(), info.sm_count, info.cc_major,
              info.cc_minor);
  return Catch::Session().run(argc, argv);
}
