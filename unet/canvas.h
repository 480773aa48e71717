// A small RGB canvas for the project's plots (loss curves, run comparisons): lines, dots and
// stb_easy_font text, written with unet::write_png.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "unet/image.h"

#include "stb_easy_font.h"

namespace unet {

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
      int xa = static_cast<int>(p[0]), ya = static_cast<int>(p[1]), xb = static_cast<int>(p[8]),
          yb = static_cast<int>(p[9]);
      for (int yy = std::min(ya, yb); yy < std::max(ya, yb); ++yy)
        for (int xx = std::min(xa, xb); xx < std::max(xa, xb); ++xx) px(xx, yy, c);
    }
  }
};

inline std::string plot_num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

}  // namespace unet
