// Host emulation of the CUDA the kernels use (see harness.cpp): for checking kernel logic without a GPU.
// A launch runs its blocks one after the other; the threads of a block are fibers (ucontext) on one OS thread,
// run in turn, each until it reaches __syncthreads() or returns, round after round until all have returned:
// a barrier holds every thread until all have reached it, as on the GPU (a thread that has returned no longer
// counts), and shared memory (statics) is seen by all. The order is fixed (thread 0 first in every round), so
// a missing barrier shows as a wrong result, every time.
#pragma once
#include <cuda_runtime.h>
#include <ucontext.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace emu {
inline uint3 tIdx, bIdx;
inline dim3 gDim, bDim;
inline int fake_sms = 132;

struct Fiber {
  ucontext_t ctx;
  std::unique_ptr<char[]> stack;  // untouched pages cost nothing
  bool done = false;
};
constexpr size_t kStack = 256 * 1024;
inline ucontext_t scheduler;
inline std::vector<std::unique_ptr<Fiber>> fibers;  // never moved: a ucontext_t points into itself
inline Fiber* current = nullptr;
inline const std::function<void()>* body = nullptr;

inline void fiber_main() {
  (*body)();
  current->done = true;  // then uc_link returns to the scheduler
}

// __syncthreads(): back to the scheduler, which resumes this fiber once every other one has had its turn.
inline void sync_threads() { swapcontext(&current->ctx, &scheduler); }

inline void run_block(int threads, const std::function<void()>& kernel) {
  while (static_cast<int>(fibers.size()) < threads) fibers.push_back(std::make_unique<Fiber>());
  body = &kernel;
  for (int t = 0; t < threads; ++t) {
    Fiber& f = *fibers[static_cast<size_t>(t)];
    if (!f.stack) {
      f.stack.reset(new char[kStack]);
      getcontext(&f.ctx);  // once: makecontext below starts the fiber afresh on every block
    }
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &scheduler;
    makecontext(&f.ctx, fiber_main, 0);
    f.done = false;
  }
  for (bool running = true; running;) {
    running = false;
    for (int t = 0; t < threads; ++t) {
      Fiber& f = *fibers[static_cast<size_t>(t)];
      if (f.done) continue;
      tIdx = {unsigned(t), 0, 0};
      current = &f;
      swapcontext(&scheduler, &f.ctx);
      running = running || !f.done;
    }
  }
}

template <class... KA, class... A>
void launch(void (*k)(KA...), dim3 grid, dim3 block, size_t, cudaStream_t, A&&... a) {
  gDim = grid;
  bDim = block;
  const int threads = static_cast<int>(block.x * block.y * block.z);
  const std::function<void()> kernel = [&] { k(a...); };
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        bIdx = {x, y, z};
        run_block(threads, kernel);
      }
}
}  // namespace emu

#define threadIdx emu::tIdx
#define blockIdx emu::bIdx
#define gridDim emu::gDim
#define blockDim emu::bDim
#define __launch_bounds__(...)
#define __syncthreads() emu::sync_threads()
template <class T> inline T __ldg(const T* p) { return *p; }
inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }  // one OS thread: no race
#undef __shared__
#define __shared__ static
namespace cub {
template <class T, int N> struct BlockReduce {
  struct TempStorage { T v[N]; };
  TempStorage& s;
  explicit BlockReduce(TempStorage& t) : s(t) {}
  T Sum(T x) { s.v[threadIdx.x] = x; __syncthreads(); T r = T(0); if (threadIdx.x == 0) for (int i = 0; i < N; ++i) r += s.v[i]; __syncthreads(); return r; }
};
}
using std::isfinite;
