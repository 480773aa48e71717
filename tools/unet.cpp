// unet: the command line. Its subcommands and their options are listed once, in tools/commands.h
// (restore's in tools/restore_cmd.cpp); `unet <command> --help` prints them.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "engine/atomic_file.h"
#include "engine/backend.h"
#include "engine/precision.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "unet/augment.h"
#include "unet/checkpoint.h"
#include "unet/io.h"
#include "unet/metrics.h"
#include "unet/model_zoo.h"
#include "unet/predict.h"
#include "unet/predictor.h"
#include "unet/train.h"
#include "unet/weightmap.h"

namespace fs = std::filesystem;
using namespace unet;
using unet::cli::Args;
using unet::cli::Command;
using unet::cli::pick_device;

int cmd_restore(int argc, char** argv);  // tools/restore_cmd.cpp
extern const unet::cli::Command kRestore;
int cmd_plot(int argc, char** argv);     // tools/plot_cmd.cpp
int cmd_export(int argc, char** argv);   // tools/export_cmd.cpp
int cmd_info(int argc, char** argv);     // tools/export_cmd.cpp
int cmd_inspect(int argc, char** argv);  // tools/inspect_cmd.cpp

namespace {

// Prints the subcommand's help when asked (unet <command> --help); true when it did.
bool printed_help(const Args& a, const Command& c) {
  if (!a.help_wanted()) return false;
  std::fputs(cli::help_text(c).c_str(), stdout);
  return true;
}

ClassBalance parse_balance(const std::string& s) {
  if (s == "none") return ClassBalance::kNone;
  if (s == "max-one") return ClassBalance::kMaxOne;
  if (s == "inverse") return ClassBalance::kInverseFrequency;
  UNET_FAIL("--balance must be none, max-one or inverse, got \"", s, "\"");
}

// The first SIGINT or SIGTERM asks training to stop cleanly (finish the iteration, write the
// checkpoint); a second one ends the process at once, as the signal would have.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal = sig;
}

// On resume, options the command line leaves out take the values the checkpoint recorded (its
// architecture too), so that `unet train ... --resume CKPT` continues the same run.
void take_recorded_options(Args& a, const std::string& checkpoint) {
  const UNetConfig c = read_checkpoint_config(checkpoint);
  a.set_default("in-channels", std::to_string(c.in_channels));
  a.set_default("classes", std::to_string(c.classes));
  a.set_default("depth", std::to_string(c.depth));
  a.set_default("base", std::to_string(c.base));
  const TrainState s = read_checkpoint_state(checkpoint);
  UNET_CHECK(!a.has("iterations") ||
                 a.integer("iterations", 0, 0, std::numeric_limits<long long>::max()) == s.total_iterations,
             "--iterations ", a.str("iterations"), ": checkpoint ", checkpoint, " belongs to a run of ",
             s.total_iterations, " iterations; to change its length, use --extend-to N");
  for (const auto& [k, v] : s.extra) {
    if (k == "command") continue;  // the command line, which earlier versions kept: not an option
    if (k == "augment") {
      if (v == "0") a.set_flag("no-augment");
    } else {
      a.set_default(k, v);
    }
  }
}

// --cuda-graph on|off (off when left out); on needs a GPU, which train and predict check.
bool cuda_graph_option(const Args& a) {
  const std::string v = a.str("cuda-graph", "off");
  UNET_CHECK(v == "on" || v == "off", "--cuda-graph must be on or off, got \"", v, "\"");
  return v == "on";
}

