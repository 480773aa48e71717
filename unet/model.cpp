#include "unet/model.h"

#include <sstream>

#include "engine/backend.h"
#include "engine/init.h"
#include "engine/ops.h"

namespace unet {

std::string UNetConfig::str() const {
  std::ostringstream os;
  os << "in_channels=" << in_channels << " classes=" << classes << " depth=" << depth << " base=" << base
     << " dropout=" << dropout;
  return os.str();
}

int TileSizes::output_for_input(int in, int depth) {
  int s = in;
  for (int l = 0; l < depth; ++l) {
    s -= 4;
    if (s <= 0 || s % 2 != 0) return -1;
    s /= 2;
  }
  s -= 4;
  if (s <= 0) return -1;
  for (int l = 0; l < depth; ++l) {
    s = 2 * s - 4;
    if (s <= 0) return -1;
  }
  return s;
}

int TileSizes::input_for_output(int out, int depth) {
  for (int in = 1;; ++in) {
    int o = output_for_input(in, depth);
    if (o >= out) return in;
  }
}

int TileSizes::border(int depth) {
  for (int in = 1;; ++in) {
    int o = output_for_input(in, depth);
    if (o > 0) return in - o;
  }
}

void TileSizes::check_input(int in, int depth, const std::string& what) {
  if (output_for_input(in, depth) > 0) return;
  int lo = in - 1, hi = in + 1;
  while (lo > 0 && output_for_input(lo, depth) <= 0) --lo;
  while (output_for_input(hi, depth) <= 0) ++hi;
  std::ostringstream os;
  os << what << " of " << in << " px is not valid for a U-Net of depth " << depth
     << " (every 2x2 max-pool needs an even size); nearest valid sizes: ";
  if (lo > 0) os << lo << " (output " << output_for_input(lo, depth) << ") and ";
  os << hi << " (output " << output_for_input(hi, depth) << ")";
  UNET_FAIL(os.str());
}

void UNetConfig::validate(const std::string& where) const {
  auto in = [&](const char* field, int64_t v, int64_t lo, int64_t hi) {
    UNET_CHECK(v >= lo && v <= hi, where, ": U-Net ", field, " = ", v, " is out of range [", lo, ", ", hi, "]");
  };
  in("in_channels", in_channels, 1, kMaxChannels);
  in("classes", classes, 2, kMaxClasses);
  in("depth", depth, 1, kMaxDepth);
  in("base", base, 1, kMaxChannels);
  in("base * 2^depth (the bottleneck's channels)", static_cast<int64_t>(base) << depth, 1, kMaxWidest);
  UNET_CHECK(dropout >= 0.0f && dropout < 1.0f, where, ": U-Net dropout = ", dropout, " is out of range [0, 1)");
}

std::vector<ParamSpec> parameter_specs(const UNetConfig& cfg) {
  cfg.validate();
  std::vector<ParamSpec> v;
  auto conv_pair = [&](const std::string& prefix, int64_t cin, int64_t cout) {
    v.push_back({prefix + ".conv1.weight", {cout, cin, 3, 3}, 9 * cin});
    v.push_back({prefix + ".conv1.bias", {cout}, 0});
    v.push_back({prefix + ".conv2.weight", {cout, cout, 3, 3}, 9 * cout});
    v.push_back({prefix + ".conv2.bias", {cout}, 0});
  };
  int64_t c = cfg.in_channels;
  for (int l = 0; l < cfg.depth; ++l) {
    const int64_t out = static_cast<int64_t>(cfg.base) << l;
    conv_pair("down." + std::to_string(l), c, out);
    c = out;
  }
  conv_pair("bottom", c, static_cast<int64_t>(cfg.base) << cfg.depth);
  c = static_cast<int64_t>(cfg.base) << cfg.depth;
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int64_t out = static_cast<int64_t>(cfg.base) << l;
    const std::string prefix = "up." + std::to_string(l);
    // Each output pixel of a 2x2 stride-2 transposed convolution sees C inputs: fan-in C.
    v.push_back({prefix + ".upconv.weight", {c, out, 2, 2}, c});
    v.push_back({prefix + ".upconv.bias", {out}, 0});
    conv_pair(prefix, 2 * out, out);
    c = out;
  }
  v.push_back({"head.weight", {cfg.classes, c, 1, 1}, c});
  v.push_back({"head.bias", {cfg.classes}, 0});
  return v;
}

