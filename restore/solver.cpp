// The co-restoration solver: the non-negative multiplicative iteration on the restoration kernels
// (restore/ops.h), the whole pipeline from a raw pair, and the evaluation helpers. See restore/restore.h
// and docs/restore.md.
#include "restore/restore.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/backend.h"
#include "restore/detail.h"
#include "restore/ops.h"
#include "unet/io.h"

#include "stb_easy_font.h"

namespace unet::restore {

using namespace detail;

// ---- solver ---------------------------------------------------------------------------------------------

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kPhase:
      return "phase";
    case Mode::kDic:
      return "dic";
    case Mode::kJoint:
      return "joint";
  }
  return "?";
}

Mode parse_mode(const std::string& s) {
  if (s == "phase") return Mode::kPhase;
  if (s == "dic") return Mode::kDic;
  if (s == "joint") return Mode::kJoint;
  UNET_FAIL("--mode must be joint, phase or dic, got \"", s, "\"");
}

namespace {

// The polynomial background basis [1, x, y, x^2, xy, y^2] (x, y scaled to [-1, 1]) as 6 planes.
std::vector<std::vector<float>> poly_basis(int H, int W) {
  std::vector<std::vector<float>> b(6, std::vector<float>(static_cast<size_t>(H) * W));
  for (int i = 0; i < H; ++i)
    for (int j = 0; j < W; ++j) {
      const double x = W > 1 ? 2.0 * j / (W - 1) - 1.0 : 0.0, y = H > 1 ? 2.0 * i / (H - 1) - 1.0 : 0.0;
      const size_t p = static_cast<size_t>(i) * W + j;
      b[0][p] = 1.0f;
      b[1][p] = static_cast<float>(x);
      b[2][p] = static_cast<float>(y);
      b[3][p] = static_cast<float>(x * x);
      b[4][p] = static_cast<float>(x * y);
      b[5][p] = static_cast<float>(y * y);
    }
  return b;
}

// argmin_c ||y - sum_r c_r x_r||^2 by the normal equations (partial pivoting, double). Empty when singular.
std::vector<double> least_squares(const std::vector<const float*>& xs, const float* y, size_t n) {
  const size_t m = xs.size();
  std::vector<std::vector<double>> A(m, std::vector<double>(m + 1, 0.0));
  for (size_t r = 0; r < m; ++r) {
    for (size_t c = r; c < m; ++c) {
      double s = 0.0;
      for (size_t i = 0; i < n; ++i) s += static_cast<double>(xs[r][i]) * xs[c][i];
      A[r][c] = A[c][r] = s;
    }
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += static_cast<double>(xs[r][i]) * y[i];
    A[r][m] = s;
  }
  double scale = 0.0;
  for (size_t r = 0; r < m; ++r) scale = std::max(scale, std::abs(A[r][r]));
  for (size_t c = 0; c < m; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < m; ++r)
      if (std::abs(A[r][c]) > std::abs(A[p][c])) p = r;
    std::swap(A[c], A[p]);
    if (!(std::abs(A[c][c]) > 1e-12 * std::max(scale, 1e-300))) return {};
    for (size_t r = 0; r < m; ++r) {
      if (r == c) continue;
      const double f = A[r][c] / A[c][c];
      for (size_t k = c; k <= m; ++k) A[r][k] -= f * A[c][k];
    }
  }
  std::vector<double> coef(m);
  for (size_t r = 0; r < m; ++r) coef[r] = A[r][m] / A[r][r];
  return coef;
}

