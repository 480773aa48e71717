#include "restore/synthetic_cells.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/rng.h"

namespace unet::restore {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Circle {
  double cx, cy, r;
};

struct Cell {
  double cx, cy, a, b, phi, amp;
  bool bright;
};

double stddev(const Image& g) {
  double m = 0.0, s = 0.0;
  for (float v : g.data) m += v;
  m /= static_cast<double>(g.data.size());
  for (float v : g.data) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(g.data.size()));
}

}  // namespace

SyntheticSample make_synthetic(const SyntheticOptions& o, Device device) {
  UNET_CHECK(o.height >= 32 && o.width >= 32, "synthetic cells: need at least 32x32 pixels");
  const int H = o.height, W = o.width;
  const double s = std::min(H, W) / 96.0;
  Rng rng(o.seed);
  auto U = [&](double lo, double hi) { return lo + (hi - lo) * rng.uniform(); };
  std::vector<Circle> placed;
  std::vector<Cell> cells;
  auto fits = [&](double cx, double cy, double r) {
    if (cx - r < 2 || cy - r < 2 || cx + r > W - 3 || cy + r > H - 3) return false;
    for (const Circle& c : placed)
      if (std::hypot(cx - c.cx, cy - c.cy) < r + c.r + 3.0) return false;
    return true;
  };
  // Touching pairs of discs first (they need the most room), then the isolated cells, then mitotic ones.
  for (int p = 0; p < o.touching_pairs; ++p)
    for (int attempt = 0; attempt < 500; ++attempt) {
      const double r1 = U(6, 10) * s, r2 = U(6, 10) * s, ang = U(0, 2 * kPi);
      const double cx = U(0, W), cy = U(0, H);
      const double cx2 = cx + (r1 + r2) * std::cos(ang), cy2 = cy + (r1 + r2) * std::sin(ang);
      const double mx = 0.5 * (cx + cx2), my = 0.5 * (cy + cy2), R = 0.5 * (r1 + r2) + std::max(r1, r2);
      if (!fits(mx, my, R)) continue;
      placed.push_back({mx, my, R});
      cells.push_back({cx, cy, r1, r1, 0.0, U(0.8, 1.2), false});
      cells.push_back({cx2, cy2, r2, r2, 0.0, U(0.8, 1.2), false});
      break;
    }
  for (int c = 0; c < o.cells; ++c)
    for (int attempt = 0; attempt < 500; ++attempt) {
      double a = U(7, 12) * s, b = U(5, 9) * s;
      if (b > a) std::swap(a, b);
      const double cx = U(0, W), cy = U(0, H);
      if (!fits(cx, cy, a)) continue;
      placed.push_back({cx, cy, a});
      cells.push_back({cx, cy, a, b, U(0, kPi), U(0.8, 1.2), false});
      break;
    }
  for (int c = 0; c < o.mitotic; ++c)
    for (int attempt = 0; attempt < 500; ++attempt) {
      const double r = U(5, 7) * s, cx = U(0, W), cy = U(0, H);
      if (!fits(cx, cy, r)) continue;
      placed.push_back({cx, cy, r});
      cells.push_back({cx, cy, r, r, 0.0, U(1.1, 1.4), true});
      break;
    }

  SyntheticSample out;
  Image f_dark(1, H, W), f_bright(1, H, W);
  out.instances = Image(1, H, W);
  Image best(1, H, W);
  for (size_t id = 0; id < cells.size(); ++id) {
    const Cell& c = cells[id];
    const double cs = std::cos(c.phi), sn = std::sin(c.phi);
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        const double dx = j - c.cx, dy = i - c.cy;
        const double u = (dx * cs + dy * sn) / c.a, v = (-dx * sn + dy * cs) / c.b;
        const double rho2 = u * u + v * v;
        if (rho2 >= 1.0) continue;
        const float val = static_cast<float>(c.amp * (0.4 + 0.6 * std::sqrt(1.0 - rho2)));
        if (val <= best.at(0, i, j)) continue;  // touching cells: the thicker one owns the pixel
        best.at(0, i, j) = val;
        out.instances.at(0, i, j) = static_cast<float>(id + 1);
        f_dark.at(0, i, j) = c.bright ? 0.0f : val;
        f_bright.at(0, i, j) = c.bright ? val : 0.0f;
      }
  }
  out.f = best;
  out.f_bright = f_bright;
  out.label = Image(1, H, W);
  for (size_t i = 0; i < best.data.size(); ++i) out.label.data[i] = best.data[i] > 0.0f ? 1.0f : 0.0f;

  // Phase contrast.
  Image clean_p = apply_kernel(phase_kernel(o.phase), f_dark, device);
  if (o.mitotic > 0) {
    Image bright = apply_kernel(phase_retardation_kernel(o.phase, 1.5 * kPi, 0.8), f_bright, device);
    for (size_t i = 0; i < clean_p.data.size(); ++i) clean_p.data[i] += bright.data[i];
  }
  const double sp = stddev(clean_p);
  out.phase = clean_p;
  for (float& v : out.phase.data) v = static_cast<float>(v + o.phase_offset + o.noise * sp * rng.normal());

  // DIC with a polynomial bias.
  Image clean_d = apply_kernel(dic_kernel(o.dic), best, device);
  const double sd = stddev(clean_d);
  double coef[6];
  for (double& c : coef) c = rng.normal();
  Image bias(1, H, W);
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      const double x = 2.0 * j / (W - 1) - 1.0, y = 2.0 * i / (H - 1) - 1.0;
      bias.at(0, i, j) =
          static_cast<float>(coef[0] + coef[1] * x + coef[2] * y + coef[3] * x * x + coef[4] * x * y + coef[5] * y * y);
    }
  const double sb = stddev(bias);
  out.dic = clean_d;
  for (size_t i = 0; i < out.dic.data.size(); ++i)
    out.dic.data[i] = static_cast<float>(clean_d.data[i] + (sb > 0 ? o.dic_bias * sd * bias.data[i] / sb : 0.0) +
                                         o.noise * sd * rng.normal());
  if (o.shift_dy != 0 || o.shift_dx != 0) out.dic = shift_image(out.dic, o.shift_dy, o.shift_dx);
  return out;
}

}  // namespace unet::restore
