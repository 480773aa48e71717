// libunet's C API (include/unet/unet.h) through the shared library: what it computes (the same bits
// as the Predictor the command line uses), and every kind of bad input giving a status and a
// message, never a crash.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/api/capi_helpers.h"
#include "unet/predictor.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNET_TEST_ASAN 1
#endif
#endif

using namespace unet;
using namespace unet::test;
using Catch::Matchers::Contains;

namespace {

// Whether the CPU has AVX-512 BF16 (the CPU's bf16 precision), asked of the CPU itself.
bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

std::vector<uint8_t> gradient_u8(int w, int h, int c) {
  std::vector<uint8_t> v(static_cast<size_t>(w) * h * c);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
  return v;
}

// The C++ Predictor's probabilities of the same samples, planar.
std::vector<float> reference(const std::string& ckpt, const ImageView& v, const PredictorOptions& o = {}) {
  PredictorOptions cpu = o;
  cpu.device = DeviceChoice::kCpu;
  const Predictor p(Model::load(ckpt), cpu);
  std::vector<float> out(static_cast<size_t>(p.config().classes) * v.height * v.width);
  p.probabilities(v, out.data());
  return out;
}

unet_predictor_options cpu_options() {
  unet_predictor_options o;
  unet_predictor_options_init(&o);
  o.device = UNET_DEVICE_CPU;
  return o;
}

}  // namespace

TEST_CASE("capi: version, status names, options defaults", "[capi]") {
  CHECK(std::string(unet_version()) == UNET_VERSION_STRING);
  CHECK(unet_version_number() == UNET_VERSION);
  CHECK(std::string(unet_status_name(UNET_ERR_BAD_MODEL)) == "UNET_ERR_BAD_MODEL");
  CHECK(std::string(unet_status_name(77)) == "UNET_ERR_UNKNOWN_STATUS");
  unet_predictor_options o;
  std::memset(&o, 0xab, sizeof o);
  unet_predictor_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.device == UNET_DEVICE_AUTO);
  CHECK((o.threads == 0 && o.tile == 0 && o.batch == 0 && o.tta == 0 && o.precision == UNET_PRECISION_AUTO));
  CHECK(o.cuda_graph == 0);
  CHECK(o.progress == nullptr);
  unet_predictor_options_init(nullptr);  // no crash
  CHECK(std::string(unet_last_error()).empty());
}

TEST_CASE("capi: a model's architecture and tiles", "[capi]") {
  TempDir tmp;
  UNetConfig cfg = small_config(3, 4);
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", cfg));
  REQUIRE(m);
  unet_model_info info;
  REQUIRE(unet_model_get_info(m.get(), &info) == UNET_OK);
  CHECK(info.in_channels == 3);
  CHECK(info.classes == 4);
  CHECK(info.depth == 2);
  CHECK(info.base == 4);
  CHECK(info.tile_step == 4);
  CHECK(info.margin == TileSizes::border(2) / 2);
  CHECK(info.parameters == UNet(cfg, Device::CPU).parameter_count());
  // Valid tiles are exactly tile_min + k * tile_step, for every depth.
  for (int depth = 1; depth <= 5; ++depth) {
    UNetConfig c = small_config();
    c.depth = depth;
    c.base = 2;
    ModelPtr md = load_model(write_checkpoint(tmp, "d" + std::to_string(depth) + ".safetensors", c));
    REQUIRE(md);
    REQUIRE(unet_model_get_info(md.get(), &info) == UNET_OK);
    for (int t = 1; t < 700; ++t) {
      int32_t out = -1;
      const bool valid = t >= info.tile_min && (t - info.tile_min) % info.tile_step == 0;
      INFO("depth " << depth << ", tile " << t);
      CHECK((unet_model_tile_output(md.get(), t, &out) == UNET_OK) == valid);
      if (valid) CHECK(out == t - 2 * info.margin);
      if (!valid) CHECK_THAT(unet_last_error(), Contains("nearest valid sizes"));
    }
  }
  CHECK(unet_model_tile_output(m.get(), 0, nullptr) == UNET_ERR_INVALID_ARGUMENT);
  int32_t out;
  CHECK(unet_model_tile_output(m.get(), 1 << 20, &out) == UNET_ERR_INVALID_ARGUMENT);
  CHECK_THAT(unet_last_error(), Contains("out of range"));
}