// Edge weights [1,4,H,W] (E, S, SE, SW): exp(-d^2 / (2 tau^2)), d^2 summed over the images.
std::vector<float> edge_weights(const std::vector<const Image*>& imgs, double tau) {
  const int H = imgs[0]->height, W = imgs[0]->width;
  static const int di[4] = {0, 1, 1, 1}, dj[4] = {1, 0, 1, -1};
  const size_t plane = static_cast<size_t>(H) * W;
  std::vector<float> d2(4 * plane, 0.0f);
  std::vector<uint8_t> valid(4 * plane, 0);
  double sum = 0.0;
  int64_t count = 0;
  for (int d = 0; d < 4; ++d)
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) {
        const int qi = i + di[d], qj = j + dj[d];
        if (qi < 0 || qi >= H || qj < 0 || qj >= W) continue;
        double s = 0.0;
        for (const Image* g : imgs) {
          const double diff = static_cast<double>(g->at(0, i, j)) - g->at(0, qi, qj);
          s += diff * diff;
        }
        const size_t e = d * plane + static_cast<size_t>(i) * W + j;
        d2[e] = static_cast<float>(s);
        valid[e] = 1;
        sum += s;
        ++count;
      }
  double tau2 = tau > 0 ? tau * tau : (count > 0 ? sum / static_cast<double>(count) : 1.0);
  if (!(tau2 > 0)) tau2 = 1.0;
  std::vector<float> w(4 * plane, 0.0f);
  for (size_t e = 0; e < w.size(); ++e) w[e] = valid[e] ? static_cast<float>(std::exp(-d2[e] / (2.0 * tau2))) : 0.0f;
  return w;
}

// One block (k, l) of the phase term of A = P - N as device stencils: P = S_{c+}, N = S_{c-}.
struct Block {
  Tensor plus, minus;
};

}  // namespace

