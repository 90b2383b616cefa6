// The whole authorization-code flow through a real HTTP client, for Keap and for Jira, with the
// consent page clicked like a person does (Allow, and Deny).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { apiCall, checkLeaksAfterAll, client, errorOf, startRelay, startSandbox } from '../lib/harness.mjs';

checkLeaksAfterAll();

async function setup(t) {
  const sandbox = await startSandbox({ t }); // no --auto-approve: the consent page is really submitted
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const login = await browser.login();
  assert.equal(login.status, 200, login.body);
  return { sandbox, relay, browser };
}

function checkAuthorizeRedirect(flow, { sandbox, relay, provider }) {
  const cfg = sandbox.config[provider];
  const u = new URL(flow.authorizeUrl);
  assert.equal(`${u.origin}${u.pathname}`, cfg.authorize_url, 'the relay redirects to the provider authorize URL');
  const q = u.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), cfg.client_id);
  assert.equal(q.get('redirect_uri'), `${relay.url}/callback/${provider}`);
  assert.ok((q.get('state') ?? '').length >= 16, `state should be unguessable, got ${q.get('state')}`);
  // The one-time state is bound to this browser by a short-lived HttpOnly cookie, SameSite=Lax (docs/api.md).
  const start = flow.steps[0];
  const stateCookie = start.setCookie.map((c) => c.toLowerCase()).find((c) => c.startsWith(`keyrelay_oauth_${provider}=`));
  assert.ok(stateCookie, `no keyrelay_oauth_${provider} cookie on GET /connect/${provider}: ${JSON.stringify(start.setCookie)}`);
  assert.match(stateCookie, /;\s*httponly/);
  assert.match(stateCookie, /;\s*samesite=lax/);
  assert.match(stateCookie, /;\s*(max-age=\d+|expires=)/, 'the state cookie should be short-lived');
  if (provider === 'jira') {
    assert.equal(q.get('audience'), 'api.atlassian.com');
    assert.match(q.get('scope') ?? '', /\boffline_access\b/, 'Jira needs offline_access for a refresh token');
    assert.match(q.get('scope') ?? '', /\bread:jira-user\b/);
  }
}

test('Keap: login, connect, click Allow, callback → connected as ab123.infusionsoft.com, contact lookup finds Ada', async (t) => {
  const { sandbox, relay, browser } = await setup(t);
  const flow = await browser.connect('keap');
  checkAuthorizeRedirect(flow, { sandbox, relay, provider: 'keap' });
  assert.equal(flow.steps[1].status, 200, 'without --auto-approve the sandbox shows its consent page');
  assert.equal(flow.final.status, 302, flow.trace);
  assert.equal(flow.final.rawLocation, '/?connected=keap', flow.trace);

  const keap = (await browser.connections()).keap;
  assert.ok(keap, 'keap is listed in /api/connections');
  assert.equal(keap.connected, true);
  assert.equal(keap.mode, 'oauth');
  assert.equal(keap.account, sandbox.config.keap.account);
  assert.equal(keap.account, 'ab123.infusionsoft.com');
  assert.equal(keap.needs_reauth, false);
  assert.equal(typeof keap.expires_at, 'number');
  // expires_at is unix seconds: now + the token's expires_in (the sandbox's Keap default, 86400 s).
  assert.ok(Math.abs(keap.expires_at - (Date.now() / 1000 + sandbox.config.keap.access_ttl)) < 30,
    `expires_at ${keap.expires_at} is not now + ${sandbox.config.keap.access_ttl} s`);
  assert.equal((await sandbox.tokenStats('keap')).exchanges, 1, 'exactly one code exchange');

  const res = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  assert.equal(res.status, 200, res.body);
  const contact = res.json?.contacts?.[0];
  assert.ok(contact, res.body);
  assert.equal(contact.id, 101);
  assert.equal(contact.given_name, 'Ada');
  assert.equal(contact.family_name, 'Lovelace');
  // Keap's rate-limit headers pass through (docs/api.md, Proxy).
  assert.ok([...res.headers.keys()].some((h) => h.startsWith('x-keap-product-')), `no x-keap-product-* header: ${[...res.headers.keys()]}`);
});

test('Jira: login, connect, click Allow, callback → connected to the sandbox site, user search finds Ada', async (t) => {
  const { sandbox, relay, browser } = await setup(t);
  const flow = await browser.connect('jira');
  checkAuthorizeRedirect(flow, { sandbox, relay, provider: 'jira' });
  assert.equal(flow.final.status, 302, flow.trace);
  assert.equal(flow.final.rawLocation, '/?connected=jira', flow.trace);

  const jira = (await browser.connections()).jira;
  assert.equal(jira?.connected, true, JSON.stringify(jira));
  assert.equal(jira.mode, 'oauth');
  const cfg = sandbox.config.jira;
  assert.ok([cfg.site_url, cfg.site_name, new URL(cfg.site_url).host].includes(jira.account),
    `account should name the Jira site (${cfg.site_url}), got ${jira.account}`);
  assert.equal(jira.needs_reauth, false);
  const stats = await sandbox.stats();
  assert.ok(stats.requests['GET /jira/oauth/token/accessible-resources'] >= 1, 'post-connect step: the cloud id from accessible-resources');

  const res = await browser.proxy('jira', 'rest/api/3/user/search?query=ada@example.com');
  assert.equal(res.status, 200, res.body);
  assert.ok(Array.isArray(res.json), res.body);
  assert.ok(res.json.some((u) => u.displayName === 'Ada Lovelace'), res.body);
  const after = await sandbox.stats();
  assert.ok(after.requests[`GET /jira/ex/jira/${cfg.cloud_id}/rest/api/3/user/search`] >= 1,
    `the relay should call the Cloud path with the cloud id: ${JSON.stringify(after.requests)}`);
});

