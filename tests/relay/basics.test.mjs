// The relay's plain surface (docs/api.md): health, metrics, the one error shape, page sessions and their cookie.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DEMO_PASSWORD, DEMO_USER, addSecret, client, connectedSetup, errorOf, metricValue, startRelay, startSandbox,
} from '../lib/harness.mjs';

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
  const { relay, browser } = await connectedSetup({ t, providers: ['keap'] });
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
