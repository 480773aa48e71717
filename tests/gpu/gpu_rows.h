// What the GPU cross-check adds to the op table (tests/op_table.h): rows that only matter on the GPU, and
// the comparison of one row on both backends with its report.
//
// Extra rows (every output is allocated with a guard of kGuard floats past its end, filled with a
// sentinel, and returned as one more output: 1 where the guard was overwritten, so a kernel that writes
// past the end fails against the CPU's untouched guard):
//   * prediction's forward passes at batch 4 (its default batch on the GPU) at the paper's large shapes;
//   * split-K reductions that cross an image boundary (weight gradients summed over the pixels of
//     several images: with 132 SMs the launcher splits them into ranges that do not align with images);
//   * softmax_xent / softmax_forward over more pixels than one pass of the loss kernel covers
//     (1024 blocks x 256 threads = 262,144 pixels: the rest goes round the grid-stride loop);
//   * the convolution forwards with a null bias;
//   * the tensor-core convolutions (TF32, BF16) on the split-K and null-bias rows, and prediction's batch-4
//     forwards in TF32 (its default on such a GPU); these small rows are in the compute-sanitizer subset.
// check_row() runs a row on the CPU and twice on the GPU from the same seed: every output must be within
// the row's tolerance of the CPU's, and the two GPU runs are compared bit for bit: every op must be
// bitwise reproducible (no atomics anywhere).
// Each comparison prints one line and, when UNET_GPU_REPORT names a file, appends it there as TSV:
//   row      op shape out rel_error tol ok|FAIL
//   bitwise  op shape out 1|0 - bitwise|not bitwise
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "kernels/philox.h"
#include "kernels/precision.h"
#include "tests/op_table.h"

namespace unet::gpu_test {

using Outputs = std::vector<std::vector<float>>;

inline void report_line(const char* kind, const std::string& op, const std::string& shape, size_t out,
                        const std::string& value, const std::string& tol, const std::string& status) {
  std::printf("%-8s %-26s %-48s %4zu %12s %10s  %s\n", kind, op.c_str(), shape.c_str(), out, value.c_str(),
              tol.c_str(), status.c_str());
  std::fflush(stdout);
  if (const char* path = std::getenv("UNET_GPU_REPORT")) {
    if (FILE* f = std::fopen(path, "a")) {
      std::fprintf(f, "%s\t%s\t%s\t%zu\t%s\t%s\t%s\n", kind, op.c_str(), shape.c_str(), out, value.c_str(), tol.c_str(),
                   status.c_str());
      std::fclose(f);
    }
  }
}

inline std::string sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3e", v);
  return b;
}

// Every GPU kernel must give the same bits twice: none uses atomics (the convolutions' split-K partial
// sums are reduced in a fixed order through a workspace; docs/gpu.md).
inline bool must_be_bitwise(const std::string&) { return true; }

// Runs `row` on the CPU and on the GPU (twice when `bitwise` is set), reports every output, then
// requires every output within tolerance and the bitwise reproducibility must_be_bitwise() asks for.
inline void check_row(const test::OpCase& row, uint64_t seed, bool bitwise = true) {
  const Outputs cpu = row.run(Device::CPU, seed);
  const Outputs gpu = row.run(Device::CUDA, seed);
  REQUIRE(gpu.size() == cpu.size());
  bool all_ok = true;
  for (size_t o = 0; o < cpu.size(); ++o) {
    const double err = test::rel_error(gpu[o], cpu[o]);
    const bool ok = gpu[o].size() == cpu[o].size() && err <= row.tol;
    all_ok = all_ok && ok;
    report_line("row", row.op, row.shape, o, sci(err), sci(row.tol), ok ? "ok" : "FAIL");
  }
  bool reproducible = true;
  if (bitwise) {
    const Outputs again = row.run(Device::CUDA, seed);
    REQUIRE(again.size() == gpu.size());
    for (size_t o = 0; o < gpu.size(); ++o) {
      const bool same = again[o].size() == gpu[o].size() &&
                        std::memcmp(again[o].data(), gpu[o].data(), gpu[o].size() * sizeof(float)) == 0;
      report_line("bitwise", row.op, row.shape, o, same ? "1" : "0", "-", same ? "bitwise" : "not bitwise");
      if (!same && must_be_bitwise(row.op)) reproducible = false;
    }
  }
  INFO(row.op << " " << row.shape << ": an output is out of tolerance (see the lines above)");
  REQUIRE(all_ok);
  INFO(row.op << " " << row.shape << ": two GPU runs differ where the kernel has no atomics");
  REQUIRE(reproducible);
}

