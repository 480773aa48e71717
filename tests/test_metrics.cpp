// unet/metrics: ISBI pixel / Rand / warping errors, IoU and SEG on small cases computed by hand.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "unet/metrics.h"

using namespace unet;

namespace {

// An image from rows of characters: '#' (or '1') = 1 = cell, '.' (or '0') = 0 = membrane; other
// digits give their value (for instance / class images).
Image from_rows(const std::vector<std::string>& rows) {
  const int h = static_cast<int>(rows.size()), w = static_cast<int>(rows[0].size());
  Image im(1, h, w);
  for (int y = 0; y < h; ++y) {
    REQUIRE(static_cast<int>(rows[y].size()) == w);
    for (int x = 0; x < w; ++x) {
      const char c = rows[y][x];
      im.at(0, y, x) = c == '#' ? 1.0f : c == '.' ? 0.0f : static_cast<float>(c - '0');
    }
  }
  return im;
}

LabelImage labels_from_rows(const std::vector<std::string>& rows) { return to_labels(from_rows(rows)); }

// Two 5-wide cells separated by a 1-px vertical membrane at x = 5 (7 x 11).
Image two_cells() {
  return from_rows({
      "#####.#####",
      "#####.#####",
      "#####.#####",
      "#####.#####",
      "#####.#####",
      "#####.#####",
      "#####.#####",
  });
}

}  // namespace

TEST_CASE("label_components: 4- vs 8-connectivity, raster-order ids", "[metrics]") {
  const Image im = from_rows({
      "#..#",
      ".#.#",
      "....",
      "##.#",
  });
  int n4 = 0, n8 = 0;
  const LabelImage l4 = label_components(im, 4, &n4);
  const LabelImage l8 = label_components(im, 8, &n8);
  CHECK(n4 == 5);  // (0,0), (1,1), right column top, bottom-left pair, (3,3)
  CHECK(n8 == 4);  // (0,0) and (1,1) touch diagonally
  CHECK(l4.at(0, 0) == 1);
  CHECK(l4.at(0, 3) == 2);
  CHECK(l4.at(1, 3) == 2);
  CHECK(l4.at(1, 1) == 3);
  CHECK(l4.at(3, 0) == 4);
  CHECK(l4.at(3, 1) == 4);
  CHECK(l4.at(3, 3) == 5);
  CHECK(l4.at(0, 1) == 0);
  CHECK(l8.at(1, 1) == l8.at(0, 0));
  CHECK(l4.max_label() == 5);
  CHECK_THROWS_AS(label_components(im, 6), Error);
}

TEST_CASE("simple points: foreground 4-connected, background 8-connected", "[metrics]") {
  // bits: 0 NW, 1 N, 2 NE, 3 E, 4 SE, 5 S, 6 SW, 7 W
  const uint8_t NW = 1, N = 2, NE = 4, E = 8, SE = 16, S = 32, SW = 64, W = 128;
  CHECK_FALSE(is_simple_point(0));              // isolated pixel: an object appears / vanishes
  CHECK_FALSE(is_simple_point(0xff));           // interior pixel: a hole appears / vanishes
  CHECK(is_simple_point(N));                    // end of a line
  CHECK(is_simple_point(N | NE | E));           // convex corner
  CHECK(is_simple_point(N | NE | E | SE | S));  // straight edge
  CHECK_FALSE(is_simple_point(N | S));          // a bridge: flipping joins / splits two pieces
  CHECK_FALSE(is_simple_point(W | E));
  CHECK_FALSE(is_simple_point(NW));  // diagonal only: not 4-connected to the centre
  CHECK_FALSE(is_simple_point(NW | SE));
  CHECK(is_simple_point(NW | N));       // the corner hangs on N
  CHECK_FALSE(is_simple_point(N | E));  // N and E are not 4-adjacent: two pieces
  // Everything but one corner: background is that single corner, foreground is one ring.
  CHECK(is_simple_point(static_cast<uint8_t>(0xff & ~SW)));
  // Background N and E only: 8-adjacent across the NE corner, so one background component.
  CHECK(is_simple_point(static_cast<uint8_t>(0xff & ~(N | E))));
  // Everything but two opposite edge pixels: background splits into two 8-components.
  CHECK_FALSE(is_simple_point(static_cast<uint8_t>(0xff & ~(N | S))));
}