int64_t forward_activation_bytes(const UNetConfig& cfg, int64_t batch, int h, int w) {
  int64_t floats = 0;
  auto map = [&](int64_t c, int64_t hh, int64_t ww) { floats += batch * c * hh * ww; };
  // Two 3x3 convolutions, each followed by its ReLU's output.
  auto double_conv = [&](int64_t c, int64_t& hh, int64_t& ww) {
    for (int k = 0; k < 2; ++k) {
      hh -= 2;
      ww -= 2;
      map(c, hh, ww);
      map(c, hh, ww);
    }
  };
  int64_t hh = h, ww = w;
  std::vector<std::pair<int64_t, int64_t>> skips;
  for (int l = 0; l < cfg.depth; ++l) {
    const int64_t c = static_cast<int64_t>(cfg.base) << l;
    double_conv(c, hh, ww);
    if (l == cfg.depth - 1 && cfg.dropout > 0) map(c, hh, ww);
    skips.emplace_back(hh, ww);
    hh /= 2;
    ww /= 2;
    map(c, hh, ww);  // the pool's output
  }
  double_conv(static_cast<int64_t>(cfg.base) << cfg.depth, hh, ww);
  if (cfg.dropout > 0) map(static_cast<int64_t>(cfg.base) << cfg.depth, hh, ww);
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int64_t c = static_cast<int64_t>(cfg.base) << l;
    hh *= 2;
    ww *= 2;
    map(c, hh, ww);  // up-convolution (its first 3x3 convolution reads it and the skip's crop in place)
    double_conv(c, hh, ww);
  }
  map(cfg.classes, hh, ww);
  return floats * static_cast<int64_t>(sizeof(float));
}

void check_tile_fits(const UNetConfig& cfg, Device device, int64_t batch, int tile, bool training,
                     const std::string& what) {
  TileSizes::check_input(tile, cfg.depth, what);
  // Training holds every map for the backward pass and about as much again in gradients; inference
  // frees maps as it goes, but the skips live until the decoder: the whole forward is a safe bound.
  auto need = [&](int t) { return (training ? 2 : 1) * forward_activation_bytes(cfg, batch, t, t); };
  const double avail = static_cast<double>(available_memory(device));
  if (static_cast<double>(need(tile)) <= avail) return;
  int fits = 0;
  for (int t = tile - 1; t > 0 && !fits; --t)
    if (TileSizes::output_for_input(t, cfg.depth) > 0 && static_cast<double>(need(t)) <= avail) fits = t;
  std::ostringstream os;
  os.precision(3);
  os << what << ": a " << (training ? "training step" : "forward pass") << " of a U-Net with " << cfg.str()
     << " at batch " << batch << " x " << tile << " x " << tile << " needs about " << need(tile) / 1073741824.0
     << " GiB for its feature maps, but " << avail / 1073741824.0 << " GiB are available on " << device_name(device);
  if (fits) os << "; the largest tile that fits is " << fits;
  UNET_FAIL_AS(OutOfMemory, os.str());
}

double forward_flops(const UNetConfig& cfg, int h, int w) {
  double flops = 0.0;
  auto conv = [&](double taps, int cin, int cout, int oh, int ow) { flops += 2.0 * taps * cin * cout * oh * ow; };
  int c = cfg.in_channels;
  for (int l = 0; l < cfg.depth; ++l) {
    const int out = cfg.base << l;
    conv(9, c, out, h - 2, w - 2);
    conv(9, out, out, h - 4, w - 4);
    h = (h - 4) / 2;
    w = (w - 4) / 2;
    c = out;
  }
  const int bottom = cfg.base << cfg.depth;
  conv(9, c, bottom, h - 2, w - 2);
  conv(9, bottom, bottom, h - 4, w - 4);
  h -= 4;
  w -= 4;
  c = bottom;
  for (int l = cfg.depth - 1; l >= 0; --l) {
    const int out = cfg.base << l;
    conv(4, c, out, h, w);  // the up-convolution, on its input's pixels
    h *= 2;
    w *= 2;
    conv(9, 2 * out, out, h - 2, w - 2);
    conv(9, out, out, h - 4, w - 4);
    h -= 4;
    w -= 4;
    c = out;
  }
  conv(1, c, cfg.classes, h, w);
  return flops;
}

