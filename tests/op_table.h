// The op table: the one registry of kernel cases (in the manner of ggml's test-backend-ops), one row per
// kernel and shape, which every consumer iterates:
//   * the CPU tests (test_engine, test_conv_shapes, test_op_table): the tiny and small rows;
//   * the GPU cross-check (tests/gpu/): tiny, small and large rows on the CPU and the GPU, the tiny ones
//     also under compute-sanitizer;
//   * the host emulation of the CUDA kernels (tests/cuda_emu/): the tiny rows;
//   * the benchmarks (bench/bench_cpu.cpp, bench/bench_gpu.cpp): the timed rows (timed()).
// A row prepares its buffers on a backend once (inputs fresh from Philox, never zeros; every output
// poisoned with NaN and followed by a guard of kGuard sentinel floats) and returns the call that runs its
// kernel on them: a benchmark times that call alone, a test runs it again after reset(). Each row also
// carries its flop and byte counts, a size class, a precision (which sets its tolerance) and, where it
// exists for a reason, why. The rows are in tests/op_rows.cpp; tests/row_check.h compares a row on two
// backends. Adding an op: see docs/architecture.md.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "kernels/kernels.h"
#include "restore/kernels/kernels.h"

namespace unet::test {

// --- precision: one error measure (rel_error), one tolerance per precision ---------------------------------

enum class Precision {
  exact,        // copies, selections, one rounding per element: the same bits on every backend
  elementwise,  // fp32 formulas per element, where a compiler may fuse a * b + c into one FMA
  fp32,         // fp32 sums in each backend's own order (convolutions, reductions), exp and log
  f64_sum,      // sums accumulated in double and returned as a float pair hi + lo (a float sum would miss by
                // 1e-8 or more; 1e-10 leaves room for cancellation in a long sum of both signs)
  tf32,         // TF32 tensor-core products (10-bit mantissas), fp32 sums
  bf16,         // bfloat16 data (8-bit mantissas), fp32 sums
};

// The largest rel_error accepted against the CPU reference.
constexpr double tolerance(Precision p) {
  switch (p) {
    case Precision::exact:
      return 0.0;
    case Precision::elementwise:
      return 1e-6;
    case Precision::fp32:
      return 1e-5;
    case Precision::f64_sum:
      return 1e-10;
    case Precision::tf32:
      return 1e-3;
    case Precision::bf16:
      return 1e-2;
  }
  return 0.0;
}
const char* precision_name(Precision p);

// A convolution's row precision at the kernels' precision argument (the CPU reference rounds the operands
// as the GPU does; what is left is the order and the hardware's rounding of the sums).
Precision conv_precision(kernels::Precision p);
inline double conv_tolerance(kernels::Precision p) { return tolerance(conv_precision(p)); }

// ||a - ref||_2 / max(||ref||_2, tiny); infinity if any element of a is not finite or the sizes differ.
double rel_error(const std::vector<float>& a, const std::vector<float>& ref);

// Uniform values in [lo, hi) from Philox (key `seed`, stream 0x5EED): the same on every machine.
std::vector<float> random_values(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// --- backends ----------------------------------------------------------------------------------------------

// Where a row's buffers live and which kernel tables run on them.
struct Backend {
  std::string name;                                     // "cpu", "cuda", "cuda-emu-132sm", ...
  Device device;                                        // where the buffers are allocated
  const kernels::KernelTable* unet;                     // the U-Net table (kernels/ops.inc)
  const restore::kernels::RestoreKernelTable* restore;  // the restoration table (restore/kernels/ops.inc)
  kernels::Stream stream;                               // nullptr on the CPU
};
Backend cpu_backend();
Backend cuda_backend();  // throws when this build has no CUDA backend or no device is present

// --- a row's buffers on one backend ------------------------------------------------------------------------

constexpr int64_t kGuard = 64;          // floats after every output
constexpr float kSentinel = -7.25e11f;  // what they hold; any other bits mean a write past the end

// The launch of a prepared row: its kernel call(s) on the backend's tables and stream.
using Launch = std::function<void(const Backend&)>;

// What a row's setup makes its buffers with. Random draws use the keys seed, seed + 1, ... in the order
// they are made, so a row draws the same inputs on every backend.
class Buffers {
 public:
  Buffers(const Backend& backend, uint64_t seed) : backend_(backend), seed_(seed) {}
  uint64_t seed() const { return seed_; }
  // The next random draw, on the host (to edit before it becomes an input: plant ties, zeros, an inf).
  std::vector<float> values(int64_t n, float lo = -1.0f, float hi = 1.0f);
  const float* input(const std::vector<float>& host);
  const float* input(int64_t n, float lo = -1.0f, float hi = 1.0f) { return input(values(n, lo, hi)); }
  const int32_t* labels(int64_t n, int classes);  // class indices in [0, classes)
  float* output(int64_t n);                       // NaN, then the guard; read back
  float* inout(const std::vector<float>& host);   // an input the kernel updates in place; read back
  float* inout(int64_t n, float lo = -1.0f, float hi = 1.0f) { return inout(values(n, lo, hi)); }
  int32_t* flags(int64_t n);  // int32 zeros for an op that only sets flags; read back

 private:
  friend class Prepared;
  enum class Role { input, output, inout, flags };
  struct Buffer {
    Role role;
    int64_t n;                   // elements before the guard
    Tensor tensor;               // on the backend's device (outputs: n + kGuard elements)
    std::vector<float> initial;  // an inout's first contents, restored by reset()
  };
  void* add(Role role, int64_t n, DType dtype, const void* host_values);
  Backend backend_;
  uint64_t seed_;
  uint64_t draws_ = 0;
  std::vector<Buffer> buffers_;
};

// One output read back: its n elements (int32 flags as floats) and how many guard floats were overwritten.
struct Readback {
  std::vector<float> values;
  int64_t guard_overwritten = 0;
};

// A row prepared on one backend: launch() as often as wanted.
class Prepared {
 public:
  Prepared(Buffers buffers, Launch launch) : buffers_(std::move(buffers)), launch_(std::move(launch)) {}
  void launch() { launch_(buffers_.backend_); }
  // Waits for the backend, copies every output back in the order the row made them, checks each guard.
  std::vector<Readback> read() const;
  // Outputs poisoned again and in-place inputs restored: the next launch computes what the first did.
  void reset();
  const Backend& backend() const { return buffers_.backend_; }

 private:
  Buffers buffers_;
  Launch launch_;
};

// --- rows --------------------------------------------------------------------------------------------------

// Where a row runs, by cost.
enum class Size {
  tiny,   // the host emulation and compute-sanitizer, and everything below
  small,  // the CPU tests in CI and the GPU cross-check
  large,  // real U-Net sizes: the GPU cross-check and the benchmarks
  bench,  // real U-Net sizes only the benchmarks run (the GPU run's time budget checks four of the
          // paper's 23 convolutions, as large rows)
};
const char* size_name(Size s);

struct OpCase {
  std::string op;             // the kernel's name in its table, e.g. "conv3x3_forward"
  std::string dim_names;      // what dims hold, e.g. "N,C,H,W,K"
  std::vector<int64_t> dims;  // the sizes (a benchmark's baselines read them)
  std::string variant;        // arguments beyond the sizes, e.g. "no bias", "weighted"; may be empty
  std::string why;            // why the row exists where it is more than one more shape; may be empty
  std::string layer;          // the layer of the paper's network it is, e.g. "down.0.conv1"; may be empty
  Size size;
  Precision precision;
  double flops;                           // of one launch: 2 per multiply-add of the op's formula
  double bytes;                           // of one launch: each input read once, each output written once
  std::function<Launch(Buffers&)> setup;  // makes the buffers, returns the launch

  double tol() const { return tolerance(precision); }
  std::string shape() const;       // "N,C,H,W,K=2x5x13x11x7 no bias"
  std::string title() const;       // shape, then why: what a report line names
  std::string bench_name() const;  // "conv3x3_forward/down.0.conv1/1to64@572x572", "relu_forward/1x64x570x570"
};

// Buffers drawn from `seed` on `backend` and the row's launch, ready to run.
Prepared prepare(const OpCase& row, const Backend& backend, uint64_t seed);

// Every row (tests/op_rows.cpp), or those of the given sizes, in the table's order.
std::vector<OpCase> op_cases();
std::vector<OpCase> op_cases(std::initializer_list<Size> sizes);

// What the benchmarks time: the large and bench rows, and every layer of the paper's network.
bool timed(const OpCase& row);

// The 23 convolutions of the U-Net of Fig. 1 in the order they run, at a 572 x 572 input tile, batch 1.
// Their rows (three passes each) are in the table; bench_gpu times cuDNN beside each.
enum class Conv { k3x3, k1x1, up2x2 };
struct PaperLayer {
  std::string name;  // the checkpoint's parameter prefix (docs/checkpoints.md), e.g. "down.0.conv1"
  Conv kind;
  int C, K, H, W;             // input channels, output channels, input size
  std::string label() const;  // "down.0.conv1/1to64@572x572"
};
std::vector<PaperLayer> paper_layers();
// The 23 convolutions' rows (three passes each, size bench, named after their layer) at a tensor-core
// precision: what bench_gpu times as ours_tf32/ and ours_bf16/ beside cuDNN in the same arithmetic.
std::vector<OpCase> paper_conv_rows(kernels::Precision precision);
const char* conv_name(Conv kind);  // "conv3x3", "conv1x1", "upconv2x2"

}  // namespace unet::test
