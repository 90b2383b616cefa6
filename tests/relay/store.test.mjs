// Two relay processes sharing one --data-dir refresh a rotating token exactly once under
// concurrent load (file lock + re-read), and a restart keeps the connections (the encrypted store on disk).
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import {
  apiCall, checkLeaksAfterAll, client, connectedSetup, errorOf, fileStoreOnly, newApiKey, newStoreKey, sleep, startRelay,
  startSandbox, tempDir,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

const KEAP_LOOKUP = '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com';

test('two relays on one data dir, 25 concurrent calls each at expiry: exactly one refresh at the sandbox, all succeed', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true, accessTtl: 5 }); // slack for a loaded machine (see refresh.test.mjs)
  const dataDir = await tempDir(t);
  const storeKey = newStoreKey();
  const apiKey = newApiKey();
  const a = await startRelay({ sandbox, dataDir, storeKey, apiKey, t, name: 'relay-A' });
  const b = await startRelay({ sandbox, dataDir, storeKey, apiKey, t, name: 'relay-B' });
  const browser = client(a.url);
  assert.equal((await browser.login()).status, 200);
  const flow = await browser.connect('keap');
  assert.equal(flow.final.rawLocation, '/?connected=keap', flow.trace);

  // Sessions live in the data dir too (docs/api.md): A's page session works on B.
  const onB = await client(b.url).get('/api/session', { headers: { Cookie: `keyrelay_session=${browser.cookie('keyrelay_session').value}` } });
  assert.equal(onB.status, 200, `a session made on relay A is unknown to relay B: ${onB.body}`);
  // B was already running when A stored the connection: it must read it from the shared store.
  const seenByB = await apiCall(b.url, 'GET', KEAP_LOOKUP, { apiKey });
  assert.equal(seenByB.status, 200, `relay B does not see the connection made through relay A: ${seenByB.body}`);

  const conn = (await browser.connections()).keap;
  const wait = conn.expires_at * 1000 - Date.now() + 300;
  if (wait > 0) await sleep(wait);
  const before = await sandbox.tokenStats('keap');
  const calls = [];
  for (let i = 0; i < 25; i++) {
    for (const relay of [a, b]) calls.push(apiCall(relay.url, 'GET', KEAP_LOOKUP, { apiKey, timeout: 20_000 }));
  }
  const started = Date.now();
  const results = await Promise.all(calls);
  const took = Date.now() - started;
  const after = await sandbox.tokenStats('keap');
  t.diagnostic(`50 calls on two relays took ${took} ms; refreshes ${before.refreshes} → ${after.refreshes}`);
  const bad = results.filter((r) => r.status !== 200).map((r) => `${r.url.startsWith(a.url) ? 'A' : 'B'} ${r.status} ${r.body.slice(0, 200)}`);
  assert.deepEqual(bad, [], `${bad.length} of 50 calls failed`);
  assert.equal(after.refreshes - before.refreshes, 1,
    `refreshes went from ${before.refreshes} to ${after.refreshes} in a ${took} ms burst: the two processes did not share one refresh`);
  assert.equal(after.refresh_failures, 0, 'a refresh failed: one process used a refresh token the other had rotated');
  for (const relay of [a, b]) {
    const again = await apiCall(relay.url, 'GET', KEAP_LOOKUP, { apiKey });
    assert.equal(again.status, 200, again.body);
  }
});

