#include "unet/predictor.h"

#include <algorithm>
#include <cstring>

#include "engine/backend.h"
#include "engine/precision.h"
#include "unet/checkpoint.h"
// The per-caller thread limit lives with the pool it limits (the kernels' own, below the engine).
#include "kernels/cpu/parallel.h"

namespace unet {

// ---- Model -------------------------------------------------------------------------------------

Model::Model(const SafetensorsFile& file, const std::string& name) : name_(name) {
  cfg_ = checkpoint_config(file, name);
  auto net = std::make_shared<UNet>(cfg_, Device::CPU);  // uninitialised: the file's weights overwrite it
  load_checkpoint(file, name, *net, nullptr);
  host_ = std::move(net);
}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  return std::shared_ptr<const Model>(new Model(load_safetensors(path), path));
}

std::shared_ptr<const Model> Model::load(const uint8_t* data, size_t size, const std::string& name) {
  return std::shared_ptr<const Model>(new Model(parse_safetensors(data, size, name), name));
}

std::shared_ptr<const UNet> Model::on(Device device) const {
  if (device == Device::CPU) return host_;
  std::lock_guard<std::mutex> lock(m_);
  if (!gpu_) {
    auto net = std::make_shared<UNet>(cfg_, device);
    const auto& from = host_->parameters();
    const auto& to = net->parameters();
    for (size_t i = 0; i < to.size(); ++i) to[i].value().copy_from(from[i].value());
    gpu_ = std::move(net);
  }
  return gpu_;
}

// ---- devices and precisions --------------------------------------------------------------------

Device resolve_device(DeviceChoice choice) {
  if (choice == DeviceChoice::kCpu) return Device::CPU;
  const bool gpu = cuda_available();
  if (choice == DeviceChoice::kAuto) return gpu ? Device::CUDA : Device::CPU;
#if defined(UNET_WITH_CUDA)
  if (!gpu)
    UNET_FAIL_AS(NoDevice,
                 "device cuda: no GPU is available (this build has the CUDA backend, but the CUDA "
                 "runtime finds no device: no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)");
#else
  UNET_FAIL_AS(NoDevice,
               "device cuda: no GPU support in this build (it was configured without the CUDA "
               "backend: UNET_WITH_CUDA=OFF or no nvcc)");
#endif
  return Device::CUDA;
}

// ---- Predictor ---------------------------------------------------------------------------------

namespace {

void check_options(const PredictorOptions& o, const UNetConfig& cfg, Device device) {
  UNET_CHECK(o.threads >= 0 && o.threads <= PredictorOptions::kMaxThreads, "predictor option threads = ", o.threads,
             " is out of range [0, ", PredictorOptions::kMaxThreads, "] (0: all the CPU threads of the pool)");
  UNET_CHECK(o.batch >= 0 && o.batch <= PredictOptions::kMaxBatch, "predictor option batch = ", o.batch,
             " is out of range [0, ", PredictOptions::kMaxBatch, "] (0: 1 on the CPU, 4 on a GPU)");
  UNET_CHECK(o.tile >= 0 && o.tile <= TileSizes::kMaxTile, "predictor option tile = ", o.tile, " is out of range [0, ",
             TileSizes::kMaxTile, "] (0: chosen per image)");
  if (o.tile > 0) TileSizes::check_input(o.tile, cfg.depth, "tile size");
  choose_precision(device, o.precision);  // throws Unsupported for tf32 / bf16 where the device lacks them
  UNET_CHECK(!o.cuda_graph || device == Device::CUDA, "predictor option cuda_graph needs the GPU (device cuda)");
}

}  // namespace

Predictor::Predictor(const std::shared_ptr<const Model>& model, const PredictorOptions& opt)
    : model_(model), opt_(opt) {
  UNET_CHECK(model_ != nullptr, "predictor: no model");
  net_ = model_->on(resolve_device(opt.device));
  init();
}

Predictor::Predictor(std::shared_ptr<const UNet> net, const PredictorOptions& opt) : net_(std::move(net)), opt_(opt) {
  UNET_CHECK(net_ != nullptr, "predictor: no model");
  UNET_CHECK(opt.device == DeviceChoice::kAuto || (opt.device == DeviceChoice::kCpu) == (device() == Device::CPU),
             "predictor: the network is on ", device_name(device()), ", the options ask for another device");
  init();
}

void Predictor::init() {
  check_options(opt_, config(), device());
  if (opt_.batch == 0) opt_.batch = device() == Device::CUDA ? 4 : 1;
}

PredictOptions Predictor::predict_options(const Progress& progress) const {
  PredictOptions po;
  po.tile = opt_.tile;
  po.batch = opt_.batch;
  po.tta = opt_.tta;
  po.precision = opt_.precision;
  po.cuda_graph = opt_.cuda_graph;
  if (progress)
    po.progress = [&progress](int done, int total) {
      if (!progress(done, total))
        UNET_FAIL_AS(Cancelled, "prediction cancelled by its progress callback after ", done, " of ", total, " tiles");
    };
  return po;
}

TileGrid Predictor::grid(int h, int w) const { return tile_grid(config(), predict_options({}), h, w); }

int64_t Predictor::working_bytes(int h, int w) const {
  const UNetConfig& cfg = config();
  const TileGrid g = grid(h, w);
  const int64_t nb = std::min<int64_t>(opt_.batch, g.count());
  const int64_t T = g.tile, O = g.out, C = cfg.in_channels, K = cfg.classes;
  // predict_core's buffers: the batch's input tiles twice (as cut, as turned), its outputs twice
  // (the softmax, the sum over views), one band per tile row the batch touches plus one being filled.
  const int64_t tiles = 4 * nb * (2 * C * T * T + 2 * K * O * O);
  const int64_t bands = 4 * ((nb + g.cols - 1) / g.cols + 1) * K * static_cast<int64_t>(g.out) * w;
  // The network's live feature maps peak at about 24 x base bytes per input pixel of the batch (the
  // rule choose_tile sizes tiles by), and the kernels' scratch (the up-convolutions' taps, packed
  // panels) adds about 8 x base per pixel of one tile. With the buffers above, 2-15% over the peaks
  // measured on the CPU (docs/embedding.md).
  const int64_t maps = (24 * nb + 8) * cfg.base * T * T;
  return maps + tiles + bands;
}

void Predictor::bands(const ImageView& image, const BandSink& sink, const Progress& progress) const {
  kernels::cpu::ThreadLimit limit(opt_.threads);
  predict_bands(*net_, image, predict_options(progress), sink);
}

void Predictor::probabilities(const ImageView& image, float* out, const Progress& progress) const {
  UNET_CHECK(out != nullptr, "predict: no output buffer");
  const int64_t H = image.height, W = image.width;
  bands(
      image,
      [&](int y0, const Image& band) {
    for (int k = 0; k < band.channels; ++k)
      std::memcpy(out + (k * H + y0) * W, band.plane(k), sizeof(float) * band.pixels());
      },
      progress);
}

void Predictor::labels(const ImageView& image, uint8_t* out, const Progress& progress) const {
  UNET_CHECK(out != nullptr, "predict: no output buffer");
  UNET_CHECK(config().classes <= 256, "predict: a label map holds class indices 0..255, and this model has ",
             config().classes, " classes: ask for the probabilities instead");
  const int64_t W = image.width;
  bands(
      image,
      [&](int y0, const Image& band) {
    for (int y = 0; y < band.height; ++y)
      for (int x = 0; x < band.width; ++x) out[(y0 + y) * W + x] = static_cast<uint8_t>(argmax_class(band, y, x));
      },
      progress);
}

}  // namespace unet
