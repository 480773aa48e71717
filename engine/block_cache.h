// The caching allocator's bookkeeping, kept apart from the device calls (engine/backend_cuda.cu gives it
// cudaMalloc and cudaFree) so that it is tested on a machine without a GPU (tests/test_engine.cpp).
//
// Size classes: up to 1 MiB, multiples of 512 B; above, four classes per power of two (a size is rounded up to
// a multiple of a quarter of the largest power of two not above it: at most 25% is wasted). A freed block goes
// back to the free list of its class and is reused only for a request of that class, so the same sequence of
// tensor sizes (a training step) finds every block it needs in the free lists from its second iteration on.
//
// Private pools, for CUDA graphs: an allocation for a pool takes a free block of that pool, else adopts a free
// block of the shared lists, else makes a new one; and every block a pool has taken belongs to it for good:
// freed, it returns to the pool, never to the shared lists. A captured graph bakes in the addresses it was
// given, and replays write them again: nothing outside the graph may hold one of them between replays.
// Adopting shared blocks (free, so no tensor holds them, and only touched by work queued before) lets a graph
// captured after an eager step reuse that step's memory instead of doubling it. When the graph is destroyed,
// its pool is released: its free blocks join the shared lists, and its blocks still held join them when freed.
// Not thread-safe: the caller holds a lock.
#pragma once
#include <cstddef>
#include <functional>
#include <unordered_map>
#include <vector>

#include "engine/check.h"

namespace unet {

inline size_t block_size_class(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  if (bytes == 0) bytes = 1;
  if (bytes <= kLarge) return (bytes + kSmall - 1) / kSmall * kSmall;
  size_t pow2 = kLarge;
  while (pow2 <= bytes / 2) pow2 *= 2;  // largest power of two <= bytes
  const size_t step = pow2 / 4;
  return (bytes + step - 1) / step * step;
}

class BlockCache {
 public:
  using Malloc = std::function<void*(size_t)>;  // a new block of exactly that many bytes; nullptr when out of memory
  using Free = std::function<void(void*)>;
  using Wait = std::function<void()>;  // until the device is done with every block
  // exact: no caching and no size classes (every block is its own Malloc, Freed when freed).
  BlockCache(Malloc m, Free f, Wait w, bool exact)
      : malloc_(std::move(m)), free_(std::move(f)), wait_(std::move(w)), exact_(exact) {}

  // From the shared lists (pool 0) or for private pool `pool` (new_pool()).
  void* allocate(size_t bytes, int pool = 0) {
    const size_t cls = exact_ ? (bytes > 0 ? bytes : 1) : block_size_class(bytes);
    void* p = exact_ ? nullptr : take(pool ? pools_.at(pool) : shared_, cls);
    if (p == nullptr && pool != 0 && !exact_) p = take(shared_, cls);  // adopted
    if (p == nullptr) {
      p = malloc_(cls);
      // Out of memory: give the shared cache back, then try once more; not for a pool, whose graph is being
      // captured (no waiting for the device then, and the shared blocks of its class were adopted already).
      if (p == nullptr && pool == 0) {
        wait_();
        release_shared();
        p = malloc_(cls);
      }
      if (p == nullptr)
        UNET_FAIL_AS(OutOfMemory, "CUDA out of memory: cudaMalloc of ", cls, " bytes failed",
                     pool ? " (for a CUDA graph)" : "", "; ", reserved_, " bytes reserved, ", in_use_, " in use");
      reserved_ += cls;
      ++mallocs_;
    }
    live_[p] = Block{cls, pool};
    in_use_ += cls;
    if (in_use_ > peak_) peak_ = in_use_;
    return p;
  }

  void deallocate(void* p) {
    if (p == nullptr) return;
    auto it = live_.find(p);
    UNET_CHECK(it != live_.end(), "CUDA allocator: freeing a pointer it did not hand out");
    const Block b = it->second;
    live_.erase(it);
    in_use_ -= b.cls;
    if (exact_) {
      free_(p);
      reserved_ -= b.cls;
      return;
    }
    auto pool = pools_.find(b.pool);
    (pool != pools_.end() ? pool->second : shared_)[b.cls].push_back(p);
  }

  // A new private pool's id (> 0).
  int new_pool() {
    pools_[++last_pool_];
    return last_pool_;
  }
  void release_pool(int id) {
    auto pool = pools_.find(id);
    if (pool == pools_.end()) return;
    for (auto& [cls, blocks] : pool->second) shared_[cls].insert(shared_[cls].end(), blocks.begin(), blocks.end());
    pools_.erase(pool);
  }

  // Frees the shared free blocks (after the caller waited for the device); private pools keep theirs.
  void release_shared() {
    for (auto& [cls, blocks] : shared_) {
      for (void* p : blocks) {
        free_(p);
        reserved_ -= cls;
      }
      blocks.clear();
    }
  }

  size_t mallocs() const { return mallocs_; }
  size_t bytes_reserved() const { return reserved_; }
  size_t bytes_in_use() const { return in_use_; }
  size_t peak_bytes_in_use() const { return peak_; }
  bool exact() const { return exact_; }

 private:
  using FreeLists = std::unordered_map<size_t, std::vector<void*>>;  // size class -> free blocks
  static void* take(FreeLists& lists, size_t cls) {
    auto it = lists.find(cls);
    if (it == lists.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  struct Block {
    size_t cls;
    int pool;  // 0: shared
  };
  Malloc malloc_;
  Free free_;
  Wait wait_;
  bool exact_;
  FreeLists shared_;
  std::unordered_map<int, FreeLists> pools_;
  std::unordered_map<void*, Block> live_;
  int last_pool_ = 0;
  size_t mallocs_ = 0, reserved_ = 0, in_use_ = 0, peak_ = 0;
};

}  // namespace unet
