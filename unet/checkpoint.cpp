#include "unet/checkpoint.h"

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

int64_t meta_int(const SafetensorsFile& f, const std::string& key, const std::string& path) {
  const std::string& v = meta(f, key, path);
  try {
    size_t used = 0;
    long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  UNET_FAIL("checkpoint ", path, ": metadata \"", key, "\" = \"", v, "\" is not an integer");
}

UNetConfig config_of(const SafetensorsFile& f, const std::string& path) {
  UNET_CHECK(meta(f, "format", path) == kFormat, "checkpoint ", path, ": format \"", meta(f, "format", path),
             "\", expected \"", kFormat, "\"");
  UNetConfig c;
  c.in_channels = static_cast<int>(meta_int(f, "in_channels", path));
  c.classes = static_cast<int>(meta_int(f, "classes", path));
  c.depth = static_cast<int>(meta_int(f, "depth", path));
  c.base = static_cast<int>(meta_int(f, "base", path));
  c.dropout = std::stof(meta(f, "dropout", path));
  return c;
}

}  // namespace

void save_checkpoint(const std::string& path, const UNet& net, const SGD* opt, const TrainState& state) {
  std::vector<NamedTensor> ts;
  for (const Var& p : net.parameters()) ts.push_back({p.name(), p.shape(), p.value().to_vector()});
  if (opt) {
    const auto& bufs = const_cast<SGD*>(opt)->momentum_buffers();
    for (size_t i = 0; i < bufs.size(); ++i)
      ts.push_back({"optim.momentum." + opt->params()[i].name(), bufs[i].shape(), bufs[i].to_vector()});
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
  md["has_momentum"] = opt ? "1" : "0";
  for (const auto& [k, v] : state.extra) md["train." + k] = v;
  save_safetensors(path, ts, md);
}

UNetConfig read_checkpoint_config(const std::string& path) { return config_of(load_safetensors(path), path); }

TrainState load_checkpoint(const std::string& path, UNet& net, SGD* opt) {
  SafetensorsFile f = load_safetensors(path);
  UNetConfig c = config_of(f, path), m = net.config();
  if (c.in_channels != m.in_channels || c.classes != m.classes || c.depth != m.depth || c.base != m.base)
    UNET_FAIL("checkpoint ", path, " holds a U-Net with ", c.str(), "; the model has ", m.str());
  auto load = [&](const std::string& name, Tensor& into) {
    const NamedTensor* t = f.find(name);
    UNET_CHECK(t != nullptr, "checkpoint ", path, " has no tensor \"", name, "\"");
    UNET_CHECK(t->shape == into.shape(), "checkpoint ", path, ": tensor \"", name, "\" has shape ",
               shape_str(t->shape), ", the model expects ", shape_str(into.shape()));
    into.copy_from(Tensor::from_vector(t->shape, t->data));
  };
  for (const Var& p : net.parameters()) load(p.name(), p.value());
  if (opt) {
    UNET_CHECK(f.metadata.count("has_momentum") && f.metadata.at("has_momentum") == "1", "checkpoint ", path,
               " holds no optimizer state (weights only): it can seed a new run (--init) but not resume one");
    auto& bufs = opt->momentum_buffers();
    for (size_t i = 0; i < bufs.size(); ++i) load("optim.momentum." + opt->params()[i].name(), bufs[i]);
  }
  TrainState s;
  s.iteration = meta_int(f, "iteration", path);
  s.total_iterations = meta_int(f, "total_iterations", path);
  s.rng_seed = static_cast<uint64_t>(std::stoull(meta(f, "rng_seed", path)));
  s.rng_offset = static_cast<uint64_t>(std::stoull(meta(f, "rng_offset", path)));
  s.lr = std::stof(meta(f, "lr", path));
  for (const auto& [k, v] : f.metadata)
    if (k.rfind("train.", 0) == 0) s.extra[k.substr(6)] = v;
  return s;
}

}  // namespace unet
