// The U-Net module: the paper's architecture numbers, tile sizes, and a forward/backward pass.
#include <catch2/catch.hpp>

#include "engine/ops.h"
#include "tests/grad_check.h"
#include "unet/model.h"

using namespace unet;
using namespace unet::test;

TEST_CASE("tile sizes: 572 -> 388 and the nearest valid sizes", "[model][tiles]") {
  CHECK(TileSizes::output_for_input(572, 4) == 388);
  CHECK(TileSizes::border(4) == 184);
  CHECK(TileSizes::output_for_input(573, 4) == -1);
  CHECK(TileSizes::input_for_output(388, 4) == 572);
  CHECK(TileSizes::input_for_output(1, 4) == 188);  // the smallest valid tile: 188 -> 4
  CHECK(TileSizes::output_for_input(188, 4) == 4);
  CHECK_THROWS_WITH(TileSizes::check_input(570, 4), Catch::Contains("nearest valid sizes: 556 (output 372) and 572 (output 388)"));
  CHECK_NOTHROW(TileSizes::check_input(572, 4));
}

TEST_CASE("model: the paper's configuration has 23 convolutions and 31,030,658 parameters", "[model]") {
  Rng rng(1);
  UNet net(UNetConfig{}, Device::CPU, rng);
  CHECK(net.conv_count() == 23);
  // Hand count: (1*9+1)*64 + (64*9+1)*64 + ... + 1x1 head 64*2+2 (see docs/checkpoints.md).
  CHECK(net.parameter_count() == 31030658);
  CHECK(net.parameters().front().name() == "down.0.conv1.weight");
  CHECK(net.parameters().back().name() == "head.bias");
}

TEST_CASE("model: forward gives the valid output size and gradients reach every parameter", "[model]") {
  Rng rng(2), drop(3);
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  cfg.in_channels = 2;  // phase contrast + DIC
  UNet net(cfg, Device::CPU, rng);
  int in = TileSizes::input_for_output(20, 2);
  int out = TileSizes::output_for_input(in, 2);
  Var logits = net.forward(Var(rnd({1, 2, in, in}, 4)), true, &drop);
  REQUIRE(logits.shape() == Shape{1, 2, out, out});
  Tensor labels = Tensor::zeros({1, out, out}, DType::I32);
  backward(ops::softmax_xent(logits, labels));
  for (const Var& p : net.parameters()) {
    INFO(p.name());
    CHECK(p.grad().defined());
  }
  CHECK_THROWS_WITH(net.forward(Var(rnd({1, 2, in + 1, in}, 5)), false), Catch::Contains("not valid"));
  CHECK_THROWS_WITH(net.forward(Var(rnd({1, 1, in, in}, 5)), false), Catch::Contains("[N, 2, H, W]"));
}
