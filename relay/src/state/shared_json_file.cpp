#include "state/shared_json_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "obs/log.h"
#include "state/files.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

}  // namespace

std::optional<json> SharedJsonFile::load_if_changed() {
    if (path_.empty()) return std::nullopt;
    std::string stamp = files::stamp_of(path_);
    if (stamp == stamp_) return std::nullopt;
    stamp_ = stamp;
    std::ifstream in(path_, std::ios::binary);
    if (!in) return json::object();
    std::stringstream ss;
    ss << in.rdbuf();
    json doc = json::parse(ss.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        log_line(LogLevel::warn, what_ + " file unreadable; starting from none", {{"path", path_}});
        return json::object();
    }
    return doc;
}

bool SharedJsonFile::save(const json& doc) {
    if (path_.empty()) return false;
    std::string text = doc.dump();
    std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    if (ok) {
        ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ok = ::fsync(fd) == 0 && ok;
        ::close(fd);
        ok = ok && ::rename(tmp.c_str(), path_.c_str()) == 0;
    }
    if (!ok) {
        ::unlink(tmp.c_str());
        log_line(LogLevel::warn, "cannot write the " + what_ + " file; they stay in this process's memory",
                 {{"path", path_}});
        return false;
    }
    stamp_ = files::stamp_of(path_);
    return true;
}

}  // namespace keyrelay::relay
