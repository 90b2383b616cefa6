// The fake Keap's XML-RPC endpoint (keap.md "XML-RPC"). Keap's XML-RPC server is Apache XML-RPC: its faults carry
// faultCode 0 and Apache's messages ("No such handler: X.y", "Failed to parse XML-RPC request: ...").
#include <algorithm>

#include "keap.h"
#include "keyrelay/xmlrpc.h"

namespace keyrelay::sandbox::keap {
namespace {

using xmlrpc::Value;

constexpr const char* kInvalidConfig =
    "[InvalidConfig]Invalid Configuration: for help setting up your API, please contact Support";

Reply xml_answer(std::string body) { return text_reply(200, std::move(body), "text/xml;charset=UTF-8"); }
Reply fault(const std::string& message, int code = 0) { return xml_answer(xmlrpc::encode_fault(code, message)); }

const char* java_type(const Value& v) {
    switch (v.type) {
        case Value::Type::nil: return "null";
        case Value::Type::integer: return "java.lang.Integer";
        case Value::Type::boolean: return "java.lang.Boolean";
        case Value::Type::string: return "java.lang.String";
        case Value::Type::double_: return "java.lang.Double";
        case Value::Type::datetime: return "java.util.Date";
        case Value::Type::base64: return "[B";
        case Value::Type::array: return "[Ljava.lang.Object;";
        case Value::Type::struct_: return "java.util.HashMap";
    }
    return "java.lang.Object";
}

Reply no_matching_method(const xmlrpc::Array& params) {
    std::string types;
    for (const auto& p : params) types += std::string(types.empty() ? "" : ", ") + java_type(p);
    return fault("No method matching arguments: " + types);
}

bool types_are(const xmlrpc::Array& params, std::initializer_list<Value::Type> types) {
    if (params.size() != types.size()) return false;
    size_t i = 0;
    for (auto t : types) {
        if (params[i++].type != t) return false;
    }
    return true;
}

std::string xmlrpc_date(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H:%M:%S", &tm);
    return buf;
}

// The Contact table's fields the sandbox knows (a subset of Keap's, the ones docs/xmlrpc-bridge.md maps), as the
// XML-RPC value of the contact's field; nullopt for a name that is not a field. An empty string / 0 is "no value".
std::optional<Value> contact_field(const KeapContact& c, const std::string& name) {
    if (name == "Id") return Value::integer(c.id);
    if (name == "OwnerID") return Value::integer(c.owner_id);
    if (name == "DateCreated") return Value::datetime(xmlrpc_date(c.created));
    if (name == "LastUpdated") return Value::datetime(xmlrpc_date(c.updated));
    if (name == "Groups") {
        // The Groups column: the contact's tag ids, comma-separated.
        std::string text;
        for (auto t : c.tags) text += (text.empty() ? "" : ",") + std::to_string(t);
        return Value::string(text);
    }
    const std::pair<const char*, const std::string*> text_fields[] = {
        {"FirstName", &c.given_name}, {"LastName", &c.family_name}, {"Email", &c.email},
        {"EmailAddress2", &c.email2}, {"EmailAddress3", &c.email3}, {"Phone1", &c.phone1},
        {"Phone2", &c.phone2},        {"Company", &c.company},      {"JobTitle", &c.job_title},
        {"StreetAddress1", &c.street1}, {"City", &c.city},           {"State", &c.region},
        {"PostalCode", &c.postal_code}, {"Country", &c.country}};
    for (const auto& [n, v] : text_fields) {
        if (name == n) return Value::string(*v);
    }
    return std::nullopt;
}

std::string* writable_text(KeapContact& c, const std::string& name) {
    const std::pair<const char*, std::string*> fields[] = {
        {"FirstName", &c.given_name}, {"LastName", &c.family_name}, {"Email", &c.email},
        {"EmailAddress2", &c.email2}, {"EmailAddress3", &c.email3}, {"Phone1", &c.phone1},
        {"Phone2", &c.phone2},        {"Company", &c.company},      {"JobTitle", &c.job_title},
        {"StreetAddress1", &c.street1}, {"City", &c.city},           {"State", &c.region},
        {"PostalCode", &c.postal_code}, {"Country", &c.country}};
    for (const auto& [n, v] : fields) {
        if (name == n) return v;
    }
    return nullptr;
}

std::string no_field(const std::string& name) { return "[NoFieldFound]No field found: Contact." + name; }

// Keap's data queries take '%' as a wildcard; comparisons ignore case.
bool like(const std::string& text, const std::string& pattern) {
    const std::string t = to_lower(text), p = to_lower(pattern);
    // Classic wildcard match with backtracking on the last '%'.
    size_t ti = 0, pi = 0, star = std::string::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi] == '%') {
            star = pi++;
            mark = ti;
        } else if (pi < p.size() && p[pi] == t[ti]) {
            ++pi;
            ++ti;
        } else if (star != std::string::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '%') ++pi;
    return pi == p.size();
}

