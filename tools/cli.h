// The command line's shared pieces: each subcommand's options and help, option parsing with range
// checks, progress lines, and device choice (tools/unet.cpp, tools/restore_cmd.cpp, bench/).
#pragma once
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace unet::cli {

// One option of a subcommand, as `unet <command> --help` lists it.
struct Option {
  std::string name;                    // without the leading "--"
  std::string value;                   // what the value looks like ("N", "DIR|STACK"); empty for a flag
  std::string help;                    // one line, with the default where there is one
  std::vector<std::string> aliases{};  // other names accepted for it
};

// A subcommand: its usage line, what it does, and every option it takes.
struct Command {
  std::string name, usage, summary;
  std::vector<Option> options;
};

// What `unet <command> --help` prints.
inline std::string help_text(const Command& c) {
  std::string s = "usage: unet " + c.name + " " + c.usage + "\n" + c.summary + "\n";
  if (!c.options.empty()) s += "\noptions:\n";
  for (const Option& o : c.options) {
    std::string left = "  --" + o.name + (o.value.empty() ? "" : " " + o.value);
    for (const std::string& a : o.aliases) left += ", --" + a;
    if (left.size() < 30) left.resize(30, ' ');
    else left += "\n" + std::string(30, ' ');
    s += left + o.help + "\n";
  }
  return s;
}

// --key value pairs and --flags; every key must be one the subcommand knows. -o is --out; --help
// and -h ask for the subcommand's help (help_wanted()).
class Args {
 public:
  Args(int argc, char** argv, int first, const Command& cmd) {
    std::map<std::string, const Option*> by_name;
    for (const Option& o : cmd.options) {
      by_name[o.name] = &o;
      for (const std::string& a : o.aliases) by_name[a] = &o;
    }
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        help_ = true;
        continue;
      }
      if (a == "-o") a = "--out";
      UNET_CHECK(a.rfind("--", 0) == 0, "unexpected argument \"", a, "\" (unet ", cmd.name,
                 " --help lists the options)");
      auto it = by_name.find(a.substr(2));
      UNET_CHECK(it != by_name.end(), "unknown option ", a, " (unet ", cmd.name, " --help lists the options)");
      const Option& o = *it->second;
      if (o.value.empty()) {
        flags_.insert(o.name);
        continue;
      }
      UNET_CHECK(i + 1 < argc, "option --", o.name, " needs a value (", o.value, ")");
      values_[o.name] = argv[++i];  // a repeated option: the last value counts (scripts append overrides)
      every_[o.name].push_back(values_[o.name]);
    }
  }
  // The older form: the known keys and flags, without help texts.
  Args(int argc, char** argv, int first, const std::set<std::string>& keys, const std::set<std::string>& flags)
      : Args(argc, argv, first, command_of(keys, flags)) {}
  bool help_wanted() const { return help_; }
  bool has(const std::string& k) const { return values_.count(k) > 0; }
  // Every value given to an option that may repeat (e.g. --note), in order.
  std::vector<std::string> every(const std::string& k) const {
    auto it = every_.find(k);
    return it == every_.end() ? std::vector<std::string>{} : it->second;
  }
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
  static Command command_of(const std::set<std::string>& keys, const std::set<std::string>& flags) {
    Command c;
    for (const std::string& k : keys) c.options.push_back({k, "VALUE", ""});
    for (const std::string& f : flags) c.options.push_back({f, "", ""});
    return c;
  }
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> every_;
  std::set<std::string> flags_;
  bool help_ = false;
};

// Progress of long work on stderr: one line redrawn in place on a terminal; whole lines, at most
// one every `every_seconds` (and the last), when stderr is a file or a pipe, so logs stay readable.
class Progress {
 public:
  explicit Progress(double every_seconds = 10.0)
      : tty_(isatty(fileno(stderr)) != 0), every_(every_seconds), t0_(std::chrono::steady_clock::now()) {}
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  // `line` without a line end; `last` ends the progress.
  void show(const std::string& line, bool last) {
    const double now = elapsed();
    if (tty_) {
      std::fprintf(stderr, "\r%s   %s", line.c_str(), last ? "\n" : "");
    } else if (last || now - printed_ >= every_) {
      std::fprintf(stderr, "%s\n", line.c_str());
      printed_ = now;
    }
  }

 private:
  bool tty_;
  double every_, printed_ = -1e30;
  std::chrono::steady_clock::time_point t0_;
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
