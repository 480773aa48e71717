// The engine's CUDA backend: device discovery, the kernel table and stream of each device, the caching
// device allocator, copies between host and device, and NVTX ranges. (engine/backend_nocuda.cpp is the
// same interface for a build without CUDA.) Every CUDA call goes through UNET_CUDA_CHECK, which throws
// unet::CudaError with cudaGetErrorString's text.
#include <nvtx3/nvToolsExt.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/block_cache.h"
#include "engine/op_timing.h"
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

thread_local cudaStream_t t_stream = nullptr;  // set_thread_stream: a CUDA graph being captured on this thread

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

cudaStream_t current_stream() { return t_stream ? t_stream : engine_stream(); }

}  // namespace

const kernels::KernelTable& kernels_for(Device d) {
  if (d == Device::CPU) return kernels::cpu_table();
  require_device();
  return kernels::cuda_table();
}

kernels::Stream stream_for(Device d) {
  if (d == Device::CPU) return nullptr;
  return static_cast<kernels::Stream>(current_stream());
}

void set_thread_stream(kernels::Stream s) { t_stream = static_cast<cudaStream_t>(s); }

void synchronize(Device d) {
  if (d == Device::CPU) return;
  UNET_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
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

// The bookkeeping is BlockCache's (engine/block_cache.h: size classes, free lists, the private pools of CUDA
// graphs); this adds the device calls and a lock. Blocks are used only on the engine's one stream, so a block
// handed out again is touched by work queued after its last user: the reuse is stream-ordered and needs no
// event. Out of memory, the shared cached blocks are released (after a device synchronisation) and the
// cudaMalloc is tried once more.
class CachingAllocator final : public Allocator {
 public:
  CachingAllocator() : cache_(device_malloc, device_free, wait_device, exact_mode()) {}

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.allocate(bytes, t_pool);
  }
  void deallocate(void* p, size_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.deallocate(p);
  }
  AllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    AllocatorStats s;
    s.device_mallocs = cache_.mallocs();
    s.bytes_reserved = cache_.bytes_reserved();
    s.bytes_in_use = cache_.bytes_in_use();
    s.peak_bytes_in_use = cache_.peak_bytes_in_use();
    s.exact = cache_.exact();
    return s;
  }
  // The pool this thread's allocations go to (the capture of a CUDA graph runs on one thread; other threads
  // keep allocating from the shared lists meanwhile).
  int open_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    UNET_CHECK(t_pool == 0, "CUDA allocator: this thread has a private pool open already");
    t_pool = cache_.new_pool();
    return t_pool;
  }
  void close_pool() { t_pool = 0; }
  void release_pool(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.release_pool(id);
  }

 private:
  static bool exact_mode() {
    const char* mode = std::getenv("UNET_CUDA_ALLOCATOR");
    return mode != nullptr && std::string(mode) == "exact";
  }
  static void* device_malloc(size_t bytes) {
    require_device();
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    UNET_CUDA_CHECK(err);
    return p;
  }
  // cudaFree waits for the work queued on the block. Not checked: a tensor in static storage may be freed
  // after the runtime is gone (compute-sanitizer reports a failing cudaFree anyway).
  static void device_free(void* p) {
    if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
  }
  static void wait_device() { UNET_CUDA_CHECK(cudaDeviceSynchronize()); }

  std::mutex mu_;
  BlockCache cache_;
  static thread_local int t_pool;
};

thread_local int CachingAllocator::t_pool = 0;

CachingAllocator& caching_allocator() {
  // Never destroyed: tensors in static storage may be freed after main returns, when the CUDA runtime may
  // already be gone; the free lists then just grow and the process exit returns the memory.
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

}  // namespace

Allocator& cuda_allocator() { return caching_allocator(); }

AllocatorStats cuda_allocator_stats() { return caching_allocator().stats(); }
int cuda_allocator_open_pool() { return caching_allocator().open_pool(); }
void cuda_allocator_close_pool() { caching_allocator().close_pool(); }
void cuda_allocator_release_pool(int id) { caching_allocator().release_pool(id); }

// --- copies ------------------------------------------------------------------------------------------

// On the engine's stream, so a copy is ordered after the kernels that produced its source. Host-to-device
// from pageable memory returns once the source has been staged (the caller may free it); device-to-host
// waits for the stream, so the data is on the host when this returns.
void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = current_stream();
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

OpRange::OpRange(const char* name, bool backward) {
  timed_ = detail::op_timing_begin(name, backward);  // first: when it throws, nothing is open
  if (cuda_available()) {
    char label[96];  // NVTX copies the name; no allocation on the ops' path
    if (backward) std::snprintf(label, sizeof label, "%s backward", name);
    nvtxRangePushA(backward ? label : name);
    active_ = true;
  }
}

OpRange::~OpRange() {
  if (timed_) detail::op_timing_end();
  if (active_) nvtxRangePop();
}

// --- events for op timing ----------------------------------------------------------------------------

namespace {
std::mutex g_events_mu;
std::vector<cudaEvent_t> g_free_events;  // made once, reused: creating an event costs more than recording it
}  // namespace

namespace detail {

void reserve_device_events(int64_t n) {
  std::lock_guard<std::mutex> lock(g_events_mu);
  while (static_cast<int64_t>(g_free_events.size()) < n) {
    cudaEvent_t e = nullptr;
    UNET_CUDA_CHECK(cudaEventCreate(&e));
    g_free_events.push_back(e);
  }
}

void* record_device_event() {
  cudaEvent_t e = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_events_mu);
    if (!g_free_events.empty()) e = g_free_events.back(), g_free_events.pop_back();
  }
  if (!e) UNET_CUDA_CHECK(cudaEventCreate(&e));
  UNET_CUDA_CHECK(cudaEventRecord(e, current_stream()));
  return e;
}

double device_event_ms(void* from, void* to) {
  float ms = 0.0f;
  UNET_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(from), static_cast<cudaEvent_t>(to)));
  return ms;
}

void release_device_event(void* e) noexcept {
  try {
    std::lock_guard<std::mutex> lock(g_events_mu);
    g_free_events.push_back(static_cast<cudaEvent_t>(e));
  } catch (...) {  // no memory for the pool: the event is dropped
  }
}

}  // namespace detail

}  // namespace unet
