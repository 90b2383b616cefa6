// Embind bindings: keyrelay_core as the JS module build/wasm/keyrelay.{mjs,cjs}.
//
// Every function takes and returns plain JS values (strings, numbers, plain objects, arrays), never class handles,
// so no caller ever needs .delete(). These are the raw functions ("kr_*" on the module); api.js (--post-js) arranges
// them into the documented namespaces (kr.xmlrpc.encodeCall, kr.keap.parseContacts, ...) and is the one place that
// turns a binding failure into a thrown JS Error. Protocol errors are values: {ok:false, error:{code, message, hint}}.
// kr_input and kr_release exist for api.js alone (see Scratch below).
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/diagnose.h"
#include "keyrelay/http.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/keap_bridge.h"
#include "keyrelay/oauth2.h"
#include "keyrelay/xmlrpc.h"
#include "value_json.h"

using emscripten::val;

namespace {

// The page talks to the relay, never to Keap or Jira: requests are built for the relay's proxy prefixes
// (docs/api.md, "Proxy"), which forward to https://api.infusionsoft.com/crm/rest/v1 and Jira Cloud's REST v3 base.
constexpr const char* kKeapBase = "/proxy/keap/crm/rest/v1";
constexpr const char* kJiraBase = "/proxy/jira/rest/api/3";

namespace conv {

// Largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
constexpr double kMaxSafeInteger = 9007199254740991.0;
// Same nesting limit as the decoder (xmlrpc::Limits::max_depth); also stops cyclic objects.
constexpr int kMaxDepth = 64;

bool is_nullish(const val& v) { return v.isNull() || v.isUndefined(); }

// Any JS value as a string: strings as they are, null/undefined as "", everything else through String(v).
std::string text(const val& v) {
    if (v.isString()) return v.as<std::string>();
    if (is_nullish(v)) return {};
    return val::global("String")(v).as<std::string>();
}

double number(const val& v) {
    if (v.isNumber()) return v.as<double>();
    return val::global("Number")(v).as<double>();
}

int status_code(const val& v) {
    double d = number(v);
    if (!std::isfinite(d) || d < 0 || d > 999) return 0;
    return static_cast<int>(d);
}

val object_keys(const val& obj) { return val::global("Object").call<val>("keys", obj); }

// Sets obj[key] = value as an own data property. A plain assignment of "__proto__" would replace the prototype
// instead, and member names come from untrusted XML-RPC documents.
void define(val& obj, const std::string& key, const val& value) {
    if (key == "__proto__") {
        val desc = val::object();
        desc.set("value", value);
        desc.set("enumerable", true);
        desc.set("writable", true);
        desc.set("configurable", true);
        val::global("Object").call<void>("defineProperty", obj, val(key), desc);
    } else {
        obj.set(key, value);
    }
}

val error(const keyrelay::Error& e) {
    val o = val::object();
    o.set("code", val(e.code));
    o.set("message", val(e.message));
    o.set("hint", val(e.hint));
    return o;
}

val failure(const keyrelay::Error& e) {
    val o = val::object();
    o.set("ok", false);
    o.set("error", error(e));
    return o;
}

val success(const char* key, const val& value) {
    val o = val::object();
    o.set("ok", true);
    o.set(key, value);
    return o;
}

// A plain object {name: value} (a value may be an array of values) -> Headers, in key order.
keyrelay::Headers headers(const val& obj) {
    keyrelay::Headers out;
    if (is_nullish(obj) || obj.typeOf().as<std::string>() != "object") return out;
    val keys = object_keys(obj);
    const unsigned n = keys["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) {
        std::string name = keys[i].as<std::string>();
        val value = obj[name];
        if (value.isArray()) {
            const unsigned m = value["length"].as<unsigned>();
            for (unsigned j = 0; j < m; ++j) out.add(name, text(value[j]));
        } else if (!value.isUndefined()) {
            out.add(name, text(value));
        }
    }
    return out;
}

// Headers -> a plain object. RFC 9110 §5.3: repeated fields combine into one, values joined with ", ".
val headers_object(const keyrelay::Headers& h) {
    val o = val::object();
    std::vector<std::pair<std::string, std::string>> merged;
    for (const auto& [name, value] : h.items()) {
        bool found = false;
        for (auto& [n, v] : merged) {
            if (keyrelay::iequals(n, name)) {
                v += ", " + value;
                found = true;
                break;
            }
        }
        if (!found) merged.emplace_back(name, value);
    }
    for (const auto& [name, value] : merged) define(o, name, val(value));
    return o;
}

keyrelay::HttpResponse response(const val& status, const val& hdrs, const val& body) {
    keyrelay::HttpResponse r;
    r.status = status_code(status);
    r.headers = headers(hdrs);
    r.body = text(body);
    return r;
}

// A request for the relay, as {method, path, headers, body}. The page sends it with fetch(path, {method, headers,
// body, credentials: "same-origin"}). docs/api.md: the relay refuses page calls to /proxy without the static
// header X-Requested-With: keyrelay (403 csrf.missing_header); a cross-site form cannot add it.
val relay_request(keyrelay::HttpRequest r) {
    r.headers.set("X-Requested-With", "keyrelay");
    val o = val::object();
    o.set("method", val(r.method));
    o.set("path", val(r.url));
    o.set("headers", headers_object(r.headers));
    o.set("body", val(r.body));
    return o;
}

// ---- XML-RPC values <-> JS values ------------------------------------------------------------------------------

// http://xmlrpc.com/spec.md: dateTime.iso8601 is written "19980717T14:08:55" and carries no time zone.
// keyrelay writes and reads it as UTC, so a Date survives encodeCall -> decodeResponse unchanged.
std::string iso8601_utc(const val& date) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d:%02d:%02d", date.call<int>("getUTCFullYear"),
                  date.call<int>("getUTCMonth") + 1, date.call<int>("getUTCDate"), date.call<int>("getUTCHours"),
                  date.call<int>("getUTCMinutes"), date.call<int>("getUTCSeconds"));
    return buf;
}

