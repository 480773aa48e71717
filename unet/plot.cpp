// The loss curve as a PNG: raw training loss in light blue, its running mean in dark blue,
// validation loss as red dots; log-scaled loss axis; labels drawn with stb_easy_font.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "unet/plot.h"

#include "unet/canvas.h"
#include "unet/io.h"

namespace unet {

void write_loss_plot(const std::string& path, const std::vector<std::pair<int64_t, float>>& tr,
                     const std::vector<std::pair<int64_t, float>>& val) {
  const int W = 800, H = 480, L = 70, R = 20, Tm = 30, B = 40;
  Canvas cv(W, H);
  const float black[3] = {0, 0, 0}, grey[3] = {200, 200, 200}, light[3] = {160, 190, 240}, blue[3] = {20, 60, 170},
              red[3] = {210, 30, 30};
  double lo = 1e30, hi = -1e30;
  int64_t xmax = 1;
  for (auto [it, l] : tr)
    if (l > 0) {
      lo = std::min(lo, double(l));
      hi = std::max(hi, double(l));
      xmax = std::max(xmax, it);
    }
  for (auto [it, l] : val)
    if (l > 0) {
      lo = std::min(lo, double(l));
      hi = std::max(hi, double(l));
      xmax = std::max(xmax, it);
    }
  if (lo > hi) {
    lo = 0.1;
    hi = 1.0;
  }
  if (hi / lo < 1.5) {
    lo /= 1.25;
    hi *= 1.25;
  }
  const double llo = std::log10(lo), lhi = std::log10(hi);
  auto X = [&](double it) { return L + (W - L - R) * it / static_cast<double>(xmax); };
  auto Y = [&](double l) { return Tm + (H - Tm - B) * (lhi - std::log10(std::max(l, lo))) / (lhi - llo); };
  for (int d = static_cast<int>(std::floor(llo)); d <= static_cast<int>(std::ceil(lhi)); ++d)
    for (int m = 1; m < 10; ++m) {
      double v = m * std::pow(10.0, d);
      if (v < lo || v > hi) continue;
      cv.line(L, Y(v), W - R, Y(v), grey);
      if (m == 1 || m == 2 || m == 5) cv.text(8, static_cast<int>(Y(v)) - 3, plot_num(v), black);
    }
  cv.line(L, Tm, L, H - B, black);
  cv.line(L, H - B, W - R, H - B, black);
  for (size_t i = 1; i < tr.size(); ++i)
    cv.line(X(tr[i - 1].first), Y(tr[i - 1].second), X(tr[i].first), Y(tr[i].second), light);
  // Running mean over a window of ~2% of the run: the trend under SGD noise.
  size_t win = std::max<size_t>(1, tr.size() / 50);
  double s = 0.0;
  std::vector<std::pair<double, double>> mean;
  for (size_t i = 0; i < tr.size(); ++i) {
    s += tr[i].second;
    if (i >= win) s -= tr[i - win].second;
    mean.emplace_back(static_cast<double>(tr[i].first), s / static_cast<double>(std::min(i + 1, win)));
  }
  for (size_t i = 1; i < mean.size(); ++i)
    cv.line(X(mean[i - 1].first), Y(mean[i - 1].second), X(mean[i].first), Y(mean[i].second), blue);
  for (auto [it, l] : val) cv.dot(X(static_cast<double>(it)), Y(l), red);
  cv.text(L, 10, "training loss (blue, running mean dark), validation loss (red); log scale", black);
  cv.text(L, H - B + 10, "0", black);
  cv.text(W - R - 60, H - B + 10, "iteration " + std::to_string(xmax), black);
  write_png(path, cv.img);
}

}  // namespace unet
