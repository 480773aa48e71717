// The op table's rows. Every row: fresh random inputs from a seed (never zeros), outputs poisoned
// with NaN before the kernel runs, all outputs returned on the host.
#include "tests/op_table.h"

#include <cmath>
#include <limits>

#include "engine/backend.h"
#include "kernels/philox.h"
#include "kernels/precision.h"
#include "restore/kernels/kernels.h"
#include "restore/ops.h"

namespace unet::test {

std::vector<float> random_values(int64_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox::uniform(seed, 0x5EED, static_cast<uint64_t>(i));
  return v;
}

double conv_tolerance(kernels::Precision p) {
  return p == kernels::Precision::TF32 ? 1e-3 : p == kernels::Precision::BF16 ? 1e-2 : 1e-5;
}

double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

namespace {

using Outputs = std::vector<std::vector<float>>;

Tensor input(Device d, Shape s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(s, random_values(shape_numel(s), seed, lo, hi)).to(d);
}

Tensor labels(Device d, Shape s, int K, uint64_t seed) {
  std::vector<int32_t> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(philox::word(seed, 0x1AB, i) % K);
  return Tensor::from_vector_i32(s, v).to(d);
}

// An output buffer poisoned with NaN, so a kernel that skips an element cannot pass.
Tensor poisoned(Device d, Shape s) {
  Tensor t = Tensor::empty(std::move(s), DType::F32, d);
  t.fill_(std::numeric_limits<float>::quiet_NaN());
  return t;
}

Outputs host(Device d, std::initializer_list<Tensor> ts) {
  synchronize(d);
  Outputs o;
  for (const Tensor& t : ts) o.push_back(t.to_vector());
  return o;
}

const kernels::KernelTable& table(Device d) { return kernels_for(d); }
const restore::kernels::RestoreKernelTable& restore_table(Device d) { return rops::restore_kernels_for(d); }
kernels::Stream stream(Device d) { return stream_for(d); }

std::string dims(std::initializer_list<int> v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

constexpr double kConvTol = 1e-5;  // fp32, normalised L2 error
constexpr double kExactTol = 1e-6; // elementwise ops: identical math

// conv3x3 / conv1x1 / upconv2x2 share the forward, backward-data, backward-weight trio.
enum class Conv { k3x3, k1x1, up2x2 };

void add_conv_rows(std::vector<OpCase>& rows, Conv kind, int N, int C, int H, int W, int K,
                   kernels::Precision prec = kernels::Precision::FP32) {
  const char* name = kind == Conv::k3x3 ? "conv3x3" : kind == Conv::k1x1 ? "conv1x1" : "upconv2x2";
  Shape xs{N, C, H, W};
  Shape ws = kind == Conv::up2x2 ? Shape{C, K, 2, 2} : kind == Conv::k3x3 ? Shape{K, C, 3, 3} : Shape{K, C, 1, 1};
  Shape ys = kind == Conv::k3x3 ? Shape{N, K, H - 2, W - 2} : kind == Conv::k1x1 ? Shape{N, K, H, W} : Shape{N, K, 2 * H, 2 * W};
  std::string shape = "N,C,H,W,K=" + dims({N, C, H, W, K});
  if (prec != kernels::Precision::FP32) shape += std::string(" ") + kernels::precision_name(prec);
  const double tol = conv_tolerance(prec);
  auto fwd = kind == Conv::k3x3 ? &kernels::KernelTable::conv3x3_forward
           : kind == Conv::k1x1 ? &kernels::KernelTable::conv1x1_forward : &kernels::KernelTable::upconv2x2_forward;
  auto bwd = kind == Conv::k3x3 ? &kernels::KernelTable::conv3x3_backward_data
           : kind == Conv::k1x1 ? &kernels::KernelTable::conv1x1_backward_data : &kernels::KernelTable::upconv2x2_backward_data;
  auto bww = kind == Conv::k3x3 ? &kernels::KernelTable::conv3x3_backward_weight
           : kind == Conv::k1x1 ? &kernels::KernelTable::conv1x1_backward_weight : &kernels::KernelTable::upconv2x2_backward_weight;
  rows.push_back({std::string(name) + "_forward", shape, tol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, xs, seed), w = input(d, ws, seed + 1), b = input(d, {K}, seed + 2), y = poisoned(d, ys);
    (table(d).*fwd)(stream(d), prec, x.f32(), w.f32(), b.f32(), y.f32(), N, C, H, W, K);
    return host(d, {y});
  }});
  rows.push_back({std::string(name) + "_backward_data", shape, tol, [=](Device d, uint64_t seed) {
    Tensor dy = input(d, ys, seed), w = input(d, ws, seed + 1), dx = poisoned(d, xs);
    (table(d).*bwd)(stream(d), prec, dy.f32(), w.f32(), dx.f32(), N, C, H, W, K);
    return host(d, {dx});
  }});
  rows.push_back({std::string(name) + "_backward_weight", shape, tol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, xs, seed), dy = input(d, ys, seed + 1), dw = poisoned(d, ws), db = poisoned(d, {K});
    (table(d).*bww)(stream(d), prec, x.f32(), dy.f32(), dw.f32(), db.f32(), N, C, H, W, K);
    return host(d, {dw, db});
  }});
}

