#include "unet/schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/check.h"

namespace unet {

void check_schedule(const LrSchedule& s) {
  UNET_CHECK(s.lr >= 0.0f && std::isfinite(s.lr), "--lr must be >= 0, got ", s.lr);
  UNET_CHECK(s.step >= 0, "--lr-step must be >= 0, got ", s.step);
  UNET_CHECK(s.gamma > 0.0f && std::isfinite(s.gamma), "--lr-gamma must be positive, got ", s.gamma);
  UNET_CHECK(s.poly_power >= 0.0f && std::isfinite(s.poly_power), "--lr-poly must be >= 0, got ", s.poly_power);
  UNET_CHECK(s.step == 0 || s.poly_power == 0.0f, "--lr-step and --lr-poly are two schedules: give one of them");
  UNET_CHECK(s.poly_power == 0.0f || s.total > 0, "the poly schedule needs the run's length (iterations > 0)");
  UNET_CHECK(s.warmup >= 0, "--warmup must be >= 0, got ", s.warmup);
}

float lr_at(const LrSchedule& s, int64_t i) {
  double lr = s.lr;
  if (s.step > 0) lr *= std::pow(static_cast<double>(s.gamma), static_cast<double>(i / s.step));
  if (s.poly_power > 0.0f) {
    const double left = std::max(0.0, 1.0 - static_cast<double>(i) / static_cast<double>(s.total));
    lr *= std::pow(left, static_cast<double>(s.poly_power));
  }
  if (s.warmup > 0 && i < s.warmup) lr *= static_cast<double>(i + 1) / static_cast<double>(s.warmup);
  return static_cast<float>(lr);
}

std::string describe(const LrSchedule& s) {
  std::ostringstream os;
  if (s.step > 0) os << "step x" << s.gamma << " every " << s.step;
  else if (s.poly_power > 0.0f) os << "poly power " << s.poly_power << " over " << s.total;
  else os << "constant";
  if (s.warmup > 0) os << ", warm-up " << s.warmup;
  return os.str();
}

}  // namespace unet
