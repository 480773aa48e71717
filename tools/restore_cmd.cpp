// unet restore: phase contrast + DIC co-restoration (restore/restore.h, docs/restore.md), and the
// synthetic pairs it is tested on. Dispatched from tools/unet.cpp.
//
//   unet restore --phase P.tif --dic D.tif -o F.tif [--mode joint|phase|dic] [model and solver flags]
//                [--out-scale 1] [--pair-out PAIR.tif] [--figure FIG.png [--compare] [--truth T.tif]] [--objective-csv
//                FILE]
//   unet restore --synthetic DIR [--count N] [--seed S] [--size 96] [--noise 0.05] [--cells 5] [--pairs 1]
//                [--mitotic 0] [--shift-dy 0 --shift-dx 0]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/backend.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "unet/io.h"
#include "restore/restore.h"
#include "restore/synthetic_cells.h"

namespace fs = std::filesystem;
using namespace unet;
using namespace unet::restore;
using unet::cli::Args;
using unet::cli::pick_device;

namespace {

// The first channel of the first page, raw values (float TIFFs as stored, 8/16-bit as 0..255/65535:
// the restoration removes the background and scales to unit standard deviation itself).
Image read_plane(const std::string& path) {
  Image img = read_image(path);
  if (img.channels == 1) return img;
  Image out(1, img.height, img.width);
  std::copy(img.plane(0), img.plane(0) + img.pixels(), out.data.begin());
  return out;
}

void ensure_parent(const std::string& path) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
}

int synthetic(const Args& a) {
  const std::string dir = a.str("synthetic");
  SyntheticOptions so;
  so.height = so.width = a.count("size", 96, 8, 1 << 15);
  so.noise = a.num("noise", so.noise);
  so.cells = a.count("cells", so.cells, 0, 1 << 20);
  so.touching_pairs = a.count("pairs", so.touching_pairs, 0, 1 << 20);
  so.mitotic = a.count("mitotic", so.mitotic, 0, 1 << 20);
  so.dic_bias = a.num("dic-bias", so.dic_bias);
  so.shift_dy = a.count("shift-dy", 0, -1024, 1024);
  so.shift_dx = a.count("shift-dx", 0, -1024, 1024);
  const int count = a.count("count", 1, 1, 1'000'000);
  const int seed = a.count("seed", 1, 0);
  for (const char* sub : {"phase", "dic", "truth", "label"}) fs::create_directories(fs::path(dir) / sub);
  const Device dev = pick_device(a.str("device", "auto"));
  for (int i = 0; i < count; ++i) {
    so.seed = static_cast<uint64_t>(seed) * 100003ull + static_cast<uint64_t>(i);
    SyntheticSample s = make_synthetic(so, dev);
    char name[32];
    std::snprintf(name, sizeof name, "%03d", i);
    write_tiff_float((fs::path(dir) / "phase" / (std::string(name) + ".tif")).string(), s.phase);
    write_tiff_float((fs::path(dir) / "dic" / (std::string(name) + ".tif")).string(), s.dic);
    write_tiff_float((fs::path(dir) / "truth" / (std::string(name) + ".tif")).string(), s.f);
    Image lab = s.label;
    for (float& v : lab.data) v *= 255.0f;
    write_png((fs::path(dir) / "label" / (std::string(name) + ".png")).string(), lab);
  }
  std::printf("wrote %d synthetic %dx%d pairs to %s/{phase,dic,truth,label}\n", count, so.width, so.height,
              dir.c_str());
  return 0;
}

}  // namespace

