// Host emulation of the CUDA the kernels use (see harness.cpp and tc_harness.cpp): for checking kernel
// logic without a GPU.
//
// A launch runs its blocks one after another; the threads of a block are fibers (each its own stack)
// taking turns on the calling thread. A fiber runs until it reaches a barrier (__syncthreads, or a
// warp-collective operation such as an emulated mma) or its end; when every live thread of the block
// (of the warp) has arrived, they all go on. Each round of turns runs the fibers in the opposite order
// of the one before, so a missing barrier leaves some thread reading what another has not written yet
// (or has already overwritten), whichever way round. Shared memory starts as NaN in every block.
//
// The PTX of the tensor-core kernels has host versions in ptx.cuh beside this file (they take the place
// of kernels/cuda/ptx.cuh): cp.async copies are held per thread until the cp.async.wait_group that
// covers them, and the warp's scratch area below carries each lane's mma fragments to the others.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <vector>

extern "C" void emu_fiber_switch(void** save_sp, void* to_sp);  // fake_rt.cpp (x86-64)

namespace emu {
inline thread_local uint3 tIdx, bIdx;
inline dim3 gDim, bDim;
inline std::mutex atomic_mu;
inline int fake_sms = 132;
inline std::vector<float> dynamic_shared;  // the block's dynamic shared memory

// What one lane hands the others in a warp-collective operation: the mma operands.
struct WarpScratch {
  float A[16][16];
  float B[16][8];
};

struct Copy {  // a cp.async not yet performed
  void* dst;
  const void* src;
  int bytes, src_bytes;
};

struct Fiber {
  void* sp = nullptr;
  char* stack = nullptr;
  unsigned tid = 0;
  bool done = false;
  int wait = 0;  // 0 runnable, 1 at a block barrier, 2 at a warp barrier
  int64_t warp_phase = 0;
  std::vector<Copy> uncommitted;
  std::deque<std::vector<Copy>> groups;  // committed, oldest first
};

struct Block {
  std::vector<Fiber> fibers;
  int live = 0, at_barrier = 0;
  std::vector<int> warp_live, warp_arrived;
  std::vector<WarpScratch> scratch;  // two per warp: lanes alternate between them, phase by phase
  void* scheduler_sp = nullptr;
  Fiber* current = nullptr;
  std::function<void()> body;
};
inline Block block;

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "emu: %s (block %u,%u,%u thread %u)\n", what, bIdx.x, bIdx.y, bIdx.z, tIdx.x);
  std::abort();
}

inline Fiber& self() { return *block.current; }
inline int lane() { return static_cast<int>(tIdx.x % 32); }
inline void yield() { emu_fiber_switch(&self().sp, block.scheduler_sp); }

inline void release(int kind, int warp) {
  for (Fiber& f : block.fibers)
    if (f.wait == kind && (kind == 1 || static_cast<int>(f.tid / 32) == warp)) f.wait = 0;
}

// __syncthreads: every live thread of the block arrives, then all go on.
inline void sync_block() {
  self().wait = 1;
  if (++block.at_barrier == block.live) {
    block.at_barrier = 0;
    release(1, 0);
  }
  yield();
}

// The 32 lanes of the calling warp meet (all must be live: the collective PTX operations are .aligned).
inline void sync_warp() {
  const int w = static_cast<int>(self().tid / 32);
  if (block.warp_live[w] != 32) fail("warp-collective operation without all 32 lanes of the warp");
  self().wait = 2;
  if (++block.warp_arrived[w] == 32) {
    block.warp_arrived[w] = 0;
    release(2, w);
  }
  yield();
  ++self().warp_phase;
}

// The scratch area of the calling lane's warp for its next sync_warp (write before it, read after).
inline WarpScratch& warp_scratch() {
  return block.scratch[2 * (self().tid / 32) + static_cast<size_t>(self().warp_phase % 2)];
}

inline void fiber_exit() {
  Fiber& f = self();
  f.done = true;
  --block.live;
  --block.warp_live[f.tid / 32];
  if (block.at_barrier > 0 && block.at_barrier == block.live) {
    block.at_barrier = 0;
    release(1, 0);
  }
  for (;;) yield();  // never resumed
}

