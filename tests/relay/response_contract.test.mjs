// Small contract gaps a black-box probe found: the page's Content-Security-Policy, HSTS over HTTPS, a text/plain
// /login (a login CSRF from a simple form), OPTIONS from a foreign origin, GET on a POST-only route, and lookup
// emails kept in the request log. Each is what docs/api.md and docs/security.md promise.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { ROOT, apiCall, checkLeaksAfterAll, client, rawRequest, startRelay, startSandbox, tempDir, writeConfig } from '../lib/harness.mjs';

checkLeaksAfterAll();

/** The directives of a Content-Security-Policy header: Map name → [sources]. */
function directives(csp) {
  const out = new Map();
  for (const part of (csp ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out.set(name.toLowerCase(), sources);
  }
  return out;
}

test('the page carries a real Content-Security-Policy: self only, Wasm allowed, no plugins, no base, forms to self, no framing', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const res = await client(relay.url).get('/');
  assert.equal(res.status, 200);
  const csp = directives(res.headers.get('content-security-policy'));
  assert.deepEqual(csp.get('default-src'), ["'self'"], res.headers.get('content-security-policy'));
  assert.deepEqual(csp.get('script-src'), ["'self'", "'wasm-unsafe-eval'"]);
  assert.deepEqual(csp.get('object-src'), ["'none'"]);
  assert.deepEqual(csp.get('base-uri'), ["'none'"]);
  assert.deepEqual(csp.get('form-action'), ["'self'"]);
  assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
});

test('over HTTPS every answer carries Strict-Transport-Security; over plain HTTP none does', async (t) => {
  const dir = await tempDir(t);
  await promisify(execFile)(path.join(ROOT, 'scripts', 'dev-cert'), [dir], { timeout: 30_000 });
  const ca = await readFile(path.join(dir, 'ca.pem'));
  const sandbox = await startSandbox({ t });
  const tls = await startRelay({
    sandbox, t, registerRedirects: false, name: 'keyrelay (TLS)',
    args: ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')],
  });
  const hsts = await new Promise((resolve, reject) => {
    https.get(`${tls.url}/healthz`, { ca }, (res) => { res.resume(); resolve(res.headers['strict-transport-security']); }).on('error', reject);
  });
  assert.match(hsts ?? '', /^max-age=\d{7,}/, `HSTS over HTTPS: ${hsts}`);
  const plain = await startRelay({ sandbox, t, name: 'keyrelay (HTTP)' });
  const res = await client(plain.url).get('/healthz');
  assert.equal(res.headers.get('strict-transport-security'), null, 'HSTS is meaningless and misleading over plain HTTP');
});

test('/login accepts only application/json: a text/plain body without Origin (a simple cross-site form) is refused', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  const body = JSON.stringify({ username: 'demo', password: 'demo' });
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded']) {
    const res = await browser.post('/login', { headers: { 'Content-Type': type }, body });
    assert.equal(res.status, 415, `${type}: ${res.status} ${res.body}`);
    assert.equal(res.json?.error?.code, 'http.unsupported_media_type', res.body);
    assert.match(res.json.error.hint, /application\/json/);
    assert.equal(res.setCookie.length, 0, 'no session was made');
  }
  // A multipart body that is not multipart is refused before the route (400); a real one gets 415.
  const form = `--x\r\nContent-Disposition: form-data; name="username"\r\n\r\ndemo\r\n--x--\r\n`;
  const multipart = await browser.post('/login', { headers: { 'Content-Type': 'multipart/form-data; boundary=x' }, body: form });
  assert.equal(multipart.status, 415, `${multipart.status} ${multipart.body}`);
  assert.equal(multipart.setCookie.length, 0);
  const ok = await browser.post('/login', { headers: { 'Content-Type': 'application/json; charset=utf-8' }, body });
  assert.equal(ok.status, 200, ok.body);
});

test('OPTIONS from a foreign Origin without Access-Control-Request-Method is refused with 403, as for a preflight', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const res = await rawRequest(relay.url, '/api/connections', { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
  assert.equal(res.status, 403, res.body);
  assert.match(res.body, /cors\.origin_not_allowed/);
  const plain = await rawRequest(relay.url, '/api/connections', { method: 'OPTIONS' });
  assert.equal(plain.status, 204, 'an OPTIONS without Origin is still answered');
});

test('GET on /api/connections/{provider}/disconnect is 405 with Allow: POST, not 404', async (t) => {
  const sandbox = await startSandbox({ t });
  const relay = await startRelay({ sandbox, t });
  const browser = client(relay.url);
  await browser.login();
  const res = await browser.get('/api/connections/keap/disconnect', { headers: { 'X-Requested-With': 'keyrelay' } });
  assert.equal(res.status, 405, res.body);
  assert.equal(res.headers.get('allow'), 'POST');
  assert.equal(res.json?.error?.code, 'http.method_not_allowed');
});

test('the request log masks query values (a looked-up email) unless log_queries is on', async (t) => {
  const sandbox = await startSandbox({ t, autoApprove: true });
  const email = `person.${process.pid}@example.com`;
  const target = `/proxy/jira/rest/api/3/user/search?query=${encodeURIComponent(email)}&maxResults=5`;
  const lookups = async (relay) => {
    const start = relay.logs().length;
    await apiCall(relay.url, 'GET', target, { apiKey: relay.apiKey });
    return relay.logs().slice(start).map((l) => l.line).join('\n');
  };
  const masked = await startRelay({ sandbox, t, apiKey: true, name: 'keyrelay (default log)' });
  const log = await lookups(masked);
  assert.match(log, /user\/search\?query=/, `the path and the parameter names are kept: ${log}`);
  assert.doesNotMatch(log, new RegExp(`${email.split('@')[0]}|${encodeURIComponent(email).split('%40')[0]}`), `the email is in the log: ${log}`);
  assert.doesNotMatch(log, /maxResults=5/, 'every value is masked, not only emails');

  const dir = await tempDir(t);
  const config = await writeConfig(dir, { log_queries: true });
  const verbose = await startRelay({ sandbox, t, apiKey: true, args: ['--config', config], name: 'keyrelay (log_queries)' });
  const full = await lookups(verbose);
  assert.match(full, /maxResults=5/, `log_queries: true logs query values for debugging: ${full}`);
});
