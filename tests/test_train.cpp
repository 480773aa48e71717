// Training, checkpoints and overlap-tile prediction on small synthetic problems (CPU).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/safetensors.h"
#include "tests/grad_check.h"
#include "tests/synthetic_data.h"
#include "tests/temp_dir.h"
#include "unet/checkpoint.h"
#include "unet/predict.h"
#include "unet/train.h"

namespace fs = std::filesystem;
using namespace unet;
using namespace unet::test;
using Catch::Matchers::Contains;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TrainOptions tiny_options(const fs::path& out) {
  TrainOptions o;
  o.net.base = 4;
  o.net.depth = 2;
  o.tile = TileSizes::input_for_output(12, 2);
  o.iterations = 6;
  o.lr = 0.01f;
  o.checkpoint_every = 3;
  o.val_every = 0;
  o.out_dir = out.string();
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("checkpoint: round trip is bit-exact, weights and momentum", "[checkpoint]") {
  TempDir dir_tmp;
  fs::path dir = dir_tmp.dir;
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r1(1), r2(2);
  UNet a(cfg, Device::CPU, r1), b(cfg, Device::CPU, r2);
  SGD oa(a.parameters(), 0.1f), ob(b.parameters(), 0.1f);
  for (size_t i = 0; i < oa.momentum_buffers().size(); ++i)
    oa.momentum_buffers()[i].copy_from(rnd(oa.momentum_buffers()[i].shape(), 100 + i));
  TrainState s;
  s.iteration = 7;
  s.total_iterations = 10;
  s.rng_seed = 5;
  s.rng_offset = 123456789012345ull;
  s.lr = 0.0123f;
  std::string path = (dir / "c.safetensors").string();
  save_checkpoint(path, a, &oa, s);
  TrainState t = load_checkpoint(path, b, &ob);
  CHECK(t.iteration == 7);
  CHECK(t.total_iterations == 10);
  CHECK(t.rng_offset == 123456789012345ull);
  CHECK(t.lr == 0.0123f);
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    Tensor pa = a.parameters()[i].value(), pb = b.parameters()[i].value();
    REQUIRE(std::memcmp(pa.raw(), pb.raw(), pa.nbytes()) == 0);
    Tensor ma = oa.momentum_buffers()[i], mb = ob.momentum_buffers()[i];
    REQUIRE(std::memcmp(ma.raw(), mb.raw(), ma.nbytes()) == 0);
  }
}

TEST_CASE("checkpoint: a wrong architecture or a damaged file is rejected with the reason", "[checkpoint][errors]") {
  TempDir dir_tmp;
  fs::path dir = dir_tmp.dir;
  UNetConfig c3;
  c3.base = 4;
  c3.depth = 2;
  c3.in_channels = 3;
  UNetConfig c1 = c3;
  c1.in_channels = 1;
  Rng r(1);
  UNet n3(c3, Device::CPU, r), n1(c1, Device::CPU, r);
  std::string path = (dir / "c3.safetensors").string();
  save_checkpoint(path, n3, nullptr, TrainState{});
  CHECK_THROWS_WITH(load_checkpoint(path, n1, nullptr), Catch::Contains("in_channels=3") && Catch::Contains(path));
  SGD opt(n3.parameters(), 0.1f);
  CHECK_THROWS_WITH(load_checkpoint(path, n3, &opt), Catch::Contains("no optimizer state"));
  // A checkpoint whose tensor has the wrong shape although the metadata agrees.
  SafetensorsFile f = load_safetensors(path);
  f.tensors[0].shape = {4, 3, 1, 9};
  std::string bad = (dir / "shape.safetensors").string();
  save_safetensors(bad, f.tensors, f.metadata);
  CHECK_THROWS_WITH(load_checkpoint(bad, n3, nullptr),
                    Catch::Contains("down.0.conv1.weight") && Catch::Contains("[4,3,1,9]"));
  // Truncated.
  std::string cut = (dir / "cut.safetensors").string();
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  CHECK_THROWS_WITH(load_checkpoint(cut, n3, nullptr), Catch::Contains(cut));
}

