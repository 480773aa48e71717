// unet/io: every format round-trips, bad files are rejected with messages naming them, labels
// decode, normalisation agrees across bit depths, writes are atomic, the bundled ISBI sample reads.
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "engine/atomic_file.h"
#include "tests/temp_dir.h"
#include "unet/io.h"

namespace fs = std::filesystem;
using namespace unet;
using Catch::Matchers::Contains;
using unet::test::error_of;
using unet::test::TempDir;

namespace {

Image random_image(int c, int h, int w, int maxv, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, maxv);
  Image img(c, h, w);
  for (float& v : img.data) v = static_cast<float>(dist(rng));
  return img;
}

Image random_float_image(int c, int h, int w, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  Image img(c, h, w);
  for (float& v : img.data) v = dist(rng);
  return img;
}

void require_same(const Image& a, const Image& b) {
  REQUIRE(a.channels == b.channels);
  REQUIRE(a.height == b.height);
  REQUIRE(a.width == b.width);
  REQUIRE(a.data.size() == b.data.size());
  REQUIRE(std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)) == 0);
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A TIFF written directly with libtiff (for layouts our writers do not produce).
struct RawTiffPage {
  RawTiffPage(uint32_t w_, uint32_t h_) : w(w_), h(h_) {}
  uint32_t w, h;
  uint16_t bps = 8, spp = 1, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  uint32_t tile = 0;           // 0: strips; else square tiles of this size (multiple of 16)
  std::vector<uint8_t> bytes;  // whole image in the page's layout (contig or planes), native order
};

void write_raw_tiff(const std::string& path, const std::vector<RawTiffPage>& pages) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  REQUIRE(t != nullptr);
  for (const auto& p : pages) {
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, p.w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, p.h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, p.bps);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, p.spp);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, p.fmt);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, p.planar);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, p.spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
    const int planes = p.planar == PLANARCONFIG_SEPARATE ? p.spp : 1;
    const size_t per_pixel = (p.planar == PLANARCONFIG_SEPARATE ? 1 : p.spp) * (p.bps / 8);
    const size_t row_bytes = p.w * per_pixel;
    const size_t plane_bytes = row_bytes * p.h;
    if (p.tile) {
      TIFFSetField(t, TIFFTAG_TILEWIDTH, p.tile);
      TIFFSetField(t, TIFFTAG_TILELENGTH, p.tile);
      std::vector<uint8_t> tile(static_cast<size_t>(TIFFTileSize(t)));
      for (int s = 0; s < planes; ++s)
        for (uint32_t y0 = 0; y0 < p.h; y0 += p.tile)
          for (uint32_t x0 = 0; x0 < p.w; x0 += p.tile) {
            std::fill(tile.begin(), tile.end(), 0);
            for (uint32_t y = y0; y < std::min(p.h, y0 + p.tile); ++y)
              for (uint32_t x = x0; x < std::min(p.w, x0 + p.tile); ++x)
                std::memcpy(tile.data() + ((y - y0) * p.tile + (x - x0)) * per_pixel,
                            p.bytes.data() + s * plane_bytes + y * row_bytes + x * per_pixel, per_pixel);
            REQUIRE(TIFFWriteTile(t, tile.data(), x0, y0, 0, static_cast<uint16_t>(s)) >= 0);
          }
    } else {
      TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 3u);  // several strips, the last one short
      std::vector<uint8_t> row(row_bytes);
      for (int s = 0; s < planes; ++s)
        for (uint32_t y = 0; y < p.h; ++y) {
          std::memcpy(row.data(), p.bytes.data() + s * plane_bytes + y * row_bytes, row_bytes);
          REQUIRE(TIFFWriteScanline(t, row.data(), y, static_cast<uint16_t>(s)) >= 0);
        }
    }
    REQUIRE(TIFFWriteDirectory(t));
  }
  TIFFClose(t);
}

}  // namespace

TEST_CASE("PNG 8-bit round trip, 1 and 3 channels", "[io]") {
  TempDir tmp;
  for (int c : {1, 3, 4}) {
    const Image img = random_image(c, 17, 23, 255, 100 + c);
    const std::string path = tmp / ("img" + std::to_string(c) + ".png");
    write_png(path, img);
    ImageInfo info;
    const Image back = read_image(path, &info);
    require_same(img, back);
    CHECK(info.bits == 8);
    CHECK_FALSE(info.is_float);
    CHECK(info.pages == 1);
  }
  CHECK(tmp.temp_leftovers().empty());
}

