// The field map. XML-RPC names: Keap's Contact table (the "Table Schema" of the XML-RPC reference); REST v2
// members: Keap's OpenAPI document for REST v2 (github.com/infusionsoft/keap-sdk, sdks/v2/swagger.yml).
#include "keap_bridge_fields.h"

#include <algorithm>
#include <set>

namespace keyrelay::keap::bridge {

namespace {
using T = xmlrpc::Value::Type;
}

const std::vector<FieldInfo>& contact_fields() {
    // name, XML-RPC type, REST v2 path, top-level member, api, writable, queryable
    static const std::vector<FieldInfo> table = {
        {"Id", "int", "id (a string in v2)", "id", "v2", false, true},
        {"FirstName", "string", "given_name", "given_name", "v2", true, true},
        {"LastName", "string", "family_name", "family_name", "v2", true, true},
        {"Email", "string", "email_addresses[field=EMAIL1].email", "email_addresses", "v2", true, true},
        {"EmailAddress2", "string", "email_addresses[field=EMAIL2].email", "email_addresses", "v2", true, false},
        {"EmailAddress3", "string", "email_addresses[field=EMAIL3].email", "email_addresses", "v2", true, false},
        {"Phone1", "string", "phone_numbers[field=PHONE1].number", "phone_numbers", "v2", true, false},
        {"Phone2", "string", "phone_numbers[field=PHONE2].number", "phone_numbers", "v2", true, false},
        {"Company", "string", "company.company_name", "company", "v2", true, false},
        {"JobTitle", "string", "job_title", "job_title", "v2", true, false},
        {"StreetAddress1", "string", "addresses[field=BILLING].line1", "addresses", "v2", true, false},
        {"City", "string", "addresses[field=BILLING].locality", "addresses", "v2", true, false},
        {"State", "string", "addresses[field=BILLING].region", "addresses", "v2", true, false},
        {"PostalCode", "string", "addresses[field=BILLING].postal_code", "addresses", "v2", true, false},
        {"Country", "string", "addresses[field=BILLING].country_code", "addresses", "v2", true, false},
        {"DateCreated", "dateTime.iso8601", "create_time", "create_time", "v2", false, false},
        {"LastUpdated", "dateTime.iso8601", "update_time", "update_time", "v2", false, false},
        {"Groups", "string", "tag_ids (joined with commas)", "tag_ids", "v2", false, false},
        {"OwnerID", "int", "owner_id", "owner_id", "v2", true, false},
    };
    return table;
}

const FieldInfo* find_field(std::string_view name) {
    for (const auto& f : contact_fields()) {
        if (name == f.name) return &f;
    }
    return nullptr;
}

namespace fields {
namespace {

using json_util::get_array;
using json_util::get_object;
using json_util::get_string;

// Where a list-valued field sits: the list member, the entry's "field" tag, the member of the entry.
struct ListSlot {
    const char* list;
    const char* tag;
    const char* key;
};

std::optional<ListSlot> list_slot(std::string_view name) {
    if (name == "Email") return ListSlot{"email_addresses", "EMAIL1", "email"};
    if (name == "EmailAddress2") return ListSlot{"email_addresses", "EMAIL2", "email"};
    if (name == "EmailAddress3") return ListSlot{"email_addresses", "EMAIL3", "email"};
    if (name == "Phone1") return ListSlot{"phone_numbers", "PHONE1", "number"};
    if (name == "Phone2") return ListSlot{"phone_numbers", "PHONE2", "number"};
    if (name == "StreetAddress1") return ListSlot{"addresses", "BILLING", "line1"};
    if (name == "City") return ListSlot{"addresses", "BILLING", "locality"};
    if (name == "State") return ListSlot{"addresses", "BILLING", "region"};
    if (name == "PostalCode") return ListSlot{"addresses", "BILLING", "postal_code"};
    if (name == "Country") return ListSlot{"addresses", "BILLING", "country_code"};
    return std::nullopt;
}

// Where read() finds a list-valued field in a RestContact: the list, the entry's tag, the entry member's index.
struct ListRead {
    const std::vector<RestEntry> RestContact::*list = nullptr;
    std::string_view tag;
    size_t key = 0;
};

ListRead list_read(const ListSlot& slot) {
    const std::string_view list = slot.list;
    return ListRead{list == "email_addresses" ? &RestContact::email_addresses
                    : list == "phone_numbers" ? &RestContact::phone_numbers
                                              : &RestContact::addresses,
                    slot.tag, entry_key(slot.key).value_or(kEntryTag)};
}

const std::string* list_value(const RestContact& contact, const ListRead& where) {
    for (const auto& entry : contact.*where.list) {
        const std::string* tag = entry.get(kEntryTag);
        if (tag != nullptr && *tag == where.tag) return entry.get(where.key);
    }
    return nullptr;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

Fault no_field(std::string_view name) {
    return Fault{0, "[NoFieldFound]No field found: Contact." + std::string(name) +
                        " (the keyrelay bridge maps the Contact fields listed in docs/xmlrpc-bridge.md; for others "
                        "use GET or PATCH /crm/rest/v2/contacts/{id} with REST field names)"};
}

}  // namespace

std::optional<std::string> xmlrpc_datetime(std::string_view t) {
    // RFC 3339 §5.6 date-time; XML-RPC's dateTime.iso8601 is the basic form without a zone (xmlrpc.com/spec.md).
    if (t.size() < 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':') {
        return std::nullopt;
    }
    for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
        if (t[i] < '0' || t[i] > '9') return std::nullopt;
    }
    std::string out;
    out.append(t.substr(0, 4)).append(t.substr(5, 2)).append(t.substr(8, 2));
    out.append("T").append(t.substr(11, 8));
    return out;
}

bool text_matches(std::string_view have, std::string_view want, bool prefix) {
    const std::string h = lower(have), w = lower(want);
    if (prefix) return h.compare(0, w.size(), w) == 0 && h.size() >= w.size();
    return h == w;
}

namespace {

// How read() finds a field's value, worked out from the field's name once per field rather than once per contact.
struct Reader {
    enum Kind { id, owner_id, list, text, created, updated, groups, none } kind = none;
    ListRead in_list{};
    const std::optional<std::string> RestContact::*member = nullptr;
};

Reader reader_for(std::string_view name) {
    if (name == "Id") return {Reader::id};
    if (name == "OwnerID") return {Reader::owner_id};
    if (auto slot = list_slot(name)) return {Reader::list, list_read(*slot)};
    if (name == "FirstName") return {Reader::text, {}, &RestContact::given_name};
    if (name == "LastName") return {Reader::text, {}, &RestContact::family_name};
    if (name == "JobTitle") return {Reader::text, {}, &RestContact::job_title};
    if (name == "Company") return {Reader::text, {}, &RestContact::company_name};
    if (name == "DateCreated") return {Reader::created};
    if (name == "LastUpdated") return {Reader::updated};
    if (name == "Groups") return {Reader::groups};
    return {};
}

Reader reader_of(const FieldInfo& field) {
    static const std::vector<Reader> readers = [] {
        std::vector<Reader> out;
        for (const auto& f : contact_fields()) out.push_back(reader_for(f.name));
        return out;
    }();
    const auto& table = contact_fields();
    if (&field >= table.data() && &field < table.data() + table.size()) return readers[&field - table.data()];
    return reader_for(field.name);   // a FieldInfo that is not a row of the map (a caller's copy)
}

// Hands the value of a field in `contact` to `sink` (integer, string or datetime), or nothing when it has none
// (absent, an empty string, no tags, owner 0). read() builds a Value from it; write_row() writes it as it comes.
template <class Sink>
void visit(const Reader& r, const RestContact& contact, Sink&& sink) {
    switch (r.kind) {
        case Reader::id:
        case Reader::owner_id: {
            const std::optional<int64_t>& v = r.kind == Reader::id ? contact.id : contact.owner_id;
            if (v && *v != 0) sink.integer(*v);
            return;
        }
        case Reader::list: {
            const std::string* v = list_value(contact, r.in_list);
            if (v != nullptr && !v->empty()) sink.string(*v);
            return;
        }
        case Reader::text: {
            const std::optional<std::string>& v = contact.*r.member;
            if (v && !v->empty()) sink.string(*v);
            return;
        }
        case Reader::created:
        case Reader::updated: {
            const std::optional<std::string>& t = r.kind == Reader::created ? contact.create_time : contact.update_time;
            if (auto d = t ? xmlrpc_datetime(*t) : std::nullopt) sink.datetime(*d);
            return;
        }
        case Reader::groups: {
            // The legacy Groups column: the contact's tag ids, comma-separated. Ascending, so that the same tags
            // always give the same text.
            if (contact.tag_ids.empty()) return;
            std::vector<int64_t> ids = contact.tag_ids;
            std::sort(ids.begin(), ids.end());
            std::string text;
            for (auto id : ids) {
                if (!text.empty()) text += ',';
                text += std::to_string(id);
            }
            sink.string(text);
            return;
        }
        case Reader::none: return;
    }
}

}  // namespace

std::optional<xmlrpc::Value> read(const FieldInfo& field, const RestContact& contact) {
    struct ToValue {
        std::optional<xmlrpc::Value> out;
        void integer(int64_t v) { out = xmlrpc::Value::integer(v); }
        void string(std::string_view v) { out = xmlrpc::Value::string(std::string(v)); }
        void datetime(std::string_view v) { out = xmlrpc::Value::datetime(std::string(v)); }
    } sink;
    visit(reader_of(field), contact, sink);
    return std::move(sink.out);
}

std::vector<const FieldInfo*> selection(const std::vector<std::string>& select) {
    std::vector<const FieldInfo*> out;
    for (const auto& name : select) {
        const FieldInfo* f = find_field(name);
        if (f != nullptr && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    }
    return out;
}

xmlrpc::Value row(const RestContact& contact, const std::vector<const FieldInfo*>& selected) {
    xmlrpc::Struct out;
    out.reserve(selected.size());
    for (const FieldInfo* f : selected) {
        if (auto v = read(*f, contact)) out.emplace_back(f->name, std::move(*v));
    }
    return xmlrpc::Value::struct_of(std::move(out));
}

void write_row(xmlrpc::ArrayResponseWriter& rows, const RestContact& contact,
               const std::vector<const FieldInfo*>& selected) {
    struct ToMember {
        xmlrpc::ArrayResponseWriter& rows;
        std::string_view name;
        void integer(int64_t v) { rows.int_member(name, v); }
        void string(std::string_view v) { rows.string_member(name, v); }
        void datetime(std::string_view v) { rows.datetime_member(name, v); }
    };
    rows.begin_struct();
    for (const FieldInfo* f : selected) visit(reader_of(*f), contact, ToMember{rows, f->name});
    rows.end_struct();
}

std::string members_for(const std::vector<std::string>& names) {
    std::string out = "id";
    std::set<std::string_view> wanted;
    for (const auto& n : names) {
        if (const FieldInfo* f = find_field(n)) wanted.insert(f->member);
    }
    std::set<std::string_view> added{"id"};
    for (const auto& f : contact_fields()) {
        if (wanted.count(f.member) && added.insert(f.member).second) out += std::string(",") + f.member;
    }
    return out;
}

std::optional<Fault> check_names(const std::vector<std::string>& names) {
    for (const auto& n : names) {
        if (find_field(n) == nullptr) return no_field(n);
    }
    return std::nullopt;
}

std::optional<Fault> check_data(const xmlrpc::Value& data, size_t max_names) {
    if (data.members.size() > max_names) {
        return Fault{0, "[InvalidParameter]Too many fields: " + std::to_string(data.members.size()) +
                            " (the keyrelay bridge takes at most " + std::to_string(max_names) + ")"};
    }
    for (const auto& [name, v] : data.members) {
        const FieldInfo* f = find_field(name);
        if (f == nullptr) return no_field(name);
        if (!f->writable) {
            std::string use = name == "Groups" ? "ContactService.addToGroup / removeFromGroup (POST "
                                                 "/crm/rest/v2/tags/{tag_id}/contacts:applyTags)"
                                               : "nothing: Keap sets it";
            return Fault{0, "[InvalidParameter]Contact." + name + " cannot be written; use " + use};
        }
        const bool want_int = std::string_view(f->xml_type) == "int";
        if (want_int ? v.type != T::integer : v.type != T::string) {
            return Fault{0, "[InvalidParameter]" + name + (want_int ? " must be an int" : " must be a string")};
        }
    }
    return std::nullopt;
}

bool needs_current(const xmlrpc::Value& data) {
    for (const auto& m : data.members) {
        if (list_slot(m.first)) return true;
    }
    return false;
}

std::string list_members(const xmlrpc::Value& data) {
    std::vector<std::string> names;
    for (const auto& m : data.members) {
        if (list_slot(m.first)) names.push_back(m.first);
    }
    return members_for(names);
}

json body(const xmlrpc::Value& data, const json& current, std::string* update_mask) {
    json out = json::object();
    std::set<std::string> touched;
    for (const auto& [name, v] : data.members) {
        const FieldInfo* f = find_field(name);
        if (f == nullptr) continue;
        touched.insert(f->member);
        if (auto slot = list_slot(name)) {
            if (!out.contains(slot->list)) {
                const json* have = get_array(current, slot->list);
                out[slot->list] = have ? *have : json::array();
            }
            json& list = out[slot->list];
            json* entry = nullptr;
            for (auto& e : list) {
                if (e.is_object() && get_string(e, "field").value_or("") == slot->tag) entry = &e;
            }
            if (entry == nullptr) {
                list.push_back(json{{"field", slot->tag}});
                entry = &list.back();
            }
            if (v.s.empty()) {
                entry->erase(slot->key);
            } else {
                (*entry)[slot->key] = v.s;
            }
            // An entry left with nothing but its tag is no entry at all.
            json kept = json::array();
            for (auto& e : list) {
                if (!(e.is_object() && e.size() <= 1)) kept.push_back(std::move(e));
            }
            list = std::move(kept);
        } else if (name == "FirstName") {
            out["given_name"] = v.s;
        } else if (name == "LastName") {
            out["family_name"] = v.s;
        } else if (name == "JobTitle") {
            out["job_title"] = v.s;
        } else if (name == "Company") {
            out["company"] = json{{"company_name", v.s}};
        } else if (name == "OwnerID") {
            out["owner_id"] = std::to_string(v.i);   // v2 ids are strings
        }
    }
    if (update_mask != nullptr) {
        update_mask->clear();
        std::set<std::string_view> added;
        for (const auto& f : contact_fields()) {
            if (touched.count(f.member) && added.insert(f.member).second) {
                *update_mask += (update_mask->empty() ? "" : ",") + std::string(f.member);
            }
        }
    }
    return out;
}

}  // namespace fields
}  // namespace keyrelay::keap::bridge
