// A grant revoked at the provider ends in needs_reauth after exactly one failed refresh, and the
// relay stops trying (no refresh loop) — RFC 6749 §5.2 invalid_grant means the refresh token is dead.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, connectedSetup, errorOf, metricValue, sleep } from '../lib/harness.mjs';

checkLeaksAfterAll();

const LOOKUP = {
  keap: 'crm/rest/v1/contacts?email=ada@example.com',
  jira: 'rest/api/3/user/search?query=ada@example.com',
};

for (const provider of ['keap', 'jira']) {
  test(`${provider}: a revoked grant → 409 connection.needs_reauth, needs_reauth in /api/connections, one failed refresh and no loop`, async (t) => {
    const { sandbox, browser } = await connectedSetup({ t, providers: [provider] });
    assert.equal((await browser.proxy(provider, LOOKUP[provider])).status, 200);
    await sandbox.revoke({ provider });

    const first = await browser.proxy(provider, LOOKUP[provider]);
    assert.equal(first.status, 409, `the first call after the revocation: ${first.body}`);
    assert.equal(errorOf(first).code, 'connection.needs_reauth');

    const conn = (await browser.connections())[provider];
    assert.equal(conn.needs_reauth, true, JSON.stringify(conn));
    assert.notEqual(conn.last_refresh_result, 'ok', JSON.stringify(conn));
    const s1 = await sandbox.tokenStats(provider);
    assert.equal(s1.refresh_failures, 1, `exactly one failed refresh attempt, the sandbox saw ${s1.refresh_failures}`);

    for (let i = 0; i < 5; i++) {
      const res = await browser.proxy(provider, LOOKUP[provider]);
      assert.equal(res.status, 409, res.body);
      assert.equal(errorOf(res).code, 'connection.needs_reauth');
    }
    await sleep(500);
    const s2 = await sandbox.tokenStats(provider);
    assert.equal(s2.refresh_failures, s1.refresh_failures, 'the relay kept trying to refresh a dead grant');
    assert.equal(s2.refreshes, s1.refreshes);
    const stats = await sandbox.stats();
    const apiCalls = Object.entries(stats.requests).filter(([k]) => /rest\/(v1|api)/.test(k)).reduce((n, [, v]) => n + v, 0);
    assert.ok(apiCalls <= 2 + 1, `after needs_reauth the relay should stop calling the API, the sandbox saw ${apiCalls} API calls`);

    const metrics = (await browser.get('/metrics')).body;
    assert.equal(metricValue(metrics, 'keyrelay_connections_needing_reauth'), 1, metrics);
    assert.ok(metricValue(metrics, 'keyrelay_refresh_failures_total', { provider }) >= 1, metrics);

    // Connecting again clears the state.
    const flow = await browser.connect(provider);
    assert.equal(flow.final.rawLocation, `/?connected=${provider}`, flow.trace);
    const again = (await browser.connections())[provider];
    assert.equal(again.needs_reauth, false);
    assert.equal((await browser.proxy(provider, LOOKUP[provider])).status, 200);
  });
}
