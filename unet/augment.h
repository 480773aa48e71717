// Training-data augmentation of the U-Net paper (Ronneberger et al. 2015, Section 3.1): random
// elastic deformations from displacement vectors on a coarse 3x3 grid, plus shift, rotation, flips
// and gray-value variation, all composed into ONE sampling map so every output is resampled once.
// Points outside the source image are filled by mirroring (the same extrapolation the paper's
// overlap-tile strategy uses at inference). All randomness comes from an explicit unet::Rng, so a
// sample is reproducible from (seed, offset). See docs/weightmap_augment.md.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "unet/image.h"

namespace unet {

// ---- Mirror extrapolation ------------------------------------------------------------------------
// Reflects index i into [0, n) without repeating the edge pixel: -1 -> 1, -2 -> 2, n -> n-2,
// n+1 -> n-3, applied repeatedly for far points (the pattern has period 2(n-1)); n == 1 gives 0.
int mirror_index(int i, int n);
// The h x w tile whose top-left corner is (y0, x0) in img's coordinates, all channels; pixels
// outside img (on any side, even by more than the image size) are filled by mirror_index.
Image extract_tile_mirrored(const Image& img, int y0, int x0, int h, int w);

// ---- Parameters ----------------------------------------------------------------------------------
enum class Interp { kNearest, kBilinear, kBicubic };

struct AugmentParams {
  // Elastic deformation: displacement vectors on an elastic_grid x elastic_grid control grid that
  // spans the output tile (corners included), each component ~ N(0, elastic_sigma^2) pixels
  // (paper: 3x3 grid, sigma 10 px), interpolated to every pixel with Catmull-Rom (bicubic
  // convolution, a = -0.5); beyond the grid the control values are clamped (replicated).
  float elastic_sigma = 10.0f;
  int elastic_grid = 3;
  // Rotation by an angle drawn uniformly in [-max_rotation_deg, max_rotation_deg] about the tile
  // centre (180 = any angle: microscopy has no preferred orientation).
  float max_rotation_deg = 180.0f;
  // Mirror along each axis, each with probability 1/2 when enabled.
  bool flip_x = true, flip_y = true;
  // Isotropic scale, log-uniform in [min_scale, max_scale] (output pixel -> scale source pixels).
  // The paper does not scale: off by default.
  float min_scale = 1.0f, max_scale = 1.0f;
  // Shift: augment_tile centres the tile on a source pixel drawn uniformly over the whole image
  // (the tile may reach past the border: mirrored). With false it is centred on the image centre.
  bool random_position = true;
  // Gray-value variation, applied to the image only, after resampling, in this order:
  //   gamma:      x <- lo + (hi - lo) * clamp((x - lo) / (hi - lo), 0, 1)^g, g log-uniform in
  //               [1 / max_gamma, max_gamma] (skipped when g == 1)
  //   contrast c uniform in [1 - max_contrast, 1 + max_contrast] about the tile's channel mean m,
  //   brightness b uniform in [-max_brightness, max_brightness] * (hi - lo):
  //               x <- c * x + (1 - c) * m + b
  //   noise:      x <- x + noise_sigma * (hi - lo) * N(0, 1) per pixel
  // [lo, hi] = [value_lo, value_hi] is the nominal value range of the images ([0, 1] by default).
  float max_gamma = 1.25f;
  float max_contrast = 0.15f;
  float max_brightness = 0.08f;
  float noise_sigma = 0.0f;
  float value_lo = 0.0f, value_hi = 1.0f;
  // Resampling of the image (labels and weights always use nearest neighbour). Bicubic is Keys'
  // cubic convolution (a = -0.5); its overshoot is clamped to the source image's value range.
  Interp image_interp = Interp::kBicubic;