for (const provider of ['keap', 'jira']) {
  test(`${provider}: clicking Deny returns to the page with the reason (not a 500), and the provider stays disconnected`, async (t) => {
    const { sandbox, browser } = await setup(t);
    const flow = await browser.connect(provider, { decision: 'deny' });
    assert.equal(new URL(flow.callbackUrl).searchParams.get('error'), 'access_denied', flow.trace);
    assert.equal(flow.final.status, 302, flow.trace);
    assert.equal(flow.final.rawLocation, `/?connect_failed=${provider}&code=oauth.access_denied`, flow.trace);
    assert.doesNotMatch(flow.final.rawLocation, /did not authorize/, 'the provider\'s free text does not travel');
    const conn = (await browser.connections())[provider];
    assert.notEqual(conn?.connected, true, JSON.stringify(conn));
    assert.equal((await sandbox.tokenStats(provider)).exchanges, 0, 'no exchange after a denial');
    const res = await browser.proxy(provider, provider === 'keap' ? 'crm/rest/v1/contacts?email=ada@example.com' : 'rest/api/3/user/search?query=ada');
    assert.equal(res.status, 409, res.body);
    assert.equal(errorOf(res).code, 'connection.not_connected');
  });
}

test('disconnect (with X-Requested-With) forgets the connection; proxied calls then get 409 connection.not_connected', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  assert.equal((await browser.connect('keap')).final.status, 302);
  const forged = await browser.post('/api/connections/keap/disconnect');
  assert.equal(forged.status, 403, forged.body);
  assert.equal(errorOf(forged).code, 'csrf.missing_header');
  assert.equal((await browser.connections()).keap.connected, true, 'a refused disconnect changes nothing');
  const res = await browser.post('/api/connections/keap/disconnect', { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(res.status, 204, res.body);
  assert.notEqual((await browser.connections()).keap?.connected, true);
  const call = await browser.proxy('keap', 'crm/rest/v1/contacts?email=ada@example.com');
  assert.equal(call.status, 409, call.body);
  assert.equal(errorOf(call).code, 'connection.not_connected');
});

test('/api/connections before any connection lists keap and jira, not connected, with every documented field and no token', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t, apiKey: true });
  const anonymous = await client(relay.url).get('/api/connections');
  assert.equal(anonymous.status, 401, anonymous.body);
  assert.equal(errorOf(anonymous).code, 'auth.no_session');
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  const res = await browser.get('/api/connections');
  assert.equal(res.status, 200, res.body);
  const byName = Object.fromEntries(res.json.connections.map((c) => [c.provider, c]));
  for (const p of ['keap', 'jira']) {
    const c = byName[p];
    assert.ok(c, `${p} missing: ${res.body}`);
    for (const k of ['provider', 'mode', 'connected', 'account', 'expires_at', 'last_refresh_at', 'last_refresh_result', 'needs_reauth']) {
      assert.ok(k in c, `${p}: no "${k}" in ${JSON.stringify(c)}`);
    }
    assert.equal(c.connected, false);
    assert.equal(c.mode, 'oauth');
    assert.equal(c.needs_reauth, false);
    assert.equal(c.expires_at, null);
    for (const k of Object.keys(c)) assert.ok(!/token|secret/i.test(k), `${p}: field ${k}`);
  }
  // A server-to-server caller may read it with the relay API key.
  const s2s = await apiCall(relay.url, 'GET', '/api/connections', { apiKey: relay.apiKey });
  assert.equal(s2s.status, 200, s2s.body);
  assert.deepEqual(s2s.json, res.json);
});

test('Keap XML-RPC through the proxy with the OAuth token: DataService.findByField finds Ada', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  assert.equal((await browser.connect('keap')).final.rawLocation, '/?connected=keap');
  const res = await browser.proxy('keap', 'crm/xmlrpc/v1', {
    method: 'POST', headers: { 'Content-Type': 'text/xml' },
    body: '<?xml version="1.0"?><methodCall><methodName>DataService.findByField</methodName><params>' +
      '<param><value><string>placeholder</string></value></param><param><value><string>Contact</string></value></param>' +
      '<param><value><int>10</int></value></param><param><value><int>0</int></value></param>' +
      '<param><value><string>Email</string></value></param><param><value><string>ada@example.com</string></value></param>' +
      '<param><value><array><data><value><string>Id</string></value><value><string>FirstName</string></value></data></array></value></param>' +
      '</params></methodCall>',
  });
  assert.equal(res.status, 200, res.body);
  assert.match(res.body, /<methodResponse>/);
  assert.doesNotMatch(res.body, /<fault>/, res.body);
  assert.match(res.body, /Ada/);
  assert.match(res.body, /101/);
});