bool field_matches(const KeapContact& c, const std::string& field, const Value& want) {
    auto have = contact_field(c, field);
    if (!have) return false;
    if (have->type == Value::Type::integer) {
        if (want.type == Value::Type::integer) return have->i == want.i;
        if (want.type == Value::Type::string) return like(std::to_string(have->i), want.s);
        return false;
    }
    if (want.type != Value::Type::string) return false;
    return like(have->s, want.s);
}

bool has_value(const Value& v) {
    if (v.type == Value::Type::integer) return v.i != 0;
    if (v.type == Value::Type::string) return !v.s.empty();
    return true;
}

// A record's struct: the fields asked for that have a value (Keap's XML-RPC leaves empty ones out).
Value select_fields(const KeapContact& c, const std::vector<std::string>& fields) {
    xmlrpc::Struct out;
    for (const auto& f : fields) {
        bool seen = false;
        for (const auto& m : out) seen = seen || m.first == f;
        if (seen) continue;
        if (auto v = contact_field(c, f); v && has_value(*v)) out.emplace_back(f, *v);
    }
    return Value::struct_of(std::move(out));
}

// The names of a String[] of fields; a fault message for one that is not a field.
std::optional<std::string> field_names(const Value& list, std::vector<std::string>& out) {
    for (const auto& f : list.array) {
        if (f.type != Value::Type::string) return std::string("[InvalidParameter]Field names must be strings");
        if (!contact_field(KeapContact{}, f.s)) return no_field(f.s);
        out.push_back(f.s);
    }
    return std::nullopt;
}

// Checks an XML-RPC struct of Contact fields for add/update. Returns a fault message.
std::optional<std::string> check_contact_struct(const Value& fields) {
    for (const auto& [name, v] : fields.members) {
        if (!contact_field(KeapContact{}, name)) return no_field(name);
        if (name == "Id" || name == "DateCreated" || name == "LastUpdated" || name == "Groups") {
            return "[InvalidParameter]Contact." + name + " cannot be written";
        }
        if (name == "OwnerID") {
            if (v.type != Value::Type::integer) return "[InvalidParameter]OwnerID must be an int";
        } else if (v.type != Value::Type::string) {
            return "[InvalidParameter]" + name + " must be a string";
        }
    }
    return std::nullopt;
}

// Applies a checked struct.
void apply_contact_struct(KeapContact& c, const Value& fields) {
    for (const auto& [name, v] : fields.members) {
        if (name == "OwnerID") {
            c.owner_id = v.i;
        } else if (std::string* target = writable_text(c, name)) {
            *target = v.s;
        }
    }
}

Reply answer(const Value& v) { return xml_answer(xmlrpc::encode_response(v)); }
Reply not_found(const char* table, int64_t id) {
    return fault("[RecordNotFound]Record was not found: " + std::string(table) + " " + std::to_string(id));
}

Reply page_of(const std::vector<const KeapContact*>& matches, int64_t limit, int64_t page,
              const std::vector<std::string>& fields) {
    if (limit < 1 || limit > 1000) return fault("[InvalidParameter]limit must be between 1 and 1000");
    if (page < 0) return fault("[InvalidParameter]page must not be negative");
    xmlrpc::Array rows;
    for (int64_t i = page * limit; i < static_cast<int64_t>(matches.size()) && i < (page + 1) * limit; ++i) {
        rows.push_back(select_fields(*matches[static_cast<size_t>(i)], fields));
    }
    return answer(Value::array_of(std::move(rows)));
}

Reply add_contact(State& s, const Value& fields) {
    if (auto bad = check_contact_struct(fields)) return fault(*bad);
    KeapContact c;
    apply_contact_struct(c, fields);
    c.id = s.next_contact_id++;
    c.created = c.updated = s.now();
    s.contacts.push_back(c);
    return answer(Value::integer(c.id));
}

Reply update_contact(State& s, int64_t id, const Value& fields) {
    if (auto bad = check_contact_struct(fields)) return fault(*bad);
    KeapContact* c = s.contact(id);
    if (!c) return not_found("Contact", id);
    apply_contact_struct(*c, fields);
    c->updated = s.now();
    return answer(Value::integer(c->id));
}

Reply load_contact(State& s, int64_t id, const Value& list) {
    std::vector<std::string> fields;
    if (auto bad = field_names(list, fields)) return fault(*bad);
    KeapContact* c = s.contact(id);
    if (!c) return not_found("Contact", id);
    return answer(select_fields(*c, fields));
}

