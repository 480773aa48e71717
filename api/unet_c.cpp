// libunet's C API (include/unet/unet.h) over unet::Model and unet::Predictor (unet/predictor.h).
// This file only checks what C cannot (null pointers, sizes, enum values), converts, and turns
// every exception into a status and a per-thread message: nothing thrown inside crosses into C.
#include "unet/unet.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <sstream>
#include <string>

#include "unet/io_raw.h"
#include "unet/predictor.h"

struct unet_model {
  std::shared_ptr<const unet::Model> model;
};

struct unet_predictor {
  std::unique_ptr<const unet::Predictor> predictor;
  unet_progress_fn progress = nullptr;
  void* progress_user = nullptr;
};

namespace {

// The message of the thread's last failure, in a fixed buffer: recording it never allocates, so it
// cannot fail while an out-of-memory error is being reported.
thread_local char t_error[2048];

void set_error(const char* msg) noexcept {
  const size_t n = std::strlen(msg);
  if (n < sizeof t_error) {
    std::memcpy(t_error, msg, n + 1);
    return;
  }
  std::memcpy(t_error, msg, sizeof t_error - 4);
  std::memcpy(t_error + sizeof t_error - 4, "...", 4);
}

// A refusal by this file, with its status.
struct ApiError : std::exception {
  unet_status status;
  std::string message;
  ApiError(unet_status s, std::string m) : status(s), message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
};

template <typename... Args>
[[noreturn]] void refuse(unet_status status, Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw ApiError(status, os.str());
}

template <typename T>
void need(const T* p, const char* what) {
  if (p == nullptr) refuse(UNET_ERR_INVALID_ARGUMENT, what, " is NULL");
}

// Runs `body`; an unet::Error of no more specific kind becomes `otherwise`.
template <typename F>
unet_status guarded(unet_status otherwise, F&& body) noexcept {
  t_error[0] = '\0';
  try {
    body();
    return UNET_OK;
  } catch (const ApiError& e) {
    set_error(e.what());
    return e.status;
  } catch (const unet::Cancelled& e) {
    set_error(e.what());
    return UNET_ERR_CANCELLED;
  } catch (const unet::OutOfMemory& e) {
    set_error(e.what());
    return UNET_ERR_OUT_OF_MEMORY;
  } catch (const unet::NoDevice& e) {
    set_error(e.what());
    return UNET_ERR_NO_DEVICE;
  } catch (const unet::Unsupported& e) {
    set_error(e.what());
    return UNET_ERR_UNSUPPORTED;
  } catch (const unet::IoError& e) {
    set_error(e.what());
    return UNET_ERR_IO;
  } catch (const unet::Error& e) {
    set_error(e.what());
    return otherwise;
  } catch (const std::bad_alloc&) {
    set_error("out of memory (an allocation failed)");
    return UNET_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(e.what());
    return UNET_ERR_INTERNAL;
  } catch (...) {
    set_error("unknown failure (an exception that is not a std::exception)");
    return UNET_ERR_INTERNAL;
  }
}

size_t sample_size(int32_t dtype) { return dtype == UNET_U8 ? 1 : dtype == UNET_U16 ? 2 : 4; }

const char* dtype_name(int32_t dtype) { return dtype == UNET_U8 ? "u8" : dtype == UNET_U16 ? "u16" : "f32"; }

// The image, checked against the predictor's model, as the view predict_bands takes.
unet::ImageView view_of(const unet_predictor* p, const unet_image* img) {
  need(p, "predictor");
  need(img, "image");
  if (img->dtype != UNET_U8 && img->dtype != UNET_U16 && img->dtype != UNET_F32)
    refuse(UNET_ERR_INVALID_ARGUMENT, "image dtype = ", img->dtype,
           " is not UNET_U8 (1), UNET_U16 (2) or UNET_F32 (3)");
  if (img->width < 1 || img->height < 1 || img->channels < 1)
    refuse(UNET_ERR_INVALID_ARGUMENT, "image size ", img->width, " x ", img->height, " with ", img->channels,
           " channel(s): every one must be at least 1");
  const int in = p->predictor->config().in_channels;
  if (img->channels != in)
    refuse(UNET_ERR_INVALID_ARGUMENT, "the image has ", img->channels, " channel(s), the model takes ", in);
  need(img->data, "image data");
  const size_t size = sample_size(img->dtype);
  if (reinterpret_cast<uintptr_t>(img->data) % size != 0)
    refuse(UNET_ERR_INVALID_ARGUMENT, "image data at ", img->data, " is not aligned to its ", size, "-byte ",
           dtype_name(img->dtype), " samples");
  const uint64_t row = static_cast<uint64_t>(img->width) * static_cast<uint64_t>(img->channels) * size;
  const uint64_t stride = img->row_stride ? img->row_stride : row;
  if (stride < row || stride % size != 0)
    refuse(UNET_ERR_INVALID_ARGUMENT, "image row_stride = ", img->row_stride, " bytes: a row of ", img->width, " px x ",
           img->channels, " channel(s) of ", dtype_name(img->dtype), " needs at least ", row,
           " bytes, and the stride must be a multiple of ", size);
  if (stride > (uint64_t{1} << 62) / static_cast<uint64_t>(img->height))
    refuse(UNET_ERR_INVALID_ARGUMENT, "image of ", img->height, " rows of ", stride, " bytes is larger than memory");
  unet::ImageView v;
  v.data = img->data;
  v.type = img->dtype == UNET_U8    ? unet::ImageView::Type::kU8
           : img->dtype == UNET_U16 ? unet::ImageView::Type::kU16
                                    : unet::ImageView::Type::kF32;
  v.channels = img->channels;
  v.height = img->height;
  v.width = img->width;
  v.channel_stride = 1;
  v.pixel_stride = img->channels;
  v.row_stride = static_cast<int64_t>(stride / size);
  if (img->dtype == UNET_F32) {  // a NaN or inf would spread over its whole receptive field
    const auto* f = static_cast<const float*>(img->data);
    for (int64_t y = 0; y < v.height; ++y)
      for (int64_t i = 0; i < static_cast<int64_t>(v.width) * v.channels; ++i)
        if (!std::isfinite(f[y * v.row_stride + i]))
          refuse(UNET_ERR_INVALID_ARGUMENT, "image sample at x=", i / v.channels, ", y=", y, ", channel ",
                 i % v.channels, " is ", f[y * v.row_stride + i], ": inputs must be finite numbers");
  }
  return v;
}

void check_output(const void* out, size_t count, uint64_t need_count, const char* what) {
  if (out == nullptr) refuse(UNET_ERR_INVALID_ARGUMENT, what, " buffer is NULL");
  if (count < need_count)
    refuse(UNET_ERR_INVALID_ARGUMENT, what, " buffer holds ", count, " elements, the image needs ", need_count);
}

unet::Progress progress_of(const unet_predictor* p) {
  if (!p->progress) return {};
  const unet_progress_fn fn = p->progress;
  void* user = p->progress_user;
  return [fn, user](int64_t done, int64_t total) { return fn(user, done, total) == 0; };
}

}  // namespace

