// check_row (tests/row_check.h).
#include "tests/row_check.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace unet::test {
namespace {

void report_line(const char* kind, const OpCase& row, size_t out, const std::string& value, const std::string& tol,
                 const std::string& status) {
  const std::string title = row.title();
  std::printf("%-8s %-26s %-48s %4zu %12s %10s  %s\n", kind, row.op.c_str(), title.c_str(), out, value.c_str(),
              tol.c_str(), status.c_str());
  std::fflush(stdout);
  if (const char* path = std::getenv("UNET_GPU_REPORT")) {
    if (FILE* f = std::fopen(path, "a")) {
      std::fprintf(f, "%s\t%s\t%s\t%zu\t%s\t%s\t%s\n", kind, row.op.c_str(), title.c_str(), out, value.c_str(),
                   tol.c_str(), status.c_str());
      std::fclose(f);
    }
  }
}

std::string sci(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3e", v);
  return b;
}

void fail(RowCheck& r, const std::string& what) {
  if (r.ok) r.failure = what;
  r.ok = false;
}

}  // namespace

RowCheck check_row(const OpCase& row, const Backend& reference, const Backend& other, uint64_t seed, bool repeat) {
  RowCheck result;
  std::vector<Readback> ref;
  {  // the reference's buffers are freed before the other backend's are made
    Prepared p = prepare(row, reference, seed);
    p.launch();
    ref = p.read();
  }
  Prepared p = prepare(row, other, seed);
  p.launch();
  const std::vector<Readback> got = p.read();
  if (got.size() != ref.size()) {
    fail(result, other.name + " returned " + std::to_string(got.size()) + " outputs, " + reference.name + " " +
                     std::to_string(ref.size()));
    return result;
  }
  for (size_t o = 0; o < ref.size(); ++o) {
    const double err = rel_error(got[o].values, ref[o].values);
    std::string status = "ok";
    if (ref[o].guard_overwritten) status = "FAIL guard " + reference.name;
    else if (got[o].guard_overwritten) status = "FAIL guard " + other.name;
    else if (!(err <= row.tol())) status = "FAIL";
    report_line("row", row, o, sci(err), sci(row.tol()), status);
    if (status != "ok")
      fail(result, "output " + std::to_string(o) + ": " + status + " (rel_error " + sci(err) + ", tolerance " +
                       sci(row.tol()) + ", " + std::to_string(got[o].guard_overwritten) + " guard floats overwritten)");
  }
  if (!repeat) return result;
  p.reset();
  p.launch();
  const std::vector<Readback> again = p.read();
  for (size_t o = 0; o < got.size(); ++o) {
    const bool same =
        again[o].values.size() == got[o].values.size() &&
        std::memcmp(again[o].values.data(), got[o].values.data(), got[o].values.size() * sizeof(float)) == 0;
    report_line("bitwise", row, o, same ? "1" : "0", "-", same ? "bitwise" : "not bitwise");
    if (again[o].guard_overwritten)
      fail(result, "output " + std::to_string(o) + ": guard overwritten on the second run");
    if (!same) fail(result, "output " + std::to_string(o) + ": two runs differ (from the same inputs)");
  }
  return result;
}

}  // namespace unet::test
