// The command line's shared pieces: option parsing and device choice (tools/unet.cpp and
// tools/restore_cmd.cpp).
#pragma once
#include <cstdlib>
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
  bool flag(const std::string& k) const { return flags_.count(k) > 0; }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values_.find(k);
    return it == values_.end() ? def : it->second;
  }
  std::string need(const std::string& k) const {
    UNET_CHECK(has(k), "missing required option --", k);
    return values_.at(k);
  }
  double num(const std::string& k, double def) const {
    if (!has(k)) return def;
    const std::string& v = values_.at(k);
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    UNET_CHECK(end && *end == '\0' && !v.empty(), "option --", k, " wants a number, got \"", v, "\"");
    return d;
  }
  long long integer(const std::string& k, long long def) const {
    double d = num(k, static_cast<double>(def));
    UNET_CHECK(d == static_cast<double>(static_cast<long long>(d)), "option --", k, " wants an integer");
    return static_cast<long long>(d);
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
