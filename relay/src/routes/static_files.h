// The page's files: GET of any path no other route serves, from the web dir (and the Wasm module's files from the
// Wasm build dir when the web dir has no copy). No dot-segments, no hidden files, no symlink out of the dir.
#pragma once

#include <httplib.h>

#include <string>

#include "config.h"
#include "http/context.h"

namespace keyrelay::relay {

class StaticFiles {
public:
    // Both dirs are resolved once; a missing web dir is logged, and every file then answers 404.
    // `port`: the relay's port once bound (the page moves to the relay's own address, Config::base_url).
    StaticFiles(const Config& config, const int& port, const std::string& web_dir, const std::string& wasm_dir);

    void handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

private:
    const Config& config_;
    const int& port_;
    std::string web_root_;    // realpath of the web dir ("" when missing)
    std::string wasm_root_;   // realpath of the Wasm build dir ("" when missing)
};

}  // namespace keyrelay::relay
