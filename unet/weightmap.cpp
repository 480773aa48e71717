#include "unet/weightmap.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace unet {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Scratch for the 1-D passes, sized for the longer side.
struct EdtScratch {
  std::vector<float> f, d;
  std::vector<int> v;
  std::vector<double> z;
  void reserve(int n) {
    if (static_cast<int>(f.size()) < n) {
      f.resize(n);
      d.resize(n);
      v.resize(n);
      z.resize(n + 1);
    }
  }
};

// In place: grid holds 0 at feature pixels and +inf elsewhere; on return the squared distances.
// Columns first, then rows.
void edt_squared_inplace(float* grid, int h, int w, EdtScratch& s) {
  s.reserve(std::max(h, w));
  for (int x = 0; x < w; ++x) {
    for (int y = 0; y < h; ++y) s.f[y] = grid[static_cast<size_t>(y) * w + x];
    edt_1d(s.f.data(), h, s.d.data(), s.v.data(), s.z.data());
    for (int y = 0; y < h; ++y) grid[static_cast<size_t>(y) * w + x] = s.d[y];
  }
  for (int y = 0; y < h; ++y) {
    float* row = grid + static_cast<size_t>(y) * w;
    std::copy(row, row + w, s.f.begin());
    edt_1d(s.f.data(), w, row, s.v.data(), s.z.data());
  }
}

bool is_class_id(float v, int num_classes) {
  return v >= 0.0f && v < static_cast<float>(num_classes) && v == std::floor(v);
}

}  // namespace

void edt_1d(const float* f, int n, float* d, int* v, double* z) {
  int k = -1;  // index of the rightmost parabola of the lower envelope
  for (int q = 0; q < n; ++q) {
    if (!(f[q] < kInf)) continue;  // +inf never belongs to the envelope
    const double fq = static_cast<double>(f[q]) + static_cast<double>(q) * q;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -std::numeric_limits<double>::infinity();
      z[1] = std::numeric_limits<double>::infinity();
      continue;
    }
    double s;
    for (;;) {
      const int p = v[k];
      const double fp = static_cast<double>(f[p]) + static_cast<double>(p) * p;
      s = (fq - fp) / (2.0 * (q - p));
      if (s > z[k]) break;
      --k;  // z[0] = -inf, so k never drops below 0 here
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = std::numeric_limits<double>::infinity();
  }
  if (k < 0) {
    std::fill(d, d + n, kInf);
    return;
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[k + 1] < q) ++k;
    const double dq = static_cast<double>(q - v[k]);
    d[q] = static_cast<float>(dq * dq + static_cast<double>(f[v[k]]));
  }
}

