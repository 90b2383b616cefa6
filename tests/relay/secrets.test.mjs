// After a tour of the whole relay surface — logins (right and wrong), consent, callbacks good and
// bad, lookups, refreshes across expiry, upstream failures, a revoked grant, PAT mode, disconnect, logout, a restart —
// every relay response (headers and bodies) and every relay log line is scanned for every secret and token: the
// client secrets, API keys, PATs, API tokens, the store key, the relay API key, the session cookie value, the OAuth
// codes, a tried password, every string in the sandbox's token formats (sbx_keap_at_…, relay/sandbox/INTERFACE.md)
// and the exact access/refresh tokens the sandbox issued (captured by a recording tap between the relay and the
// sandbox). None may appear.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import {
  SANDBOX_TOKEN_PATTERNS, addSecret, apiCall, checkLeaksAfterAll, client, findLeaks, newApiKey, rawRequest, recorded,
  sleep, startRelay, startSandbox, startTap,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

const ADA = 'crm/rest/v1/contacts?email=ada@example.com';
const JADA = 'rest/api/3/user/search?query=ada@example.com';

test('no secret, token, code, cookie or password appears in any relay response or log line of a full tour', async (t) => {
  const tap = await startTap({ sandbox: await startSandbox({ t, accessTtl: 2 }), t });
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox: tap, t, apiKey });
  const browser = client(relay.url);

  // Logins: a wrong password first (it must not be logged), then the right one.
  const wrong = `tour-wrong-password-${process.pid}`;
  addSecret(wrong, 'a wrong password sent to /login');
  assert.equal((await browser.login('demo', wrong)).status, 401);
  assert.equal((await browser.login('ghost-user', wrong)).status, 401);
  assert.equal((await browser.login()).status, 200);
  await browser.get('/api/session');

  // Consent clicked by hand for Keap, denied once for Jira, then allowed.
  const keap = await browser.connect('keap');
  assert.equal(keap.final.rawLocation, '/?connected=keap', keap.trace);
  await browser.connect('jira', { decision: 'deny' });
  const jira = await browser.connect('jira');
  assert.equal(jira.final.rawLocation, '/?connected=jira', jira.trace);
  assert.ok(tap.tokens.size >= 4, `the tap captured ${tap.tokens.size} tokens/codes`);

  // Bad callbacks: replay, wrong state.
  await browser.get(keap.callbackUrl);
  const bad = new URL(jira.callbackUrl);
  bad.searchParams.set('state', 'not-the-state');
  await browser.get(bad.href);

  // Lookups across two token lifetimes (refreshes rotate the refresh tokens), page and server-to-server callers.
  for (let i = 0; i < 4; i++) {
    assert.equal((await browser.proxy('keap', ADA)).status, 200);
    assert.equal((await browser.proxy('jira', JADA)).status, 200);
    assert.equal((await apiCall(relay.url, 'GET', `/proxy/keap/${ADA}`, { apiKey })).status, 200);
    await sleep(1100);
  }
  assert.ok((await tap.tokenStats('keap')).refreshes >= 1, 'the tour should include refreshes');
  await browser.proxy('keap', 'crm/xmlrpc/v1', {
    method: 'POST', headers: { 'Content-Type': 'text/xml' },
    body: '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params><param><value><string>k</string></value></param></params></methodCall>',
  });
  await browser.proxy('keap', 'crm/rest/v1/contacts/101', { method: 'PATCH', json: { given_name: 'Ada' } });

  // Errors of every kind.
  await browser.get(`/proxy/keap/${ADA}`); // no CSRF header
  await browser.proxy('keap', 'token', { method: 'POST', body: 'grant_type=refresh_token' });
  await rawRequest(relay.url, '/proxy/keap/crm/rest/v1/%2e%2e/%2e%2e/token', { headers: { Cookie: `keyrelay_session=${browser.cookie('keyrelay_session').value}`, 'X-Requested-With': 'keyrelay' } });
  await apiCall(relay.url, 'GET', `/proxy/keap/${ADA}`, { apiKey: `${apiKey}-wrong` });
  await browser.request('OPTIONS', `/proxy/keap/${ADA}`, { headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' } });
  for (const mode of ['html_502', 'gateway_fault', 'rate_limit', 'status']) {
    await tap.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode, status: 401 });
    await browser.proxy('keap', ADA, { timeout: 20_000 });
  }
  await browser.get('/metrics');
  await browser.get('/api/connections');
  await browser.get('/no/such/thing');

  // A revoked grant: needs_reauth.
  await tap.revoke({ provider: 'jira' });
  await sleep(2100);
  await browser.proxy('jira', JADA);
  await browser.get('/api/connections');

  // Restart, disconnect, logout.
  await relay.restart();
  const again = client(relay.url);
  assert.equal((await again.login()).status, 200);
  await again.proxy('keap', ADA);
  await again.post('/api/connections/keap/disconnect', { headers: { 'X-Requested-With': 'keyrelay' } });
  await again.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } });
  await relay.stop('SIGTERM');

  // PAT mode on a second relay.
  const pat = await startRelay({ sandbox: tap, t, env: { KEAP_API_KEY: tap.config.keap.api_key }, name: 'keyrelay-pat' });
  const patBrowser = client(pat.url);
  assert.equal((await patBrowser.login()).status, 200);
  await patBrowser.get('/api/connections');
  assert.equal((await patBrowser.proxy('keap', ADA)).status, 200);
  await pat.stop('SIGTERM');

  assert.ok(recorded.logs.length > 10, `only ${recorded.logs.length} relay log lines were captured`);
  assert.ok(recorded.responses.length >= 40, `only ${recorded.responses.length} relay responses were captured`);
  assert.ok([...tap.tokens].some((v) => SANDBOX_TOKEN_PATTERNS[0].test(v)), 'the token patterns match what the sandbox issues');
  assert.ok([...tap.tokens].some((v) => SANDBOX_TOKEN_PATTERNS[1].test(v)), 'the code pattern matches what the sandbox issues');
  const leaks = findLeaks();
  assert.deepEqual(leaks.map((l) => `${l.label} in ${l.where}: ${l.excerpt}`), [], 'secrets leaked');

  // The store on disk holds no token in clear either.
  for (const f of await readdir(relay.dataDir)) {
    const text = await readFile(path.join(relay.dataDir, f), 'latin1').catch(() => '');
    for (const tok of tap.tokens) assert.ok(!text.includes(tok), `${f} holds a sandbox token in clear`);
  }
});