TEST_CASE("train: resume continues the identical loss sequence", "[train][resume]") {
  Dataset ds = synthetic(2, 40, 10);
  TempDir da_tmp, db_tmp;
  fs::path da = da_tmp.dir, db = db_tmp.dir;
  TrainOptions full = tiny_options(da);
  TrainReport ra = train(ds, Dataset{}, full);
  REQUIRE(ra.losses.size() == 6);

  TrainOptions part = tiny_options(db);
  part.stop_at = 3;  // an interrupted run
  TrainReport rb = train(ds, Dataset{}, part);
  REQUIRE(rb.losses.size() == 3);
  TrainOptions cont = tiny_options(db);
  cont.resume = (db / "checkpoint.safetensors").string();
  TrainReport rc = train(ds, Dataset{}, cont);
  REQUIRE(rc.losses.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(rb.losses[i] == ra.losses[i]);
    CHECK(rc.losses[i] == ra.losses[3 + i]);  // bit-identical: same data, augmentation, dropout
  }
  // The finished run does not silently continue; extending it is explicit.
  CHECK_THROWS_WITH(train(ds, Dataset{}, cont), Catch::Contains("finished run") && Catch::Contains("--extend-to"));
  cont.extend_to = 8;
  CHECK(train(ds, Dataset{}, cont).losses.size() == 2);
  CHECK(fs::exists(db / "loss.csv"));
  CHECK(fs::exists(db / "loss.png"));
}

TEST_CASE("train: a diverging run stops with a clear message and keeps its last good checkpoint", "[train][errors]") {
  Dataset ds = synthetic(1, 40, 20);
  TempDir d_tmp;
  fs::path d = d_tmp.dir;
  TrainOptions o = tiny_options(d);
  o.iterations = 200;
  o.checkpoint_every = 1;
  o.lr_step = 3;       // three sane steps, each checkpointed ...
  o.lr_gamma = 1e30f;  // ... then the weights blow up
  const std::string err = error_of([&] { train(ds, Dataset{}, o); });
  CHECK_THAT(err, Contains("diverged") && Contains("last good checkpoint"));
  // "Last good" is good: the checkpoint it names holds no NaN or inf, weights and momentum alike.
  const SafetensorsFile f = load_safetensors((d / "checkpoint.safetensors").string());
  CHECK_THAT(err, Contains("(iteration " + f.metadata.at("iteration") + ")"));
  CHECK(std::stoi(f.metadata.at("iteration")) >= 3);
  for (const NamedTensor& t : f.tensors)
    for (float v : t.data) REQUIRE(std::isfinite(v));
  // Weights that overflow while the loss is still finite: caught before the first checkpoint.
  TempDir e_tmp;
  o = tiny_options(e_tmp.dir);
  o.checkpoint_every = 1;
  o.lr = 3e38f;
  CHECK_THAT(error_of([&] { train(ds, Dataset{}, o); }), Contains("diverged at iteration 1") &&
                                                             Contains("NaN or inf although the loss was finite") &&
                                                             Contains("No checkpoint"));
  CHECK_FALSE(fs::exists(e_tmp.dir / "checkpoint.safetensors"));
}

TEST_CASE("train: losses read back late still name the first diverged iteration", "[train][errors]") {
  // The loss stays on the device until a line, validation or checkpoint needs it. A run that reads it back every
  // step (validation every step, with no validation set) and one that reads it only at the end must stop at the
  // same iteration with the same message, and a run that stops before it has every loss finite.
  Dataset ds = synthetic(1, 40, 20);
  auto run = [&](int64_t iterations, int64_t val_every) {
    TempDir t;
    TrainOptions o = tiny_options(t.dir);
    o.iterations = iterations;
    o.checkpoint_every = 0;
    o.val_every = val_every;
    o.lr_step = 3;  // three sane steps, then the weights blow up
    o.lr_gamma = 1e30f;
    o.optimizer = "adam";  // steps of lr whatever the gradient: the logits overflow
    return error_of([&] { train(ds, Dataset{}, o); });
  };
  const std::string late = run(200, 0), every = run(200, 1);
  REQUIRE_THAT(late, Contains("diverged at iteration ") && Contains("the loss is"));
  CHECK(late == every);
  const int64_t at = std::stoll(late.substr(late.find("iteration ") + 10));
  CHECK(at > 3);
  TempDir t;
  TrainOptions o = tiny_options(t.dir);
  o.iterations = at - 1;
  o.checkpoint_every = 0;
  o.lr_step = 3;
  o.lr_gamma = 1e30f;
  o.optimizer = "adam";
  std::string err;
  TrainReport r;
  try {
    r = train(ds, Dataset{}, o);
  } catch (const std::exception& e) {
    err = e.what();
  }
  CHECK_THAT(err, !Contains("the loss is"));  // the weights may overflow first; the losses never did
  for (float v : r.losses) CHECK(std::isfinite(v));
}

