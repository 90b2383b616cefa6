// The fake Keap's REST API (keap.md "REST"): v1 contacts and userinfo, v2 contacts (filter, fields, order_by,
// page tokens, update_mask) and tags, over the same contacts as the XML-RPC endpoint.
#include <algorithm>
#include <ctime>

#include "keap.h"

namespace keyrelay::sandbox::keap {
namespace {

std::string keap_time(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000+0000", &tm);
    return buf;
}

json email_addresses(const KeapContact& c) {
    json a = json::array();
    if (!c.email.empty()) a.push_back({{"email", c.email}, {"field", "EMAIL1"}});
    return a;
}

json contact_v1(const KeapContact& c) {
    return json{{"id", c.id},
                {"given_name", c.given_name},
                {"family_name", c.family_name},
                {"email_addresses", email_addresses(c)},
                {"email_opted_in", false},
                {"email_status", "UnengagedMarketable"},
                {"phone_numbers", json::array()},
                {"addresses", json::array()},
                {"tag_ids", json::array()},
                {"date_created", keap_time(c.created)},
                {"last_updated", keap_time(c.updated)}};
}

// A REST v2 contact (keap-sdk sdks/v2/swagger.yml, Contact): ids are strings, lists carry a "field" tag, members
// without a value are left out. `fields`: the ?fields= members to include besides id (empty = all of them).
json contact_v2(const KeapContact& c, const std::vector<std::string>& fields = {}) {
    auto want = [&](const char* m) { return fields.empty() || std::find(fields.begin(), fields.end(), m) != fields.end(); };
    json o = json{{"id", std::to_string(c.id)}};
    if (want("given_name")) o["given_name"] = c.given_name;
    if (want("family_name")) o["family_name"] = c.family_name;
    if (want("email_addresses")) {
        json a = json::array();
        const std::pair<const std::string*, const char*> emails[] = {{&c.email, "EMAIL1"}, {&c.email2, "EMAIL2"},
                                                                     {&c.email3, "EMAIL3"}};
        for (const auto& [e, tag] : emails) {
            if (!e->empty()) a.push_back({{"email", *e}, {"field", tag}});
        }
        o["email_addresses"] = a;
    }
    if (want("phone_numbers")) {
        json a = json::array();
        if (!c.phone1.empty()) a.push_back({{"number", c.phone1}, {"field", "PHONE1"}});
        if (!c.phone2.empty()) a.push_back({{"number", c.phone2}, {"field", "PHONE2"}});
        o["phone_numbers"] = a;
    }
    if (want("addresses")) {
        json a = json::array();
        json billing = json{{"field", "BILLING"}};
        const std::pair<const char*, const std::string*> parts[] = {{"line1", &c.street1}, {"locality", &c.city},
                                                                    {"region", &c.region},
                                                                    {"postal_code", &c.postal_code},
                                                                    {"country_code", &c.country}};
        for (const auto& [k, v] : parts) {
            if (!v->empty()) billing[k] = *v;
        }
        if (billing.size() > 1) a.push_back(billing);
        o["addresses"] = a;
    }
    if (want("company") && !c.company.empty()) o["company"] = json{{"company_name", c.company}};
    if (want("job_title") && !c.job_title.empty()) o["job_title"] = c.job_title;
    if (want("owner_id") && c.owner_id != 0) o["owner_id"] = std::to_string(c.owner_id);
    if (want("tag_ids")) o["tag_ids"] = c.tags;
    if (want("create_time")) o["create_time"] = iso8601(c.created);
    if (want("update_time")) o["update_time"] = iso8601(c.updated);
    return o;
}

Reply v1_error(int status, const std::string& message) { return json_reply(status, json{{"message", message}}); }

Reply v2_error(int status, const char* code_status, const std::string& message) {
    return json_reply(status, json{{"code", status}, {"message", message}, {"status", code_status},
                                   {"details", json::array()}});
}

std::optional<int64_t> to_int(const std::string& s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

// Applies {"given_name","family_name","email_addresses":[{"email",...}]} from a REST body.
// Returns an error message when a member has the wrong type.
std::optional<std::string> apply_contact_json(KeapContact& c, const json& body) {
    for (const char* name : {"given_name", "family_name"}) {
        if (!body.contains(name)) continue;
        const json& v = body[name];
        if (!v.is_string() && !v.is_null()) return std::string(name) + " must be a string";
        (std::string(name) == "given_name" ? c.given_name : c.family_name) = v.is_string() ? v.get<std::string>() : "";
    }
    if (body.contains("email_addresses")) {
        const json& ea = body["email_addresses"];
        if (!ea.is_array()) return std::string("email_addresses must be an array");
        for (const auto& e : ea) {
            if (!e.is_object() || !e.contains("email") || !e["email"].is_string()) {
                return std::string("each email_addresses entry needs an email string");
            }
            std::string field = jstr(e, "field");
            if (field.empty() || field == "EMAIL1") c.email = e["email"].get<std::string>();
        }
    }
    return std::nullopt;
}

Reply v1_list(State& s, const Req& r) {
    auto limit = to_int(r.q("limit").value_or("1000"));
    auto offset = to_int(r.q("offset").value_or("0"));
    if (!limit || !offset) return v1_error(400, "limit and offset must be non-negative integers");
    int64_t lim = std::min<int64_t>(*limit == 0 ? 1000 : *limit, 1000);
    const auto email = r.q("email"), given = r.q("given_name"), family = r.q("family_name");
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) {
        if (email && !iequals(c.email, *email)) continue;
        if (given && !iequals(c.given_name, *given)) continue;
        if (family && !iequals(c.family_name, *family)) continue;
        all.push_back(&c);
    }
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    json list = json::array();
    for (int64_t i = *offset; i < static_cast<int64_t>(all.size()) && i < *offset + lim; ++i) {
        list.push_back(contact_v1(*all[static_cast<size_t>(i)]));
    }
    auto page_url = [&](int64_t off) {
        Params p{{"limit", std::to_string(lim)}, {"offset", std::to_string(off)}};
        if (email) p.emplace_back("email", *email);
        if (given) p.emplace_back("given_name", *given);
        if (family) p.emplace_back("family_name", *family);
        return add_query(r.base_url + kRest1 + "/contacts/", p);
    };
    return json_reply(200, json{{"contacts", list},
                                {"count", all.size()},
                                {"next", page_url(*offset + lim)},
                                {"previous", page_url(std::max<int64_t>(0, *offset - lim))}});
}

Reply userinfo() {
    // The OpenID Connect-style answer Keap staff documented (community.infusionsoft.com, thread 18001).
    return json_reply(200, json{{"sub", "1"},
                                {"email", ids::jira_admin_email},
                                {"given_name", "Sandbox"},
                                {"family_name", "Admin"},
                                {"middle_name", nullptr},
                                {"global_user_id", 54321},
                                {"infusionsoft_id", ids::jira_admin_email},
                                {"preferred_name", nullptr}});
}

Reply rest_v1(State& s, const Req& r, const std::string& sub) {
    if (sub == "/oauth/connect/userinfo") {
        return r.method == "GET" ? userinfo() : v1_error(405, "HTTP 405 Method Not Allowed");
    }
    if (sub == "/contacts" || sub == "/contacts/") {
        if (r.method == "GET") return v1_list(s, r);
        if (r.method == "POST") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v1_error(400, "Input could not be converted to a valid request");
            KeapContact c;
            if (auto bad = apply_contact_json(c, *body)) return v1_error(400, *bad);
            const bool phones = body->contains("phone_numbers") && (*body)["phone_numbers"].is_array() &&
                                !(*body)["phone_numbers"].empty();
            if (c.email.empty() && !phones) {
                return v1_error(400, "Contact must contain at least one item in email_addresses or phone_numbers");
            }
            c.id = s.next_contact_id++;
            c.created = c.updated = s.now();
            s.contacts.push_back(c);
            return json_reply(201, contact_v1(c)).with("Location", r.base_url + kRest1 + "/contacts/" +
                                                                       std::to_string(c.id));
        }
        return v1_error(405, "HTTP 405 Method Not Allowed");
    }
    if (starts_with(sub, "/contacts/")) {
        auto id = to_int(sub.substr(10));
        KeapContact* c = id ? s.contact(*id) : nullptr;
        if (!c) return v1_error(404, "Contact with ID " + sub.substr(10) + " not found");
        if (r.method == "GET") return json_reply(200, contact_v1(*c));
        if (r.method == "PATCH") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v1_error(400, "Input could not be converted to a valid request");
            KeapContact updated = *c;
            if (auto bad = apply_contact_json(updated, *body)) return v1_error(400, *bad);
            updated.updated = s.now();
            *c = updated;
            return json_reply(200, contact_v1(*c));
        }
        return v1_error(405, "HTTP 405 Method Not Allowed");
    }
    return v1_error(404, "HTTP 404 Not Found");
}

