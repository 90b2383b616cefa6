// Atlassian ends every 3LO grant 365 days after consent, however often its refresh tokens are used
// (docs/reference/jira.md). The relay says when consent is needed again (`reauthorize_by`), warns from 30 days
// ahead (`warnings`) and exports the date as a gauge (docs/api.md). The test moves the Jira grant's consent time
// back by rewriting the relay's encrypted store (format: relay/src/state/file_store.cpp) while the relay is stopped.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { apiCall, checkLeaksAfterAll, connectedSetup, metricValue } from '../lib/harness.mjs';

checkLeaksAfterAll();

const DAY = 86400;

// Rewrites one record of <dataDir>/tokens.json: AES-256-GCM, iv(12) || ciphertext || tag(16), the record id as AAD.
async function editStoredConnection(dataDir, storeKeyHex, id, edit) {
  const file = path.join(dataDir, 'tokens.json');
  const doc = JSON.parse(await readFile(file, 'utf8'));
  const rec = doc.records.find((r) => r.id === id);
  assert.ok(rec, `no "${id}" record in ${file}`);
  const key = Buffer.from(storeKeyHex, 'hex');
  const sealed = Buffer.from(rec.sealed, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(id));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const connection = JSON.parse(Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString());
  edit(connection);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(id));
  const ct = Buffer.concat([cipher.update(JSON.stringify(connection)), cipher.final()]);
  rec.sealed = Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64');   // same version, inside and out
  await writeFile(`${file}.edit`, JSON.stringify(doc));
  await rename(`${file}.edit`, file);
}

async function jiraAndKeap(relay) {
  const res = await apiCall(relay.url, 'GET', '/api/connections', { apiKey: relay.apiKey });
  assert.equal(res.status, 200, res.body);
  const by = Object.fromEntries(res.json.connections.map((c) => [c.provider, c]));
  return { jira: by.jira, keap: by.keap };
}

async function gauge(relay, provider) {
  const res = await apiCall(relay.url, 'GET', '/metrics');
  return metricValue(res.body, 'keyrelay_connection_reauthorize_by_seconds', { provider });
}

test('a Jira grant shows when consent is needed again, warns 30 days ahead and says when it has ended', async (t) => {
  const { relay } = await connectedSetup({ t, providers: ['keap', 'jira'], relayOptions: { apiKey: true } });

  // Right after consent: a year ahead, no warning. Keap has no fixed end.
  let { jira, keap } = await jiraAndKeap(relay);
  assert.equal(jira.connected, true);
  assert.equal(jira.reauthorize_by, jira.connected_at + 365 * DAY, JSON.stringify(jira));
  assert.deepEqual(jira.warnings, []);
  assert.equal(keap.reauthorize_by, null);
  assert.deepEqual(keap.warnings, []);
  assert.equal(await gauge(relay, 'jira'), jira.reauthorize_by);
  assert.equal(await gauge(relay, 'keap'), undefined, 'no reauthorize_by sample for Keap');

  // Consent given 340 days ago: 25 days left.
  const now = Math.floor(Date.now() / 1000);
  await relay.stop();
  await editStoredConnection(relay.dataDir, relay.storeKey, 'jira', (c) => { c.connected_at = now - 340 * DAY; });
  await relay.restart();
  ({ jira } = await jiraAndKeap(relay));
  assert.equal(jira.reauthorize_by, now - 340 * DAY + 365 * DAY);
  assert.equal(jira.warnings.length, 1, JSON.stringify(jira.warnings));
  assert.equal(jira.warnings[0].code, 'connection.reauthorize_soon');
  const date = new Date(jira.reauthorize_by * 1000).toISOString().slice(0, 10);
  assert.match(jira.warnings[0].message, new RegExp(`ends this Jira grant on ${date} \\(UTC\\), in 2[56] days`));
  assert.match(jira.warnings[0].message, /Press Connect for Jira/);
  assert.equal(await gauge(relay, 'jira'), jira.reauthorize_by);

  // Consent given 400 days ago: the grant has ended.
  await relay.stop();
  await editStoredConnection(relay.dataDir, relay.storeKey, 'jira', (c) => { c.connected_at = now - 400 * DAY; });
  await relay.restart();
  ({ jira } = await jiraAndKeap(relay));
  assert.deepEqual(jira.warnings.map((w) => w.code), ['connection.grant_expired']);
  assert.match(jira.warnings[0].message, /Press Connect for Jira to grant access again/);
});
