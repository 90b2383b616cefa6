// The event front end (relay/src/event_server.h): server-to-server proxied calls are answered on the event loop
// (the fast path) with exactly the bytes the worker path gives; answers that need a retry or a token refresh are
// continued by a worker from the attempt already made; and the connection handling a client relies on (pipelining,
// Expect: 100-continue, a half-close, a graceful stop with a call in flight).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import {
  apiCall, checkLeaksAfterAll, connectedSetup, metricValue, newApiKey, rawRequest, startRelay, startSandbox,
} from '../lib/harness.mjs';

checkLeaksAfterAll();

const LOOKUP = '/proxy/keap/crm/rest/v1/contacts?email=ada@example.com';

/** A relay connected over OAuth, called once, whose access token the sandbox has since expired (the relay does not
 * know: its next calls go out on the fast path and get a 401). */
async function tokenExpiredAtSandbox(t) {
  const apiKey = newApiKey();
  const { sandbox, relay } = await connectedSetup({ t, relayOptions: { apiKey }, sandboxOptions: { accessTtl: 30 } });
  assert.equal((await apiCall(relay.url, 'GET', LOOKUP, { apiKey })).status, 200);
  await sandbox.clock(sandbox.config.keap.access_ttl + 60);
  return { sandbox, relay, apiKey };
}

async function frontCounts(relay) {
  const text = (await apiCall(relay.url, 'GET', '/metrics')).body;
  return {
    fast: metricValue(text, 'keyrelay_front_requests_total', { path: 'fast' }),
    slow: metricValue(text, 'keyrelay_front_requests_total', { path: 'slow' }),
  };
}

// Sends raw bytes on one connection and collects everything until the server closes it (or `until` matches).
function exchange(relay, chunks, { halfClose = false, until, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(relay.port, '127.0.0.1');
    const got = [];
    let done = false;
    const finish = () => { if (!done) { done = true; clearTimeout(timer); sock.destroy(); resolve(Buffer.concat(got).toString('latin1')); } };
    const timer = setTimeout(() => { if (!done) { done = true; sock.destroy(); reject(new Error(`no end within ${timeout} ms; got: ${Buffer.concat(got).toString('latin1').slice(0, 500)}`)); } }, timeout);
    sock.on('data', (d) => { got.push(d); if (until && until(Buffer.concat(got).toString('latin1'))) finish(); });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (err) => { if (!done) { done = true; clearTimeout(timer); reject(err); } });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'function') await c(Buffer.concat(got).toString('latin1'));
        else sock.write(c);
      }
      if (halfClose) sock.end();
    });
  });
}

const statusLines = (text) => [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/g)].map((m) => Number(m[1]));