TEST_CASE("PNG writers round and clamp", "[io]") {
  TempDir tmp;
  Image img(1, 1, 5);
  img.data = {-5.0f, 300.0f, 127.6f, NAN, 254.4f};
  write_png(tmp / "c.png", img);
  const Image back = read_image(tmp / "c.png");
  CHECK(back.data == std::vector<float>{0, 255, 128, 0, 254});
  img.data = {-5.0f, 70000.0f, 1000.4f, NAN, 65534.6f};
  write_png16(tmp / "c16.png", img);
  CHECK(read_image(tmp / "c16.png").data == std::vector<float>{0, 65535, 1000, 0, 65535});
}

TEST_CASE("PNG 16-bit round trip", "[io]") {
  TempDir tmp;
  for (int c : {1, 2, 3, 4}) {
    const Image img = random_image(c, 9, 31, 65535, 200 + c);
    const std::string path = tmp / ("img16_" + std::to_string(c) + ".png");
    write_png16(path, img);
    ImageInfo info;
    const Image back = read_image(path, &info);
    require_same(img, back);
    CHECK(info.bits == 16);
  }
}

TEST_CASE("TIFF u8, u16 and float round trip", "[io][tiff]") {
  TempDir tmp;
  SECTION("u8") {
    const Image img = random_image(1, 19, 21, 255, 1);
    write_tiff_u8(tmp / "a.tif", img);
    ImageInfo info;
    require_same(img, read_image(tmp / "a.tif", &info));
    CHECK(info.bits == 8);
    CHECK_FALSE(info.is_float);
  }
  SECTION("u16") {
    const Image img = random_image(1, 19, 21, 65535, 2);
    write_tiff_u16(tmp / "a.tif", img);
    ImageInfo info;
    require_same(img, read_image(tmp / "a.tif", &info));
    CHECK(info.bits == 16);
  }
  SECTION("float, bit-exact including negative and huge values") {
    Image img = random_float_image(1, 19, 21, 3);
    img.data[0] = -0.0f;
    img.data[1] = 1e30f;
    img.data[2] = std::numeric_limits<float>::denorm_min();
    write_tiff_float(tmp / "a.tif", img);
    ImageInfo info;
    require_same(img, read_image(tmp / "a.tif", &info));
    CHECK(info.bits == 32);
    CHECK(info.is_float);
  }
  SECTION("multi-channel float probability map: one page per channel") {
    const Image img = random_float_image(3, 8, 10, 4);
    write_tiff_float(tmp / "p.tif", img);
    ImageInfo info;
    const std::vector<Image> pages = read_stack(tmp / "p.tif", &info);
    REQUIRE(pages.size() == 3);
    CHECK(info.pages == 3);
    for (const Image& p : pages) CHECK(p.channels == 1);
    require_same(img, stack_channels(pages));
    ImageInfo first;
    const Image page0 = read_image(tmp / "p.tif", &first);  // read_image: the first page
    CHECK(first.pages == 3);
    REQUIRE(page0.channels == 1);
    CHECK(std::equal(page0.data.begin(), page0.data.end(), img.data.begin()));
  }
  SECTION("RGB u8 and u16 pages keep their channels as samples") {
    const Image rgb8 = random_image(3, 7, 5, 255, 5);
    write_tiff_stack(tmp / "rgb8.tif", {rgb8}, TiffSample::U8);
    require_same(rgb8, read_image(tmp / "rgb8.tif"));
    const Image rgba16 = random_image(4, 7, 5, 65535, 6);
    write_tiff_stack(tmp / "rgba16.tif", {rgba16}, TiffSample::U16);
    require_same(rgba16, read_image(tmp / "rgba16.tif"));
  }
  CHECK(tmp.temp_leftovers().empty());
}

