// segment_probs MODEL IMAGE OUT.f32: the class probabilities of an image with libunet, from C++;
// OUT.f32 holds classes x height x width float32 values (the data of unet predict's --npy file).
#include <unet/unet.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

static void check(unet_status s) {
  if (s != UNET_OK) throw std::runtime_error(unet_last_error());
}

int main(int argc, char** argv) try {
  if (argc != 4) throw std::runtime_error("usage: segment_probs MODEL IMAGE OUT.f32");
  unet_model* m = nullptr;
  check(unet_model_load(argv[1], &m));
  std::unique_ptr<unet_model, decltype(&unet_model_free)> model(m, unet_model_free);
  unet_predictor* p = nullptr;
  check(unet_predictor_create(model.get(), nullptr, &p));  // defaults: as `unet predict`
  std::unique_ptr<unet_predictor, decltype(&unet_predictor_free)> predictor(p, unet_predictor_free);
  unet_image image{};
  check(unet_image_read(argv[2], &image));
  std::unique_ptr<unet_image, decltype(&unet_image_free)> image_owner(&image, unet_image_free);
  unet_model_info info;
  check(unet_model_get_info(model.get(), &info));
  std::vector<float> probs(size_t(info.classes) * image.width * image.height);
  check(unet_predict_probabilities(predictor.get(), &image, probs.data(), probs.size()));
  std::unique_ptr<std::FILE, decltype(&std::fclose)> out(std::fopen(argv[3], "wb"), std::fclose);
  if (!out || std::fwrite(probs.data(), sizeof(float), probs.size(), out.get()) != probs.size())
    throw std::runtime_error(std::string("cannot write ") + argv[3]);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "segment_probs: %s\n", e.what());
  return 1;
}
