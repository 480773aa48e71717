#include "unet/predict.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>

#include "engine/ops.h"
#include "engine/precision.h"
#include "unet/augment.h"
#include "unet/io_stream.h"

namespace unet {

namespace {

// The 8 symmetries of the square, as (transpose, flip rows, flip columns). apply() maps a square
// tile forward; invert() maps a prediction made on the transformed tile back.
struct Dihedral {
  bool transpose, flip_y, flip_x;
};
const Dihedral kIdentity{false, false, false};
const Dihedral kAll[8] = {{false, false, false}, {false, false, true}, {false, true, false}, {false, true, true},
                          {true, false, false},  {true, false, true},  {true, true, false},  {true, true, true}};

// Visits every pixel (c, y, x) of an n x n CHW buffer with its source (sy, sx) under d: flips then
// transpose. apply copies in(src) -> out(y, x); invert writes the other way.
template <typename F>
void dihedral_walk(int planes, int n, Dihedral d, F&& f) {
  for (int c = 0; c < planes; ++c)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        int sy = d.transpose ? x : y, sx = d.transpose ? y : x;
        if (d.flip_y) sy = n - 1 - sy;
        if (d.flip_x) sx = n - 1 - sx;
        f((static_cast<size_t>(c) * n + y) * n + x, (static_cast<size_t>(c) * n + sy) * n + sx);
      }
}

// out(y, x) = in(src(y, x))
void dihedral_apply(const float* in, float* out, int planes, int n, Dihedral d) {
  dihedral_walk(planes, n, d, [&](size_t dst, size_t src) { out[dst] = in[src]; });
}

// The inverse of dihedral_apply: in(src(y, x)) = out(y, x).
void dihedral_invert(const float* out, float* in, int planes, int n, Dihedral d) {
  dihedral_walk(planes, n, d, [&](size_t dst, size_t src) { in[src] = out[dst]; });
}

}  // namespace

namespace {

// Tiles of `out` px whose origins are `step` apart that cover n px: the last may reach past them.
int tiles_along(int n, int out, int step) { return n <= out ? 1 : 1 + (n - out + step - 1) / step; }

int lattice_step(int out, int depth) { return out - out % (1 << depth); }

}  // namespace

int choose_tile(const PredictOptions& opt, int h, int w, const UNetConfig& cfg) {
  const int depth = cfg.depth;
  if (opt.tile > 0) {
    TileSizes::check_input(opt.tile, depth, "tile size (--tile)");
    return opt.tile;
  }
  // The valid tile with the fewest flops for the whole image (tiles x one tile's forward), among
  // those from the smallest that covers one pooling-lattice step up to the smaller of: the tile
  // that covers the image alone, and the largest whose batch fits the memory budget. Bigger tiles
  // waste less on the border that every tile recomputes, so the largest affordable usually wins.
  const int lo = TileSizes::input_for_output(1 << depth, depth);
  const int need = TileSizes::input_for_output(std::max({h, w, 1 << depth}), depth);
  const double per_px = 24.0 * cfg.base * std::max(opt.batch, 1);  // ~bytes per input pixel of a batch
  const int cap = std::max(lo, static_cast<int>(std::sqrt(kPredictMemoryBudget / per_px)));
  int best = lo;
  double best_cost = -1.0;
  for (int t = lo; t <= std::min(need, cap); ++t) {
    const int out = TileSizes::output_for_input(t, depth);
    if (out <= 0 || lattice_step(out, depth) <= 0) continue;
    const int step = lattice_step(out, depth);
    const double cost = static_cast<double>(tiles_along(h, out, step)) * tiles_along(w, out, step) *
                        forward_flops(cfg, t, t);
    if (best_cost < 0.0 || cost < best_cost) {
      best = t;
      best_cost = cost;
    }
  }
  return best;
}

