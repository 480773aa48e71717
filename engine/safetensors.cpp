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
#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/check.h"

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
constexpr DTypeInfo kDTypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                 {"U64", 8}, {"I32", 4}, {"U32", 4}, {"I16", 2}, {"U16", 2},
                                 {"I8", 1},  {"U8", 1},  {"BOOL", 1}};

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
  if (exp == 0)
    v = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal
  else if (exp == 31)
    v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else
    v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
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
  void operator()(std::FILE* f) const { if (f) std::fclose(f); }
};

struct Entry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0, numel = 0;
};

std::string offsets_str(uint64_t b, uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
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
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    UNET_CHECK(!t.name.empty(), "cannot save '", path, "': a tensor has an empty name");
    UNET_CHECK(t.name != "__metadata__", "cannot save '", path,
               "': '__metadata__' is reserved and cannot name a tensor");
    UNET_CHECK(names.insert(t.name).second, "cannot save '", path, "': tensor name '", t.name,
               "' appears twice");
    for (int64_t d : t.shape)
      UNET_CHECK(d >= 0, "cannot save '", path, "': tensor '", t.name, "' has negative dimension in shape ",
                 shape_str(t.shape));
    const int64_t numel = shape_numel(t.shape);
    UNET_CHECK(static_cast<int64_t>(t.data.size()) == numel, "cannot save '", path, "': tensor '",
               t.name, "' has shape ", shape_str(t.shape), " (", numel, " values) but ", t.data.size(),
               " values of data");
    const uint64_t bytes = static_cast<uint64_t>(numel) * 4;
    nlohmann::ordered_json entry;
    entry["dtype"] = "F32";
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + bytes};
    header[t.name] = std::move(entry);
    offset += bytes;
  }
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    UNET_FAIL("cannot save '", path, "': header is not valid JSON text (names and metadata must be UTF-8): ",
              e.what());
  }
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

SafetensorsFile load_safetensors(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) UNET_FAIL("cannot open safetensors file '", path, "': ", std::strerror(errno));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    UNET_FAIL("cannot read safetensors file '", path, "': it is a directory");
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) UNET_FAIL("cannot read safetensors file '", path, "': ", ec.message());
  if (file_size < 8)
    UNET_FAIL("'", path, "' is not a safetensors file: it is ", file_size,
              " bytes long, shorter than the 8-byte header length");

  uint8_t len[8];
  if (std::fread(len, 1, 8, f.get()) != 8)
    UNET_FAIL("cannot read safetensors file '", path, "': short read of the header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n == 0) UNET_FAIL("'", path, "' is not a valid safetensors file: header length is 0");
  if (n > file_size - 8)
    UNET_FAIL("'", path, "' is not a valid safetensors file: header length ", n,
              " is larger than the rest of the file (", file_size - 8, " bytes); truncated or not safetensors");
  if (n > kMaxHeaderBytes)
    UNET_FAIL("'", path, "': header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");

  std::string text(n, '\0');
  if (std::fread(text.data(), 1, n, f.get()) != n)
    UNET_FAIL("cannot read safetensors file '", path, "': short read of the header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    UNET_FAIL("'", path, "': header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) UNET_FAIL("'", path, "': header JSON is not an object");

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) UNET_FAIL("'", path, "': __metadata__ is not a JSON object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          UNET_FAIL("'", path, "': __metadata__ value for '", m.key(), "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "'" + path + "': tensor '" + key + "'";
    if (!v.is_object()) UNET_FAIL(where, ": entry is not a JSON object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) UNET_FAIL(where, ": missing or non-string \"dtype\"");
    if (!v.contains("shape") || !v["shape"].is_array()) UNET_FAIL(where, ": missing or non-array \"shape\"");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      UNET_FAIL(where, ": \"data_offsets\" must be an array [begin, end]");
    Entry e;
    e.name = key;
    e.dtype = v["dtype"].get<std::string>();
    const DTypeInfo* dt = find_dtype(e.dtype);
    if (!dt) UNET_FAIL(where, ": unknown or unsupported dtype '", e.dtype, "' (supported: ", supported_dtypes(), ")");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) UNET_FAIL(where, ": shape ", v["shape"].dump(), " has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 62)) UNET_FAIL(where, ": shape ", v["shape"].dump(), " is absurdly large");
      if (dim != 0 && numel > ((uint64_t{1} << 62) / dim)) UNET_FAIL(where, ": shape ", v["shape"].dump(), " overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) UNET_FAIL(where, ": data_offsets ", v["data_offsets"].dump(), " are not non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    e.numel = numel;
    if (e.end < e.begin) UNET_FAIL(where, ": data_offsets ", offsets_str(e.begin, e.end), " end before they begin");
    if (numel > (uint64_t{1} << 62) / dt->itemsize) UNET_FAIL(where, ": too large");
    const uint64_t want = numel * dt->itemsize;
    if (e.end - e.begin != want)
      UNET_FAIL(where, ": shape ", shape_str(e.shape), " of dtype ", e.dtype, " needs ", want,
                " bytes but data_offsets ", offsets_str(e.begin, e.end), " span ", e.end - e.begin, " bytes");
    entries.push_back(std::move(e));
  }

  const uint64_t buffer_size = file_size - 8 - n;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& e : entries) {
    if (e.end > buffer_size)
      UNET_FAIL("'", path, "': tensor '", e.name, "' has data_offsets ", offsets_str(e.begin, e.end),
                " past the end of the data (", buffer_size, " bytes after the header): file truncated?");
    if (e.begin < expect)
      UNET_FAIL("'", path, "': tensor '", e.name, "' data_offsets ", offsets_str(e.begin, e.end),
                " overlap the previous tensor (which ends at ", expect, ")");
    if (e.begin > expect)
      UNET_FAIL("'", path, "': tensor '", e.name, "' data_offsets ", offsets_str(e.begin, e.end),
                " leave a hole of ", e.begin - expect, " bytes after offset ", expect);
    expect = e.end;
  }
  if (expect != buffer_size)
    UNET_FAIL("'", path, "': the data buffer holds ", buffer_size, " bytes but the tensors cover only ",
              expect, " of them");

  std::vector<uint8_t> buffer(buffer_size);
  if (buffer_size > 0 && std::fread(buffer.data(), 1, buffer_size, f.get()) != buffer_size)
    UNET_FAIL("cannot read safetensors file '", path, "': short read of the data (file changed while reading?)");

  out.tensors.reserve(entries.size());
  for (const auto& e : entries) {
    NamedTensor t;
    t.name = e.name;
    t.shape = e.shape;
    t.dtype = e.dtype;
    t.data.resize(e.numel);
    convert(e.dtype, buffer.data() + e.begin, e.numel, t.data.data());
    out.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace unet