extern "C" {

const char* unet_version(void) { return UNET_VERSION_STRING; }
int unet_version_number(void) { return UNET_VERSION; }
const char* unet_last_error(void) { return t_error; }

const char* unet_status_name(int s) {
  switch (s) {
    case UNET_OK:
      return "UNET_OK";
    case UNET_ERR_INVALID_ARGUMENT:
      return "UNET_ERR_INVALID_ARGUMENT";
    case UNET_ERR_IO:
      return "UNET_ERR_IO";
    case UNET_ERR_BAD_MODEL:
      return "UNET_ERR_BAD_MODEL";
    case UNET_ERR_BAD_IMAGE:
      return "UNET_ERR_BAD_IMAGE";
    case UNET_ERR_OUT_OF_MEMORY:
      return "UNET_ERR_OUT_OF_MEMORY";
    case UNET_ERR_NO_DEVICE:
      return "UNET_ERR_NO_DEVICE";
    case UNET_ERR_UNSUPPORTED:
      return "UNET_ERR_UNSUPPORTED";
    case UNET_ERR_CANCELLED:
      return "UNET_ERR_CANCELLED";
    case UNET_ERR_INTERNAL:
      return "UNET_ERR_INTERNAL";
  }
  return "UNET_ERR_UNKNOWN_STATUS";
}

// ---- models -------------------------------------------------------------------------------------

unet_status unet_model_load(const char* path, unet_model** out) {
  return guarded(UNET_ERR_BAD_MODEL, [&] {
    need(out, "out (where the model goes)");
    *out = nullptr;
    need(path, "path");
    auto m = std::make_unique<unet_model>();
    m->model = unet::Model::load(std::string(path));
    *out = m.release();
  });
}

unet_status unet_model_load_memory(const void* data, size_t size, const char* name, unet_model** out) {
  return guarded(UNET_ERR_BAD_MODEL, [&] {
    need(out, "out (where the model goes)");
    *out = nullptr;
    need(data, "data");
    auto m = std::make_unique<unet_model>();
    m->model = unet::Model::load(static_cast<const uint8_t*>(data), size, name ? name : "<memory>");
    *out = m.release();
  });
}

void unet_model_free(unet_model* model) { delete model; }

unet_status unet_model_get_info(const unet_model* model, unet_model_info* info) {
  return guarded(UNET_ERR_INTERNAL, [&] {
    need(model, "model");
    need(info, "info");
    const unet::UNetConfig& c = model->model->config();
    unet_model_info r{};
    r.in_channels = c.in_channels;
    r.classes = c.classes;
    r.depth = c.depth;
    r.base = c.base;
    r.tile_min = unet::TileSizes::input_for_output(1, c.depth);
    r.tile_step = 1 << c.depth;
    r.margin = unet::TileSizes::border(c.depth) / 2;
    r.parameters = model->model->on(unet::Device::CPU)->parameter_count();
    *info = r;
  });
}

unet_status unet_model_tile_output(const unet_model* model, int32_t tile, int32_t* output) {
  return guarded(UNET_ERR_INVALID_ARGUMENT, [&] {
    need(model, "model");
    need(output, "output");
    const int depth = model->model->config().depth;
    if (tile < 1 || tile > unet::TileSizes::kMaxTile)
      refuse(UNET_ERR_INVALID_ARGUMENT, "tile = ", tile, " is out of range [1, ", unet::TileSizes::kMaxTile, "]");
    unet::TileSizes::check_input(tile, depth, "tile size");
    *output = unet::TileSizes::output_for_input(tile, depth);
  });
}

// ---- predictors ---------------------------------------------------------------------------------

void unet_predictor_options_init(unet_predictor_options* o) {
  if (o == nullptr) return;
  *o = unet_predictor_options{};
  o->struct_size = sizeof(unet_predictor_options);
  o->device = UNET_DEVICE_AUTO;
  o->precision = UNET_PRECISION_AUTO;
}

unet_status unet_predictor_create(const unet_model* model, const unet_predictor_options* options,
                                  unet_predictor** out) {
  return guarded(UNET_ERR_INVALID_ARGUMENT, [&] {
    need(out, "out (where the predictor goes)");
    *out = nullptr;
    need(model, "model");
    unet_predictor_options o;
    unet_predictor_options_init(&o);
    if (options) {
      if (options->struct_size != sizeof(unet_predictor_options))
        refuse(UNET_ERR_INVALID_ARGUMENT, "options struct_size = ", options->struct_size, ", this libunet's is ",
               sizeof(unet_predictor_options), ": fill the options with unet_predictor_options_init first");
      o = *options;
    }
    unet::PredictorOptions po;
    switch (o.device) {
      case UNET_DEVICE_AUTO:
        po.device = unet::DeviceChoice::kAuto;
        break;
      case UNET_DEVICE_CPU:
        po.device = unet::DeviceChoice::kCpu;
        break;
      case UNET_DEVICE_CUDA:
        po.device = unet::DeviceChoice::kCuda;
        break;
      default:
        refuse(UNET_ERR_INVALID_ARGUMENT, "options device = ", o.device,
               " is not UNET_DEVICE_AUTO (0), UNET_DEVICE_CPU (1) or UNET_DEVICE_CUDA (2)");
    }
    switch (o.precision) {
      case UNET_PRECISION_AUTO:
        break;
      case UNET_PRECISION_FP32:
        po.precision = unet::kernels::Precision::FP32;
        break;
      case UNET_PRECISION_TF32:
        po.precision = unet::kernels::Precision::TF32;
        break;
      case UNET_PRECISION_BF16:
        po.precision = unet::kernels::Precision::BF16;
        break;
      default:
        refuse(UNET_ERR_INVALID_ARGUMENT, "options precision = ", o.precision,
               " is not UNET_PRECISION_FP32 (0), UNET_PRECISION_TF32 (1), UNET_PRECISION_BF16 (2) or "
               "UNET_PRECISION_AUTO (3)");
    }
    po.threads = o.threads;
    po.tile = o.tile;
    po.batch = o.batch;
    po.tta = o.tta != 0;
    po.cuda_graph = o.cuda_graph != 0;
    auto p = std::make_unique<unet_predictor>();
    p->predictor = std::make_unique<const unet::Predictor>(model->model, po);
    p->progress = o.progress;
    p->progress_user = o.progress_user;
    *out = p.release();
  });
}

void unet_predictor_free(unet_predictor* predictor) { delete predictor; }

unet_status unet_predictor_device(const unet_predictor* predictor, unet_device* device) {
  return guarded(UNET_ERR_INTERNAL, [&] {
    need(predictor, "predictor");
    need(device, "device");
    *device = predictor->predictor->device() == unet::Device::CUDA ? UNET_DEVICE_CUDA : UNET_DEVICE_CPU;
  });
}

unet_status unet_predictor_plan(const unet_predictor* predictor, int32_t height, int32_t width, unet_plan* plan) {
  return guarded(UNET_ERR_INVALID_ARGUMENT, [&] {
    need(predictor, "predictor");
    need(plan, "plan");
    if (height < 1 || width < 1)
      refuse(UNET_ERR_INVALID_ARGUMENT, "image size ", width, " x ", height, ": both must be at least 1");
    const unet::TileGrid g = predictor->predictor->grid(height, width);
    unet_plan r{};
    r.tile = g.tile;
    r.output = g.out;
    r.step = g.step;
    r.tiles_y = g.rows;
    r.tiles_x = g.cols;
    r.working_bytes = predictor->predictor->working_bytes(height, width);
    *plan = r;
  });
}

unet_status unet_predict_probabilities(const unet_predictor* predictor, const unet_image* image, float* probs,
                                       size_t count) {
  return guarded(UNET_ERR_INTERNAL, [&] {
    const unet::ImageView v = view_of(predictor, image);
    const uint64_t classes = static_cast<uint64_t>(predictor->predictor->config().classes);
    check_output(probs, count, classes * static_cast<uint64_t>(v.height) * static_cast<uint64_t>(v.width),
                 "probabilities");
    predictor->predictor->probabilities(v, probs, progress_of(predictor));
  });
}

unet_status unet_predict_labels(const unet_predictor* predictor, const unet_image* image, uint8_t* labels,
                                size_t count) {
  return guarded(UNET_ERR_INTERNAL, [&] {
    const unet::ImageView v = view_of(predictor, image);
    const int classes = predictor->predictor->config().classes;
    if (classes > 256)
      refuse(UNET_ERR_INVALID_ARGUMENT, "the model has ", classes,
             " classes, more than a byte of label can name: use unet_predict_probabilities");
    check_output(labels, count, static_cast<uint64_t>(v.height) * static_cast<uint64_t>(v.width), "labels");
    predictor->predictor->labels(v, labels, progress_of(predictor));
  });
}

unet_status unet_predict_bands(const unet_predictor* predictor, const unet_image* image, unet_band_fn band,
                               void* user) {
  return guarded(UNET_ERR_INTERNAL, [&] {
    const unet::ImageView v = view_of(predictor, image);
    if (band == nullptr) refuse(UNET_ERR_INVALID_ARGUMENT, "band callback is NULL");
    predictor->predictor->bands(
        v,
        [&](int y0, const unet::Image& b) {
      if (band(user, y0, b.height, b.data.data()) != 0)
        UNET_FAIL_AS(Cancelled, "prediction stopped by the band callback at rows ", y0, "..", y0 + b.height - 1);
        },
        progress_of(predictor));
  });
}

// ---- images -------------------------------------------------------------------------------------

unet_status unet_image_read(const char* path, unet_image* image) {
  return guarded(UNET_ERR_BAD_IMAGE, [&] {
    need(image, "image");
    *image = unet_image{};
    need(path, "path");
    const std::vector<uint8_t> bytes = unet::io_raw::read_file_bytes(path, "image file");
    if (unet::io_raw::is_tiff(bytes) || unet::io_raw::is_npy(bytes))
      refuse(UNET_ERR_BAD_IMAGE, "image file '", path, "' is ", unet::io_raw::is_tiff(bytes) ? "a TIFF" : "an npy",
             " file: libunet reads PNG, JPEG, BMP, PGM/PPM, TGA, GIF, PSD and HDR (the unet command line reads TIFF "
             "and npy too)");
    unet::ImageInfo info;
    unet::RawImage raw = unet::io_raw::decode_stb(path, bytes, info, "PNG, JPEG, BMP, PGM/PPM, TGA, GIF, PSD, HDR");
    raw.info = info;
    unet::io_raw::check_finite_samples(raw, std::string("image file '") + path + "'");
    const int32_t dtype = info.is_float ? UNET_F32 : info.bits == 16 ? UNET_U16 : UNET_U8;
    const size_t size = sample_size(dtype), hw = static_cast<size_t>(raw.height) * raw.width, c = raw.channels;
    void* data = std::malloc(hw * c * size);
    if (data == nullptr)
      refuse(UNET_ERR_OUT_OF_MEMORY, "out of memory: ", hw * c * size, " bytes for image '", path, "'");
    for (size_t k = 0; k < c; ++k)  // planar (as decoded) -> interleaved
      for (size_t i = 0; i < hw; ++i) {
        if (dtype == UNET_U8) static_cast<uint8_t*>(data)[i * c + k] = raw.u8[k * hw + i];
        else if (dtype == UNET_U16) static_cast<uint16_t*>(data)[i * c + k] = raw.u16[k * hw + i];
        else static_cast<float*>(data)[i * c + k] = raw.f32[k * hw + i];
      }
    image->data = data;
    image->width = raw.width;
    image->height = raw.height;
    image->channels = raw.channels;
    image->dtype = dtype;
    image->row_stride = 0;
  });
}

void unet_image_free(unet_image* image) {
  if (image == nullptr) return;
  std::free(const_cast<void*>(image->data));
  *image = unet_image{};
}

}  // extern "C"
