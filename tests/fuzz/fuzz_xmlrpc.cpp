// The XML-RPC decoder (decode_response, decode_call) on hostile bytes. Properties:
//  - every error is one of the documented codes, with a message and a hint;
//  - what decodes re-encodes and decodes to the same value (response, fault and call round trips);
//  - tighter Limits only ever refuse (too_deep / too_large): they never change what a document means.
#include <limits>

#include "fuzz_common.h"
#include "keyrelay/xmlrpc.h"

using namespace keyrelay;
using namespace keyrelay::xmlrpc;

namespace {

void check_decode_error(const Error& e, std::string_view wrong_root) {
    fuzz::check_error(e, "xmlrpc");
    FUZZ_CHECK(fuzz::one_of(e.code, {"xmlrpc.empty", "xmlrpc.doctype_refused", "xmlrpc.malformed", "xmlrpc.invalid",
                                     "xmlrpc.too_large", "xmlrpc.too_deep"}) ||
                   e.code == wrong_root,
               "undocumented error code " + e.code + ": " + e.message);
}

void check_response(std::string_view in) {
    auto r = decode_response(in);
    if (!r) {
        check_decode_error(r.error(), "xmlrpc.not_method_response");
    } else if (r->is_fault) {
        if (r->fault.code >= std::numeric_limits<int>::min() && r->fault.code <= std::numeric_limits<int>::max()) {
            const std::string again = encode_fault(int(r->fault.code), r->fault.string);
            auto back = decode_response(again);
            FUZZ_CHECK(back && back->is_fault, "encode_fault output does not decode as a fault: " + again);
            FUZZ_CHECK(back->fault.code == r->fault.code && back->fault.string == r->fault.string,
                       "fault round trip changed the fault: " + again);
        }
    } else {
        const std::string again = encode_response(r->value);
        auto back = decode_response(again);
        FUZZ_CHECK(back.ok(), "encode_response output does not decode: " + (back ? std::string() : back.error().message) +
                                  "\n" + again);
        FUZZ_CHECK(!back->is_fault && back->value == r->value, "response round trip changed the value: " + again);
    }

    // Tight limits refuse more, never differently.
    Limits tight;
    tight.max_depth = 2;
    tight.max_bytes = in.size();   // exactly the size: still allowed
    auto t = decode_response(in, tight);
    if (t) {
        FUZZ_CHECK(r.ok(), "accepted under tight limits, refused under the defaults: " + r.error().code);
        FUZZ_CHECK(t->is_fault == r->is_fault && t->value == r->value && t->fault.code == r->fault.code &&
                       t->fault.string == r->fault.string,
                   "tight limits changed the decoded response");
    } else if (r) {
        FUZZ_CHECK(fuzz::one_of(t.error().code, {"xmlrpc.too_deep", "xmlrpc.too_large"}),
                   "a valid response was refused under tight limits with " + t.error().code + ": " +
                       t.error().message);
    }
}

void check_call(std::string_view in) {
    auto c = decode_call(in);
    if (!c) {
        check_decode_error(c.error(), "xmlrpc.not_method_call");
        return;
    }
    FUZZ_CHECK(!c->method.empty(), "a call decoded with an empty methodName");
    const std::string again = encode_call(c->method, c->params);
    auto back = decode_call(again);
    FUZZ_CHECK(back.ok(), "encode_call output does not decode: " + (back ? std::string() : back.error().message) +
                              "\n" + again);
    FUZZ_CHECK(back->method == c->method && back->params == c->params, "call round trip changed the call: " + again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in = fuzz::text(data, size);
    check_response(in);
    check_call(in);
    return 0;
}
