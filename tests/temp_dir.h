// Test helpers for files: a fresh temp directory removed at scope exit, and error_of().
#pragma once
#include <unistd.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "engine/check.h"

namespace unet::test {

struct TempDir {
  std::filesystem::path dir;
  TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    dir = std::filesystem::temp_directory_path() /
          ("unet_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  // Names in the directory that look like leftover temporary files of an atomic write.
  std::vector<std::string> temp_leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
    return out;
  }
};

// The error message of `fn`, or "" when it does not throw unet::Error.
template <typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const unet::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace unet::test