TEST_CASE("capi: probabilities and labels are the Predictor's, bit for bit, for every sample type and layout",
          "[capi]") {
  TempDir tmp;
  const std::string ckpt = write_checkpoint(tmp, "rgb.safetensors", small_config(3, 3));
  ModelPtr m = load_model(ckpt);
  REQUIRE(m);
  unet_predictor_options o = cpu_options();
  o.tile = 84;  // several tiles
  PredictorPtr p = make_predictor(m.get(), &o);
  REQUIRE(p);
  unet_device dev;
  REQUIRE(unet_predictor_device(p.get(), &dev) == UNET_OK);
  CHECK(dev == UNET_DEVICE_CPU);
  const int W = 97, H = 61, C = 3;
  PredictorOptions ref_opt;
  ref_opt.tile = 84;

  // u8, interleaved: the reference sees the same samples planar.
  const std::vector<uint8_t> u8 = gradient_u8(W, H, C);
  std::vector<uint8_t> planar(u8.size());
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < W * H; ++i) planar[static_cast<size_t>(c) * W * H + i] = u8[static_cast<size_t>(i) * C + c];
  const std::vector<float> ref =
      reference(ckpt, ImageView::planar(planar.data(), ImageView::Type::kU8, C, H, W), ref_opt);
  std::vector<float> probs(ref.size(), -1.0f);
  unet_image img = image_of(u8, W, H, C, UNET_U8);
  REQUIRE(unet_predict_probabilities(p.get(), &img, probs.data(), probs.size()) == UNET_OK);
  CHECK(probs == ref);

  // Labels: the argmax of the same map, ties to the lower class.
  std::vector<uint8_t> labels(static_cast<size_t>(W) * H, 255);
  REQUIRE(unet_predict_labels(p.get(), &img, labels.data(), labels.size()) == UNET_OK);
  for (int i = 0; i < W * H; ++i) {
    int best = 0;
    for (int k = 1; k < 3; ++k)
      if (ref[static_cast<size_t>(k) * W * H + i] > ref[static_cast<size_t>(best) * W * H + i]) best = k;
    REQUIRE(labels[i] == best);
  }

  // The same samples as u16 (v * 257 / 65535 == v / 255 only up to rounding) and as f32 normalised the
  // C++ way, and with padded rows: each equals its own reference bit for bit.
  std::vector<uint16_t> u16(u8.size());
  for (size_t i = 0; i < u8.size(); ++i) u16[i] = static_cast<uint16_t>(u8[i] * 257);
  std::vector<uint16_t> u16p(planar.size());
  for (size_t i = 0; i < planar.size(); ++i) u16p[i] = static_cast<uint16_t>(planar[i] * 257);
  img = image_of(u16, W, H, C, UNET_U16);
  REQUIRE(unet_predict_probabilities(p.get(), &img, probs.data(), probs.size()) == UNET_OK);
  CHECK(probs == reference(ckpt, ImageView::planar(u16p.data(), ImageView::Type::kU16, C, H, W), ref_opt));
  const size_t stride = static_cast<size_t>(W) * C + 5;  // floats per padded row
  std::vector<float> f32(stride * H, 1e30f);
  for (int y = 0; y < H; ++y)
    for (int i = 0; i < W * C; ++i) f32[y * stride + i] = u8[static_cast<size_t>(y) * W * C + i] * (1.0f / 255.0f);
  img = image_of(f32, W, H, C, UNET_F32);
  img.row_stride = stride * sizeof(float);
  REQUIRE(unet_predict_probabilities(p.get(), &img, probs.data(), probs.size()) == UNET_OK);
  CHECK(probs == ref);  // 8-bit samples normalised before or inside: the same inputs

  // Bands: the same map, top to bottom.
  struct Collect {
    std::vector<float>* map;
    int W, H, K, next;
  } col{&probs, W, H, 3, 0};
  std::fill(probs.begin(), probs.end(), -1.0f);
  img = image_of(u8, W, H, C, UNET_U8);
  auto band = [](void* user, int32_t y0, int32_t rows, const float* b) -> int {
    auto* c = static_cast<Collect*>(user);
    if (y0 != c->next) return 1;
    for (int k = 0; k < c->K; ++k)
      std::memcpy(c->map->data() + (static_cast<size_t>(k) * c->H + y0) * c->W,
                  b + static_cast<size_t>(k) * rows * c->W, sizeof(float) * rows * c->W);
    c->next += rows;
    return 0;
  };
  REQUIRE(unet_predict_bands(p.get(), &img, band, &col) == UNET_OK);
  CHECK(col.next == H);
  CHECK(probs == ref);

  // The plan names the tiling the prediction used.
  unet_plan plan;
  REQUIRE(unet_predictor_plan(p.get(), H, W, &plan) == UNET_OK);
  CHECK(plan.tile == 84);
  CHECK(plan.output == 84 - 2 * (TileSizes::border(2) / 2));
  CHECK(plan.tiles_y * plan.tiles_x > 1);
  CHECK(plan.working_bytes > 0);
}

