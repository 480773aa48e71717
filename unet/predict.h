// Overlap-tile prediction (the paper's Fig. 2): the output plane is cut into tiles of the
// network's output size; each tile is fed its full input context, which past the image border is
// filled by mirroring. Every output pixel therefore sees exactly the same input whatever the
// tiling, so one big tile and many small ones give the same map up to float rounding. Tiles go
// through the network `batch` at a time. Optional test-time augmentation averages the 8
// rotations/flips of each tile.
//
// Streaming (predict_bands): the map is produced in BANDS, one row of tiles at a time, and each
// band is handed to a sink and dropped, so memory is bounded by the tile batch and a band of rows
// (classes x step x width floats), never by the image height; the input can stay in its compact
// file form (RawImage: 1 byte per sample for 8-bit images) and is normalised one tile at a time.
// predict_to_files() writes unet predict's outputs that way. See docs/predict.md.
//
// These are the engine-level functions; unet/predictor.h wraps them into the Predictor that the
// command line and libunet's C API both use.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "kernels/kernels.h"
#include "unet/image.h"
#include "unet/io.h"
#include "unet/model.h"

namespace unet {

struct PredictOptions {
  static constexpr int kMaxBatch = 256;
  int tile = 0;      // input tile size; 0 = chosen for speed (choose_tile, docs/predict.md)
  int batch = 1;     // tiles per forward pass
  bool tta = false;  // average over the 8 rotations and flips
  // The convolutions' arithmetic; unset: tf32 on a GPU that has it, else fp32 (engine/precision.h).
  std::optional<kernels::Precision> precision;
  // On a GPU: the second full batch's forward pass captured as a CUDA graph and replayed for the other full
  // batches and views (engine/graph.h; the same bits), when the image has at least eight of them.
  bool cuda_graph = false;
  // Called after each batch with (tiles done, tiles total).
  std::function<void(int, int)> progress;
};

// Activation memory that the automatic tile choice allows one batch of tiles, at ~24 x base bytes
// per input pixel (measured: 0.5 GB for the paper's network at 572 x 572): 2 GiB.
constexpr double kPredictMemoryBudget = 2147483648.0;

// The input tile size `opt.tile` resolves to for an image of h x w (checked: throws when invalid).
// 0 chooses for speed: the valid tile that needs the fewest flops for the whole image (tiles x
// forward_flops), up to the tile that covers the image alone and within kPredictMemoryBudget.
int choose_tile(const PredictOptions& opt, int h, int w, const UNetConfig& cfg);

// The tiling of an h x w image: output tiles of `out` px whose origins are `step` px apart
// (step = out rounded down to a multiple of 2^depth, the pooling lattice), `rows` x `cols` of
// them, as few as cover the image (one when it fits in one output tile); the last row / column may
// reach past the image. A band is one row of tiles: output rows [r * step, (r + 1) * step), the
// last band up to the image's end (at most `out` rows).
struct TileGrid {
  int tile = 0, out = 0, step = 0, rows = 0, cols = 0;
  int64_t count() const { return static_cast<int64_t>(rows) * cols; }
  // Output rows of band r (image of h rows), and columns owned by tile column c (image of w columns).
  int band_rows(int r, int h) const { return r + 1 < rows ? step : h - r * step; }
  int owned_cols(int c, int w) const { return c + 1 < cols ? step : w - c * step; }
};
TileGrid tile_grid(const UNetConfig& cfg, const PredictOptions& opt, int h, int w);

// Class probabilities [classes, H, W] for an image normalised to [0, 1] with the model's channel
// count. Runs on the model's device without recording gradients. (predict_bands into one map.)
Image predict_probabilities(const UNet& net, const Image& image01, const PredictOptions& opt = {});

// Streamed prediction: sink(y0, band) is called for each band from top to bottom, band =
// [classes, rows, W] holding the probabilities of image rows y0 .. y0 + rows - 1 (rows =
// grid.step, the last band possibly fewer). The band is only valid during the call. The values
// are exactly those of predict_probabilities (the same batches go through the network). Live
// memory: the batch's tiles and ceil(batch / cols) + 1 bands.
using BandSink = std::function<void(int y0, const Image& band)>;
// Progress with a way out (unet/predictor.h): called after each batch with (tiles done, tiles
// total); returning false stops the prediction, which then throws Cancelled.
using Progress = std::function<bool(int64_t done, int64_t total)>;
void predict_bands(const UNet& net, const Image& image01, const PredictOptions& opt, const BandSink& sink);
// The same from the raw samples, each tile normalised as it is cut (normalise_intensity's rule,
// bit for bit): an 8-bit image costs 1 byte per sample instead of 4.
void predict_bands(const UNet& net, const RawImage& image, const PredictOptions& opt, const BandSink& sink);

// The samples of an image wherever they lie (a RawImage, an Image, a caller's buffer, planar or
// interleaved): sample (c, y, x) is data[c * channel_stride + y * row_stride + x * pixel_stride],
// strides counted in samples. Each tile is normalised as it is cut, by normalise_intensity's rule:
// 8-bit * (1/255), 16-bit * (1/65535), float taken as it is; so every way in gives the network
// bit-identical inputs for the same samples.
struct ImageView {
  enum class Type { kU8, kU16, kF32 };
  const void* data = nullptr;
  Type type = Type::kF32;
  int channels = 0, height = 0, width = 0;
  int64_t channel_stride = 0, row_stride = 0, pixel_stride = 0;

