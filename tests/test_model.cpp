// The U-Net module: the paper's architecture numbers, tile sizes, flops, a forward/backward pass,
// and a network built to load a checkpoint into.
#include <catch2/catch.hpp>

#include "engine/ops.h"
#include "tests/grad_check.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
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
  CHECK_THROWS_WITH(TileSizes::check_input(570, 4),
                    Catch::Contains("nearest valid sizes: 556 (output 372) and 572 (output 388)"));
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

TEST_CASE("model: forward_flops counts the paper's network at 572 as 300.9 GFLOP", "[model][flops]") {
  CHECK(forward_flops(UNetConfig{}, 572, 572) == Approx(300.856848896e9).epsilon(1e-12));
  UNetConfig b16;
  b16.base = 16;
  CHECK(forward_flops(b16, 316, 316) == Approx(3.792178304e9).epsilon(1e-12));
}

TEST_CASE("model: a network built for loading takes a checkpoint's weights exactly", "[model][checkpoint]") {
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng rng(5);
  UNet trained(cfg, Device::CPU, rng);
  TempDir tmp;
  save_checkpoint(tmp / "c.safetensors", trained, nullptr, TrainState{});
  UNet loaded(cfg, Device::CPU);  // no initialisation
  REQUIRE(loaded.parameters().size() == trained.parameters().size());
  for (size_t i = 0; i < loaded.parameters().size(); ++i) {
    CHECK(loaded.parameters()[i].name() == trained.parameters()[i].name());
    CHECK(loaded.parameters()[i].shape() == trained.parameters()[i].shape());
  }
  load_checkpoint(tmp / "c.safetensors", loaded, nullptr);
  const int in = TileSizes::input_for_output(12, 2);
  Tensor x = rnd({1, 1, in, in}, 6);
  NoGrad no_grad;
  CHECK(loaded.forward(Var(x), false).value().to_vector() == trained.forward(Var(x), false).value().to_vector());
}
