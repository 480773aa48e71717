// Synthetic phase contrast + DIC pairs made by the imaging models of restore/restore.h from a known,
// non-negative f: a few discs and ellipses with dome-shaped optical thickness, some touching.
//   g_p = H_p f_dark + H_bright f_bright + c + noise       (H_bright = delta - airy_n: Su et al.'s kernel at
//                                                         theta = 3 pi / 2, for bright mitotic cells)
//   g_d = H_d (f_dark + f_bright) + polynomial bias + noise
// The noise is Gaussian with standard deviation noise * std(clean signal) per modality; the DIC bias is a
// random 2nd-order polynomial surface of amplitude dic_bias * std(H_d f). The DIC image may be
// translated by (shift_dy, shift_dx) (mirror boundary) to exercise the registration.
#pragma once
#include <cstdint>

#include "engine/tensor.h"
#include "unet/image.h"
#include "restore/restore.h"

namespace unet::restore {

struct SyntheticOptions {
  int height = 96, width = 96;
  int cells = 5;           // isolated discs / ellipses
  int touching_pairs = 1;  // pairs of discs that touch
  int mitotic = 0;         // bright round cells (imaged with the bright kernel)
  double noise = 0.05;
  double dic_bias = 0.5;
  double phase_offset = 2.0;  // the bright background of a phase contrast image
  int shift_dy = 0, shift_dx = 0;
  uint64_t seed = 1;
  PhaseOptics phase;
  DicOptics dic;
};

struct SyntheticSample {
  Image f;           // the truth: f_dark + f_bright
  Image f_bright;    // the mitotic cells' part
  Image instances;   // 0 = background, 1.. = cell id (the cell with the largest f at a pixel)
  Image label;       // 0 = background, 1 = cell
  Image phase, dic;  // the observations (the DIC translated by the shift)
};

SyntheticSample make_synthetic(const SyntheticOptions& o, Device device = Device::CPU);

}  // namespace unet::restore
