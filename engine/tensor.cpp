#include "engine/tensor.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sstream>

#include "engine/backend.h"

namespace unet {

// Defined in engine/backend_cuda.cu (or backend_nocuda.cpp without CUDA).
Allocator& cuda_allocator();
void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::I32:
      return "i32";
    case DType::BF16:
      return "bf16";
    case DType::F16:
      return "f16";
  }
  return "?";
}

size_t element_size(DType t) {
  switch (t) {
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::F16:
      return 2;
  }
  return 0;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {
// 64-byte aligned host memory: whole cache lines and AVX-512-safe loads.
class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() {
#if defined(__GLIBC__)
    // Activations are tens of MB, allocated and freed once per layer and step. glibc would map each
    // one afresh (above its mmap threshold), and every first touch of a page is a fault that zeroes
    // it: ~5% of a forward pass. Kept in the heap, freed blocks serve the next allocation.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  }
  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (p == nullptr) UNET_FAIL_AS(OutOfMemory, "out of host memory allocating ", bytes, " bytes");
    return p;
  }
  void deallocate(void* p, size_t) override { std::free(p); }
};
}  // namespace

Allocator& allocator_for(Device d) {
  static CpuAllocator cpu;
  if (d == Device::CPU) return cpu;
  return cuda_allocator();
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
  cuda_copy_bytes(dst, dst_dev, src, src_dev, bytes);
}

Storage::Storage(size_t n, Device d) : bytes(n), device(d) { ptr = allocator_for(d).allocate(n); }
Storage::~Storage() { allocator_for(device).deallocate(ptr, bytes); }

Tensor Tensor::empty(Shape shape, DType dtype, Device device) {
  for (int64_t d : shape) UNET_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t = empty(std::move(shape), dtype, device);
  if (device == Device::CPU) std::memset(t.raw(), 0, t.nbytes());
  else t.fill_(0.0f);  // all-zero bits are 0 for i32 as for f32
  return t;
}

Tensor Tensor::full(Shape shape, float value, Device device) {
  Tensor t = empty(std::move(shape), DType::F32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<float>& values) {
  UNET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
             " values for shape ", shape_str(shape));
  Tensor t = empty(std::move(shape));
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector_i32(Shape shape, const std::vector<int32_t>& values) {
  UNET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector_i32: ", values.size(),
             " values for shape ", shape_str(shape));
  Tensor t = empty(std::move(shape), DType::I32);
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  UNET_CHECK(i >= 0 && i < ndim(), "dim ", i, " out of range for shape ", shape_str(shape_));
  return shape_[i];
}

float* Tensor::f32() const {
  UNET_CHECK(dtype_ == DType::F32, "tensor is ", dtype_name(dtype_), ", expected f32");
  return static_cast<float*>(raw());
}

int32_t* Tensor::i32() const {
  UNET_CHECK(dtype_ == DType::I32, "tensor is ", dtype_name(dtype_), ", expected i32");
  return static_cast<int32_t*>(raw());
}

Tensor Tensor::to(Device d) const {
  UNET_CHECK(defined(), "to(): undefined tensor");
  Tensor t = empty(shape_, dtype_, d);
  copy_bytes(t.raw(), d, raw(), device(), nbytes());
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  UNET_CHECK(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from: ", shape_str(src.shape_), " ",
             dtype_name(src.dtype_), " into ", shape_str(shape_), " ", dtype_name(dtype_));
  copy_bytes(raw(), device(), src.raw(), src.device(), nbytes());
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  UNET_CHECK(dtype_ == DType::F32, "to_vector: tensor is ", dtype_name(dtype_));
  copy_bytes(v.data(), Device::CPU, raw(), device(), nbytes());
  return v;
}

Tensor Tensor::reshape(Shape s) const {
  UNET_CHECK(shape_numel(s) == numel(), "reshape ", shape_str(shape_), " to ", shape_str(s));
  Tensor t = *this;
  t.shape_ = std::move(s);
  return t;
}

void Tensor::fill_(float v) {
  UNET_CHECK(dtype_ == DType::F32 || v == 0.0f, "fill_: only f32 tensors take non-zero values");
  kernels_for(device()).fill(stream_for(device()), static_cast<float*>(raw()), v, numel());
}

void Tensor::add_(const Tensor& x) {
  UNET_CHECK(x.shape_ == shape_ && x.device() == device(), "add_: ", shape_str(x.shape_), " on ",
             device_name(x.device()), " into ", shape_str(shape_), " on ", device_name(device()));
  kernels_for(device()).add(stream_for(device()), f32(), x.f32(), numel());
}

namespace {
// The first number on the line of `file` that starts with `key` (0 when absent).
size_t read_number_after(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size(), key) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10);
  return 0;
}
}  // namespace

size_t available_memory(Device d) {
  if (d == Device::CUDA) {
    const AllocatorStats s = cuda_allocator_stats();
    return cuda_device_info().free_memory + (s.bytes_reserved - s.bytes_in_use);
  }
  size_t avail = read_number_after("/proc/meminfo", "MemAvailable:") * 1024;
  if (avail == 0) avail = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // A container's limit (cgroup v2 memory.max, "max" when unlimited) binds before the host's memory.
  std::ifstream cg("/sys/fs/cgroup/memory.max");
  std::string limit;
  if (cg >> limit && limit != "max") {
    const size_t cap = std::strtoull(limit.c_str(), nullptr, 10);
    const size_t used = read_number_after("/sys/fs/cgroup/memory.current", "");
    if (cap > 0) avail = std::min(avail, cap > used ? cap - used : 0);
  }
  return avail;
}

bool Tensor::all_finite() const {
  if (numel() == 0) return true;
  Tensor flag = zeros({1}, DType::I32, device());
  kernels_for(device()).check_finite(stream_for(device()), f32(), numel(), flag.i32());
  int32_t host = 0;
  copy_bytes(&host, Device::CPU, flag.raw(), device(), sizeof host);
  return host == 0;
}

}  // namespace unet