Solution solve(const Problem& p, const SolverOptions& o) {
  const bool has_phase = !p.phase_kernels.empty(), has_dic = p.has_dic;
  UNET_CHECK(has_phase || has_dic, "restore: no observation (neither a phase nor a DIC term)");
  const Image& ref = has_phase ? p.gp : p.gd;
  const int H = ref.height, W = ref.width;
  UNET_CHECK(ref.channels == 1 && H >= 2 && W >= 2, "restore: need 1-channel images of at least 2x2");
  if (has_phase && has_dic)
    UNET_CHECK(p.gd.height == H && p.gd.width == W && p.gd.channels == 1, "restore: the phase image is ", W, "x", H,
               " but the DIC ", p.gd.width, "x", p.gd.height);
  UNET_CHECK(o.iterations >= 0, "restore: iterations must be >= 0");
  const int K = has_phase ? static_cast<int>(p.phase_kernels.size()) : 1;
  const Device dev = o.device;
  const double mu_d = has_phase ? o.lambda : 1.0;  // the DIC term's weight
  const double cl1 = o.wr * o.w0;
  const size_t npix = static_cast<size_t>(H) * W;

  std::vector<Tensor> hp_t(static_cast<size_t>(K)), tp(static_cast<size_t>(K));
  for (int k = 0; k < K && has_phase; ++k) hp_t[k] = kernel_tensor(p.phase_kernels[k], dev);
  Tensor hd_t = has_dic ? kernel_tensor(p.dic, dev) : Tensor();
  std::vector<const Image*> edge_imgs;
  if (has_phase) edge_imgs.push_back(&p.gp);
  if (has_dic) edge_imgs.push_back(&p.gd);
  Tensor wgt = Tensor::from_vector({1, 4, H, W}, edge_weights(edge_imgs, o.edge_tau)).to(dev);

  // The initial DIC gain (from the phase image's closed-form restoration) and the initial f.
  double gain = 1.0;
  const Kernel& phase_ref = !has_phase ? p.dic : p.phase_reference.h > 0 ? p.phase_reference : p.phase_kernels[0];
  const bool estimate_gain = has_phase && has_dic && o.dic_gain == 0.0;
  if (has_phase && has_dic) {
    if (!estimate_gain) {
      gain = o.dic_gain;
    } else {
      Image fp = closed_form({{&p.gp, phase_ref, 1.0}}, o.cf_ws, o.cf_eps);
      Image pred = apply_kernel(p.dic, fp, dev);
      double num = 0.0, den = 0.0;
      for (size_t i = 0; i < npix; ++i) {
        num += static_cast<double>(pred.data[i]) * p.gd.data[i];
        den += static_cast<double>(pred.data[i]) * pred.data[i];
      }
      if (den > 0 && num != 0) gain = num / den;
    }
  }
  Image f0(1, H, W, 1.0f);
  if (o.closed_form_init) {
    std::vector<FourierTerm> terms;
    if (has_phase) terms.push_back({&p.gp, phase_ref, 1.0});
    if (has_dic) {
      Kernel hd = p.dic;
      for (float& v : hd.taps) v = static_cast<float>(v * gain);
      terms.push_back({&p.gd, hd, mu_d});
    }
    Image F = closed_form(terms, o.cf_ws, o.cf_eps);
    float mx = 0.0f;
    for (float v : F.data) mx = std::max(mx, v);
    const float floor_v = mx > 0 ? static_cast<float>(o.init_floor * mx) : 1.0f;
    for (size_t i = 0; i < npix; ++i) f0.data[i] = std::max(F.data[i], 0.0f) + floor_v;
  }
  std::vector<Tensor> f(static_cast<size_t>(K)), ap(static_cast<size_t>(K)), an(static_cast<size_t>(K)),
      b0(static_cast<size_t>(K)), b(static_cast<size_t>(K));
  {
    Image fk = f0;
    for (float& v : fk.data) v /= static_cast<float>(K);
    for (int k = 0; k < K; ++k) {
      f[k] = to_device(fk, dev);
      ap[k] = Tensor::zeros({1, H, W}, DType::F32, dev);  // finite: apply_A overwrites them by a*x + 0*y
      an[k] = Tensor::zeros({1, H, W}, DType::F32, dev);
      b0[k] = Tensor::empty({1, H, W}, DType::F32, dev);
      b[k] = Tensor::empty({1, H, W}, DType::F32, dev);
    }
  }

  // The observations with the current backgrounds removed, and their back-projections H^T g.
  Image gp_eff = p.gp, gd_eff = p.gd;
  Tensor gp_t, gd_t, td;
  auto upload_data = [&]() {
    if (has_phase) {
      gp_t = to_device(gp_eff, dev);
      for (int k = 0; k < K; ++k) rops::stencil2d_adjoint(gp_t, hp_t[k], tp[k]);
    }
    if (has_dic) {
      gd_t = to_device(gd_eff, dev);
      rops::stencil2d_adjoint(gd_t, hd_t, td);
    }
  };
  upload_data();

  // A = A_p + mu_d gain^2 A_d + w_s L, each split into non-negative parts P - N:
  //  * the phase blocks A_p,kl = H_k^T H_l are exactly the mirror stencils of c_kl = xcorr(h_k, h_l)
  //    (all phase kernels are even along both axes, and such stencils are diagonalised by the 2-D DCT-II),
  //    split tightly: P = S_{c+}, N = S_{c-};
  //  * A_d = H_d^T H_d is a stencil only away from the borders when theta is oblique, so it is applied
  //    exactly, with H_d = S_{d+} - S_{d-} split into its lobes: P_d = S_{d+}^T S_{d+} + S_{d-}^T S_{d-},
  //    N_d = S_{d+}^T S_{d-} + S_{d-}^T S_{d+} (both non-negative and symmetric; a looser split than the
  //    stencil's, so slower steps, but the objective is exactly the data term's);
  //  * L = D - G (laplacian8).
  std::vector<Block> blocks(static_cast<size_t>(K) * K);
  auto split = [&](const Kernel& x, Tensor& pos, Tensor& neg) {
    Kernel kp(x.h, x.w), kn(x.h, x.w);
    for (size_t i = 0; i < x.taps.size(); ++i) {
      kp.taps[i] = std::max(x.taps[i], 0.0f);
      kn.taps[i] = std::max(-x.taps[i], 0.0f);
    }
    pos = kernel_tensor(kp, dev);
    neg = kernel_tensor(kn, dev);
  };
  if (has_phase)
    for (int k = 0; k < K; ++k) {
      UNET_CHECK(even_along_axes(p.phase_kernels[k], 1e-6f), "restore: phase kernel ", k,
                 " is not even along both axes");
      for (int l = 0; l < K; ++l) {
        Block& bl = blocks[static_cast<size_t>(k) * K + l];
        split(cross_correlation(p.phase_kernels[k], p.phase_kernels[l]), bl.plus, bl.minus);
      }
    }
  Tensor hd_plus, hd_minus;
  if (has_dic) split(p.dic, hd_plus, hd_minus);
  double gconst = 0.0;
  // b0 = -(H_p,k^T g_p + mu_d gain H_d^T g_d) and the constant of E.
  auto build = [&]() {
    for (int k = 0; k < K; ++k) {
      if (has_phase) {
        b0[k].copy_from(tp[k]);
        if (has_dic) rops::axpby_(b0[k], td, static_cast<float>(-mu_d * gain), -1.0f);
        else rops::axpby_(b0[k], tp[k], 0.0f, -1.0f);
      } else {
        b0[k].copy_from(td);
        rops::axpby_(b0[k], td, 0.0f, -1.0f);
      }
    }
    gconst = 0.5 * ((has_phase ? sum_sq(gp_eff) : 0.0) + (has_dic ? mu_d * sum_sq(gd_eff) : 0.0));
  };
  build();

  Tensor tmp = Tensor::empty({1, H, W}, DType::F32, dev);
  Tensor deg = Tensor::empty({1, H, W}, DType::F32, dev), adj = Tensor::empty({1, H, W}, DType::F32, dev);
  Tensor total = Tensor::empty({1, H, W}, DType::F32, dev), pred = Tensor::empty({1, H, W}, DType::F32, dev);
  auto sum_channels = [&]() {
    total.copy_from(f[0]);
    for (int k = 1; k < K; ++k) rops::axpby_(total, f[k], 1.0f, 1.0f);
  };
  // pred = sum_k H_p,k f_k
  auto predict_phase = [&]() {
    for (int k = 0; k < K; ++k) {
      rops::stencil2d(f[k], hp_t[k], tmp);
      rops::axpby_(pred, tmp, 1.0f, k == 0 ? 0.0f : 1.0f);
    }
  };
  // A+ f and A- f for every channel (all from the same f).
  Tensor u = Tensor::empty({1, H, W}, DType::F32, dev), v = Tensor::empty({1, H, W}, DType::F32, dev);
  Tensor pd = Tensor::empty({1, H, W}, DType::F32, dev), nd = Tensor::empty({1, H, W}, DType::F32, dev);
  auto apply_A = [&]() {
    if (has_dic) {  // P_d and N_d of the (shared) total
      sum_channels();
      rops::stencil2d(total, hd_plus, u);
      rops::stencil2d(total, hd_minus, v);
      rops::stencil2d_adjoint(u, hd_plus, pd);
      rops::stencil2d_adjoint(v, hd_minus, tmp);
      rops::axpby_(pd, tmp, 1.0f, 1.0f);
      rops::stencil2d_adjoint(v, hd_plus, nd);
      rops::stencil2d_adjoint(u, hd_minus, tmp);
      rops::axpby_(nd, tmp, 1.0f, 1.0f);
    }
    const float sd = static_cast<float>(has_phase ? mu_d * gain * gain : 1.0);
    for (int k = 0; k < K; ++k) {
      bool first = true;
      for (int l = 0; l < K && has_phase; ++l) {
        const Block& bl = blocks[static_cast<size_t>(k) * K + l];
        rops::stencil2d(f[l], bl.plus, tmp);
        rops::axpby_(ap[k], tmp, 1.0f, first ? 0.0f : 1.0f);
        rops::stencil2d(f[l], bl.minus, tmp);
        rops::axpby_(an[k], tmp, 1.0f, first ? 0.0f : 1.0f);
        first = false;
      }
      if (has_dic) {
        rops::axpby_(ap[k], pd, sd, first ? 0.0f : 1.0f);
        rops::axpby_(an[k], nd, sd, first ? 0.0f : 1.0f);
      }
      rops::laplacian8(f[k], wgt, deg, adj);
      rops::axpby_(ap[k], deg, static_cast<float>(o.ws), 1.0f);
      rops::axpby_(an[k], adj, static_cast<float>(o.ws), 1.0f);
    }
  };
  auto objective = [&]() {
    double e = gconst;
    for (int k = 0; k < K; ++k) {
      e += 0.5 * (rops::dot(f[k], ap[k]) - rops::dot(f[k], an[k])) + rops::dot(b0[k], f[k]);
      if (cl1 != 0.0) e += cl1 * rops::sum_log1p(f[k], static_cast<float>(1.0 / o.gamma));
    }
    return e;
  };
  // The exact minimisation of E over the nuisance parameters for the current f: the polynomial
  // backgrounds (fit_background) and the DIC gain (estimate_gain), by least squares on the residuals.
  const std::vector<std::vector<float>> basis = o.fit_background ? poly_basis(H, W) : std::vector<std::vector<float>>();
  auto refit = [&]() {
    std::vector<const float*> bregs;
    for (const auto& plane : basis) bregs.push_back(plane.data());
    if (has_phase && o.fit_background) {
      predict_phase();
      const std::vector<float> pr = pred.to_vector();
      std::vector<float> r(npix);
      for (size_t i = 0; i < npix; ++i) r[i] = p.gp.data[i] - pr[i];
      const std::vector<double> c = least_squares(bregs, r.data(), npix);
      if (!c.empty())
        for (size_t i = 0; i < npix; ++i) {
          double bg = 0.0;
          for (size_t q = 0; q < c.size(); ++q) bg += c[q] * basis[q][i];
          gp_eff.data[i] = static_cast<float>(p.gp.data[i] - bg);
        }
    }
    if (has_dic && (estimate_gain || o.fit_background)) {
      sum_channels();
      rops::stencil2d(total, hd_t, pred);
      const std::vector<float> pr = pred.to_vector();
      std::vector<const float*> regs;
      if (estimate_gain) regs.push_back(pr.data());
      regs.insert(regs.end(), bregs.begin(), bregs.end());
      std::vector<float> y(p.gd.data);
      if (!estimate_gain)  // the gain is fixed: fit the background to g_d - gain H_d f
        for (size_t i = 0; i < npix; ++i) y[i] -= static_cast<float>(gain * pr[i]);
      const std::vector<double> c = least_squares(regs, y.data(), npix);
      if (!c.empty()) {
        const size_t off = estimate_gain ? 1 : 0;
        if (estimate_gain && c[0] != 0.0) gain = c[0];
        for (size_t i = 0; i < npix; ++i) {
          double bg = 0.0;
          for (size_t q = off; q < c.size(); ++q) bg += c[q] * basis[q - off][i];
          gd_eff.data[i] = static_cast<float>(p.gd.data[i] - bg);
        }
      }
    }
    upload_data();
    build();
  };
  const bool refitting = (o.fit_background || estimate_gain) && o.refit_every > 0;

  Solution sol;
  for (int it = 0;; ++it) {
    if (refitting && it % o.refit_every == 0) refit();
    apply_A();
    const double e = objective();
    sol.objective.push_back(e);
    if (o.progress) o.progress(it, e);
    if (it == o.iterations) break;
    for (int k = 0; k < K; ++k) {
      rops::l1_reweight(f[k], b0[k], b[k], static_cast<float>(cl1), static_cast<float>(o.gamma));
      rops::nnmu_update_(f[k], ap[k], an[k], b[k], static_cast<float>(o.eps));
    }
  }

  // Results and the exact residuals against the background-corrected observations.
  sum_channels();
  sol.dic_gain = gain;
  for (int k = 0; k < K; ++k) sol.f.push_back(to_image(f[k], H, W));
  sol.total = to_image(total, H, W);
  sol.gp = gp_eff;
  sol.gd = gd_eff;
  if (has_phase) {
    predict_phase();
    rops::axpby_(pred, gp_t, -1.0f, 1.0f);
    sol.rel_residual_phase = std::sqrt(rops::dot(pred, pred) / std::max(sum_sq(gp_eff), 1e-30));
  }
  if (has_dic) {
    rops::stencil2d(total, hd_t, tmp);
    rops::axpby_(tmp, gd_t, -1.0f, static_cast<float>(has_phase ? gain : 1.0));
    sol.rel_residual_dic = std::sqrt(rops::dot(tmp, tmp) / std::max(sum_sq(gd_eff), 1e-30));
  }
  return sol;
}

