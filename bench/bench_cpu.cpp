// CPU benchmarks: every timed row of the op table (tests/op_table.h: the paper's 23 convolutions in their three
// passes at the 572x572 tile, the real-size rows of every other kernel, a few earlier benchmark shapes), one
// Google Benchmark each, named as the row: op/layer/CtoK@HxW for the paper's layers (as bench_gpu names them),
// op/sizes[/variant] otherwise. Counters from the row's counts: GFLOP/s (2 per multiply-add) and GB/s (each
// input read once, each output written once); a row whose kernel wrote past an output (its guard) is reported
// as an error. The whole network's forward pass and training step are in
// bench_cpu_network.cpp. The paper's convolutions also in BF16 (".../bf16": AVX-512 BF16 where the CPU has it)
// and on the BF16 reference (".../bf16_reference": FP32 products of rounded operands). Run:
// build/bench/bench_cpu [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "kernels/cpu/bf16_gemm.h"
#include "tests/op_table.h"

namespace {

using unet::test::OpCase;
using unet::test::Prepared;

const std::vector<OpCase>& rows() {
  static const std::vector<OpCase> timed = [] {
    std::vector<OpCase> v;
    for (OpCase& r : unet::test::op_cases())
      if (unet::test::timed(r)) v.push_back(std::move(r));
    // The paper's convolutions in BF16 too (AVX-512 BF16 where the CPU has it, else the reference).
    for (OpCase& r : unet::test::paper_conv_rows(unet::kernels::Precision::BF16)) v.push_back(std::move(r));
    return v;
  }();
  return timed;
}

// Row `index` prepared on the CPU (inputs drawn, outputs poisoned): once, while Google Benchmark calls the
// same row again to settle its iteration count; the previous row's buffers are freed first.
Prepared& prepared(size_t index) {
  static size_t held = rows().size();
  static std::unique_ptr<Prepared> p;
  if (held != index) {
    p.reset();
    p = std::make_unique<Prepared>(unet::test::prepare(rows()[index], unet::test::cpu_backend(), 1));
    held = index;
  }
  return *p;
}

// reference: a BF16 row with the AVX-512 BF16 products switched off (the FP32 products of rounded operands).
void time_row(benchmark::State& st, size_t index, bool reference = false) {
  struct Products {
    bool was;
    explicit Products(bool on) : was(unet::kernels::cpu::detail::set_bf16_dot_products(on)) {}
    ~Products() { unet::kernels::cpu::detail::set_bf16_dot_products(was); }
  } products(!reference);
  Prepared& p = prepared(index);
  for (auto _ : st) {
    p.launch();
    benchmark::ClobberMemory();
  }
  const OpCase& row = rows()[index];
  for (const unet::test::Readback& out : p.read())
    if (out.guard_overwritten) st.SkipWithError("the kernel wrote past an output (its guard is overwritten)");
  if (row.flops > 0)
    st.counters["GFLOP/s"] = benchmark::Counter(row.flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(row.bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

[[maybe_unused]] const bool registered = [] {
  for (size_t i = 0; i < rows().size(); ++i)
    benchmark::RegisterBenchmark(rows()[i].bench_name().c_str(), [i](benchmark::State& st) { time_row(st, i); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  // The BF16 rows again on the reference: what the AVX-512 BF16 products gain.
  for (size_t i = 0; i < rows().size(); ++i)
    if (rows()[i].precision == unet::test::Precision::bf16)
      benchmark::RegisterBenchmark((rows()[i].bench_name() + "_reference").c_str(),
                                   [i](benchmark::State& st) { time_row(st, i, true); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  return true;
}();

}  // namespace
