// Overlap-tile prediction (the paper's Fig. 2): the output plane is cut into tiles of the
// network's output size; each tile is fed its full input context, which past the image border is
// filled by mirroring. Every output pixel therefore sees exactly the same input whatever the
// tiling, so one big tile and many small ones give the same map up to float rounding. Tiles go
// through the network `batch` at a time; memory is bounded by the batch, not by the image.
// Optional test-time augmentation averages the 8 rotations/flips of each tile.
#pragma once
#include <functional>
#include <string>

#include "unet/image.h"
#include "unet/model.h"

namespace unet {

struct PredictOptions {
  int tile = 0;       // input tile size; 0 = the largest valid size <= 572 that the image needs
  int batch = 1;      // tiles per forward pass
  bool tta = false;   // average over the 8 rotations and flips
  // Called after each batch with (tiles done, tiles total).
  std::function<void(int, int)> progress;
};

// The input tile size `opt.tile` resolves to for an image of h x w (checked: throws when invalid).
int choose_tile(const PredictOptions& opt, int h, int w, int depth);

// Class probabilities [classes, H, W] for an image normalised to [0, 1] with the model's channel
// count. Runs on the model's device without recording gradients.
Image predict_probabilities(const UNet& net, const Image& image01, const PredictOptions& opt = {});

// Per-pixel argmax of a probability map: a one-channel image of class indices.
Image argmax_classes(const Image& probs);

}  // namespace unet
