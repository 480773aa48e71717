// The weight map of Eq. 2 and its parts: exact EDT, connected components, separation borders,
// class balancing, d1/d2 with the cutoff reach.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/rng.h"
#include "unet/weightmap.h"

using namespace unet;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> brute_edt_sq(const std::vector<uint8_t>& m, int h, int w) {
  std::vector<float> d(m.size(), kInf);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int v = 0; v < h; ++v)
        for (int u = 0; u < w; ++u)
          if (m[v * w + u]) {
            const float s = static_cast<float>((y - v) * (y - v) + (x - u) * (x - u));
            d[y * w + x] = std::min(d[y * w + x], s);
          }
  return d;
}

// Random blobs (discs) as an instance mask; overlapping discs keep the later id.
std::vector<int32_t> random_discs(Rng& rng, int h, int w, int n, float rmin, float rmax) {
  std::vector<int32_t> id(static_cast<size_t>(h) * w, 0);
  for (int k = 1; k <= n; ++k) {
    const float cy = rng.uniform() * h, cx = rng.uniform() * w, r = rmin + (rmax - rmin) * rng.uniform();
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r) id[y * w + x] = k;
  }
  return id;
}

// Brute-force d1/d2 over all instances (ids 1..n).
void brute_d12(const std::vector<int32_t>& id, int h, int w, std::vector<float>& d1, std::vector<float>& d2) {
  int n = 0;
  for (int32_t v : id) n = std::max(n, static_cast<int>(v));
  d1.assign(id.size(), kInf);
  d2.assign(id.size(), kInf);
  for (int k = 1; k <= n; ++k) {
    std::vector<uint8_t> m(id.size());
    bool any = false;
    for (size_t i = 0; i < id.size(); ++i) any |= (m[i] = id[i] == k);
    if (!any) continue;
    const std::vector<float> sq = brute_edt_sq(m, h, w);
    for (size_t i = 0; i < id.size(); ++i) {
      const float d = std::sqrt(sq[i]);
      if (d < d1[i]) {
        d2[i] = d1[i];
        d1[i] = d;
      } else if (d < d2[i]) d2[i] = d;
    }
  }
}

Image to_image(const std::vector<int32_t>& v, int h, int w) {
  Image im(1, h, w);
  for (size_t i = 0; i < v.size(); ++i) im.data[i] = static_cast<float>(v[i]);
  return im;
}

}  // namespace

TEST_CASE("edt_squared equals brute force on random masks", "[weightmap][edt]") {
  Rng rng(7);
  const int sizes[][2] = {{1, 1}, {1, 17}, {13, 1}, {9, 9}, {23, 31}, {40, 17}};
  for (auto& s : sizes) {
    const int h = s[0], w = s[1];
    for (float density : {0.0f, 0.01f, 0.1f, 0.5f, 1.0f}) {
      std::vector<uint8_t> m(static_cast<size_t>(h) * w);
      for (auto& v : m) v = rng.uniform() < density;
      const std::vector<float> got = edt_squared(m, h, w), want = brute_edt_sq(m, h, w);
      for (size_t i = 0; i < m.size(); ++i) {
        INFO("size " << h << "x" << w << " density " << density << " pixel " << i);
        REQUIRE(got[i] == want[i]);  // exact, +inf included for an empty mask
      }
    }
  }
}

TEST_CASE("edt_squared is exact on a large image (parallel path)", "[weightmap][edt]") {
  const int h = 300, w = 260;
  std::vector<uint8_t> m(static_cast<size_t>(h) * w, 0);
  m[5 * w + 7] = 1;
  m[250 * w + 200] = 1;
  const std::vector<float> d = edt_squared(m, h, w);
  for (int y = 0; y < h; y += 7)
    for (int x = 0; x < w; x += 5) {
      const float a = static_cast<float>((y - 5) * (y - 5) + (x - 7) * (x - 7));
      const float b = static_cast<float>((y - 250) * (y - 250) + (x - 200) * (x - 200));
      REQUIRE(d[y * w + x] == std::min(a, b));
    }
  const std::vector<float> e = edt(m, h, w);
  REQUIRE(e[5 * w + 10] == 3.0f);
  REQUIRE(e[9 * w + 10] == 5.0f);
}