int cmd_train(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kTrain);
  if (printed_help(a, cli::kTrain)) return 0;
  if (a.has("resume")) take_recorded_options(a, a.str("resume"));
  TrainOptions o;
  constexpr long long kMaxIterations = 1'000'000'000'000LL;
  o.net.in_channels = a.count("in-channels", 1, 1, UNetConfig::kMaxChannels);
  o.net.classes = a.count("classes", 2, 2, UNetConfig::kMaxClasses);
  o.net.depth = a.count("depth", 4, 1, UNetConfig::kMaxDepth);
  o.net.base = a.count("base", 64, 1, UNetConfig::kMaxChannels);
  o.net.dropout = static_cast<float>(a.num("dropout", 0.5, 0.0, 0.99));
  o.device = pick_device(a.str("device", "auto"));
  if (a.has("precision")) o.precision = parse_precision_option(a.str("precision"));
  o.tile = a.count("tile", 572, 1, TileSizes::kMaxTile);
  o.iterations = a.integer("iterations", 1000, 1, kMaxIterations);
  o.lr = static_cast<float>(a.num("lr", 0.002, 0.0, 1e6));
  o.momentum = static_cast<float>(a.num("momentum", 0.99, 0.0, 0.999999));
  o.weight_decay = static_cast<float>(a.num("weight-decay", 0.0, 0.0, 1e6));
  o.lr_step = a.integer("lr-step", 0, 0, kMaxIterations);
  o.lr_gamma = static_cast<float>(a.num("lr-gamma", 0.1, 1e-12, 1e6));
  o.lr_poly = static_cast<float>(a.num("lr-poly", 0.0, 0.0, 100.0));
  o.warmup = a.integer("warmup", 0, 0, kMaxIterations);
  o.optimizer = a.str("optimizer", "sgd");
  o.batch = a.count("batch", 1, 1, 4096);
  o.val_every = a.integer("val-every", 100, 0, kMaxIterations);
  o.checkpoint_every = a.integer("checkpoint-every", 100, 0, kMaxIterations);
  o.seed = static_cast<uint64_t>(a.integer("seed", 1, 0, std::numeric_limits<long long>::max()));
  o.out_dir = a.str("out", "out/train");
  o.resume = a.str("resume");
  o.extend_to = a.integer("extend-to", 0, 0, kMaxIterations);
  o.stop_at = a.integer("stop-at", 0, 0, kMaxIterations);
  o.init = a.str("init");
  o.val_tile = a.count("val-tile", 0, 0, TileSizes::kMaxTile);
  o.quiet = a.flag("quiet");
  o.cuda_graph = cuda_graph_option(a);
  o.augment.elastic_sigma = static_cast<float>(a.num("elastic-sigma", o.augment.elastic_sigma, 0.0, 1e4));
  if (a.flag("no-augment")) o.augment = AugmentParams::none();
  WeightMapParams wm;
  wm.w0 = static_cast<float>(a.num("w0", wm.w0, 0.0, 1e6));
  wm.sigma = static_cast<float>(a.num("sigma", wm.sigma, 1e-3, 1e6));
  wm.num_classes = o.net.classes;
  wm.balance = parse_balance(a.str("balance", "max-one"));
  UNET_CHECK(o.extend_to == 0 || !o.resume.empty(), "--extend-to needs --resume CHECKPOINT");
  o.recorded = {{"w0", option_text(wm.w0)}, {"sigma", option_text(wm.sigma)}, {"balance", a.str("balance", "max-one")}};
  o.allow_changes = a.flag("allow-changes");

  Dataset tr = load_dataset(a.need("images"), a.need("labels"), o.net.in_channels, o.net.classes, wm);
  Dataset val;
  if (a.has("val-images")) {
    val = load_dataset(a.need("val-images"), a.need("val-labels"), o.net.in_channels, o.net.classes, wm);
  } else if (a.has("val-split")) {
    // The last N images become the validation set.
    long long n = a.integer("val-split", 0, 0, std::numeric_limits<int>::max());
    UNET_CHECK(n >= 0 && static_cast<size_t>(n) < tr.size(), "--val-split ", n, " must leave training images (have ",
               tr.size(), ")");
    std::vector<size_t> take;
    for (size_t i = tr.size() - static_cast<size_t>(n); i < tr.size(); ++i) take.push_back(i);
    val = split_dataset(tr, take);
  }
  o.stop_signal = &g_stop_signal;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  TrainReport r = train(tr, val, o);
  if (r.interrupted_by != 0) {
    // The same command with --resume continues it (recorded options are taken from the checkpoint).
    std::string cmd = "unet train";
    for (int i = 2; i < argc; ++i) {
      if (std::string(argv[i]) == "--resume" && i + 1 < argc) {
        ++i;
        continue;
      }
      cmd += std::string(" ") + argv[i];
    }
    std::fprintf(stderr,
                 "[train] interrupted by signal %d after iteration %lld of %lld: checkpoint %s written.\n"
                 "[train] to continue: %s --resume %s\n",
                 r.interrupted_by, static_cast<long long>(r.iterations_done),
                 static_cast<long long>(r.total_iterations), r.checkpoint.c_str(), cmd.c_str(), r.checkpoint.c_str());
    return 128 + r.interrupted_by;  // the shell's status for a process ended by that signal
  }
  if (r.last_val_pixel_error >= 0)
    std::printf("final validation: loss %.4f, pixel error %.4f\n", r.last_val_loss, r.last_val_pixel_error);
  return 0;
}

