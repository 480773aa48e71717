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

// expected_ranges: how many ranges the timed work will open (0: unknown): on the GPU their events are made
// before, not while the work runs.
void start_op_timing(Device d, int64_t expected_ranges = 0);
// Waits for the device; the totals per name, the largest first. Timing stops (also when it throws: an event
// that could not be recorded or read is reported here, never from the range that met it).
std::vector<OpTime> stop_op_timing();

namespace detail {
// For OpRange: begin returns whether the range is timed (then end must follow on the same thread); end never
// throws (it runs in a destructor).
bool op_timing_begin(const char* name, bool backward);
void op_timing_end() noexcept;
// The backend's events (engine/backend_cuda.cu): n made ahead into the pool; one recorded on this thread's stream
// now; the milliseconds between two after the device is done; an event back to the pool.
void reserve_device_events(int64_t n);
void* record_device_event();
double device_event_ms(void* from, void* to);
void release_device_event(void* e) noexcept;
}  // namespace detail

}  // namespace unet