// ---- pipeline ---------------------------------------------------------------------------------------------

RestoreResult restore_pair(const Image& phase, const Image& dic, const RestoreOptions& o) {
  const bool use_phase = o.mode != Mode::kDic, use_dic = o.mode != Mode::kPhase;
  UNET_CHECK(!use_phase || (!phase.empty() && phase.channels == 1), "restore: mode ", mode_name(o.mode),
             " needs a 1-channel phase contrast image");
  UNET_CHECK(!use_dic || (!dic.empty() && dic.channels == 1), "restore: mode ", mode_name(o.mode),
             " needs a 1-channel DIC image");
  if (use_phase && use_dic)
    UNET_CHECK(phase.height == dic.height && phase.width == dic.width, "restore: the phase image is ", phase.width, "x",
               phase.height, " but the DIC image ", dic.width, "x", dic.height);
  RestoreResult r;
  Problem p;
  if (use_phase) {
    r.gp = o.remove_background ? remove_background(phase) : phase;
    r.std_phase = standardise(r.gp);
    if (o.su_kernels >= 2) {
      for (int k = 0; k < o.su_kernels; ++k) {
        const double th = 2.0 * kPi * k / o.su_kernels;
        r.thetas.push_back(th);
        p.phase_kernels.push_back(phase_retardation_kernel(o.phase, th, o.zeta));
      }
      // The single-kernel model drives the closed-form start and the first gain estimate.
      p.phase_reference = phase_kernel(o.phase);
    } else {
      p.phase_kernels.push_back(phase_kernel(o.phase));
    }
    p.gp = r.gp;
  }
  if (use_dic) {
    r.gd = o.remove_background ? remove_background(dic) : dic;
    r.std_dic = standardise(r.gd);
    p.has_dic = true;
    p.dic = dic_kernel(o.dic);
  }
  if (use_phase && use_dic && o.register_pair) {
    // Register the DIC image against the DIC image predicted from the phase image's closed-form
    // restoration (the two raw images look too different to correlate directly).
    Image fp = closed_form({{&r.gp, phase_kernel(o.phase), 1.0}}, o.solver.cf_ws, o.solver.cf_eps);
    Image pred = apply_kernel(p.dic, fp, o.solver.device);
    r.shift = phase_correlation(pred, r.gd);
    const int lim = o.max_shift > 0 ? o.max_shift : std::max(1, std::min(r.gd.height, r.gd.width) / 4);
    if (std::abs(r.shift.dy) > lim || std::abs(r.shift.dx) > lim) {
      std::fprintf(stderr, "[restore] registration: shift (%d, %d) exceeds %d px, ignored\n", r.shift.dy, r.shift.dx,
                   lim);
      r.shift = Shift{};
    }
    if (r.shift.dy != 0 || r.shift.dx != 0) r.gd = shift_image(r.gd, r.shift.dy, r.shift.dx);
    p.gd = r.gd;
  } else if (use_dic) {
    p.gd = r.gd;
  }
  r.sol = solve(p, o.solver);
  if (o.su_kernels >= 2) {
    const Image& t = r.sol.total;
    float mx = 0.0f;
    for (float v : t.data) mx = std::max(mx, v);
    r.dominant = plane_like(t);
    r.polarity = plane_like(t);
    for (size_t i = 0; i < t.data.size(); ++i) {
      int best = 0;
      for (int k = 1; k < o.su_kernels; ++k)
        if (r.sol.f[k].data[i] > r.sol.f[best].data[i]) best = k;
      r.dominant.data[i] = static_cast<float>(best);
      if (t.data[i] > o.polarity_threshold * mx)
        r.polarity.data[i] = p.phase_kernels[best].at(0, 0) > 0.0f ? 2.0f : 1.0f;
    }
  }
  return r;
}