TEST_CASE("multi-page TIFF stack round trip", "[io][tiff]") {
  TempDir tmp;
  std::vector<Image> pages;
  for (int i = 0; i < 5; ++i) pages.push_back(random_image(1, 32, 24, 255, 10 + i));
  write_tiff_stack(tmp / "stack.tif", pages, TiffSample::U8);
  ImageInfo info;
  const std::vector<Image> back = read_stack(tmp / "stack.tif", &info);
  REQUIRE(back.size() == 5);
  CHECK(info.pages == 5);
  CHECK(info.bits == 8);
  for (int i = 0; i < 5; ++i) require_same(pages[i], back[i]);

  // A single image reads as a stack of one.
  write_png(tmp / "one.png", pages[0]);
  const std::vector<Image> one = read_stack(tmp / "one.png");
  REQUIRE(one.size() == 1);
  require_same(pages[0], one[0]);
}

TEST_CASE("TIFF tiles, separate planes, strips and big-endian files decode", "[io][tiff]") {
  TempDir tmp;
  const uint32_t w = 37, h = 29;
  SECTION("tiled, 16-bit, 2 samples contiguous") {
    RawTiffPage p{w, h};
    p.bps = 16;
    p.spp = 2;
    p.tile = 16;
    std::vector<uint16_t> vals(w * h * 2);
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<uint16_t>(i * 37 % 65536);
    p.bytes.resize(vals.size() * 2);
    std::memcpy(p.bytes.data(), vals.data(), p.bytes.size());
    write_raw_tiff(tmp / "t.tif", {p});
    const Image img = read_image(tmp / "t.tif");
    REQUIRE(img.channels == 2);
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x)
        for (int s = 0; s < 2; ++s) REQUIRE(img.at(s, y, x) == vals[(y * w + x) * 2 + s]);
  }
  SECTION("tiled float, separate planes") {
    RawTiffPage p{w, h};
    p.bps = 32;
    p.spp = 3;
    p.fmt = SAMPLEFORMAT_IEEEFP;
    p.planar = PLANARCONFIG_SEPARATE;
    p.tile = 16;
    const Image ref = random_float_image(3, h, w, 7);
    p.bytes.resize(ref.data.size() * 4);
    std::memcpy(p.bytes.data(), ref.data.data(), p.bytes.size());
    write_raw_tiff(tmp / "t.tif", {p});
    ImageInfo info;
    require_same(ref, read_image(tmp / "t.tif", &info));
    CHECK(info.is_float);
  }
  SECTION("strips, 8-bit RGB, separate planes") {
    RawTiffPage p{w, h};
    p.spp = 3;
    p.planar = PLANARCONFIG_SEPARATE;
    const Image ref = random_image(3, h, w, 255, 8);
    for (float v : ref.data) p.bytes.push_back(static_cast<uint8_t>(v));
    write_raw_tiff(tmp / "s.tif", {p});
    require_same(ref, read_image(tmp / "s.tif"));
  }
  SECTION("big-endian 16-bit file") {
    const Image ref = random_image(1, h, w, 65535, 9);
    TIFF* t = TIFFOpen((tmp / "be.tif").c_str(), "wb");  // 'b': big-endian byte order
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    std::vector<uint16_t> row(w);
    for (uint32_t y = 0; y < h; ++y) {
      for (uint32_t x = 0; x < w; ++x) row[x] = static_cast<uint16_t>(ref.at(0, y, x));
      REQUIRE(TIFFWriteScanline(t, row.data(), y, 0) >= 0);
    }
    TIFFClose(t);
    REQUIRE(read_bytes(tmp / "be.tif").substr(0, 2) == "MM");
    require_same(ref, read_image(tmp / "be.tif"));
  }
}

TEST_CASE("unsupported TIFF sample types are rejected naming the file", "[io][tiff]") {
  TempDir tmp;
  SECTION("1-bit") {
    // written by hand: 16 pixels = 2 bytes per row
    TIFF* t = TIFFOpen((tmp / "bits1.tif").c_str(), "w");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 16u);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 4u);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    uint8_t row[2] = {0xf0, 0x0f};
    for (uint32_t y = 0; y < 4; ++y) REQUIRE(TIFFWriteScanline(t, row, y, 0) >= 0);
    TIFFClose(t);
    const std::string msg = error_of([&] { read_image(tmp / "bits1.tif"); });
    CHECK_THAT(msg, Contains("bits1.tif") && Contains("1 bits per sample"));
  }
  SECTION("64-bit float") {
    RawTiffPage p{4, 4};
    p.bps = 64;
    p.fmt = SAMPLEFORMAT_IEEEFP;
    p.bytes.assign(4 * 4 * 8, 0);
    write_raw_tiff(tmp / "f64.tif", {p});
    const std::string msg = error_of([&] { read_stack(tmp / "f64.tif"); });
    CHECK_THAT(msg, Contains("f64.tif") && Contains("64 bits per sample"));
  }
  SECTION("signed 16-bit") {
    RawTiffPage p{4, 4};
    p.bps = 16;
    p.fmt = SAMPLEFORMAT_INT;
    p.bytes.assign(4 * 4 * 2, 0);
    write_raw_tiff(tmp / "i16.tif", {p});
    CHECK_THAT(error_of([&] { read_image(tmp / "i16.tif"); }), Contains("i16.tif") && Contains("signed"));
  }
}

