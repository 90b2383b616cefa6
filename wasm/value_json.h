// A decoded XML-RPC value as JSON text, for api.js to turn into JS values with one JSON.parse.
//
// Creating a decoded value through embind costs a JS call per value and per struct member (a 1,000-contact
// DataService.query has about 20,000), which took longer than decoding the XML; one JSON.parse builds the same
// value several times faster. JSON has no dates and no bytes: those are written as tagged objects
// {"\u0000": ms since 1970} and {"\u0000": [offset, length]} (the bytes go into a side buffer), which api.js
// replaces with a Date and a Uint8Array. No struct member can be named "\u0000": XML 1.0 §2.2 excludes U+0000 from
// documents, raw or as a character reference, and the decoder refuses it. JSON.parse makes every member an own
// data property, so a member named "__proto__" never sets a prototype.
//
// Compiled at -O2 like the core (wasm.cmake): it runs once per value of every decoded response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keyrelay/xmlrpc.h"

namespace keyrelay::wasm {

// Appends v to json (and the bytes of every base64 value to bytes). Returns true when it wrote a tagged object.
bool write_json(const xmlrpc::Value& v, std::string& json, std::string& bytes);

// http://xmlrpc.com/spec.md: dateTime.iso8601 is written "19980717T14:08:55" and carries no time zone; keyrelay
// reads it as UTC, so a Date survives encodeCall -> decodeResponse unchanged. The forms the decoder accepts: the
// spec's, "1998-07-17T14:08:55", colons optional, an optional fraction, and "Z" or "+hh:mm"/"-hh:mm".
// -> the instant in ms since 1970 (years below 100 stay as written; a 31 February, hour 24 or second 60 roll over
// as Date's setters do), or false: then the JS value is the string as written, so nothing the server sent is lost.
bool datetime_ms(std::string_view s, int64_t& out);

}  // namespace keyrelay::wasm
