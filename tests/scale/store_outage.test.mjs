// The relays when their Redis goes away and comes back. A restart of Redis with the append-only file on loses nothing
// (https://redis.io/docs/management/persistence/): connections, sessions and everything else come back byte for
// byte. While Redis is down (stopped, or frozen and accepting connections it never answers) a proxied call is served
// from a token the relay still holds in memory, or answers 503 store.unavailable with a hint at once, never hangs;
// /healthz says degraded with a reason; and all of it recovers by itself when Redis returns (docs/api.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOOKUP, connectionsOf, metricSum, startCluster } from '../lib/cluster.mjs';
import { checkLeaksAfterAll, errorOf, sleep, waitFor } from '../lib/harness.mjs';
import { hasRedis } from '../lib/redis.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';
const CONNECT_TIMEOUT_MS = 500;   // redis_connect_timeout_ms of tests/lib/cluster.mjs
const COMMAND_TIMEOUT_MS = 1000;  // redis_command_timeout_ms
const SLACK_MS = 1500;            // a loaded 2-core machine

/**
 * Every key under keyrelay:* with its type and contents (a hash's fields sorted: DUMP's bytes are not canonical, a
 * reload may encode the same hash in another order) and whether it has a TTL. A lease or lock key, which lives for a
 * second, is left out.
 */
async function snapshot(redis) {
  const out = {};
  for (const key of await redis.keys('keyrelay:*')) {
    if (/lease|lock/i.test(key)) continue;
    const type = await redis.command('TYPE', key);
    let value;
    if (type === 'hash') {
      const flat = await redis.command('HGETALL', key);
      const pairs = [];
      for (let i = 0; i + 1 < flat.length; i += 2) pairs.push(`${flat[i]}=${flat[i + 1].toString('base64')}`);
      value = pairs.sort();
    } else if (type === 'string') {
      value = (await redis.command('GET', key)).toString('base64');
    } else {
      value = (await redis.command('DUMP', key)).toString('base64');
    }
    out[key] = { type, value, expires: (await redis.command('PTTL', key)) >= 0 };
  }
  return out;
}

async function healthOf(cluster, i) {
  const res = await cluster.api(i, 'GET', '/healthz', { timeout: 5000 });
  return { status: res.status, json: res.json, body: res.body };
}

test('Redis killed and restarted with AOF on: every key comes back as it was, and the relays carry on by themselves', { skip }, async (t) => {
  const cluster = await startCluster({ t });
  const browser = cluster.browser();
  await cluster.connect(browser, ['keap', 'jira']);
  for (const i of [0, 1, 2]) assert.equal((await cluster.api(i, 'GET', LOOKUP.keap)).status, 200);
  for (const i of [0, 1, 2]) assert.equal((await healthOf(cluster, i)).json?.store, 'redis', `relay ${'ABC'[i]} /healthz`);
  const before = await snapshot(cluster.redis);
  assert.ok(Object.keys(before).length >= 3, `too few keys to prove anything: ${Object.keys(before)}`);

  await cluster.redis.stop('SIGKILL');
  await cluster.redis.start();
  const after = await snapshot(cluster.redis);
  assert.deepEqual(Object.keys(after), Object.keys(before), 'keys lost or added by a restart of Redis');
  assert.deepEqual(after, before, 'values changed by a restart of Redis');

  for (const i of [0, 1, 2]) {
    await waitFor(async () => (await cluster.api(i, 'GET', LOOKUP.jira)).status === 200, { what: `relay ${'ABC'[i]} serving Jira after the restart of Redis`, timeout: 15_000 });
    const session = await cluster.direct(i, browser).get('/api/session');
    assert.equal(session.status, 200, `relay ${'ABC'[i]}: the session did not survive the restart of Redis: ${session.body}`);
    const c = await connectionsOf(cluster, i);
    assert.equal(c.keap.connected && c.jira.connected, true, JSON.stringify(c));
  }
});

