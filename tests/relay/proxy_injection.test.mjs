// The proxy is not an open proxy and does not carry injections upstream (reference/security.md "No
// open proxy"; docs/api.md Proxy). tests/relay/proxy_guard.test.mjs already proves: CSRF header, off-allowlist paths,
// absolute URLs, .., %2e%2e, %2f, double encoding, backslashes, CR/LF and NUL in the path, X-Forwarded-Host /
// X-Original-URL ignored, the browser's Cookie/Origin/User-Agent stripped. Here: what reaches the provider, byte for
// byte (the tap records every forwarded request), for the spellings and channels those tests do not try.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import { checkLeaksAfterAll, errorOf, rawRequest } from '../lib/harness.mjs';
import { tappedSetup } from '../lib/security.mjs';

checkLeaksAfterAll();

const ADA = '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com';
const forwardedSince = (tap, n) => tap.seen.slice(n).filter((r) => !r.path.startsWith('/sandbox/'));

test('CR/LF in a forwarded query value reaches the provider percent-encoded inside the query, never as a header line', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  for (const q of ['ada@example.com%0d%0aX-Injected:%20yes', 'ada%0aHost:%20evil.example', 'ada%0d%0a%0d%0aGET%20/keap/token%20HTTP/1.1']) {
    const n = tap.seen.length;
    const res = await rawRequest(relay.url, `/proxy/keap/crm/rest/v1/contacts?email=${q}`, { headers: page });
    assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `${q}: ${res.statusLine}`);
    for (const r of forwardedSince(tap, n)) {
      assert.equal(r.headers['x-injected'], undefined, `${q}: a header was injected upstream`);
      assert.notEqual(r.headers.host, 'evil.example', `${q}: Host was overridden upstream`);
      assert.ok(!/[\r\n]/.test(r.path), `${q}: a raw line break in the forwarded target ${JSON.stringify(r.path)}`);
      assert.ok(r.path.startsWith('/keap/crm/rest/v1/contacts?'), `${q}: forwarded to ${r.path}`);
    }
    assert.ok(!tap.seen.slice(n).some((r) => r.path.startsWith('/keap/token')), `${q}: smuggled a token-endpoint request`);
  }
});

test('header injection: a header value with a bare CR, a bare LF (obs-fold) or a NUL never becomes a separate header upstream', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  for (const value of ['a\rX-Injected: yes', 'a\n X-Injected: yes', 'a\n\tX-Injected: yes', 'a\u0000X-Injected: yes', 'a\u000bX-Injected: yes']) {
    const n = tap.seen.length;
    const res = await rawRequest(relay.url, ADA, { headers: { ...page, 'X-Custom': value } }).catch((err) => ({ status: 0, statusLine: err.message }));
    assert.ok(res.status === 0 || res.status === 200 || (res.status >= 400 && res.status < 500), `${JSON.stringify(value)}: ${res.statusLine}`);
    for (const r of forwardedSince(tap, n)) {
      const names = [];
      for (let i = 0; i < r.rawHeaders.length; i += 2) names.push(r.rawHeaders[i].toLowerCase());
      assert.ok(!names.some((h) => h.includes('x-injected')), `${JSON.stringify(value)}: X-Injected reached the provider as a header: ${names}`);
      for (let i = 1; i < r.rawHeaders.length; i += 2) assert.ok(!/[\r\n\0]/.test(r.rawHeaders[i]), `${JSON.stringify(value)}: a control byte in a forwarded header value`);
    }
  }
});

test('request smuggling: Content-Length together with Transfer-Encoding (CL.TE, TE.CL) cannot smuggle a second request to the provider', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const port = Number(new URL(relay.url).port);
  const host = new URL(relay.url).host;
  const smuggled = 'GET /proxy/keap/token HTTP/1.1\r\nHost: x\r\n\r\n';
  const bodies = [
    // CL.TE: a front end trusting Content-Length forwards all; the back end reading chunks sees a second request.
    `POST /proxy/keap/crm/xmlrpc/v1 HTTP/1.1\r\nHost: ${host}\r\nCookie: ${page.Cookie}\r\nX-Requested-With: keyrelay\r\nContent-Type: text/xml\r\n` +
      `Content-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    // TE.CL.
    `POST /proxy/keap/crm/xmlrpc/v1 HTTP/1.1\r\nHost: ${host}\r\nCookie: ${page.Cookie}\r\nX-Requested-With: keyrelay\r\nContent-Type: text/xml\r\n` +
      `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${(smuggled.length).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
    // An obfuscated Transfer-Encoding.
    `POST /proxy/keap/crm/xmlrpc/v1 HTTP/1.1\r\nHost: ${host}\r\nCookie: ${page.Cookie}\r\nX-Requested-With: keyrelay\r\nContent-Type: text/xml\r\n` +
      `Content-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${smuggled}`,
  ];
  for (const raw of bodies) {
    const n = tap.seen.length;
    const answer = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      s.setTimeout(5000, () => s.destroy());
      s.on('data', (d) => { got += d.toString('latin1'); });
      s.on('error', () => {});
      s.on('close', () => resolve(got));
      s.write(raw);
      setTimeout(() => s.end(), 600);
    });
    const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    // Whatever the relay makes of the message, the provider never sees a token-endpoint request, and the relay
    // never forwards the smuggled bytes as a request of their own.
    assert.ok(!tap.seen.slice(n).some((r) => r.path.includes('/token')), `smuggled a token request upstream: ${tap.seen.slice(n).map((r) => r.path)}`);
    assert.ok(forwardedSince(tap, n).length <= 1, `one message became ${forwardedSince(tap, n).length} upstream requests`);
    assert.ok(statuses.every((st) => st !== '200') || statuses.length <= 1, `the smuggled request got its own answer: ${statuses}`);
  }
});

