// docs/api.md against the running relay. The endpoints and the "status code" pairs are READ FROM api.md, so the
// document and this test cannot drift apart silently:
//  - every endpoint api.md lists must have a simple case below, and answer with the status api.md gives;
//  - every error code api.md gives with a status (e.g. "`409 connection.static`") must be produced by the relay
//    with that status and the one error shape {error: {code, message, hint}} — triggered here, or, for the few that
//    need a fault this test cannot cheaply make, named in UNTRIGGERED with the reason and, where one exists, the
//    test file that covers it (which must mention the code).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import {
  BIN_DIR, ROOT, apiCall, checkLeaksAfterAll, client, errorOf, newApiKey, rawRequest, startRelay, startSandbox,
  tempDir, writeConfig,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

const API_MD = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');

/** Every `METHOD /path` api.md names, query strings cut: ["GET /healthz", ...]. */
const ENDPOINTS = [...new Set([...API_MD.matchAll(/`(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) (\/[^`\s?]*)/g)].map((m) => `${m[1]} ${m[2]}`))];

/** Every "NNN code.name" pair api.md gives: Map code → status. */
const CODES = new Map([...API_MD.matchAll(/`?(\d{3}) ([a-z]+\.[a-z_]+|upstream\.<diagnosis code>)`?/g)].map((m) => [m[2], Number(m[1])]));

/** The status api.md gives on an endpoint's own line ("`GET /healthz` → `200 ...`"), or undefined. */
function documentedStatus(endpoint) {
  const [method, p] = endpoint.split(' ');
  for (const line of API_MD.split('\n')) {
    if (!line.includes(`\`${method} ${p}`)) continue;
    const m = /→\s*`?(\d{3})\b/.exec(line.slice(line.indexOf(`\`${method} ${p}`)));
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** A loopback port nothing listens on (taken from the OS, then closed). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Codes api.md gives a status for that this test does not trigger, why, and which test covers them (if any). */
const UNTRIGGERED = {
  'store.lock_timeout': { why: 'needs a relay that holds the Redis refresh lease for three lease times', coveredBy: 'tests/relay/unit/test_refresh_lease.cpp' },
  'upstream.timeout': { why: 'needs an upstream slower than the read timeout', coveredBy: 'tests/faults/upstream_faults.test.mjs' },
};

