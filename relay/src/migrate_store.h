// `keyrelay migrate-store`: copies connections between the file store of a data dir and the shared Redis
// (docs/deploy.md, "Moving a relay's connections into Redis, and back").
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cli.h"
#include "config.h"
#include "keyrelay/result.h"
#include "state/connection_store.h"

namespace keyrelay::relay {

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

// Copies every connection of `from` into `to`, each with its version. Reads and opens every record of both stores
// before it writes anything, so a store that does not open with the configured keys changes nothing. Idempotent:
// what the destination already holds is not written again. A destination record with the same or a newer version
// than the source's is kept (the relays on it may have refreshed since: their token is the live one).
// Errors: the stores' ("store.wrong_key", "store.unknown_key_id", "store.corrupt", "store.unavailable", ...).
Result<std::vector<MigratedConnection>> migrate_connections(const ConnectionStore& from, ConnectionStore& to);

// The command: --from-data-dir DIR (file store -> Redis) or --to-data-dir DIR (Redis -> file store), the Redis URL
// from KEYRELAY_REDIS_URL or --config's redis_url, the keys from KEYRELAY_STORE_KEY (+ _PREVIOUS). Prints what it
// copied (providers, versions, counts: never a secret) to `out`, errors to `err`. Returns the exit status.
int run_migrate_store(const CliArgs& args, const EnvLookup& env, std::ostream& out, std::ostream& err);

}  // namespace keyrelay::relay
