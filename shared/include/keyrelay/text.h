// Small text helpers shared by the core, the relay and the sandbox.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace keyrelay {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// Appends the UTF-8 encoding of a Unicode code point (RFC 3629 §3). The caller checks that cp is a valid scalar.
void utf8_append(std::string& out, uint32_t cp);

}  // namespace keyrelay