int cmd_predict(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kPredict);
  if (printed_help(a, cli::kPredict)) return 0;
  const std::string model = resolve_model(a.need("model")), input = a.need("images"), out = a.need("out");
  Device dev = pick_device(a.str("device", "auto"));
  // libunet's inference path (unet/predictor.h): the checkpoint checked and loaded, the options checked.
  PredictorOptions po;
  po.device = dev == Device::CUDA ? DeviceChoice::kCuda : DeviceChoice::kCpu;
  po.tile = a.count("tile", 0, 0, TileSizes::kMaxTile);
  po.batch = a.count("batch", dev == Device::CUDA ? 4 : 1, 1, PredictOptions::kMaxBatch);
  po.tta = a.flag("tta");
  if (a.has("precision")) po.precision = parse_precision_option(a.str("precision"));
  po.cuda_graph = cuda_graph_option(a);
  const Predictor predictor(Model::load(model), po);
  const UNetConfig& cfg = predictor.config();
  // The input stays in its compact form (1 byte per sample for 8-bit files); the map is made and
  // written band by band (unet/predict.h, docs/predict.md), so memory does not grow with the image.
  ImageInfo info;
  std::vector<RawImage> slices = read_stack_raw(input, &info);
  Image lab;
  if (a.has("labels")) lab = read_label(a.str("labels"), cfg.classes);
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  for (size_t s = 0; s < slices.size(); ++s) {
    const RawImage& img = slices[s];
    std::string prefix = slices.size() > 1 ? out + "_" + std::to_string(s) : out;
    std::string slice;  // " slice 0 (1/30)": the index of the file names, then the count
    if (slices.size() > 1)
      slice = " slice " + std::to_string(s) + " (" + std::to_string(s + 1) + "/" + std::to_string(slices.size()) + ")";
    cli::Progress shown;
    const Progress progress = [&](int64_t d, int64_t t) {
      char line[160];
      std::snprintf(line, sizeof line, "[predict]%s %lld/%lld tiles  %.1f s", slice.c_str(), static_cast<long long>(d),
                    static_cast<long long>(t), shown.elapsed());
      shown.show(line, d == t);
      return true;
    };
    const TileGrid g = predictor.grid(img.height, img.width);
    std::fprintf(stderr, "[predict] %s%s: %dx%d, tile %d, %d bands of %d rows, %s%s\n", input.c_str(), slice.c_str(),
                 img.width, img.height, g.tile, g.rows, g.step, device_name(dev), po.tta ? ", 8-fold TTA" : "");
    PredictFiles files;
    files.prefix = prefix;
    files.npy = a.flag("npy");
    files.labels = a.has("labels") ? &lab : nullptr;
    PredictEvaluation r = predict_to_files(predictor, img, files, progress);
    slices[s] = RawImage();  // done with this slice
    std::printf("wrote %s_probs.tif, %s_mask.png, %s_overlay.png%s\n", prefix.c_str(), prefix.c_str(), prefix.c_str(),
                files.npy ? (", " + prefix + "_probs.npy").c_str() : "");
    // The baseline the network must beat: the best single global threshold of the raw image.
    if (r.done)
      std::printf("pixel error %.4f (cross-entropy %.4f); best global threshold of the raw image: pixel error %.4f\n",
                  r.pixel_error, r.loss, r.threshold_error);
  }
  return 0;
}

