// engine/safetensors: bit-exact round trips, metadata, foreign dtypes, and clear rejection of
// every kind of corrupt file.
#include "engine/safetensors.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>

#include "tests/temp_dir.h"
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace unet;
using Catch::Matchers::Contains;
using unet::test::error_of;
using unet::test::TempDir;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text and a data buffer (header NOT padded: readers must cope).
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  // memcmp must not see the null data() of an empty vector, even for 0 bytes.
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("safetensors round trip is bit-exact and keeps order and metadata", "[safetensors]") {
  TempDir tmp;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  std::vector<NamedTensor> tensors;
  tensors.push_back({"enc1.conv1.weight", {8, 1, 3, 3}, {}});
  tensors.push_back({"enc1.conv1.bias", {8}, {}});
  tensors.push_back({"a_scalar", {}, {}});
  tensors.push_back({"empty", {0, 4}, {}});
  tensors.push_back({"zz.last", {2, 3}, {}});
  for (auto& t : tensors) {
    t.data.resize(static_cast<size_t>(shape_numel(t.shape)));
    for (float& v : t.data) v = dist(rng);
  }
  tensors[4].data = {-0.0f,
                     std::numeric_limits<float>::infinity(),
                     std::numeric_limits<float>::denorm_min(),
                     std::numeric_limits<float>::quiet_NaN(),
                     std::numeric_limits<float>::max(),
                     1.0f / 3.0f};
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"epoch", "12"}, {"note", "ünïcode ✓"}};
  const std::string path = tmp / "model.safetensors";
  save_safetensors(path, tensors, meta);

  // The layout on disk.
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  CHECK(n % 8 == 0);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["enc1.conv1.weight"]["dtype"] == "F32");
  CHECK(header["enc1.conv1.weight"]["shape"] == nlohmann::json({8, 1, 3, 3}));
  CHECK(header["enc1.conv1.weight"]["data_offsets"] == nlohmann::json({0, 8 * 9 * 4}));
  CHECK(header["__metadata__"]["epoch"] == "12");
  CHECK(bytes.size() == 8 + n + (72 + 8 + 1 + 0 + 6) * 4);

  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CHECK(f.tensors[i].name == tensors[i].name);  // file order = given order
    CHECK(f.tensors[i].shape == tensors[i].shape);
    CHECK(f.tensors[i].dtype == "F32");
    CHECK(bit_equal(f.tensors[i].data, tensors[i].data));
  }
  CHECK(f.metadata == meta);
  CHECK(f.find("enc1.conv1.bias") == &f.tensors[1]);
  CHECK(f.find("nope") == nullptr);
  CHECK_THAT(error_of([&] { f.at("nope"); }), Contains("nope"));

  // Without metadata: no "__metadata__" key, an empty map back.
  save_safetensors(tmp / "plain.safetensors", {tensors[1]});
  CHECK(load_safetensors(tmp / "plain.safetensors").metadata.empty());
}

TEST_CASE("safetensors loads tensors in data-offset order whatever the JSON order", "[safetensors]") {
  TempDir tmp;
  const std::string header = R"({"second":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                             R"("first":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  write_bytes(tmp / "o.safetensors", make_file(header, raw(std::vector<float>{1.5f, 2.5f})));
  const SafetensorsFile f = load_safetensors(tmp / "o.safetensors");
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].name == "first");
  CHECK(f.tensors[0].data == std::vector<float>{1.5f});
  CHECK(f.tensors[1].name == "second");
  CHECK(f.tensors[1].data == std::vector<float>{2.5f});
}

TEST_CASE("safetensors converts F64, F16, BF16 and integer tensors to float", "[safetensors]") {
  TempDir tmp;
  const std::vector<double> f64 = {3.25, -1e-3, 1e10};
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, 0x8000};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC0A0};
  const std::vector<int64_t> i64 = {-7, 123456};
  const std::vector<uint8_t> boolean = {0, 1, 1};
  std::string data = raw(f64) + raw(f16) + raw(bf16) + raw(i64) + raw(boolean);
  size_t o = 0;
  auto entry = [&](const char* name, const char* dtype, size_t count, size_t item) {
    std::string e = std::string("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + std::to_string(count) +
                    "],\"data_offsets\":[" + std::to_string(o) + "," + std::to_string(o + count * item) + "]}";
    o += count * item;
    return e;
  };
  std::string header = "{" + entry("d", "F64", 3, 8);  // one call per statement: offsets accumulate in order
  header += "," + entry("h", "F16", 7, 2);
  header += "," + entry("b", "BF16", 2, 2);
  header += "," + entry("i", "I64", 2, 8);
  header += "," + entry("flag", "BOOL", 3, 1) + "}";
  write_bytes(tmp / "m.safetensors", make_file(header, data));
  const SafetensorsFile f = load_safetensors(tmp / "m.safetensors");
  CHECK(f.at("d").dtype == "F64");
  CHECK(f.at("d").data == std::vector<float>{3.25f, static_cast<float>(-1e-3), 1e10f});
  const auto& h = f.at("h").data;
  CHECK(h[0] == 1.0f);
  CHECK(h[1] == -2.0f);
  CHECK(h[2] == 0.5f);
  CHECK(h[3] == 65504.0f);
  CHECK(h[4] == std::ldexp(1.0f, -24));
  CHECK(std::isinf(h[5]));
  CHECK(std::signbit(h[6]));
  CHECK(f.at("b").data == std::vector<float>{1.0f, -5.0f});
  CHECK(f.at("i").data == std::vector<float>{-7.0f, 123456.0f});
  CHECK(f.at("flag").data == std::vector<float>{0.0f, 1.0f, 1.0f});
}