TEST_CASE("capi: a model loads the same from a file and from memory, and outlives its handle in predictors", "[capi]") {
  TempDir tmp;
  const std::string ckpt = write_checkpoint(tmp, "m.safetensors", small_config());
  std::vector<uint8_t> bytes = file_bytes(ckpt);
  unet_model* mem = nullptr;
  REQUIRE(unet_model_load_memory(bytes.data(), bytes.size(), "in memory", &mem) == UNET_OK);
  std::fill(bytes.begin(), bytes.end(), 0);  // the buffer is no longer needed
  unet_predictor_options o = cpu_options();
  PredictorPtr p = make_predictor(mem, &o);
  REQUIRE(p);
  unet_model_free(mem);  // the predictor keeps the weights
  const std::vector<uint8_t> u8 = gradient_u8(40, 30, 1);
  std::vector<float> a(2 * 40 * 30), b(a.size());
  unet_image img = image_of(u8, 40, 30, 1, UNET_U8);
  REQUIRE(unet_predict_probabilities(p.get(), &img, a.data(), a.size()) == UNET_OK);
  ModelPtr f = load_model(ckpt);
  PredictorPtr q = make_predictor(f.get(), &o);
  REQUIRE(unet_predict_probabilities(q.get(), &img, b.data(), b.size()) == UNET_OK);
  CHECK(a == b);
}