// Slices of a folder (sorted), a TIFF stack, or a single image.
std::vector<std::pair<std::string, Image>> read_slices(const std::string& path, bool labels, int classes) {
  std::vector<std::pair<std::string, Image>> out;
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    UNET_CHECK(!files.empty(), "folder ", path, " holds no files");
  } else {
    files.push_back(path);
  }
  for (const std::string& f : files) {
    if (labels) {
      std::vector<Image> st = read_label_stack(f, classes);
      for (size_t i = 0; i < st.size(); ++i)
        out.emplace_back(st.size() > 1 ? f + "[" + std::to_string(i) + "]" : f, st[i]);
    } else {
      ImageInfo info;
      std::vector<Image> st = read_stack(f, &info);
      for (size_t i = 0; i < st.size(); ++i)
        out.emplace_back(st.size() > 1 ? f + "[" + std::to_string(i) + "]" : f, normalise_intensity(st[i], info));
    }
  }
  return out;
}

// unet eval: the ISBI 2012 metrics of a model's predictions (or of probability maps given as
// files) against labels; a table per slice and the mean over slices.
int cmd_eval(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kEval);
  if (printed_help(a, cli::kEval)) return 0;
  UNET_CHECK(a.has("model") != a.has("probs"),
             "give either --model CKPT --images ... or --probs ... (probability maps)");
  const std::string format = a.str("format", "table");
  UNET_CHECK(format == "table" || format == "csv" || format == "json", "--format must be table, csv or json");
  auto labels = read_slices(a.need("labels"), true, 2);
  std::vector<Image> probs;
  if (a.has("model")) {
    Device dev = pick_device(a.str("device", "auto"));
    PredictorOptions po;  // libunet's inference path, as unet predict
    po.device = dev == Device::CUDA ? DeviceChoice::kCuda : DeviceChoice::kCpu;
    po.tile = a.count("tile", 0, 0, TileSizes::kMaxTile);
    po.batch = a.count("batch", dev == Device::CUDA ? 4 : 1, 1, PredictOptions::kMaxBatch);
    po.tta = a.flag("tta");
    const std::shared_ptr<const Model> model = Model::load(resolve_model(a.need("model")));
    const UNetConfig& cfg = model->config();
    UNET_CHECK(cfg.classes == 2, "unet eval scores 2-class (membrane/cell) models; this one has ", cfg.classes,
               " classes");
    const Predictor predictor(model, po);
    auto images = read_slices(a.need("images"), false, 2);
    UNET_CHECK(images.size() == labels.size(), a.need("images"), " has ", images.size(), " slices but ",
               a.need("labels"), " has ", labels.size());
    for (size_t i = 0; i < images.size(); ++i) {
      std::fprintf(stderr, "[eval] slice %zu/%zu: %s\n", i + 1, images.size(), images[i].first.c_str());
      cli::Progress shown;
      Image p(cfg.classes, images[i].second.height, images[i].second.width);
      predictor.probabilities(ImageView::of(images[i].second), p.data.data(), [&](int64_t d, int64_t t) {
        char line[96];
        std::snprintf(line, sizeof line, "[predict] %lld/%lld tiles  %.1f s", static_cast<long long>(d),
                      static_cast<long long>(t), shown.elapsed());
        shown.show(line, d == t);
        return true;
      });
      Image cell(1, p.height, p.width);
      std::copy(p.plane(1), p.plane(1) + p.pixels(), cell.data.begin());
      probs.push_back(cell);
    }
  } else {
    // One probability map per file (a folder holds one per slice): a file written by unet predict
    // (*_probs.tif, page k = P(class k): page 1 is P(cell)) or a single-channel map of P(cell) in
    // [0, 1] (8-bit images are scaled from 0..255).
    std::vector<std::string> files;
    if (fs::is_directory(a.need("probs"))) {
      for (const auto& e : fs::directory_iterator(a.need("probs")))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(a.need("probs"));
    }
    for (const std::string& f : files) {
      ImageInfo info;
      std::vector<Image> pages = read_stack(f, &info);
      Image img = normalise_intensity(pages.size() > 1 ? stack_channels(pages) : pages[0], info);
      UNET_CHECK(img.channels <= 2, "probability map ", f, " has ", img.channels,
                 " channels/pages: expected P(cell) or [P(membrane), P(cell)]");
      Image cell(1, img.height, img.width);
      std::copy(img.plane(img.channels - 1), img.plane(img.channels - 1) + img.pixels(), cell.data.begin());
      probs.push_back(cell);
    }
    UNET_CHECK(probs.size() == labels.size(), a.need("probs"), " has ", probs.size(), " maps but ", a.need("labels"),
               " has ", labels.size(), " labels");
  }
  std::string report;
  double pe = 0, re = 0, ret = 0, we = 0, iou = 0, vrand = 0, vinfo = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    UNET_CHECK(probs[i].height == labels[i].second.height && probs[i].width == labels[i].second.width, "prediction ", i,
               " is ", probs[i].width, "x", probs[i].height, " but label ", labels[i].first, " is ",
               labels[i].second.width, "x", labels[i].second.height);
    IsbiScores s = evaluate_isbi(probs[i], labels[i].second);
    pe += s.pixel_error.value;
    re += s.rand_error.value;
    ret += s.rand_error_thinned.value;
    we += s.warping_error.value;
    iou += s.mean_iou_at_05;
    vrand += s.v_rand();
    vinfo += s.v_info();
    if (format == "table") report += "== " + labels[i].first + "\n" + format_table(s) + "\n";
    else if (format == "csv")
      report += (i ? "" : "slice,") + std::string() + [&] {
        std::string c = to_csv(s), out;
        size_t start = c.find('\n') + 1;  // header once, then rows prefixed with the slice
        if (i == 0) out += c.substr(0, start);
        for (size_t p = start; p < c.size();) {
          size_t e = c.find('\n', p);
          out += std::to_string(i) + "," + c.substr(p, e - p + 1);
          p = e + 1;
        }
        return out;
      }();
    else report += (i ? ",\n" : "[\n") + to_json(s);
  }
  if (format == "json") report += "\n]\n";
  const double n = static_cast<double>(probs.size());
  char mean[512];
  std::snprintf(mean, sizeof mean,
                "mean over %zu slice(s), each at its best threshold: pixel error %.4f, Rand error %.4f "
                "(thinned %.4f), warping error %.6f, mean IoU at 0.5 %.4f; V_rand %.4f, V_info %.4f\n",
                probs.size(), pe / n, re / n, ret / n, we / n, iou / n, vrand / n, vinfo / n);
  if (format == "table") report += mean;
  if (a.has("out")) {
    atomic_write_bytes(a.str("out"), report.data(), report.size());
    std::printf("wrote %s\n", a.str("out").c_str());
  } else {
    std::fputs(report.c_str(), stdout);
  }
  if (format != "table") std::fputs(mean, stderr);
  return 0;
}

