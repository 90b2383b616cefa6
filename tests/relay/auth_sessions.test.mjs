// The page session and its cookie (reference/security.md "Cookies", BFF draft). Extends
// tests/relay/basics.test.mjs (flags on login, logout needs the CSRF header) and tests/relay/tls.test.mjs (__Host-
// prefix and Secure over HTTPS) with the attacks on the session id itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addSecret, checkLeaksAfterAll, client, errorOf, startRelay, startSandbox } from '../lib/harness.mjs';

checkLeaksAfterAll();

async function setup(t) {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  return { sandbox, relay };
}

test('session fixation: a session id planted by an attacker is never adopted; login issues a fresh, unguessable id', async (t) => {
  const { relay } = await setup(t);
  const planted = 'attacker-planted-session-0123456789abcdefABCDEF';
  addSecret(planted, 'session cookie (planted)');
  const victim = client(relay.url);
  const res = await victim.post('/login', { json: { username: 'demo', password: 'demo' }, headers: { Cookie: `keyrelay_session=${planted}` } });
  assert.equal(res.status, 200, res.body);
  const issued = res.setCookie.map((c) => /^keyrelay_session=([^;]*)/.exec(c)?.[1]).find(Boolean);
  assert.ok(issued, `login set no session cookie: ${JSON.stringify(res.setCookie)}`);
  addSecret(issued, 'session cookie (issued)');
  assert.notEqual(issued, planted, 'the relay adopted the planted session id');
  assert.ok(issued.length >= 32 && /^[A-Za-z0-9_-]+$/.test(issued), `session id ${issued.length} chars: too short or not opaque`);
  const attacker = await client(relay.url).get('/api/session', { headers: { Cookie: `keyrelay_session=${planted}` } });
  assert.equal(attacker.status, 401, `the planted id became a logged-in session: ${attacker.body}`);
});

test('logging in again issues a new session id: an id seen before a login (fixation, a shared machine) is never the one that login authenticates', async (t) => {
  const { relay } = await setup(t);
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const first = browser.cookie('keyrelay_session').value;
  assert.equal((await browser.login()).status, 200);
  const second = browser.cookie('keyrelay_session').value;
  addSecret(second, 'session cookie (second)');
  assert.notEqual(second, first, 'a second login kept the same session id');
});

test('the cookie that clears the session on logout keeps HttpOnly, SameSite=Strict and Path=/ (no weaker cookie on the way out)', async (t) => {
  const { relay } = await setup(t);
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const out = await browser.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(out.status, 204, out.body);
  const clear = out.setCookie.find((c) => c.startsWith('keyrelay_session='));
  assert.ok(clear, JSON.stringify(out.setCookie));
  assert.match(clear, /;\s*HttpOnly/i);
  assert.match(clear, /;\s*SameSite=Strict/i);
  assert.match(clear, /;\s*Path=\/(;|$)/i);
  assert.doesNotMatch(clear, /;\s*Domain=/i);
  assert.match(clear, /;\s*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i);
});

test('a session id is only taken from the Cookie header: not from the query string, a custom header or a Bearer token (ids in URLs leak through logs and Referer)', async (t) => {
  const { relay } = await setup(t);
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const sid = browser.cookie('keyrelay_session').value;
  const stranger = client(relay.url);
  for (const [what, p, headers] of [
    ['query keyrelay_session', `/api/session?keyrelay_session=${sid}`, {}],
    ['query session', `/api/session?session=${sid}`, {}],
    ['X-Session header', '/api/session', { 'X-Session': sid, 'X-Session-Id': sid }],
    ['Bearer', '/api/session', { Authorization: `Bearer ${sid}` }],
  ]) {
    const res = await stranger.get(p, { headers });
    assert.equal(res.status, 401, `${what}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'auth.no_session', what);
  }
  const bearer = await stranger.get('/proxy/keap/crm/rest/v1/contacts?email=ada@example.com', { headers: { Authorization: `Bearer ${sid}` } });
  assert.equal(bearer.status, 401, `a session id used as a relay API key: ${bearer.body}`);
});
