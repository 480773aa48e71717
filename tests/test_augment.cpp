// Augmentation: mirror extrapolation, identity, image/label alignment, reproducibility, tiles.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "engine/rng.h"
#include "unet/augment.h"

using namespace unet;

namespace {

// A smooth random label mask (discs of class 1 on class 0), the image a function of the label
// (0.1 / 0.9) and weights another one (1 / 5), so alignment can be read off any output.
Sample blob_sample(uint64_t seed, int h, int w, int channels = 1) {
  Rng rng(seed);
  Sample s;
  s.labels = Image(1, h, w, 0.0f);
  for (int k = 0; k < 14; ++k) {
    const float cy = rng.uniform() * h, cx = rng.uniform() * w, r = 5.0f + 10.0f * rng.uniform();
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r) s.labels.at(0, y, x) = 1.0f;
  }
  s.image = Image(channels, h, w);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) s.image.at(c, y, x) = s.labels.at(0, y, x) * 0.8f + 0.1f;
  s.weights = Image(1, h, w);
  for (size_t i = 0; i < s.weights.data.size(); ++i) s.weights.data[i] = 1.0f + 4.0f * s.labels.data[i];
  return s;
}

AugmentParams geometry_only(Interp interp) {
  AugmentParams p;  // default geometry: elastic 3x3 sigma 10, any rotation, flips
  p.max_gamma = 1.0f;
  p.max_contrast = 0.0f;
  p.max_brightness = 0.0f;
  p.image_interp = interp;
  return p;
}

}  // namespace

TEST_CASE("mirror_index reflects without repeating the edge", "[augment][mirror]") {
  // n = 5: ... 4 3 2 1 | 0 1 2 3 4 | 3 2 1 0 1 2 ...
  const std::map<int, int> want = {{0, 0},  {4, 4},  {-1, 1}, {-2, 2},  {-3, 3}, {-4, 4}, {-5, 3},
                                   {-8, 0}, {-9, 1}, {5, 3},  {6, 2},   {7, 1},  {8, 0},  {9, 1},
                                   {12, 4}, {13, 3}, {16, 0}, {-16, 0}, {-13, 3}};
  for (auto [i, m] : want) {
    INFO("i = " << i);
    REQUIRE(mirror_index(i, 5) == m);
  }
  REQUIRE(mirror_index(-7, 1) == 0);
  REQUIRE(mirror_index(3, 1) == 0);
  REQUIRE(mirror_index(-1, 2) == 1);
  REQUIRE(mirror_index(2, 2) == 0);
  REQUIRE(mirror_index(3, 2) == 1);
  REQUIRE(mirror_index(-1000001, 7) == mirror_index(-1000001 + 12 * 1000, 7));
}

TEST_CASE("extract_tile_mirrored equals a hand-built mirrored image", "[augment][mirror]") {
  // 2 channels, 2 x 3: value = 100 c + 10 y + x.
  Image img(2, 2, 3);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) img.at(c, y, x) = 100.0f * c + 10.0f * y + x;
  // Rows -2..3 of a height-2 image: 0 1 | 0 1 | 0 1; columns -3..5 of a width-3 image:
  // 1 2 1 | 0 1 2 | 1 0 1.
  const int rows[6] = {0, 1, 0, 1, 0, 1};
  const int cols[9] = {1, 2, 1, 0, 1, 2, 1, 0, 1};
  const Image t = extract_tile_mirrored(img, -2, -3, 6, 9);
  REQUIRE(t.channels == 2);
  REQUIRE(t.height == 6);
  REQUIRE(t.width == 9);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 9; ++x) REQUIRE(t.at(c, y, x) == 100.0f * c + 10.0f * rows[y] + cols[x]);
  // A tile inside the image is a plain crop; one far away still mirrors.
  const Image in = extract_tile_mirrored(img, 0, 1, 2, 2);
  REQUIRE(in.data == std::vector<float>{1, 2, 11, 12, 101, 102, 111, 112});
  const Image far = extract_tile_mirrored(img, 7, -9, 1, 1);  // row 7 -> 1, col -9 -> 1
  REQUIRE(far.at(0, 0, 0) == 11.0f);
}

