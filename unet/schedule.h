// Learning-rate schedules for training (docs/training.md compares them):
//   constant  lr
//   step      lr * gamma^floor(i / step)                  (Caffe's "step"; the paper gives none)
//   poly      lr * (1 - i / total)^power                  (Caffe's "poly", e.g. power 0.9)
// each optionally preceded by a linear warm-up over the first `warmup` updates (lr * (i + 1) /
// warmup), which keeps momentum 0.99 from amplifying the large gradients of a fresh network.
// i counts the updates already taken (0 for the first one).
#pragma once
#include <cstdint>
#include <string>

namespace unet {

struct LrSchedule {
  float lr = 0.002f;
  int64_t step = 0;         // step schedule period (0 = no step decay)
  float gamma = 0.1f;       // step schedule factor
  float poly_power = 0.0f;  // > 0: the poly schedule over `total` updates (step must be 0)
  int64_t total = 0;        // updates in the run (the poly schedule reaches 0 there)
  int64_t warmup = 0;       // linear warm-up updates (0 = none)
};

// Throws, naming the option, when the schedule is inconsistent (both step and poly, poly without
// a total, negative values).
void check_schedule(const LrSchedule& s);
float lr_at(const LrSchedule& s, int64_t i);
// "constant", "step x0.1 every 700", "poly power 0.9 over 3000", with ", warm-up 100" appended.
std::string describe(const LrSchedule& s);

}  // namespace unet
