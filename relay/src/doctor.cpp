// `keyrelay doctor`: what a person would check by hand, in plain words, with what to do about each problem.
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <vector>

#include "cli.h"
#include "doctor_report.h"
#include "state/crypto.h"
#include "state/store_keys.h"
#include "http/util.h"
#include "keyrelay/http.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/oauth2.h"
#include "upstream.h"

namespace keyrelay::relay {
namespace {

void check_tls(const Config& c, DoctorReport& r) {
    if (!c.tls()) {
        if (!c.public_url.empty() && c.public_url.rfind("https://", 0) == 0) {
            r.info("No TLS files: the relay serves plain HTTP and expects a reverse proxy to terminate HTTPS for " +
                   c.public_url + ".");
        }
        return;
    }
    if (c.tls_cert.empty() || c.tls_key.empty()) {
        r.fail("Only one of tls_cert / tls_key is set.", "HTTPS needs both the certificate and its private key.");
        return;
    }
    FILE* cf = std::fopen(c.tls_cert.c_str(), "r");
    if (cf == nullptr) {
        r.fail("The TLS certificate " + c.tls_cert + " cannot be read.",
               "Check the path and that the relay's user may read it.");
        return;
    }
    X509* cert = PEM_read_X509(cf, nullptr, nullptr, nullptr);
    std::fclose(cf);
    if (cert == nullptr) {
        r.fail("The TLS certificate " + c.tls_cert + " is not a PEM certificate.",
               "It should start with -----BEGIN CERTIFICATE-----. scripts/dev-cert makes a local one.");
        return;
    }
    FILE* kf = std::fopen(c.tls_key.c_str(), "r");
    EVP_PKEY* key = kf != nullptr ? PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr) : nullptr;
    if (kf != nullptr) std::fclose(kf);
    if (key == nullptr) {
        r.fail("The TLS key " + c.tls_key + " cannot be read as a PEM private key.",
               "Check the path, the relay user's permission to read it, and that it is not passphrase-protected.");
    } else if (X509_check_private_key(cert, key) != 1) {
        r.fail("The TLS key " + c.tls_key + " does not belong to the certificate " + c.tls_cert + ".",
               "Use the key that was generated with this certificate (compare `openssl x509 -noout -pubkey -in "
               "CERT` with `openssl pkey -pubout -in KEY`).");
    } else {
        r.ok("The TLS certificate and key load and belong together.");
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        r.fail("The TLS certificate has expired.", "Renew it (certbot renew, or scripts/dev-cert for local use).");
    } else {
        time_t in_14_days = std::time(nullptr) + 14 * 86400;
        if (X509_cmp_time(X509_get0_notAfter(cert), &in_14_days) < 0) {
            r.warn("The TLS certificate expires within 14 days.", "Renew it soon.");
        }
    }
    if (!c.public_url.empty()) {
        auto u = parse_url(c.public_url);
        // An IPv6 literal keeps its brackets in the URL (RFC 3986 §3.2.2); the certificate names the bare address.
        std::string name = u ? u->host : std::string();
        if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
        if (u && X509_check_host(cert, name.c_str(), name.size(), 0, nullptr) != 1 &&
            X509_check_ip_asc(cert, name.c_str(), 0) != 1) {
            r.fail("The TLS certificate does not name " + u->host + " (the host of public_url).",
                   "Browsers will refuse it. Get a certificate for " + u->host + ", or fix public_url.");
        }
    }
    if (key != nullptr) EVP_PKEY_free(key);
    X509_free(cert);
}

void check_store_key(const Config& c, DoctorReport& r) {
    if (c.store_key) {
        auto key = parse_store_key(*c.store_key);
        if (!key) {
            r.fail("KEYRELAY_STORE_KEY is not a valid key: " + key.error().message, key.error().hint);
        } else {
            r.ok("KEYRELAY_STORE_KEY is a valid 32-byte key.");
        }
        if (c.store_key_previous) {
            auto prev = parse_store_key(*c.store_key_previous);
            if (!prev) r.fail("KEYRELAY_STORE_KEY_PREVIOUS is not a valid key: " + prev.error().message, prev.error().hint);
        }
        return;
    }
    if (c.data_dir.empty()) {
        r.info("No KEYRELAY_STORE_KEY: the relay makes a temporary data dir with a generated key file (sandbox).");
        return;
    }
    std::string file = c.data_dir + "/store.key";
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
        if ((st.st_mode & 077) != 0) {
            r.fail("The store key file " + file + " is readable by group or others.",
                   "Run `chmod 600 " + file + "`; anyone who can read it can decrypt every stored token.");
            return;
        }
        auto key = parse_store_key(generated_key_text(c.data_dir).value_or(""));
        if (!key) {
            r.fail("The store key file " + file + " does not hold a valid key.", key.error().hint);
        } else {
            r.ok("No KEYRELAY_STORE_KEY: the relay uses the key file " + file + " (mode 0600). Back it up.");
        }
        return;
    }
    r.warn("No KEYRELAY_STORE_KEY and no key file yet: the relay will generate " + file + " at start.",
           "That works, but the tokens are lost with that file. For production set KEYRELAY_STORE_KEY (make one with "
           "`openssl rand -hex 32`) from a secret store, or back up the file.");
}

