// A JSON document in the data dir that relay processes on that dir share (the file-store sessions and login
// failures): re-read when another process changed it (one stat), replaced atomically (a temporary file, fsync,
// rename), mode 0600. Not thread-safe: its owner locks.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "state/file_store.h"

namespace keyrelay::relay {

class SharedJsonFile {
public:
    // <data_dir>/<name>.json, locked with <data_dir>/<name>.lock; none (memory only) when data_dir is "".
    SharedJsonFile(const std::string& data_dir, const std::string& name, std::string what);
    bool enabled() const { return !path_.empty(); }
    // The document when the file changed since the last load or save; nullopt when unchanged. A missing file gives
    // an empty object, an unreadable one too (with a warning in the log).
    std::optional<nlohmann::json> load_if_changed();
    // False (with a warning in the log) when it could not be written; the caller keeps its state in memory.
    bool save(const nlohmann::json& doc);
    // The data dir's lock for a read-modify-write; the next load_if_changed() reads the file whatever its stamp.
    Result<FileLock> lock();

private:
    std::string data_dir_;
    std::string name_;
    std::string path_;
    std::string what_;   // "sessions", "login failures": for the log
    std::string stamp_;
};

}  // namespace keyrelay::relay
