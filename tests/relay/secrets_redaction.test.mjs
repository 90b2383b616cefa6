// No secret, token or cookie in any response to the browser nor in any log line. The tour of
// tests/relay/secrets.test.mjs scans a whole session at the default log level (and every relay test file scans what
// it recorded). Here: the most talkative log level, credentials that arrive where the relay does not expect them (a
// query string), and a provider error page that reflects the relay's own credentials back.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  SANDBOX_TOKEN_PATTERNS, addSecret, apiCall, checkLeaksAfterAll, client, findLeaks, newApiKey, rawRequest, sleep,
} from '../lib/harness.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

const ADA = 'crm/rest/v1/contacts?email=ada@example.com';

test('log scraping: at --log-level debug a whole session (login, consent, refreshes, a dead grant, errors) writes no token, code, secret, cookie or password', async (t) => {
  const apiKey = newApiKey();
  const { relay, browser, tap } = await tappedSetup({
    t, providers: ['keap', 'jira'], sandboxOptions: { accessTtl: 2 }, relayOptions: { apiKey, args: ['--log-level', 'debug'], name: 'keyrelay-debug' },
  });
  const wrong = `debug-wrong-password-${process.pid}`;
  addSecret(wrong, 'a wrong password sent to /login');
  const start = relay.logs().length;
  await browser.login('demo', wrong);
  for (let i = 0; i < 3; i++) {
    await browser.proxy('keap', ADA);
    await browser.proxy('jira', 'rest/api/3/user/search?query=ada');
    await apiCall(relay.url, 'GET', `/proxy/keap/${ADA}`, { apiKey });
    await sleep(1100);
  }
  await tap.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode: 'status', status: 401 });
  await browser.proxy('keap', ADA);
  await tap.fail({ path: '/jira/oauth/token', count: 3, mode: 'html_502' });
  await sleep(2100);
  await browser.proxy('jira', 'rest/api/3/user/search?query=ada');
  await tap.revoke({ provider: 'keap' });
  await sleep(2100);
  await browser.proxy('keap', ADA);
  const lines = relay.logs().slice(start);
  t.diagnostic(`${lines.length} log lines at debug level, ${tap.issued.keap.length + tap.issued.jira.length} token answers`);
  assert.ok(lines.length >= 15, `only ${lines.length} log lines: is --log-level debug honoured?`);
  assert.ok(tap.requests.keap.refresh + tap.requests.jira.refresh >= 2, 'the session should include refreshes');
  const leaks = findLeaks();
  assert.deepEqual(leaks.map((l) => `${l.label} in ${l.where}: ${l.excerpt}`), [], 'secrets in a debug log or a response');
});

test('credentials that a careless caller puts in a query string (access_token, api_key, password, client_secret, code, refresh_token) are redacted from the request log', async (t) => {
  const { relay, page } = await tappedSetup({ t });
  const values = {};
  const names = ['access_token', 'refresh_token', 'api_key', 'apikey', 'password', 'client_secret', 'code', 'state', 'token', 'Access_Token', 'acc%65ss_token'];
  const query = names.map((n, i) => {
    values[n] = `query-secret-${i}-${process.pid}-abcdef`;
    addSecret(values[n], `a credential in the query (${n})`);
    return `${n}=${values[n]}`;
  }).join('&');
  const start = relay.logs().length;
  for (const target of [`/proxy/keap/crm/rest/v1/contacts?email=ada@example.com&${query}`, `/api/session?${query}`, `/callback/keap?${query}`, `/no/such/page?${query}`]) {
    await rawRequest(relay.url, target, { headers: page });
  }
  await sleep(100);
  const log = relay.logs().slice(start).map((l) => l.line).join('\n');
  assert.ok(log.includes('REDACTED') || !log.includes('query-secret'), 'the request log carries no redaction at all');
  const leaked = Object.entries(values).filter(([, v]) => log.includes(v)).map(([n]) => n);
  assert.deepEqual(leaked, [], `query credentials in the log: ${leaked.join(', ')}`);
});

test('reflected credentials: a provider or gateway error page that echoes the relay\'s Authorization header never carries the token to the browser', async (t) => {
  const { relay, tap, page: headers } = await tappedSetup({ t, providers: ['keap', 'jira'] });
  // Not recorded for the file's leak scan: this test reports its own findings, one line per leaking combination.
  const browser = client(relay.url, { record: false });
  // Error pages that reflect the request: in the HTML title, in the HTML body, as plain text, as a gateway's JSON.
  const pages = {
    'HTML title': (auth) => ({ type: 'text/html', body: `<html><head><title>Bad gateway for ${auth}</title></head><body>502</body></html>` }),
    'HTML body': (auth) => ({ type: 'text/html', body: `<html><body><h1>502 Bad Gateway</h1><pre>Authorization: ${auth}</pre></body></html>` }),
    'plain text': (auth) => ({ type: 'text/plain', body: `upstream connect error; request headers: Authorization: ${auth}` }),
    'gateway JSON': (auth) => ({ type: 'application/json', body: JSON.stringify({ fault: { faultstring: `Invalid Access Token ${auth}`, detail: { errorcode: 'keymanagement.service.invalid_access_token' } } }) }),
  };
  let page = null;
  const off = tap.intercept(({ path, headers }) => {
    if (!page || !(path.startsWith('/keap/crm/') || path.startsWith('/jira/ex/'))) return undefined;
    const { type, body } = pages[page](headers.authorization ?? '');
    return { status: 502, headers: { 'Content-Type': type }, body };
  });
  t.after(off);
  const calls = {
    'keap REST': () => browser.proxy('keap', ADA, { headers, timeout: 20_000 }),
    'keap XML-RPC': () => browser.proxy('keap', 'crm/xmlrpc/v1', { method: 'POST', headers: { ...headers, 'Content-Type': 'text/xml' }, timeout: 20_000,
      body: '<?xml version="1.0"?><methodCall><methodName>DataService.getUserInfo</methodName><params><param><value><string>k</string></value></param></params></methodCall>' }),
    'jira REST': () => browser.proxy('jira', 'rest/api/3/user/search?query=ada', { headers, timeout: 20_000 }),
  };
  const leaks = [];
  for (const name of Object.keys(pages)) {
    page = name;
    for (const [what, call] of Object.entries(calls)) {
      const res = await call();
      const seen = res.body + JSON.stringify(Object.fromEntries(res.headers));
      const tokens = [...tap.issued.keap, ...tap.issued.jira].flatMap((e) => [e.access_token, e.refresh_token]).filter(Boolean);
      if (tokens.some((tok) => seen.includes(tok)) || SANDBOX_TOKEN_PATTERNS.some((re) => re.test(seen))) {
        leaks.push(`${name} page on ${what} → ${res.status} ${res.json?.error?.code ?? ''}: ${res.body.slice(0, 160)}`);
      }
    }
  }
  page = null;
  assert.deepEqual(leaks, [], 'the relay copied a reflected token into its answer to the browser');
});
