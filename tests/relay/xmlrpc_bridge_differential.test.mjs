// The XML-RPC bridge against the sandbox's own XML-RPC endpoint: 200 generated call sequences, field by field
// (tests/relay/xmlrpc_bridge_differential.py says what may differ).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, connectedSetup, startSandbox } from '../lib/harness.mjs';
import { runPython } from '../lib/python.mjs';

const FAST = { keap_key_per_second: 100000, keap_key_per_day: 10000000, keap_oauth_per_minute: 1000000, keap_oauth_per_day: 10000000 };
const SEQUENCES = 200;

async function setLimits(sandbox) {
  const res = await fetch(`${sandbox.url}/sandbox/limits`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Connection: 'close' }, body: JSON.stringify(FAST),
  });
  assert.equal(res.status, 200, await res.text());
}

test(`${SEQUENCES} generated call sequences answer the same directly and through the bridge`, { timeout: 300_000 }, async (t) => {
  // Two sandboxes from the same built-in data: one answers XML-RPC itself, the other is the relay's Keap.
  const direct = await startSandbox({ t });
  const { sandbox, relay } = await connectedSetup({ t, relayOptions: { apiKey: true } });
  await setLimits(direct);
  await setLimits(sandbox);
  const run = await runPython(path.join(ROOT, 'tests', 'relay', 'xmlrpc_bridge_differential.py'), {
    DIRECT_URL: `${direct.url}/keap/crm/xmlrpc/v1`,
    DIRECT_KEY: direct.config.keap.pat,
    BRIDGE_URL: `${relay.url}/bridge/keap/xmlrpc`,
    BRIDGE_KEY: relay.apiKey,
    SEQUENCES: String(SEQUENCES),
  }, 280_000);
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, new RegExp(`${SEQUENCES} sequences, \\d+ calls`));
  t.diagnostic(run.stdout.trim());
});
