#include "unet/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unistd.h>

#include "engine/atomic_file.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/precision.h"
#include "kernels/precision.h"
#include "unet/checkpoint.h"
#include "unet/io.h"
#include "unet/plot.h"
#include "unet/predict.h"
#include "unet/schedule.h"

namespace fs = std::filesystem;

namespace unet {

namespace {

std::vector<std::string> list_files(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  UNET_CHECK(!v.empty(), "folder ", dir, " holds no files");
  return v;
}

std::string fmt_duration(double s) {
  char b[32];
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else std::snprintf(b, sizeof b, "%ldm%02lds", t / 60, t % 60);
  return b;
}

// Reads "iteration,loss[,x]" rows of an earlier run's CSV up to `upto` (for resumed curves); the
// third column goes to *third when given.
std::vector<std::pair<int64_t, float>> read_curve(const std::string& path, int64_t upto,
                                                  std::vector<float>* third = nullptr) {
  std::vector<std::pair<int64_t, float>> v;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    long long it;
    float loss, x = 0.0f;
    const int got = std::sscanf(line.c_str(), "%lld,%f,%f", &it, &loss, &x);
    if (got >= 2 && it <= upto && (!third || got == 3)) {
      v.emplace_back(it, loss);
      if (third) third->push_back(x);
    }
  }
  return v;
}

// The progress line is redrawn in place on a terminal; anything printed while it is showing
// starts on a new line.
bool g_progress_open = false;
const char* progress_eol() {
  const bool open = g_progress_open;
  g_progress_open = false;
  return open ? "\n" : "";
}

void write_curve(const std::string& path, const std::string& header, const std::vector<std::pair<int64_t, float>>& v,
                 const std::vector<float>* extra = nullptr) {
  std::ostringstream os;
  os << header << "\n";
  for (size_t i = 0; i < v.size(); ++i) {
    os << v[i].first << "," << v[i].second;
    if (extra) os << "," << (*extra)[i];
    os << "\n";
  }
  std::string s = os.str();
  atomic_write_bytes(path, s.data(), s.size());
}

LrSchedule schedule_of(const TrainOptions& o, int64_t total) {
  LrSchedule s;
  s.lr = o.lr;
  s.step = o.lr_step;
  s.gamma = o.lr_gamma;
  s.poly_power = o.lr_poly;
  s.total = total;
  s.warmup = o.warmup;
  return s;
}

}  // namespace

std::string option_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", static_cast<double>(static_cast<float>(v)));
  return b;
}

std::map<std::string, std::string> recorded_options(const TrainOptions& o) {
  std::map<std::string, std::string> m = o.recorded;
  m["tile"] = std::to_string(o.tile);
  m["lr"] = option_text(o.lr);
  m["momentum"] = option_text(o.momentum);
  m["weight-decay"] = option_text(o.weight_decay);
  m["lr-step"] = std::to_string(o.lr_step);
  m["lr-gamma"] = option_text(o.lr_gamma);
  m["lr-poly"] = option_text(o.lr_poly);
  m["warmup"] = std::to_string(o.warmup);
  m["optimizer"] = o.optimizer;
  m["batch"] = std::to_string(o.batch);
  m["seed"] = std::to_string(o.seed);
  m["dropout"] = option_text(o.net.dropout);
  const AugmentParams& a = o.augment;
  const bool augments = a.elastic_sigma != 0 || a.max_rotation_deg != 0 || a.flip_x || a.flip_y || a.max_gamma != 1 ||
                        a.max_contrast != 0 || a.max_brightness != 0 || a.noise_sigma != 0;
  m["augment"] = augments ? "1" : "0";
  m["elastic-sigma"] = option_text(o.augment.elastic_sigma);
  // The precision when the run asked for one (unset: the device's default, which may differ on resume).
  if (o.precision) m["precision"] = kernels::precision_name(*o.precision);
  return m;
}

