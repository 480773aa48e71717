// Where a step's time goes, op by op. Between start_op_timing and stop_op_timing (on one thread), every
// OpRange is timed: each engine op's forward under its name, its backward as "<op> backward", the optimizer's
// update. On the GPU by CUDA events recorded around the range on the thread's stream (the device's time for
// the op's kernels, the host's launch time excluded), on the CPU by the host clock (its kernels return when
// done). A range inside a range counts in the outer one; nothing is timed while a CUDA graph is captured. The
// sum over the ops beside a step's wall time shows what the host and the gaps between kernels cost.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace unet {

struct OpTime {
  std::string op;
  int64_t calls = 0;
  double ms = 0.0;  // over all the calls
};

void start_op_timing(Device d);
// Waits for the device; the totals per name, the largest first. Timing stops.
std::vector<OpTime> stop_op_timing();

namespace detail {
// For OpRange: begin returns whether the range is timed (then end must follow on the same thread).
bool op_timing_begin(const char* name, bool backward);
void op_timing_end();
// The backend's events (engine/backend_cuda.cu): one recorded on this thread's stream now; the milliseconds
// between two after the device is done; an event back to the pool.
void* record_device_event();
double device_event_ms(void* from, void* to);
void release_device_event(void* e);
}  // namespace detail

}  // namespace unet
