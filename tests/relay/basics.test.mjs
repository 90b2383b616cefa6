// The relay's plain surface (docs/api.md): health, metrics, the one error shape, page sessions and their cookie.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DEMO_PASSWORD, DEMO_USER, addSecret, checkLeaksAfterAll, client, connectedSetup, errorOf, metricValue, rawRequest,
  startRelay, startSandbox, tempDir, waitFor, writeConfig,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

test('GET /healthz answers 200 {"status":"ok","version":...}', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const res = await client(relay.url).get('/healthz');
  assert.equal(res.status, 200, res.body);
  assert.equal(res.json?.status, 'ok', res.body);
  assert.equal(typeof res.json?.version, 'string', res.body);
  assert.ok(res.json.version.length > 0);
});

test('an unknown path answers 404 with the one error shape {error:{code,message,hint}}', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  for (const p of ['/api/does-not-exist', '/no/such/page.html']) {
    const res = await browser.get(p);
    assert.equal(res.status, 404, `${p}: ${res.body}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/, p);
    errorOf(res);
  }
});

test('login sets keyrelay_session HttpOnly, SameSite=Strict, Path=/, no Domain; /api/session knows the user', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);

  const before = await browser.get('/api/session');
  assert.equal(before.status, 401, before.body);
  assert.equal(errorOf(before).code, 'auth.no_session');

  const res = await browser.login();
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(res.json, { user: DEMO_USER });
  const cookie = browser.cookie('keyrelay_session');
  assert.ok(cookie, `no keyrelay_session cookie in ${JSON.stringify(res.setCookie)}`);
  assert.ok(cookie.value.length >= 16, `session id too short to be unguessable: ${cookie.value.length} chars`);
  assert.equal(cookie.attrs.httponly, true, cookie.raw);
  assert.equal(String(cookie.attrs.samesite).toLowerCase(), 'strict', cookie.raw);
  assert.equal(cookie.attrs.path, '/', cookie.raw);
  assert.equal(cookie.attrs.domain, undefined, cookie.raw);

  const session = await browser.get('/api/session');
  assert.equal(session.status, 200, session.body);
  assert.deepEqual(session.json, { user: DEMO_USER });
});

test('logout needs X-Requested-With, then ends the session on the server (the old cookie no longer works)', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const sid = browser.cookie('keyrelay_session').value;

  const forged = await browser.post('/logout');
  assert.equal(forged.status, 403, `logout without X-Requested-With: ${forged.body}`);
  assert.equal(errorOf(forged).code, 'csrf.missing_header');
  assert.equal((await browser.get('/api/session')).status, 200, 'a refused logout must not end the session');

  const out = await browser.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(out.status, 204, out.body);
  assert.ok(out.setCookie.some((c) => /^keyrelay_session=/.test(c) && /max-age=0|expires=/i.test(c)),
    `logout should clear the cookie: ${JSON.stringify(out.setCookie)}`);

  const replay = await client(relay.url).get('/api/session', { headers: { Cookie: `keyrelay_session=${sid}` } });
  assert.equal(replay.status, 401, `the old session id still works after logout: ${replay.body}`);
  assert.equal(errorOf(replay).code, 'auth.no_session');
});

test('wrong credentials get 401 auth.bad_credentials; the 6th failure within 5 minutes gets 429 auth.throttled with Retry-After', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const wrong = `wrong-password-${process.pid}-${Date.now()}`;
  addSecret(wrong, 'a wrong password sent to /login');
  for (let i = 1; i <= 5; i++) {
    const res = await browser.login(DEMO_USER, wrong);
    assert.equal(res.status, 401, `failure ${i}: ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.bad_credentials');
    assert.equal(browser.cookie('keyrelay_session'), undefined, 'no session on a failed login');
  }
  const throttled = await browser.login(DEMO_USER, wrong);
  assert.equal(throttled.status, 429, throttled.body);
  assert.equal(errorOf(throttled).code, 'auth.throttled');
  const retry = throttled.headers.get('retry-after');
  assert.match(retry ?? '', /^\d+$/, `Retry-After should be seconds, got ${retry}`);
  assert.ok(Number(retry) > 0 && Number(retry) <= 300, `Retry-After ${retry}`);
  const right = await browser.login(DEMO_USER, DEMO_PASSWORD);
  assert.equal(right.status, 429, `a throttled address must stay throttled even with the right password: ${right.body}`);
  const log = relay.logs().map((l) => l.line).join('\n');
  assert.ok(!log.includes(wrong), 'a tried password appears in the relay log');
});