namespace {

// The first parameter or momentum buffer holding a NaN or inf ("" when all are finite): checked
// before any checkpoint is written, so that "last good checkpoint" is always good.
std::string first_nonfinite(const UNet& net, Optimizer& opt) {
  for (const Var& p : net.parameters())
    if (!p.value().all_finite()) return "parameter \"" + p.name() + "\"";
  for (const Optimizer::Buffers& b : opt.state())
    for (size_t i = 0; i < b.tensors->size(); ++i)
      if (!(*b.tensors)[i].all_finite()) return b.name + " buffer of \"" + opt.params()[i].name() + "\"";
  return "";
}

// Recorded options that differ between a checkpoint and this invocation, as "--k new (checkpoint: old)".
std::vector<std::string> changed_options(const std::map<std::string, std::string>& now,
                                         const std::map<std::string, std::string>& then) {
  std::vector<std::string> v;
  for (const auto& [k, old] : then) {
    auto it = now.find(k);
    if (it != now.end() && it->second != old) v.push_back("--" + k + " " + it->second + " (checkpoint: " + old + ")");
  }
  return v;
}

}  // namespace

Dataset load_dataset(const std::string& images, const std::string& labels, int in_channels, int classes,
                     const WeightMapParams& wm) {
  Dataset d;
  std::vector<std::string> label_names;
  if (fs::is_directory(images)) {
    UNET_CHECK(fs::is_directory(labels), "images are the folder ", images, " but labels ", labels, " is not a folder");
    std::vector<std::string> fi = list_files(images), fl = list_files(labels);
    UNET_CHECK(fi.size() == fl.size(), "folder ", images, " holds ", fi.size(), " images but ", labels, " holds ",
               fl.size(), " labels");
    for (size_t i = 0; i < fi.size(); ++i) {
      d.names.push_back(fi[i]);
      d.images.push_back(read_image_normalised(fi[i]));
      d.labels.push_back(read_label(fl[i], classes));
      label_names.push_back(fl[i]);
    }
  } else {
    ImageInfo info;
    std::vector<Image> raw = read_stack(images, &info);
    d.labels = read_label_stack(labels, classes);
    UNET_CHECK(raw.size() == d.labels.size(), "stack ", images, " has ", raw.size(), " slices but ", labels, " has ",
               d.labels.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      d.images.push_back(normalise_intensity(raw[i], info));
      d.names.push_back(images + "[" + std::to_string(i) + "]");
      label_names.push_back(labels + "[" + std::to_string(i) + "]");
    }
  }
  for (size_t i = 0; i < d.size(); ++i) {
    const Image &im = d.images[i], &lb = d.labels[i];
    UNET_CHECK(im.channels == in_channels, "image ", d.names[i], " has ", im.channels, " channel(s); the model takes ",
               in_channels, " (--in-channels)");
    UNET_CHECK(im.height == lb.height && im.width == lb.width, "image ", d.names[i], " is ", im.width, "x", im.height,
               " but its label ", label_names[i], " is ", lb.width, "x", lb.height);
    d.weights.push_back(weight_map(lb, wm));
  }
  return d;
}

Dataset split_dataset(Dataset& all, const std::vector<size_t>& take) {
  Dataset out, rest;
  for (size_t i = 0; i < all.size(); ++i) {
    Dataset& dst = std::find(take.begin(), take.end(), i) != take.end() ? out : rest;
    dst.names.push_back(all.names[i]);
    dst.images.push_back(std::move(all.images[i]));
    dst.labels.push_back(std::move(all.labels[i]));
    dst.weights.push_back(std::move(all.weights[i]));
  }
  all = std::move(rest);
  return out;
}

