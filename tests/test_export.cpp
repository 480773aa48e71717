// unet/export: half-precision rounding by hand and exported models that load like checkpoints.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
#include "unet/export.h"

using namespace unet;
namespace fs = std::filesystem;

TEST_CASE("float_to_half: known bit patterns, ties to even, range ends", "[export]") {
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);  // the largest half
  CHECK(float_to_half(70000.0f) == 0x7c00);  // overflow: inf
  CHECK(float_to_half(1.0f / 3.0f) == 0x3555);
  CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);                // the smallest subnormal
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);                // half of it: a tie, to even (0)
  CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);                // 1.5 ulp: a tie, to even (2)
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);         // tie between 0x3c00 and 0x3c01
  CHECK(float_to_half(1.0f + 3.0f * std::ldexp(1.0f, -11)) == 0x3c02);  // tie between 0x3c01 and 0x3c02
  CHECK(float_to_half(2047.5f) == 0x6800);  // 2047.5 rounds up to 2048: the carry enters the exponent
  // Every finite half survives the round trip bit for bit.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;  // inf / NaN
    REQUIRE(float_to_half(half_from_bits(static_cast<uint16_t>(h))) == h);
  }
}

TEST_CASE("export: an F16 model is half the size and loads as a checkpoint", "[export][checkpoint]") {
  unet::test::TempDir tmp;
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r1(1), r2(2);
  UNet a(cfg, Device::CPU, r1), b(cfg, Device::CPU, r2);
  SGD opt(a.parameters(), 0.1f);
  const std::string ck = (fs::path(tmp.dir) / "c.safetensors").string();
  const std::string f16 = (fs::path(tmp.dir) / "m16.safetensors").string();
  const std::string f32 = (fs::path(tmp.dir) / "m32.safetensors").string();
  TrainState s;
  s.iteration = 3;
  s.total_iterations = 10;
  s.extra["tile"] = "92";
  save_checkpoint(ck, a, &opt, s);
  const ExportReport r16 = export_model(ck, f16, true, {{"note.recipe", "test"}});
  const ExportReport r32 = export_model(ck, f32, false);
  CHECK(r16.parameters == a.parameter_count());
  CHECK(r16.bytes < 0.6 * r32.bytes);
  CHECK(r32.max_abs_error == 0.0);
  CHECK(r16.max_rel_error <= std::ldexp(1.0, -11));
  // Loads into a model (weights within half precision), keeps the training metadata, and holds no
  // optimizer state.
  const TrainState t = load_checkpoint(f16, b, nullptr);
  CHECK(t.iteration == 3);
  CHECK(t.extra.at("tile") == "92");
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    const std::vector<float> x = a.parameters()[i].value().to_vector(), y = b.parameters()[i].value().to_vector();
    for (size_t k = 0; k < x.size(); ++k) REQUIRE(y[k] == Approx(x[k]).epsilon(1e-3).margin(1e-7));
  }
  SGD opt_b(b.parameters(), 0.1f);
  CHECK_THROWS_WITH(load_checkpoint(f16, b, &opt_b), Catch::Contains("no optimizer state"));
  const std::string junk = (fs::path(tmp.dir) / "junk.safetensors").string();
  std::ofstream(junk) << "not a checkpoint";
  CHECK_THROWS_WITH(export_model(junk, f16, true), Catch::Contains(junk));
}
