// is_json_text (keyrelay/text.h), the relay's one-pass check of a provider's JSON answer, against nlohmann/json's
// validating parser on the same bytes. Properties: both accept exactly the same inputs (RFC 8259 JSON texts in
// UTF-8), except that nlohmann takes a NUL byte for the end of its input (so it accepts "1\0anything"); a NUL is
// never part of a JSON text (RFC 8259 §2, §7), and is_json_text refuses every input that holds one.
#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "keyrelay/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in = fuzz::text(data, size);
    const bool ours = keyrelay::is_json_text(in);
    if (in.find('\0') != std::string_view::npos) {
        FUZZ_CHECK(!ours, "is_json_text accepted an input with a NUL byte");
        return 0;
    }
    const bool theirs = nlohmann::json::accept(in);
    FUZZ_CHECK(ours == theirs, std::string(ours ? "is_json_text accepted" : "is_json_text refused") +
                                   " what nlohmann::json::accept " + (theirs ? "accepts" : "refuses") + ": " +
                                   std::string(in.substr(0, 200)));
    return 0;
}