TEST_CASE("capi: null pointers and bad arguments give a status and a message", "[capi]") {
  TempDir tmp;
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", small_config()));
  REQUIRE(m);
  unet_predictor_options o = cpu_options();
  PredictorPtr p = make_predictor(m.get(), &o);
  REQUIRE(p);
  unet_model* mo = reinterpret_cast<unet_model*>(1);
  unet_predictor* po = reinterpret_cast<unet_predictor*>(1);
  auto expect = [](unet_status got, unet_status want, const char* text) {
    CHECK(got == want);
    CHECK_THAT(unet_last_error(), Contains(text));
  };
  expect(unet_model_load(nullptr, &mo), UNET_ERR_INVALID_ARGUMENT, "path is NULL");
  CHECK(mo == nullptr);  // outputs are cleared on failure
  expect(unet_model_load("x", nullptr), UNET_ERR_INVALID_ARGUMENT, "out");
  expect(unet_model_load_memory(nullptr, 10, "n", &mo), UNET_ERR_INVALID_ARGUMENT, "data is NULL");
  expect(unet_model_get_info(nullptr, nullptr), UNET_ERR_INVALID_ARGUMENT, "model is NULL");
  expect(unet_model_get_info(m.get(), nullptr), UNET_ERR_INVALID_ARGUMENT, "info is NULL");
  expect(unet_predictor_create(nullptr, nullptr, &po), UNET_ERR_INVALID_ARGUMENT, "model is NULL");
  CHECK(po == nullptr);
  expect(unet_predictor_create(m.get(), nullptr, nullptr), UNET_ERR_INVALID_ARGUMENT, "out");
  expect(unet_predictor_device(nullptr, nullptr), UNET_ERR_INVALID_ARGUMENT, "predictor is NULL");
  expect(unet_predictor_plan(p.get(), 10, 10, nullptr), UNET_ERR_INVALID_ARGUMENT, "plan is NULL");
  unet_plan plan;
  expect(unet_predictor_plan(p.get(), 0, 10, &plan), UNET_ERR_INVALID_ARGUMENT, "at least 1");
  expect(unet_image_read(nullptr, nullptr), UNET_ERR_INVALID_ARGUMENT, "image is NULL");
  unet_image_free(nullptr);
  unet_model_free(nullptr);
  unet_predictor_free(nullptr);

  // Options.
  auto create = [&](unet_predictor_options opt) {
    unet_predictor* q = nullptr;
    const unet_status s = unet_predictor_create(m.get(), &opt, &q);
    unet_predictor_free(q);
    return s;
  };
  unet_predictor_options bad = o;
  bad.struct_size = 8;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "struct_size");
  bad = o, bad.device = UNET_DEVICE_CPU, bad.cuda_graph = 1;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "cuda_graph needs the GPU");
  bad = o, bad.device = 7;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "device = 7");
  bad = o, bad.device = UNET_DEVICE_CPU, bad.precision = UNET_PRECISION_TF32;  // the CPU has no tf32
  expect(create(bad), UNET_ERR_UNSUPPORTED, "precision tf32");
  bad = o, bad.device = UNET_DEVICE_CPU, bad.precision = UNET_PRECISION_BF16;  // with AVX-512 BF16 only
  if (cpu_has_avx512_bf16()) expect(create(bad), UNET_OK, "");
  else expect(create(bad), UNET_ERR_UNSUPPORTED, "avx512_bf16");
  bad = o, bad.device = UNET_DEVICE_CPU, bad.precision = UNET_PRECISION_FP32;
  expect(create(bad), UNET_OK, "");
  bad = o, bad.precision = -1;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "precision = -1");
  bad = o, bad.tile = 83;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "nearest valid sizes");
  bad = o, bad.tile = -4;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "tile = -4");
  bad = o, bad.batch = 257;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "batch = 257");
  bad = o, bad.threads = -1;
  expect(create(bad), UNET_ERR_INVALID_ARGUMENT, "threads = -1");
  // No GPU: a build or machine without one says so (where auto finds a GPU, cuda works).
  bad = o, bad.device = UNET_DEVICE_AUTO;
  unet_predictor* autop = nullptr;
  REQUIRE(unet_predictor_create(m.get(), &bad, &autop) == UNET_OK);
  unet_device dev;
  REQUIRE(unet_predictor_device(autop, &dev) == UNET_OK);
  unet_predictor_free(autop);
  bad.device = UNET_DEVICE_CUDA;
  if (dev == UNET_DEVICE_CPU) expect(create(bad), UNET_ERR_NO_DEVICE, "no GPU");
  else CHECK(create(bad) == UNET_OK);

  // Images.
  const std::vector<uint8_t> u8 = gradient_u8(20, 10, 1);
  std::vector<float> probs(2 * 20 * 10);
  std::vector<uint8_t> labels(20 * 10);
  unet_image img = image_of(u8, 20, 10, 1, UNET_U8);
  auto probs_of = [&](const unet_image& i) {
    return unet_predict_probabilities(p.get(), &i, probs.data(), probs.size());
  };
  expect(unet_predict_probabilities(nullptr, &img, probs.data(), probs.size()), UNET_ERR_INVALID_ARGUMENT,
         "predictor is NULL");
  expect(unet_predict_probabilities(p.get(), nullptr, probs.data(), probs.size()), UNET_ERR_INVALID_ARGUMENT,
         "image is NULL");
  expect(unet_predict_probabilities(p.get(), &img, nullptr, probs.size()), UNET_ERR_INVALID_ARGUMENT, "buffer is NULL");
  expect(unet_predict_probabilities(p.get(), &img, probs.data(), probs.size() - 1), UNET_ERR_INVALID_ARGUMENT,
         "holds 399 elements, the image needs 400");
  expect(unet_predict_labels(p.get(), &img, labels.data(), 5), UNET_ERR_INVALID_ARGUMENT, "holds 5 elements");
  expect(unet_predict_bands(p.get(), &img, nullptr, nullptr), UNET_ERR_INVALID_ARGUMENT, "band callback is NULL");
  unet_image b = img;
  b.data = nullptr;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "image data is NULL");
  b = img, b.channels = 3;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "the image has 3 channel(s), the model takes 1");
  b = img, b.width = 0;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "at least 1");
  b = img, b.height = -5;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "at least 1");
  b = img, b.dtype = 9;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "dtype = 9");
  b = img, b.row_stride = 19;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "row_stride = 19");
  std::vector<uint16_t> u16(20 * 10 + 1);
  b = image_of(u16, 20, 10, 1, UNET_U16);
  b.data = reinterpret_cast<const uint8_t*>(u16.data()) + 1;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "not aligned");
  b = image_of(u16, 20, 10, 1, UNET_U16);
  b.row_stride = 41;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "multiple of 2");
  b = img, b.height = std::numeric_limits<int32_t>::max(), b.row_stride = size_t{1} << 40;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "larger than memory");
  std::vector<float> f32(20 * 10, 0.5f);
  f32[3 * 20 + 7] = std::nanf("");
  b = image_of(f32, 20, 10, 1, UNET_F32);
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "x=7, y=3");
  f32[3 * 20 + 7] = INFINITY;
  expect(probs_of(b), UNET_ERR_INVALID_ARGUMENT, "finite");
  // A successful call clears the thread's message.
  REQUIRE(probs_of(img) == UNET_OK);
  CHECK(std::string(unet_last_error()).empty());
}

