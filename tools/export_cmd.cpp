// unet export: a weights-only copy of a checkpoint for shipping, optionally in half precision
// (unet/export.h); unet info: what a model file holds. Dispatched from tools/unet.cpp.
//   unet export --model CKPT -o OUT.safetensors [--fp16] [--note key=value]
//   unet info --model CKPT|isbi2012
#include <cstdio>
#include <string>

#include "engine/safetensors.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "unet/checkpoint.h"
#include "unet/export.h"
#include "unet/model_zoo.h"

using namespace unet;

int cmd_export(int argc, char** argv) {
  cli::Args a(argc, argv, 2, cli::kExport);
  if (a.help_wanted()) {
    std::fputs(cli::help_text(cli::kExport).c_str(), stdout);
    return 0;
  }
  std::map<std::string, std::string> notes;
  for (const std::string& n : a.every("note")) {  // --note may repeat: one entry each
    const size_t eq = n.find('=');
    UNET_CHECK(eq != std::string::npos && eq > 0, "--note wants key=value, got \"", n, "\"");
    UNET_CHECK(notes.count("note." + n.substr(0, eq)) == 0, "--note ", n.substr(0, eq), " is given twice");
    notes["note." + n.substr(0, eq)] = n.substr(eq + 1);
  }
  const ExportReport r = export_model(a.need("model"), a.need("out"), a.flag("fp16"), notes);
  std::printf("wrote %s: %lld parameters, %.2f MB%s\n", a.need("out").c_str(), static_cast<long long>(r.parameters),
              r.bytes / 1e6, a.flag("fp16") ? "" : " (F32)");
  if (a.flag("fp16"))
    std::printf("half precision: largest rounding error %.3g (%.3g of its tensor's largest weight)\n", r.max_abs_error,
                r.max_rel_error);
  return 0;
}

// The architecture, the storage, and every metadata entry (training state, train.* options and
// note.* entries such as a shipped model's recipe and held-out figures), one "key: value" a line.
int cmd_info(int argc, char** argv) {
  cli::Args a(argc, argv, 2, cli::kInfo);
  if (a.help_wanted()) {
    std::fputs(cli::help_text(cli::kInfo).c_str(), stdout);
    return 0;
  }
  const std::string path = resolve_model(a.need("model"));
  const UNetConfig cfg = read_checkpoint_config(path);
  const SafetensorsFile f = load_safetensors(path);
  int64_t params = 0;
  std::string dtype;
  for (const NamedTensor& t : f.tensors)
    if (t.name.rfind("optim.", 0) != 0) {
      params += static_cast<int64_t>(t.data.size());
      if (dtype.empty()) dtype = t.dtype;
    }
  std::printf("file: %s\nnetwork: %s\nparameters: %lld (%s)\n", path.c_str(), cfg.str().c_str(),
              static_cast<long long>(params), dtype.c_str());
  for (const auto& [k, v] : f.metadata) std::printf("%s: %s\n", k.c_str(), v.c_str());
  return 0;
}
