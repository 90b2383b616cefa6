// Internal to the bridge: the XML-RPC Contact fields <-> REST v2 contact JSON, both directions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_util.h"
#include "keap_bridge_contacts.h"
#include "keyrelay/keap_bridge.h"

namespace keyrelay::keap::bridge::fields {

using json = nlohmann::json;

// The value of one XML-RPC field in a REST v2 contact; nullopt when it has none (absent, empty string, no tags,
// owner 0). Keap's XML-RPC left fields without a value out of a record's struct, and so does the bridge.
std::optional<xmlrpc::Value> read(const FieldInfo& field, const RestContact& contact);

// The `select`ed fields looked up in the map once for a whole page: in the order asked, a repeated name once, names
// not in the map skipped (check_names refuses them before any request).
std::vector<const FieldInfo*> selection(const std::vector<std::string>& select);

// The XML-RPC struct for a REST v2 contact with the selected fields, empty ones left out.
xmlrpc::Value row(const RestContact& contact, const std::vector<const FieldInfo*>& selected);
// The same struct, written as the next row of a list answer.
void write_row(xmlrpc::ArrayResponseWriter& rows, const RestContact& contact,
               const std::vector<const FieldInfo*>& selected);

// The top-level REST members holding these XML-RPC fields, comma-separated in map order, for ?fields= (Keap v2
// answers only the members it is asked for beyond a default set). "id" is always included.
std::string members_for(const std::vector<std::string>& names);

// A fault for the first name the map does not know: "[NoFieldFound]No field found: Contact.<name>", with the
// REST call to use for it. nullopt when all are known.
std::optional<Fault> check_names(const std::vector<std::string>& names);

// Checks the struct of an add/update: known, writable, the right XML-RPC type. Returns the fault, if any.
std::optional<Fault> check_data(const xmlrpc::Value& data, size_t max_names);

// Does writing `data` replace a REST list (email_addresses, phone_numbers, addresses)? Then an update must read
// the current list first, or the entries it does not name (EMAIL2 when only Email changes) would be lost.
bool needs_current(const xmlrpc::Value& data);
// The list members `data` touches, for ?fields= on that read.
std::string list_members(const xmlrpc::Value& data);

// The REST v2 body for `data` (checked), starting lists from `current` (a contact, or an empty object), and the
// update_mask: the top-level members written, comma-separated in map order.
json body(const xmlrpc::Value& data, const json& current, std::string* update_mask);

// "2026-01-02T03:04:05Z" / "2026-01-02T03:04:05.000+0000" -> "20260102T03:04:05"; nullopt when not that shape.
std::optional<std::string> xmlrpc_datetime(std::string_view rest_time);

// Case-insensitive comparison of a field's text with a condition: equality, or a prefix when `prefix`.
bool text_matches(std::string_view have, std::string_view want, bool prefix);

}  // namespace keyrelay::keap::bridge::fields
