#include "unet/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "unet/checkpoint.h"
#include "unet/io.h"
#include "unet/predict.h"

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

// Reads "iteration,loss,..." rows of an earlier run's CSV up to `upto` (for resumed curves).
std::vector<std::pair<int64_t, float>> read_curve(const std::string& path, int64_t upto) {
  std::vector<std::pair<int64_t, float>> v;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    long long it;
    float loss;
    if (std::sscanf(line.c_str(), "%lld,%f", &it, &loss) == 2 && it <= upto) v.emplace_back(it, loss);
  }
  return v;
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

float scheduled_lr(const TrainOptions& o, int64_t it) {
  if (o.lr_step <= 0) return o.lr;
  return o.lr * std::pow(o.lr_gamma, static_cast<float>(it / o.lr_step));
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
  fs::create_directories(o.out_dir);
  const std::string ckpt = (fs::path(o.out_dir) / "checkpoint.safetensors").string();
  const std::string best_ckpt = (fs::path(o.out_dir) / "best.safetensors").string();

  Rng rng(o.seed);
  UNet net(o.net, o.device, rng);
  std::vector<Var> params = net.parameters();
  SGD opt(params, o.lr, o.momentum, o.weight_decay);
  int64_t start = 0, total = o.iterations;
  std::vector<std::pair<int64_t, float>> curve, val_curve;
  std::vector<float> val_pe;
  if (!o.resume.empty()) {
    TrainState s = load_checkpoint(o.resume, net, &opt);
    start = s.iteration;
    total = o.extend_to > 0 ? o.extend_to : s.total_iterations;
    UNET_CHECK(o.extend_to == 0 || o.extend_to > s.iteration, "--extend-to ", o.extend_to,
               " is not beyond the checkpoint's iteration ", s.iteration);
    UNET_CHECK(start < total, "checkpoint ", o.resume, " is a finished run (", start, " of ", s.total_iterations,
               " iterations); to train further, pass --extend-to N with N > ", start);
    rng.set_state(s.rng_seed, s.rng_offset);
    curve = read_curve((fs::path(o.out_dir) / "loss.csv").string(), start);
  } else if (!o.init.empty()) {
    load_checkpoint(o.init, net, nullptr);
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "[train] U-Net %s: %d convolutions, %lld parameters, on %s\n"
                 "[train] tile %d -> %d, %zu training / %zu validation images, iterations %lld..%lld\n"
                 "[train] SGD lr %g momentum %g weight decay %g%s, seed %llu, output %s\n",
                 o.net.str().c_str(), net.conv_count(), static_cast<long long>(net.parameter_count()),
                 device_name(o.device), T, O, train_set.size(), val_set.size(), static_cast<long long>(start + 1),
                 static_cast<long long>(total), o.lr, o.momentum, o.weight_decay,
                 o.lr_step > 0 ? (" x" + std::to_string(o.lr_gamma) + " every " + std::to_string(o.lr_step)).c_str() : "",
                 static_cast<unsigned long long>(o.seed), o.out_dir.c_str());
  }

  TrainReport rep;
  int64_t last_good = start;
  bool have_checkpoint = !o.resume.empty();
  double best_val = 2.0;  // pixel error of best.safetensors (this invocation)
  auto state_at = [&](int64_t it) {
    TrainState s;
    s.iteration = it;
    s.total_iterations = total;
    s.rng_seed = rng.seed();
    s.rng_offset = rng.offset();
    s.lr = scheduled_lr(o, it);
    s.extra = {{"tile", std::to_string(T)}};
    return s;
  };
  auto save = [&](int64_t it) {
    save_checkpoint(ckpt, net, &opt, state_at(it));
    write_curve((fs::path(o.out_dir) / "loss.csv").string(), "iteration,loss", curve);
    write_loss_plot((fs::path(o.out_dir) / "loss.png").string(), curve, val_curve);
    last_good = it;
    have_checkpoint = true;
  };
  auto validate = [&](int64_t it) {
    if (val_set.size() == 0) return;
    std::vector<Image> probs;
    PredictOptions po;
    po.tile = o.val_tile;
    for (const Image& im : val_set.images) probs.push_back(predict_probabilities(net, im, po));
    EvalResult r = evaluate_probabilities(probs, val_set.labels);
    val_curve.emplace_back(it, static_cast<float>(r.loss));
    val_pe.push_back(static_cast<float>(r.pixel_error));
    rep.last_val_loss = static_cast<float>(r.loss);
    rep.last_val_pixel_error = static_cast<float>(r.pixel_error);
    if (r.pixel_error < best_val) {  // batch-1 SGD is noisy: keep the best validated weights too
      best_val = r.pixel_error;
      rep.best_val_pixel_error = static_cast<float>(r.pixel_error);
      rep.best_iteration = it;
      save_checkpoint(best_ckpt, net, nullptr, state_at(it));
    }
    write_curve((fs::path(o.out_dir) / "val.csv").string(), "iteration,loss,pixel_error", val_curve, &val_pe);
    if (!o.quiet)
      std::fprintf(stderr, "\n[val] iteration %lld: loss %.4f, pixel error %.4f\n", static_cast<long long>(it), r.loss,
                   r.pixel_error);
  };

  auto t0 = std::chrono::steady_clock::now();
  for (int64_t it = start + 1; it <= total; ++it) {
    opt.set_lr(scheduled_lr(o, it - 1));
    size_t i = rng.below(static_cast<uint32_t>(train_set.size()));
    Sample src{train_set.images[i], train_set.labels[i], train_set.weights[i]};
    Sample s = augment_tile(src, T, T, O, O, rng, o.augment);
    std::vector<int32_t> lab(s.labels.data.size());
    for (size_t j = 0; j < lab.size(); ++j) lab[j] = static_cast<int32_t>(s.labels.data[j]);
    Tensor x = Tensor::from_vector({1, o.net.in_channels, T, T}, s.image.data).to(o.device);
    Tensor l = Tensor::from_vector_i32({1, O, O}, lab).to(o.device);
    Tensor w = Tensor::from_vector({1, O, O}, s.weights.data).to(o.device);

    opt.zero_grad();
    Var loss = ops::softmax_xent(net.forward(Var(x), true, &rng), l, w);
    float lv = loss.value().to_vector()[0];
    if (!std::isfinite(lv)) {
      Tape::current().clear();
      if (!have_checkpoint)
        UNET_FAIL("training diverged at iteration ", it, ": the loss is ", lv,
                  ". No checkpoint was written yet; start again with a lower learning rate (--lr)");
      UNET_FAIL("training diverged at iteration ", it, ": the loss is ", lv, ". The last good checkpoint is ",
                o.resume.empty() || last_good > start ? ckpt : o.resume, " (iteration ", last_good,
                "); resume from it with a lower learning rate (--lr)");
    }
    backward(loss);
    opt.step();
    curve.emplace_back(it, lv);
    rep.losses.push_back(lv);
    rep.iterations_done = it;

    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double ips = static_cast<double>(it - start) / el;
    if (!o.quiet)
      std::fprintf(stderr, "\r[train] iteration %lld/%lld  loss %.4f  lr %.3g  %.2f it/s  ETA %s   ",
                   static_cast<long long>(it), static_cast<long long>(total), lv, opt.lr(), ips,
                   fmt_duration(static_cast<double>(total - it) / ips).c_str());
    if ((o.val_every > 0 && it % o.val_every == 0) || it == total) validate(it);
    const bool stop = o.stop_at > 0 && it >= o.stop_at;
    if ((o.checkpoint_every > 0 && it % o.checkpoint_every == 0) || it == total || stop) save(it);
    if (stop) break;
  }
  if (!o.quiet) {
    std::fprintf(stderr, "\n[train] done: checkpoint %s\n", ckpt.c_str());
    if (rep.best_iteration > 0)
      std::fprintf(stderr, "[train] best validation pixel error %.4f at iteration %lld: %s\n", rep.best_val_pixel_error,
                   static_cast<long long>(rep.best_iteration), best_ckpt.c_str());
  }
  return rep;
}

}  // namespace unet
