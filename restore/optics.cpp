// The imaging models of the co-restoration (phase-contrast airy kernel, DIC derivative of Gaussian,
// their cross-correlations), applying them on a device, and the preprocessing of the raw images.
// See restore/restore.h and docs/restore.md.
#include "restore/restore.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/backend.h"
#include "restore/detail.h"
#include "restore/ops.h"

namespace unet::restore {

using namespace detail;

// ---- kernels ---------------------------------------------------------------------------------------

Kernel airy_pattern(const PhaseOptics& o) {
  UNET_CHECK(o.radius >= 1, "phase kernel: radius must be >= 1");
  UNET_CHECK(o.W_um > 0 && o.W_um < o.R_um, "phase kernel: need 0 < W < R (ring width and outer radius)");
  const int n = 2 * o.radius + 1;
  std::vector<double> m(static_cast<size_t>(n) * n);
  for (int dy = -o.radius; dy <= o.radius; ++dy)
    for (int dx = -o.radius; dx <= o.radius; ++dx) {
      const double r = std::sqrt(static_cast<double>(dy * dy + dx * dx)) * o.scale();
      m[static_cast<size_t>(dy + o.radius) * n + (dx + o.radius)] =
          airy_term(o.R_um, r) - airy_term(o.R_um - o.W_um, r);
    }
  const double s = spectral_norm(m, n, n);
  UNET_CHECK(s > 0.0, "phase kernel: the airy pattern is zero");
  Kernel k(n, n);
  for (size_t i = 0; i < m.size(); ++i) k.taps[i] = static_cast<float>(m[i] / s);
  return k;
}

Kernel phase_kernel(const PhaseOptics& o) {
  Kernel k = airy_pattern(o);
  k.ref(0, 0) -= 1.0f;
  drop_small(k, o.drop);
  return k;
}

Kernel phase_retardation_kernel(const PhaseOptics& o, double theta, double zeta) {
  Kernel a = airy_pattern(o);
  const double c = zeta * std::cos(theta) - std::sin(theta);
  Kernel k(a.h, a.w);
  for (size_t i = 0; i < a.taps.size(); ++i) k.taps[i] = static_cast<float>(-c * a.taps[i]);
  k.ref(0, 0) -= static_cast<float>(std::sin(theta));
  drop_small(k, o.drop);
  return k;
}

Kernel dic_kernel(const DicOptics& o) {
  UNET_CHECK(o.size >= 3 && o.size % 2 == 1, "DIC kernel: size must be odd and >= 3, got ", o.size);
  UNET_CHECK(o.sigma > 0, "DIC kernel: sigma must be > 0");
  Kernel k(o.size, o.size);
  const int r = o.size / 2;
  const double c = std::cos(o.theta), s = std::sin(o.theta);
  for (int y = -r; y <= r; ++y)
    for (int x = -r; x <= r; ++x)
      k.ref(y, x) = static_cast<float>(-(x * c + y * s) * std::exp(-(x * x + y * y) / (o.sigma * o.sigma)));
  drop_relative(k, kTinyTap);
  return k;
}

Kernel cross_correlation(const Kernel& a, const Kernel& b) {
  Kernel c(2 * (a.rh() + b.rh()) + 1, 2 * (a.rw() + b.rw()) + 1);
  for (int ty = -c.rh(); ty <= c.rh(); ++ty)
    for (int tx = -c.rw(); tx <= c.rw(); ++tx) {
      double s = 0.0;
      for (int dy = -a.rh(); dy <= a.rh(); ++dy)
        for (int dx = -a.rw(); dx <= a.rw(); ++dx) s += static_cast<double>(a.at(dy, dx)) * b.at(dy + ty, dx + tx);
      c.ref(ty, tx) = static_cast<float>(s);
    }
  drop_relative(c, kTinyTap);
  return c;
}

bool even_along_axes(const Kernel& k, float tol) {
  for (int dy = -k.rh(); dy <= k.rh(); ++dy)
    for (int dx = -k.rw(); dx <= k.rw(); ++dx) {
      const float v = k.at(dy, dx);
      if (std::abs(v - k.at(-dy, dx)) > tol || std::abs(v - k.at(dy, -dx)) > tol) return false;
    }
  return true;
}

namespace {
Image apply_any(const Kernel& k, const Image& x, Device device, bool adjoint) {
  Tensor xt = Tensor::from_vector({x.channels, x.height, x.width}, x.data).to(device);
  Tensor kt = kernel_tensor(k, device), y;
  if (adjoint) rops::stencil2d_adjoint(xt, kt, y);
  else rops::stencil2d(xt, kt, y);
  Image out(x.channels, x.height, x.width);
  out.data = y.to_vector();
  return out;
}
}  // namespace

Image apply_kernel(const Kernel& k, const Image& x, Device device) { return apply_any(k, x, device, false); }
Image apply_adjoint(const Kernel& k, const Image& y, Device device) { return apply_any(k, y, device, true); }

// ---- preprocessing -----------------------------------------------------------------------------------

Image fit_background(const Image& g, std::vector<double>* coefficients) {
  UNET_CHECK(g.channels == 1 && g.height >= 3 && g.width >= 3, "background fit: need a 1-channel image of >= 3x3");
  const int H = g.height, W = g.width;
  auto basis = [&](int i, int j, double* phi) {
    const double x = 2.0 * j / (W - 1) - 1.0, y = 2.0 * i / (H - 1) - 1.0;
    phi[0] = 1.0;
    phi[1] = x;
    phi[2] = y;
    phi[3] = x * x;
    phi[4] = x * y;
    phi[5] = y * y;
  };
  double A[6][7] = {};
  double phi[6];
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      basis(i, j, phi);
      const double v = g.at(0, i, j);
      for (int r = 0; r < 6; ++r) {
        for (int c = 0; c < 6; ++c) A[r][c] += phi[r] * phi[c];
        A[r][6] += phi[r] * v;
      }
    }
  // Gaussian elimination with partial pivoting on the 6x6 normal equations.
  for (int c = 0; c < 6; ++c) {
    int p = c;
    for (int r = c + 1; r < 6; ++r)
      if (std::abs(A[r][c]) > std::abs(A[p][c])) p = r;
    for (int k = 0; k < 7; ++k) std::swap(A[c][k], A[p][k]);
    UNET_CHECK(std::abs(A[c][c]) > 1e-12, "background fit: singular normal equations");
    for (int r = 0; r < 6; ++r) {
      if (r == c) continue;
      const double f = A[r][c] / A[c][c];
      for (int k = c; k < 7; ++k) A[r][k] -= f * A[c][k];
    }
  }
  double coef[6];
  for (int r = 0; r < 6; ++r) coef[r] = A[r][6] / A[r][r];
  if (coefficients) coefficients->assign(coef, coef + 6);
  Image s = plane_like(g);
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      basis(i, j, phi);
      double v = 0.0;
      for (int r = 0; r < 6; ++r) v += coef[r] * phi[r];
      s.at(0, i, j) = static_cast<float>(v);
    }
  return s;
}

Image remove_background(const Image& g) {
  Image s = fit_background(g);
  Image out = g;
  for (size_t i = 0; i < out.data.size(); ++i) out.data[i] -= s.data[i];
  return out;
}

double standardise(Image& g) {
  double m = 0.0, s = 0.0;
  for (float v : g.data) m += v;
  m /= static_cast<double>(g.data.size());
  for (float v : g.data) s += (v - m) * (v - m);
  s = std::sqrt(s / static_cast<double>(g.data.size()));
  UNET_CHECK(s > 0.0, "cannot scale a constant image to unit standard deviation");
  for (float& v : g.data) v = static_cast<float>(v / s);
  return s;
}

}  // namespace unet::restore
