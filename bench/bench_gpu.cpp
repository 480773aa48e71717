// bench_gpu: every kernel of the CUDA table at the paper's U-Net shapes (batch 1, 572x572 tile), each timed
// with CUDA events, one call at a time, and reported as the median of --iters calls (default 20), with the
// baselines measured in the same run:
//   * the 23 convolutions of the network (18 3x3, 4 up-convolutions, the 1x1 head) at their own shapes,
//     forward, backward data and backward weight, each beside cuDNN's fastest algorithm from
//     cudnnFind*Algorithm in three arithmetics (bench/cudnn_conv.h): fma (FP32 FMA only: our arithmetic),
//     tf32 (TF32 tensor cores permitted) and bf16 (bfloat16 data, tensor cores). Our kernels in three
//     precisions: ours/ (FP32 FMA) reports ratio_fma / ratio_tf32 / ratio_bf16 = our time / cuDNN's
//     (below 1: ours is faster), and for the 3x3 forwards ratio_sgemm against a cuBLAS SGEMM of the same
//     implicit-GEMM dimensions; ours_tf32/ and ours_bf16/ (tensor cores, FP32 tensors) report the ratio to
//     cuDNN in their own arithmetic (cuDNN's bf16 moves BF16 tensors, half our bytes). The 3x3 forwards are
//     also timed in cuDNN with NHWC tensors (cudnn_tf32_nhwc/, cudnn_bf16_nhwc/): what the layout is worth to
//     the vendor library (docs/gpu.md, the choice of NCHW);
//   * the memory-bound ops (relu, maxpool2x2, crop_concat, dropout, softmax_xent, softmax_forward,
//     sgd_momentum, add, fill, check_finite) with ratio_memcpy = our time / a device-to-device copy
//     moving the same bytes, and ratio_cudnn where cuDNN has the op (activation, pooling, softmax).
// Counters: ms (median GPU time per call), GFLOP/s or GB/s, the ratios, and for cuDNN rows the algorithm
// and math type chosen. Extra flags (before Google Benchmark's own): --iters N, --jsonl FILE (every
// finished row appended as one JSON line, so a run cut short keeps what it measured). Without a CUDA
// device it prints "SKIPPED: no CUDA device" and exits 0 (--benchmark_list_tests still lists the rows).
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/gpu_timing.h"
#if UNET_BENCH_HAVE_CUDNN
#include "bench/cudnn_conv.h"
#endif
#include "engine/backend.h"
#include "kernels/precision.h"

#define CUBLAS_CHECK(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t st_ = (call);                                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                   \
      throw std::runtime_error(std::string(#call) + " failed: cuBLAS status " + std::to_string(st_)); \
  } while (0)

namespace {

using namespace bench_gpu;
using unet::kernels::Precision;

// --- cuBLAS ---------------------------------------------------------------------------------------------

cublasHandle_t cublas() {
  static cublasHandle_t h = [] {
    cublasHandle_t x = nullptr;
    CUBLAS_CHECK(cublasCreate(&x));
    CUBLAS_CHECK(cublasSetStream(x, g_stream));
    CUBLAS_CHECK(cublasSetMathMode(x, CUBLAS_DEFAULT_MATH));  // fp32 SGEMM (TF32 only with CUBLAS_TF32_TENSOR_OP_MATH)
    return x;
  }();
  return h;
}

double sgemm_ms(int m, int n, int k) {
  return memoized("sgemm/" + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k), [&] {
    Buf a(static_cast<int64_t>(m) * k), b(static_cast<int64_t>(k) * n), c(static_cast<int64_t>(m) * n);
    const float one = 1.0f, zero = 0.0f;
    return median_ms([&] {
      CUBLAS_CHECK(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a.f(), m, b.f(), k, &zero, c.f(), m));
    });
  });
}

// --- the convolutions of the paper's network ------------------------------------------------------------

enum class ConvKind { k3x3, k1x1, up2x2 };
const char* conv_name(ConvKind k) { return k == ConvKind::k3x3 ? "conv3x3" : k == ConvKind::k1x1 ? "conv1x1" : "upconv2x2"; }
const char* pass_name(int p) { return p == 0 ? "forward" : p == 1 ? "backward_data" : "backward_weight"; }

