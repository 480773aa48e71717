#include "unet/model.h"

#include <sstream>

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

double forward_flops(const UNetConfig& cfg, int h, int w) {
  double flops = 0.0;
  auto conv = [&](double taps, int cin, int cout, int oh, int ow) {
    flops += 2.0 * taps * cin * cout * oh * ow;
  };
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

Var UNet::add_param(Shape shape, const std::string& name, int64_t fan_in, bool is_bias, Rng* rng) {
  Tensor t = rng ? Tensor::zeros(shape, DType::F32, device_) : Tensor::empty(shape, DType::F32, device_);
  if (rng && !is_bias) he_normal_(t, fan_in, *rng);  // biases start at 0
  Var v = Var::parameter(t, name);
  params_.push_back(v);
  return v;
}

UNet::UNet(const UNetConfig& cfg, Device device, Rng& rng) : cfg_(cfg), device_(device) { build(&rng); }

UNet::UNet(const UNetConfig& cfg, Device device) : cfg_(cfg), device_(device) { build(nullptr); }

void UNet::build(Rng* rng) {
  const UNetConfig& cfg = cfg_;
  UNET_CHECK(cfg.in_channels >= 1 && cfg.classes >= 2 && cfg.depth >= 1 && cfg.base >= 1,
             "invalid U-Net configuration: ", cfg.str());
  UNET_CHECK(cfg.dropout >= 0.0f && cfg.dropout < 1.0f, "dropout must be in [0, 1), got ", cfg.dropout);
  auto conv_pair = [&](const std::string& prefix, int cin, int cout) {
    ConvPair p;
    p.w1 = add_param({cout, cin, 3, 3}, prefix + ".conv1.weight", 9LL * cin, false, rng);
    p.b1 = add_param({cout}, prefix + ".conv1.bias", 0, true, rng);
    p.w2 = add_param({cout, cout, 3, 3}, prefix + ".conv2.weight", 9LL * cout, false, rng);
    p.b2 = add_param({cout}, prefix + ".conv2.bias", 0, true, rng);
    return p;
  };
  int c = cfg.in_channels;
  for (int l = 0; l < cfg.depth; ++l) {
    int out = cfg.base << l;
    down_.push_back(conv_pair("down." + std::to_string(l), c, out));
    c = out;
  }
  bottom_ = conv_pair("bottom", c, cfg.base << cfg.depth);
  c = cfg.base << cfg.depth;
  for (int l = cfg.depth - 1; l >= 0; --l) {
    int out = cfg.base << l;
    std::string prefix = "up." + std::to_string(l);
    // Each output pixel of a 2x2 stride-2 transposed convolution sees C inputs: fan-in C.
    up_w_.push_back(add_param({c, out, 2, 2}, prefix + ".upconv.weight", c, false, rng));
    up_b_.push_back(add_param({out}, prefix + ".upconv.bias", 0, true, rng));
    up_conv_.push_back(conv_pair(prefix, 2 * out, out));
    c = out;
  }
  head_w_ = add_param({cfg.classes, c, 1, 1}, "head.weight", c, false, rng);
  head_b_ = add_param({cfg.classes}, "head.bias", 0, true, rng);
}

Var UNet::double_conv(const ConvPair& p, Var x) const {
  x = ops::relu(ops::conv3x3(x, p.w1, p.b1));
  return ops::relu(ops::conv3x3(x, p.w2, p.b2));
}

Var UNet::forward(const Var& x, bool train, Rng* dropout_rng) const {
  const Shape& s = x.shape();
  UNET_CHECK(s.size() == 4 && s[1] == cfg_.in_channels, "U-Net input must be [N, ", cfg_.in_channels,
             ", H, W], got ", shape_str(s));
  TileSizes::check_input(static_cast<int>(s[2]), cfg_.depth, "input tile height");
  TileSizes::check_input(static_cast<int>(s[3]), cfg_.depth, "input tile width");
  const bool drop = train && cfg_.dropout > 0.0f;
  UNET_CHECK(!drop || dropout_rng, "U-Net forward: training with dropout needs an Rng");
  std::vector<Var> skips;
  Var h = x;
  for (int l = 0; l < cfg_.depth; ++l) {
    h = double_conv(down_[l], h);
    if (drop && l == cfg_.depth - 1) h = ops::dropout(h, cfg_.dropout, *dropout_rng);
    skips.push_back(h);
    h = ops::maxpool2x2(h);
  }
  h = double_conv(bottom_, h);
  if (drop) h = ops::dropout(h, cfg_.dropout, *dropout_rng);
  for (int i = 0; i < cfg_.depth; ++i) {
    h = ops::upconv2x2(h, up_w_[i], up_b_[i]);
    h = ops::crop_concat(skips[cfg_.depth - 1 - i], h);
    h = double_conv(up_conv_[i], h);
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