TEST_CASE("capi: damaged, truncated and foreign checkpoints are refused with their name", "[capi]") {
  TempDir tmp;
  const std::string good = write_checkpoint(tmp, "good.safetensors", small_config());
  const std::vector<uint8_t> bytes = file_bytes(good);
  unet_model* m = nullptr;
  auto load_file = [&](const std::vector<uint8_t>& b, unet_status want, const char* text) {
    write_file(tmp / "bad.safetensors", b);
    CHECK(unet_model_load((tmp / "bad.safetensors").c_str(), &m) == want);
    CHECK(m == nullptr);
    CHECK_THAT(unet_last_error(), Contains("bad.safetensors") && Contains(text));
    CHECK(unet_model_load_memory(b.data(), b.size(), "buffer.st", &m) == want);
    CHECK_THAT(unet_last_error(), Contains("buffer.st") && Contains(text));
  };
  load_file(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5), UNET_ERR_BAD_MODEL, "8-byte");
  load_file(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 200), UNET_ERR_BAD_MODEL, "larger than");
  load_file(std::vector<uint8_t>(bytes.begin(), bytes.end() - 4), UNET_ERR_BAD_MODEL, "truncated");
  std::vector<uint8_t> b = bytes;
  b[8] = '[';
  load_file(b, UNET_ERR_BAD_MODEL, "not valid JSON");
  // NaN weights: the file parses, the loader refuses it.
  b = bytes;
  const float nan = std::nanf("");
  std::memcpy(b.data() + b.size() - 4, &nan, 4);
  load_file(b, UNET_ERR_BAD_MODEL, "non-finite");
  // A safetensors file of something else.
  save_safetensors(tmp / "other.safetensors", {{"w", {2}, {1.0f, 2.0f}}});
  load_file(file_bytes(tmp / "other.safetensors"), UNET_ERR_BAD_MODEL, "metadata has no");
  // An architecture the file cannot hold.
  std::string text(bytes.begin(), bytes.end());
  const size_t at = text.find("\"base\":\"4\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 10, "\"base\":\"8\"");
  load_file(std::vector<uint8_t>(text.begin(), text.end()), UNET_ERR_BAD_MODEL, "has shape");

  CHECK(unet_model_load((tmp / "missing.safetensors").c_str(), &m) == UNET_ERR_IO);
  CHECK_THAT(unet_last_error(), Contains("missing.safetensors") && Contains("No such file"));
  CHECK(unet_model_load(tmp.dir.c_str(), &m) == UNET_ERR_IO);
  CHECK_THAT(unet_last_error(), Contains("directory"));
}