TEST_CASE("identity parameters give back the input exactly", "[augment]") {
  Rng data(5);
  Sample s;
  s.image = Image(2, 37, 42);
  for (float& v : s.image.data) v = data.uniform();
  s.labels = Image(1, 37, 42);
  for (float& v : s.labels.data) v = static_cast<float>(data.below(3));
  s.weights = Image(1, 37, 42);
  for (float& v : s.weights.data) v = 1.0f + 9.0f * data.uniform();
  for (Interp interp : {Interp::kNearest, Interp::kBilinear, Interp::kBicubic}) {
    AugmentParams p = AugmentParams::none();
    p.image_interp = interp;
    Rng rng(99);
    const Sample d = deform(s, rng, p);
    REQUIRE(d.image.data == s.image.data);
    REQUIRE(d.labels.data == s.labels.data);
    REQUIRE(d.weights.data == s.weights.data);
    // A tile the size of the image, not shifted, is the same.
    p.random_position = false;
    const Sample t = augment_tile(s, 37, 42, 37, 42, rng, p);
    REQUIRE(t.image.data == s.image.data);
    REQUIRE(t.labels.data == s.labels.data);
  }
}

TEST_CASE("image and labels stay aligned under the same deformation", "[augment]") {
  const Sample s = blob_sample(1, 120, 100);
  SECTION("nearest-neighbour resampling: 100%") {
    const AugmentParams p = geometry_only(Interp::kNearest);
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      Rng rng(seed);
      const Sample d = deform(s, rng, p);
      REQUIRE(d.image.data != s.image.data);  // it did deform
      for (size_t i = 0; i < d.labels.data.size(); ++i) {
        REQUIRE(d.image.data[i] == d.labels.data[i] * 0.8f + 0.1f);
        REQUIRE(d.weights.data[i] == 1.0f + 4.0f * d.labels.data[i]);
      }
    }
  }
  SECTION("smooth resampling: >= 99% after thresholding") {
    for (Interp interp : {Interp::kBilinear, Interp::kBicubic}) {
      const AugmentParams p = geometry_only(interp);
      for (uint64_t seed = 1; seed <= 6; ++seed) {
        Rng rng(seed);
        const Sample d = deform(s, rng, p);
        size_t agree = 0;
        for (size_t i = 0; i < d.labels.data.size(); ++i)
          agree += (d.image.data[i] > 0.5f) == (d.labels.data[i] > 0.5f);
        const double frac = static_cast<double>(agree) / d.labels.data.size();
        INFO("interp " << static_cast<int>(interp) << " seed " << seed << " agreement " << frac);
        REQUIRE(frac >= 0.99);
        // Bicubic overshoot is clamped to the source range.
        for (float v : d.image.data) REQUIRE((v >= 0.1f - 1e-6f && v <= 0.9f + 1e-6f));
      }
    }
  }
}

TEST_CASE("augmentation is reproducible from the seed", "[augment]") {
  const Sample s = blob_sample(2, 80, 90, 3);
  AugmentParams p;  // everything on, noise included
  p.noise_sigma = 0.05f;
  Rng a(1234), b(1234), c(1235);
  const Sample sa = augment_tile(s, 64, 64, 24, 24, a, p);
  const Sample sb = augment_tile(s, 64, 64, 24, 24, b, p);
  const Sample sc = augment_tile(s, 64, 64, 24, 24, c, p);
  REQUIRE(sa.image.data == sb.image.data);
  REQUIRE(sa.labels.data == sb.labels.data);
  REQUIRE(sa.weights.data == sb.weights.data);
  REQUIRE(a.offset() == b.offset());
  REQUIRE(sa.image.data != sc.image.data);
  // The stream advances: the next draw differs from the first.
  const Sample sa2 = augment_tile(s, 64, 64, 24, 24, a, p);
  REQUIRE(sa2.image.data != sa.image.data);
  // Rng consumption does not depend on which augmentations are on.
  Rng d(1234);
  augment_tile(s, 64, 64, 24, 24, d, AugmentParams::none());
  REQUIRE(d.offset() == b.offset());
}

