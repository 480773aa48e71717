// The loss weight map of the U-Net paper (Ronneberger et al. 2015, Section 3, Eq. 2):
//
//   w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
//
// w_c balances the class frequencies, d1 / d2 are the distances to the border of the nearest and
// the second-nearest cell. The building blocks (exact Euclidean distance transform, connected
// components, separation borders between touching cells) are exposed for reuse.
// See docs/weightmap_augment.md for the conventions chosen where the paper is silent.
#pragma once
#include <cstdint>
#include <vector>

#include "unet/image.h"

namespace unet {

// ---- Exact Euclidean distance transform ----------------------------------------------------------
// Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions" (2012): one 1-D lower
// envelope of parabolas per column, then per row; O(h*w) in total and exact.
//
// feature_mask: h*w bytes, row-major, nonzero = feature pixel. Returns for every pixel the SQUARED
// Euclidean distance (in pixels^2; an integer, exact in float below 2^24) to the nearest feature
// pixel; +infinity everywhere when the mask holds no feature pixel.
std::vector<float> edt_squared(const std::vector<uint8_t>& feature_mask, int h, int w);
// As edt_squared, but the plain (square-rooted) distance.
std::vector<float> edt(const std::vector<uint8_t>& feature_mask, int h, int w);

// The 1-D transform underneath: d[q] = min_p ((q - p)^2 + f[p]) for q, p in [0, n).
// f may hold +infinity (such positions never win); d is all +infinity when f is.
// v (n ints) and z (n + 1 doubles) are scratch.
void edt_1d(const float* f, int n, float* d, int* v, double* z);

// ---- Connected components ------------------------------------------------------------------------
// Labels the connected components of (mask != 0) with 1..count in raster order of their first
// pixel (0 = not in the mask). connectivity is 4 or 8. Returns the labels (h*w, row-major).
std::vector<int32_t> connected_components(const std::vector<uint8_t>& mask, int h, int w, int connectivity,
                                          int* count = nullptr);

// Relabels an instance mask to 1..count (0 stays 0; each distinct positive value = one cell,
// numbered by first appearance in raster order). Values must be non-negative integers.
std::vector<int32_t> compact_instances(const Image& instances, int* count = nullptr);

// ---- Separation borders --------------------------------------------------------------------------
// Given an instance mask (1 channel; 0 = background, each positive value = one cell) in which
// touching cells share a border, inserts a background border between them: a cell pixel whose 3x3
// neighbourhood (8-neighbours) contains a pixel of a DIFFERENT cell becomes background. This is the
// morphological "pixel of A inside the 3x3 dilation of all other cells" rule; two cells sharing an
// edge get a 2-px border (both sides of the contact are removed), cells touching only diagonally get
// 1 px per side. Pixels touching only the background are untouched.
struct SeparatedInstances {
  Image labels;     // 1 channel: foreground_class on remaining cell pixels, 0 elsewhere
  Image instances;  // 1 channel: the input ids, with the border pixels set to 0
};
SeparatedInstances make_separation_borders(const Image& instances, int foreground_class = 1);

// ---- Weight map ----------------------------------------------------------------------------------
enum class ClassBalance {
  kNone,              // w_c = 1 for every class
  kMaxOne,            // w_c(l) = n_max / n_l: the most frequent class gets weight 1 (default)
  kInverseFrequency,  // w_c(l) = N / (K * n_l): the weights average to 1 over the pixels
};

struct WeightMapParams {
  float w0 = 10.0f;    // paper: w0 = 10
  float sigma = 5.0f;  // paper: sigma ~ 5 px
  int num_classes = 2;
  ClassBalance balance = ClassBalance::kMaxOne;
  // Fixed per-class weights (size num_classes), e.g. computed over the whole training set with
  // class_weights_from_counts; when empty, w_c comes from this image's own class frequencies.
  std::vector<float> class_weights;
  int foreground_class = 1;  // the class whose connected components are the cells
  int connectivity = 4;      // 4 or 8; cells of ISBI-style labels are 4-connected components
  // The border term is evaluated wherever it can exceed `cutoff`; beyond that the term (< cutoff)
  // is dropped. Each cell only influences the pixels within D = sigma * sqrt(2 ln(w0 / cutoff)) of
  // it (21.5 px for the defaults), since d1 + d2 >= d2 > D makes the term smaller than cutoff.
  float cutoff = 1e-3f;
  // The paper's map emphasises the background separating the cells; by default the border term is
  // added only on pixels that belong to no cell (instance id 0) and cell pixels get w_c alone.
  // With true, it is added on every pixel (inside a cell d1 = 0 and d2 = distance to the next cell).
  bool border_term_on_cells = false;
};

// Per-class weights for the given pixel counts; a class with no pixels gets weight 0 (no pixel
// carries it, so its value never enters a map) and never causes a division by zero.
std::vector<float> class_weights_from_counts(const std::vector<int64_t>& counts, ClassBalance balance);
// Counts of the class ids 0..num_classes-1 in a 1-channel label image (other values throw).
std::vector<int64_t> class_counts(const Image& labels, int num_classes);

// d1 / d2 of Eq. 2 for every pixel: the distances to the nearest and the second-nearest cell
// (distance from a pixel to the nearest pixel of that cell; 0 inside the cell itself). Cells are the
// positive ids of `instances` (h*w). Each cell is looked at only within max_distance of its bounding
// box; a distance that is not found within that reach is +infinity (exact whenever it is finite and
// <= max_distance).
struct BorderDistances {
  std::vector<float> d1, d2;
};
BorderDistances border_distances(const std::vector<int32_t>& instances, int h, int w, float max_distance);

// Eq. 2 from class labels (1 channel, ids 0..num_classes-1) and instance ids (1 channel, same size;
// 0 = none, positive = cell). Returns a 1-channel float image.
Image weight_map(const Image& labels, const Image& instances, const WeightMapParams& p = {});
// Eq. 2 from class labels alone: the cells are the p.connectivity-connected components of
// p.foreground_class (ISBI 2012: class 1 = cell interior, class 0 = membrane).
Image weight_map(const Image& labels, const WeightMapParams& p = {});
// Eq. 2 from an instance mask alone: labels are p.foreground_class where the id is positive and 0
// elsewhere. Separation borders are NOT inserted here: call make_separation_borders first and pass
// its labels/instances to the two-argument weight_map when touching cells must be split.
Image weight_map_from_instances(const Image& instances, const WeightMapParams& p = {});

}  // namespace unet