test('GET /metrics is Prometheus text with requests, latency histogram, refreshes, failures and re-auth gauge', async (t) => {
  const { browser } = await connectedSetup({ t, providers: ['keap'] });
  const fresh = (await browser.get('/metrics')).body;
  for (const provider of ['keap', 'jira']) {
    assert.equal(metricValue(fresh, 'keyrelay_refreshes_total', { provider }), 0, `keyrelay_refreshes_total{provider="${provider}"} should exist at 0`);
    assert.equal(metricValue(fresh, 'keyrelay_refresh_failures_total', { provider }), 0);
  }
  assert.ok(metricValue(fresh, 'keyrelay_requests_total', { provider: 'relay' }) >= 1, 'requests that concern no provider count as provider="relay"');
  const lookup = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  assert.equal(lookup.status, 200, lookup.body);

  const res = await browser.get('/metrics');
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = res.body;
  assert.ok(metricValue(text, 'keyrelay_requests_total', { provider: 'keap', status: '200' }) >= 1,
    `keyrelay_requests_total{provider="keap",status="200"} should count the lookup:\n${text}`);
  assert.match(text, /^# TYPE keyrelay_upstream_latency_seconds histogram$/m);
  assert.ok(metricValue(text, 'keyrelay_upstream_latency_seconds_bucket', { provider: 'keap', le: '+Inf' }) >= 1, text);
  assert.ok(metricValue(text, 'keyrelay_upstream_latency_seconds_count', { provider: 'keap' }) >= 1, text);
  assert.notEqual(metricValue(text, 'keyrelay_upstream_latency_seconds_sum', { provider: 'keap' }), undefined, text);
  for (const name of ['keyrelay_refreshes_total', 'keyrelay_refresh_failures_total', 'keyrelay_connections_needing_reauth']) {
    assert.match(text, new RegExp(`^(# TYPE )?${name}\\b`, 'm'), `${name} missing from /metrics`);
  }
  assert.equal(metricValue(text, 'keyrelay_connections_needing_reauth'), 0, text);
  // Samples are well-formed: name{labels} value.
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfNa]+( \d+)?$/, `bad sample line: ${line}`);
  }
});

test('GET / serves the page (HTML) from web/', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const res = await client(relay.url).get('/');
  assert.equal(res.status, 200, res.body.slice(0, 300));
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
});

test('every response carries X-Request-Id, and the relay\'s log line for that request has the same id', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const ids = [];
  for (const res of [await browser.get('/healthz'), await browser.get('/api/nope'), await browser.login()]) {
    const id = res.headers.get('x-request-id');
    assert.ok(id && id.length >= 8, `${res.url}: X-Request-Id ${id}`);
    ids.push(id);
  }
  assert.equal(new Set(ids).size, ids.length, 'request ids repeat');
  await waitFor(() => ids.every((id) => relay.logs().some((l) => l.stream === 'stderr' && l.line.includes(id))),
    { timeout: 3000, what: 'a log line for each request id' });
  for (const l of relay.logs().filter((x) => x.stream === 'stderr')) {
    assert.doesNotThrow(() => JSON.parse(l.line), `a log line is not JSON: ${l.line}`);
  }
});

