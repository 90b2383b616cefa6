// The callback refuses a state that does not match, a replayed callback and a missing state
// cookie (RFC 6749 §10.12, RFC 9700 §4.7), and nothing ever redirects off-site (RFC 9700 §4.11, open redirectors).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, startRelay, startSandbox } from '../lib/harness.mjs';

checkLeaksAfterAll();

async function setup(t) {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  return { sandbox, relay, browser };
}

/** A refused callback: a 4xx HTML page that says so and links back — not a redirect, not a 500 (docs/api.md). */
function assertRefusedPage(res, what, code) {
  if (code) assert.ok(res.body.includes(code), `${what}: the page should carry the error code ${code}: ${res.body.slice(0, 500)}`);
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected a 4xx page, got ${res.status} ${res.rawLocation ?? ''} ${res.body.slice(0, 300)}`);
  assert.equal(res.location, null, `${what}: a refusal must not redirect`);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/, what);
  assert.match(res.body, /<a\s[^>]*href=/i, `${what}: the page links back`);
}

/** No redirect leaves the relay's origin (a Location, if any, resolves to the relay's own origin). */
function assertOnSite(res, relay, what) {
  if (res.location === null) return;
  assert.equal(new URL(res.location).origin, new URL(relay.url).origin, `${what}: redirects off-site to ${res.rawLocation}`);
  assert.ok(!/^\s*[/\\]{2}/.test(res.rawLocation) && !/^\s*\/\\/.test(res.rawLocation), `${what}: scheme-relative Location ${res.rawLocation}`);
}

const EVIL = ['https://evil.example', '//evil.example', '/\\evil.example', 'https:evil.example', '%2F%2Fevil.example', 'javascript:alert(1)'];

test('a callback whose state does not match the browser\'s state is refused, and no code is exchanged', async (t) => {
  const { sandbox, browser } = await setup(t);
  const a = await browser.authorize('keap');
  const u = new URL(a.callbackUrl);
  u.searchParams.set('state', a.state.slice(0, -2) + (a.state.endsWith('AA') ? 'BB' : 'AA'));
  assertRefusedPage(await browser.get(u.href), 'state mismatch', 'oauth.state_mismatch');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0, 'the code was exchanged despite the bad state');
  assert.notEqual((await browser.connections()).keap?.connected, true);
});

test('replaying a callback (same code and state twice) is refused and does not exchange again', async (t) => {
  const { sandbox, browser } = await setup(t);
  const flow = await browser.connect('keap');
  assert.equal(flow.final.rawLocation, '/?connected=keap', flow.trace);
  const replay = await browser.get(flow.callbackUrl, { headers: { Cookie: flow.steps[0].setCookie.map((c) => c.split(';')[0]).concat(`keyrelay_session=${browser.cookie('keyrelay_session').value}`).join('; ') } });
  assertRefusedPage(replay, 'replayed callback', 'oauth.state_unknown');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 1, 'the relay exchanged the code a second time');
  assert.equal((await browser.connections()).keap.connected, true, 'a refused replay must not break the connection');
});

test('a callback without the state cookie is refused (a link sent by someone else), and no code is exchanged', async (t) => {
  const { sandbox, browser, relay } = await setup(t);
  const a = await browser.authorize('keap');
  const stateCookie = browser.jar.get(new URL(relay.url).origin);
  assert.ok(stateCookie.delete('keyrelay_oauth_keap'), 'the relay set no keyrelay_oauth_keap cookie');
  assertRefusedPage(await browser.get(a.callbackUrl), 'missing state cookie', 'oauth.state_mismatch');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
});

test('another logged-in browser cannot complete someone else\'s authorization (its own state cookie does not match)', async (t) => {
  const { sandbox, relay, browser } = await setup(t);
  const victimFlow = await browser.authorize('keap');
  const attacker = client(relay.url);
  assert.equal((await attacker.login()).status, 200);
  await attacker.authorize('keap'); // the attacker has its own, different, state cookie
  assertRefusedPage(await attacker.get(victimFlow.callbackUrl), 'foreign state', 'oauth.state_mismatch');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
});

test('GET /connect without a session does not start an authorization', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const relay = await startRelay({ sandbox, t });
  const res = await client(relay.url).get('/connect/keap');
  assertOnSite(res, relay, 'GET /connect/keap without a session');
  assert.equal(res.status, 401, `${res.status} ${res.body}`);
  assert.ok(res.body.includes('auth.no_session'), res.body);
  assert.equal(res.setCookie.some((c) => c.startsWith('keyrelay_oauth_')), false, 'a state cookie was set without a session');
});

test('an unknown provider (also a wrongly cased one) on any {provider} route is 404 provider.unknown, not a redirect', async (t) => {
  const { relay, browser } = await setup(t);
  // docs/api.md: "An unknown provider on any {provider} route → 404 provider.unknown" (names are case-sensitive).
  for (const [method, p] of [['GET', '/connect/evil'], ['GET', '/callback/evil?code=x&state=y'], ['GET', '/proxy/evil/x'],
    ['POST', '/api/connections/evil/disconnect'], ['GET', '/connect/KEAP'], ['GET', '/proxy/Keap/crm/rest/v1/contacts']]) {
    const res = await browser.request(method, p, { headers: { 'X-Requested-With': 'keyrelay' } });
    assert.equal(res.status, 404, `${p}: ${res.status} ${res.body}`);
    assert.ok(res.body.includes('provider.unknown'), `${p}: ${res.body}`);
    assertOnSite(res, relay, p);
  }
});

test('open-redirect attempts on /connect, /callback and /login never send the browser off-site', async (t) => {
  const { sandbox, relay, browser } = await setup(t);
  for (const evil of EVIL) {
    const enc = encodeURIComponent(evil);
    // /connect?return_to=... : the first hop goes to the provider, the last hop back to the relay's own page.
    const a = await browser.authorize('keap', { query: `?return_to=${enc}&redirect=${enc}&next=${enc}` });
    assert.equal(new URL(a.authorizeUrl).origin, sandbox.url, `GET /connect with return_to=${evil} → ${a.authorizeUrl}`);
    assert.equal(new URL(a.authorizeUrl).searchParams.get('redirect_uri'), `${relay.url}/callback/keap`);
    const cb = new URL(a.callbackUrl);
    for (const k of ['redirect', 'redirect_uri', 'return_to', 'next']) cb.searchParams.set(k, evil);
    const fin = await browser.get(cb.href);
    assertOnSite(fin, relay, `callback with redirect=${evil}`);
    assert.equal(fin.status, 302, fin.body);
    for (const p of [`/login?next=${enc}`, `/login?return_to=${enc}&redirect=${enc}`]) {
      const post = await browser.post(p, { json: { username: 'demo', password: 'demo' } });
      assertOnSite(post, relay, `POST ${p}`);
      assert.equal(post.status, 200, `POST ${p}: ${post.body}`);
      assertOnSite(await browser.get(p), relay, `GET ${p}`);
    }
    assertOnSite(await browser.post(`/logout?next=${enc}`, { headers: { 'X-Requested-With': 'keyrelay' } }), relay, 'logout');
    assert.equal((await browser.login()).status, 200);
  }
});

test('the error callback with a foreign redirect still returns to the relay\'s own page', async (t) => {
  const { relay, browser } = await setup(t);
  const a = await browser.authorize('keap');
  const res = await browser.get(`/callback/keap?error=access_denied&state=${encodeURIComponent(a.state)}&redirect_uri=${encodeURIComponent('https://evil.example')}`);
  assertOnSite(res, relay, 'denied callback');
  assert.equal(res.rawLocation, '/?connect_failed=keap&code=oauth.access_denied');
});

test('an error callback that is not this browser\'s flow gets a refused page, not the page\'s notice', async (t) => {
  const { relay, browser } = await setup(t);
  const a = await browser.authorize('keap');
  const other = client(relay.url);
  assert.equal((await other.login()).status, 200);
  const res = await other.get(`/callback/keap?error=access_denied&state=${encodeURIComponent(a.state)}`);
  assertRefusedPage(res, 'foreign denied callback', 'oauth.access_denied');
  // The foreign denial did not consume this browser's authorization.
  const ok = await browser.get(a.callbackUrl, { initiator: a.steps[a.steps.length - 1].url });
  assert.equal(ok.rawLocation, '/?connected=keap', `${ok.status} ${ok.body.slice(0, 300)}`);
});

test('a callback after the session ended → 401 page auth.no_session, and no code is exchanged', async (t) => {
  const { sandbox, browser } = await setup(t);
  const a = await browser.authorize('keap');
  assert.equal((await browser.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } })).status, 204);
  const res = await browser.get(a.callbackUrl);
  assert.equal(res.status, 401, `${res.status} ${res.body.slice(0, 300)}`);
  assertRefusedPage(res, 'callback without session', 'auth.no_session');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
});

test('a callback with a valid state but no code → 400 page oauth.missing_code', async (t) => {
  const { sandbox, browser } = await setup(t);
  const a = await browser.authorize('keap');
  const u = new URL(a.callbackUrl);
  u.searchParams.delete('code');
  const res = await browser.get(u.href);
  assert.equal(res.status, 400, res.body.slice(0, 300));
  assertRefusedPage(res, 'missing code', 'oauth.missing_code');
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
});

test('a code that expired at the provider (10 minutes) → 400 page oauth.invalid_grant, not connected', async (t) => {
  const { sandbox, browser } = await setup(t);
  const a = await browser.authorize('keap');
  await sandbox.clock(11 * 60);
  const res = await browser.get(a.callbackUrl);
  assert.equal(res.status, 400, `${res.status} ${res.body.slice(0, 300)}`);
  assertRefusedPage(res, 'expired code', 'oauth.invalid_grant');
  assert.notEqual((await browser.connections()).keap?.connected, true);
});

test('a token endpoint answering an HTML 502 during the exchange → 502 page with an oauth.*/upstream.* code, never a 500', async (t) => {
  const { sandbox, browser } = await setup(t);
  const a = await browser.authorize('jira');
  await sandbox.fail({ path: '/jira/oauth/token', count: 5, mode: 'html_502' });
  const res = await browser.get(a.callbackUrl);
  assert.equal(res.status, 502, `${res.status} ${res.body.slice(0, 300)}`);
  assert.equal(res.location, null);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  // docs/api.md: the token endpoint's oauth.* codes (other than invalid_grant) and upstream.* are 502 pages.
  assert.match(res.body, /\b(oauth|upstream)\.[a-z_]+/, 'the page carries the error code');
  assert.ok(!res.body.includes('oauth.invalid_grant'));
  assert.notEqual((await browser.connections()).jira?.connected, true);
});
