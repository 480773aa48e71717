// The Fourier side of the co-restoration: FFT of any length, phase-correlation registration of the
// pair, and the closed-form initialisation. See restore/restore.h and docs/restore.md.
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

// ---- FFT -----------------------------------------------------------------------------------------------

namespace {
void fft_pow2(std::vector<cd>& a, bool inverse) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = 2.0 * kPi / static_cast<double>(len) * (inverse ? 1.0 : -1.0);
    const cd wl(std::cos(ang), std::sin(ang));
    for (size_t i = 0; i < n; i += len) {
      cd w(1.0, 0.0);
      for (size_t k = 0; k < len / 2; ++k) {
        const cd u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
        w *= wl;
      }
    }
  }
}
}  // namespace

// Unscaled DFT X_k = sum_j a_j exp(-+ 2 pi i jk / n); Bluestein: jk = (j^2 + k^2 - (k-j)^2) / 2 turns it
// into a convolution with the chirp exp(+- pi i m^2 / n), done by power-of-two FFTs.
void fft(std::vector<cd>& a, bool inverse) {
  const size_t n = a.size();
  if (n <= 1) return;
  if ((n & (n - 1)) == 0) {
    fft_pow2(a, inverse);
  } else {
    size_t m = 1;
    while (m < 2 * n - 1) m <<= 1;
    const double sgn = inverse ? 1.0 : -1.0;
    std::vector<cd> w(n);
    for (size_t k = 0; k < n; ++k) {
      const unsigned long long k2 = (static_cast<unsigned long long>(k) * k) % (2ull * n);
      const double ang = sgn * kPi * static_cast<double>(k2) / static_cast<double>(n);
      w[k] = cd(std::cos(ang), std::sin(ang));
    }
    std::vector<cd> x(m, cd(0, 0)), y(m, cd(0, 0));
    for (size_t k = 0; k < n; ++k) x[k] = a[k] * w[k];
    y[0] = std::conj(w[0]);
    for (size_t k = 1; k < n; ++k) y[k] = y[m - k] = std::conj(w[k]);
    fft_pow2(x, false);
    fft_pow2(y, false);
    for (size_t k = 0; k < m; ++k) x[k] *= y[k];
    fft_pow2(x, true);
    for (size_t k = 0; k < n; ++k) a[k] = x[k] / static_cast<double>(m) * w[k];
  }
  if (inverse)
    for (cd& v : a) v /= static_cast<double>(n);
}

void fft2(std::vector<cd>& a, int h, int w, bool inverse) {
  UNET_CHECK(a.size() == static_cast<size_t>(h) * w, "fft2: size mismatch");
  std::vector<cd> line(static_cast<size_t>(w));
  for (int i = 0; i < h; ++i) {
    std::copy(a.begin() + static_cast<ptrdiff_t>(i) * w, a.begin() + static_cast<ptrdiff_t>(i + 1) * w, line.begin());
    fft(line, inverse);
    std::copy(line.begin(), line.end(), a.begin() + static_cast<ptrdiff_t>(i) * w);
  }
  line.resize(static_cast<size_t>(h));
  for (int j = 0; j < w; ++j) {
    for (int i = 0; i < h; ++i) line[i] = a[static_cast<size_t>(i) * w + j];
    fft(line, inverse);
    for (int i = 0; i < h; ++i) a[static_cast<size_t>(i) * w + j] = line[i];
  }
}

// ---- registration ------------------------------------------------------------------------------------

