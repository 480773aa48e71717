// Checkpoints: safetensors files (engine/safetensors.h) holding the U-Net's parameters under the
// names of UNet::parameters() (which map one to one onto the PyTorch module of
// docs/checkpoints.md), optionally the optimizer's buffers ("optim.<buffer>.<name>": SGD's
// "momentum", Adam's "exp_avg" and "exp_avg_sq"), and in the
// metadata the architecture and the training state needed to resume: iteration, the planned
// total, the learning rate and the Philox stream position.
#pragma once
#include <map>
#include <string>

#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "unet/model.h"

namespace unet {

struct TrainState {
  int64_t iteration = 0;         // iterations completed
  int64_t total_iterations = 0;  // the run's plan
  uint64_t rng_seed = 0, rng_offset = 0;
  float lr = 0.0f;
  std::map<std::string, std::string> extra;  // options worth keeping (tile, w0, sigma, ...)
};

// Writes atomically. `opt` may be null (weights only, e.g. an exported model).
void save_checkpoint(const std::string& path, const UNet& net, const Optimizer* opt, const TrainState& state);

// The architecture recorded in a checkpoint (throws, naming the file, when it is not ours).
UNetConfig read_checkpoint_config(const std::string& path);

// The training state a checkpoint records (iteration, plan, recorded options), without its weights.
TrainState read_checkpoint_state(const std::string& path);

// Loads weights (and the optimizer's buffers and step count when `opt` is given, which must be of
// the kind the checkpoint was trained with) into `net`, checking every name and
// shape; the first mismatch is an error naming the checkpoint, the tensor and both shapes.
// Returns the training state stored with it.
TrainState load_checkpoint(const std::string& path, UNet& net, Optimizer* opt);

// The same two from a checkpoint already parsed (e.g. from memory); `name` stands for it in messages.
UNetConfig checkpoint_config(const SafetensorsFile& file, const std::string& name);
TrainState load_checkpoint(const SafetensorsFile& file, const std::string& name, UNet& net, Optimizer* opt);

}  // namespace unet
