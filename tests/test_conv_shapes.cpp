// The CPU convolutions at the shape classes their blocking has to handle, every direction against
// float64 references written as the formulas read: short rows (an 8 x 32 micro-tile spans several
// output rows), deep layers whose reduction runs over several blocks, odd sizes that fill no tile,
// batches. And the whole op table: bit-identical results for any number of threads.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/backend.h"
#include "kernels/cpu/parallel.h"
#include "tests/grad_check.h"
#include "tests/op_table.h"

using namespace unet;
using namespace unet::test;

namespace {

struct Shape5 {
  int N, C, H, W, K;
};

const kernels::KernelTable& cpu() { return kernels_for(Device::CPU); }

std::vector<float> vec(const naive::V& v) { return std::vector<float>(v.begin(), v.end()); }
std::vector<float> rand_f(int64_t n, uint64_t seed) { return random_values(n, seed); }
naive::V dbl(const std::vector<float>& v) { return naive::V(v.begin(), v.end()); }

constexpr double kTol = 1e-5;  // fp32 against float64, normalised L2 (the op table's conv tolerance)

// conv3x3, all three directions. The references follow kernels/kernels.h's formulas.
void check_conv3x3(Shape5 s) {
  const int N = s.N, C = s.C, H = s.H, W = s.W, K = s.K, Ho = H - 2, Wo = W - 2;
  INFO("conv3x3 N,C,H,W,K = " << N << "," << C << "," << H << "," << W << "," << K);
  std::vector<float> x = rand_f(int64_t{N} * C * H * W, 1), w = rand_f(int64_t{K} * C * 9, 2), b = rand_f(K, 3),
                     dy = rand_f(int64_t{N} * K * Ho * Wo, 4);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(K);
  cpu().conv3x3_forward(nullptr, kernels::Precision::FP32, x.data(), w.data(), b.data(), y.data(), N, C, H, W, K);
  cpu().conv3x3_backward_data(nullptr, kernels::Precision::FP32, dy.data(), w.data(), dx.data(), N, C, H, W, K);
  cpu().conv3x3_backward_weight(nullptr, kernels::Precision::FP32, x.data(), dy.data(), dw.data(), db.data(), N, C, H,
                                W, K);
  CHECK(rel_error(y, vec(naive::conv3x3(dbl(x), dbl(w), dbl(b), N, C, H, W, K))) < kTol);
  naive::V rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(K, 0.0);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < Ho; ++i)
        for (int j = 0; j < Wo; ++j) {
          const double g = dy[((static_cast<size_t>(n) * K + k) * Ho + i) * Wo + j];
          rdb[k] += g;
          for (int c = 0; c < C; ++c)
            for (int t = 0; t < 9; ++t) {
              const size_t xi = ((static_cast<size_t>(n) * C + c) * H + i + t / 3) * W + j + t % 3;
              const size_t wi = (static_cast<size_t>(k) * C + c) * 9 + t;
              rdx[xi] += w[wi] * g;  // dx[c, i+di, j+dj] += w * dy[k, i, j]
              rdw[wi] += x[xi] * g;
            }
        }
  CHECK(rel_error(dx, vec(rdx)) < kTol);
  CHECK(rel_error(dw, vec(rdw)) < kTol);
  CHECK(rel_error(db, vec(rdb)) < kTol);
}

void check_conv1x1(Shape5 s) {
  const int N = s.N, C = s.C, K = s.K, P = s.H * s.W;
  INFO("conv1x1 N,C,H,W,K = " << N << "," << C << "," << s.H << "," << s.W << "," << K);
  std::vector<float> x = rand_f(int64_t{N} * C * P, 5), w = rand_f(int64_t{K} * C, 6), b = rand_f(K, 7),
                     dy = rand_f(int64_t{N} * K * P, 8);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(K);
  cpu().conv1x1_forward(nullptr, kernels::Precision::FP32, x.data(), w.data(), b.data(), y.data(), N, C, s.H, s.W, K);
  cpu().conv1x1_backward_data(nullptr, kernels::Precision::FP32, dy.data(), w.data(), dx.data(), N, C, s.H, s.W, K);
  cpu().conv1x1_backward_weight(nullptr, kernels::Precision::FP32, x.data(), dy.data(), dw.data(), db.data(), N, C, s.H,
                                s.W, K);
  CHECK(rel_error(y, vec(naive::conv1x1(dbl(x), dbl(w), dbl(b), N, C, s.H, s.W, K))) < kTol);
  naive::V rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(K, 0.0);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int p = 0; p < P; ++p) {
        const double g = dy[(static_cast<size_t>(n) * K + k) * P + p];
        rdb[k] += g;
        for (int c = 0; c < C; ++c) {
          rdx[(static_cast<size_t>(n) * C + c) * P + p] += w[static_cast<size_t>(k) * C + c] * g;
          rdw[static_cast<size_t>(k) * C + c] += x[(static_cast<size_t>(n) * C + c) * P + p] * g;
        }
      }
  CHECK(rel_error(dx, vec(rdx)) < kTol);
  CHECK(rel_error(dw, vec(rdw)) < kTol);
  CHECK(rel_error(db, vec(rdb)) < kTol);
}

