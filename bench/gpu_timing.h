// The pieces bench_gpu's rows share: device buffers of random values (f32 or bf16), event timing with
// medians, the memo of baselines measured in this run, and a reporter that appends every finished row to
// a JSON-lines file as it goes (so a run cut short keeps the rows it finished).
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_check.cuh"

namespace bench_gpu {

inline cudaStream_t g_stream = nullptr;  // the engine's CUDA stream: the op table's rows run on it
inline int g_iters = 20;                 // timed calls per row (each timed alone; the row reports their median)

// float -> bfloat16, round to nearest even (NaN kept a NaN).
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// A device buffer of n elements (f32, or bf16 when `bf16`), uniform in [lo, hi) (xorshift on the host).
class Buf {
 public:
  explicit Buf(int64_t n, float lo = -1.0f, float hi = 1.0f, uint64_t seed = 1, bool bf16 = false) : n_(n) {
    const size_t elem = bf16 ? 2 : 4;
    UNET_CUDA_CHECK(cudaMalloc(&p_, static_cast<size_t>(n > 0 ? n : 1) * elem));
    std::vector<float> h(static_cast<size_t>(n));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (float& v : h) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      v = lo + (hi - lo) * static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
    }
    if (n <= 0) return;
    if (bf16) {
      std::vector<uint16_t> b(h.size());
      for (size_t i = 0; i < h.size(); ++i) b[i] = to_bf16(h[i]);
      UNET_CUDA_CHECK(cudaMemcpy(p_, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
    } else {
      UNET_CUDA_CHECK(cudaMemcpy(p_, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    }
  }
  ~Buf() { cudaFree(p_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* f() const { return static_cast<float*>(p_); }
  int32_t* i() const { return static_cast<int32_t*>(p_); }
  void* raw() const { return p_; }
  int64_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  int64_t n_;
};

class Events {
 public:
  Events() {
    UNET_CUDA_CHECK(cudaEventCreate(&a_));
    UNET_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~Events() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  // GPU milliseconds of one call of f on g_stream.
  template <class F>
  float time(F&& f) {
    UNET_CUDA_CHECK(cudaEventRecord(a_, g_stream));
    f();
    UNET_CUDA_CHECK(cudaEventRecord(b_, g_stream));
    UNET_CUDA_CHECK(cudaEventSynchronize(b_));
    float ms = 0.0f;
    UNET_CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
    return ms;
  }

 private:
  cudaEvent_t a_ = nullptr, b_ = nullptr;
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median GPU time of g_iters calls of f, each timed alone, after one warm-up call.
template <class F>
double median_ms(F&& f) {
  f();
  UNET_CUDA_CHECK(cudaStreamSynchronize(g_stream));
  Events ev;
  std::vector<double> t;
  for (int r = 0; r < g_iters; ++r) t.push_back(ev.time(f));
  return median(t);
}

// The benchmark loop (the row registered with Iterations(g_iters)): one call per iteration, timed with
// events; sets ms (the median) and GFLOP/s or GB/s from it. Returns the median.
template <class F>
double measure(benchmark::State& st, F&& f, double flops, double bytes) {
  f();  // warm-up (and first-launch costs)
  UNET_CUDA_CHECK(cudaStreamSynchronize(g_stream));
  Events ev;
  std::vector<double> t;
  for (auto _ : st) {
    const float ms = ev.time(f);
    st.SetIterationTime(ms * 1e-3);
    t.push_back(ms);
  }
  const double ms = median(t);
  st.counters["ms"] = ms;
  if (ms > 0 && flops > 0) st.counters["GFLOP/s"] = flops / (ms * 1e-3) / 1e9;
  if (ms > 0 && bytes > 0) st.counters["GB/s"] = bytes / (ms * 1e-3) / 1e9;
  return ms;
}

// Runs body(st), turning any exception into a skipped row with the message.
inline void guarded(benchmark::State& st, const std::function<void(benchmark::State&)>& body) {
  try {
    body(st);
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
  }
}

// Baselines measured in this run, by name (a cuDNN row stores its time for the next of our rows).
inline std::map<std::string, double>& memo() {
  static std::map<std::string, double> m;
  return m;
}
template <class F>
double memoized(const std::string& key, F&& compute) {
  auto it = memo().find(key);
  if (it != memo().end()) return it->second;
  const double v = compute();
  memo()[key] = v;
  return v;
}

// A device-to-device copy with the same traffic (bytes read + written) as a memory-bound op.
inline double memcpy_ms(double traffic_bytes) {
  return memoized("memcpy/" + std::to_string(static_cast<int64_t>(traffic_bytes)), [&] {
    const int64_t n = static_cast<int64_t>(traffic_bytes / 2 / sizeof(float));
    Buf a(n), b(n);
    return median_ms([&] {
      UNET_CUDA_CHECK(
          cudaMemcpyAsync(b.f(), a.f(), static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice, g_stream));
    });
  });
}

// The console table, and each finished row appended as one JSON object per line to `path`.
class JsonLinesReporter : public benchmark::ConsoleReporter {
 public:
  explicit JsonLinesReporter(std::string path) : path_(std::move(path)) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    benchmark::ConsoleReporter::ReportRuns(runs);
    if (path_.empty()) return;
    FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return;
    for (const Run& r : runs) {
      std::string line = "{\"name\": \"" + r.benchmark_name() + "\"";
      if (r.error_occurred) line += ", \"error\": \"" + escape(r.error_message) + "\"";
      for (const auto& [k, c] : r.counters) {
        char b[64];
        std::snprintf(b, sizeof b, std::isfinite(c.value) ? "%.6g" : "null", c.value);
        line += ", \"" + k + "\": " + b;
      }
      std::fprintf(f, "%s}\n", line.c_str());
    }
    std::fclose(f);
  }

 private:
  static std::string escape(const std::string& s) {
    std::string e;
    for (char c : s) {
      if (c == '"' || c == '\\') e += '\\';
      e += (c == '\n' || c == '\t') ? ' ' : c;
    }
    return e;
  }
  std::string path_;
};

}  // namespace bench_gpu
