// The cross-relay refresh lease survives a stalled holder. Relay A starts a refresh and is frozen (SIGSTOP) while the
// provider is still answering, for longer than the lease (refresh_lease_ms). Relay B then refreshes on its own, and
// A is thawed (SIGCONT) holding the provider's answer to a refresh token that B has already spent. Every write is a
// compare-and-set on the record's version, so A cannot overwrite B's newer record; and A, told invalid_grant, reads
// the store again before declaring the connection dead. The version read from Redis only ever grows, and the
// connection stays usable on every relay. (A lease with a fixed TTL, neither renewed nor fenced, fails exactly here:
// https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html "Protecting a resource with a lock".)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LOOKUP, connectionsOf, startCluster, untilExpired } from '../lib/cluster.mjs';
import { checkLeaksAfterAll, sleep, waitFor } from '../lib/harness.mjs';
import { hasRedis } from '../lib/redis.mjs';
import { connectionRecords } from '../lib/redis_records.mjs';

checkLeaksAfterAll();
const skip = !hasRedis() && 'redis-server is not installed (scripts/setup installs it)';
const LEASE_MS = 1000;

/** Samples the stored version of `id` every 25 ms until stop() is called; resolves the list of samples. */
function sampleVersions(cluster, id) {
  const seen = [];
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        const { records, errors } = await connectionRecords(cluster.redis, cluster.storeKey);
        if (errors.length) seen.push({ at: Date.now(), error: errors.join('; ') });
        else if (records[id]) seen.push({ at: Date.now(), version: records[id].version });
      } catch (err) {
        seen.push({ at: Date.now(), error: err.message });
      }
      await sleep(25);
    }
    return seen;
  })();
  return { stop: () => { running = false; return done; } };
}

test('keap: relay A frozen mid-refresh past its lease, relay B refreshes, A thawed: the stored version only grows and the connection is usable everywhere', { skip }, async (t) => {
  const cluster = await startCluster({ t, accessTtl: 9, leaseMs: LEASE_MS });
  const [a] = cluster.relays;
  t.after(() => { try { a.child.kill('SIGCONT'); } catch { /* gone */ } });
  await cluster.connect(cluster.browser(), ['keap']);
  const warm = await cluster.api(0, 'GET', LOOKUP.keap);
  assert.equal(warm.status, 200, warm.body);

  const sampler = sampleVersions(cluster, 'keap');
  await untilExpired(cluster, 'keap', 100);
  // The provider holds relay A's refresh for 4 s (answered afterwards, by which time B has spent the same token).
  await cluster.sandbox.fail({ path: '/keap/token', count: 1, mode: 'slow', delay_ms: 4000 });
  const tokenPosts = async () => (await cluster.sandbox.stats()).requests['POST /keap/token'] ?? 0;
  const postsBefore = await tokenPosts();
  const onA = cluster.api(0, 'GET', LOOKUP.keap, { timeout: 30_000 }).catch((err) => ({ status: 0, body: err.message }));
  await waitFor(async () => (await tokenPosts()) > postsBefore, { what: "relay A's refresh reaching the sandbox", interval: 20 });
  a.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  await sleep(LEASE_MS * 2 + 200);

  const onB = await cluster.api(1, 'GET', LOOKUP.keap, { timeout: 20_000 });
  assert.equal(onB.status, 200, `relay B could not take over the refresh while A was frozen past its lease: ${onB.body}\n${cluster.logs(1).slice(-2000)}`);
  const afterB = await cluster.sandbox.tokenStats('keap');
  t.diagnostic(`relay B answered ${Date.now() - frozenAt} ms after A froze; sandbox refreshes: ${afterB.refreshes}`);

  a.child.kill('SIGCONT');
  const resultA = await onA;
  t.diagnostic(`relay A's frozen call answered ${resultA.status}: ${String(resultA.body).slice(0, 200)}`);
  // The provider told A invalid_grant (B had spent the token): A must read the store again and use B's tokens.
  assert.equal(resultA.status, 200, `relay A's call after SIGCONT: ${resultA.status} ${resultA.body}\n${cluster.logs(0).slice(-2000)}`);

  await sleep(300);
  for (const i of [0, 1, 2]) {
    const res = await cluster.api(i, 'GET', LOOKUP.keap);
    assert.equal(res.status, 200, `relay ${'ABC'[i]} after the stall: ${res.body}\n${cluster.logs(i).slice(-2000)}`);
    const c = (await connectionsOf(cluster, i)).keap;
    assert.equal(c.needs_reauth, false, `relay ${'ABC'[i]}: ${JSON.stringify(c)}`);
  }
  const samples = await sampler.stop();
  const errors = samples.filter((s) => s.error);
  assert.deepEqual(errors, [], 'the stored record could not be read or opened at some point');
  const versions = samples.map((s) => s.version);
  const drops = versions.filter((v, k) => k > 0 && v < versions[k - 1]);
  t.diagnostic(`stored versions seen: ${[...new Set(versions)].join(' → ')}`);
  assert.deepEqual(drops, [], `the stored version went down: ${versions.join(',')}`);
  assert.ok(versions.at(-1) > versions[0], `the stored version never moved: ${versions[0]} → ${versions.at(-1)}`);
});