std::vector<float> edt_squared(const std::vector<uint8_t>& feature_mask, int h, int w) {
  UNET_CHECK(h >= 0 && w >= 0, "edt: bad size ", h, "x", w);
  UNET_CHECK(feature_mask.size() == static_cast<size_t>(h) * w, "edt: mask has ", feature_mask.size(),
             " pixels, expected ", static_cast<size_t>(h) * w);
  std::vector<float> g(feature_mask.size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = feature_mask[i] ? 0.0f : kInf;
  const bool par = static_cast<int64_t>(h) * w >= 65536;
#pragma omp parallel if (par)
  {
    EdtScratch s;
    s.reserve(std::max(h, w));
#pragma omp for schedule(static)
    for (int x = 0; x < w; ++x) {
      for (int y = 0; y < h; ++y) s.f[y] = g[static_cast<size_t>(y) * w + x];
      edt_1d(s.f.data(), h, s.d.data(), s.v.data(), s.z.data());
      for (int y = 0; y < h; ++y) g[static_cast<size_t>(y) * w + x] = s.d[y];
    }
#pragma omp for schedule(static)
    for (int y = 0; y < h; ++y) {
      float* row = g.data() + static_cast<size_t>(y) * w;
      std::copy(row, row + w, s.f.begin());
      edt_1d(s.f.data(), w, row, s.v.data(), s.z.data());
    }
  }
  return g;
}

std::vector<float> edt(const std::vector<uint8_t>& feature_mask, int h, int w) {
  std::vector<float> g = edt_squared(feature_mask, h, w);
  for (float& v : g) v = std::sqrt(v);
  return g;
}

std::vector<int32_t> connected_components(const std::vector<uint8_t>& mask, int h, int w, int connectivity,
                                          int* count) {
  UNET_CHECK(connectivity == 4 || connectivity == 8, "connected_components: connectivity must be 4 or 8, got ",
             connectivity);
  UNET_CHECK(mask.size() == static_cast<size_t>(h) * w, "connected_components: mask has ", mask.size(),
             " pixels, expected ", static_cast<size_t>(h) * w);
  std::vector<int32_t> lab(mask.size(), 0);
  std::vector<int32_t> stack;
  static const int kDy[8] = {-1, 1, 0, 0, -1, -1, 1, 1};
  static const int kDx[8] = {0, 0, -1, 1, -1, 1, -1, 1};
  int32_t n = 0;
  for (int y0 = 0; y0 < h; ++y0) {
    for (int x0 = 0; x0 < w; ++x0) {
      const size_t i0 = static_cast<size_t>(y0) * w + x0;
      if (!mask[i0] || lab[i0]) continue;
      lab[i0] = ++n;
      stack.assign(1, static_cast<int32_t>(i0));
      while (!stack.empty()) {
        const int32_t i = stack.back();
        stack.pop_back();
        const int y = i / w, x = i % w;
        for (int k = 0; k < connectivity; ++k) {
          const int yy = y + kDy[k], xx = x + kDx[k];
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const size_t j = static_cast<size_t>(yy) * w + xx;
          if (mask[j] && !lab[j]) {
            lab[j] = n;
            stack.push_back(static_cast<int32_t>(j));
          }
        }
      }
    }
  }
  if (count) *count = n;
  return lab;
}

std::vector<int32_t> compact_instances(const Image& instances, int* count) {
  UNET_CHECK(instances.channels == 1, "instance mask must have 1 channel, has ", instances.channels);
  std::unordered_map<float, int32_t> ids;
  std::vector<int32_t> out(instances.data.size(), 0);
  for (size_t i = 0; i < out.size(); ++i) {
    const float v = instances.data[i];
    UNET_CHECK(v >= 0.0f && v == std::floor(v) && v < 16777216.0f, "instance mask: value ", v,
               " is not a non-negative integer");
    if (v == 0.0f) continue;
    auto it = ids.find(v);
    if (it == ids.end()) it = ids.emplace(v, static_cast<int32_t>(ids.size() + 1)).first;
    out[i] = it->second;
  }
  if (count) *count = static_cast<int>(ids.size());
  return out;
}

SeparatedInstances make_separation_borders(const Image& instances, int foreground_class) {
  int n = 0;
  const std::vector<int32_t> id = compact_instances(instances, &n);
  const int h = instances.height, w = instances.width;
  SeparatedInstances out;
  out.labels = Image(1, h, w, 0.0f);
  out.instances = Image(1, h, w, 0.0f);
#pragma omp parallel for schedule(static) if (static_cast <int64_t>(h) * w >= 65536)
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      const int32_t a = id[i];
      if (a == 0) continue;
      bool contact = false;
      for (int dy = -1; dy <= 1 && !contact; ++dy) {
        const int yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const int32_t b = id[static_cast<size_t>(yy) * w + xx];
          if (b != 0 && b != a) {
            contact = true;
            break;
          }
        }
      }
      if (!contact) {
        out.labels.data[i] = static_cast<float>(foreground_class);
        out.instances.data[i] = instances.data[i];
      }
    }
  }
  return out;
}

std::vector<float> class_weights_from_counts(const std::vector<int64_t>& counts, ClassBalance balance) {
  const int k = static_cast<int>(counts.size());
  std::vector<float> wts(k, 0.0f);
  int64_t total = 0, most = 0;
  for (int64_t c : counts) {
    UNET_CHECK(c >= 0, "class_weights_from_counts: negative count ", c);
    total += c;
    most = std::max(most, c);
  }
  for (int l = 0; l < k; ++l) {
    if (counts[l] == 0) continue;  // absent class: weight 0, never divided by
    switch (balance) {
      case ClassBalance::kNone:
        wts[l] = 1.0f;
        break;
      case ClassBalance::kMaxOne:
        wts[l] = static_cast<float>(static_cast<double>(most) / static_cast<double>(counts[l]));
        break;
      case ClassBalance::kInverseFrequency:
        wts[l] = static_cast<float>(static_cast<double>(total) / (static_cast<double>(k) * counts[l]));
        break;
    }
  }
  return wts;
}

