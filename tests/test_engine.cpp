// The engine below the ops: tensors, the Philox stream, autograd bookkeeping, SGD, He init,
// and the op table run on the CPU (every row writes every output, deterministically).
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>

#include "engine/backend.h"
#include "engine/block_cache.h"
#include "engine/graph.h"
#include "engine/op_timing.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "tests/grad_check.h"
#include "tests/op_table.h"

using namespace unet;
using namespace unet::test;

TEST_CASE("tensor: shapes, copies and errors", "[tensor]") {
  Tensor t = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t.numel() == 6);
  CHECK(t.nbytes() == 24);
  Tensor c = t.clone();
  c.f32()[0] = 42.0f;
  CHECK(t.f32()[0] == 1.0f);  // a clone owns its buffer
  Tensor r = t.reshape({3, 2});
  CHECK(r.raw() == t.raw());  // a reshape does not
  CHECK_THROWS_WITH(t.reshape({4, 2}), Catch::Contains("reshape [2,3] to [4,2]"));
  CHECK_THROWS_WITH(t.i32(), Catch::Contains("expected i32"));
  Tensor z = Tensor::zeros({5}, DType::I32);
  for (int i = 0; i < 5; ++i) CHECK(z.i32()[i] == 0);
  t.add_(Tensor::full({2, 3}, 1.0f));
  CHECK(t.to_vector() == std::vector<float>{2, 3, 4, 5, 6, 7});
  if (!cuda_available()) {
    CHECK_FALSE(cuda_available());
#if !defined(UNET_WITH_CUDA)
    CHECK_THROWS_WITH(t.to(Device::CUDA), Catch::Contains("no CUDA backend"));
#endif
  }
}

TEST_CASE("philox: Random123 known-answer vectors", "[rng][known]") {
  // philox4x32-10 test vectors from the Random123 distribution (kat_vectors).
  auto r = philox::philox4x32_10(0, 0, 0, 0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
  r = philox::philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, ~0ull);
  CHECK(r.v[0] == 0x408f276du);
  CHECK(r.v[1] == 0x41c83b0eu);
  CHECK(r.v[2] == 0xa20bc7c6u);
  CHECK(r.v[3] == 0x6d5451fdu);
  r = philox::philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0x299f31d0a4093822ull);
  CHECK(r.v[0] == 0xd16cfe09u);
  CHECK(r.v[1] == 0x94fdccebu);
  CHECK(r.v[2] == 0x5001e420u);
  CHECK(r.v[3] == 0x24126ea1u);
}

TEST_CASE("rng: reproducible from (seed, offset), distinct across seeds, sane moments", "[rng]") {
  Rng a(7), b(7), c(8);
  std::vector<float> va, vb, vc;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(a.normal());
    vb.push_back(b.normal());
    vc.push_back(c.normal());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  Rng resumed(7, 500 * 2);  // normal() takes two words
  CHECK(resumed.normal() == va[500]);
  double m = 0, s = 0;
  Rng big(9);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double x = big.normal();
    m += x;
    s += x * x;
  }
  m /= n;
  s = s / n - m * m;
  CHECK(std::abs(m) < 0.01);
  CHECK(std::abs(s - 1.0) < 0.02);
}

TEST_CASE("autograd: a tensor used twice receives the sum of both gradients", "[autograd]") {
  Var x = Var::parameter(rnd({1, 2, 4, 4}, 1), "x");
  Var y = ops::crop_concat(x, ops::relu(x));  // x feeds crop_concat directly and through relu
  backprop_with(y, Tensor::full(y.shape(), 1.0f));
  std::vector<float> xv = x.value().to_vector(), g = x.grad().to_vector();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(g[i] == 1.0f + (xv[i] > 0 ? 1.0f : 0.0f));
  CHECK(Tape::current().size() == 0);  // backward clears the tape
}

TEST_CASE("autograd: no-grad mode records nothing and needs no gradient", "[autograd]") {
  Var w = Var::parameter(rnd({2, 1, 3, 3}, 2), "w"), b = Var::parameter(rnd({2}, 3), "b");
  {
    NoGrad ng;
    Var y = ops::conv3x3(Var(rnd({1, 1, 5, 5}, 4)), w, b);
    CHECK_FALSE(y.requires_grad());
    CHECK(Tape::current().size() == 0);
  }
  Var y = ops::conv3x3(Var(rnd({1, 1, 5, 5}, 4)), w, b);
  CHECK(y.requires_grad());
  CHECK(Tape::current().size() == 1);
  Tape::current().clear();
}

