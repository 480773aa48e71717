// The U-Net of Ronneberger, Fischer and Brox (2015), Fig. 1, on the engine's ops.
//
// Contracting path: at each of `depth` levels two unpadded 3x3 convolutions + ReLU, then a 2x2
// max-pool; channels start at `base` and double per level. Bottleneck: two 3x3 convolutions at
// base * 2^depth channels. Expanding path: per level a 2x2 up-convolution halving the channels,
// concatenation with the centre-cropped feature map of the same level, two 3x3 convolutions + ReLU.
// A final 1x1 convolution maps to `classes` scores. Dropout (p = 0.5 by default) sits at the end of
// the contracting path: on the deepest level's output (before its pool and skip) and on the
// bottleneck output, as in the released Caffe model. Defaults give the paper's network: 1 input
// channel, 2 classes, 4 levels, 64 -> 1024 channels, 23 convolutions, a 572x572 tile -> 388x388.
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/rng.h"

namespace unet {

struct UNetConfig {
  int in_channels = 1;
  int classes = 2;
  int depth = 4;
  int base = 64;
  float dropout = 0.5f;  // 0 disables it

  std::string str() const;
};

// Tile sizes: with unpadded convolutions and 2x2 pools only some input sizes are valid.
struct TileSizes {
  // Output size for an input of `in` pixels per side, or -1 when some pool would see an odd size
  // or a feature map would vanish.
  static int output_for_input(int in, int depth);
  // The smallest valid input whose output is at least `out`.
  static int input_for_output(int out, int depth);
  // Throws with the nearest valid sizes when `in` is not valid.
  static void check_input(int in, int depth, const std::string& what = "input tile");
  // Total border lost: input - output (184 for the paper's network).
  static int border(int depth);
};

// Flops of one forward pass on an h x w input tile, convolutions only (2 per multiply-add):
// 300.9 GFLOP for the paper's network at 572 x 572. The cost model of predict's tile choice.
double forward_flops(const UNetConfig& cfg, int h, int w);

class UNet {
 public:
  // He-initialised weights (biases 0) drawn from init_rng.
  UNet(const UNetConfig& cfg, Device device, Rng& init_rng);
  // Uninitialised weights, for a network whose weights are loaded next (load_checkpoint): the
  // He initialisation of the paper's 31M parameters costs seconds that the load throws away.
  UNet(const UNetConfig& cfg, Device device);

  // x: [N, in_channels, S, S'] with valid S, S'. Returns logits [N, classes, out, out'].
  // train = true enables dropout (drawing from dropout_rng, which must then be given).
  Var forward(const Var& x, bool train, Rng* dropout_rng = nullptr) const;

  const UNetConfig& config() const { return cfg_; }
  Device device() const { return device_; }
  // Parameters in a fixed order with names that map one to one onto the PyTorch module in
  // docs/checkpoints.md (e.g. "down.0.conv1.weight", "up.3.upconv.bias", "head.weight").
  const std::vector<Var>& parameters() const { return params_; }
  int64_t parameter_count() const;
  int conv_count() const;  // 3x3, 2x2 up- and 1x1 convolutions (23 for the paper's network)

 private:
  struct ConvPair { Var w1, b1, w2, b2; };
  Var add_param(Shape shape, const std::string& name, int64_t fan_in, bool is_bias, Rng* rng);
  void build(Rng* rng);
  Var double_conv(const ConvPair& p, Var x) const;

  UNetConfig cfg_;
  Device device_;
  std::vector<ConvPair> down_;        // depth levels
  ConvPair bottom_;
  std::vector<Var> up_w_, up_b_;      // depth up-convolutions (deepest first)
  std::vector<ConvPair> up_conv_;     // depth levels (deepest first)
  Var head_w_, head_b_;
  std::vector<Var> params_;
};

}  // namespace unet
