// Optimizers (engine/optim.h) against hand-computed steps, their checkpoints, and the learning-rate
// schedules (unet/schedule.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/optim.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
#include "unet/schedule.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {
Var param(std::vector<float> v) {
  return Var::parameter(Tensor::from_vector({static_cast<int64_t>(v.size())}, v), "w");
}
float at(const Tensor& t, int i) { return t.to_vector()[static_cast<size_t>(i)]; }
}  // namespace

TEST_CASE("nesterov: two steps by hand, torch.optim.SGD(nesterov=True)", "[optim][known]") {
  Var w = param({1.0f, -2.0f});
  SGD opt({w}, 0.1f, 0.9f, 0.01f, true);
  CHECK(std::string(opt.kind()) == "nesterov");
  w.grad() = Tensor::from_vector({2}, {0.5f, 1.0f});
  // g' = g + 0.01 w = {0.51, 0.98} = v;  w -= 0.1 (g' + 0.9 v) = 0.1 {0.969, 1.862}
  opt.step();
  CHECK(at(w.value(), 0) == Approx(0.9031));
  CHECK(at(w.value(), 1) == Approx(-2.1862));
  // g' = {0.5 + 0.009031, 1 - 0.021862}; v = 0.9 {0.51, 0.98} + g' = {0.968031, 1.860138};
  // w -= 0.1 (g' + 0.9 v)
  opt.step();
  CHECK(at(opt.momentum_buffers()[0], 0) == Approx(0.968031));
  CHECK(at(opt.momentum_buffers()[0], 1) == Approx(1.860138));
  CHECK(at(w.value(), 0) == Approx(0.76507411));
  CHECK(at(w.value(), 1) == Approx(-2.45142622));
  CHECK(opt.steps() == 2);
}

TEST_CASE("adam: two steps by hand, torch.optim.Adam", "[optim][known]") {
  Var w = param({1.0f, -2.0f});
  Adam opt({w}, 0.1f);  // betas 0.9, 0.999, eps 1e-8
  // Step 1: m = 0.1 g, s = 0.001 g^2; the bias corrections make the step lr * sign(g).
  w.grad() = Tensor::from_vector({2}, {0.5f, 1.0f});
  opt.step();
  CHECK(at(w.value(), 0) == Approx(0.9));
  CHECK(at(w.value(), 1) == Approx(-2.1));
  // Step 2 with g = {-0.5, 2}: m = {-0.005, 0.29}, s = {4.9975e-4, 4.999e-3};
  // w -= 0.1 (m / 0.19) / (sqrt(s / 0.001999) + 1e-8)
  w.grad() = Tensor::from_vector({2}, {-0.5f, 2.0f});
  opt.step();
  const std::vector<Optimizer::Buffers> st = opt.state();
  REQUIRE(st.size() == 2);
  CHECK(st[0].name == "exp_avg");
  CHECK(at((*st[0].tensors)[0], 0) == Approx(-0.005));
  CHECK(at((*st[0].tensors)[0], 1) == Approx(0.29));
  // (1 - 0.999f) is 0.00099998713 in float: a relative 1e-5 off the decimal figures
  CHECK(at((*st[1].tensors)[0], 0) == Approx(4.9975e-4).epsilon(1e-4));
  CHECK(at((*st[1].tensors)[0], 1) == Approx(4.999e-3).epsilon(1e-4));
  CHECK(at(w.value(), 0) == Approx(0.90526316));
  CHECK(at(w.value(), 1) == Approx(-2.19651820));
  // Weight decay is L2 on the gradient: g' = g + wd w.
  Var u = param({2.0f});
  Adam wd({u}, 0.1f, 0.5f, 0.75f, 1e-8f, 0.25f);
  u.grad() = Tensor::from_vector({1}, {-1.0f});  // g' = -1 + 0.5 = -0.5: the first step is +lr
  wd.step();
  CHECK(at(u.value(), 0) == Approx(2.1));
  CHECK(at((*wd.state()[0].tensors)[0], 0) == Approx(-0.25));   // (1 - 0.5) g'
  CHECK(at((*wd.state()[1].tensors)[0], 0) == Approx(0.0625));  // (1 - 0.75) g'^2
}