// --- the extra rows --------------------------------------------------------------------------------------

constexpr int64_t kGuard = 64;
constexpr float kSentinel = -7.25e11f;

inline const kernels::KernelTable& T(Device d) { return kernels_for(d); }
inline kernels::Stream S(Device d) { return stream_for(d); }

inline Tensor input(Device d, const Shape& s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(s, test::random_values(shape_numel(s), seed, lo, hi)).to(d);
}

// n floats poisoned with NaN, then kGuard floats of sentinel.
inline Tensor guarded(Device d, int64_t n) {
  Tensor t = Tensor::empty({n + kGuard}, DType::F32, d);
  t.fill_(std::numeric_limits<float>::quiet_NaN());
  T(d).fill(S(d), t.f32() + n, kSentinel, kGuard);
  return t;
}

// The n outputs, then the guard as 0 (intact) / 1 (overwritten) per float.
inline void take(Device d, const Tensor& t, int64_t n, Outputs& out) {
  synchronize(d);
  std::vector<float> v = t.to_vector();
  std::vector<float> guard(static_cast<size_t>(kGuard));
  for (int64_t i = 0; i < kGuard; ++i) guard[static_cast<size_t>(i)] = v[static_cast<size_t>(n + i)] == kSentinel ? 0.0f : 1.0f;
  v.resize(static_cast<size_t>(n));
  out.push_back(std::move(v));
  out.push_back(std::move(guard));
}

inline std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

enum class Conv { k3x3, k1x1, up2x2 };

// The three passes of a convolution, or only the forward (with or without its bias), with guarded outputs.
enum class Passes { all, forward, forward_no_bias };
inline void conv_rows(std::vector<test::OpCase>& rows, Conv kind, int N, int C, int H, int W, int K,
                      const std::string& why, Passes passes = Passes::all,
                      kernels::Precision prec = kernels::Precision::FP32) {
  const char* name = kind == Conv::k3x3 ? "conv3x3" : kind == Conv::k1x1 ? "conv1x1" : "upconv2x2";
  const int64_t xs = int64_t(N) * C * H * W;
  const int64_t ws = kind == Conv::up2x2 ? int64_t(C) * K * 4 : kind == Conv::k3x3 ? int64_t(K) * C * 9 : int64_t(K) * C;
  const int64_t ys = kind == Conv::k3x3 ? int64_t(N) * K * (H - 2) * (W - 2)
                     : kind == Conv::k1x1 ? int64_t(N) * K * H * W : int64_t(N) * K * 4 * H * W;
  const std::string shape = "N,C,H,W,K=" + dims({N, C, H, W, K}) + " " + why +
                            (prec == kernels::Precision::FP32 ? "" : std::string(" ") + kernels::precision_name(prec));
  const double tol = test::conv_tolerance(prec);
  using KT = kernels::KernelTable;
  auto fwd = kind == Conv::k3x3 ? &KT::conv3x3_forward : kind == Conv::k1x1 ? &KT::conv1x1_forward : &KT::upconv2x2_forward;
  auto bwd = kind == Conv::k3x3 ? &KT::conv3x3_backward_data
             : kind == Conv::k1x1 ? &KT::conv1x1_backward_data : &KT::upconv2x2_backward_data;
  auto bww = kind == Conv::k3x3 ? &KT::conv3x3_backward_weight
             : kind == Conv::k1x1 ? &KT::conv1x1_backward_weight : &KT::upconv2x2_backward_weight;
  const bool with_bias = passes != Passes::forward_no_bias;
  rows.push_back({std::string(name) + "_forward", shape, tol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {xs}, seed), w = input(d, {ws}, seed + 1), b = input(d, {K}, seed + 2), y = guarded(d, ys);
    (T(d).*fwd)(S(d), prec, x.f32(), w.f32(), with_bias ? b.f32() : nullptr, y.f32(), N, C, H, W, K);
    Outputs o;
    take(d, y, ys, o);
    return o;
  }});
  if (passes != Passes::all) return;
  rows.push_back({std::string(name) + "_backward_data", shape, tol, [=](Device d, uint64_t seed) {
    Tensor dy = input(d, {ys}, seed), w = input(d, {ws}, seed + 1), dx = guarded(d, xs);
    (T(d).*bwd)(S(d), prec, dy.f32(), w.f32(), dx.f32(), N, C, H, W, K);
    Outputs o;
    take(d, dx, xs, o);
    return o;
  }});
  rows.push_back({std::string(name) + "_backward_weight", shape, tol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {xs}, seed), dy = input(d, {ys}, seed + 1), dw = guarded(d, ws), db = guarded(d, K);
    (T(d).*bww)(S(d), prec, x.f32(), dy.f32(), dw.f32(), db.f32(), N, C, H, W, K);
    Outputs o;  // dw, dw guard, db, db guard
    take(d, dw, ws, o);
    take(d, db, K, o);
    return o;
  }});
}

