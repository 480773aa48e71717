# The GPU benchmark (bench/bench_gpu.cpp): every CUDA kernel at the paper's shapes against cuDNN, cuBLAS
# and cudaMemcpy baselines. bench/CMakeLists.txt includes this file under if(UNET_HAVE_CUDA).
#
# cuDNN is looked for in the CUDA toolkit, the usual system paths, CUDNN_ROOT (a CMake or environment
# variable; tools/gpu_check.sh points it at a pip-installed nvidia-cudnn when the system has none). Without
# it the benchmark is still built, with cuBLAS and memcpy baselines only.
find_package(benchmark REQUIRED)
find_package(CUDAToolkit REQUIRED)

find_path(CUDNN_INCLUDE_DIR cudnn.h
  HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES include)
find_library(CUDNN_LIB NAMES cudnn libcudnn.so.9
  HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES lib lib64 lib/x64)

add_executable(bench_gpu ${CMAKE_CURRENT_LIST_DIR}/bench_gpu.cpp)
target_link_libraries(bench_gpu PRIVATE unet_engine unet_op_table benchmark::benchmark CUDA::cudart CUDA::cublas)
target_compile_options(bench_gpu PRIVATE ${UNET_CXX_FLAGS})
if(CUDNN_INCLUDE_DIR AND CUDNN_LIB)
  message(STATUS "bench_gpu: cuDNN baselines from ${CUDNN_LIB}")
  target_include_directories(bench_gpu SYSTEM PRIVATE ${CUDNN_INCLUDE_DIR})
  target_link_libraries(bench_gpu PRIVATE ${CUDNN_LIB})
  target_compile_definitions(bench_gpu PRIVATE UNET_BENCH_HAVE_CUDNN=1)
else()
  message(WARNING "bench_gpu: cuDNN not found (set CUDNN_ROOT): building without the cuDNN baselines")
  target_compile_definitions(bench_gpu PRIVATE UNET_BENCH_HAVE_CUDNN=0)
endif()