void add_relu_rows(std::vector<OpCase>& rows, Shape s) {
  int64_t n = shape_numel(s);
  rows.push_back({"relu_forward", shape_str(s), kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, s, seed), y = poisoned(d, s);
    table(d).relu_forward(stream(d), x.f32(), y.f32(), n);
    return host(d, {y});
  }});
  rows.push_back({"relu_backward", shape_str(s), kExactTol, [=](Device d, uint64_t seed) {
    Tensor y = input(d, s, seed), dy = input(d, s, seed + 1), dx = poisoned(d, s);
    table(d).relu_backward(stream(d), y.f32(), dy.f32(), dx.f32(), n);
    return host(d, {dx});
  }});
}

void add_maxpool_rows(std::vector<OpCase>& rows, int N, int C, int H, int W) {
  std::string shape = "N,C,H,W=" + dims({N, C, H, W});
  rows.push_back({"maxpool2x2_forward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {N, C, H, W}, seed), y = poisoned(d, {N, C, H / 2, W / 2});
    table(d).maxpool2x2_forward(stream(d), x.f32(), y.f32(), N, C, H, W);
    return host(d, {y});
  }});
  rows.push_back({"maxpool2x2_backward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {N, C, H, W}, seed), dy = input(d, {N, C, H / 2, W / 2}, seed + 1), dx = poisoned(d, {N, C, H, W});
    table(d).maxpool2x2_backward(stream(d), x.f32(), dy.f32(), dx.f32(), N, C, H, W);
    return host(d, {dx});
  }});
}

void add_crop_concat_rows(std::vector<OpCase>& rows, int N, int Cs, int Hs, int Ws, int Cu, int Hu, int Wu) {
  std::string shape = "skip " + dims({N, Cs, Hs, Ws}) + " up " + dims({N, Cu, Hu, Wu});
  rows.push_back({"crop_concat_forward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor s = input(d, {N, Cs, Hs, Ws}, seed), u = input(d, {N, Cu, Hu, Wu}, seed + 1), y = poisoned(d, {N, Cs + Cu, Hu, Wu});
    table(d).crop_concat_forward(stream(d), s.f32(), u.f32(), y.f32(), N, Cs, Hs, Ws, Cu, Hu, Wu);
    return host(d, {y});
  }});
  rows.push_back({"crop_concat_backward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor dy = input(d, {N, Cs + Cu, Hu, Wu}, seed), ds = poisoned(d, {N, Cs, Hs, Ws}), du = poisoned(d, {N, Cu, Hu, Wu});
    table(d).crop_concat_backward(stream(d), dy.f32(), ds.f32(), du.f32(), N, Cs, Hs, Ws, Cu, Hu, Wu);
    return host(d, {ds, du});
  }});
}

