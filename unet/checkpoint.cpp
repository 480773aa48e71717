#include "unet/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "engine/safetensors.h"

namespace unet {

namespace {

const char* kFormat = "unet-cuda/1";

std::map<std::string, std::string> config_metadata(const UNetConfig& c) {
  return {{"format", kFormat},
          {"in_channels", std::to_string(c.in_channels)},
          {"classes", std::to_string(c.classes)},
          {"depth", std::to_string(c.depth)},
          {"base", std::to_string(c.base)},
          {"dropout", std::to_string(c.dropout)}};
}

const std::string& meta(const SafetensorsFile& f, const std::string& key, const std::string& path) {
  auto it = f.metadata.find(key);
  UNET_CHECK(it != f.metadata.end(), "checkpoint ", path, ": metadata has no \"", key,
             "\" (not a unet-cuda checkpoint, or a damaged one)");
  return it->second;
}

// An integer metadata value in [lo, hi], parsed whole (no wrap-around: base = 2^32 + 8 is refused).
int64_t meta_int(const SafetensorsFile& f, const std::string& key, const std::string& path, int64_t lo, int64_t hi) {
  const std::string& v = meta(f, key, path);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  UNET_CHECK(!v.empty() && end && *end == '\0' && errno != ERANGE, "checkpoint ", path, ": metadata \"", key, "\" = \"",
             v, "\" is not an integer");
  UNET_CHECK(x >= lo && x <= hi, "checkpoint ", path, ": metadata \"", key, "\" = ", x, " is out of range [", lo, ", ",
             hi, "]");
  return x;
}

uint64_t meta_uint(const SafetensorsFile& f, const std::string& key, const std::string& path) {
  const std::string& v = meta(f, key, path);
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  UNET_CHECK(!v.empty() && v[0] != '-' && end && *end == '\0' && errno != ERANGE, "checkpoint ", path, ": metadata \"",
             key, "\" = \"", v, "\" is not an integer in [0, 2^64)");
  return x;
}

float meta_float(const SafetensorsFile& f, const std::string& key, const std::string& path, double lo, double hi) {
  const std::string& v = meta(f, key, path);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  UNET_CHECK(!v.empty() && end && *end == '\0' && std::isfinite(x), "checkpoint ", path, ": metadata \"", key,
             "\" = \"", v, "\" is not a finite number");
  UNET_CHECK(x >= lo && x <= hi, "checkpoint ", path, ": metadata \"", key, "\" = ", v, " is out of range [", lo, ", ",
             hi, "]");
  return static_cast<float>(x);
}

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// The architecture, validated, and checked against the tensors the file really holds, so that a
// damaged header cannot make us build a network the file could never fill.
UNetConfig config_of(const SafetensorsFile& f, const std::string& path) {
  UNET_CHECK(meta(f, "format", path) == kFormat, "checkpoint ", path, ": format \"", meta(f, "format", path),
             "\", expected \"", kFormat, "\"");
  UNetConfig c;
  c.in_channels = static_cast<int>(meta_int(f, "in_channels", path, 1, kIntMax));
  c.classes = static_cast<int>(meta_int(f, "classes", path, 1, kIntMax));
  c.depth = static_cast<int>(meta_int(f, "depth", path, 1, kIntMax));
  c.base = static_cast<int>(meta_int(f, "base", path, 1, kIntMax));
  c.dropout = meta_float(f, "dropout", path, 0.0, 0.999999);
  c.validate("checkpoint " + path + ": metadata");
  for (const ParamSpec& p : parameter_specs(c)) {
    const NamedTensor* t = f.find(p.name);
    UNET_CHECK(t != nullptr, "checkpoint ", path, ": its metadata describes a U-Net with ", c.str(),
               " but the file has no tensor \"", p.name, "\" of shape ", shape_str(p.shape));
    UNET_CHECK(t->shape == p.shape, "checkpoint ", path, ": its metadata describes a U-Net with ", c.str(), " whose \"",
               p.name, "\" has shape ", shape_str(p.shape), ", but the file's has shape ", shape_str(t->shape));
  }
  return c;
}

TrainState state_of(const SafetensorsFile& f, const std::string& path) {
  TrainState s;
  s.total_iterations = meta_int(f, "total_iterations", path, 0, std::numeric_limits<int64_t>::max());
  s.iteration = meta_int(f, "iteration", path, 0, s.total_iterations);
  s.rng_seed = meta_uint(f, "rng_seed", path);
  s.rng_offset = meta_uint(f, "rng_offset", path);
  s.lr = meta_float(f, "lr", path, 0.0, 1e30);
  for (const auto& [k, v] : f.metadata)
    if (k.rfind("train.", 0) == 0) s.extra[k.substr(6)] = v;
  return s;
}

}  // namespace

TrainState read_checkpoint_state(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  config_of(f, path);
  return state_of(f, path);
}

void save_checkpoint(const std::string& path, const UNet& net, const Optimizer* opt, const TrainState& state) {
  std::vector<NamedTensor> ts;
  for (const Var& p : net.parameters()) ts.push_back({p.name(), p.shape(), p.value().to_vector()});
  if (opt) {
    for (const Optimizer::Buffers& b : const_cast<Optimizer*>(opt)->state())
      for (size_t i = 0; i < b.tensors->size(); ++i) {
        const Tensor& t = (*b.tensors)[i];
        ts.push_back({"optim." + b.name + "." + opt->params()[i].name(), t.shape(), t.to_vector()});
      }
  }
  auto md = config_metadata(net.config());
  md["iteration"] = std::to_string(state.iteration);
  md["total_iterations"] = std::to_string(state.total_iterations);
  md["rng_seed"] = std::to_string(state.rng_seed);
  md["rng_offset"] = std::to_string(state.rng_offset);
  std::ostringstream lr;
  lr.precision(9);
  lr << state.lr;
  md["lr"] = lr.str();
  md["has_momentum"] = opt ? "1" : "0";  // "has optimizer state" (the name predates Adam)
  if (opt) {
    md["optimizer"] = opt->kind();
    md["optimizer_steps"] = std::to_string(opt->steps());
  }
  for (const auto& [k, v] : state.extra) md["train." + k] = v;
  save_safetensors(path, ts, md);
}

UNetConfig read_checkpoint_config(const std::string& path) { return config_of(load_safetensors(path), path); }

UNetConfig checkpoint_config(const SafetensorsFile& file, const std::string& name) { return config_of(file, name); }

TrainState load_checkpoint(const std::string& path, UNet& net, Optimizer* opt) {
  return load_checkpoint(load_safetensors(path), path, net, opt);
}

TrainState load_checkpoint(const SafetensorsFile& f, const std::string& path, UNet& net, Optimizer* opt) {
  UNetConfig c = config_of(f, path), m = net.config();
  if (c.in_channels != m.in_channels || c.classes != m.classes || c.depth != m.depth || c.base != m.base)
    UNET_FAIL("checkpoint ", path, " holds a U-Net with ", c.str(), "; the model has ", m.str());
  auto load = [&](const std::string& name, Tensor& into) {
    const NamedTensor* t = f.find(name);
    UNET_CHECK(t != nullptr, "checkpoint ", path, " has no tensor \"", name, "\"");
    UNET_CHECK(t->shape == into.shape(), "checkpoint ", path, ": tensor \"", name, "\" has shape ", shape_str(t->shape),
               ", the model expects ", shape_str(into.shape()));
    // A NaN or inf weight would spread to every output: refuse the file rather than predict NaN.
    const auto bad = std::find_if(t->data.begin(), t->data.end(), [](float v) { return !std::isfinite(v); });
    if (bad != t->data.end()) {
      const auto n = std::count_if(t->data.begin(), t->data.end(), [](float v) { return !std::isfinite(v); });
      UNET_FAIL("checkpoint ", path, ": tensor \"", name, "\" holds ", n, " non-finite value(s) (the first, ", *bad,
                ", at element ", bad - t->data.begin(), "): the run that wrote it had diverged");
    }
    into.copy_from(Tensor::from_vector(t->shape, t->data));
  };
  for (const Var& p : net.parameters()) load(p.name(), p.value());
  if (opt) {
    UNET_CHECK(f.metadata.count("has_momentum") && f.metadata.at("has_momentum") == "1", "checkpoint ", path,
               " holds no optimizer state (weights only): it can seed a new run (--init) but not resume one");
    // Checkpoints written before the optimizer was recorded are SGD ones.
    const std::string kind = f.metadata.count("optimizer") ? f.metadata.at("optimizer") : "sgd";
    UNET_CHECK(kind == opt->kind(), "checkpoint ", path, " was trained with the ", kind,
               " optimizer; resume it with --optimizer ", kind, " (this run uses ", opt->kind(), ")");
    for (const Optimizer::Buffers& b : opt->state())
      for (size_t i = 0; i < b.tensors->size(); ++i)
        load("optim." + b.name + "." + opt->params()[i].name(), (*b.tensors)[i]);
    const int64_t kMax = std::numeric_limits<int64_t>::max();
    opt->set_steps(f.metadata.count("optimizer_steps") ? meta_int(f, "optimizer_steps", path, 0, kMax)
                                                       : meta_int(f, "iteration", path, 0, kMax));
  }
  TrainState s = state_of(f, path);
  return s;
}

}  // namespace unet