test('server-to-server proxied calls are answered on the event loop with the same bytes a worker gives', async (t) => {
  const sandbox = await startSandbox({ t });
  const env = { KEAP_API_KEY: sandbox.config.keap.api_key };
  const apiKey = newApiKey();
  const fast = await startRelay({ sandbox, t, env, apiKey, name: 'keyrelay (fast path)' });
  const slow = await startRelay({ sandbox, t, env: { ...env, KEYRELAY_FAST_PATH: 'off' }, apiKey, name: 'keyrelay (workers only)' });
  const auth = { Authorization: `Bearer ${apiKey}` };
  const xmlrpc = '<?xml version="1.0"?><methodCall><methodName>DataService.findByField</methodName><params>' +
    '<param><value><string>key</string></value></param><param><value><string>Contact</string></value></param>' +
    '<param><value><int>10</int></value></param><param><value><int>0</int></value></param>' +
    '<param><value><string>Email</string></value></param><param><value><string>ada@example.com</string></value></param>' +
    '<param><value><array><data><value><string>Id</string></value></data></array></value></param></params></methodCall>';
  const cases = [
    { what: 'a JSON lookup', target: LOOKUP },
    { what: 'the same, gzip accepted', target: LOOKUP, headers: { 'Accept-Encoding': 'gzip' } },
    { what: 'the same, brotli accepted too', target: LOOKUP, headers: { 'Accept-Encoding': 'gzip, deflate, br' } },
    // cpp-httplib compresses text/* (XML-RPC is text/xml), not "application/json; charset=UTF-8"; never brotli here.
    { what: 'XML-RPC, brotli accepted too (gzip is used)', target: '/proxy/keap/crm/xmlrpc/v1', method: 'POST',
      headers: { 'Content-Type': 'text/xml', 'Accept-Encoding': 'gzip, deflate, br' }, body: xmlrpc, encoding: 'gzip' },
    { what: 'XML-RPC, only brotli accepted (not compressed)', target: '/proxy/keap/crm/xmlrpc/v1', method: 'POST',
      headers: { 'Content-Type': 'text/xml', 'Accept-Encoding': 'br' }, body: xmlrpc, encoding: null },
    { what: 'a page file, brotli preferred (gzip is used)', target: '/app.js', headers: { 'Accept-Encoding': 'br;q=1.0, gzip;q=0.8' }, encoding: 'gzip' },
    { what: 'HEAD', target: LOOKUP, method: 'HEAD' },
    { what: 'a 404 of the API', target: '/proxy/keap/crm/rest/v1/contacts/999999' },
    { what: 'an XML-RPC call', target: '/proxy/keap/crm/xmlrpc/v1', method: 'POST', headers: { 'Content-Type': 'text/xml' }, body: xmlrpc },
    { what: 'an HTML error page instead of XML-RPC (diagnosed, 502)', target: '/proxy/keap/crm/xmlrpc/v1', method: 'POST',
      headers: { 'Content-Type': 'text/xml' }, body: xmlrpc, fail: { path: '/keap/crm/xmlrpc', mode: 'html_502' } },
    { what: 'a plain 500 of the API', target: LOOKUP, fail: { path: '/keap/crm/rest/v1/contacts', mode: 'status', status: 500 } },
    { what: 'an unreachable path (not on the allowlist)', target: '/proxy/keap/crm/rest/v1/nothing-here' },
  ];
  const before = await frontCounts(fast);
  for (const c of cases) {
    const answers = [];
    for (const relay of [fast, slow]) {
      if (c.fail) await sandbox.fail({ count: 1, ...c.fail });
      const headers = { ...auth, ...(c.headers ?? {}), ...(c.body ? { 'Content-Length': String(Buffer.byteLength(c.body)) } : {}) };
      const text = await exchange(relay, [`${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\n` +
        Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + 'Connection: close\r\n\r\n' + (c.body ?? '')]);
      // The request id differs, and so do the provider's quota counters (the sandbox counts every call).
      answers.push(text.replace(/\r\nX-Request-Id: [A-Za-z0-9_-]+\r\n/, '\r\nX-Request-Id: *\r\n')
        .replace(/\r\n(x-keap-product-(?:quota|throttle)-(?:available|used)|X-RateLimit-Remaining): [^\r\n]*/gi, '\r\n$1: *'));
    }
    assert.match(answers[0], /^HTTP\/1\.1 \d{3} /, `${c.what}: ${answers[0].slice(0, 200)}`);
    if ('encoding' in c) {
      const m = /\r\nContent-Encoding: ([^\r\n]+)/i.exec(answers[0].slice(0, answers[0].indexOf('\r\n\r\n')));
      assert.equal(m ? m[1] : null, c.encoding, `${c.what}: Content-Encoding`);
    }
    assert.equal(answers[0], answers[1], `${c.what}: the fast path answered differently from a worker`);
  }
  const after = await frontCounts(fast);
  // Every proxied case took the fast path, except the refusal (answered by a worker: it never reaches the provider)
  // and the page file (not a proxied call). The sandbox throttles Keap at 10 calls a second like Keap: a call that
  // met a 429 was retried by a worker after Retry-After (and counted there).
  const retried = metricValue((await apiCall(fast.url, 'GET', '/metrics')).body, 'keyrelay_upstream_retries_total', { provider: 'keap' });
  assert.equal(after.fast - before.fast + retried, cases.length - 2, JSON.stringify({ before, after, retried }));
  assert.equal((await frontCounts(slow)).fast, 0, 'KEYRELAY_FAST_PATH=off sends everything to the workers');
  // Both relays logged each call with its provider and status.
  for (const relay of [fast, slow]) {
    const lines = relay.logs().map((l) => l.line).filter((l) => l.includes('"msg":"request"') && l.includes('/proxy/keap/'));
    assert.equal(lines.length, cases.filter((c) => c.target.startsWith('/proxy/')).length, lines.join('\n'));
    assert.ok(lines.every((l) => /"provider":"keap"/.test(l) && /"duration_ms":\d/.test(l)), lines.join('\n'));
  }
});

