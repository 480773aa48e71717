// bench_unet: the whole network, for comparisons with other frameworks on identical inputs.
//
//   bench_unet init    --out CKPT [--base 64 --depth 4 --in-channels 1 --classes 2 --dropout 0.5 --seed 1]
//       He-initialised weights as a checkpoint (the safetensors names of docs/checkpoints.md), so that
//       another framework can start from exactly our weights.
//   bench_unet sample  --image IMG --labels IMG --tile T --out DIR [--augment-seed S]
//       one training tile as the trainer builds it: DIR/x.npy (T x T, the normalised image, mirrored past
//       the border), DIR/labels.npy and DIR/weights.npy (the output's O x O class indices and Eq. 2
//       weights, w0 10, sigma 5), centred on the image; with --augment-seed, augmented as in training.
//   bench_unet step    --model CKPT --tile-dir DIR [--device cpu|cuda] [--precision fp32|tf32|bf16] [--steps 3] [--lr
//   0.002]
//                      [--momentum 0.99] [--dropout P] [--time-steps N --warmup W] [--cuda-graph on|off]
//                      [--op-times N] [--json FILE]
//       the training step of unet train (forward with dropout, weighted softmax cross-entropy, backward,
//       SGD with momentum) on that tile: prints the loss of each of --steps steps (before its update),
//       then times N more steps (median wall time, the device synchronised after each); with --cuda-graph on,
//       every step after the first is one replayed CUDA graph; with --op-times N, N + 1 more eager steps, each op of
//       the last N timed (engine/op_timing.h): milliseconds per step by op, their sum and the steps' wall time.
//   bench_unet predict --model CKPT [--size 512] [--tile T | --one-tile] [--batch B] [--tta] [--repeats R] [--device
//   ..]
//                      [--json FILE]
//       overlap-tile prediction of a random size x size image: median time and the allocator's peak memory.
//   bench_unet slices  --images STACK.tif --labels STACK.tif --val-last N --out DIR
//       splits an image/label stack pair (e.g. ISBI 2012's train-volume.tif, train-labels.tif) into
//       DIR/train/{image,label}/NN.png and, for the last N slices, DIR/val/{image,label}/NN.png.
// Every figure is also written as one JSON object to --json.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/op_timing.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/precision.h"
#include "kernels/philox.h"
#include "kernels/precision.h"
#include "tools/cli.h"
#include "unet/augment.h"
#include "unet/checkpoint.h"
#include "unet/io.h"
#include "unet/predict.h"
#include "unet/weightmap.h"

namespace fs = std::filesystem;
using namespace unet;
using unet::cli::Args;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A flat JSON object written in insertion order (numbers printed with 9 significant digits).
class Json {
 public:
  void num(const std::string& k, double v) {
    char b[64];
    if (std::isfinite(v)) std::snprintf(b, sizeof b, "%.9g", v);
    else std::snprintf(b, sizeof b, "null");
    add(k, b);
  }
  void str(const std::string& k, const std::string& v) {
    std::string e;
    for (char c : v) e += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    add(k, "\"" + e + "\"");
  }
  void nums(const std::string& k, const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      char b[64];
      std::snprintf(b, sizeof b, std::isfinite(v[i]) ? "%.9g" : "null", v[i]);
      s += (i ? ", " : "") + std::string(b);
    }
    add(k, s + "]");
  }
  void raw(const std::string& k, const std::string& json) { add(k, json); }  // a value written as JSON already
  std::string text() const { return "{\n" + body_ + "\n}\n"; }
  void write(const std::string& path) const {
    if (path.empty()) return;
    const std::string t = text();
    atomic_write_bytes(path, t.data(), t.size());
  }

 private:
  void add(const std::string& k, const std::string& v) {
    body_ += (body_.empty() ? "  \"" : ",\n  \"") + k + "\": " + v;
  }
  std::string body_;
};

