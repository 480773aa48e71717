// libunet's C API under stress: damaged checkpoints and random arguments in bounded loops (a status
// and a message every time, never a crash; the sanitizer build runs them too), and one model shared
// by predictors on several threads at once (the bits of a lone thread, per-thread error messages).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/capi_helpers.h"

using namespace unet;
using namespace unet::test;

namespace {

// Every failure names itself: a status other than OK comes with a message.
void require_explained(unet_status s) {
  if (s != UNET_OK) REQUIRE(std::strlen(unet_last_error()) > 0);
}

}  // namespace

TEST_CASE("capi fuzz: damaged checkpoints load or are refused, and what loads predicts", "[capi][fuzz]") {
  TempDir tmp;
  const std::vector<uint8_t> good = file_bytes(write_checkpoint(tmp, "m.safetensors", small_config()));
  const size_t header = 8 + (good[0] | (size_t{good[1]} << 8) | (size_t{good[2]} << 16));
  Rng rng(2024);
  const std::vector<uint8_t> u8(37 * 29, 100);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::vector<uint8_t> b = good;
    switch (rng.below(6)) {
      case 0:  // flip bits, mostly in the header where the structure is
        for (int k = 1 + static_cast<int>(rng.below(4)); k > 0; --k)
          b[rng.below(static_cast<uint32_t>(rng.below(4) ? header : b.size()))] ^=
              static_cast<uint8_t>(1u << rng.below(8));
        break;
      case 1:  // cut short
        b.resize(rng.below(static_cast<uint32_t>(b.size())));
        break;
      case 2:  // a random byte in the header replaced by a JSON character
        b[8 + rng.below(static_cast<uint32_t>(header - 8))] =
            static_cast<uint8_t>("{}[]\":,0123456789-e. \\"[rng.below(22)]);
        break;
      case 3:  // the length word
        b[rng.below(8)] = static_cast<uint8_t>(rng.below(256));
        break;
      case 4:  // a weight replaced by random bits (NaN and inf among them)
        for (int k = 0; k < 4; ++k)
          b[header + rng.below(static_cast<uint32_t>(b.size() - header))] = static_cast<uint8_t>(rng.below(256));
        break;
      default:  // bytes inserted in the header
        b.insert(b.begin() + 8 + rng.below(static_cast<uint32_t>(header - 8)), rng.below(3) + 1,
                 static_cast<uint8_t>("\" 1,{"[rng.below(5)]));
    }
    unet_model* m = nullptr;
    const unet_status s = unet_model_load_memory(b.data(), b.size(), "fuzzed", &m);
    require_explained(s);
    REQUIRE((s == UNET_OK || s == UNET_ERR_BAD_MODEL));
    REQUIRE((s == UNET_OK) == (m != nullptr));
    if (s != UNET_OK) {
      ++refused;
      continue;
    }
    ++loaded;
    unet_predictor_options o;
    unet_predictor_options_init(&o);
    o.device = UNET_DEVICE_CPU;
    unet_predictor* p = nullptr;
    REQUIRE(unet_predictor_create(m, &o, &p) == UNET_OK);
    unet_image img = image_of(u8, 37, 29, 1, UNET_U8);
    std::vector<uint8_t> labels(37 * 29);
    const unet_status ps = unet_predict_labels(p, &img, labels.data(), labels.size());
    require_explained(ps);
    CHECK(ps == UNET_OK);  // a checkpoint that loads holds finite weights of the right shapes
    unet_predictor_free(p);
    unet_model_free(m);
  }
  CHECK(loaded > 0);
  CHECK(refused > 200);
}