TEST_CASE("autograd: backward needs a scalar that depends on a parameter", "[autograd][errors]") {
  Var y = ops::relu(Var(rnd({3}, 1)));
  CHECK_THROWS_WITH(backward(y), Catch::Contains("must be a scalar"));
  Var l = ops::softmax_xent(Var(rnd({1, 2, 1, 1}, 1)), Tensor::from_vector_i32({1, 1, 1}, {0}));
  CHECK_THROWS_WITH(backward(l), Catch::Contains("does not depend on any parameter"));
}

TEST_CASE("sgd: one step by hand, PyTorch's convention", "[sgd][known]") {
  Var w = Var::parameter(Tensor::from_vector({2}, {1.0f, -2.0f}), "w");
  SGD opt({w}, 0.1f, 0.9f, 0.01f);
  w.grad() = Tensor::from_vector({2}, {0.5f, 1.0f});
  opt.step();  // v = g + wd w = {0.51, 0.98}; w -= 0.1 v
  CHECK(w.value().to_vector()[0] == Approx(1.0f - 0.051f));
  CHECK(w.value().to_vector()[1] == Approx(-2.0f - 0.098f));
  opt.step();  // v = 0.9 v + g + wd w
  float v0 = 0.9f * 0.51f + 0.5f + 0.01f * (1.0f - 0.051f);
  CHECK(opt.momentum_buffers()[0].to_vector()[0] == Approx(v0));
  CHECK(w.value().to_vector()[0] == Approx(1.0f - 0.051f - 0.1f * v0));
  opt.zero_grad();
  CHECK_FALSE(w.grad().defined());
  CHECK_THROWS_WITH(SGD({w}, 0.1f, 1.0f), Catch::Contains("momentum"));
}

TEST_CASE("he_normal_: std = sqrt(2 / fan_in)", "[init]") {
  Tensor w = Tensor::empty({64, 64, 3, 3});
  Rng rng(3);
  he_normal_(w, 576, rng);
  std::vector<float> v = w.to_vector();
  double m = 0, s = 0;
  for (float x : v) {
    m += x;
    s += double(x) * x;
  }
  m /= v.size();
  double sd = std::sqrt(s / v.size() - m * m);
  CHECK(sd == Approx(std::sqrt(2.0 / 576)).epsilon(0.02));
}

TEST_CASE("op table: every CPU row writes every output, within its guards, deterministically", "[op_table]") {
  const Backend cpu = cpu_backend();
  for (const OpCase& row : op_cases({Size::tiny, Size::small})) {
    INFO(row.op << " " << row.title());
    Prepared p = prepare(row, cpu, 11);
    p.launch();
    const std::vector<Readback> a = p.read();
    p.reset();  // outputs poisoned again, in-place inputs restored: the second launch repeats the first
    p.launch();
    const std::vector<Readback> b = p.read();
    REQUIRE(!a.empty());
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      size_t nonfinite = 0;
      for (float v : a[i].values) nonfinite += !std::isfinite(v);  // outputs were poisoned with NaN
      CHECK(nonfinite == 0);
      CHECK(a[i].guard_overwritten == 0);
      CHECK(b[i].guard_overwritten == 0);
      CHECK(a[i].values == b[i].values);
    }
  }
}

namespace {
// A BlockCache over fake blocks: counts the mallocs and frees, refuses a malloc past `limit` bytes.
struct FakeDevice {
  std::map<void*, size_t> live;
  size_t bytes = 0, limit = size_t{1} << 40, waits = 0;
  uintptr_t next = 0x1000;
  BlockCache cache{[this](size_t n) -> void* {
                     if (bytes + n > limit) return nullptr;
                     void* p = reinterpret_cast<void*>(next);
                     next += n + 4096;
                     live[p] = n;
                     bytes += n;
                     return p;
                   },
                   [this](void* p) {
    bytes -= live.at(p);
    live.erase(p);
                   },
                   [this] { ++waits; }, false};
};
}  // namespace

