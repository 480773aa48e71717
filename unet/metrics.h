// Segmentation metrics of the ISBI 2012 EM segmentation challenge (Arganda-Carreras et al.,
// "Crowdsourcing the creation of image segmentation algorithms for connectomics", Front. Neuroanat.
// 9:142, 2015; reference code: the trainableSegmentation.metrics package of Fiji, classes
// PixelError, RandError, WarpingError), plus per-class IoU and the Cell Tracking Challenge SEG.
//
// Conventions (see docs/metrics.md for the formulas and what differs from the official code):
//   * prob: 1 channel, the probability of class 1 = cell interior (ISBI labels: white = cell,
//     black = membrane). At threshold t a pixel is CELL iff prob > t (strictly, as Fiji).
//   * gt: 1 channel of class indices, cell iff gt > 0.5 (so {0,1} and {0,255} labels both work).
//   * Objects are the 4-connected components of cell pixels; membrane pixels are background
//     (label 0). Outside the image counts as background (membrane).
//   * "Undefined" values (0/0, e.g. the Rand score when the ground truth has no cell pixel, the
//     IoU of a class absent from both images) are NaN; JSON writes them as null.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "unet/image.h"

namespace unet {

// ---- Label images -----------------------------------------------------------------------------
// Instance labels: 0 = background / boundary, every positive value = one object.
struct LabelImage {
  int height = 0, width = 0;
  std::vector<int32_t> data;  // data[y * width + x]

