// Internal to the bridge: a REST v2 contact reduced to the members the field map reads, from a parsed JSON
// object, or streamed out of a list page without building its DOM (a 1,000-contact page is a few hundred KB; its
// DOM is tens of thousands of allocations). Both readers apply the same rules, so a contact reads the same either
// way: a member of the wrong type counts as absent, and for a repeated member the last one wins.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json_util.h"

namespace keyrelay::keap::bridge {

// One entry of email_addresses / phone_numbers / addresses: the string members the field map reads, by their
// index in kEntryKeys ("field", the entry's tag, then the value members). Other members are not kept.
inline constexpr std::string_view kEntryKeys[] = {"field",  "email",  "number",      "line1",
                                                  "locality", "region", "postal_code", "country_code"};
constexpr size_t kEntryKeyCount = sizeof kEntryKeys / sizeof kEntryKeys[0];
constexpr size_t kEntryTag = 0;
// The index of a member name in kEntryKeys; nullopt for a member the map does not read.
std::optional<size_t> entry_key(std::string_view name);

struct RestEntry {
    std::array<std::optional<std::string>, kEntryKeyCount> strings;
    const std::string* get(size_t key) const { return strings[key] ? &*strings[key] : nullptr; }
};

struct RestContact {
    std::optional<int64_t> id, owner_id;   // v2 ids are strings ("42"); integers are accepted too
    std::optional<std::string> given_name, family_name, job_title, create_time, update_time;
    std::optional<std::string> company_name;   // company.company_name
    std::vector<RestEntry> email_addresses, phone_numbers, addresses;   // object entries only
    std::vector<int64_t> tag_ids;   // the entries that are ids
};

RestContact rest_contact(const nlohmann::json& contact);

// Reads a list page, {"contacts":[...], "next_page_token":"..."}, as it streams: `each` gets every contact in order
// as soon as it has been read (the same object each time, reused: copy what must outlive the call; an entry of the
// list that is not an object is a contact with nothing the map reads). Returns the next_page_token ("" when absent
// or not a string), or nullopt when the body is not JSON, or not an object with one "contacts" array; `each` may
// have been called before that is known.
std::optional<std::string> read_contact_page(std::string_view body,
                                             const std::function<void(const RestContact&)>& each);

}  // namespace keyrelay::keap::bridge