inline void fiber_main() {
  block.body();
  fiber_exit();
}

constexpr size_t kStack = 256 * 1024;

inline void run_block(unsigned nt, uint3 bid) {
  static std::vector<char*> stacks;
  while (stacks.size() < nt) stacks.push_back(static_cast<char*>(std::malloc(kStack)));
  const unsigned warps = (nt + 31) / 32;
  block.fibers.assign(nt, Fiber{});
  block.live = static_cast<int>(nt);
  block.at_barrier = 0;
  block.warp_live.assign(warps, 0);
  block.warp_arrived.assign(warps, 0);
  block.scratch.assign(2 * warps, WarpScratch{});
  for (unsigned t = 0; t < nt; ++t) {
    Fiber& f = block.fibers[t];
    f.tid = t;
    f.stack = stacks[t];
    ++block.warp_live[t / 32];
    // Initial frame for emu_fiber_switch: six callee-saved registers, then the "return" into
    // fiber_main with the stack aligned as after a call.
    auto top = reinterpret_cast<uintptr_t>(f.stack + kStack) & ~uintptr_t{15};
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;
    *--sp = reinterpret_cast<void*>(&fiber_main);
    for (int r = 0; r < 6; ++r) *--sp = nullptr;
    f.sp = sp;
  }
  std::fill(dynamic_shared.begin(), dynamic_shared.end(), std::numeric_limits<float>::quiet_NaN());
  bIdx = bid;
  bool reverse = false;
  for (;;) {
    bool ran = false;
    for (unsigned i = 0; i < nt; ++i) {
      Fiber& f = block.fibers[reverse ? nt - 1 - i : i];
      if (f.done || f.wait) continue;
      block.current = &f;
      tIdx = {f.tid, 0, 0};
      emu_fiber_switch(&block.scheduler_sp, f.sp);
      ran = true;
    }
    if (block.live == 0) break;
    if (!ran) fail("deadlock: threads wait at barriers that cannot complete");
    reverse = !reverse;
  }
  block.current = nullptr;
}

template <class... KA, class... A>
void launch(void (*k)(KA...), dim3 grid, dim3 blockdim, size_t smem, cudaStream_t, A&&... a) {
  gDim = grid;
  bDim = blockdim;
  dynamic_shared.assign((smem + sizeof(float) - 1) / sizeof(float) + 4, 0.0f);
  block.body = [&] { k(a...); };
  const unsigned nt = blockdim.x * blockdim.y * blockdim.z;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) run_block(nt, {x, y, z});
  block.body = nullptr;
}

// The device the runtime reports: one per SM count the harness sets in fake_sms (so that a cache kept
// per device sees a new count as a new device).
inline std::vector<int>& device_sms() {
  static std::vector<int> known;
  return known;
}
inline int current_device() {
  auto& known = device_sms();
  for (size_t d = 0; d < known.size(); ++d)
    if (known[d] == fake_sms) return static_cast<int>(d);
  known.push_back(fake_sms);
  return static_cast<int>(known.size()) - 1;
}
inline int sms_of_device(int dev) {
  auto& known = device_sms();
  return dev >= 0 && static_cast<size_t>(dev) < known.size() ? known[dev] : fake_sms;
}
}  // namespace emu

#define threadIdx emu::tIdx
#define blockIdx emu::bIdx
#define gridDim emu::gDim
#define blockDim emu::bDim
#define __launch_bounds__(...)
#define __syncthreads() emu::sync_block()
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float atomicAdd(float* p, float v) {
  std::lock_guard<std::mutex> l(emu::atomic_mu);
  float o = *p;
  *p = o + v;
  return o;
}
#undef __shared__
#define __shared__ static
namespace cub {
template <class T, int N>
struct BlockReduce {
  struct TempStorage {
    T v[N];
  };
  TempStorage& s;
  explicit BlockReduce(TempStorage& t) : s(t) {}
  T Sum(T x) {
    s.v[threadIdx.x] = x;
    __syncthreads();
    T r = T(0);
    if (threadIdx.x == 0)
      for (int i = 0; i < N; ++i) r += s.v[i];
    __syncthreads();
    return r;
  }
};
}  // namespace cub
using std::isfinite;
