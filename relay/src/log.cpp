#include "log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "keyrelay/http.h"

namespace keyrelay::relay {
namespace {

std::mutex g_log_mutex;
std::atomic<int> g_min_level{static_cast<int>(LogLevel::info)};

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "info";
}

std::string iso_now() {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool sensitive_name(std::string_view name) {
    std::string n;
    for (char c : name) n += lower_ascii(c);
    static const char* const kWords[] = {"code", "state", "token", "secret", "key", "password", "passwd", "session",
                                         "signature", "sig", "auth", "verifier", "assertion", "jwt", "cookie",
                                         "credential"};
    for (const char* w : kWords) {
        if (n.find(w) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

void set_log_level(LogLevel level) { g_min_level = static_cast<int>(level); }

void log_line(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
    if (static_cast<int>(level) < g_min_level.load()) return;
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    line["ts"] = iso_now();
    line["level"] = level_name(level);
    line["msg"] = std::string(msg);
    if (fields.is_object()) {
        for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
    }
    // Replace invalid UTF-8 instead of throwing: a log line must never take the server down.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::lock_guard<std::mutex> lock(g_log_mutex);
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
}

std::string redact_target(std::string_view target) {
    size_t q = target.find('?');
    if (q == std::string_view::npos) return std::string(target);
    std::string out(target.substr(0, q + 1));
    std::string_view query = target.substr(q + 1);
    size_t pos = 0;
    bool first = true;
    while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        std::string_view pair = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        if (!first) out += '&';
        first = false;
        size_t eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        // The name is checked decoded, so "acc%65ss_token" is caught too; an undecodable name is redacted.
        auto decoded = percent_decode(name, true);
        if (eq != std::string_view::npos && (!decoded.ok() || sensitive_name(*decoded))) {
            out.append(name);
            out += "=REDACTED";
        } else {
            out.append(pair);
        }
        if (amp == std::string_view::npos) break;
        pos = amp + 1;
    }
    return out;
}

}  // namespace keyrelay::relay
