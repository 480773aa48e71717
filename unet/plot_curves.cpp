#include "unet/plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/check.h"
#include "unet/canvas.h"
#include "unet/io.h"

namespace unet {

namespace {

// Distinct colours that stay apart on white (Okabe-Ito order, then greys).
const float kPalette[][3] = {{0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
                             {230, 159, 0}, {86, 180, 233}, {0, 0, 0},     {150, 150, 150}};

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream is(line);
  while (std::getline(is, cell, sep)) out.push_back(cell);
  return out;
}

}  // namespace

std::vector<std::pair<double, double>> read_csv_column(const std::string& path, const std::string& column) {
  std::ifstream in(path);
  UNET_CHECK(in.good(), "cannot read ", path);
  std::string line;
  UNET_CHECK(static_cast<bool>(std::getline(in, line)), path, " is empty (no header line)");
  const std::vector<std::string> head = split(line, ',');
  const auto it = std::find(head.begin(), head.end(), column);
  UNET_CHECK(it != head.end(), path, " has no column \"", column, "\" (its columns: ", line, ")");
  const size_t c = static_cast<size_t>(it - head.begin());
  std::vector<std::pair<double, double>> pts;
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    const std::vector<std::string> cells = split(line, ',');
    UNET_CHECK(cells.size() > c, path, " line ", row, " has ", cells.size(), " fields; column \"", column,
               "\" is number ", c + 1);
    try {
      pts.emplace_back(std::stod(cells[0]), std::stod(cells[c]));
    } catch (const std::exception&) {
      UNET_FAIL(path, " line ", row, ": \"", line, "\" is not numbers");
    }
  }
  return pts;
}

void write_curves_plot(const std::string& path, const std::vector<CurveSeries>& series, const CurvesPlot& o) {
  UNET_CHECK(!series.empty(), "plot: no series to draw");
  UNET_CHECK(o.smooth >= 1, "plot: the running-mean window must be >= 1, got ", o.smooth);
  // Running means first: the axes fit what is drawn.
  std::vector<std::vector<std::pair<double, double>>> drawn;
  double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
  for (const CurveSeries& s : series) {
    UNET_CHECK(!s.points.empty(), "plot: series \"", s.label, "\" has no points");
    std::vector<std::pair<double, double>> m;
    double sum = 0.0;
    for (size_t i = 0; i < s.points.size(); ++i) {
      sum += s.points[i].second;
      if (i >= static_cast<size_t>(o.smooth)) sum -= s.points[i - o.smooth].second;
      const double y = sum / static_cast<double>(std::min(i + 1, static_cast<size_t>(o.smooth)));
      if (o.log_y && !(y > 0.0)) continue;
      m.emplace_back(s.points[i].first, y);
      xlo = std::min(xlo, s.points[i].first);
      xhi = std::max(xhi, s.points[i].first);
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
    drawn.push_back(std::move(m));
  }
  UNET_CHECK(xlo <= xhi, "plot: nothing to draw (all values <= 0 on a log axis?)");
  if (xhi == xlo) xhi = xlo + 1.0;
  if (o.log_y) {
    if (yhi / ylo < 1.5) {
      ylo /= 1.25;
      yhi *= 1.25;
    }
  } else {
    const double pad = yhi > ylo ? 0.05 * (yhi - ylo) : 0.05 * std::max(std::abs(yhi), 1.0);
    ylo -= pad;
    yhi += pad;
  }
  const int W = o.width, H = o.height, L = 64, R = 16, T = 30, B = 36;
  Canvas cv(W, H);
  const float black[3] = {0, 0, 0}, grey[3] = {215, 215, 215};
  auto fy = [&](double y) { return o.log_y ? std::log10(y) : y; };
  const double flo = fy(ylo), fhi = fy(yhi);
  auto X = [&](double x) { return L + (W - L - R) * (x - xlo) / (xhi - xlo); };
  auto Y = [&](double y) { return T + (H - T - B) * (fhi - fy(std::max(y, ylo))) / (fhi - flo); };
  // Grid: 1-2-5 steps on a log axis, ~6 even steps on a linear one.
  if (o.log_y) {
    for (int d = static_cast<int>(std::floor(flo)); d <= static_cast<int>(std::ceil(fhi)); ++d)
      for (int k = 1; k < 10; ++k) {
        const double v = k * std::pow(10.0, d);
        if (v < ylo || v > yhi) continue;
        cv.line(L, Y(v), W - R, Y(v), grey);
        // Within one decade every line gets its number; over several, 1-2-5 only.
        if (fhi - flo < 1.2 || k == 1 || k == 2 || k == 5) cv.text(6, static_cast<int>(Y(v)) - 3, plot_num(v), black);
      }
  } else {
    const double raw = (yhi - ylo) / 6.0, mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(ylo / step) * step; v <= yhi; v += step) {
      cv.line(L, Y(v), W - R, Y(v), grey);
      cv.text(6, static_cast<int>(Y(v)) - 3, plot_num(std::abs(v) < 1e-12 ? 0.0 : v), black);
    }
  }
  cv.line(L, T, L, H - B, black);
  cv.line(L, H - B, W - R, H - B, black);
  for (size_t s = 0; s < drawn.size(); ++s) {
    const float* c = kPalette[s % (sizeof kPalette / sizeof kPalette[0])];
    const auto& m = drawn[s];
    for (size_t i = 1; i < m.size(); ++i)
      cv.line(X(m[i - 1].first), Y(m[i - 1].second), X(m[i].first), Y(m[i].second), c);
    if (m.size() == 1) cv.dot(X(m[0].first), Y(m[0].second), c);
    // Legend, top right: a short thick line and the label.
    const int ly = T + 8 + 14 * static_cast<int>(s), lx = W - R - 230;
    for (int t = -1; t <= 1; ++t) cv.line(lx, ly + t, lx + 22, ly + t, c);
    cv.text(lx + 28, ly - 3, series[s].label, black);
  }
  cv.text(L, 10, o.title + (o.smooth > 1 ? " (running mean of " + std::to_string(o.smooth) + ")" : ""), black);
  cv.text(L, H - B + 10, plot_num(xlo), black);
  cv.text(W - R - 120, H - B + 10, o.xlabel + " " + plot_num(xhi), black);
  if (!o.ylabel.empty()) cv.text(L + 4, T + 2, o.ylabel, black);
  write_png(path, cv.img);
}

}  // namespace unet
