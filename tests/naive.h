// Float64 reference implementations written as the formulas read, for the tests only: the forward
// passes that finite differences differentiate, and the yardstick for the fast fp32 kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace unet::naive {

using V = std::vector<double>;

inline V conv3x3(const V& x, const V& w, const V& b, int N, int C, int H, int W, int K) {
  int Ho = H - 2, Wo = W - 2;
  V y(static_cast<size_t>(N) * K * Ho * Wo);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < Ho; ++i)
        for (int j = 0; j < Wo; ++j) {
          double s = b[k];
          for (int c = 0; c < C; ++c)
            for (int di = 0; di < 3; ++di)
              for (int dj = 0; dj < 3; ++dj)
                s += w[((k * C + c) * 3 + di) * 3 + dj] * x[((n * C + c) * H + i + di) * W + j + dj];
          y[((n * K + k) * Ho + i) * Wo + j] = s;
        }
  return y;
}

inline V conv1x1(const V& x, const V& w, const V& b, int N, int C, int H, int W, int K) {
  V y(static_cast<size_t>(N) * K * H * W);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int p = 0; p < H * W; ++p) {
        double s = b[k];
        for (int c = 0; c < C; ++c) s += w[k * C + c] * x[(n * C + c) * H * W + p];
        y[(n * K + k) * H * W + p] = s;
      }
  return y;
}

inline V relu(const V& x) {
  V y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = std::max(x[i], 0.0);
  return y;
}

inline V maxpool2x2(const V& x, int N, int C, int H, int W) {
  V y(static_cast<size_t>(N) * C * (H / 2) * (W / 2));
  for (int nc = 0; nc < N * C; ++nc)
    for (int i = 0; i < H / 2; ++i)
      for (int j = 0; j < W / 2; ++j) {
        const double* p = &x[(static_cast<size_t>(nc) * H + 2 * i) * W + 2 * j];
        y[(static_cast<size_t>(nc) * (H / 2) + i) * (W / 2) + j] = std::max({p[0], p[1], p[W], p[W + 1]});
      }
  return y;
}

inline V upconv2x2(const V& x, const V& w, const V& b, int N, int C, int H, int W, int K) {
  V y(static_cast<size_t>(N) * K * 4 * H * W);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int yy = 0; yy < 2 * H; ++yy)
        for (int xx = 0; xx < 2 * W; ++xx) {
          double s = b[k];
          for (int c = 0; c < C; ++c)
            s += x[((n * C + c) * H + yy / 2) * W + xx / 2] * w[((c * K + k) * 2 + yy % 2) * 2 + xx % 2];
          y[((n * K + k) * 2 * H + yy) * 2 * W + xx] = s;
        }
  return y;
}

inline V crop_concat(const V& s, const V& u, int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu) {
  int oy = (Hs - Hu) / 2, ox = (Ws - Wu) / 2;
  V y(static_cast<size_t>(N) * (Cs + Cu) * Hu * Wu);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < Cs + Cu; ++c)
      for (int i = 0; i < Hu; ++i)
        for (int j = 0; j < Wu; ++j)
          y[((n * (Cs + Cu) + c) * Hu + i) * Wu + j] =
              c < Cs ? s[((n * Cs + c) * Hs + i + oy) * Ws + j + ox] : u[((n * Cu + c - Cs) * Hu + i) * Wu + j];
  return y;
}

// -(1/P) sum_x w(x) log softmax(a)(x)_{l(x)}
inline double softmax_xent(const V& a, const std::vector<int32_t>& l, const V& w, int N, int K, int H, int W) {
  double total = 0.0;
  int plane = H * W;
  for (int n = 0; n < N; ++n)
    for (int p = 0; p < plane; ++p) {
      double m = -1e300;
      for (int k = 0; k < K; ++k) m = std::max(m, a[(n * K + k) * plane + p]);
      double s = 0.0;
      for (int k = 0; k < K; ++k) s += std::exp(a[(n * K + k) * plane + p] - m);
      double lse = m + std::log(s);
      double wx = w.empty() ? 1.0 : w[n * plane + p];
      total += wx * (lse - a[(n * K + l[n * plane + p]) * plane + p]);
    }
  return total / (static_cast<double>(N) * plane);
}

}  // namespace unet::naive