test('a first answer that needs a retry (503 + Retry-After) is continued by a worker: the provider sees two calls, not three', async (t) => {
  const sandbox = await startSandbox({ t });
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox, t, env: { KEAP_API_KEY: sandbox.config.keap.api_key }, apiKey });
  const seen = async () => (await sandbox.stats()).requests['GET /keap/crm/rest/v1/contacts'] ?? 0;
  const base = await seen();
  await sandbox.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode: 'html_503' });
  const res = await apiCall(relay.url, 'GET', LOOKUP, { apiKey });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.json?.contacts?.[0]?.id, 101);
  assert.equal(await seen() - base, 2, 'the fast path made attempt 0; the worker made only the retry');
  const metrics = (await apiCall(relay.url, 'GET', '/metrics')).body;
  assert.equal(metricValue(metrics, 'keyrelay_upstream_retries_total', { provider: 'keap' }), 1, metrics);
});

test('OAuth: an access token the provider refuses (401) on the fast path is refreshed once and the call retried once', async (t) => {
  const apiKey = newApiKey();
  const { sandbox, relay } = await connectedSetup({ t, relayOptions: { apiKey } });
  assert.equal((await apiCall(relay.url, 'GET', LOOKUP, { apiKey })).status, 200);
  const before = await frontCounts(relay);
  // The sandbox's clock moves past the access token's lifetime; the relay's does not: it still thinks the token good.
  await sandbox.clock(sandbox.config.keap.access_ttl + 60);
  const refreshes = (await sandbox.tokenStats('keap')).refreshes;
  const res = await apiCall(relay.url, 'GET', LOOKUP, { apiKey });
  assert.equal(res.status, 200, res.body);
  assert.equal((await sandbox.tokenStats('keap')).refreshes - refreshes, 1, 'exactly one refresh');
  const again = await apiCall(relay.url, 'GET', LOOKUP, { apiKey });
  assert.equal(again.status, 200, again.body);
  const after = await frontCounts(relay);
  assert.equal(after.fast - before.fast, 1, 'the refused call went to a worker; the next one took the fast path again');
});