TEST_CASE("checkpoint: NaN weights and bad metadata are refused naming the tensor or field", "[checkpoint][errors]") {
  TempDir dir_tmp;
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r(1);
  UNet net(cfg, Device::CPU, r);
  const std::string path = dir_tmp / "good.safetensors";
  TrainState st;
  st.iteration = 2;
  st.total_iterations = 5;
  save_checkpoint(path, net, nullptr, st);
  const SafetensorsFile good = load_safetensors(path);
  const std::string bad = dir_tmp / "bad.safetensors";
  auto error_with = [&](const std::function<void(SafetensorsFile&)>& edit) {
    SafetensorsFile f = good;
    edit(f);
    save_safetensors(bad, f.tensors, f.metadata);
    return error_of([&] {
      UNetConfig c = read_checkpoint_config(bad);
      UNet n(c, Device::CPU, r);
      load_checkpoint(bad, n, nullptr);
    });
  };
  CHECK(error_with([](SafetensorsFile&) {}).empty());
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.tensors[5].data[3] = std::nanf(""); }),
             Contains("bad.safetensors") && Contains(good.tensors[5].name) && Contains("non-finite"));
  // An architecture the file cannot hold is refused before a network is built from it.
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["depth"] = "40"; }),
             Contains("bad.safetensors") && Contains("depth = 40") && Contains("out of range"));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["base"] = "512"; }),
             Contains("bad.safetensors") && Contains("base=512") && Contains("down.0.conv1.weight"));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["base"] = "4294967304"; }),  // 2^32 + 8: no wrap to 8
             Contains("\"base\" = 4294967304") && Contains("out of range"));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["dropout"] = "half"; }),
             Contains("\"dropout\" = \"half\"") && Contains("not a finite number"));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["iteration"] = "-100"; }),
             Contains("\"iteration\" = -100") && Contains("out of range"));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["rng_offset"] = "-1"; }), Contains("\"rng_offset\""));
  CHECK_THAT(error_with([](SafetensorsFile& f) { f.metadata["lr"] = "1e99999"; }), Contains("\"lr\""));
}

TEST_CASE("train: resuming with changed options is refused unless allowed, naming them", "[train][resume]") {
  Dataset ds = synthetic(2, 40, 10);
  TempDir d_tmp;
  TrainOptions o = tiny_options(d_tmp.dir);
  o.stop_at = 3;
  o.recorded = {{"w0", "10"}};
  train(ds, Dataset{}, o);
  TrainOptions cont = tiny_options(d_tmp.dir);
  cont.resume = d_tmp / "checkpoint.safetensors";
  cont.recorded = {{"w0", "10"}};
  cont.tile = TileSizes::input_for_output(20, 2);
  cont.lr = 0.02f;
  const std::string err = error_of([&] { train(ds, Dataset{}, cont); });
  CHECK_THAT(err, Contains("--tile " + std::to_string(cont.tile) + " (checkpoint: " + std::to_string(o.tile) + ")") &&
                      Contains("--lr 0.0199999996 (checkpoint: 0.00999999978)") && Contains("--allow-changes"));
  cont.recorded["w0"] = "0";
  CHECK_THAT(error_of([&] { train(ds, Dataset{}, cont); }), Contains("--w0 0 (checkpoint: 10)"));
  cont.allow_changes = true;
  CHECK(train(ds, Dataset{}, cont).losses.size() == 3);
}