TileGrid tile_grid(const UNetConfig& cfg, const PredictOptions& opt, int h, int w) {
  UNET_CHECK(h > 0 && w > 0, "predict: empty image");
  TileGrid g;
  g.tile = choose_tile(opt, h, w, cfg);
  g.out = TileSizes::output_for_input(g.tile, cfg.depth);
  // Output tile origins: a regular grid whose step is a multiple of 2^depth, so every tile sees
  // its input on the same 2x2-pooling lattice (a shift by any other amount changes which pixels
  // each max-pool groups, and with it the result). The last tile may reach past the image: its
  // input there is mirrored like any other context and its extra output is dropped. As few tiles
  // as cover the image: one when the output fits in one tile.
  const int lattice = 1 << cfg.depth;
  g.step = lattice_step(g.out, cfg.depth);
  UNET_CHECK(g.step > 0, "tile ", g.tile, " gives an output of ", g.out, " px, less than the ", lattice,
             " px pooling lattice of a depth-", cfg.depth, " U-Net: choose a larger tile");
  g.rows = tiles_along(h, g.out, g.step);
  g.cols = tiles_along(w, g.out, g.step);
  return g;
}

namespace {

// Cuts the n x n input tile whose top-left corner is (y0, x0) (mirrored past the border, as
// extract_tile_mirrored does) out of planar samples, as floats; `scale` != 0 multiplies each
// sample by it (normalise_intensity's rule), 0 copies the values.
template <typename T>
void cut_tile(const T* data, int channels, int h, int w, float scale, int y0, int x0, int n, float* dst,
              std::vector<int>& xs) {
  xs.resize(n);
  for (int x = 0; x < n; ++x) xs[x] = mirror_index(x0 + x, w);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < n; ++y) {
      const T* src = data + (static_cast<size_t>(c) * h + mirror_index(y0 + y, h)) * w;
      float* d = dst + (static_cast<size_t>(c) * n + y) * n;
      if (scale != 0.0f)
        for (int x = 0; x < n; ++x) d[x] = static_cast<float>(src[xs[x]]) * scale;
      else
        for (int x = 0; x < n; ++x) d[x] = static_cast<float>(src[xs[x]]);
    }
}

// (y0, x0, n, dst): the normalised n x n input tile at (y0, x0), channels x n x n floats.
using TileCutter = std::function<void(int, int, int, float*)>;