test('credential and override headers (X-HTTP-Method-Override, X-Original-URL, X-Access-Token, X-Original-Host, X-Override-URL, Forwarded, X-Host) never reach the provider', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const hostile = {
    'X-HTTP-Method-Override': 'DELETE', 'X-Method-Override': 'DELETE', 'X-HTTP-Method': 'DELETE',
    'X-Original-URL': '/keap/token', 'X-Rewrite-URL': '/keap/token', 'X-Override-URL': '/keap/token',
    'X-Original-Host': 'evil.example', 'X-Host': 'evil.example', 'X-Forwarded-Server': 'evil.example', Forwarded: 'host=evil.example;proto=https',
    'X-Access-Token': 'browser-supplied-token', 'X-Auth-Token': 'browser-supplied-token', 'X-Api-Key': 'browser-supplied-key', 'X-Keap-API-Key': 'browser-supplied-key',
  };
  const n = tap.seen.length;
  const res = await rawRequest(relay.url, ADA, { headers: { ...page, ...hostile } });
  assert.equal(res.status, 200, `${res.statusLine} ${res.body.slice(0, 200)}`);
  const up = forwardedSince(tap, n);
  assert.equal(up.length, 1);
  const leaked = Object.keys(hostile).filter((h) => up[0].headers[h.toLowerCase()] !== undefined);
  assert.deepEqual(leaked, [], `override/credential headers forwarded to the provider: ${leaked.join(', ')}`);
  assert.equal(up[0].method, 'GET');
});

test('tenant hopping: a Jira path naming another cloud id (or climbing to one) is refused, and every forwarded call stays on the connected site', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t, providers: ['jira'] });
  const cloud = tap.config.jira.cloud_id;
  const n = tap.seen.length;
  for (const p of ['ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/user/search?query=a',
    `ex/jira/${cloud}/rest/api/3/user/search?query=a`, '../ex/jira/other/rest/api/3/myself', 'rest/api/3/../../../ex/jira/other/rest/api/3/myself']) {
    const res = await rawRequest(relay.url, `/proxy/jira/${p}`, { headers: page });
    assert.ok([400, 403].includes(res.status), `/proxy/jira/${p}: ${res.statusLine} ${res.body.slice(0, 200)}`);
    assert.match(errorOf({ ...res, method: 'GET', url: p }).code, /^proxy\.(bad_path|path_not_allowed)$/);
  }
  assert.deepEqual(forwardedSince(tap, n).map((r) => `${r.method} ${r.path}`), [], 'a tenant-hopping path was forwarded');
  // The normal path goes to the connected cloud id.
  const ok = await rawRequest(relay.url, '/proxy/jira/rest/api/3/user/search?query=ada', { headers: page });
  assert.equal(ok.status, 200, ok.body.slice(0, 200));
  assert.ok(tap.seen.at(-1).path.startsWith(`/jira/ex/jira/${cloud}/rest/api/3/user/search`), tap.seen.at(-1).path);
});

test('overlong UTF-8, fullwidth dots, %u escapes and mixed encodings of ".." never leave the API base', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const n = tap.seen.length;
  for (const p of ['crm/rest/v1/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/token', 'crm/rest/v1/%e0%80%ae%e0%80%ae/token',
    'crm/rest/v1/%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/token', 'crm/rest/v1/%u002e%u002e/%u002e%u002e/token',
    'crm/rest/v1/.%2e/.%2e/.%2e/token', 'crm/rest/v1/%2e./%2e./%2e./token', 'crm/rest/v1/..%00/..%00/token',
    'crm/rest/v1/%252e%252e%252f%252e%252e%252ftoken', 'crm/rest/v1/contacts/..;/..;/..;/token', 'crm/rest/v1/%2e%2E/%2E%2e/%2e%2e/token',
    'crm/rest/v1/contacts/%2e%2e%5c%2e%2e%5ctoken', 'crm/rest/v1/contacts?x=/../../token']) {
    const res = await rawRequest(relay.url, `/proxy/keap/${p}`, { headers: page });
    assert.ok(res.status !== 0 && res.status < 500, `${p}: ${res.statusLine}`);
  }
  for (const r of forwardedSince(tap, n)) {
    const bare = decodeURIComponent(r.path.split('?')[0]);
    assert.ok(r.path.startsWith('/keap/crm/rest/v1/'), `forwarded outside the API base: ${r.path}`);
    assert.ok(!/(^|\/)\.\.(\/|$)/.test(bare) && !bare.includes('/token'), `forwarded a path that climbs out: ${r.path}`);
  }
});

test('TRACE, CONNECT, PROPFIND and other methods off the allowlist are never forwarded to the provider', async (t) => {
  const { relay, tap, page } = await tappedSetup({ t });
  const n = tap.seen.length;
  for (const method of ['TRACE', 'CONNECT', 'PROPFIND', 'MOVE', 'DEBUG', 'HEAD']) {
    const res = await rawRequest(relay.url, ADA, { method, headers: page }).catch((err) => ({ status: 0, statusLine: err.message }));
    assert.ok(res.status === 0 || (res.status >= 200 && res.status < 500), `${method}: ${res.statusLine}`);
    if (method === 'TRACE') assert.ok(!String(res.body ?? '').includes(page.Cookie.split('=')[1]), 'TRACE echoed the session cookie');
  }
  const sent = forwardedSince(tap, n).map((r) => r.method);
  assert.deepEqual(sent.filter((m) => m !== 'GET' && m !== 'HEAD'), [], `forwarded methods: ${sent}`);
});