// JS value -> XML-RPC value, following the table: integer number -> int, other number -> double,
// boolean, string, null -> nil, Date -> dateTime.iso8601, Uint8Array (any byte view) -> base64,
// Array -> array, other object -> struct (own enumerable keys; members that are undefined are left out).
// On failure returns false and says where, e.g. "params[1].Email is a function".
bool from_js(const val& v, const std::string& where, int depth, keyrelay::xmlrpc::Value& out, std::string& err) {
    using keyrelay::xmlrpc::Value;
    if (depth > kMaxDepth) {
        err = where + " is nested more than " + std::to_string(kMaxDepth) + " levels deep (is it cyclic?)";
        return false;
    }
    if (v.isNull()) {
        out = Value::nil();
        return true;
    }
    const std::string type = v.typeOf().as<std::string>();
    if (type == "undefined") {
        err = where + " is undefined; use null for XML-RPC <nil/>";
        return false;
    }
    if (type == "boolean") {
        out = Value::boolean(v.as<bool>());
        return true;
    }
    if (type == "string") {
        out = Value::string(v.as<std::string>());
        return true;
    }
    if (type == "number") {
        const double d = v.as<double>();
        if (!std::isfinite(d)) {
            err = where + " is " + text(v) + ", which XML-RPC cannot represent";
            return false;
        }
        if (val::global("Number").call<bool>("isInteger", v) && std::fabs(d) <= kMaxSafeInteger) {
            out = Value::integer(static_cast<int64_t>(d));
        } else {
            out = Value::double_(d);
        }
        return true;
    }
    if (type == "bigint") {
        const std::string s = text(v);
        char* end = nullptr;
        errno = 0;
        const long long n = std::strtoll(s.c_str(), &end, 10);
        if (errno != 0 || end == s.c_str() || *end != '\0') {
            err = where + " is " + s + "n, outside the 64-bit range of XML-RPC <i8>";
            return false;
        }
        out = Value::integer(static_cast<int64_t>(n));
        return true;
    }
    if (type != "object") {
        err = where + " is a " + type + ", which has no XML-RPC type";
        return false;
    }
    if (v.instanceof(val::global("Date"))) {
        if (std::isnan(v.call<double>("getTime"))) {
            err = where + " is an invalid Date";
            return false;
        }
        const int year = v.call<int>("getUTCFullYear");
        if (year < 0 || year > 9999) {
            err = where + " is a Date in the year " + std::to_string(year) + "; dateTime.iso8601 has 4-digit years";
            return false;
        }
        out = Value::datetime(iso8601_utc(v));
        return true;
    }
    if (val::global("ArrayBuffer").call<bool>("isView", v)) {
        val bytes = val::global("Uint8Array").new_(v["buffer"], v["byteOffset"], v["byteLength"]);
        const std::vector<uint8_t> data = emscripten::convertJSArrayToNumberVector<uint8_t>(bytes);
        out = Value::base64(std::string(data.begin(), data.end()));
        return true;
    }
    if (v.isArray()) {
        keyrelay::xmlrpc::Array items;
        const unsigned n = v["length"].as<unsigned>();
        items.reserve(n);
        for (unsigned i = 0; i < n; ++i) {
            Value item;
            if (!from_js(v[i], where + "[" + std::to_string(i) + "]", depth + 1, item, err)) return false;
            items.push_back(std::move(item));
        }
        out = Value::array_of(std::move(items));
        return true;
    }
    keyrelay::xmlrpc::Struct members;
    val keys = object_keys(v);
    const unsigned n = keys["length"].as<unsigned>();
    for (unsigned i = 0; i < n; ++i) {
        const std::string key = keys[i].as<std::string>();
        val member = v[key];
        if (member.isUndefined()) continue;
        Value mv;
        if (!from_js(member, where + "." + key, depth + 1, mv, err)) return false;
        members.emplace_back(key, std::move(mv));
    }
    out = Value::struct_of(std::move(members));
    return true;
}

}  // namespace conv

