// The streaming writers of unet/io.h (TIFF float pages, PNG, npy): a picture of known size handed over
// in bands of rows, written with about one band in memory, atomic like every writer. See docs/predict.md.
#include "unet/io.h"
#include "unet/io_stream.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/check.h"
#include "unet/io_detail.h"

namespace unet {
namespace {

using namespace io_detail;

// ---- a temporary file that becomes `path` on commit ------------------------------------------------

// For writers that fill a file piece by piece (and out of order): the data goes to tmp() next to
// `path`; commit() (the file closed) fsyncs it and renames it over `path` through
// atomic_write_via_path; destroyed uncommitted, it removes tmp().
class PendingFile {
 public:
  explicit PendingFile(const std::string& path) : path_(path) {
    UNET_CHECK(!path.empty(), "cannot write a file with an empty path");
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot write '", path, "': it is a directory");
    tmp_ = atomic_temp_path(path);
  }
  ~PendingFile() {
    if (!committed_) (void)std::remove(tmp_.c_str());
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  const std::string& path() const { return path_; }
  const std::string& tmp() const { return tmp_; }
  void commit() {
    atomic_write_via_path(path_, [&](const std::string& final_tmp) {
      if (std::rename(tmp_.c_str(), final_tmp.c_str()) != 0)
        UNET_FAIL("cannot write '", path_, "': cannot move temporary file '", tmp_, "': ", std::strerror(errno));
    });
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_for_writing(const std::string& tmp, const std::string& path, const char* mode = "wb") {
  FilePtr f(std::fopen(tmp.c_str(), mode));
  if (!f) UNET_FAIL("cannot write '", path, "': cannot create temporary file '", tmp, "': ", std::strerror(errno));
  return f;
}

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n > 0 && std::fwrite(data, 1, n, f) != n) UNET_FAIL("cannot write '", path, "': ", std::strerror(errno));
}

void seek_to(std::FILE* f, uint64_t offset, const std::string& path) {
  if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) != 0)
    UNET_FAIL("cannot write '", path, "': seek failed: ", std::strerror(errno));
}

// Flushes and closes `f`, throwing when any write failed.
void close_checked(FilePtr& f, const std::string& path) {
  const bool ok = std::fflush(f.get()) == 0 && !std::ferror(f.get());
  const int e = errno;
  const bool closed = std::fclose(f.release()) == 0;
  if (!ok || !closed) UNET_FAIL("cannot write '", path, "': write failed: ", std::strerror(e));
}

// Checks a band handed to a streaming writer.
void check_band(const std::string& path, int y0, int rows_done, int rows, int height, int width_got, int width,
                int channels_got, int channels) {
  UNET_CHECK(y0 == rows_done, "cannot write '", path, "': rows must arrive in order: got row ", y0, ", expected row ",
             rows_done);
  UNET_CHECK(rows >= 0 && y0 + rows <= height, "cannot write '", path, "': rows ", y0, "..", y0 + rows - 1,
             " are past the picture's ", height, " rows");
  UNET_CHECK(width_got == width && channels_got == channels, "cannot write '", path, "': band of ", width_got, " px x ",
             channels_got, " channel(s) for a picture of ", width, " px x ", channels, " channel(s)");
}

// ---- deflate, streamed -------------------------------------------------------------------------------

// A zlib stream (RFC 1950/1951) produced incrementally: one deflate block with the fixed Huffman
// codes; greedy LZ77 matching over a 32 KiB window through hash chains of 3-byte prefixes.
// Holds the window plus the input not yet encoded.
class DeflateStream {
 public:
  using Sink = std::function<void(const uint8_t*, size_t)>;
  explicit DeflateStream(Sink sink) : sink_(std::move(sink)), head_(size_t{1} << kHashBits, -1), prev_(kWindow, -1) {
    out_ = {0x78, 0x01};  // deflate, 32 KiB window, no dictionary; (0x78 * 256 + 0x01) % 31 == 0
    put_bits(1, 1);       // BFINAL: this one block is the last
    put_bits(1, 2);       // BTYPE 01: fixed Huffman codes
  }

  void write(const uint8_t* p, size_t n) {
    buf_.insert(buf_.end(), p, p + n);
    for (size_t i = 0; i < n;) {  // Adler-32, in runs short enough for 32-bit sums
      const size_t run = std::min<size_t>(n - i, 5552);
      for (size_t j = 0; j < run; ++j) {
        a_ += p[i + j];
        b_ += a_;
      }
      a_ %= 65521;
      b_ %= 65521;
      i += run;
    }
    encode(false);
  }