TEST_CASE("augment_tile sizes and the label tile is the centre of the input tile", "[augment][tile]") {
  const Sample s = blob_sample(3, 90, 110);
  const int in = 60, out = 20, off = (in - out) / 2;
  SECTION("full geometry, nearest neighbour") {
    const AugmentParams p = geometry_only(Interp::kNearest);
    for (uint64_t seed = 10; seed < 16; ++seed) {
      Rng rng(seed);
      const Sample t = augment_tile(s, in, in, out, out, rng, p);
      REQUIRE(t.image.channels == 1);
      REQUIRE(t.image.height == in);
      REQUIRE(t.image.width == in);
      REQUIRE(t.labels.height == out);
      REQUIRE(t.labels.width == out);
      REQUIRE(t.weights.height == out);
      REQUIRE(t.weights.width == out);
      for (int y = 0; y < out; ++y)
        for (int x = 0; x < out; ++x) {
          REQUIRE(t.image.at(0, y + off, x + off) == t.labels.at(0, y, x) * 0.8f + 0.1f);
          REQUIRE(t.weights.at(0, y, x) == 1.0f + 4.0f * t.labels.at(0, y, x));
        }
    }
  }
  SECTION("identity geometry: a mirrored crop at the drawn position") {
    AugmentParams p = AugmentParams::none();
    p.image_interp = Interp::kNearest;
    for (uint64_t seed = 20; seed < 30; ++seed) {
      Rng r1(seed), r2(seed);
      const AugmentDraw d = draw_augmentation(r1, p, s.image.height, s.image.width, in, in);
      const int oy = static_cast<int>(std::lround(d.center_y - 0.5 * (in - 1)));
      const int ox = static_cast<int>(std::lround(d.center_x - 0.5 * (in - 1)));
      const Sample t = augment_tile(s, in, in, out, out, r2, p);
      REQUIRE(t.image.data == extract_tile_mirrored(s.image, oy, ox, in, in).data);
      REQUIRE(t.labels.data == extract_tile_mirrored(s.labels, oy + off, ox + off, out, out).data);
      REQUIRE(t.weights.data == extract_tile_mirrored(s.weights, oy + off, ox + off, out, out).data);
    }
  }
  SECTION("the tile centre is drawn over the whole image and may cross the border") {
    AugmentParams p = AugmentParams::none();
    int outside = 0;
    double sum_y = 0.0;
    Rng rng(77);
    for (int i = 0; i < 400; ++i) {
      const AugmentDraw d = draw_augmentation(rng, p, 90, 110, in, in);
      REQUIRE(d.center_y >= -0.5);
      REQUIRE(d.center_y <= 89.5);
      sum_y += d.center_y;
      outside += d.center_y - 0.5 * (in - 1) < 0.0;
    }
    REQUIRE(outside > 0);
    REQUIRE(sum_y / 400 == Approx(44.5).margin(5.0));
  }
  Rng bad(1);
  REQUIRE_THROWS_AS(augment_tile(s, 20, 20, 30, 30, bad, AugmentParams{}), Error);
}

TEST_CASE("the elastic field interpolates the control displacements", "[augment][elastic]") {
  AugmentParams p = AugmentParams::none();
  p.elastic_sigma = 10.0f;
  Rng rng(42);
  AugmentDraw d = draw_augmentation(rng, p, 101, 101, 101, 101);
  d.center_y = d.center_x = 50.0;
  std::vector<float> sy, sx;
  sampling_map(d, sy, sx);
  // Control points sit at the corners, the edge midpoints and the centre of the tile.
  const int pos[3] = {0, 50, 100};
  for (int gy = 0; gy < 3; ++gy)
    for (int gx = 0; gx < 3; ++gx) {
      const size_t i = static_cast<size_t>(pos[gy]) * 101 + pos[gx];
      REQUIRE(sy[i] - pos[gy] == Approx(d.disp_y[gy * 3 + gx]).margin(1e-4));
      REQUIRE(sx[i] - pos[gx] == Approx(d.disp_x[gy * 3 + gx]).margin(1e-4));
    }
  // Smooth: the displacement's slope changes by little from one pixel to the next (control points
  // are 50 px apart), and no pixel jumps.
  float max_step = 0.0f, max_curv = 0.0f;
  for (int y = 0; y < 101; ++y)
    for (int x = 2; x < 101; ++x) {
      const size_t i = static_cast<size_t>(y) * 101 + x;
      const float s1 = sx[i] - sx[i - 1], s0 = sx[i - 1] - sx[i - 2];
      const float t1 = sy[i] - sy[i - 1], t0 = sy[i - 1] - sy[i - 2];
      max_step = std::max({max_step, std::abs(s1 - 1.0f), std::abs(t1)});
      max_curv = std::max({max_curv, std::abs(s1 - s0), std::abs(t1 - t0)});
    }
  INFO("max slope " << max_step << " max slope change " << max_curv);
  REQUIRE(max_step < 1.5f);
  REQUIRE(max_curv < 0.05f);
  // The displacements are N(0, sigma^2): check the spread over many draws.
  double sum = 0.0, sum2 = 0.0;
  int n = 0;
  for (int k = 0; k < 300; ++k) {
    const AugmentDraw e = draw_augmentation(rng, p, 50, 50, 50, 50);
    for (float v : e.disp_x) {
      sum += v;
      sum2 += v * v;
      ++n;
    }
  }
  const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  REQUIRE(mean == Approx(0.0).margin(0.5));
  REQUIRE(sd == Approx(10.0).epsilon(0.05));
}