TEST_CASE("identical segmentations score zero errors", "[metrics]") {
  const Image gt = two_cells();
  const Image prob = gt;
  CHECK(pixel_error(prob, gt, 0.5f) == 0.0);
  CHECK(pixel_mismatch(prob, gt, 0.5f) == 0.0);
  const RandScores r = rand_at_threshold(prob, gt, 0.5f);
  CHECK(r.fscore == 1.0);
  CHECK(r.error() == 0.0);
  CHECK(r.n == 70);
  CHECK(rand_at_threshold(prob, gt, 0.5f, true).error() == 0.0);
  const WarpingResult w = warping_error(prob, gt, 0.5f);
  CHECK(w.mismatches == 0);
  CHECK(w.error == 0.0);
  CHECK(w.topological_errors() == 0);

  const IsbiScores s = evaluate_isbi(prob, gt);
  REQUIRE(s.per_threshold.size() == 10);
  CHECK(s.pixel_error.value == 0.0);
  CHECK(s.rand_error.value == 0.0);
  CHECK(s.rand_error_thinned.value == 0.0);
  CHECK(s.warping_error.value == 0.0);
  CHECK(s.rand_error.threshold == 0.0f);  // ties go to the first (lowest) threshold
  CHECK(s.mean_iou_at_05 == 1.0);
  CHECK(s.seg_at_05 == 1.0);
  CHECK(s.gt_objects == 2);
}

TEST_CASE("a 1-px gap in a membrane is one merger and costs a third of the Rand score", "[metrics]") {
  const Image gt = two_cells();
  Image prob = gt;
  prob.at(0, 3, 5) = 1.0f;  // the membrane breaks at (x=5, y=3): the two cells merge
  const WarpingResult w = warping_error(prob, gt, 0.5f);
  CHECK(w.mismatches == 1);
  CHECK(w.error == Approx(1.0 / 77.0));
  CHECK(w.mergers == 1);
  CHECK(w.splits == 0);
  CHECK(w.topological_errors() == 1);
  // Over the 70 gt-foreground pixels the single predicted object holds both 35-px cells:
  // split = (35^2 + 35^2) / (35^2 + 35^2) = 1, merge = 2450 / 70^2 = 1/2, V_rand = 2/3.
  const RandScores r = rand_at_threshold(prob, gt, 0.5f);
  CHECK(r.split == Approx(1.0));
  CHECK(r.merge == Approx(0.5));
  CHECK(r.fscore == Approx(2.0 / 3.0));
  CHECK(r.error() == Approx(1.0 / 3.0));
  // Pixel-wise it is almost nothing: 1 of 77 pixels, F1 = 2*70 / (2*70 + 1).
  CHECK(pixel_mismatch(prob, gt, 0.5f) == Approx(1.0 / 77.0));
  CHECK(pixel_error(prob, gt, 0.5f) == Approx(1.0 - 140.0 / 141.0));
}

TEST_CASE("merging two cells raises the Rand error and splitting one lowers the split score", "[metrics]") {
  const Image gt = two_cells();
  Image merged = gt;
  for (int y = 0; y < 7; ++y) merged.at(0, y, 5) = 1.0f;  // membrane gone
  const double merged_err = rand_at_threshold(merged, gt, 0.5f).error();
  CHECK(merged_err == Approx(1.0 / 3.0));
  CHECK(merged_err > rand_at_threshold(gt, gt, 0.5f).error());
  const WarpingResult wm = warping_error(merged, gt, 0.5f);
  // Adding any pixel of the lost membrane would join the two gt cells: none is simple, all 7
  // stay, and as one connected group they are one merger.
  CHECK(wm.mismatches == 7);
  CHECK(wm.mergers == 1);
  CHECK(wm.topological_errors() == 1);

  // One 5x9 cell cut in two by a membrane column at x = 4: two 20-px pieces and 5 singletons.
  const Image one = from_rows({"#########", "#########", "#########", "#########", "#########"});
  const Image cut = from_rows({"####.####", "####.####", "####.####", "####.####", "####.####"});
  const RandScores r = rand_at_threshold(cut, one, 0.5f);
  const double split = (400.0 + 400.0 + 5.0) / (45.0 * 45.0);
  CHECK(r.merge == Approx(1.0));
  CHECK(r.split == Approx(split));
  CHECK(r.fscore == Approx(2.0 * split / (1.0 + split)));
  const WarpingResult ws = warping_error(cut, one, 0.5f);
  CHECK(ws.splits == 1);
  CHECK(ws.mergers == 0);
  CHECK(ws.mismatches == 1);
  CHECK(ws.topological_errors() == 1);
}

