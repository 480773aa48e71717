// The one way CUDA errors are checked in this project, on both sides of the kernels/engine line.
//
//   UNET_CUDA_CHECK(call)     evaluates a CUDA runtime call; on failure it throws unet::CudaError naming
//                             the call, file:line and cudaGetErrorString's text.
//   UNET_CUDA_CHECK_LAUNCH()  after every kernel launch: catches bad launch configurations at once
//                             (asynchronous faults surface at the next checked call, as always in CUDA).
//
// unet::CudaError derives from std::runtime_error, as unet::Error does: whoever includes this header,
// in whatever order, gets the same exception, and catching std::runtime_error catches both.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace unet {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace cuda_check {

[[noreturn]] inline void fail(cudaError_t err, const char* what, const char* file, int line) {
  throw CudaError(std::string("CUDA error: ") + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ") in " +
                  what + " at " + file + ":" + std::to_string(line));
}

}  // namespace cuda_check
}  // namespace unet

#define UNET_CUDA_CHECK(call)                                                                               \
  do {                                                                                                      \
    const cudaError_t unet_cuda_err_ = (call);                                                              \
    if (unet_cuda_err_ != cudaSuccess) ::unet::cuda_check::fail(unet_cuda_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define UNET_CUDA_CHECK_LAUNCH() UNET_CUDA_CHECK(cudaGetLastError())