// "a,b,c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find(',', pos);
        std::string item = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (!item.empty()) out.push_back(item);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    return out;
}

// The members a v2 contact has, for ?fields= and update_mask.
bool v2_member(const std::string& m) {
    static const char* const members[] = {"given_name", "family_name", "email_addresses", "phone_numbers",
                                          "addresses", "company", "job_title", "owner_id", "tag_ids",
                                          "create_time", "update_time", "id"};
    for (const char* x : members) {
        if (m == x) return true;
    }
    return false;
}

// keap.md: v2 filters are "field==value" joined by ';'; a trailing '*' matches any rest (email==john*).
bool filter_match(const std::string& have, const std::string& want) {
    if (!want.empty() && want.back() == '*') {
        return istarts_with(have, std::string_view(want).substr(0, want.size() - 1));
    }
    return iequals(have, want);
}

Reply v2_list(State& s, const Req& r) {
    // keap.md: GET /contacts?filter=email%3D%3Djohn%40x.com&fields=...&order_by=...&page_size=...&page_token=...
    std::vector<std::pair<std::string, std::string>> conditions;
    std::string filter = r.q("filter").value_or("");
    size_t pos = 0;
    while (!filter.empty() && pos <= filter.size()) {
        size_t end = filter.find(';', pos);
        std::string cond = filter.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        size_t eq = cond.find("==");
        if (eq == std::string::npos) return v2_error(400, "INVALID_ARGUMENT", "Invalid filter: " + cond);
        std::string field = cond.substr(0, eq), value = cond.substr(eq + 2);
        if (field != "email" && field != "given_name" && field != "family_name") {
            return v2_error(400, "INVALID_ARGUMENT", "Invalid filter field: " + field);
        }
        conditions.emplace_back(field, value);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    const std::vector<std::string> fields = split_commas(r.q("fields").value_or(""));
    for (const auto& f : fields) {
        if (!v2_member(f)) return v2_error(400, "INVALID_ARGUMENT", "Invalid field: " + f);
    }
    const std::string order = r.q("order_by").value_or("id");
    if (order != "id" && order != "id asc" && order != "id desc") {
        return v2_error(400, "INVALID_ARGUMENT", "Invalid order_by: " + order);
    }
    auto size = to_int(r.q("page_size").value_or("50"));
    if (!size || *size > 1000) return v2_error(400, "INVALID_ARGUMENT", "page_size must be between 0 and 1000");
    int64_t page_size = *size == 0 ? 50 : *size;
    int64_t offset = 0;
    if (auto tok = r.q("page_token"); tok && !tok->empty()) {
        auto decoded = base64_decode(*tok);
        auto off = decoded && starts_with(*decoded, "offset:") ? to_int(decoded->substr(7)) : std::nullopt;
        if (!off) return v2_error(400, "INVALID_ARGUMENT", "Invalid page_token");
        offset = *off;
    }
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) {
        bool keep = true;
        for (const auto& [field, value] : conditions) {
            const std::string& have = field == "email" ? c.email : field == "given_name" ? c.given_name : c.family_name;
            keep = keep && filter_match(have, value);
        }
        if (keep) all.push_back(&c);
    }
    const bool descending = order == "id desc";
    std::sort(all.begin(), all.end(), [&](auto* a, auto* b) { return descending ? a->id > b->id : a->id < b->id; });
    json list = json::array();
    for (int64_t i = offset; i < static_cast<int64_t>(all.size()) && i < offset + page_size; ++i) {
        list.push_back(contact_v2(*all[static_cast<size_t>(i)], fields));
    }
    std::string next;
    if (offset + page_size < static_cast<int64_t>(all.size())) {
        next = base64_encode("offset:" + std::to_string(offset + page_size));
    }
    return json_reply(200, json{{"contacts", list}, {"next_page_token", next}});
}