TEST_CASE("corrupt safetensors files are rejected with clear messages", "[safetensors]") {
  TempDir tmp;
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string good_data = raw(std::vector<float>{1, 2, 3, 4});
  const std::string path = tmp / "bad.safetensors";
  auto load_error = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return error_of([&] { load_safetensors(path); });
  };
  // Sanity: the good file loads.
  CHECK(load_error(make_file(good_header, good_data)).empty());

  SECTION("missing file") {
    CHECK_THAT(error_of([&] { load_safetensors(tmp / "missing.safetensors"); }),
               Contains("missing.safetensors") && Contains("No such file"));
  }
  SECTION("shorter than 8 bytes") { CHECK_THAT(load_error("abc"), Contains("bad.safetensors") && Contains("8-byte")); }
  SECTION("header length larger than the file") {
    std::string bytes = make_file(good_header, good_data);
    bytes[2] = 0x10;  // N += 1 MiB
    CHECK_THAT(load_error(bytes), Contains("bad.safetensors") && Contains("larger than"));
  }
  SECTION("bad JSON") {
    CHECK_THAT(load_error(make_file(R"({"w": {"dtype": "F32", )", good_data)),
               Contains("bad.safetensors") && Contains("not valid JSON"));
    CHECK_THAT(load_error(make_file("[1, 2]", good_data)), Contains("not an object"));
  }
  SECTION("offsets not matching the shape") {
    const std::string h = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})";
    CHECK_THAT(load_error(make_file(h, good_data)),
               Contains("bad.safetensors") && Contains("'w'") && Contains("needs 24 bytes") && Contains("16 bytes"));
  }
  SECTION("truncated data") {
    std::string bytes = make_file(good_header, good_data);
    bytes.resize(bytes.size() - 4);
    CHECK_THAT(load_error(bytes), Contains("bad.safetensors") && Contains("truncated"));
  }
  SECTION("a saved file cut short") {
    save_safetensors(path, {{"w", {64}, std::vector<float>(64, 1.0f)}});
    std::string bytes = read_bytes(path);
    bytes.resize(bytes.size() / 2 + 8);
    CHECK_THAT(load_error(bytes), Contains("truncated"));
  }
  SECTION("unknown dtype") {
    const std::string h = R"({"w":{"dtype":"F8_E4M3","shape":[16],"data_offsets":[0,16]}})";
    CHECK_THAT(load_error(make_file(h, good_data)), Contains("unknown") && Contains("F8_E4M3"));
  }
  SECTION("overlapping tensors") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    CHECK_THAT(load_error(make_file(h, good_data)), Contains("overlap"));
  }
  SECTION("a hole or trailing bytes") {
    const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    CHECK_THAT(load_error(make_file(h, good_data)), Contains("hole"));
    const std::string h2 = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
    CHECK_THAT(load_error(make_file(h2, good_data)), Contains("cover only 12"));
  }
  SECTION("malformed entries") {
    CHECK_THAT(load_error(make_file(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", good_data)), Contains("dtype"));
    CHECK_THAT(load_error(make_file(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", good_data)),
               Contains("shape"));
    CHECK_THAT(load_error(make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", good_data)),
               Contains("data_offsets"));
    CHECK_THAT(load_error(make_file(R"({"__metadata__":{"epoch":3}})", "")), Contains("__metadata__"));
  }
}

TEST_CASE("save_safetensors validates its input and writes atomically", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp / "ckpt.safetensors";
  save_safetensors(path, {{"w", {2}, {1.0f, 2.0f}}}, {{"epoch", "1"}});
  const std::string before = read_bytes(path);

  CHECK_THAT(error_of([&] {
               save_safetensors(path, {{"w", {3}, {1.0f, 2.0f}}});
             }),
             Contains("ckpt.safetensors") && Contains("'w'"));
  CHECK_THAT(error_of([&] { save_safetensors(path, {{"w", {1}, {1.0f}}, {"w", {1}, {2.0f}}}); }), Contains("twice"));
  CHECK_THAT(error_of([&] { save_safetensors(path, {{"__metadata__", {1}, {1.0f}}}); }), Contains("reserved"));
  CHECK_THAT(error_of([&] { save_safetensors(path, {{"", {1}, {1.0f}}}); }), Contains("empty name"));
  CHECK(read_bytes(path) == before);

  CHECK_THAT(error_of([&] {
               save_safetensors(tmp / "missing/dir/x.safetensors", {{"w", {1}, {1.0f}}});
             }),
             Contains("x.safetensors"));
  fs::create_directory(tmp / "isdir");
  CHECK_THAT(error_of([&] { save_safetensors(tmp / "isdir", {{"w", {1}, {1.0f}}}); }), Contains("directory"));
  CHECK(fs::is_directory(tmp / "isdir"));
  for (const auto& e : fs::directory_iterator(tmp.dir))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);

  // Overwriting succeeds and replaces the content.
  save_safetensors(path, {{"v", {1}, {7.0f}}});
  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 1);
  CHECK(f.tensors[0].name == "v");
  CHECK(f.metadata.empty());
}
