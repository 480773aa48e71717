#include "engine/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/check.h"

namespace unet {
namespace {

std::atomic<unsigned long> g_temp_counter{0};

std::string errno_text(int e) { return std::strerror(e); }

// Best-effort fsync of the directory holding `path`, so the rename itself is durable.
void fsync_parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

void remove_quietly(const std::string& p) { (void)std::remove(p.c_str()); }

// fsync an already-closed file by name, then rename it over `path`. Removes tmp on failure.
void commit(const std::string& tmp, const std::string& path) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) {
    int e = errno;
    remove_quietly(tmp);
    UNET_FAIL("cannot write '", path, "': temporary file '", tmp, "' vanished: ", errno_text(e));
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    remove_quietly(tmp);
    UNET_FAIL("cannot write '", path, "': fsync failed: ", errno_text(e));
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    remove_quietly(tmp);
    UNET_FAIL("cannot write '", path, "': rename from temporary file failed: ", errno_text(e));
  }
  fsync_parent_dir(path);
}

}  // namespace

std::string atomic_temp_path(const std::string& path) {
  return path + ".tmp." + std::to_string(static_cast<long>(::getpid())) + "." +
         std::to_string(g_temp_counter.fetch_add(1));
}

void atomic_write_stream(const std::string& path, const std::function<void(std::FILE*)>& fill) {
  UNET_CHECK(!path.empty(), "cannot write a file with an empty path");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot write '", path, "': it is a directory");
  const std::string tmp = atomic_temp_path(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) {
    int e = errno;
    UNET_FAIL("cannot write '", path, "': cannot create temporary file '", tmp, "': ", errno_text(e));
  }
  try {
    fill(f);
  } catch (...) {
    std::fclose(f);
    remove_quietly(tmp);
    throw;
  }
  bool ok = std::fflush(f) == 0 && !std::ferror(f);
  int e = errno;
  if (ok && ::fsync(::fileno(f)) != 0) {
    ok = false;
    e = errno;
  }
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    remove_quietly(tmp);
    UNET_FAIL("cannot write '", path, "': write failed: ", errno_text(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e2 = errno;
    remove_quietly(tmp);
    UNET_FAIL("cannot write '", path, "': rename from temporary file failed: ", errno_text(e2));
  }
  fsync_parent_dir(path);
}

int remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) return 0;
  int removed = 0;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // "<pid>.<n>" or "<pid>.<n>.spool": the writer's pid decides whether the file is stale.
    const char* p = name.c_str() + prefix.size();
    char* after = nullptr;
    const long pid = std::strtol(p, &after, 10);
    if (after == p || *after != '.' || pid <= 0) continue;
    if (pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    if (fs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

void atomic_write_bytes(const std::string& path, const void* data, size_t bytes) {
  atomic_write_stream(path, [&](std::FILE* f) {
    if (bytes > 0 && std::fwrite(data, 1, bytes, f) != bytes)
      UNET_FAIL("cannot write '", path, "': short write: ", errno_text(errno));
  });
}

void atomic_write_via_path(const std::string& path, const std::function<void(const std::string& tmp_path)>& fill) {
  UNET_CHECK(!path.empty(), "cannot write a file with an empty path");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) UNET_FAIL("cannot write '", path, "': it is a directory");
  const std::string tmp = atomic_temp_path(path);
  try {
    fill(tmp);
  } catch (...) {
    remove_quietly(tmp);
    throw;
  }
  commit(tmp, path);
}

}  // namespace unet