// Applies a REST v2 contact body. `mask`: the members to take (update_mask); empty = every member present.
// Lists replace the contact's whole list. Returns an error message for a wrong shape.
std::optional<std::string> apply_contact_v2(KeapContact& c, const json& body, const std::vector<std::string>& mask) {
    auto take = [&](const char* m) {
        return mask.empty() ? body.contains(m) : std::find(mask.begin(), mask.end(), m) != mask.end();
    };
    for (const auto& m : mask) {
        if (!v2_member(m) || m == "id" || m == "tag_ids" || m == "create_time" || m == "update_time") {
            return "Invalid update_mask field: " + m;
        }
    }
    auto text = [&](const char* m, std::string& out) -> std::optional<std::string> {
        if (!take(m)) return std::nullopt;
        const json v = body.contains(m) ? body[m] : json();
        if (!v.is_string() && !v.is_null()) return std::string(m) + " must be a string";
        out = v.is_string() ? v.get<std::string>() : "";
        return std::nullopt;
    };
    for (auto [m, target] : {std::pair<const char*, std::string*>{"given_name", &c.given_name},
                             {"family_name", &c.family_name}, {"job_title", &c.job_title}}) {
        if (auto bad = text(m, *target)) return bad;
    }
    // A list member: each entry an object with `key` (a string) and an optional "field" tag.
    auto entries = [&](const char* m, const char* key, const char* default_tag,
                       std::vector<std::pair<std::string, std::string>>& out) -> std::optional<std::string> {
        const json v = body.contains(m) ? body[m] : json::array();
        if (!v.is_array()) return std::string(m) + " must be an array";
        for (const auto& e : v) {
            if (!e.is_object() || !e.contains(key) || !e[key].is_string()) {
                return std::string("each ") + m + " entry needs a " + key + " string";
            }
            std::string tag = jstr(e, "field");
            out.emplace_back(tag.empty() ? default_tag : tag, e[key].get<std::string>());
        }
        return std::nullopt;
    };
    if (take("email_addresses")) {
        std::vector<std::pair<std::string, std::string>> list;
        if (auto bad = entries("email_addresses", "email", "EMAIL1", list)) return bad;
        c.email.clear(), c.email2.clear(), c.email3.clear();
        for (const auto& [tag, v] : list) (tag == "EMAIL3" ? c.email3 : tag == "EMAIL2" ? c.email2 : c.email) = v;
    }
    if (take("phone_numbers")) {
        std::vector<std::pair<std::string, std::string>> list;
        if (auto bad = entries("phone_numbers", "number", "PHONE1", list)) return bad;
        c.phone1.clear(), c.phone2.clear();
        for (const auto& [tag, v] : list) {
            if (tag == "PHONE1") c.phone1 = v;
            if (tag == "PHONE2") c.phone2 = v;
        }
    }
    if (take("addresses")) {
        const json v = body.contains("addresses") ? body["addresses"] : json::array();
        if (!v.is_array()) return std::string("addresses must be an array");
        c.street1.clear(), c.city.clear(), c.region.clear(), c.postal_code.clear(), c.country.clear();
        for (const auto& e : v) {
            if (!e.is_object()) return std::string("each addresses entry must be an object");
            if (jstr(e, "field") != "BILLING") continue;
            c.street1 = jstr(e, "line1");
            c.city = jstr(e, "locality");
            c.region = jstr(e, "region");
            c.postal_code = jstr(e, "postal_code");
            c.country = jstr(e, "country_code");
        }
    }
    if (take("company")) {
        const json v = body.contains("company") ? body["company"] : json();
        if (!v.is_object() && !v.is_null()) return std::string("company must be an object");
        c.company = v.is_object() ? jstr(v, "company_name") : "";
    }
    if (take("owner_id")) {
        const json v = body.contains("owner_id") ? body["owner_id"] : json();
        std::optional<int64_t> id = v.is_null() ? std::optional<int64_t>(0)
                                    : v.is_number_integer() ? std::optional<int64_t>(v.get<int64_t>())
                                    : v.is_string() ? to_int(v.get<std::string>())
                                                    : std::nullopt;
        if (!id) return std::string("owner_id must be an id");
        c.owner_id = *id;
    }
    return std::nullopt;
}