TEST_CASE("block cache: size classes, reuse by class, and the private pools of CUDA graphs", "[allocator]") {
  CHECK(block_size_class(0) == 512);
  CHECK(block_size_class(513) == 1024);
  CHECK(block_size_class((size_t{1} << 20) + 1) == (size_t{1} << 20) + (size_t{1} << 18));  // a quarter of 1 MiB
  FakeDevice d;
  BlockCache& c = d.cache;
  void* a = c.allocate(1000);
  c.deallocate(a);
  CHECK(c.allocate(700) == a);  // same class, reused
  CHECK(c.mallocs() == 1);
  void* b = c.allocate(1000);
  c.deallocate(a);
  c.deallocate(b);  // shared free list: b, a

  // A pool takes its own free blocks first, then adopts shared free ones, then makes new ones.
  const int pool = c.new_pool();
  void* p = c.allocate(1000, pool);
  void* q = c.allocate(1000, pool);
  CHECK(std::set<void*>{p, q} == std::set<void*>{a, b});  // adopted
  void* r = c.allocate(1000, pool);
  CHECK(c.mallocs() == 3);
  c.deallocate(r);
  CHECK(c.allocate(1000, pool) == r);  // its own free block
  c.deallocate(p);
  // The pool's blocks never go back to the shared lists, freed or not.
  void* s1 = c.allocate(1000);
  CHECK(std::set<void*>{p, q, r}.count(s1) == 0);
  CHECK(c.mallocs() == 4);
  c.deallocate(s1);
  c.deallocate(q);
  c.deallocate(r);
  CHECK(c.bytes_in_use() == 0);

  // Giving back the shared cache leaves the pool's blocks alone.
  c.release_shared();
  CHECK(d.live.size() == 3);
  CHECK(d.live.count(p) + d.live.count(q) + d.live.count(r) == 3);

  // A released pool's blocks are shared again, also one still held when it was released; a second pool's
  // blocks stay its own meanwhile.
  const int second = c.new_pool();
  void* held = c.allocate(1000, pool);
  void* other = c.allocate(1000, second);  // nothing shared to adopt: new
  CHECK(c.mallocs() == 5);
  c.release_pool(pool);
  c.deallocate(held);
  void* v1 = c.allocate(1000);
  void* v2 = c.allocate(1000);
  void* v3 = c.allocate(1000);
  CHECK(std::set<void*>{v1, v2, v3} == std::set<void*>{p, q, r});
  c.deallocate(other);
  CHECK(c.allocate(1000, second) == other);
  CHECK(c.mallocs() == 5);
  c.deallocate(v1), c.deallocate(v2), c.deallocate(v3), c.deallocate(other);
  c.release_pool(second);

  // Out of memory: the shared cache is given back (after waiting for the device) and the malloc tried again;
  // when that fails too, the error says how much is reserved. A pool (a graph being captured) must not wait.
  d.limit = d.bytes + block_size_class(3000) - 1;  // fits once the four cached blocks are given back
  const int third = c.new_pool();
  REQUIRE_THROWS_WITH(c.allocate(3000, third), Catch::Contains("for a CUDA graph"));
  CHECK(d.waits == 0);
  void* big = c.allocate(3000);
  CHECK(d.waits == 1);
  CHECK(d.live.size() == 1);
  d.limit = d.bytes;  // nothing more
  REQUIRE_THROWS_WITH(c.allocate(3000), Catch::Contains("CUDA out of memory") && Catch::Contains("bytes reserved"));
  c.deallocate(big);
  REQUIRE_THROWS_WITH(c.deallocate(&d), Catch::Contains("did not hand out"));
}

