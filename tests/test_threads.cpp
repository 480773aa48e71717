// Several threads in the engine at once: the CPU kernels' pool (kernels/cpu/parallel.h) shared by
// callers, per-caller thread limits, exceptions from chunks, and whole forward passes of one network
// on several threads at a time giving the bits a lone thread gives.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"
#include "unet/predict.h"
#include "unet/predictor.h"

using namespace unet;
namespace cpu = unet::kernels::cpu;

namespace {

// Restores the default pool size when a test is done with it.
struct PoolSize {
  explicit PoolSize(int n) { cpu::set_num_threads(n); }
  ~PoolSize() { cpu::set_num_threads(0); }
};

// A loop of `n` chunks of 1 item; counts which threads ran chunks and checks each ran once.
std::set<std::thread::id> threads_of_loop(int64_t n) {
  std::mutex m;
  std::set<std::thread::id> ids;
  std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
  cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) runs[static_cast<size_t>(i)]++;
    volatile double x = 0;  // a little work, so that the pool's threads take chunks too
    for (int k = 0; k < 20000; ++k) x = x + k;
    std::lock_guard<std::mutex> g(m);
    ids.insert(std::this_thread::get_id());
  });
  for (auto& r : runs) REQUIRE(r.load() == 1);
  return ids;
}

}  // namespace

TEST_CASE("thread pool: loops started by several threads at once all run every chunk once", "[threads]") {
  PoolSize size(3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int rep = 0; rep < 200; ++rep) {
        std::vector<int> hit(97 + t, 0);
        cpu::parallel_for(static_cast<int64_t>(hit.size()), 3, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hit[static_cast<size_t>(i)]++;
        });
        int64_t sum = 0;
        for (int h : hit) sum += h == 1;
        total += sum;
      }
    });
  for (auto& c : callers) c.join();
  CHECK(total.load() == 200 * (97 + 98 + 99 + 100));
}

TEST_CASE("thread pool: ThreadLimit bounds the threads of a caller's loops", "[threads]") {
  PoolSize size(4);
  {
    cpu::ThreadLimit one(1);
    const auto ids = threads_of_loop(64);
    CHECK(ids == std::set<std::thread::id>{std::this_thread::get_id()});
  }
  {
    cpu::ThreadLimit two(2);
    for (int rep = 0; rep < 20; ++rep) CHECK(threads_of_loop(64).size() <= 2);
    {
      cpu::ThreadLimit inner(1);  // nests, and restores the outer limit when it ends
      CHECK(threads_of_loop(64).size() == 1);
    }
    CHECK(threads_of_loop(64).size() <= 2);
  }
  // No limit: on a machine with more than one core the pool's threads join in (a busy machine may
  // leave them without a core for a loop, so several loops are tried).
  size_t most = 0;
  for (int rep = 0; rep < 50 && most < 2; ++rep) most = std::max(most, threads_of_loop(64).size());
  if (std::thread::hardware_concurrency() > 1) CHECK(most >= 2);
}

TEST_CASE("thread pool: an exception in a chunk reaches the thread that started the loop", "[threads]") {
  PoolSize size(3);
  for (int rep = 0; rep < 50; ++rep) {
    const int64_t bad = rep % 16;  // on whichever thread runs that chunk
    std::atomic<int> ran{0};
    CHECK_THROWS_AS(cpu::parallel_for(
                        16, 1,
                        [&](int64_t b, int64_t) {
      ++ran;
      if (b == bad) throw std::bad_alloc();
                        }),
                    std::bad_alloc);
    CHECK(ran.load() >= 1);
  }
  CHECK_THROWS_WITH(cpu::parallel_for(
                        8, 1,
                        [](int64_t b, int64_t) {
    if (b == 7) throw std::runtime_error("chunk 7");
                        }),
                    "chunk 7");
  // The pool still works afterwards, for any caller.
  std::vector<int> hit(100, 0);
  cpu::parallel_for(100, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hit[i]++;
  });
  for (int h : hit) CHECK(h == 1);
}

TEST_CASE("forward passes of one network on several threads at once equal a lone thread's, bit for bit", "[threads]") {
  PoolSize size(2);
  UNetConfig cfg;
  cfg.depth = 2;
  cfg.base = 8;
  Rng init(11);
  auto net = std::make_shared<const UNet>(cfg, Device::CPU, init);
  Image img(1, 150, 130);
  Rng r(5);
  for (float& v : img.data) v = r.uniform();
  // The reference: one thread, one predictor, the pool's default.
  const Predictor lone(net, PredictorOptions{});
  std::vector<float> ref(static_cast<size_t>(cfg.classes) * img.height * img.width);
  lone.probabilities(ImageView::of(img), ref.data());

  // Six threads over predictors of every thread setting, one of them shared by two threads.
  std::vector<std::unique_ptr<Predictor>> predictors;
  for (int threads : {0, 1, 2, 0, 1}) {
    PredictorOptions o;
    o.threads = threads;
    o.tile = 108;  // several tiles per image: many forward passes interleave
    predictors.push_back(std::make_unique<Predictor>(net, o));
  }
  std::vector<std::vector<float>> out(6, std::vector<float>(ref.size()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      const Predictor& p = t < 5 ? *predictors[t] : *predictors[0];
      for (int rep = 0; rep < 3; ++rep) p.probabilities(ImageView::of(img), out[t].data());
    });
  for (auto& t : threads) t.join();
  std::vector<float> tiled(ref.size());
  predictors[0]->probabilities(ImageView::of(img), tiled.data());
  for (size_t t = 0; t < 6; ++t) {
    INFO("thread " << t);
    CHECK(out[t] == tiled);  // the same tiling alone or among others: the same bits
  }
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(ref[i] - tiled[i])));
  CHECK(worst < 1e-5);  // other tiles: equal up to float rounding (tiling invariance)
}
