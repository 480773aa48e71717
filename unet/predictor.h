// Inference as a library: a Model (a U-Net loaded from a checkpoint, immutable, shared) and a
// Predictor (a device and the overlap-tile options, over one Model). The one inference path of
// `unet predict`, `unet eval` and libunet's C API (include/unet/unet.h, api/unet_c.cpp): each of
// them only resolves options and hands images to a Predictor, which runs predict_bands
// (unet/predict.h). See docs/embedding.md.
//
// Threads: a Model and a Predictor are immutable once made, so any number of threads may share
// them and predict at once. On the CPU their forward passes share the kernels' thread pool
// (kernels/cpu/parallel.h): loops of different threads take turns on it, unless a predictor's
// `threads` is 1, which keeps its forwards on the calling thread, outside the pool.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/safetensors.h"
#include "unet/model.h"
#include "unet/predict.h"

namespace unet {

// The device asked for a GPU that this build or this machine does not have.
struct NoDevice : Error {
  using Error::Error;
};

class Model {
 public:
  // From a checkpoint file, or its bytes in memory (`name` stands for it in messages). Every check
  // of load_checkpoint applies (docs/robustness.md): metadata parsed whole and in range, every
  // tensor of the architecture present with its shape, every weight finite. A file that cannot be
  // read throws IoError; anything else wrong with it, Error.
  static std::shared_ptr<const Model> load(const std::string& path);
  static std::shared_ptr<const Model> load(const uint8_t* data, size_t size, const std::string& name);

  const UNetConfig& config() const { return cfg_; }
  const std::string& name() const { return name_; }
  // The network on `device`: the host copy, or a GPU copy made by the first call that asks
  // (thread-safe; then shared by every predictor on the GPU).
  std::shared_ptr<const UNet> on(Device device) const;

 private:
  Model(const SafetensorsFile& file, const std::string& name);

  UNetConfig cfg_;
  std::string name_;
  std::shared_ptr<const UNet> host_;
  mutable std::mutex m_;
  mutable std::shared_ptr<const UNet> gpu_;
};

enum class DeviceChoice { kAuto, kCpu, kCuda };
// The device a choice means here: kAuto is the GPU when this build has CUDA and a device is
// present, else the CPU; kCuda without one throws NoDevice naming which of the two is missing.
Device resolve_device(DeviceChoice choice);

struct PredictorOptions {
  static constexpr int kMaxThreads = 1024;
  DeviceChoice device = DeviceChoice::kAuto;
  int threads = 0;   // CPU threads on this predictor's forward passes, the caller's included; 0: all the pool has
  int tile = 0;      // input tile side; 0: chosen for speed per image (choose_tile)
  int batch = 0;     // tiles per forward pass; 0: 1 on the CPU, 4 on a GPU (docs/predict.md)
  bool tta = false;  // average the 8 rotations and flips of every tile
  // The convolutions' arithmetic (kernels/kernels.h); unset: tf32 on a GPU with tensor cores, else fp32
  // (engine/precision.h). tf32 on the CPU, bf16 on a CPU without AVX-512 BF16, or either on an older
  // GPU, are refused (Unsupported).
  std::optional<kernels::Precision> precision;
  bool cuda_graph = false;  // PredictOptions::cuda_graph
};

class Predictor {
 public:
  // Checks the options (tile valid for the model's depth, batch, threads, precision) and resolves
  // the device; throws Error naming the option and its value, or NoDevice.
  Predictor(const std::shared_ptr<const Model>& model, const PredictorOptions& opt);
  // Over a network already built (its device is the predictor's; opt.device must be kAuto or match).
  Predictor(std::shared_ptr<const UNet> net, const PredictorOptions& opt);

  Device device() const { return net_->device(); }
  const UNetConfig& config() const { return net_->config(); }
  const UNet& network() const { return *net_; }
  const PredictorOptions& options() const { return opt_; }  // batch resolved
  // The tiling of an h x w image, and an estimate of the bytes a prediction of it needs besides
  // the weights, the input and the output: the network's feature maps for one batch, the kernels'
  // scratch, the batch's tiles, the live bands.
  TileGrid grid(int h, int w) const;
  int64_t working_bytes(int h, int w) const;

  // The probabilities of `image`, band by band (predict_bands): progress may stop it (Cancelled).
  void bands(const ImageView& image, const BandSink& sink, const Progress& progress = {}) const;
  // Into `out`: classes x height x width floats, plane by plane.
  void probabilities(const ImageView& image, float* out, const Progress& progress = {}) const;
  // Into `out`: height x width class indices (argmax_class); the model must have <= 256 classes.
  void labels(const ImageView& image, uint8_t* out, const Progress& progress = {}) const;

 private:
  void init();
  PredictOptions predict_options(const Progress& progress) const;

  std::shared_ptr<const Model> model_;  // keeps the weights of net_ alive; null over a bare network
  std::shared_ptr<const UNet> net_;
  PredictorOptions opt_;
};

}  // namespace unet
