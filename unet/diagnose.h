// Training diagnostics (`unet inspect`, docs/training.md): how far each layer's weights moved from
// their initial values, and how much of each layer is alive on an image. These are the two
// measurements that show why plain SGD at momentum 0.99 stalls: the deep layers barely move while
// the layers next to the output race ahead, or die (every ReLU of a channel at zero).
#pragma once
#include <string>
#include <vector>

#include "unet/image.h"
#include "unet/model.h"

namespace unet {

struct LayerWeights {
  std::string name;  // a weight tensor, e.g. "bottom.conv1.weight"
  double rms = 0.0, rms_init = 0.0;
  double rel_change = 0.0;  // ||W - W_init|| / ||W_init||
};
// Weight tensors only (biases start at 0, so their relative change is undefined). Throws when the
// two networks differ in architecture.
std::vector<LayerWeights> weight_change(const UNet& net, const UNet& init);

struct LayerActivity {
  std::string name;                     // an intermediate map as UNet::forward names it
  int channels = 0, dead_channels = 0;  // dead: every value of the channel <= 0 on this input
  double zero_fraction = 0.0;           // values <= 0
  double rms = 0.0;
};
// Runs `net` (inference, no dropout) on the centre tile (`tile` px, 0 = the largest valid tile
// that fits in the image, at most 572) of an image normalised to [0, 1].
std::vector<LayerActivity> activation_stats(const UNet& net, const Image& image01, int tile = 0);

}  // namespace unet
