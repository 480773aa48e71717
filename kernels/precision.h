// The operand rounding of each Precision (kernels/kernels.h), bit-exact with the GPU's conversions,
// and the precisions' names. Host code: the CPU reference rounds its operands with these, the CUDA
// kernels with the PTX conversions they model (cvt.rna.tf32.f32, cvt.rn.bf16x2.f32).
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "kernels/kernels.h"

namespace unet::kernels {

inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// To TF32: keep the sign, the 8-bit exponent and the top 10 mantissa bits, rounding to nearest with
// ties away from zero (add half of the last kept bit, then truncate: a carry runs into the exponent,
// the largest finite values round to infinity). Infinities and NaNs pass unchanged.
inline float round_tf32(float x) {
  uint32_t u = float_bits(x);
  if ((u & 0x7F800000u) != 0x7F800000u) u += 0x1000u;
  return bits_float(u & 0xFFFFE000u);
}

// To BF16 (the top 16 bits of an FP32): round to nearest, ties to even; a NaN stays a (quiet) NaN.
inline float round_bf16(float x) {
  uint32_t u = float_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bits_float((u | 0x00400000u) & 0xFFFF0000u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return bits_float(u & 0xFFFF0000u);
}

inline float round_operand(float x, Precision p) {
  return p == Precision::TF32 ? round_tf32(x) : p == Precision::BF16 ? round_bf16(x) : x;
}

inline const char* precision_name(Precision p) {
  return p == Precision::TF32 ? "tf32" : p == Precision::BF16 ? "bf16" : "fp32";
}

// "fp32", "tf32" or "bf16" (as the command line spells them); nothing for anything else.
inline std::optional<Precision> parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::FP32;
  if (s == "tf32") return Precision::TF32;
  if (s == "bf16") return Precision::BF16;
  return std::nullopt;
}

}  // namespace unet::kernels
