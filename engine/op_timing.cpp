#include "engine/op_timing.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "engine/backend.h"
#include "engine/graph.h"

namespace unet {

namespace {

using Clock = std::chrono::steady_clock;

struct Record {
  std::string name;
  Clock::time_point t0, t1;           // the CPU
  void *e0 = nullptr, *e1 = nullptr;  // the GPU
};

struct Timing {
  bool on = false;
  Device device = Device::CPU;
  int depth = 0;  // of the open ranges, timed or nested in a timed one
  std::vector<Record> records;
  std::string error;  // the first event that failed (reported by stop_op_timing)
};

thread_local Timing t_timing;

}  // namespace

void start_op_timing(Device d, int64_t expected_ranges) {
  Timing& t = t_timing;
  UNET_CHECK(!t.on, "start_op_timing: timing is on already");
  if (d == Device::CUDA && expected_ranges > 0) detail::reserve_device_events(2 * expected_ranges);
  t = Timing{};
  t.on = true;
  t.device = d;
}

std::vector<OpTime> stop_op_timing() {
  Timing& t = t_timing;
  UNET_CHECK(t.on && t.depth == 0, "stop_op_timing: timing is not on, or a range is still open");
  t.on = false;
  std::string error = t.error;
  if (t.device == Device::CUDA && error.empty()) {
    try {
      synchronize(Device::CUDA);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  std::map<std::string, OpTime> by_name;
  for (const Record& r : t.records) {  // every event goes back to the pool, whatever fails
    OpTime& o = by_name[r.name];
    o.op = r.name;
    ++o.calls;
    if (t.device == Device::CUDA) {
      if (error.empty() && r.e0 && r.e1) {
        try {
          o.ms += detail::device_event_ms(r.e0, r.e1);
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      if (r.e0) detail::release_device_event(r.e0);
      if (r.e1) detail::release_device_event(r.e1);
    } else {
      o.ms += std::chrono::duration<double, std::milli>(r.t1 - r.t0).count();
    }
  }
  t.records.clear();
  UNET_CHECK(error.empty(), "op timing: ", error);
  std::vector<OpTime> v;
  for (auto& [name, o] : by_name) v.push_back(o);
  std::stable_sort(v.begin(), v.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return v;
}

namespace detail {

bool op_timing_begin(const char* name, bool backward) {
  Timing& t = t_timing;
  if (!t.on || current_capture() != nullptr) return false;
  if (t.depth > 0) {
    ++t.depth;
    return true;
  }
  Record r;
  r.name = backward ? std::string(name) + " backward" : std::string(name);
  if (t.device == Device::CUDA) r.e0 = record_device_event();  // may throw: then the range is not open
  else r.t0 = Clock::now();
  t.records.push_back(std::move(r));
  t.depth = 1;
  return true;
}

void op_timing_end() noexcept {
  Timing& t = t_timing;
  if (--t.depth > 0) return;
  Record& r = t.records.back();
  if (t.device == Device::CPU) {
    r.t1 = Clock::now();
    return;
  }
  try {
    r.e1 = record_device_event();
  } catch (const std::exception& e) {
    if (t.error.empty()) t.error = e.what();
  } catch (...) {
    if (t.error.empty()) t.error = "an event could not be recorded";
  }
}

}  // namespace detail

}  // namespace unet