TEST_CASE("edt_1d handles infinite samples", "[weightmap][edt]") {
  const float f[6] = {kInf, 4.0f, kInf, kInf, 0.0f, kInf};
  float d[6];
  int v[6];
  double z[7];
  edt_1d(f, 6, d, v, z);
  const float want[6] = {5.0f, 4.0f, 4.0f, 1.0f, 0.0f, 1.0f};
  for (int i = 0; i < 6; ++i) REQUIRE(d[i] == want[i]);
  const float g[3] = {kInf, kInf, kInf};
  edt_1d(g, 3, d, v, z);
  for (int i = 0; i < 3; ++i) REQUIRE(std::isinf(d[i]));
}

TEST_CASE("connected components with 4- and 8-connectivity", "[weightmap][cc]") {
  // Two pixels touching diagonally, and an L shape.
  const int h = 4, w = 5;
  const std::vector<uint8_t> m = {1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0};
  int n4 = 0, n8 = 0;
  const std::vector<int32_t> c4 = connected_components(m, h, w, 4, &n4);
  const std::vector<int32_t> c8 = connected_components(m, h, w, 8, &n8);
  REQUIRE(n4 == 4);
  REQUIRE(n8 == 3);
  REQUIRE(c4[0] == 1);
  REQUIRE(c4[3] == 2);
  REQUIRE(c4[4] == 2);
  REQUIRE(c4[9] == 2);
  REQUIRE(c4[6] == 3);
  REQUIRE(c4[15] == 4);
  REQUIRE(c4[17] == 4);
  REQUIRE(c8[0] == c8[6]);
  REQUIRE(c4[2] == 0);
  REQUIRE_THROWS_AS(connected_components(m, h, w, 6), Error);
}

TEST_CASE("compact_instances numbers distinct ids by first appearance", "[weightmap]") {
  Image inst(1, 2, 3);
  inst.data = {0, 7, 7, 300, 0, 2};
  int n = 0;
  const std::vector<int32_t> c = compact_instances(inst, &n);
  REQUIRE(n == 3);
  REQUIRE(c == std::vector<int32_t>{0, 1, 1, 2, 0, 3});
  inst.data[0] = 1.5f;
  REQUIRE_THROWS_AS(compact_instances(inst), Error);
}

TEST_CASE("two touching squares: separation border and its weight", "[weightmap][border]") {
  const int h = 60, w = 80;
  Image inst(1, h, w, 0.0f);
  for (int y = 20; y < 40; ++y)
    for (int x = 20; x < 60; ++x) inst.at(0, y, x) = x < 40 ? 3.0f : 9.0f;  // A | B share the x = 39/40 edge
  const SeparatedInstances sep = make_separation_borders(inst);
  for (int y = 20; y < 40; ++y) {
    REQUIRE(sep.labels.at(0, y, 39) == 0.0f);
    REQUIRE(sep.labels.at(0, y, 40) == 0.0f);
    REQUIRE(sep.instances.at(0, y, 39) == 0.0f);
    REQUIRE(sep.labels.at(0, y, 38) == 1.0f);
    REQUIRE(sep.labels.at(0, y, 41) == 1.0f);
    REQUIRE(sep.instances.at(0, y, 38) == 3.0f);
    REQUIRE(sep.instances.at(0, y, 41) == 9.0f);
  }
  REQUIRE(sep.labels.at(0, 20, 20) == 1.0f);  // contact with the background alone keeps a pixel
  REQUIRE(sep.labels.at(0, 10, 10) == 0.0f);

  WeightMapParams p;  // w0 = 10, sigma = 5, kMaxOne
  const Image wm = weight_map(sep.labels, sep.instances, p);
  const std::vector<int64_t> counts = class_counts(sep.labels, 2);
  const std::vector<float> wc = class_weights_from_counts(counts, ClassBalance::kMaxOne);
  REQUIRE(wc[0] == 1.0f);  // background is the more frequent class
  // The separating border: d1 = 1, d2 = 2 -> 10 * exp(-9 / 50) = 8.35 extra.
  const float mid_extra = wm.at(0, 30, 39) - wc[0];
  REQUIRE(mid_extra > 0.8f * p.w0);
  REQUIRE(mid_extra == Approx(p.w0 * std::exp(-9.0f / 50.0f)).epsilon(1e-5));
  // Far background: the corners.
  REQUIRE(wm.at(0, 0, 0) - wc[0] < 0.01f);
  REQUIRE(wm.at(0, h - 1, w - 1) - wc[0] < 0.01f);
  // Cell pixels carry w_c only.
  REQUIRE(wm.at(0, 30, 38) == wc[1]);
  REQUIRE(wm.at(0, 30, 30) == wc[1]);
  // Background just above the contact still sees both cells.
  REQUIRE(wm.at(0, 18, 39) - wc[0] > 0.5f * p.w0);
}

