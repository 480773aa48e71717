// Models shipped with the project, by short name: `unet predict --model isbi2012` instead of a
// path. The files live in models/ of the source tree (models/README.md says how each was trained).
#pragma once
#include <string>
#include <vector>

namespace unet {

struct ShippedModel {
  std::string name;  // the short name, e.g. "isbi2012"
  std::string file;  // the file name in models/, e.g. "isbi2012-membranes.safetensors"
  std::string what;  // one line for listings
};
const std::vector<ShippedModel>& shipped_models();

// The folders searched for shipped models, in order: $UNET_MODELS_DIR, models/ next to the
// executable's build tree (<exe>/../models, <exe>/../../models), the source tree's models/ as
// configured at build time, and ./models.
std::vector<std::string> model_search_path();

// `arg` when it names an existing file; otherwise, for a short name, the first file found along
// model_search_path(). Throws with the places searched (or the known short names) when neither.
std::string resolve_model(const std::string& arg);

}  // namespace unet