TEST_CASE("capi: images are read as unet predict reads them, and bad ones refused", "[capi]") {
  TempDir tmp;
  unet_image img;
  REQUIRE(unet_image_read(UNET_TEST_DATA_DIR "/isbi/image/05.png", &img) == UNET_OK);
  CHECK((img.width == 512 && img.height == 512 && img.channels == 1 && img.dtype == UNET_U8));
  const RawImage raw = read_image_raw(UNET_TEST_DATA_DIR "/isbi/image/05.png");
  CHECK(std::memcmp(img.data, raw.u8.data(), raw.u8.size()) == 0);
  unet_image_free(&img);
  CHECK(img.data == nullptr);
  unet_image_free(&img);  // a cleared image: nothing to do

  // A 16-bit PGM is big-endian (the command line's reader and libunet's agree), and one cut short is refused.
  write_file(tmp / "x.pgm", {'P', '5', ' ', '#', ' ', 'c',  '\n', '2', ' ',  '1', '\n',
                             '6', '5', '5', '3', '5', '\n', 1,    2,   0xff, 0xfe});
  REQUIRE(unet_image_read((tmp / "x.pgm").c_str(), &img) == UNET_OK);
  CHECK((img.width == 2 && img.height == 1 && img.dtype == UNET_U16));
  CHECK(static_cast<const uint16_t*>(img.data)[0] == 0x0102);
  CHECK(static_cast<const uint16_t*>(img.data)[1] == 0xfffe);
  unet_image_free(&img);
  CHECK(read_image_raw(tmp / "x.pgm").u16 == std::vector<uint16_t>{0x0102, 0xfffe});
  write_file(tmp / "short.pgm", {'P', '5', '\n', '2', ' ', '2', '\n', '2', '5', '5', '\n', 1, 2, 3});
  CHECK(unet_image_read((tmp / "short.pgm").c_str(), &img) == UNET_ERR_BAD_IMAGE);
  CHECK_THAT(unet_last_error(), Contains("short.pgm") && Contains("truncated") && Contains("needs 4 bytes"));

  CHECK(unet_image_read((tmp / "none.png").c_str(), &img) == UNET_ERR_IO);
  CHECK_THAT(unet_last_error(), Contains("none.png"));
  write_file(tmp / "junk.png", {1, 2, 3, 4, 5});
  CHECK(unet_image_read((tmp / "junk.png").c_str(), &img) == UNET_ERR_BAD_IMAGE);
  CHECK_THAT(unet_last_error(), Contains("junk.png") && Contains("supported: PNG"));
  std::vector<uint8_t> png = file_bytes(UNET_TEST_DATA_DIR "/isbi/image/05.png");
  png.resize(png.size() / 2);
  write_file(tmp / "cut.png", png);
  CHECK(unet_image_read((tmp / "cut.png").c_str(), &img) == UNET_ERR_BAD_IMAGE);
  CHECK_THAT(unet_last_error(), Contains("cut.png"));
  write_file(tmp / "t.tif", {'I', 'I', '*', 0, 8, 0, 0, 0});
  CHECK(unet_image_read((tmp / "t.tif").c_str(), &img) == UNET_ERR_BAD_IMAGE);
  CHECK_THAT(unet_last_error(), Contains("TIFF"));
  CHECK(img.data == nullptr);
}