TEST_CASE("a single cell adds no border term", "[weightmap][border]") {
  const int h = 40, w = 40;
  std::vector<int32_t> id(static_cast<size_t>(h) * w, 0);
  for (int y = 10; y < 20; ++y)
    for (int x = 12; x < 25; ++x) id[y * w + x] = 1;
  const BorderDistances bd = border_distances(id, h, w, kInf);
  for (size_t i = 0; i < id.size(); ++i) REQUIRE(std::isinf(bd.d2[i]));
  REQUIRE(bd.d1[15 * w + 15] == 0.0f);
  REQUIRE(bd.d1[15 * w + 27] == 3.0f);
  const Image labels = to_image(id, h, w);
  WeightMapParams p;
  p.cutoff = 0.0f;  // no reach limit at all
  const Image wm = weight_map(labels, p);
  const std::vector<float> wc = class_weights_from_counts(class_counts(labels, 2), p.balance);
  for (size_t i = 0; i < id.size(); ++i) REQUIRE(wm.data[i] == wc[id[i]]);
}

TEST_CASE("class balancing on a 3:1 mask", "[weightmap][balance]") {
  // 12 background, 4 foreground pixels forming one cell (so no border term).
  Image labels(1, 4, 4, 0.0f);
  labels.at(0, 1, 1) = labels.at(0, 1, 2) = labels.at(0, 2, 1) = labels.at(0, 2, 2) = 1.0f;
  const std::vector<int64_t> counts = class_counts(labels, 2);
  REQUIRE(counts == std::vector<int64_t>{12, 4});

  WeightMapParams p;
  p.balance = ClassBalance::kMaxOne;  // the default: most frequent class -> 1
  Image wm = weight_map(labels, p);
  REQUIRE(wm.at(0, 0, 0) == 1.0f);
  REQUIRE(wm.at(0, 1, 1) == 3.0f);

  p.balance = ClassBalance::kInverseFrequency;  // N / (K n_l)
  wm = weight_map(labels, p);
  REQUIRE(wm.at(0, 0, 0) == Approx(16.0 / 24.0));
  REQUIRE(wm.at(0, 1, 1) == Approx(2.0));

  p.balance = ClassBalance::kNone;
  wm = weight_map(labels, p);
  REQUIRE(wm.at(0, 0, 0) == 1.0f);
  REQUIRE(wm.at(0, 1, 1) == 1.0f);

  // Fixed weights override the image's own frequencies.
  p.class_weights = {0.5f, 7.0f};
  wm = weight_map(labels, p);
  REQUIRE(wm.at(0, 0, 0) == 0.5f);
  REQUIRE(wm.at(0, 2, 2) == 7.0f);

  // An absent class gets weight 0 and causes no division by zero.
  const std::vector<float> w3 = class_weights_from_counts({12, 0, 4}, ClassBalance::kMaxOne);
  REQUIRE(w3 == std::vector<float>{1.0f, 0.0f, 3.0f});
  const std::vector<float> wi = class_weights_from_counts({0, 8}, ClassBalance::kInverseFrequency);
  REQUIRE(wi == std::vector<float>{0.0f, 0.5f});
  const std::vector<float> w0 = class_weights_from_counts({0, 0}, ClassBalance::kMaxOne);
  REQUIRE(w0 == std::vector<float>{0.0f, 0.0f});
  // Everything background: no cells, no border term, no crash.
  Image empty(1, 5, 6, 0.0f);
  const Image we = weight_map(empty, WeightMapParams{});
  for (float v : we.data) REQUIRE(v == 1.0f);
}

