// The loss curve as a PNG: raw training loss in light blue, its running mean in dark blue,
// validation loss as red dots; log-scaled loss axis; labels drawn with stb_easy_font.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "unet/plot.h"

#include "unet/io.h"

#include "stb_easy_font.h"

namespace unet {

namespace {

struct Canvas {
  Image img;
  Canvas(int w, int h) : img(3, h, w, 255.0f) {}
  void px(int x, int y, const float c[3]) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    for (int k = 0; k < 3; ++k) img.at(k, y, x) = c[k];
  }
  void line(double x0, double y0, double x1, double y1, const float c[3]) {
    int n = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int i = 0; i <= n; ++i) {
      double t = static_cast<double>(i) / n;
      px(static_cast<int>(std::lround(x0 + t * (x1 - x0))), static_cast<int>(std::lround(y0 + t * (y1 - y0))), c);
    }
  }
  void dot(double x, double y, const float c[3]) {
    for (int dy = -2; dy <= 2; ++dy)
      for (int dx = -2; dx <= 2; ++dx)
        if (dx * dx + dy * dy <= 5) px(static_cast<int>(x) + dx, static_cast<int>(y) + dy, c);
  }
  // stb_easy_font emits quads (4 vertices of x, y, z, colour); they are axis-aligned rectangles.
  void text(int x, int y, const std::string& s, const float c[3]) {
    static char buf[60000];
    int quads = stb_easy_font_print(static_cast<float>(x), static_cast<float>(y), const_cast<char*>(s.c_str()), nullptr,
                                    buf, sizeof buf);
    const float* v = reinterpret_cast<const float*>(buf);
    for (int q = 0; q < quads; ++q) {
      const float* p = v + q * 16;  // 4 vertices * (x, y, z, rgba-as-float)
      int xa = static_cast<int>(p[0]), ya = static_cast<int>(p[1]), xb = static_cast<int>(p[8]), yb = static_cast<int>(p[9]);
      for (int yy = std::min(ya, yb); yy < std::max(ya, yb); ++yy)
        for (int xx = std::min(xa, xb); xx < std::max(xa, xb); ++xx) px(xx, yy, c);
    }
  }
};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace

void write_loss_plot(const std::string& path, const std::vector<std::pair<int64_t, float>>& tr,
                     const std::vector<std::pair<int64_t, float>>& val) {
  const int W = 800, H = 480, L = 70, R = 20, Tm = 30, B = 40;
  Canvas cv(W, H);
  const float black[3] = {0, 0, 0}, grey[3] = {200, 200, 200}, light[3] = {160, 190, 240}, blue[3] = {20, 60, 170},
              red[3] = {210, 30, 30};
  double lo = 1e30, hi = -1e30;
  int64_t xmax = 1;
  for (auto [it, l] : tr) if (l > 0) { lo = std::min(lo, double(l)); hi = std::max(hi, double(l)); xmax = std::max(xmax, it); }
  for (auto [it, l] : val) if (l > 0) { lo = std::min(lo, double(l)); hi = std::max(hi, double(l)); xmax = std::max(xmax, it); }
  if (lo > hi) { lo = 0.1; hi = 1.0; }
  if (hi / lo < 1.5) { lo /= 1.25; hi *= 1.25; }
  const double llo = std::log10(lo), lhi = std::log10(hi);
  auto X = [&](double it) { return L + (W - L - R) * it / static_cast<double>(xmax); };
  auto Y = [&](double l) { return Tm + (H - Tm - B) * (lhi - std::log10(std::max(l, lo))) / (lhi - llo); };
  for (int d = static_cast<int>(std::floor(llo)); d <= static_cast<int>(std::ceil(lhi)); ++d)
    for (int m = 1; m < 10; ++m) {
      double v = m * std::pow(10.0, d);
      if (v < lo || v > hi) continue;
      cv.line(L, Y(v), W - R, Y(v), grey);
      if (m == 1 || m == 2 || m == 5) cv.text(8, static_cast<int>(Y(v)) - 3, num(v), black);
    }
  cv.line(L, Tm, L, H - B, black);
  cv.line(L, H - B, W - R, H - B, black);
  for (size_t i = 1; i < tr.size(); ++i) cv.line(X(tr[i - 1].first), Y(tr[i - 1].second), X(tr[i].first), Y(tr[i].second), light);
  // Running mean over a window of ~2% of the run: the trend under SGD noise.
  size_t win = std::max<size_t>(1, tr.size() / 50);
  double s = 0.0;
  std::vector<std::pair<double, double>> mean;
  for (size_t i = 0; i < tr.size(); ++i) {
    s += tr[i].second;
    if (i >= win) s -= tr[i - win].second;
    mean.emplace_back(static_cast<double>(tr[i].first), s / static_cast<double>(std::min(i + 1, win)));
  }
  for (size_t i = 1; i < mean.size(); ++i) cv.line(X(mean[i - 1].first), Y(mean[i - 1].second), X(mean[i].first), Y(mean[i].second), blue);
  for (auto [it, l] : val) cv.dot(X(static_cast<double>(it)), Y(l), red);
  cv.text(L, 10, "training loss (blue, running mean dark), validation loss (red); log scale", black);
  cv.text(L, H - B + 10, "0", black);
  cv.text(W - R - 60, H - B + 10, "iteration " + std::to_string(xmax), black);
  write_png(path, cv.img);
}

}  // namespace unet