// ---- the raw functions ------------------------------------------------------------------------------------------

std::string version() { return KEYRELAY_VERSION; }

// -> {ok:true, xml} | {ok:false, message}: api.js throws a TypeError with the message.
val xmlrpc_encode_call(const std::string& method, const val& params) {
    keyrelay::xmlrpc::Array values;
    if (!conv::is_nullish(params)) {
        const unsigned n = params["length"].as<unsigned>();
        values.reserve(n);
        for (unsigned i = 0; i < n; ++i) {
            keyrelay::xmlrpc::Value v;
            std::string err;
            if (!conv::from_js(params[i], "params[" + std::to_string(i) + "]", 1, v, err)) {
                val o = val::object();
                o.set("ok", false);
                o.set("message", val(err));
                return o;
            }
            values.push_back(std::move(v));
        }
    }
    return conv::success("xml", val(keyrelay::xmlrpc::encode_call(method, values)));
}

// Memory that api.js and the decoder share for one call. A body passed as a std::string would be copied into Wasm
// by a JS loop over its characters (embind's UTF-8 conversion); api.js instead writes it here with
// TextEncoder.encodeInto, and reads the decoded value's JSON text back with TextDecoder. api.js calls
// kr_release() after each call; buffers over 1 MiB are freed then, smaller ones kept for the next call.
struct Scratch {
    std::string input;
    std::string json;
    std::string bytes;
};

Scratch& scratch() {
    static Scratch s;
    return s;
}

val memory_view(const std::string& s) {
    // Valid only until Wasm memory next grows: api.js reads it before calling into the module again.
    return val(emscripten::typed_memory_view(s.size(), reinterpret_cast<const unsigned char*>(s.data())));
}

