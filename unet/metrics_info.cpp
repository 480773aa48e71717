// The ISBI 2012 challenge's information-theoretic score V_info (Arganda-Carreras et al. 2015;
// Fiji trainableSegmentation.metrics.VariationOfInformation, foreground-restricted, N
// normalisation). Kept apart from metrics.cpp, which holds the pixel, Rand and warping errors.
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

#include "engine/check.h"
#include "unet/metrics.h"

namespace unet {

InfoScores info_scores(const LabelImage& seg, const LabelImage& gt) {
  UNET_CHECK(seg.height == gt.height && seg.width == gt.width, "V_info: segmentation is ", seg.height, "x", seg.width,
             " but the ground truth is ", gt.height, "x", gt.width);
  UNET_CHECK(seg.data.size() == static_cast<size_t>(seg.pixels()) && gt.data.size() == static_cast<size_t>(gt.pixels()),
             "V_info: label image data does not match its size");
  const int32_t gmax = gt.max_label(), smax = seg.max_label();
  std::vector<double> row(static_cast<size_t>(gmax) + 1, 0.0);  // gt object sizes (restricted)
  std::vector<double> col(static_cast<size_t>(smax) + 1, 0.0);  // seg object sizes inside gt fg
  std::unordered_map<uint64_t, int64_t> joint;
  joint.reserve(static_cast<size_t>(gmax + smax) * 4 + 16);
  int64_t n = 0;
  for (size_t k = 0; k < gt.data.size(); ++k) {
    const int32_t i = gt.data[k], j = seg.data[k];
    UNET_CHECK(i >= 0 && j >= 0, "label images must not hold negative ids");
    if (i == 0) continue;
    ++n;
    row[static_cast<size_t>(i)] += 1.0;
    if (j == 0) continue;  // a singleton: its c log c is 0
    col[static_cast<size_t>(j)] += 1.0;
    ++joint[(static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(j)];
  }
  InfoScores r;
  r.n = n;
  if (n == 0) {
    r.split = r.merge = r.fscore = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  // Entropies from counts c with p = c / n: -sum p log p = log n - (1/n) sum c log c.
  // A singleton (c = 1) adds nothing to the sums, only its mass to n.
  const double dn = static_cast<double>(n), logn = std::log(dn);
  auto clogc = [](double c) { return c > 0.0 ? c * std::log(c) : 0.0; };
  double sum_t = 0.0, sum_s = 0.0, sum_ts = 0.0;
  for (double c : row) sum_t += clogc(c);
  for (double c : col) sum_s += clogc(c);
  for (const auto& kv : joint) sum_ts += clogc(static_cast<double>(kv.second));
  const double h_t = logn - sum_t / dn, h_s = logn - sum_s / dn, h_ts = logn - sum_ts / dn;
  const double mi = h_t + h_s - h_ts;
  // Fiji: "precision" = I / H(T) (merge), "recall" = I / H(S) (split), zero entropies as there.
  // An entropy that is 0 in exact arithmetic can come out as +-1e-16 here: compare with a margin.
  const double eps = 1e-12;
  double merge = h_t > eps ? mi / h_t : 0.0, split = h_s > eps ? mi / h_s : 0.0;
  if (!(h_t > eps)) split = 1.0;
  if (!(h_s > eps)) {
    merge = 1.0;
    split = 0.0;
  }
  r.split = split;
  r.merge = merge;
  r.fscore = 2.0 * split * merge / (split + merge);
  return r;
}

InfoScores info_at_threshold(const Image& prob, const Image& gt, float t, bool thinned) {
  UNET_CHECK(prob.channels == 1 && gt.channels == 1, "V_info: probability map and ground truth need 1 channel");
  UNET_CHECK(prob.height == gt.height && prob.width == gt.width, "V_info: probability map is ", prob.height, "x",
             prob.width, " but the ground truth is ", gt.height, "x", gt.width);
  LabelImage seg = label_components(binarize(prob, t), 4);
  const LabelImage ref = label_components(binarize(gt, 0.5f), 4);
  if (thinned) seg = thin_boundaries(seg);
  return info_scores(seg, ref);
}

}  // namespace unet
