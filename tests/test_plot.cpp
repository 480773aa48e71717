// unet/plot: CSV columns and the run-comparison plot.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "engine/check.h"
#include "tests/temp_dir.h"
#include "unet/io.h"
#include "unet/plot.h"

using namespace unet;
namespace fs = std::filesystem;

TEST_CASE("plot: CSV columns by name, with errors naming the file", "[plot]") {
  unet::test::TempDir tmp;
  const std::string csv = (fs::path(tmp.dir) / "val.csv").string();
  std::ofstream(csv) << "iteration,loss,pixel_error\n100,0.5,0.2\n200,0.4,0.15\n";
  const auto pe = read_csv_column(csv, "pixel_error");
  REQUIRE(pe.size() == 2);
  CHECK(pe[1].first == 200.0);
  CHECK(pe[1].second == Approx(0.15));
  CHECK_THROWS_WITH(read_csv_column(csv, "rand"),
                    Catch::Contains(csv) && Catch::Contains("iteration,loss,pixel_error"));
  const std::string bad = (fs::path(tmp.dir) / "bad.csv").string();
  std::ofstream(bad) << "iteration,loss\n1,abc\n";
  CHECK_THROWS_WITH(read_csv_column(bad, "loss"), Catch::Contains("line 2"));
  CHECK_THROWS_WITH(read_csv_column((fs::path(tmp.dir) / "none.csv").string(), "loss"), Catch::Contains("cannot read"));
}

TEST_CASE("plot: each series is drawn in its own colour", "[plot]") {
  unet::test::TempDir tmp;
  const std::string png = (fs::path(tmp.dir) / "c.png").string();
  CurveSeries a{"falls", {}}, b{"flat", {}};
  for (int i = 1; i <= 100; ++i) {
    a.points.emplace_back(i, 1.0 / i);
    b.points.emplace_back(i, 0.4);
  }
  CurvesPlot o;
  o.title = "test";
  o.smooth = 5;
  write_curves_plot(png, {a, b}, o);
  const Image img = read_image(png);
  CHECK(img.channels == 3);
  CHECK(img.width == o.width);
  CHECK(img.height == o.height);
  auto count = [&](float r, float g, float bl) {
    int n = 0;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x) n += img.at(0, y, x) == r && img.at(1, y, x) == g && img.at(2, y, x) == bl;
    return n;
  };
  CHECK(count(0, 114, 178) > 100);  // the first palette colour: the falling series and its legend
  CHECK(count(213, 94, 0) > 100);   // the second
  CHECK_THROWS_WITH(write_curves_plot(png, {}, o), Catch::Contains("no series"));
  CHECK_THROWS_WITH(write_curves_plot(png, {CurveSeries{"empty", {}}}, o), Catch::Contains("\"empty\""));
}