TEST_CASE("border_distances matches brute force, within and beyond the reach", "[weightmap][d12]") {
  Rng rng(11);
  const int h = 48, w = 56;
  const std::vector<int32_t> id = random_discs(rng, h, w, 9, 2.0f, 6.0f);
  std::vector<float> b1, b2;
  brute_d12(id, h, w, b1, b2);
  for (float reach : {kInf, 12.0f, 4.5f}) {
    const BorderDistances bd = border_distances(id, h, w, reach);
    for (size_t i = 0; i < id.size(); ++i) {
      INFO("reach " << reach << " pixel " << i);
      if (b1[i] <= reach) REQUIRE(bd.d1[i] == Approx(b1[i]).margin(1e-5));
      else REQUIRE(std::isinf(bd.d1[i]));
      if (b2[i] <= reach) REQUIRE(bd.d2[i] == Approx(b2[i]).margin(1e-5));
      else REQUIRE(std::isinf(bd.d2[i]));
    }
  }
}

TEST_CASE("weight_map matches a brute-force Eq. 2 and the reach cutoff costs < cutoff", "[weightmap]") {
  Rng rng(3);
  const int h = 50, w = 44;
  const std::vector<int32_t> id = random_discs(rng, h, w, 12, 2.0f, 5.0f);
  std::vector<float> b1, b2;
  brute_d12(id, h, w, b1, b2);
  const Image inst = to_image(id, h, w);
  for (bool on_cells : {false, true}) {
    WeightMapParams p;
    p.border_term_on_cells = on_cells;
    const Image labels = [&] {
      Image l(1, h, w);
      for (size_t i = 0; i < id.size(); ++i) l.data[i] = id[i] > 0 ? 1.0f : 0.0f;
      return l;
    }();
    const std::vector<float> wc = class_weights_from_counts(class_counts(labels, 2), p.balance);
    const Image fast = weight_map_from_instances(inst, p);
    p.cutoff = 0.0f;
    const Image exact = weight_map_from_instances(inst, p);
    for (size_t i = 0; i < id.size(); ++i) {
      float want = wc[id[i] > 0];
      if ((on_cells || id[i] == 0) && std::isfinite(b2[i])) {
        const float s = b1[i] + b2[i];
        want += p.w0 * std::exp(-s * s / (2.0f * p.sigma * p.sigma));
      }
      REQUIRE(exact.data[i] == Approx(want).margin(1e-5));
      REQUIRE(std::abs(fast.data[i] - want) < 1e-3f);
    }
  }
}

TEST_CASE("ISBI-style labels: cells are 4-connected components of class 1", "[weightmap]") {
  // Two cells separated by a one-pixel diagonal staircase of membrane: 8-connectivity would merge
  // them through the diagonal gaps, 4-connectivity keeps them apart.
  const int n = 20;
  Image labels(1, n, n, 1.0f);
  for (int i = 0; i < n; ++i) labels.at(0, i, i) = 0.0f;  // diagonal membrane
  WeightMapParams p;
  const Image w4 = weight_map(labels, p);
  // A membrane pixel between the two cells: d1 = d2 = 1 -> 10 * exp(-4 / 50).
  const std::vector<float> wc = class_weights_from_counts(class_counts(labels, 2), p.balance);
  REQUIRE(w4.at(0, 10, 10) - wc[0] == Approx(p.w0 * std::exp(-4.0f / 50.0f)).epsilon(1e-5));
  p.connectivity = 8;
  const Image w8 = weight_map(labels, p);
  REQUIRE(w8.at(0, 10, 10) == wc[0]);  // one 8-connected cell: no second cell
}

TEST_CASE("weight_map rejects bad input", "[weightmap]") {
  Image labels(1, 4, 4, 0.0f);
  labels.at(0, 0, 0) = 2.0f;
  REQUIRE_THROWS_AS(weight_map(labels, WeightMapParams{}), Error);
  labels.at(0, 0, 0) = 0.5f;
  REQUIRE_THROWS_AS(weight_map(labels, WeightMapParams{}), Error);
  Image ok(1, 4, 4, 0.0f), other(1, 4, 5, 0.0f);
  REQUIRE_THROWS_AS(weight_map(ok, other, WeightMapParams{}), Error);
  WeightMapParams p;
  p.class_weights = {1.0f};
  REQUIRE_THROWS_AS(weight_map(ok, p), Error);
}