TEST_CASE("a TIFF stack with a page of another size is rejected naming the page", "[io][tiff]") {
  TempDir tmp;
  std::vector<RawTiffPage> pages;
  for (int i = 0; i < 4; ++i) {
    const uint32_t w = i == 2 ? 20 : 16;
    RawTiffPage p{w, 12};
    p.bytes.assign(w * 12, static_cast<uint8_t>(i));
    pages.push_back(p);
  }
  write_raw_tiff(tmp / "ragged.tif", pages);
  const std::string msg = error_of([&] { read_stack(tmp / "ragged.tif"); });
  CHECK_THAT(msg, Contains("ragged.tif") && Contains("page 2") && Contains("20x12") && Contains("16x12"));
  // read_image only wants the first page and still works.
  CHECK(read_image(tmp / "ragged.tif").width == 16);
}

TEST_CASE("bad image files are rejected with messages naming them", "[io]") {
  TempDir tmp;
  SECTION("truncated PNG") {
    write_png(tmp / "whole.png", random_image(1, 64, 64, 255, 3));
    const std::string bytes = read_bytes(tmp / "whole.png");
    write_bytes(tmp / "half.png", bytes.substr(0, bytes.size() / 2));
    const std::string msg = error_of([&] { read_image(tmp / "half.png"); });
    CHECK_THAT(msg, Contains("half.png") && Contains("PNG"));
  }
  SECTION("truncated TIFF") {
    write_tiff_u16(tmp / "whole.tif", random_image(1, 64, 64, 65535, 3));
    const std::string bytes = read_bytes(tmp / "whole.tif");
    write_bytes(tmp / "half.tif", bytes.substr(0, bytes.size() / 2));
    CHECK_THAT(error_of([&] { read_stack(tmp / "half.tif"); }), Contains("half.tif"));
  }
  SECTION("missing file") {
    const std::string msg = error_of([&] { read_image(tmp / "nope.png"); });
    CHECK_THAT(msg, Contains("nope.png") && Contains("No such file"));
    CHECK_THAT(error_of([&] { read_stack(tmp / "nope.tif"); }), Contains("nope.tif"));
  }
  SECTION("unsupported format") {
    write_bytes(tmp / "notes.txt", "hello, this is not an image\n");
    const std::string msg = error_of([&] { read_image(tmp / "notes.txt"); });
    CHECK_THAT(msg, Contains("notes.txt") && Contains("unsupported"));
  }
  SECTION("empty file") {
    write_bytes(tmp / "empty.png", "");
    CHECK_THAT(error_of([&] { read_image(tmp / "empty.png"); }), Contains("empty.png") && Contains("empty"));
  }
  SECTION("zero-sized image cannot be written") {
    CHECK_THAT(error_of([&] { write_png(tmp / "z.png", Image()); }), Contains("z.png") && Contains("zero size"));
    CHECK_FALSE(fs::exists(tmp / "z.png"));
  }
}

TEST_CASE("npy files: header and data", "[io][npy]") {
  TempDir tmp;
  for (int c : {1, 3}) {
    const Image img = random_float_image(c, 4, 5, 11);
    const std::string path = tmp / "a.npy";
    write_npy(path, img);
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.substr(0, 6) == "\x93NUMPY");
    CHECK(bytes[6] == 1);
    CHECK(bytes[7] == 0);
    const size_t header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    CHECK((10 + header_len) % 64 == 0);
    const std::string header = bytes.substr(10, header_len);
    CHECK(header.back() == '\n');
    CHECK_THAT(header, Contains("'descr': '<f4'") && Contains("'fortran_order': False"));
    CHECK_THAT(header, Contains(c == 1 ? "'shape': (4, 5)" : "'shape': (3, 4, 5)"));
    REQUIRE(bytes.size() == 10 + header_len + img.data.size() * 4);
    CHECK(std::memcmp(bytes.data() + 10 + header_len, img.data.data(), img.data.size() * 4) == 0);
    require_same(img, read_npy(path));
    ImageInfo info;
    require_same(img, read_image(path, &info));
    CHECK(info.is_float);
  }
}

