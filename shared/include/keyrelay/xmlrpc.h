// XML-RPC (http://xmlrpc.com/spec.md) value model, encoder and a decoder that is safe on hostile input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyrelay/result.h"

namespace keyrelay::xmlrpc {

struct Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Struct = std::vector<Member>;   // document order kept

struct Value {
    enum class Type { nil, integer, boolean, string, double_, datetime, base64, array, struct_ };
    Type type = Type::nil;
    int64_t i = 0;          // integer (int / i4 / i8)
    bool b = false;         // boolean
    double d = 0;           // double
    std::string s;          // string; datetime as written ("20260102T03:04:05"); base64 as DECODED bytes
    Array array;            // array
    Struct members;         // struct

    static Value nil();
    static Value integer(int64_t v);
    static Value boolean(bool v);
    static Value string(std::string v);
    static Value double_(double v);
    static Value datetime(std::string iso8601);
    static Value base64(std::string bytes);
    static Value array_of(Array items);
    static Value struct_of(Struct members);

    // Member lookup for structs; nullptr when absent or not a struct.
    const Value* get(std::string_view name) const;
};

bool operator==(const Value& a, const Value& b);
inline bool operator!=(const Value& a, const Value& b) { return !(a == b); }

// <?xml version="1.0"?><methodCall><methodName>..</methodName><params>..</params></methodCall>
// Strings are escaped (& < > " '); control characters that XML 1.0 forbids are dropped.
// Integers outside the 32-bit range are written as <i8>. Doubles are written in plain decimal with round-trip
// precision; NaN and infinities, which XML-RPC cannot carry, are sent as the <string> "NaN", "Infinity", "-Infinity".
std::string encode_call(std::string_view method, const Array& params);
// A methodResponse carrying one value, or a fault (faultCode int, faultString string).
std::string encode_response(const Value& value);
std::string encode_fault(int code, std::string_view message);

// A methodResponse whose value is an array of structs, written one member at a time: for answers too large to hold
// as Values first (the bridge's 1,000-contact pages). The document is byte for byte what encode_response writes for
// the same Value.
class ArrayResponseWriter {
public:
    ArrayResponseWriter();
    void begin_struct();
    // A member of the struct begun last, as encode_response writes a Value of that type.
    void int_member(std::string_view name, int64_t value);
    void string_member(std::string_view name, std::string_view text);
    void datetime_member(std::string_view name, std::string_view iso8601);
    void end_struct();
    size_t items() const { return items_; }
    void reserve(size_t more_bytes) { out_.reserve(out_.size() + more_bytes); }
    std::string finish() &&;   // the whole document

private:
    void begin_member(std::string_view name);
    std::string out_;
    size_t items_ = 0;
};

struct Limits {
    size_t max_bytes = 16 * 1024 * 1024;   // whole document
    int max_depth = 64;                    // nesting of value/array/struct
};

struct Fault {
    int64_t code = 0;
    std::string string;
};

struct Response {
    bool is_fault = false;
    Value value;    // when !is_fault
    Fault fault;    // when is_fault
};

// Decodes a methodResponse. A <fault> is NOT an error: it comes back as Response{is_fault=true}.
// Errors:
//  "xmlrpc.empty"               the body is empty or only whitespace
//  "xmlrpc.doctype_refused"     a DOCTYPE or entity declaration (XXE / entity expansion is never processed)
//  "xmlrpc.malformed"           not well-formed XML; message names line and column
//  "xmlrpc.not_method_response" well-formed, but the root element is another one; message names it
//  "xmlrpc.invalid"             a methodResponse that breaks the XML-RPC structure (bad int, unknown type, ...)
//  "xmlrpc.too_large", "xmlrpc.too_deep"
Result<Response> decode_response(std::string_view body, const Limits& limits = {});

struct Call {
    std::string method;
    Array params;
};
// Decodes a methodCall (used by the sandbox). Same error codes, with "xmlrpc.not_method_call".
Result<Call> decode_call(std::string_view body, const Limits& limits = {});

}  // namespace keyrelay::xmlrpc
