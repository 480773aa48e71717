// The TF32 and BF16 convolutions on tensor cores (tc_gemm.cuh), called by the launchers of conv3x3.cu,
// conv1x1.cu and upconv2x2.cu for any Precision but FP32; one per op and pass, defined in *_tc.cu.
#pragma once
#include <cuda_runtime.h>

#include "kernels/cuda/conv_args.cuh"
#include "kernels/cuda/gemm_out.cuh"
#include "kernels/kernels.h"

namespace unet::kernels::cuda::tc {

void conv3x3_forward(cudaStream_t, Precision, const Conv3x3Args&, const gemm::ImageOut&);
void conv3x3_backward_data(cudaStream_t, Precision, const Conv3x3Args&, const gemm::ImageOut&);
void conv3x3_backward_weight(cudaStream_t, Precision, const Conv3x3Args&, const gemm::MatrixOut&);
void conv1x1_forward(cudaStream_t, Precision, const Conv1x1Args&, const gemm::ImageOut&);
void conv1x1_backward_data(cudaStream_t, Precision, const Conv1x1Args&, const gemm::ImageOut&);
void conv1x1_backward_weight(cudaStream_t, Precision, const Conv1x1Args&, const gemm::MatrixOut&);
void upconv2x2_forward(cudaStream_t, Precision, const UpconvArgs&, const gemm::UpconvOut&);
void upconv2x2_backward_data(cudaStream_t, Precision, const UpconvArgs&, const gemm::ImageOut&);
void upconv2x2_backward_weight(cudaStream_t, Precision, const UpconvArgs&, const gemm::TapsMatrixOut&);

}  // namespace unet::kernels::cuda::tc