  static ImageView planar(const void* data, Type type, int channels, int height, int width);
  static ImageView of(const RawImage& raw);   // planar, in the file's sample type
  static ImageView of(const Image& image01);  // planar float, taken as it is
};
void predict_bands(const UNet& net, const ImageView& image, const PredictOptions& opt, const BandSink& sink);

// The class with the highest probability at (y, x) of a [classes, H, W] map; ties go to the lower
// class. The one argmax rule of masks, label maps and scores.
inline int argmax_class(const Image& probs, int y, int x) {
  int best = 0;
  for (int k = 1; k < probs.channels; ++k)
    if (probs.at(k, y, x) > probs.at(best, y, x)) best = k;
  return best;
}

// Per-pixel argmax of a probability map: a one-channel image of class indices.
Image argmax_classes(const Image& probs);

// ---- unet predict's files, streamed (unet/predict_files.cpp, part of the trainer's library) ----
struct PredictFiles {
  // Written: <prefix>_probs.tif (float32, one page per class, the layout of write_tiff_float),
  // <prefix>_mask.png (8-bit argmax; 0/255 for two classes, the class index otherwise, clamped
  // to 255), <prefix>_overlay.png (RGB: the image with the pixels of `overlay.tint_class`
  // tinted, as overlay_png draws it; region mode only).
  std::string prefix;
  bool npy = false;  // also <prefix>_probs.npy (float32, (C, H, W))
  OverlayOptions overlay{0, false, 0.45f, 255, 40, 40};
  // Optional: class indices of the image (1 channel, same size) to evaluate against.
  const Image* labels = nullptr;
};

struct PredictEvaluation {
  bool done = false;             // labels were given
  double pixel_error = 0.0;      // fraction of pixels whose argmax class is not the label
  double loss = 0.0;             // mean cross-entropy -log p(label) (p clamped to 1e-12)
  double threshold_error = 1.0;  // the best single global threshold t = 1..254 of the raw image
                                 // (first channel, normalised * 255 > t means class 1): its pixel error
};

// Predicts `image` band by band into the files of `files` (each file atomic; none is written
// when anything fails). With labels, also returns the scores that evaluate_probabilities and the
// threshold baseline give, counted as the bands pass.
class Predictor;
PredictEvaluation predict_to_files(const Predictor& predictor, const RawImage& image, const PredictFiles& files,
                                   const Progress& progress = {});
// The same through a Predictor over `net` with opt's tile, batch, TTA and progress.
PredictEvaluation predict_to_files(const UNet& net, const RawImage& image, const PredictOptions& opt,
                                   const PredictFiles& files);

}  // namespace unet
