// Who is calling: a page user (session cookie, plus X-Requested-With for anything that changes state) or a
// server-to-server caller (Authorization: Bearer <KEYRELAY_API_KEY>). Also the cookies that carry the session.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "keyrelay/result.h"
#include "state/sessions.h"

namespace keyrelay::relay {

enum class Caller { none, page, api_key };

class Callers {
public:
    Callers(const Config& config, SessionStore& sessions) : config_(config), sessions_(sessions) {}

    // "__Host-keyrelay_session" when the relay terminates TLS (RFC 6265bis §4.1.3.2), "keyrelay_session" otherwise.
    std::string session_cookie_name() const;
    // A Set-Cookie value: HttpOnly, the SameSite given, Secure when the relay terminates TLS.
    std::string cookie(const std::string& name, const std::string& value, const std::string& same_site,
                       const std::string& path, int64_t max_age) const;
    std::optional<std::string> session_id(const httplib::Request& req) const;
    // nullopt without a live session. Errors: "store.*" when the shared session store cannot be reached.
    Result<std::optional<Session>> session_of(const httplib::Request& req) const;
    static bool has_csrf_header(const httplib::Request& req);
    // An Authorization value "Bearer <key>" (the scheme in any case), compared in constant time.
    static bool is_bearer(std::string_view authorization, const std::string& key);

    // The page session, or nullopt after answering 401 auth.no_session or 503 store.unavailable (as a page when
    // `navigation` and the client wants HTML).
    std::optional<Session> page_session(const httplib::Request& req, httplib::Response& res,
                                        bool navigation = false) const;
    // The caller, or Caller::none after answering 401 auth.bad_api_key / auth.no_session, 403 csrf.missing_header, or
    // 503 store.unavailable when the session store cannot be reached.
    Caller authenticate(const httplib::Request& req, httplib::Response& res, bool need_csrf_for_page) const;

    static Error no_session_error();
    static Error csrf_error();

private:
    const Config& config_;
    SessionStore& sessions_;
};

}  // namespace keyrelay::relay
