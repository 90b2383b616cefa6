// The page's login: POST /login, POST /logout, GET /api/session (docs/api.md "Page sessions").
#pragma once

#include <httplib.h>

#include <map>
#include <string>

#include "config.h"
#include "http/caller.h"
#include "http/context.h"
#include "state/login_throttle.h"
#include "state/sessions.h"

namespace keyrelay::relay {

class AuthRoutes {
public:
    // Hashes the configured users' passwords once (sandbox mode: demo / demo).
    AuthRoutes(const Config& config, Callers& callers, SessionStore& sessions, LoginThrottle& throttle);

    void login(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);
    void logout(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);
    void session(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

private:
    const Config& config_;
    Callers& callers_;
    SessionStore& sessions_;
    LoginThrottle& throttle_;
    std::map<std::string, std::string> password_hashes_;   // username -> hash
    std::string dummy_hash_;                               // equalizes timing for unknown users
};

}  // namespace keyrelay::relay