inline void softmax_rows(std::vector<test::OpCase>& rows, int N, int K, int H, int W, bool weighted,
                         const std::string& why) {
  const int64_t P = int64_t(N) * H * W, n = P * K;
  const std::string shape = "N,K,H,W=" + dims({N, K, H, W}) + (weighted ? " weighted " : " unweighted ") + why;
  rows.push_back({"softmax_xent", shape, 1e-5, [=](Device d, uint64_t seed) {
    Tensor a = input(d, {n}, seed, -4.0f, 4.0f), w = input(d, {P}, seed + 2, 0.5f, 11.0f);
    std::vector<int32_t> lab(static_cast<size_t>(P));
    for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<int32_t>(philox::word(seed + 1, 0x1AB, i) % K);
    Tensor l = Tensor::from_vector_i32({P}, lab).to(d), loss = guarded(d, 1), g = guarded(d, n);
    T(d).softmax_xent(S(d), a.f32(), l.i32(), weighted ? w.f32() : nullptr, loss.f32(), g.f32(), N, K, H, W);
    Outputs o;
    take(d, loss, 1, o);
    take(d, g, n, o);
    return o;
  }});
  rows.push_back({"softmax_forward", shape, 1e-5, [=](Device d, uint64_t seed) {
    Tensor a = input(d, {n}, seed, -4.0f, 4.0f), p = guarded(d, n);
    T(d).softmax_forward(S(d), a.f32(), p.f32(), N, K, H, W);
    Outputs o;
    take(d, p, n, o);
    return o;
  }});
}

// Prediction's forward ops at batch 4 (the 572 tile's largest maps).
inline void memory_rows_batch4(std::vector<test::OpCase>& rows) {
  const int N = 4;
  {  // relu over 4 x 64 x 570 x 570
    const int64_t n = int64_t(N) * 64 * 570 * 570;
    rows.push_back({"relu_forward", dims({N, 64, 570, 570}) + " batch 4", 1e-6, [=](Device d, uint64_t seed) {
      Tensor x = input(d, {n}, seed), y = guarded(d, n);
      T(d).relu_forward(S(d), x.f32(), y.f32(), n);
      Outputs o;
      take(d, y, n, o);
      return o;
    }});
  }
  {  // maxpool over 4 x 64 x 568 x 568
    const int C = 64, H = 568, W = 568;
    const int64_t xs = int64_t(N) * C * H * W, ys = xs / 4;
    rows.push_back({"maxpool2x2_forward", "N,C,H,W=" + dims({N, C, H, W}) + " batch 4", 1e-6, [=](Device d, uint64_t seed) {
      Tensor x = input(d, {xs}, seed), y = guarded(d, ys);
      T(d).maxpool2x2_forward(S(d), x.f32(), y.f32(), N, C, H, W);
      Outputs o;
      take(d, y, ys, o);
      return o;
    }});
  }
  {  // the last skip connection
    const int Cs = 64, Hs = 568, Ws = 568, Cu = 64, Hu = 392, Wu = 392;
    const int64_t ns = int64_t(N) * Cs * Hs * Ws, nu = int64_t(N) * Cu * Hu * Wu, ny = int64_t(N) * (Cs + Cu) * Hu * Wu;
    rows.push_back({"crop_concat_forward", "skip " + dims({N, Cs, Hs, Ws}) + " up " + dims({N, Cu, Hu, Wu}), 1e-6,
                    [=](Device d, uint64_t seed) {
      Tensor s = input(d, {ns}, seed), u = input(d, {nu}, seed + 1), y = guarded(d, ny);
      T(d).crop_concat_forward(S(d), s.f32(), u.f32(), y.f32(), N, Cs, Hs, Ws, Cu, Hu, Wu);
      Outputs o;
      take(d, y, ny, o);
      return o;
    }});
  }
}

