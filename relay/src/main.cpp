// keyrelay: the relay's command line (serve, doctor, hash-password, rotate-key, migrate-store).
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "migrate_store.h"
#include "state/crypto.h"
#include "obs/log.h"
#include "app.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/store.h"

using namespace keyrelay;
using namespace keyrelay::relay;

namespace {

// Blocks the stop signals in every thread; one thread waits for them with sigwait (async-signal-safe by design).
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);   // internal: wakes the waiter when the server stops by itself
    return set;
}

int serve(const CliArgs& args) {
    if (auto level = args.flag("--log-level")) {
        static const std::map<std::string, LogLevel> kLevels{
            {"debug", LogLevel::debug}, {"info", LogLevel::info}, {"warn", LogLevel::warn}, {"error", LogLevel::error}};
        auto it = kLevels.find(*level);
        if (it == kLevels.end()) {
            return print_error(make_error("cli.bad_value", "--log-level " + *level + " is not a level.",
                                          "Use debug, info, warn or error."),
                               2);
        }
        set_log_level(it->second);
    }
    auto config = build_config(args, process_env());
    if (!config) return print_error(config.error(), 1);
    if (config->web_dir.empty()) {
        std::error_code ec;
        PageDirs page = default_page_dirs(std::filesystem::read_symlink("/proc/self/exe", ec).string());
        config->web_dir = page.web_dir;
        if (config->wasm_dir.empty()) config->wasm_dir = page.wasm_dir;
    }
    bool made_temp_dir = false;
    if (config->sandbox && config->data_dir.empty()) {
        char tmpl[] = "/tmp/keyrelay-sandbox-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return print_error(make_error("store.write_failed", "Cannot create a temporary data directory.",
                                          "Pass --data-dir."),
                               1);
        }
        config->data_dir = tmpl;
        made_temp_dir = true;
    }

    // Before any thread exists: the stop signals are delivered only to the waiter below.
    sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    Relay relay(*config);
    if (auto ok = relay.init(); !ok) {
        log_line(LogLevel::error, "cannot start", {{"error", ok.error().code}, {"detail", ok.error().message}});
        return print_error(ok.error(), 1);
    }
    auto port = relay.bind();
    if (!port) return print_error(port.error(), 1);
    if (config->sandbox) {
        if (auto ok = register_sandbox_redirects(*config, *port); !ok) {
            log_line(LogLevel::warn, "could not register the redirect URIs at the sandbox",
                     {{"error", ok.error().code}, {"detail", ok.error().message}});
        }
    }

    std::thread waiter([&relay, signals] {
        int sig = 0;
        sigwait(&signals, &sig);
        if (sig != SIGUSR1) log_line(LogLevel::info, "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
        relay.stop();
    });

    std::string host = config->bind == "0.0.0.0" || config->bind == "::" ? "127.0.0.1" : config->bind;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    std::printf("listening on %s://%s:%d\n", config->tls() ? "https" : "http", host.c_str(), *port);
    std::fflush(stdout);
    nlohmann::json providers = nlohmann::json::array();
    for (const auto& p : config->providers) {
        bool configured = p.mode != Mode::oauth || p.oauth_configured();
        providers.push_back({{"name", p.name}, {"mode", mode_name(p.mode)}, {"configured", configured}});
    }
    log_line(LogLevel::info, "listening",
             {{"url", relay.url()}, {"data_dir", config->data_dir}, {"sandbox", config->sandbox},
              {"providers", providers}, {"cors_origins", config->cors_origins}, {"api_key", !config->api_key.empty()}});

    bool ok = relay.run();
    pthread_kill(waiter.native_handle(), SIGUSR1);   // no-op when the waiter already returned
    waiter.join();
    log_line(LogLevel::info, "stopped", {});
    if (made_temp_dir) {
        // Sandbox mode without --data-dir: the throwaway store (sandbox tokens, a generated key) goes with it.
        std::error_code ec;
        std::filesystem::remove_all(config->data_dir, ec);
    }
    return ok ? 0 : 1;
}

std::string read_password() {
    std::string pw;
    if (::isatty(STDIN_FILENO)) {
        termios old{};
        tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        auto ask = [&](const char* prompt) {
            std::string line;
            std::cerr << prompt << std::flush;
            tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
            std::getline(std::cin, line);
            tcsetattr(STDIN_FILENO, TCSANOW, &old);
            std::cerr << "\n";
            return line;
        };
        pw = ask("Password: ");
        if (ask("Again: ") != pw) {
            std::cerr << "keyrelay: the two passwords differ.\n";
            return {};
        }
    } else {
        std::getline(std::cin, pw);
        if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    }
    return pw;
}