std::vector<int64_t> class_counts(const Image& labels, int num_classes) {
  UNET_CHECK(labels.channels == 1, "labels must have 1 channel, have ", labels.channels);
  UNET_CHECK(num_classes >= 1, "num_classes must be >= 1, is ", num_classes);
  std::vector<int64_t> counts(num_classes, 0);
  for (float v : labels.data) {
    UNET_CHECK(is_class_id(v, num_classes), "label value ", v, " is not a class id in [0, ", num_classes, ")");
    ++counts[static_cast<int>(v)];
  }
  return counts;
}

BorderDistances border_distances(const std::vector<int32_t>& instances, int h, int w, float max_distance) {
  UNET_CHECK(instances.size() == static_cast<size_t>(h) * w, "border_distances: mask has ", instances.size(),
             " pixels, expected ", static_cast<size_t>(h) * w);
  UNET_CHECK(max_distance >= 0.0f, "border_distances: max_distance must be >= 0");
  // Bounding box of every id.
  struct Box {
    int32_t id;
    int y0, x0, y1, x1;
  };  // inclusive
  std::vector<Box> boxes;
  std::unordered_map<int32_t, int> index;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int32_t a = instances[static_cast<size_t>(y) * w + x];
      if (a <= 0) continue;
      auto it = index.find(a);
      if (it == index.end()) {
        index.emplace(a, static_cast<int>(boxes.size()));
        boxes.push_back({a, y, x, y, x});
      } else {
        Box& b = boxes[it->second];
        b.y0 = std::min(b.y0, y);
        b.y1 = std::max(b.y1, y);
        b.x0 = std::min(b.x0, x);
        b.x1 = std::max(b.x1, x);
      }
    }
  }
  // Reach of a cell around its bounding box; capped by the image, so an infinite max_distance means
  // the whole image.
  const int reach = max_distance >= static_cast<float>(h + w) ? h + w : static_cast<int>(std::ceil(max_distance));
  const float max_sq = max_distance >= static_cast<float>(h + w) ? kInf : max_distance * max_distance;

  BorderDistances out;
  const size_t npix = static_cast<size_t>(h) * w;
  out.d1.assign(npix, kInf);
  out.d2.assign(npix, kInf);
  const int nbox = static_cast<int>(boxes.size());
  const int nthreads = nbox >= 8 ? omp_get_max_threads() : 1;

#pragma omp parallel num_threads(nthreads)
  {
    // Thread 0 writes into the output directly; the others into their own maps, merged at the end.
    const bool own = omp_get_thread_num() != 0;
    std::vector<float> l1, l2;
    if (own) {
      l1.assign(npix, kInf);
      l2.assign(npix, kInf);
    }
    float* d1 = own ? l1.data() : out.d1.data();
    float* d2 = own ? l2.data() : out.d2.data();
    std::vector<float> grid;
    EdtScratch s;
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < nbox; ++b) {
      const Box& bx = boxes[b];
      const int y0 = std::max(0, bx.y0 - reach), y1 = std::min(h - 1, bx.y1 + reach);
      const int x0 = std::max(0, bx.x0 - reach), x1 = std::min(w - 1, bx.x1 + reach);
      const int bh = y1 - y0 + 1, bw = x1 - x0 + 1;
      grid.resize(static_cast<size_t>(bh) * bw);
      for (int y = 0; y < bh; ++y)
        for (int x = 0; x < bw; ++x)
          grid[static_cast<size_t>(y) * bw + x] =
              instances[static_cast<size_t>(y + y0) * w + (x + x0)] == bx.id ? 0.0f : kInf;
      edt_squared_inplace(grid.data(), bh, bw, s);
      for (int y = 0; y < bh; ++y) {
        for (int x = 0; x < bw; ++x) {
          const float sq = grid[static_cast<size_t>(y) * bw + x];
          if (!(sq <= max_sq)) continue;
          const float d = std::sqrt(sq);
          const size_t i = static_cast<size_t>(y + y0) * w + (x + x0);
          if (d < d1[i]) {
            d2[i] = d1[i];
            d1[i] = d;
          } else if (d < d2[i]) {
            d2[i] = d;
          }
        }
      }
    }
    if (own) {
#pragma omp critical(unet_border_distances_merge)
      for (size_t i = 0; i < npix; ++i) {
        // Two smallest of {a1 <= a2} U {b1 <= b2}: order-independent, so the result is deterministic.
        const float a1 = out.d1[i], a2 = out.d2[i], b1 = l1[i], b2 = l2[i];
        if (a1 <= b1) {
          out.d2[i] = std::min(a2, b1);
        } else {
          out.d1[i] = b1;
          out.d2[i] = std::min(a1, b2);
        }
      }
    }
  }
  return out;
}