void predict_core(const UNet& net, int channels, int h, int w, const TileCutter& cut, const PredictOptions& opt,
                  const BandSink& sink) {
  const UNetConfig& cfg = net.config();
  UNET_CHECK(channels == cfg.in_channels, "predict: the image has ", channels, " channel(s), the model takes ",
             cfg.in_channels);
  UNET_CHECK(h > 0 && w > 0, "predict: empty image");
  UNET_CHECK(opt.batch >= 1, "predict: batch must be >= 1, got ", opt.batch);
  const TileGrid g = tile_grid(cfg, opt, h, w);
  const int T = g.tile, O = g.out, B = (T - O) / 2, K = cfg.classes, C = cfg.in_channels, step = g.step;
  const int64_t total = g.count();
  check_tile_fits(cfg, net.device(), std::min<int64_t>(opt.batch, total), T, /*training=*/false,
                  "prediction tile " + std::to_string(T) + " (--tile) at batch " + std::to_string(opt.batch) +
                      " (--batch)");

  const std::vector<Dihedral> views = opt.tta ? std::vector<Dihedral>(kAll, kAll + 8) : std::vector<Dihedral>{kIdentity};
  NoGrad no_grad;
  const ops::ConvPrecision conv_precision(choose_precision(net.device(), opt.precision));
  const size_t in_tile = static_cast<size_t>(C) * T * T, out_tile = static_cast<size_t>(K) * O * O;
  std::vector<float> tiles_in, batch_in, batch_out, sum, tmp(std::max(in_tile, out_tile));
  // Bands of tile rows first_row, first_row + 1, ...: a band is complete (and handed over) once
  // every tile of its row has been through the network. Batches run across row ends, exactly as
  // a flat list of tiles would, so the results do not depend on how the map is consumed.
  std::deque<Image> bands;
  Image spare;
  int first_row = 0;
  for (int64_t t0 = 0; t0 < total; t0 += opt.batch) {
    const size_t nb = static_cast<size_t>(std::min<int64_t>(opt.batch, total - t0));
    const int last_row = static_cast<int>((t0 + static_cast<int64_t>(nb) - 1) / g.cols);
    while (first_row + static_cast<int>(bands.size()) <= last_row) {
      const int rows = g.band_rows(first_row + static_cast<int>(bands.size()), h);
      if (spare.channels == K && spare.height == rows && spare.width == w) bands.push_back(std::move(spare));
      else bands.emplace_back(K, rows, w);
      spare = Image();
    }
    tiles_in.resize(nb * in_tile);
    for (size_t i = 0; i < nb; ++i) {
      const int64_t t = t0 + static_cast<int64_t>(i);
      const int oy = static_cast<int>(t / g.cols) * step, ox = static_cast<int>(t % g.cols) * step;
      cut(oy - B, ox - B, T, tiles_in.data() + i * in_tile);
    }
    sum.assign(nb * out_tile, 0.0f);
    for (const Dihedral& d : views) {
      batch_in.resize(nb * in_tile);
      for (size_t i = 0; i < nb; ++i) dihedral_apply(tiles_in.data() + i * in_tile, batch_in.data() + i * in_tile, C, T, d);
      Tensor x = Tensor::from_vector({static_cast<int64_t>(nb), C, T, T}, batch_in).to(net.device());
      Tensor p = ops::softmax(net.forward(Var(x), false).value());
      batch_out = p.to_vector();
      for (size_t i = 0; i < nb; ++i) {
        dihedral_invert(batch_out.data() + i * out_tile, tmp.data(), K, O, d);
        for (size_t j = 0; j < out_tile; ++j) sum[i * out_tile + j] += tmp[j];
      }
    }
    // Each tile owns the output rows and columns [origin, origin + step), the last row and column
    // of tiles up to the image border (at most `out` px).
    const float inv = 1.0f / static_cast<float>(views.size());
    for (size_t i = 0; i < nb; ++i) {
      const int64_t t = t0 + static_cast<int64_t>(i);
      Image& band = bands[static_cast<size_t>(t / g.cols - first_row)];
      const int col = static_cast<int>(t % g.cols), ox = col * step, cols = g.owned_cols(col, w);
      for (int k = 0; k < K; ++k)
        for (int y = 0; y < band.height; ++y) {
          const float* src = sum.data() + i * out_tile + (static_cast<size_t>(k) * O + y) * O;
          float* dst = &band.at(k, y, ox);
          for (int x = 0; x < cols; ++x) dst[x] = src[x] * inv;
        }
    }
    const int64_t done = t0 + static_cast<int64_t>(nb);
    while (!bands.empty() && static_cast<int64_t>(first_row + 1) * g.cols <= done) {
      sink(first_row * step, bands.front());
      spare = std::move(bands.front());
      bands.pop_front();
      ++first_row;
    }
    if (opt.progress) opt.progress(static_cast<int>(done), static_cast<int>(total));
  }
}

uint8_t to_byte(float v) {  // rounded and clamped like write_png; NaN -> 0
  if (!(v > 0.0f)) return 0;
  if (v >= 255.0f) return 255;
  return static_cast<uint8_t>(std::lround(v));
}

}  // namespace

void predict_bands(const UNet& net, const Image& img, const PredictOptions& opt, const BandSink& sink) {
  UNET_CHECK(img.data.size() == static_cast<size_t>(img.channels) * img.height * img.width,
             "predict: image data holds ", img.data.size(), " values, not channels*height*width");
  std::vector<int> xs;
  predict_core(net, img.channels, img.height, img.width,
               [&](int y0, int x0, int n, float* dst) {
                 cut_tile(img.data.data(), img.channels, img.height, img.width, 0.0f, y0, x0, n, dst, xs);
               },
               opt, sink);
}

