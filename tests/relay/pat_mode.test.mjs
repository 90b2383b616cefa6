// Keap with a Personal Access Token / Service Account Key (sent as X-Keap-API-Key, keap.md):
// connected without any OAuth flow, and lookups work.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkLeaksAfterAll, client, errorOf, startRelay, startSandbox, startTap } from '../lib/harness.mjs';

checkLeaksAfterAll();

for (const kind of ['api_key', 'pat']) {
  test(`KEAP_API_KEY=<sandbox ${kind}> → Keap connected in mode api_key with no OAuth, and a lookup finds Ada`, async (t) => {
    const sandbox = await startTap({ sandbox: await startSandbox({ t }), t });
    const key = sandbox.config.keap[kind];
    const relay = await startRelay({ sandbox, t, env: { KEAP_API_KEY: key } });
    const browser = client(relay.url);
    assert.equal((await browser.login()).status, 200);
    const keap = (await browser.connections()).keap;
    assert.equal(keap?.connected, true, JSON.stringify(keap));
    assert.equal(keap.mode, 'api_key');
    assert.equal(keap.needs_reauth, false);
    const res = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json?.contacts?.[0]?.id, 101, res.body);
    const xml = await browser.proxy('keap', 'crm/xmlrpc/v1', {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml' },
      body: '<?xml version="1.0"?><methodCall><methodName>DataService.findByField</methodName><params>' +
        '<param><value><string>key</string></value></param><param><value><string>Contact</string></value></param>' +
        '<param><value><int>10</int></value></param><param><value><int>0</int></value></param>' +
        '<param><value><string>Email</string></value></param><param><value><string>ada@example.com</string></value></param>' +
        '<param><value><array><data><value><string>Id</string></value><value><string>FirstName</string></value></data></array></value></param>' +
        '</params></methodCall>',
    });
    assert.equal(xml.status, 200, xml.body);
    assert.match(xml.body, /<methodResponse>/);
    assert.match(xml.body, /Ada/);
    const stats = await sandbox.stats();
    assert.deepEqual(await sandbox.tokenStats('keap'), { exchanges: 0, refreshes: 0, refresh_failures: 0 }, 'no OAuth at all');
    assert.ok(stats.requests['GET /keap/crm/rest/v1/contacts'] >= 1);
    const up = sandbox.seen.filter((r) => r.path.startsWith('/keap/crm/'));
    assert.equal(up.length, 2, 'one REST and one XML-RPC call upstream');
    for (const r of up) {
      assert.equal(r.headers['x-keap-api-key'], key, `${r.method} ${r.path}: the sandbox should see X-Keap-API-Key`);
      assert.equal(r.headers.authorization, undefined, `${r.method} ${r.path}: no Authorization next to the API key`);
    }
  });
}

test('a wrong KEAP_API_KEY → 502 upstream.* whose message or hint points at the API key', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t, env: { KEAP_API_KEY: 'KeapAK-this-key-does-not-exist-0000' } });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const res = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  // Keap answers a bad key with a gateway fault (401 {"fault":...}): docs/api.md wraps that as 502 upstream.<diagnosis>,
  // whose hint points the person at the key.
  assert.equal(res.status, 502, res.body);
  const e = errorOf(res);
  assert.match(e.code, /^upstream\./);
  assert.match(`${e.message} ${e.hint}`, /api.?key/i, 'the error should point at the API key');
  assert.ok(!res.body.includes('Lovelace'));
});

test('JIRA_API_TOKEN + JIRA_EMAIL → Jira connected in mode api_token (Basic email:token on the site), user search finds Ada', async (t) => {
  const sandbox = await startTap({ sandbox: await startSandbox({ t }), t });
  const cfg = sandbox.config.jira;
  const relay = await startRelay({ sandbox, t, env: { JIRA_API_TOKEN: cfg.api_token, JIRA_EMAIL: cfg.api_token_email } });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const jira = (await browser.connections()).jira;
  assert.equal(jira?.connected, true, JSON.stringify(jira));
  assert.equal(jira.mode, 'api_token');
  const res = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com');
  assert.equal(res.status, 200, res.body);
  assert.ok(res.json?.some?.((u) => u.displayName === 'Ada Lovelace'), res.body);
  const up = sandbox.seen.filter((r) => r.path.includes('/user/search'));
  assert.equal(up.length, 1);
  assert.match(up[0].path, /^\/jira\/rest\/api\/3\/user\/search\?/, 'the site path, not the 3LO /ex/jira path');
  assert.equal(up[0].headers.authorization, `Basic ${Buffer.from(`${cfg.api_token_email}:${cfg.api_token}`).toString('base64')}`);
  assert.deepEqual(await sandbox.tokenStats('jira'), { exchanges: 0, refreshes: 0, refresh_failures: 0 }, 'no OAuth at all');
});

test('JIRA_PAT → Jira connected in mode pat (Data Center, Bearer PAT on /rest/api/2), user search by username works', async (t) => {
  const sandbox = await startTap({ sandbox: await startSandbox({ t }), t });
  const cfg = sandbox.config.jira;
  const relay = await startRelay({ sandbox, t, env: { JIRA_PAT: cfg.pat } });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const jira = (await browser.connections()).jira;
  assert.equal(jira?.connected, true, JSON.stringify(jira));
  assert.equal(jira.mode, 'pat');
  const res = await browser.proxy('jira', 'rest/api/2/user/search?username=ada');
  assert.equal(res.status, 200, res.body);
  assert.ok(res.json?.some?.((u) => u.displayName === 'Ada Lovelace'), res.body);
  const up = sandbox.seen.filter((r) => r.path.includes('/user/search'));
  assert.equal(up.length, 1);
  assert.match(up[0].path, /^\/jira\/rest\/api\/2\/user\/search\?/);
  assert.equal(up[0].headers.authorization, `Bearer ${cfg.pat}`);
});