void check_upconv2x2(Shape5 s) {
  const int N = s.N, C = s.C, H = s.H, W = s.W, K = s.K;
  INFO("upconv2x2 N,C,H,W,K = " << N << "," << C << "," << H << "," << W << "," << K);
  std::vector<float> x = rand_f(int64_t{N} * C * H * W, 9), w = rand_f(int64_t{C} * K * 4, 10), b = rand_f(K, 11),
                     dy = rand_f(int64_t{N} * K * 4 * H * W, 12);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(K);
  cpu().upconv2x2_forward(nullptr, kernels::Precision::FP32, x.data(), w.data(), b.data(), y.data(), N, C, H, W, K);
  cpu().upconv2x2_backward_data(nullptr, kernels::Precision::FP32, dy.data(), w.data(), dx.data(), N, C, H, W, K);
  cpu().upconv2x2_backward_weight(nullptr, kernels::Precision::FP32, x.data(), dy.data(), dw.data(), db.data(), N, C, H,
                                  W, K);
  CHECK(rel_error(y, vec(naive::upconv2x2(dbl(x), dbl(w), dbl(b), N, C, H, W, K))) < kTol);
  naive::V rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(K, 0.0);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      for (int yy = 0; yy < 2 * H; ++yy)
        for (int xx = 0; xx < 2 * W; ++xx) {
          const double g = dy[((static_cast<size_t>(n) * K + k) * 2 * H + yy) * 2 * W + xx];
          rdb[k] += g;
          for (int c = 0; c < C; ++c) {
            const size_t xi = ((static_cast<size_t>(n) * C + c) * H + yy / 2) * W + xx / 2;
            const size_t wi = ((static_cast<size_t>(c) * K + k) * 2 + yy % 2) * 2 + xx % 2;
            rdx[xi] += w[wi] * g;
            rdw[wi] += x[xi] * g;
          }
        }
  CHECK(rel_error(dx, vec(rdx)) < kTol);
  CHECK(rel_error(dw, vec(rdw)) < kTol);
  CHECK(rel_error(db, vec(rdb)) < kTol);
}

}  // namespace

TEST_CASE("conv3x3 at every shape class matches float64 in all three directions", "[conv3x3][shapes]") {
  const Shape5 shapes[] = {
      {1, 160, 30, 30, 136},  // the bottom's shape: 28 px rows, 1440-long reduction (several blocks)
      {1, 29, 12, 12, 8},     // reduction of 261: one past a block
      {2, 13, 11, 37, 21},    // odd: 35 px rows, 21 output channels, a batch
      {3, 7, 5, 4, 9},        // 2 px rows: one micro-tile spans many rows and images' ends
      {1, 3, 6, 150, 5},      // long rows, few channels
      {1, 1, 20, 19, 16},     // one input channel (the first layer)
      {1, 2, 3, 3, 1},        // one output pixel
  };
  for (const Shape5& s : shapes) check_conv3x3(s);
}

TEST_CASE("conv1x1 at every shape class matches float64 in all three directions", "[conv1x1][shapes]") {
  const Shape5 shapes[] = {{1, 70, 9, 13, 19}, {2, 5, 1, 33, 3}, {1, 64, 40, 40, 2}, {3, 1, 2, 2, 1}};
  for (const Shape5& s : shapes) check_conv1x1(s);
}

TEST_CASE("upconv2x2 at every shape class matches float64 in all three directions", "[upconv2x2][shapes]") {
  const Shape5 shapes[] = {{1, 96, 7, 7, 40}, {2, 9, 3, 11, 5}, {1, 3, 15, 16, 70}, {1, 1, 1, 1, 1}};
  for (const Shape5& s : shapes) check_upconv2x2(s);
}

TEST_CASE("op table: CPU results are bit-identical for 1, 2 and 3 threads", "[op_table][threads]") {
  const std::vector<OpCase> rows = op_cases({Size::tiny, Size::small});
  const Backend cpu = cpu_backend();
  auto run = [&](const OpCase& row) {
    Prepared p = prepare(row, cpu, 21);
    p.launch();
    return p.read();
  };
  std::vector<std::vector<Readback>> ref;
  kernels::cpu::set_num_threads(1);
  REQUIRE(kernels::cpu::num_threads() == 1);
  for (const OpCase& row : rows) ref.push_back(run(row));
  for (int threads : {2, 3}) {
    kernels::cpu::set_num_threads(threads);
    REQUIRE(kernels::cpu::num_threads() == threads);
    for (size_t r = 0; r < rows.size(); ++r) {
      INFO(rows[r].op << " " << rows[r].title() << " with " << threads << " threads");
      const std::vector<Readback> out = run(rows[r]);
      REQUIRE(out.size() == ref[r].size());
      for (size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].values == ref[r][i].values);
        CHECK(out[i].guard_overwritten == 0);
      }
    }
  }
  kernels::cpu::set_num_threads(0);
}