void check_redirects(const Config& c, int port, DoctorReport& r) {
    for (const auto& p : c.providers) {
        if (p.mode != Mode::oauth || !p.oauth_configured()) continue;
        std::string uri = c.redirect_uri(p.name, port);
        auto u = parse_url(uri);
        if (!u) {
            r.fail("The redirect URI " + uri + " is not a valid URL.", "Fix public_url in the config.");
            continue;
        }
        if (u->scheme != "https" && !is_loopback_bind(u->host) && u->host != "[::1]") {
            r.fail("The " + p.name + " redirect URI " + uri + " is not HTTPS.",
                   "Providers send the authorization code to this address: it must be HTTPS (except on "
                   "127.0.0.1/localhost). Set public_url to https://your-host and serve HTTPS (--tls-cert/--tls-key "
                   "or a reverse proxy).");
        } else {
            r.ok("Register exactly this redirect URI in the " + p.name + " developer app: " + uri);
        }
    }
    if (c.public_url.empty() && !is_loopback_bind(c.bind)) {
        r.warn("The relay listens on " + c.bind + " but public_url is not set.",
               "Set public_url to the address browsers use (e.g. https://relay.example.com): it makes the redirect "
               "URIs and protects against DNS rebinding.");
    }
}

void check_secrets(const Config& c, DoctorReport& r) {
    int usable = 0;
    for (const auto& p : c.providers) {
        const std::string& e = p.env_prefix;
        if (p.mode != Mode::oauth) {
            ++usable;
            r.ok(p.name + " uses a static credential (" + mode_name(p.mode) + ") from the environment.");
            continue;
        }
        bool id = !p.client_id.empty();
        bool secret = !p.client_secret.empty();
        if (id && secret) {
            ++usable;
            r.ok(p.name + ": " + e + "_CLIENT_ID and " + e + "_CLIENT_SECRET are set.");
        } else if (id != secret) {
            r.fail(p.name + ": " + (id ? e + "_CLIENT_SECRET" : e + "_CLIENT_ID") + " is missing (the other one is set).",
                   "Set both from the provider's developer app, in the environment or as " + e + "_CLIENT_SECRET_FILE "
                   "in the config.");
        } else {
            std::string alt = p.name == "keap"   ? " (or KEAP_API_KEY for a Personal Access Token / Service Account Key)"
                              : p.name == "jira" ? " (or JIRA_API_TOKEN + JIRA_EMAIL + JIRA_SITE, or JIRA_PAT + JIRA_SITE)"
                                                 : "";
            r.info(p.name + " is not configured: no " + e + "_CLIENT_ID / " + e + "_CLIENT_SECRET" + alt + ".");
        }
    }
    if (usable == 0) {
        r.fail("No provider has credentials: the relay can connect to nothing.",
               "Set KEAP_CLIENT_ID + KEAP_CLIENT_SECRET (or KEAP_API_KEY), and/or the JIRA_* variables.");
    }
    if (c.users.empty() && !c.sandbox) {
        r.fail("The config has no page users: nobody can log in to the page.",
               "Add {\"username\": \"you\", \"password_hash\": \"...\"} to users; make the hash with `keyrelay "
               "hash-password`.");
    }
    if (!c.api_key.empty() && c.api_key.size() < 32) {
        r.warn("KEYRELAY_API_KEY is short (" + std::to_string(c.api_key.size()) + " characters).",
               "Anyone with it can call the proxy: use at least 32 random characters (`openssl rand -hex 32`).");
    }
    if (!c.ca_file.empty() && ::access(c.ca_file.c_str(), R_OK) != 0) {
        r.fail("ca_file " + c.ca_file + " cannot be read.", "Check the path and permissions.");
    }
}

