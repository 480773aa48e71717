// Every op of the CPU backend: forward against a float64 reference, gradient against finite
// differences, and known answers worked out by hand. The same names as the kernel table.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "tests/grad_check.h"

using namespace unet;
using namespace unet::test;

namespace {

struct ConvShape {
  int N, C, H, W, K;
};
const ConvShape kConvShapes[] = {{1, 1, 5, 5, 1}, {2, 3, 7, 9, 5}, {1, 7, 11, 6, 13}, {1, 16, 20, 21, 9}};

}  // namespace

TEST_CASE("conv3x3: forward matches the float64 reference", "[conv3x3][forward]") {
  for (auto s : kConvShapes) {
    Tensor x = rnd({s.N, s.C, s.H, s.W}, 1), w = rnd({s.K, s.C, 3, 3}, 2), b = rnd({s.K}, 3);
    Var y = ops::conv3x3(Var(x), Var(w), Var(b));
    naive::V ref = naive::conv3x3(to_d(x), to_d(w), to_d(b), s.N, s.C, s.H, s.W, s.K);
    REQUIRE(y.shape() == Shape{s.N, s.K, s.H - 2, s.W - 2});
    // 5e-6: the CPU runs Winograd F(4x4, 3x3) on the 16-channel shape (kernels/cpu/winograd.h).
    CHECK(rel_error(y.value().to_vector(), to_f(ref)) < 5e-6);
  }
}

TEST_CASE("conv3x3: gradients match finite differences", "[conv3x3][grad]") {
  for (auto s : kConvShapes) {
    Var x = Var::parameter(rnd({s.N, s.C, s.H, s.W}, 4), "x"), w = Var::parameter(rnd({s.K, s.C, 3, 3}, 5), "w"),
        b = Var::parameter(rnd({s.K}, 6), "b");
    Var y = ops::conv3x3(x, w, b);
    Tensor r = rnd(y.shape(), 7);
    backprop_with(y, r);
    naive::V rd = to_d(r);
    check_gradients("conv3x3", {x, w, b}, [&](const std::vector<naive::V>& v) {
      return dot(naive::conv3x3(v[0], v[1], v[2], s.N, s.C, s.H, s.W, s.K), rd);
    });
  }
}

TEST_CASE("conv3x3: a delta kernel crops the input", "[conv3x3][known]") {
  // w[k,c] = 1 at the centre tap when k == c: y is x without its 1-pixel frame.
  int C = 2, H = 6, W = 5;
  Tensor x = rnd({1, C, H, W}, 8);
  std::vector<float> w(C * C * 9, 0.0f);
  for (int c = 0; c < C; ++c) w[(c * C + c) * 9 + 4] = 1.0f;
  Var y = ops::conv3x3(Var(x), Var(Tensor::from_vector({C, C, 3, 3}, w)), Var(Tensor::zeros({C})));
  std::vector<float> xv = x.to_vector(), yv = y.value().to_vector();
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < H - 2; ++i)
      for (int j = 0; j < W - 2; ++j) REQUIRE(yv[(c * (H - 2) + i) * (W - 2) + j] == xv[(c * H + i + 1) * W + j + 1]);
}

TEST_CASE("conv3x3: rejects an input smaller than the kernel and a mismatched weight", "[conv3x3][errors]") {
  CHECK_THROWS_WITH(ops::conv3x3(Var(rnd({1, 1, 2, 5}, 1)), Var(rnd({1, 1, 3, 3}, 2)), Var(rnd({1}, 3))),
                    Catch::Contains("smaller than the 3x3 kernel"));
  CHECK_THROWS_WITH(ops::conv3x3(Var(rnd({1, 2, 5, 5}, 1)), Var(rnd({1, 3, 3, 3}, 2)), Var(rnd({1}, 3))),
                    Catch::Contains("does not fit input"));
}

TEST_CASE("conv1x1: forward matches the float64 reference", "[conv1x1][forward]") {
  for (auto s : kConvShapes) {
    Tensor x = rnd({s.N, s.C, s.H, s.W}, 11), w = rnd({s.K, s.C, 1, 1}, 12), b = rnd({s.K}, 13);
    Var y = ops::conv1x1(Var(x), Var(w), Var(b));
    CHECK(rel_error(y.value().to_vector(), to_f(naive::conv1x1(to_d(x), to_d(w), to_d(b), s.N, s.C, s.H, s.W, s.K))) <
          1e-6);
  }
}