int hash_password_cmd(const CliArgs& args) {
    int iterations = kPasswordHashIterations;
    if (auto v = args.flag("--iterations")) {
        char* end = nullptr;
        long n = std::strtol(v->c_str(), &end, 10);
        if (v->empty() || *end != '\0' || n < 100000 || n > 100000000) {
            return print_error(make_error("cli.bad_value", "--iterations " + *v + " is out of range.",
                                          "Use at least 100000 (OWASP recommends 600000 for PBKDF2-SHA256)."),
                               2);
        }
        iterations = static_cast<int>(n);
    }
    std::string pw = read_password();
    if (pw.empty()) {
        return print_error(make_error("cli.empty_password", "No password was given.",
                                      "Type it at the prompt, or pipe it: printf '%s\\n' \"$PW\" | keyrelay "
                                      "hash-password"),
                           1);
    }
    std::cout << hash_password(pw, iterations) << "\n";
    return 0;
}

int rotate_key_cmd(const CliArgs& args) {
    const EnvLookup env = process_env();
    std::string data_dir = args.flag("--data-dir").value_or("");
    std::string redis_url = env("KEYRELAY_REDIS_URL").value_or("");
    if (auto path = args.flag("--config")) {
        auto c = read_config_file(*path, env);
        if (!c) return print_error(c.error(), 1);
        if (data_dir.empty()) data_dir = c->data_dir;
        redis_url = c->redis_url;   // the environment already won inside config_from_json
    }
    if (data_dir.empty()) {
        return print_error(make_error("cli.missing_value", "rotate-key needs --data-dir.",
                                      "Pass the relay's data directory: keyrelay rotate-key --data-dir DIR."),
                           2);
    }
    auto fresh = env("KEYRELAY_STORE_KEY");
    if (!fresh || fresh->empty()) {
        return print_error(make_error("store.no_new_key", "KEYRELAY_STORE_KEY (the NEW key) is not set.",
                                      "Make a key with `openssl rand -hex 32`, set KEYRELAY_STORE_KEY to it and "
                                      "KEYRELAY_STORE_KEY_PREVIOUS to the old key, then run rotate-key again."),
                           1);
    }
    auto previous = env("KEYRELAY_STORE_KEY_PREVIOUS");
    bool from_file = false;
    if (!previous || previous->empty()) {
        previous = generated_key_text(data_dir);
        from_file = previous.has_value();
    }
    auto keys = load_store_keys(data_dir, fresh, previous);
    if (!keys) return print_error(keys.error(), 1);
    // With KEYRELAY_REDIS_URL the connections are in Redis (several relays); otherwise in <data_dir>/tokens.json.
    std::unique_ptr<Redis> redis;
    std::unique_ptr<ConnectionStore> store;
    std::string where = data_dir + "/tokens.json";
    if (!redis_url.empty()) {
        auto url = RedisUrl::parse(redis_url);
        if (!url) return print_error(url.error(), 1);
        where = "Redis at " + url->where();
        redis = std::make_unique<Redis>(*url, RedisOptions{});
        store = std::make_unique<RedisConnectionStore>(*redis, keys->keys, keys->current_key_id, LeaseOptions{});
    } else {
        store = std::make_unique<FileConnectionStore>(data_dir, keys->keys, keys->current_key_id);
    }
    auto n = store->rotate();
    if (!n) return print_error(n.error(), 1);
    std::cout << "re-encrypted " << *n << " connection(s) in " << where << " with key " << keys->current_key_id
              << "\n";
    if (from_file) {
        std::cout << "the old key came from " << data_dir << "/store.key; remove that file once the relay runs "
                  << "with the new KEYRELAY_STORE_KEY\n";
    } else {
        std::cout << "keep KEYRELAY_STORE_KEY_PREVIOUS set until every relay sharing this store runs with the new "
                  << "key, then remove it\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto parsed = parse_cli(args);
    if (!parsed) return print_error(parsed.error(), 2);
    const CliArgs& a = *parsed;
    if (a.command == "help" || a.help) {
        std::cout << usage(a.command);   // usage("help") is the overview
        return 0;
    }
    if (a.command == "version") {
        std::cout << "keyrelay " << KEYRELAY_VERSION << "\n";
        return 0;
    }
    if (a.command == "serve") return serve(a);
    if (a.command == "hash-password") return hash_password_cmd(a);
    if (a.command == "rotate-key") return rotate_key_cmd(a);
    if (a.command == "migrate-store") return run_migrate_store(a, process_env(), std::cout, std::cerr);
    if (a.command == "doctor") {
        auto config = build_config(a, process_env());
        if (!config) return print_error(config.error(), 1);
        config->offline_checks = a.flags.count("--offline") > 0;
        return run_doctor(*config, config->port);
    }
    std::cout << usage("");
    return 2;
}