std::vector<const KeapContact*> by_id(const State& s) {
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) all.push_back(&c);
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    return all;
}

Reply call_method(State& s, const xmlrpc::Call& call) {
    const auto& p = call.params;
    using T = Value::Type;
    const std::string& m = call.method;
    if (m == "DataService.getUserInfo") {
        if (!p.empty()) return no_matching_method(p);
        return answer(Value::struct_of({
            {"AppAlias", Value::string("ab123")},
            {"DisplayName", Value::string("Sandbox Admin")},
            {"Email", Value::string(ids::jira_admin_email)},
            {"GlobalUserId", Value::integer(54321)},
            {"LocalUserId", Value::integer(1)},
            {"AppUrl", Value::string(std::string("https://") + ids::keap_account)},
        }));
    }
    if (m == "DataService.echo") {
        if (types_are(p, {T::string})) return answer(p[0]);
        if (types_are(p, {T::string, T::string})) return answer(p[1]);
        return no_matching_method(p);
    }
    if (m == "ContactService.add") {
        if (!types_are(p, {T::string, T::struct_})) return no_matching_method(p);
        return add_contact(s, p[1]);
    }
    if (m == "DataService.add") {
        if (!types_are(p, {T::string, T::string, T::struct_})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return add_contact(s, p[2]);
    }
    if (m == "ContactService.update") {
        if (!types_are(p, {T::string, T::integer, T::struct_})) return no_matching_method(p);
        return update_contact(s, p[1].i, p[2]);
    }
    if (m == "DataService.update") {
        if (!types_are(p, {T::string, T::string, T::integer, T::struct_})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return update_contact(s, p[2].i, p[3]);
    }
    if (m == "ContactService.load") {
        if (!types_are(p, {T::string, T::integer, T::array})) return no_matching_method(p);
        return load_contact(s, p[1].i, p[2]);
    }
    if (m == "DataService.load") {
        if (!types_are(p, {T::string, T::string, T::integer, T::array})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return load_contact(s, p[2].i, p[3]);
    }
    if (m == "ContactService.addWithDupCheck") {
        if (!types_are(p, {T::string, T::struct_, T::string})) return no_matching_method(p);
        const std::string& type = p[2].s;
        if (type != "Email" && type != "EmailAndName") {
            return fault("[InvalidParameter]dupCheckType must be Email, EmailAndName or EmailAndNameAndCompany");
        }
        if (auto bad = check_contact_struct(p[1])) return fault(*bad);
        const Value* email = p[1].get("Email");
        if (email == nullptr || email->s.empty()) return add_contact(s, p[1]);
        auto text_of = [&](const char* name) {
            const Value* v = p[1].get(name);
            return v ? v->s : std::string();
        };
        for (const KeapContact* c : by_id(s)) {
            bool same = iequals(c->email, email->s);
            if (type == "EmailAndName") {
                same = same && iequals(c->given_name, text_of("FirstName")) && iequals(c->family_name, text_of("LastName"));
            }
            if (same) return update_contact(s, c->id, p[1]);
        }
        return add_contact(s, p[1]);
    }
    if (m == "ContactService.findByEmail") {
        if (!types_are(p, {T::string, T::string, T::array})) return no_matching_method(p);
        std::vector<std::string> fields;
        if (auto bad = field_names(p[2], fields)) return fault(*bad);
        xmlrpc::Array rows;
        for (const KeapContact* c : by_id(s)) {
            if (iequals(c->email, p[1].s)) rows.push_back(select_fields(*c, fields));
        }
        return answer(Value::array_of(std::move(rows)));
    }
    if (m == "ContactService.addToGroup" || m == "ContactService.removeFromGroup") {
        if (!types_are(p, {T::string, T::integer, T::integer})) return no_matching_method(p);
        if (!s.keap_tags.count(p[2].i)) return not_found("ContactGroup", p[2].i);
        KeapContact* c = s.contact(p[1].i);
        if (!c) return not_found("Contact", p[1].i);
        auto it = std::lower_bound(c->tags.begin(), c->tags.end(), p[2].i);
        const bool has = it != c->tags.end() && *it == p[2].i;
        if (m == "ContactService.addToGroup" && !has) c->tags.insert(it, p[2].i);
        if (m == "ContactService.removeFromGroup" && has) c->tags.erase(it);
        return answer(Value::boolean(true));
    }
    const bool find = m == "DataService.findByField";
    const bool count = m == "DataService.count";
    if (find || count || m == "DataService.query") {
        const bool ok = count  ? types_are(p, {T::string, T::string, T::struct_})
                        : find ? (types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::string,
                                                T::array}) ||
                                  types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::integer,
                                                T::array}))
                               : (types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array}) ||
                                  types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array,
                                                T::string, T::boolean}));
        if (!ok) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        std::vector<std::pair<std::string, Value>> conditions;
        if (find) {
            conditions.emplace_back(p[4].s, p[5]);
        } else {
            for (const auto& mem : p[count ? 2 : 4].members) conditions.push_back(mem);
        }
        for (const auto& [field, v] : conditions) {
            (void)v;
            if (!contact_field(KeapContact{}, field)) return fault(no_field(field));
        }
        std::vector<std::string> fields;
        if (!count) {
            if (auto bad = field_names(find ? p[6] : p[5], fields)) return fault(*bad);
        }
        std::vector<const KeapContact*> matches;
        for (const KeapContact* c : by_id(s)) {
            bool all = true;
            for (const auto& [field, want] : conditions) all = all && field_matches(*c, field, want);
            if (all) matches.push_back(c);
        }
        if (count) return answer(Value::integer(static_cast<int64_t>(matches.size())));
        std::string order = p.size() == 8 ? p[6].s : "Id";
        bool ascending = p.size() == 8 ? p[7].b : true;
        std::stable_sort(matches.begin(), matches.end(), [&](const KeapContact* a, const KeapContact* b) {
            auto va = contact_field(*a, order), vb = contact_field(*b, order);
            bool less = (va && vb) ? (va->type == T::integer ? va->i < vb->i : va->s < vb->s) : a->id < b->id;
            bool greater = (va && vb) ? (va->type == T::integer ? va->i > vb->i : va->s > vb->s) : a->id > b->id;
            return ascending ? less : greater;
        });
        return page_of(matches, p[2].i, p[3].i, fields);
    }
    return fault("No such handler: " + m);
}