void add_dropout_rows(std::vector<OpCase>& rows, int64_t n, float p) {
  std::string shape = "n=" + std::to_string(n) + " p=" + std::to_string(p);
  rows.push_back({"dropout_forward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {n}, seed), y = poisoned(d, {n});
    table(d).dropout_forward(stream(d), x.f32(), y.f32(), n, p, seed, 12345);
    return host(d, {y});
  }});
  rows.push_back({"dropout_backward", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor dy = input(d, {n}, seed), dx = poisoned(d, {n});
    table(d).dropout_backward(stream(d), dy.f32(), dx.f32(), n, p, seed, 999);
    return host(d, {dx});
  }});
}

void add_softmax_rows(std::vector<OpCase>& rows, int N, int K, int H, int W, bool weighted) {
  std::string shape = "N,K,H,W=" + dims({N, K, H, W}) + (weighted ? " weighted" : " unweighted");
  rows.push_back({"softmax_xent", shape, kConvTol, [=](Device d, uint64_t seed) {
    Tensor a = input(d, {N, K, H, W}, seed, -4.0f, 4.0f), l = labels(d, {N, H, W}, K, seed + 1);
    Tensor w = weighted ? input(d, {N, H, W}, seed + 2, 0.5f, 11.0f) : Tensor();
    Tensor loss = poisoned(d, {1}), g = poisoned(d, {N, K, H, W});
    table(d).softmax_xent(stream(d), a.f32(), l.i32(), weighted ? w.f32() : nullptr, loss.f32(), g.f32(), N, K, H, W);
    return host(d, {loss, g});
  }});
  rows.push_back({"softmax_forward", "N,K,H,W=" + dims({N, K, H, W}), kConvTol, [=](Device d, uint64_t seed) {
    Tensor a = input(d, {N, K, H, W}, seed, -4.0f, 4.0f), p = poisoned(d, {N, K, H, W});
    table(d).softmax_forward(stream(d), a.f32(), p.f32(), N, K, H, W);
    return host(d, {p});
  }});
}

void add_elementwise_rows(std::vector<OpCase>& rows, int64_t n) {
  std::string shape = "n=" + std::to_string(n);
  rows.push_back({"sgd_momentum", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor w = input(d, {n}, seed), g = input(d, {n}, seed + 1), v = input(d, {n}, seed + 2);
    table(d).sgd_momentum(stream(d), w.f32(), g.f32(), v.f32(), n, 0.01f, 0.99f, 1e-4f);
    return host(d, {w, v});
  }});
  rows.push_back({"add", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor y = input(d, {n}, seed), x = input(d, {n}, seed + 1);
    table(d).add(stream(d), y.f32(), x.f32(), n);
    return host(d, {y});
  }});
  rows.push_back({"fill", shape, kExactTol, [=](Device d, uint64_t) {
    Tensor y = poisoned(d, {n});
    table(d).fill(stream(d), y.f32(), 0.25f, n);
    return host(d, {y});
  }});
  rows.push_back({"check_finite", shape, 0.0, [=](Device d, uint64_t seed) {
    std::vector<float> v = random_values(n, seed);
    Tensor ok = Tensor::from_vector({n}, v).to(d);
    v[static_cast<size_t>(n / 2)] = std::numeric_limits<float>::infinity();
    Tensor bad = Tensor::from_vector({n}, v).to(d);
    Tensor flags = Tensor::zeros({2}, DType::I32, d);
    table(d).check_finite(stream(d), ok.f32(), n, flags.i32());
    table(d).check_finite(stream(d), bad.f32(), n, flags.i32() + 1);
    synchronize(d);
    Tensor h = flags.to(Device::CPU);
    return Outputs{{static_cast<float>(h.i32()[0]), static_cast<float>(h.i32()[1])}};
  }});
}

