// Which kernels run a tensor's ops, on which stream, and what the GPU is.
#pragma once
#include <cstddef>
#include <string>

#include "engine/tensor.h"
#include "kernels/kernels.h"

namespace unet {

const kernels::KernelTable& kernels_for(Device d);
// The engine's stream for a device (nullptr for the CPU). One stream per device: ops are ordered.
kernels::Stream stream_for(Device d);
// Wait for all work queued on the device's stream.
void synchronize(Device d);
// The stream this thread's CUDA work goes to instead of the engine's (nullptr: the engine's again): a CUDA
// graph's capture (engine/graph_cuda.cu) records its own thread's work only.
void set_thread_stream(kernels::Stream s);

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  size_t total_memory = 0, free_memory = 0;
};
// Throws when no CUDA device is present (check cuda_available() first).
DeviceInfo cuda_device_info();

// Bytes a new allocation on `d` can still get: for the CPU the kernel's MemAvailable, capped by a
// cgroup memory limit when one is set; for CUDA the device's free memory plus what the caching
// allocator holds unused. A sizing guide for clear errors, not a promise.
size_t available_memory(Device d);

// Caching-allocator statistics: a training step must not call cudaMalloc after its first iteration.
struct AllocatorStats {
  size_t device_mallocs = 0;     // calls that reached cudaMalloc
  size_t bytes_reserved = 0;     // held from the driver
  size_t bytes_in_use = 0;       // handed out to tensors
  size_t peak_bytes_in_use = 0;  // the most bytes_in_use has been
  bool exact = false;            // UNET_CUDA_ALLOCATOR=exact: no caching (see cuda_allocator())
};
// With the environment variable UNET_CUDA_ALLOCATOR=exact the allocator caches nothing: every tensor is
// its own cudaMalloc of exactly its size, freed when the tensor is (for compute-sanitizer, which sees a
// write past a tensor's end only at the end of a cudaMalloc'ed block, not inside a larger size class).
AllocatorStats cuda_allocator_stats();

// For CUDA graphs (engine/graph_cuda.cu): a private pool of the caching allocator (engine/block_cache.h) that
// this thread's allocations between open and close come from and that keeps their blocks until it is released.
int cuda_allocator_open_pool();
void cuda_allocator_close_pool();
void cuda_allocator_release_pool(int id);

// NVTX range named as the op (a backward pass "<op> backward"), so a profile of a training step reads like the
// network, and the op's time when timing is on (engine/op_timing.h). NVTX only with a device present.
class OpRange {
 public:
  explicit OpRange(const char* name, bool backward = false);
  ~OpRange();
  OpRange(const OpRange&) = delete;
  OpRange& operator=(const OpRange&) = delete;

 private:
  [[maybe_unused]] bool active_ = false;  // an NVTX range was pushed (builds with CUDA only)
  bool timed_ = false;
};

}  // namespace unet
