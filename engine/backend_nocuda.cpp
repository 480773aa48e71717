// The backend entry points for a build without CUDA: the CPU works, asking for CUDA is a clear error.
#if !defined(UNET_WITH_CUDA)
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/op_timing.h"

namespace unet {

namespace {
[[noreturn]] void no_cuda() {
  UNET_FAIL("this build of unet-cuda has no CUDA backend (configured with UNET_WITH_CUDA=OFF or no nvcc)");
}
}  // namespace

bool cuda_available() { return false; }
const kernels::KernelTable& kernels_for(Device d) {
  if (d == Device::CUDA) no_cuda();
  return kernels::cpu_table();
}
kernels::Stream stream_for(Device) { return nullptr; }
void set_thread_stream(kernels::Stream) {}
void synchronize(Device d) {
  if (d == Device::CUDA) no_cuda();
}
DeviceInfo cuda_device_info() { no_cuda(); }
AllocatorStats cuda_allocator_stats() { return {}; }
int cuda_allocator_open_pool() { no_cuda(); }
void cuda_allocator_close_pool() {}
void cuda_allocator_release_pool(int) {}
Allocator& cuda_allocator() { no_cuda(); }
void cuda_copy_bytes(void*, Device, const void*, Device, size_t) { no_cuda(); }
struct StepGraph::Impl {};
StepGraph::StepGraph() { no_cuda(); }
StepGraph::~StepGraph() = default;
bool StepGraph::captured() const { return false; }
size_t StepGraph::nodes() const { return 0; }
void StepGraph::run(const std::function<void()>&, Rng*, Optimizer*) { no_cuda(); }
OpRange::OpRange(const char* name, bool backward) { timed_ = detail::op_timing_begin(name, backward); }
OpRange::~OpRange() {
  if (timed_) detail::op_timing_end();
}
namespace detail {
void reserve_device_events(int64_t) { no_cuda(); }
void* record_device_event() { no_cuda(); }
double device_event_ms(void*, void*) { no_cuda(); }
void release_device_event(void*) noexcept {}
}  // namespace detail

}  // namespace unet
#endif