void device_fields(Json& j, Device d) {
  j.str("device", device_name(d));
  if (d == Device::CUDA) {
    const DeviceInfo info = cuda_device_info();
    j.str("gpu", info.name);
    const AllocatorStats s = cuda_allocator_stats();
    j.num("peak_bytes_in_use", static_cast<double>(s.peak_bytes_in_use));
    j.num("bytes_reserved", static_cast<double>(s.bytes_reserved));  // the caching allocator never shrinks
  }
}

UNetConfig config_from(const Args& a) {
  UNetConfig c;
  c.in_channels = a.count("in-channels", 1, 1, 64);
  c.classes = a.count("classes", 2, 2, 256);
  c.depth = a.count("depth", 4, 1, 8);
  c.base = a.count("base", 64, 1, 1024);
  c.dropout = static_cast<float>(a.num("dropout", 0.5, 0.0, 0.99));
  return c;
}

int cmd_init(int argc, char** argv) {
  Args a(argc, argv, 2, {"out", "base", "depth", "in-channels", "classes", "dropout", "seed"}, {});
  const UNetConfig cfg = config_from(a);
  Rng rng(static_cast<uint64_t>(a.integer("seed", 1, 0, std::numeric_limits<long long>::max())));
  UNet net(cfg, Device::CPU, rng);
  TrainState st;
  save_checkpoint(a.need("out"), net, nullptr, st);
  std::printf("wrote %s: U-Net %s, %lld parameters\n", a.need("out").c_str(), cfg.str().c_str(),
              static_cast<long long>(net.parameter_count()));
  return 0;
}

int cmd_sample(int argc, char** argv) {
  Args a(argc, argv, 2, {"image", "labels", "tile", "out", "depth", "augment-seed", "classes"}, {});
  const int depth = a.count("depth", 4, 1, 8);
  const int T = a.count("tile", 572, 1, 1 << 15);
  TileSizes::check_input(T, depth, "--tile");
  const int O = TileSizes::output_for_input(T, depth);
  WeightMapParams wm;
  wm.num_classes = a.count("classes", 2, 2, 256);
  Sample src{read_image_normalised(a.need("image")), read_label(a.need("labels"), wm.num_classes), Image()};
  UNET_CHECK(src.image.channels == 1, "bench_unet sample: ", a.need("image"), " has ", src.image.channels,
             " channels; the comparison uses one");
  src.weights = weight_map(src.labels, wm);
  AugmentParams p = AugmentParams::none();
  p.random_position = false;  // centred on the image
  Rng rng(0);
  if (a.has("augment-seed")) {
    p = AugmentParams{};
    rng = Rng(static_cast<uint64_t>(a.integer("augment-seed", 1, 0, std::numeric_limits<long long>::max())));
  }
  Sample s = augment_tile(src, T, T, O, O, rng, p);
  const fs::path dir = a.need("out");
  fs::create_directories(dir);
  write_npy((dir / "x.npy").string(), s.image);
  write_npy((dir / "labels.npy").string(), s.labels);
  write_npy((dir / "weights.npy").string(), s.weights);
  std::printf("wrote %s/{x,labels,weights}.npy: tile %d -> %d\n", dir.string().c_str(), T, O);
  return 0;
}