TEST_CASE("rotation by 90 degrees and flips map pixels exactly", "[augment]") {
  Image img(1, 5, 5);
  for (int i = 0; i < 25; ++i) img.data[i] = static_cast<float>(i);
  Sample s{img, Image(), Image()};
  AugmentParams p = AugmentParams::none();
  p.image_interp = Interp::kNearest;
  Rng rng(1);
  AugmentDraw d = draw_augmentation(rng, p, 5, 5, 5, 5);
  d.center_y = d.center_x = 2.0;
  d.flip_x = true;
  Sample f = apply_augmentation(s, d, 5, 5, p);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) REQUIRE(f.image.at(0, y, x) == img.at(0, y, 4 - x));
  d.flip_x = false;
  d.angle = 3.14159265358979323846 / 2;
  f = apply_augmentation(s, d, 5, 5, p);
  // u = (y - 2, x - 2) -> source (2 + uy cos + ux sin, 2 - uy sin + ux cos) = (x, 4 - y).
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) REQUIRE(f.image.at(0, y, x) == img.at(0, x, 4 - y));
}

TEST_CASE("gray-value variation changes the image only", "[augment][gray]") {
  const Sample s = blob_sample(4, 50, 50);
  AugmentParams p = AugmentParams::none();
  p.max_gamma = 1.5f;
  p.max_contrast = 0.3f;
  p.max_brightness = 0.1f;
  Rng rng(8);
  const Sample d = deform(s, rng, p);
  REQUIRE(d.labels.data == s.labels.data);
  REQUIRE(d.weights.data == s.weights.data);
  REQUIRE(d.image.data != s.image.data);
  // Still monotone in the label: every cell pixel is brighter than every background pixel.
  float max0 = -1e9f, min1 = 1e9f;
  for (size_t i = 0; i < d.image.data.size(); ++i) {
    if (s.labels.data[i] == 0.0f) max0 = std::max(max0, d.image.data[i]);
    else min1 = std::min(min1, d.image.data[i]);
  }
  REQUIRE(max0 < min1);
}

TEST_CASE("write_augmented_samples hands viewable images to the sink", "[augment]") {
  const Sample s = blob_sample(5, 40, 48);
  std::vector<std::string> names;
  std::vector<Image> imgs;
  Rng rng(3);
  write_augmented_samples(s, 2, rng, AugmentParams{}, [&](const std::string& n, const Image& im) {
    names.push_back(n);
    imgs.push_back(im);
  });
  REQUIRE(names == std::vector<std::string>{"sample_000_image", "sample_000_labels", "sample_000_weights",
                                            "sample_000_overlay", "sample_001_image", "sample_001_labels",
                                            "sample_001_weights", "sample_001_overlay"});
  for (const Image& im : imgs) {
    REQUIRE(im.height == 40);
    REQUIRE(im.width == 48);
    for (float v : im.data) REQUIRE((v >= 0.0f && v <= 255.0f));
  }
  REQUIRE(imgs[3].channels == 3);
  Rng rng2(3);
  int calls = 0;
  write_augmented_samples(s, 1, 30, 20, rng2, AugmentParams{}, [&](const std::string&, const Image& im) {
    ++calls;
    REQUIRE(im.height == 30);
    REQUIRE(im.width == 20);
  });
  REQUIRE(calls == 4);
}