UNet::UNet(const UNetConfig& cfg, Device device, Rng& rng) : cfg_(cfg), device_(device) { build(&rng); }

UNet::UNet(const UNetConfig& cfg, Device device) : cfg_(cfg), device_(device) { build(nullptr); }

void UNet::build(Rng* rng) {
  for (const ParamSpec& p : parameter_specs(cfg_)) {
    // Without an rng the weights are left uninitialised: a checkpoint overwrites them next.
    Tensor t = rng ? Tensor::zeros(p.shape, DType::F32, device_) : Tensor::empty(p.shape, DType::F32, device_);
    if (rng && p.fan_in > 0) he_normal_(t, p.fan_in, *rng);  // biases start at 0
    params_.push_back(Var::parameter(t, p.name));
  }
  const UNetConfig& cfg = cfg_;
  // Hand the parameters to the layers, in parameter_specs' order.
  size_t i = 0;
  auto next = [&] { return params_[i++]; };
  auto conv_pair = [&] { return ConvPair{next(), next(), next(), next()}; };
  for (int l = 0; l < cfg.depth; ++l) down_.push_back(conv_pair());
  bottom_ = conv_pair();
  for (int l = 0; l < cfg.depth; ++l) {
    up_w_.push_back(next());
    up_b_.push_back(next());
    up_conv_.push_back(conv_pair());
  }
  head_w_ = next();
  head_b_ = next();
}

Var UNet::double_conv(const ConvPair& p, Var x, const std::string& name, const Observer* observe) const {
  x = ops::conv3x3_relu(x, p.w1, p.b1);  // relu(conv3x3(...)) fused
  if (observe) (*observe)(name + ".conv1", x.value());
  x = ops::conv3x3_relu(x, p.w2, p.b2);
  if (observe) (*observe)(name + ".conv2", x.value());
  return x;
}

Var UNet::forward(const Var& x, bool train, Rng* dropout_rng, const Observer* observe) const {
  const Shape& s = x.shape();
  UNET_CHECK(s.size() == 4 && s[1] == cfg_.in_channels, "U-Net input must be [N, ", cfg_.in_channels, ", H, W], got ",
             shape_str(s));
  TileSizes::check_input(static_cast<int>(s[2]), cfg_.depth, "input tile height");
  TileSizes::check_input(static_cast<int>(s[3]), cfg_.depth, "input tile width");
  const bool drop = train && cfg_.dropout > 0.0f;
  UNET_CHECK(!drop || dropout_rng, "U-Net forward: training with dropout needs an Rng");
  std::vector<Var> skips;
  Var h = x;
  for (int l = 0; l < cfg_.depth; ++l) {
    h = double_conv(down_[l], h, "down." + std::to_string(l), observe);
    if (drop && l == cfg_.depth - 1) h = ops::dropout(h, cfg_.dropout, *dropout_rng);
    skips.push_back(h);
    h = ops::maxpool2x2(h);
  }
  h = double_conv(bottom_, h, "bottom", observe);
  if (drop) h = ops::dropout(h, cfg_.dropout, *dropout_rng);
  for (int i = 0; i < cfg_.depth; ++i) {
    const std::string name = "up." + std::to_string(cfg_.depth - 1 - i);
    h = ops::upconv2x2(h, up_w_[i], up_b_[i]);
    if (observe) (*observe)(name + ".upconv", h.value());
    // The first convolution reads [crop(skip), h] in place: no concatenated copy (ops::conv3x3_relu_concat).
    const ConvPair& p = up_conv_[i];
    h = ops::conv3x3_relu_concat(skips[cfg_.depth - 1 - i], h, p.w1, p.b1);
    if (observe) (*observe)(name + ".conv1", h.value());
    h = ops::conv3x3_relu(h, p.w2, p.b2);
    if (observe) (*observe)(name + ".conv2", h.value());
  }
  return ops::conv1x1(h, head_w_, head_b_);
}

int64_t UNet::parameter_count() const {
  int64_t n = 0;
  for (const Var& p : params_) n += p.value().numel();
  return n;
}

// 2 per level on each path + 2 at the bottom (3x3), one up-convolution per level, the 1x1 head.
int UNet::conv_count() const { return 4 * cfg_.depth + 2 + cfg_.depth + 1; }

}  // namespace unet
