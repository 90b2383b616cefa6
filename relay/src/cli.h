// The keyrelay command line: serve, doctor, hash-password, rotate-key, migrate-store. Parsing and config assembly
// live here (in the library) so they can be tested; main.cpp only dispatches.
#pragma once

#include <map>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include "config.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

struct CliArgs {
    std::string command;   // "serve", "doctor", "hash-password", "rotate-key", "migrate-store", "help", "version"
    std::map<std::string, std::string> flags;  // "--port" -> "0"; boolean flags -> ""
    bool help = false;

    std::optional<std::string> flag(const std::string& name) const {
        auto it = flags.find(name);
        return it == flags.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
};

// Prints "keyrelay: <message>", the hint and the code to `err`, as every command reports an error; returns `status`.
int print_error(const Error& e, int status = 1, std::ostream& err = std::cerr);

// Parses argv after the program name. Errors: "cli.unknown_command", "cli.unknown_flag", "cli.missing_value"
// (the caller prints them and exits 2).
Result<CliArgs> parse_cli(const std::vector<std::string>& args);

// Usage text of a command ("" = the overview).
std::string usage(const std::string& command);

// Reads and checks a keyrelay.json (config_from_json, paths relative to its directory). Errors: "config.*".
Result<Config> read_config_file(const std::string& path, const EnvLookup& env);

// Assembles the serve/doctor configuration from --config and/or --sandbox plus the overriding flags.
// With both, the sandbox provides Keap and Jira and the config everything else (cors_origins, users, ...).
Result<Config> build_config(const CliArgs& args, const EnvLookup& env);

// Where `serve` finds the page when neither --web-dir nor web_dir says: an installed relay (<prefix>/bin/keyrelay,
// e.g. /usr/bin) uses <prefix>/share/keyrelay/web, which holds the Wasm module in its wasm/; a relay run from a
// checkout uses the checkout's web/ and build/wasm/. `exe_path` is the running program's path (/proc/self/exe).
struct PageDirs {
    std::string web_dir;
    std::string wasm_dir;   // empty when web_dir has its own wasm/
};
PageDirs default_page_dirs(const std::string& exe_path);

// Registers this relay's callback URLs at the sandbox (POST /sandbox/redirect-uris), as a developer does in the
// provider's portal.
Result<Unit> register_sandbox_redirects(const Config& config, int port);

// `keyrelay doctor`: checks the configuration and the providers' token endpoints, prints a report to stdout.
// Returns the exit code: 0 when everything is fine, 1 otherwise.
int run_doctor(const Config& config, int port);

}  // namespace keyrelay::relay