// The input buffer resized to `size` bytes (its first `keep` bytes kept), as a Uint8Array over Wasm memory.
val input_buffer(size_t size, size_t keep) {
    std::string& in = scratch().input;
    in.resize(std::min(keep, in.size()));
    in.resize(size);
    return memory_view(in);
}

void release() {
    constexpr size_t kKeep = 1 << 20;
    for (std::string* s : {&scratch().input, &scratch().json, &scratch().bytes}) {
        if (s->capacity() > kKeep) {
            std::string().swap(*s);
        } else {
            s->clear();
        }
    }
}

// Decodes the first `length` bytes of the input buffer.
// -> {ok:true, json, bytes, tagged} (api.js makes it {ok:true, value}) | {ok:false, fault} | {ok:false, error}
val xmlrpc_decode_response(size_t length) {
    Scratch& io = scratch();
    auto r = keyrelay::xmlrpc::decode_response(std::string_view(io.input.data(), std::min(length, io.input.size())));
    if (!r) return conv::failure(r.error());
    if (r->is_fault) {
        val fault = val::object();
        fault.set("code", val(static_cast<double>(r->fault.code)));
        fault.set("string", val(r->fault.string));
        val o = val::object();
        o.set("ok", false);
        o.set("fault", fault);
        return o;
    }
    io.json.clear();
    io.bytes.clear();
    // The JSON text of a Keap response is about a quarter of its XML: reserving half avoids copies as it grows.
    io.json.reserve(length / 2 + 16);
    const bool tagged = keyrelay::wasm::write_json(r->value, io.json, io.bytes);
    val o = val::object();
    o.set("ok", true);
    o.set("json", memory_view(io.json));
    o.set("bytes", memory_view(io.bytes));
    o.set("tagged", tagged);
    return o;
}

std::string oauth_basic_auth_header(const val& client_id, const val& secret) {
    return keyrelay::oauth2::basic_auth_header(conv::text(client_id), conv::text(secret));
}

val oauth_parse_token_response(const val& status, const val& body) {
    keyrelay::HttpResponse response;
    response.status = conv::status_code(status);
    response.body = conv::text(body);
    // The page has no clock to give: expires_at is not part of the JS result, expires_in is.
    auto r = keyrelay::oauth2::parse_token_response(response, 0, nullptr, true);
    if (!r) return conv::failure(r.error());
    val token = val::object();
    token.set("access_token", val(r->access_token));
    token.set("refresh_token", val(r->refresh_token));
    token.set("expires_in", val(static_cast<double>(r->expires_in)));
    token.set("scope", val(r->scope));
    token.set("account", val(r->account));
    return conv::success("token", token);
}

val keap_find_contacts_by_email(const val& email) {
    return conv::relay_request(keyrelay::keap::find_contacts_by_email(kKeapBase, conv::text(email)));
}

val keap_update_contact_name(double id, const val& given, const val& family) {
    return conv::relay_request(keyrelay::keap::update_contact_name(kKeapBase, static_cast<int64_t>(id),
                                                                   conv::text(given), conv::text(family)));
}

val keap_create_contact(const val& given, const val& family, const val& email) {
    return conv::relay_request(
        keyrelay::keap::create_contact(kKeapBase, conv::text(given), conv::text(family), conv::text(email)));
}

val keap_parse_contacts(const val& status, const val& headers, const val& body) {
    auto r = keyrelay::keap::parse_contacts(conv::response(status, headers, body));
    if (!r) return conv::failure(r.error());
    val contacts = val::array();
    for (const auto& c : *r) {
        val o = val::object();
        o.set("id", val(static_cast<double>(c.id)));
        o.set("given_name", val(c.given_name));
        o.set("family_name", val(c.family_name));
        val emails = val::array();
        for (const auto& e : c.emails) emails.call<void>("push", val(e));
        o.set("emails", emails);
        contacts.call<void>("push", o);
    }
    return conv::success("contacts", contacts);
}