TEST_CASE("capi: progress reports every batch and cancels, and a band callback stops", "[capi]") {
  TempDir tmp;
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", small_config()));
  struct Seen {
    int64_t calls = 0, last = 0, total = 0, stop_at = -1;
  } seen;
  unet_predictor_options o = cpu_options();
  o.tile = 60;
  o.progress = [](void* u, int64_t done, int64_t total) -> int {
    auto* s = static_cast<Seen*>(u);
    ++s->calls;
    if (done <= s->last) return 1;  // must grow
    s->last = done;
    s->total = total;
    return done == s->stop_at;
  };
  o.progress_user = &seen;
  PredictorPtr p = make_predictor(m.get(), &o);
  REQUIRE(p);
  const std::vector<uint8_t> u8 = gradient_u8(100, 90, 1);
  unet_image img = image_of(u8, 100, 90, 1, UNET_U8);
  std::vector<uint8_t> labels(100 * 90);
  REQUIRE(unet_predict_labels(p.get(), &img, labels.data(), labels.size()) == UNET_OK);
  CHECK(seen.total > 2);
  CHECK(seen.calls == seen.total);  // batch 1: once per tile
  CHECK(seen.last == seen.total);
  seen = Seen{};
  seen.stop_at = 2;
  CHECK(unet_predict_labels(p.get(), &img, labels.data(), labels.size()) == UNET_ERR_CANCELLED);
  CHECK_THAT(unet_last_error(), Contains("cancelled") && Contains("after 2 of"));
  CHECK(seen.calls == 2);
  auto stop = [](void*, int32_t, int32_t, const float*) -> int { return 1; };
  seen = Seen{};
  CHECK(unet_predict_bands(p.get(), &img, stop, nullptr) == UNET_ERR_CANCELLED);
  CHECK_THAT(unet_last_error(), Contains("band callback"));
}

TEST_CASE("capi: a prediction that does not fit in memory is refused, not crashed", "[capi]") {
  TempDir tmp;
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", small_config()));
  unet_predictor_options o = cpu_options();
  o.tile = 16380;  // feature maps of ~25 GB for a base-4 network: more than this machine's memory
  PredictorPtr p = make_predictor(m.get(), &o);
  REQUIRE(p);
  const std::vector<uint8_t> u8 = gradient_u8(16, 16, 1);
  unet_image img = image_of(u8, 16, 16, 1, UNET_U8);
  std::vector<uint8_t> labels(16 * 16);
  CHECK(unet_predict_labels(p.get(), &img, labels.data(), labels.size()) == UNET_ERR_OUT_OF_MEMORY);
  CHECK_THAT(unet_last_error(), Contains("GiB") && Contains("largest tile that fits"));

#if defined(UNET_TEST_ASAN)
  WARN("the allocation-failure half needs an address-space limit, which AddressSanitizer's shadow cannot live under");
#else
  // Allocations that fail for real (an address-space limit, as a container's memory limit would):
  // in a child process, so that the limit stays there. Whichever allocation fails first (a tensor,
  // a vector, a kernel's scratch on a pool thread), the call returns UNET_ERR_OUT_OF_MEMORY.
  o.tile = 1212;
  PredictorPtr q = make_predictor(m.get(), &o);
  REQUIRE(q);
  const std::vector<uint8_t> big = gradient_u8(1100, 1100, 1);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    rlimit r{};
    getrlimit(RLIMIT_AS, &r);
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    r.rlim_cur = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + (64 << 20);  // 64 MiB more than now
    setrlimit(RLIMIT_AS, &r);
    unet_image bi = image_of(big, 1100, 1100, 1, UNET_U8);
    std::vector<uint8_t> out(1100 * 1100);
    const unet_status s = unet_predict_labels(q.get(), &bi, out.data(), out.size());
    _exit(s == UNET_ERR_OUT_OF_MEMORY && std::strstr(unet_last_error(), "memory") ? 0 : 10 + s);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));  // not killed by a signal: no abort, no crash
  CHECK(WEXITSTATUS(status) == 0);
#endif
}
