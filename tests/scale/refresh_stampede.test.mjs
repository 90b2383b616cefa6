// A refresh stampede across replicas: 300 concurrent proxied calls, 100 on each of three relays sharing one Redis,
// 100 ms after the access token expired. The relays must spend the (rotating) refresh token exactly once between them
// — one relay holds the Redis lease and refreshes, the others wait for its record — and every call must still
// answer 200 (docs/deploy.md "Two or more relays"; RFC 6749 §10.4: a rotated refresh token is single-use).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOOKUP, connectionsOf, metricSum, raiseSandboxLimits, startCluster, untilExpired } from '../lib/cluster.mjs';
import { checkLeaksAfterAll } from '../lib/harness.mjs';
import { hasRedis } from '../lib/redis.mjs';
import { connectionRecords } from '../lib/redis_records.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';
const CALLS = 300;

for (const provider of ['keap', 'jira']) {
  test(`${provider}: ${CALLS} concurrent calls over three relays at expiry cause exactly one refresh, and all ${CALLS} answer 200`, { skip }, async (t) => {
    // 9-second tokens: the relay refreshes a tenth of the lifetime early, which rounds to 0 s here, and the burst
    // must end within the new token's lifetime even on a loaded 2-core machine, or a second refresh is legitimate.
    const cluster = await startCluster({ t, accessTtl: 9 });
    await raiseSandboxLimits(cluster.sandbox);
    await cluster.connect(cluster.browser(), [provider]);
    for (const i of [0, 1, 2]) {
      const warm = await cluster.api(i, 'GET', LOOKUP[provider]);
      assert.equal(warm.status, 200, `warm-up on relay ${'ABC'[i]}: ${warm.body}`);
    }
    const versionBefore = (await connectionRecords(cluster.redis, cluster.storeKey)).records[provider]?.version;
    await untilExpired(cluster, provider, 100);
    const before = await cluster.sandbox.tokenStats(provider);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: CALLS }, (_, k) =>
      cluster.api(k % 3, 'GET', LOOKUP[provider], { timeout: 30_000 }).catch((err) => ({ status: 0, body: err.message }))));
    const took = Date.now() - started;
    const after = await cluster.sandbox.tokenStats(provider);
    const refreshes = await metricSum(cluster, 'keyrelay_refreshes_total', { provider });
    const waits = await metricSum(cluster, 'keyrelay_store_lock_waits_total');
    t.diagnostic(`${provider}: ${CALLS} calls in ${took} ms; sandbox refreshes ${before.refreshes} → ${after.refreshes}; ` +
      `keyrelay_refreshes_total per relay ${JSON.stringify(refreshes.each)}; lock waits per relay ${JSON.stringify(waits.each)}`);

    const bad = results.map((r, k) => ({ r, relay: 'ABC'[k % 3] })).filter(({ r }) => r.status !== 200);
    assert.deepEqual(bad.map(({ r, relay }) => `relay ${relay}: ${r.status} ${String(r.body).slice(0, 200)}`).slice(0, 10), [],
      `${bad.length} of ${CALLS} calls did not answer 200`);
    assert.equal(after.refreshes - before.refreshes, 1,
      `refreshes at the sandbox went from ${before.refreshes} to ${after.refreshes} in a ${took} ms burst over three relays: the refresh token was not spent exactly once`);
    assert.equal(after.refresh_failures, before.refresh_failures, 'a refresh failed at the sandbox');
    assert.equal(refreshes.total, 1, `the relays' keyrelay_refreshes_total add up to ${refreshes.total}, not the one refresh`);
    for (const [i, v] of waits.each.entries()) {
      assert.equal(typeof v, 'number', `relay ${'ABC'[i]} has no keyrelay_store_lock_waits_total in /metrics`);
    }

    const { records, errors } = await connectionRecords(cluster.redis, cluster.storeKey);
    assert.deepEqual(errors, []);
    assert.ok(records[provider], `no ${provider} connection record in Redis`);
    assert.ok(records[provider].version > versionBefore, `the stored version went from ${versionBefore} to ${records[provider].version}`);
    for (const i of [0, 1, 2]) {
      const c = (await connectionsOf(cluster, i))[provider];
      assert.equal(c.connected, true, `relay ${'ABC'[i]}: ${JSON.stringify(c)}`);
      assert.equal(c.needs_reauth, false, `relay ${'ABC'[i]}: ${JSON.stringify(c)}`);
      assert.ok(c.expires_at * 1000 > started, `relay ${'ABC'[i]} does not see the refreshed token: ${JSON.stringify(c)}`);
    }
  });
}
