// Training as in the paper: batch 1, one large tile per iteration, SGD with momentum 0.99,
// He init, the weighted softmax cross-entropy on the valid output region, elastic deformation
// augmentation; a validation split evaluated every N iterations; checkpoints that resume exactly.
#pragma once
#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "kernels/kernels.h"
#include "unet/augment.h"
#include "unet/image.h"
#include "unet/model.h"
#include "unet/weightmap.h"

namespace unet {

// Images normalised to [0, 1] (C channels), labels as class indices, weight maps (Eq. 2).
struct Dataset {
  std::vector<std::string> names;
  std::vector<Image> images, labels, weights;
  size_t size() const { return images.size(); }
};

// Reads images and labels from two folders (files matched by sorted order) or two TIFF stacks,
// checks counts and sizes (errors name the files), normalises images and decodes labels.
// Weight maps are computed with `wm` (w0 = 0 gives class balancing only).
Dataset load_dataset(const std::string& images, const std::string& labels, int in_channels, int classes,
                     const WeightMapParams& wm);
// Moves the samples whose index is in `take` out of `all` into a new dataset.
Dataset split_dataset(Dataset& all, const std::vector<size_t>& take);

struct TrainOptions {
  UNetConfig net;
  Device device = Device::CPU;
  // The convolutions' arithmetic (fp32, tf32, bf16); unset: tf32 on a GPU that has it, else fp32.
  // TF32 needs a GPU of compute capability >= 8.0, BF16 such a GPU or a CPU with AVX-512 BF16
  // (engine/precision.h).
  std::optional<kernels::Precision> precision;
  int tile = 572;             // input tile; output = TileSizes::output_for_input(tile)
  int64_t iterations = 1000;  // total planned iterations
  float lr = 0.002f;          // with the pixel-mean loss and momentum 0.99 (0.01 stalls)
  float momentum = 0.99f;
  float weight_decay = 0.0f;
  int64_t lr_step = 0;  // multiply lr by lr_gamma every lr_step iterations (0 = constant)
  float lr_gamma = 0.1f;
  float lr_poly = 0.0f;            // > 0: lr * (1 - i / iterations)^lr_poly instead (unet/schedule.h)
  int64_t warmup = 0;              // linear lr warm-up over the first N iterations
  std::string optimizer = "sgd";   // sgd (the paper's), nesterov or adam (engine/optim.h)
  int batch = 1;                   // tiles per iteration (the paper: 1 large tile)
  int64_t val_every = 100;         // validation period (0 = only at the end)
  int64_t checkpoint_every = 100;  // checkpoint period (0 = only at the end)
  uint64_t seed = 1;
  std::string out_dir = "out";  // checkpoint.safetensors, best.safetensors, loss.csv, loss.png, val.csv
  std::string resume;           // checkpoint to resume (continues to its planned total)
  int64_t extend_to = 0;        // with resume: extend a run to this many iterations
  int64_t stop_at = 0;          // stop after this iteration (checkpointed), as an interruption would
  std::string init;             // weights-only start from a checkpoint
  AugmentParams augment;
  int val_tile = 0;  // tile for validation prediction (0 = auto)
  // On a GPU: capture the second iteration's step as a CUDA graph and replay it for the rest (engine/graph.h);
  // the same bits as without, one launch a step.
  bool cuda_graph = false;
  bool quiet = false;
  // Recorded in every checkpoint with the options above that shape the run (under the command
  // line's option names), and compared on resume: how the data were prepared, e.g. the weight
  // map's w0, sigma and balance.
  std::map<std::string, std::string> recorded;
  bool allow_changes = false;  // resume even when recorded options differ (and say which)
  // Set (to the signal's number) by a signal handler to ask for a clean stop: the current
  // iteration finishes, a checkpoint is written and train() returns with interrupted_by set.
  const volatile std::sig_atomic_t* stop_signal = nullptr;
};

struct TrainReport {
  int64_t iterations_done = 0;   // the last iteration completed
  int64_t total_iterations = 0;  // the run's plan
  std::vector<float> losses;     // per iteration of this invocation
  float last_val_loss = -1.0f, last_val_pixel_error = -1.0f;
  float best_val_pixel_error = -1.0f;  // of best.safetensors, written whenever validation improves
  int64_t best_iteration = 0;
  int interrupted_by = 0;  // the signal that stopped the run early (0: ran to its end)
  std::string checkpoint;  // the last checkpoint written (or resumed from)
};

// The options of `o` that a checkpoint records (command-line names -> canonical text), `recorded`
// included. Resuming compares them with the checkpoint's.
std::map<std::string, std::string> recorded_options(const TrainOptions& o);
// Canonical text of a recorded number: the float it becomes, printed exactly.
std::string option_text(double v);

// Runs training; prints the configuration and a progress line to stderr unless quiet.
TrainReport train(const Dataset& train_set, const Dataset& val_set, const TrainOptions& opt);

// Mean cross-entropy and pixel error (argmax != label) of probability maps against labels.
struct EvalResult {
  double loss = 0.0, pixel_error = 0.0;
};
EvalResult evaluate_probabilities(const std::vector<Image>& probs, const std::vector<Image>& labels);

}  // namespace unet
