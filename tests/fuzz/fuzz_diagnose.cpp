// diagnose() for each Expect, and html_title(), on hostile responses (status, headers and body from the input,
// see fuzz_common.h). Properties:
//  - a diagnosis always has a code and a one-line summary, and anything but "ok" a hint for a person; neither
//    holds a control character (they are shown as text: header values and bodies must not bring any in);
//  - retry_after_seconds is only set for a rate limit (rate_limited, or a gateway's quota fault), never negative;
//  - html_title() is trimmed and has no line breaks.
#include "fuzz_common.h"
#include "keyrelay/diagnose.h"

using namespace keyrelay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const HttpResponse r = fuzz::response_from(fuzz::text(data, size));
    for (Expect expect : {Expect::token, Expect::json, Expect::xmlrpc}) {
        const Diagnosis d = diagnose(r, expect);
        FUZZ_CHECK(!d.code.empty(), "a diagnosis without a code");
        FUZZ_CHECK(!d.summary.empty(), "a diagnosis without a summary: " + d.code);
        FUZZ_CHECK(!fuzz::has_control(d.summary), "a control character in the summary: " + d.summary);
        FUZZ_CHECK(d.code == "ok" || !d.hint.empty(), "a diagnosis without a hint: " + d.code);
        FUZZ_CHECK(!fuzz::has_control(d.hint), "a control character in the hint: " + d.hint);
        if (d.retry_after_seconds) {
            // A gateway fault that is a quota or spike-arrest fault is a rate limit too (gateway_fault()).
            FUZZ_CHECK(d.code == "rate_limited" || d.code == "gateway_fault", "retry_after_seconds set for " + d.code);
            FUZZ_CHECK(*d.retry_after_seconds >= 0, "negative retry_after_seconds");
        }
    }
    const std::string title = html_title(r.body);
    FUZZ_CHECK(title.find_first_of("\r\n") == std::string::npos, "a line break in the title: " + title);
    FUZZ_CHECK(title.empty() || (title.front() != ' ' && title.back() != ' '), "an untrimmed title: " + title);
    return 0;
}
