#include "engine/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/check.h"
#include "engine/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "engine/safetensors.cpp assumes a little-endian host"
#endif

namespace unet {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // same cap as the reference implementation

struct DTypeInfo {
  const char* name;
  size_t itemsize;
};
constexpr DTypeInfo kDTypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"U64", 8}, {"I32", 4},
                                 {"U32", 4}, {"I16", 2}, {"U16", 2}, {"I8", 1},   {"U8", 1},  {"BOOL", 1}};

const DTypeInfo* find_dtype(const std::string& s) {
  for (const auto& d : kDTypes)
    if (s == d.name) return &d;
  return nullptr;
}

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  else if (exp == 31) v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void convert(const std::string& dtype, const uint8_t* src, size_t n, float* dst) {
  if (n == 0) return;  // a [0]-shaped tensor: dst may be null, and memcpy must not see a null pointer
  if (dtype == "F32") {
    std::memcpy(dst, src, n * 4);
  } else if (dtype == "F64") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<double>(src + 8 * i));
  } else if (dtype == "F16") {
    for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(load_le<uint16_t>(src + 2 * i));
  } else if (dtype == "BF16") {
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(load_le<uint16_t>(src + 2 * i));
  } else if (dtype == "I64") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<int64_t>(src + 8 * i));
  } else if (dtype == "U64") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<uint64_t>(src + 8 * i));
  } else if (dtype == "I32") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<int32_t>(src + 4 * i));
  } else if (dtype == "U32") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<uint32_t>(src + 4 * i));
  } else if (dtype == "I16") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<int16_t>(src + 2 * i));
  } else if (dtype == "U16") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<uint16_t>(src + 2 * i));
  } else if (dtype == "I8") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<int8_t>(src[i]));
  } else if (dtype == "U8") {
    for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  } else if (dtype == "BOOL") {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i] ? 1.0f : 0.0f;
  } else {
    UNET_FAIL("internal: unhandled safetensors dtype ", dtype);
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

struct Entry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0, numel = 0;
};

std::string offsets_str(uint64_t b, uint64_t e) { return "[" + std::to_string(b) + ", " + std::to_string(e) + "]"; }

// What the header says: the tensors sorted by data offset and checked to tile the data buffer
// exactly, and the metadata.
struct Layout {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

// The JSON header length from the first 8 bytes of a source of `total` bytes, checked against it.
uint64_t header_length(const uint8_t len[8], uint64_t total, const std::string& name) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n == 0) UNET_FAIL("'", name, "' is not a valid safetensors file: header length is 0");
  if (n > total - 8)
    UNET_FAIL("'", name, "' is not a valid safetensors file: header length ", n,
              " is larger than the rest of the file (", total - 8, " bytes); truncated or not safetensors");
  if (n > kMaxHeaderBytes)
    UNET_FAIL("'", name, "': header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  return n;
}