TEST_CASE("train: an asked precision is recorded with the options a resume compares", "[train][resume]") {
  Dataset ds = synthetic(2, 40, 10);
  TempDir d_tmp;
  TrainOptions o = tiny_options(d_tmp.dir);
  o.stop_at = 1;
  train(ds, Dataset{}, o);
  CHECK(read_checkpoint_state(d_tmp / "checkpoint.safetensors").extra.count("precision") == 0);  // the default
  TempDir d_asked;
  TrainOptions asked = tiny_options(d_asked.dir);
  asked.stop_at = 1;
  asked.precision = kernels::Precision::FP32;
  train(ds, Dataset{}, asked);
  CHECK(read_checkpoint_state(d_asked / "checkpoint.safetensors").extra.at("precision") == "fp32");
}

TEST_CASE("train: a stop request saves a checkpoint that resumes to the same final state", "[train][resume]") {
  Dataset ds = synthetic(2, 40, 10);
  TempDir da, db;
  TrainOptions full = tiny_options(da.dir);
  full.val_every = 2;
  train(ds, synthetic(1, 40, 50), full);

  // Stop after the first iteration, as the first SIGINT does; then resume.
  volatile std::sig_atomic_t sig = SIGINT;
  TrainOptions part = tiny_options(db.dir);
  part.val_every = 2;
  part.stop_signal = &sig;
  TrainReport r = train(ds, synthetic(1, 40, 50), part);
  CHECK(r.interrupted_by == SIGINT);
  CHECK(r.iterations_done == 1);
  CHECK(r.checkpoint == db / "checkpoint.safetensors");
  TrainOptions cont = tiny_options(db.dir);
  cont.val_every = 2;
  cont.resume = r.checkpoint;
  train(ds, synthetic(1, 40, 50), cont);
  for (const char* f : {"checkpoint.safetensors", "loss.csv", "val.csv"}) {
    INFO(f);
    CHECK(read_file(da / f) == read_file(db / f));
  }
}

TEST_CASE("train: temporaries left by a killed run are removed, live ones kept", "[train][atomic]") {
  TempDir d;
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a pid that is certainly not running now
  const std::string dead = d / ("checkpoint.safetensors.tmp." + std::to_string(child) + ".0");
  const std::string spool = d / ("loss.csv.tmp." + std::to_string(child) + ".3.spool");
  const std::string live = d / ("checkpoint.safetensors.tmp." + std::to_string(getppid()) + ".0");
  const std::string other = d / ("notes.txt.tmp." + std::to_string(child) + ".0");
  for (const std::string& f : {dead, spool, live, other}) std::ofstream(f) << "x";
  train(synthetic(1, 40, 10), Dataset{}, tiny_options(d.dir));
  CHECK_FALSE(fs::exists(dead));
  CHECK_FALSE(fs::exists(spool));
  CHECK(fs::exists(live));   // its writer (our parent) may still be writing
  CHECK(fs::exists(other));  // not an output of the run
}

TEST_CASE("train: the loss falls on a learnable synthetic problem", "[train]") {
  WeightMapParams plain;  // unweighted: the loss is then the plain mean cross-entropy
  plain.w0 = 0.0f;
  plain.balance = ClassBalance::kNone;
  Dataset ds = synthetic(2, 48, 30, plain);
  TempDir d_tmp;
  fs::path d = d_tmp.dir;
  TrainOptions o = tiny_options(d);
  o.iterations = 150;
  o.net.dropout = 0.0f;
  o.augment = AugmentParams::none();  // tiles of 52 px: the paper's 10 px deformations would dominate
  o.lr = 0.002f;                      // with the paper's momentum 0.99 (larger rates stall on dead ReLUs here)
  o.momentum = 0.99f;
  o.net.base = 8;
  o.checkpoint_every = 0;
  o.val_every = 50;
  TrainReport r = train(ds, synthetic(1, 48, 40, plain), o);
  CHECK(r.best_iteration > 0);  // the best validated weights are kept beside the last ones
  CHECK(fs::exists(d / "best.safetensors"));
  CHECK(fs::exists(d / "val.csv"));
  auto mean = [&](size_t a, size_t b) {
    double s = 0;
    for (size_t i = a; i < b; ++i) s += r.losses[i];
    return s / static_cast<double>(b - a);
  };
  INFO("first 20 mean " << mean(0, 20) << ", last 20 mean " << mean(130, 150));
  CHECK(mean(130, 150) < 0.6 * mean(0, 20));
}

