// restore/: the stencils and both imaging models pass the dot-product (adjoint) test, the
// shift-invariant normal operators are what they claim, the multiplicative update decreases the
// objective monotonically, the solver recovers a known f from synthetic phase contrast + DIC pairs, the
// joint restoration beats each single modality, the polynomial background and a known translation are
// recovered, and Su et al.'s multi-kernel model tells bright (mitotic) from dark cells.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <cstdio>
#include <vector>

#include "engine/rng.h"
#include "tests/op_table.h"
#include "restore/restore.h"
#include "restore/synthetic_cells.h"

using namespace unet;
using namespace unet::restore;

namespace {

Image random_image(int h, int w, uint64_t seed) {
  Image img(1, h, w);
  img.data = test::random_values(static_cast<int64_t>(h) * w, seed);
  return img;
}

Kernel random_kernel(int kh, int kw, uint64_t seed) {
  Kernel k(kh, kw);
  k.taps = test::random_values(static_cast<int64_t>(kh) * kw, seed);
  return k;
}

double dot(const Image& a, const Image& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.data.size(); ++i) s += static_cast<double>(a.data[i]) * b.data[i];
  return s;
}

double norm(const Image& a) { return std::sqrt(dot(a, a)); }

// <H x, y> and <x, H^T y> for random x, y: |difference| / (||H x|| ||y||), the scale of float rounding in
// either inner product (the products themselves may nearly cancel for random signs).
double adjoint_gap(const Kernel& k, int h, int w, uint64_t seed) {
  Image x = random_image(h, w, seed), y = random_image(h, w, seed + 1);
  const Image hx = apply_kernel(k, x);
  const double lhs = dot(hx, y), rhs = dot(x, apply_adjoint(k, y));
  return std::abs(lhs - rhs) / std::max(norm(hx) * norm(y), 1e-30);
}

// The largest |a - b| over the pixels at least `margin` from every border.
double max_diff_interior(const Image& a, const Image& b, int margin) {
  double m = 0.0;
  for (int i = margin; i < a.height - margin; ++i)
    for (int j = margin; j < a.width - margin; ++j) m = std::max(m, std::abs(double(a.at(0, i, j)) - b.at(0, i, j)));
  return m;
}

double max_abs(const Image& a) {
  double m = 0.0;
  for (float v : a.data) m = std::max(m, std::abs(double(v)));
  return m;
}

Kernel flip(const Kernel& k) {
  Kernel f(k.h, k.w);
  for (int dy = -k.rh(); dy <= k.rh(); ++dy)
    for (int dx = -k.rw(); dx <= k.rw(); ++dx) f.ref(dy, dx) = k.at(-dy, -dx);
  return f;
}

bool non_increasing(const std::vector<double>& e, double rel_tol, size_t* where) {
  for (size_t i = 1; i < e.size(); ++i)
    if (e[i] > e[i - 1] + rel_tol * std::abs(e[i - 1])) {
      *where = i;
      return false;
    }
  return true;
}

}  // namespace

TEST_CASE("stencil2d_adjoint is the exact transpose of the mirror-boundary stencil2d", "[restore][adjoint]") {
  struct Case {
    int h, w, kh, kw;
  };
  // odd sizes, a kernel as large as the image, one larger (the reflection folds several times)
  for (Case c : {Case{13, 11, 5, 3}, Case{20, 17, 13, 13}, Case{9, 7, 25, 25}, Case{96, 96, 25, 25}}) {
    INFO(c.h << "x" << c.w << " kernel " << c.kh << "x" << c.kw);
    CHECK(adjoint_gap(random_kernel(c.kh, c.kw, 7), c.h, c.w, 100) < 1e-6);
  }
}

