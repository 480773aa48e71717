// Co-restoration of phase contrast and DIC images of the same cells into one artifact-free image f
// (after "Co-restoring Multimodal Microscopy Images", Li and Yin; the method below rebuilds the two
// published imaging models it builds on; docs/restore.md says what is known and what is our choice).
//
//   phase contrast (Yin, Kanade and Chen, MedIA 2012):  g_p = H_p f,   H_p = airy_n - delta
//   DIC            (Li and Kanade, IPMI 2009):         g_d = k H_d f, H_d = d_theta (a derivative of
//                                                      a Gaussian along the shear direction theta)
// after a least-squares 2nd-order polynomial background is removed from each image and each is scaled
// to unit standard deviation; k is the DIC gain relative to the phase image (estimated, see below).
// The restoration minimises, over f >= 0 (one or, for Su et al.'s model, K channels f_k),
//
//   E(f) = 1/2 ||sum_k H_k f_k - g_p||^2 + lambda/2 ||k H_d sum_k f_k - g_d||^2
//        + w_s/2 sum_k f_k' L f_k + w_r w0 sum_{k,i} log(1 + f_k,i / gamma)
//
// with the non-negative multiplicative update of Sha, Saul and Lee. The reweighted L1 of the papers
// (w = w0 / (f + gamma), refreshed every iteration) is the tangent majoriser of the log term: each
// update decreases that majoriser, so E decreases monotonically (tests/test_restore.cpp checks it). L is
// the 8-neighbour graph Laplacian with weights exp(-d^2 / (2 tau^2)), d^2 the squared grey-level
// difference of the two neighbours summed over the images used. Every convolution and every
// iteration runs on the restoration kernels (restore/ops.h, restore/kernels/) on the chosen device.
//
// Boundaries: every convolution uses the half-sample mirror (edge pixel repeated). H^T is the exact
// transpose (stencil2d_adjoint). The phase term's H_k^T H_l is applied as the mirror stencil of
// c_kl = xcorr(h_k, h_l), split into c+ and c-: exact, because phase kernels are even along both axes.
// The DIC term's H_d^T H_d is not a stencil near the borders for an oblique shear, so it is applied
// exactly, split by the kernel's lobes (H_d = S(d+) - S(d-)). The background polynomials and the DIC
// gain are re-fitted by least squares every few iterations (exact minimisations over them).
#pragma once
#include <complex>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "unet/image.h"

