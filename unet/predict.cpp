#include "unet/predict.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>

#include "engine/graph.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "unet/mirror.h"

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
    const double cost =
        static_cast<double>(tiles_along(h, out, step)) * tiles_along(w, out, step) * forward_flops(cfg, t, t);
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

ImageView ImageView::planar(const void* data, Type type, int channels, int height, int width) {
  ImageView v;
  v.data = data;
  v.type = type;
  v.channels = channels;
  v.height = height;
  v.width = width;
  v.channel_stride = static_cast<int64_t>(height) * width;
  v.row_stride = width;
  v.pixel_stride = 1;
  return v;
}

ImageView ImageView::of(const RawImage& img) {
  UNET_CHECK(
      img.u8.size() + img.u16.size() + img.f32.size() == static_cast<size_t>(img.channels) * img.height * img.width,
      "predict: raw image holds the wrong number of samples");
  if (img.info.is_float) return planar(img.f32.data(), Type::kF32, img.channels, img.height, img.width);
  if (img.info.bits == 16) return planar(img.u16.data(), Type::kU16, img.channels, img.height, img.width);
  return planar(img.u8.data(), Type::kU8, img.channels, img.height, img.width);
}

ImageView ImageView::of(const Image& img) {
  UNET_CHECK(img.data.size() == static_cast<size_t>(img.channels) * img.height * img.width,
             "predict: image data holds ", img.data.size(), " values, not channels*height*width");
  return planar(img.data.data(), Type::kF32, img.channels, img.height, img.width);
}

namespace {

// Cuts the n x n input tile whose top-left corner is (y0, x0) (mirrored past the border, as
// extract_tile_mirrored does) out of the view, as floats; `scale` != 0 multiplies each sample by it
// (normalise_intensity's rule), 0 copies the values.
template <typename T>
void cut_tile(const ImageView& v, float scale, int y0, int x0, int n, float* dst, std::vector<int64_t>& xs) {
  const T* data = static_cast<const T*>(v.data);
  xs.resize(n);
  for (int x = 0; x < n; ++x) xs[x] = mirror(x0 + x, v.width) * v.pixel_stride;
  for (int c = 0; c < v.channels; ++c)
    for (int y = 0; y < n; ++y) {
      const T* src = data + c * v.channel_stride + mirror(y0 + y, v.height) * v.row_stride;
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
  check_tile_fits(
      cfg, net.device(), std::min<int64_t>(opt.batch, total), T, /*training=*/false,
      "prediction tile " + std::to_string(T) + " (--tile) at batch " + std::to_string(opt.batch) + " (--batch)");

  const std::vector<Dihedral> views =
      opt.tta ? std::vector<Dihedral>(kAll, kAll + 8) : std::vector<Dihedral>{kIdentity};
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
  // With a graph, full batches read their tiles from x_full and leave the softmax in p_full; the first runs
  // eagerly (the kernels' one-time set-up stays out of the capture), the second is captured, the rest replay.
  // The capture and instantiation cost about what a few replays save (a graph per image: the tiles' count
  // and the views decide), so an image with fewer than kMinGraphPasses full forward passes runs eagerly.
  constexpr int64_t kMinGraphPasses = 8;
  std::unique_ptr<StepGraph> graph;
  UNET_CHECK(!opt.cuda_graph || net.device() == Device::CUDA, "predict: a CUDA graph needs the network on the GPU");
  if (opt.cuda_graph && total / opt.batch * static_cast<int64_t>(views.size()) >= kMinGraphPasses)
    graph = std::make_unique<StepGraph>();
  Tensor x_full, p_full;
  int full_batches = 0;
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
      for (size_t i = 0; i < nb; ++i)
        dihedral_apply(tiles_in.data() + i * in_tile, batch_in.data() + i * in_tile, C, T, d);
      const Tensor xh = Tensor::from_vector({static_cast<int64_t>(nb), C, T, T}, batch_in);
      if (graph && static_cast<int>(nb) == opt.batch && full_batches++ > 0) {
        if (!x_full.defined()) x_full = Tensor::empty(xh.shape(), DType::F32, net.device());
        x_full.copy_from(xh);
        graph->run([&] { p_full = ops::softmax(net.forward(Var(x_full), false).value()); }, nullptr, nullptr);
        batch_out = p_full.to_vector();
      } else {
        batch_out = ops::softmax(net.forward(Var(xh.to(net.device())), false).value()).to_vector();
      }
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

}  // namespace

void predict_bands(const UNet& net, const ImageView& img, const PredictOptions& opt, const BandSink& sink) {
  UNET_CHECK(img.data != nullptr || img.channels * static_cast<int64_t>(img.height) * img.width == 0,
             "predict: the image has no data");
  std::vector<int64_t> xs;
  TileCutter cut;
  if (img.type == ImageView::Type::kF32)
    cut = [&](int y0, int x0, int n, float* dst) { cut_tile<float>(img, 0.0f, y0, x0, n, dst, xs); };
  else if (img.type == ImageView::Type::kU16)
    cut = [&](int y0, int x0, int n, float* dst) { cut_tile<uint16_t>(img, 1.0f / 65535.0f, y0, x0, n, dst, xs); };
  else cut = [&](int y0, int x0, int n, float* dst) { cut_tile<uint8_t>(img, 1.0f / 255.0f, y0, x0, n, dst, xs); };
  predict_core(net, img.channels, img.height, img.width, cut, opt, sink);
}

void predict_bands(const UNet& net, const Image& img, const PredictOptions& opt, const BandSink& sink) {
  predict_bands(net, ImageView::of(img), opt, sink);
}

void predict_bands(const UNet& net, const RawImage& img, const PredictOptions& opt, const BandSink& sink) {
  predict_bands(net, ImageView::of(img), opt, sink);
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

Image argmax_classes(const Image& probs) {
  Image out(1, probs.height, probs.width, 0.0f);
  for (int y = 0; y < probs.height; ++y)
    for (int x = 0; x < probs.width; ++x) out.at(0, y, x) = static_cast<float>(argmax_class(probs, y, x));
  return out;
}

}  // namespace unet