// Small rows (also run under compute-sanitizer): split-K across images, null biases, a multi-pass loss.
inline std::vector<test::OpCase> extra_cases_small() {
  std::vector<test::OpCase> rows;
  conv_rows(rows, Conv::k3x3, 3, 8, 40, 40, 16, "split-K across images");
  conv_rows(rows, Conv::k1x1, 3, 16, 64, 64, 8, "split-K across images");
  conv_rows(rows, Conv::up2x2, 3, 32, 24, 24, 16, "split-K across images");
  conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, "no bias", Passes::forward_no_bias);
  conv_rows(rows, Conv::k1x1, 2, 7, 5, 9, 3, "no bias", Passes::forward_no_bias);
  conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3, "no bias", Passes::forward_no_bias);
  softmax_rows(rows, 1, 3, 513, 517, false, "(> 262144 px: several passes)");
  for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {  // tensor cores
    conv_rows(rows, Conv::k3x3, 3, 8, 40, 40, 16, "split-K across images", Passes::all, p);
    conv_rows(rows, Conv::k1x1, 3, 16, 64, 64, 8, "split-K across images", Passes::all, p);
    conv_rows(rows, Conv::up2x2, 3, 32, 24, 24, 16, "split-K across images", Passes::all, p);
    conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, "no bias", Passes::forward_no_bias, p);
  }
  return rows;
}

// The large rows: prediction's forward passes at batch 4 (its default batch on the GPU) at the paper's
// largest shapes, and the rest of the multi-pass and null-bias cases.
inline std::vector<test::OpCase> extra_cases_large() {
  std::vector<test::OpCase> rows;
  conv_rows(rows, Conv::k3x3, 4, 1, 572, 572, 64, "batch 4", Passes::forward);
  conv_rows(rows, Conv::k3x3, 4, 64, 570, 570, 64, "batch 4", Passes::forward);
  conv_rows(rows, Conv::k3x3, 4, 1024, 30, 30, 1024, "batch 4", Passes::forward);
  conv_rows(rows, Conv::up2x2, 4, 1024, 28, 28, 512, "batch 4", Passes::forward);
  conv_rows(rows, Conv::up2x2, 4, 128, 196, 196, 64, "batch 4", Passes::forward);
  conv_rows(rows, Conv::k1x1, 4, 64, 388, 388, 2, "batch 4", Passes::forward);
  memory_rows_batch4(rows);
  softmax_rows(rows, 4, 2, 388, 388, true, "batch 4 (> 262144 px)");
  softmax_rows(rows, 1, 2, 600, 600, true, "(> 262144 px)");
  conv_rows(rows, Conv::k3x3, 1, 64, 66, 66, 64, "no bias", Passes::forward_no_bias);
  conv_rows(rows, Conv::up2x2, 1, 128, 52, 52, 64, "no bias", Passes::forward_no_bias);
  // Prediction's default on a GPU with tensor cores: TF32.
  conv_rows(rows, Conv::k3x3, 4, 64, 570, 570, 64, "batch 4", Passes::forward, kernels::Precision::TF32);
  conv_rows(rows, Conv::k3x3, 4, 1024, 30, 30, 1024, "batch 4", Passes::forward, kernels::Precision::TF32);
  conv_rows(rows, Conv::up2x2, 4, 1024, 28, 28, 512, "batch 4", Passes::forward, kernels::Precision::TF32);
  conv_rows(rows, Conv::k1x1, 4, 64, 388, 388, 2, "batch 4", Passes::forward, kernels::Precision::TF32);
  return rows;
}

// The compute-sanitizer subset: the first (smallest) op-table row of every op, then the small extra rows.
inline std::vector<test::OpCase> sanitize_cases() {
  std::vector<test::OpCase> rows;
  std::vector<std::string> seen;
  for (test::OpCase& r : test::op_cases(false)) {
    bool have = false;
    for (const std::string& s : seen) have = have || s == r.op;
    if (have) continue;
    seen.push_back(r.op);
    rows.push_back(std::move(r));
  }
  for (test::OpCase& r : extra_cases_small()) rows.push_back(std::move(r));
  return rows;
}

}  // namespace unet::gpu_test