int cmd_step(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"model", "tile-dir", "device", "precision", "steps", "lr", "momentum", "dropout", "time-steps", "warmup",
          "json", "seed", "cuda-graph", "op-times"},
         {});
  const Device dev = cli::pick_device(a.str("device", "auto"));
  // fp32 unless asked: the cross-framework check compares with PyTorch's FP32 step.
  const kernels::Precision prec = parse_precision_option(a.str("precision", "fp32"));
  const ops::ConvPrecision conv_precision(choose_precision(dev, prec));
  UNetConfig cfg = read_checkpoint_config(a.need("model"));
  if (a.has("dropout")) cfg.dropout = static_cast<float>(a.num("dropout", 0.0, 0.0, 0.99));
  Rng rng(static_cast<uint64_t>(a.integer("seed", 1, 0, std::numeric_limits<long long>::max())));
  UNet net(cfg, dev, rng);
  load_checkpoint(a.need("model"), net, nullptr);
  const fs::path dir = a.need("tile-dir");
  const Image x = read_npy((dir / "x.npy").string()), lab = read_npy((dir / "labels.npy").string()),
              w = read_npy((dir / "weights.npy").string());
  const int T = x.height, O = TileSizes::output_for_input(T, cfg.depth);
  UNET_CHECK(x.width == T && x.channels == cfg.in_channels, "x.npy is ", x.channels, "x", x.height, "x", x.width,
             ": expected a square tile with ", cfg.in_channels, " channel(s)");
  UNET_CHECK(O > 0 && lab.height == O && lab.width == O && w.height == O && w.width == O,
             "labels.npy / weights.npy are ", lab.height, "x", lab.width, " / ", w.height, "x", w.width, "; a ", T,
             " tile gives ", O, "x", O);
  std::vector<int32_t> li(lab.data.size());
  for (size_t i = 0; i < li.size(); ++i) {
    li[i] = static_cast<int32_t>(lab.data[i]);
    UNET_CHECK(li[i] >= 0 && li[i] < cfg.classes && static_cast<float>(li[i]) == lab.data[i], "labels.npy holds ",
               lab.data[i], " at ", i, ": not a class index in [0, ", cfg.classes, ")");
  }
  const Tensor xt = Tensor::from_vector({1, cfg.in_channels, T, T}, x.data).to(dev);
  const Tensor lt = Tensor::from_vector_i32({1, O, O}, li).to(dev);
  const Tensor wt = Tensor::from_vector({1, O, O}, w.data).to(dev);
  SGD opt(net.parameters(), static_cast<float>(a.num("lr", 0.002, 1e-30, 10.0)),
          static_cast<float>(a.num("momentum", 0.99, 0.0, 0.999999)), 0.0f);
  Tensor loss_t;
  auto one_step = [&] {  // unet train's iteration (unet/train.cpp), on the fixed tile
    opt.zero_grad();
    Var loss = ops::softmax_xent(net.forward(Var(xt), true, &rng), lt, wt);
    backward(loss);
    opt.step();
    loss_t = loss.value();
  };
  // --cuda-graph on: the first step eager, the second captured, the others replayed (unet train --cuda-graph).
  const std::string graph_opt = a.str("cuda-graph", "off");
  UNET_CHECK(graph_opt == "on" || graph_opt == "off", "--cuda-graph must be on or off, got ", graph_opt);
  UNET_CHECK(graph_opt == "off" || dev == Device::CUDA, "--cuda-graph on needs --device cuda");
  std::unique_ptr<StepGraph> graph = graph_opt == "on" ? std::make_unique<StepGraph>() : nullptr;
  int steps_run = 0;
  auto step = [&] {
    if (graph && steps_run++ > 0) graph->run(one_step, &rng, &opt);
    else one_step();
    return loss_t.to_vector()[0];  // waits for the step: its loss, computed before the update
  };
  Json j;
  j.str("what", "training step");
  j.str("precision", kernels::precision_name(prec));
  j.str("config", cfg.str());
  j.num("tile", T);
  j.num("out", O);
  j.num("lr", opt.lr());
  j.num("momentum", opt.momentum());
  j.str("cuda_graph", graph_opt);
  std::vector<double> losses;
  for (long long s = 0; s < a.count("steps", 3, 0, 1000000); ++s) {
    losses.push_back(step());
    std::printf("step %lld loss %.8f\n", s + 1, losses.back());
  }
  j.nums("losses", losses);
  const long long n = a.count("time-steps", 0, 0, 1000000);
  if (n > 0) {
    for (long long s = 0; s < a.count("warmup", 3, 0, 1000000); ++s) step();
    std::vector<double> ms;
    for (long long s = 0; s < n; ++s) {
      const auto t0 = Clock::now();
      step();
      ms.push_back(1e3 * seconds_since(t0));
    }
    j.num("step_ms_median", median(ms));
    j.num("step_ms_min", *std::min_element(ms.begin(), ms.end()));
    j.nums("step_ms", ms);
    std::printf("step time: median %.2f ms over %lld steps (min %.2f)\n", median(ms), n,
                *std::min_element(ms.begin(), ms.end()));
  }
  // --op-times N: 1 + N more steps, eager, each op of the last N timed (engine/op_timing.h): where a step's time
  // goes.
  const long long profiled = a.count("op-times", 0, 0, 1000);
  if (profiled > 0) {
    UNET_CHECK(graph == nullptr, "--op-times times the ops of eager steps: leave out --cuda-graph on");
    std::vector<OpTime> times;
    double wall = 0.0;
    try {
      // A step first to count its ranges: the timed steps then find their events made.
      start_op_timing(dev);
      one_step();
      int64_t ranges = 0;
      for (const OpTime& t : stop_op_timing()) ranges += t.calls;
      start_op_timing(dev, ranges * profiled);
      const auto t0 = Clock::now();
      for (long long s = 0; s < profiled; ++s) one_step();
      synchronize(dev);
      wall = 1e3 * seconds_since(t0) / static_cast<double>(profiled);
      times = stop_op_timing();
    } catch (const std::exception& e) {  // the figures above are kept; the JSON says why the table is missing
      std::fprintf(stderr, "op timing failed: %s\n", e.what());
      j.str("op_times_error", e.what());
      try {
        device_fields(j, dev);
      } catch (const std::exception&) {  // a device left in error: the figures without its name
      }
      j.write(a.str("json"));
      return 1;
    }
    double sum = 0.0;
    std::ostringstream rows;
    rows << "[";
    for (size_t i = 0; i < times.size(); ++i) {
      const double per_step = times[i].ms / static_cast<double>(profiled);
      sum += per_step;
      char row[256];
      std::snprintf(row, sizeof row, "%s{\"op\": \"%s\", \"calls\": %lld, \"ms\": %.6g}", i ? ", " : "",
                    times[i].op.c_str(), static_cast<long long>(times[i].calls / profiled), per_step);
      rows << row;
    }
    rows << "]";
    j.raw("op_times", rows.str());
    j.num("op_times_steps", static_cast<double>(profiled));
    j.num("op_ms_sum", sum);
    j.num("op_times_wall_ms", wall);
    std::printf("per step, over %lld timed steps (%.2f ms of ops in %.2f ms of wall time):\n", profiled, sum, wall);
    for (const OpTime& t : times)
      std::printf("  %-34s %4lld calls %9.3f ms %5.1f%%\n", t.op.c_str(), static_cast<long long>(t.calls / profiled),
                  t.ms / static_cast<double>(profiled), 100.0 * t.ms / static_cast<double>(profiled) / sum);
  }
  device_fields(j, dev);
  j.write(a.str("json"));
  return 0;
}

