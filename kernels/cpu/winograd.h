// Winograd's F(4x4, 3x3) for the CPU's 3x3 convolutions (forward, data and weight gradients), and
// the choice between it and the direct blocked product (kernels/cpu/conv_gemm.h), which stays the
// reference.
//
// The choice is a fixed rule of the layer's shape (conv3x3_uses_winograd), derived from measurements
// (bench/results/): never timed at run time, so a layer computes the same result on every run and
// every machine with the same build, and for any thread count. UNET_CONV3X3=direct (or winograd)
// in the environment, or set_conv3x3_algo, overrides the rule: the tests and benchmarks use it to
// run both on the same shapes.
//
// Error: about 4x the direct product's in fp32 (normalised L2 against float64: ~2e-6 with inputs
// and weights uniform in [-1, 1], whatever the channel count, since the reduction over channels is
// summed in blocks of 64); the weight gradient 0.8e-6 to 2.9e-6, its reduction over tiles summed
// in blocks of 128 (the direct product's: 0.8e-7 to 2.4e-7, summed in double across chunks);
// measured per layer in tests/test_winograd.cpp.
#pragma once
#include <cstdint>

#include "kernels/cpu/conv_gemm.h"

namespace unet::kernels::cpu {

enum class Conv3x3Algo { kAuto, kDirect, kWinograd };

// kAuto: the rule below; kDirect / kWinograd: that algorithm for every shape. The default comes
// from UNET_CONV3X3 (auto, direct or winograd; read once). Not while a convolution runs.
void set_conv3x3_algo(Conv3x3Algo algo);
Conv3x3Algo conv3x3_algo();

enum class Conv3x3Pass { kForward, kBackwardData, kBackwardWeight };

// The rule (kAuto), from the per-layer measurements of bench/bench_cpu_winograd.cpp: Winograd when
// the pass reduces over at least 8 channels (C for the forward, K for the data gradient) and its
// output has at least 16 tiles of 4 x 4. Below 8 channels the transforms cost more than the
// products save (1 to 4 input channels: 0.5-0.75x the direct product's speed, 8: 1.15x); with
// fewer tiles the filters' transform is not repaid (9 tiles: a tie). Every other 3x3 layer of the
// paper's and the base-16 network measured 1.3x to 3.5x faster per core.
constexpr int kWinogradMinChannels = 8;
constexpr int64_t kWinogradMinTiles = 16;

// The weight gradient (kBackwardWeight) reduces over the tiles of dy (N x 4x4 tiles of the
// forward's output) into C x K products, both padded (C to 8 rows, K to 32 columns), so its rule
// is on both: Winograd when C >= 8, K >= 16 and the output has at least 9 tiles. Per core, with the
// direct product as 1: C = 1, 2, 4 (K = 64): 0.55x, 0.69x, 0.84-0.88x; C = 8: 1.5x; K = 2, 4, 8
// (C = 64): 0.34x, 0.53x, 0.79x; 16 -> 16: 1.15-1.3x; 256 -> 256 with 1, 4, 9 tiles: 0.82x, 0.98x,
// 1.3x; the other 3x3 layers measured of the paper's and the base-16 network 1.5x to 3.2x
// (bench/bench_cpu_winograd.cpp).
constexpr int kWinogradWeightMinInputs = 8;
constexpr int kWinogradWeightMinOutputs = 16;
constexpr int64_t kWinogradWeightMinTiles = 9;

// Whether conv3x3_forward (conv3x3_backward_data, conv3x3_backward_weight) of this shape runs
// Winograd: the rule under kAuto, the forced choice otherwise. Shapes as the ops take them (the
// forward's input x[N, C, H, W], K output channels).
bool conv3x3_uses_winograd(Conv3x3Pass pass, int N, int C, int H, int W, int K);

namespace detail {

// The filters of a valid 3x3 correlation, filter (m, r) = output channel m, input channel r:
//   g_{m,r}[t] = w[m * m_stride + r * r_stride + (flip ? 8 - t : t)]     t = di * 3 + dj
struct WinoFilters {
  const float* w;
  int64_t m_stride, r_stride;
  bool flip;
};

// y[n, m, i, j] = bias[m] + sum_{r, di, dj} g_{m,r}[di * 3 + dj] * x[n, r, i + di - pad, j + dj - pad]
// x[N, R, H, W] (zero outside the plane), y[N, M, H + 2 pad - 2, W + 2 pad - 2]; bias may be null.
// The forward is pad 0 with g = w[k, c]; the data gradient pad 2 with the flipped, transposed
// filters (a full correlation of dy). relu: y = max(0, that), applied as the output tiles are written.
// mask (optional, laid out as x): x reads as zero where it is not > 0 (the ReLU's mask on dy, applied as the
// input tiles are transformed).
// skip (pad 0, no mask): the first skip.Cs input channels are read from the skip tensor's crop (conv_gemm.h);
// x then holds the other R - skip.Cs.
void winograd_conv3x3(const float* x, int N, int R, int H, int W, int pad, const WinoFilters& g, int M,
                      const float* bias, float* y, bool relu = false, const float* mask = nullptr,
                      const SkipView& skip = {});

// dw[k, c, di, dj] = sum_{n, i, j} dy[n, k, i, j] * x[n, c, i + di, j + dj]   (kernels/cpu/winograd_weight.cpp)
// x[N, C, H, W], dy[N, K, H - 2, W - 2]; the bias gradient is left to the caller. mask (optional, laid out as
// dy): dy reads as zero where it is not > 0 (the ReLU's mask, applied as dy's tiles are transformed).
// skip: the first skip.Cs channels of x read from the skip tensor's crop (x holds the other C - skip.Cs).
void winograd_conv3x3_weight(const float* x, const float* dy, int N, int C, int H, int W, int K, float* dw,
                             const float* mask = nullptr, const SkipView& skip = {});

}  // namespace detail
}  // namespace unet::kernels::cpu