test('docs/api.md lists the endpoints this test checks, and every error code it gives a status for is checked', () => {
  assert.deepEqual([...ENDPOINTS].sort(), Object.keys(ENDPOINT_CASES).sort(),
    'the endpoints of docs/api.md and the cases of tests/docs/api.test.mjs differ: add a case (or fix api.md)');
  const unchecked = [...CODES.keys()].filter((c) => !(c in TRIGGERS) && !(c in UNTRIGGERED));
  assert.deepEqual(unchecked, [], 'error codes in docs/api.md that nothing checks: add a trigger to tests/docs/api.test.mjs');
  for (const [code, { coveredBy }] of Object.entries(UNTRIGGERED)) {
    assert.ok(CODES.has(code), `UNTRIGGERED names ${code}, which docs/api.md no longer gives: remove it`);
    if (coveredBy) {
      const file = path.join(ROOT, coveredBy);
      assert.ok(existsSync(file) && readFileSync(file, 'utf8').includes(code), `${coveredBy} should test ${code}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// The endpoints, each with a simple case. `env` holds a sandbox, a relay with an API key and a logged-in browser.

const ENDPOINT_CASES = {
  'GET /healthz': async ({ relay }) => {
    const res = await apiCall(relay.url, 'GET', '/healthz');
    assert.equal(res.json?.status, 'ok');
    assert.equal(typeof res.json?.version, 'string');
    assert.equal(res.json?.store, 'file');
    return res;
  },
  'GET /metrics': async ({ relay }) => {
    const res = await apiCall(relay.url, 'GET', '/metrics');
    const section = API_MD.slice(API_MD.indexOf('## Health and metrics'), API_MD.indexOf('## Page sessions'));
    const names = new Set(section.match(/keyrelay_[a-z_]+/g));
    assert.ok(names.size >= 5, `docs/api.md's metrics section names the metrics: ${[...names]}`);
    for (const name of names) {
      assert.ok(new RegExp(`^${name}(_bucket|_sum|_count)?[{ ]`, 'm').test(res.body), `/metrics lacks ${name}`);
    }
    return res;
  },
  'POST /login': async ({ relay }) => {
    const b = client(relay.url);
    const res = await b.login();
    assert.deepEqual(res.json, { user: 'demo' });
    const cookie = b.cookie('keyrelay_session');
    assert.ok(cookie, `no keyrelay_session cookie in ${res.setCookie}`);
    assert.equal(cookie.attrs.httponly, true);
    assert.equal(cookie.attrs.samesite, 'Strict');
    assert.equal(cookie.attrs.path, '/');
    assert.equal(cookie.attrs.domain, undefined);
    return res;
  },
  'POST /logout': async ({ relay }) => {
    const b = client(relay.url);
    await b.login();
    const res = await b.post('/logout', { headers: { 'X-Requested-With': 'keyrelay' } });
    assert.equal((await b.get('/api/session')).status, 401, 'the session ends at logout');
    return res;
  },
  'GET /api/session': async ({ browser }) => {
    const res = await browser.get('/api/session');
    assert.deepEqual(res.json, { user: 'demo' });
    return res;
  },
  'GET /connect/{provider}': async ({ browser, sandbox }) => {
    const res = await browser.get('/connect/keap');
    assert.ok(res.location?.startsWith(sandbox.config.keap.authorize_url), `redirects to the authorize URL, not ${res.location}`);
    return res;
  },
  'GET /callback/{provider}': async ({ browser }) => {
    const flow = await browser.connect('keap');
    assert.equal(flow.final.rawLocation, '/?connected=keap');
    return flow.final;
  },
  'GET /api/connections': async ({ relay, browser }) => {
    const res = await browser.get('/api/connections');
    const keap = res.json.connections.find((c) => c.provider === 'keap');
    for (const field of ['provider', 'mode', 'connected', 'account', 'expires_at', 'last_refresh_at', 'last_refresh_result',
      'needs_reauth', 'configured', 'connected_at', 'reauthorize_by', 'warnings']) {
      assert.ok(field in keap, `/api/connections entries have ${field}: ${JSON.stringify(keap)}`);
    }
    assert.equal(keap.account, 'ab123.infusionsoft.com');
    const byKey = await apiCall(relay.url, 'GET', '/api/connections', { apiKey: relay.apiKey });
    assert.equal(byKey.status, 200, 'server-to-server callers read it with the API key');
    return res;
  },
  'POST /bridge/keap/xmlrpc': async ({ relay }) => {
    const call = (key) => '<?xml version="1.0"?><methodCall><methodName>ContactService.load</methodName><params>' +
      `<param><value><string>${key}</string></value></param><param><value><int>101</int></value></param>` +
      '<param><value><array><data><value>Id</value></data></array></value></param></params></methodCall>';
    const wrong = await apiCall(relay.url, 'POST', '/bridge/keap/xmlrpc', { headers: { 'Content-Type': 'text/xml' }, body: call('not-the-key') });
    assert.equal(wrong.status, 200, 'a wrong key is a fault, not an HTTP error');
    assert.match(wrong.body, /<fault>[\s\S]*\[InvalidKey\]/);
    const res = await apiCall(relay.url, 'POST', '/bridge/keap/xmlrpc', { headers: { 'Content-Type': 'text/xml' }, body: call(relay.apiKey) });
    assert.match(res.body, /<methodResponse><params>[\s\S]*<name>Id<\/name><value><int>101<\/int>/, res.body);
    return res;
  },
  'POST /api/connections/{provider}/disconnect': async ({ browser }) => {
    const res = await browser.post('/api/connections/jira/disconnect', { headers: { 'X-Requested-With': 'keyrelay' } });
    const jira = (await browser.connections()).jira;
    assert.equal(jira.connected, false);
    return res;
  },
  'ANY /proxy/{provider}/{path...}': async ({ relay, browser }) => {
    const page = await browser.proxy('keap', '/crm/rest/v1/contacts?email=ada%40example.com&limit=1');
    assert.equal(page.status, 200, page.body);
    assert.equal(page.json.contacts[0].id, 101);
    const res = await apiCall(relay.url, 'POST', '/proxy/keap/crm/xmlrpc/v1', {
      apiKey: relay.apiKey, headers: { 'Content-Type': 'text/xml' },
      body: '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params/></methodCall>',
    });
    assert.match(res.body, /<methodResponse>/);
    return res;
  },
  'GET /': async ({ relay }) => {
    const res = await apiCall(relay.url, 'GET', '/');
    assert.match(res.headers.get('content-type'), /text\/html/);
    return res;
  },
};

// The status each case must answer: api.md's, else the plain success api.md implies.
const IMPLIED = { 'GET /callback/{provider}': 302, 'GET /metrics': 200, 'GET /api/connections': 200, 'ANY /proxy/{provider}/{path...}': 200, 'GET /': 200 };

// ---------------------------------------------------------------------------------------------------------------
// Error codes. Each trigger returns the relay's response; the code and api.md's status are asserted for it.

const XMLRPC_CALL = '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params/></methodCall>';
const bearer = (relay, method, p, opts = {}) => apiCall(relay.url, method, p, { apiKey: relay.apiKey, ...opts });

const TRIGGERS = {
  'auth.bad_credentials': ({ relay }) => client(relay.url).login('demo', 'not-the-password'),
  'auth.bad_request': ({ relay }) => client(relay.url).post('/login', { json: ['demo', 'demo'] }),
  'http.unsupported_media_type': ({ relay }) => client(relay.url).post('/login', {
    headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ username: 'demo', password: 'demo' }),
  }),
  'auth.no_session': ({ relay }) => client(relay.url).get('/api/session'),
  'provider.unknown': ({ browser }) => browser.get('/connect/no-such-provider'),
  'csrf.missing_header': ({ browser }) => browser.get('/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com'),
  'auth.bad_api_key': ({ relay }) => apiCall(relay.url, 'GET', '/api/connections', { apiKey: 'not-the-relay-key' }),
  'proxy.path_not_allowed': ({ relay }) => bearer(relay, 'DELETE', '/proxy/keap/crm/rest/v1/contacts/101'),
  'proxy.bad_path': ({ relay }) => rawRequest(relay.url, '/proxy/keap/crm/rest/v1/%2e%2e/%2e%2e/token',
    { headers: { Authorization: `Bearer ${relay.apiKey}` } }),
  'http.bad_host': ({ relay }) => rawRequest(relay.url, '/healthz', { host: 'rebind.example:80' }),
  'http.bad_path': ({ relay }) => rawRequest(relay.url, '/%2e%2e/%2e%2e/etc/passwd'),
  // Request framing is settled from the headers, before any body is read.
  'http.length_required': ({ relay }) => rawRequest(relay.url, '/login',
    { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }),
  'http.bad_request': ({ relay }) => rawRequest(relay.url, '/login',
    { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': '0x10' } }),
  'http.not_found': ({ relay }) => apiCall(relay.url, 'GET', '/no-such-file.txt'),
  'http.method_not_allowed': async ({ relay }) => {
    const res = await apiCall(relay.url, 'PUT', '/login', { json: {} });
    assert.ok(res.headers.get('allow'), '405 carries Allow');
    return res;
  },
  'http.payload_too_large': ({ relay }) => bearer(relay, 'POST', '/proxy/keap/crm/rest/v1/contacts',
    { headers: { 'Content-Type': 'application/json' }, body: `{"notes":"${'x'.repeat(1024 * 1024 + 16)}"}` }),
  'cors.origin_not_allowed': ({ relay }) => apiCall(relay.url, 'OPTIONS', '/proxy/keap/crm/rest/v1/contacts',
    { headers: { Origin: 'http://localhost:4200', 'Access-Control-Request-Method': 'GET' } }),
  // api.md's "502 upstream.<diagnosis code>": an HTML error page where XML-RPC was expected.
  'upstream.<diagnosis code>': async ({ relay, sandbox }) => {
    await sandbox.fail({ path: '/keap/crm/xmlrpc/v1', mode: 'html_502', count: 1 });
    const res = await bearer(relay, 'POST', '/proxy/keap/crm/xmlrpc/v1', { headers: { 'Content-Type': 'text/xml' }, body: XMLRPC_CALL });
    res.expectCode = 'upstream.html_page';
    return res;
  },
  'connection.refresh_failed': async ({ relay, sandbox }) => {
    // The sandbox's clock runs two days ahead: the access token is dead there (a 401), the refresh token alive; the
    // token endpoint fails with a 500, which is not a dead grant.
    await sandbox.clock(2 * 86400);
    await sandbox.fail({ path: '/keap/token', mode: 'status', status: 500, count: 5 });
    const res = await bearer(relay, 'GET', '/proxy/keap/crm/rest/v1/contacts/101');
    await sandbox.reset();
    return res;
  },
  'connection.not_connected': ({ relay }) => bearer(relay, 'GET', '/proxy/jira/rest/api/3/myself'),
  'connection.needs_reauth': async ({ relay, sandbox }) => {
    await sandbox.revoke({ provider: 'keap' });
    return bearer(relay, 'GET', '/proxy/keap/crm/rest/v1/contacts/101');
  },
  'connection.static': async ({ t, sandbox }) => {
    const relay = await startRelay({ sandbox, t, name: 'keyrelay-static', env: { KEAP_API_KEY: sandbox.config.keap.api_key } });
    const b = client(relay.url);
    await b.login();
    return b.get('/connect/keap');
  },
  'oauth.not_configured': async ({ t }) => {
    const dir = await tempDir(t);
    const hash = spawnSync(path.join(BIN_DIR, 'keyrelay'), ['hash-password', '--iterations', '100000'], { input: 'pw-for-docs-test\n' });
    assert.equal(hash.status, 0, String(hash.stderr));
    const config = await writeConfig(dir, { users: [{ username: 'admin', password_hash: String(hash.stdout).trim() }] });
    const relay = await startRelay({
      t, name: 'keyrelay-unconfigured', args: ['--config', config],
      env: { JIRA_API_TOKEN: 'jira-token-unused', JIRA_EMAIL: 'admin@example.com', JIRA_SITE: 'https://unused.atlassian.net' },
    });
    const b = client(relay.url);
    assert.equal((await b.login('admin', 'pw-for-docs-test')).status, 200);
    return b.get('/connect/keap', { headers: { Accept: 'application/json' } });
  },
  'auth.throttled': async ({ relay }) => {
    const b = client(relay.url);
    let res;
    for (let i = 0; i < 6; i++) res = await b.login('demo', `wrong-${i}`);
    assert.ok(res.headers.get('retry-after'), '429 carries Retry-After');
    return res;
  },
  'store.unavailable': async ({ t, sandbox }) => {
    // A relay whose Redis is not there: it starts degraded, says so on /healthz, and answers at once.
    const port = await closedPort();
    const relay = await startRelay({
      sandbox, t, name: 'keyrelay-no-redis', apiKey: newApiKey(), env: { KEYRELAY_REDIS_URL: `redis://127.0.0.1:${port}/0` },
    });
    const health = await apiCall(relay.url, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.json?.status, 'degraded');
    assert.equal(health.json?.store, 'redis');
    assert.match(health.json?.reason ?? '', new RegExp(`127\\.0\\.0\\.1:${port}/0 is unreachable`));
    const started = Date.now();
    const res = await bearer(relay, 'GET', '/proxy/keap/crm/rest/v1/contacts/101');
    assert.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
    assert.equal(res.headers.get('retry-after'), '1', '503 store.unavailable carries Retry-After');
    return res;
  },
  'upstream.unreachable': async ({ t, sandbox }) => {
    // A relay with a static Keap key (so no connection state is involved), then the provider goes away.
    const relay = await startRelay({ sandbox, t, name: 'keyrelay-orphan', apiKey: newApiKey(), env: { KEAP_API_KEY: sandbox.config.keap.api_key } });
    assert.equal((await bearer(relay, 'GET', '/proxy/keap/crm/rest/v1/contacts/101')).status, 200);
    await sandbox.stop('SIGKILL');
    return bearer(relay, 'GET', '/proxy/keap/crm/rest/v1/contacts/101');
  },
};

// The order matters: the last triggers break the relay's connections, lock out logins or stop the sandbox.
const TRIGGER_ORDER = [
  'auth.bad_request', 'http.unsupported_media_type', 'auth.no_session', 'provider.unknown', 'csrf.missing_header', 'auth.bad_api_key',
  'proxy.path_not_allowed', 'proxy.bad_path', 'http.bad_host', 'http.bad_path', 'http.not_found',
  'http.method_not_allowed', 'http.length_required', 'http.bad_request', 'http.payload_too_large', 'cors.origin_not_allowed', 'upstream.<diagnosis code>',
  'connection.not_connected', 'connection.static', 'oauth.not_configured', 'store.unavailable', 'connection.refresh_failed',
  'connection.needs_reauth', 'auth.bad_credentials', 'auth.throttled', 'upstream.unreachable',
];

test('docs/api.md: every endpoint and error code answers as documented by the running relay', async (t) => {
  assert.deepEqual([...TRIGGER_ORDER].sort(), Object.keys(TRIGGERS).sort(), 'TRIGGER_ORDER lists every trigger once');
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t, apiKey: newApiKey() });
  const browser = client(relay.url);
  assert.equal((await browser.login()).status, 200);
  assert.equal((await browser.connect('jira')).final.status, 302, 'jira connects');
  const env = { t, sandbox, relay, browser };

  // Endpoints in api.md's order; /callback connects Keap before the connections and proxy cases need it.
  const order = ['GET /healthz', 'GET /metrics', 'POST /login', 'POST /logout', 'GET /api/session', 'GET /connect/{provider}',
    'GET /callback/{provider}', 'GET /api/connections', 'ANY /proxy/{provider}/{path...}', 'POST /bridge/keap/xmlrpc',
    'POST /api/connections/{provider}/disconnect', 'GET /'];
  assert.deepEqual([...order].sort(), Object.keys(ENDPOINT_CASES).sort());
  for (const endpoint of order) {
    await t.test(`${endpoint} → ${documentedStatus(endpoint) ?? IMPLIED[endpoint]}`, async () => {
      const want = documentedStatus(endpoint) ?? IMPLIED[endpoint];
      assert.ok(want, `docs/api.md gives no status for ${endpoint}, and none is implied here`);
      const res = await ENDPOINT_CASES[endpoint](env);
      assert.equal(res.status, want, `${endpoint}: ${res.status} ${String(res.body).slice(0, 400)}`);
    });
  }

  for (const code of TRIGGER_ORDER) {
    const want = CODES.get(code);
    await t.test(`${want} ${code}`, async () => {
      assert.ok(want, `docs/api.md gives no status for ${code}`);
      const res = await TRIGGERS[code](env);
      const e = errorOf(res);
      assert.equal(e.code, res.expectCode ?? code, `${e.code}: ${e.message}`);
      assert.equal(res.status, want, `${code}: HTTP ${res.status}, docs/api.md says ${want}`);
    });
  }
});