// POST /v2/tags/{tag_id}/contacts:applyTags | :removeTags with {"contact_ids":["1",...]} (keap-sdk, TagsApi).
Reply v2_tags(State& s, const Req& r, const std::string& sub) {
    const std::string rest = sub.substr(6);   // after "/tags/"
    const size_t slash = rest.find('/');
    const std::string action = slash == std::string::npos ? "" : rest.substr(slash);
    const bool apply = action == "/contacts:applyTags";
    if (!apply && action != "/contacts:removeTags") return v2_error(404, "NOT_FOUND", "Not found");
    if (r.method != "POST") return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    auto tag = to_int(rest.substr(0, slash));
    if (!tag || !s.keap_tags.count(*tag)) return v2_error(404, "NOT_FOUND", "Tag not found: " + rest.substr(0, slash));
    auto body = parse_json(r.raw.body);
    if (!body || !body->is_object() || !body->contains("contact_ids") || !(*body)["contact_ids"].is_array()) {
        return v2_error(400, "INVALID_ARGUMENT", "contact_ids must be an array of contact ids");
    }
    std::vector<KeapContact*> targets;
    for (const auto& id : (*body)["contact_ids"]) {
        std::optional<int64_t> n = id.is_string() ? to_int(id.get<std::string>())
                                   : id.is_number_integer() ? std::optional<int64_t>(id.get<int64_t>())
                                                            : std::nullopt;
        KeapContact* c = n ? s.contact(*n) : nullptr;
        if (!c) return v2_error(404, "NOT_FOUND", "Contact not found: " + (id.is_string() ? id.get<std::string>() : id.dump()));
        targets.push_back(c);
    }
    for (KeapContact* c : targets) {
        auto it = std::lower_bound(c->tags.begin(), c->tags.end(), *tag);
        const bool has = it != c->tags.end() && *it == *tag;
        if (apply && !has) c->tags.insert(it, *tag);
        if (!apply && has) c->tags.erase(it);
    }
    return json_reply(200, json::object());
}

