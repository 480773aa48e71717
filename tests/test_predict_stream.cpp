// Streamed prediction (predict_bands, predict_to_files), compact raw images and the streaming
// writers (TIFF pages, PNG, npy): the same values as the whole-image path, files that read back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/rng.h"
#include "tests/op_table.h"
#include "tests/temp_dir.h"
#include "unet/io.h"
#include "unet/io_stream.h"
#include "unet/predict.h"
#include "unet/train.h"

namespace fs = std::filesystem;
using namespace unet;
using namespace unet::test;

namespace {

UNet tiny_net(uint64_t seed, int in_channels = 1, int classes = 2) {
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  cfg.in_channels = in_channels;
  cfg.classes = classes;
  Rng r(seed);
  return UNet(cfg, Device::CPU, r);
}

// A raw 8-bit image with smooth structure and noise (so argmax and overlay are not constant).
RawImage raw8(int c, int h, int w, uint64_t seed) {
  Image img(c, h, w);
  Rng r(seed);
  for (int k = 0; k < c; ++k)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        img.at(k, y, x) = std::round(std::clamp(
            127.5f + 90.0f * std::sin(0.21f * x + 0.13f * y + k) + 30.0f * (r.uniform() - 0.5f), 0.0f, 255.0f));
  return compact_raw(img, ImageInfo{8, false, 1});
}

// The bands of predict_bands assembled into one map, checking their order and heights.
Image assemble(const UNet& net, const RawImage& img, const PredictOptions& opt) {
  const TileGrid g = tile_grid(net.config(), opt, img.height, img.width);
  Image out(net.config().classes, img.height, img.width, -1.0f);
  int next = 0, calls = 0;
  predict_bands(net, img, opt, [&](int y0, const Image& band) {
    REQUIRE(y0 == next);
    REQUIRE(band.channels == out.channels);
    REQUIRE(band.width == img.width);
    REQUIRE(band.height == g.band_rows(calls, img.height));
    for (int k = 0; k < band.channels; ++k) std::copy(band.plane(k), band.plane(k) + band.pixels(), &out.at(k, y0, 0));
    next += band.height;
    ++calls;
  });
  REQUIRE(next == img.height);
  REQUIRE(calls == g.rows);
  return out;
}

Image plane_of(const Image& img, int c) {
  Image p(1, img.height, img.width);
  std::copy(img.plane(c), img.plane(c) + img.pixels(), p.data.begin());
  return p;
}

}  // namespace

TEST_CASE("predict stream: bands equal predict_probabilities on odd sizes, with batches and TTA",
          "[predict][stream][slow]") {
  UNet net = tiny_net(11);
  for (auto [h, w] : {std::pair{53, 41}, std::pair{9, 14}, std::pair{70, 29}}) {
    RawImage raw = raw8(1, h, w, 100 + h);
    const Image img01 = normalise_intensity(raw);
    for (bool tta : {false, true})
      for (int batch : {1, 3, 7}) {
        INFO(h << "x" << w << ", batch " << batch << (tta ? ", TTA" : ""));
        PredictOptions opt;
        opt.tile = TileSizes::input_for_output(8, 2);  // several bands and columns
        opt.batch = batch;
        opt.tta = tta;
        int last_done = 0, last_total = 0;
        opt.progress = [&](int d, int t) {
          CHECK(d > last_done);
          last_done = d;
          last_total = t;
        };
        const Image ref = predict_probabilities(net, img01, opt);
        const TileGrid g = tile_grid(net.config(), opt, h, w);
        CHECK(last_done == g.count());
        CHECK(last_total == g.count());
        opt.progress = nullptr;
        const Image streamed = assemble(net, raw, opt);
        CHECK(rel_error(streamed.data, ref.data) < 1e-6);
        // And with the normalised float image as the input.
        Image from_float(ref.channels, h, w);
        predict_bands(net, img01, opt, [&](int y0, const Image& band) {
          for (int k = 0; k < band.channels; ++k)
            std::copy(band.plane(k), band.plane(k) + band.pixels(), &from_float.at(k, y0, 0));
        });
        CHECK(rel_error(from_float.data, ref.data) < 1e-6);
      }
  }
}

