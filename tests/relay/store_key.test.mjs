// The store key is checked (docs/reference/security.md "Tokens at rest"). tokens.json holds every
// record sealed with AES-256-GCM under the store key, the record id as associated data (relay/src/store.cpp). A relay
// given the wrong key, a damaged or tampered store, or a bad key must refuse to start with a clear message that names
// the fix — never start on garbage, never silently reset the store, and never print a key.
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { addSecret, checkLeaksAfterAll, client, fileStoreOnly, newStoreKey, startRelay, startSandbox, tempDir } from '../lib/harness.mjs';
import { runRelayOnce } from '../lib/security.mjs';

checkLeaksAfterAll();

/** A data dir holding a store with Keap and Jira connected under `storeKey`, the relay stopped. */
async function storeWithConnections(t, storeKey = newStoreKey()) {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const dataDir = await tempDir(t);
  const relay = await startRelay({ sandbox, dataDir, storeKey, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  for (const p of ['keap', 'jira']) assert.equal((await browser.connect(p)).final.rawLocation, `/?connected=${p}`);
  assert.equal((await relay.stop('SIGTERM')).code, 0);
  const file = path.join(dataDir, 'tokens.json');
  return { sandbox, dataDir, storeKey, file, original: await readFile(file) };
}

const serveArgs = (sandbox, dataDir) => ['serve', '--sandbox', sandbox.url, '--port', '0', '--data-dir', dataDir];

/** The refusal every bad-store start must give: exit status 1, not listening, the code and the fix named. */
function assertRefused(run, { code, names }, what) {
  const out = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.code, 1, `${what}: exit ${run.code} (signal ${run.signal}); it should refuse to start:\n${out}`);
  assert.ok(!/^listening on/m.test(run.stdout), `${what}: it started listening:\n${out}`);
  assert.ok(out.includes(code), `${what}: the refusal does not carry ${code}:\n${out}`);
  for (const n of names) assert.ok(out.includes(n), `${what}: the refusal does not name ${n}:\n${out}`);
}

test('a wrong KEYRELAY_STORE_KEY (key substitution) is refused at start with exit 1 and a message naming KEYRELAY_STORE_KEY; tokens.json stays byte-identical and neither key is printed', { skip: fileStoreOnly }, async (t) => {
  const { sandbox, dataDir, storeKey, file, original } = await storeWithConnections(t);
  const wrong = newStoreKey();
  addSecret(wrong, 'a wrong KEYRELAY_STORE_KEY');
  const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: wrong });
  assertRefused(run, { code: 'store.unknown_key_id', names: ['KEYRELAY_STORE_KEY', 'tokens.json'] }, 'wrong key');
  const out = run.stdout + run.stderr;
  for (const [k, label] of [[storeKey, 'the right key'], [wrong, 'the wrong key']]) {
    assert.ok(!out.includes(k) && !out.toLowerCase().includes(Buffer.from(k, 'hex').toString('base64').toLowerCase()), `the refusal prints ${label}`);
  }
  assert.deepEqual(await readFile(file), original, 'a refused start changed tokens.json (a silent reset?)');
  // And the right key still opens it: nothing was lost by the attempt.
  const again = await startRelay({ sandbox, dataDir, storeKey, t });
  const browser = client(again.url);
  assert.equal((await browser.login()).status, 200);
  const conns = await browser.connections();
  for (const p of ['keap', 'jira']) assert.equal(conns[p].connected, true, JSON.stringify(conns[p]));
});

test('a record whose ciphertext was tampered with (one byte flipped) is refused at start (store.wrong_key), never loaded as garbage', { skip: fileStoreOnly }, async (t) => {
  const { sandbox, dataDir, storeKey, file } = await storeWithConnections(t);
  const doc = JSON.parse(await readFile(file, 'utf8'));
  const rec = doc.records.find((r) => r.id === 'keap');
  const sealed = Buffer.from(rec.sealed, 'base64');
  sealed[20] ^= 0x01;
  rec.sealed = sealed.toString('base64');
  await writeFile(file, JSON.stringify(doc));
  const tampered = await readFile(file);
  const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: storeKey });
  assertRefused(run, { code: 'store.wrong_key', names: ['KEYRELAY_STORE_KEY'] }, 'tampered record');
  assert.deepEqual(await readFile(file), tampered, 'the relay rewrote a store it could not read');
});

test('a sealed record copied onto another provider\'s id is refused (the record id is authenticated data), not served as that provider', { skip: fileStoreOnly }, async (t) => {
  const { sandbox, dataDir, storeKey, file } = await storeWithConnections(t);
  const doc = JSON.parse(await readFile(file, 'utf8'));
  const keap = doc.records.find((r) => r.id === 'keap');
  doc.records = [keap, { ...keap, id: 'jira' }];
  await writeFile(file, JSON.stringify(doc));
  const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: storeKey });
  assertRefused(run, { code: 'store.wrong_key', names: ['record "jira"'] }, 'record moved to another id');
});

test('a half-written tokens.json (truncated) is refused with store.corrupt and left as it is, never silently reset to an empty store', { skip: fileStoreOnly }, async (t) => {
  const { sandbox, dataDir, storeKey, file, original } = await storeWithConnections(t);
  const half = original.subarray(0, Math.floor(original.length / 2));
  await writeFile(file, half);
  const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: storeKey });
  assertRefused(run, { code: 'store.corrupt', names: ['tokens.json', 'backup'] }, 'truncated store');
  assert.deepEqual(await readFile(file), half, 'the relay replaced a damaged store');
});

test('a malformed KEYRELAY_STORE_KEY (short, not hex, a passphrase) is refused with the required format named, never stretched into a key', async (t) => {
  const sandbox = await startSandbox({ t });
  const dataDir = await tempDir(t);
  for (const bad of ['abc123', 'z'.repeat(64), 'correct horse battery staple', newStoreKey().slice(0, 62)]) {
    addSecret(bad, 'a malformed store key');
    const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: bad });
    const out = run.stdout + run.stderr;
    assert.equal(run.code, 1, `KEYRELAY_STORE_KEY=${bad.length} chars: exit ${run.code}:\n${out}`);
    assert.match(out, /KEYRELAY_STORE_KEY/, out);
    assert.match(out, /64 hex|32 bytes/, `the refusal should say what a key looks like:\n${out}`);
  }
});

test('a store.key file readable by other users is refused at start (key disclosure), naming chmod 600', { skip: fileStoreOnly }, async (t) => {
  const sandbox = await startSandbox({ t });
  const dataDir = await tempDir(t);
  // First start without KEYRELAY_STORE_KEY makes the 0600 key file.
  const relay = await startRelay({ sandbox, dataDir, storeKey: null, t });
  await relay.stop('SIGTERM');
  const keyFile = path.join(dataDir, 'store.key');
  addSecret((await readFile(keyFile, 'utf8')).trim(), 'the generated store.key');
  await chmod(keyFile, 0o644);
  const run = await runRelayOnce(serveArgs(sandbox, dataDir), { KEYRELAY_STORE_KEY: '' });
  const out = run.stdout + run.stderr;
  assert.equal(run.code, 1, `a world-readable store.key was accepted:\n${out}`);
  assert.match(out, /store\.key_file_permissions/, out);
  assert.match(out, /chmod 600/, out);
});