TEST_CASE("label decoding", "[io][labels]") {
  Image raw(1, 2, 3);
  SECTION("0/255 mask -> 0/1 (ISBI: 255 = cell = class 1)") {
    raw.data = {0, 255, 255, 0, 0, 255};
    CHECK(labels_from_image(raw, 2, "m.png").data == std::vector<float>{0, 1, 1, 0, 0, 1});
  }
  SECTION("0/65535 mask -> 0/1") {
    raw.data = {0, 65535, 65535, 0, 0, 65535};
    CHECK(labels_from_image(raw, 2, "m.png").data == std::vector<float>{0, 1, 1, 0, 0, 1});
  }
  SECTION("class indices are kept") {
    raw.data = {0, 1, 1, 0, 0, 1};
    CHECK(labels_from_image(raw, 2, "m.png").data == raw.data);
    raw.data = {0, 1, 2, 3, 2, 1};
    CHECK(labels_from_image(raw, 4, "m.png").data == raw.data);
    raw.data = {0, 0, 0, 0, 0, 0};  // a slice without any cell is still valid
    CHECK(labels_from_image(raw, 2, "m.png").data == raw.data);
  }
  SECTION("{0, 128, 255} is rejected listing 128") {
    raw.data = {0, 128, 255, 255, 128, 0};
    const std::string msg = error_of([&] { labels_from_image(raw, 2, "bad_label.png"); });
    CHECK_THAT(msg, Contains("bad_label.png") && Contains("{0, 128, 255}") && Contains("128 (2 pixels)"));
    CHECK_THAT(msg, Contains("0/255"));
  }
  SECTION("indices out of range are rejected") {
    raw.data = {0, 1, 2, 0, 1, 2};
    CHECK_THAT(error_of([&] { labels_from_image(raw, 2, "l.png"); }), Contains("2 (2 pixels)"));
    raw.data = {0, 255, 0, 255, 0, 255};  // a 0/255 mask only makes sense with two classes
    CHECK_THAT(error_of([&] { labels_from_image(raw, 3, "l.png"); }), Contains("255 (3 pixels)"));
    raw.data = {0, 0.5f, 1, 0, 1, 0};
    CHECK_THAT(error_of([&] { labels_from_image(raw, 2, "l.png"); }), Contains("0.5 (1 pixel)"));
    raw.data = {0, NAN, 1, 0, 1, 0};
    CHECK_THAT(error_of([&] { labels_from_image(raw, 2, "l.png"); }), Contains("non-finite"));
  }
  SECTION("many bad values: at most 5 listed") {
    Image many(1, 1, 10);
    for (int i = 0; i < 10; ++i) many.data[i] = static_cast<float>(10 + i);
    const std::string msg = error_of([&] { labels_from_image(many, 2, "l.png"); });
    CHECK_THAT(msg, Contains("14 (1 pixel)") && Contains("and 5 more"));
    CHECK_THAT(msg, !Contains("15 (1 pixel)"));
  }
  SECTION("gray stored as RGB is accepted, colour is not") {
    Image rgb(3, 1, 2);
    rgb.data = {0, 255, 0, 255, 0, 255};
    CHECK(labels_from_image(rgb, 2, "rgb.png").data == std::vector<float>{0, 1});
    rgb.data = {0, 255, 0, 255, 0, 254};
    CHECK_THAT(error_of([&] { labels_from_image(rgb, 2, "rgb.png"); }), Contains("colour"));
  }
  SECTION("read_label from files") {
    TempDir tmp;
    raw.data = {0, 255, 255, 0, 0, 255};
    write_png(tmp / "l8.png", raw);
    CHECK(read_label(tmp / "l8.png").data == std::vector<float>{0, 1, 1, 0, 0, 1});
    raw.data = {0, 65535, 65535, 0, 0, 65535};
    write_tiff_u16(tmp / "l16.tif", raw);
    CHECK(read_label(tmp / "l16.tif").data == std::vector<float>{0, 1, 1, 0, 0, 1});
    raw.data = {0, 128, 255, 255, 128, 0};
    write_png(tmp / "bad.png", raw);
    CHECK_THAT(error_of([&] { read_label(tmp / "bad.png"); }), Contains("bad.png") && Contains("128"));
    std::vector<Image> stack(3, Image(1, 2, 3, 255.0f));
    stack[1].data[4] = 0;
    write_tiff_stack(tmp / "labels.tif", stack, TiffSample::U8);
    const std::vector<Image> labels = read_label_stack(tmp / "labels.tif");
    REQUIRE(labels.size() == 3);
    CHECK(labels[1].data == std::vector<float>{1, 1, 1, 1, 0, 1});
  }
}