int cmd_weightmap(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kWeightmap);
  if (printed_help(a, cli::kWeightmap)) return 0;
  WeightMapParams wm;
  wm.w0 = static_cast<float>(a.num("w0", wm.w0, 0.0, 1e6));
  wm.sigma = static_cast<float>(a.num("sigma", wm.sigma, 1e-3, 1e6));
  wm.num_classes = a.count("classes", 2, 2, UNetConfig::kMaxClasses);
  Image lab = read_label(a.need("labels"), wm.num_classes);
  Image w = weight_map(lab, wm);
  float mx = 0.0f;
  for (float v : w.data) mx = std::max(mx, v);
  Image vis = w;
  for (float& v : vis.data) v = 255.0f * v / mx;
  write_png(a.need("out"), vis);
  std::string tif = fs::path(a.need("out")).replace_extension(".tif").string();
  write_tiff_float(tif, w);
  std::printf("wrote %s (scaled to the maximum weight %.3f) and %s (the weights as float)\n", a.need("out").c_str(), mx,
              tif.c_str());
  return 0;
}

int cmd_augment(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kAugment);
  if (printed_help(a, cli::kAugment)) return 0;
  Sample s{read_image_normalised(a.need("images")), read_label(a.need("labels"), 2), Image()};
  s.weights = weight_map(s.labels, WeightMapParams{});
  AugmentParams p;
  p.elastic_sigma = static_cast<float>(a.num("elastic-sigma", p.elastic_sigma, 0.0, 1e4));
  Rng rng(static_cast<uint64_t>(a.integer("seed", 1, 0, std::numeric_limits<long long>::max())));
  const std::string dir = a.need("out");
  fs::create_directories(dir);
  int n = a.count("count", 4, 1, 1'000'000);
  write_augmented_samples(s, n, rng, p, [&](const std::string& name, const Image& img) {
    write_png((fs::path(dir) / (name + ".png")).string(), img);
  });
  std::printf("wrote %d augmented samples to %s\n", n, dir.c_str());
  return 0;
}

