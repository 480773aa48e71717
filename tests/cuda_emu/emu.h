// Host emulation of the CUDA the kernels use (see harness.cpp): for checking kernel logic without a GPU.
#pragma once
#include <cuda_runtime.h>
#include <barrier>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <functional>

namespace emu {
inline thread_local uint3 tIdx, bIdx;
inline dim3 gDim, bDim;
inline thread_local std::barrier<>* bar = nullptr;
inline std::mutex atomic_mu;
inline int fake_sms = 132;

template <class... KA, class... A>
void launch(void (*k)(KA...), dim3 grid, dim3 block, size_t, cudaStream_t, A&&... a) {
  gDim = grid; bDim = block;
  int nt = block.x * block.y * block.z;
  for (unsigned z = 0; z < grid.z; ++z) for (unsigned y = 0; y < grid.y; ++y) for (unsigned x = 0; x < grid.x; ++x) {
    std::barrier<> b(nt);
    std::vector<std::thread> ts;
    for (int t = 0; t < nt; ++t)
      ts.emplace_back([&, t] { tIdx = {unsigned(t), 0, 0}; bIdx = {x, y, z}; bar = &b; k(a...); b.arrive_and_drop(); });
    for (auto& th : ts) th.join();
  }
}
}  // namespace emu

#define threadIdx emu::tIdx
#define blockIdx emu::bIdx
#define gridDim emu::gDim
#define blockDim emu::bDim
#define __launch_bounds__(...)
#define __syncthreads() emu::bar->arrive_and_wait()
template <class T> inline T __ldg(const T* p) { return *p; }
inline float atomicAdd(float* p, float v) { std::lock_guard<std::mutex> l(emu::atomic_mu); float o = *p; *p = o + v; return o; }
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