TEST_CASE("predict stream: an 8-bit and a 16-bit version of one image give the same map", "[predict][stream]") {
  UNet net = tiny_net(12);
  RawImage a = raw8(1, 37, 45, 5);
  Image wide = expand_raw(a);
  for (float& v : wide.data) v *= 257.0f;  // 0..255 -> 0..65535, the same intensities
  RawImage b = compact_raw(wide, ImageInfo{16, false, 1});
  CHECK(b.bytes() == 2 * a.bytes());
  PredictOptions opt;
  opt.tile = TileSizes::input_for_output(12, 2);
  opt.batch = 2;
  CHECK(rel_error(assemble(net, b, opt).data, assemble(net, a, opt).data) < 1e-6);
  // And the float form of the same intensities.
  Image f = normalise_intensity(a);
  RawImage c = compact_raw(f, ImageInfo{32, true, 1});
  CHECK(rel_error(assemble(net, c, opt).data, assemble(net, a, opt).data) < 1e-6);
}

TEST_CASE("raw images: compact reading equals read_image / read_stack and normalises identically", "[io][raw]") {
  TempDir dir;
  RawImage rgb = raw8(3, 19, 23, 7);
  Image rgbf = expand_raw(rgb);
  write_png(dir / "rgb.png", rgbf);
  Image g16(1, 17, 13);
  for (size_t i = 0; i < g16.data.size(); ++i) g16.data[i] = static_cast<float>((i * 2971) % 65536);
  write_png16(dir / "g16.png", g16);
  Image fl(1, 11, 9);
  for (size_t i = 0; i < fl.data.size(); ++i) fl.data[i] = 0.01f * static_cast<float>(i) - 0.3f;
  write_tiff_stack(dir / "stack.tif", {fl, fl, fl}, TiffSample::F32);
  write_tiff_u16(dir / "u16pages.tif", stack_channels({g16, g16}));
  write_npy(dir / "a.npy", fl);
  for (const char* name : {"rgb.png", "g16.png", "stack.tif", "u16pages.tif", "a.npy"}) {
    INFO(name);
    ImageInfo i1, i2;
    std::vector<Image> ref = read_stack(dir / name, &i1);
    std::vector<RawImage> raw = read_stack_raw(dir / name, &i2);
    CHECK(i1.bits == i2.bits);
    CHECK(i1.is_float == i2.is_float);
    CHECK(i1.pages == i2.pages);
    REQUIRE(ref.size() == raw.size());
    for (size_t s = 0; s < ref.size(); ++s) {
      CHECK(raw[s].bytes() == ref[s].data.size() * (i1.is_float ? 4 : i1.bits / 8));
      CHECK(expand_raw(raw[s]).data == ref[s].data);
      CHECK(normalise_intensity(raw[s]).data == normalise_intensity(ref[s], i1).data);  // bit for bit
    }
    ImageInfo i3;
    CHECK(expand_raw(read_image_raw(dir / name, &i3)).data == read_image(dir / name).data);
  }
  CHECK_THROWS_WITH(compact_raw(Image(1, 2, 2, 256.0f), ImageInfo{8, false, 1}), Catch::Contains("256"));
}

TEST_CASE("streaming TIFF: pages written band by band read back equal, in any band sizes", "[io][stream]") {
  TempDir dir;
  Image map(3, 41, 29);
  for (size_t i = 0; i < map.data.size(); ++i) map.data[i] = std::sin(0.37f * static_cast<float>(i));
  for (int rps : {0, 1, 8, 16, 41}) {
    for (int band : {5, 8, 41}) {
      INFO("rows per strip " << rps << ", bands of " << band);
      const std::string path = dir / "p.tif";
      {
        TiffFloatPagesWriter w(path, map.channels, map.height, map.width, rps);
        for (int y0 = 0; y0 < map.height; y0 += band) {
          const int rows = std::min(band, map.height - y0);
          Image b(map.channels, rows, map.width);
          for (int k = 0; k < map.channels; ++k)
            std::copy(&map.at(k, y0, 0), &map.at(k, y0, 0) + static_cast<size_t>(rows) * map.width, b.plane(k));
          w.write_rows(y0, b);
        }
        w.finish();
      }
      ImageInfo info;
      std::vector<Image> pages = read_stack(path, &info);
      CHECK(info.is_float);
      CHECK(info.pages == 3);
      REQUIRE(pages.size() == 3);
      CHECK(stack_channels(pages).data == map.data);
      CHECK(read_image(path).data == plane_of(map, 0).data);
    }
  }
  CHECK(dir.temp_leftovers().empty());
}