// The values a template ships with (relay/keyrelay.example.json, the package's /etc/keyrelay/keyrelay.json): the
// relay loads them, but nobody can log in and the providers would redirect to somebody else's host.
void check_template_values(const Config& c, DoctorReport& r) {
    for (const auto& u : c.users) {
        if (u.password_hash.find("REPLACE_WITH") != std::string::npos) {
            r.fail("The page user \"" + u.username + "\" still has the example password_hash (REPLACE_WITH_...): "
                   "nobody can log in as " + u.username + ".",
                   "Run `keyrelay hash-password`, type the password, and put the line it prints in place of the "
                   "example hash in " + (c.config_path.empty() ? std::string("the config") : c.config_path) + ".");
        }
    }
    if (c.public_url.empty()) return;
    auto u = parse_url(c.public_url);
    if (!u) return;
    // RFC 2606 §2-3: example.com, example.net, example.org and the .example TLD are reserved for documentation.
    bool example = false;
    for (const std::string domain : {"example", "example.com", "example.net", "example.org"}) {
        example = example || u->host == domain || iends_with(u->host, "." + domain);
    }
    if (example) {
        r.fail("public_url " + c.public_url + " is the example address from the template.",
               "Set public_url to the https:// address people open for this relay (your DNS name): the redirect "
               "URIs you register at Keap and Atlassian are made from it.");
    }
}

// The secrets file that systemd reads for the unit (EnvironmentFile=), beside the config: the package installs it
// as a commented template. Values are never printed, only names.
void check_env_file(const Config& c, DoctorReport& r) {
    if (c.config_path.empty()) return;
    size_t slash = c.config_path.rfind('/');
    std::string file = (slash == std::string::npos ? std::string(".") : c.config_path.substr(0, slash)) + "/keyrelay.env";
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return;
    std::ifstream in(file);
    if (!in) {
        r.info("The env file " + file + " cannot be read by this user; its settings are not checked.");
        return;
    }
    if ((st.st_mode & 077) != 0) {
        r.fail("The env file " + file + " is readable by group or others.",
               "Run `chmod 600 " + file + "`: it holds the client secrets and the store key.");
    }
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
        std::string t = trim_ascii(line);
        if (t.empty() || t[0] == '#') continue;
        size_t eq = t.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        if (trim_ascii(t.substr(eq + 1)).empty()) continue;
        names.push_back(trim_ascii(t.substr(0, eq)));
    }
    bool provider_setting = false;
    for (const auto& n : names) provider_setting = provider_setting || n.rfind("KEYRELAY_", 0) != 0;
    bool provider_usable = false;   // credentials may also come from *_FILE settings in the config
    for (const auto& p : c.providers) provider_usable = provider_usable || p.mode != Mode::oauth || p.oauth_configured();
    std::string check = "(set -a; . " + file + "; keyrelay doctor --config " + c.config_path + ")";
    if (names.empty() && !provider_usable) {
        r.fail("The env file " + file + " sets nothing: the relay would start with no credentials.",
               "Fill in the provider credentials it lists (connect.md says where they come from), then check with " +
                   check + ".");
        return;
    }
    if (!names.empty() && !provider_setting && !provider_usable) {
        r.fail("The env file " + file + " sets no provider credentials (only KEYRELAY_* settings).",
               "Add KEAP_CLIENT_ID and KEAP_CLIENT_SECRET (or KEAP_API_KEY) and/or the JIRA_* settings, then check "
               "with " + check + ".");
    }
    auto env = process_env();
    std::string unseen;
    for (const auto& n : names) {
        if (!env(n)) unseen += (unseen.empty() ? "" : ", ") + n;
    }
    if (!unseen.empty()) {
        r.warn("This check does not see what " + file + " sets (" + unseen + "): systemd gives those to the relay.",
               "Check with them: " + check + ".");
    }
}