test('a foreign Host header is refused with 400 http.bad_host (DNS rebinding), proxy.bad_path under /proxy', async (t) => {
  const { relay, browser } = await connectedSetup({ t });
  const cookie = `keyrelay_session=${browser.cookie('keyrelay_session').value}`;
  const port = new URL(relay.url).port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
    const ok = await rawRequest(relay.url, '/api/session', { host, headers: { Cookie: cookie } });
    assert.equal(ok.status, 200, `Host ${host}: ${ok.statusLine} ${ok.body}`);
  }
  const evil = await rawRequest(relay.url, '/api/session', { host: `evil.example:${port}`, headers: { Cookie: cookie } });
  assert.equal(evil.status, 400, `${evil.statusLine} ${evil.body}`);
  assert.equal(evil.json?.error?.code, 'http.bad_host', evil.body);
  const proxied = await rawRequest(relay.url, '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com',
    { host: 'evil.example', headers: { Cookie: cookie, 'X-Requested-With': 'keyrelay' } });
  assert.equal(proxied.status, 400, `${proxied.statusLine} ${proxied.body}`);
  assert.equal(proxied.json?.error?.code, 'proxy.bad_path', proxied.body);
});

test('an IPv6 public_url makes its bracketed Host the relay\'s own ([::1]:8443), and nothing else', async (t) => {
  const dir = await tempDir(t);
  const config = await writeConfig(dir, { public_url: 'http://[::1]:8443' });
  const relay = await startRelay({ args: ['--config', config], t });
  for (const [host, status] of [['[::1]:8443', 200], ['[[::1]]:8443', 400], ['[::1]:8444', 400], ['::1:8443', 400]]) {
    const res = await rawRequest(relay.url, '/healthz', { host });
    assert.equal(res.status, status, `Host ${host}: ${res.statusLine} ${res.body}`);
  }
});

test('a login body that is not {username, password} strings → 400 auth.bad_request', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  for (const body of ['not json', '[]', '{"username":"demo"}', '{"username":1,"password":"demo"}', '{"username":"demo","password":null}']) {
    const res = await browser.post('/login', { headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(res.status, 400, `${body}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.bad_request', body);
  }
});

test('a wrong method on a known route → 405 http.method_not_allowed with Allow', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  for (const [method, p] of [['DELETE', '/api/connections'], ['PUT', '/login'], ['POST', '/healthz']]) {
    const res = await browser.request(method, p, { headers: { 'X-Requested-With': 'keyrelay' } });
    assert.equal(res.status, 405, `${method} ${p}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'http.method_not_allowed');
    assert.ok(res.headers.get('allow'), `${method} ${p}: no Allow header`);
  }
});

test('a request body over 1 MiB → 413 http.payload_too_large, nothing forwarded', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t });
  const before = (await sandbox.stats()).requests['PATCH /keap/crm/rest/v1/contacts/101'] ?? 0;
  const res = await browser.proxy('keap', 'crm/rest/v1/contacts/101', {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ notes: 'x'.repeat((1 << 20) + 10) }),
  });
  assert.equal(res.status, 413, `${res.status} ${res.body.slice(0, 300)}`);
  assert.equal(errorOf(res).code, 'http.payload_too_large');
  assert.equal((await sandbox.stats()).requests['PATCH /keap/crm/rest/v1/contacts/101'] ?? 0, before);
});

test('the page\'s files: JavaScript as text/javascript, dot-segments → 400 http.bad_path, hidden files → 404', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const js = await browser.get('/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  for (const target of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/web/../README.md']) {
    const res = await rawRequest(relay.url, target);
    assert.equal(res.status, 400, `${target}: ${res.statusLine} ${res.body.slice(0, 200)}`);
    assert.equal(res.json?.error?.code, 'http.bad_path', target);
  }
  for (const p of ['/.git/config', '/.env', '/.hidden']) {
    const res = await browser.get(p);
    assert.equal(res.status, 404, `${p}: ${res.status}`);
    assert.equal(errorOf(res).code, 'http.not_found');
  }
});