int cmd_device(int argc, char** argv) {
  Args a(argc, argv, 2, cli::kDeviceCommand);
  if (printed_help(a, cli::kDeviceCommand)) return 0;
  if (!cuda_available()) {
    std::printf("no CUDA device available: running on the CPU\n");
    return 0;
  }
  DeviceInfo d = cuda_device_info();
  std::printf("%s: %d SMs, compute capability %d.%d, %.1f GiB\n", d.name.c_str(), d.sm_count, d.cc_major, d.cc_minor,
              d.total_memory / 1073741824.0);
  return 0;
}

// Every subcommand, with its handler.
struct Entry {
  const Command* command;
  int (*run)(int argc, char** argv);
};
const Entry kCommands[] = {
    {&cli::kTrain, cmd_train},         {&cli::kPredict, cmd_predict},     {&cli::kEval, cmd_eval},
    {&cli::kWeightmap, cmd_weightmap}, {&cli::kAugment, cmd_augment},     {&kRestore, cmd_restore},
    {&cli::kPlot, cmd_plot},           {&cli::kExport, cmd_export},       {&cli::kInfo, cmd_info},
    {&cli::kInspect, cmd_inspect},     {&cli::kDeviceCommand, cmd_device}};

void usage(std::FILE* to) {
  std::fprintf(to, "usage: unet <command> [options]      (unet <command> --help lists its options)\n\ncommands:\n");
  for (const Entry& e : kCommands) {
    const std::string& s = e.command->summary;
    std::fprintf(to, "  %-10s %s\n", e.command->name.c_str(), s.substr(0, s.find('\n')).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      if (argc > 2)  // unet help <command>
        for (const Entry& e : kCommands)
          if (e.command->name == argv[2]) {
            std::fputs(cli::help_text(*e.command).c_str(), stdout);
            return 0;
          }
      usage(stdout);
      return 0;
    }
    for (const Entry& e : kCommands)
      if (e.command->name == cmd) return e.run(argc, argv);
    std::fprintf(stderr, "unet: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "\nunet %s: error: out of memory (a smaller --tile or --batch needs less)\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nunet %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
