#include "cli.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "config_values.h"
#include "keyrelay/http.h"
#include "state/files.h"
#include "upstream.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

const std::map<std::string, std::set<std::string>>& command_flags() {
    static const std::map<std::string, std::set<std::string>> kFlags{
        {"serve",
         {"--sandbox", "--config", "--port", "--data-dir", "--web-dir", "--wasm-dir", "--bind", "--tls-cert", "--tls-key",
          "--ca-file", "--log-level"}},
        {"doctor", {"--sandbox", "--config", "--port", "--data-dir", "--tls-cert", "--tls-key", "--ca-file",
                    "--offline"}},
        {"hash-password", {"--iterations"}},
        {"rotate-key", {"--data-dir", "--config"}},
        {"migrate-store", {"--from-data-dir", "--to-data-dir", "--config"}},
    };
    return kFlags;
}

Error cli_error(const std::string& code, const std::string& message, const std::string& command) {
    return make_error(code, message,
                      "Run `keyrelay " + (command.empty() ? std::string("--help") : command + " --help") +
                          "` for the usage.");
}

}  // namespace

int print_error(const Error& e, int status, std::ostream& err) {
    err << "keyrelay: " << e.message << "\n";
    if (!e.hint.empty()) err << "  " << e.hint << "\n";
    err << "  (" << e.code << ")\n";
    return status;
}

Result<CliArgs> parse_cli(const std::vector<std::string>& args) {
    CliArgs out;
    if (args.empty()) {
        out.command = "help";
        return out;
    }
    const std::string& first = args[0];
    if (first == "--help" || first == "-h" || first == "help") {
        out.command = "help";
        if (args.size() > 1 && command_flags().count(args[1])) {
            out.command = args[1];
            out.help = true;
        }
        return out;
    }
    if (first == "--version" || first == "version") {
        out.command = "version";
        return out;
    }
    if (!command_flags().count(first)) {
        return cli_error("cli.unknown_command", "Unknown command \"" + first + "\".", "");
    }
    out.command = first;
    const auto& allowed = command_flags().at(first);
    for (size_t i = 1; i < args.size(); ++i) {
        std::string flag = args[i];
        std::optional<std::string> value;
        size_t eq = flag.find('=');
        if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag = flag.substr(0, eq);
        }
        if (flag == "--help" || flag == "-h") {
            out.help = true;
            continue;
        }
        if (!allowed.count(flag)) {
            return cli_error("cli.unknown_flag", "Unknown option \"" + flag + "\" for `keyrelay " + first + "`.",
                             first);
        }
        if (flag == "--offline") {   // the one option without a value
            value = "";
        } else if (!value) {
            if (i + 1 >= args.size()) {
                return cli_error("cli.missing_value", "The option " + flag + " needs a value.", first);
            }
            value = args[++i];
        }
        out.flags[flag] = *value;
    }
    return out;
}