TEST_CASE("with the mirror boundary the flipped-kernel stencil is the adjoint only in the interior",
          "[restore][adjoint]") {
  // The DIC kernel is odd, not even along each axis: the flipped stencil differs at the border.
  const Kernel d = dic_kernel(DicOptics{});
  Image y = random_image(40, 40, 3);
  Image exact = apply_adjoint(d, y), flipped = apply_kernel(flip(d), y);
  CHECK(max_diff_interior(exact, flipped, d.rh()) < 1e-5 * max_abs(exact));
  CHECK(max_diff_interior(exact, flipped, 0) > 1e-3 * max_abs(exact));
  // An even kernel (the phase kernel) gives a symmetric stencil: flipped == adjoint everywhere.
  const Kernel hp = phase_kernel(PhaseOptics{});
  CHECK(even_along_axes(hp));
  CHECK(max_diff_interior(apply_adjoint(hp, y), apply_kernel(hp, y), 0) < 1e-5 * max_abs(apply_kernel(hp, y)));
}

TEST_CASE("both imaging models pass the dot-product test", "[restore][adjoint]") {
  const Kernel hp = phase_kernel(PhaseOptics{}), hd = dic_kernel(DicOptics{});
  const double gp = adjoint_gap(hp, 96, 96, 11), gd = adjoint_gap(hd, 96, 96, 13);
  std::printf("dot-product test: |<Hx,y> - <x,H'y>| / (|Hx| |y|): phase contrast %.2e, DIC %.2e\n", gp, gd);
  CHECK(gp < 1e-6);
  CHECK(gd < 1e-6);
  // Su et al.'s retardation kernels too.
  for (double th : {0.0, 1.0, 2.5, 4.0})
    CHECK(adjoint_gap(phase_retardation_kernel(PhaseOptics{}, th, 0.8), 48, 40, 17) < 1e-6);
}

TEST_CASE("H^T H is the mirror stencil of xcorr(h, h): everywhere for the phase kernel, inside for DIC",
          "[restore][normal]") {
  Image x = random_image(48, 48, 21);
  const Kernel hp = phase_kernel(PhaseOptics{});
  const Image nn_p = apply_adjoint(hp, apply_kernel(hp, x)), st_p = apply_kernel(cross_correlation(hp, hp), x);
  CHECK(max_diff_interior(nn_p, st_p, 0) < 1e-5 * max_abs(nn_p));
  const Kernel hd = dic_kernel(DicOptics{});
  const Image nn_d = apply_adjoint(hd, apply_kernel(hd, x)), st_d = apply_kernel(cross_correlation(hd, hd), x);
  CHECK(max_diff_interior(nn_d, st_d, 2 * hd.rh()) < 1e-5 * max_abs(nn_d));
  CHECK(max_diff_interior(nn_d, st_d, 0) > 1e-3 * max_abs(nn_d));  // theta = pi/4: not at the border
  // theta = 0: even along y, odd along x, and then the stencil is exact everywhere too.
  DicOptics d0;
  d0.theta = 0.0;
  const Kernel h0 = dic_kernel(d0);
  const Image nn_0 = apply_adjoint(h0, apply_kernel(h0, x)), st_0 = apply_kernel(cross_correlation(h0, h0), x);
  CHECK(max_diff_interior(nn_0, st_0, 0) < 1e-5 * max_abs(nn_0));
}

TEST_CASE("the phase-contrast kernel: airy pattern with a unit spectral norm, small taps dropped", "[restore][model]") {
  PhaseOptics o;
  const Kernel a = airy_pattern(o), h = phase_kernel(o);
  REQUIRE(a.h == 2 * o.radius + 1);
  CHECK(a.at(0, 0) > 0.0f);
  CHECK(h.at(0, 0) == Approx(a.at(0, 0) - 1.0f));  // dark cells: a negative centre
  int dropped = 0;
  for (float v : h.taps) {
    CHECK((v == 0.0f || std::abs(v) > o.drop));
    dropped += v == 0.0f;
  }
  std::printf("phase kernel %dx%d: centre %.3f, %d taps dropped (|v| <= %.2f)\n", h.h, h.w, h.at(0, 0), dropped,
              o.drop);
  // Su's kernel at theta = pi/2 is the single phase kernel.
  const Kernel s = phase_retardation_kernel(o, 1.5707963267948966, 0.8);
  for (size_t i = 0; i < h.taps.size(); ++i) CHECK(s.taps[i] == Approx(h.taps[i]).margin(1e-6));
  // In pixel units (r not scaled) R = 4000 makes the pattern a delta and the kernel vanish.
  PhaseOptics px = o;
  px.lambda_um = 1.0;
  px.focal_mm = 0.001;
  px.pixel_um = 1.0;
  for (float v : phase_kernel(px).taps) CHECK(v == 0.0f);
}

