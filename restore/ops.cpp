#include "restore/ops.h"

#include "engine/backend.h"
#include "restore/kernels/kernels.h"

namespace unet::rops {

const restore::kernels::RestoreKernelTable& restore_kernels_for(Device d) {
  if (d == Device::CPU) return restore::kernels::cpu_table();
#if defined(UNET_WITH_CUDA)
  UNET_CHECK(cuda_available(), "no CUDA device is present for the restoration kernels");
  return restore::kernels::cuda_table();
#else
  UNET_FAIL("this build of unet-cuda has no CUDA backend (configured with UNET_WITH_CUDA=OFF or no nvcc)");
#endif
}

namespace {

// A shape dimension as the int the kernels take.
int narrow(int64_t v) { return static_cast<int>(v); }

// [H,W] -> (1,H,W); [N,H,W] -> (N,H,W); [N,1,H,W] -> (N,H,W).
struct Planes {
  int N = 0, H = 0, W = 0;
};

Planes planes_of(const char* op, const char* what, const Tensor& t) {
  UNET_CHECK(t.defined() && t.dtype() == DType::F32, op, ": ", what, " must be a defined f32 tensor");
  const Shape& s = t.shape();
  if (s.size() == 2) return {1, narrow(s[0]), narrow(s[1])};
  if (s.size() == 3) return {narrow(s[0]), narrow(s[1]), narrow(s[2])};
  if (s.size() == 4 && s[1] == 1) return {narrow(s[0]), narrow(s[2]), narrow(s[3])};
  UNET_FAIL(op, ": ", what, " must be [H,W], [N,H,W] or [N,1,H,W] planes, got ", shape_str(s));
}

void check_same(const char* op, const char* what, const Tensor& ref, const Tensor& t) {
  UNET_CHECK(t.defined() && t.dtype() == DType::F32, op, ": ", what, " must be a defined f32 tensor");
  UNET_CHECK(t.numel() == ref.numel(), op, ": ", what, " has shape ", shape_str(t.shape()), ", want ",
             shape_str(ref.shape()));
  UNET_CHECK(t.device() == ref.device(), op, ": ", what, " is on ", device_name(t.device()), ", the input on ",
             device_name(ref.device()));
}

void ensure_like(Tensor& out, const Tensor& ref) {
  if (!out.defined()) out = Tensor::empty(ref.shape(), DType::F32, ref.device());
}

void check_kernel(const char* op, const Tensor& k, const Tensor& x) {
  UNET_CHECK(k.defined() && k.dtype() == DType::F32 && k.ndim() == 2, op, ": the kernel must be a 2-D f32 tensor");
  UNET_CHECK(k.dim(0) % 2 == 1 && k.dim(1) % 2 == 1, op, ": the kernel must have odd sizes, got ",
             shape_str(k.shape()));
  UNET_CHECK(k.device() == x.device(), op, ": the kernel is on ", device_name(k.device()), ", the image on ",
             device_name(x.device()));
}

}  // namespace

void stencil2d(const Tensor& x, const Tensor& k, Tensor& y) {
  Planes p = planes_of("stencil2d", "input", x);
  check_kernel("stencil2d", k, x);
  ensure_like(y, x);
  check_same("stencil2d", "output", x, y);
  const Device d = x.device();
  OpRange r("stencil2d");
  restore_kernels_for(d).stencil2d(stream_for(d), x.f32(), k.f32(), y.f32(), p.N, p.H, p.W, narrow(k.dim(0)),
                                   narrow(k.dim(1)));
}

void stencil2d_adjoint(const Tensor& y, const Tensor& k, Tensor& x) {
  Planes p = planes_of("stencil2d_adjoint", "input", y);
  check_kernel("stencil2d_adjoint", k, y);
  ensure_like(x, y);
  check_same("stencil2d_adjoint", "output", y, x);
  const Device d = y.device();
  OpRange r("stencil2d_adjoint");
  restore_kernels_for(d).stencil2d_adjoint(stream_for(d), y.f32(), k.f32(), x.f32(), p.N, p.H, p.W, narrow(k.dim(0)),
                                           narrow(k.dim(1)));
}

void laplacian8(const Tensor& x, const Tensor& wgt, Tensor& deg_x, Tensor& adj_x) {
  Planes p = planes_of("laplacian8", "input", x);
  UNET_CHECK(wgt.defined() && wgt.dtype() == DType::F32 && wgt.numel() == 4 * x.numel(),
             "laplacian8: the edge weights must be [N,4,H,W] for input ", shape_str(x.shape()));
  UNET_CHECK(wgt.device() == x.device(), "laplacian8: weights and input on different devices");
  ensure_like(deg_x, x);
  ensure_like(adj_x, x);
  check_same("laplacian8", "deg_x", x, deg_x);
  check_same("laplacian8", "adj_x", x, adj_x);
  const Device d = x.device();
  OpRange r("laplacian8");
  restore_kernels_for(d).laplacian8_apply(stream_for(d), x.f32(), wgt.f32(), deg_x.f32(), adj_x.f32(), p.N, p.H, p.W);
}

void nnmu_update_(Tensor& f, const Tensor& ap, const Tensor& an, const Tensor& b, float eps) {
  check_same("nnmu_update", "A+ f", f, ap);
  check_same("nnmu_update", "A- f", f, an);
  check_same("nnmu_update", "b", f, b);
  const Device d = f.device();
  OpRange r("nnmu_update");
  restore_kernels_for(d).nnmu_update(stream_for(d), f.f32(), ap.f32(), an.f32(), b.f32(), f.numel(), eps);
}

void axpby_(Tensor& y, const Tensor& x, float a, float b) {
  check_same("axpby", "x", y, x);
  const Device d = y.device();
  restore_kernels_for(d).axpby(stream_for(d), y.f32(), x.f32(), a, b, y.numel());
}

void l1_reweight(const Tensor& f, const Tensor& b0, Tensor& b, float c, float gamma) {
  check_same("l1_reweight", "b0", f, b0);
  ensure_like(b, f);
  check_same("l1_reweight", "b", f, b);
  const Device d = f.device();
  restore_kernels_for(d).l1_reweight(stream_for(d), f.f32(), b0.f32(), b.f32(), f.numel(), c, gamma);
}

namespace {
double read_pair(const Tensor& out) {
  std::vector<float> v = out.to_vector();  // waits for the device
  return static_cast<double>(v[0]) + static_cast<double>(v[1]);
}
}  // namespace

double dot(const Tensor& x, const Tensor& y) {
  check_same("dot", "y", x, y);
  const Device d = x.device();
  Tensor out = Tensor::empty({2}, DType::F32, d);
  restore_kernels_for(d).dot(stream_for(d), x.f32(), y.f32(), x.numel(), out.f32());
  return read_pair(out);
}

double sum_log1p(const Tensor& x, float scale) {
  UNET_CHECK(x.defined() && x.dtype() == DType::F32, "sum_log1p: input must be f32");
  const Device d = x.device();
  Tensor out = Tensor::empty({2}, DType::F32, d);
  restore_kernels_for(d).sum_log1p(stream_for(d), x.f32(), x.numel(), scale, out.f32());
  return read_pair(out);
}

}  // namespace unet::rops
