#include "log.h"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyrelay/http.h"
#include "keyrelay/text.h"

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

// "2026-11-28T13:47:45.123Z". The date and time of the current second are formatted once per thread and second.
void append_iso_now(std::string& out) {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    thread_local std::time_t cached_secs = -1;
    thread_local char cached[96];
    if (secs != cached_secs) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_secs = secs;
    }
    out += cached;
    out += '.';
    out += static_cast<char>('0' + ms / 100);
    out += static_cast<char>('0' + ms / 10 % 10);
    out += static_cast<char>('0' + ms % 10);
    out += 'Z';
}

std::string iso_now() {
    std::string out;
    append_iso_now(out);
    return out;
}

void append_number(std::string& out, long long n) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, static_cast<size_t>(end - digits));
}

thread_local bool t_batching = false;
thread_local std::string t_batch;

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
    if (t_batching) {
        t_batch += line;
        return;
    }
    std::unique_lock<std::mutex> lock(g_log_mutex, std::defer_lock);
    if (line.size() > PIPE_BUF) lock.lock();
    write_all(line.data(), line.size());
}

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool sensitive_name(std::string_view name) {
    std::string n;
    for (char c : name) n += lower_ascii(c);
    static constexpr std::string_view kWords[] = {"code",     "state",     "token",     "secret", "key",
                                                  "password", "passwd",    "session",   "signature", "sig",
                                                  "auth",     "verifier",  "assertion", "jwt",       "cookie",
                                                  "credential"};
    for (std::string_view w : kWords) {
        if (n.find(w) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

void set_log_level(LogLevel level) { g_min_level = static_cast<int>(level); }

namespace {
std::atomic<bool> g_keep_query_values{false};
}

void set_log_query_values(bool keep) { g_keep_query_values = keep; }

void log_batch_begin() { t_batching = true; }

void log_batch_end() {
    log_batch_flush();
    t_batching = false;
}

size_t log_batch_bytes() { return t_batch.size(); }

void log_batch_flush() {
    if (t_batch.empty()) return;
    // A regular file takes the whole batch in one write(2): Linux writes it whole, not interleaved with another
    // thread's write to the same file (the file position lock, or the inode lock with O_APPEND).
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
        write_all(t_batch.data(), t_batch.size());
        t_batch.clear();
        if (t_batch.capacity() > (1u << 20)) t_batch.shrink_to_fit();
        return;
    }
    // A pipe or a socket: pieces of whole lines, each at most PIPE_BUF bytes (or one longer line under the mutex), so
    // that no line is ever interleaved with another thread's.
    const char* p = t_batch.data();
    const char* end = p + t_batch.size();
    while (p < end) {
        const char* cut = p;
        for (;;) {
            const char* nl = static_cast<const char*>(std::memchr(cut, '\n', static_cast<size_t>(end - cut)));
            const char* line_end = nl == nullptr ? end : nl + 1;
            if (cut != p && static_cast<size_t>(line_end - p) > PIPE_BUF) break;
            cut = line_end;
            if (cut == end || static_cast<size_t>(cut - p) > PIPE_BUF) break;   // the end, or one long line
        }
        if (static_cast<size_t>(cut - p) > PIPE_BUF) {
            std::lock_guard<std::mutex> lock(g_log_mutex);
            write_all(p, static_cast<size_t>(cut - p));
        } else {
            write_all(p, static_cast<size_t>(cut - p));
        }
        p = cut;
    }
    t_batch.clear();
    if (t_batch.capacity() > (1u << 20)) t_batch.shrink_to_fit();
}

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
            size_t n = utf8_sequence_length(text, i);
            if (n == 0) {
                out += "\ufffd";
                ++i;
            } else {
                out.append(text.substr(i, n));
                i += n;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
}

void log_request(const RequestLogLine& r) {
    if (static_cast<int>(LogLevel::info) < g_min_level.load(std::memory_order_relaxed)) return;
    // Straight into the loop's batch when there is one; otherwise into this thread's buffer, then one write.
    thread_local std::string buffer;
    std::string& line = t_batching ? t_batch : buffer;
    if (!t_batching) line.clear();
    line += "{\"ts\":\"";
    append_iso_now(line);
    line += "\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":";
    append_json_string(line, r.request_id);
    line += ",\"method\":";
    append_json_string(line, r.method);
    line += ",\"path\":";
    append_json_string(line, r.path);
    // duration_ms with three decimals, formatted from whole microseconds (no printf on this path).
    const long long us = r.duration_ms > 0 ? std::llround(r.duration_ms * 1000.0) : 0;
    const long long frac = us % 1000;
    line += ",\"status\":";
    append_number(line, r.status);
    line += ",\"duration_ms\":";
    append_number(line, us / 1000);
    line += '.';
    line += static_cast<char>('0' + frac / 100);
    line += static_cast<char>('0' + frac / 10 % 10);
    line += static_cast<char>('0' + frac % 10);
    line += ",\"remote\":";
    append_json_string(line, r.remote);
    if (!r.provider.empty()) {
        line += ",\"provider\":";
        append_json_string(line, r.provider);
    }
    line += "}\n";
    if (!t_batching) {
        write_line(line);
        if (line.capacity() > (1u << 16)) line = std::string();
    }
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
