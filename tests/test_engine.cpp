// The engine below the ops: tensors, the Philox stream, autograd bookkeeping, SGD, He init,
// and the op table run on the CPU (every row writes every output, deterministically).
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/backend.h"
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
