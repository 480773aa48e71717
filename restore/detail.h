// Helpers shared by the restoration's translation units (optics.cpp, fourier.cpp, solver.cpp); not
// part of the module's interface.
#pragma once
#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "restore/restore.h"

namespace unet::restore::detail {

constexpr double kPi = 3.14159265358979323846;
using cd = std::complex<double>;

inline int mirror(int t, int n) {
  const int p = 2 * n;
  int u = t % p;
  if (u < 0) u += p;
  return u < n ? u : p - 1 - u;
}

inline Image plane_like(const Image& g, float v = 0.0f) { return Image(1, g.height, g.width, v); }

inline double sum_sq(const Image& a) {
  double s = 0.0;
  for (float v : a.data) s += static_cast<double>(v) * v;
  return s;
}

inline Tensor to_device(const Image& img, Device d) {
  return Tensor::from_vector({1, img.height, img.width}, img.data).to(d);
}
inline Tensor kernel_tensor(const Kernel& k, Device d) { return Tensor::from_vector({k.h, k.w}, k.taps).to(d); }
inline Image to_image(const Tensor& t, int h, int w) {
  Image out(1, h, w);
  out.data = t.to_vector();
  return out;
}

// Drops taps with |value| <= drop (as the reference code keeps only |k| > 0.01).
inline void drop_small(Kernel& k, double drop) {
  for (float& v : k.taps)
    if (std::abs(v) <= drop) v = 0.0f;
}

// Zeroes taps below rel * max |tap|: far below float resolution relative to the kernel's sum, and their
// products with small pixel values are denormal floats, whose arithmetic is very slow on CPUs.
constexpr double kTinyTap = 1e-6;
inline void drop_relative(Kernel& k, double rel) {
  float mx = 0.0f;
  for (float v : k.taps) mx = std::max(mx, std::abs(v));
  for (float& v : k.taps)
    if (std::abs(v) < rel * mx) v = 0.0f;
}

// The largest singular value of a rows x cols matrix (power iteration on M^T M, in double).
inline double spectral_norm(const std::vector<double>& m, int rows, int cols) {
  std::vector<double> v(static_cast<size_t>(cols), 1.0), u(static_cast<size_t>(rows));
  double sigma = 0.0;
  for (int it = 0; it < 500; ++it) {
    for (int i = 0; i < rows; ++i) {
      double s = 0.0;
      for (int j = 0; j < cols; ++j) s += m[static_cast<size_t>(i) * cols + j] * v[j];
      u[i] = s;
    }
    std::vector<double> nv(static_cast<size_t>(cols), 0.0);
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) nv[j] += m[static_cast<size_t>(i) * cols + j] * u[i];
    double n = 0.0;
    for (double x : nv) n += x * x;
    n = std::sqrt(n);
    if (n == 0.0) return 0.0;
    for (int j = 0; j < cols; ++j) v[j] = nv[j] / n;
    const double s = std::sqrt(n);  // ||M^T M v_old|| -> sigma^2
    if (std::abs(s - sigma) <= 1e-14 * s) {
      sigma = s;
      break;
    }
    sigma = s;
  }
  return sigma;
}

// R J1(2 pi R r) / r, with its limit pi R^2 at r = 0.
inline double airy_term(double R, double r) {
  if (r == 0.0) return kPi * R * R;
  return R * std::cyl_bessel_j(1.0, 2.0 * kPi * R * r) / r;
}

}  // namespace unet::restore::detail
