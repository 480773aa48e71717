// Atomic file output: a file is either fully written or not touched at all.
//
// Every writer fills a temporary file "<path>.tmp.<pid>.<n>" in the target's own directory (so the
// final rename() never crosses a file system), flushes it, fsync()s it, and only then renames it
// over <path>; the directory is fsync'd afterwards (best effort). On ANY failure (the callback
// throws, a write fails, the disk is full, the directory does not exist, <path> is a directory)
// the temporary file is removed and a unet::Error naming <path> and the reason is thrown; an
// existing <path> is left exactly as it was.
#pragma once
#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

namespace unet {

// The temporary name atomic_write_* uses for `path` (unique per process and call).
std::string atomic_temp_path(const std::string& path);

// Removes the temporaries "<path>.tmp.<pid>.<n>" (and a ".spool" beside one) that a process no longer
// running left behind when it was killed while writing `path`; those of live processes stay.
// Returns how many files were removed. Cheap when there are none: one directory listing.
int remove_stale_temporaries(const std::string& path);

// Write `bytes` bytes to `path` atomically.
void atomic_write_bytes(const std::string& path, const void* data, size_t bytes);

// Open the temporary file with fopen("wb"), hand it to `fill` (which writes through stdio; it may
// throw), then flush, fsync, close and rename. `fill` must not fclose the FILE.
void atomic_write_stream(const std::string& path, const std::function<void(std::FILE*)>& fill);

// For writers that need a path of their own (libtiff): `fill(tmp_path)` must create and close the
// file at tmp_path; it is then fsync'd and renamed over `path`.
void atomic_write_via_path(const std::string& path, const std::function<void(const std::string& tmp_path)>& fill);

}  // namespace unet
