// unet predict's output files, written band by band as the Predictor hands the bands over
// (unet/predict.h, docs/predict.md). Part of the trainer's library: the writers need libtiff.
#include <algorithm>
#include <cmath>
#include <memory>

#include "unet/io_stream.h"
#include "unet/predict.h"
#include "unet/predictor.h"

namespace unet {

namespace {

uint8_t to_byte(float v) {  // rounded and clamped like write_png; NaN -> 0
  if (!(v > 0.0f)) return 0;
  if (v >= 255.0f) return 255;
  return static_cast<uint8_t>(std::lround(v));
}

}  // namespace

PredictEvaluation predict_to_files(const Predictor& predictor, const RawImage& image, const PredictFiles& files,
                                   const Progress& progress) {
  const UNetConfig& cfg = predictor.config();
  const int K = cfg.classes, H = image.height, W = image.width;
  UNET_CHECK(image.channels == cfg.in_channels, "predict: the image has ", image.channels,
             " channel(s), the model takes ", cfg.in_channels);
  const Image* lab = files.labels;
  if (lab)
    UNET_CHECK(lab->channels == 1 && lab->height == H && lab->width == W, "predict: the labels are ", lab->width, "x",
               lab->height, " with ", lab->channels, " channel(s), the image is ", W, "x", H,
               " (labels need 1 channel of class indices)");
  const TileGrid g = predictor.grid(H, W);
  TiffFloatPagesWriter probs(files.prefix + "_probs.tif", K, H, W, g.step);
  std::unique_ptr<NpyStreamWriter> npy;
  if (files.npy) npy = std::make_unique<NpyStreamWriter>(files.prefix + "_probs.npy", K, H, W);
  PngStreamWriter mask(files.prefix + "_mask.png", W, H, 1);
  PngStreamWriter overlay(files.prefix + "_overlay.png", W, H, 3);

  const OverlayOptions& ov = files.overlay;
  const float alpha = std::clamp(ov.alpha, 0.0f, 1.0f);
  const float colour[3] = {static_cast<float>(ov.r), static_cast<float>(ov.g), static_cast<float>(ov.b)};
  UNET_CHECK(!ov.boundary_only,
             "predict_to_files: the streamed overlay draws regions only (boundary_only is not supported)");
  const int gray_channels = image.channels == 3 ? 3 : 1;  // RGB stays RGB; otherwise the first channel
  std::vector<uint8_t> mask_rows, over_rows;
  double loss = 0.0, wrong = 0.0, n = 0.0;
  std::vector<int64_t> below0(256, 0), below1(256, 0);  // per m: pixels of label 0 / 1 with "v > t" for t = 1..m
  int64_t other = 0;

  predictor.bands(
      ImageView::of(image),
      [&](int y0, const Image& band) {
    probs.write_rows(y0, band);
    if (npy) npy->write_rows(y0, band);
    const int rows = band.height;
    mask_rows.resize(static_cast<size_t>(rows) * W);
    over_rows.resize(static_cast<size_t>(rows) * W * 3);
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < W; ++x) {
        const int best = argmax_class(band, y, x);
        const size_t i = static_cast<size_t>(y) * W + x;
        mask_rows[i] = K == 2 ? static_cast<uint8_t>(best * 255) : static_cast<uint8_t>(std::min(best, 255));
        for (int c = 0; c < 3; ++c) {
          float v = std::clamp(image.normalised(gray_channels == 3 ? c : 0, y0 + y, x), 0.0f, 1.0f) * 255.0f;
          if (best == ov.tint_class) v = (1.0f - alpha) * v + alpha * colour[c];
          over_rows[i * 3 + c] = to_byte(v);
        }
        if (lab) {
          // evaluate_probabilities, term by term in the same order.
          const float lf = lab->at(0, y0 + y, x);
          const int l = static_cast<int>(lf);
          UNET_CHECK(l >= 0 && l < K && lf == static_cast<float>(l), "predict: label value ", lf, " at x=", x,
                     ", y=", y0 + y, " is not a class index 0..", K - 1);
          loss -= std::log(std::max(band.at(l, y, x), 1e-12f));
          wrong += best != l;
          n += 1.0;
          // The threshold baseline: "v > t" holds exactly for t = 1..m.
          const float v = image.normalised(0, y0 + y, x) * 255.0f;
          const int m = !(v > 1.0f) ? 0 : v > 254.0f ? 254 : static_cast<int>(std::ceil(v)) - 1;
          if (lf == 0.0f) ++below0[m];
          else if (lf == 1.0f) ++below1[m];
          else ++other;
        }
      }
    mask.write_rows(y0, mask_rows.data(), rows);
    overlay.write_rows(y0, over_rows.data(), rows);
      },
      progress);
  probs.finish();
  if (npy) npy->finish();
  mask.finish();
  overlay.finish();

  PredictEvaluation r;
  if (lab) {
    r.done = true;
    r.loss = loss / n;
    r.pixel_error = wrong / n;
    // wrong(t) = other + #{label 0 with v > t (m >= t)} + #{label 1 with v <= t (m < t)}.
    int64_t zeros_above = 0, ones_below = 0;
    for (int m = 0; m < 256; ++m) zeros_above += below0[m];
    const double pixels = static_cast<double>(image.pixels());
    for (int t = 1; t < 255; ++t) {
      zeros_above -= below0[t - 1];
      ones_below += below1[t - 1];
      const double wrong_t = static_cast<double>(other + zeros_above + ones_below);
      r.threshold_error = std::min(r.threshold_error, wrong_t / pixels);
    }
  }
  return r;
}

PredictEvaluation predict_to_files(const UNet& net, const RawImage& image, const PredictOptions& opt,
                                   const PredictFiles& files) {
  PredictorOptions po;
  po.tile = opt.tile;
  po.batch = opt.batch;
  po.tta = opt.tta;
  // A non-owning handle: the caller keeps `net` alive for the call.
  const Predictor predictor(std::shared_ptr<const UNet>(std::shared_ptr<const UNet>(), &net), po);
  Progress progress;
  if (opt.progress)
    progress = [&opt](int64_t done, int64_t total) {
      opt.progress(static_cast<int>(done), static_cast<int>(total));
      return true;
    };
  return predict_to_files(predictor, image, files, progress);
}

}  // namespace unet