TEST_CASE("FFT of any length matches the direct DFT", "[restore][fft]") {
  for (int n : {1, 2, 12, 16, 97}) {
    std::vector<std::complex<double>> a(static_cast<size_t>(n));
    std::vector<float> v = test::random_values(2 * n, 5 + n);
    for (int i = 0; i < n; ++i) a[i] = {v[2 * i], v[2 * i + 1]};
    std::vector<std::complex<double>> f = a;
    fft(f, false);
    double err = 0.0;
    for (int k = 0; k < n; ++k) {
      std::complex<double> s = 0;
      for (int j = 0; j < n; ++j) s += a[j] * std::polar(1.0, -2.0 * 3.14159265358979323846 * j * k / n);
      err = std::max(err, std::abs(s - f[k]));
    }
    fft(f, true);
    double back = 0.0;
    for (int i = 0; i < n; ++i) back = std::max(back, std::abs(f[i] - a[i]));
    INFO("n = " << n);
    CHECK(err < 1e-9 * n);
    CHECK(back < 1e-12 * n);
  }
}

TEST_CASE("polynomial background removal recovers a known surface", "[restore][background]") {
  const int H = 64, W = 80;
  const double c[6] = {3.0, -0.7, 0.4, 1.2, -0.5, 0.8};
  Image surf(1, H, W), g(1, H, W);
  Rng rng(9);
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      const double x = 2.0 * j / (W - 1) - 1.0, y = 2.0 * i / (H - 1) - 1.0;
      surf.at(0, i, j) = static_cast<float>(c[0] + c[1] * x + c[2] * y + c[3] * x * x + c[4] * x * y + c[5] * y * y);
      g.at(0, i, j) = surf.at(0, i, j) + 0.05f * rng.normal();
    }
  std::vector<double> coef;
  Image fit = fit_background(g, &coef);
  REQUIRE(coef.size() == 6);
  for (int k = 0; k < 6; ++k) CHECK(coef[k] == Approx(c[k]).margin(0.02));
  double err = 0.0;
  for (size_t i = 0; i < fit.data.size(); ++i) err = std::max(err, std::abs(double(fit.data[i]) - surf.data[i]));
  std::printf("background fit: max surface error %.4f (noise sd 0.05)\n", err);
  CHECK(err < 0.03);
  // Noise-free: exact.
  Image exact = fit_background(surf);
  for (size_t i = 0; i < exact.data.size(); ++i) CHECK(exact.data[i] == Approx(surf.data[i]).margin(1e-5));
}

TEST_CASE("phase correlation of the pair recovers a known translation", "[restore][registration]") {
  SyntheticOptions so;
  so.shift_dy = 3;
  so.shift_dx = -2;
  SyntheticSample s = make_synthetic(so);
  RestoreOptions o;
  o.solver.iterations = 0;
  RestoreResult r = restore_pair(s.phase, s.dic, o);
  std::printf("registration: DIC shifted by (3, -2), found the correction (%d, %d), peak %.2f\n", r.shift.dy,
              r.shift.dx, r.shift.peak);
  CHECK(r.shift.dy == -3);
  CHECK(r.shift.dx == 2);
  // and shift_image undoes shift_image
  Image back = shift_image(shift_image(s.f, 3, -2), -3, 2);
  CHECK(max_diff_interior(back, s.f, 5) == 0.0);
}

