// Tensor: a shape, a dtype, a device, and a reference-counted contiguous buffer.
// Storage comes from the Allocator of its device (CPU: aligned malloc; CUDA: a caching allocator
// in engine/backend_cuda.cu). Copies between devices are explicit: Tensor::to(Device).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/check.h"

namespace unet {

enum class Device { CPU, CUDA };
// F32 is what every kernel takes today; I32 holds labels. BF16/F16 are reserved for the
// tensor-core issue: the enum and element_size() already know them.
enum class DType { F32, I32, BF16, F16 };

const char* device_name(Device d);
const char* dtype_name(DType t);
size_t element_size(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
};
Allocator& allocator_for(Device d);

// True when this build has the CUDA backend AND a CUDA device is present.
bool cuda_available();

// Raw copy between any two devices (cudaMemcpy under the hood when one side is CUDA).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Storage(size_t n, Device d);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(Shape shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(Shape shape, float value, Device device = Device::CPU);
  // CPU tensor holding a copy of `values` (size must match the shape).
  static Tensor from_vector(Shape shape, const std::vector<float>& values);
  static Tensor from_vector_i32(Shape shape, const std::vector<int32_t>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::CPU; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(dtype_); }

  void* raw() const { return storage_ ? storage_->ptr : nullptr; }
  float* f32() const;    // checks dtype == F32
  int32_t* i32() const;  // checks dtype == I32

  Tensor to(Device d) const;  // copy to device d (a new buffer even when d == device())
  Tensor clone() const { return to(device()); }
  void copy_from(const Tensor& src);     // same shape and dtype, any devices
  std::vector<float> to_vector() const;  // F32 contents on the host
  Tensor reshape(Shape s) const;         // same storage, new shape of equal numel

  // Elementwise helpers through the kernel table of the tensor's device.
  void fill_(float v);
  void add_(const Tensor& x);  // this += x
  // False when any element is NaN or +-inf (f32 only; runs on the tensor's device).
  bool all_finite() const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::F32;
};

}  // namespace unet
