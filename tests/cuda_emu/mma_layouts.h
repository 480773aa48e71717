// The fragment layouts of the mma shapes the kernels use, written from the PTX ISA's tables ("Matrix
// Fragments for mma.m16n8k8" (.tf32) and "... for mma.m16n8k16 with floating point type" (.bf16)):
// which element of A (16 x K), B (K x 8) and C/D (16 x 8) lane `lane` holds in element i of its
// fragment. groupID = lane >> 2, threadID_in_group = lane % 4. For BF16 a register holds two elements,
// i = 2 * register + half (half 0 in the low 16 bits).
#pragma once

namespace emu::mma_layout {

struct RowCol {
  int row, col;
};

// m16n8k8 .tf32: A a0..a3, B b0..b1 (one element a register).
inline RowCol a_tf32(int lane, int i) {
  const int g = lane >> 2, t = lane % 4;
  return {(i == 0 || i == 2) ? g : g + 8, (i == 0 || i == 1) ? t : t + 4};
}
inline RowCol b_tf32(int lane, int i) {
  const int g = lane >> 2, t = lane % 4;
  return {i == 0 ? t : t + 4, g};
}

// m16n8k16 .bf16: A a0..a7 (four registers of two), B b0..b3 (two registers of two).
inline RowCol a_bf16(int lane, int i) {
  const int g = lane >> 2, t = lane % 4;
  const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
  const int col = i < 4 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8;
  return {row, col};
}
inline RowCol b_bf16(int lane, int i) {
  const int g = lane >> 2, t = lane % 4;
  return {i < 2 ? t * 2 + (i & 1) : t * 2 + (i & 1) + 8, g};
}

// C/D of both shapes (16 x 8, .f32): c0..c3.
inline RowCol c_f32(int lane, int i) {
  const int g = lane >> 2, t = lane % 4;
  return {i < 2 ? g : g + 8, t * 2 + (i & 1)};
}

}  // namespace emu::mma_layout
