// CORS (WHATWG Fetch §3.2). An origin listed in the config's cors_origins gets a correct
// preflight: 204, the exact origin, credentials, Vary: Origin, never a redirect (a 3xx fails the preflight). Any other
// origin gets 403 cors.origin_not_allowed naming the cors_origins setting. The page itself is same-origin.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, connectedSetup, errorOf, tempDir, writeConfig } from '../lib/harness.mjs';

checkLeaksAfterAll();

const ALLOWED = 'http://app.example:3000';
const OTHER = 'https://evil.example';
const ADA = '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com';

async function setupWithCors(t, providers = ['keap']) {
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { cors_origins: [ALLOWED] });
  return connectedSetup({ t, providers, relayOptions: { args: ['--config', config] } });
}

const preflight = (browser, origin, method = 'GET', headers = 'x-requested-with') => browser.request('OPTIONS', ADA, {
  headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
});

function varyHasOrigin(res) {
  return (res.headers.get('vary') ?? '').split(',').map((v) => v.trim().toLowerCase()).includes('origin');
}

test('a preflight from an origin in cors_origins → 204 with the exact origin, credentials, methods, headers and Vary: Origin', async (t) => {
  const { browser } = await setupWithCors(t);
  const res = await preflight(browser, ALLOWED, 'PATCH', 'x-requested-with, content-type');
  assert.equal(res.status, 204, `${res.status} ${res.body}`);
  assert.equal(res.location, null, 'a preflight must never redirect');
  assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED);
  assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  assert.ok(varyHasOrigin(res), `Vary: ${res.headers.get('vary')}`);
  const methods = (res.headers.get('access-control-allow-methods') ?? '').toUpperCase();
  assert.match(methods, /\bGET\b/);
  assert.match(methods, /\bPATCH\b/);
  const allowHeaders = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  assert.match(allowHeaders, /x-requested-with/);
  assert.match(allowHeaders, /content-type/);
  assert.equal(res.body, '');

  // The actual request from that origin carries the same CORS answer headers.
  const call = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com', { headers: { Origin: ALLOWED } });
  assert.equal(call.status, 200, call.body);
  assert.equal(call.headers.get('access-control-allow-origin'), ALLOWED);
  assert.equal(call.headers.get('access-control-allow-credentials'), 'true');
  assert.ok(varyHasOrigin(call), `Vary: ${call.headers.get('vary')}`);
});

test('a preflight from an origin not in cors_origins → 403 cors.origin_not_allowed naming cors_origins, no CORS grant', async (t) => {
  const { browser } = await setupWithCors(t);
  for (const origin of [OTHER, 'http://app.example', 'http://app.example:3000.evil.example', 'null']) {
    const res = await preflight(browser, origin);
    assert.equal(res.status, 403, `${origin}: ${res.status} ${res.body}`);
    assert.equal(res.location, null);
    assert.equal(errorOf(res).code, 'cors.origin_not_allowed', origin);
    assert.match(`${res.json.error.message} ${res.json.error.hint}`, /cors_origins/, 'the error names the setting');
    assert.equal(res.headers.get('access-control-allow-origin'), null, `${origin} was granted CORS`);
  }
  const call = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com', { headers: { Origin: OTHER } });
  assert.equal(call.status, 403, `a cross-origin call with cookies from ${OTHER}: ${call.body}`);
  assert.equal(errorOf(call).code, 'cors.origin_not_allowed');
});

test('without cors_origins every foreign origin is refused, but the page\'s own origin is not', async (t) => {
  const { relay, browser } = await connectedSetup({ t });
  const res = await preflight(browser, ALLOWED);
  assert.equal(res.status, 403, res.body);
  assert.equal(errorOf(res).code, 'cors.origin_not_allowed');
  assert.match(`${res.json.error.message} ${res.json.error.hint}`, /cors_origins/);
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  // Browsers send Origin on same-origin POSTs: the page's own login and calls must keep working.
  const again = client(relay.url);
  const login = await again.request('POST', '/login', { json: { username: 'demo', password: 'demo' }, headers: { Origin: relay.url } });
  assert.equal(login.status, 200, login.body);
  const call = await again.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com', { headers: { Origin: relay.url } });
  assert.equal(call.status, 200, call.body);
});

test('a cross-site form posting a JSON-looking text/plain body to /login (login CSRF) is refused by its Origin', async (t) => {
  const { relay } = await connectedSetup({ t });
  const victim = client(relay.url);
  const res = await victim.request('POST', '/login', {
    headers: { Origin: OTHER, 'Content-Type': 'text/plain' }, body: '{"username":"demo","password":"demo","x":"="}',
  });
  assert.equal(res.status, 403, `${res.status} ${res.body}`);
  assert.equal(errorOf(res).code, 'cors.origin_not_allowed');
  assert.deepEqual(res.setCookie, [], 'no session cookie for a cross-site login');
  const dis = await victim.request('POST', '/api/connections/keap/disconnect', { headers: { Origin: OTHER, 'X-Requested-With': 'keyrelay' } });
  assert.equal(dis.status, 403, dis.body);
  assert.equal(errorOf(dis).code, 'cors.origin_not_allowed');
});

test('a page on an allowed origin may read Jira\'s 2026 rate-limit headers of a 429: each is named in Access-Control-Expose-Headers', async (t) => {
  const { sandbox, browser } = await setupWithCors(t, ['jira']);
  await sandbox.fail({ path: '/jira/ex/jira/', count: 1, mode: 'points_limit' });
  const res = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com', { headers: { Origin: ALLOWED } });
  assert.equal(res.status, 429, res.body);
  assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED);
  const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
  for (const name of ['retry-after', 'ratelimit-reason', 'beta-ratelimit', 'beta-ratelimit-policy', 'x-ratelimit-nearlimit',
    'x-request-id']) {
    assert.ok(res.headers.get(name), `${name} is in the answer`);
    assert.ok(exposed.includes(name), `${name} is exposed: ${exposed.join(', ')}`);
  }
  assert.ok(!exposed.includes('*'), 'a credentialed answer cannot expose "*"');
});