bool known_method(const std::string& m) {
    static const char* const methods[] = {
        "DataService.getUserInfo",  "DataService.echo",           "ContactService.add",
        "ContactService.addWithDupCheck", "ContactService.update", "ContactService.load",
        "ContactService.findByEmail", "ContactService.addToGroup", "ContactService.removeFromGroup",
        "DataService.findByField",  "DataService.query",          "DataService.count",
        "DataService.load",         "DataService.update",         "DataService.add"};
    for (const char* x : methods) {
        if (m == x) return true;
    }
    return false;
}

std::string parse_failure(const Error& e) {
    if (e.code == "xmlrpc.empty") return "Failed to parse XML-RPC request: Premature end of file.";
    if (e.code == "xmlrpc.doctype_refused" || e.message.find("DOCTYPE") != std::string::npos) {
        return "Failed to parse XML-RPC request: DOCTYPE is disallowed when the feature "
               "\"http://apache.org/xml/features/disallow-doctype-decl\" set to true.";
    }
    return "Failed to parse XML-RPC request: " + e.message;
}

}  // namespace

Reply xml_rpc(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    if (r.method != "POST") return text_reply(405, "HTTP method GET is not supported by this URL");
    Credential cred;
    bool authenticated = false;
    std::lock_guard<std::mutex> lock(s.mu);
    // OAuth: a Bearer header, or the older ?access_token= on the URL. A bad token is refused by the gateway in
    // JSON, before XML-RPC is involved: that is what makes clients say "root element not methodResponse".
    std::optional<std::string> token = bearer_of(r);
    if (!token) token = r.q("access_token");
    if (token) {
        if (auto bad = check_bearer(s, *token, cred)) return *bad;
        authenticated = true;
    } else if (auto key = r.header("X-Keap-API-Key")) {
        if (!valid_api_key(*key)) return fault(kInvalidConfig);
        cred.api_key = true;
        cred.bucket = "keap-key:" + *key;
        authenticated = true;
    }
    auto call = xmlrpc::decode_call(r.raw.body);
    if (!call) return fault(parse_failure(call.error()));
    if (!known_method(call->method)) return fault("No such handler: " + call->method);
    if (!authenticated) {
        // No header credentials: the first parameter is the (legacy) API key; getUserInfo has none.
        const auto& p = call->params;
        if (call->method == "DataService.getUserInfo" || p.empty() || p[0].type != Value::Type::string ||
            !valid_api_key(p[0].s)) {
            return fault(kInvalidConfig);
        }
        cred.api_key = true;
        cred.bucket = "keap-key:" + p[0].s;
    }
    Reply headers;
    if (auto throttled = meter(s, cred, headers)) return *throttled;
    Reply out = call_method(s, *call);
    for (auto& h : headers.headers) out.headers.push_back(h);
    return out;
}

}  // namespace keyrelay::sandbox::keap
