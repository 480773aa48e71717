// The op table's machinery: the input generator, the error measure, the backends, a row's buffers with
// their guards, and the paper's layer list. The rows themselves are in tests/op_rows.cpp.
#include "tests/op_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "engine/backend.h"
#include "kernels/philox.h"

namespace unet::test {

std::vector<float> random_values(int64_t n, uint64_t seed, float lo, float hi) {
  // Element i is lo + (hi - lo) * philox::uniform(seed, 0x5EED, i): word (0x5EED + i) % 4 of Philox block
  // (0x5EED + i) / 4. One Philox call serves four elements, and large draws are split over threads
  // (the values do not depend on the split).
  constexpr uint64_t kStream = 0x5EED;
  std::vector<float> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
  auto fill = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const uint64_t idx = kStream + static_cast<uint64_t>(i), block = idx >> 2;
      const philox::U32x4 r =
          philox::philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u, seed);
      for (uint64_t lane = idx & 3; lane < 4 && i < end; ++lane, ++i)
        v[static_cast<size_t>(i)] = lo + (hi - lo) * (static_cast<float>(r.v[lane] >> 8) * (1.0f / 16777216.0f));
    }
  };
  const int64_t per_thread = int64_t{1} << 20;
  const int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), n / per_thread);
  if (threads <= 1) {
    fill(0, n);
    return v;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) pool.emplace_back(fill, n * t / threads, n * (t + 1) / threads);
  for (std::thread& th : pool) th.join();
  return v;
}

Precision conv_precision(kernels::Precision p) {
  return p == kernels::Precision::TF32   ? Precision::tf32
         : p == kernels::Precision::BF16 ? Precision::bf16
                                         : Precision::fp32;
}

double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::exact:
      return "exact";
    case Precision::elementwise:
      return "elementwise";
    case Precision::fp32:
      return "fp32";
    case Precision::f64_sum:
      return "f64_sum";
    case Precision::tf32:
      return "tf32";
    case Precision::bf16:
      return "bf16";
  }
  return "?";
}

const char* size_name(Size s) {
  switch (s) {
    case Size::tiny:
      return "tiny";
    case Size::small:
      return "small";
    case Size::large:
      return "large";
    case Size::bench:
      return "bench";
  }
  return "?";
}

// --- backends ----------------------------------------------------------------------------------------------

Backend cpu_backend() { return {"cpu", Device::CPU, &kernels::cpu_table(), &restore::kernels::cpu_table(), nullptr}; }

Backend cuda_backend() {
#if defined(UNET_WITH_CUDA)
  UNET_CHECK(cuda_available(), "no CUDA device is present");
  return {"cuda", Device::CUDA, &kernels_for(Device::CUDA), &restore::kernels::cuda_table(), stream_for(Device::CUDA)};
#else
  UNET_FAIL("this build of the tests has no CUDA backend");
#endif
}

// --- buffers -----------------------------------------------------------------------------------------------

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// A buffer's contents as the device receives them: the n values (host_values, or NaN / zeros), then for
// everything read back the guard.
Tensor make_tensor(Device device, DType dtype, int64_t n, const void* host_values, bool guarded, bool zeros) {
  const int64_t total = n + (guarded ? kGuard : 0);
  Tensor host = Tensor::empty({total}, dtype, Device::CPU);
  auto* words = static_cast<uint32_t*>(host.raw());
  if (host_values) std::memcpy(words, host_values, static_cast<size_t>(n) * 4);
  else if (zeros) std::fill(words, words + n, 0u);
  else std::fill(words, words + n, bits(std::numeric_limits<float>::quiet_NaN()));
  std::fill(words + n, words + total, bits(kSentinel));
  return device == Device::CPU ? host : host.to(device);
}

}  // namespace

std::vector<float> Buffers::values(int64_t n, float lo, float hi) { return random_values(n, seed_ + draws_++, lo, hi); }

void* Buffers::add(Role role, int64_t n, DType dtype, const void* host_values) {
  const bool guarded = role != Role::input;
  Buffer b{role, n, make_tensor(backend_.device, dtype, n, host_values, guarded, role == Role::flags), {}};
  if (role == Role::inout)
    b.initial.assign(static_cast<const float*>(host_values), static_cast<const float*>(host_values) + n);
  buffers_.push_back(std::move(b));
  return buffers_.back().tensor.raw();
}

const float* Buffers::input(const std::vector<float>& host) {
  return static_cast<const float*>(add(Role::input, static_cast<int64_t>(host.size()), DType::F32, host.data()));
}

const int32_t* Buffers::labels(int64_t n, int classes) {
  const uint64_t key = seed_ + draws_++;
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(philox::word(key, 0x1AB, i) % classes);
  return static_cast<const int32_t*>(add(Role::input, n, DType::I32, v.data()));
}