std::string usage(const std::string& command) {
    if (command == "serve") {
        return "Usage: keyrelay serve (--sandbox URL | --config FILE) [options]\n"
               "\n"
               "Runs the relay: page login, OAuth flows for Keap and Jira, an encrypted token store with\n"
               "rotation-safe refresh, and an allowlisted proxy at /proxy/{provider}/...\n"
               "\n"
               "  --sandbox URL     point Keap and Jira at a running keyrelay-sandbox (no config needed;\n"
               "                    loopback only; page login demo / demo)\n"
               "  --config FILE     keyrelay.json (see relay/keyrelay.example.json); may be combined with\n"
               "                    --sandbox (then the sandbox provides Keap and Jira)\n"
               "  --port N          port to listen on (default 8080; 0 lets the system choose)\n"
               "  --bind ADDR       address to listen on (default 127.0.0.1; forced to 127.0.0.1 with --sandbox)\n"
               "  --data-dir DIR    token store directory (default: a new temporary one with --sandbox)\n"
               "  --web-dir DIR     the page's files (default: /usr/share/keyrelay/web for an installed\n"
               "                    /usr/bin/keyrelay, else web/ of the source tree)\n"
               "  --wasm-dir DIR    the page's Wasm module (keyrelay.mjs, keyrelay.wasm), served under /wasm/\n"
               "                    unless the web dir has its own wasm/ (default: build/wasm of the source tree)\n"
               "  --tls-cert FILE   serve HTTPS with this certificate (PEM) ...\n"
               "  --tls-key FILE    ... and this key; cookies then get Secure and the __Host- prefix\n"
               "  --ca-file FILE    extra CA to trust for upstream TLS (besides the system CAs)\n"
               "  --log-level L     debug, info (default), warn, error\n"
               "\n"
               "Secrets come only from the environment (or files named NAME_FILE): KEAP_CLIENT_ID,\n"
               "KEAP_CLIENT_SECRET, KEAP_API_KEY, JIRA_CLIENT_ID, JIRA_CLIENT_SECRET, JIRA_API_TOKEN + JIRA_EMAIL +\n"
               "JIRA_SITE, JIRA_PAT + JIRA_SITE, KEYRELAY_STORE_KEY, KEYRELAY_API_KEY, KEYRELAY_REDIS_URL (several\n"
               "relays sharing one Redis; they all need the same KEYRELAY_STORE_KEY).\n"
               "The first stdout line is `listening on http://127.0.0.1:<port>`; logs are JSON lines on stderr.\n";
    }
    if (command == "doctor") {
        return "Usage: keyrelay doctor (--config FILE | --sandbox URL) [--offline]\n"
               "\n"
               "Checks a configuration and says in plain words what is wrong and how to fix it: missing secrets,\n"
               "redirect URIs (HTTPS, the exact one to register), TLS files, the store key, and with\n"
               "KEYRELAY_REDIS_URL the shared Redis: reachable and AUTH accepted, its version, persistence (AOF or\n"
               "RDB) and a maxmemory-policy that cannot evict connections. Then it sends a harmless invalid code to\n"
               "each provider's token endpoint to learn whether the client credentials are accepted (skipped with\n"
               "--offline). Exit status 0 when everything is fine, 1 otherwise.\n"
               "\n"
               "  --config FILE, --sandbox URL, --port N, --data-dir DIR, --tls-cert FILE, --tls-key FILE,\n"
               "  --ca-file FILE: as for `keyrelay serve`.\n";
    }
    if (command == "hash-password") {
        return "Usage: keyrelay hash-password [--iterations N]\n"
               "\n"
               "Reads a password (prompted without echo on a terminal, else the first line of stdin) and prints\n"
               "its PBKDF2-SHA256 hash for the config's users: [{\"username\": ..., \"password_hash\": ...}].\n"
               "\n"
               "  --iterations N: PBKDF2 iterations (default 600000, OWASP's figure for PBKDF2-SHA256; at least\n"
               "                  100000). Hashes keep their own count, so older hashes still verify.\n";
    }
    if (command == "rotate-key") {
        return "Usage: keyrelay rotate-key --data-dir DIR\n"
               "\n"
               "Re-encrypts every stored connection with a new store key. Set KEYRELAY_STORE_KEY to the NEW key\n"
               "(openssl rand -hex 32) and KEYRELAY_STORE_KEY_PREVIOUS to the old one (or leave it unset when the\n"
               "old key is the generated DIR/store.key). Stop the relay first, or keep both variables set for it.\n";
    }
    if (command == "migrate-store") {
        return "Usage: keyrelay migrate-store (--from-data-dir DIR | --to-data-dir DIR) [--config FILE]\n"
               "\n"
               "Copies the stored connections between a file store (DIR/tokens.json) and the Redis that several\n"
               "relays share: --from-data-dir DIR copies DIR's into Redis, --to-data-dir DIR copies Redis's into\n"
               "DIR. Redis is KEYRELAY_REDIS_URL (or redis_url in the --config file); every record is opened with\n"
               "KEYRELAY_STORE_KEY (or KEYRELAY_STORE_KEY_PREVIOUS, or DIR/store.key for a relay that generated its\n"
               "key) before anything is written, so a wrong key changes nothing. Connections the destination\n"
               "already holds are not copied again, and a newer one there is kept: running it twice is harmless.\n"
               "Prints the providers it copied, never a token. Page sessions are not copied.\n"
               "\n"
               "  --from-data-dir DIR  a relay's data directory -> Redis\n"
               "  --to-data-dir DIR    Redis -> a data directory (created if missing)\n"
               "  --config FILE        keyrelay.json, for redis_url and the redis_* timeouts\n";
    }
    return "Usage: keyrelay <command> [options]\n"
           "\n"
           "Commands:\n"
           "  serve          run the relay (keyrelay serve --sandbox URL, or --config keyrelay.json)\n"
           "  doctor         check a configuration and the providers' credentials\n"
           "  hash-password  make a password hash for the config's page users\n"
           "  rotate-key     re-encrypt the token store with a new key\n"
           "  migrate-store  copy connections between a data dir and the Redis that relays share\n"
           "\n"
           "`keyrelay <command> --help` shows a command's options. `keyrelay --version` prints the version.\n";
}