struct Layer {
  std::string name;  // the checkpoint's parameter prefix (docs/checkpoints.md), e.g. "down.0.conv1"
  ConvKind kind;
  int C, K, H, W;    // our kernels' arguments (forward input), batch 1
  std::string label() const {
    return name + "/" + std::to_string(C) + "to" + std::to_string(K) + "@" + std::to_string(H) + "x" + std::to_string(W);
  }
};

// The convolutions of the U-Net of Fig. 1 in the order they run, with the sizes a `tile` input gives them.
std::vector<Layer> paper_layers(int tile = 572, int base = 64, int depth = 4, int in_channels = 1, int classes = 2) {
  std::vector<Layer> v;
  int s = tile, c = in_channels;
  auto pair = [&](const std::string& prefix, int cin, int cout) {
    v.push_back({prefix + ".conv1", ConvKind::k3x3, cin, cout, s, s});
    s -= 2;
    v.push_back({prefix + ".conv2", ConvKind::k3x3, cout, cout, s, s});
    s -= 2;
  };
  for (int l = 0; l < depth; ++l) {
    pair("down." + std::to_string(l), c, base << l);
    c = base << l;
    s /= 2;
  }
  pair("bottom", c, base << depth);
  c = base << depth;
  for (int l = depth - 1; l >= 0; --l) {
    const int out = base << l;
    v.push_back({"up." + std::to_string(l) + ".upconv", ConvKind::up2x2, c, out, s, s});
    s *= 2;
    pair("up." + std::to_string(l), 2 * out, out);
    c = out;
  }
  v.push_back({"head", ConvKind::k1x1, c, classes, s, s});
  return v;
}

double conv_flops(const Layer& s) {
  const double taps = s.kind == ConvKind::k3x3 ? 9 : s.kind == ConvKind::k1x1 ? 1 : 4;
  const double pixels = s.kind == ConvKind::k3x3 ? double(s.H - 2) * (s.W - 2) : double(s.H) * s.W;  // per tap
  return 2.0 * s.C * s.K * taps * pixels;
}

#if UNET_BENCH_HAVE_CUDNN
// The cuDNN equivalent of one pass of one of our convolutions. upconv2x2 (C -> K, H -> 2H) is the
// transpose of the stride-2 convolution G: input [1,K,2H,2W] * filter [C,K,2,2] -> [1,C,H,W], so
// upconv forward = G's backward data, upconv backward data = G's forward, upconv backward weight =
// G's backward filter (bias gradient over G's input).
std::unique_ptr<CudnnConv> cudnn_for(const Layer& s, int pass, Math math) {
  if (s.kind == ConvKind::up2x2) {
    const Pass p = pass == 0 ? Pass::BackwardData : pass == 1 ? Pass::Forward : Pass::BackwardFilter;
    return std::make_unique<CudnnConv>(p, math, 1, s.K, 2 * s.H, 2 * s.W, s.C, 2, 2, /*bias_of_input=*/true);
  }
  const Pass p = pass == 0 ? Pass::Forward : pass == 1 ? Pass::BackwardData : Pass::BackwardFilter;
  return std::make_unique<CudnnConv>(p, math, 1, s.C, s.H, s.W, s.K, s.kind == ConvKind::k3x3 ? 3 : 1, 1);
}

std::string cudnn_key(const Layer& s, int pass, Math math) {
  return std::string("cudnn_") + math_name(math) + "/" + conv_name(s.kind) + "_" + pass_name(pass) + "/" + s.label();
}

void cudnn_conv(benchmark::State& st, const Layer& s, int pass, Math math) {
  auto conv = cudnn_for(s, pass, math);
  const double ms = measure(st, [&] { (*conv)(); }, conv_flops(s), 0.0);
  st.counters["algo"] = conv->algo();
  st.counters["math_type"] = conv->math_used();
  st.counters["workspace_MiB"] = conv->workspace_mib();
  memo()[cudnn_key(s, pass, math)] = ms;
}
#endif

