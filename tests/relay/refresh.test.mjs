// Access tokens that expire every 2 seconds (sandbox --access-ttl 2) go unnoticed by the
// caller, and a burst of concurrent calls at expiry causes exactly one refresh (single flight per connection).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, connectedSetup, metricValue, sleep } from '../lib/harness.mjs';

checkLeaksAfterAll();

const LOOKUP = {
  keap: 'crm/rest/v1/contacts?email=ada@example.com',
  jira: 'rest/api/3/user/search?query=ada@example.com',
};

/** Sleeps until `ms` after the connection's access token expired (per /api/connections expires_at). */
async function untilExpired(browser, provider, ms = 300) {
  const conn = (await browser.connections())[provider];
  assert.equal(typeof conn?.expires_at, 'number', JSON.stringify(conn));
  const wait = conn.expires_at * 1000 - Date.now() + ms;
  assert.ok(wait < 7000, `expires_at ${conn.expires_at} is more than 7 s away although the sandbox issues short tokens`);
  if (wait > 0) await sleep(wait);
}

test('calls across several 2-second access-token lifetimes all answer 200, and the sandbox saw the refreshes', async (t) => {
  const { sandbox, browser } = await connectedSetup({ t, providers: ['keap', 'jira'], sandboxOptions: { accessTtl: 2 } });
  const started = Date.now();
  const statuses = [];
  while (Date.now() - started < 5500) {
    for (const provider of ['keap', 'jira']) {
      const res = await browser.proxy(provider, LOOKUP[provider]);
      statuses.push(`${provider} ${res.status}`);
      assert.equal(res.status, 200, `${provider} after ${Date.now() - started} ms: ${res.body}`);
    }
    await sleep(250);
  }
  const metrics = (await browser.get('/metrics')).body;
  const conns = await browser.connections();
  for (const provider of ['keap', 'jira']) {
    const s = await sandbox.tokenStats(provider);
    t.diagnostic(`${provider}: ${statuses.length / 2} calls over 5.5 s, ${s.refreshes} refreshes at the sandbox`);
    assert.ok(s.refreshes >= 2, `${provider}: 5.5 s of 2 s tokens need at least 2 refreshes, the sandbox saw ${s.refreshes}`);
    assert.ok(s.refreshes <= 8, `${provider}: ${s.refreshes} refreshes for ~${statuses.length / 2} calls: refreshing far too often`);
    assert.equal(s.refresh_failures, 0, `${provider}: refresh failures`);
    assert.equal(s.exchanges, 1);
    assert.equal(metricValue(metrics, 'keyrelay_refreshes_total', { provider }), s.refreshes,
      `${provider}: keyrelay_refreshes_total should equal the sandbox's count`);
    const c = conns[provider];
    assert.equal(c.connected, true);
    assert.equal(c.last_refresh_result, 'ok', JSON.stringify(c));
    assert.ok(c.last_refresh_at >= Math.floor(started / 1000), JSON.stringify(c));
    assert.ok(c.expires_at >= c.last_refresh_at, JSON.stringify(c));
  }
});

for (const provider of ['keap', 'jira']) {
  test(`${provider}: 50 concurrent proxied calls at expiry cause exactly one refresh, and all 50 succeed`, async (t) => {
    // 5-second tokens: the burst must finish within the NEW token's lifetime (times are whole seconds), even on a
    // loaded 2-core machine, or a second refresh would be legitimate.
    const { sandbox, browser } = await connectedSetup({ t, providers: [provider], sandboxOptions: { accessTtl: 5 } });
    const warm = await browser.proxy(provider, LOOKUP[provider]);
    assert.equal(warm.status, 200, warm.body);
    await untilExpired(browser, provider);
    const before = await sandbox.tokenStats(provider);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 50 }, () => browser.proxy(provider, LOOKUP[provider], { timeout: 20_000 })));
    const took = Date.now() - started;
    const after = await sandbox.tokenStats(provider);
    t.diagnostic(`${provider}: 50 concurrent calls took ${took} ms; refreshes ${before.refreshes} → ${after.refreshes}`);
    const bad = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 200)}`);
    assert.deepEqual(bad, [], `${bad.length} of 50 calls failed`);
    assert.equal(after.refreshes - before.refreshes, 1,
      `refreshes at the sandbox went from ${before.refreshes} to ${after.refreshes} during a ${took} ms burst: not a single flight`);
    assert.equal(after.refresh_failures, 0);
  });
}
