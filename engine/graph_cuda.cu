// StepGraph (engine/graph.h): stream capture of one step on the engine's stream, its instantiation, and its
// replays. Capture runs in relaxed mode: the allocator may still call cudaMalloc for the graph's private pool
// (it is not a stream operation, and the graph keeps the block for good), and the GEMM workspaces'
// cudaMallocAsync/cudaFreeAsync become the graph's own memory nodes.
#include <cstring>

#include "engine/backend.h"
#include "engine/graph.h"

#include "kernels/cuda/cuda_check.cuh"

namespace unet {

struct StepGraph::Impl {
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
  Tensor scalars;       // StepScalars on the device: the word rng_base, then optim[0], optim[1]
  uint64_t taken = 0;   // Rng words the step takes
  bool updates = false;  // the step applies an optimizer update
  size_t nodes = 0;
};

namespace {

cudaStream_t engine_cuda_stream() { return static_cast<cudaStream_t>(stream_for(Device::CUDA)); }

}  // namespace

void StepGraph::capture(const std::function<void()>& step, Rng* rng, Optimizer* opt, StepScalars* first) {
  Impl& g = *impl_;
  UNET_CHECK(!cuda_allocator_stats().exact,
             "CUDA graphs need the caching allocator: UNET_CUDA_ALLOCATOR=exact frees blocks inside a step");
  g.scalars = Tensor::zeros({4}, DType::F32, Device::CUDA);
  // The eager steps before the capture left their blocks in the shared cache; given back, the graph's private
  // pool takes their place instead of doubling the step's memory.
  cuda_allocator_release_cached();
  Capture cap;
  cap.rng_base = static_cast<const uint64_t*>(g.scalars.raw());
  cap.optim = g.scalars.f32() + 2;
  cap.rng = rng;
  cap.host.rng_base = rng ? rng->offset() : 0;
  const cudaStream_t s = engine_cuda_stream();
  g.pool = cuda_allocator_open_pool();
  set_current_capture(&cap);
  auto end_capture = [&] {
    set_current_capture(nullptr);
    cuda_allocator_close_pool();
  };
  cudaGraph_t graph = nullptr;
  // A failed capture leaves the step undone (its host side done): an error for the caller, who cannot go on.
  auto discard = [&] {
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    cuda_allocator_release_pool(g.pool);  // nothing ran on its blocks
    g.pool = 0;
  };
  try {
    UNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    step();
  } catch (...) {
    end_capture();
    if (cudaStreamEndCapture(s, &graph) != cudaSuccess) graph = nullptr;
    discard();
    throw;
  }
  end_capture();
  const cudaError_t err = cudaStreamEndCapture(s, &graph);
  if (err != cudaSuccess) {
    graph = nullptr;
    discard();
    UNET_FAIL("capturing the step as a CUDA graph failed (", cudaGetErrorString(err),
              "): it queued work the capture cannot record; run without the graph (--cuda-graph off)");
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
    UNET_FAIL("instantiating the step's CUDA graph failed (", cudaGetErrorString(ierr),
              "); run without the graph (--cuda-graph off)");
  }
  cudaGraphDestroy(graph);
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
}

bool StepGraph::captured() const { return impl_->exec != nullptr; }
size_t StepGraph::nodes() const { return impl_->nodes; }

void StepGraph::run(const std::function<void()>& step, Rng* rng, Optimizer* opt) {
  StepScalars s;
  if (!impl_->exec) {
    capture(step, rng, opt, &s);
  } else {
    if (rng) {
      s.rng_base = rng->offset();
      rng->take(impl_->taken);
    }
    if (impl_->updates) {
      const std::array<float, 2> v = Optimizer::scalars_of(opt->next());
      s.optim[0] = v[0], s.optim[1] = v[1];
    }
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
