#include "state/shared_json_file.h"

#include <unistd.h>

#include <cstdio>

#include "obs/log.h"
#include "state/files.h"

namespace keyrelay::relay {

using nlohmann::json;

SharedJsonFile::SharedJsonFile(const std::string& data_dir, const std::string& name, std::string what)
    : data_dir_(data_dir),
      name_(name),
      path_(data_dir.empty() ? "" : data_dir + "/" + name + ".json"),
      what_(std::move(what)) {}

Result<FileLock> SharedJsonFile::lock() {
    stamp_.clear();
    return FileLock::acquire(data_dir_, name_);
}

std::optional<json> SharedJsonFile::load_if_changed() {
    if (path_.empty()) return std::nullopt;
    std::string stamp = files::stamp_of(path_);
    if (stamp == stamp_) return std::nullopt;
    stamp_ = stamp;
    std::string text;
    if (files::read_file(path_, text) != 0) return json::object();
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        log_line(LogLevel::warn, what_ + " file unreadable; starting from none", {{"path", path_}});
        return json::object();
    }
    return doc;
}

bool SharedJsonFile::save(const json& doc) {
    if (path_.empty()) return false;
    std::string tmp;
    if (files::write_temp(path_, doc.dump(), tmp) != 0 || std::rename(tmp.c_str(), path_.c_str()) != 0) {
        if (!tmp.empty()) ::unlink(tmp.c_str());
        log_line(LogLevel::warn, "cannot write the " + what_ + " file; they stay in this process's memory",
                 {{"path", path_}});
        return false;
    }
    stamp_ = files::stamp_of(path_);
    return true;
}

}  // namespace keyrelay::relay
