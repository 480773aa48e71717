#include "unet/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/philox.h"
#include "unet/mirror.h"

namespace unet {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Keys' cubic convolution kernel with a = -0.5 (= Catmull-Rom), weights of the four taps at
// offsets -1, 0, 1, 2 from floor(t) for the fraction f = t - floor(t). f == 0 gives (0, 1, 0, 0)
// exactly, so sampling at integer points reproduces the input.
inline void cubic_weights(float f, float wt[4]) {
  auto near = [](float x) { return (1.5f * x - 2.5f) * x * x + 1.0f; };           // |x| <= 1
  auto far = [](float x) { return ((-0.5f * x + 2.5f) * x - 4.0f) * x + 2.0f; };  // 1 < |x| < 2
  wt[0] = far(1.0f + f);
  wt[1] = near(f);
  wt[2] = near(1.0f - f);
  wt[3] = far(2.0f - f);
}

// Integer part of a sample coordinate, kept finite for absurd inputs (mirroring is periodic anyway).
inline float tame(float s) { return std::min(std::max(s, -1.0e7f), 1.0e7f); }

void check_sample(const Sample& s) {
  UNET_CHECK(!s.image.empty(), "augment: the sample has no image");
  auto same = [&](const Image& m, const char* what) {
    if (m.empty()) return;
    UNET_CHECK(m.channels == 1, "augment: ", what, " must have 1 channel, has ", m.channels);
    UNET_CHECK(m.height == s.image.height && m.width == s.image.width, "augment: ", what, " are ", m.height, "x",
               m.width, " but the image is ", s.image.height, "x", s.image.width);
  };
  same(s.labels, "labels");
  same(s.weights, "weights");
}

void apply_gray(Image& img, const AugmentDraw& d, const AugmentParams& p) {
  const float lo = p.value_lo, hi = p.value_hi, range = hi - lo;
  const size_t plane = static_cast<size_t>(img.height) * img.width;
  for (int c = 0; c < img.channels; ++c) {
    float* x = img.plane(c);
    if (d.gamma != 1.0f) {
      UNET_CHECK(range > 0.0f, "augment: value_hi must exceed value_lo for the gamma variation");
      for (size_t i = 0; i < plane; ++i) {
        const float t = std::min(std::max((x[i] - lo) / range, 0.0f), 1.0f);
        x[i] = lo + range * std::pow(t, d.gamma);
      }
    }
    if (d.contrast != 1.0f || d.brightness != 0.0f) {
      double sum = 0.0;
      for (size_t i = 0; i < plane; ++i) sum += x[i];
      const float m = plane ? static_cast<float>(sum / static_cast<double>(plane)) : 0.0f;
      const float add = (1.0f - d.contrast) * m + d.brightness * range;
      for (size_t i = 0; i < plane; ++i) x[i] = d.contrast * x[i] + add;
    }
    if (p.noise_sigma > 0.0f) {
      UNET_CHECK(img.channels <= 4, "augment: the noise supports up to 4 channels, the image has ", img.channels);
      const float s = p.noise_sigma * range;
      const uint64_t base = d.noise_offset + 2 * static_cast<uint64_t>(c) * plane;
      for (size_t i = 0; i < plane; ++i) {
        const float u1 = philox::uniform(d.noise_seed, base, 2 * i);
        const float u2 = philox::uniform(d.noise_seed, base, 2 * i + 1);
        x[i] += s * std::sqrt(-2.0f * std::log(1.0f - u1)) * std::cos(6.283185307179586f * u2);
      }
    }
  }
}

}  // namespace

int mirror_index(int i, int n) {
  UNET_CHECK(n >= 1, "mirror_index: empty range (n = ", n, ")");
  return mirror(i, n);
}

Image extract_tile_mirrored(const Image& img, int y0, int x0, int h, int w) {
  UNET_CHECK(!img.empty(), "extract_tile_mirrored: empty image");
  UNET_CHECK(h >= 0 && w >= 0, "extract_tile_mirrored: bad tile size ", h, "x", w);
  Image out(img.channels, h, w);
  std::vector<int> xs(w);
  for (int x = 0; x < w; ++x) xs[x] = mirror_index(x0 + x, img.width);
  for (int c = 0; c < img.channels; ++c) {
    for (int y = 0; y < h; ++y) {
      const float* src = img.plane(c) + static_cast<size_t>(mirror_index(y0 + y, img.height)) * img.width;
      float* dst = &out.at(c, y, 0);
      for (int x = 0; x < w; ++x) dst[x] = src[xs[x]];
    }
  }
  return out;
}