// The host half of a replayed graph, on the CPU: the ops read the per-step values from memory as a replay's
// kernels do, and give the eager step's bits.
TEST_CASE("graph scalars: dropout offsets and optimizer updates read from memory give the eager bits", "[graph]") {
  Var x(Tensor::from_vector({1, 2, 3, 5}, random_values(30, 3)), true);
  auto bits = [](const Tensor& t) { return t.to_vector(); };
  // A captured step that began at offset 1000 passes its dropout offsets relative to that; a replay writes the
  // offset its own step begins at.
  for (uint64_t word : {uint64_t{1000}, uint64_t{1006}}) {
    INFO("step begins at " << word);
    Rng eager(7, word), captured(7, 1000);
    const Tensor ye = ops::dropout(x, 0.5f, eager).value();
    Capture cap;
    cap.device = Device::CPU;  // the scalars in host memory, as the CPU kernels read them
    cap.rng_base = &word;
    cap.rng = &captured;
    cap.host.rng_base = 1000;
    set_current_capture(&cap);
    Tensor yr;
    try {
      yr = ops::dropout(x, 0.5f, captured).value();
      Rng other(7, 1000);
      REQUIRE_THROWS_WITH(ops::dropout(x, 0.5f, other), Catch::Contains("from the Rng given to its graph"));
    } catch (...) {
      set_current_capture(nullptr);
      throw;
    }
    set_current_capture(nullptr);
    Tape::current().clear();
    CHECK(bits(yr) == bits(ye));
    CHECK(captured.offset() == 1030);
  }
  {  // a step captured for the GPU that runs dropout on the CPU is refused
    Capture gpu;
    Rng rng(7, 1000);
    gpu.rng = &rng;
    set_current_capture(&gpu);
    CHECK_THROWS_WITH(ops::dropout(x, 0.5f, rng), Catch::Contains("captured for the cuda runs it on the cpu"));
    set_current_capture(nullptr);
  }
  Rng r1(7, 1000), r2(7, 1006);
  CHECK(bits(ops::dropout(x, 0.5f, r1).value()) != bits(ops::dropout(x, 0.5f, r2).value()));
  Tape::current().clear();

  // The optimizers: a replay counts the step on the host (next()) and writes its scalars; the captured launch
  // carried other values.
  for (const char* kind : {"sgd", "nesterov", "adam"}) {
    INFO(kind);
    Var we = Var::parameter(Tensor::from_vector({5}, random_values(5, 11)), "w");
    Var wr = Var::parameter(we.value().clone(), "w");
    auto oe = make_optimizer(kind, {we}, 0.01f, 0.9f, 1e-3f), orp = make_optimizer(kind, {wr}, 0.01f, 0.9f, 1e-3f);
    kernels::OptimStep launch = orp->next();  // the captured step's update, scalars and all
    orp->set_steps(0);
    float scalars[2] = {-1.0f, -1.0f};
    Capture cap;
    cap.device = Device::CPU;
    cap.optim = scalars;
    for (int t = 1; t <= 3; ++t) {
      const Tensor g = Tensor::from_vector({5}, random_values(5, 20 + t));
      we.grad() = g.clone(), wr.grad() = g.clone();
      oe->set_lr(0.01f * t), orp->set_lr(0.01f * t);
      oe->step();
      const std::array<float, 2> v = Optimizer::scalars_of(orp->next());
      scalars[0] = v[0], scalars[1] = v[1];
      set_current_capture(&cap);
      orp->apply(launch);
      set_current_capture(nullptr);
    }
    CHECK(cap.optimizer_updates == 3);
    CHECK(oe->steps() == orp->steps());
    CHECK(bits(we.value()) == bits(wr.value()));
  }
}

TEST_CASE("op timing: each range once, its backward apart, nested ranges in the outer one", "[op_timing]") {
  start_op_timing(Device::CPU);
  CHECK_THROWS_WITH(start_op_timing(Device::CPU), Catch::Contains("on already"));
  Var x(Tensor::from_vector({1, 1, 4, 4}, random_values(16, 5)), true);
  Var y = ops::relu(x);
  backward(ops::softmax_xent(ops::conv1x1(y, Var(Tensor::from_vector({2, 1, 1, 1}, {1.0f, -1.0f})),
                                          Var(Tensor::from_vector({2}, {0.0f, 0.0f}))),
                             Tensor::from_vector_i32({1, 4, 4}, std::vector<int32_t>(16, 1)), Tensor()));
  {
    OpRange outer("outer");
    OpRange inner("inner");
  }
  const std::vector<OpTime> t = stop_op_timing();
  std::map<std::string, int64_t> calls;
  for (const OpTime& o : t) {
    calls[o.op] = o.calls;
    CHECK(o.ms >= 0.0);
  }
  CHECK(calls == std::map<std::string, int64_t>{{"relu", 1},
                                                {"relu backward", 1},
                                                {"conv1x1", 1},
                                                {"conv1x1 backward", 1},
                                                {"softmax_xent", 1},
                                                {"softmax_xent backward", 1},
                                                {"outer", 1}});
  for (size_t i = 1; i < t.size(); ++i) CHECK(t[i - 1].ms >= t[i].ms);
  CHECK_THROWS_WITH(stop_op_timing(), Catch::Contains("not on"));
}