// Parses and checks the header text against a data buffer of `buffer_size` bytes. Every check a
// file or a buffer in memory goes through: nothing is allocated for the tensors before it passes.
Layout parse_header(const char* text, size_t n, uint64_t buffer_size, const std::string& name) {
  json::Value header;
  try {
    header = json::parse(text, n);
  } catch (const Error& e) {
    UNET_FAIL("'", name, "': header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) UNET_FAIL("'", name, "': header JSON is not an object");

  Layout out;
  for (const auto& [key, v] : header.members) {
    if (key == "__metadata__") {
      if (!v.is_object()) UNET_FAIL("'", name, "': __metadata__ is not a JSON object");
      for (const auto& [mk, mv] : v.members) {
        if (!mv.is_string()) UNET_FAIL("'", name, "': __metadata__ value for '", mk, "' is not a string");
        out.metadata[mk] = mv.text;
      }
      continue;
    }
    const std::string where = "'" + name + "': tensor '" + key + "'";
    if (!v.is_object()) UNET_FAIL(where, ": entry is not a JSON object");
    const json::Value* dtype = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offsets = v.find("data_offsets");
    if (!dtype || !dtype->is_string()) UNET_FAIL(where, ": missing or non-string \"dtype\"");
    if (!shape || !shape->is_array()) UNET_FAIL(where, ": missing or non-array \"shape\"");
    if (!offsets || !offsets->is_array() || offsets->items.size() != 2)
      UNET_FAIL(where, ": \"data_offsets\" must be an array [begin, end]");
    Entry e;
    e.name = key;
    e.dtype = dtype->text;
    const DTypeInfo* dt = find_dtype(e.dtype);
    if (!dt) UNET_FAIL(where, ": unknown or unsupported dtype '", e.dtype, "' (supported: ", supported_dtypes(), ")");
    uint64_t numel = 1;
    for (const json::Value& d : shape->items) {
      if (!d.is_unsigned) UNET_FAIL(where, ": shape ", shape->dump(), " has a non-integer or negative dimension");
      const uint64_t dim = d.u;
      if (dim > (uint64_t{1} << 62)) UNET_FAIL(where, ": shape ", shape->dump(), " is absurdly large");
      if (dim != 0 && numel > ((uint64_t{1} << 62) / dim)) UNET_FAIL(where, ": shape ", shape->dump(), " overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const json::Value& o : offsets->items)
      if (!o.is_unsigned) UNET_FAIL(where, ": data_offsets ", offsets->dump(), " are not non-negative integers");
    e.begin = offsets->items[0].u;
    e.end = offsets->items[1].u;
    e.numel = numel;
    if (e.end < e.begin) UNET_FAIL(where, ": data_offsets ", offsets_str(e.begin, e.end), " end before they begin");
    if (numel > (uint64_t{1} << 62) / dt->itemsize) UNET_FAIL(where, ": too large");
    const uint64_t want = numel * dt->itemsize;
    if (e.end - e.begin != want)
      UNET_FAIL(where, ": shape ", shape_str(e.shape), " of dtype ", e.dtype, " needs ", want,
                " bytes but data_offsets ", offsets_str(e.begin, e.end), " span ", e.end - e.begin, " bytes");
    out.entries.push_back(std::move(e));
  }

  std::sort(out.entries.begin(), out.entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expect = 0;
  for (const auto& e : out.entries) {
    if (e.end > buffer_size)
      UNET_FAIL("'", name, "': tensor '", e.name, "' has data_offsets ", offsets_str(e.begin, e.end),
                " past the end of the data (", buffer_size, " bytes after the header): file truncated?");
    if (e.begin < expect)
      UNET_FAIL("'", name, "': tensor '", e.name, "' data_offsets ", offsets_str(e.begin, e.end),
                " overlap the previous tensor (which ends at ", expect, ")");
    if (e.begin > expect)
      UNET_FAIL("'", name, "': tensor '", e.name, "' data_offsets ", offsets_str(e.begin, e.end), " leave a hole of ",
                e.begin - expect, " bytes after offset ", expect);
    expect = e.end;
  }
  if (expect != buffer_size)
    UNET_FAIL("'", name, "': the data buffer holds ", buffer_size, " bytes but the tensors cover only ", expect,
              " of them");
  return out;
}

NamedTensor make_tensor(const Entry& e, const uint8_t* bytes) {
  NamedTensor t;
  t.name = e.name;
  t.shape = e.shape;
  t.dtype = e.dtype;
  t.data.resize(e.numel);
  convert(e.dtype, bytes, e.numel, t.data.data());
  return t;
}

}  // namespace

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const NamedTensor& SafetensorsFile::at(const std::string& name) const {
  const NamedTensor* t = find(name);
  if (!t) UNET_FAIL("safetensors file has no tensor named '", name, "'");
  return *t;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // The header as a compact JSON object, in the tensors' order (the layout common writers produce).
  auto quote = [&](const std::string& s) {
    try {
      return json::quote(s);
    } catch (const Error& e) {
      UNET_FAIL("cannot save '", path,
                "': header is not valid JSON text (names and metadata must be UTF-8): ", e.what());
    }
  };
  std::string text = "{";
  std::set<std::string> names;
  uint64_t offset = 0;
  {
    for (const auto& t : tensors) {
      UNET_CHECK(!t.name.empty(), "cannot save '", path, "': a tensor has an empty name");
      UNET_CHECK(t.name != "__metadata__", "cannot save '", path,
                 "': '__metadata__' is reserved and cannot name a tensor");
      UNET_CHECK(names.insert(t.name).second, "cannot save '", path, "': tensor name '", t.name, "' appears twice");
      for (int64_t d : t.shape)
        UNET_CHECK(d >= 0, "cannot save '", path, "': tensor '", t.name, "' has negative dimension in shape ",
                   shape_str(t.shape));
      const int64_t numel = shape_numel(t.shape);
      UNET_CHECK(static_cast<int64_t>(t.data.size()) == numel, "cannot save '", path, "': tensor '", t.name,
                 "' has shape ", shape_str(t.shape), " (", numel, " values) but ", t.data.size(), " values of data");
      const uint64_t bytes = static_cast<uint64_t>(numel) * 4;
      std::string shape;
      for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
      if (text.size() > 1) text += ",";
      text += quote(t.name) + ":{\"dtype\":\"F32\",\"shape\":[" + shape + "],\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
      offset += bytes;
    }
    if (!metadata.empty()) {
      if (text.size() > 1) text += ",";
      text += "\"__metadata__\":{";
      bool first = true;
      for (const auto& [k, v] : metadata) {
        text += (first ? "" : ",") + quote(k) + ":" + quote(v);
        first = false;
      }
      text += "}";
    }
  }
  text += "}";
  while (text.size() % 8 != 0) text.push_back(' ');
  const uint64_t n = text.size();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));

  atomic_write_stream(path, [&](std::FILE* f) {
    auto put = [&](const void* p, size_t bytes) {
      if (bytes > 0 && std::fwrite(p, 1, bytes, f) != bytes)
        UNET_FAIL("cannot write '", path, "': ", std::strerror(errno));
    };
    put(len, 8);
    put(text.data(), text.size());
    for (const auto& t : tensors) put(t.data.data(), t.data.size() * sizeof(float));
  });
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  if (data == nullptr && size > 0) UNET_FAIL("'", name, "': no data (null pointer)");
  if (size < 8)
    UNET_FAIL("'", name, "' is not a safetensors file: it is ", size,
              " bytes long, shorter than the 8-byte header length");
  const uint64_t n = header_length(data, size, name);
  const uint64_t buffer_size = size - 8 - n;
  Layout layout = parse_header(reinterpret_cast<const char*>(data + 8), n, buffer_size, name);
  const uint8_t* buffer = data + 8 + n;
  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  out.tensors.reserve(layout.entries.size());
  for (const Entry& e : layout.entries) out.tensors.push_back(make_tensor(e, buffer + e.begin));
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) UNET_FAIL_AS(IoError, "cannot open safetensors file '", path, "': ", std::strerror(errno));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    UNET_FAIL_AS(IoError, "cannot read safetensors file '", path, "': it is a directory");
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) UNET_FAIL_AS(IoError, "cannot read safetensors file '", path, "': ", ec.message());
  if (file_size < 8)
    UNET_FAIL("'", path, "' is not a safetensors file: it is ", file_size,
              " bytes long, shorter than the 8-byte header length");

  // The same checks as parse_safetensors, reading only what the checked header justifies: the
  // header first, then one tensor at a time (memory: the tensors as floats and one tensor's bytes).
  uint8_t len[8];
  if (std::fread(len, 1, 8, f.get()) != 8)
    UNET_FAIL_AS(IoError, "cannot read safetensors file '", path, "': short read of the header length");
  const uint64_t n = header_length(len, file_size, path);
  std::string text(n, '\0');
  if (std::fread(text.data(), 1, n, f.get()) != n)
    UNET_FAIL_AS(IoError, "cannot read safetensors file '", path, "': short read of the header");
  Layout layout = parse_header(text.data(), text.size(), file_size - 8 - n, path);

  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  out.tensors.reserve(layout.entries.size());
  std::vector<uint8_t> bytes;
  for (const Entry& e : layout.entries) {  // sorted, back to back: the file is read in order
    bytes.resize(e.end - e.begin);
    if (!bytes.empty() && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
      UNET_FAIL_AS(IoError, "cannot read safetensors file '", path,
                   "': short read of the data (file changed while reading?)");
    out.tensors.push_back(make_tensor(e, bytes.data()));
  }
  return out;
}

}  // namespace unet
