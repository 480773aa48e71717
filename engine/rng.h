// The engine's random stream: Philox 4x32-10 keyed by an explicit seed, advanced by an offset.
// Every consumer (dropout masks, init, augmentation) takes a contiguous block of the stream with
// take(n), so a run is reproducible from (seed, offset) alone, on the CPU and the GPU alike, and
// resuming a run only needs those two numbers back.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/philox.h"

namespace unet {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

  // Reserves n words of the stream; returns the offset of the first.
  uint64_t take(uint64_t n) {
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }
  float uniform() { return philox::uniform(seed_, take(1), 0); }
  // Standard normal by Box-Muller on two uniforms (1 - u keeps the log finite).
  float normal() {
    uint64_t o = take(2);
    float u1 = philox::uniform(seed_, o, 0), u2 = philox::uniform(seed_, o, 1);
    return std::sqrt(-2.0f * std::log(1.0f - u1)) * std::cos(6.283185307179586f * u2);
  }
  // Integer in [0, n).
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(uniform() * static_cast<float>(n)) % n; }

 private:
  uint64_t seed_, offset_;
};

}  // namespace unet
