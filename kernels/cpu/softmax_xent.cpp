// softmax_xent and softmax_forward on the CPU: the paper's energy (Eq. 1).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace unet::kernels::cpu {

// With m = max_k a_k(x) and lse = m + log sum_k exp(a_k(x) - m):
//   log p_l(x) = a_l(x) - lse                               (finite for any finite logits)
//   loss       = -(1/P) sum_x w(x) log p_l(x)(x),  P = N*H*W
//   dlogits_k  = (1/P) w(x) (p_k(x) - [k == l(x)])
// A label outside [0, K) makes the loss NaN (the engine rejects such labels before this).
// The loss is summed in double per fixed chunk of pixels, then over the chunks in order: the same
// value for any thread count.
void softmax_xent(Stream, const float* logits, const int32_t* labels, const float* weights, float* loss, float* dlogits,
                  int N, int K, int H, int W) {
  const int64_t plane = static_cast<int64_t>(H) * W, P = N * plane;
  const float inv = 1.0f / static_cast<float>(P);
  const int64_t grain = grain_for(P, 8 * K);
  std::vector<double> part(static_cast<size_t>((P + grain - 1) / grain), 0.0);
  std::vector<char> bad(part.size(), 0);
  parallel_for(P, grain, [&](int64_t b, int64_t e) {
    double total = 0.0;
    bool bad_label = false;
    for (int64_t px = b; px < e; ++px) {
      const int64_t n = px / plane, p = px % plane;
      const float* a = logits + n * K * plane + p;
      float* g = dlogits + n * K * plane + p;
      const int l = labels[px];
      const float wx = weights ? weights[px] : 1.0f;
      float m = a[0];
      for (int k = 1; k < K; ++k) m = std::fmax(m, a[k * plane]);
      float s = 0.0f;
      for (int k = 0; k < K; ++k) s += std::exp(a[k * plane] - m);
      const float lse = m + std::log(s);
      if (l < 0 || l >= K) {
        bad_label = true;
        for (int k = 0; k < K; ++k) g[k * plane] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      total += static_cast<double>(wx) * (lse - a[l * plane]);
      for (int k = 0; k < K; ++k) {
        float pk = std::exp(a[k * plane] - lse);
        g[k * plane] = inv * wx * (pk - (k == l ? 1.0f : 0.0f));
      }
    }
    part[static_cast<size_t>(b / grain)] = total;
    bad[static_cast<size_t>(b / grain)] = bad_label;
  });
  double total = 0.0;
  bool bad_label = false;
  for (size_t c = 0; c < part.size(); ++c) {
    total += part[c];
    bad_label = bad_label || bad[c];
  }
  *loss = bad_label ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(total / static_cast<double>(P));
}

// probs_k(x) = exp(a_k(x) - lse(x))
void softmax_forward(Stream, const float* logits, float* probs, int N, int K, int H, int W) {
  const int64_t plane = static_cast<int64_t>(H) * W, P = N * plane;
  parallel_for(P, grain_for(P, 8 * K), [&](int64_t b, int64_t e) {
    for (int64_t px = b; px < e; ++px) {
      const int64_t n = px / plane, p = px % plane;
      const float* a = logits + n * K * plane + p;
      float* q = probs + n * K * plane + p;
      float m = a[0];
      for (int k = 1; k < K; ++k) m = std::fmax(m, a[k * plane]);
      float s = 0.0f;
      for (int k = 0; k < K; ++k) s += std::exp(a[k * plane] - m);
      const float lse = m + std::log(s);
      for (int k = 0; k < K; ++k) q[k * plane] = std::exp(a[k * plane] - lse);
    }
  });
}

}  // namespace unet::kernels::cpu
