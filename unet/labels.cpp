// Labels: raw label pixels to class indices (class indices as they are, or 0/255 and 0/65535 masks),
// with an error that lists what was found when the values fit no encoding. See unet/io.h.
#include "unet/io.h"

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

using io_detail::format_value;

// ---- public: labels ------------------------------------------------------------------------------

Image labels_from_image(const Image& raw, int num_classes, const std::string& source_name) {
  UNET_CHECK(num_classes >= 2, "labels_from_image: num_classes must be at least 2, got ", num_classes);
  UNET_CHECK(!raw.empty() && raw.channels >= 1, "label file '", source_name, "' is empty");
  const size_t hw = static_cast<size_t>(raw.height) * raw.width;
  if (raw.channels >= 3) {
    for (size_t i = 0; i < hw; ++i)
      if (raw.data[i] != raw.data[hw + i] || raw.data[i] != raw.data[2 * hw + i])
        UNET_FAIL("label file '", source_name, "' is a colour image (R, G, B differ at pixel x=", i % raw.width,
                  ", y=", i / raw.width, "): labels must be gray class indices or a 0/255 mask");
  }
  const float* v = raw.data.data();  // channel 0 (gray, the gray of gray+alpha, or R == G == B)

  std::vector<int64_t> small(65536, 0);  // counts of the integers 0..65535
  std::map<float, int64_t> other;        // counts of everything else
  for (size_t i = 0; i < hw; ++i) {
    const float x = v[i];
    if (!std::isfinite(x))
      UNET_FAIL("label file '", source_name, "' contains a non-finite value at pixel x=", i % raw.width,
                ", y=", i / raw.width);
    if (x >= 0.0f && x <= 65535.0f && x == std::floor(x)) ++small[static_cast<size_t>(x)];
    else ++other[x];
  }
  std::vector<std::pair<float, int64_t>> values;  // sorted distinct values with counts
  for (const auto& [x, n] : other)
    if (x < 0) values.emplace_back(x, n);
  for (size_t k = 0; k < small.size(); ++k)
    if (small[k]) values.emplace_back(static_cast<float>(k), small[k]);
  for (const auto& [x, n] : other)
    if (x >= 0) values.emplace_back(x, n);
  std::sort(values.begin(), values.end());

  auto all_in = [&](auto pred) {
    return std::all_of(values.begin(), values.end(), [&](const auto& p) { return pred(p.first); });
  };
  auto is_index = [&](float x) { return x >= 0 && x < num_classes && x == std::floor(x); };
  Image out(1, raw.height, raw.width);
  if (all_in(is_index)) {
    std::copy(v, v + hw, out.data.begin());
    return out;
  }
  if (num_classes == 2) {
    for (float maxv : {255.0f, 65535.0f}) {
      if (all_in([&](float x) { return x == 0.0f || x == maxv; })) {
        for (size_t i = 0; i < hw; ++i) out.data[i] = v[i] == maxv ? 1.0f : 0.0f;
        return out;
      }
    }
  }

  // Not decodable: say what was found and what is wrong with it.
  auto has = [&](float x) {
    return std::any_of(values.begin(), values.end(), [&](const auto& p) { return p.first == x; });
  };
  std::function<bool(float)> offending = [&](float x) { return !is_index(x); };
  if (num_classes == 2 && has(65535.0f)) offending = [](float x) { return x != 0.0f && x != 65535.0f; };
  else if (num_classes == 2 && has(255.0f)) offending = [](float x) { return x != 0.0f && x != 255.0f; };
  std::ostringstream os;
  os << "label file '" << source_name << "' has values {";
  const size_t show = 8;
  for (size_t i = 0; i < values.size() && i < show; ++i) os << (i ? ", " : "") << format_value(values[i].first);
  if (values.size() > show) os << ", ... (" << values.size() << " distinct values)";
  os << "}: expected class indices 0.." << num_classes - 1;
  if (num_classes == 2) os << " or a 0/255 (or 0/65535) mask";
  os << "; unexpected values: ";
  size_t listed = 0, bad = 0;
  for (const auto& [x, n] : values) {
    if (!offending(x)) continue;
    ++bad;
    if (listed < 5) {
      os << (listed ? ", " : "") << format_value(x) << " (" << n << " pixel" << (n == 1 ? "" : "s") << ")";
      ++listed;
    }
  }
  if (bad > listed) os << " and " << bad - listed << " more";
  throw Error(os.str());
}

Image read_label(const std::string& path, int num_classes) {
  return labels_from_image(read_image(path), num_classes, path);
}

std::vector<Image> read_label_stack(const std::string& path, int num_classes) {
  std::vector<Image> pages = read_stack(path);
  for (size_t i = 0; i < pages.size(); ++i)
    pages[i] = labels_from_image(pages[i], num_classes, pages.size() == 1 ? path : path + " page " + std::to_string(i));
  return pages;
}

}  // namespace unet
