// Small POSIX file helpers for the stores in the data dir: crash-safe writes (temp file, fsync, rename, fsync of the
// directory) and whole-file reads. Each returns 0 or an errno, never throws.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace keyrelay::relay::files {

std::string errno_text(int err);
std::string join_path(const std::string& dir, const std::string& name);
// Changes whenever the file is replaced or written (inode, size, mtime); "missing" when there is none. One stat.
std::string stamp_of(const std::string& path);

// mkdir -p with mode 0700 for every directory it creates. Returns 0 or an errno.
int make_dirs(const std::string& dir);
// Reads a whole file (and its stat when `st` is given). Returns 0, or an errno (ENOENT when it does not exist).
int read_file(const std::string& path, std::string& out, struct stat* st = nullptr);
int write_all(int fd, std::string_view data);
int fsync_dir(const std::string& dir);
// Writes `data` to a new 0600 file <path>.tmp.<pid>.<random> in the same directory and fsyncs it.
// Returns 0 with tmp_path set, or an errno (the temp file is removed).
int write_temp(const std::string& path, std::string_view data, std::string& tmp_path);

}  // namespace keyrelay::relay::files
