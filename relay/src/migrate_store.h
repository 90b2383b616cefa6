// `keyrelay migrate-store`: copies connections between the file store of a data dir and the shared Redis
// (docs/deploy.md, "Moving a relay's connections into Redis, and back").
#pragma once

#include <ostream>

#include "cli.h"

namespace keyrelay::relay {

// The command: --from-data-dir DIR (file store -> Redis) or --to-data-dir DIR (Redis -> file store), the Redis URL
// from KEYRELAY_REDIS_URL or --config's redis_url, the keys from KEYRELAY_STORE_KEY (+ _PREVIOUS). Prints what it
// copied (providers, versions, counts: never a secret) to `out`, errors to `err`. Returns the exit status.
int run_migrate_store(const CliArgs& args, const EnvLookup& env, std::ostream& out, std::ostream& err);

}  // namespace keyrelay::relay