test('OAuth, server-to-server: 50 concurrent calls whose token the provider refuses (401) cause exactly one refresh, and all succeed', async (t) => {
  // The sandbox expires the token; the relay still thinks it good, so all 50 go out on the fast path and get a 401.
  const { sandbox, relay, apiKey } = await tokenExpiredAtSandbox(t);
  const before = await sandbox.tokenStats('keap');
  const results = await Promise.all(Array.from({ length: 50 }, () => apiCall(relay.url, 'GET', LOOKUP, { apiKey, timeout: 20_000 })));
  const after = await sandbox.tokenStats('keap');
  const bad = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 200)}`);
  assert.deepEqual(bad, [], `${bad.length} of 50 calls failed`);
  assert.equal(after.refreshes - before.refreshes, 1, `refreshes went from ${before.refreshes} to ${after.refreshes}: not a single flight`);
  assert.equal(after.refresh_failures, 0);
});

test('OAuth, server-to-server: a 401 that arrives after another call already refreshed causes no second refresh', async (t) => {
  const { sandbox, relay, apiKey } = await tokenExpiredAtSandbox(t);
  const before = await sandbox.tokenStats('keap');
  // Wave 1 is held 1.5 s by the sandbox, then refused (401) - long after wave 2 was refused and refreshed the token.
  // Its 401 is about the old token: the worker that continues it must see that and not refresh again.
  await sandbox.fail({ path: '/keap/crm/rest/v1/contacts', count: 5, mode: 'slow', delay_ms: 1500 });
  const late = Array.from({ length: 5 }, () => apiCall(relay.url, 'GET', LOOKUP, { apiKey, timeout: 20_000 }));
  await new Promise((r) => setTimeout(r, 300));
  const early = await Promise.all(Array.from({ length: 5 }, () => apiCall(relay.url, 'GET', LOOKUP, { apiKey, timeout: 20_000 })));
  const results = [...early, ...await Promise.all(late)];
  const after = await sandbox.tokenStats('keap');
  const bad = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 200)}`);
  assert.deepEqual(bad, [], `${bad.length} of 10 calls failed`);
  assert.equal(after.refreshes - before.refreshes, 1, `refreshes went from ${before.refreshes} to ${after.refreshes}`);
});

test('connections: pipelined requests are answered in order, Expect: 100-continue gets its interim answer, a half-closed client still gets its answer', async (t) => {
  const sandbox = await startSandbox({ t });
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox, t, env: { KEAP_API_KEY: sandbox.config.keap.api_key }, apiKey });
  const host = `Host: 127.0.0.1:${relay.port}\r\n`;

  // Three requests in one write: health, a proxied lookup (fast path), health; the last one closes.
  const piped = await exchange(relay, [
    `GET /healthz HTTP/1.1\r\n${host}\r\nGET ${LOOKUP} HTTP/1.1\r\n${host}Authorization: Bearer ${apiKey}\r\n\r\n` +
    `GET /nothing HTTP/1.1\r\n${host}Connection: close\r\n\r\n`]);
  assert.deepEqual(statusLines(piped), [200, 200, 404], piped.slice(0, 600));
  assert.ok(piped.indexOf('"status":"ok"') < piped.indexOf('"Lovelace"'), 'answers in request order');

  // Expect: 100-continue: the body is sent only after the interim answer.
  const body = JSON.stringify({ username: 'nobody', password: 'wrong' });
  const expect = await exchange(relay, [
    `POST /login HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    async () => { await new Promise((r) => setTimeout(r, 300)); },
    body]);
  assert.deepEqual(statusLines(expect), [100, 401], expect.slice(0, 300));

  // Request, then shutdown(SHUT_WR): the answer still comes.
  const half = await exchange(relay, [`GET ${LOOKUP} HTTP/1.1\r\n${host}Authorization: Bearer ${apiKey}\r\n\r\n`], { halfClose: true });
  assert.deepEqual(statusLines(half), [200], half.slice(0, 300));
  assert.match(half, /Lovelace/);
});

test('SIGTERM with a proxied call in flight: the call is answered, then the relay exits with status 0', async (t) => {
  const sandbox = await startSandbox({ t });
  const apiKey = newApiKey();
  const relay = await startRelay({ sandbox, t, env: { KEAP_API_KEY: sandbox.config.keap.api_key }, apiKey });
  await sandbox.fail({ path: '/keap/crm/rest/v1/contacts', count: 1, mode: 'slow', delay_ms: 1000 });
  const pending = apiCall(relay.url, 'GET', LOOKUP, { apiKey });
  await new Promise((r) => setTimeout(r, 300));
  const stopped = relay.stop('SIGTERM');
  const res = await pending;
  assert.equal(res.status, 200, res.body);
  assert.equal((await stopped).code, 0);
});