TEST_CASE("predict: one big tile and many small tiles give the same map", "[predict][tiling]") {
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r(3);
  UNet net(cfg, Device::CPU, r);
  for (auto [h, w] : {std::pair{53, 41}, std::pair{9, 14}}) {  // odd sizes; one smaller than a tile
    Image img(1, h, w);
    img.data = random_values(img.pixels(), 7 + h, 0.0f, 1.0f);
    for (bool tta : {false, true}) {
      INFO(h << "x" << w << (tta ? " with TTA" : ""));
      PredictOptions big, small;
      big.tile = TileSizes::input_for_output(std::max(h, w), 2);
      small.tile = TileSizes::input_for_output(8, 2);
      small.batch = 3;
      big.tta = small.tta = tta;
      Image a = predict_probabilities(net, img, big), b = predict_probabilities(net, img, small);
      REQUIRE(a.channels == 2);
      REQUIRE(a.height == h);
      REQUIRE(a.width == w);
      CHECK(rel_error(b.data, a.data) < 1e-5);
    }
  }
}

TEST_CASE("predict: TTA of a symmetric network input equals the plain prediction on symmetric images",
          "[predict][tta]") {
  // A constant image is invariant under all 8 rotations/flips, so TTA must not change it.
  UNetConfig cfg;
  cfg.base = 4;
  cfg.depth = 2;
  Rng r(4);
  UNet net(cfg, Device::CPU, r);
  Image img(1, 20, 20, 0.5f);
  PredictOptions p, q;
  q.tta = true;
  CHECK(rel_error(predict_probabilities(net, img, q).data, predict_probabilities(net, img, p).data) < 1e-5);
  p.tile = 101;
  CHECK_THROWS_WITH(predict_probabilities(net, img, p), Catch::Contains("nearest valid sizes"));
}

TEST_CASE("predict: an image whose output fits one tile runs one tile", "[predict][tiling]") {
  UNetConfig paper;
  PredictOptions p572;
  p572.tile = 572;
  // 388 x 388 is exactly one 572 tile's output (its step, 384, used to make it 2 x 2 tiles).
  CHECK(tile_grid(paper, p572, 388, 388).count() == 1);
  CHECK(tile_grid(paper, p572, 300, 388).count() == 1);
  const TileGrid g = tile_grid(paper, p572, 389, 388);
  CHECK(g.rows == 2);
  CHECK(g.cols == 1);
  CHECK(g.band_rows(0, 389) == 384);
  CHECK(g.band_rows(1, 389) == 5);
  const TileGrid h = tile_grid(paper, p572, 1000, 1000);  // 1 + ceil((1000 - 388) / 384) = 3
  CHECK(h.rows == 3);
  CHECK(h.band_rows(2, 1000) == 1000 - 2 * 384);
}

TEST_CASE("predict: the automatic tile needs the fewest flops within the memory budget", "[predict][tiling]") {
  UNetConfig paper;
  PredictOptions automatic;
  // 512 x 512: one 700 tile (output 516) costs 1.64x one 572 tile, where 572 tiles would take 2 x 2.
  const TileGrid g = tile_grid(paper, automatic, 512, 512);
  CHECK(g.tile == 700);
  CHECK(g.count() == 1);
  CHECK(forward_flops(paper, 700, 700) < 1.7 * forward_flops(paper, 572, 572));
  // A small image: the smallest tile that covers it.
  CHECK(tile_grid(paper, automatic, 100, 60).tile == TileSizes::input_for_output(100, 4));
  // A big one: tiles no larger than the budget allows, and no other valid tile is cheaper.
  const int H = 4096;
  const TileGrid big = tile_grid(paper, automatic, H, H);
  CHECK(24.0 * paper.base * big.tile * big.tile <= kPredictMemoryBudget);
  const double cost = static_cast<double>(big.count()) * forward_flops(paper, big.tile, big.tile);
  for (int t : {572, 700, 892, 1020}) {
    PredictOptions fixed;
    fixed.tile = t;
    const TileGrid f = tile_grid(paper, fixed, H, H);
    CHECK(cost <= static_cast<double>(f.count()) * forward_flops(paper, t, t));
  }
  // A batch shares the budget.
  automatic.batch = 4;
  CHECK(24.0 * paper.base * 4 * tile_grid(paper, automatic, H, H).tile * tile_grid(paper, automatic, H, H).tile <=
        kPredictMemoryBudget);
}
