// One training step as a CUDA graph (engine/graph.h, unet train --cuda-graph on): the same bits as the eager
// steps, no cudaMalloc after the capture, and a step the capture cannot record refused with a clear error.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <vector>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "tests/synthetic_data.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
#include "unet/predict.h"
#include "unet/train.h"

using namespace unet;
namespace fs = std::filesystem;

namespace {

std::vector<float> weights_of(const std::string& checkpoint, const UNetConfig& cfg) {
  Rng rng(1);
  UNet net(cfg, Device::CPU, rng);
  load_checkpoint(checkpoint, net, nullptr);
  std::vector<float> all;
  for (const Var& p : net.parameters()) {
    const std::vector<float> v = p.value().to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace

TEST_CASE("a training step replayed as a CUDA graph gives the eager steps' bits", "[gpu][graph]") {
  const Dataset ds = test::synthetic(2, 48, 40);
  // Dropout, a learning-rate warm-up and Adam's bias corrections: every per-step value a replay must write.
  for (const char* optimizer : {"sgd", "nesterov", "adam"}) {
    for (const int batch : {1, 2}) {
      INFO(optimizer << ", batch " << batch);
      std::vector<float> losses[2], weights[2];
      for (const bool graph : {false, true}) {
        test::TempDir out;
        TrainOptions o;
        o.device = Device::CUDA;
        o.net.base = 8;
        o.net.depth = 3;
        o.net.dropout = 0.5f;
        o.tile = TileSizes::input_for_output(20, 3);
        o.iterations = 7;
        o.lr = 1e-3f;
        o.warmup = 4;
        o.optimizer = optimizer;
        o.batch = batch;
        o.checkpoint_every = 0;
        o.val_every = 0;
        o.out_dir = out.dir.string();
        o.quiet = true;
        o.cuda_graph = graph;
        const TrainReport r = train(ds, Dataset{}, o);
        losses[graph] = r.losses;
        weights[graph] = weights_of((out.dir / "checkpoint.safetensors").string(), o.net);
      }
      REQUIRE(losses[1].size() == 7);
      CHECK(losses[1] == losses[0]);
      REQUIRE(weights[1].size() == weights[0].size());
      CHECK(std::memcmp(weights[1].data(), weights[0].data(), weights[0].size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("a CUDA graph's replays allocate nothing and keep their memory from other tensors", "[gpu][graph]") {
  Tensor a = Tensor::from_vector({1000}, std::vector<float>(1000, 1.0f)).to(Device::CUDA);
  Tensor out = Tensor::zeros({1000}, DType::F32, Device::CUDA);
  Rng rng(3);
  StepGraph g;
  void* inner = nullptr;
  auto step = [&] {
    Tensor t = Tensor::empty({1000}, DType::F32, Device::CUDA);  // from the graph's private pool
    inner = t.raw();
    t.copy_from(a);
    t.add_(a);
    out.add_(t);  // out += 2 a each launch
  };
  g.run(step, &rng, nullptr);
  size_t mallocs = 0;
  for (int i = 0; i < 4; ++i) {
    Tensor other = Tensor::empty({1000}, DType::F32, Device::CUDA);  // same size class, outside the graph
    CHECK(other.raw() != inner);
    other.fill_(-5.0f);
    g.run(step, &rng, nullptr);
    if (i == 0) mallocs = cuda_allocator_stats().device_mallocs;
  }
  CHECK(cuda_allocator_stats().device_mallocs == mallocs);  // replays and `other` reuse what they have
  CHECK(g.captured());
  CHECK(g.nodes() >= 3);
  CHECK(out.to_vector() == std::vector<float>(1000, 10.0f));  // five launches
}

TEST_CASE("a step that reads the device on the host cannot be captured and says so", "[gpu][graph][errors]") {
  Tensor a = Tensor::full({16}, 2.0f, Device::CUDA);
  Rng rng(3);
  StepGraph g;
  auto step = [&] {
    a.add_(a);
    (void)a.to_vector();  // waits for the stream: not allowed inside a capture
  };
  CHECK_THROWS_WITH(g.run(step, &rng, nullptr), Catch::Contains("capturing the step as a CUDA graph failed") &&
                                                    Catch::Contains("--cuda-graph off"));
  CHECK_FALSE(g.captured());
  // The engine's stream works eagerly afterwards.
  a.fill_(3.0f);
  CHECK(a.to_vector() == std::vector<float>(16, 3.0f));
}

TEST_CASE("prediction with a CUDA graph per batch gives the eager bits", "[gpu][graph]") {
  UNetConfig cfg;
  cfg.base = 8;
  cfg.depth = 3;
  Rng rng(5);
  UNet net(cfg, Device::CUDA, rng);
  const Dataset ds = test::synthetic(1, 150, 50);
  for (const bool tta : {false, true}) {
    INFO("tta " << tta);
    PredictOptions po;
    po.tile = TileSizes::input_for_output(36, 3);  // 5 x 5 tiles: full batches of 2 and a last one of 1
    po.batch = 2;
    po.tta = tta;
    const Image eager = predict_probabilities(net, ds.images[0], po);
    po.cuda_graph = true;
    const Image graphed = predict_probabilities(net, ds.images[0], po);
    REQUIRE(graphed.data.size() == eager.data.size());
    CHECK(std::memcmp(graphed.data.data(), eager.data.data(), eager.data.size() * sizeof(float)) == 0);
  }
}