AugmentDraw draw_augmentation(Rng& rng, const AugmentParams& p, int src_h, int src_w, int out_h, int out_w) {
  UNET_CHECK(src_h >= 1 && src_w >= 1, "augment: empty source image");
  UNET_CHECK(out_h >= 1 && out_w >= 1, "augment: bad tile size ", out_h, "x", out_w);
  UNET_CHECK(p.elastic_grid >= 1, "augment: elastic_grid must be >= 1, is ", p.elastic_grid);
  UNET_CHECK(p.elastic_sigma >= 0.0f, "augment: elastic_sigma must be >= 0");
  UNET_CHECK(p.min_scale > 0.0f && p.max_scale >= p.min_scale, "augment: bad scale range [", p.min_scale, ", ",
             p.max_scale, "]");
  UNET_CHECK(p.max_gamma >= 1.0f, "augment: max_gamma must be >= 1, is ", p.max_gamma);
  AugmentDraw d;
  d.out_h = out_h;
  d.out_w = out_w;
  // Shift: the tile's top-left corner, so that with identity geometry tile pixel (y, x) reads source
  // pixel (oy + y, ox + x) exactly; its centre pixel (out / 2) lands on the drawn source pixel.
  const int py = static_cast<int>(rng.below(static_cast<uint32_t>(src_h)));
  const int px = static_cast<int>(rng.below(static_cast<uint32_t>(src_w)));
  const int oy = p.random_position ? py - out_h / 2 : (src_h - out_h) / 2;
  const int ox = p.random_position ? px - out_w / 2 : (src_w - out_w) / 2;
  d.center_y = oy + 0.5 * (out_h - 1);
  d.center_x = ox + 0.5 * (out_w - 1);
  const float ua = rng.uniform();
  d.angle = static_cast<double>(p.max_rotation_deg) * (2.0 * ua - 1.0) * kPi / 180.0;
  const float us = rng.uniform();
  const double lmin = std::log(static_cast<double>(p.min_scale)), lmax = std::log(static_cast<double>(p.max_scale));
  d.scale = p.min_scale == p.max_scale ? static_cast<double>(p.min_scale) : std::exp(lmin + (lmax - lmin) * us);
  const float fy = rng.uniform(), fx = rng.uniform();
  d.flip_y = p.flip_y && fy < 0.5f;
  d.flip_x = p.flip_x && fx < 0.5f;
  d.grid = p.elastic_grid;
  const int ng = p.elastic_grid * p.elastic_grid;
  d.disp_y.resize(ng);
  d.disp_x.resize(ng);
  for (int i = 0; i < ng; ++i) {
    d.disp_y[i] = p.elastic_sigma * rng.normal();
    d.disp_x[i] = p.elastic_sigma * rng.normal();
  }
  const float ug = rng.uniform(), uc = rng.uniform(), ub = rng.uniform();
  d.gamma = p.max_gamma == 1.0f ? 1.0f : std::exp(std::log(p.max_gamma) * (2.0f * ug - 1.0f));
  d.contrast = p.max_contrast == 0.0f ? 1.0f : 1.0f + p.max_contrast * (2.0f * uc - 1.0f);
  d.brightness = p.max_brightness == 0.0f ? 0.0f : p.max_brightness * (2.0f * ub - 1.0f);
  // A block for the per-pixel noise (two words a value, up to 4 channels), reserved even when unused.
  d.noise_seed = rng.seed();
  d.noise_offset = rng.take(2ull * 4ull * static_cast<uint64_t>(out_h) * out_w);
  return d;
}

