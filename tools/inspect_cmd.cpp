// unet inspect: per-layer diagnostics of a trained model (unet/diagnose.h). Dispatched from
// tools/unet.cpp.
//   unet inspect --model CKPT [--image IMG] [--tile T] [--seed S]
#include <cstdio>
#include <limits>
#include <string>

#include "engine/safetensors.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "unet/checkpoint.h"
#include "unet/diagnose.h"
#include "unet/io.h"
#include "unet/model_zoo.h"

using namespace unet;

int cmd_inspect(int argc, char** argv) {
  cli::Args a(argc, argv, 2, cli::kInspect);
  if (a.help_wanted()) {
    std::fputs(cli::help_text(cli::kInspect).c_str(), stdout);
    return 0;
  }
  const std::string path = resolve_model(a.need("model"));
  const Device dev = cli::pick_device(a.str("device", "auto"));
  const UNetConfig cfg = read_checkpoint_config(path);
  UNet net(cfg, dev);  // weights from the checkpoint, no He init first
  const TrainState st = load_checkpoint(path, net, nullptr);
  // The initial weights are those `unet train --seed S` drew: the checkpoint records S.
  const long long seed =
      a.integer("seed", static_cast<long long>(st.rng_seed), 0, std::numeric_limits<long long>::max());
  Rng r0(static_cast<uint64_t>(seed));
  UNet init(cfg, dev, r0);
  std::printf("%s after %lld iterations; initial weights of seed %lld\n", path.c_str(),
              static_cast<long long>(st.iteration), seed);
  std::printf("%-24s %10s %10s %12s\n", "weights", "rms init", "rms now", "rel. change");
  for (const LayerWeights& w : weight_change(net, init))
    std::printf("%-24s %10.4f %10.4f %12.3f\n", w.name.c_str(), w.rms_init, w.rms, w.rel_change);
  if (a.has("image")) {
    const Image img = read_image_normalised(a.str("image"));
    const int tile = a.count("tile", 0, 0, TileSizes::kMaxTile);
    std::printf("\n%-24s %8s %8s %10s %10s\n", "activations", "channels", "dead", "zero frac", "rms");
    for (const LayerActivity& l : activation_stats(net, img, tile))
      std::printf("%-24s %8d %8d %10.3f %10.4f\n", l.name.c_str(), l.channels, l.dead_channels, l.zero_fraction, l.rms);
  }
  return 0;
}