TEST_CASE("predicted background inside a gt cell counts as singleton objects", "[metrics]") {
  const LabelImage gt = labels_from_rows({"11", "11"});
  const LabelImage seg = labels_from_rows({"11", "10"});
  // sum p_ij^2 = 3^2 + 1 (singleton), sum t^2 = 4^2, sum s^2 = 3^2 + 1.
  const RandScores r = rand_scores(seg, gt);
  CHECK(r.merge == Approx(1.0));
  CHECK(r.split == Approx(10.0 / 16.0));
  CHECK(r.fscore == Approx(2.0 * (10.0 / 16.0) / (1.0 + 10.0 / 16.0)));
  CHECK(rand_fscore(seg, gt) == Approx(r.fscore));
  // gt background pixels are ignored whatever the segmentation says there.
  const LabelImage gt2 = labels_from_rows({"110", "110"});
  const LabelImage seg2 = labels_from_rows({"112", "112"});
  CHECK(rand_fscore(seg2, gt2) == 1.0);
  // No gt foreground: undefined.
  CHECK(std::isnan(rand_fscore(seg2, labels_from_rows({"000", "000"}))));
}

TEST_CASE("a 1-px boundary shift is free for warping but not for pixel error", "[metrics]") {
  const Image gt = two_cells();
  Image prob = gt;
  for (int y = 0; y < 7; ++y) {
    prob.at(0, y, 5) = 1.0f;
    prob.at(0, y, 6) = 0.0f;  // membrane moved from x = 5 to x = 6
  }
  const WarpingResult w = warping_error(prob, gt, 0.5f);
  CHECK(w.mismatches == 0);
  CHECK(w.error == 0.0);
  CHECK(w.topological_errors() == 0);
  for (size_t i = 0; i < prob.data.size(); ++i) REQUIRE(w.warped.data[i] == prob.data[i]);
  // tp = 77 - 14 = 63, fp = fn = 7: F1 = 126 / 140 = 0.9.
  CHECK(pixel_error(prob, gt, 0.5f) == Approx(0.1));
  CHECK(pixel_mismatch(prob, gt, 0.5f) == Approx(14.0 / 77.0));
  const PixelStats ps = pixel_stats(prob, gt, 0.5f);
  CHECK(ps.tp == 63);
  CHECK(ps.fp == 7);
  CHECK(ps.fn == 7);
  CHECK(ps.tn == 0);
}

TEST_CASE("warping classifies object and hole errors", "[metrics]") {
  const Image gt = from_rows({
      ".......",
      ".#####.",
      ".#####.",
      ".#####.",
      ".#####.",
      ".......",
  });
  SECTION("an extra blob is one object addition") {
    const Image bg(1, 6, 7, 0.0f);
    Image prob = bg;
    prob.at(0, 2, 2) = prob.at(0, 2, 3) = prob.at(0, 3, 2) = prob.at(0, 3, 3) = 1.0f;
    const WarpingResult w = warping_error(prob, bg, 0.5f);
    CHECK(w.mismatches == 4);  // warping cannot create an object: every pixel stays
    CHECK(w.object_additions == 1);
    CHECK(w.topological_errors() == 1);
  }
  SECTION("a missed cell is one object deletion, the rest of it warps away") {
    const Image prob(1, 6, 7, 0.0f);
    const WarpingResult w = warping_error(prob, gt, 0.5f);
    CHECK(w.mismatches == 1);
    CHECK(w.object_deletions == 1);
    CHECK(w.topological_errors() == 1);
  }
  SECTION("a 1-px hole inside a cell is a hole addition") {
    Image prob = gt;
    prob.at(0, 2, 3) = 0.0f;
    const WarpingResult w = warping_error(prob, gt, 0.5f);
    CHECK(w.mismatches == 1);
    CHECK(w.hole_additions == 1);
    CHECK(w.topological_errors() == 1);
    CHECK(pixel_mismatch(prob, gt, 0.5f) == Approx(1.0 / 42.0));
  }
  SECTION("warping error never exceeds the pixel mismatch") {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    Image prob(1, 6, 7);
    for (float& v : prob.data) v = u(rng);
    for (float t : isbi_thresholds()) {
      const WarpingResult w = warping_error(prob, gt, t);
      CHECK(w.error <= pixel_mismatch(prob, gt, t) + 1e-12);
      CHECK(w.topological_errors() >= (w.mismatches > 0 ? 1 : 0));
    }
  }
}

