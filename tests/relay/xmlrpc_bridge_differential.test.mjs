// The XML-RPC bridge against the sandbox's own XML-RPC endpoint: 200 generated call sequences, field by field
// (tests/relay/xmlrpc_bridge_differential.py says what may differ). Five batches of 40 sequences, each on a fresh
// pair of sandboxes and a fresh relay: on main's epoll front end the relay stops answering after about 278 requests
// on new connections, so no batch sends more than about 200.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, connectedSetup, startSandbox } from '../lib/harness.mjs';

const FAST = { keap_key_per_second: 100000, keap_key_per_day: 10000000, keap_oauth_per_minute: 1000000, keap_oauth_per_day: 10000000 };
const BATCHES = 5;
const PER_BATCH = 40;
const SEED = Number(process.env.SEED ?? 20261202);

async function setLimits(sandbox) {
  const res = await fetch(`${sandbox.url}/sandbox/limits`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Connection: 'close' }, body: JSON.stringify(FAST),
  });
  assert.equal(res.status, 200, await res.text());
}

for (let batch = 0; batch < BATCHES; batch++) {
  test(`differential batch ${batch + 1}/${BATCHES}: ${PER_BATCH} generated call sequences answer the same directly and through the bridge`,
    { timeout: 120_000 }, async (t) => {
      const direct = await startSandbox({ t });
      const { sandbox, relay } = await connectedSetup({ t, relayOptions: { apiKey: true } });
      await setLimits(direct);
      await setLimits(sandbox);
      const run = spawnSync('python3', [path.join(ROOT, 'tests', 'relay', 'xmlrpc_bridge_differential.py')], {
        env: {
          ...process.env,
          DIRECT_URL: `${direct.url}/keap/crm/xmlrpc/v1`,
          DIRECT_KEY: direct.config.keap.pat,
          BRIDGE_URL: `${relay.url}/bridge/keap/xmlrpc`,
          BRIDGE_KEY: relay.apiKey,
          SEED: String(SEED + batch),
          SEQUENCES: String(PER_BATCH),
        },
        encoding: 'utf8',
        timeout: 110_000,
      });
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`${PER_BATCH} sequences, \\d+ calls`));
      t.diagnostic(run.stdout.trim());
    });
}
