// dropout (inverted): keep element i iff u_i = philox::uniform(seed, offset, i) >= p, and scale the kept
// ones by 1/(1-p). The mask is regenerated from (seed, offset) in backward, never stored.
//
// philox::uniform(seed, offset, i) is word (offset+i) & 3 of the Philox block (offset+i) >> 2. One thread
// takes one whole block and serves its (up to) four elements, so each Philox evaluation is used four
// times; the words and the float conversion are those of kernels/philox.h, so the GPU's mask is the
// CPU's bit for bit.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/philox.h"

namespace unet::kernels::cuda {
namespace {

// The same conversion as philox::uniform: the top 24 bits of the word, times 2^-24.
__device__ __forceinline__ float word_to_uniform(uint32_t w) {
  return static_cast<float>(w >> 8) * (1.0f / 16777216.0f);
}

// out[i] = u_i >= p ? in[i] * scale : 0   (forward: in = x; backward: in = dy; same mask, same scale)
__global__ void dropout_mask_scale_kernel(const float* __restrict__ in, float* __restrict__ out, int64_t n, float p,
                                          float scale, uint64_t seed, uint64_t offset, const uint64_t* offset_base) {
  if (offset_base) offset += *offset_base;
  const uint64_t first_block = offset >> 2;
  const uint64_t last_block = (offset + static_cast<uint64_t>(n) - 1) >> 2;
  const int64_t nblocks = static_cast<int64_t>(last_block - first_block + 1);
  for (int64_t t : grid_stride(nblocks)) {
    const uint64_t blk = first_block + static_cast<uint64_t>(t);
    const philox::U32x4 r =
        philox::philox4x32_10(static_cast<uint32_t>(blk), static_cast<uint32_t>(blk >> 32), 0u, 0u, seed);
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint64_t idx = blk * 4 + w;  // counter index offset + i
      if (idx < offset) continue;
      const uint64_t i = idx - offset;
      if (i >= static_cast<uint64_t>(n)) continue;
      out[i] = word_to_uniform(r.v[w]) >= p ? in[i] * scale : 0.0f;
    }
  }
}

// One thread per Philox block that the elements offset .. offset + n - 1 touch. With an offset read when the
// kernel runs, the grid is sized for the most blocks n elements can touch (n / 4 + 2); the kernel's loop
// takes the exact count.
void launch(Stream s, const float* in, float* out, int64_t n, float p, uint64_t seed, uint64_t offset,
            const uint64_t* offset_base) {
  if (n <= 0) return;
  const int64_t nblocks =
      offset_base ? n / 4 + 2
                  : static_cast<int64_t>((((offset + static_cast<uint64_t>(n) - 1) >> 2) - (offset >> 2)) + 1);
  launch_over(nblocks, s, dropout_mask_scale_kernel, in, out, n, p, 1.0f / (1.0f - p), seed, offset, offset_base);
}

}  // namespace

void dropout_forward(Stream s, const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset,
                     const uint64_t* offset_base) {
  launch(s, x, y, n, p, seed, offset, offset_base);
}

void dropout_backward(Stream s, const float* dy, float* dx, int64_t n, float p, uint64_t seed, uint64_t offset,
                      const uint64_t* offset_base) {
  launch(s, dy, dx, n, p, seed, offset, offset_base);
}

}  // namespace unet::kernels::cuda
