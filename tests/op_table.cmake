# The op table (tests/op_table.h): the registry of kernel cases that the tests and both benchmarks
# iterate. Included by tests/ and by bench/, whichever comes first defines it.
if(NOT TARGET unet_op_table)
  add_library(unet_op_table STATIC ${CMAKE_CURRENT_LIST_DIR}/op_table.cpp ${CMAKE_CURRENT_LIST_DIR}/op_rows.cpp
                                   ${CMAKE_CURRENT_LIST_DIR}/row_check.cpp)
  target_link_libraries(unet_op_table PUBLIC unet_engine unet_restore_kernels_cpu)
  if(TARGET unet_restore_kernels_cuda)
    target_link_libraries(unet_op_table PUBLIC unet_restore_kernels_cuda)
  endif()
  target_compile_options(unet_op_table PRIVATE ${UNET_CXX_FLAGS})
endif()
