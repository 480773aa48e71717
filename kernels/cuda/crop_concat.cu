// crop_concat: the skip connection. skip[N,Cs,Hs,Ws] is centre-cropped to [Hu,Wu] at offset
// (oh, ow) = ((Hs-Hu)/2, (Ws-Wu)/2) and stacked before up[N,Cu,Hu,Wu] -> y[N,Cs+Cu,Hu,Wu].
// Pure data movement: one thread per element written, consecutive threads along a row.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.cuh"

namespace unet::kernels::cuda {
namespace {

struct CropGeom {
  int Cs, Hs, Ws, Cu, Hu, Wu, oh, ow;
};

// y[n,c,i,j] = skip[n,c,i+oh,j+ow] for c < Cs;  up[n,c-Cs,i,j] otherwise.
__global__ void crop_concat_forward_kernel(const float* __restrict__ skip, const float* __restrict__ up,
                                           float* __restrict__ y, int64_t total, CropGeom g) {
  const int64_t HuWu = static_cast<int64_t>(g.Hu) * g.Wu;
  const int Ct = g.Cs + g.Cu;
  for (int64_t t : grid_stride(total)) {
    const int64_t plane = t / HuWu, q = t - plane * HuWu;
    const int64_t n = plane / Ct;
    const int c = static_cast<int>(plane - n * Ct);
    if (c < g.Cs) {
      const int i = static_cast<int>(q / g.Wu), j = static_cast<int>(q - static_cast<int64_t>(i) * g.Wu);
      y[t] = skip[((n * g.Cs + c) * g.Hs + (i + g.oh)) * g.Ws + (j + g.ow)];
    } else {
      y[t] = up[(n * g.Cu + (c - g.Cs)) * HuWu + q];
    }
  }
}

// dskip[n,c,i,j] = dy[n,c,i-oh,j-ow] inside the crop window, 0 outside.
__global__ void crop_backward_skip_kernel(const float* __restrict__ dy, float* __restrict__ dskip, int64_t total,
                                          CropGeom g) {
  const int64_t HsWs = static_cast<int64_t>(g.Hs) * g.Ws;
  const int Ct = g.Cs + g.Cu;
  for (int64_t t : grid_stride(total)) {
    const int64_t plane = t / HsWs, q = t - plane * HsWs;
    const int64_t n = plane / g.Cs;
    const int c = static_cast<int>(plane - n * g.Cs);
    const int i = static_cast<int>(q / g.Ws) - g.oh;
    const int j = static_cast<int>(q % g.Ws) - g.ow;
    float v = 0.0f;
    if (i >= 0 && i < g.Hu && j >= 0 && j < g.Wu) v = dy[((n * Ct + c) * g.Hu + i) * g.Wu + j];
    dskip[t] = v;
  }
}

// dup[n,c,i,j] = dy[n,Cs+c,i,j]
__global__ void crop_backward_up_kernel(const float* __restrict__ dy, float* __restrict__ dup, int64_t total,
                                        CropGeom g) {
  const int64_t HuWu = static_cast<int64_t>(g.Hu) * g.Wu;
  const int Ct = g.Cs + g.Cu;
  for (int64_t t : grid_stride(total)) {
    const int64_t plane = t / HuWu, q = t - plane * HuWu;
    const int64_t n = plane / g.Cu;
    const int c = static_cast<int>(plane - n * g.Cu);
    dup[t] = dy[(n * Ct + g.Cs + c) * HuWu + q];
  }
}

CropGeom geom(int Cs, int Hs, int Ws, int Cu, int Hu, int Wu) {
  return CropGeom{Cs, Hs, Ws, Cu, Hu, Wu, (Hs - Hu) / 2, (Ws - Wu) / 2};
}

}  // namespace

void crop_concat_forward(Stream s, const float* skip, const float* up, float* y, int N, int Cs, int Hs, int Ws, int Cu,
                         int Hu, int Wu) {
  const int64_t total = static_cast<int64_t>(N) * (Cs + Cu) * Hu * Wu;
  launch_over(total, s, crop_concat_forward_kernel, skip, up, y, total, geom(Cs, Hs, Ws, Cu, Hu, Wu));
}

void crop_concat_backward(Stream s, const float* dy, float* dskip, float* dup, int N, int Cs, int Hs, int Ws, int Cu,
                          int Hu, int Wu) {
  const CropGeom g = geom(Cs, Hs, Ws, Cu, Hu, Wu);
  const int64_t nskip = static_cast<int64_t>(N) * Cs * Hs * Ws;
  const int64_t nup = static_cast<int64_t>(N) * Cu * Hu * Wu;
  launch_over(nskip, s, crop_backward_skip_kernel, dy, dskip, nskip, g);
  launch_over(nup, s, crop_backward_up_kernel, dy, dup, nup, g);
}

}  // namespace unet::kernels::cuda