  void finish() {
    encode(true);
    symbol(256);                        // end of block
    put_bits(0, (8 - nbits_ % 8) % 8);  // to a byte boundary
    const uint32_t adler = (b_ << 16) | a_;
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(adler >> s));
    flush_out();
  }

 private:
  static constexpr int kWindow = 32768, kMinMatch = 3, kMaxMatch = 258, kHashBits = 15, kMaxChain = 24;

  const uint8_t* at(int64_t pos) const { return buf_.data() + (pos - base_); }
  static uint32_t hash(const uint8_t* p) {
    const uint32_t v = (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 8) | p[2];
    return (v * 2654435761u) >> (32 - kHashBits);
  }
  void insert(int64_t pos, int64_t end) {
    if (pos + kMinMatch > end) return;
    const uint32_t h = hash(at(pos));
    prev_[pos & (kWindow - 1)] = head_[h];
    head_[h] = pos;
  }

  void put_bits(uint32_t v, int n) {
    bits_ |= static_cast<uint64_t>(v) << nbits_;
    nbits_ += n;
    while (nbits_ >= 8) {
      out_.push_back(static_cast<uint8_t>(bits_));
      bits_ >>= 8;
      nbits_ -= 8;
    }
  }
  // Huffman codes are defined most significant bit first; the stream is packed LSB first.
  void put_code(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; ++i) r |= ((code >> i) & 1u) << (len - 1 - i);
    put_bits(r, len);
  }
  void symbol(int s) {  // the fixed literal/length code (RFC 1951, 3.2.6)
    if (s < 144) put_code(0x30 + s, 8);
    else if (s < 256) put_code(0x190 + (s - 144), 9);
    else if (s < 280) put_code(s - 256, 7);
    else put_code(0xC0 + (s - 280), 8);
  }
  void match(int len, int dist) {
    static const int lbase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                  31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const int lextra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                   2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const int dbase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                  33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static const int dextra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                   6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    const int li = static_cast<int>(std::upper_bound(lbase, lbase + 29, len) - lbase) - 1;
    symbol(257 + li);
    put_bits(static_cast<uint32_t>(len - lbase[li]), lextra[li]);
    const int di = static_cast<int>(std::upper_bound(dbase, dbase + 30, dist) - dbase) - 1;
    put_code(static_cast<uint32_t>(di), 5);
    put_bits(static_cast<uint32_t>(dist - dbase[di]), dextra[di]);
  }

  // Encodes the buffered input, all of it when `final`, otherwise keeping a full match length of
  // look-ahead; then drops what the window no longer needs.
  void encode(bool final) {
    const int64_t end = base_ + static_cast<int64_t>(buf_.size());
    const int64_t limit = final ? end : end - kMaxMatch;
    while (pos_ < limit) {
      const int avail = static_cast<int>(std::min<int64_t>(kMaxMatch, end - pos_));
      int best_len = 0, best_dist = 0;
      if (avail >= kMinMatch) {
        const uint8_t* cur = at(pos_);
        int64_t cand = head_[hash(cur)];
        for (int chain = kMaxChain; cand >= 0 && pos_ - cand <= kWindow && chain > 0; --chain) {
          const uint8_t* old = at(cand);
          if (old[best_len] == cur[best_len]) {
            int l = 0;
            while (l < avail && old[l] == cur[l]) ++l;
            if (l > best_len) {
              best_len = l;
              best_dist = static_cast<int>(pos_ - cand);
              if (l == avail) break;
            }
          }
          const int64_t next = prev_[cand & (kWindow - 1)];
          if (next >= cand) break;
          cand = next;
        }
      }
      if (best_len >= kMinMatch) {
        match(best_len, best_dist);
        for (int i = 0; i < best_len; ++i) insert(pos_ + i, end);
        pos_ += best_len;
      } else {
        symbol(*at(pos_));
        insert(pos_, end);
        ++pos_;
      }
      if (out_.size() >= (size_t{1} << 16)) flush_out();
    }
    if (pos_ - base_ > 2 * kWindow) {  // keep one window of history
      const int64_t drop = pos_ - base_ - kWindow;
      buf_.erase(buf_.begin(), buf_.begin() + drop);
      base_ += drop;
    }
  }

  void flush_out() {
    if (!out_.empty()) sink_(out_.data(), out_.size());
    out_.clear();
  }

  Sink sink_;
  std::vector<uint8_t> buf_, out_;
  int64_t base_ = 0, pos_ = 0;        // buf_[0] is stream byte base_; pos_ is the next to encode
  std::vector<int64_t> head_, prev_;  // hash chains of stream positions, -1 = none
  uint64_t bits_ = 0;
  int nbits_ = 0;
  uint32_t a_ = 1, b_ = 0;  // Adler-32
};

}  // namespace