void sampling_map(const AugmentDraw& d, std::vector<float>& src_y, std::vector<float>& src_x) {
  const int h = d.out_h, w = d.out_w, g = d.grid;
  UNET_CHECK(h >= 1 && w >= 1, "sampling_map: bad tile size");
  UNET_CHECK(g >= 1 && d.disp_y.size() == static_cast<size_t>(g) * g && d.disp_x.size() == d.disp_y.size(),
             "sampling_map: bad control grid");
  // Separable Catmull-Rom interpolation of the control grid: taps and weights per row and column.
  struct Taps {
    int k[4];
    float wt[4];
  };
  auto taps_for = [g](int n) {
    std::vector<Taps> t(n);
    for (int i = 0; i < n; ++i) {
      const double pos = n > 1 ? static_cast<double>(i) * (g - 1) / (n - 1) : 0.0;
      int k = static_cast<int>(std::floor(pos));
      k = std::min(k, g - 1);
      cubic_weights(static_cast<float>(pos - k), t[i].wt);
      for (int j = 0; j < 4; ++j) t[i].k[j] = std::min(std::max(k - 1 + j, 0), g - 1);  // clamped grid
    }
    return t;
  };
  const std::vector<Taps> ty = taps_for(h), tx = taps_for(w);
  // Interpolate along x first: qy/qx[r * w + x] for grid row r.
  std::vector<float> qy(static_cast<size_t>(g) * w), qx(static_cast<size_t>(g) * w);
  for (int r = 0; r < g; ++r) {
    for (int x = 0; x < w; ++x) {
      float sy = 0.0f, sx = 0.0f;
      for (int j = 0; j < 4; ++j) {
        sy += tx[x].wt[j] * d.disp_y[r * g + tx[x].k[j]];
        sx += tx[x].wt[j] * d.disp_x[r * g + tx[x].k[j]];
      }
      qy[static_cast<size_t>(r) * w + x] = sy;
      qx[static_cast<size_t>(r) * w + x] = sx;
    }
  }
  const double ca = std::cos(d.angle) * d.scale, sa = std::sin(d.angle) * d.scale;
  const double cy = 0.5 * (h - 1), cx = 0.5 * (w - 1);
  src_y.resize(static_cast<size_t>(h) * w);
  src_x.resize(static_cast<size_t>(h) * w);
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(h) * w >= 65536)
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      float ey = 0.0f, ex = 0.0f;
      for (int j = 0; j < 4; ++j) {
        ey += ty[y].wt[j] * qy[static_cast<size_t>(ty[y].k[j]) * w + x];
        ex += ty[y].wt[j] * qx[static_cast<size_t>(ty[y].k[j]) * w + x];
      }
      double uy = (y - cy) + ey, ux = (x - cx) + ex;
      if (d.flip_y) uy = -uy;
      if (d.flip_x) ux = -ux;
      const size_t i = static_cast<size_t>(y) * w + x;
      src_y[i] = static_cast<float>(d.center_y + ca * uy + sa * ux);
      src_x[i] = static_cast<float>(d.center_x - sa * uy + ca * ux);
    }
  }
}

Image resample(const Image& img, const std::vector<float>& src_y, const std::vector<float>& src_x, int map_w, int y0,
               int x0, int h, int w, Interp interp) {
  UNET_CHECK(!img.empty(), "resample: empty image");
  UNET_CHECK(src_y.size() == src_x.size() && map_w >= 1 && src_y.size() % map_w == 0, "resample: bad map");
  const int map_h = static_cast<int>(src_y.size() / map_w);
  UNET_CHECK(y0 >= 0 && x0 >= 0 && h >= 0 && w >= 0 && y0 + h <= map_h && x0 + w <= map_w, "resample: window ", h, "x",
             w, " at (", y0, ", ", x0, ") outside the ", map_h, "x", map_w, " map");
  const int H = img.height, W = img.width, C = img.channels;
  Image out(C, h, w);
  std::vector<float> vmin(C, 0.0f), vmax(C, 0.0f);
  if (interp == Interp::kBicubic) {
    for (int c = 0; c < C; ++c) {
      const auto mm = std::minmax_element(img.plane(c), img.plane(c) + static_cast<size_t>(H) * W);
      vmin[c] = *mm.first;
      vmax[c] = *mm.second;
    }
  }
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(h) * w >= 16384)
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const size_t mi = static_cast<size_t>(y + y0) * map_w + (x + x0);
      const float sy = tame(src_y[mi]), sx = tame(src_x[mi]);
      if (interp == Interp::kNearest) {
        const int iy = mirror(static_cast<int>(std::floor(sy + 0.5f)), H);
        const int ix = mirror(static_cast<int>(std::floor(sx + 0.5f)), W);
        for (int c = 0; c < C; ++c) out.at(c, y, x) = img.at(c, iy, ix);
      } else if (interp == Interp::kBilinear) {
        const float fy = std::floor(sy), fx = std::floor(sx);
        const float ty = sy - fy, tx = sx - fx;
        const int iy = static_cast<int>(fy), ix = static_cast<int>(fx);
        const int y_0 = mirror(iy, H), y_1 = mirror(iy + 1, H);
        const int x_0 = mirror(ix, W), x_1 = mirror(ix + 1, W);
        for (int c = 0; c < C; ++c) {
          const float a = img.at(c, y_0, x_0) * (1.0f - tx) + img.at(c, y_0, x_1) * tx;
          const float b = img.at(c, y_1, x_0) * (1.0f - tx) + img.at(c, y_1, x_1) * tx;
          out.at(c, y, x) = a * (1.0f - ty) + b * ty;
        }
      } else {
        const float fy = std::floor(sy), fx = std::floor(sx);
        float wy[4], wx[4];
        cubic_weights(sy - fy, wy);
        cubic_weights(sx - fx, wx);
        const int iy = static_cast<int>(fy), ix = static_cast<int>(fx);
        int ry[4], rx[4];
        for (int j = 0; j < 4; ++j) {
          ry[j] = mirror(iy - 1 + j, H);
          rx[j] = mirror(ix - 1 + j, W);
        }
        for (int c = 0; c < C; ++c) {
          const float* pl = img.plane(c);
          float acc = 0.0f;
          for (int a = 0; a < 4; ++a) {
            const float* row = pl + static_cast<size_t>(ry[a]) * W;
            acc += wy[a] * (wx[0] * row[rx[0]] + wx[1] * row[rx[1]] + wx[2] * row[rx[2]] + wx[3] * row[rx[3]]);
          }
          out.at(c, y, x) = std::min(std::max(acc, vmin[c]), vmax[c]);
        }
      }
    }
  }
  return out;
}

