// ISBI 2012 metrics, IoU and CTC SEG. See unet/metrics.h and docs/metrics.md.
#include "unet/metrics.h"

#include "unet/weightmap.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "engine/check.h"

namespace unet {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The 8 neighbours in circular order NW, N, NE, E, SE, S, SW, W; odd k are the 4-neighbours.
constexpr int kDX[8] = {-1, 0, 1, 1, 1, 0, -1, -1};
constexpr int kDY[8] = {-1, -1, -1, 0, 1, 1, 1, 0};
constexpr int kDX4[4] = {0, 1, 0, -1};
constexpr int kDY4[4] = {-1, 0, 1, 0};

void check_single_channel(const Image& im, const char* what) {
  UNET_CHECK(!im.empty(), what, " is empty");
  UNET_CHECK(im.channels == 1, what, " must have 1 channel, has ", im.channels);
}

void check_same_size(const Image& a, const char* an, const Image& b, const char* bn) {
  check_single_channel(a, an);
  check_single_channel(b, bn);
  UNET_CHECK(a.height == b.height && a.width == b.width, an, " is ", a.height, "x", a.width, " but ", bn, " is ",
             b.height, "x", b.width);
}

void check_same_size(const LabelImage& a, const char* an, const LabelImage& b, const char* bn) {
  UNET_CHECK(a.height == b.height && a.width == b.width, an, " is ", a.height, "x", a.width, " but ", bn, " is ",
             b.height, "x", b.width);
  UNET_CHECK(a.data.size() == static_cast<size_t>(a.pixels()) && b.data.size() == static_cast<size_t>(b.pixels()),
             "label image data does not match its size");
}

std::vector<uint8_t> mask_above(const Image& im, float t) {
  std::vector<uint8_t> m(static_cast<size_t>(im.pixels()));
  const float* p = im.plane(0);
  for (size_t i = 0; i < m.size(); ++i) m[i] = p[i] > t ? 1 : 0;
  return m;
}

std::vector<uint8_t> gt_mask(const Image& gt) { return mask_above(gt, 0.5f); }

// Code of the 8-neighbourhood of (x, y) in mask m (outside the image = 0).
inline uint8_t neighbourhood_code(const std::vector<uint8_t>& m, int h, int w, int x, int y) {
  uint8_t code = 0;
  for (int k = 0; k < 8; ++k) {
    const int nx = x + kDX[k], ny = y + kDY[k];
    if (nx >= 0 && nx < w && ny >= 0 && ny < h && m[static_cast<size_t>(ny) * w + nx])
      code |= static_cast<uint8_t>(1u << k);
  }
  return code;
}

// Number of components among the ring positions selected by `sel` (bit k = position k), with
// 4- or 8-adjacency between positions; with only_touching_4, only components containing a
// 4-neighbour of the centre (odd k) count.
int ring_components(uint8_t sel, int adjacency, bool only_touching_4) {
  int parent[8];
  for (int k = 0; k < 8; ++k) parent[k] = k;
  auto find = [&](int a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  for (int a = 0; a < 8; ++a) {
    if (!(sel >> a & 1)) continue;
    for (int b = a + 1; b < 8; ++b) {
      if (!(sel >> b & 1)) continue;
      const int dx = std::abs(kDX[a] - kDX[b]), dy = std::abs(kDY[a] - kDY[b]);
      const bool adj = adjacency == 4 ? dx + dy == 1 : std::max(dx, dy) == 1;
      if (adj) parent[find(a)] = find(b);
    }
  }
  bool counted[8] = {false, false, false, false, false, false, false, false};
  int n = 0;
  for (int k = 0; k < 8; ++k) {
    if (!(sel >> k & 1)) continue;
    if (only_touching_4 && k % 2 == 0) continue;
    const int r = find(k);
    if (!counted[r]) {
      counted[r] = true;
      ++n;
    }
  }
  return n;
}

// T4 of the foreground and T8 of the background for every neighbourhood code.
struct TopoTable {
  std::array<uint8_t, 256> t4_fg{}, t8_bg{}, simple{};
  TopoTable() {
    for (int c = 0; c < 256; ++c) {
      const uint8_t code = static_cast<uint8_t>(c);
      t4_fg[c] = static_cast<uint8_t>(ring_components(code, 4, true));
      t8_bg[c] = static_cast<uint8_t>(ring_components(static_cast<uint8_t>(~code), 8, false));
      simple[c] = t4_fg[c] == 1 && t8_bg[c] == 1;
    }
  }
};
const TopoTable& topo() {
  static const TopoTable table;
  return table;
}

double safe_div(double a, double b) { return b == 0.0 ? kNaN : a / b; }

}  // namespace

// ---- Label images -----------------------------------------------------------------------------

int32_t LabelImage::max_label() const {
  int32_t m = 0;
  for (int32_t v : data) m = std::max(m, v);
  return m;
}

Image binarize(const Image& prob, float t) {
  check_single_channel(prob, "probability map");
  Image out(1, prob.height, prob.width);
  const float* p = prob.plane(0);
  for (size_t i = 0; i < out.data.size(); ++i) out.data[i] = p[i] > t ? 1.0f : 0.0f;
  return out;
}

// Components numbered 1, 2, ... in row-major order of their first pixel (unet/weightmap.h).
LabelImage label_components(const std::vector<uint8_t>& mask, int height, int width, int connectivity, int* count) {
  LabelImage out;
  out.height = height;
  out.width = width;
  out.data = connected_components(mask, height, width, connectivity, count);
  return out;
}

LabelImage label_components(const Image& binary, int connectivity, int* count) {
  check_single_channel(binary, "binary image");
  return label_components(mask_above(binary, 0.5f), binary.height, binary.width, connectivity, count);
}

LabelImage to_labels(const Image& instances) {
  check_single_channel(instances, "instance image");
  LabelImage out(instances.height, instances.width);
  const float* p = instances.plane(0);
  for (size_t i = 0; i < out.data.size(); ++i) {
    const float v = p[i];
    UNET_CHECK(std::isfinite(v) && v >= 0.0f && v < 2147483520.0f && v == std::round(v),
               "instance ids must be non-negative integers, found ", v);
    out.data[i] = static_cast<int32_t>(v);
  }
  return out;
}

// ---- Pixel error ------------------------------------------------------------------------------

double PixelStats::fscore() const { return safe_div(2.0 * tp, 2.0 * tp + fp + fn); }
double PixelStats::error() const { return 1.0 - fscore(); }
double PixelStats::mismatch() const {
  return safe_div(static_cast<double>(fp + fn), static_cast<double>(tp + fp + fn + tn));
}

PixelStats pixel_stats(const Image& prob, const Image& gt, float t) {
  check_same_size(prob, "probability map", gt, "ground truth");
  PixelStats s;
  const float* p = prob.plane(0);
  const float* g = gt.plane(0);
  const size_t n = static_cast<size_t>(prob.pixels());
  for (size_t i = 0; i < n; ++i) {
    const bool pc = p[i] > t, gc = g[i] > 0.5f;
    if (pc && gc) ++s.tp;
    else if (pc) ++s.fp;
    else if (gc) ++s.fn;
    else ++s.tn;
  }
  return s;
}

double pixel_error(const Image& prob, const Image& gt, float t) { return pixel_stats(prob, gt, t).error(); }

double pixel_mismatch(const Image& prob, const Image& gt, float t) { return pixel_stats(prob, gt, t).mismatch(); }

// ---- Rand -------------------------------------------------------------------------------------

RandScores rand_scores(const LabelImage& seg, const LabelImage& gt) {
  check_same_size(seg, "segmentation", gt, "ground truth");
  const int32_t gmax = gt.max_label(), smax = seg.max_label();
  std::vector<double> row(static_cast<size_t>(gmax) + 1, 0.0);  // t_i * n (gt marginal)
  std::vector<double> col(static_cast<size_t>(smax) + 1, 0.0);  // s_j * n (seg marginal, j > 0)
  std::unordered_map<uint64_t, int64_t> joint;
  joint.reserve(static_cast<size_t>(gmax + smax) * 4 + 16);
  int64_t n = 0, singletons = 0;
  for (size_t k = 0; k < gt.data.size(); ++k) {
    const int32_t i = gt.data[k], j = seg.data[k];
    UNET_CHECK(i >= 0 && j >= 0, "label images must not hold negative ids");
    if (i == 0) continue;  // foreground restriction: only gt objects are scored
    ++n;
    row[static_cast<size_t>(i)] += 1.0;
    if (j == 0) {  // seg background inside gt foreground: a singleton object
      ++singletons;
      continue;
    }
    col[static_cast<size_t>(j)] += 1.0;
    ++joint[(static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(j)];
  }
  RandScores r;
  r.n = n;
  if (n == 0) {
    r.split = r.merge = r.fscore = kNaN;
    return r;
  }
  // Sums in pixel counts; the 1/n^2 normalisation cancels in every ratio.
  double sum_joint = static_cast<double>(singletons), sum_gt = 0.0, sum_seg = static_cast<double>(singletons);
  for (const auto& kv : joint) sum_joint += static_cast<double>(kv.second) * kv.second;
  for (double v : row) sum_gt += v * v;
  for (double v : col) sum_seg += v * v;
  r.split = sum_joint / sum_gt;
  r.merge = sum_joint / sum_seg;
  r.fscore = 2.0 * r.split * r.merge / (r.split + r.merge);
  return r;
}

double rand_fscore(const LabelImage& seg, const LabelImage& gt) { return rand_scores(seg, gt).fscore; }

LabelImage thin_boundaries(const LabelImage& labels) {
  const int h = labels.height, w = labels.width;
  UNET_CHECK(labels.data.size() == static_cast<size_t>(labels.pixels()), "label image data does not match its size");
  LabelImage out = labels;
  // state: 0 untouched, 1 queued, 2 boundary for good (touches two labels).
  std::vector<uint8_t> state(out.data.size(), 0);
  std::vector<int32_t> queue;
  queue.reserve(out.data.size() / 4 + 16);
  auto has_labelled_4 = [&](int x, int y) {
    for (int k = 0; k < 4; ++k) {
      const int nx = x + kDX4[k], ny = y + kDY4[k];
      if (nx >= 0 && nx < w && ny >= 0 && ny < h && out.at(ny, nx) > 0) return true;
    }
    return false;
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (out.at(y, x) == 0 && has_labelled_4(x, y)) {
        state[static_cast<size_t>(y) * w + x] = 1;
        queue.push_back(y * w + x);
      }
  for (size_t head = 0; head < queue.size(); ++head) {
    const int32_t i = queue[head];
    const int x = i % w, y = i / w;
    int32_t label = 0;
    bool conflict = false;
    for (int k = 0; k < 4; ++k) {
      const int nx = x + kDX4[k], ny = y + kDY4[k];
      if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
      const int32_t v = out.at(ny, nx);
      if (v <= 0) continue;
      if (label == 0) label = v;
      else if (v != label) conflict = true;
    }
    if (conflict || label == 0) {
      state[static_cast<size_t>(i)] = 2;
      continue;
    }
    out.data[static_cast<size_t>(i)] = label;
    for (int k = 0; k < 4; ++k) {
      const int nx = x + kDX4[k], ny = y + kDY4[k];
      if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
      const size_t j = static_cast<size_t>(ny) * w + nx;
      if (out.data[j] == 0 && state[j] == 0) {
        state[j] = 1;
        queue.push_back(static_cast<int32_t>(j));
      }
    }
  }
  return out;
}

RandScores rand_at_threshold(const Image& prob, const Image& gt, float t, bool thinned) {
  check_same_size(prob, "probability map", gt, "ground truth");
  LabelImage seg = label_components(mask_above(prob, t), prob.height, prob.width, 4);
  const LabelImage ref = label_components(gt_mask(gt), gt.height, gt.width, 4);
  if (thinned) seg = thin_boundaries(seg);
  return rand_scores(seg, ref);
}

// ---- Warping ----------------------------------------------------------------------------------

bool is_simple_point(uint8_t neighbourhood) { return topo().simple[neighbourhood] != 0; }

namespace {

enum MismatchClass : uint8_t {
  kNone = 0,
  kMerge,
  kSplit,
  kObjectAddition,
  kObjectDeletion,
  kHoleAddition,
  kHoleDeletion,
};

// Number of pieces (1, or 2 meaning "two or more") the seeds fall into once pixel `removed` is
// taken out of the foreground of m (4-connectivity). One breadth-first search per seed, advanced in
// turn; searches that meet are merged, and a search that runs dry while others remain proves a
// separate piece. The cost is bounded by (number of seeds) x (size of the smallest piece).
struct PieceCounter {
  std::vector<uint32_t> gen;   // visit generation per pixel
  std::vector<uint8_t> owner;  // search that visited it
  uint32_t current = 0;

  int pieces(const std::vector<uint8_t>& m, int h, int w, int removed, const int* seeds, int k) {
    if (k <= 1) return k;
    if (gen.size() != m.size()) {
      gen.assign(m.size(), 0);
      owner.assign(m.size(), 0);
      current = 0;
    }
    ++current;
    if (current == 0) {  // wrapped: reset
      std::fill(gen.begin(), gen.end(), 0);
      current = 1;
    }
    int parent[4];
    std::vector<int32_t> q[4];
    size_t head[4] = {0, 0, 0, 0};
    for (int s = 0; s < k; ++s) {
      parent[s] = s;
      q[s].push_back(seeds[s]);
      gen[static_cast<size_t>(seeds[s])] = current;
      owner[static_cast<size_t>(seeds[s])] = static_cast<uint8_t>(s);
    }
    gen[static_cast<size_t>(removed)] = current;  // never entered
    owner[static_cast<size_t>(removed)] = 255;
    auto find = [&](int a) {
      while (parent[a] != a) a = parent[a];
      return a;
    };
    int roots = k;
    while (true) {
      for (int s = 0; s < k; ++s) {
        if (parent[s] != s) continue;
        if (head[s] == q[s].size()) return roots > 1 ? 2 : 1;  // piece exhausted on its own
        const int32_t i = q[s][head[s]++];
        const int x = i % w, y = i / w;
        for (int d = 0; d < 4; ++d) {
          const int nx = x + kDX4[d], ny = y + kDY4[d];
          if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
          const size_t j = static_cast<size_t>(ny) * w + nx;
          if (!m[j]) continue;
          if (gen[j] != current) {
            gen[j] = current;
            owner[j] = static_cast<uint8_t>(s);
            q[s].push_back(static_cast<int32_t>(j));
          } else if (owner[j] != 255) {
            const int o = find(owner[j]);
            if (o != s) {  // two searches met: merge o into s
              parent[o] = s;
              q[s].insert(q[s].end(), q[o].begin() + static_cast<std::ptrdiff_t>(head[o]), q[o].end());
              q[o].clear();
              head[o] = 0;
              if (--roots == 1) return 1;
            }
          }
        }
      }
    }
  }
};

// Counts the 8-connected groups of pixels carrying each class.
std::array<int, 7> cluster_counts(const std::vector<uint8_t>& cls, int h, int w) {
  std::array<int, 7> counts{};
  std::vector<uint8_t> seen(cls.size(), 0);
  std::vector<int32_t> stack;
  for (size_t i0 = 0; i0 < cls.size(); ++i0) {
    if (cls[i0] == kNone || seen[i0]) continue;
    const uint8_t c = cls[i0];
    ++counts[c];
    seen[i0] = 1;
    stack.assign(1, static_cast<int32_t>(i0));
    while (!stack.empty()) {
      const int32_t i = stack.back();
      stack.pop_back();
      const int x = i % w, y = i / w;
      for (int k = 0; k < 8; ++k) {
        const int nx = x + kDX[k], ny = y + kDY[k];
        if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
        const size_t j = static_cast<size_t>(ny) * w + nx;
        if (cls[j] == c && !seen[j]) {
          seen[j] = 1;
          stack.push_back(static_cast<int32_t>(j));
        }
      }
    }
  }
  return counts;
}

}  // namespace

WarpingResult warping_error(const Image& prob, const Image& gt, float t) {
  check_same_size(prob, "probability map", gt, "ground truth");
  const int h = prob.height, w = prob.width;
  const size_t n = static_cast<size_t>(prob.pixels());
  const TopoTable& tt = topo();
  std::vector<uint8_t> L = gt_mask(gt);                // the ground truth, warped in place
  const std::vector<uint8_t> T = mask_above(prob, t);  // the binarised prediction
  const float* p = prob.plane(0);

  // Max-heap on (margin, -index): largest |prob - t| first, ties by raster order.
  using Entry = std::pair<float, int32_t>;
  std::priority_queue<Entry> heap;
  std::vector<uint8_t> queued(n, 0);
  auto push = [&](size_t i) {
    queued[i] = 1;
    heap.emplace(std::fabs(p[i] - t), -static_cast<int32_t>(i));
  };
  for (size_t i = 0; i < n; ++i)
    if (L[i] != T[i]) push(i);
  while (!heap.empty()) {
    const size_t i = static_cast<size_t>(-heap.top().second);
    heap.pop();
    queued[i] = 0;
    if (L[i] == T[i]) continue;
    const int x = static_cast<int>(i % w), y = static_cast<int>(i / w);
    if (!tt.simple[neighbourhood_code(L, h, w, x, y)]) continue;  // re-queued if a neighbour flips
    L[i] = T[i];
    for (int k = 0; k < 8; ++k) {
      const int nx = x + kDX[k], ny = y + kDY[k];
      if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
      const size_t j = static_cast<size_t>(ny) * w + nx;
      if (L[j] != T[j] && !queued[j]) push(j);
    }
  }

  WarpingResult r;
  r.warped = Image(1, h, w);
  for (size_t i = 0; i < n; ++i) {
    r.warped.data[i] = L[i];
    if (L[i] != T[i]) ++r.mismatches;
  }
  r.error = n ? static_cast<double>(r.mismatches) / static_cast<double>(n) : 0.0;
  if (r.mismatches == 0) return r;

  // Classify every remaining (non-simple) mismatch by what its flip would do to the warped gt.
  const LabelImage comp = label_components(L, h, w, 4);
  std::vector<uint8_t> cls(n, kNone);
  PieceCounter counter;
  for (size_t i = 0; i < n; ++i) {
    if (L[i] == T[i]) continue;
    const int x = static_cast<int>(i % w), y = static_cast<int>(i / w);
    const uint8_t code = neighbourhood_code(L, h, w, x, y);
    int fg4[4];
    int nfg4 = 0;
    for (int k = 0; k < 4; ++k) {
      const int nx = x + kDX4[k], ny = y + kDY4[k];
      if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
      const int j = ny * w + nx;
      if (L[static_cast<size_t>(j)]) fg4[nfg4++] = j;
    }
    if (!L[i]) {  // the prediction adds foreground here
      int ids[4], nids = 0;
      for (int k = 0; k < nfg4; ++k) {
        const int32_t id = comp.data[static_cast<size_t>(fg4[k])];
        if (std::find(ids, ids + nids, id) == ids + nids) ids[nids++] = id;
      }
      if (nids >= 2) cls[i] = kMerge;
      else if (nids == 0) cls[i] = kObjectAddition;
      else cls[i] = tt.t8_bg[code] == 0 ? kHoleDeletion : kHoleAddition;  // fills / closes a loop
    } else {                                                              // the prediction removes foreground here
      if (nfg4 == 0) cls[i] = kObjectDeletion;
      else if (counter.pieces(L, h, w, static_cast<int>(i), fg4, nfg4) >= 2) cls[i] = kSplit;
      else cls[i] = tt.t8_bg[code] == 0 ? kHoleAddition : kHoleDeletion;  // punches / opens
    }
  }
  const std::array<int, 7> c = cluster_counts(cls, h, w);
  r.mergers = c[kMerge];
  r.splits = c[kSplit];
  r.object_additions = c[kObjectAddition];
  r.object_deletions = c[kObjectDeletion];
  r.hole_additions = c[kHoleAddition];
  r.hole_deletions = c[kHoleDeletion];
  return r;
}

// ---- IoU and SEG ------------------------------------------------------------------------------

std::vector<double> iou_per_class(const Image& pred_classes, const Image& gt_classes, int num_classes) {
  check_same_size(pred_classes, "predicted classes", gt_classes, "ground-truth classes");
  UNET_CHECK(num_classes >= 1, "num_classes must be positive, got ", num_classes);
  std::vector<int64_t> inter(static_cast<size_t>(num_classes), 0), pred_n(static_cast<size_t>(num_classes), 0),
      gt_n(static_cast<size_t>(num_classes), 0);
  const float* p = pred_classes.plane(0);
  const float* g = gt_classes.plane(0);
  auto cls = [&](float v, const char* what) {
    UNET_CHECK(std::isfinite(v), what, " holds a non-finite value");
    const long c = std::lround(v);
    UNET_CHECK(c >= 0 && c < num_classes, what, " holds class ", v, " outside [0, ", num_classes, ")");
    return static_cast<size_t>(c);
  };
  const size_t n = static_cast<size_t>(pred_classes.pixels());
  for (size_t i = 0; i < n; ++i) {
    const size_t a = cls(p[i], "prediction"), b = cls(g[i], "ground truth");
    ++pred_n[a];
    ++gt_n[b];
    if (a == b) ++inter[a];
  }
  std::vector<double> iou(static_cast<size_t>(num_classes));
  for (size_t k = 0; k < iou.size(); ++k)
    iou[k] = safe_div(static_cast<double>(inter[k]), static_cast<double>(pred_n[k] + gt_n[k] - inter[k]));
  return iou;
}

double seg_score(const LabelImage& pred_instances, const LabelImage& gt_instances) {
  check_same_size(pred_instances, "predicted instances", gt_instances, "reference instances");
  const int32_t gmax = gt_instances.max_label(), pmax = pred_instances.max_label();
  std::vector<int64_t> gsize(static_cast<size_t>(gmax) + 1, 0), psize(static_cast<size_t>(pmax) + 1, 0);
  std::unordered_map<uint64_t, int64_t> overlap;
  for (size_t k = 0; k < gt_instances.data.size(); ++k) {
    const int32_t g = gt_instances.data[k], s = pred_instances.data[k];
    UNET_CHECK(g >= 0 && s >= 0, "label images must not hold negative ids");
    ++gsize[static_cast<size_t>(g)];
    ++psize[static_cast<size_t>(s)];
    if (g > 0 && s > 0) ++overlap[(static_cast<uint64_t>(g) << 32) | static_cast<uint32_t>(s)];
  }
  std::vector<double> best(static_cast<size_t>(gmax) + 1, 0.0);
  for (const auto& kv : overlap) {
    const size_t g = static_cast<size_t>(kv.first >> 32);
    const size_t s = static_cast<size_t>(kv.first & 0xffffffffu);
    const int64_t in = kv.second;
    if (2 * in > gsize[g])  // |R ∩ S| > 0.5 |R|: at most one S per R can satisfy it
      best[g] = static_cast<double>(in) / static_cast<double>(gsize[g] + psize[s] - in);
  }
  double sum = 0.0;
  int objects = 0;
  for (size_t g = 1; g < gsize.size(); ++g) {
    if (gsize[g] == 0) continue;  // ids need not be contiguous
    sum += best[g];
    ++objects;
  }
  return objects ? sum / objects : kNaN;
}

// ---- The ISBI evaluation ----------------------------------------------------------------------

std::vector<float> isbi_thresholds() {
  std::vector<float> t;
  for (int i = 0; i < 10; ++i) t.push_back(static_cast<float>(i) / 10.0f);
  return t;
}

IsbiScores evaluate_isbi(const Image& prob, const Image& gt, const std::vector<float>& thresholds) {
  check_same_size(prob, "probability map", gt, "ground truth");
  UNET_CHECK(!thresholds.empty(), "no thresholds to evaluate");
  const int h = prob.height, w = prob.width;
  IsbiScores s;
  s.height = h;
  s.width = w;
  const LabelImage ref = label_components(gt_mask(gt), h, w, 4, &s.gt_objects);

  s.per_threshold.resize(thresholds.size());
  const int nt = static_cast<int>(thresholds.size());
  std::exception_ptr failure;  // an exception must not leave an OpenMP region: rethrown below
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < nt; ++k) {
    try {
      IsbiThresholdScores& r = s.per_threshold[static_cast<size_t>(k)];
      const float t = thresholds[static_cast<size_t>(k)];
      r.threshold = t;
      const PixelStats ps = pixel_stats(prob, gt, t);
      r.pixel_error = ps.error();
      r.pixel_mismatch = ps.mismatch();
      const LabelImage seg = label_components(mask_above(prob, t), h, w, 4, &r.objects);
      r.rand = rand_scores(seg, ref);
      const LabelImage seg_thin = thin_boundaries(seg);
      r.rand_thinned = rand_scores(seg_thin, ref);
      r.info_thinned = info_scores(seg_thin, ref);
      r.rand_error = r.rand.error();
      r.rand_error_thinned = r.rand_thinned.error();
      r.info_error_thinned = r.info_thinned.error();
      const WarpingResult wr = warping_error(prob, gt, t);
      r.warping_error = wr.error;
      r.warping_mismatches = wr.mismatches;
      r.splits = wr.splits;
      r.mergers = wr.mergers;
      r.topological_errors = wr.topological_errors();
    } catch (...) {
#pragma omp critical(unet_metrics_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);

  auto best_of = [&](double IsbiThresholdScores::*field) {
    IsbiBest b{kNaN, std::numeric_limits<float>::quiet_NaN()};
    for (const IsbiThresholdScores& r : s.per_threshold) {
      const double v = r.*field;
      if (std::isnan(v)) continue;
      if (std::isnan(b.value) || v < b.value) b = IsbiBest{v, r.threshold};
    }
    return b;
  };
  s.pixel_error = best_of(&IsbiThresholdScores::pixel_error);
  s.rand_error = best_of(&IsbiThresholdScores::rand_error);
  s.rand_error_thinned = best_of(&IsbiThresholdScores::rand_error_thinned);
  s.info_error_thinned = best_of(&IsbiThresholdScores::info_error_thinned);
  s.warping_error = best_of(&IsbiThresholdScores::warping_error);

  const Image pred05 = binarize(prob, 0.5f);
  Image gt_classes(1, h, w);
  const float* g = gt.plane(0);
  for (size_t i = 0; i < gt_classes.data.size(); ++i) gt_classes.data[i] = g[i] > 0.5f ? 1.f : 0.f;
  s.iou_at_05 = iou_per_class(pred05, gt_classes, 2);
  s.mean_iou_at_05 = 0.5 * (s.iou_at_05[0] + s.iou_at_05[1]);
  s.seg_at_05 = seg_score(label_components(pred05, 4), ref);
  return s;
}

namespace {

std::string fmt(double v, const char* f = "%.6f") {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

nlohmann::ordered_json num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

nlohmann::ordered_json rand_json(const RandScores& r) {
  nlohmann::ordered_json j;
  j["fscore"] = num(r.fscore);
  j["error"] = num(r.error());
  j["split"] = num(r.split);
  j["merge"] = num(r.merge);
  j["n"] = r.n;
  return j;
}

nlohmann::ordered_json info_json(const InfoScores& r) {
  nlohmann::ordered_json j;
  j["fscore"] = num(r.fscore);
  j["error"] = num(r.error());
  j["split"] = num(r.split);
  j["merge"] = num(r.merge);
  j["n"] = r.n;
  return j;
}

// Thresholds are floats such as 0.1f: written rounded to 6 decimals, not as 0.10000000149...
nlohmann::ordered_json thr(float t) {
  if (!std::isfinite(t)) return nullptr;
  return std::round(static_cast<double>(t) * 1e6) / 1e6;
}

nlohmann::ordered_json best_json(const IsbiBest& b) {
  nlohmann::ordered_json j;
  j["value"] = num(b.value);
  j["threshold"] = thr(b.threshold);
  return j;
}

}  // namespace

std::string format_table(const IsbiScores& s) {
  std::ostringstream os;
  os << "ISBI 2012 metrics (" << s.height << "x" << s.width << ", " << s.gt_objects << " ground-truth objects)\n";
  char line[256];
  std::snprintf(line, sizeof line, "%6s %10s %10s %10s %10s %10s %10s %7s %7s %7s %7s\n", "thresh", "pixel_err",
                "mismatch", "rand_err", "rand_thin", "info_thin", "warp_err", "splits", "merges", "topo", "objects");
  os << line;
  for (const IsbiThresholdScores& r : s.per_threshold) {
    std::snprintf(line, sizeof line, "%6.2f %10s %10s %10s %10s %10s %10s %7d %7d %7d %7d\n", r.threshold,
                  fmt(r.pixel_error).c_str(), fmt(r.pixel_mismatch).c_str(), fmt(r.rand_error).c_str(),
                  fmt(r.rand_error_thinned).c_str(), fmt(r.info_error_thinned).c_str(), fmt(r.warping_error).c_str(),
                  r.splits, r.mergers, r.topological_errors, r.objects);
    os << line;
  }
  auto best_line = [&](const char* name, const IsbiBest& b) {
    std::snprintf(line, sizeof line, "best %-22s %10s at threshold %s\n", name, fmt(b.value).c_str(),
                  fmt(b.threshold, "%.2f").c_str());
    os << line;
  };
  best_line("pixel error", s.pixel_error);
  best_line("Rand error", s.rand_error);
  best_line("Rand error (thinned)", s.rand_error_thinned);
  best_line("info error (thinned)", s.info_error_thinned);
  best_line("warping error", s.warping_error);
  std::snprintf(line, sizeof line, "challenge scores: V_rand %s  V_info %s (thinned, higher is better)\n",
                fmt(s.v_rand()).c_str(), fmt(s.v_info()).c_str());
  os << line;
  std::snprintf(line, sizeof line, "at 0.5: IoU membrane %s  cell %s  mean %s  SEG %s\n",
                fmt(s.iou_at_05.size() > 0 ? s.iou_at_05[0] : kNaN).c_str(),
                fmt(s.iou_at_05.size() > 1 ? s.iou_at_05[1] : kNaN).c_str(), fmt(s.mean_iou_at_05).c_str(),
                fmt(s.seg_at_05).c_str());
  os << line;
  return os.str();
}

std::string to_csv(const IsbiScores& s) {
  std::ostringstream os;
  os << "threshold,pixel_error,pixel_mismatch,rand_error,rand_split,rand_merge,"
        "rand_error_thinned,rand_split_thinned,rand_merge_thinned,info_error_thinned,"
        "info_split_thinned,info_merge_thinned,warping_error,warping_mismatches,splits,mergers,"
        "topological_errors,objects\n";
  for (const IsbiThresholdScores& r : s.per_threshold) {
    os << fmt(r.threshold, "%.2f") << ',' << fmt(r.pixel_error, "%.9g") << ',' << fmt(r.pixel_mismatch, "%.9g") << ','
       << fmt(r.rand_error, "%.9g") << ',' << fmt(r.rand.split, "%.9g") << ',' << fmt(r.rand.merge, "%.9g") << ','
       << fmt(r.rand_error_thinned, "%.9g") << ',' << fmt(r.rand_thinned.split, "%.9g") << ','
       << fmt(r.rand_thinned.merge, "%.9g") << ',' << fmt(r.info_error_thinned, "%.9g") << ','
       << fmt(r.info_thinned.split, "%.9g") << ',' << fmt(r.info_thinned.merge, "%.9g") << ','
       << fmt(r.warping_error, "%.9g") << ',' << r.warping_mismatches << ',' << r.splits << ',' << r.mergers << ','
       << r.topological_errors << ',' << r.objects << '\n';
  }
  return os.str();
}

std::string to_json(const IsbiScores& s) {
  nlohmann::ordered_json j;
  j["height"] = s.height;
  j["width"] = s.width;
  j["gt_objects"] = s.gt_objects;
  nlohmann::ordered_json best;
  best["pixel_error"] = best_json(s.pixel_error);
  best["rand_error"] = best_json(s.rand_error);
  best["rand_error_thinned"] = best_json(s.rand_error_thinned);
  best["info_error_thinned"] = best_json(s.info_error_thinned);
  best["warping_error"] = best_json(s.warping_error);
  j["best"] = best;
  j["v_rand"] = num(s.v_rand());
  j["v_info"] = num(s.v_info());
  nlohmann::ordered_json at05;
  nlohmann::ordered_json iou = nlohmann::ordered_json::array();
  for (double v : s.iou_at_05) iou.push_back(num(v));
  at05["iou_per_class"] = iou;
  at05["mean_iou"] = num(s.mean_iou_at_05);
  at05["seg"] = num(s.seg_at_05);
  j["at_0.5"] = at05;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const IsbiThresholdScores& r : s.per_threshold) {
    nlohmann::ordered_json o;
    o["threshold"] = thr(r.threshold);
    o["pixel_error"] = num(r.pixel_error);
    o["pixel_mismatch"] = num(r.pixel_mismatch);
    o["rand"] = rand_json(r.rand);
    o["rand_thinned"] = rand_json(r.rand_thinned);
    o["info_thinned"] = info_json(r.info_thinned);
    o["warping_error"] = num(r.warping_error);
    o["warping_mismatches"] = r.warping_mismatches;
    o["splits"] = r.splits;
    o["mergers"] = r.mergers;
    o["topological_errors"] = r.topological_errors;
    o["objects"] = r.objects;
    rows.push_back(o);
  }
  j["per_threshold"] = rows;
  return j.dump(2);
}

}  // namespace unet
