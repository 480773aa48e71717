// unet/model_zoo: short model names resolve to files, with clear errors otherwise.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "tests/temp_dir.h"
#include "unet/model_zoo.h"

using namespace unet;
namespace fs = std::filesystem;

TEST_CASE("model zoo: paths pass through, short names search the model folders", "[zoo]") {
  unet::test::TempDir tmp;
  const fs::path file = fs::path(tmp.dir) / "mine.safetensors";
  std::ofstream(file) << "x";
  CHECK(resolve_model(file.string()) == file.string());

  REQUIRE(!shipped_models().empty());
  const ShippedModel& m = shipped_models().front();
  CHECK(m.name == "isbi2012");
  std::ofstream(fs::path(tmp.dir) / m.file) << "x";
  ::setenv("UNET_MODELS_DIR", tmp.dir.c_str(), 1);
  CHECK(model_search_path().front() == tmp.dir.string());
  CHECK(resolve_model("isbi2012") == (fs::path(tmp.dir) / m.file).string());
  REQUIRE(shipped_models().size() == 2);  // and the held-out variant, by its own name and file
  const ShippedModel& h = shipped_models()[1];
  CHECK(h.name == "isbi2012-heldout");
  std::ofstream(fs::path(tmp.dir) / h.file) << "x";
  CHECK(resolve_model("isbi2012-heldout") == (fs::path(tmp.dir) / h.file).string());
  ::unsetenv("UNET_MODELS_DIR");

  CHECK_THROWS_WITH(resolve_model("isbi2013"), Catch::Contains("\"isbi2013\"") && Catch::Contains("isbi2012"));
  CHECK_THROWS_WITH(resolve_model((fs::path(tmp.dir) / "missing.safetensors").string()),
                    Catch::Contains("no such file"));
}
