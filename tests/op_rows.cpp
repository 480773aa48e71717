// The op table's rows (tests/op_table.h): every kernel of both tables at tiny, small and real U-Net sizes.
// A family function adds the rows of one op (or of its passes) at one size; op_cases() lists them all.
// Counts, per launch: flops = 2 per multiply-add of the op's formula (kernels/ops.inc; the bias additions,
// comparisons and transcendentals are not counted), bytes = 4 per element of every input read and every
// output written, once each.
#include <cstdio>
#include <cstring>
#include <limits>

#include "tests/op_table.h"

namespace unet::test {
namespace {

using KT = kernels::KernelTable;
using RT = restore::kernels::RestoreKernelTable;
constexpr double kF = 4.0;  // bytes per float (and per int32 label or flag)

// --- convolutions ---------------------------------------------------------------------------------------------

enum class Passes { all, forward, forward_no_bias };

struct ConvDims {
  Conv kind;
  int N, C, H, W, K;
  int64_t x() const { return int64_t{N} * C * H * W; }
  int64_t w() const {
    return kind == Conv::k3x3 ? int64_t{K} * C * 9 : kind == Conv::k1x1 ? int64_t{K} * C : int64_t{C} * K * 4;
  }
  int64_t y() const {
    return kind == Conv::k3x3   ? int64_t{N} * K * (H - 2) * (W - 2)
           : kind == Conv::k1x1 ? int64_t{N} * K * H * W
                                : int64_t{N} * K * 4 * H * W;
  }
  double macs() const {
    const double taps = kind == Conv::k3x3 ? 9 : kind == Conv::k1x1 ? 1 : 4;
    const double pixels = kind == Conv::k3x3 ? double(H - 2) * (W - 2) : double(H) * W;  // per tap
    return double(N) * C * K * taps * pixels;
  }
};

// The forward, backward-data and backward-weight rows of one convolution (or the forward alone).
// `prec`: the kernels' precision argument (the row's name carries it when it is not fp32).
void conv_rows(std::vector<OpCase>& rows, Conv kind, int N, int C, int H, int W, int K, Size size,
               const std::string& why = "", Passes passes = Passes::all, const std::string& layer = "",
               kernels::Precision prec = kernels::Precision::FP32) {
  const ConvDims d{kind, N, C, H, W, K};
  const Precision rp = conv_precision(prec);
  const std::string pname = prec == kernels::Precision::FP32 ? "" : precision_name(rp);
  auto variant = [&](std::string v) { return v.empty() ? pname : pname.empty() ? v : v + " " + pname; };
  const std::string name = conv_name(kind);
  auto fwd = kind == Conv::k3x3   ? &KT::conv3x3_forward
             : kind == Conv::k1x1 ? &KT::conv1x1_forward
                                  : &KT::upconv2x2_forward;
  auto bwd = kind == Conv::k3x3   ? &KT::conv3x3_backward_data
             : kind == Conv::k1x1 ? &KT::conv1x1_backward_data
                                  : &KT::upconv2x2_backward_data;
  auto bww = kind == Conv::k3x3   ? &KT::conv3x3_backward_weight
             : kind == Conv::k1x1 ? &KT::conv1x1_backward_weight
                                  : &KT::upconv2x2_backward_weight;
  const bool bias = passes != Passes::forward_no_bias;
  const std::vector<int64_t> dims{N, C, H, W, K};
  rows.push_back({name + "_forward", "N,C,H,W,K", dims, variant(bias ? "" : "no bias"), why, layer, size, rp,
                  2 * d.macs(), kF * (d.x() + d.w() + (bias ? K : 0) + d.y()), [=](Buffers& b) -> Launch {
                    const float *x = b.input(d.x()), *w = b.input(d.w()), *bs = b.input(K);
                    float* y = b.output(d.y());
                    if (!bias) bs = nullptr;
                    return [=](const Backend& be) { (be.unet->*fwd)(be.stream, prec, x, w, bs, y, N, C, H, W, K); };
                  }});
  if (passes != Passes::all) return;
  rows.push_back({name + "_backward_data", "N,C,H,W,K", dims, variant(""), why, layer, size, rp, 2 * d.macs(),
                  kF * (d.y() + d.w() + d.x()), [=](Buffers& b) -> Launch {
                    const float *dy = b.input(d.y()), *w = b.input(d.w());
                    float* dx = b.output(d.x());
                    return [=](const Backend& be) { (be.unet->*bwd)(be.stream, prec, dy, w, dx, N, C, H, W, K); };
                  }});
  rows.push_back({name + "_backward_weight", "N,C,H,W,K", dims, variant(""), why, layer, size, rp, 2 * d.macs(),
                  kF * (d.x() + d.y() + d.w() + K), [=](Buffers& b) -> Launch {
                    const float *x = b.input(d.x()), *dy = b.input(d.y());
                    float *dw = b.output(d.w()), *db = b.output(K);
                    return [=](const Backend& be) { (be.unet->*bww)(be.stream, prec, x, dy, dw, db, N, C, H, W, K); };
                  }});
}

// The fused conv3x3 + ReLU (every 3x3 layer of the U-Net): the forward with the ReLU in its epilogue, same
// counts as conv3x3_forward (the comparisons are not counted; y is written once, not written, read and
// written again as by conv3x3_forward then relu_forward); the backward passes read dy and the forward's y
// (the ReLU's output: zero where the mask is, drawn as max(0, uniform[-1, 1)), half of it zero) for the
// mask, in place of relu_backward's output.
void conv3x3_relu_rows(std::vector<OpCase>& rows, int N, int C, int H, int W, int K, Size size,
                       const std::string& why = "", Passes passes = Passes::all,
                       kernels::Precision prec = kernels::Precision::FP32) {
  const ConvDims d{Conv::k3x3, N, C, H, W, K};
  const Precision rp = conv_precision(prec);
  const std::string pname = prec == kernels::Precision::FP32 ? "" : precision_name(rp);
  auto variant = [&](std::string v) { return v.empty() ? pname : pname.empty() ? v : v + " " + pname; };
  const bool bias = passes != Passes::forward_no_bias;
  const std::vector<int64_t> dims{N, C, H, W, K};
  rows.push_back({"conv3x3_relu_forward", "N,C,H,W,K", dims, variant(bias ? "" : "no bias"), why, "", size, rp,
                  2 * d.macs(), kF * (d.x() + d.w() + (bias ? K : 0) + d.y()), [=](Buffers& b) -> Launch {
                    const float *x = b.input(d.x()), *w = b.input(d.w()), *bs = b.input(K);
                    float* y = b.output(d.y());
                    if (!bias) bs = nullptr;
                    return [=](const Backend& be) {
                      be.unet->conv3x3_relu_forward(be.stream, prec, x, w, bs, y, N, C, H, W, K);
                    };
                  }});
  if (passes != Passes::all) return;
  auto relu_out = [=](Buffers& b) {
    std::vector<float> v = b.values(d.y());
    for (float& e : v) e = e > 0.0f ? e : 0.0f;
    return b.input(v);
  };
  rows.push_back({"conv3x3_relu_backward_data", "N,C,H,W,K", dims, variant(""), why, "", size, rp, 2 * d.macs(),
                  kF * (2 * d.y() + d.w() + d.x()), [=](Buffers& b) -> Launch {
                    const float *dy = b.input(d.y()), *y = relu_out(b), *w = b.input(d.w());
                    float* dx = b.output(d.x());
                    return [=](const Backend& be) {
                      be.unet->conv3x3_relu_backward_data(be.stream, prec, dy, y, w, dx, N, C, H, W, K);
                    };
                  }});
  rows.push_back({"conv3x3_relu_backward_weight", "N,C,H,W,K", dims, variant(""), why, "", size, rp, 2 * d.macs(),
                  kF * (d.x() + 2 * d.y() + d.w() + K), [=](Buffers& b) -> Launch {
                    const float *x = b.input(d.x()), *dy = b.input(d.y()), *y = relu_out(b);
                    float *dw = b.output(d.w()), *db = b.output(K);
                    return [=](const Backend& be) {
                      be.unet->conv3x3_relu_backward_weight(be.stream, prec, x, dy, y, dw, db, N, C, H, W, K);
                    };
                  }});
  // Both passes in one call (the engine's), and with the data gradient left out (the network's first layer).
  // Not at the large sizes, whose two passes the GPU cross-check already takes one by one.
  if (size == Size::large) return;
  for (const bool with_dx : {true, false}) {
    if (!with_dx && size != Size::tiny) break;
    rows.push_back({"conv3x3_relu_backward", "N,C,H,W,K", dims, variant(with_dx ? "" : "no dx"), why, "", size, rp,
                    (with_dx ? 4 : 2) * d.macs(), kF * (d.x() + 2 * d.y() + d.w() + (with_dx ? d.x() : 0) + d.w() + K),
                    [=](Buffers& b) -> Launch {
                      const float *x = b.input(d.x()), *dy = b.input(d.y()), *y = relu_out(b), *w = b.input(d.w());
                      float *dx = with_dx ? b.output(d.x()) : nullptr, *dw = b.output(d.w()), *db = b.output(K);
                      return [=](const Backend& be) {
                        be.unet->conv3x3_relu_backward(be.stream, prec, x, dy, y, w, dx, dw, db, N, C, H, W, K);
                      };
                    }});
  }
}

// The decoder's first convolution over [crop(skip), up] without the concatenation: the counts of
// conv3x3_relu over the concatenated input, but the skip is read in its window only and no concatenated
// tensor is written or read. dims: N, Cs, Hs, Ws, Cu, H, W, K (the convolution's input is H x W).
void conv3x3_relu_concat_rows(std::vector<OpCase>& rows, int N, int Cs, int Hs, int Ws, int Cu, int H, int W, int K,
                              Size size, const std::string& why = "",
                              kernels::Precision prec = kernels::Precision::FP32) {
  const ConvDims d{Conv::k3x3, N, Cs + Cu, H, W, K};
  const int64_t ns = int64_t{N} * Cs * Hs * Ws, nu = int64_t{N} * Cu * H * W;
  const Precision rp = conv_precision(prec);
  const std::string variant = prec == kernels::Precision::FP32 ? "" : precision_name(rp);
  const std::vector<int64_t> dims{N, Cs, Hs, Ws, Cu, H, W, K};
  const std::string names = "N,Cs,Hs,Ws,Cu,H,W,K";
  auto relu_out = [=](Buffers& b) {
    std::vector<float> v = b.values(d.y());
    for (float& e : v) e = e > 0.0f ? e : 0.0f;
    return b.input(v);
  };
  rows.push_back({"conv3x3_relu_concat_forward", names, dims, variant, why, "", size, rp, 2 * d.macs(),
                  kF * (d.x() + d.w() + K + d.y()), [=](Buffers& b) -> Launch {
                    const float *s = b.input(ns), *u = b.input(nu), *w = b.input(d.w()), *bs = b.input(K);
                    float* y = b.output(d.y());
                    return [=](const Backend& be) {
                      be.unet->conv3x3_relu_concat_forward(be.stream, prec, s, u, w, bs, y, N, Cs, Hs, Ws, Cu, H, W, K);
                    };
                  }});
  rows.push_back({"conv3x3_relu_concat_backward_data", names, dims, variant, why, "", size, rp, 2 * d.macs(),
                  kF * (2 * d.y() + d.w() + ns + nu), [=](Buffers& b) -> Launch {
                    const float *dy = b.input(d.y()), *y = relu_out(b), *w = b.input(d.w());
                    float *ds = b.output(ns), *du = b.output(nu);
                    return
                        [=](const Backend& be) {
      be.unet->conv3x3_relu_concat_backward_data(be.stream, prec, dy, y, w, ds, du, N, Cs, Hs, Ws, Cu, H, W, K);
                        };
                  }});
  rows.push_back({"conv3x3_relu_concat_backward_weight", names, dims, variant, why, "", size, rp, 2 * d.macs(),
                  kF * (d.x() + 2 * d.y() + d.w() + K), [=](Buffers& b) -> Launch {
                    const float *s = b.input(ns), *u = b.input(nu), *dy = b.input(d.y()), *y = relu_out(b);
                    float *dw = b.output(d.w()), *db = b.output(K);
                    return
                        [=](const Backend& be) {
      be.unet->conv3x3_relu_concat_backward_weight(be.stream, prec, s, u, dy, y, dw, db, N, Cs, Hs, Ws, Cu, H, W, K);
                        };
                  }});
  if (size == Size::large) return;
  rows.push_back({"conv3x3_relu_concat_backward", names, dims, variant, why, "", size, rp, 4 * d.macs(),
                  kF * (d.x() + 2 * d.y() + 2 * d.w() + ns + nu + K), [=](Buffers& b) -> Launch {
                    const float *s = b.input(ns), *u = b.input(nu), *dy = b.input(d.y()), *y = relu_out(b),
                                *w = b.input(d.w());
                    float *ds = b.output(ns), *du = b.output(nu), *dw = b.output(d.w()), *db = b.output(K);
                    return [=](const Backend& be) {
                      be.unet->conv3x3_relu_concat_backward(be.stream, prec, s, u, dy, y, w, ds, du, dw, db, N, Cs, Hs,
                                                            Ws, Cu, H, W, K);
                    };
                  }});
}

// The paper's 23 convolutions: four are large rows (the GPU cross-check takes them: the 572 input, the
// widest map, the deepest layer, the deepest up-convolution), the head is a small one, the rest bench rows.
void paper_rows(std::vector<OpCase>& rows) {
  for (const PaperLayer& l : paper_layers()) {
    const bool checked =
        l.name == "down.0.conv1" || l.name == "down.0.conv2" || l.name == "bottom.conv2" || l.name == "up.3.upconv";
    const Size size = checked ? Size::large : l.kind == Conv::k1x1 ? Size::small : Size::bench;
    conv_rows(rows, l.kind, 1, l.C, l.H, l.W, l.K, size, "the paper's layer " + l.name, Passes::all, l.name);
  }
}

// --- memory-bound U-Net ops ---------------------------------------------------------------------------------

// What the dims of an elementwise row are called: n, or a feature map's C,H,W / N,C,H,W.
std::string names_for(const Shape& s) { return s.size() == 4 ? "N,C,H,W" : s.size() == 3 ? "C,H,W" : "n"; }

void relu_rows(std::vector<OpCase>& rows, const Shape& s, Size size, const std::string& why = "",
               bool backward = true) {
  const int64_t n = shape_numel(s);
  rows.push_back(
      {"relu_forward", names_for(s), s, "", why, "", size, Precision::exact, 0, kF * 2 * n, [=](Buffers& b) -> Launch {
         const float* x = b.input(n);
         float* y = b.output(n);
         return [=](const Backend& be) { be.unet->relu_forward(be.stream, x, y, n); };
       }});
  if (!backward) return;
  rows.push_back(
      {"relu_backward", names_for(s), s, "", why, "", size, Precision::exact, 0, kF * 3 * n, [=](Buffers& b) -> Launch {
         const float *y = b.input(n), *dy = b.input(n);
         float* dx = b.output(n);
         return [=](const Backend& be) { be.unet->relu_backward(be.stream, y, dy, dx, n); };
       }});
}

// `ties`: every 7th input copied into its neighbour, so windows hold equal maxima (the first one wins).
void maxpool_rows(std::vector<OpCase>& rows, int N, int C, int H, int W, Size size, const std::string& why = "",
                  bool ties = false, bool backward = true) {
  const int64_t n = int64_t{N} * C * H * W, m = n / 4;
  const std::vector<int64_t> dims{N, C, H, W};
  const std::string variant = ties ? "ties" : "";
  auto x_of = [=](Buffers& b) {
    std::vector<float> v = b.values(n);
    for (int64_t i = 0; ties && i + 1 < n; i += 7) v[i + 1] = v[i];
    return b.input(v);
  };
  rows.push_back({"maxpool2x2_forward", "N,C,H,W", dims, variant, why, "", size, Precision::exact, 0, kF * (n + m),
                  [=](Buffers& b) -> Launch {
                    const float* x = x_of(b);
                    float* y = b.output(m);
                    return [=](const Backend& be) { be.unet->maxpool2x2_forward(be.stream, x, y, N, C, H, W); };
                  }});
  if (!backward) return;
  rows.push_back({"maxpool2x2_backward", "N,C,H,W", dims, variant, why, "", size, Precision::exact, 0, kF * (2 * n + m),
                  [=](Buffers& b) -> Launch {
                    const float* x = x_of(b);
                    const float* dy = b.input(m);
                    float* dx = b.output(n);
                    return [=](const Backend& be) {
                      be.unet->maxpool2x2_backward(be.stream, x, dy, dx, N, C, H, W, false);
                    };
                  }});
  // Added to the gradient already in dx (a skip tensor's): reads and writes the maxima's elements of dx.
  if (size != Size::tiny && size != Size::small) return;
  rows.push_back({"maxpool2x2_backward", "N,C,H,W", dims, variant.empty() ? "accumulate" : variant + " accumulate", why,
                  "", size, Precision::exact, 0, kF * (n + 3 * m), [=](Buffers& b) -> Launch {
                    const float* x = x_of(b);
                    const float* dy = b.input(m);
                    float* dx = b.inout(n);
                    return [=](const Backend& be) {
                      be.unet->maxpool2x2_backward(be.stream, x, dy, dx, N, C, H, W, true);
                    };
                  }});
}

void crop_concat_rows(std::vector<OpCase>& rows, int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu, Size size,
                      const std::string& why = "", bool backward = true) {
  const int64_t ns = int64_t{N} * Cs * Hs * Ws, nu = int64_t{N} * Cu * Hu * Wu, ny = int64_t{N} * (Cs + Cu) * Hu * Wu;
  const std::vector<int64_t> dims{N, Cs, Hs, Ws, Cu, Hu, Wu};
  // Forward: only the crop window of the skip is read.
  rows.push_back({"crop_concat_forward", "N,Cs,Hs,Ws,Cu,Hu,Wu", dims, "", why, "", size, Precision::exact, 0,
                  kF * 2 * ny, [=](Buffers& b) -> Launch {
                    const float *s = b.input(ns), *u = b.input(nu);
                    float* y = b.output(ny);
                    return [=](const Backend& be) {
                      be.unet->crop_concat_forward(be.stream, s, u, y, N, Cs, Hs, Ws, Cu, Hu, Wu);
                    };
                  }});
  if (!backward) return;
  rows.push_back({"crop_concat_backward", "N,Cs,Hs,Ws,Cu,Hu,Wu", dims, "", why, "", size, Precision::exact, 0,
                  kF * (ny + ns + nu), [=](Buffers& b) -> Launch {
                    const float* dy = b.input(ny);
                    float *ds = b.output(ns), *du = b.output(nu);
                    return [=](const Backend& be) {
                      be.unet->crop_concat_backward(be.stream, dy, ds, du, N, Cs, Hs, Ws, Cu, Hu, Wu);
                    };
                  }});
}

// A 64-bit word as the two floats an input buffer holds (bit for bit), for ops that read a word from memory.
std::vector<float> word_as_floats(uint64_t w) {
  std::vector<float> v(2);
  std::memcpy(v.data(), &w, sizeof w);
  return v;
}

// The mask's key is the row's seed; `offset` where its Philox stream starts. With `base` > 0 the launch gets
// offset - base and reads base from the backend's memory (offset_base), as a replayed CUDA graph does.
void dropout_rows(std::vector<OpCase>& rows, const Shape& s, float p, uint64_t offset, Size size,
                  const std::string& why = "", uint64_t base = 0) {
  const int64_t n = shape_numel(s);
  char variant[96];
  std::snprintf(variant, sizeof variant, "p=%g offset=%llu%s", p, static_cast<unsigned long long>(offset),
                base ? " from memory" : "");
  for (const bool forward : {true, false}) {
    rows.push_back({forward ? "dropout_forward" : "dropout_backward", names_for(s), s, variant, why, "", size,
                    Precision::exact, 0, kF * 2 * n, [=](Buffers& b) -> Launch {
                      const float* x = b.input(n);
                      float* y = b.output(n);
                      const uint64_t key = b.seed();
                      const uint64_t* at =
                          base ? reinterpret_cast<const uint64_t*>(b.input(word_as_floats(base))) : nullptr;
                      const uint64_t arg = offset - base;
                      return [=](const Backend& be) {
                        if (forward) be.unet->dropout_forward(be.stream, x, y, n, p, key, arg, at);
                        else be.unet->dropout_backward(be.stream, x, y, n, p, key, arg, at);
                      };
                    }});
  }
}

void softmax_rows(std::vector<OpCase>& rows, int N, int K, int H, int W, bool weighted, Size size,
                  const std::string& why = "") {
  const int64_t P = int64_t{N} * H * W, n = P * K;
  const std::vector<int64_t> dims{N, K, H, W};
  rows.push_back({"softmax_xent", "N,K,H,W", dims, weighted ? "weighted" : "unweighted", why, "", size, Precision::fp32,
                  0, kF * (n + P + (weighted ? P : 0) + 1 + n), [=](Buffers& b) -> Launch {
                    const float* a = b.input(n, -4.0f, 4.0f);
                    const int32_t* l = b.labels(P, K);
                    const float* w = weighted ? b.input(P, 0.5f, 11.0f) : nullptr;
                    float *loss = b.output(1), *g = b.output(n);
                    return [=](const Backend& be) { be.unet->softmax_xent(be.stream, a, l, w, loss, g, N, K, H, W); };
                  }});
  rows.push_back({"softmax_forward", "N,K,H,W", dims, "", why, "", size, Precision::fp32, 0, kF * 2 * n,
                  [=](Buffers& b) -> Launch {
                    const float* a = b.input(n, -4.0f, 4.0f);
                    float* p = b.output(n);
                    return [=](const Backend& be) { be.unet->softmax_forward(be.stream, a, p, N, K, H, W); };
                  }});
}

// The sizes of the U-Net's 46 parameter tensors (depth 4, one input channel, two classes), in the model's order.
std::vector<int64_t> unet_param_sizes(int64_t base) {
  std::vector<int64_t> v;
  auto conv = [&](int64_t cin, int64_t cout, int64_t taps) {
    v.push_back(cout * cin * taps);
    v.push_back(cout);
  };
  for (int l = 0; l < 4; ++l) {
    const int64_t cin = l == 0 ? 1 : base << (l - 1), cout = base << l;
    conv(cin, cout, 9);
    conv(cout, cout, 9);
  }
  conv(base * 8, base * 16, 9);
  conv(base * 16, base * 16, 9);
  for (int i = 0; i < 4; ++i) {
    const int64_t cin = (base * 16) >> i, cout = cin / 2;
    conv(cin, cout, 4);
    conv(2 * cout, cout, 9);
    conv(cout, cout, 9);
  }
  conv(base, 2, 1);
  return v;
}

// optim_update_list over tensors of the given sizes, in each of its three kinds (the hyperparameters of the
// single-tensor rows above): every tensor's w and state are outputs; flops and bytes as the single rows'.
// With `from_memory` the step's lr (or Adam's step and inv_sqrt_bc2) are read from the backend's memory
// (OptimStep::scalars), as a replayed CUDA graph does; the arguments then hold other values.
void optim_list_rows(std::vector<OpCase>& rows, const std::vector<int64_t>& sizes, Size size, const std::string& why,
                     bool from_memory = false) {
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  struct Kind {
    kernels::OptimKind kind;
    const char* name;
    double flops, bytes;  // per element
  };
  for (Kind k : {Kind{kernels::OptimKind::kSgd, "sgd", 6, 5}, Kind{kernels::OptimKind::kNesterov, "nesterov", 8, 5},
                 Kind{kernels::OptimKind::kAdam, "adam", 14, 7}}) {
    rows.push_back({"optim_update_list",
                    "tensors,elements",
                    {int64_t(sizes.size()), total},
                    from_memory ? std::string(k.name) + " scalars from memory" : std::string(k.name),
                    why,
                    "",
                    size,
                    Precision::elementwise,
                    k.flops * total,
                    kF * k.bytes * total,
                    [=](Buffers& b) -> Launch {
                      kernels::ParamList list;
                      for (int64_t n : sizes) {
                        const int i = list.count++;
                        list.w[i] = b.inout(n);
                        list.g[i] = b.input(n);
                        list.s0[i] = b.inout(n);
                        if (k.kind == kernels::OptimKind::kAdam) list.s1[i] = b.inout(n, 0.0f, 1.0f);
                        list.n[i] = n;
                      }
                      kernels::OptimStep st;
                      st.kind = k.kind;
                      st.lr = 0.01f, st.mu = 0.99f, st.wd = 1e-4f;
                      st.step = 1e-3f / 0.271f, st.b1 = 0.9f, st.b2 = 0.999f, st.eps = 1e-8f,
                      st.inv_sqrt_bc2 = 18.2666f;
                      if (from_memory) {
                        st.scalars = b.input(
                            std::vector<float>{k.kind == kernels::OptimKind::kAdam ? st.step : st.lr, st.inv_sqrt_bc2});
                        st.lr = st.step = st.inv_sqrt_bc2 = -7.0f;  // not to be used
                      }
                      return [=](const Backend& be) { be.unet->optim_update_list(be.stream, list, st); };
                    }});
  }
}

// The optimiser and the engine's helpers.
void elementwise_rows(std::vector<OpCase>& rows, int64_t n, Size size, const std::string& why = "") {
  const std::vector<int64_t> dims{n};
  // w' = g + wd w, v = mu v + w', w -= lr v: three multiply-adds; reads w, g, v, writes w, v.
  rows.push_back({"sgd_momentum", "n", dims, "", why, "", size, Precision::elementwise, 6.0 * n, kF * 5 * n,
                  [=](Buffers& b) -> Launch {
                    float* w = b.inout(n);
                    const float* g = b.input(n);
                    float* v = b.inout(n);
                    return
                        [=](const Backend& be) { be.unet->sgd_momentum(be.stream, w, g, v, n, 0.01f, 0.99f, 1e-4f); };
                  }});
  // Nesterov: g' = g + wd w, v = mu v + g', w -= lr (g' + mu v): four multiply-adds; reads w, g, v, writes w, v.
  rows.push_back({"sgd_nesterov", "n", dims, "", why, "", size, Precision::elementwise, 8.0 * n, kF * 5 * n,
                  [=](Buffers& b) -> Launch {
                    float* w = b.inout(n);
                    const float* g = b.input(n);
                    float* v = b.inout(n);
                    return
                        [=](const Backend& be) { be.unet->sgd_nesterov(be.stream, w, g, v, n, 0.01f, 0.99f, 1e-4f); };
                  }});
  // Adam at step 3 of lr 1e-3 (step = lr / (1 - 0.9^3), inv_sqrt_bc2 = 1 / sqrt(1 - 0.999^3)): seven
  // multiply-adds and a square root per element; reads w, g, m, s, writes w, m, s.
  rows.push_back({"adam_update", "n", dims, "", why, "", size, Precision::elementwise, 14.0 * n, kF * 7 * n,
                  [=](Buffers& b) -> Launch {
                    float* w = b.inout(n);
                    const float* g = b.input(n);
                    float* m = b.inout(n);
                    float* s = b.inout(n, 0.0f, 1.0f);  // second moments are >= 0
                    return
                        [=](const Backend& be) {
      be.unet->adam_update(be.stream, w, g, m, s, n, 1e-3f / 0.271f, 0.9f, 0.999f, 1e-8f, 18.2666f, 1e-4f);
                        };
                  }});
  rows.push_back({"add", "n", dims, "", why, "", size, Precision::exact, 0, kF * 3 * n, [=](Buffers& b) -> Launch {
                    float* y = b.inout(n);
                    const float* x = b.input(n);
                    return [=](const Backend& be) { be.unet->add(be.stream, y, x, n); };
                  }});
  rows.push_back({"fill", "n", dims, "", why, "", size, Precision::exact, 0, kF * n, [=](Buffers& b) -> Launch {
                    float* y = b.output(n);
                    return [=](const Backend& be) { be.unet->fill(be.stream, y, 0.25f, n); };
                  }});
  // Two calls: on finite values (flag 0 stays 0) and with an infinity in the middle (flag 1 set).
  rows.push_back(
      {"check_finite", "n", dims, "", why, "", size, Precision::exact, 0, kF * (2 * n + 1), [=](Buffers& b) -> Launch {
         std::vector<float> v = b.values(n);
         const float* ok = b.input(v);
         v[static_cast<size_t>(n / 2)] = std::numeric_limits<float>::infinity();
         const float* bad = b.input(v);
         int32_t* flags = b.flags(2);
         return [=](const Backend& be) {
           be.unet->check_finite(be.stream, ok, n, flags);
           be.unet->check_finite(be.stream, bad, n, flags + 1);
         };
       }});
}

// --- the restoration table ---------------------------------------------------------------------------------------

void stencil_rows(std::vector<OpCase>& rows, int N, int H, int W, int kh, int kw, Size size,
                  const std::string& why = "") {
  const int64_t n = int64_t{N} * H * W, taps = int64_t{kh} * kw;
  const std::vector<int64_t> dims{N, H, W, kh, kw};
  rows.push_back({"stencil2d", "N,H,W,kh,kw", dims, "", why, "", size, Precision::fp32, 2.0 * n * taps,
                  kF * (2 * n + taps), [=](Buffers& b) -> Launch {
                    const float *x = b.input(n), *k = b.input(taps);
                    float* y = b.output(n);
                    return [=](const Backend& be) { be.restore->stencil2d(be.stream, x, k, y, N, H, W, kh, kw); };
                  }});
  rows.push_back({"stencil2d_adjoint", "N,H,W,kh,kw", dims, "", why, "", size, Precision::fp32, 2.0 * n * taps,
                  kF * (2 * n + taps), [=](Buffers& b) -> Launch {
                    const float *y = b.input(n), *k = b.input(taps);
                    float* x = b.output(n);
                    return
                        [=](const Backend& be) { be.restore->stencil2d_adjoint(be.stream, y, k, x, N, H, W, kh, kw); };
                  }});
}

// adj_x: 8 multiply-adds per pixel (deg_x sums the weights, then one multiply); reads x and 4 weights, writes 2.
void laplacian_rows(std::vector<OpCase>& rows, int N, int H, int W, Size size, const std::string& why = "") {
  const int64_t n = int64_t{N} * H * W;
  rows.push_back({"laplacian8_apply",
                  "N,H,W",
                  {N, H, W},
                  "",
                  why,
                  "",
                  size,
                  Precision::fp32,
                  2.0 * 8 * n,
                  kF * 7 * n,
                  [=](Buffers& b) -> Launch {
                    const float *x = b.input(n), *w = b.input(4 * n, 0.0f, 1.0f);
                    float *deg = b.output(n), *adj = b.output(n);
                    return [=](const Backend& be) { be.restore->laplacian8_apply(be.stream, x, w, deg, adj, N, H, W); };
                  }});
}

// `edges`: f = 0 (a fixed point), f = 1e-31 (below the cut to zero) and an = 0 planted in nnmu_update.
void nnmu_rows(std::vector<OpCase>& rows, int64_t n, Size size, bool edges, const std::string& why = "") {
  const std::vector<int64_t> dims{n};
  // b^2 + 4 ap an: two multiply-adds; reads f, ap, an, b, writes f.
  rows.push_back({"nnmu_update", "n", dims, edges ? "edge values" : "", why, "", size, Precision::elementwise, 4.0 * n,
                  kF * 5 * n, [=](Buffers& b) -> Launch {
                    std::vector<float> f0 = b.values(n, 0.05f, 1.0f);
                    if (edges) f0[5] = 0.0f, f0[6] = 1e-31f;
                    float* f = b.inout(f0);
                    const float* ap = b.input(n, 0.1f, 2.0f);
                    std::vector<float> an0 = b.values(n, 0.0f, 2.0f);
                    if (edges) an0[7] = 0.0f;
                    const float *an = b.input(an0), *bb = b.input(n);
                    return [=](const Backend& be) { be.restore->nnmu_update(be.stream, f, ap, an, bb, n, 1e-12f); };
                  }});
  rows.push_back(
      {"axpby", "n", dims, "", why, "", size, Precision::elementwise, 2.0 * n, kF * 3 * n, [=](Buffers& b) -> Launch {
         float* y = b.inout(n);
         const float* x = b.input(n);
         return [=](const Backend& be) { be.restore->axpby(be.stream, y, x, 0.75f, -1.5f, n); };
       }});
  rows.push_back(
      {"l1_reweight", "n", dims, "", why, "", size, Precision::elementwise, 0, kF * 3 * n, [=](Buffers& b) -> Launch {
         const float *f = b.input(n, 0.0f, 2.0f), *b0 = b.input(n);
         float* out = b.output(n);
         return [=](const Backend& be) { be.restore->l1_reweight(be.stream, f, b0, out, n, 0.5f, 3.0f); };
       }});
  rows.push_back(
      {"dot", "n", dims, "", why, "", size, Precision::f64_sum, 2.0 * n, kF * (2 * n + 2), [=](Buffers& b) -> Launch {
         const float *x = b.input(n), *y = b.input(n, 0.0f, 1.0f);
         float* out = b.output(2);
         return [=](const Backend& be) { be.restore->dot(be.stream, x, y, n, out); };
       }});
  rows.push_back(
      {"sum_log1p", "n", dims, "", why, "", size, Precision::f64_sum, 0, kF * (n + 2), [=](Buffers& b) -> Launch {
         const float* x = b.input(n, 0.0f, 3.0f);
         float* out = b.output(2);
         return [=](const Backend& be) { be.restore->sum_log1p(be.stream, x, n, 1.0f / 3.0f, out); };
       }});
}

// y = a x + b y with b = 0 over a y of NaN: y must not be read (the BLAS convention).
void axpby_unread_row(std::vector<OpCase>& rows, int64_t n, Size size) {
  rows.push_back({"axpby",
                  "n",
                  {n},
                  "b=0",
                  "y holds NaN and must not be read",
                  "",
                  size,
                  Precision::elementwise,
                  2.0 * n,
                  kF * 2 * n,
                  [=](Buffers& b) -> Launch {
                    float* y = b.output(n);
                    const float* x = b.input(n);
                    return [=](const Backend& be) { be.restore->axpby(be.stream, y, x, 2.0f, 0.0f, n); };
                  }});
}

}  // namespace

std::vector<OpCase> paper_conv_rows(kernels::Precision precision) {
  std::vector<OpCase> rows;
  for (const PaperLayer& l : paper_layers())
    conv_rows(rows, l.kind, 1, l.C, l.H, l.W, l.K, Size::bench, "the paper's layer " + l.name, Passes::all, l.name,
              precision);
  return rows;
}

std::vector<OpCase> op_cases() {
  std::vector<OpCase> rows;
  const Size tiny = Size::tiny, small = Size::small, large = Size::large, bench = Size::bench;
  const std::string split_k = "split-K ranges that cross images (132 SMs)",
                    batch4 = "batch 4: prediction's batch on the GPU",
                    multipass = "more pixels than one pass of the loss kernel (1024 x 256 threads)";
  // conv3x3: tiny and odd (nothing fills a tile), batched, the CUDA tiles' edges, the CPU blocking's edges.
  conv_rows(rows, Conv::k3x3, 1, 3, 7, 9, 5, tiny);
  conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, tiny);
  conv_rows(rows, Conv::k3x3, 1, 16, 34, 35, 17, tiny);
  conv_rows(rows, Conv::k3x3, 1, 3, 40, 37, 70, tiny, "K > 64: the 128-wide tile");
  conv_rows(rows, Conv::k3x3, 1, 70, 12, 10, 130, tiny, "C, K > 64: the 128 tile in backward data, split forward");
  conv_rows(rows, Conv::k3x3, 3, 7, 5, 4, 9, tiny, "rows of 2 px in a batch: a CPU micro-tile spans rows and images");
  conv_rows(rows, Conv::k3x3, 2, 29, 9, 12, 10, tiny, "a reduction of 261: one past a CPU block");
  conv_rows(rows, Conv::k3x3, 3, 4, 20, 20, 8, tiny, split_k);
  conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, tiny, "", Passes::forward_no_bias);
  conv_rows(rows, Conv::k3x3, 1, 128, 66, 66, 128, small);
  conv_rows(rows, Conv::k3x3, 1, 96, 30, 30, 72, small, "28 px rows and a reduction of several CPU blocks");
  conv_rows(rows, Conv::k3x3, 3, 8, 40, 40, 16, small, split_k);
  // conv3x3_relu: the shapes of conv3x3's tiny and small rows, Winograd's and the direct product's on the CPU.
  conv3x3_relu_rows(rows, 1, 3, 7, 9, 5, tiny);
  conv3x3_relu_rows(rows, 2, 5, 13, 11, 7, tiny);
  conv3x3_relu_rows(rows, 1, 16, 34, 35, 17, tiny, "Winograd on the CPU: ragged tiles");
  conv3x3_relu_rows(rows, 1, 70, 12, 10, 130, tiny, "C, K > 64: the 128 tile, split forward");
  conv3x3_relu_rows(rows, 2, 29, 9, 12, 10, tiny, "a reduction of 261: the ReLU after the second CPU block");
  conv3x3_relu_rows(rows, 3, 4, 20, 20, 8, tiny, split_k);
  conv3x3_relu_rows(rows, 2, 5, 13, 11, 7, tiny, "", Passes::forward_no_bias);
  conv3x3_relu_rows(rows, 1, 128, 66, 66, 128, small);
  conv3x3_relu_rows(rows, 1, 96, 30, 30, 72, small, "28 px rows and a reduction of several CPU blocks");
  conv3x3_relu_rows(rows, 3, 8, 40, 40, 16, small, split_k);
  for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {
    conv3x3_relu_rows(rows, 2, 5, 13, 11, 7, tiny, "", Passes::all, p);
    conv3x3_relu_rows(rows, 3, 4, 20, 20, 8, tiny, split_k, Passes::all, p);
    conv3x3_relu_rows(rows, 3, 8, 40, 40, 16, small, split_k, Passes::all, p);
    conv3x3_relu_rows(rows, 1, 64, 570, 570, 64, large, "the widest map", Passes::all, p);
  }
  conv3x3_relu_rows(rows, 1, 64, 570, 570, 64, large, "the paper's layer down.0.conv2: the widest map");
  conv3x3_relu_rows(rows, 1, 1024, 30, 30, 1024, large, "the paper's layer bottom.conv2: the deepest");
  conv3x3_relu_rows(rows, 1, 1, 572, 572, 64, bench, "the paper's layer down.0.conv1: one input channel");
  conv3x3_relu_rows(rows, 1, 128, 198, 198, 128, bench, "the paper's layer up.1.conv2");
  conv3x3_relu_rows(rows, 1, 16, 314, 314, 16, bench, "the base-16 network's down.0.conv2 at tile 316");
  conv3x3_relu_rows(rows, 1, 64, 284, 284, 64, bench, "an earlier CPU benchmark shape");
  conv3x3_relu_rows(rows, 1, 256, 30, 30, 256, bench, "an earlier CPU benchmark shape");
  // conv3x3_relu_concat: crops with odd and even margins, nothing cropped, batches, the direct product's and
  // Winograd's paths on the CPU, the CUDA tiles' edges, a reduction that crosses from the skip to up inside a tile.
  conv3x3_relu_concat_rows(rows, 1, 2, 11, 12, 3, 7, 9, 5, tiny, "odd margins, direct on the CPU");
  conv3x3_relu_concat_rows(rows, 2, 3, 13, 11, 2, 13, 11, 4, tiny, "nothing cropped, a batch");
  conv3x3_relu_concat_rows(rows, 1, 8, 40, 41, 8, 34, 35, 17, tiny, "Winograd on the CPU: ragged tiles");
  conv3x3_relu_concat_rows(rows, 2, 35, 16, 16, 35, 12, 10, 130, tiny, "C, K > 64: the 128 tile");
  conv3x3_relu_concat_rows(rows, 3, 4, 24, 24, 4, 20, 20, 8, tiny, split_k);
  conv3x3_relu_concat_rows(rows, 1, 64, 64, 64, 64, 56, 56, 64, small,
                           "the crop of the paper's up.3.conv1, 64 channels");
  conv3x3_relu_concat_rows(rows, 2, 16, 60, 60, 16, 44, 44, 16, small, "a batch of two, Winograd on the CPU");
  for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {
    conv3x3_relu_concat_rows(rows, 2, 3, 13, 11, 2, 13, 11, 4, tiny, "nothing cropped, a batch", p);
    conv3x3_relu_concat_rows(rows, 3, 4, 24, 24, 4, 20, 20, 8, tiny, split_k, p);
    conv3x3_relu_concat_rows(rows, 1, 64, 568, 568, 64, 392, 392, 64, large, "the paper's up.0.conv1", p);
  }
  conv3x3_relu_concat_rows(rows, 1, 64, 568, 568, 64, 392, 392, 64, large, "the paper's up.0.conv1");
  conv3x3_relu_concat_rows(rows, 1, 512, 64, 64, 512, 56, 56, 512, large, "the paper's up.3.conv1: the deepest");
  conv3x3_relu_concat_rows(rows, 1, 128, 280, 280, 128, 200, 200, 128, bench, "the paper's up.1.conv1");
  conv3x3_relu_concat_rows(rows, 1, 16, 312, 312, 16, 136, 136, 16, bench, "the base-16 network's up.0.conv1 at 316");
  // conv1x1 and upconv2x2 likewise.
  conv_rows(rows, Conv::k1x1, 2, 7, 5, 9, 3, tiny);
  conv_rows(rows, Conv::k1x1, 1, 64, 38, 38, 2, tiny, "the head's channels");
  conv_rows(rows, Conv::k1x1, 1, 130, 9, 7, 66, tiny, "C > 128, K > 64: several tiles each way");
  conv_rows(rows, Conv::k1x1, 1, 40, 7, 9, 70, tiny);
  conv_rows(rows, Conv::k1x1, 3, 8, 24, 24, 4, tiny, split_k);
  conv_rows(rows, Conv::k1x1, 2, 7, 5, 9, 3, tiny, "", Passes::forward_no_bias);
  conv_rows(rows, Conv::k1x1, 3, 16, 64, 64, 8, small, split_k);
  conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3, tiny);
  conv_rows(rows, Conv::up2x2, 1, 64, 16, 16, 32, tiny);
  conv_rows(rows, Conv::up2x2, 1, 33, 5, 3, 17, tiny, "odd channel counts");
  conv_rows(rows, Conv::up2x2, 1, 96, 7, 7, 40, tiny);
  conv_rows(rows, Conv::up2x2, 3, 16, 13, 12, 8, tiny, split_k);
  conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3, tiny, "", Passes::forward_no_bias);
  conv_rows(rows, Conv::up2x2, 3, 32, 24, 24, 16, small, split_k);
  // TF32 and BF16 (tensor cores on the GPU; the CPU rounds the operands the same way): odd and batched, a
  // deep layer, the head, the up-convolution, split-K across images, a null bias.
  for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {
    conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, tiny, "", Passes::all, "", p);
    conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, tiny, "", Passes::forward_no_bias, "", p);
    conv_rows(rows, Conv::k3x3, 3, 8, 40, 40, 16, small, split_k, Passes::all, "", p);
    conv_rows(rows, Conv::k3x3, 1, 96, 30, 30, 72, small, "", Passes::all, "", p);
    conv_rows(rows, Conv::k1x1, 1, 40, 7, 9, 70, tiny, "", Passes::all, "", p);
    conv_rows(rows, Conv::k1x1, 2, 64, 20, 20, 2, small, "", Passes::all, "", p);
    conv_rows(rows, Conv::k1x1, 3, 16, 64, 64, 8, small, split_k, Passes::all, "", p);
    conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3, tiny, "", Passes::all, "", p);
    conv_rows(rows, Conv::up2x2, 1, 64, 16, 16, 32, small, "", Passes::all, "", p);
    conv_rows(rows, Conv::up2x2, 3, 32, 24, 24, 16, small, split_k, Passes::all, "", p);
    conv_rows(rows, Conv::k3x3, 1, 64, 570, 570, 64, large, "", Passes::all, "", p);
    conv_rows(rows, Conv::k3x3, 1, 1024, 30, 30, 1024, large, "", Passes::all, "", p);
    conv_rows(rows, Conv::up2x2, 1, 1024, 28, 28, 512, large, "", Passes::all, "", p);
    conv_rows(rows, Conv::k1x1, 1, 64, 388, 388, 2, large, "", Passes::all, "", p);
  }
  // Prediction's default on a GPU with tensor cores: its batch-4 forwards in TF32.
  conv_rows(rows, Conv::k3x3, 4, 64, 570, 570, 64, large, batch4, Passes::forward, "", kernels::Precision::TF32);
  conv_rows(rows, Conv::k3x3, 4, 1024, 30, 30, 1024, large, batch4, Passes::forward, "", kernels::Precision::TF32);
  conv_rows(rows, Conv::up2x2, 4, 1024, 28, 28, 512, large, batch4, Passes::forward, "", kernels::Precision::TF32);
  conv_rows(rows, Conv::k1x1, 4, 64, 388, 388, 2, large, batch4, Passes::forward, "", kernels::Precision::TF32);
  // The paper's network, and the forward passes at prediction's batch.
  paper_rows(rows);
  conv_rows(rows, Conv::k3x3, 4, 1, 572, 572, 64, large, batch4, Passes::forward);
  conv_rows(rows, Conv::k3x3, 4, 64, 570, 570, 64, large, batch4, Passes::forward);
  conv_rows(rows, Conv::k3x3, 4, 1024, 30, 30, 1024, large, batch4, Passes::forward);
  conv_rows(rows, Conv::up2x2, 4, 1024, 28, 28, 512, large, batch4, Passes::forward);
  conv_rows(rows, Conv::up2x2, 4, 128, 196, 196, 64, large, batch4, Passes::forward);
  conv_rows(rows, Conv::k1x1, 4, 64, 388, 388, 2, large, batch4, Passes::forward);
  conv_rows(rows, Conv::k3x3, 1, 64, 66, 66, 64, large, "", Passes::forward_no_bias);
  conv_rows(rows, Conv::up2x2, 1, 128, 52, 52, 64, large, "", Passes::forward_no_bias);
  // Shapes the CPU figures of bench/results were first measured at (a base-16 network, a deep 30 px map).
  conv_rows(rows, Conv::k3x3, 1, 64, 284, 284, 64, bench, "an earlier CPU benchmark shape");
  conv_rows(rows, Conv::k3x3, 1, 1, 188, 188, 16, bench, "an earlier CPU benchmark shape");
  conv_rows(rows, Conv::k3x3, 1, 16, 186, 186, 16, bench, "an earlier CPU benchmark shape");
  conv_rows(rows, Conv::k3x3, 1, 256, 30, 30, 256, bench, "an earlier CPU benchmark shape");

  relu_rows(rows, {1001}, tiny);
  relu_rows(rows, {1, 64, 34, 34}, small);
  relu_rows(rows, {1, 64, 570, 570}, large, "the widest map");
  relu_rows(rows, {4, 64, 570, 570}, large, batch4, false);
  maxpool_rows(rows, 2, 3, 6, 10, tiny);
  maxpool_rows(rows, 1, 5, 36, 36, tiny, "the first of equal maxima wins", true);
  maxpool_rows(rows, 1, 64, 136, 136, small);
  maxpool_rows(rows, 1, 64, 568, 568, large, "the widest pooling");
  maxpool_rows(rows, 4, 64, 568, 568, large, batch4, false, false);
  crop_concat_rows(rows, 2, 3, 12, 14, 5, 8, 9, tiny);
  crop_concat_rows(rows, 1, 4, 17, 16, 3, 17, 16, tiny, "nothing cropped");
  crop_concat_rows(rows, 2, 2, 9, 9, 3, 4, 6, tiny, "odd margins");
  crop_concat_rows(rows, 1, 128, 136, 136, 128, 104, 104, small);
  crop_concat_rows(rows, 1, 64, 568, 568, 64, 392, 392, large, "the last skip connection");
  crop_concat_rows(rows, 4, 64, 568, 568, 64, 392, 392, large, batch4, false);
  dropout_rows(rows, {1001}, 0.5f, 12345, tiny);
  dropout_rows(rows, {1001}, 0.3f, 3, tiny, "an offset that does not start a Philox block");
  dropout_rows(rows, {1001}, 0.5f, (uint64_t{1} << 34) - 6, tiny, "the Philox block index crosses 2^32");
  dropout_rows(rows, {1001}, 0.5f, 12345, tiny, "the offset's base read when the kernel runs", 12342);
  dropout_rows(rows, {1001}, 0.3f, (uint64_t{1} << 34) - 5, tiny, "a base that moves the block alignment",
               (uint64_t{1} << 34) - 1002);
  dropout_rows(rows, {1024, 28, 28}, 0.5f, 12345, large, "before the bottleneck");
  softmax_rows(rows, 2, 3, 5, 7, true, tiny);
  softmax_rows(rows, 1, 2, 17, 19, false, tiny);
  softmax_rows(rows, 1, 2, 60, 70, true, tiny);
  softmax_rows(rows, 1, 3, 513, 517, false, tiny, multipass);
  softmax_rows(rows, 1, 2, 388, 388, true, large, "the output map");
  softmax_rows(rows, 4, 2, 388, 388, true, large, batch4);
  softmax_rows(rows, 1, 2, 600, 600, true, large, multipass);
  elementwise_rows(rows, 1001, tiny);
  elementwise_rows(rows, 1 << 20, small);
  elementwise_rows(rows, 31030658, large, "every parameter of the paper's network");
  optim_list_rows(rows, {1, 7, 1001, 64, 300}, tiny, "odd sizes, a tensor of one element");
  optim_list_rows(rows, {1, 7, 1001, 64, 300}, tiny, "the step's scalars read when the kernel runs", true);
  optim_list_rows(rows, unet_param_sizes(16), small, "the base-16 network's 46 parameter tensors");
  optim_list_rows(rows, unet_param_sizes(64), large, "the paper network's 46 parameter tensors in one launch");

  stencil_rows(rows, 2, 13, 11, 5, 3, tiny);
  stencil_rows(rows, 1, 7, 5, 25, 25, tiny, "the reflection folds more than once");
  stencil_rows(rows, 1, 31, 29, 13, 13, tiny);
  stencil_rows(rows, 1, 96, 96, 25, 25, small, "the joint phase + DIC stencil on a test image");
  stencil_rows(rows, 1, 1024, 1024, 13, 13, large);
  laplacian_rows(rows, 2, 9, 13, tiny);
  laplacian_rows(rows, 1, 1, 7, tiny, "one row");
  laplacian_rows(rows, 1, 6, 1, tiny, "one column");
  laplacian_rows(rows, 1, 96, 96, small);
  laplacian_rows(rows, 1, 1024, 1024, large);
  nnmu_rows(rows, 1001, tiny, true);
  axpby_unread_row(rows, 1001, tiny);
  nnmu_rows(rows, 1 << 20, small, false);
  nnmu_rows(rows, 1 << 22, large, false, "a 2048 x 2048 image");
  return rows;
}

}  // namespace unet::test
