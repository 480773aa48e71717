#include "unet/diagnose.h"

#include <algorithm>
#include <cmath>

#include "engine/check.h"
#include "unet/augment.h"

namespace unet {

std::vector<LayerWeights> weight_change(const UNet& net, const UNet& init) {
  const std::vector<Var>&a = net.parameters(), &b = init.parameters();
  UNET_CHECK(a.size() == b.size(), "inspect: the networks differ (", net.config().str(), " vs ", init.config().str(),
             ")");
  std::vector<LayerWeights> out;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name().find("weight") == std::string::npos) continue;
    const std::vector<float> w = a[i].value().to_vector(), w0 = b[i].value().to_vector();
    UNET_CHECK(w.size() == w0.size(), "inspect: tensor ", a[i].name(), " differs in size");
    double d = 0.0, n = 0.0, n0 = 0.0;
    for (size_t k = 0; k < w.size(); ++k) {
      d += (static_cast<double>(w[k]) - w0[k]) * (static_cast<double>(w[k]) - w0[k]);
      n += static_cast<double>(w[k]) * w[k];
      n0 += static_cast<double>(w0[k]) * w0[k];
    }
    const double cnt = static_cast<double>(w.size());
    out.push_back({a[i].name(), std::sqrt(n / cnt), std::sqrt(n0 / cnt), n0 > 0.0 ? std::sqrt(d / n0) : 0.0});
  }
  return out;
}

std::vector<LayerActivity> activation_stats(const UNet& net, const Image& image01, int tile) {
  const int depth = net.config().depth;
  UNET_CHECK(image01.channels == net.config().in_channels, "inspect: the image has ", image01.channels,
             " channel(s), the model takes ", net.config().in_channels);
  if (tile == 0) {
    tile = std::min({image01.height, image01.width, 572});
    while (tile > 0 && TileSizes::output_for_input(tile, depth) <= 0) --tile;
    UNET_CHECK(tile > 0, "inspect: the image is too small for a U-Net of depth ", depth);
  }
  TileSizes::check_input(tile, depth, "inspect tile (--tile)");
  const Image t = extract_tile_mirrored(image01, (image01.height - tile) / 2, (image01.width - tile) / 2, tile, tile);
  std::vector<LayerActivity> out;
  UNet::Observer observe = [&](const std::string& name, const Tensor& v) {
    const Shape& s = v.shape();
    const std::vector<float> d = v.to_vector();
    const int64_t C = s[1], P = s[2] * s[3];  // batch 1
    LayerActivity a;
    a.name = name;
    a.channels = static_cast<int>(C);
    double zeros = 0.0, sq = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      bool alive = false;
      for (int64_t p = 0; p < P; ++p) {
        const float x = d[static_cast<size_t>(c * P + p)];
        if (x > 0.0f) alive = true;
        else zeros += 1.0;
        sq += static_cast<double>(x) * x;
      }
      a.dead_channels += alive ? 0 : 1;
    }
    a.zero_fraction = zeros / static_cast<double>(C * P);
    a.rms = std::sqrt(sq / static_cast<double>(C * P));
    out.push_back(a);
  };
  NoGrad no_grad;
  net.forward(Var(Tensor::from_vector({1, net.config().in_channels, tile, tile}, t.data).to(net.device())), false,
              nullptr, &observe);
  return out;
}

}  // namespace unet
