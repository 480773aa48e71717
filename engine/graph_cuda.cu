// StepGraph (engine/graph.h): stream capture of one step, its instantiation, and its replays. The capture
// runs on a stream of its own, set as this thread's stream (set_thread_stream) and not blocking with the
// legacy default stream, so that other threads' work on the engine's stream is neither recorded nor able to
// break it; and in relaxed mode, so that the allocator may still cudaMalloc a block for the graph's private
// pool (not a stream operation: the graph keeps the block for good). The GEMM workspaces' cudaMallocAsync /
// cudaFreeAsync on that stream become the graph's own memory nodes. Launches go to the engine's stream, in
// order with the thread's other work.
#include <cstring>
#include <exception>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/graph.h"

#include "kernels/cuda/cuda_check.cuh"

namespace unet {

struct StepGraph::Impl {
  cudaStream_t capture_stream = nullptr;
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
  Tensor scalars;  // StepScalars on the device: the word rng_base, then optim[0], optim[1]
  // What the captured step was given, and how much of the Rng it took: a replay redoes that host side.
  const Rng* rng = nullptr;
  const Optimizer* opt = nullptr;
  uint64_t taken = 0;
  bool updates = false;  // the step applies an update of opt
  size_t nodes = 0;
};

namespace {

cudaStream_t engine_cuda_stream() { return static_cast<cudaStream_t>(stream_for(Device::CUDA)); }

// The workspaces of the eager steps stay in the default stream-ordered pool (up to 1 GiB is kept, see
// kernels/cuda/gemm_out.cuh); the graph's memory nodes take memory of their own, so the cached part goes back.
void trim_workspace_pool() {
  int dev = 0;
  cudaMemPool_t pool;
  UNET_CUDA_CHECK(cudaGetDevice(&dev));
  UNET_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
  UNET_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

}  // namespace

void StepGraph::capture(const std::function<void()>& step, Rng* rng, Optimizer* opt, StepScalars* first) {
  Impl& g = *impl_;
  UNET_CHECK(!cuda_allocator_stats().exact,
             "CUDA graphs need the caching allocator: UNET_CUDA_ALLOCATOR=exact frees blocks inside a step");
  g.scalars = Tensor::zeros({4}, DType::F32, Device::CUDA);
  trim_workspace_pool();
  if (!g.capture_stream) UNET_CUDA_CHECK(cudaStreamCreateWithFlags(&g.capture_stream, cudaStreamNonBlocking));
  Capture cap;
  cap.rng_base = static_cast<const uint64_t*>(g.scalars.raw());
  cap.optim = g.scalars.f32() + 2;
  cap.rng = rng;
  cap.host.rng_base = rng ? rng->offset() : 0;
  const cudaStream_t s = g.capture_stream;
  g.pool = cuda_allocator_open_pool();
  set_current_capture(&cap);
  set_thread_stream(s);
  cudaGraph_t graph = nullptr;
  auto finish = [&] {  // this thread back to the engine's stream and the shared lists; the capture ended
    set_current_capture(nullptr);
    set_thread_stream(nullptr);
    cuda_allocator_close_pool();
    const cudaError_t err = cudaStreamEndCapture(s, &graph);
    if (err != cudaSuccess) graph = nullptr;
    return err;
  };
  // A failed capture leaves the step undone with its host side done (Rng, optimizer count): the caller stops.
  // Nothing ran on the pool's blocks; the step's tape goes with them.
  auto discard = [&] {
    if (graph) cudaGraphDestroy(graph);
    graph = nullptr;
    (void)cudaGetLastError();
    cuda_allocator_release_pool(g.pool);
    g.pool = 0;
    Tape::current().clear();
  };
  const char* hint = "; run without the graph (--cuda-graph off)";
  try {
    UNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    step();
  } catch (const OutOfMemory&) {
    finish();
    discard();
    throw;
  } catch (const std::exception& e) {
    finish();
    discard();
    UNET_FAIL("capturing the step as a CUDA graph failed: ", e.what(), hint);
  }
  const cudaError_t err = finish();
  if (err != cudaSuccess) {
    discard();
    UNET_FAIL("capturing the step as a CUDA graph failed (", cudaGetErrorString(err),
              "): it queued work the capture cannot record", hint);
  }
  if (cap.optimizer_updates > 1 || (cap.optimizer_updates == 1 && opt == nullptr)) {
    discard();
    UNET_FAIL("a captured step applied ", cap.optimizer_updates, " optimizer update(s), and its graph was given ",
              opt ? "an optimizer" : "none", ": a replay redoes the host side of one update of the given optimizer");
  }
  if (cudaGraphGetNodes(graph, nullptr, &g.nodes) != cudaSuccess) (void)cudaGetLastError(), g.nodes = 0;
  const cudaError_t ierr = cudaGraphInstantiate(&g.exec, graph, 0);
  if (ierr != cudaSuccess) {
    g.exec = nullptr;
    discard();
    UNET_FAIL("instantiating the step's CUDA graph failed (", cudaGetErrorString(ierr), ")", hint);
  }
  cudaGraphDestroy(graph);
  g.rng = rng;
  g.opt = opt;
  g.taken = rng ? rng->offset() - cap.host.rng_base : 0;
  g.updates = cap.optimizer_updates == 1;
  *first = cap.host;
}

StepGraph::StepGraph() : impl_(std::make_unique<Impl>()) {
  UNET_CHECK(cuda_available(), "a CUDA graph needs a CUDA device");
}

StepGraph::~StepGraph() {
  // A graph still running is freed when it completes; its pool's blocks are only reused by work queued after it.
  if (impl_->exec) cudaGraphExecDestroy(impl_->exec);
  if (impl_->pool) cuda_allocator_release_pool(impl_->pool);
  if (impl_->capture_stream) cudaStreamDestroy(impl_->capture_stream);
  int dev = 0;
  if (impl_->exec && cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGraphMemTrim(dev);  // the memory nodes' memory
  (void)cudaGetLastError();
}

bool StepGraph::captured() const { return impl_->exec != nullptr; }
size_t StepGraph::nodes() const { return impl_->nodes; }

void StepGraph::run(const std::function<void()>& step, Rng* rng, Optimizer* opt) {
  StepScalars s;
  if (!impl_->exec) {
    capture(step, rng, opt, &s);
  } else {
    UNET_CHECK(rng == impl_->rng && opt == impl_->opt,
               "a CUDA graph is replayed with the Rng and optimizer it was captured with");
    if (rng) {
      s.rng_base = rng->offset();
      rng->take(impl_->taken);
    }
    if (impl_->updates) s.optim = Optimizer::scalars_of(opt->next());
  }
  float words[4];
  static_assert(sizeof(StepScalars) == sizeof words, "StepScalars is the word rng_base and two floats");
  std::memcpy(words, &s, sizeof words);
  // Pageable host memory: the copy returns once staged, queued before the launch that reads it.
  UNET_CUDA_CHECK(
      cudaMemcpyAsync(impl_->scalars.raw(), words, sizeof words, cudaMemcpyHostToDevice, engine_cuda_stream()));
  UNET_CUDA_CHECK(cudaGraphLaunch(impl_->exec, engine_cuda_stream()));
}

}  // namespace unet