extern const cli::Command kRestore;  // declared extern: used by tools/unet.cpp's command list
const cli::Command kRestore{
    "restore",
    "--phase P.tif --dic D.tif -o F.tif [options]   |   --synthetic DIR [options]",
    "Co-restores a phase contrast and a DIC image of the same cells.\n"
    "Into one non-negative image (docs/restore.md); --synthetic writes test pairs made by the same models.",
    {{"phase", "IMG", "the phase contrast image"},
     {"dic", "IMG", "the DIC image"},
     {"out", "F.tif", "the restored image, float TIFF (-o)"},
     {"mode", "joint|phase|dic", "which images the restoration uses (default joint)"},
     cli::kDevice,
     {"iterations", "N", "multiplicative updates (default 300)"},
     {"lambda", "X", "weight of the DIC term (default 1)"},
     {"ws", "X", "smoothness weight w_s (default 1)"},
     {"wr", "X", "sparsity weight w_r (default 0.5)"},
     {"w0", "X", "L1 weight scale (default 1)"},
     {"gamma", "X", "reweighting constant (default 3)"},
     {"eps", "X", "the update's denominator guard (default 1e-12)"},
     {"edge-tau", "X", "Laplacian edge scale (default 0: from the images)"},
     {"dic-gain", "X", "DIC gain k (default 0: estimated)"},
     {"refit-every", "N", "re-fit background and gain every N iterations (default 10)"},
     {"no-background", "", "do not remove a polynomial background first"},
     {"no-background-fit", "", "do not re-fit the background during the iterations"},
     {"no-register", "", "do not register the pair (phase correlation)"},
     {"max-shift", "PX", "largest registration shift (default 0: any)"},
     {"no-closed-form", "", "start from a flat image, not the Fourier closed form"},
     {"R", "UM", "phase ring outer radius (default 4000)"},
     {"W", "UM", "phase ring width (default 800)"},
     {"radius", "PX", "phase kernel radius (default 5)"},
     {"pixel-um", "UM", "pixel size (default 1)"},
     {"focal-mm", "MM", "focal length (default 40)"},
     {"wavelength-um", "UM", "wavelength (default 0.55)"},
     {"drop", "X", "phase taps with |value| <= X are dropped (default 0.01)"},
     {"dic-sigma", "PX", "DIC kernel width (default 1)"},
     {"dic-theta", "RAD", "DIC shear direction (default pi/4)"},
     {"dic-size", "PX", "DIC kernel size (default 13)"},
     {"su-kernels", "K", "Su et al.'s model with K phase-retardation kernels (default 0: one kernel)"},
     {"zeta", "X", "Su et al.'s zeta"},
     {"pair-out", "PAIR.tif", "also write the preprocessed pair"},
     {"figure", "FIG.png", "also write a figure of the inputs and the result"},
     {"compare", "", "with --figure: add the single-modality restorations"},
     {"truth", "T.tif", "with --figure: the true f, for the relative error"},
     {"objective-csv", "FILE", "the objective per iteration"},
     {"out-scale", "X", "multiply the written f by X (default 1)"},
     {"synthetic", "DIR", "write synthetic pairs to DIR/{phase,dic,truth,label}"},
     {"count", "N", "synthetic pairs (default 1)"},
     {"seed", "S", "random seed (default 1)"},
     {"size", "PX", "synthetic image side (default 96)"},
     {"noise", "X", "noise relative to the signal (default 0.05)"},
     {"cells", "N", "cells per image"},
     {"pairs", "N", "touching pairs per image"},
     {"mitotic", "N", "bright (mitotic) cells per image"},
     {"dic-bias", "X", "amplitude of the DIC bias surface"},
     {"shift-dy", "PX", "shift the DIC image down by PX"},
     {"shift-dx", "PX", "shift the DIC image right by PX"},
     {"quiet", "", "no progress output"}}};