// The restoration kernels: stencils with the mirror boundary (odd sizes, a kernel larger than the
// image so the reflection folds more than once, a real joint phase+DIC stencil), the Laplacian, the
// multiplicative update and its helpers, the two reductions.
void add_stencil_rows(std::vector<OpCase>& rows, int N, int H, int W, int kh, int kw) {
  std::string shape = "N,H,W=" + dims({N, H, W}) + " k=" + dims({kh, kw});
  rows.push_back({"stencil2d", shape, kConvTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {N, H, W}, seed), k = input(d, {kh, kw}, seed + 1), y = poisoned(d, {N, H, W});
    restore_table(d).stencil2d(stream(d), x.f32(), k.f32(), y.f32(), N, H, W, kh, kw);
    return host(d, {y});
  }});
  rows.push_back({"stencil2d_adjoint", shape, kConvTol, [=](Device d, uint64_t seed) {
    Tensor y = input(d, {N, H, W}, seed), k = input(d, {kh, kw}, seed + 1), x = poisoned(d, {N, H, W});
    restore_table(d).stencil2d_adjoint(stream(d), y.f32(), k.f32(), x.f32(), N, H, W, kh, kw);
    return host(d, {x});
  }});
}

void add_laplacian_rows(std::vector<OpCase>& rows, int N, int H, int W) {
  rows.push_back({"laplacian8_apply", "N,H,W=" + dims({N, H, W}), kConvTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {N, H, W}, seed), w = input(d, {N, 4, H, W}, seed + 1, 0.0f, 1.0f);
    Tensor deg = poisoned(d, {N, H, W}), adj = poisoned(d, {N, H, W});
    restore_table(d).laplacian8_apply(stream(d), x.f32(), w.f32(), deg.f32(), adj.f32(), N, H, W);
    return host(d, {deg, adj});
  }});
}

void add_nnmu_rows(std::vector<OpCase>& rows, int64_t n) {
  std::string shape = "n=" + std::to_string(n);
  rows.push_back({"nnmu_update", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor f = input(d, {n}, seed, 0.05f, 1.0f), ap = input(d, {n}, seed + 1, 0.1f, 2.0f);
    Tensor an = input(d, {n}, seed + 2, 0.0f, 2.0f), b = input(d, {n}, seed + 3);
    restore_table(d).nnmu_update(stream(d), f.f32(), ap.f32(), an.f32(), b.f32(), n, 1e-12f);
    return host(d, {f});
  }});
  rows.push_back({"axpby", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor y = input(d, {n}, seed), x = input(d, {n}, seed + 1);
    restore_table(d).axpby(stream(d), y.f32(), x.f32(), 0.75f, -1.5f, n);
    return host(d, {y});
  }});
  rows.push_back({"l1_reweight", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor f = input(d, {n}, seed, 0.0f, 2.0f), b0 = input(d, {n}, seed + 1), b = poisoned(d, {n});
    restore_table(d).l1_reweight(stream(d), f.f32(), b0.f32(), b.f32(), n, 0.5f, 3.0f);
    return host(d, {b});
  }});
  rows.push_back({"dot", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {n}, seed), y = input(d, {n}, seed + 1, 0.0f, 1.0f), out = poisoned(d, {2});
    restore_table(d).dot(stream(d), x.f32(), y.f32(), n, out.f32());
    return host(d, {out});
  }});
  rows.push_back({"sum_log1p", shape, kExactTol, [=](Device d, uint64_t seed) {
    Tensor x = input(d, {n}, seed, 0.0f, 3.0f), out = poisoned(d, {2});
    restore_table(d).sum_log1p(stream(d), x.f32(), n, 1.0f / 3.0f, out.f32());
    return host(d, {out});
  }});
}

}  // namespace

