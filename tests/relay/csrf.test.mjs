// Cross-site request forgery, the one-time OAuth `state`, open redirects and response splitting.
// Extends tests/relay/proxy_guard.test.mjs (a proxied GET/POST without X-Requested-With), tests/relay/cors.test.mjs
// (login CSRF by Origin) and tests/relay/oauth_attacks.test.mjs (state mismatch, replay, missing cookie, foreign
// session, return_to/next/redirect parameters) with the routes and spellings those do not try.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, errorOf, rawRequest } from '../lib/harness.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

const isRefusedPage = (res) => res.status >= 400 && res.status < 500 && res.location === null;

test('CSRF on disconnect: a cross-site form POST (cookie, no X-Requested-With) cannot disconnect a provider', async (t) => {
  const { browser } = await tappedSetup({ t });
  // The three content types a cross-site HTML form can send without a preflight (WHATWG Fetch, CORS-safelisted).
  for (const [type, body] of [
    ['application/x-www-form-urlencoded', 'x=1'],
    ['text/plain', 'x=1'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--x--\r\n'],
  ]) {
    const headers = { 'Content-Type': type };
    const res = await browser.post('/api/connections/keap/disconnect', { headers, body });
    assert.equal(res.status, 403, `${headers['Content-Type']}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'csrf.missing_header');
  }
  assert.equal((await browser.connections()).keap.connected, true, 'a forged request disconnected Keap');
});

test('CSRF on writes: PUT, PATCH, DELETE and POST through the proxy without X-Requested-With are refused and never forwarded', async (t) => {
  const { browser, tap } = await tappedSetup({ t });
  const before = tap.seen.length;
  for (const [method, p] of [['PUT', 'crm/rest/v1/contacts'], ['PATCH', 'crm/rest/v1/contacts/101'], ['DELETE', 'crm/rest/v1/contacts/101'], ['POST', 'crm/rest/v1/contacts'], ['POST', 'crm/xmlrpc/v1']]) {
    const res = await browser.request(method, `/proxy/keap/${p}`, { headers: { 'Content-Type': 'text/plain' }, body: '{"given_name":"Mallory"}' });
    assert.equal(res.status, 403, `${method} ${p}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'csrf.missing_header', `${method} ${p}`);
  }
  assert.deepEqual(tap.seen.slice(before).map((r) => `${r.method} ${r.path}`), [], 'a forged write reached the provider');
});

test('a foreign Origin that adds X-Requested-With itself (a non-browser forger with a stolen cookie, or a broken preflight) is still refused', async (t) => {
  const { browser, tap } = await tappedSetup({ t });
  const before = tap.seen.length;
  for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1.evil.example']) {
    const res = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com', { headers: { Origin: origin } });
    assert.equal(res.status, 403, `Origin ${origin}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'cors.origin_not_allowed', origin);
    assert.equal(res.headers.get('access-control-allow-origin'), null, `Origin ${origin} got a CORS grant`);
  }
  assert.equal(tap.seen.length, before, 'a cross-origin call reached the provider');
});

test('cross-provider state confusion: a state issued for Keap is refused on the Jira callback, and no code is exchanged', async (t) => {
  const { browser, sandbox } = await tappedSetup({ t, providers: [] });
  const keap = await browser.authorize('keap');
  await browser.authorize('jira'); // the browser also holds a genuine Jira state cookie
  const forged = new URL(keap.callbackUrl.replace('/callback/keap', '/callback/jira'));
  const res = await browser.get(forged.href);
  assert.ok(isRefusedPage(res), `a Keap state on the Jira callback: ${res.status} ${res.rawLocation ?? ''} ${res.body.slice(0, 200)}`);
  assert.match(res.body, /oauth\.state_(mismatch|unknown)/);
  assert.equal((await sandbox.tokenStats('jira')).exchanges, 0);
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
  // The genuine Keap callback still works: the attempt did not burn it.
  const ok = await browser.get(keap.callbackUrl);
  assert.equal(ok.rawLocation, '/?connected=keap', `${ok.status} ${ok.body.slice(0, 200)}`);
});

test('state works once: a state consumed by a denied consent cannot be reused with a code afterwards', async (t) => {
  const { browser, sandbox } = await tappedSetup({ t, providers: [], sandboxOptions: { autoApprove: false } });
  const denied = await browser.connect('keap', { decision: 'deny' });
  assert.equal(denied.final.rawLocation, '/?connect_failed=keap&code=oauth.access_denied', denied.trace);
  const good = await browser.authorize('keap'); // a real code, for another state
  const replay = new URL(good.callbackUrl);
  replay.searchParams.set('state', denied.state);
  const res = await browser.get(replay.href);
  assert.ok(isRefusedPage(res), `a used state was accepted: ${res.status} ${res.rawLocation ?? ''}`);
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 0);
});

test('state works once across a restart: a completed callback replayed after the relay restarts is refused', async (t) => {
  const { browser, relay, sandbox } = await tappedSetup({ t, providers: [] });
  const flow = await browser.connect('keap');
  assert.equal(flow.final.rawLocation, '/?connected=keap', flow.trace);
  const cookies = flow.steps[0].setCookie.map((c) => c.split(';')[0]);
  await relay.restart();
  const res = await client(relay.url).get(flow.callbackUrl, {
    headers: { Cookie: [...cookies, `keyrelay_session=${browser.cookie('keyrelay_session').value}`].join('; ') },
  });
  assert.ok(isRefusedPage(res), `a replayed callback after a restart: ${res.status} ${res.rawLocation ?? ''} ${res.body.slice(0, 200)}`);
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 1, 'the replay exchanged the code again');
});

test('path-based open redirects (//evil.example, /\\evil.example, /%2F%2Fevil.example, /%5Cevil.example) never produce an off-site Location', async (t) => {
  const { relay, page } = await tappedSetup({ t });
  for (const target of ['//evil.example', '//evil.example/', '/\\evil.example', '/%2F%2Fevil.example', '/%5C%5Cevil.example',
    '/%2F%2Fevil.example%2F..', '/.//evil.example', '///evil.example/%2e%2e', '/connect/keap/..//evil.example', '/callback//evil.example']) {
    const res = await rawRequest(relay.url, target, { headers: page });
    const loc = res.headers.location;
    if (loc !== undefined) {
      assert.equal(new URL(loc, relay.url).origin, new URL(relay.url).origin, `${target} → Location ${loc}`);
      assert.ok(!/^\s*[/\\]{2}/.test(loc), `${target} → scheme-relative Location ${loc}`);
    }
    assert.ok(res.status !== 0 && res.status < 500, `${target}: ${res.statusLine}`);
  }
});

test('response splitting: CR/LF in /connect and /callback query values never adds a header or a cookie', async (t) => {
  const { relay, page } = await tappedSetup({ t, providers: [] });
  const inj = '%0d%0aSet-Cookie:%20pwned=1%0d%0aX-Injected:%20yes';
  for (const target of [`/connect/keap?return_to=x${inj}`, `/connect/keap?next=${inj}&state=${inj}`,
    `/callback/keap?code=x${inj}&state=y${inj}`, `/callback/keap?error=access_denied${inj}&error_description=z${inj}&state=s`]) {
    const res = await rawRequest(relay.url, target, { headers: page });
    assert.ok(res.status > 0, target);
    assert.equal(res.headers['x-injected'], undefined, `${target} injected a header`);
    assert.ok(!(res.headers['set-cookie'] ?? '').includes('pwned'), `${target} injected a cookie`);
    assert.ok(!/\r\n(Set-Cookie: pwned|X-Injected)/i.test(res.raw.split('\r\n\r\n')[0]), `${target}: injected line in the head`);
  }
});