test('a server-to-server call needs the right relay API key', async (t) => {
  const apiKey = newApiKey();
  const { relay } = await connectedSetup({ t, relayOptions: { apiKey } });
  assert.equal((await apiCall(relay.url, 'GET', KEAP_LOOKUP, { apiKey })).status, 200);
  for (const wrong of [`${apiKey}x`, 'nope', apiKey.slice(0, -1)]) {
    const res = await apiCall(relay.url, 'GET', KEAP_LOOKUP, { apiKey: wrong });
    assert.equal(res.status, 401, `a wrong API key got ${res.status}: ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.bad_api_key');
  }
  // A relay without KEYRELAY_API_KEY accepts no Bearer caller at all.
  const { relay: keyless } = await connectedSetup({ t });
  const none = await apiCall(keyless.url, 'GET', KEAP_LOOKUP, { apiKey });
  assert.equal(none.status, 401, `a relay without an API key accepted a Bearer caller: ${none.status} ${none.body}`);
  assert.equal(errorOf(none).code, 'auth.bad_api_key');
  const empty = await apiCall(relay.url, 'GET', KEAP_LOOKUP, { headers: { Authorization: 'Bearer ' } });
  assert.equal(empty.status, 401, `an empty Bearer: ${empty.body}`);
});

async function checkRestartKeeps(t, { storeKey, signal }) {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const relay = await startRelay({ sandbox, t, storeKey });
  let browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  for (const p of ['keap', 'jira']) assert.equal((await browser.connect(p)).final.rawLocation, `/?connected=${p}`);
  const before = await browser.connections();

  const exit = await relay.stop(signal);
  assert.equal(exit.code, 0, `${signal} should stop the relay cleanly (exit code 0), got ${JSON.stringify(exit)}`);
  // The store is encrypted at rest: neither the account nor any sandbox token prefix is readable on disk.
  const files = await readdir(relay.dataDir);
  for (const f of files) {
    const full = path.join(relay.dataDir, f);
    if (!(await stat(full)).isFile()) continue;
    const text = await readFile(full, 'latin1');
    assert.ok(!text.includes('ab123.infusionsoft.com'), `${f} holds the Keap account in clear`);
    if (/token|store/.test(f) && !f.endsWith('.lock')) {
      const mode = (await stat(full)).mode & 0o777;
      assert.equal(mode & 0o077, 0, `${f} is readable by others (mode ${mode.toString(8)})`);
    }
  }

  const sid = browser.cookie('keyrelay_session').value;
  await relay.restart();
  browser = client(relay.url);
  // Sessions survive a restart (docs/api.md: they live in the data dir as hashes).
  const kept = await browser.get('/api/session', { headers: { Cookie: `keyrelay_session=${sid}` } });
  assert.equal(kept.status, 200, `the session did not survive the restart: ${kept.body}`);
  assert.equal((await browser.login()).status, 200);
  const after = await browser.connections();
  for (const p of ['keap', 'jira']) {
    assert.equal(after[p]?.connected, true, `${p} lost after restart: ${JSON.stringify(after[p])}`);
    assert.equal(after[p].account, before[p].account);
    assert.equal(after[p].expires_at, before[p].expires_at);
  }
  const keap = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  assert.equal(keap.status, 200, keap.body);
  assert.equal(keap.json?.contacts?.[0]?.given_name, 'Ada');
  const jira = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com');
  assert.equal(jira.status, 200, jira.body);
  for (const p of ['keap', 'jira']) assert.equal((await sandbox.tokenStats(p)).exchanges, 1, `${p}: no new consent needed`);
}

test('a restart (SIGTERM, start again on the same data dir) keeps both connections working', async (t) => {
  await checkRestartKeeps(t, { storeKey: undefined, signal: 'SIGTERM' });
});

test('a restart after SIGINT keeps connections also when the relay generated its own store key file (no KEYRELAY_STORE_KEY)', { skip: fileStoreOnly }, async (t) => {
  await checkRestartKeeps(t, { storeKey: null, signal: 'SIGINT' });
});

test('a relay killed (SIGKILL) right after a refresh has already persisted the rotated refresh token: the next refresh works', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true, accessTtl: 2 });
  const relay = await startRelay({ sandbox, t });
  let browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  assert.equal((await browser.connect('keap')).final.rawLocation, '/?connected=keap');
  const conn = (await browser.connections()).keap;
  await sleep(Math.max(0, conn.expires_at * 1000 - Date.now() + 300));
  assert.equal((await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com')).status, 200);
  assert.equal((await sandbox.tokenStats('keap')).refreshes, 1, 'the call after expiry refreshed');
  const killed = await relay.stop('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  await relay.restart();
  browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const after = (await browser.connections()).keap;
  await sleep(Math.max(0, after.expires_at * 1000 - Date.now() + 300));
  const res = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  assert.equal(res.status, 200, `after a crash the relay lost the rotated refresh token: ${res.body}`);
  const s = await sandbox.tokenStats('keap');
  assert.equal(s.refreshes, 2);
  assert.equal(s.refresh_failures, 0);
});