TEST_CASE("8-bit and 16-bit versions of a picture normalise alike", "[io]") {
  TempDir tmp;
  const Image img8 = random_image(1, 16, 16, 255, 21);
  Image img16 = img8;
  for (float& v : img16.data) v *= 257.0f;  // 8 -> 16 bit: v * 65535 / 255
  write_png(tmp / "a8.png", img8);
  write_png16(tmp / "a16.png", img16);
  write_tiff_u16(tmp / "a16.tif", img16);
  Image f = normalise_intensity(img8, 8, false);
  write_tiff_float(tmp / "af.tif", f);
  const Image n8 = read_image_normalised(tmp / "a8.png");
  for (const std::string name : {"a16.png", "a16.tif", "af.tif"}) {
    const Image n = read_image_normalised(tmp / name);
    REQUIRE(n.data.size() == n8.data.size());
    for (size_t i = 0; i < n.data.size(); ++i) {
      REQUIRE(std::abs(n.data[i] - n8.data[i]) <= 1.0f / 255.0f);
      REQUIRE(n.data[i] >= 0.0f);
      REQUIRE(n.data[i] <= 1.0f);
    }
  }
  // Float data passes through unchanged; unknown bit depths are refused.
  Image fl(1, 1, 2);
  fl.data = {-3.0f, 7.5f};
  CHECK(normalise_intensity(fl, 32, true).data == fl.data);
  CHECK_THROWS_AS(normalise_intensity(fl, 12, false), Error);
}

TEST_CASE("writes are atomic: failures leave existing files intact and no temp files", "[io][atomic]") {
  TempDir tmp;
  const std::string target = tmp / "keep.png";
  const Image original = random_image(1, 8, 8, 255, 31);
  write_png(target, original);
  const std::string before = read_bytes(target);

  SECTION("a writer that fails half-way") {
    CHECK_THROWS_AS(atomic_write_stream(
                        target,
                        [](std::FILE* f) {
      std::fputs("partial garbage", f);
      throw Error("simulated failure");
                        }),
                    Error);
    CHECK(read_bytes(target) == before);
  }
  SECTION("an invalid image") {
    CHECK_THROWS_AS(write_png(target, Image(5, 8, 8)), Error);  // 5 channels: not a PNG
    CHECK_THROWS_AS(write_npy(target, Image()), Error);
    CHECK(read_bytes(target) == before);
  }
  SECTION("a directory that does not exist") {
    const std::string path = tmp / "no/such/dir/out.png";
    CHECK_THAT(error_of([&] { write_png(path, original); }), Contains("out.png"));
    CHECK_THAT(error_of([&] { write_tiff_float(tmp / "no/such/dir/out.tif", original); }), Contains("out.tif"));
    CHECK_FALSE(fs::exists(tmp / "no"));
  }
  SECTION("the target is a directory") {
    fs::create_directory(tmp / "adir");
    write_png(tmp / "adir/inside.png", original);
    CHECK_THAT(error_of([&] { write_png(tmp / "adir", original); }), Contains("adir") && Contains("directory"));
    CHECK_THAT(error_of([&] { write_tiff_u8(tmp / "adir", original); }), Contains("adir"));
    CHECK(fs::is_directory(tmp / "adir"));
    CHECK(fs::exists(tmp / "adir/inside.png"));
  }
  SECTION("a successful write replaces the file") {
    const Image other = random_image(1, 8, 8, 255, 32);
    write_png(target, other);
    require_same(other, read_image(target));
  }
  CHECK(tmp.temp_leftovers().empty());
  CHECK(fs::is_regular_file(target));
}