// "ours" (FP32 FMA), "ours_tf32", "ours_bf16": our kernels in each precision.
std::string ours_name(Precision prec) {
  return prec == Precision::FP32 ? "ours" : std::string("ours_") + unet::kernels::precision_name(prec);
}

void our_conv(benchmark::State& st, const Layer& s, int pass, Precision prec) {
  const int N = 1, C = s.C, K = s.K, H = s.H, W = s.W;
  const int64_t xs = int64_t(N) * C * H * W;
  const int64_t ws = s.kind == ConvKind::k3x3 ? int64_t(K) * C * 9 : s.kind == ConvKind::k1x1 ? int64_t(K) * C : int64_t(C) * K * 4;
  const int64_t ys = s.kind == ConvKind::k3x3 ? int64_t(N) * K * (H - 2) * (W - 2)
                     : s.kind == ConvKind::k1x1 ? int64_t(N) * K * H * W : int64_t(N) * K * 4 * H * W;
  Buf x(xs), w(ws, -0.1f, 0.1f, 2), b(K), y(ys, -1.0f, 1.0f, 3), dw(ws), db(K);
  const auto& k = *g_k;
  std::function<void()> f;
  if (s.kind == ConvKind::k3x3) {
    if (pass == 0) f = [&] { k.conv3x3_forward(g_stream, prec, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.conv3x3_backward_data(g_stream, prec, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.conv3x3_backward_weight(g_stream, prec, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  } else if (s.kind == ConvKind::k1x1) {
    if (pass == 0) f = [&] { k.conv1x1_forward(g_stream, prec, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.conv1x1_backward_data(g_stream, prec, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.conv1x1_backward_weight(g_stream, prec, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  } else {
    if (pass == 0) f = [&] { k.upconv2x2_forward(g_stream, prec, x.f(), w.f(), b.f(), y.f(), N, C, H, W, K); };
    if (pass == 1) f = [&] { k.upconv2x2_backward_data(g_stream, prec, y.f(), w.f(), x.f(), N, C, H, W, K); };
    if (pass == 2) f = [&] { k.upconv2x2_backward_weight(g_stream, prec, x.f(), y.f(), dw.f(), db.f(), N, C, H, W, K); };
  }
  const double ms = measure(st, f, conv_flops(s), 0.0);
#if UNET_BENCH_HAVE_CUDNN
  // The baselines: from the cuDNN rows just before (memo), or measured now when those were filtered out
  // or failed (a failure leaves the ratio out rather than the row). FP32 rows take all three; a TF32 or
  // BF16 row the cuDNN arithmetic of its own precision.
  for (Math m : {Math::FMA, Math::TF32, Math::BF16}) {
    if (prec == Precision::TF32 && m != Math::TF32) continue;
    if (prec == Precision::BF16 && m != Math::BF16) continue;
    try {
      const double base = memoized(cudnn_key(s, pass, m), [&] {
        auto conv = cudnn_for(s, pass, m);
        return median_ms([&] { (*conv)(); });
      });
      st.counters[std::string("ratio_") + math_name(m)] = ms / base;
    } catch (const std::exception&) {
    }
  }
#endif
  if (s.kind == ConvKind::k3x3 && pass == 0 && prec == Precision::FP32)
    st.counters["ratio_sgemm"] = ms / sgemm_ms((H - 2) * (W - 2), K, 9 * C);
}

// A memory-bound row: time f, report GB/s of `traffic` bytes, the ratio to a copy of the same traffic, and
// the ratio to cuDNN's version of the op when there is one.
void memory_row(benchmark::State& st, const std::function<void()>& f, double traffic,
                const std::function<double()>& cudnn_baseline) {
  const double ms = measure(st, f, 0.0, traffic);
  st.counters["ratio_memcpy"] = ms / memcpy_ms(traffic);
  if (cudnn_baseline) st.counters["ratio_cudnn"] = ms / cudnn_baseline();
}

void register_all() {
  auto reg = [](const std::string& name, std::function<void(benchmark::State&)> body) {
    benchmark::RegisterBenchmark(name.c_str(), [body](benchmark::State& st) { guarded(st, body); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->Iterations(g_iters);
  };

  // Per layer and pass: cuDNN in its three arithmetics, then ours (whose ratios read their times).
  for (const Layer& s : paper_layers()) {
    for (int pass = 0; pass < 3; ++pass) {
      const std::string tail = std::string(conv_name(s.kind)) + "_" + pass_name(pass) + "/" + s.label();
#if UNET_BENCH_HAVE_CUDNN
      for (Math m : {Math::FMA, Math::TF32, Math::BF16}) {
        const bool no_bias = m == Math::BF16 && pass == 2;
        reg(std::string("cudnn_") + math_name(m) + "/" + tail + (no_bias ? "/no_db" : ""),
            [s, pass, m](benchmark::State& st) { cudnn_conv(st, s, pass, m); });
      }
#endif
#if UNET_BENCH_HAVE_CUDNN
      if (s.kind == ConvKind::k3x3 && pass == 0)
        for (Math m : {Math::TF32, Math::BF16})
          reg(std::string("cudnn_") + math_name(m) + "_nhwc/" + tail, [s, m](benchmark::State& st) {
            CudnnConv conv(Pass::Forward, m, 1, s.C, s.H, s.W, s.K, 3, 1, false, /*nhwc=*/true);
            measure(st, [&] { conv(); }, conv_flops(s), 0.0);
            st.counters["algo"] = conv.algo();
            st.counters["math_type"] = conv.math_used();
          });
#endif
      for (Precision prec : {Precision::FP32, Precision::TF32, Precision::BF16})
        reg(ours_name(prec) + "/" + tail, [s, pass, prec](benchmark::State& st) { our_conv(st, s, pass, prec); });
    }
  }

  // relu at 64x570x570.
  {
    const int C = 64, H = 570, W = 570;
    const int64_t n = int64_t(C) * H * W;
    reg("ours/relu_forward/64x570x570", [=](benchmark::State& st) {
      Buf x(n), y(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, C, H, W);
        cudnnActivationDescriptor_t a;
        CUDNN_CHECK(cudnnCreateActivationDescriptor(&a));
        CUDNN_CHECK(cudnnSetActivationDescriptor(a, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
        const float one = 1.0f, zero = 0.0f;
        const double ms = median_ms([&] { CUDNN_CHECK(cudnnActivationForward(cudnn(), a, &one, d.d, x.f(), &zero, d.d, y.f())); });
        cudnnDestroyActivationDescriptor(a);
        return ms;
      };
#endif
      memory_row(st, [&] { g_k->relu_forward(g_stream, x.f(), y.f(), n); }, 2.0 * n * 4, base);
    });
    reg("ours/relu_backward/64x570x570", [=](benchmark::State& st) {
      Buf y(n), dy(n, -1, 1, 5), dx(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, C, H, W);
        cudnnActivationDescriptor_t a;
        CUDNN_CHECK(cudnnCreateActivationDescriptor(&a));
        CUDNN_CHECK(cudnnSetActivationDescriptor(a, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
        const float one = 1.0f, zero = 0.0f;
        const double ms = median_ms([&] {
          CUDNN_CHECK(cudnnActivationBackward(cudnn(), a, &one, d.d, y.f(), d.d, dy.f(), d.d, y.f(), &zero, d.d, dx.f()));
        });
        cudnnDestroyActivationDescriptor(a);
        return ms;
      };
#endif
      memory_row(st, [&] { g_k->relu_backward(g_stream, y.f(), dy.f(), dx.f(), n); }, 3.0 * n * 4, base);
    });
  }

  // maxpool2x2 at 64x568x568.
  {
    const int C = 64, H = 568, W = 568;
    const int64_t n = int64_t(C) * H * W, m = n / 4;
    for (int pass = 0; pass < 2; ++pass) {
      reg(std::string("ours/maxpool2x2_") + (pass ? "backward" : "forward") + "/64x568x568", [=](benchmark::State& st) {
        Buf x(n), y(m), dy(m, -1, 1, 4), dx(n);
        std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
        base = [&] {
          TensorDesc xd(1, C, H, W), yd(1, C, H / 2, W / 2);
          cudnnPoolingDescriptor_t p;
          CUDNN_CHECK(cudnnCreatePoolingDescriptor(&p));
          CUDNN_CHECK(cudnnSetPooling2dDescriptor(p, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0,
                                                  0, 2, 2));
          const float one = 1.0f, zero = 0.0f;
          CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
          const double ms = median_ms([&] {
            if (pass == 0) CUDNN_CHECK(cudnnPoolingForward(cudnn(), p, &one, xd.d, x.f(), &zero, yd.d, y.f()));
            else CUDNN_CHECK(cudnnPoolingBackward(cudnn(), p, &one, yd.d, y.f(), yd.d, dy.f(), xd.d, x.f(), &zero, xd.d, dx.f()));
          });
          cudnnDestroyPoolingDescriptor(p);
          return ms;
        };
#endif
        if (pass == 0)
          memory_row(st, [&] { g_k->maxpool2x2_forward(g_stream, x.f(), y.f(), 1, C, H, W); }, double(n + m) * 4, base);
        else
          memory_row(st, [&] { g_k->maxpool2x2_backward(g_stream, x.f(), dy.f(), dx.f(), 1, C, H, W); },
                     double(2 * n + m) * 4, base);
      });
    }
  }

  // crop_concat: the last skip connection, 64x568x568 cropped to 392x392, stacked with 64x392x392.
  {
    const int Cs = 64, Hs = 568, Ws = 568, Cu = 64, Hu = 392, Wu = 392;
    const int64_t ns = int64_t(Cs) * Hs * Ws, nu = int64_t(Cu) * Hu * Wu, ny = int64_t(Cs + Cu) * Hu * Wu;
    reg("ours/crop_concat_forward/64x568x568+64x392x392", [=](benchmark::State& st) {
      Buf s(ns), u(nu), y(ny);
      memory_row(st, [&] { g_k->crop_concat_forward(g_stream, s.f(), u.f(), y.f(), 1, Cs, Hs, Ws, Cu, Hu, Wu); },
                 2.0 * ny * 4, nullptr);
    });
    reg("ours/crop_concat_backward/64x568x568+64x392x392", [=](benchmark::State& st) {
      Buf dy(ny), ds(ns), du(nu);
      memory_row(st, [&] { g_k->crop_concat_backward(g_stream, dy.f(), ds.f(), du.f(), 1, Cs, Hs, Ws, Cu, Hu, Wu); },
                 double(ny + ns + nu) * 4, nullptr);
    });
  }

  // dropout before the bottleneck: 1024x28x28, p = 0.5.
  {
    const int64_t n = 1024LL * 28 * 28;
    reg("ours/dropout_forward/1024x28x28", [=](benchmark::State& st) {
      Buf x(n), y(n);
      memory_row(st, [&] { g_k->dropout_forward(g_stream, x.f(), y.f(), n, 0.5f, 42, 12345); }, 2.0 * n * 4, nullptr);
    });
    reg("ours/dropout_backward/1024x28x28", [=](benchmark::State& st) {
      Buf dy(n), dx(n);
      memory_row(st, [&] { g_k->dropout_backward(g_stream, dy.f(), dx.f(), n, 0.5f, 42, 12345); }, 2.0 * n * 4, nullptr);
    });
  }

  // softmax_xent and softmax on the 2x388x388 output map.
  {
    const int K = 2, H = 388, W = 388;
    const int64_t P = int64_t(H) * W, n = K * P;
    reg("ours/softmax_xent/2x388x388", [=](benchmark::State& st) {
      Buf logits(n, -4, 4), weights(P, 0.5f, 11.0f), loss(1), dlogits(n);
      Buf labels(P);
      {
        std::vector<int32_t> h(static_cast<size_t>(P));
        for (int64_t i = 0; i < P; ++i) h[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % K);
        UNET_CUDA_CHECK(cudaMemcpy(labels.i(), h.data(), h.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
      }
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {  // cudnnSoftmaxForward(LOG): the log-probabilities alone, no loss, no gradient
        TensorDesc d(1, K, H, W);
        const float one = 1.0f, zero = 0.0f;
        return median_ms([&] {
          CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d, logits.f(),
                                          &zero, d.d, dlogits.f()));
        });
      };
#endif
      memory_row(st, [&] {
        g_k->softmax_xent(g_stream, logits.f(), labels.i(), weights.f(), loss.f(), dlogits.f(), 1, K, H, W);
      }, double(2 * n + 2 * P) * 4, base);
    });
    reg("ours/softmax_forward/2x388x388", [=](benchmark::State& st) {
      Buf logits(n, -4, 4), probs(n);
      std::function<double()> base;
#if UNET_BENCH_HAVE_CUDNN
      base = [&] {
        TensorDesc d(1, K, H, W);
        const float one = 1.0f, zero = 0.0f;
        return median_ms([&] {
          CUDNN_CHECK(cudnnSoftmaxForward(cudnn(), CUDNN_SOFTMAX_ACCURATE, CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d,
                                          logits.f(), &zero, d.d, probs.f()));
        });
      };
#endif
      memory_row(st, [&] { g_k->softmax_forward(g_stream, logits.f(), probs.f(), 1, K, H, W); }, 2.0 * n * 4, base);
    });
  }

  // The optimiser and helpers over all 31,030,658 parameters of the paper's network.
  {
    const int64_t n = 31030658;
    reg("ours/sgd_momentum/31030658", [=](benchmark::State& st) {
      Buf w(n), g(n, -1, 1, 2), v(n, -1, 1, 3);
      memory_row(st, [&] { g_k->sgd_momentum(g_stream, w.f(), g.f(), v.f(), n, 1e-6f, 0.99f, 0.0f); }, 5.0 * n * 4,
                 nullptr);
    });
    reg("ours/add/31030658", [=](benchmark::State& st) {
      Buf y(n), x(n, -1, 1, 2);
      memory_row(st, [&] { g_k->add(g_stream, y.f(), x.f(), n); }, 3.0 * n * 4, nullptr);
    });
    reg("ours/fill/31030658", [=](benchmark::State& st) {
      Buf y(n);
      memory_row(st, [&] { g_k->fill(g_stream, y.f(), 0.0f, n); }, 1.0 * n * 4, nullptr);
    });
    reg("ours/check_finite/31030658", [=](benchmark::State& st) {
      Buf x(n), flag(1);
      memory_row(st, [&] { g_k->check_finite(g_stream, x.f(), n, flag.i()); }, 1.0 * n * 4, nullptr);
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Our flags first; the rest is Google Benchmark's.
  std::string jsonl;
  bool list = false;
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) {
      g_iters = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--jsonl" && i + 1 < argc) {
      jsonl = argv[++i];
    } else {
      list = list || a == "--benchmark_list_tests" || a == "--benchmark_list_tests=true";
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  const bool device = unet::cuda_available();
  if (!device && !list) {
    std::printf("SKIPPED: no CUDA device\n");
    return 0;
  }
  try {
    if (device) {
      g_stream = static_cast<cudaStream_t>(unet::stream_for(unet::Device::CUDA));
      g_k = &unet::kernels_for(unet::Device::CUDA);
      const unet::DeviceInfo info = unet::cuda_device_info();
      std::printf("GPU: %s, %d SMs, compute capability %d.%d\n", info.name.c_str(), info.sm_count, info.cc_major,
                  info.cc_minor);
#if UNET_BENCH_HAVE_CUDNN
      std::printf("baselines: cuDNN %zu (fastest algorithm from cudnnFind*, in fma, tf32 and bf16), cuBLAS SGEMM, "
                  "cudaMemcpy; medians of %d calls\n", cudnnGetVersion(), g_iters);
#else
      std::printf("baselines: cuBLAS SGEMM and cudaMemcpy (built without cuDNN: no cuDNN ratios); medians of %d calls\n",
                  g_iters);
#endif
    }
    register_all();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  JsonLinesReporter reporter(jsonl);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