// RFC 6749 §5.2: a made-up code is answered invalid_grant when the client authenticated, invalid_client (or 401)
// when it did not. Nothing is created or changed at the provider.
void probe_token_endpoint(const ProviderConfig& p, const Config& c, int port, Upstream& up, DoctorReport& r) {
    oauth2::Client client{p.client_id, p.client_secret, c.redirect_uri(p.name, port)};
    HttpRequest request = oauth2::build_code_exchange(p.oauth, client, "keyrelay-doctor-not-a-real-code",
                                                      p.oauth.pkce ? "keyrelay-doctor-verifier-0123456789-abcdefghijkl"
                                                                   : "");
    auto answer = up.send(request);
    if (!answer) {
        r.fail(p.name + ": cannot reach the token endpoint " + p.oauth.token_url + ": " + answer.error().message,
               answer.error().hint);
        return;
    }
    if (answer->status >= 200 && answer->status < 300) {
        r.warn(p.name + ": the token endpoint accepted a made-up code (HTTP " + std::to_string(answer->status) + ").",
               "This is not a real OAuth token endpoint: check token_url.");
        return;
    }
    Error e = oauth2::parse_token_error(*answer);
    if (e.code == "oauth.invalid_grant") {
        r.ok(p.name + ": the token endpoint accepts the client id and secret (it refused only the made-up code).");
    } else if (e.code == "oauth.invalid_client" || e.code == "oauth.unauthorized") {
        r.fail(p.name + ": the token endpoint rejects the client credentials: " + e.message,
               "The client id or secret is wrong, or belongs to another app. Copy both again from the provider's "
               "developer app into " + p.env_prefix + "_CLIENT_ID / " + p.env_prefix + "_CLIENT_SECRET.");
    } else if (e.code == "oauth.invalid_redirect_uri") {
        r.fail(p.name + ": the token endpoint refuses the redirect URI " + client.redirect_uri + ".",
               "Register exactly " + client.redirect_uri + " in the provider's developer app.");
    } else {
        r.warn(p.name + ": the token endpoint answered " + e.code + ": " + e.message, e.hint);
    }
}

void probe_static(const ProviderConfig& p, Upstream& up, DoctorReport& r) {
    std::string base = resolve_api_base(p, "");
    HttpRequest request;
    if (p.mode == Mode::api_key) {
        request = keap::userinfo(base + "/crm/rest/v1");
        keap::attach_api_key(request, p.static_secret);
    } else if (p.mode == Mode::api_token) {
        request = jira::myself(base + "/rest/api/3");
        jira::attach_basic(request, p.static_email, p.static_secret);
    } else {
        request = jira::myself(base + "/rest/api/2");
        jira::attach_bearer(request, p.static_secret);
    }
    auto answer = up.send(request);
    if (!answer) {
        r.fail(p.name + ": cannot reach " + base + ": " + answer.error().message, answer.error().hint);
    } else if (answer->status == 200) {
        r.ok(p.name + ": the " + mode_name(p.mode) + " credential is accepted.");
    } else if (answer->status == 401 || answer->status == 403) {
        r.fail(p.name + ": the " + mode_name(p.mode) + " credential is refused (HTTP " +
                   std::to_string(answer->status) + ").",
               p.mode == Mode::api_key ? "Make a new Personal Access Token or Service Account Key in Keap and put it "
                                         "in KEAP_API_KEY."
                                       : "Check " + p.env_prefix + "_EMAIL, the token and " + p.env_prefix + "_SITE.");
    } else {
        r.warn(p.name + ": checking the " + mode_name(p.mode) + " credential answered HTTP " +
                   std::to_string(answer->status) + ".",
               "Check the site / API base URL.");
    }
}

}  // namespace

int run_doctor(const Config& config, int port) {
    DoctorReport r;
    std::cout << "keyrelay doctor: " << (config.sandbox ? "sandbox " + config.sandbox_url : config.config_path)
              << "\n";
    check_secrets(config, r);
    check_template_values(config, r);
    check_env_file(config, r);
    check_store_key(config, r);
    check_redirects(config, port, r);
    check_tls(config, r);
    check_redis(config, r);
    if (!config.offline_checks) {
        UpstreamOptions options;
        options.ca_file = config.ca_file;
        options.connect_timeout_ms = 5000;
        options.read_timeout_ms = 10000;
        Upstream up(options);
        for (const auto& p : config.providers) {
            if (p.mode == Mode::oauth && p.oauth_configured()) probe_token_endpoint(p, config, port, up, r);
            if (p.mode != Mode::oauth) probe_static(p, up, r);
        }
    }
    std::cout << "\n"
              << (r.failures == 0 ? "All good" : std::to_string(r.failures) + " problem(s) to fix")
              << (r.warnings > 0 ? ", " + std::to_string(r.warnings) + " warning(s)." : ".") << "\n";
    return r.failures == 0 ? 0 : 1;
}

}  // namespace keyrelay::relay