// The REST calls an XML-RPC methodCall (the first `length` bytes of the input buffer) becomes through the bridge.
// -> {ok:true, calls:[{method, path, body, when}]} | {ok:false, fault:{code, string}}
val keap_bridge_plan(size_t length) {
    Scratch& io = scratch();
    const auto plan = keyrelay::keap::bridge::describe(std::string_view(io.input.data(), std::min(length, io.input.size())));
    val o = val::object();
    o.set("ok", plan.ok);
    if (!plan.ok) {
        val fault = val::object();
        fault.set("code", val(plan.fault.code));
        fault.set("string", val(plan.fault.string));
        o.set("fault", fault);
        return o;
    }
    val calls = val::array();
    for (const auto& c : plan.calls) {
        val call = val::object();
        call.set("method", val(c.request.method));
        call.set("path", val(c.request.url));
        call.set("body", val(c.request.body));
        call.set("when", val(c.when));
        calls.call<void>("push", call);
    }
    o.set("calls", calls);
    return o;
}

val jira_search_users(const val& email) {
    return conv::relay_request(keyrelay::jira::search_users(kJiraBase, conv::text(email)));
}

val jira_parse_users(const val& status, const val& headers, const val& body, const val& email) {
    auto r = keyrelay::jira::parse_users(conv::response(status, headers, body), conv::text(email));
    if (!r) return conv::failure(r.error());
    val users = val::array();
    for (const auto& u : r->users) {
        val o = val::object();
        o.set("accountId", val(u.account_id));
        o.set("displayName", val(u.display_name));
        // Jira leaves emailAddress out when the user hides it (profile visibility); null says "hidden".
        o.set("emailAddress", u.email ? val(*u.email) : val::null());
        o.set("active", val(u.active));
        o.set("accountType", val(u.account_type));
        o.set("match", val(keyrelay::jira::match_name(u.match)));
        users.call<void>("push", o);
    }
    val o = conv::success("users", users);
    if (r->caveat) o.set("caveat", val(*r->caveat));
    return o;
}

// {status, headers, body, expect} -> {code, summary, hint}
val diagnose(const val& input) {
    const bool given = !conv::is_nullish(input);
    const val status = given ? input["status"] : val::undefined();
    const val headers = given ? input["headers"] : val::undefined();
    const val body = given ? input["body"] : val::undefined();
    const val expect = given ? input["expect"] : val::undefined();
    const keyrelay::Diagnosis d = keyrelay::diagnose(conv::response(status, headers, body),
                                                     keyrelay::expect_from_string(conv::text(expect)));
    val o = val::object();
    o.set("code", val(d.code));
    o.set("summary", val(d.summary));
    o.set("hint", val(d.hint));
    return o;
}

}  // namespace

EMSCRIPTEN_BINDINGS(keyrelay) {
    using emscripten::function;
    function("kr_version", &version);
    function("kr_xmlrpc_encodeCall", &xmlrpc_encode_call);
    function("kr_xmlrpc_decodeResponse", &xmlrpc_decode_response);
    function("kr_input", &input_buffer);
    function("kr_release", &release);
    function("kr_oauth_basicAuthHeader", &oauth_basic_auth_header);
    function("kr_oauth_parseTokenResponse", &oauth_parse_token_response);
    function("kr_keap_findContactsByEmail", &keap_find_contacts_by_email);
    function("kr_keap_updateContactName", &keap_update_contact_name);
    function("kr_keap_createContact", &keap_create_contact);
    function("kr_keap_parseContacts", &keap_parse_contacts);
    function("kr_keap_bridgePlan", &keap_bridge_plan);
    function("kr_jira_searchUsers", &jira_search_users);
    function("kr_jira_parseUsers", &jira_parse_users);
    function("kr_diagnose", &diagnose);
}