// GET <sandbox>/sandbox/config, retrying for up to `wait_ms` while the sandbox is still starting.
static Result<json> fetch_sandbox_config(const std::string& sandbox_url, int wait_ms = 5000) {
    std::string base = trim_slash(sandbox_url);
    auto u = parse_url(base);
    if (!u || (u->scheme != "http" && u->scheme != "https")) {
        return make_error("sandbox.bad_url", "--sandbox " + sandbox_url + " is not an http(s) URL.",
                          "Pass the URL keyrelay-sandbox printed, e.g. --sandbox http://127.0.0.1:9000.");
    }
    UpstreamOptions options;
    options.connect_timeout_ms = 2000;
    options.read_timeout_ms = 5000;
    Upstream client(options);
    HttpRequest request{"GET", base + "/sandbox/config", {{"Accept", "application/json"}}, ""};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (true) {
        auto answer = client.send(request);
        if (answer) {
            if (answer->status != 200) {
                return make_error("sandbox.bad_config",
                                  "GET " + base + "/sandbox/config answered HTTP " + std::to_string(answer->status) +
                                      ".",
                                  "Is " + base + " a keyrelay-sandbox? Start build/native/bin/keyrelay-sandbox and "
                                  "pass the URL it prints.");
            }
            json doc = json::parse(answer->body, nullptr, false);
            if (doc.is_discarded()) {
                return make_error("sandbox.bad_config", "The sandbox's /sandbox/config is not JSON.",
                                  "Use a keyrelay-sandbox built from this tree.");
            }
            return doc;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            Error e = answer.error();
            e.message = "Cannot reach the sandbox at " + base + ": " + e.message;
            e.hint = "Start it first (build/native/bin/keyrelay-sandbox --port 0) and pass the URL it prints.";
            return e;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

Result<Config> read_config_file(const std::string& path, const EnvLookup& env) {
    std::string text;
    if (files::read_file(path, text) != 0) {
        return make_error("config.unreadable", "Cannot read the config file " + path + ".",
                          "Check the path; relay/keyrelay.example.json is a starting point.");
    }
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
        return make_error("config.not_json", "The config file " + path + " is not valid JSON.",
                          "Check for a trailing comma or a missing quote (JSON has no comments; use \"_comment\" "
                          "keys).");
    }
    std::string dir = path.find('/') == std::string::npos ? std::string(".") : path.substr(0, path.rfind('/'));
    auto c = config_from_json(doc, env, dir);
    if (c) c->config_path = path;
    return c;
}

Result<Config> build_config(const CliArgs& args, const EnvLookup& env) {
    std::optional<Config> from_file;
    if (auto path = args.flag("--config")) {
        auto c = read_config_file(*path, env);
        if (!c) return c.error();
        from_file = std::move(*c);
    }
    Config config;
    if (auto sandbox = args.flag("--sandbox")) {
        auto doc = fetch_sandbox_config(*sandbox);
        if (!doc) return doc.error();
        auto c = config_from_sandbox(trim_slash(*sandbox), *doc, env);
        if (!c) return c.error();
        config = std::move(*c);
        if (from_file) {
            // The sandbox provides Keap and Jira; the config file everything else.
            Config& f = *from_file;
            for (auto& p : f.providers) {
                if (!config.provider(p.name)) config.providers.push_back(p);
            }
            for (const auto& u : f.users) {
                if (u.username != "demo") config.users.push_back(u);
            }
            f.sandbox = true;
            f.sandbox_url = config.sandbox_url;
            f.providers = std::move(config.providers);
            f.users = std::move(config.users);
            if (!args.flags.count("--data-dir")) f.data_dir.clear();   // a fresh temp dir, as without a config
            config = std::move(f);
        }
    } else if (from_file) {
        config = std::move(*from_file);
    } else {
        return make_error("cli.missing_config", "Neither --sandbox nor --config was given.",
                          "Run `keyrelay serve --sandbox http://127.0.0.1:<sandbox port>` for the demo, or "
                          "`keyrelay serve --config keyrelay.json` (see relay/keyrelay.example.json).");
    }
    if (auto v = args.flag("--port")) {
        char* end = nullptr;
        long port = std::strtol(v->c_str(), &end, 10);
        if (v->empty() || *end != '\0' || port < 0 || port > 65535) {
            return make_error("cli.bad_value", "--port " + *v + " is not a port number.", "Use 0..65535 (0 = any).");
        }
        config.port = static_cast<int>(port);
    }
    if (auto v = args.flag("--data-dir")) config.data_dir = *v;
    if (auto v = args.flag("--web-dir")) config.web_dir = *v;
    if (auto v = args.flag("--wasm-dir")) config.wasm_dir = *v;
    if (auto v = args.flag("--tls-cert")) config.tls_cert = *v;
    if (auto v = args.flag("--tls-key")) config.tls_key = *v;
    if (auto v = args.flag("--ca-file")) config.ca_file = *v;
    if (auto v = args.flag("--bind")) {
        if (config.sandbox && *v != "127.0.0.1") {
            return make_error("cli.bad_value", "--sandbox binds 127.0.0.1 only.",
                              "The sandbox's demo login (demo / demo) must never be reachable from other machines.");
        }
        config.bind = *v;
    }
    if (config.sandbox) config.bind = "127.0.0.1";
    return config;
}

PageDirs default_page_dirs(const std::string& exe_path) {
    namespace fs = std::filesystem;
    fs::path bin = fs::path(exe_path).parent_path();
    if (bin.filename() == "bin") {
        fs::path installed = bin.parent_path() / "share" / "keyrelay" / "web";
        std::error_code ec;
        if (fs::is_directory(installed, ec)) return {installed.string(), ""};
    }
    return {std::string(KEYRELAY_SOURCE_DIR) + "/web", std::string(KEYRELAY_SOURCE_DIR) + "/build/wasm"};
}

Result<Unit> register_sandbox_redirects(const Config& config, int port) {
    Upstream client(UpstreamOptions{});
    for (const char* provider : {"keap", "jira"}) {
        json body = {{"provider", provider}, {"redirect_uri", config.redirect_uri(provider, port)}};
        HttpRequest request{"POST", config.sandbox_url + "/sandbox/redirect-uris",
                            {{"Content-Type", "application/json"}}, body.dump()};
        auto answer = client.send(request);
        if (!answer) return answer.error();
        if (answer->status < 200 || answer->status >= 300) {
            return make_error("sandbox.redirect_uri_refused",
                              "The sandbox refused to register " + config.redirect_uri(provider, port) + " (HTTP " +
                                  std::to_string(answer->status) + ").",
                              "Use a keyrelay-sandbox built from this tree (relay/sandbox/INTERFACE.md).");
        }
    }
    return Unit{};
}

}  // namespace keyrelay::relay