float* Buffers::output(int64_t n) { return static_cast<float*>(add(Role::output, n, DType::F32, nullptr)); }

float* Buffers::inout(const std::vector<float>& host) {
  return static_cast<float*>(add(Role::inout, static_cast<int64_t>(host.size()), DType::F32, host.data()));
}

int32_t* Buffers::flags(int64_t n) { return static_cast<int32_t*>(add(Role::flags, n, DType::I32, nullptr)); }

std::vector<Readback> Prepared::read() const {
  synchronize(backend().device);
  std::vector<Readback> out;
  for (const Buffers::Buffer& b : buffers_.buffers_) {
    if (b.role == Buffers::Role::input) continue;
    const int64_t total = b.n + kGuard;
    std::vector<uint32_t> words(static_cast<size_t>(total));
    copy_bytes(words.data(), Device::CPU, b.tensor.raw(), b.tensor.device(), static_cast<size_t>(total) * 4);
    Readback r;
    r.values.resize(static_cast<size_t>(b.n));
    if (b.role == Buffers::Role::flags) {
      for (int64_t i = 0; i < b.n; ++i) r.values[i] = static_cast<float>(static_cast<int32_t>(words[i]));
    } else {
      std::memcpy(r.values.data(), words.data(), static_cast<size_t>(b.n) * 4);
    }
    for (int64_t i = b.n; i < total; ++i) r.guard_overwritten += words[i] != bits(kSentinel);
    out.push_back(std::move(r));
  }
  return out;
}

void Prepared::reset() {
  synchronize(backend().device);
  for (Buffers::Buffer& b : buffers_.buffers_) {
    if (b.role == Buffers::Role::input) continue;
    const void* values = b.role == Buffers::Role::inout ? b.initial.data() : nullptr;
    b.tensor.copy_from(make_tensor(Device::CPU, b.tensor.dtype(), b.n, values, true, b.role == Buffers::Role::flags));
  }
}

Prepared prepare(const OpCase& row, const Backend& backend, uint64_t seed) {
  Buffers buffers(backend, seed);
  Launch launch = row.setup(buffers);
  return Prepared(std::move(buffers), std::move(launch));
}

// --- rows: names and selection ------------------------------------------------------------------------------

namespace {
std::string joined(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}
std::string layer_label(const std::string& name, int64_t C, int64_t K, int64_t H, int64_t W) {
  return name + "/" + std::to_string(C) + "to" + std::to_string(K) + "@" + std::to_string(H) + "x" + std::to_string(W);
}
}  // namespace

std::string OpCase::shape() const { return dim_names + "=" + joined(dims) + (variant.empty() ? "" : " " + variant); }

std::string OpCase::title() const { return shape() + (why.empty() ? "" : " (" + why + ")"); }

std::string OpCase::bench_name() const {
  std::string name = op + "/";
  if (!layer.empty() && dims.size() == 5)  // N,C,H,W,K: the layer's label, as the cuDNN rows beside it are named
    name += layer_label(layer, dims[1], dims[4], dims[2], dims[3]);
  else name += joined(dims);
  if (!variant.empty()) {
    std::string v = variant;
    std::replace(v.begin(), v.end(), ' ', '_');
    name += "/" + v;
  }
  return name;
}

std::vector<OpCase> op_cases(std::initializer_list<Size> sizes) {
  std::vector<OpCase> rows;
  for (OpCase& r : op_cases())
    if (std::find(sizes.begin(), sizes.end(), r.size) != sizes.end()) rows.push_back(std::move(r));
  return rows;
}

bool timed(const OpCase& row) { return row.size == Size::large || row.size == Size::bench || !row.layer.empty(); }

// --- the paper's layers --------------------------------------------------------------------------------------

const char* conv_name(Conv kind) {
  return kind == Conv::k3x3 ? "conv3x3" : kind == Conv::k1x1 ? "conv1x1" : "upconv2x2";
}

std::string PaperLayer::label() const { return layer_label(name, C, K, H, W); }

std::vector<PaperLayer> paper_layers() {
  const int tile = 572, base = 64, depth = 4, in_channels = 1, classes = 2;
  std::vector<PaperLayer> v;
  int s = tile, c = in_channels;
  auto pair = [&](const std::string& prefix, int cin, int cout) {
    v.push_back({prefix + ".conv1", Conv::k3x3, cin, cout, s, s});
    s -= 2;
    v.push_back({prefix + ".conv2", Conv::k3x3, cout, cout, s, s});
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
    v.push_back({"up." + std::to_string(l) + ".upconv", Conv::up2x2, c, out, s, s});
    s *= 2;
    pair("up." + std::to_string(l), 2 * out, out);
    c = out;
  }
  v.push_back({"head", Conv::k1x1, c, classes, s, s});
  return v;
}

}  // namespace unet::test