TEST_CASE("overlay PNG tints the chosen class", "[io]") {
  TempDir tmp;
  Image gray(1, 6, 6, 0.5f);
  Image mask(1, 6, 6, 0.0f);
  for (int y = 1; y < 5; ++y)
    for (int x = 1; x < 5; ++x) mask.at(0, y, x) = 1.0f;
  SECTION("region") {
    OverlayOptions opt;
    opt.alpha = 0.5f;
    overlay_png(tmp / "o.png", gray, mask, opt);
    const Image o = read_image(tmp / "o.png");
    REQUIRE(o.channels == 3);
    CHECK(o.at(0, 0, 0) == 128.0f);  // untouched gray (0.5 * 255 = 127.5 -> 128)
    CHECK(o.at(1, 0, 0) == 128.0f);
    CHECK(o.at(0, 2, 2) == 191.0f);  // 0.5 * 127.5 + 0.5 * 255 = 191.25
    CHECK(o.at(1, 2, 2) == 64.0f);   // 0.5 * 127.5 = 63.75
  }
  SECTION("boundary") {
    OverlayOptions opt;
    opt.boundary_only = true;
    opt.r = 0;
    opt.g = 255;
    overlay_png(tmp / "o.png", gray, mask, opt);
    const Image o = read_image(tmp / "o.png");
    CHECK(o.at(1, 1, 1) == 255.0f);  // edge of the square
    CHECK(o.at(0, 1, 1) == 0.0f);
    CHECK(o.at(1, 2, 2) == 128.0f);  // interior untouched
    CHECK(o.at(1, 0, 0) == 128.0f);  // outside untouched
  }
  SECTION("size mismatch") {
    CHECK_THAT(error_of([&] { overlay_png(tmp / "o.png", gray, Image(1, 5, 6)); }), Contains("o.png"));
  }
}

TEST_CASE("bundled ISBI 2012 sample: image and label pair", "[io][data]") {
  const std::string dir = std::string(UNET_TEST_DATA_DIR) + "/isbi";
  ImageInfo info;
  const Image img = read_image(dir + "/image/00.png", &info);
  CHECK(info.bits == 8);
  CHECK(img.channels == 1);
  CHECK(img.height == 512);
  CHECK(img.width == 512);
  const Image label = read_label(dir + "/label/00.png", 2);
  CHECK(label.channels == 1);
  CHECK(label.height == img.height);
  CHECK(label.width == img.width);
  int64_t counts[2] = {0, 0}, other = 0;
  for (float v : label.data) {
    if (v == 0.0f || v == 1.0f) ++counts[static_cast<int>(v)];
    else ++other;
  }
  CHECK(other == 0);
  CHECK(counts[0] > 0);  // membrane
  CHECK(counts[1] > 0);  // cell
  const double membrane = static_cast<double>(counts[0]) / label.data.size();
  CHECK(membrane > 0.05);
  CHECK(membrane < 0.5);  // membrane is the minority class
  const Image n = normalise_intensity(img, info);
  const auto [lo, hi] = std::minmax_element(n.data.begin(), n.data.end());
  CHECK(*lo >= 0.0f);
  CHECK(*hi <= 1.0f);
  CHECK(*hi > *lo);
  const Image test = read_image(dir + "/test/00.png");
  CHECK(test.height == 512);
}

// The full training stack, when the environment variable points at it (not part of the checkout).
TEST_CASE("ISBI 2012 multi-page TIFF stacks when UNET_ISBI2012_DIR is set", "[io][data]") {
  const char* dir = std::getenv("UNET_ISBI2012_DIR");
  if (!dir) {
    WARN("UNET_ISBI2012_DIR not set: skipped");
    return;
  }
  ImageInfo info;
  const std::vector<Image> volume = read_stack(std::string(dir) + "/train-volume.tif", &info);
  REQUIRE(volume.size() >= 2);
  CHECK(info.pages == static_cast<int>(volume.size()));
  CHECK(info.bits == 8);
  CHECK(volume[0].width == 512);
  const std::vector<Image> labels = read_label_stack(std::string(dir) + "/train-labels.tif");
  CHECK(labels.size() == volume.size());
  const std::string png = std::string(dir) + "/train/image/00.png";
  if (fs::exists(png)) require_same(read_image(png), volume[0]);
}
