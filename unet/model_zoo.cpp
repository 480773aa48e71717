#include "unet/model_zoo.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "engine/check.h"

namespace fs = std::filesystem;

namespace unet {

const std::vector<ShippedModel>& shipped_models() {
  static const std::vector<ShippedModel> models = {
      {"isbi2012", "isbi2012-membranes.safetensors",
       "ISBI 2012 EM membranes (ssTEM, Drosophila VNC): P(membrane), P(cell); trained on all 22 labelled slices"},
      {"isbi2012-heldout", "isbi2012-membranes-heldout.safetensors",
       "the same recipe trained on 18 slices, 05, 08, 14 and 20 held out: for scores on slices it has not seen"},
  };
  return models;
}

std::vector<std::string> model_search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("UNET_MODELS_DIR"); env && *env) dirs.push_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path().parent_path() / "models").string());                // <prefix>/bin/unet
    dirs.push_back((exe.parent_path().parent_path().parent_path() / "models").string());  // build/tools/unet
  }
#ifdef UNET_MODELS_DIR_DEFAULT
  dirs.push_back(UNET_MODELS_DIR_DEFAULT);
#endif
  dirs.push_back("models");
  std::vector<std::string> unique;  // the build tree's guess and the configured folder often agree
  for (const std::string& d : dirs) {
    bool seen = false;
    for (const std::string& u : unique) seen = seen || fs::path(u).lexically_normal() == fs::path(d).lexically_normal();
    if (!seen) unique.push_back(d);
  }
  return unique;
}

std::string resolve_model(const std::string& arg) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) return arg;
  std::string names;
  for (const ShippedModel& m : shipped_models()) {
    names += (names.empty() ? "" : ", ") + m.name;
    if (m.name != arg) continue;
    std::string tried;
    for (const std::string& d : model_search_path()) {
      const fs::path p = fs::path(d) / m.file;
      if (fs::is_regular_file(p, ec)) return p.string();
      tried += "\n  " + p.string();
    }
    UNET_FAIL("model \"", arg, "\" is the shipped ", m.file, ", but no copy was found; looked in:", tried,
              "\n(set UNET_MODELS_DIR to the folder holding it)");
  }
  UNET_FAIL("model \"", arg, "\": no such file, and not a shipped model's name (those are: ", names, ")");
}

}  // namespace unet
