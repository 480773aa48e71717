// The command line's shared pieces: option parsing and device choice (tools/unet.cpp and
// tools/restore_cmd.cpp).
#pragma once
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "engine/backend.h"

namespace unet::cli {

// --key value pairs and --flags; every key must be one the subcommand knows.
class Args {
 public:
  Args(int argc, char** argv, int first, const std::set<std::string>& keys, const std::set<std::string>& flags) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-o") a = "--out";
      UNET_CHECK(a.rfind("--", 0) == 0, "unexpected argument \"", a, "\"");
      std::string k = a.substr(2);
      if (flags.count(k)) { flags_.insert(k); continue; }
      UNET_CHECK(keys.count(k), "unknown option --", k);
      UNET_CHECK(i + 1 < argc, "option --", k, " needs a value");
      values_[k] = argv[++i];
    }
  }
  bool has(const std::string& k) const { return values_.count(k) > 0; }
  // Gives `k` the value `v` unless the command line gave it one (e.g. a resumed run's recorded options).
  void set_default(const std::string& k, const std::string& v) { values_.emplace(k, v); }
  void set_flag(const std::string& k) { flags_.insert(k); }
  bool flag(const std::string& k) const { return flags_.count(k) > 0; }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  std::string need(const std::string& k) const {
    UNET_CHECK(has(k), "missing required option --", k);
    return values_.at(k);
  }
  // A finite number (NaN and inf are refused: no option means them).
  double num(const std::string& k, double def) const {
    if (!has(k)) return def;
    const std::string& v = values_.at(k);
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(v.c_str(), &end);
    UNET_CHECK(!v.empty() && end && *end == '\0' && errno != ERANGE && std::isfinite(d), "option --", k,
               " wants a finite number, got \"", v, "\"");
    return d;
  }
  // A number in [lo, hi].
  double num(const std::string& k, double def, double lo, double hi) const {
    const double d = num(k, def);
    UNET_CHECK(d >= lo && d <= hi, "option --", k, " = ", d, " is out of range: it must be in [", lo, ", ", hi, "]");
    return d;
  }
  // A whole number in [lo, hi], parsed as an integer (no fractions, no exponents, no wrap-around:
  // 4294967297 is refused, not read as 1).
  long long integer(const std::string& k, long long def, long long lo, long long hi) const {
    if (!has(k)) return def;
    const std::string& v = values_.at(k);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    UNET_CHECK(!v.empty() && end && *end == '\0', "option --", k, " wants a whole number, got \"", v, "\"");
    UNET_CHECK(errno != ERANGE && x >= lo && x <= hi, "option --", k, " = ", v,
               " is out of range: it must be an integer in [", lo, ", ", hi, "]");
    return x;
  }
  // The common case: a count that fits an int, at least `lo`.
  int count(const std::string& k, int def, int lo = 1, int hi = std::numeric_limits<int>::max()) const {
    return static_cast<int>(integer(k, def, lo, hi));
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
};

// cpu, cuda, or auto (the GPU when this build has one and a device is present).
inline Device pick_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda") {
    UNET_CHECK(cuda_available(), "--device cuda: no CUDA device is available to this build");
    return Device::CUDA;
  }
  UNET_CHECK(s == "auto", "--device must be cpu, cuda or auto, got \"", s, "\"");
  return cuda_available() ? Device::CUDA : Device::CPU;
}

}  // namespace unet::cli