namespace {

// Foreground 4-components and background 8-components of a 0/1 image, the outside counting as
// background (one padded frame).
std::pair<int, int> topology(const Image& im) {
  const int h = im.height, w = im.width;
  int fg = 0, bg = 0;
  label_components(im, 4, &fg);
  std::vector<uint8_t> pad(static_cast<size_t>(h + 2) * (w + 2), 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) pad[static_cast<size_t>(y + 1) * (w + 2) + x + 1] = im.at(0, y, x) > 0.5f ? 0 : 1;
  label_components(pad, h + 2, w + 2, 8, &bg);
  return {fg, bg};
}

uint8_t code_at(const Image& im, int x, int y) {
  static const int dx[8] = {-1, 0, 1, 1, 1, 0, -1, -1}, dy[8] = {-1, -1, -1, 0, 1, 1, 1, 0};
  uint8_t c = 0;
  for (int k = 0; k < 8; ++k) {
    const int nx = x + dx[k], ny = y + dy[k];
    if (nx >= 0 && nx < im.width && ny >= 0 && ny < im.height && im.at(0, ny, nx) > 0.5f)
      c |= static_cast<uint8_t>(1u << k);
  }
  return c;
}

}  // namespace

TEST_CASE("simple points agree with a global topology check by brute force", "[metrics]") {
  // In 2-D a flip is simple exactly when it changes neither the number of foreground
  // 4-components nor of background 8-components (outside = background).
  std::mt19937 rng(99);
  std::bernoulli_distribution coin(0.55);
  int simple = 0, non_simple = 0;
  for (int trial = 0; trial < 60; ++trial) {
    Image im(1, 7, 8);
    for (float& v : im.data) v = coin(rng) ? 1.0f : 0.0f;
    const auto before = topology(im);
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x) {
        Image f = im;
        f.at(0, y, x) = 1.0f - f.at(0, y, x);
        const bool preserved = topology(f) == before;
        const bool s = is_simple_point(code_at(im, x, y));
        (s ? simple : non_simple)++;
        INFO("trial " << trial << " x " << x << " y " << y);
        REQUIRE(s == preserved);
      }
  }
  CHECK(simple > 100);
  CHECK(non_simple > 100);
}

TEST_CASE("warping preserves the gt topology and leaves only non-simple mismatches", "[metrics]") {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int trial = 0; trial < 40; ++trial) {
    const int h = 12 + trial % 7, w = 14 + trial % 5;
    // Blobby random gt and prediction: smoothed noise, thresholded / used as probabilities.
    auto blobs = [&]() {
      Image a(1, h, w);
      for (float& v : a.data) v = u(rng);
      Image b(1, h, w);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          float sum = 0.0f;
          int n = 0;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx)
              if (y + dy >= 0 && y + dy < h && x + dx >= 0 && x + dx < w) {
                sum += a.at(0, y + dy, x + dx);
                ++n;
              }
          b.at(0, y, x) = sum / n;
        }
      return b;
    };
    const Image gt = binarize(blobs(), 0.5f);
    const Image prob = blobs();
    const float t = 0.5f;
    const WarpingResult wr = warping_error(prob, gt, t);
    CHECK(topology(wr.warped) == topology(gt));
    const Image pred = binarize(prob, t);
    const auto [fg0, bg0] = topology(wr.warped);
    int64_t mism = 0;
    bool any_merge = false, any_split = false;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        if (wr.warped.at(0, y, x) == pred.at(0, y, x)) continue;
        ++mism;
        CHECK_FALSE(is_simple_point(code_at(wr.warped, x, y)));
        Image flipped = wr.warped;
        flipped.at(0, y, x) = 1.0f - flipped.at(0, y, x);
        const int fg1 = topology(flipped).first;
        if (wr.warped.at(0, y, x) < 0.5f && fg1 < fg0) any_merge = true;
        if (wr.warped.at(0, y, x) > 0.5f && fg1 > fg0) any_split = true;
      }
    CHECK(mism == wr.mismatches);
    CHECK((wr.mergers > 0) == any_merge);
    CHECK((wr.splits > 0) == any_split);
    CHECK(wr.error == Approx(static_cast<double>(mism) / (h * w)));
  }
}

