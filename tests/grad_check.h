// Helpers shared by the op tests: random tensors, float64 copies, and a finite-difference
// gradient check of autograd against a float64 reference forward.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "tests/naive.h"
#include "tests/op_table.h"

namespace unet::test {

inline Tensor rnd(Shape s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return Tensor::from_vector(s, random_values(shape_numel(s), seed, lo, hi));
}
inline naive::V to_d(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return naive::V(v.begin(), v.end());
}
inline std::vector<float> to_f(const naive::V& v) { return std::vector<float>(v.begin(), v.end()); }

// Back-propagates d L / d out = r (L = sum(out * r)) through the tape.
inline void backprop_with(const Var& out, const Tensor& r) {
  out.grad() = r;
  Tape::current().run_backward();
}

// Checks the analytic gradient of every Var in `inputs` against central differences of the
// float64 function L(values) at up to `samples` elements per input. h = 1e-6 in float64 leaves
// only the fp32 rounding of the analytic side: tolerance 1e-4 relative (normalised L2).
inline void check_gradients(const std::string& what, const std::vector<Var>& inputs,
                            const std::function<double(const std::vector<naive::V>&)>& L, int samples = 64,
                            double tol = 1e-4) {
  std::vector<naive::V> vals;
  for (const Var& v : inputs) vals.push_back(to_d(v.value()));
  for (size_t t = 0; t < inputs.size(); ++t) {
    INFO(what << ": input " << t << " " << inputs[t].name() << " " << shape_str(inputs[t].shape()));
    REQUIRE(inputs[t].grad().defined());
    std::vector<float> an = inputs[t].grad().to_vector();
    size_t n = vals[t].size();
    size_t step = n <= static_cast<size_t>(samples) ? 1 : n / samples;
    std::vector<float> fd_s, an_s;
    for (size_t i = (step == 1 ? 0 : step / 2); i < n; i += step) {
      const double h = 1e-6, x0 = vals[t][i];
      vals[t][i] = x0 + h;
      double lp = L(vals);
      vals[t][i] = x0 - h;
      double lm = L(vals);
      vals[t][i] = x0;
      fd_s.push_back(static_cast<float>((lp - lm) / (2 * h)));
      an_s.push_back(an[i]);
    }
    double err = rel_error(an_s, fd_s);
    INFO("finite-difference relative error " << err << " over " << fd_s.size() << " elements");
    CHECK(err < tol);
  }
}

inline double dot(const naive::V& a, const naive::V& r) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * r[i];
  return s;
}

}  // namespace unet::test