// ---- evaluation ------------------------------------------------------------------------------------------

double relative_error(const Image& est, const Image& truth) {
  UNET_CHECK(est.data.size() == truth.data.size(), "relative_error: sizes differ");
  double et = 0.0, ee = 0.0, tt = 0.0;
  for (size_t i = 0; i < est.data.size(); ++i) {
    et += static_cast<double>(est.data[i]) * truth.data[i];
    ee += static_cast<double>(est.data[i]) * est.data[i];
    tt += static_cast<double>(truth.data[i]) * truth.data[i];
  }
  const double a = ee > 0 ? et / ee : 0.0;
  double err = 0.0;
  for (size_t i = 0; i < est.data.size(); ++i) {
    const double d = a * est.data[i] - truth.data[i];
    err += d * d;
  }
  return std::sqrt(err / std::max(tt, 1e-30));
}

void write_figure(const std::string& path, const std::vector<std::pair<std::string, Image>>& panels, int zoom) {
  UNET_CHECK(!panels.empty(), "figure: no panels");
  const int gap = 6, caption = 16;
  int width = gap, height = 0;
  for (const auto& [name, img] : panels) {
    width += img.width * zoom + gap;
    height = std::max(height, img.height * zoom);
  }
  Image fig(3, height + caption + 2 * gap, width, 255.0f);
  int x0 = gap;
  for (const auto& [name, img] : panels) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int i = 0; i < img.height; ++i)
      for (int j = 0; j < img.width; ++j) {
        lo = std::min(lo, img.at(0, i, j));
        hi = std::max(hi, img.at(0, i, j));
      }
    const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int i = 0; i < img.height * zoom; ++i)
      for (int j = 0; j < img.width * zoom; ++j) {
        const float v = (img.at(0, i / zoom, j / zoom) - lo) * scale;
        for (int c = 0; c < 3; ++c) fig.at(c, caption + gap + i, x0 + j) = v;
      }
    static char buf[30000];
    const int quads =
        stb_easy_font_print(static_cast<float>(x0), 4.0f, const_cast<char*>(name.c_str()), nullptr, buf, sizeof buf);
    const float* v = reinterpret_cast<const float*>(buf);
    for (int q = 0; q < quads; ++q) {
      const float* pq = v + q * 16;
      const int xa = static_cast<int>(pq[0]), ya = static_cast<int>(pq[1]), xb = static_cast<int>(pq[8]),
                yb = static_cast<int>(pq[9]);
      for (int yy = std::min(ya, yb); yy < std::max(ya, yb); ++yy)
        for (int xx = std::min(xa, xb); xx < std::max(xa, xb); ++xx)
          if (xx >= 0 && yy >= 0 && xx < fig.width && yy < fig.height)
            for (int c = 0; c < 3; ++c) fig.at(c, yy, xx) = 0.0f;
    }
    x0 += img.width * zoom + gap;
  }
  write_png(path, fig);
}

}  // namespace unet::restore
