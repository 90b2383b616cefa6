// Relays sharing one Redis keep page sessions, OAuth states and the login throttle there (docs/deploy.md, "Two or
// more relays"). While Redis is unreachable nothing about a page user can be checked: login, the session, Connect,
// the callback and logout answer 503 store.unavailable at once, with a hint; never a crash, a hang, or a login let
// through uncounted. When Redis returns (AOF on) everything works again by itself, sessions included.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, errorOf, startRelay, startSandbox, waitFor } from '../lib/harness.mjs';
import { hasRedis, startRedis } from '../lib/redis.mjs';

checkLeaksAfterAll();

const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs redis-server and redis-tools)';

/** One request and how long it took. */
async function timed(promise) {
  const started = Date.now();
  const res = await promise;
  return { res, ms: Date.now() - started };
}

test('while Redis is down, login, the session, Connect, the callback and logout answer 503 store.unavailable at once; all recovers when Redis returns', { skip, timeout: 60_000 }, async (t) => {
  const sandbox = await startSandbox({ t });
  const redis = await startRedis({ t });
  const relay = await startRelay({ sandbox, env: { KEYRELAY_REDIS_URL: redis.url }, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const pending = await browser.authorize('keap');   // its state is in Redis now

  await redis.stop();
  const stranger = client(relay.url);
  const answers = {
    'POST /login': await timed(stranger.login()),
    'POST /login (wrong password)': await timed(client(relay.url).login('demo', 'not-the-password')),
    'GET /api/session': await timed(browser.get('/api/session')),
    'GET /connect/jira': await timed(browser.get('/connect/jira')),
    'POST /logout': await timed(browser.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } })),
  };
  for (const [what, { res, ms }] of Object.entries(answers)) {
    assert.equal(res.status, 503, `${what} with Redis down → ${res.status} ${res.body}`);
    const e = errorOf(res);
    assert.equal(e?.code, 'store.unavailable', `${what}: ${res.body}`);
    assert.match(e.hint, /redis-server|Redis/, `${what}: the hint says nothing about Redis: ${e.hint}`);
    assert.ok(ms < 3000, `${what} took ${ms} ms with Redis down`);
  }
  const callback = await timed(browser.get(pending.callbackUrl, { initiator: pending.authorizeUrl }));
  assert.equal(callback.res.status, 503, `the callback with Redis down → ${callback.res.status}`);
  assert.match(callback.res.body, /store\.unavailable/);
  assert.ok(callback.ms < 3000, `the callback took ${callback.ms} ms with Redis down`);

  await redis.start();
  await waitFor(async () => (await client(relay.url).login()).status === 200, { what: 'a login once Redis is back' });
  const session = await browser.get('/api/session');
  assert.equal(session.status, 200, `the session made before the outage did not survive it (AOF on): ${session.body}`);
  assert.equal((await browser.connect('keap')).final.status, 302);
});
