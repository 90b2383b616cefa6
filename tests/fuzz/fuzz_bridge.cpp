// The XML-RPC bridge (keap_bridge.h) on hostile calls and hostile REST answers. The input is a methodCall, then
// REST answers in fuzz_common.h's response layout, each after a line "=====":
//
//   <?xml version="1.0"?><methodCall>...</methodCall>
//   =====
//   200
//   Content-Type: application/json
//
//   {"contacts":[...],"next_page_token":"T"}
//
// Properties:
//  - every step is a request for Keap REST v2 (GET, POST or PATCH on /crm/rest/v2/..., no CR or LF, a JSON body or
//    none), an answer, or a fault with a faultString;
//  - a conversation ends within max_pages + 3 requests, whatever Keap answers;
//  - what the bridge writes is a methodResponse that the codec decodes: the same value, or the same fault;
//  - describe() agrees with begin(): a fault for the same calls, and the same first request.
#include "fuzz_common.h"
#include "keyrelay/keap_bridge.h"
#include "keyrelay/text.h"

using namespace keyrelay;
namespace bridge = keyrelay::keap::bridge;

namespace {

void check_request(const HttpRequest& r) {
    FUZZ_CHECK(r.method == "GET" || r.method == "POST" || r.method == "PATCH", "method " + r.method);
    FUZZ_CHECK(r.url.rfind("/crm/rest/v2/", 0) == 0, "not a REST v2 path: " + r.url);
    FUZZ_CHECK(!has_line_break(r.url), "a line break in the URL: " + r.url);
    for (char c : r.url) FUZZ_CHECK(c > ' ' && c < 0x7f, "a byte a URL cannot carry: " + r.url);
    FUZZ_CHECK(r.body.empty() || is_json_text(r.body), "a body that is not JSON: " + r.body);
    FUZZ_CHECK((r.method == "GET") == r.body.empty(), r.method + " with body \"" + r.body + "\"");
}

void check_final(const bridge::Step& s) {
    const std::string xml = bridge::encode(s);
    auto back = xmlrpc::decode_response(xml);
    FUZZ_CHECK(back.ok(), "the bridge wrote XML the codec cannot read: " + xml);
    if (s.kind == bridge::Step::Kind::fault) {
        FUZZ_CHECK(!s.fault.string.empty(), "a fault without a faultString");
        FUZZ_CHECK(back->is_fault && back->fault.code == s.fault.code, "fault changed in encoding: " + xml);
    } else if (!s.written.empty()) {   // a list answer, written row by row: an array of structs
        FUZZ_CHECK(!back->is_fault && back->value.type == xmlrpc::Value::Type::array, "a list answer that is not "
                   "an array: " + xml);
        for (const auto& row : back->value.array) {
            FUZZ_CHECK(row.type == xmlrpc::Value::Type::struct_, "a row that is not a struct: " + xml);
        }
    } else {
        FUZZ_CHECK(!back->is_fault && back->value == s.value, "answer changed in encoding: " + xml);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in = fuzz::text(data, size);
    constexpr std::string_view kSeparator = "\n=====\n";
    size_t cut = in.find(kSeparator);
    const std::string_view call = in.substr(0, cut);
    std::string_view answers = cut == std::string_view::npos ? std::string_view() : in.substr(cut + kSeparator.size());

    bridge::Options options;
    options.max_pages = 5;
    bridge::Conversation c;
    bridge::Step s = bridge::begin(call, c, options);

    const bridge::Plan plan = bridge::describe(call, options);
    FUZZ_CHECK(plan.ok == (s.kind != bridge::Step::Kind::fault), "describe and begin disagree on a fault");
    if (s.kind == bridge::Step::Kind::send) {
        FUZZ_CHECK(!plan.calls.empty() && plan.calls[0].request.url == s.request.url, "describe's first call differs");
    } else if (s.kind == bridge::Step::Kind::fault) {
        FUZZ_CHECK(plan.fault.string == s.fault.string, "describe's fault differs");
    }

    int sent = 0;
    while (s.kind == bridge::Step::Kind::send) {
        check_request(s.request);
        FUZZ_CHECK(++sent <= options.max_pages + 3, "the conversation does not end");
        if (answers.empty()) return 0;
        cut = answers.find(kSeparator);
        const HttpResponse answer = fuzz::response_from(answers.substr(0, cut));
        answers = cut == std::string_view::npos ? std::string_view() : answers.substr(cut + kSeparator.size());
        s = bridge::resume(c, answer);
    }
    check_final(s);
    return 0;
}
