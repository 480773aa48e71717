#include "unet/export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/check.h"
#include "engine/safetensors.h"
#include "unet/checkpoint.h"

namespace unet {

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t mant = x & 0x7fffffu;
  const int exp = static_cast<int>((x >> 23) & 0xffu);
  if (exp == 255) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf, NaN
  const int e = exp - 127 + 15;                                                         // the half's biased exponent
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {  // subnormal half (or zero): value = m * 2^-24
    if (e < -10) return sign;
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

float half_from_bits(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else v = std::ldexp(static_cast<float>(mant | 0x400u), static_cast<int>(exp) - 25);
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits |= sign;
  std::memcpy(&v, &bits, 4);
  return v;
}

ExportReport export_model(const std::string& in, const std::string& out, bool fp16,
                          const std::map<std::string, std::string>& notes) {
  read_checkpoint_config(in);  // a unet-cuda checkpoint, or a clear error naming it
  const SafetensorsFile f = load_safetensors(in);
  ExportReport rep;
  nlohmann::ordered_json header;
  std::vector<uint8_t> data;
  for (const NamedTensor& t : f.tensors) {
    if (t.name.rfind("optim.", 0) == 0) continue;  // optimizer state stays behind
    const size_t begin = data.size();
    double tmax = 0.0;
    for (float v : t.data) tmax = std::max(tmax, static_cast<double>(std::fabs(v)));
    for (float v : t.data) {
      if (fp16) {
        UNET_CHECK(std::fabs(v) <= 65504.0f, "export: ", in, " tensor \"", t.name, "\" holds ", v,
                   ", beyond half precision's range");
        const uint16_t h = float_to_half(v);
        const double err = std::fabs(static_cast<double>(half_from_bits(h)) - v);
        rep.max_abs_error = std::max(rep.max_abs_error, err);
        if (tmax > 0.0) rep.max_rel_error = std::max(rep.max_rel_error, err / tmax);
        data.push_back(static_cast<uint8_t>(h & 0xffu));
        data.push_back(static_cast<uint8_t>(h >> 8));
      } else {
        uint8_t b[4];
        std::memcpy(b, &v, 4);  // little-endian hosts only, as engine/safetensors
        data.insert(data.end(), b, b + 4);
      }
    }
    rep.parameters += static_cast<int64_t>(t.data.size());
    header[t.name] = {{"dtype", fp16 ? "F16" : "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::map<std::string, std::string> md = f.metadata;
  for (auto it = md.begin(); it != md.end();) it = it->first.rfind("optimizer", 0) == 0 ? md.erase(it) : std::next(it);
  md["has_momentum"] = "0";
  md["storage"] = fp16 ? "F16" : "F32";
  for (const auto& [k, v] : notes) md[k] = v;
  header["__metadata__"] = md;
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data buffer starts 8-byte aligned
  std::vector<uint8_t> file(8 + h.size() + data.size());
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(file.data() + 8, h.data(), h.size());
  std::memcpy(file.data() + 8 + h.size(), data.data(), data.size());
  atomic_write_bytes(out, file.data(), file.size());
  rep.bytes = file.size();
  return rep;
}

}  // namespace unet