Sample apply_augmentation(const Sample& src, const AugmentDraw& d, int label_h, int label_w, const AugmentParams& p) {
  check_sample(src);
  UNET_CHECK(label_h >= 0 && label_w >= 0 && label_h <= d.out_h && label_w <= d.out_w, "augment: label tile ", label_h,
             "x", label_w, " larger than the input tile ", d.out_h, "x", d.out_w);
  std::vector<float> sy, sx;
  sampling_map(d, sy, sx);
  Sample out;
  out.image = resample(src.image, sy, sx, d.out_w, 0, 0, d.out_h, d.out_w, p.image_interp);
  apply_gray(out.image, d, p);
  const int ly = (d.out_h - label_h) / 2, lx = (d.out_w - label_w) / 2;
  if (!src.labels.empty())
    out.labels = resample(src.labels, sy, sx, d.out_w, ly, lx, label_h, label_w, Interp::kNearest);
  if (!src.weights.empty())
    out.weights = resample(src.weights, sy, sx, d.out_w, ly, lx, label_h, label_w, Interp::kNearest);
  return out;
}

Sample augment_tile(const Sample& src, int in_h, int in_w, int label_h, int label_w, Rng& rng, const AugmentParams& p) {
  check_sample(src);
  const AugmentDraw d = draw_augmentation(rng, p, src.image.height, src.image.width, in_h, in_w);
  return apply_augmentation(src, d, label_h, label_w, p);
}

Sample deform(const Sample& src, Rng& rng, const AugmentParams& p) {
  check_sample(src);
  AugmentParams q = p;
  q.random_position = false;
  const int h = src.image.height, w = src.image.width;
  return augment_tile(src, h, w, h, w, rng, q);
}

void write_augmented_samples(const Sample& src, int n, int tile_h, int tile_w, Rng& rng, const AugmentParams& p,
                             const ImageSink& sink) {
  UNET_CHECK(static_cast<bool>(sink), "write_augmented_samples: no sink");
  for (int i = 0; i < n; ++i) {
    const Sample s =
        tile_h > 0 && tile_w > 0 ? augment_tile(src, tile_h, tile_w, tile_h, tile_w, rng, p) : deform(src, rng, p);
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "sample_%03d", i);
    const std::string base(prefix);
    const float lo = p.value_lo, range = p.value_hi > p.value_lo ? p.value_hi - p.value_lo : 1.0f;
    Image img = s.image;
    for (float& v : img.data) v = 255.0f * std::min(std::max((v - lo) / range, 0.0f), 1.0f);
    sink(base + "_image", img);
    if (!s.labels.empty()) {
      Image lab = s.labels;
      const float top = std::max(1.0f, *std::max_element(lab.data.begin(), lab.data.end()));
      for (float& v : lab.data) v *= 255.0f / top;
      sink(base + "_labels", lab);
    }
    if (!s.weights.empty()) {
      Image wts = s.weights;
      const float top = *std::max_element(wts.data.begin(), wts.data.end());
      if (top > 0.0f)
        for (float& v : wts.data) v *= 255.0f / top;
      sink(base + "_weights", wts);
    }
    // Overlay: the image (first channel, or RGB when it has 3) with the label boundaries in red.
    const int h = img.height, w = img.width;
    Image ov(3, h, w);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) ov.at(c, y, x) = img.at(img.channels == 3 ? c : 0, y, x);
    if (!s.labels.empty() && s.labels.height == h && s.labels.width == w) {
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const float l = s.labels.at(0, y, x);
          const bool edge = (y > 0 && s.labels.at(0, y - 1, x) != l) || (y + 1 < h && s.labels.at(0, y + 1, x) != l) ||
                            (x > 0 && s.labels.at(0, y, x - 1) != l) || (x + 1 < w && s.labels.at(0, y, x + 1) != l);
          if (edge) {
            ov.at(0, y, x) = 255.0f;
            ov.at(1, y, x) = 0.0f;
            ov.at(2, y, x) = 0.0f;
          }
        }
      }
    }
    sink(base + "_overlay", ov);
  }
}

}  // namespace unet