test('Redis stopped for 10 s: calls are served from memory or answer 503 store.unavailable at once; /healthz is degraded; all recovers by itself', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({ t, accessTtl: 5 });
  await cluster.connect(cluster.browser(), ['keap']);
  for (const i of [0, 1, 2]) assert.equal((await cluster.api(i, 'GET', LOOKUP.keap)).status, 200);
  const { expires_at: expiresAt } = (await connectionsOf(cluster, 0)).keap;

  await cluster.redis.stop();
  const stoppedAt = Date.now();
  const seen = [];
  while (Date.now() - stoppedAt < 10_000) {
    for (const i of [0, 1, 2]) {
      const started = Date.now();
      const res = await cluster.api(i, 'GET', LOOKUP.keap, { timeout: 20_000 }).catch((err) => ({ status: 0, body: err.message }));
      const ms = Date.now() - started;
      const fresh = expiresAt * 1000 - started > 1000;
      seen.push({ relay: 'ABC'[i], at: started - stoppedAt, ms, status: res.status, code: res.json?.error?.code, fresh });
      assert.ok(ms < CONNECT_TIMEOUT_MS + SLACK_MS, `relay ${'ABC'[i]} took ${ms} ms to answer with Redis down (connect timeout ${CONNECT_TIMEOUT_MS} ms)`);
      if (res.status !== 200) {
        assert.equal(res.status, 503, `relay ${'ABC'[i]} with Redis down: ${res.status} ${res.body}`);
        const e = errorOf(res);
        assert.equal(e.code, 'store.unavailable');
      } else {
        assert.ok(Date.now() < expiresAt * 1000 + 1000, `relay ${'ABC'[i]} answered 200 with an access token that expired ${Date.now() - expiresAt * 1000} ms ago and Redis down`);
      }
      if (fresh) assert.equal(res.status, 200, `relay ${'ABC'[i]} holds an unexpired token in memory but answered ${res.status} ${res.body}`);
    }
    await sleep(400);
  }
  const health = await healthOf(cluster, 1);
  assert.equal(health.status, 200, health.body);
  assert.equal(health.json?.status, 'degraded', health.body);
  assert.equal(health.json?.store, 'redis', health.body);
  assert.ok(typeof health.json?.reason === 'string' && health.json.reason.length > 5, `no reason in ${health.body}`);
  t.diagnostic(`with Redis down: ${seen.filter((s) => s.status === 200).length} calls served from memory, ` +
    `${seen.filter((s) => s.status === 503).length} answered 503, slowest ${Math.max(...seen.map((s) => s.ms))} ms; /healthz: ${health.body}`);
  assert.ok(seen.some((s) => s.status === 503), 'no call answered 503 although every token expired during the outage');

  await cluster.redis.start();
  const backAt = Date.now();
  for (const i of [0, 1, 2]) {
    await waitFor(async () => (await healthOf(cluster, i)).json?.status === 'ok', { what: `relay ${'ABC'[i]} /healthz ok after Redis returned`, timeout: 15_000 });
    await waitFor(async () => (await cluster.api(i, 'GET', LOOKUP.keap)).status === 200, { what: `relay ${'ABC'[i]} serving Keap after Redis returned`, timeout: 15_000 });
  }
  t.diagnostic(`all three relays healthy and serving ${Date.now() - backAt} ms after Redis returned`);
  const errorsCounted = await metricSum(cluster, 'keyrelay_store_errors_total');
  assert.ok(errorsCounted.total > 0, `keyrelay_store_errors_total per relay: ${JSON.stringify(errorsCounted.each)}`);
});

test('Redis frozen (SIGSTOP: connections accepted, never answered): calls answer within the command timeout, then recover', { skip, timeout: 60_000 }, async (t) => {
  const cluster = await startCluster({ t, accessTtl: 2 });
  t.after(() => { try { cluster.redis.resume(); } catch { /* gone */ } });
  await cluster.connect(cluster.browser(), ['keap']);
  assert.equal((await cluster.api(0, 'GET', LOOKUP.keap)).status, 200);
  cluster.redis.pause();
  const frozenAt = Date.now();
  await sleep(2500);   // every access token in memory has expired now
  const results = await Promise.all([0, 1, 2].map(async (i) => {
    const started = Date.now();
    const res = await cluster.api(i, 'GET', LOOKUP.keap, { timeout: 20_000 }).catch((err) => ({ status: 0, body: err.message }));
    return { i, ms: Date.now() - started, res };
  }));
  cluster.redis.resume();
  for (const { i, ms, res } of results) {
    t.diagnostic(`relay ${'ABC'[i]} with Redis frozen ${Date.now() - frozenAt} ms: ${res.status} ${res.json?.error?.code ?? ''} in ${ms} ms`);
  }
  for (const { i, ms, res } of results) {
    assert.equal(res.status, 503, `relay ${'ABC'[i]}: ${res.status} ${res.body}`);
    assert.equal(errorOf(res).code, 'store.unavailable');
    assert.ok(ms < CONNECT_TIMEOUT_MS + COMMAND_TIMEOUT_MS + SLACK_MS, `relay ${'ABC'[i]} took ${ms} ms with Redis frozen`);
  }
  for (const i of [0, 1, 2]) {
    await waitFor(async () => (await cluster.api(i, 'GET', LOOKUP.keap)).status === 200, { what: `relay ${'ABC'[i]} serving after Redis thawed`, timeout: 15_000 });
  }
});
