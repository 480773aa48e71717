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
#include <functional>
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

  // The limits validate() enforces: far beyond any useful U-Net, small enough that nothing read from
  // a file or typed as an option can ask for an absurd allocation.
  static constexpr int kMaxChannels = 4096;  // in_channels and base
  static constexpr int kMaxClasses = 1024;
  static constexpr int kMaxDepth = 8;
  static constexpr int kMaxWidest = 16384;  // base * 2^depth, the bottleneck's channels

  std::string str() const;
  // Throws, naming `where` (e.g. "checkpoint x.safetensors"), the field, its value and the limit.
  void validate(const std::string& where = "U-Net configuration") const;
};

// One parameter of the network: its name (the PyTorch module's, docs/checkpoints.md), shape and
// He fan-in (0 for a bias, which starts at zero).
struct ParamSpec {
  std::string name;
  Shape shape;
  int64_t fan_in = 0;
};
// Every parameter of the network `cfg` describes, in UNet::parameters() order, without building it.
std::vector<ParamSpec> parameter_specs(const UNetConfig& cfg);

// Tile sizes: with unpadded convolutions and 2x2 pools only some input sizes are valid.
struct TileSizes {
  static constexpr int kMaxTile = 16384;  // input tile side accepted anywhere
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

// Bytes of every feature map one forward pass at batch x h x w (valid sizes) makes: what training
// keeps for its backward pass (which adds about as much again for the gradients).
int64_t forward_activation_bytes(const UNetConfig& cfg, int64_t batch, int h, int w);
// Throws, naming `what` (e.g. "--tile 100000"), the memory needed, the memory available on `device`
// and the largest tile that fits, when a pass at batch x tile x tile would not fit.
void check_tile_fits(const UNetConfig& cfg, Device device, int64_t batch, int tile, bool training,
                     const std::string& what);
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
  // observe, when given, sees every intermediate map by name: "down.{l}.conv1" / ".conv2" (after
  // the ReLU), "bottom.conv1" / ".conv2", "up.{l}.upconv", "up.{l}.conv1" / ".conv2" (unet/diagnose.h).
  using Observer = std::function<void(const std::string& name, const Tensor& value)>;
  Var forward(const Var& x, bool train, Rng* dropout_rng = nullptr, const Observer* observe = nullptr) const;

  const UNetConfig& config() const { return cfg_; }
  Device device() const { return device_; }
  // Parameters in a fixed order with names that map one to one onto the PyTorch module in
  // docs/checkpoints.md (e.g. "down.0.conv1.weight", "up.3.upconv.bias", "head.weight").
  const std::vector<Var>& parameters() const { return params_; }
  int64_t parameter_count() const;
  int conv_count() const;  // 3x3, 2x2 up- and 1x1 convolutions (23 for the paper's network)

 private:
  struct ConvPair {
    Var w1, b1, w2, b2;
  };
  void build(Rng* rng);  // rng == nullptr: uninitialised weights
  Var double_conv(const ConvPair& p, Var x, const std::string& name, const Observer* observe) const;

  UNetConfig cfg_;
  Device device_;
  std::vector<ConvPair> down_;  // depth levels
  ConvPair bottom_;
  std::vector<Var> up_w_, up_b_;   // depth up-convolutions (deepest first)
  std::vector<ConvPair> up_conv_;  // depth levels (deepest first)
  Var head_w_, head_b_;
  std::vector<Var> params_;
};

}  // namespace unet
