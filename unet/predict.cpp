#include "unet/predict.h"

#include <algorithm>

#include "engine/ops.h"
#include "unet/augment.h"

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

// out(y, x) = in(src(y, x)) with src = flips then transpose; planes of an n x n CHW buffer.
void dihedral_apply(const float* in, float* out, int planes, int n, Dihedral d) {
  for (int c = 0; c < planes; ++c)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        int sy = d.transpose ? x : y, sx = d.transpose ? y : x;
        if (d.flip_y) sy = n - 1 - sy;
        if (d.flip_x) sx = n - 1 - sx;
        out[(static_cast<size_t>(c) * n + y) * n + x] = in[(static_cast<size_t>(c) * n + sy) * n + sx];
      }
}

// The inverse of dihedral_apply: in(src(y, x)) = out(y, x).
void dihedral_invert(const float* out, float* in, int planes, int n, Dihedral d) {
  for (int c = 0; c < planes; ++c)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        int sy = d.transpose ? x : y, sx = d.transpose ? y : x;
        if (d.flip_y) sy = n - 1 - sy;
        if (d.flip_x) sx = n - 1 - sx;
        in[(static_cast<size_t>(c) * n + sy) * n + sx] = out[(static_cast<size_t>(c) * n + y) * n + x];
      }
}

}  // namespace

int choose_tile(const PredictOptions& opt, int h, int w, int depth) {
  if (opt.tile > 0) {
    TileSizes::check_input(opt.tile, depth, "tile size (--tile)");
    return opt.tile;
  }
  // Large enough for the whole image when it is small, and for at least one pooling lattice step.
  int need = TileSizes::input_for_output(std::max({h, w, 1 << depth}), depth);
  int cap = 572;
  while (TileSizes::output_for_input(cap, depth) <= 0) --cap;
  return std::min(need, cap);
}

Image predict_probabilities(const UNet& net, const Image& img, const PredictOptions& opt) {
  const UNetConfig& cfg = net.config();
  UNET_CHECK(img.channels == cfg.in_channels, "predict: the image has ", img.channels, " channel(s), the model takes ",
             cfg.in_channels);
  UNET_CHECK(img.height > 0 && img.width > 0, "predict: empty image");
  UNET_CHECK(opt.batch >= 1, "predict: batch must be >= 1, got ", opt.batch);
  const int T = choose_tile(opt, img.height, img.width, cfg.depth);
  const int O = TileSizes::output_for_input(T, cfg.depth), B = (T - O) / 2, K = cfg.classes, C = cfg.in_channels;
  // Output tile origins: a regular grid whose step is a multiple of 2^depth, so every tile sees
  // its input on the same 2x2-pooling lattice (a shift by any other amount changes which pixels
  // each max-pool groups, and with it the result). The last tile may reach past the image: its
  // input there is mirrored like any other context and its extra output is dropped.
  const int lattice = 1 << cfg.depth, step = O - O % lattice;
  UNET_CHECK(step > 0, "tile ", T, " gives an output of ", O, " px, less than the ", lattice,
             " px pooling lattice of a depth-", cfg.depth, " U-Net: choose a larger tile");
  auto origins = [step](int n) {
    std::vector<int> v;
    for (int o = 0; o < n; o += step) v.push_back(o);
    return v;
  };
  std::vector<std::pair<int, int>> tiles;
  for (int oy : origins(img.height))
    for (int ox : origins(img.width)) tiles.emplace_back(oy, ox);

  const std::vector<Dihedral> views = opt.tta ? std::vector<Dihedral>(kAll, kAll + 8) : std::vector<Dihedral>{kIdentity};
  Image probs(K, img.height, img.width, 0.0f);
  NoGrad no_grad;
  const size_t in_tile = static_cast<size_t>(C) * T * T, out_tile = static_cast<size_t>(K) * O * O;
  std::vector<float> batch_in, batch_out, tmp(std::max(in_tile, out_tile)), acc;
  for (size_t t0 = 0; t0 < tiles.size(); t0 += opt.batch) {
    const size_t nb = std::min<size_t>(opt.batch, tiles.size() - t0);
    std::vector<float> sum(nb * out_tile, 0.0f);
    for (const Dihedral& d : views) {
      batch_in.resize(nb * in_tile);
      for (size_t i = 0; i < nb; ++i) {
        Image tile = extract_tile_mirrored(img, tiles[t0 + i].first - B, tiles[t0 + i].second - B, T, T);
        dihedral_apply(tile.data.data(), batch_in.data() + i * in_tile, C, T, d);
      }
      Tensor x = Tensor::from_vector({static_cast<int64_t>(nb), C, T, T}, batch_in).to(net.device());
      Tensor p = ops::softmax(net.forward(Var(x), false).value());
      batch_out = p.to_vector();
      for (size_t i = 0; i < nb; ++i) {
        dihedral_invert(batch_out.data() + i * out_tile, tmp.data(), K, O, d);
        for (size_t j = 0; j < out_tile; ++j) sum[i * out_tile + j] += tmp[j];
      }
    }
    const float inv = 1.0f / static_cast<float>(views.size());
    for (size_t i = 0; i < nb; ++i) {
      auto [oy, ox] = tiles[t0 + i];
      for (int k = 0; k < K; ++k)
        for (int y = 0; y < O && oy + y < img.height; ++y)
          for (int x = 0; x < O && ox + x < img.width; ++x)
            probs.at(k, oy + y, ox + x) = sum[i * out_tile + (static_cast<size_t>(k) * O + y) * O + x] * inv;
    }
    if (opt.progress) opt.progress(static_cast<int>(t0 + nb), static_cast<int>(tiles.size()));
  }
  return probs;
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