int cmd_restore(int argc, char** argv) {
  Args a(argc, argv, 2, kRestore);
  if (a.help_wanted()) {
    std::fputs(cli::help_text(kRestore).c_str(), stdout);
    return 0;
  }
  if (a.has("synthetic")) return synthetic(a);

  RestoreOptions o;
  o.mode = parse_mode(a.str("mode", "joint"));
  o.solver.device = pick_device(a.str("device", "auto"));
  o.solver.iterations = a.count("iterations", o.solver.iterations, 0, 100'000'000);
  o.solver.lambda = a.num("lambda", o.solver.lambda);
  o.solver.ws = a.num("ws", o.solver.ws);
  o.solver.wr = a.num("wr", o.solver.wr);
  o.solver.w0 = a.num("w0", o.solver.w0);
  o.solver.gamma = a.num("gamma", o.solver.gamma);
  o.solver.eps = a.num("eps", o.solver.eps);
  o.solver.edge_tau = a.num("edge-tau", o.solver.edge_tau);
  o.solver.dic_gain = a.num("dic-gain", o.solver.dic_gain);
  o.solver.refit_every = a.count("refit-every", o.solver.refit_every, 0);
  o.solver.fit_background = !a.flag("no-background-fit");
  o.solver.closed_form_init = !a.flag("no-closed-form");
  o.remove_background = !a.flag("no-background");
  o.register_pair = !a.flag("no-register");
  o.max_shift = a.count("max-shift", 0, 0, 1 << 15);
  o.phase.R_um = a.num("R", o.phase.R_um);
  o.phase.W_um = a.num("W", o.phase.W_um);
  o.phase.radius = a.count("radius", o.phase.radius, 1, 1024);
  o.phase.pixel_um = a.num("pixel-um", o.phase.pixel_um);
  o.phase.focal_mm = a.num("focal-mm", o.phase.focal_mm);
  o.phase.lambda_um = a.num("wavelength-um", o.phase.lambda_um);
  o.phase.drop = a.num("drop", o.phase.drop);
  o.dic.sigma = a.num("dic-sigma", o.dic.sigma);
  o.dic.theta = a.num("dic-theta", o.dic.theta);
  o.dic.size = a.count("dic-size", o.dic.size, 1, 1023);
  o.su_kernels = a.count("su-kernels", 0, 0, 64);
  o.zeta = a.num("zeta", o.zeta);
  UNET_CHECK(o.su_kernels == 0 || o.su_kernels >= 2, "--su-kernels must be 0 (single kernel) or >= 2");
  const bool quiet = a.flag("quiet");

  Image phase, dic;
  if (o.mode != Mode::kDic || a.has("phase")) {
    UNET_CHECK(a.has("phase"), "missing required option --phase (mode ", mode_name(o.mode), ")");
    phase = read_plane(a.str("phase"));
  }
  if (o.mode != Mode::kPhase || a.has("dic")) {
    UNET_CHECK(a.has("dic"), "missing required option --dic (mode ", mode_name(o.mode), ")");
    dic = read_plane(a.str("dic"));
  }
  UNET_CHECK(a.has("out") || a.has("pair-out") || a.has("figure"),
             "give -o F.tif, --pair-out PAIR.tif or --figure FIG.png");

  const Image& ref = phase.empty() ? dic : phase;
  if (!quiet)
    std::fprintf(stderr, "[restore] %s, %dx%d, %s, %d iterations, lambda %g, w_s %g, w_r %g, gamma %g%s\n",
                 mode_name(o.mode), ref.width, ref.height, device_name(o.solver.device), o.solver.iterations,
                 o.solver.lambda, o.solver.ws, o.solver.wr, o.solver.gamma,
                 o.su_kernels ? (", " + std::to_string(o.su_kernels) + " phase-retardation kernels").c_str() : "");
  auto t0 = std::chrono::steady_clock::now();
  cli::Progress progress;
  std::vector<std::pair<int, double>> curve;
  o.solver.progress = [&](int it, double e) {
    curve.emplace_back(it, e);
    if (quiet) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char line[160];
    std::snprintf(line, sizeof line, "[restore] iteration %d/%d  objective %.6g  %.1f s", it, o.solver.iterations, e,
                  el);
    progress.show(line, it == o.solver.iterations);
  };
  // Run the pipeline; with --compare also both single-modality restorations (quietly).
  RestoreResult r = restore_pair(phase, dic, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet) {
    std::fprintf(stderr, "[restore] done in %.2f s: objective %.6g -> %.6g", seconds, r.sol.objective.front(),
                 r.sol.objective.back());
    if (!r.gp.empty()) std::fprintf(stderr, ", phase residual %.3f", r.sol.rel_residual_phase);
    if (!r.gd.empty()) std::fprintf(stderr, ", DIC residual %.3f", r.sol.rel_residual_dic);
    if (o.mode == Mode::kJoint)
      std::fprintf(stderr, ", DIC gain %.4g, registration shift (%d, %d)", r.sol.dic_gain, r.shift.dy, r.shift.dx);
    std::fprintf(stderr, "\n");
    if (o.mode == Mode::kJoint && r.sol.dic_gain < 0)
      std::fprintf(stderr,
                   "[restore] note: the DIC gain is negative: the shear direction seems opposite to --dic-theta\n");
  }

  if (a.has("out")) {
    ensure_parent(a.str("out"));
    const float scale = static_cast<float>(a.num("out-scale", 1.0));
    Image f = r.sol.total;
    for (float& v : f.data) v *= scale;
    write_tiff_float(a.str("out"), f);
    std::printf("wrote %s (restored f, float%s)\n", a.str("out").c_str(), scale != 1.0f ? ", scaled" : "");
    if (o.su_kernels >= 2) {
      const std::string stem = (fs::path(a.str("out")).parent_path() / fs::path(a.str("out")).stem()).string();
      Image ch(o.su_kernels, ref.height, ref.width);
      for (int k = 0; k < o.su_kernels; ++k) std::copy(r.sol.f[k].data.begin(), r.sol.f[k].data.end(), ch.plane(k));
      write_tiff_float(stem + "_channels.tif", ch);
      Image pol = r.polarity;
      for (float& v : pol.data) v *= 127.5f;
      write_png(stem + "_polarity.png", pol);
      std::printf("wrote %s_channels.tif (one page per kernel) and %s_polarity.png (grey: dark cells, white: bright)\n",
                  stem.c_str(), stem.c_str());
    }
  }
  if (a.has("objective-csv")) {
    std::string csv = "iteration,objective\n";
    char line[64];
    for (const auto& [it, e] : curve) {
      std::snprintf(line, sizeof line, "%d,%.9g\n", it, e);
      csv += line;
    }
    ensure_parent(a.str("objective-csv"));
    atomic_write_bytes(a.str("objective-csv"), csv.data(), csv.size());
  }
  if (a.has("pair-out")) {
    // One page, two float samples per pixel (phase, DIC): read_image() / read_stack() read it as one
    // 2-channel image, so it goes to `unet train --in-channels 2` and `unet predict` as is. Network
    // inputs live in [0, 1] in this project (float files are not rescaled on reading, and training's
    // gamma augmentation clamps to [0, 1]): the unit-std values x are written as 0.5 + x / 8, clamped
    // (+-4 standard deviations).
    UNET_CHECK(!r.gp.empty() && !r.gd.empty(), "--pair-out needs both images (mode joint)");
    Image pair(2, ref.height, ref.width);
    auto to01 = [](float x) { return std::min(std::max(0.5f + x / 8.0f, 0.0f), 1.0f); };
    for (size_t i = 0; i < r.sol.gp.data.size(); ++i) {
      pair.plane(0)[i] = to01(r.sol.gp.data[i]);
      pair.plane(1)[i] = to01(r.sol.gd.data[i]);
    }
    ensure_parent(a.str("pair-out"));
    write_tiff_stack(a.str("pair-out"), {pair}, TiffSample::F32);
    std::printf("wrote %s (the preprocessed pair: 1 page, 2 float channels)\n", a.str("pair-out").c_str());
  }
  if (a.has("figure")) {
    std::vector<std::pair<std::string, Image>> panels;
    if (!phase.empty()) panels.push_back({"phase contrast", phase});
    if (!dic.empty()) panels.push_back({"DIC", dic});
    Image truth;
    if (a.has("truth")) {
      truth = read_plane(a.str("truth"));
      panels.push_back({"truth f", truth});
    }
    if (a.flag("compare") && o.mode == Mode::kJoint) {
      RestoreOptions single = o;
      single.solver.progress = nullptr;
      for (Mode m : {Mode::kPhase, Mode::kDic}) {
        single.mode = m;
        RestoreResult rs = restore_pair(phase, dic, single);
        panels.push_back({std::string(mode_name(m)) + " only", rs.sol.total});
        if (!truth.empty())
          std::printf("relative error %s only: %.4f\n", mode_name(m), relative_error(rs.sol.total, truth));
      }
    }
    panels.push_back({std::string(mode_name(o.mode)) + (o.mode == Mode::kJoint ? " (co-restored)" : ""), r.sol.total});
    if (o.su_kernels >= 2) panels.push_back({"dark (grey) / bright (white)", r.polarity});
    if (!truth.empty()) std::printf("relative error %s: %.4f\n", mode_name(o.mode), relative_error(r.sol.total, truth));
    ensure_parent(a.str("figure"));
    write_figure(a.str("figure"), panels, 2);
    std::printf("wrote %s\n", a.str("figure").c_str());
  }
  return 0;
}