void predict_bands(const UNet& net, const RawImage& img, const PredictOptions& opt, const BandSink& sink) {
  UNET_CHECK(img.u8.size() + img.u16.size() + img.f32.size() == static_cast<size_t>(img.channels) * img.height * img.width,
             "predict: raw image holds the wrong number of samples");
  std::vector<int> xs;
  TileCutter cut;
  if (img.info.is_float)
    cut = [&](int y0, int x0, int n, float* dst) {
      cut_tile(img.f32.data(), img.channels, img.height, img.width, 0.0f, y0, x0, n, dst, xs);
    };
  else if (img.info.bits == 16)
    cut = [&](int y0, int x0, int n, float* dst) {
      cut_tile(img.u16.data(), img.channels, img.height, img.width, 1.0f / 65535.0f, y0, x0, n, dst, xs);
    };
  else
    cut = [&](int y0, int x0, int n, float* dst) {
      cut_tile(img.u8.data(), img.channels, img.height, img.width, 1.0f / 255.0f, y0, x0, n, dst, xs);
    };
  predict_core(net, img.channels, img.height, img.width, cut, opt, sink);
}

Image predict_probabilities(const UNet& net, const Image& img, const PredictOptions& opt) {
  Image probs;
  predict_bands(net, img, opt, [&](int y0, const Image& band) {
    if (probs.empty()) probs = Image(band.channels, img.height, img.width);
    for (int k = 0; k < band.channels; ++k)
      std::copy(band.plane(k), band.plane(k) + band.pixels(), &probs.at(k, y0, 0));
  });
  return probs;
}

PredictEvaluation predict_to_files(const UNet& net, const RawImage& image, const PredictOptions& opt,
                                   const PredictFiles& files) {
  const UNetConfig& cfg = net.config();
  const int K = cfg.classes, H = image.height, W = image.width;
  UNET_CHECK(image.channels == cfg.in_channels, "predict: the image has ", image.channels,
             " channel(s), the model takes ", cfg.in_channels);
  const Image* lab = files.labels;
  if (lab)
    UNET_CHECK(lab->channels == 1 && lab->height == H && lab->width == W, "predict: the labels are ", lab->width,
               "x", lab->height, " with ", lab->channels, " channel(s), the image is ", W, "x", H,
               " (labels need 1 channel of class indices)");
  const TileGrid g = tile_grid(cfg, opt, H, W);
  TiffFloatPagesWriter probs(files.prefix + "_probs.tif", K, H, W, g.step);
  std::unique_ptr<NpyStreamWriter> npy;
  if (files.npy) npy = std::make_unique<NpyStreamWriter>(files.prefix + "_probs.npy", K, H, W);
  PngStreamWriter mask(files.prefix + "_mask.png", W, H, 1);
  PngStreamWriter overlay(files.prefix + "_overlay.png", W, H, 3);

  const OverlayOptions& ov = files.overlay;
  const float alpha = std::clamp(ov.alpha, 0.0f, 1.0f);
  const float colour[3] = {static_cast<float>(ov.r), static_cast<float>(ov.g), static_cast<float>(ov.b)};
  UNET_CHECK(!ov.boundary_only, "predict_to_files: the streamed overlay draws regions only (boundary_only is not supported)");
  const int gray_channels = image.channels == 3 ? 3 : 1;  // RGB stays RGB; otherwise the first channel
  std::vector<uint8_t> mask_rows, over_rows;
  double loss = 0.0, wrong = 0.0, n = 0.0;
  std::vector<int64_t> below0(256, 0), below1(256, 0);  // per m: pixels of label 0 / 1 with "v > t" for t = 1..m
  int64_t other = 0;

  predict_bands(net, image, opt, [&](int y0, const Image& band) {
    probs.write_rows(y0, band);
    if (npy) npy->write_rows(y0, band);
    const int rows = band.height;
    mask_rows.resize(static_cast<size_t>(rows) * W);
    over_rows.resize(static_cast<size_t>(rows) * W * 3);
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < W; ++x) {
        int best = 0;
        for (int k = 1; k < K; ++k)
          if (band.at(k, y, x) > band.at(best, y, x)) best = k;
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
  });
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

Image argmax_classes(const Image& probs) {
  Image out(1, probs.height, probs.width, 0.0f);
  for (int y = 0; y < probs.height; ++y)
    for (int x = 0; x < probs.width; ++x) {
      int best = 0;
      for (int k = 1; k < probs.channels; ++k)
        if (probs.at(k, y, x) > probs.at(best, y, x)) best = k;
      out.at(0, y, x) = static_cast<float>(best);
    }
  return out;
}

}  // namespace unet
