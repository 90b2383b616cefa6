#include "obs/log.h"

#include "keyrelay/ascii.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <limits.h>
#include <unistd.h>

#include "keyrelay/http.h"
#include "keyrelay/text.h"

namespace keyrelay::relay {
namespace {

std::mutex g_log_mutex;
std::atomic<int> g_min_level{static_cast<int>(LogLevel::info)};
std::atomic<bool> g_keep_query_values{false};   // the config's log_queries

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "info";
}

// "2026-11-28T13:47:45.123Z".
void append_iso_now(std::string& out) {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    out += text;
}

void write_all(const char* p, size_t left) {
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;   // stderr closed or full: a log line is never worth blocking or failing a request
        p += n;
        left -= static_cast<size_t>(n);
    }
}

// One line, one write(2): a line up to PIPE_BUF bytes reaches a pipe or an O_APPEND file whole even when other
// threads write at the same time; longer lines take the mutex so that they do not interleave either.
void write_line(const std::string& line) {
    std::unique_lock<std::mutex> lock(g_log_mutex, std::defer_lock);
    if (line.size() > PIPE_BUF) lock.lock();
    write_all(line.data(), line.size());
}

bool sensitive_name(std::string_view name) {
    static constexpr std::string_view kWords[] = {"code",     "state",     "token",     "secret", "key",
                                                  "password", "passwd",    "session",   "signature", "sig",
                                                  "auth",     "verifier",  "assertion", "jwt",       "cookie",
                                                  "credential"};
    for (std::string_view w : kWords) {
        if (icontains(name, w)) return true;
    }
    return false;
}

}  // namespace

void set_log_level(LogLevel level) { g_min_level = static_cast<int>(level); }
void set_log_query_values(bool keep) { g_keep_query_values = keep; }

void log_line(LogLevel level, std::string_view msg, const nlohmann::json& fields) {
    if (static_cast<int>(level) < g_min_level.load()) return;
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    std::string ts;
    append_iso_now(ts);
    line["ts"] = ts;
    line["level"] = level_name(level);
    line["msg"] = std::string(msg);
    if (fields.is_object()) {
        for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
    }
    // Replace invalid UTF-8 instead of throwing: a log line must never take the server down.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    write_line(text);
}

void append_json_string(std::string& out, std::string_view text) {
    static const char kHex[] = "0123456789abcdef";
    out += '"';
    size_t i = 0;
    while (i < text.size()) {
        // A run of printable ASCII that needs no escape goes in whole.
        size_t start = i;
        while (i < text.size()) {
            auto b = static_cast<unsigned char>(text[i]);
            if (b < 0x20 || b >= 0x7f || b == '"' || b == '\\') break;
            ++i;
        }
        out.append(text.substr(start, i - start));
        if (i >= text.size()) break;
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(text, i);   // 0: not a valid sequence, one byte replaced
            out.append(n == 0 ? std::string_view("\ufffd") : text.substr(i, n));
            i += n == 0 ? 1 : n;
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else {   // a control character (below 0x20, or 0x7f): the run above stops at nothing else
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
        ++i;
    }
    out += '"';
}

void log_request(const RequestLogLine& r) {
    if (static_cast<int>(LogLevel::info) < g_min_level.load(std::memory_order_relaxed)) return;
    std::string line;
    line.reserve(256);
    line += "{\"ts\":\"";
    append_iso_now(line);
    line += "\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":";
    append_json_string(line, r.request_id);
    line += ",\"method\":";
    append_json_string(line, r.method);
    line += ",\"path\":";
    append_json_string(line, r.path);
    // duration_ms with three decimals, from whole microseconds.
    const long long us = r.duration_ms > 0 ? std::llround(r.duration_ms * 1000.0) : 0;
    char numbers[80];
    std::snprintf(numbers, sizeof numbers, ",\"status\":%d,\"duration_ms\":%lld.%03lld", r.status, us / 1000,
                  us % 1000);
    line += numbers;
    line += ",\"remote\":";
    append_json_string(line, r.remote);
    if (!r.provider.empty()) {
        line += ",\"provider\":";
        append_json_string(line, r.provider);
    }
    line += "}\n";
    write_line(line);
}

std::string redact_target(std::string_view target) {
    size_t q = target.find('?');
    if (q == std::string_view::npos) return std::string(target);
    std::string out(target.substr(0, q + 1));
    std::string_view query = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        std::string_view pair = query.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        if (pos > 0) out += '&';
        size_t eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        // The name is checked decoded, so "acc%65ss_token" is caught too; an undecodable name is redacted.
        auto decoded = percent_decode(name, true);
        if (eq != std::string_view::npos && (!decoded.ok() || sensitive_name(*decoded))) {
            out.append(name);
            out += "=REDACTED";
        } else if (eq != std::string_view::npos && !g_keep_query_values) {
            out.append(name);
            out += "=*";
        } else {
            out.append(pair);
        }
        if (amp == std::string_view::npos) break;
        pos = amp + 1;
    }
    return out;
}

}  // namespace keyrelay::relay
