// The proxy is not an open proxy. A page call needs the static CSRF header; only
// allowlisted paths are forwarded; paths that could escape the API base are refused before anything is forwarded.
// Raw HTTP (net.connect) sends the paths byte for byte, since fetch would normalise `..` and some escapes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { apiCall, checkLeaksAfterAll, connectedSetup, errorOf, rawRequest } from '../lib/harness.mjs';

checkLeaksAfterAll();

const ADA = 'crm/rest/v1/contacts?email=ada@example.com';

test('a proxied call with a valid session but without X-Requested-With: keyrelay gets 403 csrf.missing_header', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  const before = (await sandbox.stats()).requests['GET /keap/crm/rest/v1/contacts'] ?? 0;
  for (const headers of [{}, { 'X-Requested-With': 'XMLHttpRequest' }, { 'X-Requested-With': '' }]) {
    const res = await browser.get(`/proxy/keap/${ADA}`, { headers });
    assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${res.body}`);
    assert.equal(errorOf(res).code, 'csrf.missing_header');
  }
  const form = await browser.post('/proxy/keap/crm/rest/v1/contacts', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'given_name=Mallory',
  });
  assert.equal(form.status, 403, `a cross-site form POST: ${form.body}`);
  assert.equal(errorOf(form).code, 'csrf.missing_header');
  const after = (await sandbox.stats()).requests['GET /keap/crm/rest/v1/contacts'] ?? 0;
  assert.equal(after, before, 'a refused call reached the sandbox');
  assert.equal((await browser.proxy('keap', ADA)).status, 200, 'the same call with the header works');
});

test('a proxied call without any session or API key is refused', async (t) => {
  const { relay } = await connectedSetup({ t });
  const res = await apiCall(relay.url, 'GET', `/proxy/keap/${ADA}`, { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(res.status, 401, `got ${res.status} ${res.body}`);
  assert.equal(errorOf(res).code, 'auth.no_session');
  const stale = await apiCall(relay.url, 'GET', `/proxy/keap/${ADA}`, { headers: { 'X-Requested-With': 'keyrelay', Cookie: 'keyrelay_session=made-up-session-id-0123456789' } });
  assert.equal(stale.status, 401, `a made-up session id: ${stale.status} ${stale.body}`);
  assert.equal(errorOf(stale).code, 'auth.no_session');
});

test('paths and methods off the allowlist get 403 proxy.path_not_allowed and never reach the sandbox', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t, providers: ['keap', 'jira'] });
  const before = await sandbox.stats();
  const offList = [
    ['GET', 'keap', 'token'],
    ['POST', 'keap', 'token'],
    ['GET', 'keap', 'app/oauth/authorize'],
    ['GET', 'keap', 'sandbox/config'],
    ['GET', 'jira', 'oauth/token'],
    ['POST', 'jira', 'oauth/token'],
    ['GET', 'jira', 'oauth/token/accessible-resources'],
    ['GET', 'jira', 'authorize'],
  ];
  for (const [method, provider, p] of offList) {
    const res = await browser.proxy(provider, p, { method, body: method === 'POST' ? '{}' : undefined });
    assert.equal(res.status, 403, `${method} /proxy/${provider}/${p}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'proxy.path_not_allowed', `${method} /proxy/${provider}/${p}`);
  }
  const after = await sandbox.stats();
  assert.deepEqual(after.requests, before.requests, 'an off-allowlist call reached the sandbox');
});