Shift phase_correlation(const Image& ref, const Image& mov) {
  UNET_CHECK(ref.channels == 1 && mov.channels == 1 && ref.height == mov.height && ref.width == mov.width,
             "phase correlation: need two 1-channel images of one size");
  const int H = ref.height, W = ref.width;
  auto windowed = [&](const Image& g) {
    double m = 0.0;
    for (float v : g.data) m += v;
    m /= static_cast<double>(g.data.size());
    std::vector<cd> a(static_cast<size_t>(H) * W);
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        const double wy = 0.5 - 0.5 * std::cos(2.0 * kPi * (i + 0.5) / H);
        const double wx = 0.5 - 0.5 * std::cos(2.0 * kPi * (j + 0.5) / W);
        a[static_cast<size_t>(i) * W + j] = (g.at(0, i, j) - m) * wy * wx;
      }
    fft2(a, H, W, false);
    return a;
  };
  std::vector<cd> A = windowed(ref), B = windowed(mov);
  for (size_t k = 0; k < A.size(); ++k) {
    const cd c = A[k] * std::conj(B[k]);
    const double mag = std::abs(c);
    A[k] = mag > 1e-300 ? c / mag : cd(0, 0);
  }
  fft2(A, H, W, true);
  Shift best;
  best.peak = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      const double v = A[static_cast<size_t>(i) * W + j].real();
      if (v > best.peak) {
        best.peak = v;
        best.dy = i >= (H + 1) / 2 ? i - H : i;
        best.dx = j >= (W + 1) / 2 ? j - W : j;
      }
    }
  return best;
}

Image shift_image(const Image& g, int dy, int dx) {
  Image out(g.channels, g.height, g.width);
  for (int c = 0; c < g.channels; ++c)
    for (int i = 0; i < g.height; ++i)
      for (int j = 0; j < g.width; ++j) out.at(c, i, j) = g.at(c, mirror(i - dy, g.height), mirror(j - dx, g.width));
  return out;
}

// ---- closed form ------------------------------------------------------------------------------------

Image closed_form(const std::vector<FourierTerm>& terms, double ws, double eps) {
  UNET_CHECK(!terms.empty() && terms[0].g, "closed form: no observation");
  const int H = terms[0].g->height, W = terms[0].g->width, EH = 2 * H, EW = 2 * W;
  const size_t n = static_cast<size_t>(EH) * EW;
  // The kernel's transfer function for y[p] = sum_d h(d) x[p + d]: FFT of the array with h(d) at -d.
  auto transfer = [&](const Kernel& h) {
    std::vector<cd> a(n, cd(0, 0));
    for (int dy = -h.rh(); dy <= h.rh(); ++dy)
      for (int dx = -h.rw(); dx <= h.rw(); ++dx) {
        const int u = ((-dy) % EH + EH) % EH, v = ((-dx) % EW + EW) % EW;
        a[static_cast<size_t>(u) * EW + v] += h.at(dy, dx);
      }
    fft2(a, EH, EW, false);
    return a;
  };
  std::vector<cd> num(n, cd(0, 0));
  std::vector<double> den(n, eps);
  for (const FourierTerm& t : terms) {
    UNET_CHECK(t.g && t.g->height == H && t.g->width == W, "closed form: images of different sizes");
    std::vector<cd> G(n);
    for (int u = 0; u < EH; ++u)
      for (int v = 0; v < EW; ++v) G[static_cast<size_t>(u) * EW + v] = t.g->at(0, mirror(u, H), mirror(v, W));
    fft2(G, EH, EW, false);
    std::vector<cd> D = transfer(t.h);
    for (size_t k = 0; k < n; ++k) {
      num[k] += t.weight * std::conj(D[k]) * G[k];
      den[k] += t.weight * std::norm(D[k]);
    }
  }
  for (int u = 0; u < EH; ++u)
    for (int v = 0; v < EW; ++v) {
      const double s = 2.0 * std::cos(2.0 * kPi * u / EH) + 2.0 * std::cos(2.0 * kPi * v / EW) - 4.0;
      den[static_cast<size_t>(u) * EW + v] += ws * s * s;
    }
  for (size_t k = 0; k < n; ++k) num[k] /= den[k];
  fft2(num, EH, EW, true);
  Image f(1, H, W);
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) f.at(0, i, j) = static_cast<float>(num[static_cast<size_t>(i) * EW + j].real());
  return f;
}

}  // namespace unet::restore
