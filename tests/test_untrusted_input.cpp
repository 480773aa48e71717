// Files from outside are untrusted: a declared size is checked against the file's real length and a
// stated limit before anything is allocated, NaN and inf never get in, and every refusal names the
// file and what is wrong. (Checkpoints: test_train.cpp; command-line options: cli_robustness_test.sh.)
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include "engine/safetensors.h"
#include "tests/temp_dir.h"
#include "unet/io.h"

using namespace unet;
using Catch::Matchers::Contains;
using unet::test::error_of;
using unet::test::TempDir;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void put16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put32be(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A little-endian baseline TIFF of one uncompressed 8-bit strip whose header declares width x height
// but whose file holds only `data_bytes` bytes of pixels.
std::string tiff_declaring(uint32_t width, uint32_t height, uint32_t data_bytes) {
  struct Tag {
    uint16_t tag, type;
    uint32_t count, value;
  };
  const uint32_t ifd = 8, entries = 8, data = ifd + 2 + entries * 12 + 4;
  const Tag tags[entries] = {{256, 4, 1, width}, {257, 4, 1, height}, {258, 3, 1, 8},      {259, 3, 1, 1},
                             {262, 3, 1, 1},     {273, 4, 1, data},   {278, 4, 1, height}, {279, 4, 1, width * height}};
  std::string s = "II";
  put16(s, 42);
  put32(s, ifd);
  put16(s, entries);
  for (const Tag& t : tags) {
    put16(s, t.tag);
    put16(s, t.type);
    put32(s, t.count);
    put32(s, t.value);
  }
  put32(s, 0);
  s.append(data_bytes, '\x40');
  return s;
}

// The first 33 bytes of a PNG whose IHDR declares width x height 8-bit gray (no image data follows).
std::string png_header_declaring(uint32_t width, uint32_t height) {
  std::string s("\x89PNG\r\n\x1a\n", 8);
  put32be(s, 13);
  s += "IHDR";
  put32be(s, width);
  put32be(s, height);
  s += std::string("\x08\x00\x00\x00\x00", 5);
  put32be(s, 0);  // CRC (never reached)
  return s;
}

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("a tiny TIFF declaring a huge image is refused before allocating, naming the size", "[io][untrusted]") {
  TempDir tmp;
  const std::string path = tmp / "huge.tif";
  write_bytes(path, tiff_declaring(1048576, 2048, 16));  // 2 GiB declared, 16 bytes present
  std::string err;
  // Refused from the header alone: no 2 GiB buffer is allocated and zeroed first.
  const double s = seconds_of([&] { err = error_of([&] { read_stack_raw(path); }); });
  CHECK_THAT(err, Contains("huge.tif") && Contains("2147483648 bytes") && Contains("16 bytes"));
  CHECK(s < 0.5);
  // Past the stated limit of 2^32 samples the size alone is refused.
  write_bytes(path, tiff_declaring(1048576, 1048576, 16));
  CHECK_THAT(error_of([&] { read_image_raw(path); }),
             Contains("huge.tif") && Contains("1048576 x 1048576") && Contains("limit"));
  // A TIFF whose data is all there still reads.
  write_bytes(path, tiff_declaring(64, 32, 64 * 32));
  CHECK(read_image_raw(path).u8.size() == 64 * 32);
}

TEST_CASE("a PNG or npy header declaring a huge image is refused naming the declared size", "[io][untrusted]") {
  TempDir tmp;
  const std::string png = tmp / "big.png";
  write_bytes(png, png_header_declaring(100000, 100000));
  CHECK_THAT(error_of([&] { read_image_raw(png); }),
             Contains("big.png") && Contains("100000 x 100000") && Contains("limit"));
  write_bytes(png, png_header_declaring(30000, 30000));  // within the limit, but 33 bytes cannot hold it
  CHECK_THAT(error_of([&] { read_image_raw(png); }), Contains("big.png") && Contains("900000000 bytes"));

  // npy: the data length is checked before the array is allocated.
  const std::string npy = tmp / "big.npy";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 60000), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  put16(bytes, static_cast<uint16_t>(header.size()));
  write_bytes(npy, bytes + header + std::string(64, '\0'));
  std::string err;
  const double s = seconds_of([&] { err = error_of([&] { read_npy(npy); }); });
  CHECK_THAT(err, Contains("big.npy") && Contains("truncated") && Contains("14400000000 bytes"));
  CHECK(s < 0.5);
}

TEST_CASE("npy headers that are not what they claim are refused with unet::Error", "[io][npy][untrusted]") {
  TempDir tmp;
  const std::string npy = tmp / "bad.npy";
  auto error_for = [&](const std::string& shape) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
    std::string bytes("\x93NUMPY\x01\x00", 8);
    put16(bytes, static_cast<uint16_t>(header.size()));
    write_bytes(npy, bytes + header + std::string(64, '\0'));
    return error_of([&] { read_npy(npy); });  // anything but unet::Error escapes and fails the test
  };
  CHECK_THAT(error_for(",,2 3( 3)"), Contains("bad.npy") && Contains("not a tuple"));  // found by fuzz_npy
  CHECK_THAT(error_for("(2x, 3)"), Contains("bad shape"));
  CHECK_THAT(error_for("(2147483648, 1)"), Contains("bad shape"));
  CHECK_THAT(error_for("(2, 3, 4, 5)"), Contains("not (H, W) or (C, H, W)"));
  CHECK(error_for("(2, 3)").empty());
}

TEST_CASE("images with NaN or inf samples are refused naming the file and the first pixel", "[io][untrusted]") {
  TempDir tmp;
  Image img(1, 5, 7);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = 0.1f * static_cast<float>(i);
  img.at(0, 3, 4) = std::numeric_limits<float>::quiet_NaN();
  img.at(0, 4, 6) = std::numeric_limits<float>::infinity();
  const std::string tif = tmp / "nan.tif";
  write_tiff_float(tif, img);
  CHECK_THAT(error_of([&] { read_image(tif); }), Contains("nan.tif") && Contains("NaN") && Contains("x=4, y=3"));
  CHECK_THAT(error_of([&] { read_stack(tif); }), Contains("nan.tif") && Contains("x=4, y=3"));
  const std::string npy = tmp / "inf.npy";
  img.at(0, 3, 4) = 0.5f;
  write_npy(npy, img);
  CHECK_THAT(error_of([&] { read_image_normalised(npy); }),
             Contains("inf.npy") && Contains("infinite") && Contains("x=6, y=4"));
  // Finite floats, negative and large ones included, are accepted unchanged.
  img.at(0, 4, 6) = -1e30f;
  write_tiff_float(tif, img);
  CHECK(read_image(tif).at(0, 4, 6) == -1e30f);
}

TEST_CASE("a zero-element tensor in a safetensors file loads as an empty tensor", "[safetensors][untrusted]") {
  TempDir tmp;
  const std::string path = tmp / "z.safetensors";
  save_safetensors(path, {{"w", {2}, {1.0f, 2.0f}}, {"empty", {0}, {}}, {"empty2", {3, 0}, {}}});
  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.at("empty").data.empty());
  CHECK(f.at("empty2").shape == Shape{3, 0});
  CHECK(f.at("w").data == std::vector<float>{1.0f, 2.0f});
}
