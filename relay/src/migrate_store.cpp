#include "migrate_store.h"

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <vector>

#include "state/file_store.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/store_keys.h"

namespace keyrelay::relay {
namespace {

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A store that does not open: say which one, and that the key is what to check.
Error unopened(const std::string& which, Error e) {
    if (e.code == "store.wrong_key" || e.code == "store.unknown_key_id") {
        e.message = which + " does not open with KEYRELAY_STORE_KEY (nothing was copied): " + e.message;
    } else {
        e.message = "Cannot read " + which + " (nothing was copied): " + e.message;
    }
    return e;
}

struct MigratedConnection {
    enum class Outcome {
        copied,    // the destination had none, or an older version
        already,   // the destination holds the same record
        kept,      // the destination holds a different record with the same or a newer version: left alone
    };
    std::string provider;
    Outcome outcome = Outcome::copied;
    uint64_t version = 0;       // the source's
    uint64_t kept_version = 0;  // the destination's, when kept
};

// Copies every connection of `source` (read from its store) into `to` (which holds `destination`), each with its
// version. Both stores were read and opened before, so a store that does not open with the configured keys changes
// nothing. Idempotent: what the destination already holds is not written again. A destination record with the same
// or a newer version than the source's is kept (the relays on it may have refreshed since: their token is the live
// one).
Result<std::vector<MigratedConnection>> migrate_connections(const std::vector<Connection>& source,
                                                            const std::vector<Connection>& destination,
                                                            ConnectionStore& to) {
    std::map<std::string, const Connection*> there;
    for (const Connection& c : destination) there.emplace(c.provider, &c);
    std::vector<MigratedConnection> out;
    for (const Connection& c : source) {
        MigratedConnection m{c.provider, MigratedConnection::Outcome::copied, c.version, 0};
        auto it = there.find(c.provider);
        if (it != there.end() && to_json(*it->second) == to_json(c)) {
            m.outcome = MigratedConnection::Outcome::already;
        } else if (it != there.end() && it->second->version >= c.version) {
            m.outcome = MigratedConnection::Outcome::kept;
            m.kept_version = it->second->version;
        }
        out.push_back(m);
    }
    // Everything was compared: now write.
    for (size_t i = 0; i < source.size(); ++i) {
        if (out[i].outcome != MigratedConnection::Outcome::copied) continue;
        if (auto ok = to.put(source[i]); !ok) return ok.error();
    }
    return out;
}

}  // namespace

int run_migrate_store(const CliArgs& args, const EnvLookup& env, std::ostream& out, std::ostream& err) {
    const std::string from_dir = args.flag("--from-data-dir").value_or("");
    const std::string to_dir = args.flag("--to-data-dir").value_or("");
    if (from_dir.empty() == to_dir.empty()) {
        return print_error(make_error("cli.missing_value", "migrate-store needs exactly one of --from-data-dir and "
                                                           "--to-data-dir.",
                                      "--from-data-dir DIR copies DIR's connections into Redis; --to-data-dir DIR "
                                      "copies Redis's into DIR. Run `keyrelay migrate-store --help` for the usage."),
                      2, err);
    }
    const std::string dir = from_dir.empty() ? to_dir : from_dir;

    // The Redis URL and the keys: from --config (the environment still wins), else the environment alone.
    auto path = args.flag("--config");
    auto config = path ? read_config_file(*path, env) : config_from_json(nlohmann::json::object(), env, ".");
    if (!config) return print_error(config.error(), 1, err);
    if (config->redis_url.empty()) {
        return print_error(make_error("config.missing_redis_url",
                                      "No Redis to migrate to or from: KEYRELAY_REDIS_URL is not set.",
                                      "Set KEYRELAY_REDIS_URL=redis://:PASSWORD@host:port/db (or redis_url in the "
                                      "--config file), as for the relays that share that Redis."), 1, err);
    }
    if (!config->store_key) {
        return print_error(make_error("config.store_key_required",
                                      "KEYRELAY_STORE_KEY is not set: the connections in Redis are sealed with the "
                                      "key that every relay sharing it has.",
                                      "Set KEYRELAY_STORE_KEY to that key (`openssl rand -hex 32` makes a new one for "
                                      "a first migration). A file store that used a generated DIR/store.key opens "
                                      "with that file's key in KEYRELAY_STORE_KEY_PREVIOUS."), 1, err);
    }
    if (!from_dir.empty() && !is_dir(from_dir)) {
        return print_error(make_error("migrate.no_data_dir", "--from-data-dir " + from_dir + " is not a directory.",
                                      "Pass the data directory of the relay whose connections to copy (the package's "
                                      "is /var/lib/keyrelay)."), 1, err);
    }
    // A single relay without KEYRELAY_STORE_KEY sealed its records with the key it generated into DIR/store.key:
    // open them with it, as rotate-key does, and seal them in Redis with KEYRELAY_STORE_KEY.
    std::optional<std::string> previous = config->store_key_previous;
    if (!previous && !from_dir.empty()) previous = generated_key_text(from_dir);
    auto keys = load_store_keys(dir, config->store_key, previous);
    if (!keys) return print_error(keys.error(), 1, err);

    auto url = RedisUrl::parse(config->redis_url);
    if (!url) return print_error(url.error(), 1, err);
    RedisOptions options;
    options.connect_timeout_ms = config->redis_connect_timeout_ms;
    options.command_timeout_ms = config->redis_command_timeout_ms;
    Redis redis(*url, options);
    LeaseOptions lease;
    lease.lease_ms = config->refresh_lease_ms;
    RedisConnectionStore redis_store(redis, keys->keys, keys->current_key_id, lease);
    const std::string file_name = "the file store in " + dir;
    const std::string redis_name = "Redis at " + url->where();
    const bool into_redis = !from_dir.empty();
    // Open the source before anything is made or written (the file store creates a missing --to-data-dir), then
    // the destination: a wrong key is reported against the store it does not open.
    if (!into_redis) {
        if (auto ok = redis_store.load_all(); !ok) return print_error(unopened(redis_name, ok.error()), 1, err);
    }
    FileConnectionStore file_store(dir, keys->keys, keys->current_key_id);
    const ConnectionStore& from = into_redis ? static_cast<const ConnectionStore&>(file_store) : redis_store;
    ConnectionStore& to = into_redis ? static_cast<ConnectionStore&>(redis_store) : file_store;
    const std::string from_name = into_redis ? file_name : redis_name;
    const std::string to_name = into_redis ? redis_name : file_name;
    auto source = from.load_all();
    if (!source) return print_error(unopened(from_name, source.error()), 1, err);
    auto destination = to.load_all();
    if (!destination) return print_error(unopened(to_name, destination.error()), 1, err);

    auto moved = migrate_connections(*source, *destination, to);
    if (!moved) return print_error(moved.error(), 1, err);
    out << "migrate-store: " << from_name << " -> " << to_name << "\n";
    size_t copied = 0;
    const std::string there = into_redis ? "Redis" : dir;
    for (const MigratedConnection& m : *moved) {
        const std::string v = "version " + std::to_string(m.version);
        out << "  " << m.provider << ": ";
        if (m.outcome == MigratedConnection::Outcome::copied) {
            ++copied;
            out << "copied (" << v << ")\n";
        } else if (m.outcome == MigratedConnection::Outcome::already) {
            out << "already in " << there << " (" << v << ")\n";
        } else {
            out << "kept the one in " << there << " (version " << m.kept_version << ", not older than " << v
                << " here): remove it there first to replace it\n";
        }
    }
    const size_t present = moved->size() - copied;   // already there, or kept
    if (moved->empty()) {
        out << "nothing to copy: " << from_name << " holds no connections.\n";
    } else if (copied == 0) {
        out << "nothing new to copy: " << present << " connection(s) already in " << there << ".\n";
    } else {
        out << "copied " << copied << " connection(s)";
        if (present > 0) out << "; " << present << " already in " << there;
        out << ".\n";
    }
    if (into_redis && copied > 0) {
        out << "Start the relays with KEYRELAY_REDIS_URL and this KEYRELAY_STORE_KEY. Page sessions are not copied: "
               "users log in once more.\n";
    }
    return 0;
}

}  // namespace keyrelay::relay