TEST_CASE("thinning: boundaries become 1 px, the thinned Rand forgives thick membranes", "[metrics]") {
  // A 3-px membrane between two labels thins to its middle column; a 2-px one to 1 column.
  const LabelImage thick = labels_from_rows({"11000222", "11000222", "11000222"});
  const LabelImage thin = thin_boundaries(thick);
  CHECK(thin.data == labels_from_rows({"11102222", "11102222", "11102222"}).data);
  const LabelImage two = labels_from_rows({"1100222", "1100222"});
  const LabelImage two_thin = thin_boundaries(two);
  int zeros = 0;
  for (int32_t v : two_thin.data) zeros += v == 0;
  CHECK(zeros == 2);
  // A region out of reach of any label stays 0; an image with no labels is unchanged.
  CHECK(thin_boundaries(labels_from_rows({"000", "000"})).data == labels_from_rows({"000", "000"}).data);

  // gt: 1-px membrane at x = 5; prediction: 3-px membrane at x = 4..6.
  const Image gt = two_cells();
  Image prob = gt;
  for (int y = 0; y < 7; ++y) prob.at(0, y, 4) = prob.at(0, y, 6) = 0.0f;
  const RandScores plain = rand_at_threshold(prob, gt, 0.5f, false);
  // 28-px objects on each side plus 14 singletons: split = (784 + 784 + 14) / 2450.
  CHECK(plain.split == Approx(1582.0 / 2450.0));
  CHECK(plain.merge == Approx(1.0));
  CHECK(plain.error() > 0.0);
  const RandScores thinned = rand_at_threshold(prob, gt, 0.5f, true);
  CHECK(thinned.error() == Approx(0.0).margin(1e-12));
}

TEST_CASE("IoU per class on a hand-drawn 4x4 case", "[metrics]") {
  const Image gt = from_rows({"##..", "##..", "....", "..##"});
  const Image pred = from_rows({"###.", "#...", "....", "..#."});
  // cell: |P| = 5, |G| = 6, |P ∩ G| = 4 -> 4/7; membrane: |P| = 11, |G| = 10, |P ∩ G| = 9 -> 9/12.
  const std::vector<double> iou = iou_per_class(pred, gt, 2);
  REQUIRE(iou.size() == 2);
  CHECK(iou[1] == Approx(4.0 / 7.0));
  CHECK(iou[0] == Approx(9.0 / 12.0));
  const std::vector<double> iou3 = iou_per_class(pred, gt, 3);
  CHECK(std::isnan(iou3[2]));  // class 2 in neither image
  CHECK_THROWS_AS(iou_per_class(from_rows({"2"}), from_rows({"0"}), 2), Error);
  CHECK_THROWS_AS(iou_per_class(pred, from_rows({"#."}), 2), Error);
}

TEST_CASE("CTC SEG: one matched and one unmatched reference", "[metrics]") {
  const LabelImage ref = labels_from_rows({
      "1100",
      "1100",
      "0000",
      "2222",
  });
  const LabelImage pred = labels_from_rows({
      "3300",
      "3030",
      "0000",
      "4400",
  });
  // R1 (4 px) vs S3 (4 px): overlap 3 > 2 -> J = 3 / (4 + 4 - 3) = 0.6.
  // R2 (4 px) vs S4 (2 px): overlap 2 is not > 0.5 * 4 -> 0.  SEG = (0.6 + 0) / 2.
  CHECK(seg_score(pred, ref) == Approx(0.3));
  CHECK(seg_score(ref, ref) == 1.0);
  CHECK(std::isnan(seg_score(pred, labels_from_rows({"0000", "0000", "0000", "0000"}))));
}