  LabelImage() = default;
  LabelImage(int h, int w, int32_t v = 0) : height(h), width(w), data(static_cast<size_t>(h) * w, v) {}
  int64_t pixels() const { return static_cast<int64_t>(height) * width; }
  int32_t& at(int y, int x) { return data[static_cast<size_t>(y) * width + x]; }
  int32_t at(int y, int x) const { return data[static_cast<size_t>(y) * width + x]; }
  int32_t max_label() const;
};

// 1 channel 0/1 image: 1 where prob > t.
Image binarize(const Image& prob, float t);

// Connected components of the foreground, labelled 1..count in raster order of their first pixel.
// connectivity is 4 or 8. For an Image the foreground is value > 0.5 (1 channel required); for a
// mask (h*w bytes, row-major) it is value != 0.
LabelImage label_components(const Image& binary, int connectivity = 4, int* count = nullptr);
LabelImage label_components(const std::vector<uint8_t>& mask, int height, int width, int connectivity = 4,
                            int* count = nullptr);

// An instance image stored as floats (1 channel, non-negative integer ids) as a LabelImage.
LabelImage to_labels(const Image& instances);

// ---- Pixel error (Fiji PixelError) ------------------------------------------------------------
// Confusion counts of the pixel classification at threshold t with CELL as the positive class.
struct PixelStats {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
  double fscore() const;    // 2tp / (2tp + fp + fn); NaN when tp = fp = fn = 0
  double error() const;     // 1 - fscore(): the ISBI "pixel error"
  double mismatch() const;  // (fp + fn) / (tp + fp + fn + tn)
};
PixelStats pixel_stats(const Image& prob, const Image& gt, float t);
double pixel_error(const Image& prob, const Image& gt, float t);     // 1 - F1 (cell positive)
double pixel_mismatch(const Image& prob, const Image& gt, float t);  // fraction of wrong pixels

// ---- Foreground-restricted Rand score (Fiji RandError, N^2 normalisation) ---------------------
// Over the n pixels where gt > 0, with p_ij = |gt object i ∩ seg object j| / n, t_i = sum_j p_ij
// (ground-truth marginal), s_j = sum_i p_ij (segmentation marginal), and every seg-background
// pixel (seg = 0) inside the gt foreground counted as its own singleton object:
//   split = sum p_ij^2 / sum t_i^2,   merge = sum p_ij^2 / sum s_j^2,
//   fscore = V_rand = 2 split merge / (split + merge),   error = 1 - fscore.
struct RandScores {
  double split = 0.0, merge = 0.0, fscore = 0.0;
  int64_t n = 0;  // ground-truth foreground pixels scored
  double error() const { return 1.0 - fscore; }
};
RandScores rand_scores(const LabelImage& seg, const LabelImage& gt);
double rand_fscore(const LabelImage& seg, const LabelImage& gt);

// Boundary thinning: grows the labelled objects into the background by breadth-first region
// growing (nearest objects first); a background pixel joins object L when every labelled pixel
// among its 4-neighbours is L, and stays background for good once it touches two different labels.
// The result keeps every object (none is created, merged or split) and leaves boundaries 1 pixel
// wide (background pixels 4-adjacent to two different objects); background not reachable from any
// object stays 0.
LabelImage thin_boundaries(const LabelImage& labels);

// Rand scores of the binarised prediction (objects = 4-connected cell components) against the
// ground truth objects; thinned = thin the prediction's boundaries first (the post-2015
// leaderboard's V_rand: as the challenge's code, only the prediction is thinned; the ground truth's
// membrane pixels are left out by the foreground restriction anyway).
RandScores rand_at_threshold(const Image& prob, const Image& gt, float t, bool thinned = false);

// ---- Foreground-restricted information-theoretic score (V_info; Fiji VariationOfInformation) --
// Over the n gt-foreground pixels, with the same singleton rule as the Rand score (each
// seg-background pixel inside the gt foreground is its own object), T = ground truth, S =
// segmentation, entropies in nats:
//   split = I(S;T) / H(S),   merge = I(S;T) / H(T),   fscore = V_info = 2 split merge / (split + merge)
// Degenerate cases as Fiji: H(T) = 0 gives merge 0, split 1; then H(S) = 0 gives merge 1, split 0
// (so a one-object segmentation scores 0); NaN when the gt has no foreground.
struct InfoScores {
  double split = 0.0, merge = 0.0, fscore = 0.0;
  int64_t n = 0;
  double error() const { return 1.0 - fscore; }
};
InfoScores info_scores(const LabelImage& seg, const LabelImage& gt);
// V_info of the binarised prediction against the gt objects (thinned: prediction thinned first).
InfoScores info_at_threshold(const Image& prob, const Image& gt, float t, bool thinned = true);

// ---- Warping error (Jain et al., CVPR 2010; Fiji WarpingError) --------------------------------
// Simple-point test on a 3x3 neighbourhood, foreground (cell) 4-connected, background (membrane)
// 8-connected, as Fiji (simple2DBertrand(patch, 4)). The neighbourhood code has bit k set when
// neighbour k is foreground, k in circular order: 0 NW, 1 N, 2 NE, 3 E, 4 SE, 5 S, 6 SW, 7 W.
// A point is simple iff flipping it changes neither the number of foreground 4-components nor
// background 8-components touching it: T4(foreground) == 1 and T8(background) == 1.
bool is_simple_point(uint8_t neighbourhood);

// The ground truth is warped toward the binarised prediction by flipping only simple mismatched
// pixels, greedily, largest |prob - t| first (re-examining a pixel whenever a neighbour flips)
// until every remaining mismatch is non-simple. Each remaining mismatch is then classified by the
// topological change its flip would make to the warped ground truth, and same-class mismatches
// that touch (8-connectivity) are counted as one error.
struct WarpingResult {
  int64_t mismatches = 0;    // pixels where the warped ground truth still differs from prediction
  double error = 0.0;        // mismatches / pixels: the ISBI "warping error"
  int mergers = 0;           // prediction joins 2+ ground-truth objects
  int splits = 0;            // prediction cuts a ground-truth object into 2+ pieces
  int object_additions = 0;  // prediction has an object the ground truth lacks
  int object_deletions = 0;  // prediction misses a ground-truth object
  int hole_additions = 0;    // prediction encloses background the ground truth does not
  int hole_deletions = 0;    // prediction fills / opens a ground-truth hole
  Image warped;              // the warped ground truth (1 channel, 0/1)
  int topological_errors() const {
    return mergers + splits + object_additions + object_deletions + hole_additions + hole_deletions;
  }
};
WarpingResult warping_error(const Image& prob, const Image& gt, float t);

// ---- IoU and Cell Tracking Challenge SEG ------------------------------------------------------
// Jaccard index |P_k ∩ G_k| / |P_k ∪ G_k| of each class k in [0, num_classes); images hold class
// indices (rounded to the nearest integer; out of range throws). NaN for a class in neither image.
std::vector<double> iou_per_class(const Image& pred_classes, const Image& gt_classes, int num_classes);

// CTC SEG: for every reference object R (gt id > 0) the predicted object S with
// |R ∩ S| > 0.5 |R| (at most one can qualify) scores J = |R ∩ S| / |R ∪ S|, else 0;
// SEG = mean over reference objects. NaN when the reference has no object.
double seg_score(const LabelImage& pred_instances, const LabelImage& gt_instances);

// ---- The ISBI evaluation over thresholds ------------------------------------------------------
struct IsbiThresholdScores {
  float threshold = 0.0f;
  double pixel_error = 0.0;         // 1 - F1, cell positive
  double pixel_mismatch = 0.0;      // fraction of wrongly classified pixels
  RandScores rand;                  // foreground-restricted Rand, no thinning
  RandScores rand_thinned;          // the same after thinning the prediction's boundaries (V_rand)
  InfoScores info_thinned;          // V_info after thinning the prediction's boundaries
  double rand_error = 0.0;          // 1 - rand.fscore
  double rand_error_thinned = 0.0;  // 1 - rand_thinned.fscore = 1 - V_rand
  double info_error_thinned = 0.0;  // 1 - info_thinned.fscore = 1 - V_info
  double warping_error = 0.0;
  int64_t warping_mismatches = 0;
  int splits = 0, mergers = 0, topological_errors = 0;
  int objects = 0;  // predicted objects (4-connected cell components)
};

struct IsbiBest {
  double value = 0.0;   // the smallest error over the thresholds (NaN values ignored)
  float threshold = 0;  // the first threshold reaching it (NaN if every value was NaN)
};

struct IsbiScores {
  int height = 0, width = 0;
  int gt_objects = 0;
  std::vector<IsbiThresholdScores> per_threshold;
  IsbiBest pixel_error, rand_error, rand_error_thinned, info_error_thinned, warping_error;
  // The challenge's scores (higher is better): V_rand = 1 - rand_error_thinned.value,
  // V_info = 1 - info_error_thinned.value, each at its own best threshold.
  double v_rand() const { return 1.0 - rand_error_thinned.value; }
  double v_info() const { return 1.0 - info_error_thinned.value; }
  std::vector<double> iou_at_05;  // [membrane, cell] IoU of the prediction binarised at 0.5
  double mean_iou_at_05 = 0.0;
  double seg_at_05 = 0.0;  // CTC SEG of the 4-connected cell components at 0.5 vs the gt's
};

// 0.0, 0.1, ..., 0.9 (computed as i / 10, not accumulated).
std::vector<float> isbi_thresholds();

// Every metric at every threshold, the best of each, IoU and SEG at 0.5. prob and gt: 1 channel,
// same size. Thresholds run in parallel (OpenMP); the result does not depend on the thread count.
IsbiScores evaluate_isbi(const Image& prob, const Image& gt, const std::vector<float>& thresholds = isbi_thresholds());

std::string format_table(const IsbiScores& s);  // human-readable, one line per threshold + best
std::string to_csv(const IsbiScores& s);        // header + one row per threshold
std::string to_json(const IsbiScores& s);       // everything; NaN as null

}  // namespace unet
