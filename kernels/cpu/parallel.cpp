// The CPU thread pool of kernels/cpu/parallel.h.
//
// One job at a time. The caller publishes the job (function, context, chunk count) and a new even
// generation in `state_` (generation << 32 | next chunk); threads claim chunks by compare-and-swap
// on `state_`, which fails once the generation has moved on, so a thread that wakes late can never
// run a chunk of the wrong job (between jobs the generation is odd: nothing to claim). The caller waits for the chunks,
// not for the threads: a thread that never got a core during the job is not waited for.
#include "kernels/cpu/parallel.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace unet::kernels::cpu {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle thread spins for the next job, and the caller for the last chunks, before
// sleeping: long enough to catch the next op of a network (a few microseconds apart), short
// enough to cost nothing when another process needs the core.
constexpr auto kSpin = std::chrono::microseconds(50);

// Spins until pred() or kSpin has passed; returns pred().
template <typename P>
bool spin_until(P pred) {
  const auto end = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > end) return pred();
  }
}

int default_threads() {
  for (const char* var : {"UNET_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(var);
    if (v && *v) {
      int n = std::atoi(v);  // OMP_NUM_THREADS may be a list ("2,1"): its first value
      if (n > 0) return n;
    }
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

thread_local bool t_in_body = false;
thread_local int t_limit = 0;  // ThreadLimit of this thread's loops (0: none)

// Marks the thread as inside a body for a scope, whatever way the scope is left.
struct InBody {
  InBody() { t_in_body = true; }
  ~InBody() { t_in_body = false; }
};

void run_inline(int64_t chunks, void (*fn)(void*, int64_t), void* ctx) {
  InBody in;
  for (int64_t c = 0; c < chunks; ++c) fn(ctx, c);
}

class Pool {
 public:
  ~Pool() { stop(); }

  int threads() {
    if (int n = count_.load(std::memory_order_acquire)) return n;  // lock-free: callable from a body
    std::lock_guard<std::mutex> lk(run_m_);
    ensure_started();
    return count_.load();
  }

  void resize(int n) {
    std::lock_guard<std::mutex> lk(run_m_);
    stop();
    wanted_ = n > 0 ? n : default_threads();
    started_ = false;
    ensure_started();
  }

  void run(int64_t chunks, void (*fn)(void*, int64_t), void* ctx) {
    if (t_in_body) {  // nested: the outer loop's threads are busy already
      for (int64_t c = 0; c < chunks; ++c) fn(ctx, c);
      return;
    }
    if (chunks <= 1 || t_limit == 1) return run_inline(chunks, fn, ctx);
    std::lock_guard<std::mutex> lk(run_m_);
    ensure_started();
    if (workers_.empty() || chunks >= (int64_t{1} << 31)) return run_inline(chunks, fn, ctx);
    const uint64_t helpers = t_limit > 1 && t_limit - 1 < static_cast<int>(workers_.size())
                                 ? static_cast<uint64_t>(t_limit - 1)
                                 : workers_.size();
    // Close the previous generation (odd: no job), so that a thread still looking at it can no
    // longer claim, then publish the job under the next even generation.
    const uint64_t closed = (state_.load(std::memory_order_relaxed) >> 32) + 1, gen = closed + 1;
    state_.store(closed << 32, std::memory_order_seq_cst);
    fn_.store(fn, std::memory_order_release);
    ctx_.store(ctx, std::memory_order_release);
    chunks_.store(chunks, std::memory_order_release);
    done_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    slots_.store(gen << 32 | helpers, std::memory_order_seq_cst);
    state_.store(gen << 32, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> g(m_);
      wake_cv_.notify_all();
    }
    work(gen);
    auto finished = [&] { return done_.load(std::memory_order_acquire) == chunks; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> g(m_);
      caller_waiting_.store(true, std::memory_order_seq_cst);
      done_cv_.wait(g, finished);
      caller_waiting_.store(false, std::memory_order_relaxed);
    }
    if (failed_.load(std::memory_order_acquire)) {
      std::exception_ptr e;
      {
        std::lock_guard<std::mutex> g(m_);
        std::swap(e, error_);
      }
      std::rethrow_exception(e);
    }
  }

 private:
  void ensure_started() {
    if (started_) return;
    started_ = true;
    if (wanted_ <= 0) wanted_ = default_threads();
    stop_.store(false);
    const uint64_t gen = state_.load() >> 32;
    for (int i = 1; i < wanted_; ++i) workers_.emplace_back([this, gen] { worker(gen); });
    count_.store(wanted_, std::memory_order_release);
  }

  void stop() {
    if (workers_.empty()) return;
    {
      std::lock_guard<std::mutex> g(m_);
      stop_.store(true);
      wake_cv_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    count_.store(0);
  }

  // A worker's place in job `gen`: false when the job has changed or its ThreadLimit is reached.
  bool take_slot(uint64_t gen) {
    uint64_t s = slots_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) != gen || (s & 0xffffffffu) == 0) return false;
      if (slots_.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel, std::memory_order_acquire)) return true;
    }
  }

  // Claims and runs chunks of job `gen` until none is left or the job has changed. After a chunk
  // has thrown, the remaining ones are claimed and counted but not run.
  void work(uint64_t gen) {
    auto* fn = fn_.load(std::memory_order_acquire);
    void* ctx = ctx_.load(std::memory_order_acquire);
    const int64_t chunks = chunks_.load(std::memory_order_acquire);
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) != gen) return;
      const int64_t c = static_cast<int64_t>(s & 0xffffffffu);
      if (c >= chunks) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          InBody in;
          fn(ctx, c);
        } catch (...) {
          std::lock_guard<std::mutex> g(m_);
          if (!error_) error_ = std::current_exception();
          failed_.store(true, std::memory_order_release);
        }
      }
      if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == chunks &&
          caller_waiting_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> g(m_);
        done_cv_.notify_all();
      }
      s = state_.load(std::memory_order_acquire);
    }
  }

  void worker(uint64_t seen) {
    for (;;) {
      auto fresh = [&] {
        const uint64_t g = state_.load(std::memory_order_acquire) >> 32;
        return (g != seen && g % 2 == 0) || stop_.load();
      };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> g(m_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_cv_.wait(g, fresh);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load()) return;
      const uint64_t g = state_.load(std::memory_order_acquire) >> 32;
      if (g % 2 != 0) continue;  // between jobs
      seen = g;
      if (take_slot(g)) work(g);
    }
  }

  std::mutex run_m_;  // one job at a time; guards workers_, started_, wanted_
  std::vector<std::thread> workers_;
  bool started_ = false;
  int wanted_ = 0;
  std::atomic<int> count_{0};

  std::atomic<uint64_t> state_{0};  // generation << 32 | next chunk
  std::atomic<uint64_t> slots_{0};  // generation << 32 | workers that may still join the job
  std::atomic<void (*)(void*, int64_t)> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int64_t> chunks_{0}, done_{0};

  std::mutex m_;  // sleeping and waking
  std::condition_variable wake_cv_, done_cv_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false}, stop_{false};
  std::atomic<bool> failed_{false};  // a chunk of the job threw: error_ holds the first exception
  std::exception_ptr error_;         // guarded by m_
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() { return pool().threads(); }
void set_num_threads(int n) { pool().resize(n); }

ThreadLimit::ThreadLimit(int n) : prev_(t_limit) { t_limit = n > 0 ? n : 0; }
ThreadLimit::~ThreadLimit() { t_limit = prev_; }

namespace detail {
void run_chunks(int64_t chunks, void (*fn)(void*, int64_t), void* ctx) { pool().run(chunks, fn, ctx); }
}  // namespace detail

}  // namespace unet::kernels::cpu