TEST_CASE("threshold selection picks the best threshold", "[metrics]") {
  const Image gt = two_cells();
  Image prob(1, 7, 11);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 11; ++x) prob.at(0, y, x) = gt.at(0, y, x) > 0.5f ? 0.8f : 0.45f;
  prob.at(0, 3, 5) = 0.65f;  // a weak spot in the membrane
  // t < 0.45: everything is cell; 0.45 <= t < 0.65: merged through the weak spot;
  // 0.65 <= t < 0.8: perfect; t >= 0.8: nothing is cell. Among 0.0 .. 0.9 only 0.7 is perfect.
  const IsbiScores s = evaluate_isbi(prob, gt);
  REQUIRE(s.per_threshold.size() == 10);
  CHECK(s.pixel_error.threshold == Approx(0.7f));
  CHECK(s.rand_error.threshold == Approx(0.7f));
  CHECK(s.rand_error_thinned.threshold == Approx(0.7f));
  CHECK(s.warping_error.threshold == Approx(0.7f));
  CHECK(s.pixel_error.value == 0.0);
  CHECK(s.rand_error.value == 0.0);
  CHECK(s.warping_error.value == 0.0);
  const IsbiThresholdScores& at5 = s.per_threshold[5];
  CHECK(at5.threshold == Approx(0.5f));
  CHECK(at5.mergers == 1);
  CHECK(at5.rand_error == Approx(1.0 / 3.0));
  CHECK(at5.objects == 1);
  CHECK(s.per_threshold[7].objects == 2);
  CHECK(s.per_threshold[8].pixel_error == 1.0);  // nothing predicted as cell: F1 = 0
  // SEG at 0.5: the merged 71-px object holds all of each 35-px cell: J = 35 / 71 for both.
  CHECK(s.seg_at_05 == Approx(35.0 / 71.0));
  // IoU at 0.5: cell = 71 vs 70 -> 70/71, membrane = 6 vs 7 -> 6/7.
  CHECK(s.iou_at_05[1] == Approx(70.0 / 71.0));
  CHECK(s.iou_at_05[0] == Approx(6.0 / 7.0));

  // Reports.
  const std::string csv = to_csv(s);
  int lines = 0;
  for (char c : csv) lines += c == '\n';
  CHECK(lines == 11);
  CHECK(csv.rfind("threshold,pixel_error,", 0) == 0);
  const nlohmann::json j = nlohmann::json::parse(to_json(s));
  CHECK(j["best"]["rand_error"]["threshold"].get<double>() == Approx(0.7));
  CHECK(j["per_threshold"].size() == 10);
  CHECK(j["per_threshold"][5]["mergers"].get<int>() == 1);
  CHECK(j["at_0.5"]["iou_per_class"].size() == 2);
  const std::string table = format_table(s);
  CHECK(table.find("best Rand error") != std::string::npos);
  CHECK(table.find("0.70") != std::string::npos);
}

TEST_CASE("metrics reject mismatched inputs", "[metrics]") {
  const Image a(1, 4, 4), b(1, 4, 5), c(2, 4, 4);
  CHECK_THROWS_AS(pixel_error(a, b, 0.5f), Error);
  CHECK_THROWS_AS(warping_error(a, b, 0.5f), Error);
  CHECK_THROWS_AS(evaluate_isbi(c, c), Error);
  CHECK_THROWS_AS(rand_scores(LabelImage(2, 2), LabelImage(2, 3)), Error);
  Image bad(1, 1, 2);
  bad.data = {1.0f, -1.0f};
  CHECK_THROWS_AS(to_labels(bad), Error);
  bad.data = {1.0f, 2.5f};
  CHECK_THROWS_AS(to_labels(bad), Error);
  bad.data = {1.0f, 2.0f};
  CHECK(to_labels(bad).data == std::vector<int32_t>{1, 2});
}