int cmd_predict(int argc, char** argv) {
  Args a(argc, argv, 2, {"model", "size", "tile", "batch", "repeats", "device", "json", "seed"}, {"tta", "one-tile"});
  const Device dev = cli::pick_device(a.str("device", "auto"));
  const UNetConfig cfg = read_checkpoint_config(a.need("model"));
  Rng rng(0);
  UNet net(cfg, dev, rng);
  load_checkpoint(a.need("model"), net, nullptr);
  const int size = a.count("size", 512, 1, 1 << 16);
  Image img(cfg.in_channels, size, size);
  const uint64_t seed = static_cast<uint64_t>(a.integer("seed", 7, 0, std::numeric_limits<long long>::max()));
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = philox::uniform(seed, 0, i);
  PredictOptions po;
  po.tile = a.count("tile", 0, 0, 1 << 15);
  po.batch = a.count("batch", dev == Device::CUDA ? 4 : 1, 1, 1024);
  po.tta = a.flag("tta");
  if (a.flag("one-tile")) {  // the smallest tile whose grid covers the image at once (steps are on the pool lattice)
    for (po.tile = TileSizes::input_for_output(size, cfg.depth);; ++po.tile)
      if (TileSizes::output_for_input(po.tile, cfg.depth) > 0 && tile_grid(cfg, po, size, size).count() == 1) break;
  }
  const TileGrid g = tile_grid(cfg, po, size, size);
  double checksum = 0.0;
  auto run = [&] {  // the map streamed band by band, as unet predict makes it, and summed (not kept)
    const auto t0 = Clock::now();
    predict_bands(net, img, po, [&](int, const Image& band) {
      for (float v : band.data) checksum += v;
    });
    return seconds_since(t0);
  };
  // Warm-up (first launches, allocator free lists) on one tile, then the timed runs.
  {
    Image small(cfg.in_channels, g.out, g.out, 0.5f);
    PredictOptions one = po;
    one.tta = false;
    one.batch = 1;
    predict_bands(net, small, one, [](int, const Image&) {});
  }
  std::vector<double> s;
  for (long long r = 0; r < a.count("repeats", 3, 1, 1000); ++r) s.push_back(run());
  Json j;
  j.str("what", "prediction");
  j.str("config", cfg.str());
  j.num("size", size);
  j.num("tile", g.tile);
  j.num("tile_out", g.out);
  j.num("tiles", static_cast<double>(g.count()));
  j.num("batch", po.batch);
  j.num("tta", po.tta ? 8 : 1);
  j.num("seconds_median", median(s));
  j.nums("seconds", s);
  j.num("checksum", checksum);
  device_fields(j, dev);
  j.write(a.str("json"));
  std::printf("predict %dx%d: tile %d (%lld tiles, batch %d%s): median %.3f s over %zu runs\n", size, size, g.tile,
              static_cast<long long>(g.count()), po.batch, po.tta ? ", 8-fold TTA" : "", median(s), s.size());
  return 0;
}

