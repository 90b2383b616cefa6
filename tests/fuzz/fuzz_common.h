// Shared by the libFuzzer targets: how an input becomes an HTTP response, and how a broken property stops the run.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

// A property that must hold for every input. libFuzzer treats the abort as a crash and saves the input.
#define FUZZ_CHECK(cond, detail)                                                                  \
    do {                                                                                          \
        if (!(cond)) ::fuzz::fail(__FILE__, __LINE__, #cond, std::string_view(detail));           \
    } while (0)

namespace fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view detail) {
    std::fprintf(stderr, "%s:%d: property does not hold: %s\n  %.*s\n", file, line, cond, int(detail.size()),
                 detail.data());
    std::abort();
}

inline std::string_view text(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Input layout, readable in the seed corpora while every byte stays mutable:
//
//   429 Too Many Requests        a status line: up to 3 digits, the rest of the line is ignored
//   Retry-After: 30              header lines "Name: value" (CR LF or LF), up to an empty line
//
//   {"message":"..."}            the body: everything after the empty line
//
// An input that does not start with a digit is a body answered with 200 and no headers.
inline keyrelay::HttpResponse response_from(std::string_view in) {
    keyrelay::HttpResponse r;
    if (in.empty() || in.front() < '0' || in.front() > '9') {
        r.status = 200;
        r.body = std::string(in);
        return r;
    }
    size_t i = 0;
    while (i < in.size() && i < 3 && in[i] >= '0' && in[i] <= '9') r.status = r.status * 10 + (in[i++] - '0');
    size_t eol = in.find('\n', i);
    if (eol == std::string_view::npos) return r;
    in.remove_prefix(eol + 1);
    for (;;) {
        eol = in.find('\n');
        std::string_view line = in.substr(0, eol);
        in = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;
        const size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            r.headers.add(std::string(line.substr(0, colon)), std::string(value));
        }
        if (eol == std::string_view::npos) return r;
    }
    r.body = std::string(in);
    return r;
}

inline bool one_of(std::string_view code, std::initializer_list<std::string_view> codes) {
    for (auto c : codes) {
        if (c == code) return true;
    }
    return false;
}

// Every error the core returns is {code, message, hint}: all three say something.
inline void check_error(const keyrelay::Error& e, std::string_view where) {
    FUZZ_CHECK(!e.code.empty(), std::string(where) + ": empty error code");
    FUZZ_CHECK(!e.message.empty(), std::string(where) + ": " + e.code + " with an empty message");
    FUZZ_CHECK(!e.hint.empty(), std::string(where) + ": " + e.code + " with an empty hint: " + e.message);
}

inline bool has_control(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return true;
    }
    return false;
}

}  // namespace fuzz