TEST_CASE("streaming writers: unfinished or misused writers leave no file", "[io][stream][errors]") {
  TempDir dir;
  const std::string tif = dir / "x.tif", png = dir / "x.png", npy = dir / "x.npy";
  {
    TiffFloatPagesWriter t(tif, 2, 10, 4);
    PngStreamWriter p(png, 4, 10, 1);
    NpyStreamWriter n(npy, 2, 10, 4);
    Image band(2, 5, 4, 0.5f);
    std::vector<uint8_t> rows(20, 7);
    t.write_rows(0, band);
    p.write_rows(0, rows.data(), 5);
    n.write_rows(0, band);
    CHECK_THROWS_WITH(t.write_rows(0, band), Catch::Contains("in order"));
    CHECK_THROWS_WITH(t.finish(), Catch::Contains("only 5 of 10 rows"));
    CHECK_THROWS_WITH(p.finish(), Catch::Contains("only 5 of 10 rows"));
    CHECK_THROWS_WITH(n.write_rows(5, Image(2, 6, 4)), Catch::Contains("past"));
  }  // destroyed unfinished
  CHECK(!fs::exists(tif));
  CHECK(!fs::exists(png));
  CHECK(!fs::exists(npy));
  CHECK(dir.temp_leftovers().empty());
  // An existing file is left untouched by an unfinished writer.
  write_png(png, Image(1, 2, 2, 9.0f));
  { PngStreamWriter p(png, 4, 10, 1); }
  CHECK(read_image(png).data == Image(1, 2, 2, 9.0f).data);
}

TEST_CASE("streaming PNG: decodes to the pixels given, for 1 to 4 channels and long runs", "[io][stream][png]") {
  TempDir dir;
  Rng r(9);
  for (int c = 1; c <= 4; ++c)
    for (auto [h, w] : {std::pair{1, 1}, std::pair{37, 53}, std::pair{300, 260}}) {
      INFO(c << " channel(s), " << w << "x" << h);
      Image img(c, h, w);
      for (int k = 0; k < c; ++k)
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            // Runs (flat regions), gradients and noise, to exercise literals, short and long matches.
            float v = (x / 40 + y / 30) % 2 ? 255.0f : 0.0f;
            if (y % 7 == 3) v = static_cast<float>((x * 3 + k * 50) % 256);
            if (x % 11 == 5) v = std::floor(r.uniform() * 256.0f);
            img.at(k, y, x) = std::min(v, 255.0f);
          }
      std::vector<uint8_t> inter(static_cast<size_t>(c) * h * w);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int k = 0; k < c; ++k)
            inter[(static_cast<size_t>(y) * w + x) * c + k] = static_cast<uint8_t>(img.at(k, y, x));
      const std::string path = dir / "s.png";
      PngStreamWriter p(path, w, h, c);
      for (int y0 = 0; y0 < h; y0 += 13) {
        const int rows = std::min(13, h - y0);
        p.write_rows(y0, inter.data() + static_cast<size_t>(y0) * w * c, rows);
      }
      p.finish();
      ImageInfo info;
      CHECK(read_image(path, &info).data == img.data);
      CHECK(info.bits == 8);
      if (h == 300) {  // compresses about as well as stb_image_write (write_png)
        write_png(dir / "ref.png", img);
        CHECK(fs::file_size(path) < 1.3 * fs::file_size(dir / "ref.png") + 1000);
      }
    }
  // A constant picture collapses to almost nothing.
  PngStreamWriter p(dir / "flat.png", 1000, 1000, 1);
  std::vector<uint8_t> rows(1000 * 100, 200);
  for (int y0 = 0; y0 < 1000; y0 += 100) p.write_rows(y0, rows.data(), 100);
  p.finish();
  CHECK(fs::file_size(dir / "flat.png") < 20000);
  CHECK(read_image(dir / "flat.png").data == Image(1, 1000, 1000, 200.0f).data);
}