  // All augmentation off: deform / augment_tile then only crop (identity geometry, no gray change).
  static AugmentParams none() {
    AugmentParams p;
    p.elastic_sigma = 0.0f;
    p.max_rotation_deg = 0.0f;
    p.flip_x = p.flip_y = false;
    p.max_gamma = 1.0f;
    p.max_contrast = 0.0f;
    p.max_brightness = 0.0f;
    p.noise_sigma = 0.0f;
    return p;
  }
};

// ---- Data ----------------------------------------------------------------------------------------
// One training pair: the image (any channel count) and its 1-channel class labels and loss weights,
// all of the same height and width (labels / weights may be empty: they are then skipped).
struct Sample {
  Image image;
  Image labels;
  Image weights;
};

// Everything random about one augmented sample. The draws are always taken from the Rng in the same
// order and number, whatever the parameters enable, so switching one augmentation off does not
// change the draws of the others.
struct AugmentDraw {
  int out_h = 0, out_w = 0;               // size of the sampled (input) tile
  double center_y = 0.0, center_x = 0.0;  // source point the tile centre ((out - 1) / 2) maps to
  double angle = 0.0;                     // radians
  double scale = 1.0;
  bool flip_y = false, flip_x = false;
  int grid = 0;                       // control grid is grid x grid
  std::vector<float> disp_y, disp_x;  // control displacements in pixels, row-major
  float gamma = 1.0f, contrast = 1.0f, brightness = 0.0f;
  uint64_t noise_seed = 0, noise_offset = 0;  // Rng block of the per-pixel noise
};

// Draws the augmentation of an out_h x out_w tile taken from a src_h x src_w image.
AugmentDraw draw_augmentation(Rng& rng, const AugmentParams& p, int src_h, int src_w, int out_h, int out_w);

// The sampling map of a draw: for every pixel of the out_h x out_w tile, the (sub-pixel) source
// coordinates it is read from. Composition, for tile pixel (y, x), with u = (y, x) - (out - 1) / 2:
//   u += elastic displacement(y, x);  flips negate u's components;  u = scale * R(angle) * u;
//   source = center + u.
void sampling_map(const AugmentDraw& d, std::vector<float>& src_y, std::vector<float>& src_x);

// Reads img at the map's points (rows y0..y0+h-1, columns x0..x0+w-1 of a map that is map_w wide),
// mirroring outside the image. Bicubic results are clamped to img's per-channel value range.
Image resample(const Image& img, const std::vector<float>& src_y, const std::vector<float>& src_x, int map_w, int y0,
               int x0, int h, int w, Interp interp);

// Applies a draw: the image tile is the whole out_h x out_w map (with the gray-value variation), the
// label and weight tiles (label_h x label_w) are its centre, offset by ((out - label) / 2).
Sample apply_augmentation(const Sample& src, const AugmentDraw& d, int label_h, int label_w, const AugmentParams& p);

// One training pair for the network: an in_h x in_w input tile and the label_h x label_w label and
// weight tiles of the network's output (e.g. 572x572 and 388x388), centred on the same point, drawn
// at a random position of src (p.random_position) with the random geometry and gray values of p.
Sample augment_tile(const Sample& src, int in_h, int in_w, int label_h, int label_w, Rng& rng, const AugmentParams& p);

// The whole sample deformed at its own size (tile centred on the image centre, no random shift).
Sample deform(const Sample& src, Rng& rng, const AugmentParams& p);

// Writes n augmented samples for a person to look at, without writing files itself. For sample i
// it calls sink with the names "sample_<iii>_image", "_labels", "_weights" (when present) and
// "_overlay", every image in the 8-bit display range [0, 255] (ready for unet::write_png): the image
// mapped from [value_lo, value_hi] (clamped), the labels scaled so the largest class (at least 1)
// is 255, the weights scaled so their maximum is 255, and the overlay is the image in RGB with the
// label boundaries (pixels whose 4-neighbour has another label) painted red. tile_h / tile_w > 0
// samples augment_tile tiles of that size (labels at the same size); otherwise each sample is the
// whole image deformed at its own size (deform).
using ImageSink = std::function<void(const std::string& name, const Image& img)>;
void write_augmented_samples(const Sample& src, int n, int tile_h, int tile_w, Rng& rng, const AugmentParams& p,
                             const ImageSink& sink);
// The same with the whole image (deform).
inline void write_augmented_samples(const Sample& src, int n, Rng& rng, const AugmentParams& p, const ImageSink& sink) {
  write_augmented_samples(src, n, 0, 0, rng, p, sink);
}

}  // namespace unet