TEST_CASE("conv1x1: gradients match finite differences", "[conv1x1][grad]") {
  for (auto s : kConvShapes) {
    Var x = Var::parameter(rnd({s.N, s.C, s.H, s.W}, 14), "x"), w = Var::parameter(rnd({s.K, s.C, 1, 1}, 15), "w"),
        b = Var::parameter(rnd({s.K}, 16), "b");
    Var y = ops::conv1x1(x, w, b);
    Tensor r = rnd(y.shape(), 17);
    backprop_with(y, r);
    naive::V rd = to_d(r);
    check_gradients("conv1x1", {x, w, b}, [&](const std::vector<naive::V>& v) {
      return dot(naive::conv1x1(v[0], v[1], v[2], s.N, s.C, s.H, s.W, s.K), rd);
    });
  }
}

TEST_CASE("relu: forward and gradient", "[relu][forward][grad]") {
  Var x = Var::parameter(rnd({2, 3, 4, 5}, 21), "x");
  Var y = ops::relu(x);
  CHECK(rel_error(y.value().to_vector(), to_f(naive::relu(to_d(x.value())))) == 0.0);
  Tensor r = rnd(y.shape(), 22);
  backprop_with(y, r);
  naive::V rd = to_d(r);
  check_gradients(
      "relu", {x}, [&](const std::vector<naive::V>& v) { return dot(naive::relu(v[0]), rd); }, 1000);
}

TEST_CASE("relu: known values", "[relu][known]") {
  Var y = ops::relu(Var(Tensor::from_vector({4}, {-2.0f, -0.0f, 0.5f, 3.0f})));
  CHECK(y.value().to_vector() == std::vector<float>{0.0f, 0.0f, 0.5f, 3.0f});
}

TEST_CASE("maxpool2x2: forward and gradient", "[maxpool2x2][forward][grad]") {
  int N = 2, C = 3, H = 6, W = 8;
  Var x = Var::parameter(rnd({N, C, H, W}, 31), "x");
  Var y = ops::maxpool2x2(x);
  CHECK(rel_error(y.value().to_vector(), to_f(naive::maxpool2x2(to_d(x.value()), N, C, H, W))) == 0.0);
  Tensor r = rnd(y.shape(), 32);
  backprop_with(y, r);
  naive::V rd = to_d(r);
  check_gradients(
      "maxpool2x2", {x}, [&](const std::vector<naive::V>& v) { return dot(naive::maxpool2x2(v[0], N, C, H, W), rd); },
      1000);
}

TEST_CASE("maxpool2x2: backward routes the gradient to the argmax", "[maxpool2x2][known]") {
  // One 2x4 input, two windows: maxima 9 at (1,0) and 7 at (0,3).
  Var x = Var::parameter(Tensor::from_vector({1, 1, 2, 4}, {1, 2, 3, 7, 9, 4, 5, 6}), "x");
  Var y = ops::maxpool2x2(x);
  CHECK(y.value().to_vector() == std::vector<float>{9, 7});
  backprop_with(y, Tensor::from_vector({1, 1, 1, 2}, {10, 20}));
  CHECK(x.grad().to_vector() == std::vector<float>{0, 0, 0, 20, 10, 0, 0, 0});
}

TEST_CASE("maxpool2x2: an odd size is an error that names the tile rule", "[maxpool2x2][errors]") {
  CHECK_THROWS_WITH(ops::maxpool2x2(Var(rnd({1, 1, 5, 4}, 1))), Catch::Contains("odd height or width"));
}

