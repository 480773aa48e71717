// The decoders read files: each fuzz input is written to a file of this process's own first.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace unet::fuzz {

inline const std::string& input_path(const char* ext) {
  static const std::string path = [ext] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/unet_fuzz_" + std::to_string(::getpid()) + ext;
    static std::string keep;
    keep = p;
    std::atexit([] { std::remove(keep.c_str()); });
    return p;
  }();
  return path;
}

inline void write_input(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

}  // namespace unet::fuzz