int cmd_slices(int argc, char** argv) {
  Args a(argc, argv, 2, {"images", "labels", "val-last", "out", "classes"}, {});
  const int classes = a.count("classes", 2, 2, 256);
  ImageInfo info;
  const std::vector<Image> images = read_stack(a.need("images"), &info);
  std::vector<Image> labels = read_label_stack(a.need("labels"), classes);
  UNET_CHECK(images.size() == labels.size(), a.need("images"), " has ", images.size(), " slices but ", a.need("labels"),
             " has ", labels.size());
  UNET_CHECK(!info.is_float && (info.bits == 8 || info.bits == 16), a.need("images"),
             ": 8- or 16-bit integer pages expected");
  const size_t val = static_cast<size_t>(a.count("val-last", 0, 0, 1 << 20));
  UNET_CHECK(val < images.size(), "--val-last ", val, " leaves no training slice of ", images.size());
  const fs::path out = a.need("out");
  for (const char* part : {"train", "val"})
    for (const char* kind : {"image", "label"}) fs::create_directories(out / part / kind);
  for (size_t i = 0; i < images.size(); ++i) {
    const fs::path part = out / (i + val >= images.size() ? "val" : "train");
    char name[32];
    std::snprintf(name, sizeof name, "%02zu.png", i);
    if (info.bits == 8) write_png((part / "image" / name).string(), images[i]);
    else write_png16((part / "image" / name).string(), images[i]);
    if (classes == 2)
      for (float& v : labels[i].data) v *= 255.0f;  // a 0/255 mask, as the ISBI labels are
    write_png((part / "label" / name).string(), labels[i]);
  }
  std::printf("wrote %zu training and %zu validation slices under %s\n", images.size() - val, val,
              out.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "init") return cmd_init(argc, argv);
    if (cmd == "sample") return cmd_sample(argc, argv);
    if (cmd == "step") return cmd_step(argc, argv);
    if (cmd == "predict") return cmd_predict(argc, argv);
    if (cmd == "slices") return cmd_slices(argc, argv);
    std::fprintf(stderr, "usage: bench_unet init|sample|step|predict|slices [options] (see bench/bench_unet.cpp)\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_unet %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