TEST_CASE("upconv2x2: forward and gradients", "[upconv2x2][forward][grad]") {
  const ConvShape shapes[] = {{1, 1, 1, 1, 1}, {2, 4, 3, 5, 3}, {1, 13, 4, 4, 6}};
  for (auto s : shapes) {
    Var x = Var::parameter(rnd({s.N, s.C, s.H, s.W}, 41), "x"), w = Var::parameter(rnd({s.C, s.K, 2, 2}, 42), "w"),
        b = Var::parameter(rnd({s.K}, 43), "b");
    Var y = ops::upconv2x2(x, w, b);
    REQUIRE(y.shape() == Shape{s.N, s.K, 2 * s.H, 2 * s.W});
    CHECK(rel_error(y.value().to_vector(), to_f(naive::upconv2x2(to_d(x.value()), to_d(w.value()), to_d(b.value()), s.N,
                                                                 s.C, s.H, s.W, s.K))) < 1e-6);
    Tensor r = rnd(y.shape(), 44);
    backprop_with(y, r);
    naive::V rd = to_d(r);
    check_gradients("upconv2x2", {x, w, b}, [&](const std::vector<naive::V>& v) {
      return dot(naive::upconv2x2(v[0], v[1], v[2], s.N, s.C, s.H, s.W, s.K), rd);
    });
  }
}

TEST_CASE("upconv2x2: one pixel becomes the 2x2 kernel", "[upconv2x2][known]") {
  Var y = ops::upconv2x2(Var(Tensor::from_vector({1, 1, 1, 1}, {2.0f})),
                         Var(Tensor::from_vector({1, 1, 2, 2}, {1, 2, 3, 4})), Var(Tensor::from_vector({1}, {0.5f})));
  CHECK(y.value().to_vector() == std::vector<float>{2.5f, 4.5f, 6.5f, 8.5f});
}

TEST_CASE("crop_concat: forward and gradients", "[crop_concat][forward][grad]") {
  int N = 2, Cs = 3, Hs = 9, Ws = 10, Cu = 2, Hu = 5, Wu = 4;
  Var s = Var::parameter(rnd({N, Cs, Hs, Ws}, 51), "skip"), u = Var::parameter(rnd({N, Cu, Hu, Wu}, 52), "up");
  Var y = ops::crop_concat(s, u);
  CHECK(rel_error(y.value().to_vector(),
                  to_f(naive::crop_concat(to_d(s.value()), to_d(u.value()), N, Cs, Hs, Ws, Cu, Hu, Wu))) == 0.0);
  Tensor r = rnd(y.shape(), 53);
  backprop_with(y, r);
  naive::V rd = to_d(r);
  check_gradients(
      "crop_concat", {s, u},
      [&](const std::vector<naive::V>& v) {
    return dot(naive::crop_concat(v[0], v[1], N, Cs, Hs, Ws, Cu, Hu, Wu), rd);
      },
      1000);
}

TEST_CASE("crop_concat: the crop is centred", "[crop_concat][known]") {
  // skip 4x4 holding 0..15, up 2x2: the centre of skip is {5, 6, 9, 10}.
  std::vector<float> sv(16);
  for (int i = 0; i < 16; ++i) sv[i] = static_cast<float>(i);
  Var y = ops::crop_concat(Var(Tensor::from_vector({1, 1, 4, 4}, sv)),
                           Var(Tensor::from_vector({1, 1, 2, 2}, {-1, -2, -3, -4})));
  CHECK(y.value().to_vector() == std::vector<float>{5, 6, 9, 10, -1, -2, -3, -4});
}

TEST_CASE("dropout: inverted scaling, mask from the RNG, gradient through the same mask", "[dropout][known][grad]") {
  const int64_t n = 20000;
  Var x = Var::parameter(rnd({n}, 61, 0.5f, 1.5f), "x");
  Rng rng(1234);
  Var y = ops::dropout(x, 0.5f, rng);
  CHECK(rng.offset() == static_cast<uint64_t>(n));
  std::vector<float> xv = x.value().to_vector(), yv = y.value().to_vector();
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool keep = philox::uniform(1234, 0, i) >= 0.5f;
    REQUIRE(yv[i] == (keep ? xv[i] * 2.0f : 0.0f));
    kept += keep;
  }
  CHECK(std::abs(kept - n / 2) < 4 * std::sqrt(n / 4.0));  // binomial: within 4 sigma
  Tensor r = rnd({n}, 62);
  backprop_with(y, r);
  std::vector<float> g = x.grad().to_vector(), rv = r.to_vector();
  for (int64_t i = 0; i < n; ++i) REQUIRE(g[i] == (yv[i] != 0.0f ? rv[i] * 2.0f : 0.0f));
  // p = 0 is the identity.
  Rng rng0(1);
  CHECK(ops::dropout(Var(x.value()), 0.0f, rng0).value().to_vector() == xv);
}

