// The one way CUDA errors are checked in this project, on both sides of the kernels/engine line.
//
//   UNET_CUDA_CHECK(call)     evaluates a CUDA runtime call; on failure it reports the call, file:line and
//                             cudaGetErrorString, then hands the message to UNET_CUDA_ON_ERROR.
//   UNET_CUDA_CHECK_LAUNCH()  after every kernel launch: catches bad launch configurations at once
//                             (asynchronous faults surface at the next checked call, as always in CUDA).
//
// kernels/ may not include engine/, so by default a failure throws std::runtime_error. The engine defines
// UNET_CUDA_ON_ERROR(msg) as UNET_FAIL(msg) before including this header, so its errors are unet::Error
// (which derives from std::runtime_error: catching std::runtime_error catches both).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace unet::cuda_check {

inline std::string message(cudaError_t err, const char* what, const char* file, int line) {
  return std::string("CUDA error: ") + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ") in " + what +
         " at " + file + ":" + std::to_string(line);
}

[[noreturn]] inline void throw_runtime_error(const std::string& msg) { throw std::runtime_error(msg); }

}  // namespace unet::cuda_check

#ifndef UNET_CUDA_ON_ERROR
#define UNET_CUDA_ON_ERROR(msg) ::unet::cuda_check::throw_runtime_error(msg)
#endif

#define UNET_CUDA_CHECK(call)                                                                    \
  do {                                                                                           \
    cudaError_t unet_cuda_err_ = (call);                                                         \
    if (unet_cuda_err_ != cudaSuccess) {                                                         \
      UNET_CUDA_ON_ERROR(::unet::cuda_check::message(unet_cuda_err_, #call, __FILE__, __LINE__)); \
    }                                                                                            \
  } while (0)

#define UNET_CUDA_CHECK_LAUNCH() UNET_CUDA_CHECK(cudaGetLastError())