std::vector<OpCase> op_cases(bool large) {
  std::vector<OpCase> rows;
  // conv3x3: tiny, odd (nothing fills a tile), batched, a real interior layer, then the big ones.
  add_conv_rows(rows, Conv::k3x3, 1, 3, 7, 9, 5);
  add_conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7);
  add_conv_rows(rows, Conv::k3x3, 1, 16, 34, 35, 17);
  add_conv_rows(rows, Conv::k3x3, 1, 128, 66, 66, 128);
  // The CPU's blocking: deep with 28 px rows (a micro-tile spans rows; the reduction several
  // blocks), rows of 2 px in a batch of 3, one past a reduction block.
  add_conv_rows(rows, Conv::k3x3, 1, 96, 30, 30, 72);
  add_conv_rows(rows, Conv::k3x3, 3, 7, 5, 4, 9);
  add_conv_rows(rows, Conv::k3x3, 2, 29, 9, 12, 10);
  add_conv_rows(rows, Conv::k1x1, 2, 7, 5, 9, 3);
  add_conv_rows(rows, Conv::k1x1, 1, 64, 388, 388, 2);
  add_conv_rows(rows, Conv::k1x1, 1, 40, 7, 9, 70);
  add_conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3);
  add_conv_rows(rows, Conv::up2x2, 1, 64, 16, 16, 32);
  add_conv_rows(rows, Conv::up2x2, 1, 96, 7, 7, 40);
  // TF32 and BF16 (tensor cores on the GPU; the CPU rounds the operands the same way): odd and batched,
  // a deep layer, the head, the up-convolution.
  for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {
    add_conv_rows(rows, Conv::k3x3, 2, 5, 13, 11, 7, p);
    add_conv_rows(rows, Conv::k3x3, 1, 96, 30, 30, 72, p);
    add_conv_rows(rows, Conv::k1x1, 1, 40, 7, 9, 70, p);
    add_conv_rows(rows, Conv::k1x1, 2, 64, 20, 20, 2, p);
    add_conv_rows(rows, Conv::up2x2, 2, 6, 5, 7, 3, p);
    add_conv_rows(rows, Conv::up2x2, 1, 64, 16, 16, 32, p);
  }
  add_relu_rows(rows, {1001});
  add_relu_rows(rows, {1, 64, 34, 34});
  add_maxpool_rows(rows, 2, 3, 6, 10);
  add_maxpool_rows(rows, 1, 64, 136, 136);
  add_crop_concat_rows(rows, 2, 3, 12, 14, 5, 8, 9);
  add_crop_concat_rows(rows, 1, 128, 136, 136, 128, 104, 104);
  add_dropout_rows(rows, 1001, 0.5f);
  add_dropout_rows(rows, 1024 * 28 * 28, 0.5f);
  add_softmax_rows(rows, 2, 3, 5, 7, true);
  add_softmax_rows(rows, 1, 2, 388, 388, true);
  add_softmax_rows(rows, 1, 2, 17, 19, false);
  add_elementwise_rows(rows, 1001);
  add_elementwise_rows(rows, 1 << 20);
  add_stencil_rows(rows, 2, 13, 11, 5, 3);
  add_stencil_rows(rows, 1, 7, 5, 25, 25);    // the reflection folds more than once
  add_stencil_rows(rows, 1, 96, 96, 25, 25);  // the joint phase + DIC stencil on a test image
  add_laplacian_rows(rows, 2, 9, 13);
  add_laplacian_rows(rows, 1, 96, 96);
  add_nnmu_rows(rows, 1001);
  add_nnmu_rows(rows, 1 << 20);
  if (large) {
    // The paper's network: the 572x572 input layer, 64 channels at 570x570, 1024 channels at 30x30.
    add_conv_rows(rows, Conv::k3x3, 1, 1, 572, 572, 64);
    add_conv_rows(rows, Conv::k3x3, 1, 64, 570, 570, 64);
    add_conv_rows(rows, Conv::k3x3, 1, 1024, 30, 30, 1024);
    add_conv_rows(rows, Conv::up2x2, 1, 1024, 28, 28, 512);
    for (kernels::Precision p : {kernels::Precision::TF32, kernels::Precision::BF16}) {
      add_conv_rows(rows, Conv::k3x3, 1, 64, 570, 570, 64, p);
      add_conv_rows(rows, Conv::k3x3, 1, 1024, 30, 30, 1024, p);
      add_conv_rows(rows, Conv::up2x2, 1, 1024, 28, 28, 512, p);
      add_conv_rows(rows, Conv::k1x1, 1, 64, 388, 388, 2, p);
    }
    add_relu_rows(rows, {1, 64, 570, 570});
    add_maxpool_rows(rows, 1, 64, 568, 568);
    add_crop_concat_rows(rows, 1, 64, 568, 568, 64, 392, 392);
    add_stencil_rows(rows, 1, 1024, 1024, 13, 13);
    add_laplacian_rows(rows, 1, 1024, 1024);
  }
  return rows;
}

}  // namespace unet::test
