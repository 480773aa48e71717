// The CPU backend's thread pool (internal to kernels/cpu): every parallel loop of the CPU kernels
// runs through parallel_for.
//
// Why not OpenMP regions: the machines this runs on are often shared. OpenMP's static schedules make
// every thread wait for the one that lost its core, and its idle threads spin for milliseconds after
// each region, taking the core from the thread that still has work (or from the other process).
// Here work is cut into fixed chunks that the threads claim one at a time, so a thread that is
// descheduled delays at most the chunk it holds; the caller works too, and nobody waits for a
// thread that took no chunk. Idle threads spin for a few microseconds (ops follow each other
// closely), then sleep.
//
// Determinism: the chunks depend only on the loop's size and grain, never on the thread count, and
// each chunk is one call of the body, so a kernel whose chunks write disjoint outputs (or partial
// sums combined in chunk order) gives bit-identical results for any number of threads.
//
// Several calling threads: the pool runs one loop at a time; a thread that starts a loop while
// another thread's loop runs waits for it (its loop then gets the whole pool). A thread under a
// ThreadLimit of 1 never enters the pool and so never waits. An exception thrown by a body (e.g.
// std::bad_alloc for a scratch buffer) stops the loop's remaining chunks and is rethrown to the
// thread that started the loop, whichever thread ran the chunk.
#pragma once
#include <cstdint>
#include <type_traits>

namespace unet::kernels::cpu {

// Threads the pool uses, the caller included (>= 1). Default: UNET_NUM_THREADS, else the first
// value of OMP_NUM_THREADS, else the CPUs this process may run on.
int num_threads();
// Sets the thread count (n <= 0: the default). Waits for a running loop to finish first.
void set_num_threads(int n);

// While it lives, at most `n` threads (the calling thread included) work on the loops this thread
// starts; n = 1 runs them on the calling thread alone, outside the pool; n <= 0 lifts the limit.
// Results do not change (see Determinism above). Scoped to the calling thread; nests.
class ThreadLimit {
 public:
  explicit ThreadLimit(int n);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int prev_;
};

namespace detail {
// Runs fn(ctx, c) for c in [0, chunks), spread over the pool; returns when all have finished.
void run_chunks(int64_t chunks, void (*fn)(void*, int64_t), void* ctx);
}  // namespace detail

// body(begin, end) over [0, n) in chunks [k * grain, min((k + 1) * grain, n)). A loop of one chunk
// (n <= grain) runs inline: small ops cost no synchronisation. Called from inside a body, it runs
// inline too.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& body) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1) {
    body(int64_t{0}, n);
    return;
  }
  struct Ctx {
    std::remove_reference_t<F>* body;
    int64_t n, grain;
  } ctx{&body, n, grain};
  detail::run_chunks(
      chunks,
      [](void* p, int64_t c) {
    Ctx& x = *static_cast<Ctx*>(p);
    const int64_t b = c * x.grain, e = b + x.grain < x.n ? b + x.grain : x.n;
    (*x.body)(b, e);
      },
      &ctx);
}

// Grain for a loop of n items that each cost about `cost` units (elements, flops): chunks of at
// least ~64K units (below that the dispatch costs more than it saves) and at most 64 chunks.
// A function of n and cost only, so chunked reductions stay independent of the thread count.
inline int64_t grain_for(int64_t n, int64_t cost) {
  const int64_t min_units = int64_t{1} << 16;
  int64_t g = (min_units + cost - 1) / (cost > 0 ? cost : 1);
  const int64_t spread = (n + 63) / 64;
  return g > spread ? g : spread;
}

}  // namespace unet::kernels::cpu