TEST_CASE("streaming npy: bands at their offsets read back as write_npy's file", "[io][stream]") {
  TempDir dir;
  for (int channels : {1, 2}) {
    Image map(channels, 23, 17);
    for (size_t i = 0; i < map.data.size(); ++i) map.data[i] = 0.5f * static_cast<float>(i) - 3.0f;
    NpyStreamWriter n(dir / "s.npy", channels, 23, 17);
    for (int y0 = 0; y0 < 23; y0 += 6) {
      const int rows = std::min(6, 23 - y0);
      Image b(channels, rows, 17);
      for (int k = 0; k < channels; ++k) std::copy(&map.at(k, y0, 0), &map.at(k, y0, 0) + rows * 17, b.plane(k));
      n.write_rows(y0, b);
    }
    n.finish();
    write_npy(dir / "ref.npy", map);
    CHECK(read_npy(dir / "s.npy").data == map.data);
    CHECK(fs::file_size(dir / "s.npy") == fs::file_size(dir / "ref.npy"));
  }
}

TEST_CASE("predict_to_files: the streamed files equal the whole-image outputs, and the scores match",
          "[predict][stream][files]") {
  TempDir dir;
  for (int channels : {1, 3}) {
    INFO(channels << " channel(s)");
    UNet net = tiny_net(21 + channels, channels);
    RawImage raw = raw8(channels, 45, 38, 31);
    const Image img01 = normalise_intensity(raw);
    PredictOptions opt;
    opt.tile = TileSizes::input_for_output(12, 2);
    opt.batch = 3;
    opt.tta = channels == 1;
    // Labels: a threshold of the image, so the scores are meaningful.
    Image lab(1, raw.height, raw.width);
    for (int64_t p = 0; p < lab.pixels(); ++p) lab.data[p] = img01.data[p] > 0.5f ? 1.0f : 0.0f;
    PredictFiles files;
    files.prefix = dir / ("out" + std::to_string(channels));
    files.npy = true;
    files.labels = &lab;
    const PredictEvaluation r = predict_to_files(net, raw, opt, files);

    const Image probs = predict_probabilities(net, img01, opt);
    CHECK(rel_error(stack_channels(read_stack(files.prefix + "_probs.tif")).data, probs.data) < 1e-6);
    CHECK(rel_error(read_npy(files.prefix + "_probs.npy").data, probs.data) < 1e-6);
    Image mask = argmax_classes(probs);
    Image mask8 = mask;
    for (float& v : mask8.data) v *= 255.0f;
    CHECK(read_image(files.prefix + "_mask.png").data == mask8.data);
    // The overlay of the whole-image path.
    Image gray = channels == 3 ? img01 : plane_of(img01, 0);
    overlay_png(dir / "ref_overlay.png", gray, mask, files.overlay);
    CHECK(read_image(files.prefix + "_overlay.png").data == read_image(dir / "ref_overlay.png").data);

    REQUIRE(r.done);
    const EvalResult e = evaluate_probabilities({probs}, {lab});
    CHECK(r.pixel_error == Approx(e.pixel_error).margin(1e-12));
    CHECK(r.loss == Approx(e.loss).epsilon(1e-9));
    double best = 1.0;
    for (int t = 1; t < 255; ++t) {
      double wrong = 0;
      for (int64_t p = 0; p < lab.pixels(); ++p) wrong += (img01.data[p] * 255.0f > t ? 1.0f : 0.0f) != lab.data[p];
      best = std::min(best, wrong / static_cast<double>(lab.pixels()));
    }
    CHECK(r.threshold_error == best);
  }
  CHECK(dir.temp_leftovers().empty());
  // A failure (labels of the wrong size) writes nothing.
  UNet net = tiny_net(5);
  Image bad(1, 3, 3);
  PredictFiles files;
  files.prefix = dir / "fail";
  files.labels = &bad;
  CHECK_THROWS_WITH(predict_to_files(net, raw8(1, 10, 10, 1), PredictOptions{}, files), Catch::Contains("labels"));
  CHECK(!fs::exists(files.prefix + "_probs.tif"));
  CHECK(dir.temp_leftovers().empty());
}