Image weight_map(const Image& labels, const Image& instances, const WeightMapParams& p) {
  UNET_CHECK(labels.channels == 1 && instances.channels == 1, "weight_map: labels and instances must have 1 channel");
  UNET_CHECK(labels.height == instances.height && labels.width == instances.width, "weight_map: labels are ",
             labels.height, "x", labels.width, " but instances are ", instances.height, "x", instances.width);
  UNET_CHECK(p.sigma > 0.0f, "weight_map: sigma must be positive, is ", p.sigma);
  UNET_CHECK(p.w0 >= 0.0f, "weight_map: w0 must be non-negative, is ", p.w0);
  const int h = labels.height, w = labels.width;
  const std::vector<int64_t> counts = class_counts(labels, p.num_classes);
  std::vector<float> wc = p.class_weights;
  if (wc.empty()) {
    wc = class_weights_from_counts(counts, p.balance);
  } else {
    UNET_CHECK(static_cast<int>(wc.size()) == p.num_classes, "weight_map: ", wc.size(), " class weights given for ",
               p.num_classes, " classes");
  }
  Image out(1, h, w);
  for (size_t i = 0; i < out.data.size(); ++i) out.data[i] = wc[static_cast<int>(labels.data[i])];

  if (p.w0 <= 0.0f || (p.cutoff > 0.0f && p.w0 <= p.cutoff)) return out;  // the term never exceeds cutoff
  const float reach = p.cutoff > 0.0f ? p.sigma * std::sqrt(2.0f * std::log(p.w0 / p.cutoff)) : kInf;
  const std::vector<int32_t> ids = compact_instances(instances);
  const BorderDistances bd = border_distances(ids, h, w, reach);
  const float inv2s2 = 1.0f / (2.0f * p.sigma * p.sigma);
  for (size_t i = 0; i < out.data.size(); ++i) {
    if (!p.border_term_on_cells && ids[i] != 0) continue;
    if (!(bd.d2[i] < kInf)) continue;  // fewer than two cells within reach: term < cutoff
    const float s = bd.d1[i] + bd.d2[i];
    out.data[i] += p.w0 * std::exp(-s * s * inv2s2);
  }
  return out;
}

Image weight_map(const Image& labels, const WeightMapParams& p) {
  UNET_CHECK(labels.channels == 1, "weight_map: labels must have 1 channel, have ", labels.channels);
  const int h = labels.height, w = labels.width;
  std::vector<uint8_t> fg(labels.data.size());
  for (size_t i = 0; i < fg.size(); ++i) fg[i] = labels.data[i] == static_cast<float>(p.foreground_class);
  const std::vector<int32_t> cc = connected_components(fg, h, w, p.connectivity);
  Image inst(1, h, w);
  for (size_t i = 0; i < cc.size(); ++i) inst.data[i] = static_cast<float>(cc[i]);
  return weight_map(labels, inst, p);
}

Image weight_map_from_instances(const Image& instances, const WeightMapParams& p) {
  UNET_CHECK(instances.channels == 1, "weight_map: instances must have 1 channel, have ", instances.channels);
  UNET_CHECK(p.foreground_class >= 0 && p.foreground_class < p.num_classes, "weight_map: foreground_class ",
             p.foreground_class, " outside [0, ", p.num_classes, ")");
  Image labels(1, instances.height, instances.width);
  for (size_t i = 0; i < labels.data.size(); ++i)
    labels.data[i] = instances.data[i] > 0.0f ? static_cast<float>(p.foreground_class) : 0.0f;
  return weight_map(labels, instances, p);
}

}  // namespace unet
