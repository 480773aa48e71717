// Host versions of kernels/cuda/ptx.cuh for the emulation (run.sh puts this file in its place): the
// same functions, with the semantics of the PTX instructions they wrap.
//   cp.async:  each copy is held by the issuing thread and performed by the cp.async.wait_group that
//              covers its group (the destination reads as NaN until then: a kernel that reads a stage
//              before waiting for it sees NaN); 16-byte copies must be 16-byte aligned at both ends.
//   cvt:       rna to TF32, rn to BF16, as the ISA defines them.
//   mma:       every lane writes its fragments to the warp's scratch area at the places the ISA's tables
//              give (mma_layouts.h), the warp meets, and each lane computes its own D elements from
//              the whole A and B: the products in double, added to C and rounded once. TF32 operands are
//              read as the tensor cores read them, from their top 19 bits only, so an operand the kernel
//              forgot to round is truncated (and no longer matches the CPU reference).
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

#include "emu.h"
#include "mma_layouts.h"

namespace unet::kernels::cuda::ptx {

inline float emu_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t emu_word(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline void emu_cp_async(void* smem, const void* gmem, int bytes, bool valid) {
  if ((reinterpret_cast<uintptr_t>(smem) | (valid ? reinterpret_cast<uintptr_t>(gmem) : 0)) % bytes != 0)
    emu::fail("cp.async with a misaligned address");
  float* d = static_cast<float*>(smem);
  for (int i = 0; i < bytes / 4; ++i) d[i] = std::numeric_limits<float>::quiet_NaN();
  emu::self().uncommitted.push_back({smem, gmem, bytes, valid ? bytes : 0});
}
inline void cp_async4(void* smem, const void* gmem, bool valid) { emu_cp_async(smem, gmem, 4, valid); }
inline void cp_async16(void* smem, const void* gmem, bool valid) { emu_cp_async(smem, gmem, 16, valid); }
inline void cp_async_commit() {
  emu::Fiber& f = emu::self();
  f.groups.push_back(std::move(f.uncommitted));
  f.uncommitted.clear();
}
template <int N>
inline void cp_async_wait() {
  emu::Fiber& f = emu::self();
  while (f.groups.size() > static_cast<size_t>(N)) {
    for (const emu::Copy& c : f.groups.front()) {
      std::memset(c.dst, 0, c.bytes);
      if (c.src_bytes) std::memcpy(c.dst, c.src, c.src_bytes);
    }
    f.groups.pop_front();
  }
}

inline uint32_t to_tf32(float x) {
  uint32_t u = emu_word(x);
  if ((u & 0x7F800000u) != 0x7F800000u) u += 0x1000u;  // rna: add half an ulp of TF32, then cut
  return u & 0xFFFFE000u;
}
inline uint32_t emu_bf16(float x) {  // rn: ties to even; NaN stays NaN
  uint32_t u = emu_word(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u;
  return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}
inline uint32_t to_bf16x2(float lo, float hi) { return emu_bf16(lo) | (emu_bf16(hi) << 16); }

inline float emu_tf32_operand(uint32_t r) { return emu_bits(r & 0xFFFFE000u); }
inline float emu_bf16_operand(uint32_t r, int half) { return emu_bits(half ? (r & 0xFFFF0000u) : (r << 16)); }

// D (this lane's four elements) += A * B over k < K, A and B already in the warp's scratch.
template <int K>
inline void emu_mma_finish(float (&d)[4], const emu::WarpScratch& s) {
  emu::sync_warp();
  const int lane = emu::lane();
  for (int i = 0; i < 4; ++i) {
    const emu::mma_layout::RowCol rc = emu::mma_layout::c_f32(lane, i);
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += static_cast<double>(s.A[rc.row][k]) * s.B[k][rc.col];
    d[i] = static_cast<float>(static_cast<double>(d[i]) + sum);
  }
}

inline void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  emu::WarpScratch& s = emu::warp_scratch();
  const int lane = emu::lane();
  for (int i = 0; i < 4; ++i) {
    const auto rc = emu::mma_layout::a_tf32(lane, i);
    s.A[rc.row][rc.col] = emu_tf32_operand(a[i]);
  }
  for (int i = 0; i < 2; ++i) {
    const auto rc = emu::mma_layout::b_tf32(lane, i);
    s.B[rc.row][rc.col] = emu_tf32_operand(b[i]);
  }
  emu_mma_finish<8>(d, s);
}

inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  emu::WarpScratch& s = emu::warp_scratch();
  const int lane = emu::lane();
  for (int i = 0; i < 8; ++i) {
    const auto rc = emu::mma_layout::a_bf16(lane, i);
    s.A[rc.row][rc.col] = emu_bf16_operand(a[i / 2], i % 2);
  }
  for (int i = 0; i < 4; ++i) {
    const auto rc = emu::mma_layout::b_bf16(lane, i);
    s.B[rc.row][rc.col] = emu_bf16_operand(b[i / 2], i % 2);
  }
  emu_mma_finish<16>(d, s);
}

inline float* dynamic_smem() { return emu::dynamic_shared.data(); }

}  // namespace unet::kernels::cuda::ptx
