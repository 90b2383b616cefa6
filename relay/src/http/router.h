// The relay's route table: which handler answers a method and path. Patterns are literal paths with at most one
// "{name}" segment (one path segment, captured) and an optional trailing "*" (the rest of the path: empty or
// starting with "/"). Matched by plain string comparison, in the order added; HEAD is answered by the GET route.
#pragma once

#include <httplib.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/context.h"

namespace keyrelay::relay {

using Handler = std::function<void(RequestContext&, const httplib::Request&, httplib::Response&)>;

class Router {
public:
    void add(std::string method, std::string pattern, Handler handler);
    // The handler for GET or HEAD requests no route matches (the page's files).
    void fallback(Handler handler) { fallback_ = std::move(handler); }

    // Runs the matching handler (setting ctx.param) and returns true; false when nothing matches.
    bool dispatch(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) const;
    // True when no route matches `path` whatever the method: the fallback (the page's files) answers it.
    bool is_fallback(std::string_view path) const;
    // "GET, HEAD" / "POST": the methods of the fixed routes matching `path` (for a 405), "" when none does.
    // Routes with a trailing "*" are not counted.
    std::string allowed_methods(std::string_view path) const;

private:
    struct Route {
        std::string method;
        std::string prefix;   // before {name} (or the whole literal path)
        std::string suffix;   // after {name}
        bool has_name = false;
        bool rest = false;    // trailing "*"
        Handler handler;
    };
    static bool match(const Route& r, std::string_view path, std::string& name);

    std::vector<Route> routes_;
    Handler fallback_;
};

}  // namespace keyrelay::relay