TEST_CASE("the objective decreases monotonically under the multiplicative update", "[restore][monotone][slow]") {
  SyntheticOptions so;
  so.height = so.width = 64;
  so.cells = 3;
  so.mitotic = 1;
  SyntheticSample s = make_synthetic(so);
  struct Run {
    Mode mode;
    int kernels;
  };
  for (Run run : {Run{Mode::kPhase, 0}, Run{Mode::kDic, 0}, Run{Mode::kJoint, 0}, Run{Mode::kJoint, 4}}) {
    RestoreOptions o;
    o.mode = run.mode;
    o.su_kernels = run.kernels;
    o.solver.iterations = 120;
    RestoreResult r = restore_pair(s.phase, s.dic, o);
    const std::vector<double>& e = r.sol.objective;
    REQUIRE(e.size() == 121);
    size_t at = 0;
    const bool mono = non_increasing(e, 1e-6, &at);
    std::printf("objective %-5s K=%d: %.4g -> %.4g (after 10: %.4g)%s\n", mode_name(run.mode), std::max(run.kernels, 1),
                e.front(), e.back(), e[10], mono ? "" : "  NOT MONOTONE");
    INFO(mode_name(run.mode) << " K=" << run.kernels << ": E[" << at << "] = " << e[at] << " > E[" << at - 1
                             << "] = " << (at ? e[at - 1] : 0.0));
    CHECK(mono);
    CHECK(e.back() < 0.8 * e.front());
  }
}

TEST_CASE("the solver recovers f from synthetic data, and the joint restoration beats each modality",
          "[restore][synthetic][slow]") {
  // Relative error after the least-squares gain (the unit-std scaling removes the absolute scale).
  double sum_p = 0, sum_d = 0, sum_j = 0;
  const int seeds = 2;
  for (int seed = 1; seed <= seeds; ++seed) {
    SyntheticOptions so;
    so.seed = static_cast<uint64_t>(seed);
    SyntheticSample s = make_synthetic(so);
    double err[3];
    int m = 0;
    for (Mode mode : {Mode::kPhase, Mode::kDic, Mode::kJoint}) {
      RestoreOptions o;
      o.mode = mode;
      RestoreResult r = restore_pair(s.phase, s.dic, o);
      err[m++] = relative_error(r.sol.total, s.f);
    }
    std::printf(
        "synthetic 96x96 seed %d (noise 5%%, 300 iterations): relative error phase %.4f, DIC %.4f, joint %.4f\n", seed,
        err[0], err[1], err[2]);
    CHECK(err[2] < err[0]);
    CHECK(err[2] < err[1]);
    CHECK(err[2] < 0.10);
    CHECK(err[0] < 0.15);
    sum_p += err[0];
    sum_d += err[1];
    sum_j += err[2];
  }
  std::printf("mean over %d seeds: phase %.4f, DIC %.4f, joint %.4f\n", seeds, sum_p / seeds, sum_d / seeds,
              sum_j / seeds);
}

TEST_CASE("Su et al.'s multi-kernel model tells bright (mitotic) cells from dark ones", "[restore][su][slow]") {
  SyntheticOptions so;
  so.mitotic = 2;
  so.cells = 4;
  SyntheticSample s = make_synthetic(so);
  RestoreOptions o;
  o.su_kernels = 4;
  o.solver.iterations = 200;
  RestoreResult r = restore_pair(s.phase, s.dic, o);
  double bright_ok = 0, bright_n = 0, dark_ok = 0, dark_n = 0;
  for (size_t i = 0; i < s.f.data.size(); ++i) {
    if (s.f_bright.data[i] > 0) {
      bright_n += 1;
      bright_ok += r.polarity.data[i] == 2.0f;
    } else if (s.f.data[i] > 0) {
      dark_n += 1;
      dark_ok += r.polarity.data[i] == 1.0f;
    }
  }
  RestoreOptions single = o;
  single.su_kernels = 0;
  RestoreResult r1 = restore_pair(s.phase, s.dic, single);
  const double e4 = relative_error(r.sol.total, s.f), e1 = relative_error(r1.sol.total, s.f);
  std::printf(
      "Su model (4 kernels): bright-cell pixels classed bright %.3f, dark-cell pixels classed dark %.3f; "
      "relative error %.4f (single kernel %.4f)\n",
      bright_ok / bright_n, dark_ok / dark_n, e4, e1);
  REQUIRE(bright_n > 0);
  CHECK(bright_ok / bright_n > 0.8);
  CHECK(dark_ok / dark_n > 0.8);
  CHECK(e4 < e1);
}
