// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: the i-th number of a stream depends only on (key, counter), so the CPU and the
// GPU draw bit-identical streams and any element can be drawn without touching the others.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define UNET_HD __host__ __device__ __forceinline__
#else
#define UNET_HD inline
#endif

namespace unet::philox {

struct U32x4 {
  uint32_t v[4];
};

UNET_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// One block of four 32-bit outputs for counter (c0..c3) under a 64-bit key.
UNET_HD U32x4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint64_t key) {
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return U32x4{{c0, c1, c2, c3}};
}

// The i-th 32-bit word of stream (key, offset): block i/4 of the counter space starting at `offset`,
// word i%4. Draws of one op use offsets [offset, offset + n) and the caller advances by n.
UNET_HD uint32_t word(uint64_t key, uint64_t offset, uint64_t i) {
  uint64_t idx = offset + i;
  uint64_t block = idx >> 2;
  U32x4 r = philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u, key);
  return r.v[idx & 3];
}

// Uniform float in [0, 1) with 24 random bits: exact in float, identical on CPU and GPU.
UNET_HD float uniform(uint64_t key, uint64_t offset, uint64_t i) {
  return static_cast<float>(word(key, offset, i) >> 8) * (1.0f / 16777216.0f);
}

}  // namespace unet::philox