TEST_CASE("softmax_xent: loss and gradient match float64 finite differences", "[softmax_xent][forward][grad]") {
  int N = 2, K = 3, H = 4, W = 5;
  Var a = Var::parameter(rnd({N, K, H, W}, 71, -3.0f, 3.0f), "logits");
  std::vector<int32_t> l(N * H * W);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(philox::word(72, 0, i) % K);
  Tensor w = rnd({N, H, W}, 73, 0.5f, 10.0f);
  Var loss = ops::softmax_xent(a, Tensor::from_vector_i32({N, H, W}, l), w);
  double ref = naive::softmax_xent(to_d(a.value()), l, to_d(w), N, K, H, W);
  CHECK(std::abs(loss.value().to_vector()[0] - ref) < 1e-5 * std::abs(ref));
  backward(loss);
  naive::V wd = to_d(w);
  check_gradients(
      "softmax_xent", {a}, [&](const std::vector<naive::V>& v) { return naive::softmax_xent(v[0], l, wd, N, K, H, W); },
      1000);
}

TEST_CASE("softmax_xent: uniform logits give log K, weights scale it", "[softmax_xent][known]") {
  for (int K : {2, 3, 7}) {
    Tensor a = Tensor::full({1, K, 3, 3}, 0.25f);
    Tensor l = Tensor::from_vector_i32({1, 3, 3}, std::vector<int32_t>(9, K - 1));
    CHECK(ops::softmax_xent(Var(a), l).value().to_vector()[0] ==
          Approx(std::log(static_cast<double>(K))).epsilon(1e-6));
    CHECK(ops::softmax_xent(Var(a), l, Tensor::full({1, 3, 3}, 2.0f)).value().to_vector()[0] ==
          Approx(2.0 * std::log(static_cast<double>(K))).epsilon(1e-6));
  }
}

TEST_CASE("softmax_xent: stays finite for huge logits", "[softmax_xent][known]") {
  Tensor a = Tensor::from_vector({1, 2, 1, 2}, {1000.0f, -1000.0f, -1000.0f, 1000.0f});
  Tensor l = Tensor::from_vector_i32({1, 1, 2}, {1, 1});
  Var loss = ops::softmax_xent(Var(a), l);
  // pixel 0: label 1 has logit -1000 against 1000: loss 2000; pixel 1: correct, loss 0. Mean 1000.
  CHECK(loss.value().to_vector()[0] == Approx(1000.0f));
}

TEST_CASE("softmax_xent: labels outside 0..K-1 are rejected", "[softmax_xent][errors]") {
  Tensor a = rnd({1, 2, 2, 2}, 1);
  CHECK_THROWS_WITH(ops::softmax_xent(Var(a), Tensor::from_vector_i32({1, 2, 2}, {0, 1, 2, 0})),
                    Catch::Contains("label 2"));
}

TEST_CASE("softmax_forward: probabilities sum to one", "[softmax_forward][known]") {
  Tensor p = ops::softmax(rnd({2, 4, 3, 3}, 81, -5.0f, 5.0f));
  std::vector<float> v = p.to_vector();
  for (int n = 0; n < 2; ++n)
    for (int q = 0; q < 9; ++q) {
      double s = 0.0;
      for (int k = 0; k < 4; ++k) s += v[(n * 4 + k) * 9 + q];
      REQUIRE(s == Approx(1.0).epsilon(1e-6));
    }
}

