// unet/diagnose: weight change from the initial weights and dead channels, on hand-set networks.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/check.h"
#include "unet/diagnose.h"

using namespace unet;

namespace {
UNetConfig tiny() {
  UNetConfig c;
  c.base = 2;
  c.depth = 1;
  c.dropout = 0.0f;
  return c;
}
}  // namespace

TEST_CASE("diagnose: relative weight change by hand", "[diagnose]") {
  Rng r1(5), r2(5);
  UNet a(tiny(), Device::CPU, r1), b(tiny(), Device::CPU, r2);
  for (const LayerWeights& w : weight_change(a, b)) CHECK(w.rel_change == 0.0);
  // Doubling one tensor moves it by exactly its own norm: relative change 1.
  Tensor& w = a.parameters()[0].value();
  std::vector<float> v = w.to_vector();
  for (float& x : v) x *= 2.0f;
  w.copy_from(Tensor::from_vector(w.shape(), v));
  const std::vector<LayerWeights> ch = weight_change(a, b);
  REQUIRE(ch.front().name == "down.0.conv1.weight");
  CHECK(ch.front().rel_change == Approx(1.0));
  CHECK(ch.front().rms == Approx(2.0 * ch.front().rms_init));
  CHECK(ch[1].rel_change == 0.0);
  for (const LayerWeights& l : ch) CHECK(l.name.find("bias") == std::string::npos);
  UNetConfig other = tiny();
  other.base = 4;
  Rng r3(1);
  UNet c(other, Device::CPU, r3);
  CHECK_THROWS_AS(weight_change(a, c), Error);
}

TEST_CASE("diagnose: every map is seen, a killed layer shows all channels dead", "[diagnose]") {
  Rng r(3);
  UNet net(tiny(), Device::CPU, r);
  Image img(1, 64, 64);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  std::vector<LayerActivity> s = activation_stats(net, img);
  std::vector<std::string> names;
  for (const LayerActivity& l : s) names.push_back(l.name);
  CHECK(names == std::vector<std::string>{"down.0.conv1", "down.0.conv2", "bottom.conv1", "bottom.conv2", "up.0.upconv",
                                          "up.0.conv1", "up.0.conv2"});
  // A bias of -100 on the bottleneck's first convolution kills every one of its channels.
  for (const Var& p : net.parameters())
    if (p.name() == "bottom.conv1.bias") p.value().copy_from(Tensor::full(p.shape(), -100.0f));
  s = activation_stats(net, img);
  CHECK(s[2].dead_channels == s[2].channels);
  CHECK(s[2].zero_fraction == 1.0);
  CHECK(s[2].rms == 0.0);
  CHECK(s[0].dead_channels < s[0].channels);
  CHECK_THROWS_WITH(activation_stats(net, img, 63), Catch::Contains("inspect tile"));
}
