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

// Sets the minimum level written (default info).
void set_log_level(LogLevel level);

// "/callback/keap?code=abc&state=xyz&scope=full" -> "/callback/keap?code=REDACTED&state=REDACTED&scope=full".
// Every query value whose name suggests a credential (code, state, token, secret, key, password, session,
// signature, auth, verifier, assertion, jwt) is replaced, whatever the path.
std::string redact_target(std::string_view target);

}  // namespace keyrelay::relay
