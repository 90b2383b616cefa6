#include "routes/static_files.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <sstream>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/http.h"
#include "obs/log.h"
#include "state/files.h"

namespace keyrelay::relay {

StaticFiles::StaticFiles(const Config& config, const int& port, const std::string& web_dir,
                         const std::string& wasm_dir)
    : config_(config), port_(port) {
    char resolved[PATH_MAX];
    if (::realpath(web_dir.c_str(), resolved) != nullptr) {
        web_root_ = resolved;
    } else {
        log_line(LogLevel::warn, "web dir not found; the page is not served", {{"web_dir", web_dir}});
    }
    if (::realpath(wasm_dir.c_str(), resolved) != nullptr) wasm_root_ = resolved;
}

void StaticFiles::handle(RequestContext&, const httplib::Request& req, httplib::Response& res) {
    // Without public_url the relay answers to 127.0.0.1, localhost and [::1], which are three sites to a browser,
    // each with its own cookies, while the OAuth redirect URI names one of them (Config::base_url). The page opened
    // by another name moves to that one, so the session, the state cookie and the callback all meet.
    if (config_.public_url.empty() && (req.path == "/" || req.path == "/index.html")) {
        const std::string canonical = config_.base_url(port_);
        const std::string& host = req.get_header_value("Host");
        if (!iequals(canonical.substr(canonical.find("://") + 3), host)) {
            res.set_header("Cache-Control", "no-store");
            res.set_redirect(canonical + req.target, 302);
            return;
        }
    }
    Error not_found = make_error("http.not_found", "Nothing is served at " + redact_target(req.path) + ".",
                                 "The API is under /api/, /proxy/{provider}/, /connect/, /callback/, /login, "
                                 "/logout, /healthz and /metrics; the page is at /.");
    if (web_root_.empty()) {
        send_error(res, 404, not_found);
        return;
    }
    std::string rel = req.path;   // percent-decoded by cpp-httplib
    if (rel.empty() || rel[0] != '/' || rel.find('\0') != std::string::npos ||
        rel.find('\\') != std::string::npos) {
        send_error(res, 400, "http.bad_path", "The file path is not valid.", "Use a plain path such as /app.js.");
        return;
    }
    // Refuse dot-segments and hidden files outright instead of normalizing them (path traversal).
    std::stringstream ss(rel.substr(1));
    std::string segment;
    while (std::getline(ss, segment, '/')) {
        if (!segment.empty() && segment[0] == '.') {
            send_error(res, segment == ".." || segment == "." ? 400 : 404,
                       segment == ".." || segment == "." ? "http.bad_path" : "http.not_found",
                       segment == ".." || segment == "." ? "The file path contains a dot-segment."
                                                         : "Nothing is served at this path.",
                       "Use a plain path such as /app.js.");
            return;
        }
    }
    if (rel.back() == '/') rel += "index.html";
    std::string root = web_root_;
    // The page imports wasm/keyrelay.mjs: from the Wasm build dir unless the web dir has its own copy.
    // Only the module's own files: a build dir also holds CMakeCache.txt and the like.
    auto module_file = [](const std::string& name) {
        auto ends = [&](const char* ext) {
            std::string e(ext);
            return name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
        };
        return name.rfind("keyrelay", 0) == 0 && (ends(".mjs") || ends(".wasm") || ends(".js") || ends(".cjs"));
    };
    if (rel.rfind("/wasm/", 0) == 0 && !wasm_root_.empty() && rel.find('/', 6) == std::string::npos &&
        module_file(rel.substr(6))) {
        struct stat own {};
        if (::stat((web_root_ + rel).c_str(), &own) != 0) {
            root = wasm_root_;
            rel = rel.substr(5);
        }
    }
    std::string full = root + rel;
    char resolved[PATH_MAX];
    if (::realpath(full.c_str(), resolved) == nullptr) {
        send_error(res, 404, not_found);
        return;
    }
    std::string real = resolved;
    struct stat st {};
    if (::stat(real.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        real += "/index.html";
        if (::stat(real.c_str(), &st) != 0) {
            send_error(res, 404, not_found);
            return;
        }
    }
    // Symlinks may not lead out of the served dir.
    if (real.rfind(root + "/", 0) != 0 || !S_ISREG(st.st_mode)) {
        send_error(res, 404, not_found);
        return;
    }
    std::string body;
    if (files::read_file(real, body) != 0) {
        send_error(res, 404, not_found);
        return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_content(body, content_type_for(real));
}

}  // namespace keyrelay::relay