namespace unet::restore {

// ---- kernels (host) ------------------------------------------------------------------------------
// An odd-sized 2-D kernel; taps[(a * w) + b] is the weight at offset (a - h/2, b - w/2) (row, column).
struct Kernel {
  int h = 0, w = 0;
  std::vector<float> taps;
  Kernel() = default;
  Kernel(int h_, int w_, float v = 0.0f) : h(h_), w(w_), taps(static_cast<size_t>(h_) * w_, v) {}
  int rh() const { return h / 2; }
  int rw() const { return w / 2; }
  // Weight at row offset dy, column offset dx (0 outside the support).
  float at(int dy, int dx) const {
    if (dy < -rh() || dy > rh() || dx < -rw() || dx > rw()) return 0.0f;
    return taps[static_cast<size_t>(dy + rh()) * w + (dx + rw())];
  }
  float& ref(int dy, int dx) { return taps[static_cast<size_t>(dy + rh()) * w + (dx + rw())]; }
};

// Phase-contrast optics. The airy pattern is evaluated at r = r_px * pixel_um / (lambda_um * F_um)
// with R, W in um: airy(r) = R J1(2 pi R r) / r - (R - W) J1(2 pi (R - W) r) / r.
// R, W, radius and lambda are the defaults seen in public reference code; pixel_um and focal_mm are
// OUR defaults (not from the papers), chosen so the central lobe spans about 2 px.
struct PhaseOptics {
  double R_um = 4000.0, W_um = 800.0;  // phase ring outer radius and width
  int radius = 5;                      // kernel support: (2 radius + 1)^2
  double pixel_um = 1.0, lambda_um = 0.55, focal_mm = 40.0;
  double drop = 0.01;  // taps with |value| <= drop are set to 0 (as the reference code)
  double scale() const { return pixel_um / (lambda_um * focal_mm * 1000.0); }
};
// The airy pattern divided by its spectral norm (largest singular value of the tap matrix), no drop.
Kernel airy_pattern(const PhaseOptics& o);
// H_p = airy_n - delta (the negated "delta minus airy", so dark cells restore to positive f), small taps
// dropped.
Kernel phase_kernel(const PhaseOptics& o);
// Su et al.'s phase-retardation kernel in the same sign convention: -(sin(theta) delta +
// (zeta cos(theta) - sin(theta)) airy_n), small taps dropped. theta = pi/2 gives phase_kernel().
Kernel phase_retardation_kernel(const PhaseOptics& o, double theta, double zeta);

// DIC: d(x, y) = -(x cos theta + y sin theta) exp(-(x^2 + y^2) / sigma^2) on a size x size grid,
// x the column offset (to the right), y the row offset (downwards). Taps below 1e-6 of the largest are
// set to 0 (below float resolution; kept, they make denormal arithmetic on the CPU).
struct DicOptics {
  double sigma = 1.0, theta = 0.7853981633974483;  // pi / 4
  int size = 13;
};
Kernel dic_kernel(const DicOptics& o);

// c(t) = sum_d a(d) b(d + t): the stencil of H_a^T H_b away from the borders (size: the sum of radii);
// taps below 1e-6 of the largest are set to 0, as for the DIC kernel.
Kernel cross_correlation(const Kernel& a, const Kernel& b);
// True when k(dy, dx) == k(-dy, dx) == k(dy, -dx) for all taps (then its mirror stencil is symmetric).
bool even_along_axes(const Kernel& k, float tol = 0.0f);

// The engine's stencil2d / stencil2d_adjoint on every channel of an Image, on `device`.
Image apply_kernel(const Kernel& k, const Image& x, Device device = Device::CPU);
Image apply_adjoint(const Kernel& k, const Image& y, Device device = Device::CPU);

// ---- preprocessing (host) ------------------------------------------------------------------------
// Least-squares fit of [1, x, y, x^2, xy, y^2] (x, y scaled to [-1, 1]) to a 1-channel image.
Image fit_background(const Image& g, std::vector<double>* coefficients = nullptr);
Image remove_background(const Image& g);
// Divides by the standard deviation (about the mean); returns it.
double standardise(Image& g);

// FFT of any length (radix-2, Bluestein's chirp-z for other lengths); the inverse divides by n.
void fft(std::vector<std::complex<double>>& a, bool inverse);
// Row-major h x w.
void fft2(std::vector<std::complex<double>>& a, int h, int w, bool inverse);

// Integer translation by phase correlation (Hann-windowed, mean removed): the shift (dy, dx) such that
// shift_image(mov, dy, dx) lines up with ref. peak = height of the correlation peak (1 = perfect).
struct Shift {
  int dy = 0, dx = 0;
  double peak = 0.0;
};
Shift phase_correlation(const Image& ref, const Image& mov);
// out(i, j) = g(m(i - dy), m(j - dx)) with the half-sample mirror m.
Image shift_image(const Image& g, int dy, int dx);

// The Fourier closed-form (Wiener-like) solution without the non-negativity constraint, on the mirror-
// extended 2H x 2W periodic domain (Yin, Ker and Kanade, IPMI 2011, generalised to several terms):
//   F = sum_t w_t conj(D_t) G_t / (sum_t w_t |D_t|^2 + w_s |S|^2 + eps),  S the 5-point Laplacian.
struct FourierTerm {
  const Image* g;
  Kernel h;
  double weight = 1.0;
};
Image closed_form(const std::vector<FourierTerm>& terms, double ws, double eps);

// ---- the solver -----------------------------------------------------------------------------------
enum class Mode { kPhase, kDic, kJoint };
const char* mode_name(Mode m);
Mode parse_mode(const std::string& s);  // "phase", "dic", "joint"

struct SolverOptions {
  double lambda = 1.0;  // weight of the DIC term (joint)
  double ws = 1.0;      // smoothness w_s
  double wr = 0.5;      // sparsity w_r
  double w0 = 1.0;      // L1 weight scale: w = w0 / (f + gamma)
  double gamma = 3.0;
  int iterations = 300;   // (the reference code uses 100; the joint problem converges more slowly)
  double eps = 1e-12;     // in the update's denominator
  double edge_tau = 0.0;  // Laplacian weight scale; 0 = sqrt(mean d^2 over all edges)
  bool closed_form_init = true;
  double cf_ws = 1e-2;  // closed-form initialisation: smoothness and eps
  double cf_eps = 1e-3;
  double init_floor = 0.05;  // f0 = max(F, 0) + floor * max(F) (the update cannot revive a zero)
  // Nuisance parameters, re-estimated every refit_every iterations by least squares on the residuals of
  // the current f (an exact minimisation of E over them, so E still decreases monotonically):
  double dic_gain = 0.0;       // k; 0 = estimate (first from the phase image's closed-form restoration)
  bool fit_background = true;  // a 2nd-order polynomial background per image, part of the model
  int refit_every = 10;
  Device device = Device::CPU;
  // Called with (iteration, E) for iteration 0 (the initial f) .. iterations (the result).
  std::function<void(int, double)> progress;
};

// The preprocessed observations and the model. phase_kernels: one per channel (empty: no phase term);
// has_dic: whether the DIC term is used (it ties all channels: g_d = k H_d sum_k f_k).
struct Problem {
  std::vector<Kernel> phase_kernels;
  Kernel phase_reference;  // single-kernel model for the closed-form start (empty: phase_kernels[0])
  Image gp;
  bool has_dic = false;
  Kernel dic;
  Image gd;
};

struct Solution {
  std::vector<Image> f;           // one per channel
  Image total;                    // sum of the channels
  std::vector<double> objective;  // E after 0..iterations updates
  double dic_gain = 1.0;
  Image gp, gd;                                             // the observations with the fitted backgrounds removed
  double rel_residual_phase = 0.0, rel_residual_dic = 0.0;  // ||H f - g|| / ||g|| (exact operators, gp/gd)
};

Solution solve(const Problem& p, const SolverOptions& o);

// ---- the whole pipeline ---------------------------------------------------------------------------
struct RestoreOptions {
  Mode mode = Mode::kJoint;
  PhaseOptics phase;
  DicOptics dic;
  SolverOptions solver;
  bool remove_background = true;
  bool register_pair = true;
  int max_shift = 0;   // largest accepted |dy|, |dx| of the registration (0 = a quarter of the size)
  int su_kernels = 0;  // 0: the single phase kernel; K >= 2: Su et al.'s K retardation kernels,
  double zeta = 0.8;   //     theta_k = 2 pi k / K (zeta: our default, not from the paper)
  double polarity_threshold = 0.1;
};

struct RestoreResult {
  Image gp, gd;  // the preprocessed (background-free, unit-std, registered) inputs
  Shift shift;   // applied to the DIC image
  double std_phase = 0.0, std_dic = 0.0;
  std::vector<double> thetas;  // Su: the kernels' retardations
  Solution sol;
  // Su: per pixel the channel with the largest f_k (dominant), and the cell class (polarity): 0 where the
  // total is at most polarity_threshold of its maximum (background), else 1 when the dominant kernel's
  // centre tap is negative (a dark, interphase cell) and 2 when it is positive (a bright, e.g. mitotic
  // or apoptotic, cell).
  Image dominant, polarity;
};

// phase / dic: raw 1-channel images (either may be empty when the mode does not use it).
RestoreResult restore_pair(const Image& phase, const Image& dic, const RestoreOptions& o);

// ---- evaluation helpers -----------------------------------------------------------------------------
// ||a est - truth|| / ||truth|| with the least-squares gain a = <est, truth> / <est, est> (the unit-std
// scaling removes the absolute intensity scale).
double relative_error(const Image& est, const Image& truth);

// A figure: the panels side by side (each scaled from its own min..max to black..white), a caption
// above each. RGB PNG.
void write_figure(const std::string& path, const std::vector<std::pair<std::string, Image>>& panels, int zoom = 2);

}  // namespace unet::restore
