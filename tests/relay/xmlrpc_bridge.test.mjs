// The relay's XML-RPC bridge (POST /bridge/keap/xmlrpc) driven by Python's xmlrpc.client over real HTTP, against a
// relay connected to the sandbox's Keap with OAuth.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { ROOT, checkLeaksAfterAll, connectedSetup } from '../lib/harness.mjs';
import { runPython } from '../lib/python.mjs';
checkLeaksAfterAll();

test('python xmlrpc.client: every translated method and Keap-shaped faults through the bridge', async (t) => {
  const { sandbox, relay } = await connectedSetup({ t, relayOptions: { apiKey: true } });
  const run = await runPython(path.join(ROOT, 'tests', 'relay', 'xmlrpc_bridge_client.py'),
    { BRIDGE_URL: `${relay.url}/bridge/keap/xmlrpc`, BRIDGE_KEY: relay.apiKey, SANDBOX_URL: sandbox.url }, 120_000);
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}\n${relay.logs().slice(-15).map((l) => l.line).join('\n')}`);
  assert.match(run.stderr, /Ran \d+ tests/);
});
