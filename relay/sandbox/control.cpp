// The control API under /sandbox (INTERFACE.md "Credentials" and "Control"): what tests and the demo use to learn
// the credentials, read statistics, inject failures, revoke grants and start over.
#include <algorithm>

#include "common.h"

namespace keyrelay::sandbox {
namespace {

const char* const kModes[] = {"html_502", "html_503", "http_596",     "gateway_fault", "rate_limit",
                              "points_limit", "slow", "reset", "bad_xml_char", "status"};

Reply bad_request(const std::string& message) { return json_reply(400, json{{"error", message}}); }

json config(State& s, const std::string& base) {
    const App* keap = s.app_of(Provider::keap);
    const App* jira = s.app_of(Provider::jira);
    return json{
        {"base_url", base},
        {"keap",
         {{"client_id", keap->client_id},
          {"client_secret", keap->client_secret},
          {"app_name", ids::app_name},
          {"account", ids::keap_account},
          {"redirect_uris", keap->redirect_uris},
          {"authorize_url", base + "/keap/app/oauth/authorize"},
          {"token_url", base + "/keap/token"},
          {"api_base", base + "/keap"},
          {"xmlrpc_url", base + "/keap/crm/xmlrpc/v1"},
          {"api_key", ids::keap_api_key},
          {"pat", ids::keap_pat},
          {"access_ttl", keap->access_ttl},
          {"refresh_ttl", keap->refresh_ttl}}},
        {"jira",
         {{"client_id", jira->client_id},
          {"client_secret", jira->client_secret},
          {"app_name", ids::app_name},
          {"redirect_uris", jira->redirect_uris},
          {"authorize_url", base + "/jira/authorize"},
          {"token_url", base + "/jira/oauth/token"},
          {"accessible_resources_url", base + "/jira/oauth/token/accessible-resources"},
          {"api_base", base + "/jira"},
          {"cloud_id", ids::jira_cloud_id},
          {"site_name", ids::jira_site_name},
          {"site_url", ids::jira_site_url},
          {"api_token_email", ids::jira_admin_email},
          {"api_token", ids::jira_api_token},
          {"pat", ids::jira_pat},
          {"no_browse_email", ids::jira_no_browse_email},
          {"no_browse_api_token", ids::jira_no_browse_api_token},
          {"access_ttl", jira->access_ttl},
          {"refresh_ttl", jira->refresh_ttl}}},
    };
}

json stats(State& s) {
    json requests = json::object();
    for (const auto& [k, v] : s.requests) requests[k] = v;
    json tokens = json::object();
    for (const auto& [client, t] : s.token_stats) {
        tokens[client] = {{"provider", provider_name(t.provider)},
                          {"exchanges", t.exchanges},
                          {"exchange_failures", t.exchange_failures},
                          {"refreshes", t.refreshes},
                          {"refresh_failures", t.refresh_failures},
                          {"reuses", t.reuses}};
    }
    return json{{"requests", requests}, {"tokens", tokens}};
}

std::optional<int64_t> jint(const json& obj, const char* name) {
    auto it = obj.find(name);
    if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
}

Reply fail(State& s, const json& body) {
    Failure f;
    f.path = jstr(body, "path");
    f.mode = jstr(body, "mode");
    if (f.path.empty() || f.path[0] != '/') return bad_request("path must be a path starting with '/'");
    if (std::find(std::begin(kModes), std::end(kModes), f.mode) == std::end(kModes)) {
        return bad_request("mode must be one of html_502, html_503, http_596, gateway_fault, rate_limit, "
                           "points_limit, slow, reset, bad_xml_char, status");
    }
    if (body.contains("count") && !jint(body, "count")) return bad_request("count must be an integer");
    if (body.contains("status") && !jint(body, "status")) return bad_request("status must be an integer");
    if (body.contains("delay_ms") && !jint(body, "delay_ms")) return bad_request("delay_ms must be an integer");
    f.count = static_cast<int>(jint(body, "count").value_or(1));
    f.status = static_cast<int>(jint(body, "status").value_or(0));
    f.delay_ms = static_cast<int>(jint(body, "delay_ms").value_or(3000));
    if (f.count < 1) return bad_request("count must be at least 1");
    if (f.status != 0 && (f.status < 100 || f.status > 999)) return bad_request("status must be 100..999");
    if (f.delay_ms < 0 || f.delay_ms > 600000) return bad_request("delay_ms must be 0..600000");
    if (f.mode == "status" && f.status == 0) f.status = 500;
    s.failures.push_back(f);
    json pending = json::array();
    for (const auto& p : s.failures) {
        pending.push_back({{"path", p.path}, {"count", p.count}, {"mode", p.mode}});
    }
    return json_reply(200, json{{"pending", pending}});
}

Reply revoke(State& s, const json& body) {
    int64_t n = 0;
    auto kill = [&](int64_t id) {
        auto g = s.grants.find(id);
        if (g != s.grants.end() && !g->second.revoked) {
            g->second.revoked = true;
            ++n;
        }
    };
    if (auto p = jstr(body, "provider"); !p.empty()) {
        if (p != "keap" && p != "jira") return bad_request("provider must be keap or jira");
        for (auto& [id, g] : s.grants) {
            if (provider_name(g.provider) == p) kill(id);
        }
    } else if (auto rt = jstr(body, "refresh_token"); !rt.empty()) {
        auto it = s.refresh_tokens.find(rt);
        if (it != s.refresh_tokens.end()) kill(it->second.grant);
    } else if (auto at = jstr(body, "access_token"); !at.empty()) {
        auto it = s.access_tokens.find(at);
        if (it != s.access_tokens.end()) kill(it->second.grant);
    } else {
        return bad_request("give provider (keap|jira), refresh_token or access_token");
    }
    return json_reply(200, json{{"revoked", n}});
}

Reply add_redirect(State& s, const json& body) {
    const std::string p = jstr(body, "provider");
    const std::string uri = jstr(body, "redirect_uri");
    if (p != "keap" && p != "jira") return bad_request("provider must be keap or jira");
    if (!parse_url(uri)) return bad_request("redirect_uri must be an absolute http(s) URL");
    App* app = s.app_of(p == "keap" ? Provider::keap : Provider::jira);
    if (std::find(app->redirect_uris.begin(), app->redirect_uris.end(), uri) == app->redirect_uris.end()) {
        app->redirect_uris.push_back(uri);
    }
    return json_reply(200, json{{"provider", p}, {"redirect_uris", app->redirect_uris}});
}

json limits_json(const Limits& L) {
    return json{{"keap_key_per_second", L.keap_key_per_second},
                {"keap_key_per_day", L.keap_key_per_day},
                {"keap_oauth_per_minute", L.keap_oauth_per_minute},
                {"keap_oauth_per_day", L.keap_oauth_per_day},
                {"jira_burst", L.jira_burst},
                {"jira_per_second", L.jira_per_second}};
}

Reply set_limits(State& s, const json& body) {
    Limits L = s.limits;
    for (auto [name, field] : {std::pair<const char*, double*>{"keap_key_per_second", &L.keap_key_per_second},
                               {"keap_oauth_per_minute", &L.keap_oauth_per_minute},
                               {"jira_burst", &L.jira_burst},
                               {"jira_per_second", &L.jira_per_second}}) {
        if (!body.contains(name)) continue;
        if (!body[name].is_number() || body[name].get<double>() <= 0) return bad_request(std::string(name) + " must be > 0");
        *field = body[name].get<double>();
    }
    for (auto [name, field] : {std::pair<const char*, int64_t*>{"keap_key_per_day", &L.keap_key_per_day},
                               {"keap_oauth_per_day", &L.keap_oauth_per_day}}) {
        if (!body.contains(name)) continue;
        if (!jint(body, name) || *jint(body, name) <= 0) return bad_request(std::string(name) + " must be > 0");
        *field = *jint(body, name);
    }
    s.limits = L;
    s.buckets.clear();   // start every credential with a full bucket under the new limits
    return json_reply(200, limits_json(L));
}

Reply advance_clock(State& s, const json& body) {
    auto it = body.find("advance_seconds");
    if (it == body.end() || !it->is_number() || it->get<double>() < 0) {
        return bad_request("advance_seconds must be a number >= 0 (the clock only moves forward)");
    }
    s.clock_offset += it->get<double>();
    return json_reply(200, json{{"now", s.now()}, {"offset_seconds", s.clock_offset}});
}

}  // namespace

std::optional<Reply> route_control(State& s, const Req& r) {
    const std::string& p = r.path;
    std::lock_guard<std::mutex> lock(s.mu);
    if (p == "/sandbox/config" && r.method == "GET") return json_reply(200, config(s, r.base_url));
    if (p == "/sandbox/stats" && r.method == "GET") return json_reply(200, stats(s));
    if (p == "/sandbox/limits" && r.method == "GET") return json_reply(200, limits_json(s.limits));
    if (p == "/sandbox/reset" && r.method == "POST") {
        s.reset();
        return json_reply(200, json{{"reset", true}});
    }
    using Handler = Reply (*)(State&, const json&);
    const std::pair<const char*, Handler> posts[] = {{"/sandbox/fail", fail},
                                                     {"/sandbox/revoke", revoke},
                                                     {"/sandbox/redirect-uris", add_redirect},
                                                     {"/sandbox/limits", set_limits},
                                                     {"/sandbox/clock", advance_clock}};
    for (const auto& [path, handler] : posts) {
        if (p != path) continue;
        if (r.method != "POST") return json_reply(405, json{{"error", "use POST"}});
        auto body = parse_json(r.raw.body);
        if (!body || !body->is_object()) return bad_request("the body must be a JSON object");
        return handler(s, *body);
    }
    return std::nullopt;
}

}  // namespace keyrelay::sandbox
