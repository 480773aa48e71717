// softmax_xent: the weighted pixel-wise softmax cross-entropy (the paper's Eq. 1), and softmax_forward.
//   logits[N,K,H,W], labels[N,H,W], weights[N,H,W] (nullptr = all ones), P = N*H*W pixels:
//   loss[0]          = (1/P) sum_x w(x) (lse(x) - logit_{l(x)}(x)),  lse = m + log sum_k exp(logit_k - m)
//   dlogits[n,k,x]   = (1/P) w(x) (p_k(x) - [k == l(x)]),          p_k = exp(logit_k - m) / sum
// One thread per pixel (channel stride H*W: a warp reads 32 consecutive pixels of one channel). The loss is
// reduced in two deterministic stages: each block of the first kernel sums its pixels (in double) with
// cub::BlockReduce into a per-block slot of a fixed device array, and a one-block kernel adds the slots in
// order. A label outside [0,K) makes that pixel's loss term and its dlogits NaN, so the loss is NaN (the
// engine validates labels only on the CPU).
//
// The slots are a static __device__ array, rewritten by every call: two softmax_xent calls must not run
// concurrently on different streams (the engine has one stream per device).
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

constexpr int kXentThreads = 256;
constexpr int kMaxPartials = 1024;  // = the blocks of the first stage at most = the threads of the second
__device__ double g_loss_partials[kMaxPartials];

// Per pixel: dlogits and this pixel's loss term; per block: the sum of its pixels' terms -> slot blockIdx.x.
__global__ void __launch_bounds__(kXentThreads)
    softmax_xent_pixels_kernel(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                               const float* __restrict__ weights, float* __restrict__ dlogits, int64_t P, int64_t HW,
                               int K, float inv_P) {
  using BlockReduce = cub::BlockReduce<double, kXentThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  double acc = 0.0;
  for (int64_t p : grid_stride(P)) {
    const int64_t n = p / HW, q = p - n * HW;
    const float* l = logits + n * K * HW + q;
    float* d = dlogits + n * K * HW + q;
    float m = l[0];
    for (int k = 1; k < K; ++k) m = fmaxf(m, l[k * HW]);
    float sum = 0.0f;
    for (int k = 0; k < K; ++k) sum += expf(l[k * HW] - m);
    const int32_t lab = labels[p];
    const float w = weights ? weights[p] : 1.0f;
    if (lab >= 0 && lab < K) {
      const float lse = m + logf(sum);
      acc += static_cast<double>(w) * static_cast<double>(lse - l[static_cast<int64_t>(lab) * HW]);
      const float scale = inv_P * w;
      const float inv_sum = 1.0f / sum;
      for (int k = 0; k < K; ++k) {
        const float prob = expf(l[k * HW] - m) * inv_sum;
        d[k * HW] = scale * (prob - (k == lab ? 1.0f : 0.0f));
      }
    } else {
      acc += static_cast<double>(NAN);
      for (int k = 0; k < K; ++k) d[k * HW] = NAN;
    }
  }
  const double block_sum = BlockReduce(temp).Sum(acc);
  if (threadIdx.x == 0) g_loss_partials[blockIdx.x] = block_sum;
}

// loss[0] = (sum of the first stage's slots, in slot order through a fixed tree) / P
__global__ void __launch_bounds__(kMaxPartials)
    softmax_xent_finish_kernel(int nparts, double inv_P, float* __restrict__ loss) {
  using BlockReduce = cub::BlockReduce<double, kMaxPartials>;
  __shared__ typename BlockReduce::TempStorage temp;
  const double v = threadIdx.x < nparts ? g_loss_partials[threadIdx.x] : 0.0;
  const double total = BlockReduce(temp).Sum(v);
  if (threadIdx.x == 0) loss[0] = static_cast<float>(total * inv_P);
}

// probs[n,k,x] = exp(logit_k - m) / sum_j exp(logit_j - m)
__global__ void softmax_forward_kernel(const float* __restrict__ logits, float* __restrict__ probs, int64_t P,
                                       int64_t HW, int K) {
  for (int64_t p : grid_stride(P)) {
    const int64_t n = p / HW, q = p - n * HW;
    const float* l = logits + n * K * HW + q;
    float* o = probs + n * K * HW + q;
    float m = l[0];
    for (int k = 1; k < K; ++k) m = fmaxf(m, l[k * HW]);
    float sum = 0.0f;
    for (int k = 0; k < K; ++k) sum += expf(l[k * HW] - m);
    const float inv_sum = 1.0f / sum;
    for (int k = 0; k < K; ++k) o[k * HW] = expf(l[k * HW] - m) * inv_sum;
  }
}

}  // namespace

void softmax_xent(Stream s, const float* logits, const int32_t* labels, const float* weights, float* loss,
                  float* dlogits, int N, int K, int H, int W) {
  const cudaStream_t stream = as_stream(s);
  const int64_t HW = static_cast<int64_t>(H) * W, P = N * HW;
  if (P <= 0 || K <= 0) {  // no pixels (0/0, as on the CPU) or no classes (no label is valid): NaN
    softmax_xent_finish_kernel<<<1, kMaxPartials, 0, stream>>>(0, static_cast<double>(NAN), loss);
    UNET_CUDA_CHECK_LAUNCH();
    return;
  }
  int64_t blocks = ceil_div(P, kXentThreads);
  if (blocks > kMaxPartials) blocks = kMaxPartials;
  softmax_xent_pixels_kernel<<<static_cast<unsigned>(blocks), kXentThreads, 0, stream>>>(
      logits, labels, weights, dlogits, P, HW, K, static_cast<float>(1.0 / static_cast<double>(P)));
  UNET_CUDA_CHECK_LAUNCH();
  softmax_xent_finish_kernel<<<1, kMaxPartials, 0, stream>>>(static_cast<int>(blocks), 1.0 / static_cast<double>(P),
                                                             loss);
  UNET_CUDA_CHECK_LAUNCH();
}

void softmax_forward(Stream s, const float* logits, float* probs, int N, int K, int H, int W) {
  const int64_t HW = static_cast<int64_t>(H) * W, P = N * HW;
  if (K <= 0) return;
  launch_over(P, s, softmax_forward_kernel, logits, probs, P, HW, K);
}

}  // namespace unet::kernels::cuda
