// The restoration solver on the GPU against the CPU: the same synthetic pair restored on both devices
// (single-modality, joint, and Su et al.'s 4-kernel model) must give the same f and objective curve up
// to float rounding (the kernels themselves are cross-checked row by row in test_crosscheck.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "tests/op_table.h"
#include "restore/restore.h"
#include "restore/synthetic_cells.h"

using namespace unet;
using namespace unet::restore;

TEST_CASE("restoration on the GPU matches the CPU", "[gpu][restore]") {
  SyntheticOptions so;
  so.height = 80;
  so.width = 72;
  so.mitotic = 1;
  SyntheticSample s = make_synthetic(so);
  struct Run {
    Mode mode;
    int kernels;
  };
  for (Run run : {Run{Mode::kPhase, 0}, Run{Mode::kDic, 0}, Run{Mode::kJoint, 0}, Run{Mode::kJoint, 4}}) {
    RestoreOptions o;
    o.mode = run.mode;
    o.su_kernels = run.kernels;
    o.solver.iterations = 60;
    o.solver.device = Device::CPU;
    RestoreResult cpu = restore_pair(s.phase, s.dic, o);
    o.solver.device = Device::CUDA;
    RestoreResult gpu = restore_pair(s.phase, s.dic, o);
    const double ef = test::rel_error(gpu.sol.total.data, cpu.sol.total.data);
    double eo = 0.0;
    for (size_t i = 0; i < cpu.sol.objective.size(); ++i)
      eo = std::max(eo, std::abs(gpu.sol.objective[i] - cpu.sol.objective[i]) / std::abs(cpu.sol.objective[i]));
    std::printf("restore %-5s K=%d: GPU vs CPU f rel_error %.2e, objective max rel diff %.2e, gain %.4f vs %.4f\n",
                mode_name(run.mode), std::max(run.kernels, 1), ef, eo, gpu.sol.dic_gain, cpu.sol.dic_gain);
    INFO(mode_name(run.mode) << " K=" << run.kernels);
    REQUIRE(gpu.sol.objective.size() == cpu.sol.objective.size());
    CHECK(ef < 1e-3);
    CHECK(eo < 1e-4);
  }
}