TEST_CASE("V_info: hand-computed splits, merges and singletons", "[metrics][vinfo]") {
  // gt: two 2-px objects (n = 4). The prediction splits the second one into two 1-px objects:
  // H(T) = ln 2, H(S) = 1.5 ln 2, S refines T so I = H(T) = ln 2:
  // split = I / H(S) = 2/3, merge = I / H(T) = 1, V_info = 2 (2/3) / (5/3) = 0.8.
  const LabelImage gt = labels_from_rows({"11022"});
  const InfoScores split = info_scores(labels_from_rows({"11034"}), gt);
  CHECK(split.n == 4);
  CHECK(split.split == Approx(2.0 / 3.0));
  CHECK(split.merge == Approx(1.0));
  CHECK(split.fscore == Approx(0.8));
  // The same figures when the second object is predicted as background: each such pixel is its
  // own singleton object (were the background one object, the score would be 1).
  const InfoScores bg = info_scores(labels_from_rows({"11000"}), gt);
  CHECK(bg.split == Approx(2.0 / 3.0));
  CHECK(bg.fscore == Approx(0.8));
  // A merge: three 2-px gt objects, the prediction joins the first two. T refines S, so I = H(S):
  // split = 1, merge = H(S) / H(T) = (ln 3 - (2/3) ln 2) / ln 3.
  const LabelImage gt3 = labels_from_rows({"11022033"});
  const InfoScores merged = info_scores(labels_from_rows({"11111033"}), gt3);
  const double m = (std::log(3.0) - 2.0 / 3.0 * std::log(2.0)) / std::log(3.0);
  CHECK(merged.split == Approx(1.0));
  CHECK(merged.merge == Approx(m));
  CHECK(merged.fscore == Approx(2.0 * m / (1.0 + m)));
  // Identical segmentations score 1; pixels outside the gt foreground do not count.
  CHECK(info_scores(labels_from_rows({"11022"}), gt).fscore == Approx(1.0));
  CHECK(info_scores(labels_from_rows({"11922"}), gt).fscore == Approx(1.0));
  // One predicted object over everything: H(S) = 0, scored 0 as the challenge's code does.
  const InfoScores one = info_scores(labels_from_rows({"11111"}), gt);
  CHECK(one.merge == 1.0);
  CHECK(one.split == 0.0);
  CHECK(one.fscore == 0.0);
  // No gt foreground: undefined.
  CHECK(std::isnan(info_scores(labels_from_rows({"11"}), labels_from_rows({"00"})).fscore));
  CHECK_THROWS_AS(info_scores(labels_from_rows({"11"}), gt), Error);
}

TEST_CASE("V_rand / V_info thin the prediction only, as the challenge's code", "[metrics][vinfo]") {
  // gt: a 3-px membrane at x = 4..6; the prediction draws it 1 px wide at x = 4. The gt's
  // membrane is left out by the foreground restriction, so nothing is wrong. (Thinning the gt
  // too would give its x = 4 column to the left cell, which the prediction calls membrane.)
  const Image gt = from_rows({"####...####", "####...####", "####...####"});
  const Image prob = from_rows({"####.######", "####.######", "####.######"});
  CHECK(rand_at_threshold(prob, gt, 0.5f, true).error() == Approx(0.0).margin(1e-12));
  CHECK(info_at_threshold(prob, gt, 0.5f, true).fscore == Approx(1.0));
  // A thick predicted membrane over a 1-px gt one costs singletons before thinning, not after.
  const Image gt1 = two_cells();
  Image thick = gt1;
  for (int y = 0; y < 7; ++y) thick.at(0, y, 4) = thick.at(0, y, 6) = 0.0f;
  CHECK(info_at_threshold(thick, gt1, 0.5f, false).fscore < 0.99);
  CHECK(info_at_threshold(thick, gt1, 0.5f, true).fscore == Approx(1.0));
  // evaluate_isbi reports both challenge scores at their best thresholds.
  const IsbiScores s = evaluate_isbi(thick, gt1);
  CHECK(s.v_rand() == Approx(1.0));
  CHECK(s.v_info() == Approx(1.0));
  const IsbiScores merged = evaluate_isbi(Image(1, 7, 11, 1.0f), gt1);  // everything cell
  CHECK(merged.v_info() == Approx(0.0));
  CHECK(merged.v_rand() == Approx(2.0 / 3.0));
  const nlohmann::json j = nlohmann::json::parse(to_json(s));
  CHECK(j["v_info"].get<double>() == Approx(1.0));
  CHECK(j["best"]["info_error_thinned"]["value"].get<double>() == Approx(0.0).margin(1e-12));
  CHECK(to_csv(s).find("info_error_thinned") != std::string::npos);
  CHECK(format_table(s).find("V_info") != std::string::npos);
}