// ---- public: streaming TIFF ----------------------------------------------------------------------------

struct TiffFloatPagesWriter::Impl {
  PendingFile file;
  int pages, height, width, rps;
  uint16_t compression = COMPRESSION_NONE;
  TiffPtr tif;               // declared after `file`: closed before the temporary file is removed
  FilePtr spool;             // pages 1.. as raw floats, page-major; unlinked at creation
  std::vector<float> strip;  // rows of page 0 waiting for a full strip
  int strip_rows = 0, rows_done = 0;
  bool finished = false;

  Impl(const std::string& path, int p, int h, int w, int r) : file(path), pages(p), height(h), width(w), rps(r) {}

  void set_tags(int page) {
    TIFF* t = tif.get();
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(width));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(height));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, static_cast<uint16_t>(32));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, static_cast<uint16_t>(1));
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, static_cast<uint32_t>(rps));
    if (pages > 1) {
      TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
      TIFFSetField(t, TIFFTAG_PAGENUMBER, static_cast<uint16_t>(page), static_cast<uint16_t>(pages));
    }
  }

  void write_strip(int page, int first_row, int rows, const TiffErrorScope& scope) {
    const tmsize_t n = static_cast<tmsize_t>(rows) * width * 4;
    if (TIFFWriteEncodedStrip(tif.get(), static_cast<tstrip_t>(first_row / rps), strip.data(), n) < 0)
      UNET_FAIL("cannot write TIFF file '", file.path(), "' page ", page, ": ", scope.reason());
  }
};

TiffFloatPagesWriter::TiffFloatPagesWriter(const std::string& path, int pages, int height, int width,
                                           int rows_per_strip) {
  UNET_CHECK(pages >= 1 && height >= 1 && width >= 1 && pages <= 65535, "cannot write '", path,
             "': image has zero size (", width, "x", height, ", ", pages, " pages)");
  int rps = rows_per_strip > 0 ? rows_per_strip : std::max(1, (1 << 20) / (width * 4));
  rps = std::min(rps, height);
  impl_ = std::make_unique<Impl>(path, pages, height, width, rps);
  Impl& m = *impl_;
  const bool big = static_cast<uint64_t>(pages) * height * width * 4 > (uint64_t{3} << 30);
  TiffErrorScope scope;
  m.tif.reset(TIFFOpen(m.file.tmp().c_str(), big ? "w8" : "w"));
  if (!m.tif) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
  m.compression = TIFFIsCODECConfigured(COMPRESSION_ADOBE_DEFLATE) ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE;
  m.set_tags(0);
  m.strip.resize(static_cast<size_t>(rps) * width);
  if (pages > 1) {
    const std::string spool = m.file.tmp() + ".spool";
    m.spool = open_for_writing(spool, path, "w+b");
    (void)std::remove(spool.c_str());  // the open stream keeps the data; nothing is left behind
  }
}

TiffFloatPagesWriter::~TiffFloatPagesWriter() = default;

void TiffFloatPagesWriter::write_rows(int y0, const Image& band) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, band.height, m.height, band.width, m.width, band.channels, m.pages);
  TiffErrorScope scope;
  const size_t w = static_cast<size_t>(m.width);
  // Page 0: through the strip buffer into the TIFF.
  for (int r = 0; r < band.height;) {
    const int take = std::min(band.height - r, m.rps - m.strip_rows);
    std::copy(band.plane(0) + r * w, band.plane(0) + (r + take) * w, m.strip.begin() + m.strip_rows * w);
    m.strip_rows += take;
    r += take;
    const int first = y0 + r - m.strip_rows;
    if (m.strip_rows == m.rps || first + m.strip_rows == m.height) {
      m.write_strip(0, first, m.strip_rows, scope);
      m.strip_rows = 0;
    }
  }
  // Pages 1..: at their place in the spool.
  for (int k = 1; k < m.pages; ++k) {
    seek_to(m.spool.get(), ((static_cast<uint64_t>(k - 1) * m.height + y0) * w) * 4, m.file.path());
    write_all(m.spool.get(), band.plane(k), static_cast<size_t>(band.height) * w * 4, m.file.path());
  }
  m.rows_done += band.height;
}

void TiffFloatPagesWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  TiffErrorScope scope;
  const std::string& path = m.file.path();
  if (!TIFFWriteDirectory(m.tif.get())) UNET_FAIL("cannot write TIFF file '", path, "' page 0: ", scope.reason());
  if (m.pages > 1 && std::fflush(m.spool.get()) != 0)
    UNET_FAIL("cannot write '", path, "': spool file: ", std::strerror(errno));
  for (int k = 1; k < m.pages; ++k) {
    m.set_tags(k);
    for (int y0 = 0; y0 < m.height; y0 += m.rps) {
      const int rows = std::min(m.rps, m.height - y0);
      const size_t n = static_cast<size_t>(rows) * m.width;
      if (fseeko(m.spool.get(), static_cast<off_t>(((static_cast<uint64_t>(k - 1) * m.height + y0) * m.width) * 4),
                 SEEK_SET) != 0 ||
          std::fread(m.strip.data(), 4, n, m.spool.get()) != n)
        UNET_FAIL("cannot write TIFF file '", path, "': cannot read back the spooled page ", k);
      m.write_strip(k, y0, rows, scope);
    }
    if (!TIFFWriteDirectory(m.tif.get()))
      UNET_FAIL("cannot write TIFF file '", path, "' page ", k, ": ", scope.reason());
  }
  m.spool.reset();
  TIFFClose(m.tif.release());
  if (!t_tiff_errors.empty()) UNET_FAIL("cannot write TIFF file '", path, "': ", scope.reason());
  m.file.commit();
  m.finished = true;
  m.strip = std::vector<float>();
}

// ---- public: streaming PNG -------------------------------------------------------------------------------

struct PngStreamWriter::Impl {
  PendingFile file;
  FilePtr f;
  int width, height, channels, rows_done = 0;
  bool finished = false;
  std::vector<uint8_t> prev, best, trial, idat;
  DeflateStream z;

  Impl(const std::string& path, int w, int h, int c)
      : file(path), width(w), height(h), channels(c), z([this](const uint8_t* p, size_t n) {
          idat.insert(idat.end(), p, p + n);
          if (idat.size() >= (size_t{1} << 18)) flush_idat();
        }) {}

  void chunk(const char type[4], const uint8_t* data, size_t n) {
    uint8_t head[8];
    for (int i = 0; i < 4; ++i) head[i] = static_cast<uint8_t>(static_cast<uint32_t>(n) >> (24 - 8 * i));
    std::memcpy(head + 4, type, 4);
    uint32_t crc = crc32_update(0xffffffffu, head + 4, 4);
    crc = crc32_update(crc, data, n) ^ 0xffffffffu;
    uint8_t tail[4];
    for (int i = 0; i < 4; ++i) tail[i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    write_all(f.get(), head, 8, file.path());
    write_all(f.get(), data, n, file.path());
    write_all(f.get(), tail, 4, file.path());
  }
  void flush_idat() {
    if (idat.empty()) return;
    chunk("IDAT", idat.data(), idat.size());
    idat.clear();
  }

  // One row, filtered with whichever of the five PNG filters gives the smallest sum of absolute
  // (signed) differences, into the deflate stream.
  void row(const uint8_t* cur) {
    const size_t n = static_cast<size_t>(width) * channels;
    const int bpp = channels;
    best.resize(n + 1);
    trial.resize(n + 1);
    uint64_t best_cost = UINT64_MAX;
    for (int type = 0; type < 5; ++type) {
      trial[0] = static_cast<uint8_t>(type);
      uint64_t cost = 0;
      for (size_t i = 0; i < n; ++i) {
        const int a = i >= static_cast<size_t>(bpp) ? cur[i - bpp] : 0, b = prev[i],
                  c = i >= static_cast<size_t>(bpp) ? prev[i - bpp] : 0;
        int pred = 0;
        if (type == 1) pred = a;
        else if (type == 2) pred = b;
        else if (type == 3) pred = (a + b) / 2;
        else if (type == 4) {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
        }
        const uint8_t v = static_cast<uint8_t>(cur[i] - pred);
        trial[i + 1] = v;
        cost += static_cast<uint64_t>(std::abs(static_cast<int>(static_cast<int8_t>(v))));
      }
      if (cost < best_cost) {
        best_cost = cost;
        best.swap(trial);
        trial.resize(n + 1);
      }
    }
    z.write(best.data(), best.size());
    prev.assign(cur, cur + n);
  }
};

PngStreamWriter::PngStreamWriter(const std::string& path, int width, int height, int channels) {
  UNET_CHECK(width >= 1 && height >= 1 && channels >= 1, "cannot write '", path, "': image has zero size (", width, "x",
             height, ", ", channels, " channels)");
  UNET_CHECK(channels <= 4, "cannot write '", path, "': ", channels, " channels (this format takes 1 to 4)");
  UNET_CHECK(static_cast<int64_t>(width) * channels < (int64_t{1} << 30), "cannot write '", path,
             "': rows too wide for PNG");
  impl_ = std::make_unique<Impl>(path, width, height, channels);
  Impl& m = *impl_;
  m.f = open_for_writing(m.file.tmp(), path);
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const uint8_t kColorType[5] = {0, 0, 4, 2, 6};  // gray, gray+alpha, RGB, RGBA
  write_all(m.f.get(), kSignature, 8, path);
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, kColorType[channels], 0, 0, 0});  // depth, colour type, deflate, filter, no interlace
  m.chunk("IHDR", ihdr.data(), ihdr.size());
  m.prev.assign(static_cast<size_t>(width) * channels, 0);
}

