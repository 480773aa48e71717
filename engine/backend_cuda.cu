// The engine's CUDA backend: device discovery, the kernel table and stream of each device, the caching
// device allocator, copies between host and device, and NVTX ranges. (engine/backend_nocuda.cpp is the
// same interface for a build without CUDA.) Every CUDA call goes through UNET_CUDA_CHECK, which throws
// unet::CudaError with cudaGetErrorString's text.
#include <nvtx3/nvToolsExt.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/check.h"
#include "engine/tensor.h"

#include "kernels/cuda/cuda_check.cuh"

namespace unet {

// --- device discovery --------------------------------------------------------------------------------

bool cuda_available() {
  // Asked once: any error from the runtime (no driver, no device, a driver too old) means "no device".
  static const bool available = [] {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear it, so that later checks start clean
      return false;
    }
    return n > 0;
  }();
  return available;
}

namespace {

void require_device() {
  UNET_CHECK(cuda_available(), "no CUDA device is present: use Device::CPU, or check cuda_available() first");
}

cudaStream_t engine_stream() {
  // One stream for the device, created on first use and never destroyed (the runtime tears it down at exit).
  // A blocking stream: it stays ordered with the legacy default stream that libraries may use.
  static const cudaStream_t stream = [] {
    require_device();
    cudaStream_t s = nullptr;
    UNET_CUDA_CHECK(cudaStreamCreate(&s));
    return s;
  }();
  return stream;
}

}  // namespace

const kernels::KernelTable& kernels_for(Device d) {
  if (d == Device::CPU) return kernels::cpu_table();
  require_device();
  return kernels::cuda_table();
}

kernels::Stream stream_for(Device d) {
  if (d == Device::CPU) return nullptr;
  return static_cast<kernels::Stream>(engine_stream());
}

void synchronize(Device d) {
  if (d == Device::CPU) return;
  UNET_CUDA_CHECK(cudaStreamSynchronize(engine_stream()));
}

DeviceInfo cuda_device_info() {
  require_device();
  int dev = 0;
  UNET_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  UNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  DeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  size_t free_bytes = 0, total_bytes = 0;
  UNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  info.total_memory = total_bytes;
  info.free_memory = free_bytes;
  return info;
}

// --- the caching allocator ---------------------------------------------------------------------------

namespace {

// Size classes: up to 1 MiB, multiples of 512 B; above, four classes per power of two (a size is rounded
// up to a multiple of a quarter of the largest power of two not above it: at most 25% is wasted). A block
// is reused only for a request of its own class, so the same sequence of tensor sizes (a training step)
// finds every block it needs in the free lists from its second iteration on.
size_t size_class(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  if (bytes <= kLarge) return (bytes + kSmall - 1) / kSmall * kSmall;
  size_t pow2 = kLarge;
  while (pow2 <= bytes / 2) pow2 *= 2;  // largest power of two <= bytes
  const size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

// Freed blocks go back to a free list of their class, not to cudaFree. Blocks are used only on the
// engine's one stream, so a block handed out again is touched by work queued after its last user: the
// reuse is stream-ordered and needs no event. Out of memory, the cached blocks are released (after a device
// synchronisation) and the cudaMalloc is tried once more.
class CachingAllocator final : public Allocator {
 public:
  CachingAllocator() {
    const char* mode = std::getenv("UNET_CUDA_ALLOCATOR");
    stats_.exact = mode != nullptr && std::string(mode) == "exact";
  }

  void* allocate(size_t bytes) override {
    const size_t cls = stats_.exact ? (bytes > 0 ? bytes : 1) : size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = nullptr;
    auto it = stats_.exact ? free_.end() : free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    } else {
      p = device_malloc(cls);
    }
    live_[p] = cls;
    stats_.bytes_in_use += cls;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return p;
  }

  void deallocate(void* p, size_t) override {
    if (p == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    UNET_CHECK(it != live_.end(), "CUDA allocator: freeing a pointer it did not hand out");
    const size_t cls = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= cls;
    if (stats_.exact) {  // cudaFree waits for the work queued on the block. Not checked: a tensor in static
      // storage may be freed after the runtime is gone (compute-sanitizer reports a failing cudaFree anyway).
      if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
      stats_.bytes_reserved -= cls;
      return;
    }
    free_[cls].push_back(p);
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  void* device_malloc(size_t cls) {  // with mu_ held
    require_device();
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached();
      err = cudaMalloc(&p, cls);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      UNET_FAIL_AS(OutOfMemory, "CUDA out of memory: cudaMalloc of ", cls, " bytes failed (", cudaGetErrorString(err),
                   "); ", stats_.bytes_reserved, " bytes reserved, ", stats_.bytes_in_use, " in use");
    }
    ++stats_.device_mallocs;
    stats_.bytes_reserved += cls;
    return p;
  }

  void release_cached() {  // with mu_ held
    UNET_CUDA_CHECK(cudaDeviceSynchronize());
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) {
        UNET_CUDA_CHECK(cudaFree(p));
        stats_.bytes_reserved -= cls;
      }
      blocks.clear();
    }
  }

  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_;               // handed-out block -> its size class
  AllocatorStats stats_;
};

CachingAllocator& caching_allocator() {
  // Never destroyed: tensors in static storage may be freed after main returns, when the CUDA runtime may
  // already be gone; the free lists then just grow and the process exit returns the memory.
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

}  // namespace

Allocator& cuda_allocator() { return caching_allocator(); }

AllocatorStats cuda_allocator_stats() { return caching_allocator().stats(); }

// --- copies ------------------------------------------------------------------------------------------

// On the engine's stream, so a copy is ordered after the kernels that produced its source. Host-to-device
// from pageable memory returns once the source has been staged (the caller may free it); device-to-host
// waits for the stream, so the data is on the host when this returns.
void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = engine_stream();
  if (dst_dev == Device::CUDA && src_dev == Device::CPU) {
    UNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  } else if (dst_dev == Device::CPU && src_dev == Device::CUDA) {
    UNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
    UNET_CUDA_CHECK(cudaStreamSynchronize(s));
  } else if (dst_dev == Device::CUDA && src_dev == Device::CUDA) {
    UNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
  } else {
    UNET_FAIL("cuda_copy_bytes: a host-to-host copy does not belong here");
  }
}

// --- profiling ranges --------------------------------------------------------------------------------

OpRange::OpRange(const char* name) {
  if (cuda_available()) {
    nvtxRangePushA(name);
    active_ = true;
  }
}

OpRange::~OpRange() {
  if (active_) nvtxRangePop();
}

}  // namespace unet
