// A step that repeats on the GPU (a training step) recorded once as a CUDA graph and replayed: the host then
// spends one launch a step instead of one per op (about 150 for the U-Net), and the GPU runs the kernels back
// to back.
//
// A replay repeats the captured launches, same arguments, same addresses. So:
//  * what the step reads and outlives it (its input tiles, the weights, the optimizer's state) is allocated
//    before the capture, and new inputs are copied into those tensors between steps (Tensor::copy_from);
//  * what the step allocates comes from a private pool of the allocator (engine/block_cache.h) that nothing
//    outside the graph may take. Its outputs (the loss, the gradients) are rewritten by each replay: copy what
//    must stay;
//  * the capture records the capturing thread's work only (on a stream of its own); other threads may use the
//    device meanwhile;
//  * what changes from step to step is read from device memory (StepScalars): the dropout masks' Philox offset
//    and the optimizer's learning rate and bias corrections. run() redoes the step's host-side effects on the
//    Rng and the Optimizer before each replay;
//  * nothing else may change: the same shapes, the same code path, no read of a device value on the host.
// A step that breaks a rule the capture can see fails with a clear error; tests/gpu/test_graph.cpp trains with
// and without a graph and requires the same bits.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/optim.h"
#include "engine/rng.h"

namespace unet {

// The values a captured step reads from device memory, written by the host before each launch.
struct StepScalars {
  uint64_t rng_base = 0;            // the step's Rng offset when it begins: dropout offsets are relative to it
  std::array<float, 2> optim = {};  // Optimizer::scalars_of(the step's update)
};

// While a step is being captured on this thread (else nullptr): the ops that take per-step values
// (ops::dropout, Optimizer::apply) pass these device addresses to their kernels and their own values
// relative to `host`, the captured step's scalars (which its first launch reads).
struct Capture {
  Device device = Device::CUDA;        // whose memory holds the scalars: the ops must run there
  const uint64_t* rng_base = nullptr;  // device
  const float* optim = nullptr;        // device, two floats
  const Rng* rng = nullptr;            // the Rng the step's offsets must come from
  StepScalars host;
  int optimizer_updates = 0;
};
Capture* current_capture();
void set_current_capture(Capture* c);

class StepGraph {
 public:
  StepGraph();  // needs a CUDA device (and the caching allocator: not UNET_CUDA_ALLOCATOR=exact)
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // The first call captures step() (nothing runs while it is recorded) and launches the graph; later calls
  // only launch it, after taking from `rng` what the step took (nullptr: the step draws nothing) and counting
  // a step of `opt` (nullptr: it updates no optimizer). Work is queued on the engine's stream; nothing waits.
  void run(const std::function<void()>& step, Rng* rng, Optimizer* opt);
  bool captured() const;
  size_t nodes() const;  // of the captured graph (kernels, copies, the workspaces' memory nodes)

 private:
  void capture(const std::function<void()>& step, Rng* rng, Optimizer* opt, StepScalars* first);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unet