PngStreamWriter::~PngStreamWriter() = default;

void PngStreamWriter::write_rows(int y0, const uint8_t* pixels, int rows) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, rows, m.height, m.width, m.width, m.channels, m.channels);
  const size_t n = static_cast<size_t>(m.width) * m.channels;
  for (int r = 0; r < rows; ++r) m.row(pixels + r * n);
  m.rows_done += rows;
}

void PngStreamWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  m.z.finish();
  m.flush_idat();
  m.chunk("IEND", nullptr, 0);
  close_checked(m.f, m.file.path());
  m.file.commit();
  m.finished = true;
}

// ---- public: streaming npy ---------------------------------------------------------------------------------

struct NpyStreamWriter::Impl {
  PendingFile file;
  FilePtr f;
  int channels, height, width, rows_done = 0;
  uint64_t data_offset = 0;
  bool finished = false;
  Impl(const std::string& path, int c, int h, int w) : file(path), channels(c), height(h), width(w) {}
};

NpyStreamWriter::NpyStreamWriter(const std::string& path, int channels, int height, int width) {
  UNET_CHECK(channels >= 1 && height >= 1 && width >= 1, "cannot write '", path, "': image has zero size (", width, "x",
             height, ", ", channels, " channels)");
  impl_ = std::make_unique<Impl>(path, channels, height, width);
  Impl& m = *impl_;
  // The header of write_npy.
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  if (channels == 1) dict << height << ", " << width << "), }";
  else dict << channels << ", " << height << ", " << width << "), }";
  std::string header = dict.str();
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<uint8_t> out = {0x93,
                              'N',
                              'U',
                              'M',
                              'P',
                              'Y',
                              1,
                              0,
                              static_cast<uint8_t>(header.size() & 0xff),
                              static_cast<uint8_t>(header.size() >> 8)};
  out.insert(out.end(), header.begin(), header.end());
  m.f = open_for_writing(m.file.tmp(), path);
  write_all(m.f.get(), out.data(), out.size(), path);
  m.data_offset = out.size();
}

NpyStreamWriter::~NpyStreamWriter() = default;

void NpyStreamWriter::write_rows(int y0, const Image& band) {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  check_band(m.file.path(), y0, m.rows_done, band.height, m.height, band.width, m.width, band.channels, m.channels);
  for (int k = 0; k < m.channels; ++k) {
    seek_to(m.f.get(), m.data_offset + ((static_cast<uint64_t>(k) * m.height + y0) * m.width) * 4, m.file.path());
    write_all(m.f.get(), band.plane(k), static_cast<size_t>(band.height) * m.width * 4, m.file.path());
  }
  m.rows_done += band.height;
}

void NpyStreamWriter::finish() {
  Impl& m = *impl_;
  UNET_CHECK(!m.finished, "cannot write '", m.file.path(), "': already finished");
  UNET_CHECK(m.rows_done == m.height, "cannot write '", m.file.path(), "': only ", m.rows_done, " of ", m.height,
             " rows were given");
  close_checked(m.f, m.file.path());
  m.file.commit();
  m.finished = true;
}

}  // namespace unet