TEST_CASE("optimizers: bad settings are rejected with the value", "[optim][errors]") {
  Var w = param({1.0f});
  CHECK_THROWS_WITH(make_optimizer("rmsprop", {w}, 0.1f, 0.9f, 0.0f), Catch::Contains("\"rmsprop\""));
  CHECK_THROWS_WITH(Adam({w}, 0.1f, 1.0f), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(Adam({w}, -0.1f), Catch::Contains("learning rate"));
  CHECK_THROWS_WITH(SGD({w}, 0.1f, 0.9f, -1.0f), Catch::Contains("weight decay"));
  // The list update runs every tensor's update at once: a tensor listed twice would race with itself.
  CHECK_THROWS_WITH(SGD({w, param({2.0f}), w}, 0.1f), Catch::Contains("listed twice"));
  CHECK(std::string(make_optimizer("adam", {w}, 0.1f, 0.9f, 0.0f)->kind()) == "adam");
  CHECK(std::string(make_optimizer("sgd", {w}, 0.1f, 0.9f, 0.0f)->kind()) == "sgd");
}

TEST_CASE("checkpoint: Adam state round trip, and resuming with another optimizer is refused", "[optim][checkpoint]") {
  unet::test::TempDir tmp;
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r1(1), r2(2);
  UNet a(cfg, Device::CPU, r1), b(cfg, Device::CPU, r2);
  Adam oa(a.parameters(), 0.01f), ob(b.parameters(), 0.01f);
  for (const Var& p : a.parameters()) p.grad() = Tensor::full(p.shape(), 0.3f);
  oa.step();
  oa.step();
  const std::string path = (fs::path(tmp.dir) / "adam.safetensors").string();
  TrainState s;
  s.iteration = 2;
  s.total_iterations = 5;
  save_checkpoint(path, a, &oa, s);
  load_checkpoint(path, b, &ob);
  CHECK(ob.steps() == 2);
  auto sa = oa.state(), sb = ob.state();
  for (size_t k = 0; k < sa.size(); ++k)
    for (size_t i = 0; i < sa[k].tensors->size(); ++i) {
      const Tensor &x = (*sa[k].tensors)[i], &y = (*sb[k].tensors)[i];
      REQUIRE(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0);
    }
  SGD sgd(b.parameters(), 0.01f);
  CHECK_THROWS_WITH(load_checkpoint(path, b, &sgd), Catch::Contains("--optimizer adam") && Catch::Contains(path));
}

TEST_CASE("lr schedules: step, poly and warm-up by hand", "[schedule]") {
  LrSchedule s;
  s.lr = 0.01f;
  CHECK(lr_at(s, 0) == Approx(0.01));
  CHECK(lr_at(s, 100000) == Approx(0.01));
  s.step = 100;
  s.gamma = 0.5f;
  CHECK(lr_at(s, 99) == Approx(0.01));
  CHECK(lr_at(s, 100) == Approx(0.005));
  CHECK(lr_at(s, 250) == Approx(0.0025));
  LrSchedule p;
  p.lr = 0.01f;
  p.poly_power = 0.9f;
  p.total = 1000;
  check_schedule(p);
  CHECK(lr_at(p, 0) == Approx(0.01));
  CHECK(lr_at(p, 500) == Approx(0.01 * std::pow(0.5, 0.9)));
  CHECK(lr_at(p, 1000) == 0.0f);
  p.warmup = 10;
  CHECK(lr_at(p, 0) == Approx(0.001));  // 1/10 of the poly value at 0
  CHECK(lr_at(p, 4) == Approx(0.01 * std::pow(0.996, 0.9) * 0.5));
  CHECK(lr_at(p, 10) == Approx(0.01 * std::pow(0.99, 0.9)));
  CHECK(describe(p) == "poly power 0.9 over 1000, warm-up 10");
  LrSchedule both = p;
  both.step = 10;
  CHECK_THROWS_WITH(check_schedule(both), Catch::Contains("--lr-poly"));
  LrSchedule neg;
  neg.warmup = -1;
  CHECK_THROWS_WITH(check_schedule(neg), Catch::Contains("--warmup"));
}