TEST_CASE("capi fuzz: random options and image descriptions give a status, never a crash", "[capi][fuzz]") {
  TempDir tmp;
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", small_config(2, 3)));
  REQUIRE(m);
  Rng rng(99);
  auto pick = [&](std::initializer_list<int64_t> v) {
    return *(v.begin() + rng.below(static_cast<uint32_t>(v.size())));
  };
  int ok = 0;
  for (int i = 0; i < 400; ++i) {
    unet_predictor_options o;
    unet_predictor_options_init(&o);
    // Each field valid most of the time, so that some calls get through to a prediction.
    o.device = static_cast<int32_t>(pick({0, 1, 1, 1, 1, 1, 1, 2, -1, 3}));
    o.threads = static_cast<int32_t>(pick({0, 1, 2, 0, 1, 2, 0, 1, -3, 5000}));
    o.tile = static_cast<int32_t>(pick({0, 0, 60, 64, 84, 60, 64, 61, -1, 20000}));
    o.batch = static_cast<int32_t>(pick({0, 1, 3, 0, 1, 3, 0, 1, 300, -2}));
    o.tta = static_cast<int32_t>(pick({0, 1, 7}));
    o.precision = static_cast<int32_t>(pick({0, 0, 0, 0, 0, 0, 0, 1, 2, 9}));
    if (rng.below(20) == 0) o.struct_size = static_cast<uint32_t>(rng.below(100));
    unet_predictor* p = nullptr;
    const unet_status ps = unet_predictor_create(m.get(), &o, &p);
    require_explained(ps);
    if (ps != UNET_OK) {
      REQUIRE(p == nullptr);
      continue;
    }
    // An image description and buffers that match it, or not.
    const int w = static_cast<int>(pick({1, 2, 17, 40, 1, 2, 17, 40, 0, -1})),
              h = static_cast<int>(pick({1, 3, 25, 1, 3, 25, 0}));
    const int c = static_cast<int>(pick({2, 2, 2, 2, 1, 3}));
    const int32_t dtype = static_cast<int32_t>(pick({UNET_U8, UNET_U16, UNET_F32, UNET_U8, UNET_U16, UNET_F32, 0}));
    const size_t size = dtype == UNET_U16 ? 2 : 4;
    const size_t pad = pick({0, 0, 0, 4, 3});
    const size_t row = static_cast<size_t>(std::max(w, 0)) * c * size + pad;
    std::vector<float> pixels((row * std::max(h, 0) + 3) / 4 + 1, 0.25f);  // aligned for every type
    unet_image img{};
    img.data = rng.below(30) ? pixels.data() : nullptr;
    img.width = w;
    img.height = h;
    img.channels = c;
    img.dtype = dtype;
    img.row_stride = pad ? row : 0;
    const size_t n = static_cast<size_t>(std::max(w, 0)) * std::max(h, 0);
    std::vector<float> probs(3 * n + 1);
    const size_t count = pick({0, 1, 1, 1, 1, 1}) ? 3 * n : (3 * n) / 2;
    unet_status s = rng.below(2) ? unet_predict_probabilities(p, &img, probs.data(), count)
                                 : unet_predict_labels(p, &img, reinterpret_cast<uint8_t*>(probs.data()), count / 3);
    require_explained(s);
    REQUIRE(s != UNET_ERR_INTERNAL);
    ok += s == UNET_OK;
    unet_predictor_free(p);
  }
  CHECK(ok > 5);
}

TEST_CASE("capi threads: one model, predictors on several threads at once, the bits of a lone thread",
          "[capi][threads]") {
  TempDir tmp;
  ModelPtr m = load_model(write_checkpoint(tmp, "m.safetensors", small_config()));
  REQUIRE(m);
  std::vector<uint8_t> u8(150 * 120);
  for (size_t i = 0; i < u8.size(); ++i) u8[i] = static_cast<uint8_t>(i * 13 % 251);
  const unet_image img = image_of(u8, 150, 120, 1, UNET_U8);
  auto options = [](int threads, int tta) {
    unet_predictor_options o;
    unet_predictor_options_init(&o);
    o.device = UNET_DEVICE_CPU;
    o.tile = 84;
    o.threads = threads;
    o.tta = tta;
    return o;
  };
  // References, one thread at a time.
  std::vector<std::vector<float>> ref(2, std::vector<float>(2 * 150 * 120));
  for (int tta = 0; tta < 2; ++tta) {
    const unet_predictor_options o = options(0, tta);
    PredictorPtr p = make_predictor(m.get(), &o);
    REQUIRE(unet_predict_probabilities(p.get(), &img, ref[tta].data(), ref[tta].size()) == UNET_OK);
  }
  // Predictors of every thread setting, one of them shared by two threads; and a thread whose
  // calls fail, whose messages must not reach the others.
  std::vector<PredictorPtr> preds;
  for (int threads : {0, 1, 2, 1}) {
    const unet_predictor_options o = options(threads, threads == 2);
    preds.push_back(make_predictor(m.get(), &o));
    REQUIRE(preds.back());
  }
  std::atomic<int> mismatches{0}, failures{0}, leaked_messages{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 5; ++t)
    threads.emplace_back([&, t] {
      const size_t k = t < 4 ? static_cast<size_t>(t) : 0;
      const std::vector<float>& want = ref[k == 2];
      std::vector<float> got(want.size());
      for (int rep = 0; rep < 3; ++rep) {
        if (unet_predict_probabilities(preds[k].get(), &img, got.data(), got.size()) != UNET_OK) ++failures;
        if (got != want) ++mismatches;
        if (std::strlen(unet_last_error()) != 0) ++leaked_messages;
      }
    });
  threads.emplace_back([&] {
    for (int rep = 0; rep < 200; ++rep) {
      unet_image bad = img;
      bad.channels = 4;
      std::vector<float> out(8);
      if (unet_predict_probabilities(preds[1].get(), &bad, out.data(), out.size()) != UNET_ERR_INVALID_ARGUMENT ||
          std::strstr(unet_last_error(), "4 channel(s)") == nullptr)
        ++failures;
    }
  });
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(mismatches.load() == 0);
  CHECK(leaked_messages.load() == 0);
}