EvalResult evaluate_probabilities(const std::vector<Image>& probs, const std::vector<Image>& labels) {
  double loss = 0.0, wrong = 0.0, n = 0.0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const Image &p = probs[i], &l = labels[i];
    UNET_CHECK(p.height == l.height && p.width == l.width, "evaluate: prediction and label sizes differ");
    for (int y = 0; y < p.height; ++y)
      for (int x = 0; x < p.width; ++x) {
        int lab = static_cast<int>(l.at(0, y, x)), best = 0;
        for (int k = 1; k < p.channels; ++k)
          if (p.at(k, y, x) > p.at(best, y, x)) best = k;
        loss -= std::log(std::max(p.at(lab, y, x), 1e-12f));
        wrong += best != lab;
        n += 1.0;
      }
  }
  return {loss / n, wrong / n};
}

TrainReport train(const Dataset& train_set, const Dataset& val_set, const TrainOptions& o) {
  UNET_CHECK(train_set.size() > 0, "train: no training images");
  TileSizes::check_input(o.tile, o.net.depth, "training tile (--tile)");
  const int T = o.tile, O = TileSizes::output_for_input(T, o.net.depth);
  UNET_CHECK(o.batch >= 1, "--batch must be >= 1, got ", o.batch);
  check_tile_fits(o.net, o.device, o.batch, T, /*training=*/true,
                  "training tile --tile " + std::to_string(T) + " with --batch " + std::to_string(o.batch));
  fs::create_directories(o.out_dir);
  const fs::path dir(o.out_dir);
  const std::string ckpt = (dir / "checkpoint.safetensors").string(), best_ckpt = (dir / "best.safetensors").string();
  const std::string loss_csv = (dir / "loss.csv").string(), val_csv = (dir / "val.csv").string(),
                    loss_png = (dir / "loss.png").string();
  // A run killed while writing leaves "<file>.tmp.<pid>.<n>" behind (up to a checkpoint's size each).
  int stale = 0;
  for (const std::string& f : {ckpt, best_ckpt, loss_csv, val_csv, loss_png}) stale += remove_stale_temporaries(f);
  if (stale > 0 && !o.quiet)
    std::fprintf(stderr, "[train] removed %d temporary file(s) an interrupted run left in %s\n", stale,
                 o.out_dir.c_str());

  const kernels::Precision precision = choose_precision(o.device, o.precision);
  const ops::ConvPrecision conv_precision(precision);  // training and validation
  Rng rng(o.seed);
  UNet net(o.net, o.device, rng);
  std::vector<Var> params = net.parameters();
  std::unique_ptr<Optimizer> opt = make_optimizer(o.optimizer, params, o.lr, o.momentum, o.weight_decay);
  int64_t start = 0, total = o.iterations;
  std::vector<std::pair<int64_t, float>> curve, val_curve;
  std::vector<float> val_pe;
  const std::map<std::string, std::string> recorded = recorded_options(o);
  double best_val = 2.0;  // pixel error of best.safetensors
  if (!o.resume.empty()) {
    TrainState s = load_checkpoint(o.resume, net, opt.get());
    const std::vector<std::string> changed = changed_options(recorded, s.extra);
    if (!changed.empty()) {
      std::string list;
      for (const std::string& c : changed) list += (list.empty() ? "" : ", ") + c;
      UNET_CHECK(o.allow_changes, "resuming ", o.resume, " with options that differ from the run that wrote it: ", list,
                 ". Leave them out to continue with the checkpoint's values, or add --allow-changes to resume with "
                 "the new ones");
      if (!o.quiet) std::fprintf(stderr, "[train] resuming with changed options (--allow-changes): %s\n", list.c_str());
    }
    start = s.iteration;
    total = o.extend_to > 0 ? o.extend_to : s.total_iterations;
    UNET_CHECK(o.extend_to == 0 || o.extend_to > s.iteration, "--extend-to ", o.extend_to,
               " is not beyond the checkpoint's iteration ", s.iteration);
    UNET_CHECK(start < total, "checkpoint ", o.resume, " is a finished run (", start, " of ", s.total_iterations,
               " iterations); to train further, pass --extend-to N with N > ", start);
    rng.set_state(s.rng_seed, s.rng_offset);
    // The curves continue where the checkpoint stands: rows a later, lost checkpoint had written go.
    curve = read_curve(loss_csv, start);
    val_curve = read_curve(val_csv, start, &val_pe);
    if (fs::exists(best_ckpt))
      for (float pe : val_pe) best_val = std::min(best_val, static_cast<double>(pe));
  } else if (!o.init.empty()) {
    load_checkpoint(o.init, net, nullptr);
  }
  const LrSchedule sched = schedule_of(o, total);
  check_schedule(sched);
  if (!o.quiet) {
    std::fprintf(stderr,
                 "[train] U-Net %s: %d convolutions, %lld parameters, on %s, %s\n"
                 "[train] tile %d -> %d, batch %d, %zu training / %zu validation images, iterations %lld..%lld\n"
                 "[train] %s, lr schedule %s, seed %llu, output %s\n",
                 o.net.str().c_str(), net.conv_count(), static_cast<long long>(net.parameter_count()),
                 device_name(o.device), kernels::precision_name(precision), T, O, o.batch, train_set.size(),
                 val_set.size(), static_cast<long long>(start + 1), static_cast<long long>(total),
                 opt->describe().c_str(), describe(sched).c_str(), static_cast<unsigned long long>(o.seed),
                 o.out_dir.c_str());
  }

  TrainReport rep;
  rep.total_iterations = total;
  int64_t last_good = start;
  std::string last_good_path = o.resume;
  rep.checkpoint = o.resume;
  auto diverged = [&](int64_t it, const std::string& what) {
    Tape::current().clear();
    if (last_good_path.empty())
      UNET_FAIL("training diverged at iteration ", it, ": ", what,
                ". No checkpoint was written yet; start again with a lower learning rate (--lr)");
    UNET_FAIL("training diverged at iteration ", it, ": ", what, ". The last good checkpoint is ", last_good_path,
              " (iteration ", last_good, "); resume from it with a lower learning rate (--lr)");
  };
  // Every checkpoint is checked first: a file called good holds no NaN or inf.
  auto require_finite = [&](int64_t it) {
    const std::string bad = first_nonfinite(net, *opt);
    if (!bad.empty()) diverged(it, "the " + bad + " holds NaN or inf although the loss was finite");
  };
  auto state_at = [&](int64_t it) {
    TrainState s;
    s.iteration = it;
    s.total_iterations = total;
    s.rng_seed = rng.seed();
    s.rng_offset = rng.offset();
    s.lr = lr_at(sched, it);
    s.extra = recorded;
    return s;
  };
  auto save = [&](int64_t it) {
    require_finite(it);
    // The curves first: a kill between the two writes leaves rows past the checkpoint, which a
    // resume drops, never a hole.
    write_curve(loss_csv, "iteration,loss", curve);
    write_loss_plot(loss_png, curve, val_curve);
    save_checkpoint(ckpt, net, opt.get(), state_at(it));
    last_good = it;
    last_good_path = rep.checkpoint = ckpt;
  };
  auto validate = [&](int64_t it) {
    if (val_set.size() == 0) return;
    std::vector<Image> probs;
    PredictOptions po;
    po.tile = o.val_tile;
    po.precision = precision;
    for (const Image& im : val_set.images) probs.push_back(predict_probabilities(net, im, po));
    EvalResult r = evaluate_probabilities(probs, val_set.labels);
    val_curve.emplace_back(it, static_cast<float>(r.loss));
    val_pe.push_back(static_cast<float>(r.pixel_error));
    rep.last_val_loss = static_cast<float>(r.loss);
    rep.last_val_pixel_error = static_cast<float>(r.pixel_error);
    if (r.pixel_error < best_val) {  // batch-1 SGD is noisy: keep the best validated weights too
      require_finite(it);
      best_val = r.pixel_error;
      rep.best_val_pixel_error = static_cast<float>(r.pixel_error);
      rep.best_iteration = it;
      save_checkpoint(best_ckpt, net, nullptr, state_at(it));
    }
    write_curve(val_csv, "iteration,loss,pixel_error", val_curve, &val_pe);
    if (!o.quiet)
      std::fprintf(stderr, "%s[val] iteration %lld: loss %.4f, pixel error %.4f\n", progress_eol(),
                   static_cast<long long>(it), r.loss, r.pixel_error);
  };

  const bool tty = isatty(fileno(stderr)) != 0;
  const int64_t line_every = std::max<int64_t>(1, (total - start) / 100);  // whole lines: about 100 a run
  auto t0 = std::chrono::steady_clock::now();
  double last_line = 0.0, last_redraw = -1.0;
  int64_t last_it = start;
  // Each step's loss stays on the device until something needs it: a progress line, validation, a checkpoint
  // (whose weights must not come from a diverged run), the end, or kMaxPending steps. Reading a loss back waits
  // for the device, so a step that prints nothing does not wait for its own kernels, and the host prepares the
  // next tile while the device still computes. A non-finite loss is reported at its own iteration.
  constexpr size_t kMaxPending = 256;
  std::vector<std::pair<int64_t, Tensor>> pending;
  auto flush_losses = [&] {
    std::vector<std::pair<int64_t, Tensor>> read;
    read.swap(pending);
    for (const auto& [i, t] : read) {
      const float lv = t.to_vector()[0];
      if (!std::isfinite(lv)) diverged(i, "the loss is " + std::to_string(lv));
      curve.emplace_back(i, lv);
      rep.losses.push_back(lv);
    }
  };
  // One training step on the tensors x, l, w; its loss is left in step_loss.
  Tensor x, l, w, step_loss;
  auto step = [&] {
    opt->zero_grad();
    Var loss = ops::softmax_xent(net.forward(Var(x), true, &rng), l, w);
    backward(loss);
    opt->step();
    step_loss = loss.value();
  };
  UNET_CHECK(!o.cuda_graph || o.device == Device::CUDA, "--cuda-graph on needs --device cuda");
  std::unique_ptr<StepGraph> graph = o.cuda_graph ? std::make_unique<StepGraph>() : nullptr;
  auto run_steps = [&] {
    for (int64_t it = start + 1; it <= total; ++it) {
      opt->set_lr(lr_at(sched, it - 1));
      // A batch of `batch` tiles, each from a random image with its own augmentation, stacked along N
      // (the loss is the mean over all their pixels).
      std::vector<float> xs, ws;
      std::vector<int32_t> lab;
      for (int b = 0; b < o.batch; ++b) {
        size_t i = rng.below(static_cast<uint32_t>(train_set.size()));
        Sample src{train_set.images[i], train_set.labels[i], train_set.weights[i]};
        Sample s = augment_tile(src, T, T, O, O, rng, o.augment);
        xs.insert(xs.end(), s.image.data.begin(), s.image.data.end());
        ws.insert(ws.end(), s.weights.data.begin(), s.weights.data.end());
        for (float v : s.labels.data) lab.push_back(static_cast<int32_t>(v));
      }
      const int64_t B = o.batch;
      const Tensor xh = Tensor::from_vector({B, o.net.in_channels, T, T}, xs);
      const Tensor lh = Tensor::from_vector_i32({B, O, O}, lab), wh = Tensor::from_vector({B, O, O}, ws);
      if (!graph) {
        x = xh.to(o.device), l = lh.to(o.device), w = wh.to(o.device);
      } else {  // a graph reads its inputs where it was captured: refill them in place
        if (!x.defined()) x = Tensor::empty(xh.shape(), DType::F32, o.device);
        if (!l.defined()) l = Tensor::empty(lh.shape(), DType::I32, o.device);
        if (!w.defined()) w = Tensor::empty(wh.shape(), DType::F32, o.device);
        x.copy_from(xh), l.copy_from(lh), w.copy_from(wh);
      }
      // The first step runs eagerly, also with a graph: the kernels' one-time set-up stays out of the capture.
      if (graph && it > start + 1) {
        const bool first = !graph->captured();
        graph->run(step, &rng, opt.get());
        pending.emplace_back(it, step_loss.clone());  // the next replay rewrites step_loss
        if (first && !o.quiet)
          std::fprintf(stderr, "%s[train] CUDA graph: iteration %lld captured (%zu nodes), replayed from now on\n",
                       progress_eol(), static_cast<long long>(it), graph->nodes());
      } else {
        step();
        pending.emplace_back(it, step_loss);
      }
      rep.iterations_done = it;
      if (pending.size() >= kMaxPending) flush_losses();

      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double ips = static_cast<double>(it - start) / el;
      // A terminal gets one line redrawn in place, at most 4 times a second; a log (file, pipe) whole lines,
      // about 100 a run and at least one a minute, with the mean loss since the previous line (one tile's loss
      // says little under batch-1 noise).
      if (!o.quiet && tty && (it == total || el - last_redraw >= 0.25)) {
        flush_losses();
        last_redraw = el;
        std::fprintf(stderr, "\r[train] iteration %lld/%lld  loss %.4f  lr %.3g  %.2f it/s  ETA %s   ",
                     static_cast<long long>(it), static_cast<long long>(total), rep.losses.back(), opt->lr(), ips,
                     fmt_duration(static_cast<double>(total - it) / ips).c_str());
        g_progress_open = true;
      } else if (!o.quiet && !tty && (it == total || (it - start) % line_every == 0 || el - last_line >= 60.0)) {
        flush_losses();
        const float lv = rep.losses.back();
        double mean = 0.0;
        const size_t k = std::min<size_t>(rep.losses.size(), static_cast<size_t>(it - last_it));
        for (size_t j = rep.losses.size() - k; j < rep.losses.size(); ++j) mean += rep.losses[j];
        std::fprintf(stderr,
                     "[train] iteration %lld/%lld  loss %.4f  mean loss %.4f (last %zu)  lr %.3g  %.2f it/s  ETA %s\n",
                     static_cast<long long>(it), static_cast<long long>(total), lv, k ? mean / k : 0.0, k, opt->lr(),
                     ips, fmt_duration(static_cast<double>(total - it) / ips).c_str());
        last_line = el;
        last_it = it;
      }
      if ((o.val_every > 0 && it % o.val_every == 0) || it == total) {
        flush_losses();
        validate(it);
      }
      const int sig = o.stop_signal ? static_cast<int>(*o.stop_signal) : 0;
      const bool stop = (o.stop_at > 0 && it >= o.stop_at) || sig != 0;
      if ((o.checkpoint_every > 0 && it % o.checkpoint_every == 0) || it == total || stop) {
        flush_losses();
        save(it);
      }
      if (sig != 0) {
        rep.interrupted_by = sig;
        if (!o.quiet) std::fputs(progress_eol(), stderr);
        break;
      }
      if (stop) break;
    }
  };
  try {
    run_steps();
  } catch (...) {
    flush_losses();  // a loss that diverged before the failure is the better diagnosis (and is thrown instead)
    throw;
  }
  if (!o.quiet && rep.interrupted_by == 0) {
    std::fprintf(stderr, "%s[train] done: checkpoint %s\n", progress_eol(), ckpt.c_str());
    if (rep.best_iteration > 0)
      std::fprintf(stderr, "[train] best validation pixel error %.4f at iteration %lld: %s\n", rep.best_val_pixel_error,
                   static_cast<long long>(rep.best_iteration), best_ckpt.c_str());
  }
  return rep;
}

}  // namespace unet
