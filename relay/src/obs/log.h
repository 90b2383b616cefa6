// Structured logs: one JSON object per line on stderr. Callers pass only values that are safe to show: never a
// token, secret, cookie, password or authorization code. Request targets go through redact_target() first.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace keyrelay::relay {

enum class LogLevel { debug, info, warn, error };

// Writes {"ts":..., "level":..., "msg":..., <fields>} as one line (thread-safe, flushed).
void log_line(LogLevel level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

// The access line of one request, {"ts","level":"info","msg":"request","request_id","method","path","status",
// "duration_ms","remote"[,"provider"]}, written with one write(2). `path` must already be redacted (redact_target).
struct RequestLogLine {
    std::string_view request_id;
    std::string_view method;
    std::string_view path;
    int status = 0;
    double duration_ms = 0;
    std::string_view remote;
    std::string_view provider;   // empty: not written
};
void log_request(const RequestLogLine& line);

// Appends `text` as a JSON string (quotes included) to `out`: RFC 8259 §7 escapes; invalid UTF-8 becomes U+FFFD, as
// log_line does, so a hostile path cannot break the line.
void append_json_string(std::string& out, std::string_view text);

// Sets the minimum level written (default info).
void set_log_level(LogLevel level);

// "/callback/keap?code=abc&state=xyz&scope=full" -> "/callback/keap?code=REDACTED&state=REDACTED&scope=full".
// Every query value whose name suggests a credential (code, state, token, secret, key, password, session,
// signature, auth, verifier, assertion, jwt) is replaced, whatever the path.
std::string redact_target(std::string_view target);

}  // namespace keyrelay::relay