test('absolute URLs, .., %2e%2e, encoded slashes, double encoding, backslashes and CR/LF get 400 proxy.bad_path', async (t) => {
  const { relay, sandbox, browser } = await connectedSetup({ t });
  const headers = { Cookie: `keyrelay_session=${browser.cookie('keyrelay_session').value}`, 'X-Requested-With': 'keyrelay' };
  const before = await sandbox.stats();
  const bad = [
    '/proxy/keap/https://evil.example/crm/rest/v1/contacts',
    '/proxy/keap/http:%2F%2Fevil.example/crm/rest/v1/contacts',
    '/proxy/keap//evil.example/crm/rest/v1/contacts',
    '/proxy/keap/crm/rest/v1/../../../token',
    '/proxy/keap/crm/rest/v1/contacts/../../../../token',
    '/proxy/keap/crm/rest/v1/%2e%2e/%2e%2e/%2e%2e/token',
    '/proxy/keap/crm/rest/v1/%2E%2E/%2E%2E/%2E%2E/token',
    '/proxy/keap/crm/rest/v1/contacts/..%2f..%2f..%2f..%2ftoken',
    '/proxy/keap/crm/rest/v1/contacts%2f101',
    '/proxy/keap/crm/rest/v1/contacts%2F101',
    '/proxy/keap/crm/rest/v1/%252e%252e/%252e%252e/%252e%252e/token',
    '/proxy/keap/crm/rest/v1/contacts%252f101',
    '/proxy/keap/crm/rest/v1/%25%32%65%25%32%65/%25%32%65%25%32%65/%25%32%65%25%32%65/token',
    '/proxy/keap/./token',
    '/proxy/keap/crm/rest/v1/contacts/%2e',
    '/proxy/keap/crm/rest/v1/contacts;/../../../token',
    '/proxy/keap/crm/rest/v1/contacts%09',
    '/proxy/keap/crm/rest/v1/contacts\\..\\..\\..\\token',
    '/proxy/keap/crm/rest/v1/contacts%5c..%5c..%5c..%5ctoken',
    '/proxy/keap/crm/rest/v1/contacts%0d%0aX-Injected:%20yes',
    '/proxy/keap/crm/rest/v1/contacts%0aHost:%20evil.example',
    '/proxy/keap/crm/rest/v1/contacts%00',
    '/proxy/keap/@evil.example/crm/rest/v1/contacts',
  ];
  for (const target of bad) {
    const res = await rawRequest(relay.url, target, { headers });
    assert.equal(res.status, 400, `${target}: ${res.statusLine} ${res.body.slice(0, 300)}`);
    assert.equal(res.json?.error?.code, 'proxy.bad_path', `${target}: ${res.body.slice(0, 300)}`);
    assert.equal(typeof res.json.error.hint, 'string');
  }
  // An absolute-form request target (RFC 9112 §3.2.2) must not turn the relay into a forward proxy.
  const absolute = await rawRequest(relay.url, 'http://evil.example/proxy/keap/crm/rest/v1/contacts', { headers });
  assert.ok(absolute.status >= 400, `absolute-form target: ${absolute.statusLine}`);
  // Host-override headers are not followed.
  const hosty = await rawRequest(relay.url, `/proxy/keap/${ADA}`, { headers: { ...headers, 'X-Forwarded-Host': 'evil.example', 'X-Original-URL': '/keap/token', 'X-Rewrite-URL': '/keap/token' } });
  assert.equal(hosty.status, 200, `${hosty.statusLine} ${hosty.body.slice(0, 300)}`);
  const after = await sandbox.stats();
  const delta = Object.fromEntries(Object.entries(after.requests).filter(([k, v]) => v !== (before.requests[k] ?? 0)));
  assert.deepEqual(delta, { 'GET /keap/crm/rest/v1/contacts': (before.requests['GET /keap/crm/rest/v1/contacts'] ?? 0) + 1 },
    'only the one good call may reach the sandbox');
});

test('the browser\'s Cookie, Origin, User-Agent and X-Requested-With are stripped; the relay attaches its own Bearer token', async (t) => {
  const { relay, browser, tap } = await connectedSetup({ t, tap: true });
  // The page is same-origin: its own Origin is accepted by the relay (and must be stripped: the sandbox, like
  // Keap, refuses any request carrying an Origin).
  const ua = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 keyrelay-test-ua';
  const res = await browser.proxy('keap', ADA, {
    headers: {
      Origin: relay.url, 'User-Agent': ua, 'X-Custom-Browser': 'kept', 'X-Keap-API-Key': 'KeapAK-from-the-browser',
      'X-Forwarded-Host': 'evil.example', 'X-Forwarded-For': '203.0.113.9', 'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
    },
  });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.json?.contacts?.[0]?.given_name, 'Ada');
  const up = tap.seen.filter((r) => r.path.startsWith('/keap/crm/rest/v1/contacts'));
  assert.equal(up.length, 1, `the sandbox got ${up.length} contact calls`);
  const h = up[0].headers;
  assert.equal(h.cookie, undefined, `Cookie forwarded upstream: ${h.cookie}`);
  assert.equal(h.origin, undefined, `Origin forwarded upstream: ${h.origin}`);
  assert.equal(h['x-requested-with'], undefined, 'X-Requested-With forwarded upstream');
  assert.equal(h['x-keap-api-key'], undefined, 'a browser-sent X-Keap-API-Key was forwarded (credential override)');
  assert.equal(h['x-forwarded-host'], undefined, 'X-Forwarded-Host forwarded upstream');
  assert.equal(h['x-forwarded-for'], undefined, 'X-Forwarded-For forwarded upstream');
  assert.equal(h['proxy-authorization'], undefined, 'Proxy-Authorization forwarded upstream');
  assert.equal(h['x-custom-browser'], 'kept', 'docs/api.md: other X-* headers are forwarded');
  assert.ok(!String(h['user-agent'] ?? '').includes('keyrelay-test-ua'), `the browser's User-Agent was forwarded: ${h['user-agent']}`);
  const m = /^Bearer (.+)$/.exec(h.authorization ?? '');
  assert.ok(m, `no Bearer token upstream: ${h.authorization}`);
  assert.ok(tap.tokens.has(m[1]), 'the Bearer token is not one the sandbox issued');
  assert.equal(new URL(up[0].path, 'http://x').searchParams.get('email'), 'ada@example.com', 'the query passes through');
});