// The small chain of the issue: conv3x3 -> ReLU -> maxpool -> conv3x3 -> upconv -> crop-concat
// (with the ReLU output as the skip) -> conv1x1 -> weighted loss.
namespace {
struct Chain {
  static constexpr int C0 = 2, H0 = 12, C1 = 3, C2 = 4, C3 = 2, K = 3;
  Var w1, b1, w2, b2, wu, bu, wh, bh;
  Tensor x, labels, weights;
  explicit Chain(uint64_t seed) {
    w1 = Var::parameter(rnd({C1, C0, 3, 3}, seed + 1, -0.5f, 0.5f), "w1");
    b1 = Var::parameter(rnd({C1}, seed + 2, -0.1f, 0.1f), "b1");
    w2 = Var::parameter(rnd({C2, C1, 3, 3}, seed + 3, -0.5f, 0.5f), "w2");
    b2 = Var::parameter(rnd({C2}, seed + 4, -0.1f, 0.1f), "b2");
    wu = Var::parameter(rnd({C2, C3, 2, 2}, seed + 5, -0.5f, 0.5f), "wu");
    bu = Var::parameter(rnd({C3}, seed + 6, -0.1f, 0.1f), "bu");
    wh = Var::parameter(rnd({K, C1 + C3, 1, 1}, seed + 7, -0.5f, 0.5f), "wh");
    bh = Var::parameter(rnd({K}, seed + 8, -0.1f, 0.1f), "bh");
    x = rnd({1, C0, H0, H0}, seed + 9);
    std::vector<int32_t> l(36);
    for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(philox::word(seed + 10, 0, i) % K);
    labels = Tensor::from_vector_i32({1, 6, 6}, l);
    weights = rnd({1, 6, 6}, seed + 11, 0.5f, 3.0f);
  }
  std::vector<Var> params() const { return {w1, b1, w2, b2, wu, bu, wh, bh}; }
  Var loss() const {
    Var h1 = ops::relu(ops::conv3x3(Var(x), w1, b1));            // [1,3,10,10]
    Var h2 = ops::conv3x3(ops::maxpool2x2(h1), w2, b2);          // [1,4,3,3]
    Var u = ops::upconv2x2(h2, wu, bu);                          // [1,2,6,6]
    Var logits = ops::conv1x1(ops::crop_concat(h1, u), wh, bh);  // [1,3,6,6]
    return ops::softmax_xent(logits, labels, weights);
  }
  double loss_f64(const std::vector<naive::V>& p) const {
    naive::V h1 = naive::relu(naive::conv3x3(to_d(x), p[0], p[1], 1, C0, H0, H0, C1));
    naive::V h2 = naive::conv3x3(naive::maxpool2x2(h1, 1, C1, 10, 10), p[2], p[3], 1, C1, 5, 5, C2);
    naive::V u = naive::upconv2x2(h2, p[4], p[5], 1, C2, 3, 3, C3);
    naive::V logits =
        naive::conv1x1(naive::crop_concat(h1, u, 1, C1, 10, 10, C3, 6, 6), p[6], p[7], 1, C1 + C3, 6, 6, K);
    std::vector<int32_t> l(labels.i32(), labels.i32() + labels.numel());
    return naive::softmax_xent(logits, l, to_d(weights), 1, K, 6, 6);
  }
};
}  // namespace

TEST_CASE("chain: gradients of every parameter match float64 finite differences", "[chain][grad]") {
  Chain c(100);
  Var loss = c.loss();
  CHECK(std::abs(loss.value().to_vector()[0] - c.loss_f64([&] {
          std::vector<naive::V> p;
          for (const Var& v : c.params()) p.push_back(to_d(v.value()));
          return p;
        }())) < 1e-5);
  backward(loss);
  check_gradients(
      "chain", c.params(), [&](const std::vector<naive::V>& p) { return c.loss_f64(p); }, 1000);
}

TEST_CASE("chain: 200 SGD steps drive the loss down at least 10x", "[chain][sgd]") {
  Chain c(200);
  SGD opt(c.params(), 0.05f, 0.9f);
  float first = 0.0f, last = 0.0f;
  for (int it = 0; it < 200; ++it) {
    opt.zero_grad();
    Var loss = c.loss();
    float v = loss.value().to_vector()[0];
    if (it == 0) first = v;
    last = v;
    REQUIRE(std::isfinite(v));
    backward(loss);
    opt.step();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < first / 10.0f);
}
