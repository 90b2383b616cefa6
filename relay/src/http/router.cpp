#include "http/router.h"

namespace keyrelay::relay {

void Router::add(std::string method, std::string pattern, Handler handler) {
    Route r;
    r.method = std::move(method);
    if (!pattern.empty() && pattern.back() == '*') {
        r.rest = true;
        pattern.pop_back();
    }
    size_t name = pattern.find("{name}");
    if (name == std::string::npos) {
        r.prefix = pattern;
    } else {
        r.has_name = true;
        r.prefix = pattern.substr(0, name);
        r.suffix = pattern.substr(name + 6);
    }
    r.handler = std::move(handler);
    routes_.push_back(std::move(r));
}

bool Router::match(const Route& r, std::string_view path, std::string& name) {
    if (path.compare(0, r.prefix.size(), r.prefix) != 0) return false;
    path.remove_prefix(r.prefix.size());
    if (r.has_name) {
        size_t end = path.find('/');
        if (end == 0) return false;
        name.assign(path.substr(0, end));
        path.remove_prefix(end == std::string_view::npos ? path.size() : end);
        if (path.compare(0, r.suffix.size(), r.suffix) != 0) return false;
        path.remove_prefix(r.suffix.size());
    }
    return path.empty() || (r.rest && path.front() == '/');
}

bool Router::dispatch(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) const {
    const std::string& method = req.method == "HEAD" ? std::string("GET") : req.method;
    for (const Route& r : routes_) {
        if (r.method == method && match(r, req.path, ctx.param)) {
            r.handler(ctx, req, res);
            return true;
        }
    }
    ctx.param.clear();
    if (method == "GET" && fallback_) {
        for (const Route& r : routes_) {
            std::string ignored;
            if (!r.rest && match(r, req.path, ignored)) return false;   // a fixed route, other method: 405
        }
        fallback_(ctx, req, res);
        return true;
    }
    return false;
}

bool Router::is_fallback(std::string_view path) const {
    std::string ignored;
    for (const Route& r : routes_) {
        if (match(r, path, ignored)) return false;
    }
    return true;
}

std::string Router::allowed_methods(std::string_view path) const {
    std::string out;
    for (const Route& r : routes_) {
        std::string ignored;
        if (r.rest || !match(r, path, ignored)) continue;
        if (out.find(r.method) != std::string::npos) continue;
        out += (out.empty() ? "" : ", ") + r.method;
        if (r.method == "GET") out += ", HEAD";
    }
    return out;
}

}  // namespace keyrelay::relay