Reply rest_v2(State& s, const Req& r, const std::string& sub) {
    if (sub == "/contacts" || sub == "/contacts/") {
        if (r.method == "GET") return v2_list(s, r);
        if (r.method == "POST") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v2_error(400, "INVALID_ARGUMENT", "Invalid request body");
            KeapContact c;
            if (auto bad = apply_contact_v2(c, *body, {})) return v2_error(400, "INVALID_ARGUMENT", *bad);
            c.id = s.next_contact_id++;
            c.created = c.updated = s.now();
            s.contacts.push_back(c);
            return json_reply(201, contact_v2(c));
        }
        return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    }
    if (starts_with(sub, "/tags/")) return v2_tags(s, r, sub);
    if (starts_with(sub, "/contacts/")) {
        auto id = to_int(sub.substr(10));
        KeapContact* c = id ? s.contact(*id) : nullptr;
        if (!c) return v2_error(404, "NOT_FOUND", "Contact not found: " + sub.substr(10));
        if (r.method == "GET") {
            const std::vector<std::string> fields = split_commas(r.q("fields").value_or(""));
            for (const auto& f : fields) {
                if (!v2_member(f)) return v2_error(400, "INVALID_ARGUMENT", "Invalid field: " + f);
            }
            return json_reply(200, contact_v2(*c, fields));
        }
        if (r.method == "PATCH") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v2_error(400, "INVALID_ARGUMENT", "Invalid request body");
            KeapContact updated = *c;
            // keap.md: PATCH /contacts/{id}?update_mask=given_name,family_name
            if (auto bad = apply_contact_v2(updated, *body, split_commas(r.q("update_mask").value_or("")))) {
                return v2_error(400, "INVALID_ARGUMENT", *bad);
            }
            updated.updated = s.now();
            *c = updated;
            return json_reply(200, contact_v2(*c));
        }
        return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    }
    return v2_error(404, "NOT_FOUND", "Not found");
}

}  // namespace

Reply rest(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    Credential cred;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto bearer = bearer_of(r)) {
        if (auto bad = check_bearer(s, *bearer, cred)) return *bad;
    } else if (auto key = r.header("X-Keap-API-Key")) {
        if (!valid_api_key(*key)) return gateway_fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey");
        cred.api_key = true;
        cred.bucket = "keap-key:" + *key;
    } else {
        return gateway_fault(401, "Invalid Access Token", "keymanagement.service.invalid_access_token");
    }
    Reply headers;
    if (auto throttled = meter(s, cred, headers)) return *throttled;
    Reply out = starts_with(r.path, kRest1) ? rest_v1(s, r, r.path.substr(std::string(kRest1).size()))
                                            : rest_v2(s, r, r.path.substr(std::string(kRest2).size()));
    for (auto& h : headers.headers) out.headers.push_back(h);
    return out;
}

}  // namespace keyrelay::sandbox::keap
